//! The plan per profile: APDU counts against a hand computation, the
//! fewest-APDU chunk sizes, the executed session matching the plan, and the
//! dry-run print without PIN digits.

mod perso_support;

use kart_apdu::Card;
use kart_perso::card_data::{CardFacts, Crn};
use kart_perso::personalize::{personalize, probe, Job};
use kart_perso::pin_mailer::Pins;
use kart_perso::plan::{self, max_write_chunk, Action, Lifecycle, PlanInput};
use kart_perso::record::{IdentityRecord, Pin};
use perso_support::*;

/// The record of `row(1, …)` with a 6000-byte photo. By hand, from the spec's
/// tag table: EF.ID values are C1 10, C2 "علی" 6, C3 "کریمی" 10, C4 "حسین" 8,
/// C5 3, C6 6, C7 7, C8 8, C9 8, CA 1, CB 8, CC 10, CD 8, CE 8, CF 12 bytes;
/// with a 2-byte header each that is 143 bytes, so E1 81 8F + 143 = 146 bytes.
/// EF.FACE is 5F2E 82 1770 + 6000 = 6005 bytes.
const EF_ID_LEN: usize = 146;
const EF_FACE_LEN: usize = 6005;

fn fixture() -> (tempfile::TempDir, IdentityRecord) {
    let dir = tempfile::tempdir().unwrap();
    let batch = batch_file(dir.path(), &[row(1, "face.jpg")], 6000);
    let record = records(&batch).remove(0);
    (dir, record)
}

fn facts() -> CardFacts {
    let issued = time::Date::from_calendar_date(2025, time::Month::November, 25).unwrap();
    CardFacts {
        csn: [0x4B, 0x41, 0, 1, 1, 2, 3, 4],
        crn: Crn::parse("0000000018").unwrap(),
        issued,
        expires: issued.replace_year(2032).unwrap(),
    }
}

#[test]
fn write_chunk_is_the_largest_that_fits_after_mac_and_padding() {
    let spec = spec();
    // A: 255 − 8 (C-MAC) = 247, whole DES blocks 240, minus the mandatory pad byte = 239.
    assert_eq!(max_write_chunk(spec.profile("vendor-a").unwrap()), 239);
    // B: 2048 − 8 = 2040, whole AES blocks 2032, minus one = 2031.
    assert_eq!(max_write_chunk(spec.profile("vendor-b").unwrap()), 2031);
    // C: 255 − 8 = 247, whole AES blocks 240, minus one = 239.
    assert_eq!(max_write_chunk(spec.profile("vendor-c").unwrap()), 239);
}

#[test]
fn plan_counts_match_a_hand_computation_per_profile() {
    let (_dir, record) = fixture();
    let pins = Pins::generate(None).unwrap();
    let spec = spec();
    let card = facts();
    // Known APDUs: SELECT 1 + channel 2 + PUT DATA 1 + EF.ID (SELECT + 1)
    // + EF.FACE (SELECT + n) + 2 keys + 3 PINs + 2 SET STATUS = 14 + n.
    // n = ⌈6005 / 239⌉ = 26 on A and C, ⌈6005 / 2031⌉ = 3 on B.
    for (id, face_updates, total) in [
        ("vendor-a", 26, 40),
        ("vendor-b", 3, 17),
        ("vendor-c", 26, 40),
    ] {
        let profile = spec.profile(id).unwrap();
        let plan = plan::build(&PlanInput {
            record: &record,
            profile,
            card: &card,
            lifecycle: Lifecycle::PrePersonalized,
            rewrite: false,
            pins: &pins,
        })
        .unwrap();
        let face = plan
            .steps
            .iter()
            .find(|s| s.name == "write EF.FACE")
            .unwrap();
        let Action::Send(cmds) = &face.action else {
            panic!("face is known in advance")
        };
        assert_eq!(cmds.len(), 1 + face_updates, "{id}");
        let written: usize = cmds.iter().skip(1).map(|c| c.data().len()).sum();
        assert_eq!(written, EF_FACE_LEN, "{id}");
        let counts = plan.counts();
        assert_eq!(counts.apdus, total, "{id}");
        assert_eq!(counts.placeholders, 3, "{id}");
        assert_eq!(plan.files[0].1.len(), EF_ID_LEN, "{id}");
        // UPDATE BINARY at offsets 0, chunk, 2·chunk… (P1-P2, spec §8.3).
        assert_eq!(
            (cmds[2].p1(), cmds[2].p2()),
            ((plan.chunk >> 8) as u8, plan.chunk as u8)
        );
        // Extended length only where the profile has it.
        assert_eq!(cmds[1].is_extended(), id == "vendor-b", "{id}");
    }
}

#[test]
fn fixed_commands_have_the_bytes_of_the_spec() {
    let (_dir, record) = fixture();
    let pins = Pins::generate(Some(&Pin::parse("4821").unwrap())).unwrap();
    let spec = spec();
    let profile = spec.profile("vendor-b").unwrap();
    let plan = plan::build(&PlanInput {
        record: &record,
        profile,
        card: &facts(),
        lifecycle: Lifecycle::PrePersonalized,
        rewrite: false,
        pins: &pins,
    })
    .unwrap();
    let find = |name: &str| {
        plan.steps
            .iter()
            .find(|s| s.name == name)
            .unwrap()
            .action
            .clone()
    };
    let Action::Send(put) = find("set CRN") else {
        panic!()
    };
    // PUT DATA DF72 with the 10 ASCII digits (spec §6.2).
    assert_eq!(
        hex::encode_upper(put[0].to_vec()),
        "00DADF720A30303030303030303138"
    );
    let Action::Send(id_pin) = find("set ID PIN") else {
        panic!()
    };
    // CHANGE REFERENCE DATA P1=01 P2=81, PIN block "4821" FF FF FF FF (spec §3, §8.7).
    assert_eq!(
        hex::encode_upper(id_pin[0].to_vec()),
        "002401810834383231FFFFFFFF"
    );
    assert!(id_pin[0].is_sensitive());
    let Action::Send(lock) = find("set status LOCKED") else {
        panic!()
    };
    assert_eq!(hex::encode_upper(lock[0].to_vec()), "80F04083");
    let Action::PublicKey(_, gen) = find("generate authentication key") else {
        panic!()
    };
    // Vendor B's RSA-2048 public key (270 bytes) needs an extended Le
    // (ISO 7816-4 §5.1, case 2E: 00 Le1 Le2): the profile's 2048.
    assert_eq!(hex::encode_upper(gen.to_vec()), "00478001000800");
}

#[test]
fn personalized_card_cannot_regenerate_keys_so_the_plan_reads_them() {
    let (_dir, record) = fixture();
    let pins = Pins::generate(None).unwrap();
    let spec = spec();
    let plan = plan::build(&PlanInput {
        record: &record,
        profile: spec.profile("vendor-c").unwrap(),
        card: &facts(),
        lifecycle: Lifecycle::Personalized,
        rewrite: true,
        pins: &pins,
    })
    .unwrap();
    let names: Vec<&str> = plan.steps.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"read authentication key"));
    assert!(!names.contains(&"generate authentication key"));
    assert!(!names.contains(&"set status PERSONALIZED"));
    // Rewriting cuts each file to its new length: ERASE BINARY at 146 = 0x0092.
    let Action::Send(id) = &plan
        .steps
        .iter()
        .find(|s| s.name == "write EF.ID")
        .unwrap()
        .action
    else {
        panic!()
    };
    assert_eq!(hex::encode_upper(id.last().unwrap().to_vec()), "000E0092");
}

#[test]
fn dry_run_print_shows_steps_but_no_pin_digits() {
    let (_dir, record) = fixture();
    let pins = Pins::generate(Some(&Pin::parse("73914628").unwrap())).unwrap();
    let spec = spec();
    let plan = plan::build(&PlanInput {
        record: &record,
        profile: spec.profile("vendor-a").unwrap(),
        card: &facts(),
        lifecycle: Lifecycle::PrePersonalized,
        rewrite: false,
        pins: &pins,
    })
    .unwrap();
    let printed = plan.to_string();
    assert!(printed.contains("set ID PIN"));
    assert!(printed.contains("00A4040C0F4E49442C56454E444F522D41202020\n")); // SELECT applet (P2 0C, no Le), vendor A AID
    assert_eq!(printed.matches("redacted").count(), 3);
    assert!(!printed.contains("73914628"), "ID PIN digits printed");
    // The PIN blocks as they would appear in hex (random SIGN PIN and PUK included).
    for secret in [&pins.id_pin, &pins.sign_pin, &pins.puk] {
        assert!(
            !printed.contains(&hex::encode_upper(secret.expose())),
            "PIN block printed"
        );
    }
    assert!(!format!("{plan:?}").contains(&hex::encode_upper(pins.puk.expose())));
}

#[test]
fn executed_session_sends_the_planned_updates_and_no_more() {
    let (_dir, record) = fixture();
    let issuer_dir = tempfile::tempdir().unwrap();
    let issuer = demo_issuer(issuer_dir.path());
    let spec = spec();
    for id in ["vendor-a", "vendor-b", "vendor-c"] {
        let profile = spec.profile(id).unwrap();
        let mut sim = sim_for(&issuer, profile, 7);
        sim.set_latency(kart_sim::LatencyMode::Accounted);
        let mut card = Card::with_caps(&mut sim, profile.caps());
        let info = probe(&mut card, profile).unwrap();
        let crn = Crn::parse("0000000026").unwrap();
        let pins = Pins::generate(None).unwrap();
        let now = time::OffsetDateTime::now_utc();
        let outcome = personalize(
            &mut card,
            profile,
            &issuer,
            &info,
            &Job::new(&record, &crn, &pins, now.date()),
            now,
        )
        .unwrap();
        let chunk = max_write_chunk(profile);
        let expected: usize = outcome
            .files
            .iter()
            .map(|(_, d)| d.len().div_ceil(chunk))
            .sum();
        // The simulator's own log counts UPDATE BINARY (INS D6) commands it answered.
        assert_eq!(card.transport().log().count(0xD6), expected, "{id}");
        assert_eq!(
            outcome.files.len(),
            5,
            "{id}: ID, FACE, CERT_AUTH, CERT_SIGN, SOD"
        );
        // For the report (`cargo test --test perso_plan -- --nocapture`).
        let c = outcome.counters;
        eprintln!(
            "{id}: {} APDUs ({} GET RESPONSE), {} bytes sent, {} received, modelled card time {:?}",
            c.apdus,
            c.get_responses,
            c.bytes_sent,
            c.bytes_received,
            card.transport().modelled_time()
        );
    }
}

proptest::proptest! {
    /// Any file splits into ⌈len / chunk⌉ UPDATE BINARY commands after its
    /// SELECT, each within the chunk, at consecutive offsets, covering it exactly.
    #[test]
    fn update_binary_covers_any_file_in_the_fewest_commands(
        len in 1usize..21_000,
        chunk in proptest::sample::select(vec![239usize, 2031]),
    ) {
        let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
        let cmds = kart_perso::plan::update_binary(0x0102, &data, chunk).unwrap();
        proptest::prop_assert_eq!(cmds.len(), 1 + len.div_ceil(chunk));
        proptest::prop_assert_eq!(cmds[0].to_vec(), vec![0x00, 0xA4, 0x02, 0x0C, 0x02, 0x01, 0x02]);
        let mut rebuilt = Vec::new();
        for cmd in &cmds[1..] {
            let offset = usize::from(u16::from_be_bytes([cmd.p1(), cmd.p2()]));
            proptest::prop_assert_eq!(offset, rebuilt.len());
            proptest::prop_assert!(cmd.data().len() <= chunk);
            rebuilt.extend_from_slice(cmd.data());
        }
        proptest::prop_assert_eq!(rebuilt, data);
    }
}

/// The fewest APDUs a personalization can take under the profile's limits
/// and the applet spec's command set alone (BENCHMARKS.md table 1), for
/// files of these lengths; computed here without the plan.
fn minimum_apdus(profile: &kart_spec::Profile, file_lengths: &[usize]) -> u64 {
    let form = if profile.limits.extended_length {
        65_535
    } else {
        255
    };
    let max = profile.limits.max_command_data.min(form);
    let block = match profile.secure_channel.scp {
        kart_spec::Scp::Scp02 => 8,
        kart_spec::Scp::Scp03 => 16,
    };
    // C-MAC (8 bytes) and C-DEC padding (ISO 9797-1 method 2: at least one byte).
    let chunk = (max - 8) / block * block - 1;
    // SELECT applet, INITIALIZE UPDATE, EXTERNAL AUTHENTICATE, PUT DATA CRN,
    // GENERATE ×2, CHANGE REFERENCE DATA ×3, SET STATUS ×2 (07→0F→83).
    let mut n = 11;
    // A card that answers data only through GET RESPONSE forces one for each
    // command that has data and answers data: INITIALIZE UPDATE and both
    // GENERATE commands (their data field is the C-MAC).
    if profile.quirks.get_response {
        n += 3;
    }
    for len in file_lengths {
        // SELECT (no short EF identifiers) + UPDATE BINARY parts.
        n += 1 + len.div_ceil(chunk);
    }
    n as u64
}

#[test]
fn every_profile_personalizes_in_exactly_the_minimum_apdus() {
    let (_dir, record) = fixture();
    let issuer_dir = tempfile::tempdir().unwrap();
    let issuer = demo_issuer(issuer_dir.path());
    let spec = spec();
    assert!(!spec.profiles.is_empty());
    for profile in &spec.profiles {
        let mut sim = sim_for(&issuer, profile, 9);
        let mut card = Card::with_caps(&mut sim, profile.caps());
        let info = probe(&mut card, profile).unwrap();
        let crn = Crn::parse("0000000034").unwrap();
        let pins = Pins::generate(None).unwrap();
        let now = time::OffsetDateTime::now_utc();
        let outcome = personalize(
            &mut card,
            profile,
            &issuer,
            &info,
            &Job::new(&record, &crn, &pins, now.date()),
            now,
        )
        .unwrap();
        let lengths: Vec<usize> = outcome.files.iter().map(|(_, d)| d.len()).collect();
        assert_eq!(
            outcome.counters.apdus,
            minimum_apdus(profile, &lengths),
            "{}: APDUs on the wire against the minimum its limits allow",
            profile.id
        );
    }
}
