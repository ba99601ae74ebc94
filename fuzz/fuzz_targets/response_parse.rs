//! Any bytes into `Response::from_bytes` and the status classification: no panic.
#![no_main]

use kart_apdu::Response;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &[u8]| {
    if let Ok(r) = Response::from_bytes(raw) {
        assert_eq!(r.to_vec(), raw);
        let _ = r.sw().to_string();
    }
});
