//! A record goes from a CSV batch to a LOCKED card on every vendor profile,
//! and reads back correctly through the independent reader (`read`) and
//! verifier (`verify`) modules.

mod perso_support;

use kart_apdu::Card;
use kart_perso::card_data::Crn;
use kart_perso::personalize::{personalize, probe, Job, PersoError};
use kart_perso::pin_mailer::Pins;
use kart_perso::plan::Lifecycle;
use kart_perso::read::{read_card, Lifecycle as ReadLifecycle};
use kart_perso::record::Pin;
use kart_perso::verify::{TrustAnchors, Verifier};
use perso_support::*;

fn personalize_one(profile_id: &str) {
    let dir = tempfile::tempdir().unwrap();
    let issuer = demo_issuer(&dir.path().join("issuer"));
    let batch = batch_file(dir.path(), &[row(1, "face.jpg")], 6000);
    let record = records(&batch).remove(0);
    let spec = spec();
    let profile = spec.profile(profile_id).unwrap();
    let mut sim = sim_for(&issuer, profile, 0x0102_0304);
    let mut card = Card::with_caps(&mut sim, profile.caps());

    let info = probe(&mut card, profile).unwrap();
    assert_eq!(info.lifecycle, Lifecycle::PrePersonalized);
    assert_eq!(info.crn, None);
    assert_eq!(info.cplc.csn()[4..], [1, 2, 3, 4]);

    let crn = Crn::parse("0000000018").unwrap();
    let pins = Pins::generate(None).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let job = Job::new(&record, &crn, &pins, now.date());
    let outcome = personalize(&mut card, profile, &issuer, &info, &job, now).unwrap();
    assert_eq!(outcome.crn, crn);
    assert!(outcome.counters.apdus > 10);
    assert!(outcome.steps.iter().any(|s| s.name == "write EF.FACE"));

    // Read back with the ID PIN through the reader module.
    let pin = Pin::parse(std::str::from_utf8(pins.id_pin.expose()).unwrap()).unwrap();
    let content = read_card(&mut card, &spec, None, Some(&pin)).unwrap();
    assert_eq!(content.lifecycle, ReadLifecycle::Locked);
    assert_eq!(content.crn.as_deref(), Some("0000000018"));
    let identity = content.identity().unwrap().unwrap();
    assert_eq!(identity.national_code.as_str(), "0012345679");
    assert_eq!(identity.family_name_en, "KARIMI");
    assert_eq!(identity.given_name_fa, "علی");
    assert_eq!(content.photo().unwrap(), jpeg(6000).as_slice());

    // The verifier judges the card genuine (passive + active authentication).
    let trust =
        TrustAnchors::new(issuer.pki.root.clone()).with_intermediate(issuer.pki.card_ca.clone());
    let verdict = Verifier::new(&trust, now)
        .spec(&spec)
        .pin(&pin)
        .verify(&mut card)
        .unwrap();
    assert!(verdict.is_genuine(), "{verdict}");

    // A locked card refuses a second personalization before any write.
    let info = probe(&mut card, profile).unwrap();
    assert_eq!(info.lifecycle, Lifecycle::Locked);
    let again = personalize(&mut card, profile, &issuer, &info, &job, now);
    assert!(matches!(again, Err(PersoError::Locked)));
}

#[test]
fn vendor_a_t0_scp02_card_is_personalized_and_locked() {
    personalize_one("vendor-a");
}

#[test]
fn vendor_b_extended_length_scp03_card_is_personalized_and_locked() {
    personalize_one("vendor-b");
}

#[test]
fn vendor_c_chaining_scp03_aes256_card_is_personalized_and_locked() {
    personalize_one("vendor-c");
}

#[test]
fn fingerprint_template_is_written_to_ef_finger_and_covered_by_the_sod() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = demo_issuer(&dir.path().join("issuer"));
    std::fs::write(dir.path().join("face.jpg"), jpeg(3000)).unwrap();
    let template: Vec<u8> = (0..700u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("finger.bin"), &template).unwrap();
    let path = dir.path().join("batch.csv");
    std::fs::write(
        &path,
        format!("{HEADER},fingerprint\n{},finger.bin\n", row(1, "face.jpg")),
    )
    .unwrap();
    let record = records(&path).remove(0);
    let spec = spec();
    let profile = spec.profile("vendor-c").unwrap();
    let mut sim = sim_for(&issuer, profile, 5);
    let crn = Crn::parse("0000000018").unwrap();
    let pins = Pins::generate(None).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let outcome = kart_perso::personalize::personalize_one(
        &mut sim, profile, &issuer, &record, &crn, &pins, now,
    )
    .unwrap();
    let mut card = Card::with_caps(&mut sim, profile.caps());
    assert!(outcome.steps.iter().any(|s| s.name == "write EF.FINGER"));

    let pin = Pin::parse(std::str::from_utf8(pins.id_pin.expose()).unwrap()).unwrap();
    let content = read_card(&mut card, &spec, None, Some(&pin)).unwrap();
    // 5F2E 82 02BC ‖ template (spec §6.1: EF.FINGER holds one 5F2E object).
    let mut expected = vec![0x5F, 0x2E, 0x82, 0x02, 0xBC];
    expected.extend_from_slice(&template);
    assert_eq!(content.data("EF.FINGER").unwrap(), expected.as_slice());
    let trust =
        TrustAnchors::new(issuer.pki.root.clone()).with_intermediate(issuer.pki.card_ca.clone());
    let verdict = Verifier::new(&trust, now)
        .spec(&spec)
        .pin(&pin)
        .verify(&mut card)
        .unwrap();
    assert!(verdict.is_genuine(), "{verdict}");
    assert!(verdict.check("hash.0103").unwrap().passed());
}
