//! Why personalization stopped.

use kart_apdu::gp::GpError;
use kart_apdu::{CardError, StatusWord, TransportError};
use thiserror::Error;

use crate::card_data::CardDataError;
use crate::pki::PkiError;
use crate::plan::PlanError;
use crate::security_object::SecurityObjectError;

/// Why personalization stopped.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PersoError {
    /// The card answered a command with an error status word.
    #[error("card refused step '{step}' with SW {sw}")]
    CardRefused {
        /// The step.
        step: String,
        /// Its status word.
        sw: StatusWord,
    },
    /// The card left the reader.
    #[error("card removed during step '{step}'; put it back to resume (the journal keeps the application in 'writing')")]
    CardRemoved {
        /// The step.
        step: String,
    },
    /// The reader or card failed below the APDU level.
    #[error("step '{step}': {source}")]
    Transport {
        /// The step.
        step: String,
        /// What failed.
        source: TransportError,
    },
    /// The card's answer could not be used.
    #[error("step '{step}': card answered nonsense: {what}")]
    Malformed {
        /// The step.
        step: String,
        /// What was wrong.
        what: String,
    },
    /// The command could not be delivered as the card needs it.
    #[error("step '{step}': {source}")]
    Card {
        /// The step.
        step: String,
        /// What failed.
        source: CardError,
    },
    /// The secure channel could not be opened.
    #[error("secure channel: {0}")]
    SecureChannel(GpError),
    /// The card's cryptogram did not match the issuer's keys; the card's
    /// key information template (GET DATA `00E0`) against what the issuer
    /// offers says why (see [`crate::keyinfo`]).
    #[error("secure channel: the card cryptogram does not match: {explanation}")]
    CardKeys {
        /// What the card holds, what the issuer offers, the diversification tried.
        explanation: String,
    },
    /// The caller stopped the run before this step sent anything (its
    /// step hook failed, e.g. the journal could not record the step).
    #[error("stopped before step '{step}'; nothing of it was sent")]
    Stopped {
        /// The step that was not started.
        step: String,
    },
    /// The card is locked: it was personalized already.
    #[error("the card is LOCKED; it cannot be personalized again")]
    Locked,
    /// An issuer key, certificate or master key failed.
    #[error("issuer: {0}")]
    Issuer(#[from] PkiError),
    /// The security object could not be built.
    #[error("security object: {0}")]
    SecurityObject(#[from] SecurityObjectError),
    /// The record or card facts do not encode.
    #[error(transparent)]
    CardData(#[from] CardDataError),
    /// No plan could be made.
    #[error(transparent)]
    Plan(#[from] PlanError),
}

impl PersoError {
    /// What the operator should do about it, when there is something to do:
    /// the hint of the secure channel's or the issuer's error underneath.
    #[must_use]
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            PersoError::SecureChannel(e) => e.hint(),
            PersoError::Issuer(e) => e.hint(),
            _ => None,
        }
    }
}
