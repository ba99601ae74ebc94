//! Every PC/SC failure as a typed error; [`PcscError::hint`] tells the
//! operator what to do.

use kart_apdu::TransportError;
use std::time::Duration;
use thiserror::Error;

/// A PC/SC failure, with the reader it concerns; what to do about it is
/// [`PcscError::hint`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PcscError {
    /// `pcscd` is not running.
    #[error("the PC/SC service (pcscd) is not running")]
    NoService,
    /// The connection to `pcscd` broke (it stopped or restarted).
    #[error("the PC/SC service stopped or restarted")]
    ServiceLost,
    /// No reader is connected.
    #[error("no smart-card reader is connected")]
    NoReaders,
    /// The reader name is not known to `pcscd`.
    #[error("reader '{0}' is not known to PC/SC")]
    UnknownReader(String),
    /// The reader went away.
    #[error("reader '{0}' was removed")]
    ReaderRemoved(String),
    /// There is no card in the reader.
    #[error("no card in reader '{0}'")]
    NoCard(String),
    /// The card left the reader while in use.
    #[error("the card was removed from reader '{0}'")]
    CardRemoved(String),
    /// Another program reset the card; its session state is lost.
    #[error("the card in reader '{0}' was reset by another program")]
    CardReset(String),
    /// Another program holds the reader or card.
    #[error("reader '{0}' is in use by another program")]
    SharingViolation(String),
    /// The card (or the reader) did not answer in time.
    #[error("the card in reader '{reader}' did not answer within {timeout:?}")]
    Timeout {
        /// The reader.
        reader: String,
        /// The bound that expired.
        timeout: Duration,
    },
    /// The card's answer had no status word.
    #[error("the card in reader '{0}' answered without a status word")]
    EmptyAnswer(String),
    /// The card does not answer the reader at all.
    #[error("the card in reader '{0}' does not respond")]
    UnresponsiveCard(String),
    /// The card speaks none of the requested protocols.
    #[error("the card in reader '{reader}' does not support {wanted}")]
    ProtocolMismatch {
        /// The reader.
        reader: String,
        /// The protocols asked for.
        wanted: String,
    },
    /// A wait was cancelled through its [`Canceller`](crate::Canceller).
    #[error("the wait for reader events was cancelled")]
    Cancelled,
    /// The connection was abandoned after a timeout and cannot be used.
    #[error("the connection to reader '{0}' was abandoned after a timeout")]
    Abandoned(String),
    /// Any other PC/SC failure.
    #[error("PC/SC error on reader '{reader}' while trying to {during}: {source}")]
    Other {
        /// The reader (empty when none is concerned).
        reader: String,
        /// What the driver was doing.
        during: &'static str,
        /// The PC/SC error.
        source: pcsc::Error,
    },
}

/// What `from_pcsc` is told when establishing a context.
pub(crate) const ESTABLISH: &str = "connect to pcscd";

impl PcscError {
    /// Maps a PC/SC error on `reader` during `during` (e.g. "connect").
    pub(crate) fn from_pcsc(e: pcsc::Error, reader: &str, during: &'static str) -> Self {
        use pcsc::Error as E;
        let r = reader.to_owned();
        match e {
            // On a context or handle that worked before, "no service" means
            // the service went away under it.
            E::NoService if during == ESTABLISH => Self::NoService,
            E::NoService => Self::ServiceLost,
            E::ServiceStopped | E::InvalidHandle | E::Shutdown | E::CommDataLost => {
                Self::ServiceLost
            }
            E::NoReadersAvailable => Self::NoReaders,
            E::UnknownReader => Self::UnknownReader(r),
            E::ReaderUnavailable => Self::ReaderRemoved(r),
            E::NoSmartcard => Self::NoCard(r),
            E::RemovedCard => Self::CardRemoved(r),
            E::ResetCard => Self::CardReset(r),
            E::SharingViolation => Self::SharingViolation(r),
            E::UnresponsiveCard | E::UnpoweredCard => Self::UnresponsiveCard(r),
            E::Cancelled => Self::Cancelled,
            source => Self::Other {
                reader: r,
                during,
                source,
            },
        }
    }

    /// What the operator should do about it, when there is something to do.
    #[must_use]
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self {
            Self::NoService => "start it (e.g. `systemctl start pcscd`) and try again",
            Self::ServiceLost => "connect again (if it keeps happening, check pcscd's log)",
            Self::NoReaders => "plug one in",
            Self::UnknownReader(_) => "list the readers and check the name",
            Self::ReaderRemoved(_) => "plug it back in",
            Self::NoCard(_) => "insert a card",
            Self::CardRemoved(_) => "put it back and start this card again",
            Self::CardReset(_) => "its session is lost: reconnect and start this card's step again",
            Self::SharingViolation(_) => "close that program (or wait for it) and try again",
            Self::Timeout { .. } => "take it out, check it, and try again",
            Self::EmptyAnswer(_) => "re-insert it and start this card again",
            Self::UnresponsiveCard(_) => "re-insert it, or try another card",
            Self::ProtocolMismatch { .. } => "connect with another protocol",
            Self::Abandoned(_) => "connect again",
            Self::Cancelled | Self::Other { .. } => return None,
        })
    }

    /// Whether the PC/SC context must be established again (pcscd restarted).
    pub fn is_service_lost(&self) -> bool {
        matches!(self, Self::NoService | Self::ServiceLost)
    }
}

impl From<PcscError> for TransportError {
    fn from(e: PcscError) -> Self {
        match e {
            PcscError::CardRemoved(_) | PcscError::NoCard(_) => TransportError::CardRemoved,
            PcscError::CardReset(_) => TransportError::CardReset,
            PcscError::Timeout { timeout, .. } => TransportError::Timeout(timeout),
            PcscError::SharingViolation(_) => TransportError::SharingViolation,
            e @ (PcscError::NoService
            | PcscError::ServiceLost
            | PcscError::NoReaders
            | PcscError::UnknownReader(_)
            | PcscError::ReaderRemoved(_)) => TransportError::ReaderUnavailable(e.to_string()),
            e @ PcscError::EmptyAnswer(_) => TransportError::Malformed(e.to_string()),
            e => TransportError::Other(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_reader_names_the_reader_and_the_remedy() {
        let e = PcscError::from_pcsc(
            pcsc::Error::ReaderUnavailable,
            "ACS ACR39U 00 00",
            "transmit",
        );
        assert_eq!(e, PcscError::ReaderRemoved("ACS ACR39U 00 00".into()));
        assert_eq!(e.to_string(), "reader 'ACS ACR39U 00 00' was removed");
        assert_eq!(e.hint(), Some("plug it back in"));
    }

    #[test]
    fn pcsc_failures_map_to_the_transport_errors_the_session_understands() {
        let cases = [
            (pcsc::Error::RemovedCard, TransportError::CardRemoved),
            (pcsc::Error::ResetCard, TransportError::CardReset),
            (
                pcsc::Error::SharingViolation,
                TransportError::SharingViolation,
            ),
        ];
        for (pcsc, transport) in cases {
            assert_eq!(
                TransportError::from(PcscError::from_pcsc(pcsc, "r", "transmit")),
                transport
            );
        }
        let lost = TransportError::from(PcscError::from_pcsc(
            pcsc::Error::ServiceStopped,
            "r",
            "transmit",
        ));
        assert!(matches!(lost, TransportError::ReaderUnavailable(m) if m.contains("restarted")));
        let t = PcscError::Timeout {
            reader: "r".into(),
            timeout: Duration::from_millis(250),
        };
        assert_eq!(
            TransportError::from(t),
            TransportError::Timeout(Duration::from_millis(250))
        );
    }

    #[test]
    fn unexpected_codes_keep_the_pcsc_error_and_the_operation() {
        let e = PcscError::from_pcsc(pcsc::Error::InsufficientBuffer, "r", "transmit");
        let text = e.to_string();
        assert!(text.contains("'r'") && text.contains("transmit"), "{text}");
        assert!(!e.is_service_lost());
        assert!(
            PcscError::from_pcsc(pcsc::Error::InvalidHandle, "r", "transmit").is_service_lost()
        );
    }
}
