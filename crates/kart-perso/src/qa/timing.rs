//! TIME-028 and the per-command latency figures: every APDU measured on the
//! host, against the catalogue's hard bounds and the profile's latency model.

use std::collections::BTreeMap;

use kart_spec::latency::{CommandHeader, KeygenPoint};
use kart_spec::Latency;
use serde::Serialize;

use super::probe::Exchange;

/// The catalogue's bound for one APDU (TIME-028), µs.
pub const APDU_BOUND_US: u64 = 5_000_000;
/// The catalogue's bound for GENERATE ASYMMETRIC KEY PAIR, µs.
pub const KEYGEN_BOUND_US: u64 = 30_000_000;
/// Measured time may exceed the model by this factor…
pub const MODEL_FACTOR: u64 = 2;
/// …plus this much for the host, reader and scheduling, µs.
pub const HOST_ALLOWANCE_US: u64 = 250_000;

/// Latency figures of one command (instruction) within a check or a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandLatency {
    /// Command name (`VERIFY`), or `INS xx` for one the spec does not name.
    pub command: String,
    /// APDUs sent.
    pub apdus: u64,
    /// Sum of their round trips, µs.
    pub total_us: u64,
    /// Slowest round trip, µs.
    pub max_us: u64,
    /// The profile's model for the slowest one, µs.
    pub model_us: u64,
}

/// The name of an instruction (README §8).
pub fn command_name(ins: u8) -> String {
    match ins {
        0xA4 => "SELECT",
        0xB0 => "READ BINARY",
        0xD6 => "UPDATE BINARY",
        0x0E => "ERASE BINARY",
        0xCA => "GET DATA",
        0xDA => "PUT DATA",
        0x20 => "VERIFY",
        0x24 => "CHANGE REFERENCE DATA",
        0x2C => "RESET RETRY COUNTER",
        0x47 => "GENERATE ASYMMETRIC KEY PAIR",
        0x88 => "INTERNAL AUTHENTICATE",
        0x2A => "PSO COMPUTE DIGITAL SIGNATURE",
        0x84 => "GET CHALLENGE",
        0xC0 => "GET RESPONSE",
        0xF0 => "SET STATUS",
        0x50 => "INITIALIZE UPDATE",
        0x82 => "EXTERNAL AUTHENTICATE",
        other => return format!("INS {other:02X}"),
    }
    .to_owned()
}

/// What the profile's latency model says this APDU typically costs
/// (README §5; key generation at its median), µs.
pub(crate) fn model_us(model: &Latency, e: &Exchange) -> u64 {
    micros(model.command_time(header(e), e.response_bytes, KeygenPoint::Median))
}

/// The most an APDU may take: the model's worst case (key generation at
/// its tail) with its allowance, never above the catalogue's bound.
pub(crate) fn bound_us(model: &Latency, e: &Exchange) -> u64 {
    let hard = if e.ins == 0x47 && e.p1 == 0x80 {
        KEYGEN_BOUND_US
    } else {
        APDU_BOUND_US
    };
    let worst = micros(model.command_time(header(e), e.response_bytes, KeygenPoint::Tail));
    (worst * MODEL_FACTOR + HOST_ALLOWANCE_US).min(hard)
}

fn header(e: &Exchange) -> CommandHeader {
    CommandHeader {
        cla: e.cla,
        ins: e.ins,
        p1: e.p1,
        bytes: e.command_bytes,
    }
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Per-command figures of `exchanges`.
pub(crate) fn per_command<'a>(
    model: &Latency,
    exchanges: impl IntoIterator<Item = &'a Exchange>,
) -> Vec<CommandLatency> {
    let mut by: BTreeMap<String, CommandLatency> = BTreeMap::new();
    for e in exchanges {
        let name = command_name(e.ins);
        let c = by.entry(name.clone()).or_insert(CommandLatency {
            command: name,
            apdus: 0,
            total_us: 0,
            max_us: 0,
            model_us: 0,
        });
        c.apdus += 1;
        c.total_us += e.micros;
        if e.micros >= c.max_us {
            c.max_us = e.micros;
            c.model_us = model_us(model, e);
        }
    }
    by.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(ins: u8, p1: u8, command_bytes: usize, micros: u64) -> Exchange {
        Exchange {
            check: 0,
            cla: 0,
            ins,
            p1,
            command_bytes,
            response_bytes: 2,
            sw: Some(kart_apdu::StatusWord::SUCCESS),
            micros,
        }
    }

    const MODEL: Latency = Latency {
        chip_class: kart_spec::ChipClass::Mid,
        command_us: 1000,
        per_byte_us: 10,
        atomic_write_per_256_us: 25_600,
        plain_write_per_256_us: 2560,
        cipher_per_256_us: 2560,
        sign_ms: 50,
        keygen: kart_spec::KeyGeneration {
            median_ms: 500,
            sigma: 0.5,
            cap_ms: 2000,
            first_call_factor: 1.0,
        },
    };

    #[test]
    fn model_adds_transfer_and_card_work_as_readme_section_5_says() {
        // UPDATE BINARY with 10 data bytes: 1000 + 17·10 + 10·25600/256.
        assert_eq!(model_us(&MODEL, &exchange(0xD6, 0, 15, 0)), 2170);
        // Under secure messaging (CLA 04) the 15 bytes also go through the
        // cipher: + 15·2560/256.
        let secured = Exchange {
            cla: 0x04,
            ..exchange(0xD6, 0, 15, 0)
        };
        assert_eq!(model_us(&MODEL, &secured), 2320);
        // Key generation at its median: 1000 + 7·10 + 500 000.
        assert_eq!(model_us(&MODEL, &exchange(0x47, 0x80, 5, 0)), 501_070);
        // Reading the public key is no key generation.
        assert_eq!(model_us(&MODEL, &exchange(0x47, 0x81, 5, 0)), 1070);
    }

    #[test]
    fn bound_is_twice_the_worst_case_plus_allowance_capped_by_the_catalogue() {
        assert_eq!(
            bound_us(&MODEL, &exchange(0xCA, 0, 5, 0)),
            2 * 1070 + HOST_ALLOWANCE_US
        );
        // Key generation at its tail: 500 ms × e^(0.5 × 3.09) = 2.33 s,
        // capped at 2 s.
        assert_eq!(
            bound_us(&MODEL, &exchange(0x47, 0x80, 5, 0)),
            2 * (1070 + 2_000_000) + HOST_ALLOWANCE_US
        );
        let slow = Latency {
            keygen: kart_spec::KeyGeneration {
                median_ms: 20_000,
                cap_ms: 90_000,
                ..MODEL.keygen
            },
            ..MODEL
        };
        assert_eq!(
            bound_us(&slow, &exchange(0x47, 0x80, 5, 0)),
            KEYGEN_BOUND_US
        );
    }

    #[test]
    fn per_command_sums_and_keeps_the_slowest() {
        let log = [
            exchange(0x20, 0, 13, 5),
            exchange(0x20, 0, 13, 9),
            exchange(0x99, 0, 5, 1),
        ];
        let c = per_command(&MODEL, &log);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].command, "INS 99");
        assert_eq!(
            (
                c[1].command.as_str(),
                c[1].apdus,
                c[1].total_us,
                c[1].max_us
            ),
            ("VERIFY", 2, 14, 9)
        );
    }
}
