//! BER-TLV helpers (ISO/IEC 7816-4:2020 §6.3). Expected bytes come from
//! OpenSSL 3 (`openssl asn1parse -genconf`), an independent DER encoder;
//! DER is a subset of the BER-TLV that ISO 7816-4 uses.

use kart_apdu::tlv::{self, TlvError, Value, MAX_DEPTH, MAX_OBJECTS};

/// `openssl asn1parse -genconf` of:
/// SEQUENCE { `UTF8String` "kart", SEQUENCE { INTEGER 1234, OCTET STRING 00112233 } }
const OPENSSL_NESTED: &str = "30120c046b617274300a020204d2040400112233";

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

#[test]
fn builds_what_openssl_encodes() {
    let built = tlv::constructed(
        0x30,
        vec![
            tlv::primitive(0x0C, b"kart").unwrap(),
            tlv::constructed(
                0x30,
                vec![
                    tlv::primitive(0x02, &[0x04, 0xD2]).unwrap(),
                    tlv::primitive(0x04, &[0x00, 0x11, 0x22, 0x33]).unwrap(),
                ],
            )
            .unwrap(),
        ],
    )
    .unwrap();
    assert_eq!(hex::encode(tlv::to_vec(&built)), OPENSSL_NESTED);
    assert_eq!(tlv::parse(&unhex(OPENSSL_NESTED)).unwrap(), built);
}

#[test]
fn finds_values_by_tag_path() {
    let root = tlv::parse(&unhex(OPENSSL_NESTED)).unwrap();
    assert_eq!(tlv::value_at(&root, &[0x30, 0x0C]).unwrap(), b"kart");
    assert_eq!(
        tlv::value_at(&root, &[0x30, 0x30, 0x04]).unwrap(),
        &[0, 0x11, 0x22, 0x33]
    );
    assert_eq!(
        tlv::value_at(&root, &[0x30, 0x30, 0x05]),
        Err(TlvError::NotFound(vec![0x30, 0x30, 0x05]))
    );
    assert_eq!(
        tlv::value_at(&root, &[0x30, 0x30]),
        Err(TlvError::NotPrimitive(vec![0x30, 0x30]))
    );
    assert_eq!(
        tlv::value_at(&root, &[0x7F49]),
        Err(TlvError::NotFound(vec![0x7F49]))
    );
    assert!(tlv::find(&root, &[]).is_none());
    assert_eq!(
        tlv::tag_number(tlv::find(&root, &[0x30, 0x30]).unwrap()),
        0x30
    );
}

#[test]
fn two_byte_tags_and_long_lengths() {
    // 7F49 { 86 <65 bytes> } as an uncompressed P-256 point in a public key template.
    let mut point = vec![0x04];
    point.extend_from_slice(&[0x42; 64]);
    let key = tlv::constructed(0x7F49, vec![tlv::primitive(0x86, &point).unwrap()]).unwrap();
    let bytes = tlv::to_vec(&key);
    assert_eq!(&bytes[..5], &[0x7F, 0x49, 0x43, 0x86, 0x41]);
    assert_eq!(
        tlv::value_at(&tlv::parse(&bytes).unwrap(), &[0x7F49, 0x86]).unwrap(),
        &point[..]
    );
    // 300-byte value: length 82 01 2C (§6.3, Table 8).
    let big = tlv::primitive(0x5F2E, &[0; 300]).unwrap();
    assert_eq!(&tlv::to_vec(&big)[..5], &[0x5F, 0x2E, 0x82, 0x01, 0x2C]);
}

// The crate's own encoder miscounts a 127-byte value inside a constructed
// object; ours must match OpenSSL (`openssl asn1parse -genstr` gives 04 7F).
#[test]
fn a_127_byte_value_nests_correctly() {
    let inner = tlv::primitive(0x04, &[0x41; 127]).unwrap();
    let outer = tlv::constructed(0x30, vec![inner]).unwrap();
    let bytes = tlv::to_vec(&outer);
    assert_eq!(&bytes[..5], &[0x30, 0x81, 0x81, 0x04, 0x7F]);
    assert_eq!(bytes.len(), 3 + 2 + 127);
    assert_eq!(tlv::parse(&bytes).unwrap(), outer);
}

#[test]
fn parse_all_reads_a_sequence_and_refuses_a_bad_tail() {
    let objs = tlv::parse_all(&[0x80, 0x01, 0xAA, 0x81, 0x00]).unwrap();
    assert_eq!(objs.len(), 2);
    assert_eq!(
        tlv::find_in(&objs, &[0x81]).map(tlv::tag_number),
        Some(0x81)
    );
    assert!(tlv::parse_all(&[]).unwrap().is_empty());
    assert_eq!(
        tlv::parse_all(&[0x80, 0x01, 0xAA, 0x81, 0x02, 0x00]),
        Err(TlvError::Truncated {
            offset: 3,
            field: "value"
        })
    );
}

#[test]
fn strict_framing_errors() {
    assert_eq!(tlv::parse(&[]), Err(TlvError::Empty));
    assert_eq!(
        tlv::parse(&[0x80, 0x01, 0xAA, 0x00]),
        Err(TlvError::TrailingBytes(1))
    );
    assert_eq!(
        tlv::parse(&[0x30, 0x80, 0x00, 0x00]),
        Err(TlvError::IndefiniteLength(0))
    );
    assert_eq!(
        tlv::parse(&[0x80, 0x82, 0x01]),
        Err(TlvError::Truncated {
            offset: 0,
            field: "length"
        })
    );
    assert_eq!(
        tlv::parse(&[0x7F]),
        Err(TlvError::Truncated {
            offset: 0,
            field: "tag"
        })
    );
    assert_eq!(
        tlv::parse(&[0x80]),
        Err(TlvError::Truncated {
            offset: 0,
            field: "length"
        })
    );
    assert_eq!(
        tlv::parse(&[0x80, 0x03, 0x01]),
        Err(TlvError::Truncated {
            offset: 0,
            field: "value"
        })
    );
    assert_eq!(
        tlv::parse(&[0x80, 0x85, 0, 0, 0, 0, 1, 0]),
        Err(TlvError::LengthTooLong(0))
    );
    assert_eq!(
        tlv::parse(&[0x80, 0x81, 0x05, 1, 2, 3, 4, 5]),
        Err(TlvError::NonMinimalLength(0))
    );
    assert_eq!(
        tlv::parse(&[0x80, 0x82, 0x00, 0x81]),
        Err(TlvError::NonMinimalLength(0))
    );
    // A child running past its parent's end is truncated, not read from the parent's sibling.
    assert_eq!(
        tlv::parse_all(&[0x30, 0x03, 0x80, 0x02, 0xAA, 0xBB]),
        Err(TlvError::Truncated {
            offset: 2,
            field: "value"
        })
    );
    // Indefinite length inside a constructed object is found too.
    assert_eq!(
        tlv::parse(&[0x30, 0x02, 0x30, 0x80]),
        Err(TlvError::IndefiniteLength(2))
    );
    // Four-byte tags are framed fine but the parser does not take them.
    assert!(matches!(
        tlv::parse(&[0x5F, 0x81, 0x81, 0x01, 0x00]),
        Err(TlvError::Malformed(_))
    ));
}

#[test]
fn nesting_is_bounded() {
    let mut ok = vec![0x80, 0x00];
    for _ in 0..MAX_DEPTH {
        let len = ok.len() as u8;
        ok.splice(0..0, [0x30, len]);
    }
    assert!(tlv::parse(&ok).is_ok());
    let mut deep = vec![0x80, 0x00];
    for _ in 0..=MAX_DEPTH {
        let len = deep.len() as u8;
        deep.splice(0..0, [0x30, len]);
    }
    assert_eq!(tlv::parse(&deep), Err(TlvError::TooDeep));
}

#[test]
fn building_refuses_bad_tags_and_wrong_forms() {
    assert_eq!(tlv::primitive(0, &[]).err(), Some(TlvError::InvalidTag(0)));
    assert_eq!(
        tlv::primitive(0x1F, &[]).err(),
        Some(TlvError::InvalidTag(0x1F))
    );
    assert_eq!(
        tlv::primitive(0x30, &[1]).err(),
        Some(TlvError::WrongForm(0x30, "constructed"))
    );
    assert_eq!(
        tlv::constructed(0x80, vec![]).err(),
        Some(TlvError::WrongForm(0x80, "primitive"))
    );
    assert!(
        matches!(tlv::constructed(0x30, vec![]).unwrap().value(), Value::Constructed(v) if v.is_empty())
    );
}

/// `30 82 LL LL` followed by `n` empty `80 00` children.
fn wide(n: usize) -> Vec<u8> {
    let body = u16::try_from(2 * n).unwrap().to_be_bytes();
    let mut v = vec![0x30, 0x82, body[0], body[1]];
    for _ in 0..n {
        v.extend_from_slice(&[0x80, 0x00]);
    }
    v
}

#[test]
fn object_count_is_bounded() {
    // The root counts as one object.
    let ok = tlv::parse(&wide(MAX_OBJECTS - 1)).unwrap();
    assert!(matches!(ok.value(), Value::Constructed(c) if c.len() == MAX_OBJECTS - 1));
    assert_eq!(
        tlv::parse(&wide(MAX_OBJECTS)),
        Err(TlvError::TooManyObjects)
    );
    let flat: Vec<u8> = [0x80, 0x00].repeat(MAX_OBJECTS + 1);
    assert_eq!(tlv::parse_all(&flat), Err(TlvError::TooManyObjects));
}
