//! Test transports that wrap a card and misbehave the way readers do.

use std::time::Duration;

use kart_apdu::{CardCaps, Transport, TransportError};

/// A reader that times out on the answer to APDU `at` (1-based) after the
/// card carried the command out: the answer is lost on the way back.
///
/// ```
/// use kart_apdu::Transport;
/// use kart_testkit::transport::LosingReader;
/// let profile = kart_testkit::raw::profile("vendor-a");
/// let mut card = kart_sim::SimCard::new(&profile).unwrap();
/// let mut reader = LosingReader::new(&mut card, 1);
/// let mut rx = Vec::new();
/// assert!(reader.transmit(&[0x00, 0x84, 0x00, 0x00, 0x08], &mut rx).is_err());
/// assert_eq!(reader.sent, 1);
/// ```
#[derive(Debug)]
pub struct LosingReader<T> {
    /// The card (or reader) the commands go to.
    pub card: T,
    /// The APDU whose answer is lost.
    pub at: u64,
    /// APDUs sent so far.
    pub sent: u64,
}

impl<T> LosingReader<T> {
    /// Loses the answer to APDU `at` of `card`.
    pub fn new(card: T, at: u64) -> Self {
        Self { card, at, sent: 0 }
    }
}

impl<T: Transport> Transport for LosingReader<T> {
    fn transmit(&mut self, apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
        self.sent += 1;
        let answer = self.card.transmit(apdu, rx);
        if self.sent == self.at {
            return Err(TransportError::Timeout(Duration::from_secs(5)));
        }
        answer
    }
    fn capabilities(&self) -> CardCaps {
        self.card.capabilities()
    }
}
