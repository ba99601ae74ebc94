//! The application states and the transitions allowed between them.

use std::fmt;

/// Where an application stands.
///
/// ```text
/// queued ─claim─► claimed ─► writing ─► written ─► verified
///  │ ▲              │  │       │  ▲ │      │ │
///  │ └───release────┘  │       │  └─┴──────┘ │   (re-personalize the same card)
///  │ ▲                 ▼       ▼             ▼
///  │ └─requeue──── failed / spoiled ◄────────┘
///  └──reject (invalid record)──►┘
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Enqueued, waiting for a reader.
    Queued,
    /// Taken by a station for one reader; the card is not touched yet.
    Claimed,
    /// Data is being written to a known card.
    Writing,
    /// Everything was written; read-back verification pending.
    Written,
    /// Verified on the card: issued. Final.
    Verified,
    /// Did not get a card (or its record was rejected); the card used (if
    /// any) is fine to reuse.
    Failed,
    /// The card is damaged or half-written beyond repair; it is never reused.
    Spoiled,
}

impl State {
    /// Every state.
    pub const ALL: [State; 7] = [
        State::Queued,
        State::Claimed,
        State::Writing,
        State::Written,
        State::Verified,
        State::Failed,
        State::Spoiled,
    ];

    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Claimed => "claimed",
            State::Writing => "writing",
            State::Written => "written",
            State::Verified => "verified",
            State::Failed => "failed",
            State::Spoiled => "spoiled",
        }
    }

    /// Parses a stored name.
    pub fn from_name(name: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether the journal accepts a move from `self` to `to`.
    ///
    /// ```
    /// use kart_perso::journal::State;
    /// assert!(State::Written.can_go(State::Verified));
    /// assert!(!State::Verified.can_go(State::Writing));
    /// ```
    pub fn can_go(self, to: State) -> bool {
        use State::{Claimed, Failed, Queued, Spoiled, Verified, Writing, Written};
        matches!(
            (self, to),
            (Queued, Claimed | Failed)
                | (Claimed, Queued | Writing | Failed)
                | (Writing | Written, Writing | Failed | Spoiled)
                | (Writing, Written)
                | (Written, Verified)
                | (Failed | Spoiled, Queued)
        )
    }

    /// States a crashed station may leave behind.
    pub fn is_unfinished(self) -> bool {
        matches!(self, State::Claimed | State::Writing | State::Written)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
