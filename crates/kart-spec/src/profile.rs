//! Vendor profiles: `profiles/*.toml`.

use crate::applet::check_aid;
use crate::error::SpecError;
use crate::hex::Hex;
use crate::latency::Latency;
use kart_apdu::CardCaps;
use serde::Deserialize;

/// Transmission protocol of the contact interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Protocol {
    /// Character protocol: short APDUs, GET RESPONSE.
    #[serde(rename = "T=0")]
    T0,
    /// Block protocol.
    #[serde(rename = "T=1")]
    T1,
}

/// APDU limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest Nc of one APDU.
    pub max_command_data: usize,
    /// Largest Ne of one APDU.
    pub max_response_data: usize,
    /// Extended length APDUs accepted.
    pub extended_length: bool,
    /// Command chaining accepted.
    pub chaining: bool,
}

/// GP secure channel protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Scp {
    /// SCP02, 3DES.
    #[serde(rename = "SCP02")]
    Scp02,
    /// SCP03, AES.
    #[serde(rename = "SCP03")]
    Scp03,
}

/// How the issuer's master keys become this card's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Diversification {
    /// The master keys are the card keys.
    None,
    /// EMV CPS 1.1.
    EmvCps,
    /// VISA2.
    Visa2,
    /// SP 800-108 KDF with AES-CMAC (SCP03 style).
    Kdf3,
}

/// Secure-channel parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecureChannel {
    /// SCP02 or SCP03.
    pub scp: Scp,
    /// The i-parameter.
    #[serde(deserialize_with = "one_byte")]
    pub i: u8,
    /// Key version number answered by INITIALIZE UPDATE.
    #[serde(deserialize_with = "one_byte")]
    pub key_version: u8,
    /// Key length in bytes.
    pub key_length: usize,
    /// Key diversification.
    pub diversification: Diversification,
}

fn one_byte<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    let h = Hex::deserialize(d)?;
    match h.bytes() {
        [b] => Ok(*b),
        _ => Err(serde::de::Error::custom(format!(
            "`{h}` must be exactly one byte"
        ))),
    }
}

/// What the card answers to an Ne it cannot satisfy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum WrongLe {
    /// `6Cxx` with the exact count.
    #[serde(rename = "6CXX")]
    ExactLe,
    /// The available bytes with `6282`.
    #[serde(rename = "6282")]
    EndOfFile,
}

/// Vendor quirks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quirks {
    /// Data of every command comes through `61xx` + GET RESPONSE.
    pub get_response: bool,
    /// Largest READ BINARY answer.
    pub max_read_chunk: usize,
    /// Answer to an unsatisfiable Ne.
    pub wrong_le: WrongLe,
}

/// The algorithm of the holder keys (`AUTH_KEY`, `SIGN_KEY`) the card generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum HolderKeyAlgorithm {
    /// EC P-256; signatures ECDSA with SHA-256, raw `r ‖ s`.
    #[default]
    #[serde(rename = "ec-p256")]
    EcP256,
    /// RSA-2048 (public exponent 65537); signatures RSASSA-PKCS1-v1_5 with
    /// SHA-256, as the real card's holder keys.
    #[serde(rename = "rsa-2048")]
    Rsa2048,
}

impl HolderKeyAlgorithm {
    /// Bytes of the card's signatures (applet spec §8.10): raw `r ‖ s` or
    /// one RSA-2048 block.
    ///
    /// ```
    /// assert_eq!(kart_spec::HolderKeyAlgorithm::Rsa2048.signature_len(), 256);
    /// ```
    pub fn signature_len(self) -> usize {
        match self {
            Self::EcP256 => 64,
            Self::Rsa2048 => 256,
        }
    }
}

/// One vendor's card.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Short id, the file's stem (`vendor-a`).
    pub id: String,
    /// Human name.
    pub name: String,
    /// T=0 or T=1.
    pub protocol: Protocol,
    /// Answer To Reset.
    pub atr: Hex,
    /// `FF` where the ATR byte must match, `00` where it may vary.
    pub atr_mask: Hex,
    /// The national-ID applet's AID on this card.
    pub applet_aid: Hex,
    /// APDU limits.
    pub limits: Limits,
    /// Secure channel.
    pub secure_channel: SecureChannel,
    /// Quirks.
    pub quirks: Quirks,
    /// The holder keys' algorithm (default `ec-p256`).
    #[serde(default)]
    pub holder_key: HolderKeyAlgorithm,
    /// Latency model.
    pub latency: Latency,
    /// Deliberate non-conformances the simulator plants in this profile's
    /// cards (`[test] planted_defects`); empty for every real vendor. A
    /// profile with planted defects is a test fixture for the QA suite, kept
    /// apart in [`Spec::test_profiles`](crate::Spec::test_profiles).
    #[serde(default)]
    pub test: TestFixture,
}

/// The `[test]` table of a profile that describes a deliberately faulty card.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFixture {
    /// What the simulated card does wrong.
    #[serde(default)]
    pub planted_defects: Vec<Defect>,
}

/// A non-conformance the simulator can plant, each caught by the QA suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum Defect {
    /// An unknown instruction answers `6F00` instead of `6D00` (README §8).
    #[serde(rename = "unknown-ins-answers-6f00")]
    UnknownInsAnswers6F00,
    /// A wrong PIN answers `63CX` but the try counter is not decremented (§8.6).
    #[serde(rename = "pin-counter-not-decremented")]
    PinCounterNotDecremented,
    /// A LOCKED card accepts UPDATE BINARY inside a secure channel (§4).
    #[serde(rename = "writes-when-locked")]
    WritesWhenLocked,
    /// GET DATA answers after 400 ms, far beyond the latency model (§5).
    #[serde(rename = "slow-get-data")]
    SlowGetData,
    /// GET CHALLENGE returns a counter instead of random bytes (§8.12).
    #[serde(rename = "counter-challenge")]
    CounterChallenge,
}

impl Profile {
    /// Parses and validates one profile file; `file` names it in errors.
    pub fn from_toml_str(file: &str, text: &str) -> Result<Profile, SpecError> {
        let p: Profile = toml::from_str(text).map_err(|e| SpecError::parse(file, text, &e))?;
        p.validate(file)?;
        Ok(p)
    }

    /// Whether `atr` is this vendor's ATR (masked comparison).
    ///
    /// ```
    /// let spec = kart_spec::Spec::embedded()?;
    /// let a = spec.profile("vendor-a").unwrap();
    /// assert!(a.matches_atr(a.atr.bytes()));
    /// assert!(!a.matches_atr(&[0x3B, 0x00]));
    /// # Ok::<(), kart_spec::SpecError>(())
    /// ```
    pub fn matches_atr(&self, atr: &[u8]) -> bool {
        atr.len() == self.atr.bytes().len()
            && atr
                .iter()
                .zip(self.atr.bytes().iter().zip(self.atr_mask.bytes()))
                .all(|(got, (want, mask))| got & mask == want & mask)
    }

    /// The capabilities a [`kart_apdu::Card`] session should use with this card.
    ///
    /// ```
    /// let spec = kart_spec::Spec::embedded()?;
    /// let caps = spec.profile("vendor-b").unwrap().caps();
    /// assert!(caps.extended_length);
    /// assert_eq!(caps.max_command_data, 2048);
    /// # Ok::<(), kart_spec::SpecError>(())
    /// ```
    pub fn caps(&self) -> CardCaps {
        CardCaps {
            extended_length: self.limits.extended_length,
            chaining: self.limits.chaining,
            max_command_data: self.limits.max_command_data,
            max_response_data: self
                .limits
                .max_response_data
                .min(self.quirks.max_read_chunk),
        }
    }

    fn validate(&self, file: &str) -> Result<(), SpecError> {
        let err = |field: &str, problem: String| Err(SpecError::invalid(file, field, problem));
        check_aid(file, "applet_aid", &self.applet_aid)?;
        if self.atr_mask.bytes().len() != self.atr.bytes().len() {
            return err(
                "atr_mask",
                format!(
                    "mask has {} bytes but the ATR has {}",
                    self.atr_mask.bytes().len(),
                    self.atr.bytes().len()
                ),
            );
        }
        let atr =
            AtrInfo::parse(self.atr.bytes()).map_err(|p| SpecError::invalid(file, "atr", p))?;
        match (self.protocol, atr.offers_t1) {
            (Protocol::T0, true) => return err("protocol", "T=0 but the ATR offers T=1".into()),
            (Protocol::T1, false) => {
                return err(
                    "protocol",
                    "T=1 but the ATR offers only T=0 (no TDi names T=1)".into(),
                )
            }
            _ => {}
        }
        if let Err((field, problem)) = self.latency.keygen.check() {
            return err(&format!("latency.keygen.{field}"), problem);
        }
        let l = self.limits;
        if l.max_command_data == 0 || l.max_response_data == 0 {
            return err(
                "limits",
                "max_command_data and max_response_data must be at least 1".into(),
            );
        }
        if l.extended_length && self.protocol == Protocol::T0 {
            return err(
                "limits.extended_length",
                "T=0 cannot carry extended length APDUs (it would need ENVELOPE)".into(),
            );
        }
        for (field, value, short_max) in [
            ("limits.max_command_data", l.max_command_data, 255),
            ("limits.max_response_data", l.max_response_data, 256),
        ] {
            if !l.extended_length && value > short_max {
                return err(
                    field,
                    format!(
                        "{value} needs extended length, which this profile does not have (max {short_max})"
                    ),
                );
            }
        }
        if l.max_command_data > 65_535 || l.max_response_data > 65_536 {
            return err(
                "limits",
                "limits exceed extended length APDUs (65535 / 65536)".into(),
            );
        }
        if self.quirks.max_read_chunk == 0 || self.quirks.max_read_chunk > l.max_response_data {
            return err(
                "quirks.max_read_chunk",
                format!(
                    "{} must be 1..={} (max_response_data)",
                    self.quirks.max_read_chunk, l.max_response_data
                ),
            );
        }
        let sc = self.secure_channel;
        match (sc.scp, sc.key_length) {
            (Scp::Scp02, 16) | (Scp::Scp03, 16 | 24 | 32) => {}
            (Scp::Scp02, n) => {
                return err(
                    "secure_channel.key_length",
                    format!("SCP02 uses 16-byte 3DES keys, not {n}"),
                )
            }
            (Scp::Scp03, n) => {
                return err(
                    "secure_channel.key_length",
                    format!("SCP03 uses 16, 24 or 32-byte AES keys, not {n}"),
                )
            }
        }
        Ok(())
    }
}

/// What an ATR's structure says (ISO/IEC 7816-3 §8.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtrInfo {
    /// Some `TDi` names T=1 (or another protocol than T=0).
    pub offers_t1: bool,
    /// The historical bytes.
    pub historical: Vec<u8>,
}

impl AtrInfo {
    /// Parses the structure of an ATR: interface bytes, historical bytes, TCK.
    ///
    /// ```
    /// let info = kart_spec::AtrInfo::parse(&[0x3B, 0x02, 0x14, 0x50])?;
    /// assert_eq!(info.historical, [0x14, 0x50]);
    /// assert!(!info.offers_t1);
    /// # Ok::<(), String>(())
    /// ```
    pub fn parse(atr: &[u8]) -> Result<AtrInfo, String> {
        let (Some(&ts), Some(&t0)) = (atr.first(), atr.get(1)) else {
            return Err("an ATR has at least TS and T0".into());
        };
        if ts != 0x3B && ts != 0x3F {
            return Err(format!("TS {ts:02X} is neither 3B nor 3F"));
        }
        let hist_len = usize::from(t0 & 0x0F);
        let (mut y, mut at, mut offers_t1, mut needs_tck) = (t0 >> 4, 2usize, false, false);
        loop {
            at += (y & 0x7).count_ones() as usize;
            if y & 0x8 == 0 {
                break;
            }
            let Some(&td) = atr.get(at) else {
                return Err(format!("ATR ends inside its interface bytes at byte {at}"));
            };
            at += 1;
            if td & 0x0F != 0 {
                offers_t1 = true;
                needs_tck = true;
            }
            y = td >> 4;
        }
        let end = at + hist_len + usize::from(needs_tck);
        if atr.len() != end {
            return Err(format!("T0 and TDi announce {end} bytes ({hist_len} historical, TCK {}) but the ATR has {}", if needs_tck { "present" } else { "absent" }, atr.len()));
        }
        if needs_tck && atr.iter().skip(1).fold(0u8, |x, b| x ^ b) != 0 {
            return Err("TCK is wrong: T0..TCK must XOR to 00".into());
        }
        Ok(AtrInfo {
            offers_t1,
            historical: atr.get(at..at + hist_len).unwrap_or_default().to_vec(),
        })
    }
}
