//! Keying simulated cards for an issuer: a simulated card takes one master
//! key used as ENC, MAC and DEK (as GP test cards ship), so it can match an
//! issuer whose key set for the profile's channel has ENC = MAC = DEK —
//! which is what `kart issuer init` writes.

use crate::error::{CliError, Kind};
use kart_perso::pki::{MasterKeySet, MasterKeys, SecureChannelAlgorithm};
use kart_sim::SimConfig;
use kart_spec::{Profile, Scp};
use ring::rand::{SecureRandom, SystemRandom};
use std::fmt::Write as _;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The master-key set a card of `profile` uses (same choice as the engine's
/// `Issuer::channel_keys`).
fn set_for<'a>(keys: &'a MasterKeys, profile: &Profile) -> Option<&'a MasterKeySet> {
    let wanted = match (
        profile.secure_channel.scp,
        profile.secure_channel.key_length,
    ) {
        (Scp::Scp02, 16) => SecureChannelAlgorithm::TripleDes,
        (Scp::Scp03, 16) => SecureChannelAlgorithm::Aes128,
        (Scp::Scp03, 32) => SecureChannelAlgorithm::Aes256,
        _ => return None,
    };
    keys.sets().iter().find(|s| s.algorithm == wanted)
}

/// A fresh simulated card's identity for `issuer`: a random IC serial and the
/// issuer's master key for the profile.
pub fn sim_config(keys: &MasterKeys, profile: &Profile) -> Result<SimConfig, CliError> {
    let set = set_for(keys, profile).ok_or_else(|| {
        CliError::with_hint(
            Kind::Issuer,
            format!(
                "the issuer has no master key set for profile {}",
                profile.id
            ),
            "add one to master-keys.json, or create the issuer with `kart issuer init`",
        )
    })?;
    let same = set.enc().ct_eq(set.mac()) & set.enc().ct_eq(set.dek());
    if !bool::from(same) {
        return Err(CliError::with_hint(
            Kind::Issuer,
            format!(
                "simulated cards take one master key for ENC, MAC and DEK, but the issuer's '{}' set has three different keys",
                set.name
            ),
            "use real cards with this issuer, or an issuer made by `kart issuer init` for simulated cards",
        ));
    }
    let mut serial = [0u8; 4];
    SystemRandom::new()
        .fill(&mut serial)
        .map_err(|_| CliError::new(Kind::Io, "the system random generator failed"))?;
    Ok(SimConfig::new(serial, set.enc()))
}

/// Rewrites `master-keys.json` in an issuer directory so that each set has
/// ENC = MAC = DEK (its ENC key), for simulated cards. Demo issuers only.
pub fn unify_master_keys(path: &std::path::Path) -> Result<(), CliError> {
    let keys = MasterKeys::load(path)?;
    let mut json = Zeroizing::new(String::from(
        r#"{"format":"kart-master-keys/1","key_sets":["#,
    ));
    for (i, s) in keys.sets().iter().enumerate() {
        let k = Zeroizing::new(hex::encode(s.enc()));
        if i > 0 {
            json.push(',');
        }
        // Written in place so no copy of the key outlives the zeroized buffer.
        let _ = write!(
            *json,
            r#"{{"name":{},"algorithm":{},"version":{},"enc":"{k}","mac":"{k}","dek":"{k}"}}"#,
            serde_json::to_string(&s.name).unwrap_or_default(),
            serde_json::to_string(&s.algorithm).unwrap_or_default(),
            s.version,
            k = k.as_str()
        );
    }
    json.push_str("]}");
    // The check that it loads back comes before replacing the file.
    MasterKeys::from_json(&json)?;
    std::fs::write(path, json.as_bytes())
        .map_err(|e| CliError::new(Kind::Io, format!("cannot write {}: {e}", path.display())))
}
