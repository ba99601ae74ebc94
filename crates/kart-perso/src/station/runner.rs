//! The multi-reader loop: one worker thread per reader, all sharing one
//! [`Station`] (and so one journal), until the queue is empty.
//!
//! Where cards come from is the caller's: a [`CardSource`] yields the next
//! card of one reader (a fresh simulated card, or a card inserted in a
//! PC/SC reader) and says when its reader must stop (a wedged reader). The
//! loop serves each card, pauses while the issuer's token is away, records
//! what happened, and reports progress to an [`Observer`]. A reader that
//! stops, or waits, never stops the others.
//!
//! ```no_run
//! # fn run(station: &kart_perso::station::Station, sources: Vec<impl kart_perso::station::runner::CardSource<Error = kart_perso::station::StationError>>) {
//! use kart_perso::station::runner::{run_all, NoObserver, RunOptions};
//! let tally = run_all(station, sources, &NoObserver, &RunOptions::default());
//! println!("{} cards, all ok: {}", tally.results.len(), tally.all_ok());
//! # }
//! ```

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use kart_apdu::Transport;
use kart_spec::Profile;

use super::{Served, Station, StationError};
use crate::record::TrackingCode;

/// Sees what each reader does: the CLI draws progress bars with it.
pub trait Observer: Sync {
    /// Reader `reader` is now doing `status` ("personalizing", "insert a
    /// blank card", "done", "stopped: …").
    fn status(&self, reader: usize, status: &str);
    /// Reader `reader` finished one card; `summary` is "<tracking> <result>".
    fn done(&self, reader: usize, summary: &str);
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl Observer for NoObserver {
    fn status(&self, _: usize, _: &str) {}
    fn done(&self, _: usize, _: &str) {}
}

/// A card in a reader, ready to be served.
#[derive(Debug)]
pub struct Inserted<C> {
    /// The card.
    pub card: C,
    /// The card's vendor profile, or why the station cannot use the card
    /// (its ATR matches no profile): the card is then set aside.
    pub profile: Result<Profile, String>,
}

/// What one reader's worker sees of the run: the station, its progress line.
#[derive(Clone, Copy)]
pub struct ReaderContext<'a> {
    station: &'a Station,
    observer: &'a dyn Observer,
    index: usize,
}

impl std::fmt::Debug for ReaderContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReaderContext")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl<'a> ReaderContext<'a> {
    /// The station.
    #[must_use]
    pub fn station(&self) -> &'a Station {
        self.station
    }

    /// Shows what this reader is doing now.
    pub fn status(&self, status: &str) {
        self.observer.status(self.index, status);
    }

    /// Applications still queued or in progress.
    ///
    /// # Errors
    /// When the journal cannot be read.
    pub fn pending(&self) -> Result<u64, StationError> {
        let r = self.station.report()?;
        Ok(r.pending + r.in_progress)
    }

    /// Whether the queue is empty now (another reader may take the last
    /// application while this one waits for a card); `false` when unknown.
    #[must_use]
    pub fn queue_empty(&self) -> bool {
        self.pending().is_ok_and(|n| n == 0)
    }
}

/// The cards of one reader. [`run_all`] runs each source on its own thread.
pub trait CardSource: Send {
    /// A card of this reader.
    type Card: Transport;
    /// Why the reader stopped; station errors convert into it.
    type Error: From<StationError> + std::fmt::Display + Send;

    /// The reader's display name (also its name in the journal).
    fn name(&self) -> String;

    /// Waits for the next card; `Ok(None)` when there is no more work
    /// (the queue emptied while waiting).
    ///
    /// # Errors
    /// When the reader cannot give a card: it stops, the others go on.
    fn next_card(
        &mut self,
        ctx: &ReaderContext<'_>,
    ) -> Result<Option<Inserted<Self::Card>>, Self::Error>;

    /// Whether a card the station cannot use (unreadable, or LOCKED and
    /// awaited by no application) is set aside and the reader goes on
    /// (`true`, physical cards), or stops the reader (`false`).
    fn sets_aside_unusable_cards(&self) -> bool {
        false
    }

    /// Checks a card right after it was issued: `Ok(None)` when it
    /// passed, `Ok(Some(why))` when not. By default no check.
    ///
    /// # Errors
    /// When the check itself cannot run: the reader stops.
    fn check_issued(
        &mut self,
        _tracking: &TrackingCode,
        _profile: &Profile,
        _card: &mut Self::Card,
        _ctx: &ReaderContext<'_>,
    ) -> Result<Option<String>, Self::Error> {
        Ok(None)
    }

    /// Card time a latency model gives for the card, if it has one.
    fn modelled_time(&self, _card: &Self::Card) -> Option<Duration> {
        None
    }

    /// Lets go of a served card. An error (a wedged reader) stops this
    /// reader after what happened to the card is recorded.
    ///
    /// # Errors
    /// When the reader must not be used again in this run.
    fn release(&mut self, card: Self::Card) -> Result<(), Self::Error> {
        drop(card);
        Ok(())
    }

    /// What the reader's progress line shows when `error` stopped it.
    fn stopped_status(&self, error: &Self::Error) -> String {
        error.to_string()
    }

    /// Waits until the reader is ready for the next card (the card taken
    /// out); `Ok(false)` when there is no more work.
    ///
    /// # Errors
    /// When the reader cannot be used any more.
    fn ready_for_next(&mut self, _ctx: &ReaderContext<'_>) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// How the loop behaves.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// How long a reader pauses, trying again each second, while the
    /// issuer's keys are unavailable.
    pub pause_limit: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            pause_limit: Duration::from_secs(60),
        }
    }
}

/// What happened to one application on one card.
#[derive(Debug, Clone)]
pub struct CardResult {
    /// The application.
    pub tracking: String,
    /// The reader it was served in.
    pub reader: String,
    /// `issued`, `issued, verify failed`, `failed`, `spoiled`, `pulled`, or
    /// `card refused` (no application touched; the tracking code is then empty).
    pub result: &'static str,
    /// CSN and CRN when issued, the reason otherwise.
    pub detail: String,
    /// Whether it counts as a success.
    pub ok: bool,
    /// Card time the vendor's latency model gives for a simulated card.
    pub modelled: Option<Duration>,
}

/// Everything the workers did.
#[derive(Debug)]
pub struct Tally<E> {
    /// The station's name in the journal.
    pub station: String,
    /// One entry per card served.
    pub results: Vec<CardResult>,
    /// Readers that stopped on an error, with it.
    pub errors: Vec<(String, E)>,
}

impl<E> Tally<E> {
    /// Whether every served application succeeded and no reader failed.
    #[must_use]
    pub fn all_ok(&self) -> bool {
        self.errors.is_empty() && self.results.iter().all(|r| r.ok)
    }
}

/// Runs the station on every source, one thread each, until the queue is
/// empty or the reader stops; returns what happened.
pub fn run_all<S: CardSource>(
    station: &Station,
    sources: Vec<S>,
    observer: &dyn Observer,
    options: &RunOptions,
) -> Tally<S::Error> {
    let tally = Mutex::new(Tally {
        station: station.name().to_owned(),
        results: Vec::new(),
        errors: Vec::new(),
    });
    std::thread::scope(|scope| {
        for (index, mut source) in sources.into_iter().enumerate() {
            let tally = &tally;
            let ctx = ReaderContext {
                station,
                observer,
                index,
            };
            scope.spawn(move || {
                let name = source.name();
                match work(&mut source, &name, &ctx, options, tally) {
                    Ok(()) => ctx.status("done"),
                    Err(e) => {
                        ctx.status(&format!("stopped: {}", source.stopped_status(&e)));
                        lock(tally).errors.push((name, e));
                    }
                }
            });
        }
    });
    tally.into_inner().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One reader's loop.
fn work<S: CardSource>(
    source: &mut S,
    name: &str,
    ctx: &ReaderContext<'_>,
    options: &RunOptions,
    tally: &Mutex<Tally<S::Error>>,
) -> Result<(), S::Error> {
    loop {
        let Some(Inserted { mut card, profile }) = source.next_card(ctx)? else {
            return Ok(());
        };
        let mut modelled = None;
        let served = match profile {
            Err(reason) => Err(reason),
            Ok(profile) => {
                let served = serve_unless_paused(ctx, options, || {
                    ctx.station.serve(name, &mut card, &profile)
                });
                // The card's time for personalizing, before any check adds to it.
                modelled = source.modelled_time(&card);
                match served {
                    Ok(served) => {
                        let problem = match &served {
                            Served::Issued { tracking, .. } => {
                                source.check_issued(tracking, &profile, &mut card, ctx)?
                            }
                            _ => None,
                        };
                        Ok((served, problem))
                    }
                    Err(e @ (StationError::Probe(_) | StationError::CardLocked { .. }))
                        if source.sets_aside_unusable_cards() =>
                    {
                        Err(e.to_string())
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        if let Err(e) = source.release(card) {
            if let Ok((served, problem)) = served {
                record(ctx, name, served, problem, modelled, tally);
            }
            return Err(e);
        }
        match served {
            Ok((served, problem)) => {
                if !record(ctx, name, served, problem, modelled, tally) {
                    return Ok(());
                }
            }
            Err(reason) => lock(tally).results.push(CardResult {
                tracking: String::new(),
                reader: name.to_owned(),
                result: "card refused",
                detail: reason,
                ok: false,
                modelled: None,
            }),
        }
        if !source.ready_for_next(ctx)? {
            return Ok(());
        }
    }
}

/// Serves a card; while the issuer's keys are unavailable (its token is out)
/// the reader pauses, trying again each second, for at most the pause
/// limit: no card is touched and no application claimed meanwhile.
fn serve_unless_paused(
    ctx: &ReaderContext<'_>,
    options: &RunOptions,
    mut serve: impl FnMut() -> Result<Served, StationError>,
) -> Result<Served, StationError> {
    let paused = Instant::now();
    loop {
        match serve() {
            Err(StationError::IssuerUnavailable(_)) if paused.elapsed() < options.pause_limit => {
                ctx.status("paused: the issuer's token is unavailable — reconnect it");
                std::thread::sleep(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

/// Records one served card; `false` when the queue was empty.
fn record<E>(
    ctx: &ReaderContext<'_>,
    reader: &str,
    served: Served,
    problem: Option<String>,
    modelled: Option<Duration>,
    tally: &Mutex<Tally<E>>,
) -> bool {
    let reader = reader.to_owned();
    let r = match served {
        Served::QueueEmpty => return false,
        Served::Issued {
            tracking,
            csn,
            crn,
            apdus,
        } => CardResult {
            tracking: tracking.to_string(),
            reader,
            result: if problem.is_some() {
                "issued, verify failed"
            } else {
                "issued"
            },
            detail: problem.unwrap_or_else(|| {
                let model = modelled.map_or_else(String::new, |d| {
                    format!(
                        ", {:.1} s of card time (vendor latency model)",
                        d.as_secs_f64()
                    )
                });
                format!("CSN {csn}, CRN {crn}, {apdus} APDUs{model}")
            }),
            ok: true,
            modelled,
        },
        Served::Failed { tracking, reason } => CardResult {
            tracking: tracking.to_string(),
            reader,
            result: "failed",
            detail: reason,
            ok: false,
            modelled,
        },
        Served::Spoiled { tracking, reason } => CardResult {
            tracking: tracking.to_string(),
            reader,
            result: "spoiled",
            detail: reason,
            ok: false,
            modelled,
        },
        Served::Pulled { tracking, csn } => CardResult {
            tracking: tracking.to_string(),
            reader,
            result: "pulled",
            detail: format!(
                "card {csn} left the reader or its answer was lost; put it back and run again to resume"
            ),
            ok: false,
            modelled,
        },
    };
    let shown = format!("{} {}", r.tracking, r.result);
    let ok = r.ok && r.result == "issued";
    lock(tally).results.push(CardResult { ok, ..r });
    ctx.observer.done(ctx.index, &shown);
    true
}
