//! Keying simulated cards for an issuer: a fresh simulated card is keyed
//! with the issuer's master key set for the profile's secure channel
//! (distinct ENC, MAC and DEK, as on real cards), so the station opens its
//! channel exactly as it would on a real card of that vendor.

use crate::error::{CliError, Kind};
use kart_perso::issuer::Issuer;
use kart_sim::SimConfig;
use kart_spec::Profile;
use ring::rand::{SecureRandom, SystemRandom};

/// A fresh simulated card's identity for `issuer`: a random IC serial and the
/// issuer's master key set for the profile (`Issuer::channel_keys`).
pub fn sim_config(issuer: &Issuer, profile: &Profile) -> Result<SimConfig, CliError> {
    if !issuer.token_master_keys.is_empty() {
        return token_sim_config(issuer, profile);
    }
    let (keys, _) = issuer.channel_keys(profile).map_err(|e| {
        CliError::with_hint(
            Kind::Issuer,
            format!("cannot key a simulated {} card: {e}", profile.id),
            "`kart issuer init DIR` creates an issuer with a key set for every profile",
        )
    })?;
    let mut serial = [0u8; 4];
    SystemRandom::new()
        .fill(&mut serial)
        .map_err(|_| CliError::new(Kind::Io, "the system random generator failed"))?;
    Ok(SimConfig::with_keys(serial, keys))
}

/// A simulated card for an issuer whose master keys are in a PKCS#11 token:
/// the token diversifies them for the card's key diversification data (as
/// the vendor's HSM did when it keyed the card), and the card gets its own
/// static keys; the master keys never leave the token.
fn token_sim_config(issuer: &Issuer, profile: &Profile) -> Result<SimConfig, CliError> {
    let fail = |e: &dyn std::fmt::Display| {
        CliError::with_hint(
            Kind::Issuer,
            format!(
                "cannot key a simulated {} card from the token: {e}",
                profile.id
            ),
            "check the token and the master key sets in issuer.toml (`kart issuer show`)",
        )
    };
    let (source, params) = issuer.card_key_source(profile).map_err(|e| fail(&e))?;
    let mut serial = [0u8; 4];
    SystemRandom::new()
        .fill(&mut serial)
        .map_err(|_| CliError::new(Kind::Io, "the system random generator failed"))?;
    let kdd = SimConfig::new(serial, &[0; 16]).key_diversification_data();
    let keys = source
        .card_keys(&kdd, params.key_version)
        .map_err(|e| fail(&e))?;
    Ok(SimConfig::with_card_keys(serial, keys))
}
