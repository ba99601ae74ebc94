//! Static secure-channel keys: ENC, MAC and DEK of one key version.

use super::GpError;
use zeroize::Zeroizing;

/// One secret key: wiped on drop, never printed.
#[derive(Clone)]
pub(crate) struct SecretKey(Zeroizing<Vec<u8>>);

impl SecretKey {
    pub(crate) fn new(bytes: &[u8]) -> Self {
        Self(Zeroizing::new(bytes.to_vec()))
    }
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{}-byte key redacted>", self.0.len())
    }
}

/// The static keys of one key version of a security domain: ENC, MAC and DEK,
/// all of the same length (16 bytes for SCP02's 2-key 3DES; 16, 24 or 32 bytes
/// for SCP03's AES-128/192/256).
///
/// The bytes are wiped from memory on drop, and `Debug` shows only the key
/// version and length.
///
/// ```
/// use kart_apdu::gp::KeySet;
/// // The GlobalPlatform default test key 40..4F, key version 01.
/// let keys = KeySet::from_master(&hex::decode("404142434445464748494a4b4c4d4e4f").unwrap(), 0x01)?;
/// assert_eq!(keys.version(), 0x01);
/// assert!(!format!("{keys:?}").contains("4041"));
/// # Ok::<(), kart_apdu::gp::GpError>(())
/// ```
#[derive(Clone)]
pub struct KeySet {
    enc: SecretKey,
    mac: SecretKey,
    dek: SecretKey,
    version: u8,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("version", &format_args!("{:02X}", self.version))
            .field("key_len", &self.key_len())
            .field("keys", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl KeySet {
    /// Three distinct keys of one key version. All must have the same length,
    /// 16, 24 or 32 bytes.
    pub fn new(enc: &[u8], mac: &[u8], dek: &[u8], version: u8) -> Result<Self, GpError> {
        let len = enc.len();
        if ![16, 24, 32].contains(&len) {
            return Err(GpError::InvalidKey(format!(
                "keys must be 16, 24 or 32 bytes, ENC has {len}"
            )));
        }
        if mac.len() != len || dek.len() != len {
            return Err(GpError::InvalidKey(format!(
                "ENC, MAC and DEK must have the same length, got {}, {} and {}",
                len,
                mac.len(),
                dek.len()
            )));
        }
        Ok(Self {
            enc: SecretKey::new(enc),
            mac: SecretKey::new(mac),
            dek: SecretKey::new(dek),
            version,
        })
    }

    /// One key used as ENC, MAC and DEK (how test cards and master keys are often given).
    pub fn from_master(key: &[u8], version: u8) -> Result<Self, GpError> {
        Self::new(key, key, key, version)
    }

    /// The key version number (KVN) sent in INITIALIZE UPDATE P1.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// Length of each key in bytes.
    pub fn key_len(&self) -> usize {
        self.enc.bytes().len()
    }

    /// The key check values of ENC, MAC and DEK (GlobalPlatform: the first
    /// 3 bytes of the key encrypting `01`×16 for AES, `00`×8 for 3DES): how
    /// a key ceremony compares keys without showing them.
    pub fn check_values(&self, aes: bool) -> Result<[[u8; 3]; 3], GpError> {
        use super::crypto::key_check_value;
        Ok([
            key_check_value(self.enc(), aes)?,
            key_check_value(self.mac(), aes)?,
            key_check_value(self.dek(), aes)?,
        ])
    }

    pub(crate) fn enc(&self) -> &[u8] {
        self.enc.bytes()
    }
    pub(crate) fn mac(&self) -> &[u8] {
        self.mac.bytes()
    }
    pub(crate) fn dek(&self) -> &[u8] {
        self.dek.bytes()
    }
}
