//! Card verification on simulated cards (kart-sim, in process), personalized
//! by hand in the simulator's test mode: a genuine card passes every check;
//! each kind of forgery fails the check that should catch it.

use kart_perso::pki::create_demo_issuer;
use kart_perso::record::Pin;
use kart_perso::verify::{verify_card, Outcome, Verdict, Verifier};
use kart_testkit::cards::*;
use time::{Duration, OffsetDateTime};

fn pin(p: &str) -> Pin {
    Pin::parse(p).unwrap()
}

fn outcome<'a>(v: &'a Verdict, id: &str) -> &'a Outcome {
    &v.check(id)
        .unwrap_or_else(|| panic!("no check {id} in\n{v}"))
        .outcome
}

fn fail_reason(v: &Verdict, id: &str) -> String {
    match outcome(v, id) {
        Outcome::Fail(r) => r.clone(),
        other => panic!("{id} should fail, is {other:?}\n{v}"),
    }
}

#[test]
fn genuine_card_of_every_profile_passes_every_check() {
    let now = OffsetDateTime::now_utc();
    let (_dir, pki) = issuer(now);
    for profile in kart_spec::Spec::embedded().unwrap().profiles {
        let id = profile.id.as_str();
        let (mut sim, data) = genuine(id, &pki, now);
        let verdict = verify_card(&mut sim, &trust(&pki), Some(&pin(ID_PIN)), now).unwrap();
        assert!(verdict.is_genuine(), "{id}:\n{verdict}");
        assert!(
            verdict.checks.iter().all(kart_perso::verify::Check::passed),
            "{id}:\n{verdict}"
        );
        for expected in [
            "pin",
            "sod.parse",
            "sod.signature",
            "sod.signer",
            "hash.0101",
            "hash.0102",
            "hash.0201",
            "hash.0202",
            "cert.auth",
            "cert.sign",
            "cert.crn",
            "id.decode",
            "id.csn",
            "id.crn",
            "id.national-code",
            "lifecycle",
            "aa",
        ] {
            assert!(verdict.check(expected).is_some(), "{id}: no {expected}");
        }
        assert_eq!(verdict.profile, id);
        assert_eq!(verdict.csn, hex::encode_upper(data.csn));
        assert_eq!(verdict.crn.as_deref(), Some(CRN));
        let identity = verdict.content.identity().unwrap().unwrap();
        assert_eq!(identity.given_name_en, "ZAHRA");
        assert!(verdict.to_string().ends_with("verdict: GENUINE"));
        assert_eq!(serde_json::to_value(&verdict).unwrap()["genuine"], true);
        // Exactly one INTERNAL AUTHENTICATE, with a fresh challenge.
        assert_eq!(sim.log().count(0x88), 1, "{id}");
    }
}

#[test]
fn active_authentication_uses_a_fresh_challenge_each_time() {
    let now = OffsetDateTime::now_utc();
    let (_dir, pki) = issuer(now);
    let (mut sim, _) = genuine("vendor-b", &pki, now);
    let mut rec = Recorder::new(&mut sim);
    verify_card(&mut rec, &trust(&pki), None, now).unwrap();
    verify_card(&mut rec, &trust(&pki), None, now).unwrap();
    // 00 88 00 01 20 <32-byte challenge> 00
    let challenges: Vec<&[u8]> = rec.sent(0x88, 0x00).iter().map(|c| &c[5..5 + 32]).collect();
    assert_eq!(challenges.len(), 2);
    assert_ne!(challenges[0], challenges[1]);
}

#[test]
fn without_a_pin_the_protected_files_are_not_checked_but_not_passed() {
    let now = OffsetDateTime::now_utc();
    let (_dir, pki) = issuer(now);
    let (mut sim, _) = genuine("vendor-a", &pki, now);
    let mut rec = Recorder::new(&mut sim);
    let verdict = verify_card(&mut rec, &trust(&pki), None, now).unwrap();
    for id in ["hash.0101", "hash.0102"] {
        match outcome(&verdict, id) {
            Outcome::Skipped(r) => assert!(r.contains("needs the ID PIN"), "{r}"),
            other => panic!("{id}: {other:?}"),
        }
        assert!(!verdict.check(id).unwrap().required);
    }
    assert!(matches!(outcome(&verdict, "id.csn"), Outcome::Skipped(_)));
    // What can be checked without the PIN passed, active authentication included.
    for id in [
        "sod.signature",
        "sod.signer",
        "hash.0201",
        "hash.0202",
        "cert.auth",
        "cert.crn",
        "lifecycle",
        "aa",
    ] {
        assert_eq!(outcome(&verdict, id), &Outcome::Pass, "{id}\n{verdict}");
    }
    // No file read that needs the PIN: EF.ID and EF.FACE were never selected.
    let selected: Vec<&[u8]> = rec.sent(0xA4, 0x02).iter().map(|c| &c[5..7]).collect();
    assert!(!selected.contains(&&[0x01, 0x01][..]) && !selected.contains(&&[0x01, 0x02][..]));
    assert!(selected.contains(&&[0x01, 0x1D][..]));
}

#[test]
fn tampered_identity_file_fails_its_hash_check_by_name() {
    let now = OffsetDateTime::now_utc();
    let (_dir, pki) = issuer(now);
    let p = profile("vendor-c");
    let cfg = config(9, &p);
    let mut sim = blank(&p, &cfg);
    let points = generate_keys(&mut sim);
    let data = signed_card_data(&pki, cfg.csn(), &points, now);
    // Personalized but not locked: files can still be rewritten.
    write_card(&mut sim, &data, false);
    write_file(&mut sim, 0x0101, &ef_id(cfg.csn(), CRN, "MARYAM"));

    let verdict = verify_card(&mut sim, &trust(&pki), Some(&pin(ID_PIN)), now).unwrap();
    assert!(!verdict.is_genuine());
    let reason = fail_reason(&verdict, "hash.0101");
    assert!(
        reason.contains("EF.ID") && reason.contains("altered"),
        "{reason}"
    );
    assert!(verdict.check("hash.0101").unwrap().name.contains("EF.ID"));
    assert_eq!(outcome(&verdict, "hash.0102"), &Outcome::Pass);
    assert_eq!(outcome(&verdict, "sod.signature"), &Outcome::Pass);
    assert!(fail_reason(&verdict, "lifecycle").contains("PERSONALIZED"));
    // Active authentication does not run on a card that failed passive authentication.
    assert!(matches!(outcome(&verdict, "aa"), Outcome::Skipped(_)));
    assert_eq!(sim.log().count(0x88), 0);
}

#[test]
fn security_object_from_a_foreign_signer_fails_signer_trust() {
    let now = OffsetDateTime::now_utc();
    let (_dir, pki) = issuer(now);
    let (_other_dir, other) = issuer(now);
    let p = profile("vendor-b");
    let cfg = config(11, &p);
    let mut sim = blank(&p, &cfg);
    let points = generate_keys(&mut sim);
    let signer = (&other.document_signer, &*other.document_signer_key);
    let data = card_data(&pki, signer, cfg.csn(), &points, now);
    write_card(&mut sim, &data, true);

    let verdict = verify_card(&mut sim, &trust(&pki), Some(&pin(ID_PIN)), now).unwrap();
    assert!(!verdict.is_genuine());
    // The signature itself is sound; its signer is not ours.
    assert_eq!(outcome(&verdict, "sod.signature"), &Outcome::Pass);
    let reason = fail_reason(&verdict, "sod.signer");
    assert!(reason.contains("Document Signer"), "{reason}");
    assert_eq!(outcome(&verdict, "hash.0101"), &Outcome::Pass);
    assert!(matches!(outcome(&verdict, "aa"), Outcome::Skipped(_)));
}

#[test]
fn expired_document_signer_then_expired_holder_certificates() {
    let now = OffsetDateTime::now_utc();
    let (_dir, pki) = issuer(now);
    let (mut sim, _) = genuine("vendor-a", &pki, now);
    let trust = trust(&pki);

    // The demo document signer lives 3 years, holder certificates 7.
    let in_4_years = now + Duration::days(4 * 365);
    let v = verify_card(&mut sim, &trust, Some(&pin(ID_PIN)), in_4_years).unwrap();
    assert!(fail_reason(&v, "sod.signer").contains("expired"));
    assert_eq!(outcome(&v, "cert.auth"), &Outcome::Pass);
    assert!(!v.is_genuine());

    let in_8_years = now + Duration::days(8 * 365);
    let v = verify_card(&mut sim, &trust, Some(&pin(ID_PIN)), in_8_years).unwrap();
    for id in ["cert.auth", "cert.sign"] {
        let reason = fail_reason(&v, id);
        assert!(
            reason.contains("expired") && reason.contains(CRN),
            "{reason}"
        );
    }
}

#[test]
fn cloned_card_with_another_key_fails_active_authentication() {
    let now = OffsetDateTime::now_utc();
    let (_dir, pki) = issuer(now);
    let (_original, data) = genuine("vendor-b", &pki, now);
    // Same chip serial, same files byte for byte, but its own key pair.
    let p = profile("vendor-b");
    let mut clone = blank(&p, &config(7, &p));
    generate_keys(&mut clone);
    write_card(&mut clone, &data, true);

    let verdict = verify_card(&mut clone, &trust(&pki), Some(&pin(ID_PIN)), now).unwrap();
    assert!(!verdict.is_genuine(), "{verdict}");
    let failed: Vec<&str> = verdict.failures().map(|c| c.id.as_str()).collect();
    assert_eq!(failed, ["aa"], "{verdict}");
    assert!(fail_reason(&verdict, "aa").contains("does not hold that key"));
}

#[test]
fn wrong_pin_fails_the_pin_check_with_tries_left() {
    let now = OffsetDateTime::now_utc();
    let (_dir, pki) = issuer(now);
    let (mut sim, _) = genuine("vendor-c", &pki, now);
    let verdict = verify_card(&mut sim, &trust(&pki), Some(&pin("9517")), now).unwrap();
    assert_eq!(fail_reason(&verdict, "pin"), "wrong PIN, 2 tries left");
    assert!(!verdict.is_genuine());
    assert!(matches!(
        outcome(&verdict, "hash.0101"),
        Outcome::Skipped(_)
    ));
    // The PIN never appears in the verdict, human or JSON.
    let json = serde_json::to_string(&verdict).unwrap();
    assert!(!json.contains("9517") && !verdict.to_string().contains("9517"));
    let v2 = verify_card(&mut sim, &trust(&pki), Some(&pin("3862")), now).unwrap();
    assert_eq!(fail_reason(&v2, "pin"), "wrong PIN, 1 tries left");
}

#[test]
fn csn_of_another_chip_in_the_identity_file_is_caught() {
    let now = OffsetDateTime::now_utc();
    let (_dir, pki) = issuer(now);
    let p = profile("vendor-a");
    let cfg = config(21, &p);
    let mut sim = blank(&p, &cfg);
    let points = generate_keys(&mut sim);
    // Data (and its correctly signed SOD) made for the chip with serial 22.
    let data = signed_card_data(&pki, config(22, &p).csn(), &points, now);
    write_card(&mut sim, &data, true);
    let verdict = verify_card(&mut sim, &trust(&pki), Some(&pin(ID_PIN)), now).unwrap();
    assert!(fail_reason(&verdict, "id.csn").contains("another card"));
    assert_eq!(outcome(&verdict, "hash.0101"), &Outcome::Pass);
    assert!(!verdict.is_genuine());
}

#[test]
fn verdict_json_has_stable_ids_and_results() {
    let now = OffsetDateTime::now_utc();
    let (_dir, pki) = issuer(now);
    let (mut sim, _) = genuine("vendor-b", &pki, now);
    let verdict = verify_card(&mut sim, &trust(&pki), None, now).unwrap();
    let json: serde_json::Value = serde_json::to_value(&verdict).unwrap();
    let checks = json["checks"].as_array().unwrap();
    let aa = checks.iter().find(|c| c["id"] == "aa").unwrap();
    assert_eq!(aa["result"], "pass");
    let hash = checks.iter().find(|c| c["id"] == "hash.0101").unwrap();
    assert_eq!(hash["result"], "skipped");
    assert!(hash["reason"]
        .as_str()
        .unwrap()
        .contains("needs the ID PIN"));
    assert_eq!(json["crn"], CRN);
    // Genuine chip, identity data unchecked: the human verdict says so.
    assert_eq!(json["genuine"], true);
    assert!(verdict
        .to_string()
        .ends_with("verdict: GENUINE (7 optional check(s) not run)"));
    // The holder's data stays out of the JSON verdict.
    assert!(!json.to_string().contains("ZAHRA"));
}

#[test]
fn atr_picks_the_profile_without_trying_other_aids() {
    let now = OffsetDateTime::now_utc();
    let (_dir, pki) = issuer(now);
    let (mut sim, _) = genuine("vendor-c", &pki, now);
    let atr = profile("vendor-c").atr.bytes().to_vec();
    let trust = trust(&pki);
    let mut rec = Recorder::new(&mut sim);
    let mut card = kart_apdu::Card::new(&mut rec);
    let verdict = Verifier::new(&trust, now)
        .atr(&atr)
        .verify(&mut card)
        .unwrap();
    assert_eq!(verdict.profile, "vendor-c");
    assert_eq!(rec.sent(0xA4, 0x04).len(), 1);
    // Without the ATR, vendor-a's AID is tried first and refused.
    let mut rec = Recorder::new(&mut sim);
    let verdict = verify_card(&mut rec, &trust, None, now).unwrap();
    assert_eq!(verdict.profile, "vendor-c");
    assert!(rec.sent(0xA4, 0x04).len() > 1);
}

#[test]
fn trust_anchors_load_from_the_demo_issuer_files() {
    let now = OffsetDateTime::now_utc();
    let dir = tempfile::tempdir().unwrap();
    let files = create_demo_issuer(dir.path(), now).unwrap();
    let pki = kart_perso::pki::IssuerPki::load(dir.path()).unwrap();
    let (mut sim, _) = genuine("vendor-b", &pki, now);
    let trust =
        kart_perso::verify::TrustAnchors::load(&files.root, &[files.card_ca.as_path()]).unwrap();
    assert!(verify_card(&mut sim, &trust, Some(&pin(ID_PIN)), now)
        .unwrap()
        .is_genuine());
    // Without the card CA the holder certificates cannot chain.
    let root_only = kart_perso::verify::TrustAnchors::load(&files.root, &[]).unwrap();
    let v = verify_card(&mut sim, &root_only, Some(&pin(ID_PIN)), now).unwrap();
    assert!(fail_reason(&v, "cert.auth").contains("Card CA"));
}

#[test]
fn content_read_once_can_be_assessed_later_without_the_card() {
    let now = OffsetDateTime::now_utc();
    let (_dir, pki) = issuer(now);
    let (mut sim, _) = genuine("vendor-c", &pki, now);
    let spec = spec();
    let content = kart_perso::read::read_card(
        &mut kart_apdu::Card::new(&mut sim),
        &spec,
        None,
        Some(&pin(ID_PIN)),
    )
    .unwrap();
    let trust = trust(&pki);
    let today = Verifier::new(&trust, now).assess(content.clone());
    // Everything passes except active authentication, which needs the chip.
    let failed_or_skipped: Vec<&str> = today
        .checks
        .iter()
        .filter(|c| !c.passed())
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(failed_or_skipped, ["aa"]);
    assert!(!today.is_genuine());
    let later = Verifier::new(&trust, now + Duration::days(4 * 365)).assess(content);
    assert!(fail_reason(&later, "sod.signer").contains("expired"));
}

#[test]
fn any_of_several_roots_may_anchor_the_card() {
    let now = OffsetDateTime::now_utc();
    let (_dir, pki) = issuer(now);
    let (_other_dir, other) = issuer(now);
    let (mut sim, _) = genuine("vendor-b", &pki, now);
    // The foreign root comes first; the card's own root second.
    let trust = kart_perso::verify::TrustAnchors::new(other.root.clone())
        .with_intermediate(other.card_ca.clone())
        .with_root(pki.root.clone())
        .with_intermediate(pki.card_ca.clone());
    let verdict = verify_card(&mut sim, &trust, Some(&pin(ID_PIN)), now).unwrap();
    assert!(verdict.is_genuine(), "{verdict}");
    // Only the foreign hierarchy: the signer and the holder certificates fail.
    let foreign = kart_perso::verify::TrustAnchors::new(other.root.clone())
        .with_intermediate(other.card_ca.clone());
    let verdict = verify_card(&mut sim, &foreign, Some(&pin(ID_PIN)), now).unwrap();
    let failed: Vec<&str> = verdict.failures().map(|c| c.id.as_str()).collect();
    assert_eq!(
        failed,
        ["sod.signer", "cert.auth", "cert.sign"],
        "{verdict}"
    );
}

#[test]
fn card_pulled_before_active_authentication_is_an_error_not_a_verdict() {
    let now = OffsetDateTime::now_utc();
    let (_dir, pki) = issuer(now);
    let (mut sim, _) = genuine("vendor-b", &pki, now);
    // The simulator numbers APDUs from its creation; its log has them all.
    let before = sim.log().apdus();
    verify_card(&mut sim, &trust(&pki), None, now).unwrap();
    let per_verify = sim.log().apdus() - before;
    assert_eq!(sim.log().entries().last().map(|e| e.ins), Some(0x88));
    // Same session again, the card leaving just before INTERNAL AUTHENTICATE.
    let last_before_aa = sim.log().apdus() + per_verify - 1;
    sim.set_faults(kart_sim::Faults::default().pull_after(last_before_aa as u64));
    let err = verify_card(&mut sim, &trust(&pki), None, now).unwrap_err();
    assert!(
        matches!(
            err,
            kart_perso::verify::VerifyError::Card(kart_apdu::CardError::Transport(
                kart_apdu::TransportError::CardRemoved
            ))
        ),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("INTERNAL AUTHENTICATE"));
}
