//! Any bytes as an issuer private key (PKCS#8 PEM/DER) and as a master keys
//! file (JSON): no panic, and no error message or Debug output echoes the input.
#![no_main]

use kart_perso::pki::{IssuerKey, MasterKeys};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &[u8]| {
    match IssuerKey::from_pem_or_der(raw) {
        Ok(key) => {
            let _ = key.sign(b"fuzz");
            assert!(format!("{key:?}").contains("redacted"));
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    if let Ok(text) = std::str::from_utf8(raw) {
        if let Ok(keys) = MasterKeys::from_json(text) {
            let _ = keys.to_json();
        }
    }
});
