//! Command APDUs (ISO/IEC 7816-4:2020 §5.1 and §5.2).
//!
//! A [`Command`] is always valid: the constructors refuse a body longer than
//! 65 535 bytes or an Le outside 1..=65 536, and the short or extended form is
//! chosen when encoding from what the fields need.

use thiserror::Error;
use zeroize::Zeroize;

/// Largest command data field of a short APDU (Nc, one-byte Lc).
pub const MAX_SHORT_DATA: usize = 255;
/// Largest command data field of an extended APDU (Nc, two-byte Lc).
pub const MAX_EXTENDED_DATA: usize = 65_535;
/// Largest Ne of a short APDU (Le byte `00` means 256).
pub const MAX_SHORT_LE: u32 = 256;
/// Largest Ne of an extended APDU (Le bytes `00 00` mean 65 536).
pub const MAX_EXTENDED_LE: u32 = 65_536;
/// CLA bit that marks a command as "not the last of a chain" (ISO 7816-4 §5.4.1).
pub const CLA_CHAINING: u8 = 0x10;

/// Why a command could not be built, encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CommandError {
    /// Fewer than the four header bytes CLA INS P1 P2.
    #[error("APDU of {0} bytes is shorter than its 4-byte header")]
    TooShort(usize),
    /// Lc announces a data length that the bytes after it do not match: the
    /// data field is truncated, or more bytes follow than one Le field explains.
    #[error("Lc announces {declared} data bytes but {actual} bytes follow it (truncated, or extra bytes after Le)")]
    LcMismatch {
        /// Nc as announced by Lc.
        declared: usize,
        /// Bytes available after the Lc field.
        actual: usize,
    },
    /// An extended Lc of `00 00` (Nc must be at least 1).
    #[error("extended Lc of 00 00 is not allowed (ISO 7816-4 §5.1: Nc is 1..=65535)")]
    ZeroExtendedLc,
    /// A body of two bytes starting with `00`: neither a short nor an extended form.
    #[error("body of 2 bytes starting with 00 is a truncated extended length field")]
    TruncatedExtendedLength,
    /// Short Lc with an extended (2-byte) Le, or an extended Lc with a short
    /// (1-byte) Le: ISO 7816-4 §5.1 requires both fields in the same form.
    #[error("short and extended length fields mixed in one APDU (Lc and Le must both be short or both extended)")]
    MixedLengthForms,
    /// Data field larger than an extended APDU can carry.
    #[error("command data of {0} bytes exceeds the 65535 bytes of an extended APDU; split it or use chaining")]
    DataTooLong(usize),
    /// Ne outside 1..=65536.
    #[error("Ne of {0} is outside 1..=65536 (use no Le for no response data)")]
    LeOutOfRange(u32),
    /// The caller's buffer cannot hold the encoded APDU.
    #[error("buffer of {available} bytes cannot hold an APDU of {needed} bytes")]
    BufferTooSmall {
        /// Bytes the encoding needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
}

/// The four ISO 7816-4 command cases (§5.1, Table 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// No data, no response data expected.
    Case1,
    /// No data, response data expected.
    Case2,
    /// Data, no response data expected.
    Case3,
    /// Data, response data expected.
    Case4,
}

/// A command APDU: header, optional data field, optional Ne.
///
/// The data field is wiped from memory when the command is dropped, and a
/// command marked [`sensitive`](Command::sensitive) is redacted by traces.
///
/// ```
/// use kart_apdu::Command;
/// // SELECT by DF name, first occurrence, return FCI (ISO 7816-4 §11.2.2).
/// let select = Command::new(0x00, 0xA4, 0x04, 0x00)
///     .with_data(&[0xA0, 0x00, 0x00, 0x01, 0x51])?
///     .with_le(256)?;
/// let mut buf = [0u8; 16];
/// let n = select.encode(&mut buf)?;
/// assert_eq!(&buf[..n], &[0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00]);
/// assert_eq!(Command::decode(&buf[..n])?, select);
/// # Ok::<(), kart_apdu::CommandError>(())
/// ```
#[derive(Clone)]
pub struct Command {
    cla: u8,
    ins: u8,
    p1: u8,
    p2: u8,
    data: Vec<u8>,
    le: Option<u32>,
    force_extended: bool,
    sensitive: bool,
}

/// Two commands are equal when they encode to the same bytes.
impl PartialEq for Command {
    fn eq(&self, other: &Self) -> bool {
        (self.cla, self.ins, self.p1, self.p2, self.le)
            == (other.cla, other.ins, other.p1, other.p2, other.le)
            && self.data == other.data
            && self.is_extended() == other.is_extended()
    }
}
impl Eq for Command {}

impl Drop for Command {
    fn drop(&mut self) {
        self.data.zeroize();
    }
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = f.debug_struct("Command");
        s.field("cla", &format_args!("{:02X}", self.cla))
            .field("ins", &format_args!("{:02X}", self.ins))
            .field("p1", &format_args!("{:02X}", self.p1))
            .field("p2", &format_args!("{:02X}", self.p2));
        if self.sensitive {
            s.field(
                "data",
                &format_args!("<{} bytes redacted>", self.data.len()),
            );
        } else {
            s.field("data", &format_args!("{}", hex::encode_upper(&self.data)));
        }
        s.field("le", &self.le)
            .field("force_extended", &self.force_extended)
            .field("sensitive", &self.sensitive)
            .finish()
    }
}

impl Command {
    /// A case 1 command: header only.
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Self {
            cla,
            ins,
            p1,
            p2,
            data: Vec::new(),
            le: None,
            force_extended: false,
            sensitive: false,
        }
    }

    /// Sets the data field (Nc bytes). Empty data means "no data field".
    pub fn with_data(mut self, data: &[u8]) -> Result<Self, CommandError> {
        if data.len() > MAX_EXTENDED_DATA {
            return Err(CommandError::DataTooLong(data.len()));
        }
        self.data.zeroize();
        self.data = data.to_vec();
        Ok(self)
    }

    /// Sets Ne, the maximum number of response bytes expected (1..=65536).
    pub fn with_le(mut self, ne: u32) -> Result<Self, CommandError> {
        if !(1..=MAX_EXTENDED_LE).contains(&ne) {
            return Err(CommandError::LeOutOfRange(ne));
        }
        self.le = Some(ne);
        Ok(self)
    }

    /// Removes the Le field.
    #[must_use]
    pub fn without_le(mut self) -> Self {
        self.le = None;
        self
    }

    /// Encodes with extended length fields even where short ones would do.
    #[must_use]
    pub fn extended(mut self) -> Self {
        self.force_extended = true;
        self
    }

    /// Marks the data as secret (PIN, key): traces show its length only.
    #[must_use]
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// Returns a copy with another CLA byte (used for chaining and secure messaging).
    #[must_use]
    pub fn with_cla(&self, cla: u8) -> Self {
        let mut c = self.clone();
        c.cla = cla;
        c
    }

    /// CLA byte.
    pub fn cla(&self) -> u8 {
        self.cla
    }
    /// INS byte.
    pub fn ins(&self) -> u8 {
        self.ins
    }
    /// P1 byte.
    pub fn p1(&self) -> u8 {
        self.p1
    }
    /// P2 byte.
    pub fn p2(&self) -> u8 {
        self.p2
    }
    /// The data field (empty when absent).
    pub fn data(&self) -> &[u8] {
        &self.data
    }
    /// Ne, if an Le field is present.
    pub fn le(&self) -> Option<u32> {
        self.le
    }
    /// Whether traces must redact the data field.
    pub fn is_sensitive(&self) -> bool {
        self.sensitive
    }

    /// The ISO 7816-4 case of this command.
    pub fn case(&self) -> Case {
        match (self.data.is_empty(), self.le.is_some()) {
            (true, false) => Case::Case1,
            (true, true) => Case::Case2,
            (false, false) => Case::Case3,
            (false, true) => Case::Case4,
        }
    }

    /// Whether [`extended`](Command::extended) asked for the extended form.
    pub(crate) fn forces_extended(&self) -> bool {
        self.force_extended
    }

    /// Whether the encoding uses extended length fields.
    pub fn is_extended(&self) -> bool {
        self.force_extended && self.case() != Case::Case1
            || self.data.len() > MAX_SHORT_DATA
            || self.le.is_some_and(|ne| ne > MAX_SHORT_LE)
    }

    /// Number of bytes [`encode`](Command::encode) writes.
    pub fn encoded_len(&self) -> usize {
        let ext = self.is_extended();
        let lc = match (self.data.is_empty(), ext) {
            (true, _) => 0,
            (false, false) => 1,
            (false, true) => 3,
        };
        let le = match (self.le.is_some(), ext, self.data.is_empty()) {
            (false, _, _) => 0,
            (true, false, _) => 1,
            (true, true, true) => 3,
            (true, true, false) => 2,
        };
        4 + lc + self.data.len() + le
    }

    /// Encodes into `buf` without allocating; returns the number of bytes written.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, CommandError> {
        let needed = self.encoded_len();
        if buf.len() < needed {
            return Err(CommandError::BufferTooSmall {
                needed,
                available: buf.len(),
            });
        }
        buf[..4].copy_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        let mut at = 4;
        let ext = self.is_extended();
        if !self.data.is_empty() {
            let nc = self.data.len();
            if ext {
                buf[at..at + 3].copy_from_slice(&[0, (nc >> 8) as u8, nc as u8]);
                at += 3;
            } else {
                buf[at] = nc as u8;
                at += 1;
            }
            buf[at..at + nc].copy_from_slice(&self.data);
            at += nc;
        }
        if let Some(ne) = self.le {
            // Ne of 256 (short) or 65536 (extended) is encoded as zeros.
            if ext {
                if self.data.is_empty() {
                    buf[at] = 0;
                    at += 1;
                }
                buf[at..at + 2].copy_from_slice(&[(ne >> 8) as u8, ne as u8]);
                at += 2;
            } else {
                buf[at] = ne as u8;
                at += 1;
            }
        }
        debug_assert_eq!(at, needed);
        Ok(at)
    }

    /// Encodes into a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.encoded_len()];
        // The buffer has exactly the needed size, so encoding cannot fail.
        let n = self.encode(&mut v).unwrap_or(0);
        v.truncate(n);
        v
    }

    /// Decodes a raw command APDU, following the decoding rules of
    /// ISO 7816-4 §5.1 (Table 1 and the paragraphs after it).
    pub fn decode(raw: &[u8]) -> Result<Self, CommandError> {
        let [cla, ins, p1, p2, body @ ..] = raw else {
            return Err(CommandError::TooShort(raw.len()));
        };
        let mut cmd = Command::new(*cla, *ins, *p1, *p2);
        match body {
            [] => {}
            [le] => cmd.le = Some(le_short(*le)),
            [0, _] => return Err(CommandError::TruncatedExtendedLength),
            [0, hi, lo] => {
                cmd.le = Some(le_ext(*hi, *lo));
                cmd.force_extended = true;
            }
            [0, hi, lo, rest @ ..] => {
                let nc = usize::from(u16::from_be_bytes([*hi, *lo]));
                if nc == 0 {
                    return Err(CommandError::ZeroExtendedLc);
                }
                cmd.force_extended = true;
                let (data, le) = data_and_le(rest, nc, true)?;
                cmd.data = data.to_vec();
                cmd.le = le;
            }
            [lc, rest @ ..] => {
                let (data, le) = data_and_le(rest, usize::from(*lc), false)?;
                cmd.data = data.to_vec();
                cmd.le = le;
            }
        }
        Ok(cmd)
    }
}

/// A short Le byte as Ne: `00` means 256.
fn le_short(b: u8) -> u32 {
    if b == 0 {
        256
    } else {
        u32::from(b)
    }
}

/// An extended Le as Ne: `0000` means 65 536.
fn le_ext(hi: u8, lo: u8) -> u32 {
    match u32::from(u16::from_be_bytes([hi, lo])) {
        0 => MAX_EXTENDED_LE,
        n => n,
    }
}

/// What follows an Lc of `nc`: the data, then nothing or an Le in the same
/// form as the Lc (one byte short, two extended). An Le of the other
/// form's length mixes the forms; any other length disagrees with Lc.
fn data_and_le(
    rest: &[u8],
    nc: usize,
    extended: bool,
) -> Result<(&[u8], Option<u32>), CommandError> {
    let lc_mismatch = CommandError::LcMismatch {
        declared: nc,
        actual: rest.len(),
    };
    let Some((data, le)) = rest.split_at_checked(nc) else {
        return Err(lc_mismatch);
    };
    match (le, extended) {
        ([], _) => Ok((data, None)),
        ([b], false) => Ok((data, Some(le_short(*b)))),
        ([hi, lo], true) => Ok((data, Some(le_ext(*hi, *lo)))),
        ([_], true) | ([_, _], false) => Err(CommandError::MixedLengthForms),
        _ => Err(lc_mismatch),
    }
}
