//! Any bytes as EF.ID read from a card: no panic; a decoded identity
//! serializes and prints.
#![no_main]

use kart_perso::read::CardIdentity;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &[u8]| {
    match CardIdentity::decode(raw) {
        Ok(id) => {
            let _ = format!("{id:?}");
        }
        Err(e) => {
            assert!(e.to_string().contains("EF.ID"), "{e}");
        }
    }
});
