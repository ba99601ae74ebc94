//! EF.ID decoding: the `E1` template of applet spec §6.1 into a typed
//! [`CardIdentity`]. Independent of the personalization side's encoder, so a
//! mistake in one shows up against the other.

use std::fmt;

use kart_apdu::tlv::{self, Tlv, TlvError, Value};
use serde::{Serialize, Serializer};
use thiserror::Error;

use crate::record::{Gender, NationalCode, SolarDate};

/// The identity template tag of EF.ID.
pub const IDENTITY_TEMPLATE: u32 = 0xE1;

/// How a value is encoded (applet spec §6.1, "Encodings").
#[derive(Clone, Copy)]
enum Enc {
    Digits,
    Utf8,
    Latin,
    Date,
    Gender,
    Binary,
}

/// One data object of the template: tag, name, value length bounds, encoding.
struct Tag(u32, &'static str, usize, usize, Enc);

/// The tags of EF.ID, each required exactly once (spec §6.1).
const TAGS: [Tag; 15] = [
    Tag(0xC1, "national code", 10, 10, Enc::Digits),
    Tag(0xC2, "given name (Persian)", 1, 96, Enc::Utf8),
    Tag(0xC3, "family name (Persian)", 1, 96, Enc::Utf8),
    Tag(0xC4, "father's name (Persian)", 1, 96, Enc::Utf8),
    Tag(0xC5, "given name (Latin)", 1, 64, Enc::Latin),
    Tag(0xC6, "family name (Latin)", 1, 64, Enc::Latin),
    Tag(0xC7, "father's name (Latin)", 1, 64, Enc::Latin),
    Tag(0xC8, "birth date (Solar Hijri)", 8, 8, Enc::Date),
    Tag(0xC9, "birth date (Gregorian)", 8, 8, Enc::Date),
    Tag(0xCA, "gender", 1, 1, Enc::Gender),
    Tag(0xCB, "card serial number (CSN)", 8, 8, Enc::Binary),
    Tag(0xCC, "card registration number (CRN)", 10, 10, Enc::Digits),
    Tag(0xCD, "issue date (Gregorian)", 8, 8, Enc::Date),
    Tag(0xCE, "expiry date (Gregorian)", 8, 8, Enc::Date),
    Tag(0xCF, "application tracking code", 8, 20, Enc::Digits),
];

/// Why EF.ID is not the identity template the spec describes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The bytes are not one BER-TLV object.
    #[error("EF.ID is not a BER-TLV object: {0}")]
    Tlv(#[from] TlvError),
    /// The object is not the constructed `E1` template.
    #[error("EF.ID holds tag {0:02X}, expected the constructed identity template E1")]
    NotTemplate(u32),
    /// A required data object is absent.
    #[error("EF.ID lacks tag {tag:02X} ({name})")]
    Missing {
        /// The tag.
        tag: u32,
        /// Its name in the spec.
        name: &'static str,
    },
    /// A data object appears more than once.
    #[error("EF.ID holds tag {0:02X} more than once")]
    Duplicate(u32),
    /// A tag the spec does not define for EF.ID.
    #[error("EF.ID holds tag {0:02X}, which the applet spec does not define")]
    Unknown(u32),
    /// A value outside its length bounds.
    #[error("EF.ID {name} (tag {tag:02X}) is {len} bytes, expected {min} to {max}")]
    Length {
        /// The tag.
        tag: u32,
        /// Its name.
        name: &'static str,
        /// Length found.
        len: usize,
        /// Lower bound.
        min: usize,
        /// Upper bound.
        max: usize,
    },
    /// A value that breaks its encoding rule.
    #[error("EF.ID {name} (tag {tag:02X}) is invalid: {reason}")]
    Encoding {
        /// The tag.
        tag: u32,
        /// Its name.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// A Gregorian calendar day as EF.ID stores it (`YYYYMMDD`).
///
/// ```
/// use kart_perso::read::GregorianDate;
/// let d = GregorianDate::parse_compact(b"20210321").unwrap();
/// assert_eq!(d.to_string(), "2021-03-21");
/// assert!(GregorianDate::parse_compact(b"20210230").is_none());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GregorianDate(time::Date);

impl GregorianDate {
    /// Parses 8 ASCII digits `YYYYMMDD`; `None` if not a calendar day.
    pub fn parse_compact(raw: &[u8]) -> Option<Self> {
        let (y, m, d) = compact_parts(raw)?;
        let month = time::Month::try_from(m).ok()?;
        time::Date::from_calendar_date(y, month, d).ok().map(Self)
    }

    /// Year, month (1-12), day.
    pub fn ymd(self) -> (i32, u8, u8) {
        (self.0.year(), self.0.month() as u8, self.0.day())
    }

    /// The date as a `time::Date`.
    pub fn date(self) -> time::Date {
        self.0
    }
}

impl fmt::Display for GregorianDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl Serialize for GregorianDate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The identity data read from EF.ID, decoded and checked against the spec.
///
/// ```
/// use kart_perso::read::{CardIdentity, IdentityError};
/// assert!(matches!(CardIdentity::decode(&[0xE1, 0x00]), Err(IdentityError::Missing { tag: 0xC1, .. })));
/// assert!(CardIdentity::decode(&[0xE1, 0x05, 0xC1]).is_err()); // truncated
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CardIdentity {
    /// National code (check digit verified).
    #[serde(serialize_with = "display")]
    pub national_code: NationalCode,
    /// Given name, Persian.
    pub given_name_fa: String,
    /// Family name, Persian.
    pub family_name_fa: String,
    /// Father's name, Persian.
    pub father_name_fa: String,
    /// Given name, Latin.
    pub given_name_en: String,
    /// Family name, Latin.
    pub family_name_en: String,
    /// Father's name, Latin.
    pub father_name_en: String,
    /// Birth date, Solar Hijri.
    #[serde(serialize_with = "display")]
    pub birth_date: SolarDate,
    /// Birth date, Gregorian (checked to be the same day as `birth_date`).
    pub birth_date_gregorian: GregorianDate,
    /// Gender.
    #[serde(serialize_with = "gender_code")]
    pub gender: Gender,
    /// Card serial number (8 bytes), hex in JSON.
    #[serde(serialize_with = "hex_upper")]
    pub csn: [u8; 8],
    /// Card registration number, 10 ASCII digits.
    pub crn: String,
    /// Issue date.
    pub issue_date: GregorianDate,
    /// Expiry date (after the issue date).
    pub expiry_date: GregorianDate,
    /// Application tracking code, 8 to 20 ASCII digits.
    pub tracking_code: String,
}

fn display<T: fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

// serde's `serialize_with` hands fields over by reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn gender_code<S: Serializer>(g: &Gender, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_char(g.code())
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn hex_upper<S: Serializer>(v: &[u8; 8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode_upper(v))
}

impl CardIdentity {
    /// Decodes the content of EF.ID: exactly one `E1` template holding every
    /// tag of spec §6.1 once, each within its bounds and encoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, IdentityError> {
        let root = tlv::parse(bytes)?;
        let number = tlv::tag_number(&root);
        let Value::Constructed(children) = root.value() else {
            return Err(IdentityError::NotTemplate(number));
        };
        if number != IDENTITY_TEMPLATE {
            return Err(IdentityError::NotTemplate(number));
        }
        let mut values: [Option<&[u8]>; TAGS.len()] = [None; TAGS.len()];
        for child in children {
            let tag = tlv::tag_number(child);
            let index = TAGS
                .iter()
                .position(|t| t.0 == tag)
                .ok_or(IdentityError::Unknown(tag))?;
            let value = primitive(child, tag)?;
            let slot = values.get_mut(index).ok_or(IdentityError::Unknown(tag))?;
            if slot.replace(value).is_some() {
                return Err(IdentityError::Duplicate(tag));
            }
        }
        for (spec, value) in TAGS.iter().zip(values) {
            let value = value.ok_or(IdentityError::Missing {
                tag: spec.0,
                name: spec.1,
            })?;
            check(spec, value)?;
        }
        let field = |tag: u32| -> &[u8] {
            TAGS.iter()
                .position(|t| t.0 == tag)
                .and_then(|i| values.get(i).copied().flatten())
                .unwrap_or_default()
        };
        let text = |tag| String::from_utf8_lossy(field(tag)).into_owned();
        let bad = |tag: u32, reason: String| {
            let name = TAGS.iter().find(|t| t.0 == tag).map_or("?", |t| t.1);
            IdentityError::Encoding { tag, name, reason }
        };

        let national_code =
            NationalCode::parse(&text(0xC1)).map_err(|e| bad(0xC1, e.to_string()))?;
        let birth_date = solar(field(0xC8)).ok_or_else(|| bad(0xC8, "no such day".into()))?;
        let date = |tag| {
            GregorianDate::parse_compact(field(tag)).ok_or_else(|| bad(tag, "no such day".into()))
        };
        let birth_date_gregorian = date(0xC9)?;
        if birth_date.gregorian() != birth_date_gregorian.ymd() {
            return Err(bad(
                0xC9,
                format!("{birth_date_gregorian} is not the same day as Solar Hijri {birth_date}"),
            ));
        }
        let issue_date = date(0xCD)?;
        let expiry_date = date(0xCE)?;
        if expiry_date <= issue_date {
            return Err(bad(
                0xCE,
                format!("expiry {expiry_date} is not after issue {issue_date}"),
            ));
        }
        let gender = Gender::parse(&text(0xCA)).map_err(|e| bad(0xCA, e.to_string()))?;
        let mut csn = [0u8; 8];
        csn.copy_from_slice(field(0xCB));
        Ok(Self {
            national_code,
            given_name_fa: text(0xC2),
            family_name_fa: text(0xC3),
            father_name_fa: text(0xC4),
            given_name_en: text(0xC5),
            family_name_en: text(0xC6),
            father_name_en: text(0xC7),
            birth_date,
            birth_date_gregorian,
            gender,
            csn,
            crn: text(0xCC),
            issue_date,
            expiry_date,
            tracking_code: text(0xCF),
        })
    }
}

fn primitive(child: &Tlv, tag: u32) -> Result<&[u8], IdentityError> {
    match child.value() {
        Value::Primitive(v) => Ok(v),
        Value::Constructed(_) => Err(IdentityError::Encoding {
            tag,
            name: TAGS.iter().find(|t| t.0 == tag).map_or("?", |t| t.1),
            reason: "constructed where a primitive value is required".into(),
        }),
    }
}

/// Length bounds and the encoding rule of one value.
fn check(spec: &Tag, value: &[u8]) -> Result<(), IdentityError> {
    let &Tag(tag, name, min, max, enc) = spec;
    if !(min..=max).contains(&value.len()) {
        return Err(IdentityError::Length {
            tag,
            name,
            len: value.len(),
            min,
            max,
        });
    }
    let fail = |reason: &str| {
        Err(IdentityError::Encoding {
            tag,
            name,
            reason: reason.to_owned(),
        })
    };
    match enc {
        Enc::Digits | Enc::Date if !value.iter().all(u8::is_ascii_digit) => {
            fail("must be ASCII digits 0-9")
        }
        Enc::Utf8 => match std::str::from_utf8(value) {
            Ok(s) if s.chars().any(char::is_control) => fail("holds control characters"),
            Ok(_) => Ok(()),
            Err(_) => fail("is not valid UTF-8"),
        },
        Enc::Latin
            if !value
                .iter()
                .all(|b| b.is_ascii_uppercase() || matches!(b, b' ' | b'-' | b'\'')) =>
        {
            fail("must be ASCII letters A-Z, space, hyphen or apostrophe")
        }
        Enc::Gender if !matches!(value, b"M" | b"F" | b"X") => fail("must be M, F or X"),
        _ => Ok(()),
    }
}

fn compact_parts(raw: &[u8]) -> Option<(i32, u8, u8)> {
    if raw.len() != 8 || !raw.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| {
        raw.get(r)?
            .iter()
            .try_fold(0u32, |n, d| Some(n * 10 + u32::from(d - b'0')))
    };
    Some((
        i32::try_from(num(0..4)?).ok()?,
        u8::try_from(num(4..6)?).ok()?,
        u8::try_from(num(6..8)?).ok()?,
    ))
}

fn solar(raw: &[u8]) -> Option<SolarDate> {
    let (y, m, d) = compact_parts(raw)?;
    SolarDate::new(y, m, d).ok()
}
