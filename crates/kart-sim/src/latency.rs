//! The vendor's latency model: what each APDU would cost on the real card.

use kart_spec::Latency;
use std::time::Duration;

/// What the simulator does with the modelled time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LatencyMode {
    /// Answer at once; the model is not computed.
    #[default]
    Off,
    /// Answer at once and add the modelled time to a virtual clock
    /// ([`SimCard::modelled_time`](crate::SimCard::modelled_time)).
    Accounted,
    /// Sleep for the modelled time before answering.
    Real,
}

/// Card work done by one APDU, beyond transfer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Work {
    pub eeprom_bytes: usize,
    pub keygens: u32,
    pub signatures: u32,
}

/// Modelled time of one APDU.
pub(crate) fn apdu_time(
    model: &Latency,
    command_bytes: usize,
    response_bytes: usize,
    work: Work,
) -> Duration {
    let bytes = (command_bytes + response_bytes) as u64;
    let us = model.apdu_turnaround_us
        + bytes * model.per_byte_us
        + work.eeprom_bytes as u64 * model.eeprom_write_per_byte_us
        + u64::from(work.keygens) * model.keygen_ms * 1000
        + u64::from(work.signatures) * model.sign_ms * 1000;
    Duration::from_micros(us)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_every_part_of_the_model() {
        let m = Latency {
            apdu_turnaround_us: 1000,
            per_byte_us: 10,
            eeprom_write_per_byte_us: 2,
            keygen_ms: 3,
            sign_ms: 4,
        };
        let w = Work {
            eeprom_bytes: 100,
            keygens: 1,
            signatures: 2,
        };
        // 1000 + 30*10 + 100*2 + 3000 + 8000
        assert_eq!(apdu_time(&m, 20, 10, w), Duration::from_micros(12_500));
    }
}
