//! A connected card: the [`Transport`] the rest of kart talks through.
//!
//! `SCardTransmit` blocks until the reader driver returns, and a driver may
//! never return (vpcd waits for its card forever). So each connection keeps
//! its `pcsc::Card` on an I/O thread of its own, with its own PC/SC context
//! (libpcsclite serializes calls per context), and the caller waits for the
//! answer at most [`ConnectOptions::timeout`]. On timeout the connection is
//! abandoned: the caller gets [`PcscError::Timeout`], later calls get
//! [`PcscError::Abandoned`], and the I/O thread disconnects and ends whenever
//! the driver lets go.

use crate::atr::caps_for;
use crate::error::PcscError;
use kart_apdu::{CardCaps, Transport, TransportError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Exclusive or shared access to the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Share {
    /// Other programs may connect too (use a [`Transaction`] for atomic work).
    #[default]
    Shared,
    /// No other program may connect while this connection lives.
    Exclusive,
}

/// The transmission protocols a connection accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProtocolChoice {
    /// T=0 only.
    T0,
    /// T=1 only.
    T1,
    /// Whatever the card and reader agree on.
    #[default]
    Any,
}

/// The protocol a connection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Character protocol T=0 (responses may need GET RESPONSE).
    T0,
    /// Block protocol T=1.
    T1,
}

/// What happens to the card when a connection or transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Disposition {
    /// Leave the card as it is (its session state stays).
    #[default]
    Leave,
    /// Warm-reset the card.
    Reset,
    /// Power the card down.
    Unpower,
}

impl From<Disposition> for pcsc::Disposition {
    fn from(d: Disposition) -> Self {
        match d {
            Disposition::Leave => pcsc::Disposition::LeaveCard,
            Disposition::Reset => pcsc::Disposition::ResetCard,
            Disposition::Unpower => pcsc::Disposition::UnpowerCard,
        }
    }
}

/// How to connect to a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Shared or exclusive access.
    pub share: Share,
    /// Acceptable protocols.
    pub protocol: ProtocolChoice,
    /// Longest wait for any single card operation (connect, one APDU, ...).
    /// Long enough for on-card key generation.
    pub timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            share: Share::Shared,
            protocol: ProtocolChoice::Any,
            timeout: Duration::from_secs(30),
        }
    }
}

impl ConnectOptions {
    fn pcsc_share(self) -> pcsc::ShareMode {
        match self.share {
            Share::Shared => pcsc::ShareMode::Shared,
            Share::Exclusive => pcsc::ShareMode::Exclusive,
        }
    }

    fn pcsc_protocols(self) -> pcsc::Protocols {
        match self.protocol {
            ProtocolChoice::T0 => pcsc::Protocols::T0,
            ProtocolChoice::T1 => pcsc::Protocols::T1,
            ProtocolChoice::Any => pcsc::Protocols::ANY,
        }
    }
}

/// What the I/O thread learns when it connects or reconnects.
#[derive(Debug, Clone)]
struct Session {
    atr: Vec<u8>,
    protocol: Protocol,
    max_input: Option<usize>,
}

enum Job {
    Transmit { apdu: Vec<u8>, rx: Vec<u8> },
    Begin,
    End(Disposition),
    Reconnect(Disposition),
    Close(Disposition),
}

enum Reply {
    Session(Result<Session, PcscError>),
    Transmitted {
        apdu: Vec<u8>,
        rx: Vec<u8>,
        result: Result<(), PcscError>,
    },
    Done(Result<(), PcscError>),
}

/// A card connected in a reader; implements [`Transport`].
///
/// Dropping it disconnects and leaves the card as it is (the `pcsc` crate
/// alone would reset it).
///
/// ```no_run
/// use kart_apdu::{Card, Command};
/// use kart_pcsc::{ConnectOptions, Pcsc};
/// let pcsc = Pcsc::establish()?;
/// let reader = pcsc.reader_names()?.into_iter().next().expect("a reader");
/// let mut conn = pcsc.connect(&reader, ConnectOptions::default())?;
/// println!("ATR {:02X?} over {:?}", conn.atr(), conn.protocol());
/// let mut tx = conn.transaction()?; // no other program talks to the card until it ends
/// let mut card = Card::new(&mut tx);
/// let challenge = card.send_ok(&Command::new(0x00, 0x84, 0x00, 0x00).with_le(8)?)?;
/// drop(card);
/// tx.end(kart_pcsc::Disposition::Leave)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Connection {
    reader: String,
    options: ConnectOptions,
    session: Session,
    caps: CardCaps,
    jobs: Sender<Job>,
    replies: Receiver<Reply>,
    /// Set when a call timed out: the I/O thread may still be inside it,
    /// and lets go of the card (transaction, connection) when it returns.
    abandoned: Arc<AtomicBool>,
    io: Option<JoinHandle<()>>,
    apdu_buf: Vec<u8>,
    /// Per-command bound on an APDU's answer, when set; else `options.timeout`.
    deadline: Option<Deadline>,
}

/// Gives the longest wait for one APDU (e.g. from a vendor's latency model).
pub type Deadline = Box<dyn Fn(&[u8]) -> Duration + Send>;

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("reader", &self.reader)
            .field("protocol", &self.session.protocol)
            .field("atr", &format_args!("{:02X?}", self.session.atr))
            .field("abandoned", &self.is_abandoned())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects to the card in `reader` (see [`Pcsc::connect`](crate::Pcsc::connect)).
    pub(crate) fn open(reader: &str, options: ConnectOptions) -> Result<Self, PcscError> {
        let (jobs, job_rx) = mpsc::channel();
        let (reply_tx, replies) = mpsc::channel();
        let name = reader.to_owned();
        let abandoned = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&abandoned);
        let io = std::thread::Builder::new()
            .name(format!("pcsc {reader}"))
            .spawn(move || io_thread(&name, options, &job_rx, &reply_tx, &flag))
            .map_err(|_| PcscError::Other {
                reader: reader.to_owned(),
                during: "start the reader's I/O thread",
                source: pcsc::Error::NoMemory,
            })?;
        let mut conn = Connection {
            reader: reader.to_owned(),
            options,
            session: Session {
                atr: Vec::new(),
                protocol: Protocol::T1,
                max_input: None,
            },
            caps: CardCaps::SHORT_ONLY,
            jobs,
            replies,
            abandoned,
            io: Some(io),
            apdu_buf: Vec::with_capacity(261),
            deadline: None,
        };
        match conn.wait()? {
            Reply::Session(Ok(session)) => {
                conn.set_session(session);
                Ok(conn)
            }
            Reply::Session(Err(e)) => Err(e),
            _ => Err(conn.confused()),
        }
    }

    /// Whether an operation timed out, making this connection unusable.
    pub fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::SeqCst)
    }

    fn abandon(&self) -> PcscError {
        self.abandoned.store(true, Ordering::SeqCst);
        PcscError::Abandoned(self.reader.clone())
    }

    /// The reader's name.
    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// The card's Answer To Reset.
    pub fn atr(&self) -> &[u8] {
        &self.session.atr
    }

    /// The protocol in use.
    pub fn protocol(&self) -> Protocol {
        self.session.protocol
    }

    /// The largest command the reader takes, if it reports one (`SCARD_ATTR_MAXINPUT`).
    pub fn reader_max_input(&self) -> Option<usize> {
        self.session.max_input
    }

    /// Replaces the capabilities derived from ATR and reader (e.g. with a
    /// vendor profile's figures).
    pub fn set_capabilities(&mut self, caps: CardCaps) {
        self.caps = caps;
    }

    /// The bound on each card operation.
    pub fn timeout(&self) -> Duration {
        self.options.timeout
    }

    /// Changes the bound on each card operation.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.options.timeout = timeout;
    }

    /// Bounds each APDU's answer by `deadline(apdu)` instead of the one
    /// [`ConnectOptions::timeout`]: a mute card is caught in the time a
    /// simple command needs, while key generation keeps its allowance.
    /// The other operations (transactions, reconnect) keep the timeout.
    ///
    /// ```no_run
    /// # let pcsc = kart_pcsc::Pcsc::establish()?;
    /// # let mut conn = pcsc.connect("reader", kart_pcsc::ConnectOptions::default())?;
    /// use std::time::Duration;
    /// conn.set_deadlines(Box::new(|apdu: &[u8]| match apdu.get(1) {
    ///     Some(0x47) => Duration::from_secs(30), // key generation
    ///     _ => Duration::from_secs(1),
    /// }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_deadlines(&mut self, deadline: Deadline) {
        self.deadline = Some(deadline);
    }

    /// Starts a transaction: no other program can use the card until the
    /// returned [`Transaction`] ends or is dropped. Hold one for the whole
    /// personalization of a card.
    ///
    /// Fails with [`PcscError::CardReset`] when another program reset the
    /// card: call [`Connection::reconnect`] and start the card's step again.
    pub fn transaction(&mut self) -> Result<Transaction<'_>, PcscError> {
        self.done(Job::Begin)?;
        Ok(Transaction {
            conn: self,
            open: true,
        })
    }

    /// Reconnects after the card was reset by another program (or to reset
    /// it: `Disposition::Reset`), and reads its ATR again.
    pub fn reconnect(&mut self, init: Disposition) -> Result<(), PcscError> {
        match self.call(Job::Reconnect(init))? {
            Reply::Session(Ok(session)) => {
                self.set_session(session);
                Ok(())
            }
            Reply::Session(Err(e)) => Err(e),
            _ => Err(self.confused()),
        }
    }

    /// Disconnects, doing `disposition` to the card.
    pub fn close(mut self, disposition: Disposition) -> Result<(), PcscError> {
        let result = self.done(Job::Close(disposition));
        if let Some(io) = self.io.take() {
            let _ = io.join();
        }
        result
    }

    /// Sends one APDU and waits (bounded) for the card's answer.
    fn exchange(&mut self, apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), PcscError> {
        let within = self
            .deadline
            .as_ref()
            .map_or(self.options.timeout, |deadline| deadline(apdu));
        let mut buf = std::mem::take(&mut self.apdu_buf);
        buf.clear();
        buf.extend_from_slice(apdu);
        let job = Job::Transmit {
            apdu: buf,
            rx: std::mem::take(rx),
        };
        match self.call_within(job, within)? {
            Reply::Transmitted {
                mut apdu,
                rx: answer,
                result,
            } => {
                // The command may hold a PIN: wipe the copy.
                zeroize::Zeroize::zeroize(&mut apdu);
                self.apdu_buf = apdu;
                *rx = answer;
                result
            }
            _ => Err(self.confused()),
        }
    }

    fn set_session(&mut self, session: Session) {
        self.caps = caps_for(&session.atr, session.max_input);
        self.session = session;
    }

    fn done(&mut self, job: Job) -> Result<(), PcscError> {
        match self.call(job)? {
            Reply::Done(r) => r,
            _ => Err(self.confused()),
        }
    }

    fn call(&mut self, job: Job) -> Result<Reply, PcscError> {
        self.call_within(job, self.options.timeout)
    }

    fn call_within(&mut self, job: Job, timeout: Duration) -> Result<Reply, PcscError> {
        if self.is_abandoned() || self.jobs.send(job).is_err() {
            return Err(self.abandon());
        }
        self.wait_within(timeout)
    }

    fn wait(&mut self) -> Result<Reply, PcscError> {
        self.wait_within(self.options.timeout)
    }

    fn wait_within(&mut self, timeout: Duration) -> Result<Reply, PcscError> {
        match self.replies.recv_timeout(timeout) {
            Ok(reply) => Ok(reply),
            Err(RecvTimeoutError::Timeout) => {
                self.abandon();
                Err(PcscError::Timeout {
                    reader: self.reader.clone(),
                    timeout,
                })
            }
            Err(RecvTimeoutError::Disconnected) => Err(self.abandon()),
        }
    }

    /// A reply of the wrong kind: cannot happen with one job in flight, but
    /// if it did, the connection is no longer trustworthy.
    fn confused(&mut self) -> PcscError {
        self.abandon()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let _ = self.jobs.send(Job::Close(Disposition::Leave));
        if let Some(io) = self.io.take() {
            // A thread stuck in the driver is left to finish on its own.
            if !self.is_abandoned() {
                let _ = io.join();
            }
        }
    }
}

impl Transport for Connection {
    fn transmit(&mut self, apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
        self.exchange(apdu, rx).map_err(TransportError::from)
    }

    fn capabilities(&self) -> CardCaps {
        self.caps
    }
}

/// Exclusive use of a card for as long as this value lives
/// (`SCardBeginTransaction` .. `SCardEndTransaction`).
///
/// Dropping it ends the transaction leaving the card as it is.
pub struct Transaction<'a> {
    conn: &'a mut Connection,
    open: bool,
}

impl std::fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("connection", &self.conn)
            .finish()
    }
}

impl Transaction<'_> {
    /// Ends the transaction, doing `disposition` to the card.
    pub fn end(mut self, disposition: Disposition) -> Result<(), PcscError> {
        self.open = false;
        self.conn.done(Job::End(disposition))
    }

    /// The connection the transaction runs on.
    pub fn connection(&self) -> &Connection {
        self.conn
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn.done(Job::End(Disposition::Leave));
        }
    }
}

impl Transport for Transaction<'_> {
    fn transmit(&mut self, apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
        self.conn.transmit(apdu, rx)
    }

    fn capabilities(&self) -> CardCaps {
        self.conn.caps
    }
}

// ---- The I/O thread: the only code that calls into libpcsclite for a card.

fn io_thread(
    reader: &str,
    options: ConnectOptions,
    jobs: &Receiver<Job>,
    replies: &Sender<Reply>,
    abandoned: &AtomicBool,
) {
    let mut card = match connect(reader, options) {
        Ok((card, session)) => {
            if replies.send(Reply::Session(Ok(session))).is_err() {
                let _ = card.disconnect(pcsc::Disposition::LeaveCard);
                return;
            }
            card
        }
        Err(e) => {
            let _ = replies.send(Reply::Session(Err(e)));
            return;
        }
    };
    let mut disposition = Disposition::Leave;
    // Ends when the Connection is dropped (channel closed) or closes.
    while let Ok(job) = jobs.recv() {
        let reply = match job {
            Job::Transmit { apdu, rx } => transmit(&card, reader, apdu, rx),
            Job::Reconnect(init) => Reply::Session(reconnect(&mut card, reader, options, init)),
            Job::Begin => match card.transaction2() {
                // Nobody waits for this transaction any more: release it.
                Ok(tx) if abandoned.load(Ordering::SeqCst) => {
                    drop(tx);
                    break;
                }
                Ok(mut tx) => {
                    let _ = replies.send(Reply::Done(Ok(())));
                    match in_transaction(&mut tx, reader, options, jobs, replies, abandoned) {
                        Some(Job::End(d)) => Reply::Done(tx.end(d.into()).map_err(|(_, e)| {
                            PcscError::from_pcsc(e, reader, "end the transaction")
                        })),
                        Some(Job::Close(d)) => {
                            drop(tx);
                            disposition = d;
                            break;
                        }
                        _ => break,
                    }
                }
                Err((_, e)) => {
                    Reply::Done(Err(PcscError::from_pcsc(e, reader, "begin a transaction")))
                }
            },
            Job::End(_) => Reply::Done(Ok(())),
            Job::Close(d) => {
                disposition = d;
                break;
            }
        };
        if abandoned.load(Ordering::SeqCst) || replies.send(reply).is_err() {
            break;
        }
    }
    let result = card
        .disconnect(disposition.into())
        .map_err(|(_, e)| PcscError::from_pcsc(e, reader, "disconnect"));
    let _ = replies.send(Reply::Done(result));
}

/// Serves jobs inside a transaction; returns the job that ends it (End or
/// Close), or `None` when the Connection is gone.
fn in_transaction(
    tx: &mut pcsc::Transaction<'_>,
    reader: &str,
    options: ConnectOptions,
    jobs: &Receiver<Job>,
    replies: &Sender<Reply>,
    abandoned: &AtomicBool,
) -> Option<Job> {
    while let Ok(job) = jobs.recv() {
        let reply = match job {
            Job::Transmit { apdu, rx } => transmit(tx, reader, apdu, rx),
            Job::Reconnect(init) => Reply::Session(
                tx.reconnect(options.pcsc_share(), options.pcsc_protocols(), init.into())
                    .map_err(|e| PcscError::from_pcsc(e, reader, "reconnect"))
                    .and_then(|()| session(tx, reader)),
            ),
            // Transactions do not nest; the API cannot ask for it.
            Job::Begin => Reply::Done(Ok(())),
            end @ (Job::End(_) | Job::Close(_)) => return Some(end),
        };
        if abandoned.load(Ordering::SeqCst) {
            return None;
        }
        replies.send(reply).ok()?;
    }
    None
}

fn connect(reader: &str, options: ConnectOptions) -> Result<(pcsc::Card, Session), PcscError> {
    let ctx = pcsc::Context::establish(pcsc::Scope::User)
        .map_err(|e| PcscError::from_pcsc(e, reader, crate::error::ESTABLISH))?;
    let name =
        std::ffi::CString::new(reader).map_err(|_| PcscError::UnknownReader(reader.to_owned()))?;
    let card = ctx
        .connect(&name, options.pcsc_share(), options.pcsc_protocols())
        .map_err(|e| match e {
            pcsc::Error::ProtoMismatch => PcscError::ProtocolMismatch {
                reader: reader.to_owned(),
                wanted: format!("{:?}", options.protocol),
            },
            e => PcscError::from_pcsc(e, reader, "connect to the card"),
        })?;
    let s = session(&card, reader)?;
    Ok((card, s))
}

fn reconnect(
    card: &mut pcsc::Card,
    reader: &str,
    options: ConnectOptions,
    init: Disposition,
) -> Result<Session, PcscError> {
    card.reconnect(options.pcsc_share(), options.pcsc_protocols(), init.into())
        .map_err(|e| PcscError::from_pcsc(e, reader, "reconnect"))?;
    session(card, reader)
}

fn session(card: &pcsc::Card, reader: &str) -> Result<Session, PcscError> {
    let status = card
        .status2_owned()
        .map_err(|e| PcscError::from_pcsc(e, reader, "read the card status"))?;
    let protocol = match status.protocol2() {
        Some(pcsc::Protocol::T0) => Protocol::T0,
        Some(pcsc::Protocol::T1) => Protocol::T1,
        // RAW or none: the pcsc crate cannot transmit on it (it would panic).
        _ => {
            return Err(PcscError::ProtocolMismatch {
                reader: reader.to_owned(),
                wanted: "T=0 or T=1".to_owned(),
            })
        }
    };
    let max_input = card
        .get_attribute_owned(pcsc::Attribute::Maxinput)
        .ok()
        .and_then(|v| v.get(..4).map(|b| [b[0], b[1], b[2], b[3]]))
        .map(|b| u32::from_le_bytes(b) as usize)
        .filter(|&n| n > 0);
    Ok(Session {
        atr: status.atr().to_vec(),
        protocol,
        max_input,
    })
}

fn transmit(card: &pcsc::Card, reader: &str, apdu: Vec<u8>, mut rx: Vec<u8>) -> Reply {
    // An extended APDU has a zero byte where a short one has Lc/Le.
    let extended = apdu.len() > 5 && apdu.get(4) == Some(&0);
    rx.resize(
        if extended {
            pcsc::MAX_BUFFER_SIZE_EXTENDED
        } else {
            pcsc::MAX_BUFFER_SIZE
        },
        0,
    );
    let result = match card.transmit(&apdu, &mut rx) {
        // No status word: the driver lost the card mid-exchange (vpcd
        // reports a closed connection as an empty answer).
        Ok(answer) if answer.len() < 2 => Err(empty_answer(card, reader)),
        Ok(answer) => Ok(answer.len()),
        Err(e) => Err(transmit_error(card, reader, e)),
    };
    let result = result.map(|n| rx.truncate(n));
    if result.is_err() {
        rx.clear();
    }
    Reply::Transmitted { apdu, rx, result }
}

/// How long an empty answer may take to show up as a removed card: pcscd
/// polls card presence every 400 ms.
const REMOVAL_GRACE: Duration = Duration::from_millis(1200);

/// Tells a card that left (pcscd notices within a poll period) from one
/// that answered nothing.
fn empty_answer(card: &pcsc::Card, reader: &str) -> PcscError {
    let deadline = std::time::Instant::now() + REMOVAL_GRACE;
    loop {
        match card.status2_owned() {
            Ok(s) if s.status().contains(pcsc::Status::PRESENT) => {}
            Ok(_) | Err(pcsc::Error::RemovedCard | pcsc::Error::NoSmartcard) => {
                return PcscError::CardRemoved(reader.to_owned())
            }
            Err(e) => return PcscError::from_pcsc(e, reader, "read the card status"),
        }
        if std::time::Instant::now() >= deadline {
            return PcscError::EmptyAnswer(reader.to_owned());
        }
        std::thread::sleep(Duration::from_millis(40));
    }
}

/// A transfer that failed because the card left reads as a communication
/// error; ask the reader whether the card is still there.
fn transmit_error(card: &pcsc::Card, reader: &str, e: pcsc::Error) -> PcscError {
    if matches!(
        e,
        pcsc::Error::NotTransacted | pcsc::Error::CommError | pcsc::Error::UnknownError
    ) {
        match card.status2_owned() {
            Err(pcsc::Error::RemovedCard | pcsc::Error::NoSmartcard) => {
                return PcscError::CardRemoved(reader.to_owned())
            }
            Ok(s) if !s.status().contains(pcsc::Status::PRESENT) => {
                return PcscError::CardRemoved(reader.to_owned())
            }
            _ => {}
        }
    }
    PcscError::from_pcsc(e, reader, "transmit an APDU")
}
