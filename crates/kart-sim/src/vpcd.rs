//! The simulator's `vpcd` face: connects to the vsmartcard `vpcd` driver of a
//! real `pcscd` as the card, so PC/SC clients see a simulated card in a
//! virtual reader.
//!
//! The wire protocol (vsmartcard's `vpcd`): each frame is a 2-byte big-endian
//! length and a payload. A 1-byte payload from the reader is a control
//! message (0 power off, 1 power on, 2 reset, 4 send the ATR); anything
//! longer is a command APDU, answered with one frame holding the response.
//!
//! The vpcd driver writes each frame in pieces; with default TCP settings the
//! card side then waits on delayed ACKs (~48 ms per APDU). The socket here
//! sets `TCP_NODELAY` and re-arms `TCP_QUICKACK` after every read, which
//! brings a round trip through `pcscd` to about 0.1 ms.
//!
//! ```no_run
//! use kart_sim::vpcd::{serve, VirtualCard};
//! struct Mute;
//! impl VirtualCard for Mute {
//!     fn atr(&self) -> Vec<u8> { vec![0x3B, 0x80, 0x80, 0x01, 0x01] }
//!     fn power_on(&mut self) {}
//!     fn power_off(&mut self) {}
//!     fn reset(&mut self) {}
//!     fn process(&mut self, _apdu: &[u8]) -> Option<Vec<u8>> { Some(vec![0x6D, 0x00]) }
//! }
//! // The reader is a vpcd entry with DEVICENAME /dev/null:0x8C7B in pcscd's reader.conf.
//! let card = serve("127.0.0.1:35963", Mute)?;
//! card.pull(); // the reader sees the card leave
//! card.insert(); // and come back
//! let _mute: Mute = card.stop();
//! # Ok::<(), kart_sim::vpcd::VpcdError>(())
//! ```

use socket2::SockRef;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use thiserror::Error;

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

/// Why a card could not be put behind a vpcd reader.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum VpcdError {
    /// The reader address does not resolve.
    #[error("vpcd reader address '{addr}' does not resolve: {source}")]
    Address {
        /// The address as given.
        addr: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// The reader address resolves to nothing.
    #[error("vpcd reader address '{0}' resolves to no socket address")]
    NoAddress(String),
    /// The serving thread could not be started.
    #[error("could not start the vpcd card thread: {0}")]
    Thread(io::Error),
}

/// How a card connects to its reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeOptions {
    /// How long to keep retrying while `pcscd` is not yet listening.
    pub connect_timeout: Duration,
    /// Pause between connection attempts.
    pub retry_interval: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            retry_interval: Duration::from_millis(20),
        }
    }
}

/// Puts `card` into the vpcd reader listening at `addr` (e.g.
/// `"127.0.0.1:35963"`), with default [`ServeOptions`].
///
/// Returns at once; the card is served on its own thread until
/// [`VpcdHandle::stop`].
pub fn serve<C: VirtualCard + 'static>(
    addr: impl ToSocketAddrs + std::fmt::Debug,
    card: C,
) -> Result<VpcdHandle<C>, VpcdError> {
    serve_with(addr, card, ServeOptions::default())
}

/// [`serve`] with explicit options.
pub fn serve_with<C: VirtualCard + 'static>(
    addr: impl ToSocketAddrs + std::fmt::Debug,
    card: C,
    options: ServeOptions,
) -> Result<VpcdHandle<C>, VpcdError> {
    let shown = format!("{addr:?}");
    let addr = addr
        .to_socket_addrs()
        .map_err(|source| VpcdError::Address {
            addr: shown.clone(),
            source,
        })?
        .next()
        .ok_or(VpcdError::NoAddress(shown))?;
    let shared = Arc::new(Shared {
        ctl: Mutex::new(Ctl {
            inserted: true,
            ..Ctl::default()
        }),
        changed: Condvar::new(),
    });
    let worker = Worker {
        addr,
        options,
        shared: Arc::clone(&shared),
    };
    let thread = std::thread::Builder::new()
        .name(format!("vpcd card {addr}"))
        .spawn(move || worker.run(card))
        .map_err(VpcdError::Thread)?;
    Ok(VpcdHandle {
        shared,
        thread: Some(thread),
    })
}

/// Controls a card served to a vpcd reader: pull it, insert it again, stop.
#[derive(Debug)]
pub struct VpcdHandle<C> {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<C>>,
}

impl<C> VpcdHandle<C> {
    /// Takes the card out of the reader: the connection to vpcd is closed,
    /// so `pcscd` reports the card removed. The card keeps its state.
    pub fn pull(&self) {
        let stream = {
            let mut ctl = self.shared.lock();
            ctl.inserted = false;
            ctl.stream.take()
        };
        if let Some(s) = stream {
            let _ = s.shutdown(Shutdown::Both);
        }
        self.shared.changed.notify_all();
    }

    /// Puts the card back: connects to vpcd again.
    pub fn insert(&self) {
        {
            let mut ctl = self.shared.lock();
            ctl.inserted = true;
            ctl.last_error = None;
        }
        self.shared.changed.notify_all();
    }

    /// Whether the card is connected to the reader now.
    pub fn is_connected(&self) -> bool {
        self.shared.lock().stream.is_some()
    }

    /// Waits up to `timeout` for the card to be connected; returns whether it is.
    pub fn wait_connected(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut ctl = self.shared.lock();
        while ctl.stream.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            ctl = self
                .shared
                .changed
                .wait_timeout(ctl, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        drop(ctl);
        true
    }

    /// Why the last connection attempt failed or the last session ended
    /// abnormally, if it did.
    pub fn last_error(&self) -> Option<String> {
        self.shared.lock().last_error.clone()
    }

    /// How many times the card has been connected to the reader.
    pub fn connections(&self) -> u64 {
        self.shared.lock().connections
    }

    /// Takes the card out and ends the serving thread; returns the card.
    pub fn stop(mut self) -> C {
        self.shutdown();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(card)) => card,
            // The thread only ends by returning the card; a panic inside the
            // card's own code is passed on to the caller.
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => unreachable!("the thread is only taken here"),
        }
    }

    fn shutdown(&self) {
        self.shared.lock().stop = true;
        self.pull();
    }
}

impl<C> Drop for VpcdHandle<C> {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.shutdown();
            let _ = thread.join();
        }
    }
}

#[derive(Debug)]
struct Shared {
    ctl: Mutex<Ctl>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Ctl> {
        self.ctl.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug, Default)]
struct Ctl {
    inserted: bool,
    stop: bool,
    /// A clone of the live connection, so `pull` can cut it from outside.
    stream: Option<TcpStream>,
    connections: u64,
    last_error: Option<String>,
}

/// How one connection to the reader ended.
enum End {
    /// `process` returned `None`: the card left the reader.
    CardLeft,
    /// The socket closed or failed (a pull, or pcscd went away).
    Closed(Option<io::Error>),
}

struct Worker {
    addr: SocketAddr,
    options: ServeOptions,
    shared: Arc<Shared>,
}

impl Worker {
    fn run<C: VirtualCard>(self, mut card: C) -> C {
        loop {
            if !self.wait_inserted() {
                return card;
            }
            let Some(stream) = self.connect() else {
                continue;
            };
            let end = serve_connection(&stream, &mut card);
            let _ = stream.shutdown(Shutdown::Both);
            card.power_off();
            let mut ctl = self.shared.lock();
            ctl.stream = None;
            match end {
                End::CardLeft => ctl.inserted = false,
                End::Closed(Some(e)) if ctl.inserted => {
                    ctl.last_error = Some(format!("connection to vpcd at {} lost: {e}", self.addr));
                }
                End::Closed(_) => {}
            }
            self.shared.changed.notify_all();
        }
    }

    /// Blocks until the card should be in the reader; false on stop.
    fn wait_inserted(&self) -> bool {
        let mut ctl = self.shared.lock();
        while !ctl.inserted && !ctl.stop {
            ctl = self
                .shared
                .changed
                .wait(ctl)
                .unwrap_or_else(PoisonError::into_inner);
        }
        !ctl.stop
    }

    /// Connects, retrying while pcscd is not listening yet (bounded).
    // The lint misses that `ctl` is dropped before notifying or moved into
    // `give_up`, which releases it while reporting.
    #[allow(clippy::significant_drop_tightening)]
    fn connect(&self) -> Option<TcpStream> {
        let deadline = Instant::now() + self.options.connect_timeout;
        loop {
            match TcpStream::connect_timeout(&self.addr, self.options.connect_timeout) {
                Ok(stream) => {
                    let clone = stream.try_clone();
                    let tuned = stream.set_nodelay(true).and_then(|()| quickack(&stream));
                    let mut ctl = self.shared.lock();
                    if !ctl.inserted || ctl.stop {
                        return None;
                    }
                    match (clone, tuned) {
                        (Ok(clone), Ok(())) => {
                            ctl.stream = Some(clone);
                            ctl.connections += 1;
                            ctl.last_error = None;
                            drop(ctl);
                            self.shared.changed.notify_all();
                            return Some(stream);
                        }
                        (Err(e), _) | (_, Err(e)) => {
                            return self.give_up(
                                ctl,
                                &format!(
                                    "could not set up the socket to vpcd at {}: {e}",
                                    self.addr
                                ),
                            );
                        }
                    }
                }
                Err(e) => {
                    let ctl = self.shared.lock();
                    if !ctl.inserted || ctl.stop {
                        return None;
                    }
                    if Instant::now() >= deadline {
                        let msg = format!(
                            "vpcd at {} did not accept the card within {:?} ({e}): is pcscd running with a vpcd reader on that port?",
                            self.addr, self.options.connect_timeout
                        );
                        return self.give_up(ctl, &msg);
                    }
                    // Sleep without holding the lock; wake early on pull/stop.
                    let _ = self
                        .shared
                        .changed
                        .wait_timeout(ctl, self.options.retry_interval);
                }
            }
        }
    }

    fn give_up(&self, mut ctl: MutexGuard<'_, Ctl>, msg: &str) -> Option<TcpStream> {
        ctl.last_error = Some(msg.to_owned());
        ctl.inserted = false;
        self.shared.changed.notify_all();
        None
    }
}

/// Delayed ACKs otherwise cost ~48 ms per APDU; Linux clears the flag
/// after use, so it is set again after every read.
fn quickack(stream: &TcpStream) -> io::Result<()> {
    SockRef::from(stream).set_quickack(true)
}

fn serve_connection<C: VirtualCard>(stream: &TcpStream, card: &mut C) -> End {
    let mut payload = Vec::with_capacity(261);
    loop {
        let mut len = [0u8; 2];
        if let Err(e) = read_frame_part(stream, &mut len) {
            return End::Closed(Some(e).filter(|e| e.kind() != io::ErrorKind::UnexpectedEof));
        }
        payload.resize(usize::from(u16::from_be_bytes(len)), 0);
        if let Err(e) = read_frame_part(stream, &mut payload) {
            return End::Closed(Some(e));
        }
        let reply = match payload.as_slice() {
            [0] => {
                card.power_off();
                None
            }
            [1] => {
                card.power_on();
                None
            }
            [2] => {
                card.reset();
                None
            }
            [4] => Some(card.atr()),
            // Unknown control messages have no answer in the protocol.
            [_] | [] => None,
            apdu => match card.process(apdu) {
                Some(r) => Some(r),
                None => return End::CardLeft,
            },
        };
        if let Some(reply) = reply {
            if let Err(e) = write_frame(stream, &reply) {
                return End::Closed(Some(e));
            }
        }
    }
}

fn read_frame_part(mut stream: &TcpStream, buf: &mut [u8]) -> io::Result<()> {
    stream.read_exact(buf)?;
    quickack(stream)
}

fn write_frame(mut writer: &TcpStream, payload: &[u8]) -> io::Result<()> {
    let len = u16::try_from(payload.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "card answer of {} bytes does not fit a vpcd frame",
                payload.len()
            ),
        )
    })?;
    let mut frame = Vec::with_capacity(payload.len() + 2);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(payload);
    writer.write_all(&frame)?;
    quickack(writer)
}

#[cfg(test)]
mod tests {
    //! The vpcd side played by a plain TCP listener, framed as vsmartcard's
    //! `vpcd.c` frames (2-byte big-endian length, then payload).
    use super::*;
    use std::net::TcpListener;
    use std::sync::mpsc;

    /// Echoes APDUs back with 9000; leaves the reader on `00 EE`.
    struct Echo {
        events: mpsc::Sender<&'static str>,
    }

    impl VirtualCard for Echo {
        fn atr(&self) -> Vec<u8> {
            vec![0x3B, 0x02, 0x14, 0x50]
        }
        fn power_on(&mut self) {
            let _ = self.events.send("on");
        }
        fn power_off(&mut self) {
            let _ = self.events.send("off");
        }
        fn reset(&mut self) {
            let _ = self.events.send("reset");
        }
        fn process(&mut self, apdu: &[u8]) -> Option<Vec<u8>> {
            if apdu.get(1) == Some(&0xEE) {
                return None;
            }
            let mut r = apdu.to_vec();
            r.extend_from_slice(&[0x90, 0x00]);
            Some(r)
        }
    }

    fn send(s: &mut TcpStream, payload: &[u8]) {
        let mut f = (payload.len() as u16).to_be_bytes().to_vec();
        f.extend_from_slice(payload);
        s.write_all(&f).unwrap();
    }

    fn recv(s: &mut TcpStream) -> Vec<u8> {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut p = vec![0; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut p).unwrap();
        p
    }

    /// An [`Echo`] card served to a fresh listener: the listener, the
    /// card, the reader's end of its first connection and the card's events.
    fn connected_echo() -> (
        TcpListener,
        VpcdHandle<Echo>,
        TcpStream,
        mpsc::Receiver<&'static str>,
    ) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let (tx, events) = mpsc::channel();
        let card = serve(l.local_addr().unwrap(), Echo { events: tx }).unwrap();
        let s = accept(&l);
        (l, card, s, events)
    }

    fn accept(l: &TcpListener) -> TcpStream {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    }

    #[test]
    fn answers_control_messages_and_apdus_in_vpcd_framing() {
        let (_listener, card, mut s, events) = connected_echo();
        send(&mut s, &[4]);
        assert_eq!(recv(&mut s), [0x3B, 0x02, 0x14, 0x50], "ATR on request 4");
        send(&mut s, &[1]);
        send(&mut s, &[2]);
        send(&mut s, &[0]);
        let apdu = [0x00, 0x84, 0x00, 0x00, 0x08];
        send(&mut s, &apdu);
        assert_eq!(recv(&mut s), [0x00, 0x84, 0x00, 0x00, 0x08, 0x90, 0x00]);
        let long: Vec<u8> = (0..1000u16).map(|i| i as u8).collect();
        send(&mut s, &long);
        assert_eq!(recv(&mut s).len(), 1002, "extended-size frames pass whole");
        assert_eq!(
            events.try_iter().collect::<Vec<_>>(),
            ["on", "reset", "off"]
        );
        assert!(card.is_connected());
        drop(card.stop());
    }

    #[test]
    fn pull_closes_the_connection_and_insert_reconnects() {
        let (l, card, mut s, _events) = connected_echo();
        assert!(card.wait_connected(Duration::from_secs(5)));
        card.pull();
        let mut buf = [0u8; 1];
        assert_eq!(
            s.read(&mut buf).unwrap(),
            0,
            "the reader sees the card leave"
        );
        assert!(!card.is_connected());
        card.insert();
        let mut s = accept(&l);
        send(&mut s, &[4]);
        assert_eq!(recv(&mut s).len(), 4);
        assert_eq!(card.connections(), 2);
        drop(card.stop());
    }

    #[test]
    fn a_card_that_leaves_closes_the_connection_and_stays_out() {
        let (l, card, mut s, _events) = connected_echo();
        send(&mut s, &[0x00, 0xEE, 0x00, 0x00]);
        let mut buf = [0u8; 1];
        assert_eq!(s.read(&mut buf).unwrap(), 0);
        // Out until put back: no new connection attempt.
        l.set_nonblocking(true).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(l.accept().is_err());
        assert_eq!(card.connections(), 1);
        drop(card.stop());
    }

    #[test]
    fn waits_for_a_reader_that_is_not_listening_yet_then_gives_up_with_a_reason() {
        // Reserve a port, close it, and open it again later.
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let (tx, _events) = mpsc::channel();
        let options = ServeOptions {
            connect_timeout: Duration::from_secs(5),
            retry_interval: Duration::from_millis(10),
        };
        let card = serve_with(addr, Echo { events: tx }, options).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let l = TcpListener::bind(addr).unwrap();
        let _s = accept(&l);
        assert!(card.wait_connected(Duration::from_secs(5)));
        drop(card.stop());

        let (tx, _events) = mpsc::channel();
        let nobody = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let options = ServeOptions {
            connect_timeout: Duration::from_millis(200),
            retry_interval: Duration::from_millis(10),
        };
        let card = serve_with(nobody, Echo { events: tx }, options).unwrap();
        let t = Instant::now();
        while card.last_error().is_none() && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let reason = card.last_error().expect("gave up within the bound");
        assert!(reason.contains("is pcscd running"), "{reason}");
        assert!(!card.is_connected());
        drop(card.stop());
    }
}
