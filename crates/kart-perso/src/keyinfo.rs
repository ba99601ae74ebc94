//! The card's Key Information Template (GP Card Specification 2.3.1
//! §11.3.3.1, GET DATA `00E0` on the security domain), and why a secure
//! channel did not open: what the card holds against what the issuer offers.
//!
//! ```
//! use kart_perso::keyinfo::{parse_key_information, KeyType};
//! let kit = hex::decode("E012C00401308810C00402308810C00403308810").unwrap();
//! let keys = parse_key_information(&kit)?;
//! assert_eq!(keys.len(), 3);
//! assert_eq!((keys[0].id, keys[0].version, keys[0].kind, keys[0].length), (1, 0x30, KeyType::Aes, 16));
//! assert_eq!(keys[0].to_string(), "key 01 version 30 AES-128");
//! # Ok::<(), kart_perso::keyinfo::KeyInfoError>(())
//! ```

use std::fmt;

use kart_apdu::gp::{Diversification, ScpParams, ScpVersion};
use kart_apdu::{tlv, Card, Transport};
use thiserror::Error;

/// A key type of the template (GP 2.3.1 Table 11-16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// `80`: DES (3DES) as SCP02 uses.
    Des,
    /// `88`: AES as SCP03 uses.
    Aes,
    /// Another type byte.
    Other(u8),
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyType::Des => f.write_str("3DES"),
            KeyType::Aes => f.write_str("AES"),
            KeyType::Other(b) => write!(f, "type {b:02X}"),
        }
    }
}

/// One key the card holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyInfo {
    /// Key identifier (`01` ENC, `02` MAC, `03` DEK in a GP key set).
    pub id: u8,
    /// Key version number.
    pub version: u8,
    /// Its type (first component).
    pub kind: KeyType,
    /// Its length in bytes (first component).
    pub length: u8,
}

impl fmt::Display for KeyInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "key {:02X} version {:02X} {}",
            self.id,
            self.version,
            kind_and_length(self.kind, usize::from(self.length))
        )
    }
}

fn kind_and_length(kind: KeyType, len: usize) -> String {
    match kind {
        KeyType::Aes => format!("AES-{}", len * 8),
        KeyType::Des if len == 16 => "2-key 3DES".to_owned(),
        KeyType::Des => format!("3DES ({len} bytes)"),
        KeyType::Other(_) => format!("{kind}, {len} bytes"),
    }
}

/// The template did not decode.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("the card's key information template (GET DATA 00E0) is malformed: {0}")]
pub struct KeyInfoError(pub String);

/// Decodes a GET DATA `00E0` answer: `E0 L` with one `C0` per key
/// (`id version type length [type length …]`).
pub fn parse_key_information(answer: &[u8]) -> Result<Vec<KeyInfo>, KeyInfoError> {
    let bad = |why: String| KeyInfoError(why);
    let root = tlv::parse(answer).map_err(|e| bad(e.to_string()))?;
    if tlv::tag_number(&root) != 0xE0 {
        return Err(bad(format!("tag {:X}, not E0", tlv::tag_number(&root))));
    }
    let tlv::Value::Constructed(children) = root.value() else {
        return Err(bad("E0 is not constructed".into()));
    };
    let mut keys = Vec::new();
    for c in children.iter().filter(|c| tlv::tag_number(c) == 0xC0) {
        let tlv::Value::Primitive(v) = c.value() else {
            return Err(bad("C0 is constructed".into()));
        };
        let [id, version, kind, length, ..] = v.as_slice() else {
            return Err(bad(format!("C0 of {} bytes, not at least 4", v.len())));
        };
        keys.push(KeyInfo {
            id: *id,
            version: *version,
            kind: match kind {
                0x80 => KeyType::Des,
                0x88 => KeyType::Aes,
                b => KeyType::Other(*b),
            },
            length: *length,
        });
    }
    Ok(keys)
}

/// Selects the security domain `isd_aid` and reads its key information
/// template; `Ok(None)` when the card does not give one (any refusal).
/// Leaves the security domain selected.
pub fn read_key_information<T: Transport>(
    card: &mut Card<T>,
    isd_aid: &[u8],
) -> Result<Option<Vec<KeyInfo>>, kart_apdu::CardError> {
    let select = crate::applet::select_applet(isd_aid)?;
    if !card.send(&select)?.is_success() {
        return Ok(None);
    }
    let get = crate::applet::gp_get_data(0x00E0);
    let r = card.send(&get)?;
    if !r.is_success() {
        return Ok(None);
    }
    Ok(parse_key_information(r.data()).ok())
}

fn diversification_name(d: Diversification) -> &'static str {
    match d {
        Diversification::None => "none",
        Diversification::EmvCps11 => "EMV CPS 1.1",
        Diversification::Visa2 => "VISA2",
        Diversification::Kdf3 => "KDF3 (NIST SP 800-108, AES-CMAC)",
    }
}

/// Why the card's cryptogram did not match, in words: what the card holds
/// (`card`, from [`read_key_information`]; `None` when it does not say),
/// what the issuer offers for the profile (keys of `offered_len` bytes under
/// `params.key_version`, wherever they live: a file or a token), and the
/// diversification tried.
pub fn explain_cryptogram_mismatch(
    card: Option<&[KeyInfo]>,
    offered_len: usize,
    params: &ScpParams,
    profile: &str,
) -> String {
    let offered_kind = match params.version {
        Some(ScpVersion::Scp02) => KeyType::Des,
        _ => KeyType::Aes,
    };
    let offer = format!(
        "the issuer offers key version {:02X}, {} for {profile}",
        params.key_version,
        kind_and_length(offered_kind, offered_len)
    );
    let tried = format!(
        "diversification tried: {}",
        diversification_name(params.diversification)
    );
    let Some(keys) = card.filter(|k| !k.is_empty()) else {
        return format!(
            "the card gives no key information (GET DATA 00E0); {offer}; {tried} — check the issuer's key set for this vendor's cards"
        );
    };
    let mut versions: Vec<u8> = keys.iter().map(|k| k.version).collect();
    versions.dedup();
    let held = keys
        .iter()
        .find(|k| k.version == params.key_version)
        .or(keys.first());
    let holds = match held {
        Some(k) => format!(
            "the card holds key version {:02X}, {}",
            k.version,
            kind_and_length(k.kind, usize::from(k.length))
        ),
        None => "the card holds no keys".to_owned(),
    };
    let verdict = match held {
        Some(k) if k.version != params.key_version => format!(
            "the key versions differ (the card has {}): use the issuer's key set of version {:02X}, or put keys of version {:02X} on the card",
            versions.iter().map(|v| format!("{v:02X}")).collect::<Vec<_>>().join(", "),
            k.version,
            params.key_version
        ),
        Some(k) if usize::from(k.length) != offered_len || k.kind != offered_kind => {
            "the key types or lengths differ: the issuer's keys are not for this card's secure channel".to_owned()
        }
        _ => "version and length agree, so the key values differ: the card was keyed for another issuer or another diversification".to_owned(),
    };
    format!("{holds}; {offer}; {tried} — {verdict}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(version: u8, scp: ScpVersion) -> ScpParams {
        ScpParams {
            key_version: version,
            diversification: Diversification::Kdf3,
            scp02_i: 0x55,
            version: Some(scp),
        }
    }

    #[test]
    fn malformed_templates_are_errors() {
        for bad in ["", "E0", "E1020000", "E003C00101", "C00401308810"] {
            assert!(
                parse_key_information(&hex::decode(bad).unwrap()).is_err(),
                "{bad}"
            );
        }
        assert_eq!(
            parse_key_information(&hex::decode("E000").unwrap()).unwrap(),
            []
        );
    }

    #[test]
    fn the_explanation_names_both_sides_and_the_cause() {
        let card = parse_key_information(
            &hex::decode("E012C00401308810C00402308810C00403308810").unwrap(),
        )
        .unwrap();
        let both_sides = "the card holds key version 30, AES-128; the issuer offers key version 31, AES-128 for vendor-b; diversification tried: KDF3";
        for (card, issuer_version, starts, cause) in [
            (Some(&card[..]), 0x31, both_sides, "key versions differ"),
            (Some(&card), 0x30, "", "key values differ"),
            (None, 0x30, "", "gives no key information"),
        ] {
            let e = explain_cryptogram_mismatch(
                card,
                16,
                &params(issuer_version, ScpVersion::Scp03),
                "vendor-b",
            );
            assert!(e.starts_with(starts), "{e}");
            assert!(e.contains(cause), "{e}");
        }
    }
}
