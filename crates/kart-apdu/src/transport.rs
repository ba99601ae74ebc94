//! The one trait every reader, simulator and secure channel implements.

use std::time::Duration;
use thiserror::Error;

/// What the card (and the reader in front of it) can take in one APDU.
///
/// The [`Card`](crate::Card) session uses this to choose between one short
/// APDU, one extended APDU, or command chaining.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardCaps {
    /// The card and reader accept extended length APDUs.
    pub extended_length: bool,
    /// The card accepts command chaining (CLA bit `10`).
    pub chaining: bool,
    /// Largest data field (Nc) of one command.
    pub max_command_data: usize,
    /// Largest data field (Ne) of one response.
    pub max_response_data: usize,
}

impl CardCaps {
    /// Short APDUs only, no chaining: what every ISO 7816 card accepts.
    pub const SHORT_ONLY: CardCaps = CardCaps {
        extended_length: false,
        chaining: false,
        max_command_data: 255,
        max_response_data: 256,
    };

    /// Returns the capabilities with `overhead` bytes reserved in each command
    /// (a secure channel's MAC and padding).
    #[must_use]
    pub fn reserve(self, overhead: usize) -> CardCaps {
        CardCaps {
            max_command_data: self.max_command_data.saturating_sub(overhead),
            ..self
        }
    }
}

impl Default for CardCaps {
    fn default() -> Self {
        Self::SHORT_ONLY
    }
}

/// A failure below the APDU level: the card or reader did not deliver a response.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The card left the reader.
    #[error("card removed from the reader")]
    CardRemoved,
    /// Another process reset the card; session state on the card is lost.
    #[error("card was reset by another process")]
    CardReset,
    /// The card did not answer within the allowed time.
    #[error("card did not answer within {0:?}")]
    Timeout(Duration),
    /// The reader went away or the PC/SC service stopped.
    #[error("reader unavailable: {0}")]
    ReaderUnavailable(String),
    /// Another process holds the reader exclusively.
    #[error("reader is in use by another process")]
    SharingViolation,
    /// The bytes that came back are not a response APDU.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// Any other failure, with its description.
    #[error("{0}")]
    Other(String),
}

/// Sends one raw command APDU and receives one raw response APDU (data + SW).
///
/// Implementations deliver exactly what the card answered: no GET RESPONSE,
/// no chaining. Those are the [`Card`](crate::Card) session's job.
///
/// ```
/// use kart_apdu::{Transport, TransportError};
/// /// A card that answers every command with `6D00`.
/// struct Mute;
/// impl Transport for Mute {
///     fn transmit(&mut self, _apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
///         rx.clear();
///         rx.extend_from_slice(&[0x6D, 0x00]);
///         Ok(())
///     }
/// }
/// let mut rx = Vec::new();
/// Mute.transmit(&[0x00, 0x84, 0x00, 0x00, 0x08], &mut rx)?;
/// assert_eq!(rx, [0x6D, 0x00]);
/// # Ok::<(), TransportError>(())
/// ```
pub trait Transport {
    /// Sends `apdu` and replaces the contents of `rx` with the response.
    fn transmit(&mut self, apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError>;

    /// What the card behind this transport accepts.
    fn capabilities(&self) -> CardCaps {
        CardCaps::SHORT_ONLY
    }
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn transmit(&mut self, apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
        (**self).transmit(apdu, rx)
    }
    fn capabilities(&self) -> CardCaps {
        (**self).capabilities()
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn transmit(&mut self, apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
        (**self).transmit(apdu, rx)
    }
    fn capabilities(&self) -> CardCaps {
        (**self).capabilities()
    }
}

/// Serves one raw APDU through a command-level `send` (a [`Card`](crate::Card)
/// or a secure channel): decodes it, sends it and writes the response's data
/// and status word into `rx`. Errors below the APDU level pass through
/// `map_err`, so each layer says what failed in its own words.
pub(crate) fn transmit_command<E>(
    apdu: &[u8],
    rx: &mut Vec<u8>,
    send: impl FnOnce(&crate::Command) -> Result<crate::Response, E>,
    map_err: impl FnOnce(E) -> TransportError,
) -> Result<(), TransportError> {
    let cmd = crate::Command::decode(apdu)
        .map_err(|e| TransportError::Other(format!("invalid command APDU: {e}")))?;
    let resp = send(&cmd).map_err(map_err)?;
    rx.clear();
    rx.extend_from_slice(resp.data());
    rx.extend_from_slice(&resp.sw().to_bytes());
    Ok(())
}
