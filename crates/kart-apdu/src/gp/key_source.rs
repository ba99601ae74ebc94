//! Where a card's static keys come from: the seam between the secure channel
//! and whoever holds the issuer's master keys.
//!
//! The channel asks a [`CardKeySource`] for the static ENC/MAC/DEK keys of
//! one card, given the key diversification data and key version the card
//! returned in INITIALIZE UPDATE. [`SoftwareKeys`] diversifies master keys
//! held in process memory (the demo issuer's files); a hardware security
//! module diversifies inside the token, so that a master key never enters
//! the process (`kart_perso::pki::pkcs11`). This crate stays free of I/O: a
//! source that talks to a device lives above it.

use super::{diversify, Diversification, GpError, KeySet};

/// Gives the static secure-channel keys of one card.
///
/// The returned keys are the card's own (already diversified); they live as
/// long as the caller keeps them — the secure channel keeps them for one
/// card's session and they are zeroized on drop.
///
/// ```
/// use kart_apdu::gp::{CardKeySource, Diversification, KeySet, SoftwareKeys};
/// let master = KeySet::from_master(&[0x40; 16], 0x20)?;
/// let source = SoftwareKeys::new(master, Diversification::EmvCps11);
/// let kdd = [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9];
/// let card = source.card_keys(&kdd, 0x20)?;
/// assert_eq!((card.version(), card.key_len()), (0x20, 16));
/// # Ok::<(), kart_apdu::gp::GpError>(())
/// ```
pub trait CardKeySource: Send + Sync {
    /// The static keys of the card whose INITIALIZE UPDATE answered `kdd`
    /// (its 10 bytes of key diversification data) under `key_version`.
    fn card_keys(&self, kdd: &[u8; 10], key_version: u8) -> Result<KeySet, GpError>;
}

impl<S: CardKeySource + ?Sized> CardKeySource for &S {
    fn card_keys(&self, kdd: &[u8; 10], key_version: u8) -> Result<KeySet, GpError> {
        (**self).card_keys(kdd, key_version)
    }
}

impl<S: CardKeySource + ?Sized> CardKeySource for std::sync::Arc<S> {
    fn card_keys(&self, kdd: &[u8; 10], key_version: u8) -> Result<KeySet, GpError> {
        (**self).card_keys(kdd, key_version)
    }
}

impl<S: CardKeySource + ?Sized> CardKeySource for Box<S> {
    fn card_keys(&self, kdd: &[u8; 10], key_version: u8) -> Result<KeySet, GpError> {
        (**self).card_keys(kdd, key_version)
    }
}

/// Master keys in process memory, diversified in software by [`diversify`].
///
/// The key version of the result is the master set's (as [`diversify`]
/// gives it); `key_version` is not checked, so a card answering under
/// another version fails its cryptogram check, as it did before this seam.
#[derive(Debug, Clone)]
pub struct SoftwareKeys {
    master: KeySet,
    method: Diversification,
}

impl SoftwareKeys {
    /// Master keys and the method that turns them into a card's keys.
    pub fn new(master: KeySet, method: Diversification) -> Self {
        Self { master, method }
    }
}

impl CardKeySource for SoftwareKeys {
    fn card_keys(&self, kdd: &[u8; 10], _key_version: u8) -> Result<KeySet, GpError> {
        diversify(&self.master, self.method, kdd)
    }
}

/// The borrowed form [`SecureChannel::open`](super::SecureChannel::open) uses.
pub(crate) struct Borrowed<'a> {
    pub(crate) master: &'a KeySet,
    pub(crate) method: Diversification,
}

impl CardKeySource for Borrowed<'_> {
    fn card_keys(&self, kdd: &[u8; 10], _key_version: u8) -> Result<KeySet, GpError> {
        diversify(self.master, self.method, kdd)
    }
}

/// What went wrong in a key source that holds its keys elsewhere (an HSM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySourceFault {
    /// The device is absent or was removed: the caller may pause and retry.
    Unavailable,
    /// The device refused access (not logged in, wrong PIN, locked).
    Denied,
    /// A key object is missing or of the wrong type.
    Key,
    /// Any other failure of the device.
    Device,
}

/// A key source's failure, typed by its [`KeySourceFault`]; the message never
/// holds key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct KeySourceError {
    /// What kind of failure.
    pub fault: KeySourceFault,
    /// One line for a person.
    pub message: String,
}

impl KeySourceError {
    /// A failure of kind `fault`.
    pub fn new(fault: KeySourceFault, message: impl Into<String>) -> Self {
        Self {
            fault,
            message: message.into(),
        }
    }
}
