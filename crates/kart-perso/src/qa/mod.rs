//! The QA conformance suite: runs the catalogue of
//! `applets-spec/conformance.toml` against one card on any [`Transport`] and
//! reports, per check id, pass or fail (what was observed against what was
//! expected) or skipped (why), with the round-trip time of every command.
//!
//! QA modifies the card. On a **blank** (`PRE_PERSONALIZED`) card the suite
//! first runs the checks that need an empty card (plain writes refused,
//! secure channel at every level, APDU limits, chaining, READ BINARY at the
//! end of a file, torn write, life-cycle transitions from the start), then
//! personalizes it with a test holder, a throwaway QA PKI and the issuer's
//! secure-channel master keys ([`qa_issuer`]: no other issuer key is
//! needed), which locks it, and runs the checks that need a personalized,
//! locked card (access conditions, PIN/PUK counters, keys and signatures,
//! data and security object). On a card that is already personalized only
//! the checks that need neither a blank card nor its PINs run; the others
//! are skipped with the reason. [`BLANK_CARD_CHECKS`],
//! [`QA_PERSONALIZED_CHECKS`] and [`LOCKED_CARD_CHECKS`] list which is
//! which; every other check runs on any card.
//!
//! ```
//! use kart_perso::qa::{run_card, qa_issuer, QaTarget, Setup};
//! # fn demo(card: &mut dyn QaTarget, master_keys: kart_perso::pki::MasterKeys,
//! #         record: &kart_perso::record::IdentityRecord) -> Result<(), Box<dyn std::error::Error>> {
//! let spec = kart_spec::Spec::embedded()?;
//! let scratch = tempfile::tempdir()?;
//! let now = time::OffsetDateTime::now_utc();
//! let issuer = qa_issuer(master_keys, scratch.path(), now)?;
//! let setup = Setup { spec: &spec, profile: spec.profile("vendor-a").unwrap(), issuer: &issuer, record, now };
//! let report = run_card("reader 1", card, &setup);
//! for check in &report.checks {
//!     println!("{} {:?} {}", check.id, check.outcome, check.detail);
//! }
//! assert!(report.passed() || !report.failed_ids().is_empty());
//! # Ok(()) }
//! ```
//!
//! Batches of cards become a [`BatchReport`], written as versioned JSON,
//! `JUnit` XML and a self-contained HTML page ([`report`]).

mod probe;
mod randomness;
pub mod report;
#[cfg(feature = "sim")]
mod sim;
mod suite;
pub mod timing;

use std::path::Path;

use kart_apdu::{Transport, TransportError};
use kart_spec::{Profile, Protocol, Spec};
use serde::Serialize;
use time::OffsetDateTime;

use crate::issuer::Issuer;
use crate::pki::{create_demo_issuer, IssuerPki, MasterKeys, PkiError};
use crate::record::IdentityRecord;

pub use report::BatchReport;
#[cfg(feature = "sim")]
pub use sim::Simulated;
pub use timing::CommandLatency;

/// Checks that need a blank (`PRE_PERSONALIZED`) card: they write to it.
pub const BLANK_CARD_CHECKS: [&str; 8] = [
    "APDU-006", "APDU-007", "APDU-008", "SC-009", "SC-010", "SC-011", "ATOM-025", "AC-015",
];
/// Checks that need the PINs of a card QA personalized itself (from a blank
/// card in the same run).
pub const QA_PERSONALIZED_CHECKS: [&str; 9] = [
    "AC-012", "PIN-016", "PIN-017", "PIN-018", "PIN-019", "PIN-020", "KEY-021", "DATA-026",
    "DATA-027",
];
/// Checks that need a LOCKED card (QA's own, or one the station locked).
pub const LOCKED_CARD_CHECKS: [&str; 1] = ["AC-014"];

/// A card under test: its [`Transport`] and what the reader can do besides.
pub trait QaTarget: Transport {
    /// The Answer To Reset, when the reader reports it.
    fn atr(&self) -> Option<Vec<u8>> {
        None
    }
    /// The protocol in use, when the reader reports it.
    fn protocol(&self) -> Option<Protocol> {
        None
    }
    /// Resets the card (PIN-019); `Ok(false)` when the reader cannot.
    fn reset(&mut self) -> Result<bool, TransportError> {
        Ok(false)
    }
    /// Arranges for the next UPDATE BINARY that reaches a file to lose power
    /// mid-write (ATOM-025). Only a simulator can; a real card returns false.
    fn tear_next_update(&mut self) -> bool {
        false
    }
    /// Powers a torn card up again.
    fn reinsert(&mut self) -> Result<(), TransportError> {
        Ok(())
    }
}

/// What the suite needs besides the card.
#[derive(Debug, Clone, Copy)]
pub struct Setup<'a> {
    /// The catalogue and the applet specification.
    pub spec: &'a Spec,
    /// The profile the card claims to follow.
    pub profile: &'a Profile,
    /// Secure-channel master keys and the PKI that certifies QA's test data
    /// (see [`qa_issuer`]).
    pub issuer: &'a Issuer,
    /// The test holder written on blank cards.
    pub record: &'a IdentityRecord,
    /// The time certificates are issued and checked at.
    pub now: OffsetDateTime,
}

/// An issuer for QA: the issuer's secure-channel master keys, and a
/// throwaway PKI created in `scratch` that certifies QA's test data (so QA
/// never needs the issuer's signing keys).
pub fn qa_issuer(
    master_keys: MasterKeys,
    scratch: &Path,
    now: OffsetDateTime,
) -> Result<Issuer, PkiError> {
    create_demo_issuer(scratch, now)?;
    Ok(Issuer {
        pki: IssuerPki::load_at(scratch, now)?,
        master_keys,
        token_master_keys: Vec::new(),
    })
}

/// Result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The card did what the catalogue says.
    Pass,
    /// It did not; `observed` and `expected` say how.
    Fail,
    /// Not run; `detail` says why.
    Skipped,
}

/// One catalogue check on one card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// Catalogue id (`PIN-016`).
    pub id: String,
    /// Catalogue title.
    pub title: String,
    /// README clause it tests.
    pub clause: String,
    /// Pass, fail or skipped.
    pub outcome: Outcome,
    /// What the card did (pass, fail); empty when skipped.
    pub observed: String,
    /// What the catalogue wants (on failure), or why the check was skipped.
    pub detail: String,
    /// Round trips of the APDUs this check sent, per command.
    pub commands: Vec<CommandLatency>,
}

/// Every round trip of one command on one card, µs (for the charts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandSamples {
    /// Command name.
    pub command: String,
    /// The profile's model for a typical one, µs.
    pub model_us: u64,
    /// Round trips in the order sent.
    pub samples_us: Vec<u64>,
}

/// The suite's result for one card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CardReport {
    /// Reader (or simulated reader) name.
    pub reader: String,
    /// Profile the card claims.
    pub profile: String,
    /// Card serial number, when read.
    pub csn: Option<String>,
    /// Life-cycle state found before QA (`PRE_PERSONALIZED`, …).
    pub lifecycle: String,
    /// One result per catalogue check, in catalogue order.
    pub checks: Vec<CheckResult>,
    /// Round trips per command over the whole run.
    pub latencies: Vec<CommandSamples>,
    /// APDUs sent.
    pub apdus: u64,
    /// Wall time of the run, ms.
    pub duration_ms: u64,
}

impl CardReport {
    /// True when no check failed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.outcome != Outcome::Fail)
    }
    /// Ids of the failed checks, in catalogue order.
    pub fn failed_ids(&self) -> Vec<&str> {
        self.ids(Outcome::Fail)
    }
    /// Ids of the skipped checks, in catalogue order.
    pub fn skipped_ids(&self) -> Vec<&str> {
        self.ids(Outcome::Skipped)
    }
    fn ids(&self, outcome: Outcome) -> Vec<&str> {
        self.checks
            .iter()
            .filter(|c| c.outcome == outcome)
            .map(|c| c.id.as_str())
            .collect()
    }
    /// The result of check `id`.
    pub fn check(&self, id: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.id == id)
    }
}

/// Runs the whole catalogue on the card behind `target` (named `reader` in
/// the report). Never panics and never stops early: a card that stops
/// answering fails the checks it could not do, with the transport's error.
pub fn run_card(reader: &str, target: &mut dyn QaTarget, setup: &Setup<'_>) -> CardReport {
    suite::run(reader, target, setup)
}
