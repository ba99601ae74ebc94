//! A small ISO 7816-4 test card for the vpcd face, shared by the PC/SC stack
//! tests and the round-trip benchmark.

use kart_apdu::Command;
use kart_sim::vpcd::VirtualCard;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An ATR for T=1 whose historical bytes announce command chaining and
/// extended Lc/Le (card capabilities `73 C0 21 C0`, ISO 7816-4 §8.1.1.2.7).
pub fn atr_t1_extended() -> Vec<u8> {
    let hist = [0x80, 0x73, 0xC0, 0x21, 0xC0, b'K', b'A', b'R', b'T'];
    // TS, T0 (TD1 present, K historical bytes), TD1 = T=1, historical, TCK.
    let mut atr = vec![0x3B, 0x80 | hist.len() as u8, 0x01];
    atr.extend_from_slice(&hist);
    let tck = atr[1..].iter().fold(0, |x, b| x ^ b);
    atr.push(tck);
    atr
}

/// A T=0-only ATR (no TD1, so no TCK), like the listed Iranian T=0 cards.
pub fn atr_t0() -> Vec<u8> {
    vec![0x3B, 0x05, b'K', b'A', b'R', b'T', b'0']
}

/// What the card saw and how it behaves; shared with the test.
#[derive(Debug, Default)]
pub struct Log {
    /// Every APDU received, in order.
    pub apdus: Vec<Vec<u8>>,
    /// Power-on and reset count.
    pub powerups: usize,
}

/// A card with one transparent file, GET CHALLENGE, optional T=0 behaviour
/// (`61xx` + GET RESPONSE), command chaining, a per-APDU delay and a pull
/// after a number of APDUs.
pub struct TestCard {
    /// The answer to reset.
    pub atr: Vec<u8>,
    /// T=0 behaviour: data waits for GET RESPONSE.
    pub t0: bool,
    /// Time taken by each APDU.
    pub delay: Duration,
    /// Leave the reader (return `None`) on this APDU (1-based).
    pub pull_on: Option<usize>,
    /// The transparent file (4 KiB of zeros at first).
    pub file: Vec<u8>,
    /// What the card saw, shared with the test.
    pub log: Arc<Mutex<Log>>,
    pending: Vec<u8>,
    chain: Vec<u8>,
    counter: u8,
}

impl TestCard {
    /// A T=1 card with extended lengths and chaining.
    pub fn t1() -> Self {
        Self::with_atr(atr_t1_extended(), false)
    }

    /// A T=0-only card.
    pub fn t0() -> Self {
        Self::with_atr(atr_t0(), true)
    }

    fn with_atr(atr: Vec<u8>, t0: bool) -> Self {
        Self {
            atr,
            t0,
            delay: Duration::ZERO,
            pull_on: None,
            file: vec![0; 4096],
            log: Arc::default(),
            pending: Vec::new(),
            chain: Vec::new(),
            counter: 0,
        }
    }

    /// Takes `delay` on every APDU.
    #[must_use]
    pub fn slow(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Leaves the reader on APDU `n` (1-based).
    #[must_use]
    pub fn pulled_on(mut self, n: usize) -> Self {
        self.pull_on = Some(n);
        self
    }

    fn answer(&mut self, cmd: &Command) -> Vec<u8> {
        let sw = |s: u16| s.to_be_bytes().to_vec();
        if cmd.cla() & 0x10 != 0 {
            self.chain.extend_from_slice(cmd.data());
            return sw(0x9000);
        }
        let mut data = std::mem::take(&mut self.chain);
        data.extend_from_slice(cmd.data());
        let ne = cmd.le().unwrap_or(0) as usize;
        let out = match cmd.ins() {
            0xA4 => Vec::new(),
            0x84 => {
                self.counter = self.counter.wrapping_add(1);
                (0..ne.max(8) as u8).map(|i| i ^ self.counter).collect()
            }
            0xD6 => {
                let off = usize::from(u16::from_be_bytes([cmd.p1(), cmd.p2()]));
                let Some(dst) = self.file.get_mut(off..off + data.len()) else {
                    return sw(0x6B00);
                };
                dst.copy_from_slice(&data);
                Vec::new()
            }
            0xB0 => {
                let off = usize::from(u16::from_be_bytes([cmd.p1(), cmd.p2()]));
                let n = if ne == 0 { 256 } else { ne };
                match self.file.get(off..(off + n).min(self.file.len())) {
                    Some(d) => d.to_vec(),
                    None => return sw(0x6B00),
                }
            }
            0xC0 if self.t0 => {
                let n = self.pending.len().min(if ne == 0 { 256 } else { ne });
                let mut out: Vec<u8> = self.pending.drain(..n).collect();
                out.extend_from_slice(&if self.pending.is_empty() {
                    sw(0x9000)
                } else {
                    vec![0x61, self.pending.len().min(255) as u8]
                });
                return out;
            }
            _ => return sw(0x6D00),
        };
        if self.t0 && !out.is_empty() {
            // T=0: the data waits for GET RESPONSE.
            let n = out.len();
            self.pending = out;
            return vec![0x61, if n >= 256 { 0 } else { n as u8 }];
        }
        let mut r = out;
        r.extend_from_slice(&sw(0x9000));
        r
    }
}

impl VirtualCard for TestCard {
    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }
    fn power_on(&mut self) {
        self.log.lock().unwrap().powerups += 1;
    }
    fn power_off(&mut self) {
        self.pending.clear();
        self.chain.clear();
    }
    fn reset(&mut self) {
        self.power_off();
        self.power_on();
    }
    fn process(&mut self, apdu: &[u8]) -> Option<Vec<u8>> {
        let n = {
            let mut log = self.log.lock().unwrap();
            log.apdus.push(apdu.to_vec());
            log.apdus.len()
        };
        if self.pull_on == Some(n) {
            return None;
        }
        std::thread::sleep(self.delay);
        Some(match Command::decode(apdu) {
            Ok(cmd) => self.answer(&cmd),
            Err(_) => vec![0x67, 0x00],
        })
    }
}
