//! Command APDU encoding and decoding against ISO/IEC 7816-4:2020 §5.1–§5.2
//! (Table 1 "Command-response pairs" and the decoding conventions after it).

use kart_apdu::{Case, Command, CommandError, CLA_CHAINING, MAX_EXTENDED_DATA};

fn enc(c: &Command) -> Vec<u8> {
    c.to_vec()
}

// §5.1 Table 1, case 1: header only, L = 0.
#[test]
fn case1_is_the_header_alone() {
    let c = Command::new(0x00, 0x70, 0x00, 0x00);
    assert_eq!(c.case(), Case::Case1);
    assert_eq!(enc(&c), [0x00, 0x70, 0x00, 0x00]);
    assert_eq!(Command::decode(&[0x00, 0x70, 0x00, 0x00]), Ok(c));
}

// Case 2S: one Le byte; Le = 00 means Ne = 256.
#[test]
fn case2_short_le_00_means_256() {
    let c = Command::new(0x00, 0xB0, 0x00, 0x00).with_le(256).unwrap();
    assert_eq!(enc(&c), [0x00, 0xB0, 0x00, 0x00, 0x00]);
    let d = Command::decode(&[0x00, 0xB0, 0x00, 0x00, 0x00]).unwrap();
    assert_eq!(
        (d.case(), d.le(), d.is_extended()),
        (Case::Case2, Some(256), false)
    );
    assert_eq!(
        Command::decode(&[0x00, 0xB0, 0x00, 0x00, 0x08])
            .unwrap()
            .le(),
        Some(8)
    );
}

// Case 2E: 00 then two Le bytes; 00 00 means Ne = 65 536.
#[test]
fn case2_extended_le_0000_means_65536() {
    let c = Command::new(0x00, 0xB0, 0x00, 0x00)
        .with_le(65_536)
        .unwrap();
    assert_eq!(enc(&c), [0x00, 0xB0, 0x00, 0x00, 0x00, 0x00, 0x00]);
    let d = Command::decode(&[0x00, 0xB0, 0x00, 0x00, 0x00, 0x01, 0x00]).unwrap();
    assert_eq!(
        (d.case(), d.le(), d.is_extended()),
        (Case::Case2, Some(256), true)
    );
    // Re-encoding keeps the extended form it was received in.
    assert_eq!(enc(&d), [0x00, 0xB0, 0x00, 0x00, 0x00, 0x01, 0x00]);
}

// Case 3S: Lc (01..FF) then Nc data bytes.
#[test]
fn case3_short() {
    let c = Command::new(0x00, 0xD6, 0x00, 0x00)
        .with_data(&[1, 2, 3])
        .unwrap();
    assert_eq!(enc(&c), [0x00, 0xD6, 0x00, 0x00, 0x03, 1, 2, 3]);
    assert_eq!(Command::decode(&enc(&c)).unwrap().case(), Case::Case3);
}

// Case 3E: 00, two Lc bytes (not 00 00), data.
#[test]
fn case3_extended_for_more_than_255_bytes() {
    let data = vec![0xAB; 300];
    let c = Command::new(0x00, 0xD6, 0x00, 0x00)
        .with_data(&data)
        .unwrap();
    let raw = enc(&c);
    assert_eq!(&raw[..7], &[0x00, 0xD6, 0x00, 0x00, 0x00, 0x01, 0x2C]);
    assert_eq!(raw.len(), 7 + 300);
    let d = Command::decode(&raw).unwrap();
    assert_eq!(
        (d.case(), d.data().len(), d.is_extended()),
        (Case::Case3, 300, true)
    );
}

// Case 4S: Lc, data, one Le byte.
#[test]
fn case4_short_select() {
    // SELECT by AID with Le = 00, as in ISO 7816-4 §11.2.2.
    let raw = [0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00, 0x00];
    let d = Command::decode(&raw).unwrap();
    assert_eq!(
        (d.case(), d.data(), d.le()),
        (Case::Case4, &[0x3F, 0x00][..], Some(256))
    );
    assert_eq!(enc(&d), raw);
}

// Case 4E: 00, two Lc bytes, data, two Le bytes (no leading 00).
#[test]
fn case4_extended_le_has_two_bytes() {
    let c = Command::new(0x00, 0x2A, 0x9E, 0x9A)
        .with_data(&[0x11; 2])
        .unwrap()
        .with_le(65_536)
        .unwrap();
    assert!(c.is_extended());
    assert_eq!(
        enc(&c),
        [0x00, 0x2A, 0x9E, 0x9A, 0x00, 0x00, 0x02, 0x11, 0x11, 0x00, 0x00]
    );
    let d = Command::decode(&enc(&c)).unwrap();
    assert_eq!((d.case(), d.le()), (Case::Case4, Some(65_536)));
    // Le above 256 alone forces the extended form.
    let e = Command::new(0x00, 0x2A, 0x9E, 0x9A)
        .with_data(&[1])
        .unwrap()
        .with_le(257)
        .unwrap();
    assert_eq!(
        enc(&e),
        [0x00, 0x2A, 0x9E, 0x9A, 0x00, 0x00, 0x01, 0x01, 0x01, 0x01]
    );
}

#[test]
fn forced_extended_encodes_small_fields_in_extended_form() {
    let c = Command::new(0x00, 0xB0, 0x00, 0x00)
        .with_le(5)
        .unwrap()
        .extended();
    assert_eq!(enc(&c), [0x00, 0xB0, 0x00, 0x00, 0x00, 0x00, 0x05]);
    // Case 1 has no length field to extend.
    assert_eq!(
        enc(&Command::new(0, 0x70, 0, 0).extended()),
        [0, 0x70, 0, 0]
    );
}

// Malformed forms: each gets its own error.
#[test]
fn fewer_than_four_bytes_is_too_short() {
    assert_eq!(
        Command::decode(&[0x00, 0xA4, 0x04]),
        Err(CommandError::TooShort(3))
    );
    assert_eq!(Command::decode(&[]), Err(CommandError::TooShort(0)));
}

#[test]
fn short_lc_larger_than_the_data_is_an_lc_mismatch() {
    assert_eq!(
        Command::decode(&[0x00, 0xD6, 0x00, 0x00, 0x05, 1, 2]),
        Err(CommandError::LcMismatch {
            declared: 5,
            actual: 2
        })
    );
}

#[test]
fn bytes_beyond_lc_and_le_are_an_lc_mismatch() {
    assert_eq!(
        Command::decode(&[0x00, 0xD6, 0x00, 0x00, 0x01, 1, 2, 3, 4]),
        Err(CommandError::LcMismatch {
            declared: 1,
            actual: 4
        })
    );
}

#[test]
fn extended_lc_truncated_data_is_an_lc_mismatch() {
    assert_eq!(
        Command::decode(&[0x00, 0xD6, 0x00, 0x00, 0x00, 0x01, 0x00, 1, 2]),
        Err(CommandError::LcMismatch {
            declared: 256,
            actual: 2
        })
    );
}

#[test]
fn extended_lc_of_zero_is_refused() {
    assert_eq!(
        Command::decode(&[0x00, 0xD6, 0x00, 0x00, 0x00, 0x00, 0x00, 0xAA]),
        Err(CommandError::ZeroExtendedLc)
    );
}

#[test]
fn two_byte_body_starting_with_00_is_a_truncated_extended_length() {
    assert_eq!(
        Command::decode(&[0x00, 0xB0, 0x00, 0x00, 0x00, 0x10]),
        Err(CommandError::TruncatedExtendedLength)
    );
}

#[test]
fn short_lc_with_two_byte_le_is_mixing_forms() {
    assert_eq!(
        Command::decode(&[0x00, 0xA4, 0x04, 0x00, 0x01, 0xAA, 0x00, 0x00]),
        Err(CommandError::MixedLengthForms)
    );
}

#[test]
fn extended_lc_with_one_byte_le_is_mixing_forms() {
    assert_eq!(
        Command::decode(&[0x00, 0xA4, 0x04, 0x00, 0x00, 0x00, 0x01, 0xAA, 0x00]),
        Err(CommandError::MixedLengthForms)
    );
}

#[test]
fn data_over_65535_bytes_is_refused() {
    let big = vec![0; MAX_EXTENDED_DATA + 1];
    assert_eq!(
        Command::new(0, 0xD6, 0, 0).with_data(&big).err(),
        Some(CommandError::DataTooLong(65_536))
    );
    assert!(Command::new(0, 0xD6, 0, 0).with_data(&big[1..]).is_ok());
}

#[test]
fn le_of_zero_or_above_65536_is_refused() {
    assert_eq!(
        Command::new(0, 0xB0, 0, 0).with_le(0).err(),
        Some(CommandError::LeOutOfRange(0))
    );
    assert_eq!(
        Command::new(0, 0xB0, 0, 0).with_le(65_537).err(),
        Some(CommandError::LeOutOfRange(65_537))
    );
}

#[test]
fn encode_into_a_small_buffer_says_how_much_is_needed() {
    let c = Command::new(0, 0xA4, 4, 0).with_data(&[1, 2, 3]).unwrap();
    let mut buf = [0u8; 5];
    assert_eq!(
        c.encode(&mut buf),
        Err(CommandError::BufferTooSmall {
            needed: 8,
            available: 5
        })
    );
}

// §5.4.1: b5 of an interindustry CLA marks "not the last command of a chain".
#[test]
fn chaining_bit_is_b5() {
    assert_eq!(CLA_CHAINING, 0x10);
    assert_eq!(
        Command::new(0x00, 0xDB, 0x3F, 0xFF)
            .with_cla(CLA_CHAINING)
            .cla(),
        0x10
    );
}

#[test]
fn sensitive_data_is_not_in_debug_output() {
    let c = Command::new(0x00, 0x20, 0x00, 0x81)
        .with_data(b"424242")
        .unwrap()
        .sensitive();
    let shown = format!("{c:?}");
    assert!(!shown.contains("343234323432"), "{shown}");
    assert!(shown.contains("6 bytes redacted"), "{shown}");
    let plain = Command::new(0x00, 0x20, 0x00, 0x81)
        .with_data(b"42")
        .unwrap();
    assert!(format!("{plain:?}").contains("3432"));
}
