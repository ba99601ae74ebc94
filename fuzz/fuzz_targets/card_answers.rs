//! Any bytes as the card answers personalization reads before it writes:
//! the CPLC, a SELECT FCI and a GENERATE KEY public key (EC or RSA). No panic.
#![no_main]

use kart_perso::card_data::Cplc;
use kart_perso::personalize::lifecycle_of;
use kart_perso::pki::HolderKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &[u8]| {
    if let Ok(cplc) = Cplc::parse(raw) {
        assert_eq!(cplc.csn_hex().len(), 16);
    }
    let _ = lifecycle_of(raw);
    if let Ok(key) = HolderKey::from_card(raw) {
        assert!(key.signature_len() == 64 || key.signature_len() >= 256);
    }
});
