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

use crate::pki::pkcs11::TokenMasterKeys;
use crate::pki::token_issuer::{self, PinPrompt, ISSUER_TOML};
use crate::pki::{IssuerPki, MasterKeys, PkiError, SecureChannelAlgorithm};

/// Name of the master keys file in an issuer directory.
pub const MASTER_KEYS_FILE: &str = "master-keys.json";

/// An issuer's keys and certificates, loaded once per station.
#[derive(Debug)]
pub struct Issuer {
    /// Certificates and signing keys.
    pub pki: IssuerPki,
    /// Secure-channel master keys (files; empty for a token issuer).
    pub master_keys: MasterKeys,
    /// Secure-channel master key sets in a PKCS#11 token (empty for files).
    pub token_master_keys: Vec<TokenMasterKeys>,
}

impl Issuer {
    /// Loads `dir` as laid out by [`create_demo_issuer`](crate::pki::create_demo_issuer),
    /// and refuses an issuer that cannot work now: see [`IssuerPki::load_at`]
    /// for what is checked. Nothing in the `offline/` folder (the root key)
    /// is read.
    ///
    /// A directory with an `issuer.toml` is a token issuer: its keys are in
    /// a PKCS#11 token ([`token_issuer`]); the user PIN comes from the PIN
    /// file it names or `KART_HSM_PIN`.
    pub fn load(dir: &Path) -> Result<Self, PkiError> {
        Self::load_with_prompt(dir, None)
    }

    /// [`load`](Self::load), checking certificates' validity at `now`.
    pub fn load_at(dir: &Path, now: time::OffsetDateTime) -> Result<Self, PkiError> {
        Self::load_checked(dir, now, None)
    }

    /// [`load`](Self::load), asking `prompt` for a token's PIN when neither a
    /// PIN file nor `KART_HSM_PIN` gives it.
    pub fn load_with_prompt(dir: &Path, prompt: Option<PinPrompt<'_>>) -> Result<Self, PkiError> {
        Self::load_checked(dir, time::OffsetDateTime::now_utc(), prompt)
    }

    fn load_checked(
        dir: &Path,
        now: time::OffsetDateTime,
        prompt: Option<PinPrompt<'_>>,
    ) -> Result<Self, PkiError> {
        if dir.join(ISSUER_TOML).exists() {
            let (pki, sets) = token_issuer::load(dir, prompt)?;
            pki.check_certificates(dir, now)?;
            return Ok(Self {
                pki,
                master_keys: MasterKeys::empty(),
                token_master_keys: sets,
            });
        }
        Ok(Self {
            pki: IssuerPki::load_at(dir, now)?,
            master_keys: {
                let path = dir.join(MASTER_KEYS_FILE);
                MasterKeys::load(&path).map_err(|e| PkiError::in_file(&path, e))?
            },
            token_master_keys: Vec::new(),
        })
    }

    /// Where the static keys of a card of `profile` come from, and the
    /// channel parameters: what the station opens secure channels with
    /// ([`SecureChannel::open_from`](kart_apdu::gp::SecureChannel::open_from)).
    pub fn card_key_source(
        &self,
        profile: &Profile,
    ) -> Result<(Box<dyn CardKeySource>, ScpParams), PkiError> {
        if !self.token_master_keys.is_empty() {
            let wanted = wanted_algorithm(profile)?;
            let params = scp_params(profile);
            let set = self
                .token_master_keys
                .iter()
                .find(|s| s.algorithm() == wanted)
                .ok_or_else(|| {
                    PkiError::MasterKeys(format!(
                        "no {wanted:?} master key set in the token for profile {}; add one to {ISSUER_TOML}",
                        profile.id
                    ))
                })?;
            return Ok((
                Box::new(set.for_profile(params.diversification, params.key_version)),
                params,
            ));
        }
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
        if !self.token_master_keys.is_empty() {
            return Err(PkiError::MasterKeys(format!(
                "the master keys for profile {} are in a PKCS#11 token and never leave it; use card_key_source",
                profile.id
            )));
        }
        let sc = &profile.secure_channel;
        let wanted = wanted_algorithm(profile)?;
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
        Ok((keys, scp_params(profile)))
    }
}

/// The master key set algorithm a profile's secure channel needs.
fn wanted_algorithm(profile: &Profile) -> Result<SecureChannelAlgorithm, PkiError> {
    let sc = &profile.secure_channel;
    SecureChannelAlgorithm::for_channel(sc.scp, sc.key_length).ok_or_else(|| {
        PkiError::MasterKeys(format!(
            "profile {} asks for {:?} with {}-byte keys, which no master key set provides",
            profile.id, sc.scp, sc.key_length
        ))
    })
}

/// The channel parameters of a profile.
fn scp_params(profile: &Profile) -> ScpParams {
    let sc = &profile.secure_channel;
    ScpParams {
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
    }
}
