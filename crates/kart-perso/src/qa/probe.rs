//! The wire under the suite: every APDU timed and attributed to the check
//! that sent it, and deliberate corruption of the next C-MAC.

use std::time::Instant;

use kart_apdu::{Response, StatusWord, Transport, TransportError};

use super::QaTarget;

/// One APDU as the suite saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Exchange {
    /// Index of the check that sent it.
    pub check: usize,
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub command_bytes: usize,
    pub response_bytes: usize,
    /// `None` when the transport failed.
    pub sw: Option<StatusWord>,
    pub micros: u64,
}

/// What to spoil in the next matching APDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tamper {
    /// Flip a bit of the last byte (the C-MAC of a command without Le).
    LastByte,
}

/// A [`Transport`] over the target that times and logs every APDU.
pub(crate) struct Probe<'a> {
    pub target: &'a mut dyn QaTarget,
    pub log: Vec<Exchange>,
    pub check: usize,
    pub tamper: Option<Tamper>,
}

impl<'a> Probe<'a> {
    pub fn new(target: &'a mut dyn QaTarget) -> Self {
        Probe {
            target,
            log: Vec::new(),
            check: 0,
            tamper: None,
        }
    }

    /// Sends `apdu` as is (no GET RESPONSE, no chaining) and splits the answer.
    pub fn raw(&mut self, apdu: &[u8]) -> Result<Response, TransportError> {
        let mut rx = Vec::new();
        self.transmit(apdu, &mut rx)?;
        Response::from_bytes(&rx).map_err(|e| TransportError::Malformed(e.to_string()))
    }

    fn spoil(&mut self, apdu: &[u8]) -> Vec<u8> {
        let mut out = apdu.to_vec();
        let hit = match self.tamper {
            Some(Tamper::LastByte) if apdu.len() > 5 => {
                if let Some(b) = out.last_mut() {
                    *b ^= 0x01;
                }
                true
            }
            _ => false,
        };
        if hit {
            self.tamper = None;
        }
        out
    }
}

impl Transport for Probe<'_> {
    fn transmit(&mut self, apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
        let sent = self.spoil(apdu);
        let start = Instant::now();
        let result = self.target.transmit(&sent, rx);
        let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        let byte = |i: usize| sent.get(i).copied().unwrap_or_default();
        let sw = match (&result, rx.len()) {
            (Ok(()), n) if n >= 2 => Some(StatusWord::new(rx[n - 2], rx[n - 1])),
            _ => None,
        };
        self.log.push(Exchange {
            check: self.check,
            cla: byte(0),
            ins: byte(1),
            p1: byte(2),
            command_bytes: sent.len(),
            response_bytes: if result.is_ok() { rx.len() } else { 0 },
            sw,
            micros,
        });
        result
    }

    fn capabilities(&self) -> kart_apdu::CardCaps {
        self.target.capabilities()
    }
}
