//! The national-ID applet: `nid-applet.toml`.

use crate::error::SpecError;
use crate::hex::Hex;
use kart_apdu::StatusWord;
use serde::Deserialize;
use std::collections::HashSet;

/// Who may read or write a file or data object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Access {
    /// No condition.
    Always,
    /// The ID PIN verified in this session.
    IdPin,
    /// The SIGN PIN verified in this session.
    SignPin,
    /// A secure channel (GP SCP02/SCP03) with at least C-MAC.
    Sc,
    /// Refused.
    Never,
}

/// The secure-channel level a command needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
pub enum ChannelNeed {
    /// No secure channel needed.
    #[serde(rename = "NONE")]
    None,
    /// Command MAC.
    #[serde(rename = "C-MAC")]
    CMac,
    /// Command MAC and encrypted data field.
    #[serde(rename = "C-MAC+C-DEC")]
    CMacCDec,
}

/// The card manager (Issuer Security Domain).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardManager {
    /// Human name.
    pub name: String,
    /// Its AID.
    pub aid: Hex,
}

/// The applet's identity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppletId {
    /// Human name.
    pub name: String,
    /// AID used when a profile does not name its own.
    pub default_aid: Hex,
}

/// One life-cycle state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleState {
    /// `PRE_PERSONALIZED`, `PERSONALIZED`, `LOCKED`.
    pub name: String,
    /// One-byte code reported by GET DATA `DF71`.
    pub code: Hex,
    /// What the state allows, in words.
    pub allows: String,
}

/// One allowed life-cycle transition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    /// State before.
    pub from: String,
    /// State after.
    pub to: String,
    /// The command that causes it.
    pub command: String,
    /// Its P2.
    pub p2: Hex,
}

/// One elementary file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// `EF.ID`, `EF.FACE`…
    pub name: String,
    /// Two-byte file identifier.
    pub fid: Hex,
    /// Capacity in bytes.
    pub max_size: usize,
    /// Read access condition.
    pub read: Access,
    /// Write access condition.
    pub write: Access,
    /// Must hold data before the card may leave `PRE_PERSONALIZED`.
    pub mandatory: bool,
    /// What the file holds, in words.
    pub content: String,
}

impl FileSpec {
    /// The FID as a number.
    pub fn fid_u16(&self) -> u16 {
        match self.fid.bytes() {
            [hi, lo] => u16::from_be_bytes([*hi, *lo]),
            _ => 0, // validation refuses other lengths
        }
    }
}

/// How a data object's value is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// ASCII `0`-`9`.
    AsciiDigits,
    /// UTF-8 text.
    Utf8,
    /// ASCII letters, space, hyphen, apostrophe.
    Latin,
    /// `YYYYMMDD` ASCII.
    Date,
    /// ASCII `M`, `F` or `X`.
    Gender,
    /// Any bytes.
    Binary,
    /// A JPEG stream.
    Jpeg,
    /// A BER-TLV template.
    Constructed,
}

/// One TLV data object inside a file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagSpec {
    /// Name of the file that holds it.
    pub file: String,
    /// BER-TLV tag, one or two bytes.
    pub tag: Hex,
    /// Human name.
    pub name: String,
    /// Shortest value in bytes.
    pub min: usize,
    /// Longest value in bytes.
    pub max: usize,
    /// Value encoding.
    pub encoding: Encoding,
    /// Must be present.
    pub required: bool,
}

/// One GET DATA / PUT DATA object.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataObject {
    /// Two-byte tag (P1-P2).
    pub tag: Hex,
    /// Human name.
    pub name: String,
    /// Value length in bytes.
    pub length: usize,
    /// GET DATA condition.
    pub get: Access,
    /// PUT DATA condition.
    pub put: Access,
}

/// One PIN or the PUK.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinSpec {
    /// `ID_PIN`, `SIGN_PIN`, `PUK`.
    pub name: String,
    /// Reference in P2 of VERIFY.
    pub reference: Hex,
    /// Fewest digits.
    pub min_length: usize,
    /// Most digits.
    pub max_length: usize,
    /// Tries before blocking.
    pub retries: u8,
    /// What it is for.
    pub purpose: String,
}

/// One on-card key pair.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// `AUTH_KEY`, `SIGN_KEY`.
    pub name: String,
    /// Reference in P2 of GENERATE ASYMMETRIC KEY PAIR.
    pub reference: Hex,
    /// `EC P-256`.
    pub algorithm: String,
    /// The command that uses it.
    pub used_by: String,
}

/// A status word or a family of them (`63CX`, `61XX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct SwPattern {
    value: u16,
    mask: u16,
}

impl TryFrom<String> for SwPattern {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        let bad = || format!("`{s}` is not a status word (4 hex digits, X for any nibble)");
        if s.len() != 4 {
            return Err(bad());
        }
        let (mut value, mut mask) = (0u16, 0u16);
        for c in s.chars() {
            let (v, m) = match c {
                'X' => (0, 0),
                _ => (c.to_digit(16).ok_or_else(bad)?, 0xF),
            };
            value = value << 4 | v as u16;
            mask = mask << 4 | m;
        }
        Ok(SwPattern { value, mask })
    }
}

impl SwPattern {
    /// Whether `sw` belongs to this pattern.
    ///
    /// ```
    /// use kart_spec::SwPattern;
    /// let p = SwPattern::try_from("63CX".to_owned())?;
    /// assert!(p.matches(kart_apdu::StatusWord(0x63C2)));
    /// assert!(!p.matches(kart_apdu::StatusWord(0x6983)));
    /// # Ok::<(), String>(())
    /// ```
    pub fn matches(self, sw: StatusWord) -> bool {
        sw.0 & self.mask == self.value
    }
}

impl std::fmt::Display for SwPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for shift in [12, 8, 4, 0] {
            if (self.mask >> shift).trailing_zeros() >= 4 {
                f.write_str("X")?;
            } else {
                write!(f, "{:X}", (self.value >> shift) & 0xF)?;
            }
        }
        Ok(())
    }
}

/// One command of the applet or card manager.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    /// `SELECT`, `READ BINARY`…
    pub name: String,
    /// CLA values, as written in the spec (`00`, `00/80`).
    pub cla: String,
    /// Instruction byte.
    pub ins: Hex,
    /// P1, as written in the spec.
    pub p1: String,
    /// P2, as written in the spec.
    pub p2: String,
    /// Secure channel needed.
    pub secure_channel: ChannelNeed,
    /// Answers `6985` on a LOCKED card.
    pub refused_when_locked: bool,
    /// Every status word it may answer besides the general ones.
    pub sw: Vec<SwPattern>,
}

/// Status words every command may answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct General {
    /// The patterns.
    pub sw: Vec<SwPattern>,
}

/// `nid-applet.toml`: the applet's contract.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppletSpec {
    /// Version of the specification.
    pub spec_version: String,
    /// The ISD.
    pub card_manager: CardManager,
    /// The applet.
    pub applet: AppletId,
    /// Life-cycle states in order.
    pub lifecycle: Vec<LifecycleState>,
    /// Allowed transitions.
    pub transitions: Vec<Transition>,
    /// Elementary files.
    pub files: Vec<FileSpec>,
    /// Data objects inside files.
    pub tags: Vec<TagSpec>,
    /// GET/PUT DATA objects.
    pub data_objects: Vec<DataObject>,
    /// PINs and PUK.
    pub pins: Vec<PinSpec>,
    /// On-card key pairs.
    pub keys: Vec<KeySpec>,
    /// Commands.
    pub commands: Vec<CommandSpec>,
    /// Status words any command may answer.
    pub general: General,
}

impl AppletSpec {
    /// The file called `name` (`EF.ID`).
    pub fn file(&self, name: &str) -> Option<&FileSpec> {
        self.files.iter().find(|f| f.name == name)
    }
    /// The file with FID `fid`.
    pub fn file_by_fid(&self, fid: u16) -> Option<&FileSpec> {
        self.files.iter().find(|f| f.fid_u16() == fid)
    }
    /// The data objects of file `name`.
    pub fn tags_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a TagSpec> + 'a {
        self.tags.iter().filter(move |t| t.file == name)
    }
    /// The PIN called `name` (`ID_PIN`).
    pub fn pin(&self, name: &str) -> Option<&PinSpec> {
        self.pins.iter().find(|p| p.name == name)
    }
    /// The command called `name` (`VERIFY`).
    pub fn command(&self, name: &str) -> Option<&CommandSpec> {
        self.commands.iter().find(|c| c.name == name)
    }
    /// The code of life-cycle state `name`.
    pub fn lifecycle_code(&self, name: &str) -> Option<u8> {
        self.lifecycle
            .iter()
            .find(|l| l.name == name)
            .and_then(|l| l.code.bytes().first().copied())
    }
    /// Whether the spec allows `sw` as an answer to `command`.
    pub fn allows_sw(&self, command: &CommandSpec, sw: StatusWord) -> bool {
        command
            .sw
            .iter()
            .chain(&self.general.sw)
            .any(|p| p.matches(sw))
    }

    pub(crate) fn validate(&self, file: &str) -> Result<(), SpecError> {
        let err = |field: String, problem: String| Err(SpecError::invalid(file, field, problem));
        check_aid(file, "card_manager.aid", &self.card_manager.aid)?;
        check_aid(file, "applet.default_aid", &self.applet.default_aid)?;
        let mut names = HashSet::new();
        for (i, l) in self.lifecycle.iter().enumerate() {
            if l.code.bytes().len() != 1 {
                return err(
                    format!("lifecycle[{i}].code"),
                    format!("`{}` must be one byte", l.code),
                );
            }
            if !names.insert(l.name.as_str()) {
                return err(
                    format!("lifecycle[{i}].name"),
                    format!("duplicate state `{}`", l.name),
                );
            }
        }
        for (i, t) in self.transitions.iter().enumerate() {
            for (what, s) in [("from", &t.from), ("to", &t.to)] {
                if !names.contains(s.as_str()) {
                    return err(
                        format!("transitions[{i}].{what}"),
                        format!("unknown state `{s}`"),
                    );
                }
            }
        }
        self.validate_files(file)?;
        self.validate_secrets(file)
    }

    fn validate_files(&self, file: &str) -> Result<(), SpecError> {
        let err = |field: String, problem: String| Err(SpecError::invalid(file, field, problem));
        let (mut fids, mut fnames) = (HashSet::new(), HashSet::new());
        for (i, f) in self.files.iter().enumerate() {
            if f.fid.bytes().len() != 2 {
                return err(
                    format!("files[{i}].fid"),
                    format!(
                        "`{}` must be two bytes",
                        crate::input::quote(&f.fid.to_string())
                    ),
                );
            }
            if !fids.insert(f.fid_u16()) {
                return err(
                    format!("files[{i}].fid"),
                    format!("duplicate FID {} (file {})", f.fid, f.name),
                );
            }
            if !fnames.insert(f.name.as_str()) {
                return err(
                    format!("files[{i}].name"),
                    format!("duplicate file name `{}`", f.name),
                );
            }
            if f.max_size == 0 || f.max_size > 0x7FFF {
                return err(
                    format!("files[{i}].max_size"),
                    format!("{} is outside 1..=32767 (15-bit offsets)", f.max_size),
                );
            }
        }
        let mut tags = HashSet::new();
        for (i, t) in self.tags.iter().enumerate() {
            let Some(f) = self.file(&t.file) else {
                return err(
                    format!("tags[{i}].file"),
                    format!("unknown file `{}`", t.file),
                );
            };
            if !(1..=2).contains(&t.tag.bytes().len()) {
                return err(
                    format!("tags[{i}].tag"),
                    format!("`{}` must be one or two bytes", t.tag),
                );
            }
            if !tags.insert((t.file.as_str(), t.tag.clone())) {
                return err(
                    format!("tags[{i}].tag"),
                    format!("duplicate tag {} in {}", t.tag, t.file),
                );
            }
            if t.min > t.max {
                return err(
                    format!("tags[{i}].min"),
                    format!("min {} is above max {}", t.min, t.max),
                );
            }
            if t.max > f.max_size {
                return err(
                    format!("tags[{i}].max"),
                    format!(
                        "{} bytes cannot fit in {} ({} bytes)",
                        t.max, f.name, f.max_size
                    ),
                );
            }
        }
        let mut dos = HashSet::new();
        for (i, d) in self.data_objects.iter().enumerate() {
            if d.tag.bytes().len() != 2 || !dos.insert(d.tag.clone()) {
                return err(
                    format!("data_objects[{i}].tag"),
                    format!("`{}` must be a unique two-byte tag", d.tag),
                );
            }
        }
        Ok(())
    }

    fn validate_secrets(&self, file: &str) -> Result<(), SpecError> {
        let err = |field: String, problem: String| Err(SpecError::invalid(file, field, problem));
        let mut refs = HashSet::new();
        for (i, p) in self.pins.iter().enumerate() {
            if p.reference.bytes().len() != 1 || !refs.insert(p.reference.clone()) {
                return err(
                    format!("pins[{i}].reference"),
                    format!(
                        "`{}` must be a unique one-byte reference",
                        crate::input::quote(&p.reference.to_string())
                    ),
                );
            }
            if !(1..=15).contains(&p.retries) {
                return err(
                    format!("pins[{i}].retries"),
                    format!("{} does not fit the X of 63CX (1..=15)", p.retries),
                );
            }
            if p.min_length == 0 || p.min_length > p.max_length || p.max_length > 8 {
                return err(
                    format!("pins[{i}].min_length"),
                    format!(
                        "lengths {}..={} must satisfy 1 <= min <= max <= 8 (the PIN block)",
                        p.min_length, p.max_length
                    ),
                );
            }
        }
        for (i, k) in self.keys.iter().enumerate() {
            if k.reference.bytes().len() != 1 {
                return err(
                    format!("keys[{i}].reference"),
                    format!("`{}` must be one byte", k.reference),
                );
            }
        }
        let mut cmds = HashSet::new();
        for (i, c) in self.commands.iter().enumerate() {
            if c.ins.bytes().len() != 1 {
                return err(
                    format!("commands[{i}].ins"),
                    format!("`{}` must be one byte", c.ins),
                );
            }
            if !cmds.insert(c.name.as_str()) {
                return err(
                    format!("commands[{i}].name"),
                    format!("duplicate command `{}`", c.name),
                );
            }
        }
        Ok(())
    }
}

pub(crate) fn check_aid(file: &str, field: &str, aid: &Hex) -> Result<(), SpecError> {
    if (5..=16).contains(&aid.bytes().len()) {
        Ok(())
    } else {
        Err(SpecError::invalid(
            file,
            field,
            format!(
                "AID {} must be 5 to 16 bytes (ISO 7816-5)",
                crate::input::quote(&aid.to_string())
            ),
        ))
    }
}
