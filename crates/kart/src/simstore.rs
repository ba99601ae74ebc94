//! Persistent simulated cards (`--sim-dir DIR`, `sim_dir` in kart.toml):
//! the card in `sim:vendor-b#1` is kept in `DIR/vendor-b-1.card.json`
//! between commands, as a card left in a real reader (see
//! `kart_sim::store`). Without a directory, simulated cards live inside one
//! `kart` process, as before.
//!
//! The directory is chosen once per process ([`init`]), before any command
//! runs, so that every place that makes a simulated card (reader opening,
//! the station's reader workers, QA) sees the same cards.

use crate::error::{CliError, Kind};
use kart_perso::applet::Lifecycle;
use kart_sim::store::{CardStore, Slot, StoreError};
use kart_sim::{default_test_key, SimCard, SimConfig};
use kart_spec::Profile;
use ring::rand::{SecureRandom, SystemRandom};
use std::path::Path;
use std::sync::OnceLock;

static STORE: OnceLock<Option<CardStore>> = OnceLock::new();

/// Chooses the card directory for this process (`None`: cards are not
/// kept). The first call wins.
pub fn init(dir: Option<&Path>) -> Result<(), CliError> {
    let store = dir.map(CardStore::open).transpose().map_err(store_error)?;
    let _ = STORE.set(store);
    Ok(())
}

/// The card directory, when simulated cards are kept.
pub fn store() -> Option<&'static CardStore> {
    STORE.get().and_then(Option::as_ref)
}

/// A stored-card failure as a CLI error: a damaged or foreign card file is
/// a card error (exit 4), a file system failure exit 8.
pub fn store_error(e: StoreError) -> CliError {
    let kind = match e {
        StoreError::Io { .. } => Kind::Io,
        _ => Kind::Card,
    };
    let hint = e.hint();
    CliError::hinted(kind, e, hint)
}

/// A blank card's identity when nothing says otherwise: a random IC serial
/// and the GP test key.
fn test_config(profile: &Profile) -> Result<SimConfig, CliError> {
    let mut serial = [0u8; 4];
    SystemRandom::new()
        .fill(&mut serial)
        .map_err(|_| CliError::new(Kind::Io, "the system random generator failed"))?;
    Ok(SimConfig::new(
        serial,
        &default_test_key(profile.secure_channel.key_length),
    ))
}

/// The card in simulated reader `reader`: the stored one when cards are
/// kept (keyed with `config`'s keys, or the test key), else a fresh blank
/// card with `config` (or a random serial and the test key).
pub fn open_card(
    reader: &str,
    profile: &Profile,
    config: Option<&SimConfig>,
) -> Result<SimCard, CliError> {
    let config = match config {
        Some(c) => c.clone(),
        None => test_config(profile)?,
    };
    match store() {
        Some(s) => s.card(reader, profile, &config).map_err(store_error),
        None => Ok(SimCard::with_config(profile, &config)?),
    }
}

/// A station reader's first card of a run: `awaited` tells whether the
/// journal still waits for a LOCKED card (to verify it).
pub type Awaited<'a> = &'a dyn Fn(&SimCard) -> Result<bool, CliError>;

/// The card a station worker personalizes next in `reader`. With kept
/// cards, the first one of a run (`first` given) is the card in the
/// reader: one inserted and not yet changed when there is one (a killed
/// run's journal may have bound its serial already), else the card in the
/// reader's file, unless it is LOCKED and the journal does not await it
/// (`first` asks): an issued card is taken out, one whose run was killed
/// before its verification was journaled is not.
/// Every later one, or after an issued one, is the next card put in
/// ([`Slot::Next`]): on disk before its first command, while
/// the card issued before it stays in the reader's file, for `verify` and
/// `read`, until the new one first changes.
pub fn station_card(
    reader: &str,
    profile: &Profile,
    config: &SimConfig,
    first: Option<Awaited<'_>>,
) -> Result<SimCard, CliError> {
    let Some(s) = store() else {
        return Ok(SimCard::with_config(profile, config)?);
    };
    if let Some(awaited) = first.filter(|_| !s.has_inserted_card(reader) && s.has_card(reader)) {
        let card = s.card(reader, profile, config).map_err(store_error)?;
        if Lifecycle::from_code(card.lifecycle_code()) != Lifecycle::Locked || awaited(&card)? {
            return Ok(card);
        }
    }
    s.card_in(Slot::Next, reader, profile, config)
        .map_err(store_error)
}
