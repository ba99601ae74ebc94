//! Any bytes as a security object (CMS SignedData over an LDS security
//! object): no panic, and what parses exposes its hashes and signer.
#![no_main]

use kart_perso::security_object::SecurityObject;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &[u8]| {
    if let Ok(sod) = SecurityObject::parse(raw) {
        let _ = sod.file_hashes().len();
        let _ = sod.signer().subject();
        let _ = sod.content().len();
    }
});
