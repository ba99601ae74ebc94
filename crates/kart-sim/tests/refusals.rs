//! Every refusal the spec names, answered with the status word it names.
//! Raw APDUs straight to the simulator; each status word is also checked
//! against the command's list in nid-applet.toml.

use kart_sim::vpcd::VirtualCard;
use kart_sim::SimCard;
use kart_testkit::raw::*;

fn test_mode(id: &str) -> SimCard {
    with_applet_selected(SimCard::new(&profile(id)).unwrap().with_test_mode_writes())
}

/// A test-mode card with its PINs set (ID 1234, SIGN 123456, PUK 12345678).
fn with_pins(id: &str) -> SimCard {
    let mut sim = test_mode(id);
    for (reference, block) in [
        (0x81, pin_block("1234")),
        (0x82, pin_block("123456")),
        (0x83, b"12345678".to_vec()),
    ] {
        let apdu = case3(0, 0x24, 0x01, reference, &block);
        expect_sw(&mut sim, "CHANGE REFERENCE DATA", &apdu, 0x9000);
    }
    sim
}

#[test]
fn personalization_writes_need_a_secure_channel() {
    for id in &profile_ids() {
        let mut sim = selected(id);
        expect_all(
            &mut sim,
            &[
                ("SELECT", select_fid(0x0101), 0x9000),
                ("UPDATE BINARY", case3(0, 0xD6, 0, 0, b"x"), 0x6982),
                ("ERASE BINARY", vec![0, 0x0E, 0, 0], 0x6982),
                (
                    "PUT DATA",
                    case3(0, 0xDA, 0xDF, 0x72, b"1234567890"),
                    0x6982,
                ),
                (
                    "GENERATE ASYMMETRIC KEY PAIR",
                    vec![0, 0x47, 0x80, 0x01, 0x00],
                    0x6982,
                ),
                (
                    "CHANGE REFERENCE DATA",
                    case3(0, 0x24, 0x01, 0x81, &pin_block("1234")),
                    0x6982,
                ),
                ("SET STATUS", vec![0x84, 0xF0, 0x40, 0x0F], 0x6982),
            ],
        );
        // A secured command with no channel open.
        expect_sw(
            &mut sim,
            "UPDATE BINARY",
            &case3(0x04, 0xD6, 0, 0, &[0; 9]),
            0x6982,
        );
    }
}

#[test]
fn file_and_application_selection() {
    let mut sim = selected("vendor-b");
    expect_all(
        &mut sim,
        &[
            ("SELECT", select_fid(0x0999), 0x6A82),
            ("SELECT", select_aid(&[0xA0, 0, 0, 0, 0x99, 0x01]), 0x6A82),
            ("SELECT", vec![0, 0xA4, 0x02, 0x0C, 0x01, 0x01], 0x6700),
            (
                "SELECT",
                vec![0, 0xA4, 0x01, 0x0C, 0x02, 0x01, 0x01],
                0x6A86,
            ),
        ],
    );
    // The previous selection survived the failed SELECT: the FID still resolves.
    expect_sw(&mut sim, "SELECT", &select_fid(0x011D), 0x9000);
    // READ BINARY with no current EF, after re-selecting the applet.
    let aid = profile("vendor-b").applet_aid.bytes().to_vec();
    expect_all(
        &mut sim,
        &[
            ("SELECT", select_aid(&aid), 0x9000),
            ("READ BINARY", vec![0, 0xB0, 0, 0, 0x10], 0x6986),
        ],
    );
    // SELECT with FCI: 6F { 84 AID, 8A lifecycle }.
    let mut fci = select_aid(&aid);
    fci[3] = 0x00;
    // Without Le (case 3) the applet is selected but no FCI returned (README §8).
    let (data, sw) = raw(&mut sim, &fci);
    assert_eq!(
        (data.as_slice(), sw),
        (&[][..], 0x9000),
        "SELECT P2=00 without Le"
    );
    fci.push(0x00);
    let data = expect_sw(&mut sim, "SELECT", &fci, 0x9000);
    let mut want = tlv(&[0x84], &aid);
    want.extend_from_slice(&[0x8A, 0x01, 0x07]);
    assert_eq!(data, tlv(&[0x6F], &want));
}

#[test]
fn unknown_instruction_class_and_channel() {
    let mut sim = selected("vendor-b");
    expect_all(
        &mut sim,
        &[
            ("SELECT", vec![0x00, 0x7E, 0x00, 0x00], 0x6D00),
            (
                "SELECT",
                select_aid(&[0; 5])
                    .iter()
                    .enumerate()
                    .map(|(i, b)| if i == 0 { 0x40 } else { *b })
                    .collect::<Vec<_>>(),
                0x6E00,
            ),
            ("SELECT", vec![0x01, 0xA4, 0x04, 0x0C, 0x01, 0x00], 0x6881),
        ],
    );
    // Fewer than four bytes is not a command.
    expect_sw(&mut sim, "SELECT", &[0x00, 0xA4], 0x6700);
}

#[test]
fn read_binary_at_and_past_the_end() {
    // vendor-b answers the bytes it has with 6282; vendor-a answers 6Cxx.
    let mut b = test_mode("vendor-b");
    expect_sw(&mut b, "SELECT", &select_fid(0x011D), 0x9000);
    expect_sw(
        &mut b,
        "UPDATE BINARY",
        &case3(0, 0xD6, 0, 0, &[7; 10]),
        0x9000,
    );
    assert_eq!(
        expect_sw(&mut b, "READ BINARY", &[0, 0xB0, 0, 4, 0x20], 0x6282),
        [7; 6]
    );
    assert_eq!(
        expect_sw(&mut b, "READ BINARY", &[0, 0xB0, 0, 4, 0x06], 0x9000),
        [7; 6]
    );
    expect_sw(&mut b, "READ BINARY", &[0, 0xB0, 0, 10, 0x01], 0x6B00);
    expect_sw(&mut b, "READ BINARY", &[0, 0xB0, 0, 11, 0x01], 0x6B00);
    expect_sw(&mut b, "READ BINARY", &[0, 0xB0, 0x80, 0, 0x01], 0x6A86);

    let mut a = test_mode("vendor-a");
    expect_sw(&mut a, "SELECT", &select_fid(0x011D), 0x9000);
    expect_sw(
        &mut a,
        "UPDATE BINARY",
        &case3(0, 0xD6, 0, 0, &[7; 255]),
        0x9000,
    );
    expect_sw(
        &mut a,
        "UPDATE BINARY",
        &case3(0, 0xD6, 0, 255, &[8; 45]),
        0x9000,
    );
    // 300 bytes; a read of 256 at 0 exceeds the 248-byte chunk: 6CF8.
    expect_sw(&mut a, "READ BINARY", &[0, 0xB0, 0, 0, 0x00], 0x6CF8);
    assert_eq!(
        expect_sw(&mut a, "READ BINARY", &[0, 0xB0, 0, 0, 0xF8], 0x9000).len(),
        248
    );
    // 52 bytes remain at 248: 6C34.
    expect_sw(&mut a, "READ BINARY", &[0, 0xB0, 0, 0xF8, 0xF8], 0x6C34);
}

#[test]
fn oversized_data() {
    let mut a = test_mode("vendor-a");
    expect_sw(&mut a, "SELECT", &select_fid(0x0101), 0x9000);
    for i in 0..4u16 {
        let [p1, p2] = (i * 255).to_be_bytes();
        expect_sw(
            &mut a,
            "UPDATE BINARY",
            &case3(0, 0xD6, p1, p2, &[0x41; 255]),
            0x9000,
        );
    }
    // EF.ID holds 1024 bytes: 1020 + 5 does not fit.
    expect_sw(
        &mut a,
        "UPDATE BINARY",
        &case3(0, 0xD6, 0x03, 0xFC, &[0x42; 5]),
        0x6A84,
    );
    // No holes: an offset past the current length.
    expect_sw(&mut a, "SELECT", &select_fid(0x011D), 0x9000);
    expect_sw(&mut a, "UPDATE BINARY", &case3(0, 0xD6, 0, 1, &[1]), 0x6B00);
    // An extended APDU to a short-only card.
    let mut ext = vec![0, 0xD6, 0, 0, 0, 0x01, 0x00];
    ext.extend_from_slice(&[0; 256]);
    expect_sw(&mut a, "UPDATE BINARY", &ext, 0x6700);
    let ext_small = [0, 0xD6, 0, 0, 0, 0, 1, 0x55];
    expect_sw(&mut a, "UPDATE BINARY", &ext_small, 0x6700);

    // vendor-b takes 2048 bytes in one extended APDU, not 2049.
    let mut b = test_mode("vendor-b");
    expect_sw(&mut b, "SELECT", &select_fid(0x0201), 0x9000);
    let ext = |n: usize| {
        let mut v = vec![0, 0xD6, 0, 0, 0, (n >> 8) as u8, n as u8];
        v.extend(std::iter::repeat_n(0x30, n));
        v
    };
    expect_sw(&mut b, "UPDATE BINARY", &ext(2049), 0x6700);
    expect_sw(&mut b, "UPDATE BINARY", &ext(2048), 0x9000);
    expect_sw(
        &mut b,
        "UPDATE BINARY",
        &case3(0, 0xD6, 0x08, 0x00, &[1]),
        0x6A84,
    );
    // A malformed Lc.
    expect_sw(&mut b, "UPDATE BINARY", &[0, 0xD6, 0, 0, 5, 1, 2], 0x6700);
}

#[test]
fn command_chaining_per_profile() {
    let part1 = case3(0x10, 0xD6, 0, 0, &[1; 200]);
    let part2 = case3(0x00, 0xD6, 0, 0, &[2; 100]);
    // Profiles without chaining refuse the first part; the others take both.
    for p in spec().profiles {
        let mut sim = test_mode(&p.id);
        expect_sw(&mut sim, "SELECT", &select_fid(0x011D), 0x9000);
        if p.limits.chaining {
            expect_sw(&mut sim, "UPDATE BINARY", &part1, 0x9000);
            expect_sw(&mut sim, "UPDATE BINARY", &part2, 0x9000);
        } else {
            expect_sw(&mut sim, "UPDATE BINARY", &part1, 0x6884);
        }
    }
    // Vendor C in detail: the chain's bytes, an interrupted chain, a long one.
    let mut c = test_mode("vendor-c");
    expect_sw(&mut c, "SELECT", &select_fid(0x011D), 0x9000);
    expect_sw(&mut c, "UPDATE BINARY", &part1, 0x9000);
    expect_sw(&mut c, "UPDATE BINARY", &part2, 0x9000);
    let mut want = vec![1; 200];
    want.extend_from_slice(&[2; 100]);
    let mut got = expect_sw(&mut c, "READ BINARY", &[0, 0xB0, 0, 0, 0], 0x9000);
    got.extend(expect_sw(
        &mut c,
        "READ BINARY",
        &[0, 0xB0, 1, 0, 0],
        0x6282,
    ));
    assert_eq!(got, want);
    // A chain interrupted by another command is dropped.
    expect_sw(&mut c, "UPDATE BINARY", &part1, 0x9000);
    expect_sw(&mut c, "GET CHALLENGE", &[0, 0x84, 0, 0, 8], 0x6883);
    // A chain longer than 4096 bytes is refused.
    let big = case3(0x10, 0xD6, 0, 0, &[3; 255]);
    let mut last = 0;
    for _ in 0..17 {
        last = raw(&mut c, &big).1;
    }
    assert_eq!(last, 0x6700);
}

#[test]
fn t0_profile_needs_get_response_for_case_4() {
    let mut a = test_mode("vendor-a");
    expect_sw(&mut a, "GET RESPONSE", &[0, 0xC0, 0, 0, 0x10], 0x6985);
    expect_sw(
        &mut a,
        "GENERATE ASYMMETRIC KEY PAIR",
        &[0, 0x47, 0x80, 0x01, 0x00],
        0x9000,
    );
    let auth = [0, 0x88, 0, 1, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0];
    assert!(expect_sw(&mut a, "INTERNAL AUTHENTICATE", &auth, 0x6140).is_empty());
    assert_eq!(
        expect_sw(&mut a, "GET RESPONSE", &[0, 0xC0, 0, 0, 0x30], 0x6110).len(),
        0x30
    );
    assert_eq!(
        expect_sw(&mut a, "GET RESPONSE", &[0, 0xC0, 0, 0, 0x10], 0x9000).len(),
        0x10
    );
    expect_sw(&mut a, "GET RESPONSE", &[0, 0xC0, 0, 0, 0x10], 0x6985);

    let mut b = test_mode("vendor-b");
    expect_sw(
        &mut b,
        "GENERATE ASYMMETRIC KEY PAIR",
        &[0, 0x47, 0x80, 0x01, 0x00],
        0x9000,
    );
    // Vendor B's holder keys are RSA-2048: one 256-byte signature block.
    assert_eq!(
        expect_sw(&mut b, "INTERNAL AUTHENTICATE", &auth, 0x9000).len(),
        256
    );
}

#[test]
fn key_generation_only_before_finalization_and_card_manager_face() {
    let p = profile("vendor-c");
    let mut sim = SimCard::new(&p).unwrap();
    // Selected at power-on: the card manager, which knows CPLC but not the applet's commands.
    let cplc = expect_sw(
        &mut sim,
        "GET DATA",
        &[0x80, 0xCA, 0x9F, 0x7F, 0x00],
        0x9000,
    );
    assert_eq!((cplc.len(), &cplc[..3]), (45, &[0x9F, 0x7F, 0x2A][..]));
    expect_all(
        &mut sim,
        &[
            ("VERIFY", vec![0, 0x20, 0, 0x81], 0x6D00),
            (
                "SELECT",
                select_aid(&[0xA0, 0, 0, 0x01, 0x51, 0, 0, 0]),
                0x9000,
            ),
        ],
    );
}

#[test]
fn pin_tries_block_and_puk_unblocks() {
    for id in &profile_ids() {
        let mut sim = with_pins(id);
        let wrong = verify_id_pin("9999");
        expect_all(
            &mut sim,
            &[
                ("VERIFY", vec![0, 0x20, 0, 0x81], 0x63C3),
                ("VERIFY", wrong.clone(), 0x63C2),
                ("VERIFY", vec![0, 0x20, 0, 0x81], 0x63C2),
            ],
        );
        // Counters are non-volatile: a reset keeps them.
        sim.reset();
        expect_all(
            &mut sim,
            &[
                ("SELECT", select_aid(profile(id).applet_aid.bytes()), 0x9000),
                ("VERIFY", wrong.clone(), 0x63C1),
                ("VERIFY", wrong.clone(), 0x63C0),
                ("VERIFY", verify_id_pin("1234"), 0x6983),
                ("VERIFY", vec![0, 0x20, 0, 0x81], 0x6983),
            ],
        );
        // Wrong PUK counts on the PUK, from 10.
        expect_sw(
            &mut sim,
            "RESET RETRY COUNTER",
            &case3(0, 0x2C, 0x01, 0x81, b"00000000"),
            0x63C9,
        );
        let mut unblock = b"12345678".to_vec();
        unblock.extend_from_slice(&pin_block("4321"));
        expect_all(
            &mut sim,
            &[
                (
                    "RESET RETRY COUNTER",
                    case3(0, 0x2C, 0x00, 0x81, &unblock),
                    0x9000,
                ),
                ("VERIFY", verify_id_pin("4321"), 0x9000),
                ("VERIFY", vec![0, 0x20, 0, 0x81], 0x9000),
            ],
        );
        // EF.PIN_STATUS: tries and state of ID, SIGN, PUK.
        expect_sw(&mut sim, "SELECT", &select_fid(0x0104), 0x9000);
        assert_eq!(
            expect_sw(&mut sim, "READ BINARY", &[0, 0xB0, 0, 0, 6], 0x9000),
            [3, 1, 3, 1, 10, 1]
        );
        expect_sw(
            &mut sim,
            "UPDATE BINARY",
            &case3(0, 0xD6, 0, 0, &[0]),
            0x6982,
        );
    }
}

#[test]
fn pin_format_errors_cost_no_try() {
    let mut sim = with_pins("vendor-c");
    expect_all(
        &mut sim,
        &[
            ("VERIFY", case3(0, 0x20, 0, 0x81, b"1234"), 0x6700),
            ("VERIFY", verify_id_pin("12"), 0x6A80),
            (
                "VERIFY",
                case3(0, 0x20, 0, 0x81, b"12a4\xFF\xFF\xFF\xFF"),
                0x6A80,
            ),
            (
                "VERIFY",
                case3(0, 0x20, 0, 0x99, &pin_block("1234")),
                0x6A88,
            ),
            (
                "VERIFY",
                case3(0, 0x20, 1, 0x81, &pin_block("1234")),
                0x6A86,
            ),
            ("VERIFY", vec![0, 0x20, 0, 0x81], 0x63C3),
        ],
    );
    // Holder PIN change: old checked like VERIFY.
    let mut change = pin_block("1111");
    change.extend_from_slice(&pin_block("5678"));
    expect_sw(
        &mut sim,
        "CHANGE REFERENCE DATA",
        &case3(0, 0x24, 0, 0x81, &change),
        0x63C2,
    );
    let mut change = pin_block("1234");
    change.extend_from_slice(&pin_block("5678"));
    expect_all(
        &mut sim,
        &[
            (
                "CHANGE REFERENCE DATA",
                case3(0, 0x24, 0, 0x81, &change),
                0x9000,
            ),
            ("VERIFY", verify_id_pin("5678"), 0x9000),
        ],
    );
}

#[test]
fn pins_not_set_and_keys_not_generated() {
    let mut sim = selected("vendor-b");
    expect_all(
        &mut sim,
        &[
            ("VERIFY", verify_id_pin("1234"), 0x6984),
            (
                "INTERNAL AUTHENTICATE",
                vec![0, 0x88, 0, 1, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0],
                0x6A88,
            ),
            (
                "INTERNAL AUTHENTICATE",
                vec![0, 0x88, 0, 1, 4, 1, 2, 3, 4, 0],
                0x6700,
            ),
            (
                "INTERNAL AUTHENTICATE",
                vec![0, 0x88, 0, 2, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0],
                0x6A86,
            ),
            (
                "GENERATE ASYMMETRIC KEY PAIR",
                vec![0, 0x47, 0x81, 0x01, 0x00],
                0x6A88,
            ),
            (
                "GENERATE ASYMMETRIC KEY PAIR",
                vec![0, 0x47, 0x81, 0x07, 0x00],
                0x6A88,
            ),
            (
                "GENERATE ASYMMETRIC KEY PAIR",
                vec![0, 0x47, 0x82, 0x01, 0x00],
                0x6A86,
            ),
            (
                "PSO COMPUTE DIGITAL SIGNATURE",
                vec![0, 0x2A, 0x9E, 0x9A, 1, 0xAA, 0],
                0x6A88,
            ),
            ("GET DATA", vec![0, 0xCA, 0xDF, 0x72, 0], 0x6A88),
            ("GET DATA", vec![0, 0xCA, 0x01, 0x02, 0], 0x6A88),
        ],
    );
}

#[test]
fn put_data_checks_the_crn() {
    let mut sim = test_mode("vendor-a");
    expect_all(
        &mut sim,
        &[
            ("PUT DATA", case3(0, 0xDA, 0xDF, 0x72, b"12345"), 0x6A80),
            (
                "PUT DATA",
                case3(0, 0xDA, 0xDF, 0x72, b"12345X7890"),
                0x6A80,
            ),
            ("PUT DATA", case3(0, 0xDA, 0xDF, 0x71, &[0x0F]), 0x6A88),
            (
                "PUT DATA",
                case3(0, 0xDA, 0xDF, 0x72, b"0123456789"),
                0x9000,
            ),
        ],
    );
    assert_eq!(
        expect_sw(&mut sim, "GET DATA", &[0, 0xCA, 0xDF, 0x72, 0x0D], 0x9000),
        tlv(&[0xDF, 0x72], b"0123456789")
    );
    // Le too small for the answer: 6Cxx with the exact length.
    expect_sw(&mut sim, "GET DATA", &[0, 0xCA, 0xDF, 0x72, 0x05], 0x6C0D);
}

#[test]
fn get_challenge_is_fresh_and_bounded() {
    let mut sim = selected("vendor-c");
    let a = expect_sw(&mut sim, "GET CHALLENGE", &[0, 0x84, 0, 0, 16], 0x9000);
    let b = expect_sw(&mut sim, "GET CHALLENGE", &[0, 0x84, 0, 0, 16], 0x9000);
    assert_eq!(a.len(), 16);
    assert_ne!(a, b);
    expect_all(
        &mut sim,
        &[
            ("GET CHALLENGE", vec![0, 0x84, 0, 0, 33], 0x6700),
            ("GET CHALLENGE", vec![0, 0x84, 0, 0], 0x6700),
            ("GET CHALLENGE", vec![0, 0x84, 1, 0, 8], 0x6A86),
        ],
    );
}

#[test]
fn lifecycle_is_one_way() {
    // Test mode has no channel, so SET STATUS goes in plain (CLA 80).
    let mut sim = test_mode("vendor-b");
    // Nothing written yet: finalizing is refused.
    expect_all(
        &mut sim,
        &[
            ("SET STATUS", vec![0x80, 0xF0, 0x40, 0x0F], 0x6985),
            ("SET STATUS", vec![0x80, 0xF0, 0x40, 0x83], 0x6985),
            ("SET STATUS", vec![0x80, 0xF0, 0x40, 0x07], 0x6985),
            ("SET STATUS", vec![0x80, 0xF0, 0x41, 0x0F], 0x6A86),
        ],
    );
    assert_eq!(
        expect_sw(&mut sim, "GET DATA", &[0, 0xCA, 0xDF, 0x71, 0], 0x9000),
        [0xDF, 0x71, 1, 0x07]
    );
}

/// Writes `data` to EF `fid` in raw 255-byte UPDATE BINARY parts (test mode).
fn put_file(sim: &mut SimCard, fid: u16, data: &[u8]) {
    expect_sw(sim, "SELECT", &select_fid(fid), 0x9000);
    expect_sw(sim, "ERASE BINARY", &[0, 0x0E, 0, 0], 0x9000);
    for (i, chunk) in data.chunks(255).enumerate() {
        let [p1, p2] = u16::try_from(i * 255).unwrap().to_be_bytes();
        expect_sw(sim, "UPDATE BINARY", &case3(0, 0xD6, p1, p2, chunk), 0x9000);
    }
}

#[test]
fn finalize_needs_files_that_decode_per_the_spec() {
    let mut sim = with_pins("vendor-a");
    expect_sw(
        &mut sim,
        "PUT DATA",
        &case3(0, 0xDA, 0xDF, 0x72, b"1234567890"),
        0x9000,
    );
    for key in [1, 2] {
        expect_sw(
            &mut sim,
            "GENERATE ASYMMETRIC KEY PAIR",
            &[0, 0x47, 0x80, key, 0],
            0x9000,
        );
    }
    put_file(&mut sim, 0x0102, &face(300));
    put_file(&mut sim, 0x0201, &tlv(&[0x30], &[1; 300]));
    put_file(&mut sim, 0x0202, &tlv(&[0x30], &[2; 300]));
    put_file(&mut sim, 0x011D, &tlv(&[0x30], &[3; 300]));
    let good = identity_record(&[0; 8]);
    let finalize = [0x80, 0xF0, 0x40, 0x0F];
    // Each of these EF.ID contents breaks one rule of README §6.1.
    let swap = |from: &[u8], to: &[u8]| {
        let at = good.windows(from.len()).position(|w| w == from).unwrap();
        let mut bad = good.clone();
        bad[at..at + to.len()].copy_from_slice(to);
        bad
    };
    for (why, bad) in [
        ("check digit", swap(b"0499370899", b"0499370898")),
        ("gender", swap(b"\xCA\x01M", b"\xCA\x01Q")),
        ("month 13", swap(b"19900810", b"19901310")),
        ("lower-case Latin", swap(b"REZAEI", b"Rezaei")),
        ("unknown tag", swap(b"\xCF\x0A", b"\xDF\x0A")),
        ("outer tag", swap(b"\xE1", b"\xE2")),
    ] {
        put_file(&mut sim, 0x0101, &bad);
        assert_eq!(
            raw(&mut sim, &finalize).1,
            0x6985,
            "EF.ID with a bad {why} must not finalize"
        );
    }
    // A facial image that is not a JPEG.
    put_file(&mut sim, 0x0101, &good);
    put_file(&mut sim, 0x0102, &tlv(&[0x5F, 0x2E], b"GIF89a...."));
    expect_sw(&mut sim, "SET STATUS", &finalize, 0x6985);
    put_file(&mut sim, 0x0102, &face(300));
    expect_all(
        &mut sim,
        &[
            ("SET STATUS", finalize.to_vec(), 0x9000),
            ("SET STATUS", finalize.to_vec(), 0x6985),
            (
                "GENERATE ASYMMETRIC KEY PAIR",
                vec![0, 0x47, 0x80, 1, 0],
                0x6985,
            ),
            ("SET STATUS", vec![0x80, 0xF0, 0x40, 0x83], 0x9000),
            ("UPDATE BINARY", case3(0, 0xD6, 0, 0, &[0x5F]), 0x6985),
            ("SET STATUS", vec![0x80, 0xF0, 0x40, 0x83], 0x6985),
        ],
    );
    assert_eq!(
        expect_sw(&mut sim, "GET DATA", &[0, 0xCA, 0xDF, 0x71, 0], 0x9000),
        [0xDF, 0x71, 1, 0x83]
    );
}
