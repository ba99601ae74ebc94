//! The parts around execution: card answers that are nonsense give typed
//! errors (never a panic), wrong keys and wrong profiles are refused before
//! anything is written, PINs are random digits, and the PIN mailer is the
//! owner's alone.

use std::os::unix::fs::PermissionsExt;

use kart_apdu::{Card, StatusWord};
use kart_perso::card_data::{Cplc, Crn};
use kart_perso::personalize::{lifecycle_of, personalize, probe, Job, PersoError};
use kart_perso::pin_mailer::{MailerEntry, MailerError, PinMailer, Pins};
use kart_perso::pki::HolderKey;
use kart_perso::plan::Lifecycle;
use kart_perso::record::Pin;
use kart_testkit::engine::*;
use proptest::prelude::*;

proptest! {
    #[test]
    fn card_answers_never_panic_the_parsers(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = Cplc::parse(&bytes);
        let _ = HolderKey::from_card(&bytes);
        let _ = lifecycle_of(&bytes);
    }
}

#[test]
fn cplc_of_the_wrong_length_is_a_typed_error() {
    // 9F7F with 41 bytes instead of GP's 42.
    let mut answer = vec![0x9F, 0x7F, 41];
    answer.extend_from_slice(&[0u8; 41]);
    assert!(Cplc::parse(&answer)
        .unwrap_err()
        .to_string()
        .contains("41 bytes"));
}

#[test]
fn public_key_must_be_an_uncompressed_point_on_the_curve() {
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING as ALG};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ALG, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ALG, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    // 7F49 { 86 <04 ‖ 64 bytes> } is accepted (spec §8.9) …
    let mut good = vec![0x7F, 0x49, 0x43, 0x86, 0x41];
    good.extend_from_slice(point);
    assert_eq!(
        HolderKey::from_card(&good).unwrap(),
        HolderKey::EcP256(point.to_vec())
    );
    // … a point off the curve is not …
    let mut off = good.clone();
    off[69] ^= 1;
    assert!(HolderKey::from_card(&off).is_err());
    // … nor a compressed point (02 ‖ X).
    let mut compressed = vec![0x7F, 0x49, 0x23, 0x86, 0x21, 0x02];
    compressed.extend_from_slice(&point[1..33]);
    assert!(HolderKey::from_card(&compressed).is_err());
}

#[test]
fn wrong_master_keys_fail_the_channel_before_any_write() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = demo_issuer(&dir.path().join("issuer"));
    let batch = batch_file(dir.path(), &[row(1, "face.jpg")], 2000);
    let record = records(&batch).remove(0);
    let spec = spec();
    let profile = spec.profile("vendor-b").unwrap();
    // A card keyed with another master key than the issuer's.
    let mut sim = kart_sim::SimCard::with_config(
        profile,
        &kart_sim::SimConfig::new([0, 0, 0, 1], &[0x11; 16]),
    )
    .unwrap();
    let mut card = Card::with_caps(&mut sim, profile.caps());
    let now = time::OffsetDateTime::now_utc();
    let (outcome, _pins) =
        personalize_fresh(&mut card, profile, &issuer, &record, "0000000018", now);
    let err = outcome.unwrap_err();
    // The card's key information template says why: same version and
    // length as the issuer's set, so the key values differ.
    let PersoError::CardKeys { explanation } = &err else {
        panic!("not a key mismatch: {err}");
    };
    let sc = profile.secure_channel;
    assert!(
        explanation.starts_with(&format!(
            "the card holds key version {:02X}, AES-{}",
            sc.key_version,
            sc.key_length * 8
        )),
        "{err}"
    );
    assert!(explanation.contains("diversification tried: KDF3"), "{err}");
    assert!(explanation.contains("key values differ"), "{err}");
    // Nothing was written: the card is still fresh, without a CRN.
    let after = probe(&mut card, profile).unwrap();
    assert_eq!(
        (after.lifecycle, after.crn),
        (Lifecycle::PrePersonalized, None)
    );
    assert_eq!(card.transport().log().count(0xD6), 0);
}

#[test]
fn card_of_another_profile_is_refused_at_select_with_its_status_word() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = demo_issuer(dir.path());
    let spec = spec();
    let mut sim = sim_for(&issuer, spec.profile("vendor-a").unwrap(), 1);
    let wrong = spec.profile("vendor-c").unwrap();
    let mut card = Card::with_caps(&mut sim, wrong.caps());
    match probe(&mut card, wrong).unwrap_err() {
        PersoError::CardRefused { step, sw } => {
            assert_eq!(step, "select applet");
            assert_eq!(sw, StatusWord::new(0x6A, 0x82)); // spec §8.1: unknown AID
        }
        other => panic!("{other}"),
    }
}

#[test]
fn generated_pins_are_random_digits_of_the_spec_lengths() {
    let a = Pins::generate(None).unwrap();
    let b = Pins::generate(None).unwrap();
    for (secret, len) in [(&a.id_pin, 6), (&a.sign_pin, 6), (&a.puk, 8)] {
        assert_eq!(secret.expose().len(), len);
        assert!(secret.expose().iter().all(u8::is_ascii_digit));
    }
    // Two PUKs of 8 random digits collide with probability 10⁻⁸.
    assert_ne!(a.puk.expose(), b.puk.expose());
    let given = Pins::generate(Some(&Pin::parse("4821").unwrap())).unwrap();
    assert_eq!(given.id_pin.expose(), b"4821");
    assert_eq!(
        format!("{given:?} {:?}", given.puk),
        "Pins(<redacted>) Secret(<redacted>)"
    );
}

#[test]
fn pin_mailer_is_created_private_appends_and_refuses_a_readable_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailer.txt");
    let pins = Pins::generate(None).unwrap();
    let entry = MailerEntry {
        tracking: "140409040007",
        crn: "0000000018",
        csn: "4B41000100000001",
        pins: &pins,
    };
    PinMailer::open(&path).unwrap().append(&entry).unwrap();
    PinMailer::open(&path).unwrap().append(&entry).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 2, "append, not overwrite");
    let puk = std::str::from_utf8(pins.puk.expose()).unwrap();
    assert!(text
        .lines()
        .all(|l| l.contains(&format!(" puk={puk} superseded="))));
    // The same application twice: the earlier line is superseded.
    let ends: Vec<&str> = text.lines().map(|l| &l[l.len() - 13..]).collect();
    assert_eq!(ends, [" superseded=1", " superseded=0"]);

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(
        PinMailer::open(&path),
        Err(MailerError::Permissions { mode: 0o644, .. })
    ));
}

#[test]
fn pin_values_never_cross_the_interface_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = demo_issuer(&dir.path().join("issuer"));
    let batch = batch_file(dir.path(), &[row(1, "face.jpg")], 2000);
    let record = records(&batch).remove(0);
    let spec = spec();
    for profile in &spec.profiles {
        let id = profile.id.as_str();
        let mut sim = sim_for(&issuer, profile, 3);
        let mut card = Card::with_caps(&mut sim, profile.caps());
        // Every APDU on the wire, unredacted.
        let wire = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = wire.clone();
        card.set_redaction(false);
        card.set_trace(Some(Box::new(move |e: &kart_apdu::TraceEvent<'_>| {
            sink.lock().unwrap().push_str(&hex::encode_upper(e.bytes));
            sink.lock().unwrap().push('\n');
        })));
        let info = probe(&mut card, profile).unwrap();
        let crn = Crn::parse("0000000018").unwrap();
        let pins = Pins::generate(Some(&Pin::parse("73914628").unwrap())).unwrap();
        let now = time::OffsetDateTime::now_utc();
        let job = Job::new(&record, &crn, &pins, now.date());
        personalize(&mut card, profile, &issuer, &info, &job, now).unwrap();
        let wire = wire.lock().unwrap().clone();
        // CHANGE REFERENCE DATA (INS 24) went out, encrypted (C-DEC, spec §7).
        assert!(wire.lines().any(|l| l.starts_with("042401")), "{id}");
        assert!(!wire.contains("3733393134363238"), "{id}: ID PIN in clear");
        assert!(
            !wire.contains(&hex::encode_upper(pins.puk.expose())),
            "{id}: PUK in clear"
        );
    }
}
