//! Any bytes as the card answers personalization reads before it writes:
//! the CPLC, a SELECT FCI and a GENERATE KEY public key. No panic.
#![no_main]

use kart_perso::card_data::Cplc;
use kart_perso::personalize::{lifecycle_of, public_point};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &[u8]| {
    if let Ok(cplc) = Cplc::parse(raw) {
        assert_eq!(cplc.csn_hex().len(), 16);
    }
    let _ = lifecycle_of(raw);
    if let Ok(point) = public_point(raw) {
        assert_eq!(point.len(), 65);
    }
});
