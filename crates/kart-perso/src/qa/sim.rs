//! The reference simulator as a [`QaTarget`] (feature `sim`).

use kart_apdu::{CardCaps, Transport, TransportError};
use kart_sim::vpcd::VirtualCard;
use kart_sim::SimCard;
use kart_spec::Protocol;

use super::QaTarget;

/// A simulated card in a reader that reports the ATR and the protocol,
/// resets the card and can tear its next write: every hook of
/// [`QaTarget`], so the whole suite runs.
///
/// ```
/// use kart_perso::qa::{QaTarget, Simulated};
/// let spec = kart_spec::Spec::embedded().unwrap();
/// let profile = spec.profile("vendor-a").unwrap();
/// let mut card = Simulated(kart_sim::SimCard::new(profile).unwrap());
/// assert_eq!(card.protocol(), Some(profile.protocol));
/// assert!(card.atr().is_some_and(|atr| profile.matches_atr(&atr)));
/// assert!(card.reset().unwrap() && card.tear_next_update());
/// ```
pub struct Simulated(pub SimCard);

impl Transport for Simulated {
    fn transmit(&mut self, apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
        self.0.transmit(apdu, rx)
    }
    fn capabilities(&self) -> CardCaps {
        self.0.capabilities()
    }
}

impl QaTarget for Simulated {
    fn atr(&self) -> Option<Vec<u8>> {
        Some(VirtualCard::atr(&self.0))
    }
    fn protocol(&self) -> Option<Protocol> {
        Some(self.0.profile().protocol)
    }
    fn reset(&mut self) -> Result<bool, TransportError> {
        VirtualCard::reset(&mut self.0);
        Ok(true)
    }
    fn tear_next_update(&mut self) -> bool {
        self.0.tear_next_update();
        true
    }
    fn reinsert(&mut self) -> Result<(), TransportError> {
        self.0.reinsert();
        Ok(())
    }
}
