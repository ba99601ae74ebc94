//! The card session: the one place that turns a logical [`Command`] into the
//! APDUs a particular card accepts, and their responses into one [`Response`].
//!
//! - GET RESPONSE on `61xx` (T=0, ISO 7816-4 §5.3.4 / §7.6.1);
//! - one re-send with the exact Le on `6Cxx` (not of a command with secure
//!   messaging: the secure channel above wraps that one anew);
//! - extended length or command chaining (CLA bit `10`, §5.4.1) chosen from
//!   the [`CardCaps`] the transport reports;
//! - counters of APDUs and bytes, and an optional trace that redacts secrets.

use crate::command::{
    Command, CommandError, CLA_CHAINING, MAX_EXTENDED_DATA, MAX_EXTENDED_LE, MAX_SHORT_DATA,
    MAX_SHORT_LE,
};
use crate::response::Response;
use crate::status::{StatusError, StatusWord};
use crate::transport::{transmit_command, CardCaps, Transport, TransportError};
use thiserror::Error;
use zeroize::Zeroize;

/// Most response data one command may gather through GET RESPONSE.
pub const MAX_RESPONSE_DATA: usize = 65_536;

/// Most GET RESPONSE commands one command may need: 64 KiB in parts of 128
/// bytes. A card that keeps answering `61xx` past this is not answering sensibly.
pub const MAX_GET_RESPONSES: usize = 512;

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
    #[error("card answered {0} bytes, which is not a response APDU (at least SW1 SW2 are needed); reset the card and retry")]
    MalformedResponse(usize),
    /// The command is longer than the card takes and the card cannot chain.
    #[error("command data of {len} bytes exceeds the card's {max}-byte limit and the card does not support chaining")]
    CommandTooLong {
        /// Nc of the command.
        len: usize,
        /// Largest Nc the card accepts.
        max: usize,
    },
    /// The card kept announcing more data (`61xx`) past 64 KiB or past
    /// [`MAX_GET_RESPONSES`] rounds.
    #[error("card kept announcing more data (61xx) after {0} bytes of response data; it is not answering sensibly, reset it")]
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
///
/// For a sensitive command (see [`Command::sensitive`]) the secret part never
/// reaches the hook: `bytes` then holds only the header `CLA INS P1 P2` of a
/// command, or only `SW1 SW2` of a response, while `len` is the full length.
#[derive(Debug, Clone, Copy)]
pub struct TraceEvent<'a> {
    /// Which way it went.
    pub direction: Direction,
    /// The raw bytes, or only their public part when `redact` is set.
    pub bytes: &'a [u8],
    /// Length of the whole APDU on the wire.
    pub len: usize,
    /// Whether the data field was withheld because it is secret.
    pub redact: bool,
}

impl std::fmt::Display for TraceEvent<'_> {
    /// Hex, with the withheld part shown as its length.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = hex::encode_upper(self.bytes);
        let hidden = self.len.saturating_sub(self.bytes.len());
        match (self.direction, self.redact) {
            (Direction::Command, false) => write!(f, ">> {shown}"),
            (Direction::Response, false) => write!(f, "<< {shown}"),
            (Direction::Command, true) => write!(f, ">> {shown} <{hidden} bytes redacted>"),
            (Direction::Response, true) => write!(f, "<< <{hidden} bytes redacted> {shown}"),
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
    ///
    /// Turning it off shows PINs and keys to the trace hook: only for test
    /// cards with test secrets.
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
    ///
    /// Ne is lowered to what the card can return in one response (256 without
    /// extended length, and never above `max_response_data`); the rest comes
    /// through `61xx` and GET RESPONSE. Data longer than one APDU takes is sent
    /// by command chaining when the card supports it (ISO 7816-4 §5.4.1): every
    /// part but the last has CLA bit `10` and no Le, and a part answered with
    /// anything but `9000` ends the chain with that response.
    pub fn send(&mut self, cmd: &Command) -> Result<Response, CardError> {
        self.counters.commands += 1;
        let caps = self.caps;
        let (data_limit, le_limit) = if caps.extended_length {
            (MAX_EXTENDED_DATA, MAX_EXTENDED_LE)
        } else {
            (MAX_SHORT_DATA, MAX_SHORT_LE)
        };
        let max_part = caps.max_command_data.min(data_limit);
        let max_ne = u32::try_from(caps.max_response_data).unwrap_or(u32::MAX);
        let ne = cmd.le().map(|ne| ne.min(le_limit).min(max_ne).max(1));
        let sensitive = cmd.is_sensitive();
        let data = cmd.data();
        if data.len() <= max_part {
            // Keep an explicit request for the extended form if the card takes it.
            let forced = caps.extended_length && cmd.forces_extended();
            let single = part_of(cmd, cmd.cla(), data, ne, forced)?;
            return self.exchange(&single, sensitive);
        }
        if !caps.chaining || max_part == 0 {
            return Err(CardError::CommandTooLong {
                len: data.len(),
                max: max_part,
            });
        }
        let mut parts = data.chunks(max_part).peekable();
        while let Some(chunk) = parts.next() {
            if parts.peek().is_none() {
                let last = part_of(cmd, cmd.cla(), chunk, ne, false)?;
                return self.exchange(&last, sensitive);
            }
            let part = part_of(cmd, cmd.cla() | CLA_CHAINING, chunk, None, false)?;
            self.counters.chained_parts += 1;
            let r = self.transmit_one(&part, sensitive)?;
            if !r.is_success() {
                return Ok(r);
            }
        }
        // `chunks` of non-empty data yields at least one part, and the last returns.
        Err(CardError::CommandTooLong {
            len: data.len(),
            max: max_part,
        })
    }

    /// Sends a command and returns its data, or the status as an error.
    pub fn send_ok(&mut self, cmd: &Command) -> Result<Vec<u8>, CardError> {
        Ok(self.send(cmd)?.into_data()?)
    }

    /// One APDU exchange plus its `6Cxx` re-send and `61xx` GET RESPONSE loop.
    fn exchange(&mut self, cmd: &Command, sensitive: bool) -> Result<Response, CardError> {
        let resp = self.transmit_resending(cmd, sensitive)?;
        let mut data = resp.data().to_vec();
        let mut sw = resp.sw();
        let gr_cla = get_response_cla(cmd.cla());
        let mut rounds = 0;
        while sw.sw1() == 0x61 {
            rounds += 1;
            if rounds > MAX_GET_RESPONSES {
                return Err(CardError::ResponseTooLong(data.len()));
            }
            self.counters.get_responses += 1;
            let gr = Command::new(gr_cla, 0xC0, 0x00, 0x00).with_le(short_ne(sw.sw2()))?;
            let part = self.transmit_resending(&gr, sensitive)?;
            data.extend_from_slice(part.data());
            if data.len() > MAX_RESPONSE_DATA {
                return Err(CardError::ResponseTooLong(data.len()));
            }
            sw = part.sw();
        }
        Ok(Response::new(data, sw))
    }

    /// One APDU, sent once more with the exact Le if the card answers `6Cxx`.
    ///
    /// Not a command with secure messaging: its MAC is chained to the
    /// commands before it and the card has already taken it, so the same
    /// bytes again are a replay (`6988`, and the card closes the channel).
    /// Its `6Cxx` goes up to the secure channel, which wraps it anew.
    fn transmit_resending(
        &mut self,
        cmd: &Command,
        sensitive: bool,
    ) -> Result<Response, CardError> {
        let resp = self.transmit_one(cmd, sensitive)?;
        if resp.sw().sw1() != 0x6C || has_secure_messaging(cmd.cla()) {
            return Ok(resp);
        }
        self.counters.le_resends += 1;
        let exact = cmd.clone().with_le(short_ne(resp.sw().sw2()))?;
        self.transmit_one(&exact, sensitive)
    }

    /// Exactly one APDU over the transport, counted and traced.
    fn transmit_one(&mut self, cmd: &Command, sensitive: bool) -> Result<Response, CardError> {
        self.tx.resize(cmd.encoded_len(), 0);
        let n = cmd.encode(&mut self.tx)?;
        let redact = sensitive && self.redact;
        if let Some(hook) = self.trace.as_mut() {
            let sent = self.tx.get(..n).unwrap_or_default();
            let shown = if redact {
                sent.get(..4).unwrap_or(sent)
            } else {
                sent
            };
            hook(&TraceEvent {
                direction: Direction::Command,
                bytes: shown,
                len: n,
                redact,
            });
        }
        self.counters.apdus += 1;
        self.counters.bytes_sent += n as u64;
        let result = self
            .transport
            .transmit(self.tx.get(..n).unwrap_or_default(), &mut self.rx);
        // Command bytes may hold a PIN or key: wipe them whatever happened.
        self.tx.zeroize();
        result?;
        self.counters.bytes_received += self.rx.len() as u64;
        if let Some(hook) = self.trace.as_mut() {
            let got = self.rx.as_slice();
            let shown = if redact {
                got.get(got.len().saturating_sub(2)..).unwrap_or(got)
            } else {
                got
            };
            hook(&TraceEvent {
                direction: Direction::Response,
                bytes: shown,
                len: got.len(),
                redact,
            });
        }
        let parsed =
            Response::from_bytes(&self.rx).map_err(|_| CardError::MalformedResponse(self.rx.len()));
        if sensitive {
            self.rx.zeroize();
        }
        parsed
    }
}

/// Ne as SW2 of `61xx` or `6Cxx` gives it: `00` means 256.
fn short_ne(sw2: u8) -> u32 {
    match sw2 {
        0 => MAX_SHORT_LE,
        n => u32::from(n),
    }
}

/// Whether `cla` marks secure messaging: bits `0C` of a first-interindustry
/// (or `GlobalPlatform` `8x`) class, bit `20` of a further-interindustry one
/// (ISO 7816-4 §5.4.1).
fn has_secure_messaging(cla: u8) -> bool {
    if cla & 0x40 == 0 {
        cla & 0x0C != 0
    } else {
        cla & 0x20 != 0
    }
}

/// The CLA for GET RESPONSE: interindustry, on the logical channel of `cla`
/// (ISO 7816-4 §5.4.2; `GlobalPlatform` codes its channels the same way). Secure
/// messaging and chaining bits are cleared.
fn get_response_cla(cla: u8) -> u8 {
    if cla & 0x40 == 0 {
        cla & 0x03
    } else {
        0x40 | (cla & 0x0F)
    }
}

/// One APDU of `cmd` with another CLA, data field and Ne.
fn part_of(
    cmd: &Command,
    cla: u8,
    data: &[u8],
    ne: Option<u32>,
    extended: bool,
) -> Result<Command, CommandError> {
    let mut part = Command::new(cla, cmd.ins(), cmd.p1(), cmd.p2()).with_data(data)?;
    if let Some(ne) = ne {
        part = part.with_le(ne)?;
    }
    if extended {
        part = part.extended();
    }
    if cmd.is_sensitive() {
        part = part.sensitive();
    }
    Ok(part)
}

/// A `Card` is itself a transport that delivers complete responses, so a
/// secure channel can sit on top of it and another `Card` on top of that.
impl<T: Transport> Transport for Card<T> {
    fn transmit(&mut self, apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
        transmit_command(
            apdu,
            rx,
            |cmd| self.send(cmd),
            |e| match e {
                CardError::Transport(e) => e,
                e => TransportError::Malformed(e.to_string()),
            },
        )
    }

    fn capabilities(&self) -> CardCaps {
        self.caps
    }
}
