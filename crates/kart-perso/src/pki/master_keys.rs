//! Secure-channel master keys file (`GlobalPlatform` SCP02 and SCP03: ENC, MAC and DEK keys).
//!
//! Format (`master-keys.json`, mode 0600, hex keys):
//!
//! ```json
//! { "format": "kart-master-keys/1",
//!   "key_sets": [
//!     { "name": "scp02", "algorithm": "3des", "version": 1,
//!       "enc": "<32 hex>", "mac": "<32 hex>", "dek": "<32 hex>" },
//!     { "name": "scp03-aes128", "algorithm": "aes128", "version": 1, ... },
//!     { "name": "scp03-aes192", "algorithm": "aes192", "version": 1, ... },
//!     { "name": "scp03-aes256", "algorithm": "aes256", "version": 1, ... } ] }
//! ```
//!
//! `3des` keys are 16 bytes (two-key triple DES), `aes128` 16, `aes192` 24
//! and `aes256` 32.
//! These are issuer *master* keys; the engine diversifies them per card.

use std::fmt;
use std::path::Path;

use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::PkiError;

const FORMAT: &str = "kart-master-keys/1";

/// The block cipher of a secure-channel key set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecureChannelAlgorithm {
    /// Two-key triple DES (SCP02), 16-byte keys.
    #[serde(rename = "3des")]
    TripleDes,
    /// AES-128 (SCP03), 16-byte keys.
    #[serde(rename = "aes128")]
    Aes128,
    /// AES-192 (SCP03), 24-byte keys.
    #[serde(rename = "aes192")]
    Aes192,
    /// AES-256 (SCP03), 32-byte keys.
    #[serde(rename = "aes256")]
    Aes256,
}

impl SecureChannelAlgorithm {
    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::TripleDes | Self::Aes128 => 16,
            Self::Aes192 => 24,
            Self::Aes256 => 32,
        }
    }

    /// The algorithm of a secure channel with `scp` and `key_length`-byte
    /// keys, if a master key set can provide it.
    ///
    /// ```
    /// use kart_perso::pki::SecureChannelAlgorithm;
    /// use kart_spec::Scp;
    /// assert_eq!(SecureChannelAlgorithm::for_channel(Scp::Scp03, 24), Some(SecureChannelAlgorithm::Aes192));
    /// assert_eq!(SecureChannelAlgorithm::for_channel(Scp::Scp02, 24), None);
    /// ```
    pub fn for_channel(scp: kart_spec::Scp, key_length: usize) -> Option<Self> {
        use kart_spec::Scp;
        match (scp, key_length) {
            (Scp::Scp02, 16) => Some(Self::TripleDes),
            (Scp::Scp03, 16) => Some(Self::Aes128),
            (Scp::Scp03, 24) => Some(Self::Aes192),
            (Scp::Scp03, 32) => Some(Self::Aes256),
            _ => None,
        }
    }
}

/// One ENC/MAC/DEK master key triple. `Debug` redacts the keys; they are
/// zeroized on drop.
pub struct MasterKeySet {
    /// Name the profiles refer to (e.g. `scp03-aes128`).
    pub name: String,
    /// Cipher.
    pub algorithm: SecureChannelAlgorithm,
    /// Key version number (KVN) on the card.
    pub version: u8,
    enc: Zeroizing<Vec<u8>>,
    mac: Zeroizing<Vec<u8>>,
    dek: Zeroizing<Vec<u8>>,
}

/// Shows name, algorithm and version; the keys are left out.
impl fmt::Debug for MasterKeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKeySet")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl MasterKeySet {
    /// Encryption master key.
    pub fn enc(&self) -> &[u8] {
        &self.enc
    }
    /// MAC master key.
    pub fn mac(&self) -> &[u8] {
        &self.mac
    }
    /// Data-encryption master key.
    pub fn dek(&self) -> &[u8] {
        &self.dek
    }
}

#[derive(Serialize, Deserialize)]
struct FileRepr<'a> {
    format: &'a str,
    #[serde(borrow)]
    key_sets: Vec<SetRepr<'a>>,
}

#[derive(Serialize, Deserialize)]
struct SetRepr<'a> {
    name: &'a str,
    algorithm: SecureChannelAlgorithm,
    version: u8,
    enc: &'a str,
    mac: &'a str,
    dek: &'a str,
}

/// The issuer's secure-channel master keys.
///
/// ```
/// use kart_perso::pki::{MasterKeys, SecureChannelAlgorithm};
/// let keys = MasterKeys::generate()?;
/// let again = MasterKeys::from_json(&keys.to_json()?)?;
/// let set = again.get("scp03-aes256").unwrap();
/// assert_eq!(set.algorithm, SecureChannelAlgorithm::Aes256);
/// assert_eq!(set.enc(), keys.get("scp03-aes256").unwrap().enc());
/// assert!(!format!("{set:?}").contains(&hex::encode(set.enc())));
/// # Ok::<(), kart_perso::pki::PkiError>(())
/// ```
#[derive(Debug)]
pub struct MasterKeys {
    sets: Vec<MasterKeySet>,
}

impl MasterKeys {
    /// No key sets (a token issuer keeps its master keys in the token).
    pub fn empty() -> Self {
        Self { sets: Vec::new() }
    }

    /// Fresh random key sets `scp02` (3DES), `scp03-aes128`, `scp03-aes192`
    /// and `scp03-aes256`, version 1.
    pub fn generate() -> Result<Self, PkiError> {
        let rng = SystemRandom::new();
        let random = |len: usize| {
            let mut k = Zeroizing::new(vec![0u8; len]);
            rng.fill(&mut k).map_err(|_| PkiError::Random)?;
            Ok::<_, PkiError>(k)
        };
        let set = |name: &str, algorithm: SecureChannelAlgorithm| {
            let len = algorithm.key_len();
            Ok::<_, PkiError>(MasterKeySet {
                name: name.to_owned(),
                algorithm,
                version: 1,
                enc: random(len)?,
                mac: random(len)?,
                dek: random(len)?,
            })
        };
        Ok(Self {
            sets: vec![
                set("scp02", SecureChannelAlgorithm::TripleDes)?,
                set("scp03-aes128", SecureChannelAlgorithm::Aes128)?,
                set("scp03-aes192", SecureChannelAlgorithm::Aes192)?,
                set("scp03-aes256", SecureChannelAlgorithm::Aes256)?,
            ],
        })
    }

    /// The key set called `name`.
    pub fn get(&self, name: &str) -> Option<&MasterKeySet> {
        self.sets.iter().find(|s| s.name == name)
    }

    /// All key sets, in file order.
    pub fn sets(&self) -> &[MasterKeySet] {
        &self.sets
    }

    /// Parse the JSON format described in the module docs.
    pub fn from_json(json: &str) -> Result<Self, PkiError> {
        // serde_json's messages quote the offending value, which may be a key
        // typed into the wrong field: say where, never what.
        let repr: FileRepr<'_> = serde_json::from_str(json).map_err(|e| {
            PkiError::MasterKeys(format!(
                "not a valid keys file: {} error at line {}, column {} (the value is not shown: it may be a key)",
                match e.classify() {
                    serde_json::error::Category::Io => "read",
                    serde_json::error::Category::Syntax => "JSON syntax",
                    serde_json::error::Category::Data => "field type or name",
                    serde_json::error::Category::Eof => "unexpected end of file",
                },
                e.line(),
                e.column()
            ))
        })?;
        if repr.format != FORMAT {
            return Err(PkiError::MasterKeys(format!(
                "format field: unknown format, expected '{FORMAT}'"
            )));
        }
        let mut sets = Vec::with_capacity(repr.key_sets.len());
        for s in repr.key_sets {
            let key = |role: &str, text: &str| {
                let k = Zeroizing::new(hex::decode(text).map_err(|_| {
                    PkiError::MasterKeys(format!("key set '{}': {role} is not hex", s.name))
                })?);
                if k.len() == s.algorithm.key_len() {
                    Ok(k)
                } else {
                    Err(PkiError::MasterKeys(format!(
                        "key set '{}': {role} is {} bytes, {:?} needs {}",
                        s.name,
                        k.len(),
                        s.algorithm,
                        s.algorithm.key_len()
                    )))
                }
            };
            if sets.iter().any(|x: &MasterKeySet| x.name == s.name) {
                return Err(PkiError::MasterKeys(format!(
                    "key set '{}' appears twice",
                    s.name
                )));
            }
            sets.push(MasterKeySet {
                name: s.name.to_owned(),
                algorithm: s.algorithm,
                version: s.version,
                enc: key("enc", s.enc)?,
                mac: key("mac", s.mac)?,
                dek: key("dek", s.dek)?,
            });
        }
        Ok(Self { sets })
    }

    /// Serialize to the JSON format; the returned text is zeroized on drop.
    pub fn to_json(&self) -> Result<Zeroizing<String>, PkiError> {
        let hexes: Vec<[Zeroizing<String>; 3]> = self
            .sets
            .iter()
            .map(|s| [&s.enc, &s.mac, &s.dek].map(|k| Zeroizing::new(hex::encode(k.as_slice()))))
            .collect();
        let repr = FileRepr {
            format: FORMAT,
            key_sets: self
                .sets
                .iter()
                .zip(&hexes)
                .map(|(s, [enc, mac, dek])| SetRepr {
                    name: &s.name,
                    algorithm: s.algorithm,
                    version: s.version,
                    enc,
                    mac,
                    dek,
                })
                .collect(),
        };
        serde_json::to_string_pretty(&repr)
            .map(Zeroizing::new)
            .map_err(|e| PkiError::MasterKeys(e.to_string()))
    }

    /// Load a keys file (a regular file of at most 64 KiB); refuses files
    /// readable by group or others.
    pub fn load(path: &Path) -> Result<Self, PkiError> {
        use std::os::unix::fs::PermissionsExt;
        const MAX_BYTES: u64 = 64 * 1024;
        let mode = std::fs::metadata(path)
            .map_err(|e| PkiError::io(path, e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(PkiError::MasterKeys(format!(
                "{} has mode {:o}; it holds secret keys: `chmod 600` it",
                path.display(),
                mode & 0o777
            )));
        }
        let mut bytes = Zeroizing::new(Vec::new());
        kart_spec::input::read_regular_into(path, MAX_BYTES, &mut bytes)?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| PkiError::MasterKeys(format!("{} is not UTF-8 text", path.display())))?;
        Self::from_json(text)
    }
}
