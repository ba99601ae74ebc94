//! Fault injection: what a real card or reader does on a bad day.

use std::time::Duration;

/// Faults to inject, by APDU number (the first APDU after power-on of the
/// simulator object is number 1; GET RESPONSE counts too).
///
/// ```
/// use kart_sim::Faults;
/// use std::time::Duration;
/// let f = Faults::default().pull_after(5).slow_from(2, Duration::from_millis(1));
/// assert_eq!(f.pull_after_apdu, Some(5));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// After this APDU is answered the card leaves the reader: later
    /// transmits fail with `CardRemoved`.
    pub pull_after_apdu: Option<u64>,
    /// The n-th UPDATE BINARY (1-based) loses power mid-write: the file keeps
    /// its old content and the card leaves the reader without answering.
    pub tear_update: Option<u64>,
    /// From this APDU on, answers are random garbage of 0 to 5 bytes.
    pub garbage_from_apdu: Option<u64>,
    /// From this APDU on, each answer is delayed (a real sleep).
    pub slow: Option<(u64, Duration)>,
}

impl Faults {
    /// Pulls the card after APDU `n`.
    #[must_use]
    pub fn pull_after(mut self, n: u64) -> Self {
        self.pull_after_apdu = Some(n);
        self
    }
    /// Tears the `n`-th UPDATE BINARY.
    #[must_use]
    pub fn tear_update(mut self, n: u64) -> Self {
        self.tear_update = Some(n);
        self
    }
    /// Answers garbage from APDU `n` on.
    #[must_use]
    pub fn garbage_from(mut self, n: u64) -> Self {
        self.garbage_from_apdu = Some(n);
        self
    }
    /// Delays every answer from APDU `n` on by `delay`.
    #[must_use]
    pub fn slow_from(mut self, n: u64, delay: Duration) -> Self {
        self.slow = Some((n, delay));
        self
    }
}
