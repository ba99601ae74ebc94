//! # kart-sim
//!
//! The reference simulator of the kart national-ID applet
//! (`applets-spec/`): a GlobalPlatform card manager with SCP02/SCP03 (the
//! card side from [`kart_apdu::gp::card`]), the national-ID applet with its
//! life cycle, files, PIN/PUK counters, on-card P-256 keys (ring) and
//! EEPROM-like atomic writes, and the quirks, limits and latency model of each
//! vendor profile. It is a second, independent implementation of the spec:
//! it shares no code with the personalization engine.
//!
//! Two faces: [`SimCard`] is a [`kart_apdu::Transport`] in process, and a
//! [`vpcd::VirtualCard`] that [`vpcd::serve`] puts behind a real `pcscd`.
//! [`Faults`] pulls the card, tears writes, answers garbage or slowly;
//! [`ApduLog`] counts APDUs and bytes; [`LatencyMode`] runs the vendor's
//! timing model on a virtual clock or for real; [`store`] keeps a card in a
//! file between processes, as a card left in a reader.
//!
//! ```
//! use kart_apdu::{Card, Command, StatusWord};
//! use kart_sim::{Faults, SimCard};
//! let spec = kart_spec::Spec::embedded()?;
//! let profile = spec.profile("vendor-a").unwrap();
//! let mut sim = SimCard::new(profile)?;
//! sim.set_faults(Faults::default().pull_after(1));
//! let mut card = Card::with_caps(sim, profile.caps());
//! let cplc = card.send_ok(&Command::new(0x80, 0xCA, 0x9F, 0x7F).with_le(256)?)?;
//! assert_eq!(&cplc[..3], [0x9F, 0x7F, 42]);
//! // The card was pulled after that first APDU.
//! assert!(card.send(&Command::new(0x00, 0x84, 0, 0).with_le(8)?).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
// Proper names (GlobalPlatform) are not code.
#![allow(clippy::doc_markdown)]

mod applet;
mod card;
mod eeprom;
mod faults;
mod formats;
mod keys;
mod latency;
mod log;
mod manager;
mod pins;
pub mod store;
mod sw;
pub mod vpcd;

pub use card::{default_test_key, SimCard, SimConfig, SimError};
pub use faults::Faults;
pub use latency::LatencyMode;
pub use log::{ApduLog, LogEntry};
