//! # kart-testkit
//!
//! What kart's tests share, written once instead of in a support module per
//! test directory. A dev-dependency only (`publish = false`).
//!
//! | module | what |
//! | --- | --- |
//! | [`cli`] | running the `kart` binary away from the operator's environment |
//! | [`ids`] | Luhn tracking codes, national codes, JPEG-shaped photos |
//! | [`raw`] | hand-built APDUs and TLVs for simulated cards, from the spec tables |
//! | [`transport`] | test transports: a reader that loses one answer |
//! | [`test_card`] | a small ISO 7816-4 card for the vpcd face |
//! | [`pcscd`] | a private pcscd and waiting for its readers |
//! | [`openssl`] | an independent CA built with the `openssl` command |
//! | [`softhsm`] | a private SoftHSM2 token per test |
//! | [`process`] | running system tools and showing what they said on failure |
//! | `engine` (feature) | demo issuers, batches, stations, keyed simulated cards |
//! | `cards` (feature) | cards personalized by hand, APDU recorders |
//!
//! Without features the kit knows nothing of the engine (kart-perso), so the
//! simulator's and the driver's tests keep their layering.
//!
//! ```
//! assert_eq!(kart_testkit::ids::national_code(1_234_567), "0012345679");
//! ```
#![allow(clippy::doc_markdown)] // proper names (SoftHSM, OpenSSL) are not code

#[cfg(feature = "engine")]
pub mod cards;
pub mod cli;
#[cfg(feature = "engine")]
pub mod engine;
pub mod ids;
pub mod openssl;
pub mod pcscd;
pub mod process;
pub mod raw;
pub mod softhsm;
pub mod test_card;
pub mod transport;
