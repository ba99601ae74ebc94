//! Reading a card's content without issuer keys, as a bank's terminal does.
//!
//! [`read_card`] finds the national-ID applet (by the vendor profile whose
//! ATR matches, when the ATR is known, otherwise by trying each profile's
//! AID), reads the CPLC (for the CSN), the life-cycle state and the CRN with
//! GET DATA, verifies the ID PIN when one is given, and reads every EF in
//! chunks within the profile's limits. [`CardIdentity::decode`] turns EF.ID
//! into typed identity data.
//!
//! ```
//! use kart_perso::read::{read_card, FileContent, Lifecycle};
//! use kart_perso::record::Pin;
//! let spec = kart_spec::Spec::embedded()?;
//! // A blank simulated card; any `kart_apdu::Transport` (a PC/SC reader) works the same.
//! let sim = kart_sim::SimCard::new(spec.profile("vendor-b").unwrap())?;
//! let mut card = kart_apdu::Card::new(sim);
//! let content = read_card(&mut card, &spec, None, None)?;
//! assert_eq!(content.profile, "vendor-b");
//! assert_eq!(content.lifecycle, Lifecycle::PrePersonalized);
//! assert_eq!(content.crn, None);
//! assert_eq!(content.file("EF.ID").unwrap().content, FileContent::NeedsPin);
//! assert_eq!(content.file("EF.SOD").unwrap().content, FileContent::Empty);
//! // With the holder's PIN: `read_card(&mut card, &spec, None, Some(&Pin::parse("4821")?))`,
//! // then `content.identity()` gives the decoded EF.ID.
//! # let _ = Pin::parse("4821")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod identity;

use std::fmt;

use kart_apdu::{tlv, Card, CardCaps, Status, StatusWord, Transport};
use kart_spec::{Access, Profile, Spec};

pub use error::ReadError;
pub use identity::{CardIdentity, GregorianDate, IdentityError, IDENTITY_TEMPLATE};

use crate::applet::{self, PinRef};
use crate::pki::{Certificate, PkiError};
use crate::probe;
use crate::record::Pin;

/// The applet's files, re-exported for readers of [`CardContent`]: look a
/// file up by its name, e.g. `content.data(EF_SOD.name)`.
pub use crate::applet::{
    Lifecycle, EF_CERT_AUTH, EF_CERT_SIGN, EF_FACE, EF_ID, EF_PIN_STATUS, EF_SOD,
};

/// Tag of the image in EF.FACE (spec §6.1).
const FACE_TAG: u32 = 0x5F2E;

/// What happened to the ID PIN given to [`read_card`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinStatus {
    /// No PIN was given; PIN-protected files were not read.
    NotGiven,
    /// The card accepted the PIN.
    Verified,
    /// The card refused the PIN (`63Cx`).
    Wrong {
        /// Tries left before the PIN blocks.
        tries_left: u8,
    },
    /// The PIN is blocked (`6983`); unblock it with the PUK.
    Blocked,
    /// The card has no ID PIN set (`6984`).
    NotSet,
    /// Another refusal (e.g. `6A80`, a PIN of a length the card does not take).
    Refused(StatusWord),
}

impl serde::Serialize for PinStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for PinStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PinStatus::NotGiven => f.write_str("no PIN given"),
            PinStatus::Verified => f.write_str("PIN verified"),
            PinStatus::Wrong { tries_left } => {
                write!(f, "wrong PIN, {tries_left} tries left")
            }
            PinStatus::Blocked => f.write_str("PIN blocked; unblock it with the PUK"),
            PinStatus::NotSet => f.write_str("the card has no ID PIN set"),
            PinStatus::Refused(sw) => write!(f, "PIN refused: {sw}"),
        }
    }
}

/// One EF's content as read.
#[derive(Clone, PartialEq, Eq)]
pub enum FileContent {
    /// The bytes of the file.
    Data(Vec<u8>),
    /// The file is empty (length 0).
    Empty,
    /// Reading needs the ID PIN, which was not given or not accepted.
    NeedsPin,
    /// The spec says the file is never readable.
    NotReadable,
}

impl fmt::Debug for FileContent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileContent::Data(d) => write!(f, "Data({} bytes)", d.len()),
            FileContent::Empty => f.write_str("Empty"),
            FileContent::NeedsPin => f.write_str("NeedsPin"),
            FileContent::NotReadable => f.write_str("NotReadable"),
        }
    }
}

/// One EF of the applet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardFile {
    /// Its name in the spec (`EF.ID`).
    pub name: String,
    /// Its FID.
    pub fid: u16,
    /// Its content.
    pub content: FileContent,
}

/// Everything [`read_card`] read from a card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardContent {
    /// Id of the vendor profile whose applet answered (`vendor-a`).
    pub profile: String,
    /// The applet's AID.
    pub aid: Vec<u8>,
    /// Life-cycle state from GET DATA `DF71`.
    pub lifecycle: Lifecycle,
    /// The 42 CPLC bytes from GET DATA `9F7F`.
    pub cplc: Vec<u8>,
    /// Card serial number cut from the CPLC: IC fabricator ‖ IC type ‖ IC serial.
    pub csn: [u8; 8],
    /// CRN from GET DATA `DF72`, `None` when the card has none yet.
    pub crn: Option<String>,
    /// Outcome of the ID PIN verification.
    pub pin: PinStatus,
    /// Every EF of the spec, in spec order.
    pub files: Vec<CardFile>,
}

impl CardContent {
    /// The file named `name` (`EF.SOD`).
    pub fn file(&self, name: &str) -> Option<&CardFile> {
        self.files.iter().find(|f| f.name == name)
    }

    /// The bytes of file `name`, when it was read and is not empty.
    pub fn data(&self, name: &str) -> Option<&[u8]> {
        match &self.file(name)?.content {
            FileContent::Data(d) => Some(d),
            _ => None,
        }
    }

    /// EF.ID decoded, when it was read.
    pub fn identity(&self) -> Option<Result<CardIdentity, IdentityError>> {
        self.data(EF_ID.name).map(CardIdentity::decode)
    }

    /// The X.509 certificate in file `name` ([`EF_CERT_AUTH`]`.name` or
    /// [`EF_CERT_SIGN`]`.name`), when the file was read; not yet validated.
    pub fn certificate(&self, name: &str) -> Option<Result<Certificate, PkiError>> {
        self.data(name)
            .map(|der| Certificate::from_der(der.to_vec()))
    }

    /// The JPEG inside EF.FACE (tag `5F2E`), when it was read and is one
    /// `5F2E` object holding a stream that starts `FFD8` and ends `FFD9`.
    pub fn photo(&self) -> Option<&[u8]> {
        let face = self.data(EF_FACE.name)?;
        let object = tlv::parse(face).ok()?;
        let len = tlv::value_at(&object, &[FACE_TAG]).ok()?.len();
        // `parse` took the whole file as one object, so its value is the tail.
        let jpeg = face.get(face.len().checked_sub(len)?..)?;
        (jpeg.starts_with(&[0xFF, 0xD8]) && jpeg.ends_with(&[0xFF, 0xD9])).then_some(jpeg)
    }
}

/// Reads the card behind `card`: selects the applet, reads CPLC, life cycle
/// and CRN, verifies `pin` as the ID PIN when given, then reads every EF.
///
/// `atr`, when known, picks the vendor profile; otherwise each profile's AID
/// is tried in turn. The session's capabilities are narrowed to the profile's
/// limits. A wrong PIN is not an error: it is reported in
/// [`CardContent::pin`] and the PIN-protected files are [`FileContent::NeedsPin`].
/// See the [module example](self).
pub fn read_card<T: Transport>(
    card: &mut Card<T>,
    spec: &Spec,
    atr: Option<&[u8]>,
    pin: Option<&Pin>,
) -> Result<CardContent, ReadError> {
    let profile = probe::find_applet(card, spec, atr)?;
    let cplc = probe::read_cplc(card)?;
    let lifecycle = probe::read_lifecycle(card)?;
    let crn = probe::read_crn(card)?.map(|crn| crn.as_str().to_owned());
    let pin = match pin {
        Some(pin) => verify_pin(card, pin)?,
        None => PinStatus::NotGiven,
    };
    let chunk = read_chunk(card.caps(), profile);
    let mut files = Vec::with_capacity(spec.applet.files.len());
    for f in &spec.applet.files {
        let content = match f.read {
            Access::Never | Access::Sc | Access::SignPin => FileContent::NotReadable,
            Access::IdPin if pin != PinStatus::Verified => FileContent::NeedsPin,
            Access::IdPin | Access::Always => {
                read_file(card, &f.name, f.fid_u16(), f.max_size, chunk)?
            }
        };
        files.push(CardFile {
            name: f.name.clone(),
            fid: f.fid_u16(),
            content,
        });
    }
    Ok(CardContent {
        profile: profile.id.clone(),
        aid: profile.applet_aid.bytes().to_vec(),
        lifecycle,
        cplc: cplc.bytes().to_vec(),
        csn: cplc.csn(),
        crn,
        pin,
        files,
    })
}

/// VERIFY the ID PIN with its 8-byte block (digits, `FF` padding, spec §3).
fn verify_pin<T: Transport>(card: &mut Card<T>, pin: &Pin) -> Result<PinStatus, ReadError> {
    const STEP: &str = "VERIFY ID PIN";
    let digits = pin.expose_digits();
    if digits.len() > applet::PIN_BLOCK_LEN {
        return Ok(PinStatus::Refused(StatusWord::WRONG_DATA));
    }
    let block = applet::pin_block(PinRef::IdPin, digits);
    let cmd = applet::verify(PinRef::IdPin, &block).map_err(|e| ReadError::card(STEP, e.into()))?;
    let r = card.send(&cmd).map_err(|e| ReadError::card(STEP, e))?;
    Ok(match r.sw().status() {
        Status::Success => PinStatus::Verified,
        Status::VerificationFailed { retries_left } => PinStatus::Wrong {
            tries_left: retries_left,
        },
        Status::AuthenticationMethodBlocked => PinStatus::Blocked,
        Status::ReferenceDataNotUsable => PinStatus::NotSet,
        _ => PinStatus::Refused(r.sw()),
    })
}

/// Largest READ BINARY answer to ask for: the session's Ne limit (already
/// bounded by the profile's read chunk), 256 without extended length.
fn read_chunk(caps: CardCaps, profile: &Profile) -> usize {
    let apdu_limit = if caps.extended_length { 65_536 } else { 256 };
    caps.max_response_data
        .min(profile.quirks.max_read_chunk)
        .min(apdu_limit)
        .max(1)
}

/// SELECT the EF by FID and READ BINARY until its end (`6B00`, `6282` or a
/// short answer), never past `max` bytes.
fn read_file<T: Transport>(
    card: &mut Card<T>,
    name: &str,
    fid: u16,
    max: usize,
    chunk: usize,
) -> Result<FileContent, ReadError> {
    let step = format!("SELECT {name}");
    let select = applet::select_file(fid).map_err(|e| ReadError::card(&step, e.into()))?;
    match card.send(&select).map_err(|e| ReadError::card(&step, e))? {
        r if r.is_success() => {}
        r if r.sw() == StatusWord::FILE_NOT_FOUND => return Ok(FileContent::Empty),
        r => return Err(ReadError::Unexpected { step, sw: r.sw() }),
    }
    let step = format!("READ BINARY {name}");
    let mut data = Vec::new();
    loop {
        let offset = u16::try_from(data.len())
            .ok()
            .filter(|o| *o <= 0x7FFF && data.len() < max)
            .ok_or_else(|| ReadError::FileTooLong {
                file: name.to_owned(),
                max,
            })?;
        let want = chunk.min(max - data.len() + 1);
        let cmd = applet::read_binary(offset, u32::try_from(want).unwrap_or(256))
            .map_err(|e| ReadError::card(&step, e.into()))?;
        let r = card.send(&cmd).map_err(|e| ReadError::card(&step, e))?;
        match r.sw().status() {
            Status::Success | Status::EndOfFile => {
                let got = r.data().len();
                data.extend_from_slice(r.data());
                if data.len() > max {
                    return Err(ReadError::FileTooLong {
                        file: name.to_owned(),
                        max,
                    });
                }
                if got == 0 || got < want || r.sw().status() == Status::EndOfFile {
                    break;
                }
            }
            Status::WrongParameters => break,
            Status::SecurityStatusNotSatisfied => return Ok(FileContent::NeedsPin),
            _ => return Err(ReadError::Unexpected { step, sw: r.sw() }),
        }
    }
    Ok(if data.is_empty() {
        FileContent::Empty
    } else {
        FileContent::Data(data)
    })
}
