//! GlobalPlatform secure channels SCP02 and SCP03, host side and card side.
//!
//! - [`KeySet`]: static ENC/MAC/DEK keys of one key version (zeroized, never printed);
//!   [`diversify`] turns master keys into a card's keys (EMV CPS v1.1, VISA2, KDF3);
//!   [`CardKeySource`] is the seam a channel takes them through ([`SoftwareKeys`] in
//!   memory, an HSM above this crate).
//! - [`SecureChannel`]: the host side. [`SecureChannel::open`] sends INITIALIZE UPDATE,
//!   derives the session keys, checks the card cryptogram in constant time and sends
//!   EXTERNAL AUTHENTICATE; afterwards every command is wrapped (CLA bit `04`, C-MAC,
//!   C-DEC) and every response unwrapped (R-MAC, R-ENC). It is itself a
//!   [`Transport`](crate::Transport) whose [`capabilities`](crate::Transport::capabilities)
//!   reserve the MAC and padding overhead, so the intended stack is
//!   `Card<SecureChannel<Card<Reader>>>`: the inner [`Card`](crate::Card) resolves
//!   `61xx` under the channel, the outer one chains before wrapping. A `6Cxx`
//!   answer to a wrapped command is never re-sent as it was (its C-MAC is
//!   spent: the card would answer `6988`): the channel wraps the command
//!   again, with the next MAC and the card's exact Le.
//! - [`SecureChannel::open_with_wrong_host_cryptogram`]: for conformance testing
//!   of cards only (never for personalization): EXTERNAL AUTHENTICATE with a
//!   corrupted host cryptogram under a valid C-MAC, returning the card's status word.
//! - [`card::CardSecureChannel`]: the card side, for simulators: answers INITIALIZE
//!   UPDATE and EXTERNAL AUTHENTICATE, unwraps commands and wraps responses, counts
//!   failed authentications and blocks the keys.
//! - PUT KEY support: [`SecureChannel::encrypt_key_data`] /
//!   [`card::CardSecureChannel::decrypt_key_data`] (SCP02: 3DES-ECB with the
//!   session DEK; SCP03: AES-CBC with the static DEK) and
//!   [`crypto::key_check_value`].
//! - [`crypto`]: the primitives (AES-CMAC, SP 800-108 KDF, retail MAC, …), public
//!   so that each can be checked against published vectors.
//!
//! What each protocol does (GP Card Specification v2.3.1 Annex E; Amendment D v1.1.2):
//!
//! | | SCP02 (i = `15`, `55`, `05`, `45`) | SCP03 |
//! |---|---|---|
//! | keys | 2-key 3DES | AES-128/192/256 |
//! | session keys | 3DES-CBC(key, `0182`/`0101`/`0102`/`0181` ‖ seq ‖ 00×12) | SP 800-108 KDF, constants `04`/`06`/`07` |
//! | cryptograms | 3DES CBC-MAC over the challenges | KDF constants `00` (card) / `01` (host), L = 64 |
//! | C-MAC | retail MAC on the plain APDU, ICV = last C-MAC (DES-encrypted when i has `10`) | AES-CMAC on chaining value ‖ APDU, first 8 bytes |
//! | C-DEC | 3DES-CBC, zero ICV, after the MAC | AES-CBC, ICV = AES(S-ENC, counter), before the MAC |
//! | R-MAC, R-ENC | not supported (refused at open) | yes |
//!
//! Security levels ([`SecurityLevel`]): `00` none, `01` C-MAC, `03` C-DEC + C-MAC,
//! `11` C-MAC + R-MAC, `13` C-DEC + C-MAC + R-MAC, `33` everything.
//!
//! ```
//! use kart_apdu::gp::card::{CardConfig, CardSecureChannel};
//! use kart_apdu::gp::{KeySet, ScpParams, SecureChannel, SecurityLevel};
//! use kart_apdu::{Card, Command, Response, StatusWord, Transport, TransportError};
//!
//! // A tiny card: the GP card side plus an applet that echoes data.
//! struct Sim(CardSecureChannel);
//! impl Transport for Sim {
//!     fn transmit(&mut self, apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
//!         let cmd = Command::decode(apdu).map_err(|e| TransportError::Other(e.to_string()))?;
//!         let resp = match cmd.ins() {
//!             0x50 => match self.0.initialize_update(&cmd, |c| c.fill(0x11)) {
//!                 Ok(data) => Response::new(data, StatusWord::SUCCESS),
//!                 Err(sw) => Response::new(vec![], sw),
//!             },
//!             0x82 => Response::new(vec![], self.0.external_authenticate(&cmd).err().unwrap_or(StatusWord::SUCCESS)),
//!             _ => match self.0.unwrap_command(apdu) {
//!                 Ok(plain) => self.0.wrap_response(Response::new(plain.data().to_vec(), StatusWord::SUCCESS)),
//!                 Err(sw) => Response::new(vec![], sw),
//!             },
//!         };
//!         *rx = resp.to_vec();
//!         Ok(())
//!     }
//! }
//!
//! let keys = KeySet::from_master(&[0x40; 16], 0x30)?;
//! let card_side = CardSecureChannel::new(keys.clone(), CardConfig::scp03([1; 10]))?;
//! let channel = SecureChannel::open(Sim(card_side), &keys, &ScpParams::default(), SecurityLevel::FULL)?;
//! let mut card = Card::new(channel);
//! let echoed = card.send_ok(&Command::new(0x80, 0xCA, 0x00, 0x00).with_data(b"hello")?.with_le(256)?)?;
//! assert_eq!(echoed, b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// Proper names (GlobalPlatform, RustCrypto) are not code.
#![allow(clippy::doc_markdown)]

pub mod card;
pub mod crypto;
mod diversify;
mod host;
mod key_source;
mod keys;
mod scp02;
mod scp03;
mod session;

pub use diversify::{diversify, Diversification};
pub use host::{ChannelInfo, OpenFailed, ScpParams, SecureChannel};
pub use key_source::{CardKeySource, KeySourceError, KeySourceFault, SoftwareKeys};
pub use keys::KeySet;

use crate::{CommandError, StatusWord, TransportError};
use thiserror::Error;

/// CLA bit that marks a command as carrying GlobalPlatform secure messaging.
pub const CLA_SECURE_MESSAGING: u8 = 0x04;
/// Length of a C-MAC or R-MAC on the wire.
pub const MAC_LEN: usize = 8;

/// Which secure channel protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScpVersion {
    /// SCP02: 3DES, GP Card Specification v2.3.1 Annex E.
    Scp02,
    /// SCP03: AES, GP Card Specification Amendment D.
    Scp03,
}

impl std::fmt::Display for ScpVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ScpVersion::Scp02 => "SCP02",
            ScpVersion::Scp03 => "SCP03",
        })
    }
}

/// The security level of a session: P1 of EXTERNAL AUTHENTICATE.
///
/// ```
/// use kart_apdu::gp::SecurityLevel;
/// let l = SecurityLevel::from_byte(0x13).unwrap();
/// assert!(l.c_mac() && l.c_dec() && l.r_mac() && !l.r_enc());
/// assert!(SecurityLevel::from_byte(0x02).is_none()); // C-DEC without C-MAC
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecurityLevel(u8);

impl SecurityLevel {
    /// `00`: authenticated, no secure messaging.
    pub const NONE: SecurityLevel = SecurityLevel(0x00);
    /// `01`: C-MAC.
    pub const C_MAC: SecurityLevel = SecurityLevel(0x01);
    /// `03`: C-DEC and C-MAC.
    pub const C_DEC_C_MAC: SecurityLevel = SecurityLevel(0x03);
    /// `11`: C-MAC and R-MAC.
    pub const C_MAC_R_MAC: SecurityLevel = SecurityLevel(0x11);
    /// `13`: C-DEC, C-MAC and R-MAC.
    pub const C_DEC_C_MAC_R_MAC: SecurityLevel = SecurityLevel(0x13);
    /// `33`: C-DEC, C-MAC, R-ENC and R-MAC.
    pub const FULL: SecurityLevel = SecurityLevel(0x33);

    /// The level for a P1 byte, if it is one of the six valid combinations.
    pub fn from_byte(b: u8) -> Option<Self> {
        matches!(b, 0x00 | 0x01 | 0x03 | 0x11 | 0x13 | 0x33).then_some(SecurityLevel(b))
    }
    /// The P1 byte.
    pub fn bits(self) -> u8 {
        self.0
    }
    /// Commands carry a C-MAC.
    pub fn c_mac(self) -> bool {
        self.0 & 0x01 != 0
    }
    /// Command data is encrypted.
    pub fn c_dec(self) -> bool {
        self.0 & 0x02 != 0
    }
    /// Responses carry an R-MAC.
    pub fn r_mac(self) -> bool {
        self.0 & 0x10 != 0
    }
    /// Response data is encrypted.
    pub fn r_enc(self) -> bool {
        self.0 & 0x20 != 0
    }
}

/// Why a secure channel could not be opened or used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum GpError {
    /// The card answered a GP command with an error status word.
    #[error("card refused {command} with {sw}")]
    CardRefused {
        /// The command the card refused.
        command: &'static str,
        /// Its status word.
        sw: StatusWord,
    },
    /// The INITIALIZE UPDATE response has the wrong length or protocol byte.
    #[error("INITIALIZE UPDATE response is malformed: {0}")]
    MalformedInitializeUpdate(String),
    /// The card's cryptogram does not match: the keys, key version or
    /// diversification are not this card's.
    #[error("card cryptogram does not match: wrong keys, key version or diversification for this card (no EXTERNAL AUTHENTICATE was sent, the card's retry counter is untouched)")]
    CardCryptogramMismatch,
    /// The card uses another protocol than the one requested.
    #[error("card answered with {found} but {expected} was requested")]
    ProtocolMismatch {
        /// What was requested.
        expected: ScpVersion,
        /// What the card uses.
        found: ScpVersion,
    },
    /// A response MAC does not verify; the channel is closed.
    #[error(
        "response MAC (R-MAC) does not verify: the response was altered or the channel lost sync"
    )]
    ResponseMacMismatch,
    /// A protected response could not be taken apart; the channel is closed.
    #[error("secured response is malformed: {0}")]
    MalformedResponse(&'static str),
    /// The requested option is not implemented for this protocol.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Keys of the wrong length or kind for the protocol.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A cryptographic operation failed on malformed input.
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
    /// The channel was closed by an earlier failure.
    #[error("secure channel is closed after an earlier failure")]
    Closed,
    /// The system random generator failed.
    #[error("the system random generator failed")]
    Random,
    /// The reader or card failed below the APDU level.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A command could not be built.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The [`CardKeySource`] could not give the card's keys.
    #[error("card keys: {0}")]
    KeySource(#[from] KeySourceError),
}

impl GpError {
    /// What the operator should do about it, when there is something to do.
    #[must_use]
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            GpError::CardCryptogramMismatch => Some("check the key set"),
            GpError::ResponseMacMismatch | GpError::MalformedResponse(_) => {
                Some("open a new secure channel")
            }
            GpError::Closed => Some("open a new one"),
            _ => None,
        }
    }
}
