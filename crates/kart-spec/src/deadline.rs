//! How long a host waits for one command: a multiple of what the vendor's
//! latency model says the command costs, never less than a floor.
//!
//! A card that never answers wedges its reader (pcscd waits for it without
//! limit), so the host's wait is the only bound. One fixed wait does not fit:
//! long enough for on-card key generation, it lets a mute card hold its
//! reader for that long on every command. Derived from the model, a SELECT
//! gives up after about a second while key generation keeps its allowance.

use std::time::Duration;

use crate::profile::Latency;

/// The shortest wait: a healthy card answers any simple command well within
/// it (measured chips: 15-45 ms per empty command), a mute one is caught.
pub const FLOOR: Duration = Duration::from_secs(1);

/// How many times the modelled time a command may take.
pub const MULTIPLE: u32 = 5;

/// The largest response a short APDU can carry (256 bytes and SW1 SW2).
const MAX_SHORT_RESPONSE: usize = 258;

impl Latency {
    /// What the model says `apdu` costs the card at most: the turnaround,
    /// the bytes both ways (a full response assumed), the persistent write of
    /// its data, and the key generation or signature its instruction asks for.
    ///
    /// ```
    /// use kart_spec::Latency;
    /// let model = Latency { apdu_turnaround_us: 1000, per_byte_us: 10, eeprom_write_per_byte_us: 100,
    ///     keygen_ms: 2000, sign_ms: 150 };
    /// // GENERATE ASYMMETRIC KEY PAIR: the key generation dominates.
    /// let generate = [0x84, 0x47, 0x80, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8];
    /// assert!(model.worst_case(&generate) > std::time::Duration::from_secs(2));
    /// ```
    pub fn worst_case(&self, apdu: &[u8]) -> Duration {
        let ins = apdu.get(1).copied().unwrap_or(0);
        let data = apdu.len().saturating_sub(5) as u64;
        let bytes = (apdu.len() + MAX_SHORT_RESPONSE) as u64;
        let mut us = self.apdu_turnaround_us + bytes * self.per_byte_us;
        match ins {
            // GENERATE ASYMMETRIC KEY PAIR (ISO 7816-8): also stores the key.
            0x46 | 0x47 => us += self.keygen_ms * 1000 + data * self.eeprom_write_per_byte_us,
            // INTERNAL AUTHENTICATE, PERFORM SECURITY OPERATION.
            0x88 | 0x2A => us += self.sign_ms * 1000,
            // Commands that write their data to persistent memory: UPDATE
            // BINARY, PUT DATA, CHANGE REFERENCE DATA, RESET RETRY COUNTER,
            // STORE DATA, SET STATUS.
            0xD6 | 0xD7 | 0xDA | 0xDB | 0x24 | 0x2C | 0xE2 | 0xF0 => {
                us += data * self.eeprom_write_per_byte_us;
            }
            _ => {}
        }
        Duration::from_micros(us)
    }

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
    /// assert!(model.deadline(&generate) >= Duration::from_millis(model.keygen_ms) * 5);
    /// # Ok::<(), kart_spec::SpecError>(())
    /// ```
    pub fn deadline(&self, apdu: &[u8]) -> Duration {
        (self.worst_case(apdu) * MULTIPLE).max(FLOOR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Latency {
        Latency {
            apdu_turnaround_us: 1500,
            per_byte_us: 22,
            eeprom_write_per_byte_us: 120,
            keygen_ms: 1200,
            sign_ms: 150,
        }
    }

    #[test]
    fn simple_commands_get_the_floor_and_costly_ones_a_multiple_of_the_model() {
        let m = model();
        assert_eq!(m.deadline(&[0x00, 0xCA, 0x9F, 0x7F, 0x00]), FLOOR);
        // 1500 + (5 + 258) * 22 + 1200 ms, times 5.
        let generate = [0x84, 0x47, 0x80, 0x01, 0x00];
        assert_eq!(
            m.deadline(&generate),
            Duration::from_micros((1500 + 263 * 22 + 1_200_000) * 5)
        );
        // A 255-byte UPDATE BINARY: 1500 + 518 * 22 + 250 * 120 (data after
        // the 5-byte header) µs, far below the floor's fifth.
        let mut update = vec![0x04, 0xD6, 0x00, 0x00, 0xFF];
        update.extend([0u8; 255]);
        assert_eq!(
            m.worst_case(&update),
            Duration::from_micros(1500 + 518 * 22 + 255 * 120)
        );
        assert_eq!(m.deadline(&update), FLOOR);
        // Nothing at all, or garbage: the floor, no panic.
        assert_eq!(m.deadline(&[]), FLOOR);
    }
}
