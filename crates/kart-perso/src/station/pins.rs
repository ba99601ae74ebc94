//! The PINs set by the loaded batches, the one part of a record a station
//! keeps in memory (never in the journal): compact, so that a batch with a
//! PIN in every row stays small, and zeroized. The digits live in fixed
//! blocks that are never moved (a growing table would leave copies of them
//! in freed memory); the index from tracking code to slot holds no secret.

use std::collections::HashMap;

use zeroize::{Zeroize, Zeroizing};

use crate::record::{Pin, TrackingCode};

/// Slots per block.
const BLOCK: usize = 1024;

/// One PIN: its length, then up to 8 ASCII digits.
type Slot = [u8; 9];

/// PINs by tracking code.
#[derive(Default)]
pub(super) struct PinBook {
    index: HashMap<u64, u32>,
    blocks: Vec<Box<[Slot; BLOCK]>>,
    len: u32,
}

impl PinBook {
    /// Keeps `pin` for `tracking`, replacing (and wiping) an earlier one.
    pub(super) fn insert(&mut self, tracking: &TrackingCode, pin: &Pin) {
        let (Some(key), digits) = (key(tracking), pin.expose_digits()) else {
            return;
        };
        let Ok(len) = u8::try_from(digits.len()) else {
            return;
        };
        if digits.len() > 8 {
            return;
        }
        let at = if let Some(&at) = self.index.get(&key) {
            at
        } else {
            let at = self.len;
            if usize::try_from(at).unwrap_or(usize::MAX) % BLOCK == 0 {
                self.blocks.push(Box::new([[0; 9]; BLOCK]));
            }
            self.len += 1;
            self.index.insert(key, at);
            at
        };
        if let Some(slot) = self.slot_mut(at) {
            slot.zeroize();
            slot[0] = len;
            slot[1..=digits.len()].copy_from_slice(digits);
        }
    }

    /// The PIN kept for `tracking`.
    pub(super) fn get(&self, tracking: &TrackingCode) -> Option<Pin> {
        let at = *self.index.get(&key(tracking)?)?;
        let (block, i) = place(at);
        let slot = self.blocks.get(block)?.get(i)?;
        let len = usize::from(slot[0]).min(8);
        let text = Zeroizing::new(String::from_utf8(slot[1..=len].to_vec()).ok()?);
        Pin::parse(&text).ok()
    }

    fn slot_mut(&mut self, at: u32) -> Option<&mut Slot> {
        let (block, i) = place(at);
        self.blocks.get_mut(block)?.get_mut(i)
    }
}

impl Drop for PinBook {
    fn drop(&mut self) {
        for block in &mut self.blocks {
            block.zeroize();
        }
    }
}

fn place(at: u32) -> (usize, usize) {
    let at = usize::try_from(at).unwrap_or(usize::MAX);
    (at / BLOCK, at % BLOCK)
}

/// A tracking code's 12 digits as a number.
fn key(tracking: &TrackingCode) -> Option<u64> {
    tracking.as_str().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_kept_replaced_and_found_by_tracking_code() {
        let mut book = PinBook::default();
        let code = |n: &str| TrackingCode::parse(n).unwrap();
        let pin = |p: &str| Pin::parse(p).unwrap();
        assert!(book.get(&code("140409040007")).is_none());
        book.insert(&code("140409040007"), &pin("1234"));
        book.insert(&code("140409040015"), &pin("87654321"));
        book.insert(&code("140409040007"), &pin("99999"));
        assert_eq!(book.get(&code("140409040007")), Some(pin("99999")));
        assert_eq!(book.get(&code("140409040015")), Some(pin("87654321")));
        assert_eq!(book.len, 2);
        for n in 0..3000u64 {
            let body = format!("{:011}", 14_040_000_000 + n);
            let digits: Vec<u8> = body.bytes().map(|b| b - b'0').collect();
            let check = crate::record::luhn_check_digit(&digits);
            book.insert(&code(&format!("{body}{check}")), &pin("2468"));
        }
        assert_eq!(book.blocks.len(), 3);
        assert_eq!(book.get(&code("140409040015")), Some(pin("87654321")));
    }
}
