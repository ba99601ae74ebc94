//! EF.ID decoding against the applet spec §6.1 table, and no panic on any
//! input (property tests over arbitrary bytes and mutated valid files).

use kart_apdu::tlv;
use kart_perso::read::{CardIdentity, IdentityError};
use kart_perso::record::Gender;
use kart_testkit::cards::*;
use proptest::prelude::*;

const CSN: [u8; 8] = [0x4B, 0x41, 0x00, 0x01, 0x10, 0x20, 0x30, 0x07];

fn valid() -> Vec<u8> {
    ef_id(CSN, CRN, "ZAHRA")
}

/// EF.ID with the value of `tag` replaced (or removed when `None`).
fn with(tag: u32, value: Option<&[u8]>) -> Vec<u8> {
    let root = tlv::parse(&valid()).unwrap();
    let tlv::Value::Constructed(children) = root.value() else {
        unreachable!()
    };
    let children = children
        .iter()
        .filter_map(|c| {
            if tlv::tag_number(c) != tag {
                return Some(c.clone());
            }
            value.map(|v| tlv::primitive(tag, v).unwrap())
        })
        .collect();
    tlv::to_vec(&tlv::constructed(0xE1, children).unwrap())
}

#[test]
fn decodes_every_field() {
    let id = CardIdentity::decode(&valid()).unwrap();
    assert_eq!(id.national_code.as_str(), NATIONAL_CODE);
    assert_eq!(id.given_name_fa, "زهرا");
    assert_eq!(id.family_name_fa, "محمدی");
    assert_eq!(id.father_name_fa, "علی");
    assert_eq!(id.given_name_en, "ZAHRA");
    assert_eq!(id.family_name_en, "MOHAMMADI");
    assert_eq!(id.father_name_en, "ALI");
    assert_eq!(id.birth_date.to_string(), "1399/05/19");
    assert_eq!(id.birth_date_gregorian.to_string(), "2020-08-09");
    assert_eq!(id.gender, Gender::Female);
    assert_eq!(id.csn, CSN);
    assert_eq!(id.crn, CRN);
    assert_eq!(id.issue_date.to_string(), "2025-11-25");
    assert_eq!(id.expiry_date.to_string(), "2032-11-24");
    assert_eq!(id.tracking_code, TRACKING);
    let json = serde_json::to_value(&id).unwrap();
    assert_eq!(json["csn"], "4B41000110203007");
    assert_eq!(json["gender"], "F");
    assert_eq!(json["birth_date"], "1399/05/19");
    assert_eq!(json["expiry_date"], "2032-11-24");
}

#[test]
fn tags_in_any_order_are_accepted() {
    let root = tlv::parse(&valid()).unwrap();
    let tlv::Value::Constructed(children) = root.value() else {
        unreachable!()
    };
    let reversed = children.iter().rev().cloned().collect();
    let bytes = tlv::to_vec(&tlv::constructed(0xE1, reversed).unwrap());
    assert_eq!(
        CardIdentity::decode(&bytes).unwrap(),
        CardIdentity::decode(&valid()).unwrap()
    );
}

#[test]
fn structural_errors_name_the_tag() {
    assert_eq!(
        CardIdentity::decode(&with(0xCC, None)),
        Err(IdentityError::Missing {
            tag: 0xCC,
            name: "card registration number (CRN)"
        })
    );
    let mut dup = valid();
    // Append a second C1 inside the template: E1 length grows by 12.
    dup.extend([0xC1, 0x0A]);
    dup.extend(NATIONAL_CODE.as_bytes());
    let body = &dup[3..];
    let mut bytes = vec![0xE1, 0x81, u8::try_from(body.len()).unwrap()];
    bytes.extend(body);
    assert_eq!(valid()[1], 0x81, "template length in the 81 xx form");
    assert_eq!(
        CardIdentity::decode(&bytes),
        Err(IdentityError::Duplicate(0xC1))
    );

    let mut extra = valid()[3..].to_vec();
    extra.extend([0xD0, 0x01, 0x00]);
    let mut bytes = vec![0xE1, 0x81, u8::try_from(extra.len()).unwrap()];
    bytes.extend(extra);
    assert_eq!(
        CardIdentity::decode(&bytes),
        Err(IdentityError::Unknown(0xD0))
    );

    assert!(matches!(
        CardIdentity::decode(&[0xE2, 0x00]),
        Err(IdentityError::NotTemplate(0xE2))
    ));
    assert!(matches!(
        CardIdentity::decode(&[0xC1, 0x00]),
        Err(IdentityError::NotTemplate(0xC1))
    ));
    assert!(matches!(
        CardIdentity::decode(&[]),
        Err(IdentityError::Tlv(_))
    ));
    let v = valid();
    assert!(matches!(
        CardIdentity::decode(&v[..v.len() - 1]),
        Err(IdentityError::Tlv(_))
    ));
}

#[test]
fn value_errors_say_what_is_wrong() {
    let err = |tag, value: &[u8]| {
        CardIdentity::decode(&with(tag, Some(value)))
            .unwrap_err()
            .to_string()
    };
    assert!(err(0xC1, b"049937089").contains("9 bytes, expected 10 to 10"));
    assert!(err(0xC1, b"0499370898").contains("check digit"));
    assert!(err(0xC1, b"04993708X9").contains("ASCII digits"));
    assert!(err(0xC2, &[0xD8]).contains("not valid UTF-8"));
    assert!(err(0xC5, b"Zahra").contains("A-Z"));
    assert!(err(0xC5, &[b'A'; 65]).contains("65 bytes"));
    assert!(err(0xC8, b"13991231").contains("no such day")); // Esfand has 30 days even in a leap year
    assert!(err(0xC9, b"20200810").contains("not the same day"));
    assert!(err(0xC9, b"20200230").contains("no such day"));
    assert!(err(0xCA, b"W").contains("M, F or X"));
    assert!(err(0xCB, &[1; 7]).contains("7 bytes"));
    assert!(err(0xCE, b"20251125").contains("not after issue"));
    assert!(err(0xCF, b"1234567").contains("7 bytes, expected 8 to 20"));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1100)) {
        let _ = CardIdentity::decode(&bytes);
    }

    #[test]
    fn mutated_identity_files_never_panic(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let mut bytes = valid();
        for (at, value) in flips {
            let i = at % bytes.len();
            bytes[i] = value;
        }
        bytes.truncate(cut % (bytes.len() + 1));
        if let Ok(id) = CardIdentity::decode(&bytes) {
            // Whatever decodes still honours the spec's bounds.
            prop_assert_eq!(id.crn.len(), 10);
            prop_assert!(id.expiry_date > id.issue_date);
        }
    }
}
