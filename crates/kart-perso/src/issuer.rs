//! Everything the station needs from an issuer directory: the PKI (root,
//! card CA and its key, document signer and its key) and the secure-channel
//! master keys, and the mapping from a vendor profile to its channel keys.
//!
//! ```
//! use kart_perso::issuer::Issuer;
//! let dir = tempfile::tempdir()?;
//! kart_perso::pki::create_demo_issuer(dir.path(), time::OffsetDateTime::now_utc())?;
//! let issuer = Issuer::load(dir.path())?;
//! let spec = kart_spec::Spec::embedded()?;
//! let (keys, params) = issuer.channel_keys(spec.profile("vendor-c").unwrap())?;
//! assert_eq!(keys.key_len(), 32);
//! assert_eq!(params.key_version, 0x31);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::Path;

use kart_apdu::gp::{self, CardKeySource, KeySet, ScpParams, ScpVersion, SoftwareKeys};
use kart_spec::{Diversification, Profile, Scp};

use crate::pki::{IssuerPki, MasterKeys, PkiError, SecureChannelAlgorithm};

/// Name of the master keys file in an issuer directory.
pub const MASTER_KEYS_FILE: &str = "master-keys.json";

/// An issuer's keys and certificates, loaded once per station.
#[derive(Debug)]
pub struct Issuer {
    /// Certificates and signing keys.
    pub pki: IssuerPki,
    /// Secure-channel master keys.
    pub master_keys: MasterKeys,
}

impl Issuer {
    /// Loads `dir` as laid out by [`create_demo_issuer`](crate::pki::create_demo_issuer).
    pub fn load(dir: &Path) -> Result<Self, PkiError> {
        Ok(Self {
            pki: IssuerPki::load(dir)?,
            master_keys: MasterKeys::load(&dir.join(MASTER_KEYS_FILE))?,
        })
    }

    /// Where the static keys of a card of `profile` come from, and the
    /// channel parameters: what the station opens secure channels with
    /// ([`SecureChannel::open_from`](kart_apdu::gp::SecureChannel::open_from)).
    pub fn card_key_source(
        &self,
        profile: &Profile,
    ) -> Result<(Box<dyn CardKeySource>, ScpParams), PkiError> {
        let (keys, params) = self.channel_keys(profile)?;
        Ok((
            Box::new(SoftwareKeys::new(keys, params.diversification)),
            params,
        ))
    }

    /// The master keys and channel parameters for a card of `profile`: the
    /// key set whose cipher and length match the profile's SCP, presented
    /// under the profile's key version, diversified per card by the channel.
    pub fn channel_keys(&self, profile: &Profile) -> Result<(KeySet, ScpParams), PkiError> {
        let sc = &profile.secure_channel;
        let wanted = match (sc.scp, sc.key_length) {
            (Scp::Scp02, 16) => SecureChannelAlgorithm::TripleDes,
            (Scp::Scp03, 16) => SecureChannelAlgorithm::Aes128,
            (Scp::Scp03, 32) => SecureChannelAlgorithm::Aes256,
            (scp, len) => {
                return Err(PkiError::MasterKeys(format!(
                    "profile {} asks for {scp:?} with {len}-byte keys, which no master key set provides",
                    profile.id
                )))
            }
        };
        let set = self
            .master_keys
            .sets()
            .iter()
            .find(|s| s.algorithm == wanted)
            .ok_or_else(|| {
                PkiError::MasterKeys(format!(
                    "no {wanted:?} master key set for profile {}; add one to {MASTER_KEYS_FILE}",
                    profile.id
                ))
            })?;
        let keys = KeySet::new(set.enc(), set.mac(), set.dek(), sc.key_version)
            .map_err(|e| PkiError::MasterKeys(e.to_string()))?;
        let params = ScpParams {
            key_version: sc.key_version,
            diversification: match sc.diversification {
                Diversification::None => gp::Diversification::None,
                Diversification::EmvCps => gp::Diversification::EmvCps11,
                Diversification::Visa2 => gp::Diversification::Visa2,
                Diversification::Kdf3 => gp::Diversification::Kdf3,
            },
            scp02_i: sc.i,
            version: Some(match sc.scp {
                Scp::Scp02 => ScpVersion::Scp02,
                Scp::Scp03 => ScpVersion::Scp03,
            }),
        };
        Ok((keys, params))
    }
}
