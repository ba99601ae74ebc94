//! # kart integrator examples
//!
//! Two programs show how to use the kart libraries from an application:
//!
//! - `personalize_one` — personalize one application on a simulated card:
//!   generate the PINs, then one call to
//!   [`kart_perso::personalize::personalize_one`] probes the card, runs the
//!   plan inside the secure channel and locks the card;
//! - `read_and_verify` — open a PC/SC reader (or a freshly personalized
//!   simulated card), read the identity data and verify the card as a bank
//!   does, then print the verdict.
//!
//! ```sh
//! cargo run -p kart-examples --bin personalize_one
//! cargo run -p kart-examples --bin read_and_verify                      # simulated card
//! KART_PIN=… cargo run -p kart-examples --bin read_and_verify -- "READER" issuer/
//! ```
//!
//! This library holds only the setup the examples share: a test issuer and
//! the sample application.
#![forbid(unsafe_code)]

use kart_perso::issuer::Issuer;
use kart_perso::pki::create_demo_issuer;
use kart_perso::record::{Batch, IdentityRecord};
use kart_sim::{SimCard, SimConfig};
use kart_spec::Profile;
use std::path::Path;

/// Anything that can go wrong in an example.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// A test issuer in `dir`: a demo PKI (root, card CA, document signer) and
/// random secure-channel master keys (one set per secure channel the
/// profiles use, three distinct keys — ENC, MAC, DEK — per set), as [`kart_perso::pki::create_demo_issuer`] writes them.
///
/// A real issuer's directory is loaded the same way, with [`Issuer::load`].
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let issuer = kart_examples::test_issuer(dir.path())?;
/// // A key set for every profile's secure channel.
/// for profile in &kart_spec::Spec::embedded()?.profiles {
///     assert!(issuer.card_key_source(profile).is_ok(), "{}", profile.id);
/// }
/// # Ok::<(), kart_examples::Error>(())
/// ```
pub fn test_issuer(dir: &Path) -> Result<Issuer, Error> {
    create_demo_issuer(dir, time::OffsetDateTime::now_utc())?;
    Ok(Issuer::load(dir)?)
}

/// A blank simulated card of `profile` whose card manager holds `issuer`'s
/// master keys for the profile's secure channel — what a card vendor ships
/// to an issuer. With PC/SC the card is a `kart_pcsc::Connection` instead.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let issuer = kart_examples::test_issuer(dir.path())?;
/// let spec = kart_spec::Spec::embedded()?;
/// let card = kart_examples::blank_card(&issuer, &spec.profiles[0])?;
/// assert_eq!(card.profile().id, spec.profiles[0].id);
/// # Ok::<(), kart_examples::Error>(())
/// ```
pub fn blank_card(issuer: &Issuer, profile: &Profile) -> Result<SimCard, Error> {
    let (keys, _) = issuer.channel_keys(profile)?;
    // Any serial will do; a real card's comes from its chip.
    let config = SimConfig::with_keys([0, 0, 0, 1], keys);
    Ok(SimCard::with_config(profile, &config)?)
}

/// The first application of the sample batch `examples/batch/applications.csv`.
///
/// ```
/// let record = kart_examples::sample_record()?;
/// assert_eq!(record.national_code.as_str(), "0012345679");
/// # Ok::<(), kart_examples::Error>(())
/// ```
pub fn sample_record() -> Result<IdentityRecord, Error> {
    let batch = Path::new(env!("CARGO_MANIFEST_DIR")).join("batch/applications.csv");
    let first = Batch::open(batch)?
        .next()
        .ok_or("the sample batch is empty")?;
    Ok(first?)
}
