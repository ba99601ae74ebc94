//! Any bytes as an X.509 certificate (PEM or DER): no panic; what loads
//! re-parses from its own DER to the same subject.
#![no_main]

use kart_perso::pki::Certificate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &[u8]| {
    if let Ok(cert) = Certificate::from_pem_or_der(raw) {
        let again = Certificate::from_der(cert.der().to_vec()).expect("own DER re-parses");
        assert_eq!(again.subject(), cert.subject());
        let _ = format!("{cert:?}");
    }
});
