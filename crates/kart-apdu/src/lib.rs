//! # kart-apdu
//!
//! The protocol layer of kart: ISO/IEC 7816-4 command and response APDUs,
//! status words, BER-TLV helpers, the [`Transport`] trait, the [`Card`]
//! session (GET RESPONSE, `6Cxx` re-sends, chaining, extended length) and
//! `GlobalPlatform` secure channels. No I/O: readers and simulators implement
//! [`Transport`] in their own crates.
//!
//! ```
//! use kart_apdu::{Command, Response, Status};
//! let verify = Command::new(0x00, 0x20, 0x00, 0x81).with_data(b"123456")?.sensitive();
//! assert_eq!(format!("{verify:?}").contains("123456"), false);
//! let r = Response::from_bytes(&[0x63, 0xC2])?;
//! assert_eq!(r.sw().status(), Status::VerificationFailed { retries_left: 2 });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod card;
mod command;
pub mod gp;
mod response;
mod status;
pub mod tlv;
mod transport;

pub use card::{
    Card, CardError, Counters, Direction, TraceEvent, TraceHook, MAX_GET_RESPONSES,
    MAX_RESPONSE_DATA,
};
pub use command::{
    Case, Command, CommandError, CLA_CHAINING, MAX_EXTENDED_DATA, MAX_EXTENDED_LE, MAX_SHORT_DATA,
    MAX_SHORT_LE,
};
pub use response::{Response, ResponseError};
pub use status::{Status, StatusError, StatusWord};
pub use transport::{CardCaps, Transport, TransportError};

/// Compiles and runs the example in README.md as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
