//! The national-ID applet's vocabulary, written once: its files, PIN and key
//! references, data objects, life cycle and the commands that use them
//! (`applets-spec/nid-applet.toml`; the tests below check every constant
//! against the embedded spec, so the two cannot drift apart).
//!
//! ```
//! use kart_perso::applet::{self, Lifecycle, EF_SOD};
//! let spec = kart_spec::Spec::embedded()?;
//! assert_eq!(spec.applet.file(EF_SOD.name).unwrap().fid_u16(), EF_SOD.fid);
//! assert_eq!(Lifecycle::from_code(0x83), Lifecycle::Locked);
//! // SELECT by AID without asking for the FCI (P2 0C): 00 A4 04 0C Lc AID.
//! let select = applet::select_applet(&[0xF0, 0x01])?;
//! assert_eq!(select.to_vec(), [0x00, 0xA4, 0x04, 0x0C, 0x02, 0xF0, 0x01]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use kart_apdu::{Command, CommandError};

/// An elementary file of the applet: its name in the spec and its FID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ef {
    /// The spec's name (`EF.ID`).
    pub name: &'static str,
    /// The file identifier.
    pub fid: u16,
}

impl Ef {
    /// The file `name` with identifier `fid`.
    ///
    /// ```
    /// let ef = kart_perso::applet::Ef::new("EF.ID", 0x0101);
    /// assert_eq!(ef, kart_perso::applet::EF_ID);
    /// ```
    pub const fn new(name: &'static str, fid: u16) -> Self {
        Ef { name, fid }
    }
}

/// `EF.ID` (`0101`): identity data, template `E1`.
pub const EF_ID: Ef = Ef::new("EF.ID", 0x0101);
/// `EF.FACE` (`0102`): the facial image.
pub const EF_FACE: Ef = Ef::new("EF.FACE", 0x0102);
/// `EF.FINGER` (`0103`): the optional fingerprint template.
pub const EF_FINGER: Ef = Ef::new("EF.FINGER", 0x0103);
/// `EF.PIN_STATUS` (`0104`): retry counters, kept by the card.
pub const EF_PIN_STATUS: Ef = Ef::new("EF.PIN_STATUS", 0x0104);
/// `EF.SOD` (`011D`): the security object.
pub const EF_SOD: Ef = Ef::new("EF.SOD", 0x011D);
/// `EF.CERT_AUTH` (`0201`): the authentication key's certificate.
pub const EF_CERT_AUTH: Ef = Ef::new("EF.CERT_AUTH", 0x0201);
/// `EF.CERT_SIGN` (`0202`): the signing key's certificate.
pub const EF_CERT_SIGN: Ef = Ef::new("EF.CERT_SIGN", 0x0202);

/// GET DATA `9F7F`: the CPLC.
pub const TAG_CPLC: u16 = 0x9F7F;
/// GET DATA `DF71`: the applet's life-cycle state.
pub const TAG_LIFECYCLE: u16 = 0xDF71;
/// GET DATA / PUT DATA `DF72`: the card registration number.
pub const TAG_CRN: u16 = 0xDF72;

/// Length of a PIN block on the wire (spec §3).
pub const PIN_BLOCK_LEN: usize = 8;

/// The applet's PINs (spec §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PinRef {
    /// `81`: the ID PIN (reading the identity files, authentication).
    IdPin,
    /// `82`: the SIGN PIN (one signature per VERIFY).
    SignPin,
    /// `83`: the PUK (unblocks the other two).
    Puk,
}

impl PinRef {
    /// All three, in spec order.
    pub const ALL: [PinRef; 3] = [PinRef::IdPin, PinRef::SignPin, PinRef::Puk];

    /// The reference byte (P2 of VERIFY and CHANGE REFERENCE DATA).
    pub const fn reference(self) -> u8 {
        match self {
            PinRef::IdPin => 0x81,
            PinRef::SignPin => 0x82,
            PinRef::Puk => 0x83,
        }
    }

    /// The spec's name (`ID_PIN`).
    pub const fn name(self) -> &'static str {
        match self {
            PinRef::IdPin => "ID_PIN",
            PinRef::SignPin => "SIGN_PIN",
            PinRef::Puk => "PUK",
        }
    }
}

/// The PIN block of `digits` for `pin` (spec §3): ASCII digits right-padded
/// with `FF` to [`PIN_BLOCK_LEN`] bytes; the PUK is its 8 digits unpadded.
/// Digits longer than a block are kept whole, for the card to refuse.
pub fn pin_block(pin: PinRef, digits: &[u8]) -> zeroize::Zeroizing<Vec<u8>> {
    let mut block = zeroize::Zeroizing::new(digits.to_vec());
    if pin != PinRef::Puk && block.len() < PIN_BLOCK_LEN {
        block.resize(PIN_BLOCK_LEN, 0xFF);
    }
    block
}

/// The holder key pairs (spec §10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyRef {
    /// `01`: INTERNAL AUTHENTICATE.
    Auth,
    /// `02`: PSO COMPUTE DIGITAL SIGNATURE.
    Sign,
}

impl KeyRef {
    /// The key reference byte.
    pub const fn byte(self) -> u8 {
        match self {
            Self::Auth => 0x01,
            Self::Sign => 0x02,
        }
    }

    /// The spec's name (`AUTH_KEY`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Auth => "AUTH_KEY",
            Self::Sign => "SIGN_KEY",
        }
    }
}

/// The applet's life-cycle state (spec §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lifecycle {
    /// `07`: personalization allowed, keys can be generated.
    PrePersonalized,
    /// `0F`: personalization writes allowed, no key generation.
    Personalized,
    /// `83`: holder functions only.
    Locked,
    /// A code the spec does not define.
    Unknown(u8),
}

impl Lifecycle {
    /// The three states the spec defines, in order.
    pub const KNOWN: [Lifecycle; 3] = [
        Lifecycle::PrePersonalized,
        Lifecycle::Personalized,
        Lifecycle::Locked,
    ];

    /// The state for its code; [`Lifecycle::Unknown`] for codes the spec lacks.
    pub const fn from_code(code: u8) -> Self {
        match code {
            0x07 => Self::PrePersonalized,
            0x0F => Self::Personalized,
            0x83 => Self::Locked,
            other => Self::Unknown(other),
        }
    }

    /// The state's code (P2 of SET STATUS, the value of `DF71`).
    pub const fn code(self) -> u8 {
        match self {
            Self::PrePersonalized => 0x07,
            Self::Personalized => 0x0F,
            Self::Locked => 0x83,
            Self::Unknown(code) => code,
        }
    }

    /// Whether the spec defines this state.
    pub const fn is_known(self) -> bool {
        !matches!(self, Self::Unknown(_))
    }

    /// The spec's name (`PRE_PERSONALIZED`), `None` for an unknown code.
    pub const fn name(self) -> Option<&'static str> {
        match self {
            Self::PrePersonalized => Some("PRE_PERSONALIZED"),
            Self::Personalized => Some("PERSONALIZED"),
            Self::Locked => Some("LOCKED"),
            Self::Unknown(_) => None,
        }
    }
}

impl serde::Serialize for Lifecycle {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "unknown state {:02X}", self.code()),
        }
    }
}

/// SELECT the applet by AID without asking for its FCI (P2 `0C`).
pub fn select_applet(aid: &[u8]) -> Result<Command, CommandError> {
    Command::new(0x00, 0xA4, 0x04, 0x0C).with_data(aid)
}

/// SELECT the applet by AID, asking for its FCI (P2 `00`, Le 256), whose
/// `8A` byte is the life cycle ([`lifecycle_of_fci`]).
pub fn select_applet_fci(aid: &[u8]) -> Result<Command, CommandError> {
    Command::new(0x00, 0xA4, 0x04, 0x00)
        .with_data(aid)?
        .with_le(256)
}

/// SELECT an EF by FID (P1 `02`, no FCI).
pub fn select_file(fid: u16) -> Result<Command, CommandError> {
    Command::new(0x00, 0xA4, 0x02, 0x0C).with_data(&fid.to_be_bytes())
}

/// READ BINARY of up to `le` bytes at `offset` (15 bits: P1 bit 8 clear).
pub fn read_binary(offset: u16, le: u32) -> Result<Command, CommandError> {
    let [p1, p2] = (offset & 0x7FFF).to_be_bytes();
    Command::new(0x00, 0xB0, p1, p2).with_le(le)
}

/// UPDATE BINARY of `data` at `offset` (15 bits).
pub fn update_binary(offset: u16, data: &[u8]) -> Result<Command, CommandError> {
    let [p1, p2] = (offset & 0x7FFF).to_be_bytes();
    Command::new(0x00, 0xD6, p1, p2).with_data(data)
}

/// ERASE BINARY from `offset` to the end of the file: cuts it to length.
pub fn erase_binary(offset: u16) -> Command {
    let [p1, p2] = (offset & 0x7FFF).to_be_bytes();
    Command::new(0x00, 0x0E, p1, p2)
}

/// GET DATA of `tag` ([`TAG_CPLC`], [`TAG_LIFECYCLE`], [`TAG_CRN`]), Le 256.
pub fn get_data(tag: u16) -> Command {
    let [p1, p2] = tag.to_be_bytes();
    let cmd = Command::new(0x00, 0xCA, p1, p2);
    // Le 256 is within every APDU form; the fallback is never taken.
    cmd.clone().with_le(256).unwrap_or(cmd)
}

/// GET DATA of `tag` with the `GlobalPlatform` class byte `80`, as card
/// managers expect it (the applet takes `00` and `80` alike), Le 256.
pub fn gp_get_data(tag: u16) -> Command {
    let [p1, p2] = tag.to_be_bytes();
    let cmd = Command::new(0x80, 0xCA, p1, p2);
    cmd.clone().with_le(256).unwrap_or(cmd)
}

/// PUT DATA of `tag` (the CRN, inside the secure channel).
pub fn put_data(tag: u16, data: &[u8]) -> Result<Command, CommandError> {
    let [p1, p2] = tag.to_be_bytes();
    Command::new(0x00, 0xDA, p1, p2).with_data(data)
}

/// SET STATUS to `to`. CLA `80`: the secure channel sets bit `04`, giving
/// the `84` of spec §8.13.
pub fn set_status(to: Lifecycle) -> Command {
    Command::new(0x80, 0xF0, 0x40, to.code())
}

/// VERIFY `pin` with its block; the command is marked sensitive.
pub fn verify(pin: PinRef, block: &[u8]) -> Result<Command, CommandError> {
    Ok(Command::new(0x00, 0x20, 0x00, pin.reference())
        .with_data(block)?
        .sensitive())
}

/// CHANGE REFERENCE DATA (P1 `01`: set, no old value) of `pin`; sensitive.
pub fn set_pin(pin: PinRef, block: &[u8]) -> Result<Command, CommandError> {
    Ok(Command::new(0x00, 0x24, 0x01, pin.reference())
        .with_data(block)?
        .sensitive())
}

/// GENERATE ASYMMETRIC KEY PAIR for `key` (P1 `80`), or read its public
/// key (P1 `81`) when `generate` is false; answers up to `le` bytes.
pub fn public_key(key: KeyRef, generate: bool, le: u32) -> Result<Command, CommandError> {
    let p1 = if generate { 0x80 } else { 0x81 };
    Command::new(0x00, 0x47, p1, key.byte()).with_le(le)
}

/// INTERNAL AUTHENTICATE of `challenge` with the authentication key (P2
/// `01`), Le 256: the card signs the challenge (active authentication).
pub fn internal_authenticate(challenge: &[u8]) -> Result<Command, CommandError> {
    Command::new(0x00, 0x88, 0x00, KeyRef::Auth.byte())
        .with_data(challenge)?
        .with_le(256)
}

/// The life cycle from a SELECT FCI `6F { 84 AID, 8A state }`, if it has one.
pub fn lifecycle_of_fci(fci: &[u8]) -> Option<Lifecycle> {
    let object = kart_apdu::tlv::parse(fci).ok()?;
    match kart_apdu::tlv::value_at(&object, &[0x6F, 0x8A]).ok()? {
        [code] => Some(Lifecycle::from_code(*code)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> kart_spec::Spec {
        kart_spec::Spec::embedded().expect("embedded spec")
    }

    #[test]
    fn every_file_constant_is_the_spec_file() {
        let spec = spec();
        let ours = [
            EF_ID,
            EF_FACE,
            EF_FINGER,
            EF_PIN_STATUS,
            EF_SOD,
            EF_CERT_AUTH,
            EF_CERT_SIGN,
        ];
        assert_eq!(ours.len(), spec.applet.files.len());
        for ef in ours {
            let f = spec
                .applet
                .file(ef.name)
                .unwrap_or_else(|| panic!("{}", ef.name));
            assert_eq!(f.fid_u16(), ef.fid, "{}", ef.name);
        }
    }

    #[test]
    fn pin_key_and_lifecycle_codes_are_the_spec_codes() {
        let spec = spec();
        for pin in PinRef::ALL {
            let s = spec
                .applet
                .pin(pin.name())
                .unwrap_or_else(|| panic!("{}", pin.name()));
            assert_eq!(s.reference.bytes(), [pin.reference()], "{}", pin.name());
        }
        for key in [KeyRef::Auth, KeyRef::Sign] {
            let s = spec
                .applet
                .keys
                .iter()
                .find(|k| k.name == key.name())
                .unwrap_or_else(|| panic!("{}", key.name()));
            assert_eq!(s.reference.bytes(), [key.byte()], "{}", key.name());
        }
        assert_eq!(spec.applet.lifecycle.len(), Lifecycle::KNOWN.len());
        for state in Lifecycle::KNOWN {
            let name = state.name().expect("known");
            assert_eq!(
                spec.applet.lifecycle_code(name),
                Some(state.code()),
                "{name}"
            );
            assert_eq!(Lifecycle::from_code(state.code()), state);
        }
        for tag in [TAG_CPLC, TAG_LIFECYCLE, TAG_CRN] {
            assert!(
                spec.applet
                    .data_objects
                    .iter()
                    .any(|d| d.tag.bytes() == tag.to_be_bytes()),
                "{tag:04X}"
            );
        }
    }

    #[test]
    fn pin_blocks_pad_pins_but_not_the_puk() {
        assert_eq!(
            pin_block(PinRef::IdPin, b"4821").as_slice(),
            [b'4', b'8', b'2', b'1', 0xFF, 0xFF, 0xFF, 0xFF]
        );
        assert_eq!(
            pin_block(PinRef::SignPin, b"73914628").as_slice(),
            b"73914628"
        );
        assert_eq!(pin_block(PinRef::Puk, b"12345678").as_slice(), b"12345678");
        assert_eq!(pin_block(PinRef::IdPin, b"123456789").len(), 9);
    }

    #[test]
    fn an_unknown_code_keeps_its_value() {
        let state = Lifecycle::from_code(0x42);
        assert_eq!(state, Lifecycle::Unknown(0x42));
        assert_eq!(state.code(), 0x42);
        assert_eq!(state.to_string(), "unknown state 42");
        assert!(!state.is_known());
    }

    #[test]
    fn builders_encode_the_spec_headers() -> Result<(), CommandError> {
        assert_eq!(
            select_applet_fci(&[0xA0])?.to_vec(),
            [0x00, 0xA4, 0x04, 0x00, 0x01, 0xA0, 0x00]
        );
        assert_eq!(
            select_file(0x011D)?.to_vec(),
            [0x00, 0xA4, 0x02, 0x0C, 0x02, 0x01, 0x1D]
        );
        assert_eq!(
            read_binary(0x0102, 16)?.to_vec(),
            [0x00, 0xB0, 0x01, 0x02, 0x10]
        );
        assert_eq!(
            update_binary(0x00EF, &[0xAA])?.to_vec(),
            [0x00, 0xD6, 0x00, 0xEF, 0x01, 0xAA]
        );
        assert_eq!(erase_binary(0x0010).to_vec(), [0x00, 0x0E, 0x00, 0x10]);
        assert_eq!(get_data(TAG_CRN).to_vec(), [0x00, 0xCA, 0xDF, 0x72, 0x00]);
        assert_eq!(
            gp_get_data(TAG_CPLC).to_vec(),
            [0x80, 0xCA, 0x9F, 0x7F, 0x00]
        );
        assert_eq!(
            put_data(TAG_CRN, b"1")?.to_vec(),
            [0x00, 0xDA, 0xDF, 0x72, 0x01, b'1']
        );
        assert_eq!(
            set_status(Lifecycle::Locked).to_vec(),
            [0x80, 0xF0, 0x40, 0x83]
        );
        let v = verify(PinRef::IdPin, &[0x31; 8])?;
        assert!(v.is_sensitive());
        assert_eq!(
            v.to_vec().get(..5),
            Some(&[0x00, 0x20, 0x00, 0x81, 0x08][..])
        );
        assert!(set_pin(PinRef::Puk, &[0x31; 8])?.is_sensitive());
        assert_eq!(
            internal_authenticate(&[0xC0, 0xFF])?.to_vec(),
            [0x00, 0x88, 0x00, 0x01, 0x02, 0xC0, 0xFF, 0x00]
        );
        assert_eq!(
            public_key(KeyRef::Sign, true, 256)?.to_vec(),
            [0x00, 0x47, 0x80, 0x02, 0x00]
        );
        Ok(())
    }

    #[test]
    fn the_fci_gives_the_life_cycle() {
        let fci = [0x6F, 0x06, 0x84, 0x01, 0xA0, 0x8A, 0x01, 0x0F];
        assert_eq!(lifecycle_of_fci(&fci), Some(Lifecycle::Personalized));
        assert_eq!(lifecycle_of_fci(&[0x6F, 0x03, 0x84, 0x01, 0xA0]), None);
        assert_eq!(lifecycle_of_fci(&[0xFF]), None);
    }
}
