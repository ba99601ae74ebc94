//! Reader and card events (`SCardGetStatusChange`), with timeouts and
//! cancellation from another thread.

use crate::context::Pcsc;
use crate::error::PcscError;
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Longest single `SCardGetStatusChange`: a cancel that races with the start
/// of a wait (and so is lost by pcscd) is still seen this soon.
const WAIT_SLICE: Duration = Duration::from_millis(500);

/// Something that happened to a reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderEvent {
    /// A reader was plugged in (or was there when watching started).
    ReaderAdded(String),
    /// A reader was unplugged.
    ReaderRemoved(String),
    /// A card was put in (or was there when watching started).
    CardInserted {
        /// The reader.
        reader: String,
        /// The card's ATR.
        atr: Vec<u8>,
    },
    /// The card was taken out.
    CardRemoved {
        /// The reader.
        reader: String,
    },
}

/// Interrupts a [`Pcsc::wait_events`] in progress, from any thread.
///
/// Once cancelled, every later wait on the same [`Pcsc`] also returns
/// [`PcscError::Cancelled`].
#[derive(Clone)]
pub struct Canceller {
    shared: Arc<CancelState>,
}

impl std::fmt::Debug for Canceller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Canceller")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

pub(crate) struct CancelState {
    flag: AtomicBool,
    ctx: Mutex<Option<pcsc::Context>>,
}

impl Canceller {
    pub(crate) fn new(ctx: pcsc::Context) -> Self {
        Self {
            shared: Arc::new(CancelState {
                flag: AtomicBool::new(false),
                ctx: Mutex::new(Some(ctx)),
            }),
        }
    }

    pub(crate) fn replace_context(&self, ctx: pcsc::Context) {
        *self
            .shared
            .ctx
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(ctx);
    }

    /// Cancels the current and all later waits.
    pub fn cancel(&self) {
        self.shared.flag.store(true, Ordering::SeqCst);
        if let Some(ctx) = self
            .shared
            .ctx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            let _ = ctx.cancel();
        }
    }

    /// Whether [`Canceller::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.shared.flag.load(Ordering::SeqCst)
    }
}

/// Which readers a [`Pcsc::wait_events`] loop watches, and what it has seen.
pub struct EventWatch {
    /// Watch readers plugged in later too (`PnP` notification).
    all: bool,
    /// Report card events (not only readers).
    cards: bool,
    listed: bool,
    /// For a single-reader watch: its name, to report its removal.
    single: Option<String>,
    states: Vec<pcsc::ReaderState>,
    seen: Vec<Seen>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    present: bool,
    count: u32,
}

impl EventWatch {
    /// Every reader, including readers plugged in later. The first wait
    /// reports the readers and cards already there.
    pub fn all_readers() -> Self {
        Self {
            all: true,
            cards: true,
            listed: false,
            single: None,
            states: Vec::new(),
            seen: Vec::new(),
        }
    }

    /// Readers plugged in or unplugged (the first wait reports those already
    /// there), no card events.
    pub fn reader_list() -> Self {
        Self {
            cards: false,
            ..Self::all_readers()
        }
    }

    /// One reader. The first wait reports a card already there.
    pub fn reader(name: &str) -> Self {
        let mut w = Self {
            all: false,
            cards: true,
            listed: true,
            single: Some(name.to_owned()),
            states: Vec::new(),
            seen: Vec::new(),
        };
        w.add(name);
        w
    }

    /// The readers being watched.
    pub fn readers(&self) -> Vec<String> {
        self.states
            .iter()
            .filter(|s| !is_pnp(s))
            .map(|s| s.name().to_string_lossy().into_owned())
            .collect()
    }

    fn add(&mut self, name: &str) {
        if let Ok(c) = CString::new(name) {
            self.states
                .push(pcsc::ReaderState::new(c, pcsc::State::UNAWARE));
            self.seen.push(Seen::default());
        }
    }

    fn remove(&mut self, name: &str) {
        if let Some(i) = self
            .states
            .iter()
            .position(|s| s.name().to_string_lossy() == name)
        {
            self.states.remove(i);
            self.seen.remove(i);
        }
    }

    /// Aligns the watched readers with the reader list; reports the changes.
    fn sync_readers(&mut self, names: &[String], events: &mut Vec<ReaderEvent>) {
        for gone in self.readers().into_iter().filter(|r| !names.contains(r)) {
            self.remove(&gone);
            events.push(ReaderEvent::ReaderRemoved(gone));
        }
        let known = self.readers();
        for new in names.iter().filter(|n| !known.contains(n)) {
            self.add(new);
            events.push(ReaderEvent::ReaderAdded(new.clone()));
        }
    }
}

impl std::fmt::Debug for EventWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventWatch")
            .field("readers", &self.readers())
            .field("new_readers", &self.all)
            .finish_non_exhaustive()
    }
}

fn is_pnp(s: &pcsc::ReaderState) -> bool {
    s.name() == pcsc::PNP_NOTIFICATION()
}

impl Pcsc {
    /// Waits up to `timeout` (`None`: until something happens or the wait is
    /// cancelled) for reader or card events; returns them, or an empty list
    /// on timeout.
    ///
    /// ```no_run
    /// use kart_pcsc::{EventWatch, Pcsc, ReaderEvent};
    /// use std::time::Duration;
    /// let pcsc = Pcsc::establish()?;
    /// let mut watch = EventWatch::all_readers();
    /// loop {
    ///     for event in pcsc.wait_events(&mut watch, Some(Duration::from_secs(1)))? {
    ///         if let ReaderEvent::CardInserted { reader, atr } = event {
    ///             println!("card {atr:02X?} in {reader}");
    ///         }
    ///     }
    /// }
    /// # Ok::<(), kart_pcsc::PcscError>(())
    /// ```
    pub fn wait_events(
        &self,
        watch: &mut EventWatch,
        timeout: Option<Duration>,
    ) -> Result<Vec<ReaderEvent>, PcscError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut events = Vec::new();
        if !watch.listed {
            watch.listed = true;
            watch.states.insert(
                0,
                pcsc::ReaderState::new(pcsc::PNP_NOTIFICATION(), pcsc::State::UNAWARE),
            );
            watch.seen.insert(0, Seen::default());
            watch.sync_readers(&self.reader_names()?, &mut events);
        }
        loop {
            if self.canceller.is_cancelled() {
                return Err(PcscError::Cancelled);
            }
            if !events.is_empty() {
                return Ok(events);
            }
            if watch.states.is_empty() {
                let name = watch.single.clone().unwrap_or_default();
                return Err(PcscError::ReaderRemoved(name));
            }
            let left = deadline.map_or(WAIT_SLICE, |d| d.saturating_duration_since(Instant::now()));
            match self
                .ctx
                .get_status_change(left.min(WAIT_SLICE), &mut watch.states)
            {
                Ok(()) => self.collect(watch, &mut events)?,
                Err(pcsc::Error::Timeout) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Ok(events);
                    }
                }
                Err(pcsc::Error::Cancelled) => {}
                Err(pcsc::Error::UnknownReader) => {
                    // A watched reader vanished between two calls.
                    let names = self.reader_names()?;
                    watch.sync_readers(&names, &mut events);
                    if !watch.all {
                        events.retain(|e| matches!(e, ReaderEvent::ReaderRemoved(_)));
                    }
                }
                Err(e) => {
                    return Err(PcscError::from_pcsc(
                        e,
                        watch.single.as_deref().unwrap_or(""),
                        "wait for reader events",
                    ))
                }
            }
        }
    }

    fn collect(
        &self,
        watch: &mut EventWatch,
        events: &mut Vec<ReaderEvent>,
    ) -> Result<(), PcscError> {
        let mut list_changed = false;
        let mut gone = Vec::new();
        for (state, seen) in watch.states.iter_mut().zip(watch.seen.iter_mut()) {
            let now = state.event_state();
            if !now.contains(pcsc::State::CHANGED) {
                continue;
            }
            state.sync_current_state();
            if is_pnp(state) {
                list_changed = true;
                continue;
            }
            let reader = state.name().to_string_lossy().into_owned();
            if now.intersects(pcsc::State::UNKNOWN | pcsc::State::UNAVAILABLE | pcsc::State::IGNORE)
            {
                gone.push(reader);
                continue;
            }
            let present = now.contains(pcsc::State::PRESENT);
            let count = state.event_count();
            if !watch.cards {
                *seen = Seen { present, count };
                continue;
            }
            // Same presence but a new event count: a card left and another came.
            let swapped = seen.present && present && count != seen.count;
            if seen.present && (!present || swapped) {
                events.push(ReaderEvent::CardRemoved {
                    reader: reader.clone(),
                });
            }
            if present && (!seen.present || swapped) {
                events.push(ReaderEvent::CardInserted {
                    reader,
                    atr: state.atr().to_vec(),
                });
            }
            *seen = Seen { present, count };
        }
        for r in gone {
            watch.remove(&r);
            events.push(ReaderEvent::ReaderRemoved(r));
        }
        if list_changed && watch.all {
            watch.sync_readers(&self.reader_names()?, events);
        }
        Ok(())
    }
}
