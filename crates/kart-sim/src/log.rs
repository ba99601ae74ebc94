//! The card's own record of the APDUs it answered.

use std::collections::BTreeMap;

/// One answered APDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogEntry {
    /// CLA as received.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Bytes of the command APDU.
    pub command_bytes: usize,
    /// Bytes of the response APDU, status word included.
    pub response_bytes: usize,
    /// Status word answered.
    pub sw: u16,
}

/// Every APDU the card answered, with counts per instruction.
///
/// ```
/// use kart_sim::ApduLog;
/// let log = ApduLog::default();
/// assert_eq!(log.apdus(), 0);
/// assert_eq!(log.count(0xB0), 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApduLog {
    entries: Vec<LogEntry>,
}

impl ApduLog {
    pub(crate) fn push(&mut self, e: LogEntry) {
        self.entries.push(e);
    }
    /// All entries in order.
    pub fn entries(&self) -> &[LogEntry] {
        &self.entries
    }
    /// Number of APDUs answered.
    pub fn apdus(&self) -> usize {
        self.entries.len()
    }
    /// Number of APDUs with instruction `ins`.
    pub fn count(&self, ins: u8) -> usize {
        self.entries.iter().filter(|e| e.ins == ins).count()
    }
    /// APDU counts per instruction.
    pub fn counts_by_ins(&self) -> BTreeMap<u8, usize> {
        let mut m = BTreeMap::new();
        for e in &self.entries {
            *m.entry(e.ins).or_insert(0) += 1;
        }
        m
    }
    /// Total command bytes received.
    pub fn command_bytes(&self) -> usize {
        self.entries.iter().map(|e| e.command_bytes).sum()
    }
    /// Total response bytes sent.
    pub fn response_bytes(&self) -> usize {
        self.entries.iter().map(|e| e.response_bytes).sum()
    }
    /// Forgets everything.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}
