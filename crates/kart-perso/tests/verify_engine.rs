//! Verification of cards written by the personalization engine
//! (`kart_perso::personalize`, its own TLV encoder and secure channel), read
//! back by the independent reader: genuine as issued; a clone carrying the
//! same files on another chip key fails active authentication only.

use kart_testkit::{cards, engine};

use kart_perso::card_data::Crn;
use kart_perso::personalize::personalize_one;
use kart_perso::pin_mailer::Pins;
use kart_perso::record::Pin;
use kart_perso::verify::{verify_card, Outcome};
use kart_sim::SimCard;
use time::OffsetDateTime;

#[test]
fn engine_personalized_card_is_genuine_and_its_clone_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = engine::demo_issuer(&dir.path().join("issuer"));
    let batch = engine::batch_file(dir.path(), &[engine::row(1, "face.jpg")], 4000);
    let record = engine::records(&batch).remove(0);
    let spec = engine::spec();
    let profile = spec.profile("vendor-a").unwrap();
    let mut sim = engine::sim_for(&issuer, profile, 0x0A0B_0C0D);
    let now = OffsetDateTime::now_utc();
    let crn = Crn::parse("0000000026").unwrap();
    let pins = Pins::generate(None).unwrap();
    let outcome = personalize_one(&mut sim, profile, &issuer, &record, &crn, &pins, now).unwrap();
    let trust = engine::trust_of(&issuer);
    let pin = engine::id_pin(&pins);

    let verdict = verify_card(&mut sim, &trust, Some(&pin), now).unwrap();
    assert!(verdict.is_genuine(), "{verdict}");
    let identity = verdict.content.identity().unwrap().unwrap();
    assert_eq!(identity.crn, "0000000026");
    assert_eq!(identity.tracking_code, engine::tracking(1));
    assert_eq!(hex::encode_upper(identity.csn), verdict.csn);

    // The clone: same chip serial, the engine's files byte for byte, its own key.
    let mut clone = SimCard::with_config(
        profile,
        &kart_sim::SimConfig::new([0x0A, 0x0B, 0x0C, 0x0D], &kart_sim::default_test_key(16)),
    )
    .unwrap()
    .with_test_mode_writes();
    cards::generate_keys(&mut clone);
    let data = cards::CardData {
        csn: verdict.content.csn,
        crn: "0000000026".into(),
        files: outcome.files.clone(),
    };
    cards::write_card(&mut clone, &data, true);
    let verdict = verify_card(
        &mut clone,
        &trust,
        Some(&Pin::parse(cards::ID_PIN).unwrap()),
        now,
    )
    .unwrap();
    let failed: Vec<&str> = verdict.failures().map(|c| c.id.as_str()).collect();
    assert_eq!(failed, ["aa"], "{verdict}");
    assert!(matches!(
        verdict.check("hash.0101").unwrap().outcome,
        Outcome::Pass
    ));
}
