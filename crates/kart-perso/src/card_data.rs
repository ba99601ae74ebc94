//! The bytes of the card's data files, encoded from a validated record as
//! `applets-spec/` §6.1 says: EF.ID (template `E1`), EF.FACE and EF.FINGER
//! (one `5F2E` object each), plus the card facts read from the card (CPLC →
//! CSN, key diversification data) and assigned by the issuer (CRN, dates).
//!
//! ```
//! use kart_perso::card_data::{Cplc, Crn};
//! let mut cplc = [0u8; 42];
//! cplc[..4].copy_from_slice(&[0x47, 0x90, 0x50, 0x33]); // IC fabricator, IC type
//! cplc[12..16].copy_from_slice(&[0, 0, 0x12, 0x34]);    // IC serial number
//! cplc[16..18].copy_from_slice(&[0xAB, 0xCD]);          // IC batch identifier
//! let mut answer = vec![0x9F, 0x7F, 0x2A];
//! answer.extend_from_slice(&cplc);
//! let cplc = Cplc::parse(&answer)?;
//! assert_eq!(cplc.csn_hex(), "4790503300001234");
//! assert_eq!(cplc.key_diversification_data()[..2], [0xAB, 0xCD]);
//! assert!(Crn::parse("0000000017").is_ok());
//! # Ok::<(), kart_perso::card_data::CardDataError>(())
//! ```

use std::path::Path;

use kart_apdu::tlv;
use thiserror::Error;
use time::Date;

use crate::record::IdentityRecord;

/// Largest value of the `E1` template (spec §6.1).
const ID_TEMPLATE_MAX: usize = 1020;
/// Largest fingerprint template (spec §6.1, tag 5F2E of EF.FINGER).
const FINGER_MAX: usize = 2040;
/// Length of the CPLC (GP Card Specification, GET DATA `9F7F`).
const CPLC_LEN: usize = 42;

/// Why card data could not be encoded or a card answer not read.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CardDataError {
    /// The CPLC answer is not `9F7F 2A <42 bytes>`.
    #[error("the card's CPLC (GET DATA 9F7F) is malformed: {0}; the card is not a kart card or is damaged")]
    BadCplc(String),
    /// A CRN that is not 10 ASCII digits.
    #[error("card registration number must be 10 ASCII digits")]
    BadCrn,
    /// A value is outside the spec's bounds.
    #[error("{what} is {len} bytes, the applet spec allows at most {max}")]
    TooLong {
        /// Which object.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The fingerprint file could not be read.
    #[error("cannot read the fingerprint template {path}: {reason}")]
    Fingerprint {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// TLV encoding failed.
    #[error(transparent)]
    Tlv(#[from] tlv::TlvError),
}

/// The Card Production Life Cycle data of a card (GP Card Specification,
/// GET DATA `9F7F`): what personalization and reading take from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cplc([u8; CPLC_LEN]);

impl Cplc {
    /// Parses the GET DATA `9F7F` answer: `9F7F 2A` and the 42 CPLC bytes.
    pub fn parse(answer: &[u8]) -> Result<Self, CardDataError> {
        let bad = |why: String| CardDataError::BadCplc(why);
        let object = tlv::parse(answer).map_err(|e| bad(e.to_string()))?;
        let value = tlv::value_at(&object, &[u32::from(crate::applet::TAG_CPLC)])
            .map_err(|e| bad(e.to_string()))?;
        value
            .try_into()
            .map(Self)
            .map_err(|_| bad(format!("{} bytes, expected {CPLC_LEN}", value.len())))
    }

    /// The 42 CPLC bytes.
    pub fn bytes(&self) -> &[u8; CPLC_LEN] {
        &self.0
    }

    /// The card serial number (8 bytes): IC fabricator ‖ IC type ‖ IC
    /// serial number (spec §6.1, tag CB).
    pub fn csn(&self) -> [u8; 8] {
        csn_of(&self.0).unwrap_or_default()
    }

    /// The CSN in upper-case hex, as the journal records it.
    pub fn csn_hex(&self) -> String {
        hex::encode_upper(self.csn())
    }

    /// IC batch identifier ‖ CSN: what INITIALIZE UPDATE returns (spec §7).
    pub fn key_diversification_data(&self) -> [u8; 10] {
        let mut kdd = [0u8; 10];
        kdd[..2].copy_from_slice(&self.0[16..18]);
        kdd[2..].copy_from_slice(&self.csn());
        kdd
    }
}

/// The CSN inside CPLC bytes (bytes 0–3 and 12–15), when there are enough
/// of them: `kart info` shows it even for a CPLC of the wrong length.
pub fn csn_of(cplc: &[u8]) -> Option<[u8; 8]> {
    let (head, serial) = (cplc.get(0..4)?, cplc.get(12..16)?);
    let mut csn = [0u8; 8];
    csn[..4].copy_from_slice(head);
    csn[4..].copy_from_slice(serial);
    Some(csn)
}

/// A card registration number: 10 ASCII digits, unique per issued card.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Crn(pub(crate) String);

impl Crn {
    /// Checks that `text` is exactly 10 ASCII digits.
    pub fn parse(text: &str) -> Result<Self, CardDataError> {
        if text.len() == 10 && text.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(text.to_owned()))
        } else {
            Err(CardDataError::BadCrn)
        }
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Crn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the card itself contributes to EF.ID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardFacts {
    /// Card serial number from the CPLC.
    pub csn: [u8; 8],
    /// Card registration number assigned by the issuer.
    pub crn: Crn,
    /// Issue date (Gregorian).
    pub issued: Date,
    /// Expiry date (Gregorian).
    pub expires: Date,
}

/// The contents of EF.ID: template `E1` with tags `C1`–`CF` (spec §6.1).
pub fn ef_id(record: &IdentityRecord, card: &CardFacts) -> Result<Vec<u8>, CardDataError> {
    let (by, bm, bd) = record.birth_date.gregorian();
    let fields: [(u32, Vec<u8>); 15] = [
        (0xC1, record.national_code.as_str().into()),
        (0xC2, record.given_name.fa.as_str().into()),
        (0xC3, record.family_name.fa.as_str().into()),
        (0xC4, record.father_name.fa.as_str().into()),
        (0xC5, record.given_name.en.as_str().into()),
        (0xC6, record.family_name.en.as_str().into()),
        (0xC7, record.father_name.en.as_str().into()),
        (0xC8, record.birth_date.compact().into()),
        (0xC9, format!("{by:04}{bm:02}{bd:02}").into()),
        (0xCA, vec![record.gender.code() as u8]),
        (0xCB, card.csn.to_vec()),
        (0xCC, card.crn.as_str().into()),
        (0xCD, compact(card.issued).into()),
        (0xCE, compact(card.expires).into()),
        (0xCF, record.tracking_code.as_str().into()),
    ];
    let children = fields
        .iter()
        .map(|(tag, value)| tlv::primitive(*tag, value))
        .collect::<Result<Vec<_>, _>>()?;
    let template = tlv::to_vec(&tlv::constructed(0xE1, children)?);
    let value_len = template.len() - header_len(template.len());
    if value_len > ID_TEMPLATE_MAX {
        return Err(CardDataError::TooLong {
            what: "EF.ID template E1",
            len: value_len,
            max: ID_TEMPLATE_MAX,
        });
    }
    Ok(template)
}

/// The contents of EF.FACE: `5F2E` holding the JPEG.
pub fn ef_face(record: &IdentityRecord) -> Result<Vec<u8>, CardDataError> {
    Ok(tlv::to_vec(&tlv::primitive(
        0x5F2E,
        record.photo.as_bytes(),
    )?))
}

/// The contents of EF.FINGER, if the record has a fingerprint template:
/// `5F2E` holding it (read again, bounded, from the record's path).
pub fn ef_finger(record: &IdentityRecord) -> Result<Option<Vec<u8>>, CardDataError> {
    let Some(path) = &record.fingerprint else {
        return Ok(None);
    };
    let template = read_bounded(path, FINGER_MAX)?;
    Ok(Some(tlv::to_vec(&tlv::primitive(0x5F2E, &template)?)))
}

/// `YYYYMMDD` of a Gregorian date.
pub fn compact(date: Date) -> String {
    format!(
        "{:04}{:02}{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Tag and length bytes in front of a template of `total` bytes with tag `E1`.
fn header_len(total: usize) -> usize {
    match total {
        0..=129 => 2,
        130..=258 => 3,
        _ => 4,
    }
}

/// A regular file of at most `max` bytes (a FIFO or device is refused
/// before anything is read), not empty.
fn read_bounded(path: &Path, max: usize) -> Result<Vec<u8>, CardDataError> {
    use kart_spec::input::ReadError;
    let fail = |reason: String| CardDataError::Fingerprint {
        path: path.display().to_string(),
        reason,
    };
    let bytes = kart_spec::input::read_regular(path, max as u64).map_err(|e| match e {
        ReadError::TooLarge { .. } => CardDataError::TooLong {
            what: "fingerprint template",
            len: max + 1,
            max,
        },
        ReadError::NotRegular { kind, .. } => fail(format!("it is a {kind}, not a regular file")),
        ReadError::Io { source, .. } => fail(source.to_string()),
        e => fail(e.to_string()),
    })?;
    if bytes.is_empty() {
        return Err(fail("the file is empty".into()));
    }
    Ok(bytes)
}
