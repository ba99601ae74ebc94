//! Errors of reading a card.

use kart_apdu::{CardError, StatusWord};
use thiserror::Error;

/// Why a card could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReadError {
    /// No vendor profile's applet answered SELECT.
    #[error("no national-ID applet on this card: none of the AIDs {tried} could be selected; is this a kart national ID card?")]
    NoApplet {
        /// The AIDs tried, hex, comma separated.
        tried: String,
    },
    /// A command failed below the status-word level, or the card refused it.
    #[error("{step}: {source}")]
    Card {
        /// What was being done.
        step: String,
        /// The failure.
        source: CardError,
    },
    /// The card answered a status word the spec does not allow here.
    #[error("{step}: card answered {sw}; the card does not follow the applet spec")]
    Unexpected {
        /// What was being done.
        step: String,
        /// The status word.
        sw: StatusWord,
    },
    /// The card's answer is not the structure the spec describes.
    #[error("{step}: {reason}; the card does not follow the applet spec")]
    Malformed {
        /// What was being done.
        step: String,
        /// What is wrong.
        reason: String,
    },
    /// A file is longer than its capacity in the spec.
    #[error("{file} is longer than its {max}-byte capacity; the card keeps returning data")]
    FileTooLong {
        /// The file's name.
        file: String,
        /// Its capacity.
        max: usize,
    },
}

impl ReadError {
    pub(crate) fn card(step: impl Into<String>, source: CardError) -> Self {
        Self::Card {
            step: step.into(),
            source,
        }
    }

    pub(crate) fn malformed(step: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Malformed {
            step: step.into(),
            reason: reason.into(),
        }
    }
}
