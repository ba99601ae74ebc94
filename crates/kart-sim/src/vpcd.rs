//! The simulator's `vpcd` face: connects to the vsmartcard `vpcd` driver of a
//! real `pcscd` as the card, so PC/SC clients see a simulated card in a
//! virtual reader.

/// A card that can sit behind a vpcd virtual reader.
pub trait VirtualCard: Send {
    /// The Answer To Reset sent when the reader asks for it.
    fn atr(&self) -> Vec<u8>;
    /// Power applied: the card starts a fresh session.
    fn power_on(&mut self);
    /// Power removed: volatile state (selected applet, PIN status, secure channel) is lost.
    fn power_off(&mut self);
    /// Warm reset: like power off then on.
    fn reset(&mut self);
    /// Answers one command APDU. `None` means the card has left the reader
    /// (a simulated pull): the vpcd connection is closed.
    fn process(&mut self, apdu: &[u8]) -> Option<Vec<u8>>;
}
