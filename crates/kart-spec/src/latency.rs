//! The vendor's latency model (README §5): what each command costs the
//! card, drawn from measured ID-class chips (`shared/card-timings.md`).
//!
//! Fixed costs per command and per byte, persistent writes per 256 bytes
//! (atomic, as UPDATE BINARY writes through a shadow copy, and plain),
//! secure-messaging cipher time per 256 bytes, one signature time, and
//! on-card key generation as a *distribution*: real chips take a random time
//! per key, roughly lognormal (median, σ), bounded by a cap, with a slower
//! first call on some chips. The simulator draws from it; hosts size their
//! deadlines on its tail ([`Latency::worst_case`]) and QA its bounds.

use std::time::Duration;

use serde::Deserialize;

/// The measured chip class a profile is modelled on (card-timings.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChipClass {
    /// NXP JCOP4 P71 class.
    Fast,
    /// G+D `SmartCafe` 7.0, Infineon SECORA ID X, NXP JCOP3 class.
    Mid,
    /// Infineon CJTOP 80K, Athena `IDProtect` class.
    Slow,
}

/// On-card key generation: lognormal around `median_ms` with shape
/// `sigma`, never above `cap_ms`; the first generation of a card takes
/// `first_call_factor` times as long.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyGeneration {
    /// Median time, ms.
    pub median_ms: u64,
    /// σ of the time's natural logarithm.
    pub sigma: f64,
    /// Longest time the chip takes, ms.
    pub cap_ms: u64,
    /// Slowdown of a card's first key generation (1 = none).
    #[serde(default = "one")]
    pub first_call_factor: f64,
}

fn one() -> f64 {
    1.0
}

/// z of the standard normal distribution at 0.999: the tail hosts plan for.
const Z_999: f64 = 3.090_232;

impl KeyGeneration {
    /// The time at the `z`-quantile of the lognormal, capped, for a first
    /// call or not.
    // Milliseconds, far below 2^52: the casts lose nothing.
    #[allow(clippy::cast_precision_loss)]
    pub fn at_z(&self, z: f64, first_call: bool) -> Duration {
        let median = self.median_ms as f64;
        let ms = (median * (self.sigma * z).exp()).min(self.cap_ms as f64);
        let factor = if first_call {
            self.first_call_factor
        } else {
            1.0
        };
        Duration::from_secs_f64((ms * factor).max(0.0) / 1000.0)
    }

    /// Whether the figures describe a distribution: σ finite and not
    /// negative, the median within the cap, a first-call factor of at least 1.
    pub(crate) fn check(&self) -> Result<(), (&'static str, String)> {
        if !(self.sigma.is_finite() && self.sigma >= 0.0) {
            return Err(("sigma", format!("{} is not a σ ≥ 0", self.sigma)));
        }
        if self.median_ms > self.cap_ms {
            return Err((
                "cap_ms",
                format!(
                    "{} ms is below the median {} ms",
                    self.cap_ms, self.median_ms
                ),
            ));
        }
        if !(self.first_call_factor.is_finite() && self.first_call_factor >= 1.0) {
            return Err((
                "first_call_factor",
                format!("{} is not a factor ≥ 1", self.first_call_factor),
            ));
        }
        Ok(())
    }

    /// The longest a healthy chip takes: the 99.9th percentile (or the cap)
    /// of a first call.
    ///
    /// ```
    /// use kart_spec::KeyGeneration;
    /// let rsa = KeyGeneration { median_ms: 4000, sigma: 0.8, cap_ms: 21_000, first_call_factor: 1.0 };
    /// // 4 s × e^(0.8 × 3.09) ≈ 47 s, capped at 21 s.
    /// assert_eq!(rsa.tail(), std::time::Duration::from_secs(21));
    /// ```
    pub fn tail(&self) -> Duration {
        self.at_z(Z_999, true)
    }
}

/// The card's timing model.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    /// The measured chip class the figures come from.
    pub chip_class: ChipClass,
    /// Fixed cost per command, µs.
    pub command_us: u64,
    /// Transfer cost per command or response byte, µs.
    pub per_byte_us: u64,
    /// Atomic (transactional) persistent write per 256 bytes, µs.
    pub atomic_write_per_256_us: u64,
    /// Plain persistent write per 256 bytes, µs.
    pub plain_write_per_256_us: u64,
    /// Secure-messaging cipher and MAC per 256 bytes, µs.
    pub cipher_per_256_us: u64,
    /// One signature with the holder key, ms.
    pub sign_ms: u64,
    /// Holder key pair generation.
    pub keygen: KeyGeneration,
}

/// Which point of the key-generation distribution a command time uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeygenPoint {
    /// The median: what a command typically costs.
    Median,
    /// The tail ([`KeyGeneration::tail`]): what a host must wait for.
    Tail,
}

/// The work one command does on the card, beyond transfer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Work {
    /// Bytes written atomically.
    pub atomic_bytes: usize,
    /// Bytes written plainly.
    pub plain_bytes: usize,
    /// Bytes through the secure-messaging cipher and MAC.
    pub cipher_bytes: usize,
    /// Signatures computed.
    pub signatures: u32,
}

impl Latency {
    /// The modelled time of one command of `command_bytes` answered with
    /// `response_bytes` doing `work`, plus `keygen` (a drawn or planned key
    /// generation time) when it generates a key.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kart_spec::latency::Work;
    /// let spec = kart_spec::Spec::embedded()?;
    /// let model = spec.profile("vendor-b").unwrap().latency;
    /// let write = Work { atomic_bytes: 256, ..Work::default() };
    /// let t = model.time(5 + 256, 2, write, Duration::ZERO);
    /// assert_eq!(t, Duration::from_micros(model.command_us + 263 * model.per_byte_us
    ///     + model.atomic_write_per_256_us));
    /// # Ok::<(), kart_spec::SpecError>(())
    /// ```
    pub fn time(
        &self,
        command_bytes: usize,
        response_bytes: usize,
        work: Work,
        keygen: Duration,
    ) -> Duration {
        let per_256 = |bytes: usize, us: u64| bytes as u64 * us / 256;
        let us = self.command_us
            + (command_bytes + response_bytes) as u64 * self.per_byte_us
            + per_256(work.atomic_bytes, self.atomic_write_per_256_us)
            + per_256(work.plain_bytes, self.plain_write_per_256_us)
            + per_256(work.cipher_bytes, self.cipher_per_256_us)
            + u64::from(work.signatures) * self.sign_ms * 1000;
        Duration::from_micros(us) + keygen
    }

    /// The modelled time of a command of the applet (README §8) known by its
    /// header, sizes and whether it travels under secure messaging: what a
    /// host or QA expects, with key generation at `point`.
    pub fn command_time(
        &self,
        header: CommandHeader,
        response_bytes: usize,
        point: KeygenPoint,
    ) -> Duration {
        let data = header.bytes.saturating_sub(5);
        let secured = header.cla & 0x0C != 0;
        let mut work = Work {
            cipher_bytes: if secured { header.bytes } else { 0 },
            ..Work::default()
        };
        let mut keygen = Duration::ZERO;
        match header.ins {
            // GENERATE ASYMMETRIC KEY PAIR (P1 80: generate; 81: read back).
            0x46 | 0x47 if header.p1 == 0x80 => {
                keygen = match point {
                    KeygenPoint::Median => self.keygen.at_z(0.0, false),
                    KeygenPoint::Tail => self.keygen.tail(),
                };
            }
            // INTERNAL AUTHENTICATE, PERFORM SECURITY OPERATION.
            0x88 | 0x2A => work.signatures = 1,
            // Writes of their data: UPDATE BINARY, PUT DATA, CHANGE REFERENCE
            // DATA, RESET RETRY COUNTER, STORE DATA, SET STATUS.
            0xD6 | 0xD7 | 0xDA | 0xDB | 0x24 | 0x2C | 0xE2 | 0xF0 => work.atomic_bytes = data,
            _ => {}
        }
        self.time(header.bytes, response_bytes, work, keygen)
    }

    /// The longest a healthy card takes for `apdu`: a full short response
    /// assumed, and key generation at its tail.
    ///
    /// ```
    /// let spec = kart_spec::Spec::embedded()?;
    /// let model = spec.profile("vendor-c").unwrap().latency;
    /// let generate = [0x84, 0x47, 0x80, 0x01, 0x08, 1, 2, 3, 4, 5, 6, 7, 8];
    /// assert!(model.worst_case(&generate) > model.keygen.tail());
    /// # Ok::<(), kart_spec::SpecError>(())
    /// ```
    pub fn worst_case(&self, apdu: &[u8]) -> Duration {
        self.command_time(
            CommandHeader::of(apdu),
            MAX_SHORT_RESPONSE,
            KeygenPoint::Tail,
        )
    }
}

/// The largest response a short APDU can carry (256 bytes and SW1 SW2).
const MAX_SHORT_RESPONSE: usize = 258;

/// What the model needs to know of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommandHeader {
    /// CLA (secure messaging when bits 0C are set).
    pub cla: u8,
    /// INS.
    pub ins: u8,
    /// P1.
    pub p1: u8,
    /// The whole command's length in bytes.
    pub bytes: usize,
}

impl CommandHeader {
    /// The header of a raw APDU (missing bytes read as zero).
    pub fn of(apdu: &[u8]) -> Self {
        let at = |i: usize| apdu.get(i).copied().unwrap_or(0);
        Self {
            cla: at(0),
            ins: at(1),
            p1: at(2),
            bytes: apdu.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_generation_quantiles_follow_the_lognormal_and_stop_at_the_cap() {
        let k = KeyGeneration {
            median_ms: 4000,
            sigma: 0.8,
            cap_ms: 21_000,
            first_call_factor: 1.5,
        };
        assert_eq!(k.at_z(0.0, false), Duration::from_secs(4));
        assert_eq!(k.at_z(0.0, true), Duration::from_secs(6));
        // p90: 4 s × e^(0.8 × 1.2816) = 11.15 s (card-timings.md: ≈ 12 s).
        let p90 = k.at_z(1.281_552, false).as_secs_f64();
        assert!((p90 - 11.15).abs() < 0.01, "{p90}");
        assert_eq!(k.tail(), Duration::from_secs_f64(21.0 * 1.5));
    }
}
