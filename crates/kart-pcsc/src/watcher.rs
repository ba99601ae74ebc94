//! Serves many readers at once: one thread per reader, a closure per card.

use crate::connection::{ConnectOptions, Connection};
use crate::context::Pcsc;
use crate::error::PcscError;
use crate::events::{Canceller, EventWatch, ReaderEvent};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A card that arrived in a watched reader, connected (or why not).
#[derive(Debug)]
pub struct CardArrival {
    /// The reader.
    pub reader: String,
    /// The card's ATR as the reader reported it.
    pub atr: Vec<u8>,
    /// The connection to the card, ready to use as a `Transport`.
    pub connection: Result<Connection, PcscError>,
}

/// How a [`Watcher`] connects to cards.
#[derive(Debug, Clone, Default)]
pub struct WatcherOptions {
    /// How to connect to each card.
    pub connect: ConnectOptions,
    /// Serve only these readers (all when empty).
    pub readers: Vec<String>,
}

/// Pause before retrying after pcscd went away or a wait failed.
const RETRY: Duration = Duration::from_millis(200);

/// Watches every reader (also readers plugged in later) on a thread per
/// reader, and calls a closure for each card inserted, on that reader's
/// thread. A card stuck in one reader holds up only that reader.
///
/// When `pcscd` restarts, the watcher connects again and carries on.
///
/// ```no_run
/// use kart_apdu::{Card, Command};
/// use kart_pcsc::{Watcher, WatcherOptions};
/// let watcher = Watcher::start(WatcherOptions::default(), |arrival| {
///     let Ok(conn) = arrival.connection else { return };
///     let mut card = Card::new(conn);
///     let _ = card.send(&Command::new(0x00, 0xA4, 0x04, 0x00));
/// })?;
/// // ... later:
/// let stuck = watcher.stop(std::time::Duration::from_secs(5));
/// assert!(stuck.is_empty());
/// # Ok::<(), kart_pcsc::PcscError>(())
/// ```
pub struct Watcher {
    shared: Arc<Shared>,
    supervisor: Option<JoinHandle<HashMap<String, JoinHandle<()>>>>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("readers", &self.readers())
            .finish()
    }
}

struct Shared {
    stop: AtomicBool,
    cancellers: Mutex<Vec<Canceller>>,
    serving: Mutex<Vec<String>>,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn register(&self, c: Canceller) {
        if self.stopping() {
            c.cancel();
        }
        self.cancellers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(c);
    }

    fn serving(&self, reader: &str, on: bool) {
        let mut list = self.serving.lock().unwrap_or_else(PoisonError::into_inner);
        list.retain(|r| r != reader);
        if on {
            list.push(reader.to_owned());
        }
    }

    /// Connects to pcscd, retrying while it is down; `None` on stop.
    fn establish(&self) -> Option<Pcsc> {
        while !self.stopping() {
            if let Ok(p) = Pcsc::establish() {
                self.register(p.canceller());
                return Some(p);
            }
            std::thread::sleep(RETRY);
        }
        None
    }

    /// After a failed wait: pauses, and when pcscd went away puts a new
    /// context in `pcsc`; `None` when stopped before one could be had.
    fn recover(&self, error: &PcscError, pcsc: &mut Pcsc) -> Option<Recovered> {
        std::thread::sleep(RETRY);
        if !error.is_service_lost() {
            return Some(Recovered::SameContext);
        }
        *pcsc = self.establish()?;
        Some(Recovered::NewContext)
    }
}

/// What [`Shared::recover`] did: a new context needs its watch started over.
enum Recovered {
    SameContext,
    NewContext,
}

impl Watcher {
    /// Starts watching; `on_card` runs on the reader's own thread for every
    /// card inserted (and for cards already present at start).
    pub fn start<F>(options: WatcherOptions, on_card: F) -> Result<Self, PcscError>
    where
        F: Fn(CardArrival) + Send + Sync + 'static,
    {
        // Fail now, clearly, if there is no pcscd at all.
        let pcsc = Pcsc::establish()?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            cancellers: Mutex::new(Vec::new()),
            serving: Mutex::new(Vec::new()),
        });
        shared.register(pcsc.canceller());
        let on_card: Arc<dyn Fn(CardArrival) + Send + Sync> = Arc::new(on_card);
        let sup_shared = Arc::clone(&shared);
        let supervisor = std::thread::Builder::new()
            .name("pcsc watcher".into())
            .spawn(move || supervise(pcsc, &sup_shared, &options, &on_card))
            .map_err(|_| PcscError::Other {
                reader: String::new(),
                during: "start the watcher thread",
                source: pcsc::Error::NoMemory,
            })?;
        Ok(Self {
            shared,
            supervisor: Some(supervisor),
        })
    }

    /// The readers being served now.
    pub fn readers(&self) -> Vec<String> {
        let mut v = self
            .shared
            .serving
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        v.sort();
        v
    }

    /// Stops watching: cancels every wait and waits up to `grace` for the
    /// reader threads (and closures still running) to finish. Returns the
    /// readers whose thread did not finish in time; those are left running
    /// detached.
    pub fn stop(mut self, grace: Duration) -> Vec<String> {
        self.halt();
        let deadline = Instant::now() + grace;
        let workers = match self.supervisor.take().map(JoinHandle::join) {
            Some(Ok(workers)) => workers,
            _ => HashMap::new(),
        };
        let mut stuck = Vec::new();
        for (reader, handle) in workers {
            while !handle.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if handle.is_finished() {
                let _ = handle.join();
            } else {
                stuck.push(reader);
            }
        }
        stuck.sort();
        stuck
    }

    fn halt(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for c in self
            .shared
            .cancellers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            c.cancel();
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if self.supervisor.is_some() {
            self.halt();
        }
    }
}

type OnCard = Arc<dyn Fn(CardArrival) + Send + Sync>;

/// Follows the reader list; starts a thread for each reader that appears.
fn supervise(
    mut pcsc: Pcsc,
    shared: &Arc<Shared>,
    options: &WatcherOptions,
    on_card: &OnCard,
) -> HashMap<String, JoinHandle<()>> {
    let mut workers: HashMap<String, JoinHandle<()>> = HashMap::new();
    let mut watch = EventWatch::reader_list();
    while !shared.stopping() {
        match pcsc.wait_events(&mut watch, None) {
            Ok(events) => {
                for event in events {
                    let ReaderEvent::ReaderAdded(reader) = event else {
                        continue;
                    };
                    let wanted = options.readers.is_empty() || options.readers.contains(&reader);
                    let running = workers.get(&reader).is_some_and(|h| !h.is_finished());
                    if wanted && !running {
                        let (s, o, f, r) = (
                            Arc::clone(shared),
                            options.connect,
                            Arc::clone(on_card),
                            reader.clone(),
                        );
                        let spawned = std::thread::Builder::new()
                            .name(format!("reader {reader}"))
                            .spawn(move || serve_reader(&r, &s, o, &f));
                        if let Ok(handle) = spawned {
                            workers.insert(reader, handle);
                        }
                    }
                }
            }
            Err(PcscError::Cancelled) => break,
            Err(e) => match shared.recover(&e, &mut pcsc) {
                Some(Recovered::NewContext) => watch = EventWatch::reader_list(),
                Some(Recovered::SameContext) => {}
                None => break,
            },
        }
    }
    workers
}

/// One reader's loop: wait for a card, connect, hand it to the closure.
fn serve_reader(reader: &str, shared: &Shared, connect: ConnectOptions, on_card: &OnCard) {
    let Some(mut pcsc) = shared.establish() else {
        return;
    };
    shared.serving(reader, true);
    let mut watch = EventWatch::reader(reader);
    while !shared.stopping() {
        match pcsc.wait_events(&mut watch, None) {
            Ok(events) => {
                for event in events {
                    match event {
                        ReaderEvent::CardInserted { reader, atr } => {
                            let connection = pcsc.connect(&reader, connect);
                            let arrival = CardArrival {
                                reader,
                                atr,
                                connection,
                            };
                            // A panic in one card's handling must not end the reader's service.
                            let _ = catch_unwind(AssertUnwindSafe(|| on_card(arrival)));
                        }
                        ReaderEvent::ReaderRemoved(_) => {
                            shared.serving(reader, false);
                            return;
                        }
                        ReaderEvent::ReaderAdded(_) | ReaderEvent::CardRemoved { .. } => {}
                    }
                }
            }
            Err(
                PcscError::Cancelled | PcscError::ReaderRemoved(_) | PcscError::UnknownReader(_),
            ) => break,
            Err(e) => match shared.recover(&e, &mut pcsc) {
                Some(Recovered::NewContext) => watch = EventWatch::reader(reader),
                Some(Recovered::SameContext) => {}
                None => break,
            },
        }
    }
    shared.serving(reader, false);
}
