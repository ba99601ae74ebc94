//! PINs and the PUK: values zeroized, compared in constant time, try
//! counters that survive resets.

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Length of a PIN block on the wire (digits right-padded with `FF`).
pub(crate) const BLOCK_LEN: usize = 8;

/// One PIN's non-volatile state.
pub(crate) struct Pin {
    block: Option<Zeroizing<[u8; BLOCK_LEN]>>,
    tries_left: u8,
    max_tries: u8,
    min_len: usize,
    max_len: usize,
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pin")
            .field("set", &self.block.is_some())
            .field("tries_left", &self.tries_left)
            .finish_non_exhaustive()
    }
}

/// Result of presenting a PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    Ok,
    /// Wrong; this many tries remain.
    Wrong(u8),
    Blocked,
    NotSet,
}

impl Pin {
    pub(crate) fn new(max_tries: u8, min_len: usize, max_len: usize) -> Self {
        Pin {
            block: None,
            tries_left: max_tries,
            max_tries,
            min_len,
            max_len,
        }
    }

    pub(crate) fn is_set(&self) -> bool {
        self.block.is_some()
    }
    pub(crate) fn tries_left(&self) -> u8 {
        self.tries_left
    }
    pub(crate) fn is_blocked(&self) -> bool {
        self.is_set() && self.tries_left == 0
    }

    /// Whether `block` is a well-formed PIN block for this PIN: `min..=max`
    /// ASCII digits, then `FF` up to 8 bytes.
    pub(crate) fn well_formed(&self, block: &[u8]) -> bool {
        if block.len() != BLOCK_LEN {
            return false;
        }
        let digits = block.iter().take_while(|b| b.is_ascii_digit()).count();
        (self.min_len..=self.max_len).contains(&digits)
            && block.iter().skip(digits).all(|b| *b == 0xFF)
    }

    /// Checks `block` (well-formed, 8 bytes); a wrong try is counted before answering.
    pub(crate) fn check(&mut self, block: &[u8]) -> Check {
        let Some(stored) = &self.block else {
            return Check::NotSet;
        };
        if self.tries_left == 0 {
            return Check::Blocked;
        }
        if bool::from(stored.as_slice().ct_eq(block)) {
            self.tries_left = self.max_tries;
            Check::Ok
        } else {
            self.tries_left -= 1;
            Check::Wrong(self.tries_left)
        }
    }

    /// Sets a new value (well-formed) and restores the tries.
    pub(crate) fn set(&mut self, block: &[u8]) {
        let mut b = Zeroizing::new([0u8; BLOCK_LEN]);
        b.copy_from_slice(block.get(..BLOCK_LEN).unwrap_or(&[0xFF; BLOCK_LEN]));
        self.block = Some(b);
        self.tries_left = self.max_tries;
    }

    /// The stored block, when set (for the stored card).
    pub(crate) fn block(&self) -> Option<Zeroizing<[u8; BLOCK_LEN]>> {
        self.block.clone()
    }

    /// The most tries this PIN has.
    pub(crate) fn max_tries(&self) -> u8 {
        self.max_tries
    }

    /// Restores a stored state: the block (well-formed, checked by the
    /// caller) or none, and the tries left.
    pub(crate) fn restore(&mut self, block: Option<&[u8]>, tries_left: u8) {
        self.block = block.map(|b| {
            let mut v = Zeroizing::new([0xFF; BLOCK_LEN]);
            v.copy_from_slice(b.get(..BLOCK_LEN).unwrap_or(&[0xFF; BLOCK_LEN]));
            v
        });
        self.tries_left = tries_left.min(self.max_tries);
    }

    /// Puts the try counter back to `tries` (the `pin-counter-not-decremented` defect).
    pub(crate) fn restore_tries(&mut self, tries: u8) {
        self.tries_left = tries.min(self.max_tries);
    }

    /// Restores the tries without changing the value.
    pub(crate) fn unblock(&mut self) {
        self.tries_left = self.max_tries;
    }

    /// Status bytes for EF.PIN_STATUS: tries left, state.
    pub(crate) fn status(&self) -> [u8; 2] {
        let state = match (self.is_set(), self.is_blocked()) {
            (false, _) => 0,
            (true, false) => 1,
            (true, true) => 2,
        };
        [self.tries_left, state]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_down_blocks_and_never_prints_the_value() {
        let mut p = Pin::new(3, 4, 8);
        let good = *b"1234\xFF\xFF\xFF\xFF";
        let bad = *b"9999\xFF\xFF\xFF\xFF";
        assert_eq!(p.check(&good), Check::NotSet);
        p.set(&good);
        assert_eq!(p.check(&bad), Check::Wrong(2));
        assert_eq!(p.check(&good), Check::Ok);
        assert_eq!(p.tries_left(), 3);
        for left in [2, 1, 0] {
            assert_eq!(p.check(&bad), Check::Wrong(left));
        }
        assert_eq!(p.check(&good), Check::Blocked);
        assert!(!format!("{p:?}").contains("1234"));
    }

    #[test]
    fn block_format() {
        let p = Pin::new(3, 4, 8);
        assert!(p.well_formed(b"1234\xFF\xFF\xFF\xFF"));
        assert!(p.well_formed(b"12345678"));
        assert!(!p.well_formed(b"123\xFF\xFF\xFF\xFF\xFF"));
        assert!(!p.well_formed(b"12a4\xFF\xFF\xFF\xFF"));
        assert!(!p.well_formed(b"1234\xFF\xFF\xFF\xFF\xFF"));
        assert!(!p.well_formed(b"1234\xFF1\xFF\xFF"));
    }
}
