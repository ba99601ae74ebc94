//! Running a loaded batch on readers: one worker thread per reader, all
//! sharing one station (and so one journal). A simulated reader gets a fresh
//! blank card for each application; a PC/SC reader waits for a card, serves
//! it, and waits for it to be taken out before the next.

use crate::error::{CliError, Kind};
use crate::progress::Progress;
use crate::reader::Source;
use crate::simkeys::sim_config;
use kart_apdu::Transport;
use kart_pcsc::{ConnectOptions, EventWatch, Pcsc, ReaderEvent, Share};
use kart_perso::issuer::Issuer;
use kart_perso::journal::{Journal, JournalLocation, JournalOptions};
use kart_perso::record::TrackingCode;
use kart_perso::station::{Served, Station, StationError};
use kart_sim::LatencyMode;
use kart_spec::{Profile, Spec};
use serde_json::json;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A check run on each card right after it is issued (the demo's full
/// verification): `Ok(None)` when it passed, `Ok(Some(why))` when not.
pub type AfterIssue<'a> = &'a (dyn Fn(&TrackingCode, &[u8], &mut dyn Transport) -> Result<Option<String>, CliError>
         + Sync);

/// What the workers share and need.
pub struct Run<'a> {
    /// The station, shared by every worker.
    pub station: &'a Station,
    /// The station's journal, read to know when the queue is empty.
    pub journal: &'a JournalLocation,
    /// The issuer, whose master keys key simulated cards.
    pub issuer: &'a Issuer,
    /// The spec, to match ATRs to profiles.
    pub spec: &'a Spec,
    /// The progress bars.
    pub progress: &'a Progress,
    /// How long a PC/SC reader waits for the next card.
    pub card_timeout: Duration,
    /// Run on each issued simulated card.
    pub after_issue: Option<AfterIssue<'a>>,
}

/// What happened to one application on one card.
#[derive(Debug, Clone)]
pub struct CardResult {
    /// The application.
    pub tracking: String,
    /// The reader it was served in.
    pub reader: String,
    /// `issued`, `failed`, `spoiled`, `pulled`, or `card refused` (no
    /// application touched; the tracking code is then empty).
    pub result: &'static str,
    /// CSN and CRN when issued, the reason otherwise.
    pub detail: String,
    /// Whether it counts as a success.
    pub ok: bool,
    /// Card time the vendor's latency model gives for a simulated card.
    pub modelled: Option<Duration>,
}

/// Everything the workers did.
#[derive(Debug, Default)]
pub struct Tally {
    /// The station's name in the journal.
    pub station: String,
    /// One entry per card served.
    pub results: Vec<CardResult>,
    /// Workers that stopped on an error, with it.
    pub errors: Vec<(String, CliError)>,
}

impl Tally {
    /// Whether every served application succeeded and no worker failed.
    pub fn all_ok(&self) -> bool {
        self.errors.is_empty() && self.results.iter().all(|r| r.ok)
    }

    /// The results as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "station": self.station,
            "results": self.results.iter().map(|r| json!({
                "tracking_code": r.tracking, "reader": r.reader, "result": r.result, "detail": r.detail,
                "modelled_card_ms": r.modelled.map(|d| d.as_millis()),
            })).collect::<Vec<_>>(),
            "reader_errors": self.errors.iter().map(|(reader, e)| json!({
                "reader": reader, "error": e.to_json(),
            })).collect::<Vec<_>>(),
        })
    }
}

/// Runs the station on every source until the queue is empty (or a reader
/// fails); returns what happened.
pub fn run_all(run: &Run<'_>, sources: &[Source]) -> Tally {
    let tally = Mutex::new(Tally {
        station: run.station.name().to_owned(),
        ..Tally::default()
    });
    std::thread::scope(|scope| {
        for (i, source) in sources.iter().enumerate() {
            let tally = &tally;
            scope.spawn(move || {
                let name = source.name();
                let outcome = match source {
                    Source::Sim { profile, .. } => sim_worker(run, i, &name, profile, tally),
                    Source::Pcsc(_) => pcsc_worker(run, i, &name, tally),
                };
                match outcome {
                    Ok(()) => run.progress.status(i, "done"),
                    Err(e) => {
                        run.progress.status(i, format!("stopped: {}", e.what));
                        lock(tally).errors.push((name, e));
                    }
                }
            });
        }
    });
    tally
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Records one served card; `false` when the queue was empty.
fn record(
    run: &Run<'_>,
    i: usize,
    reader: &str,
    served: Served,
    modelled: Option<Duration>,
    issued_check: impl FnOnce(&TrackingCode) -> Result<Option<String>, CliError>,
    tally: &Mutex<Tally>,
) -> Result<bool, CliError> {
    let r = match served {
        Served::QueueEmpty => return Ok(false),
        Served::Issued {
            tracking,
            csn,
            crn,
            apdus,
        } => {
            let problem = issued_check(&tracking)?;
            CardResult {
                tracking: tracking.to_string(),
                reader: reader.to_owned(),
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
            }
        }
        Served::Failed { tracking, reason } => CardResult {
            tracking: tracking.to_string(),
            reader: reader.to_owned(),
            result: "failed",
            detail: reason,
            ok: false,
            modelled,
        },
        Served::Spoiled { tracking, reason } => CardResult {
            tracking: tracking.to_string(),
            reader: reader.to_owned(),
            result: "spoiled",
            detail: reason,
            ok: false,
            modelled,
        },
        Served::Pulled { tracking, csn } => CardResult {
            tracking: tracking.to_string(),
            reader: reader.to_owned(),
            result: "pulled",
            detail: format!("card {csn} left the reader or its answer was lost; put it back and run again to resume"),
            ok: false,
            modelled,
        },
    };
    let shown = format!("{} {}", r.tracking, r.result);
    let ok = r.ok && r.result == "issued";
    lock(tally).results.push(CardResult { ok, ..r });
    run.progress.done(i, shown);
    Ok(true)
}

fn sim_worker(
    run: &Run<'_>,
    i: usize,
    name: &str,
    profile: &Profile,
    tally: &Mutex<Tally>,
) -> Result<(), CliError> {
    let mut first = true;
    loop {
        let config = sim_config(run.issuer, profile)?;
        let first_card = std::mem::take(&mut first);
        let mut sim = crate::simstore::station_card(name, profile, &config, first_card)?;
        // The model's clock costs nothing and tells what a real card would take.
        sim.set_latency(LatencyMode::Accounted);
        run.progress.status(i, "personalizing");
        let served = serve_unless_paused(run, i, || run.station.serve(name, &mut sim, profile))
            .map_err(station_error)?;
        let modelled = Some(sim.modelled_time());
        let check = |t: &TrackingCode| match run.after_issue {
            Some(f) => {
                run.progress.status(i, "verifying");
                f(t, profile.atr.bytes(), &mut sim)
            }
            None => Ok(None),
        };
        if !record(run, i, name, served, modelled, check, tally)? {
            return Ok(());
        }
    }
}

fn pcsc_worker(run: &Run<'_>, i: usize, name: &str, tally: &Mutex<Tally>) -> Result<(), CliError> {
    let pcsc = Pcsc::establish()?;
    // Another reader may take the last application while this one waits.
    let queue_empty = || pending(run.journal).is_ok_and(|n| n == 0);
    loop {
        if pending(run.journal)? == 0 {
            return Ok(());
        }
        run.progress.status(i, "insert a blank card");
        if !wait_for(&pcsc, name, true, run.card_timeout, queue_empty)? {
            return Ok(());
        }
        let mut conn = pcsc.connect(
            name,
            ConnectOptions {
                share: Share::Exclusive,
                ..ConnectOptions::default()
            },
        )?;
        let atr = conn.atr().to_vec();
        // A card the station cannot use is set aside; the station goes on.
        let served = match run.spec.profile_for_atr(&atr) {
            None => Err(format!(
                "the card (ATR {}) matches no vendor profile; use a card of a supported vendor",
                hex::encode_upper(&atr)
            )),
            Some(profile) => {
                run.progress
                    .status(i, format!("personalizing ({})", profile.id));
                // Each command waits what the vendor's model allows it.
                let model = profile.latency;
                conn.set_deadlines(Box::new(move |apdu: &[u8]| model.deadline(apdu)));
                match serve_unless_paused(run, i, || run.station.serve(name, &mut conn, profile)) {
                    Ok(served) => Ok(served),
                    Err(e @ (StationError::Probe(_) | StationError::CardLocked { .. })) => {
                        Err(e.to_string())
                    }
                    Err(e) => return Err(station_error(e)),
                }
            }
        };
        // A card that let a deadline pass wedges its reader inside pcscd:
        // every later command there would wait too. The reader is left out
        // for the rest of the run; the others go on.
        let wedged = conn.is_abandoned();
        drop(conn);
        if wedged {
            if let Ok(served) = served {
                record(run, i, name, served, None, |_| Ok(None), tally)?;
            }
            return Err(CliError::with_hint(
                Kind::Reader,
                format!(
                    "reader '{name}' is wedged: its card did not answer within the vendor model's deadline; the reader is left out for the rest of the run"
                ),
                "re-insert the card (or restart pcscd), then run again: its application resumes",
            ));
        }
        match served {
            Ok(served) => {
                if !record(run, i, name, served, None, |_| Ok(None), tally)? {
                    return Ok(());
                }
            }
            Err(reason) => {
                lock(tally).results.push(CardResult {
                    tracking: String::new(),
                    reader: name.to_owned(),
                    result: "card refused",
                    detail: reason,
                    ok: false,
                    modelled: None,
                });
            }
        }
        if pending(run.journal)? == 0 {
            return Ok(());
        }
        run.progress.status(i, "take the card out");
        wait_for(&pcsc, name, false, run.card_timeout, queue_empty)?;
    }
}

/// Applications still queued or in progress.
fn pending(journal: &JournalLocation) -> Result<u64, CliError> {
    let j = Journal::open_location(
        journal,
        &JournalOptions {
            read_only: true,
            ..JournalOptions::default()
        },
    )?;
    let r = j.report()?;
    Ok(r.pending + r.in_progress)
}

/// Waits until `reader` holds a card (`present`) or is empty: `true`; or
/// until `give_up()` says so: `false`.
fn wait_for(
    pcsc: &Pcsc,
    reader: &str,
    present: bool,
    timeout: Duration,
    give_up: impl Fn() -> bool,
) -> Result<bool, CliError> {
    let deadline = Instant::now() + timeout;
    let mut watch = EventWatch::reader(reader);
    let mut has_card = false;
    loop {
        for e in pcsc.wait_events(&mut watch, Some(Duration::from_millis(500)))? {
            match e {
                ReaderEvent::CardInserted { .. } => has_card = true,
                ReaderEvent::CardRemoved { .. } => has_card = false,
                _ => {}
            }
        }
        if has_card == present {
            return Ok(true);
        }
        if give_up() {
            return Ok(false);
        }
        if Instant::now() >= deadline {
            let what = if present {
                "no card was inserted"
            } else {
                "the card was not taken out"
            };
            return Err(CliError::with_hint(
                Kind::Card,
                format!("{what} in '{reader}' within {}s", timeout.as_secs()),
                "run the command again when the cards are ready (the journal resumes the batch)",
            ));
        }
    }
}

/// Serves a card; while the issuer's keys are unavailable (its token is out)
/// the reader pauses, trying again each second, for at most the card
/// timeout: no card is touched and no application claimed meanwhile.
fn serve_unless_paused(
    run: &Run<'_>,
    i: usize,
    mut serve: impl FnMut() -> Result<Served, StationError>,
) -> Result<Served, StationError> {
    let paused = Instant::now();
    loop {
        match serve() {
            Err(StationError::IssuerUnavailable(_)) if paused.elapsed() < run.card_timeout => {
                run.progress.status(
                    i,
                    "paused: the issuer's token is unavailable — reconnect it",
                );
                std::thread::sleep(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

fn station_error(e: StationError) -> CliError {
    use StationError as S;
    if matches!(e, S::IssuerUnavailable(_)) {
        return CliError::with_hint(
            Kind::Issuer,
            e.to_string(),
            "reconnect the issuer's token (pkcs11-tool -L lists tokens), then run again: cards in progress resume",
        );
    }
    let kind = match &e {
        S::Journal(_) => Kind::Journal,
        S::Probe(_) | S::CardLocked { .. } => Kind::Card,
        S::Batch(_) | S::RecordMissing(_) => Kind::Input,
        _ => Kind::Io,
    };
    CliError::new(kind, e)
}
