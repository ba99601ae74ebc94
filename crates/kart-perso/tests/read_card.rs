//! Reading simulated cards: content equals what was written, reads stay
//! within each profile's chunk size, and a card that answers garbage, leaves
//! the reader or is blank gives a typed error or a clear report — no panic.

use kart_apdu::{Card, CardCaps, CardError, Transport, TransportError};
use kart_perso::read::{read_card, FileContent, Lifecycle, PinStatus, ReadError};
use kart_perso::record::Pin;
use kart_perso::verify::{verify_card, Outcome};
use kart_sim::{Faults, SimCard};
use kart_testkit::cards::*;
use proptest::prelude::*;
use time::OffsetDateTime;

#[test]
fn reads_back_what_was_written_within_each_profiles_chunk() {
    let now = OffsetDateTime::now_utc();
    let (_dir, pki) = issuer(now);
    let spec = spec();
    for p in &spec.profiles {
        let id = p.id.as_str();
        let (mut sim, data) = genuine(id, &pki, now);
        let chunk = profile(id).quirks.max_read_chunk;
        let pin = Pin::parse(ID_PIN).unwrap();
        let mut rec = Recorder::new(&mut sim);
        let mut card = Card::new(&mut rec);
        let content = read_card(&mut card, &spec, None, Some(&pin)).unwrap();

        assert_eq!(content.profile, id);
        assert_eq!(content.lifecycle, Lifecycle::Locked);
        assert_eq!(content.pin, PinStatus::Verified);
        assert_eq!(content.csn, data.csn);
        assert_eq!(content.cplc.len(), 42);
        assert_eq!(content.crn.as_deref(), Some(CRN));
        for (fid, bytes) in &data.files {
            let file = content.files.iter().find(|f| f.fid == *fid).unwrap();
            assert_eq!(
                file.content,
                FileContent::Data(bytes.clone()),
                "{id} {}",
                file.name
            );
        }
        assert_eq!(
            content.file("EF.FINGER").unwrap().content,
            FileContent::Empty
        );
        // EF.PIN_STATUS: ID PIN 3 tries, set (spec §6.1).
        assert_eq!(&content.data("EF.PIN_STATUS").unwrap()[..2], &[3, 1]);
        let face = data.file(0x0102);
        assert_eq!(content.photo().unwrap(), &face[5..]); // 5F2E 82 LL LL
        assert_eq!(content.identity().unwrap().unwrap().crn, CRN);

        // EF.FACE (3009 bytes) takes ceil(3009 / chunk) reads: 13 of 248 bytes
        // on vendor-a, whose last short read is re-sent once with the exact
        // Le after 6Cxx; 2 of 2048 on vendor-b; 12 of 256 on vendor-c;
        // 12 of 254 on vendor-d, also 6Cxx, so 13.
        let resent = p.quirks.wrong_le == kart_spec::WrongLe::ExactLe && 3009 % chunk != 0;
        let expected = 3009usize.div_ceil(chunk) + usize::from(resent);
        match id {
            "vendor-a" => assert_eq!(expected, 14),
            "vendor-b" => assert_eq!(expected, 2),
            "vendor-c" => assert_eq!(expected, 12),
            _ => {}
        }
        assert_eq!(face.len(), 3009);
        let start = rec
            .commands
            .iter()
            .position(|c| c.starts_with(&[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x01, 0x02]))
            .unwrap();
        let face_reads = rec.commands[start + 1..]
            .iter()
            .take_while(|c| c.get(1) == Some(&0xB0))
            .count();
        assert_eq!(face_reads, expected, "{id}");
        // Every READ BINARY asked for at most the profile's chunk.
        for cmd in rec.commands.iter().filter(|c| c.get(1) == Some(&0xB0)) {
            let le = match *cmd.as_slice() {
                [_, _, _, _, 0] => 256,
                [_, _, _, _, le] => usize::from(le),
                [_, _, _, _, 0, hi, lo] => usize::from(u16::from_be_bytes([hi, lo])),
                _ => panic!("READ BINARY {cmd:02X?}"),
            };
            assert!(le <= chunk, "{id}: Le {le} above the profile's {chunk}");
        }
    }
}

#[test]
fn without_pin_protected_files_are_marked_not_read() {
    let now = OffsetDateTime::now_utc();
    let (_dir, pki) = issuer(now);
    let (mut sim, _) = genuine("vendor-b", &pki, now);
    let content = read_card(&mut Card::new(&mut sim), &spec(), None, None).unwrap();
    assert_eq!(content.pin, PinStatus::NotGiven);
    for name in ["EF.ID", "EF.FACE", "EF.FINGER"] {
        assert_eq!(
            content.file(name).unwrap().content,
            FileContent::NeedsPin,
            "{name}"
        );
    }
    assert!(content.identity().is_none() && content.photo().is_none());
    assert!(content.data("EF.SOD").is_some());
}

#[test]
fn blocked_pin_is_reported_not_retried() {
    let now = OffsetDateTime::now_utc();
    let (_dir, pki) = issuer(now);
    let (mut sim, _) = genuine("vendor-a", &pki, now);
    let wrong = Pin::parse("5555").unwrap();
    let tries: Vec<PinStatus> = (0..4)
        .map(|_| {
            read_card(&mut Card::new(&mut sim), &spec(), None, Some(&wrong))
                .unwrap()
                .pin
        })
        .collect();
    assert_eq!(
        tries,
        [
            PinStatus::Wrong { tries_left: 2 },
            PinStatus::Wrong { tries_left: 1 },
            PinStatus::Wrong { tries_left: 0 },
            PinStatus::Blocked
        ]
    );
    assert!(PinStatus::Blocked.to_string().contains("PUK"));
}

#[test]
fn blank_card_reads_as_unpersonalized_and_fails_verification() {
    let now = OffsetDateTime::now_utc();
    let (_dir, pki) = issuer(now);
    let p = profile("vendor-c");
    let mut sim = SimCard::new(&p).unwrap();
    let content = read_card(&mut Card::new(&mut sim), &spec(), None, None).unwrap();
    assert_eq!(content.lifecycle, Lifecycle::PrePersonalized);
    assert_eq!(content.crn, None);
    assert_eq!(content.file("EF.SOD").unwrap().content, FileContent::Empty);
    let verdict = verify_card(&mut sim, &trust(&pki), None, now).unwrap();
    assert!(!verdict.is_genuine());
    assert_eq!(
        verdict.check("sod.parse").unwrap().outcome,
        Outcome::Fail("EF.SOD is empty or unreadable".into())
    );
    assert!(matches!(
        verdict.check("aa").unwrap().outcome,
        Outcome::Skipped(_)
    ));
}

#[test]
fn card_pulled_mid_read_is_a_typed_error() {
    let now = OffsetDateTime::now_utc();
    let (_dir, pki) = issuer(now);
    let (mut sim, _) = genuine("vendor-a", &pki, now);
    // The simulator numbers APDUs from its creation; its log has them all.
    let sixth = sim.log().apdus() as u64 + 6;
    sim.set_faults(Faults::default().pull_after(sixth));
    let err = verify_card(&mut sim, &trust(&pki), None, now).unwrap_err();
    let kart_perso::verify::VerifyError::Read(ReadError::Card { source, .. }) = &err else {
        panic!("{err:?}");
    };
    assert_eq!(source, &CardError::Transport(TransportError::CardRemoved));
}

#[test]
fn garbage_answers_are_a_typed_error_at_every_point() {
    let now = OffsetDateTime::now_utc();
    let (_dir, pki) = issuer(now);
    let (mut sim, _) = genuine("vendor-b", &pki, now);
    let pin = Pin::parse(ID_PIN).unwrap();
    // A whole verification with the PIN takes 22 APDUs on vendor-b.
    for from in 1..=22 {
        sim.reinsert();
        let at = sim.log().apdus() as u64 + from;
        sim.set_faults(Faults::default().garbage_from(at));
        let result = verify_card(&mut sim, &trust(&pki), Some(&pin), now);
        assert!(
            result.is_err() || !result.unwrap().is_genuine(),
            "garbage from APDU {from}"
        );
    }
}

/// A hostile card: a well-formed applet whose READ BINARY always answers
/// 256 bytes, whatever Le asked for and however far the offset goes.
struct Overflowing;

impl Transport for Overflowing {
    fn transmit(&mut self, apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
        rx.clear();
        match apdu.get(1..4) {
            Some([0xCA, 0x9F, 0x7F]) => {
                rx.extend([0x9F, 0x7F, 42]);
                rx.extend([0x11; 42]);
            }
            Some([0xCA, 0xDF, 0x71]) => rx.extend([0xDF, 0x71, 1, 0x83]),
            Some([0xCA, 0xDF, 0x72]) => {
                rx.extend([0xDF, 0x72, 10]);
                rx.extend(b"1234567890");
            }
            Some([0xB0, ..]) => rx.extend([0x5A; 256]),
            _ => {}
        }
        rx.extend([0x90, 0x00]);
        Ok(())
    }
}

#[test]
fn a_card_that_returns_more_than_the_file_can_hold_is_refused() {
    let err = read_card(&mut Card::new(Overflowing), &spec(), None, None).unwrap_err();
    // EF.PIN_STATUS is the first file readable without a PIN: 6 bytes at most.
    assert_eq!(
        err,
        ReadError::FileTooLong {
            file: "EF.PIN_STATUS".into(),
            max: 6
        }
    );
    assert!(err.to_string().contains("6-byte capacity"));
}

/// A card that answers whatever the test gives it, in turn.
struct Scripted {
    answers: Vec<Vec<u8>>,
    next: usize,
}

impl Transport for Scripted {
    fn transmit(&mut self, _: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
        rx.clear();
        match self.answers.get(self.next) {
            Some(a) => rx.extend_from_slice(a),
            None => return Err(TransportError::CardRemoved),
        }
        self.next += 1;
        Ok(())
    }
    fn capabilities(&self) -> CardCaps {
        CardCaps::SHORT_ONLY
    }
}

fn answer() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Plausible: data then a status word the spec uses.
        (
            proptest::collection::vec(any::<u8>(), 0..64),
            prop::sample::select(vec![
                [0x90, 0x00],
                [0x62, 0x82],
                [0x6B, 0x00],
                [0x6A, 0x82],
                [0x6A, 0x88],
                [0x69, 0x82],
                [0x63, 0xC1],
                [0x61, 0x10],
                [0x6C, 0x08],
                [0x67, 0x00],
            ]),
        )
            .prop_map(|(mut d, sw)| {
                d.extend(sw);
                d
            }),
        // Anything at all, short answers included.
        proptest::collection::vec(any::<u8>(), 0..8),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn nonsense_answers_never_panic(answers in proptest::collection::vec(answer(), 0..40)) {
        let now = OffsetDateTime::now_utc();
        let root = kart_perso::pki::Certificate::from_der(ROOT_DER.to_vec()).unwrap();
        let trust = kart_perso::verify::TrustAnchors::new(root);
        let pin = Pin::parse("1234").unwrap();
        let card = Scripted { answers, next: 0 };
        if let Ok(verdict) = verify_card(card, &trust, Some(&pin), now) {
            prop_assert!(!verdict.is_genuine());
        }
    }
}

/// A self-signed P-256 CA certificate made with
/// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=test-root -days 3650 -outform DER`.
const ROOT_DER: &[u8] = include_bytes!("fixtures/verify/test-root.der");
