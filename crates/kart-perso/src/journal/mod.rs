//! The station's journal: a database that records every state transition of
//! every application, durably, before and after the card is touched, so that
//! a crash or a pulled card never loses or double-issues an application.
//!
//! [`Journal`] is what stations use; under it a [`JournalStore`] keeps the
//! data: an `SQLite` file per station (the embedded default, [`Journal::open`])
//! or, for a floor of stations, one shared `PostgreSQL` database
//! ([`Journal::open_location`] with a `postgres://` URL). Both take their
//! rules from [`State::can_go`].
//!
//! ```
//! use kart_perso::journal::{Journal, State, Step};
//! use kart_perso::record::TrackingCode;
//! # let dir = tempfile::tempdir()?;
//! let journal = Journal::open(dir.path().join("journal.db"))?;
//! let code = TrackingCode::parse("140409040007").unwrap();
//! journal.enqueue_batch("batch-1404-09-04.csv", [&code])?;
//! let claim = journal.claim_next("station-1", "reader-0")?.expect("one queued");
//! journal.mark_writing(&claim.tracking, "4790503300001234", "pardis-t1")?;
//! journal.mark_step(&claim.tracking, &Step::new("write EF.ID", std::time::Duration::from_millis(120), 4, 900, 8))?;
//! journal.mark_written(&claim.tracking)?;
//! journal.mark_verified(&claim.tracking)?;
//! assert_eq!(journal.status(&code)?.state, State::Verified);
//! assert!(journal.claim_next("station-1", "reader-0")?.is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod archived;
mod error;
mod location;
mod migrate;
pub(crate) mod postgres;
mod records;
mod report;
mod schema;
mod sqlite;
mod state;
mod store;
mod stranded;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::record::TrackingCode;

use sqlite::{LockedSqlite, SqliteStore};

pub use error::JournalError;
pub use location::{JournalLocation, PgUrl};
pub use migrate::{migrate, Migrated};
pub use records::{BatchRow, RowsLoaded, StoredRecord, Superseded};
pub use report::{DayCounts, Failure, Report, StationCounts, StepTiming, VendorCounts};
pub use state::State;
pub use store::JournalStore;
pub use stranded::Stranded;

/// The schema version this program writes (older journals are migrated on open).
pub const SCHEMA_VERSION: i64 = schema::VERSION;

/// Longest free text (reasons, names, serials) stored, in bytes.
const MAX_TEXT: usize = 1024;

/// How to open a journal.
#[derive(Clone, Debug)]
pub struct JournalOptions {
    /// How long a call waits for another connection's write lock.
    pub busy_timeout: Duration,
    /// Cap on the database size (rounded down to whole pages); past it,
    /// writes fail with [`JournalError::DiskFull`].
    pub max_size_bytes: Option<u64>,
    /// Open for reports only; every change fails with [`JournalError::ReadOnly`].
    pub read_only: bool,
    /// How long a claim made through this journal stays its own without
    /// being renewed ([`Journal::renew_leases`]); after that another station
    /// may take it back ([`Journal::reclaim_expired`]). A claim lives from
    /// the claim to the first card command, milliseconds, so the default
    /// leaves a wide margin for a slow disk or a busy journal.
    pub lease: Duration,
    /// Most connections a `PostgreSQL` journal keeps open at once (the
    /// `SQLite` store has one). Each call checks one out for its
    /// transaction, so this many calls of one station run at once; a call
    /// that finds all of them busy waits for one, at most
    /// [`JournalOptions::busy_timeout`]. See [`DEFAULT_POOL_SIZE`].
    pub pool_size: u32,
}

/// The default [`JournalOptions::pool_size`]: a journal call lasts
/// milliseconds against the seconds a card takes, so even the 16 readers of
/// a busy station seldom have more than one or two calls in flight; 4 lets
/// those run side by side, and a call stuck on a locked row (or a slow
/// server) leaves 3 for the other readers. With the shared CRN register's
/// 2, a station holds at most 6 sessions (measured: 6 at the peak of a
/// 16-reader station), so the server's default `max_connections` of 100
/// serves 16 stations; a bigger floor raises it or puts a pooler in front.
pub const DEFAULT_POOL_SIZE: u32 = 4;

impl Default for JournalOptions {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(5),
            max_size_bytes: None,
            read_only: false,
            lease: Duration::from_secs(60),
            pool_size: DEFAULT_POOL_SIZE,
        }
    }
}

/// What [`Journal::enqueue_batch`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnqueueReport {
    /// Applications newly queued.
    pub added: usize,
    /// Already in the journal from this same batch (a re-run): left as they are.
    pub already_present: usize,
    /// Already in the journal from another batch: left as they are, listed
    /// so the operator can check the batch files.
    pub in_other_batch: Vec<TrackingCode>,
}

/// An application claimed for one reader of one station.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The application.
    pub tracking: TrackingCode,
    /// The batch it came from.
    pub batch: String,
    /// 1 for the first attempt, then 2, 3… after requeues.
    pub attempt: u32,
    /// The station that claimed it.
    pub station: String,
    /// The reader it is for.
    pub reader: String,
}

/// Measurements of one personalization step (for reports and benchmarks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// What the step did, e.g. `"write EF.ID"`.
    pub name: String,
    /// Wall time of the step.
    pub duration: Duration,
    /// APDUs exchanged.
    pub apdus: u32,
    /// Bytes sent to the card.
    pub bytes_sent: u64,
    /// Bytes received from the card.
    pub bytes_received: u64,
}

impl Step {
    /// A step record.
    pub fn new(
        name: impl Into<String>,
        duration: Duration,
        apdus: u32,
        bytes_sent: u64,
        bytes_received: u64,
    ) -> Self {
        Self {
            name: name.into(),
            duration,
            apdus,
            bytes_sent,
            bytes_received,
        }
    }
}

/// Where one application stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The application.
    pub tracking: TrackingCode,
    /// The batch it came from.
    pub batch: String,
    /// Its state.
    pub state: State,
    /// The card it is being (or was) written to.
    pub card_serial: Option<String>,
    /// The vendor profile of that card.
    pub vendor_profile: Option<String>,
    /// The station and reader of the last claim.
    pub station: Option<String>,
    /// The reader of the last claim.
    pub reader: Option<String>,
    /// Claims so far.
    pub attempts: u32,
    /// Why it failed or was spoiled.
    pub reason: Option<String>,
    /// The last step started on its card in the current attempt (recorded
    /// before the step's first APDU): how far the card got.
    pub last_step: Option<String>,
}

/// What the engine should do with an application a crashed station left behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Claimed, card untouched: [`Journal::release`] it back to the queue.
    Requeue,
    /// Half-written: re-personalize the same card if its lifecycle still
    /// allows ([`Journal::mark_writing`] again), otherwise [`Journal::mark_spoiled`].
    RepersonalizeOrSpoil,
    /// Written: read the card back and verify ([`Journal::mark_verified`]).
    Verify,
}

/// An application left in `claimed`, `writing` or `written`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unfinished {
    /// Its status, card serial included.
    pub status: Status,
    /// The suggested next step.
    pub recovery: Recovery,
}

impl Unfinished {
    /// An unfinished application with the next step for its state (the
    /// one rule every store applies).
    pub(crate) fn of(status: Status) -> Result<Self, JournalError> {
        let recovery = match status.state {
            State::Claimed => Recovery::Requeue,
            State::Writing => Recovery::RepersonalizeOrSpoil,
            State::Written => Recovery::Verify,
            other => {
                return Err(JournalError::Corrupt(format!(
                    "application {} is {other}, not unfinished",
                    status.tracking
                )))
            }
        };
        Ok(Self { status, recovery })
    }
}

/// Whether `tracking` may take card `serial`, whose row in the cards table
/// says `holder` (its application and card status) when it has one: the
/// card rules every store applies before assigning the card.
pub(crate) fn check_card_holder(
    serial: &str,
    tracking: &TrackingCode,
    holder: Option<&(String, String)>,
) -> Result<(), JournalError> {
    match holder {
        Some((owner, status)) if status == "issued" => Err(JournalError::CardIssued {
            serial: serial.into(),
            tracking: owner.clone(),
        }),
        Some((_, status)) if status == "spoiled" => Err(JournalError::CardSpoiled {
            serial: serial.into(),
        }),
        Some((owner, status)) if status == "in_use" && owner != tracking.as_str() => {
            Err(JournalError::CardInUse {
                serial: serial.into(),
                tracking: owner.clone(),
            })
        }
        _ => Ok(()),
    }
}

/// Whether writing `status`'s application to card `serial` may start for
/// claim owner `me`: a claim is written for only by its owner (another may
/// have taken it back after the lease ran out; `owner` reads the claim's
/// owner, asked only for a claim), and a restart after a crash goes to
/// the same card. The rules every store applies before taking the card.
pub(crate) fn check_writer(
    status: &Status,
    me: &str,
    serial: &str,
    owner: impl FnOnce() -> Result<Option<String>, JournalError>,
) -> Result<(), JournalError> {
    if status.state == State::Claimed {
        let owner = owner()?;
        if owner.as_deref() != Some(me) {
            return Err(JournalError::ClaimLost {
                tracking: status.tracking.clone(),
                owner: owner.unwrap_or_else(|| "none".into()),
            });
        }
    }
    match status.card_serial.as_deref().filter(|c| *c != serial) {
        Some(current) => Err(JournalError::CardMismatch {
            tracking: status.tracking.clone(),
            expected: current.into(),
            found: serial.into(),
        }),
        None => Ok(()),
    }
}

/// Whether a step row may be written for `status`'s application: a step
/// starts (`started`) only while writing, its measurements are recorded
/// while writing or written (verification steps).
pub(crate) fn check_step(status: &Status, started: bool) -> Result<(), JournalError> {
    let (allowed, when) = if started {
        (
            status.state == State::Writing,
            "steps start only while writing",
        )
    } else {
        (
            matches!(status.state, State::Writing | State::Written),
            "steps are recorded only while writing or written",
        )
    };
    if allowed {
        return Ok(());
    }
    Err(JournalError::BadArgument(format!(
        "application {} is {}; {when}",
        status.tracking, status.state
    )))
}

/// The journal: the one door stations, reports and tools go through,
/// whichever store holds the data.
///
/// Each opened journal is one owner of claims: [`Journal::owner`] names
/// the process and the journal (host, process id, a random part), so two
/// processes of one station name never take each other's claims. One
/// journal is shared by the threads of a station (it is `Sync`, its calls
/// take `&self`): with `PostgreSQL` each call runs on a connection of its
/// own from a pool of [`JournalOptions::pool_size`].
///
/// ```
/// use kart_perso::journal::Journal;
/// use kart_perso::record::TrackingCode;
/// # let dir = tempfile::tempdir()?;
/// let journal = Journal::open(dir.path().join("journal.db"))?;
/// let codes = ["140409040007", "140409040015"].map(|c| TrackingCode::parse(c).unwrap());
/// journal.enqueue_batch("batch.csv", &codes)?;
/// let claimed = std::thread::scope(|s| {
///     let readers = ["reader-0", "reader-1"].map(|r| s.spawn(|| journal.claim_next("desk-1", r)));
///     readers.map(|h| h.join().unwrap().unwrap().is_some())
/// });
/// assert_eq!(claimed, [true, true]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Journal {
    store: Box<dyn JournalStore>,
}

impl Journal {
    /// Opens (or creates) the `SQLite` journal at `path` and migrates its schema.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, JournalError> {
        Self::open_with(path, &JournalOptions::default())
    }

    /// Opens the `SQLite` journal at `path` with explicit options.
    pub fn open_with(
        path: impl AsRef<Path>,
        options: &JournalOptions,
    ) -> Result<Self, JournalError> {
        Ok(Self::with_store(Box::new(LockedSqlite::from(
            SqliteStore::open_with(path.as_ref(), options)?,
        ))))
    }

    /// Opens the journal at `location`: an `SQLite` file as
    /// [`Journal::open_with`], or a shared `PostgreSQL` database (connected,
    /// its schema migrated on first use). With `PostgreSQL`,
    /// [`JournalOptions::busy_timeout`] also bounds how long a call retries
    /// while the server is unreachable before [`JournalError::Unavailable`].
    ///
    /// ```
    /// use kart_perso::journal::{Journal, JournalLocation, JournalOptions};
    /// # let dir = tempfile::tempdir()?;
    /// let location = JournalLocation::sqlite(dir.path().join("journal.db"));
    /// let journal = Journal::open_location(&location, &JournalOptions::default())?;
    /// assert_eq!(journal.report()?.pending, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_location(
        location: &JournalLocation,
        options: &JournalOptions,
    ) -> Result<Self, JournalError> {
        match location {
            JournalLocation::Sqlite(path) => Self::open_with(path, options),
            JournalLocation::Postgres(url) => Ok(Self::with_store(Box::new(
                postgres::PgStore::open(url, options)?,
            ))),
        }
    }

    /// A journal over any store.
    pub fn with_store(store: Box<dyn JournalStore>) -> Self {
        Self { store }
    }
}

impl Journal {
    /// Who owns the claims made through this journal:
    /// `HOST:PID:RANDOM`, unique per opened journal.
    pub fn owner(&self) -> &str {
        self.store.owner()
    }

    /// Extends the lease of every claim this journal holds; returns how
    /// many it extended. On a shared journal a claim whose row another
    /// transaction holds at that moment (a batch load, a transition) is
    /// skipped rather than waited for, and renewed by the next call.
    pub fn renew_leases(&self) -> Result<usize, JournalError> {
        self.store.renew_leases()
    }

    /// Gives back to the queue every claim whose lease ran out (its owner
    /// crashed, or stopped renewing) and returns them. Claims of live
    /// owners are left alone, whatever their station's name.
    ///
    /// ```
    /// use kart_perso::journal::{Journal, JournalOptions, State};
    /// use kart_perso::record::TrackingCode;
    /// # let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("journal.db");
    /// let short = JournalOptions { lease: std::time::Duration::ZERO, ..JournalOptions::default() };
    /// let crashed = Journal::open_with(&path, &short)?;
    /// let code = TrackingCode::parse("140409040007").unwrap();
    /// crashed.enqueue_batch("batch.csv", [&code])?;
    /// crashed.claim_next("desk-1", "reader-0")?;
    /// let other = Journal::open(&path)?;
    /// assert_eq!(other.reclaim_expired()?, [code.clone()]);
    /// assert_eq!(other.status(&code)?.state, State::Queued);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reclaim_expired(&self) -> Result<Vec<TrackingCode>, JournalError> {
        self.store.reclaim_expired()
    }

    /// Atomically takes the oldest queued application for `reader` of
    /// `station`; `None` when the queue is empty.
    pub fn claim_next(&self, station: &str, reader: &str) -> Result<Option<Claim>, JournalError> {
        self.store.claim_next(station, reader)
    }

    /// Gives a claimed application back to the queue (card not touched).
    pub fn release(&self, tracking: &TrackingCode) -> Result<(), JournalError> {
        self.store.release(tracking)
    }

    /// Puts a failed or spoiled application back in the queue for a new card.
    pub fn requeue(&self, tracking: &TrackingCode) -> Result<(), JournalError> {
        self.store.requeue(tracking)
    }

    /// Records that writing to card `card_serial` starts now. From `writing`
    /// or `written` (after a crash) it restarts on the same card only.
    pub fn mark_writing(
        &self,
        tracking: &TrackingCode,
        card_serial: &str,
        vendor_profile: &str,
    ) -> Result<(), JournalError> {
        self.store
            .mark_writing(tracking, card_serial, vendor_profile)
    }

    /// Records that `step` starts on the card, before its first APDU is
    /// sent: after a crash, a pulled card or a failure, [`Status::last_step`]
    /// tells how far the card got.
    pub fn mark_step_started(
        &self,
        tracking: &TrackingCode,
        step: &str,
    ) -> Result<(), JournalError> {
        self.store.mark_step_started(tracking, step)
    }

    /// Records the measurements of one step while writing or verifying.
    pub fn mark_step(&self, tracking: &TrackingCode, step: &Step) -> Result<(), JournalError> {
        self.store.mark_step(tracking, step)
    }

    /// Records that every write to the card completed.
    pub fn mark_written(&self, tracking: &TrackingCode) -> Result<(), JournalError> {
        self.store.mark_written(tracking)
    }

    /// Records that the card read back and verified: the card is issued.
    pub fn mark_verified(&self, tracking: &TrackingCode) -> Result<(), JournalError> {
        self.store.mark_verified(tracking)
    }

    /// Records a failure; the card (if any) is released for reuse.
    pub fn mark_failed(&self, tracking: &TrackingCode, reason: &str) -> Result<(), JournalError> {
        self.store.mark_failed(tracking, reason)
    }

    /// Records that the card is damaged or half-written beyond repair; it is
    /// never used again.
    pub fn mark_spoiled(&self, tracking: &TrackingCode, reason: &str) -> Result<(), JournalError> {
        self.store.mark_spoiled(tracking, reason)
    }

    /// The current status of one application.
    pub fn status(&self, tracking: &TrackingCode) -> Result<Status, JournalError> {
        self.store.status(tracking)
    }

    /// Applications a crashed station left in `claimed`, `writing` or
    /// `written`, oldest first, with the card they were being written to and
    /// what to do next. Call it at start-up, before claiming.
    pub fn recover(&self) -> Result<Vec<Unfinished>, JournalError> {
        self.store.recover()
    }

    /// The application left `writing` or `written` on card `card_serial`,
    /// if any, with what to do next: what a station asks for each card
    /// presented, before claiming a new application for it (an indexed
    /// lookup, not a scan of [`Journal::recover`]).
    ///
    /// ```
    /// use kart_perso::journal::{Journal, Recovery};
    /// use kart_perso::record::TrackingCode;
    /// # let dir = tempfile::tempdir()?;
    /// let journal = Journal::open(dir.path().join("journal.db"))?;
    /// let code = TrackingCode::parse("140409040007").unwrap();
    /// journal.enqueue_batch("batch.csv", [&code])?;
    /// journal.claim_next("station-1", "reader-0")?;
    /// journal.mark_writing(&code, "4790503300001234", "vendor-a")?;
    /// // The card was pulled mid-way; it comes back:
    /// let waiting = journal.unfinished_for_card("4790503300001234")?.expect("awaited");
    /// assert_eq!((waiting.status.tracking, waiting.recovery), (code, Recovery::RepersonalizeOrSpoil));
    /// assert!(journal.unfinished_for_card("4790503300009999")?.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unfinished_for_card(
        &self,
        card_serial: &str,
    ) -> Result<Option<Unfinished>, JournalError> {
        self.store.unfinished_for_card(card_serial)
    }

    /// Counts and timings for the station's end-of-run report.
    pub fn report(&self) -> Result<Report, JournalError> {
        self.store.report()
    }

    /// The journal's id of batch `name` (created if new). A batch is
    /// identified by its name: the station names it by file name and
    /// content hash.
    pub fn open_batch(&self, name: &str) -> Result<i64, JournalError> {
        self.store.open_batch(name)
    }

    /// Gives batch `legacy` — a batch loaded before records were kept,
    /// named by the path as then typed — the name `name`, when `legacy`
    /// exists, holds no stored record and `name` is not taken: a journal
    /// from before the upgrade then resumes its batch under its new name.
    /// `true` when renamed.
    pub fn adopt_batch(&self, legacy: &str, name: &str) -> Result<bool, JournalError> {
        self.store.adopt_batch(legacy, name)
    }

    /// Loads a chunk of rows of batch `batch` (from [`Journal::open_batch`])
    /// in one transaction: valid new records are queued with their fields,
    /// rejected ones recorded as failed with their reasons, and the batch
    /// rules applied (see the module). Idempotent: the same rows again (a
    /// re-run) queue nothing twice. All or nothing.
    pub fn load_rows(&self, batch: i64, rows: Vec<BatchRow>) -> Result<RowsLoaded, JournalError> {
        self.store.load_rows(batch, rows)
    }

    /// The validated record of an application, if its batch row was valid.
    pub fn record(&self, tracking: &TrackingCode) -> Result<Option<StoredRecord>, JournalError> {
        self.store.record(tracking)
    }

    /// The application that superseded `tracking`, with the earlier card
    /// (if it was issued), when a replacement row replaced it.
    pub fn superseded_by(
        &self,
        tracking: &TrackingCode,
    ) -> Result<Option<(TrackingCode, Option<String>)>, JournalError> {
        self.store.superseded_by(tracking)
    }

    /// Every superseded application, oldest first.
    pub fn superseded(&self) -> Result<Vec<Superseded>, JournalError> {
        self.store.superseded()
    }

    /// Applications left `writing` or `written` on a card, oldest first;
    /// with `older_than`, only those waiting at least that long.
    ///
    /// ```
    /// use kart_perso::journal::{Journal, State};
    /// use kart_perso::record::TrackingCode;
    /// # let dir = tempfile::tempdir()?;
    /// let journal = Journal::open(dir.path().join("journal.db"))?;
    /// let code = TrackingCode::parse("140409040007").unwrap();
    /// journal.enqueue_batch("batch.csv", [&code])?;
    /// journal.claim_next("station-1", "reader-0")?;
    /// journal.mark_writing(&code, "4790503300001234", "vendor-a")?;
    /// let waiting = journal.stranded(None)?;
    /// assert_eq!((waiting[0].state, waiting[0].card_serial.as_str()), (State::Writing, "4790503300001234"));
    /// assert!(journal.stranded(Some(std::time::Duration::from_secs(3600)))?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stranded(&self, older_than: Option<Duration>) -> Result<Vec<Stranded>, JournalError> {
        self.store.stranded(older_than)
    }

    /// All or nothing: on error no application of the call is queued.
    pub fn enqueue_batch<'a>(
        &self,
        batch: &str,
        codes: impl IntoIterator<Item = &'a TrackingCode>,
    ) -> Result<EnqueueReport, JournalError> {
        let codes: Vec<&TrackingCode> = codes.into_iter().collect();
        self.store.enqueue_batch(batch, &codes)
    }

    /// Records applications of a batch whose records were rejected (invalid
    /// fields) as `failed` with their reasons, so reports show them at once
    /// and no reader ever claims them. Like [`Journal::enqueue_batch`] it is
    /// idempotent and all or nothing; an application of this batch still
    /// `queued` (its record was valid when the batch was first loaded) is
    /// failed too, others are left as they are.
    ///
    /// ```
    /// use kart_perso::journal::{Journal, State};
    /// use kart_perso::record::TrackingCode;
    /// # let dir = tempfile::tempdir()?;
    /// let journal = Journal::open(dir.path().join("journal.db"))?;
    /// let code = TrackingCode::parse("140409040015").unwrap();
    /// journal.reject("batch.csv", [(&code, "line 4, national_code: check digit is 8, expected 9")])?;
    /// let status = journal.status(&code)?;
    /// assert_eq!(status.state, State::Failed);
    /// assert!(status.reason.unwrap().contains("national_code"));
    /// assert_eq!(journal.report()?.failed, 1);
    /// assert!(journal.claim_next("station-1", "reader-0")?.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reject<'a>(
        &self,
        batch: &str,
        rejected: impl IntoIterator<Item = (&'a TrackingCode, &'a str)>,
    ) -> Result<EnqueueReport, JournalError> {
        let rejected: Vec<(&TrackingCode, &str)> = rejected.into_iter().collect();
        self.store.reject(batch, &rejected)
    }
}

pub(crate) fn parse_tracking(stored: &str) -> Result<TrackingCode, JournalError> {
    TrackingCode::parse(stored)
        .map_err(|e| JournalError::Corrupt(format!("tracking code {stored:?}: {e}")))
}

pub(crate) fn bounded<'a>(what: &str, text: &'a str) -> Result<&'a str, JournalError> {
    if text.trim().is_empty() {
        return Err(JournalError::BadArgument(format!("{what} is empty")));
    }
    if text.len() > MAX_TEXT {
        return Err(JournalError::BadArgument(format!(
            "{what} is {} bytes, at most {MAX_TEXT} are stored",
            text.len()
        )));
    }
    Ok(text)
}

pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `HOST:PID:RANDOM`: this process on this machine, and one journal it opened.
pub(crate) fn owner_id() -> Result<String, JournalError> {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut nonce = [0u8; 6];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| JournalError::BadArgument("the system random generator failed".into()))?;
    Ok(format!(
        "{}:{}:{}",
        crate::host::name(),
        std::process::id(),
        hex::encode(nonce)
    ))
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
