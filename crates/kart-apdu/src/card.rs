//! The card session: the one place that turns a logical [`Command`] into the
//! APDUs a particular card accepts, and their responses into one [`Response`].
//!
//! - GET RESPONSE on `61xx` (T=0, ISO 7816-4 §5.3.4 / §7.6.1);
//! - one re-send with the exact Le on `6Cxx`;
//! - extended length or command chaining (CLA bit `10`, §5.4.1) chosen from
//!   the [`CardCaps`] the transport reports;
//! - counters of APDUs and bytes, and an optional trace that redacts secrets.

use crate::command::{Command, CommandError, CLA_CHAINING, MAX_SHORT_DATA, MAX_SHORT_LE};
use crate::response::Response;
use crate::status::{StatusError, StatusWord};
use crate::transport::{CardCaps, Transport, TransportError};
use thiserror::Error;

/// Most response data one command may gather through GET RESPONSE.
pub const MAX_RESPONSE_DATA: usize = 65_536;

/// Why a command did not produce a response.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CardError {
    /// The reader or card failed below the APDU level.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The card refused the command.
    #[error(transparent)]
    Status(#[from] StatusError),
    /// The command could not be encoded.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The card answered fewer than two bytes.
    #[error("card answered {0} bytes, which is not a response APDU")]
    MalformedResponse(usize),
    /// The command is longer than the card takes and the card cannot chain.
    #[error("command data of {len} bytes exceeds the card's {max}-byte limit and the card does not support chaining")]
    CommandTooLong {
        /// Nc of the command.
        len: usize,
        /// Largest Nc the card accepts.
        max: usize,
    },
    /// The card kept announcing more data (`61xx`) past any sane length.
    #[error("card kept answering 61xx past {0} bytes of response data")]
    ResponseTooLong(usize),
}

impl CardError {
    /// The status word, when the card refused the command.
    pub fn status_word(&self) -> Option<StatusWord> {
        match self {
            CardError::Status(e) => Some(e.sw()),
            _ => None,
        }
    }
}

/// APDU and byte counts of a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Logical commands sent with [`Card::send`].
    pub commands: u64,
    /// APDUs that crossed the transport (chained parts, GET RESPONSE, re-sends included).
    pub apdus: u64,
    /// Bytes sent to the card.
    pub bytes_sent: u64,
    /// Bytes received from the card, status words included.
    pub bytes_received: u64,
    /// GET RESPONSE commands issued on `61xx`.
    pub get_responses: u64,
    /// Commands re-sent on `6Cxx`.
    pub le_resends: u64,
    /// Chained parts sent (all but the last part of each chain).
    pub chained_parts: u64,
}

/// Which way an APDU in a trace went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Host to card.
    Command,
    /// Card to host.
    Response,
}

/// One APDU as seen by the trace hook.
#[derive(Debug, Clone, Copy)]
pub struct TraceEvent<'a> {
    /// Which way it went.
    pub direction: Direction,
    /// The raw bytes.
    pub bytes: &'a [u8],
    /// Whether the data field is secret and must not be shown.
    pub redact: bool,
}

impl std::fmt::Display for TraceEvent<'_> {
    /// Hex with the data field replaced by its length when redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.bytes;
        match (self.direction, self.redact) {
            (Direction::Command, false) | (Direction::Response, false) => {
                let arrow = if self.direction == Direction::Command { ">>" } else { "<<" };
                write!(f, "{arrow} {}", hex::encode_upper(b))
            }
            (Direction::Command, true) => {
                let head = &b[..b.len().min(4)];
                write!(f, ">> {} <{} bytes redacted>", hex::encode_upper(head), b.len().saturating_sub(4))
            }
            (Direction::Response, true) => {
                let split = b.len().saturating_sub(2);
                write!(f, "<< <{split} bytes redacted> {}", hex::encode_upper(&b[split..]))
            }
        }
    }
}

/// A trace hook: receives every APDU that crosses the transport.
pub type TraceHook = Box<dyn FnMut(&TraceEvent<'_>) + Send>;

/// A session with one card over any [`Transport`].
///
/// ```
/// use kart_apdu::{Card, CardCaps, Command, Transport, TransportError};
/// // A T=0 card that answers GET CHALLENGE with 61 08 and gives the bytes on GET RESPONSE.
/// struct T0;
/// impl Transport for T0 {
///     fn transmit(&mut self, apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
///         rx.clear();
///         match apdu[1] {
///             0x84 => rx.extend_from_slice(&[0x61, 0x08]),
///             0xC0 => rx.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 0x90, 0x00]),
///             _ => rx.extend_from_slice(&[0x6D, 0x00]),
///         }
///         Ok(())
///     }
/// }
/// let mut card = Card::new(T0);
/// let challenge = card.send_ok(&Command::new(0x00, 0x84, 0x00, 0x00).with_le(8)?)?;
/// assert_eq!(challenge, [1, 2, 3, 4, 5, 6, 7, 8]);
/// assert_eq!(card.counters().apdus, 2);
/// assert_eq!(card.counters().get_responses, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Card<T> {
    transport: T,
    caps: CardCaps,
    counters: Counters,
    trace: Option<TraceHook>,
    redact: bool,
    tx: Vec<u8>,
    rx: Vec<u8>,
}

impl<T: Transport> Card<T> {
    /// A session using the capabilities the transport reports.
    pub fn new(transport: T) -> Self {
        let caps = transport.capabilities();
        Self::with_caps(transport, caps)
    }

    /// A session with explicit capabilities (e.g. from a vendor profile).
    pub fn with_caps(transport: T, caps: CardCaps) -> Self {
        Self {
            transport,
            caps,
            counters: Counters::default(),
            trace: None,
            redact: true,
            tx: Vec::with_capacity(261),
            rx: Vec::with_capacity(258),
        }
    }

    /// The capabilities in use.
    pub fn caps(&self) -> CardCaps {
        self.caps
    }

    /// Replaces the capabilities (after reading the card's ATR or profile).
    pub fn set_caps(&mut self, caps: CardCaps) {
        self.caps = caps;
    }

    /// APDU and byte counts so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Resets the counters to zero.
    pub fn reset_counters(&mut self) {
        self.counters = Counters::default();
    }

    /// Installs a trace hook that sees every APDU.
    pub fn set_trace(&mut self, hook: Option<TraceHook>) {
        self.trace = hook;
    }

    /// Whether sensitive commands are redacted in traces (on by default).
    pub fn set_redaction(&mut self, on: bool) {
        self.redact = on;
    }

    /// The transport underneath.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// The transport underneath.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Ends the session and returns the transport.
    pub fn into_inner(self) -> T {
        self.transport
    }

    /// Sends a command and returns the card's final response, whatever its status.
    pub fn send(&mut self, cmd: &Command) -> Result<Response, CardError> {
        self.counters.commands += 1;
        let data = cmd.data();
        let short_max = self.caps.max_command_data.min(MAX_SHORT_DATA);
        let single_max = if self.caps.extended_length {
            self.caps.max_command_data
        } else {
            short_max
        };
        let ne = cmd.le().map(|ne| {
            if self.caps.extended_length {
                ne
            } else {
                ne.min(MAX_SHORT_LE)
            }
        });
        let with_ne = |c: Command| match ne {
            Some(n) => c.with_le(n),
            None => Ok(c.without_le()),
        };
        if data.len() <= single_max {
            return self.exchange(&with_ne(cmd.clone())?, cmd.is_sensitive());
        }
        if !self.caps.chaining || single_max == 0 {
            return Err(CardError::CommandTooLong {
                len: data.len(),
                max: single_max,
            });
        }
        let parts: Vec<&[u8]> = data.chunks(single_max).collect();
        let last = parts.len() - 1;
        for (i, part) in parts.iter().enumerate() {
            let mut c = Command::new(cmd.cla(), cmd.ins(), cmd.p1(), cmd.p2()).with_data(part)?;
            if cmd.is_sensitive() {
                c = c.sensitive();
            }
            if i < last {
                c = c.with_cla(cmd.cla() | CLA_CHAINING);
                self.counters.chained_parts += 1;
                let r = self.exchange(&c, cmd.is_sensitive())?;
                if !r.is_success() {
                    return Ok(r);
                }
            } else {
                return self.exchange(&with_ne(c)?, cmd.is_sensitive());
            }
        }
        unreachable!("the loop returns on its last part")
    }

    /// Sends a command and returns its data, or the status as an error.
    pub fn send_ok(&mut self, cmd: &Command) -> Result<Vec<u8>, CardError> {
        Ok(self.send(cmd)?.into_data()?)
    }

    /// One APDU exchange plus its `6Cxx` re-send and `61xx` GET RESPONSE loop.
    fn exchange(&mut self, cmd: &Command, sensitive: bool) -> Result<Response, CardError> {
        let mut resp = self.transmit_one(cmd, sensitive)?;
        if resp.sw().sw1() == 0x6C {
            self.counters.le_resends += 1;
            let ne = match resp.sw().sw2() {
                0 => MAX_SHORT_LE,
                n => u32::from(n),
            };
            resp = self.transmit_one(&cmd.clone().with_le(ne)?, sensitive)?;
        }
        let mut data = resp.data().to_vec();
        let mut sw = resp.sw();
        // Keep the logical channel bits of an interindustry CLA.
        let gr_cla = if cmd.cla() & 0x80 == 0 { cmd.cla() & 0x03 } else { 0x00 };
        while sw.sw1() == 0x61 {
            let ne = match sw.sw2() {
                0 => MAX_SHORT_LE,
                n => u32::from(n),
            };
            self.counters.get_responses += 1;
            let gr = Command::new(gr_cla, 0xC0, 0x00, 0x00).with_le(ne)?;
            let mut part = self.transmit_one(&gr, sensitive)?;
            if part.sw().sw1() == 0x6C {
                self.counters.le_resends += 1;
                let exact = gr.with_le(match part.sw().sw2() {
                    0 => MAX_SHORT_LE,
                    n => u32::from(n),
                })?;
                part = self.transmit_one(&exact, sensitive)?;
            }
            data.extend_from_slice(part.data());
            if data.len() > MAX_RESPONSE_DATA {
                return Err(CardError::ResponseTooLong(MAX_RESPONSE_DATA));
            }
            sw = part.sw();
        }
        Ok(Response::new(data, sw))
    }

    /// Exactly one APDU over the transport, counted and traced.
    fn transmit_one(&mut self, cmd: &Command, sensitive: bool) -> Result<Response, CardError> {
        self.tx.resize(cmd.encoded_len(), 0);
        let n = cmd.encode(&mut self.tx)?;
        let redact = sensitive && self.redact;
        if let Some(hook) = self.trace.as_mut() {
            hook(&TraceEvent {
                direction: Direction::Command,
                bytes: &self.tx[..n],
                redact,
            });
        }
        self.counters.apdus += 1;
        self.counters.bytes_sent += n as u64;
        let result = self.transport.transmit(&self.tx[..n], &mut self.rx);
        // Command bytes may hold a PIN or key: wipe them whatever happened.
        zeroize::Zeroize::zeroize(&mut self.tx);
        result?;
        self.counters.bytes_received += self.rx.len() as u64;
        if let Some(hook) = self.trace.as_mut() {
            hook(&TraceEvent {
                direction: Direction::Response,
                bytes: &self.rx,
                redact,
            });
        }
        Response::from_bytes(&self.rx).map_err(|_| CardError::MalformedResponse(self.rx.len()))
    }
}

/// A `Card` is itself a transport that delivers complete responses, so a
/// secure channel can sit on top of it and another `Card` on top of that.
impl<T: Transport> Transport for Card<T> {
    fn transmit(&mut self, apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
        let cmd = Command::decode(apdu)
            .map_err(|e| TransportError::Other(format!("invalid command APDU: {e}")))?;
        match self.send(&cmd) {
            Ok(resp) => {
                rx.clear();
                rx.extend_from_slice(resp.data());
                rx.extend_from_slice(&resp.sw().to_bytes());
                Ok(())
            }
            Err(CardError::Transport(e)) => Err(e),
            Err(e) => Err(TransportError::Malformed(e.to_string())),
        }
    }

    fn capabilities(&self) -> CardCaps {
        self.caps
    }
}
