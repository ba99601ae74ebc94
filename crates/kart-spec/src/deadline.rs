//! How long a host waits for one command: a multiple of what the vendor's
//! latency model says the command may take at worst, never less than a floor.
//!
//! A card that never answers wedges its reader (pcscd waits for it without
//! limit), so the host's wait is the only bound. One fixed wait does not fit:
//! long enough for on-card key generation, it lets a mute card hold its
//! reader that long on every command. Derived from the model, a SELECT gives
//! up after about a second, while key generation keeps an allowance that
//! covers the tail of its distribution ([`crate::KeyGeneration::tail`]).

use std::time::Duration;

use crate::latency::Latency;

/// The shortest wait: a healthy card answers any simple command well within
/// it (measured chips: 15-45 ms per empty command), a mute one is caught.
pub const FLOOR: Duration = Duration::from_secs(1);

/// The margin over the model's worst case, for the host, the reader and a
/// loaded machine.
pub const MULTIPLE: u32 = 5;

impl Latency {
    /// The host's deadline for `apdu`: [`MULTIPLE`] × [`Latency::worst_case`],
    /// at least [`FLOOR`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let spec = kart_spec::Spec::embedded()?;
    /// let model = spec.profile("vendor-c").unwrap().latency;
    /// let select = [0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00];
    /// assert_eq!(model.deadline(&select), kart_spec::deadline::FLOOR);
    /// let generate = [0x84, 0x47, 0x80, 0x01, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x00];
    /// assert!(model.deadline(&generate) >= model.keygen.tail() * 5);
    /// # Ok::<(), kart_spec::SpecError>(())
    /// ```
    pub fn deadline(&self, apdu: &[u8]) -> Duration {
        (self.worst_case(apdu) * MULTIPLE).max(FLOOR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::{ChipClass, KeyGeneration};

    /// An RSA-2048 chip of the slow class (card-timings.md: CJTOP 80K).
    fn slow_rsa() -> Latency {
        Latency {
            chip_class: ChipClass::Slow,
            command_us: 1500,
            per_byte_us: 22,
            atomic_write_per_256_us: 2200,
            plain_write_per_256_us: 2200,
            cipher_per_256_us: 26_000,
            sign_ms: 244,
            keygen: KeyGeneration {
                median_ms: 9758,
                sigma: 0.6,
                cap_ms: 21_000,
                first_call_factor: 1.0,
            },
        }
    }

    #[test]
    fn simple_commands_get_the_floor_and_key_generation_covers_its_tail() {
        let m = slow_rsa();
        assert_eq!(m.deadline(&[0x00, 0xCA, 0x9F, 0x7F, 0x00]), FLOOR);
        // A key generation at the cap (21 s, the slowest a healthy chip of
        // this class takes) is well inside its deadline.
        let generate = [0x84, 0x47, 0x80, 0x01, 0x00];
        assert!(m.deadline(&generate) > Duration::from_secs(21) * 4);
        // A 255-byte UPDATE BINARY: transfer, atomic write and cipher, far
        // below the floor's fifth.
        let mut update = vec![0x04, 0xD6, 0x00, 0x00, 0xFF];
        update.extend([0u8; 255]);
        let expect = 1500 + (260 + 258) * 22 + 255 * 2200 / 256 + 260 * 26_000 / 256;
        assert_eq!(m.worst_case(&update), Duration::from_micros(expect));
        assert_eq!(m.deadline(&update), FLOOR);
        // Nothing at all, or garbage: the floor, no panic.
        assert_eq!(m.deadline(&[]), FLOOR);
    }
}
