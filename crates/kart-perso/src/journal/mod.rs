//! The station's journal: an `SQLite` database that records every state
//! transition of every application, durably, before and after the card is
//! touched, so that a crash or a pulled card never loses or double-issues an
//! application.
//!
//! Durability: WAL with `synchronous = FULL`. In WAL mode `NORMAL` can lose
//! the last commits on power loss; a lost "writing" record would let a
//! half-written card's application be claimed again, so every transition is
//! fsynced. It costs milliseconds per transition against seconds of card I/O.
//!
//! Concurrency: every change is one `BEGIN IMMEDIATE` transaction, so stations
//! and readers with their own connections serialize on the write lock (waiting
//! at most the busy timeout) and two readers never claim the same application.
//!
//! ```
//! use kart_perso::journal::{Journal, State, Step};
//! use kart_perso::record::TrackingCode;
//! # let dir = tempfile::tempdir()?;
//! let mut journal = Journal::open(dir.path().join("journal.db"))?;
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
mod records;
mod report;
mod schema;
mod state;
mod stranded;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{
    params, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};

use crate::record::TrackingCode;

pub use error::JournalError;
pub use records::{BatchRow, RowsLoaded, StoredRecord, Superseded};
pub use report::{DayCounts, Failure, Report, StationCounts, StepTiming, VendorCounts};
pub use state::State;
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
    /// How long a claim made through this connection stays its own without
    /// being renewed ([`Journal::renew_leases`]); after that another station
    /// may take it back ([`Journal::reclaim_expired`]). A claim lives from
    /// the claim to the first card command, milliseconds, so the default
    /// leaves a wide margin for a slow disk or a busy journal.
    pub lease: Duration,
}

impl Default for JournalOptions {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(5),
            max_size_bytes: None,
            read_only: false,
            lease: Duration::from_secs(60),
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

/// The journal database.
///
/// Each connection is one owner of claims: [`Journal::owner`] names the
/// process and the connection (host, process id, a random part), so two
/// processes of one station name never take each other's claims.
#[derive(Debug)]
pub struct Journal {
    conn: Connection,
    owner: String,
    lease: Duration,
}

impl Journal {
    /// Opens (or creates) the journal at `path` and migrates its schema.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, JournalError> {
        Self::open_with(path, &JournalOptions::default())
    }

    /// Opens with explicit options.
    pub fn open_with(
        path: impl AsRef<Path>,
        options: &JournalOptions,
    ) -> Result<Self, JournalError> {
        let path = path.as_ref();
        let open_error = |e: rusqlite::Error| JournalError::Open {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        let flags = if options.read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let mut conn = Connection::open_with_flags(path, flags).map_err(open_error)?;
        conn.busy_timeout(options.busy_timeout)?;
        conn.pragma_update(None, "foreign_keys", true)?;
        if options.read_only {
            let found = schema::version(&conn)?;
            if found > schema::VERSION {
                return Err(JournalError::SchemaTooNew {
                    found,
                    supported: schema::VERSION,
                });
            }
            if found < schema::VERSION {
                return Err(JournalError::Open {
                    path: path.to_owned(),
                    reason: format!(
                        "schema version {found}, expected {}; open it writable once to migrate",
                        schema::VERSION
                    ),
                });
            }
        } else {
            let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(JournalError::Open {
                    path: path.to_owned(),
                    reason: format!("WAL mode refused (got {mode})"),
                });
            }
            conn.pragma_update(None, "synchronous", "FULL")?;
            schema::migrate(&mut conn)?;
        }
        if let Some(max) = options.max_size_bytes {
            let page: u64 = conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
            conn.pragma_update(None, "max_page_count", (max / page.max(1)).max(1))?;
        }
        Ok(Self {
            conn,
            owner: owner_id()?,
            lease: options.lease,
        })
    }

    /// Who owns the claims made through this connection:
    /// `HOST:PID:RANDOM`, unique per connection.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Extends the lease of every claim this connection holds; returns how
    /// many there were.
    pub fn renew_leases(&mut self) -> Result<usize, JournalError> {
        let until = now_ms().saturating_add(millis(self.lease));
        Ok(self.conn.execute(
            "UPDATE applications SET lease_until_ms = ?2 WHERE state = 'claimed' AND owner = ?1",
            params![self.owner, until],
        )?)
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
    /// let mut crashed = Journal::open_with(&path, &short)?;
    /// let code = TrackingCode::parse("140409040007").unwrap();
    /// crashed.enqueue_batch("batch.csv", [&code])?;
    /// crashed.claim_next("desk-1", "reader-0")?;
    /// let mut other = Journal::open(&path)?;
    /// assert_eq!(other.reclaim_expired()?, [code.clone()]);
    /// assert_eq!(other.status(&code)?.state, State::Queued);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reclaim_expired(&mut self) -> Result<Vec<TrackingCode>, JournalError> {
        let mut stmt = self.conn.prepare(
            "SELECT tracking FROM applications WHERE state = 'claimed'
             AND (lease_until_ms IS NULL OR lease_until_ms <= ?1) ORDER BY tracking",
        )?;
        let codes: Vec<String> = stmt
            .query_map([now_ms()], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        drop(stmt);
        let mut reclaimed = Vec::with_capacity(codes.len());
        for code in &codes {
            let tracking = parse_tracking(code)?;
            // Renewed or moved on since the query: no longer expired, left alone.
            match self.release_if_expired(&tracking) {
                Ok(true) => reclaimed.push(tracking),
                Ok(false) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(reclaimed)
    }

    fn release_if_expired(&mut self, tracking: &TrackingCode) -> Result<bool, JournalError> {
        let expired: bool = self.conn.query_row(
            "SELECT state = 'claimed' AND (lease_until_ms IS NULL OR lease_until_ms <= ?2)
             FROM applications WHERE tracking = ?1",
            params![tracking.as_str(), now_ms()],
            |row| row.get(0),
        )?;
        if expired {
            self.release(tracking)?;
        }
        Ok(expired)
    }

    /// Queues the applications of a batch. Idempotent: a code already in
    /// the journal is left as it is, so re-running a batch duplicates nothing.
    /// All or nothing: on error no application of the call is queued.
    pub fn enqueue_batch<'a>(
        &mut self,
        batch: &str,
        codes: impl IntoIterator<Item = &'a TrackingCode>,
    ) -> Result<EnqueueReport, JournalError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let report = enqueue(&tx, batch, codes, |_, _| Ok(()))?;
        tx.commit()?;
        Ok(report)
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
    /// let mut journal = Journal::open(dir.path().join("journal.db"))?;
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
        &mut self,
        batch: &str,
        rejected: impl IntoIterator<Item = (&'a TrackingCode, &'a str)>,
    ) -> Result<EnqueueReport, JournalError> {
        let rejected: Vec<(&TrackingCode, &str)> = rejected
            .into_iter()
            .map(|(code, reason)| Ok((code, bounded("reason", reason)?)))
            .collect::<Result<_, JournalError>>()?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let report = enqueue(
            &tx,
            batch,
            rejected.iter().map(|(code, _)| *code),
            |tx, seq| {
                let Some((code, reason)) = rejected.get(seq) else {
                    return Ok(());
                };
                let mut status = load(tx, code)?;
                if status.state != State::Queued {
                    return Ok(());
                }
                status.state = State::Failed;
                status.reason = Some((*reason).to_owned());
                tx.execute(
                    "UPDATE applications SET state = 'failed', reason = ?2, updated_at_ms = ?3
                     WHERE tracking = ?1",
                    params![code.as_str(), reason, now_ms()],
                )?;
                log_event(tx, State::Queued, &status)
            },
        )?;
        tx.commit()?;
        Ok(report)
    }

    /// Atomically takes the oldest queued application for `reader` of
    /// `station`; `None` when the queue is empty.
    pub fn claim_next(
        &mut self,
        station: &str,
        reader: &str,
    ) -> Result<Option<Claim>, JournalError> {
        let (station, reader) = (bounded("station", station)?, bounded("reader", reader)?);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let next: Option<(String, String)> = tx
            .query_row(
                "SELECT a.tracking, b.name FROM applications a JOIN batches b ON b.id = a.batch_id
                 WHERE a.state = 'queued' ORDER BY a.batch_id, a.seq LIMIT 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let Some((tracking, batch)) = next else {
            return Ok(None);
        };
        let tracking = parse_tracking(&tracking)?;
        let current = load(&tx, &tracking)?;
        let attempt = current.attempts.saturating_add(1);
        let now = now_ms();
        tx.execute(
            "UPDATE applications SET state = 'claimed', station = ?2, reader = ?3, card_serial = NULL,
             vendor_profile = NULL, reason = NULL, attempts = ?4, updated_at_ms = ?5,
             owner = ?6, lease_until_ms = ?7 WHERE tracking = ?1",
            params![
                tracking.as_str(),
                station,
                reader,
                attempt,
                now,
                self.owner,
                now.saturating_add(millis(self.lease))
            ],
        )?;
        let after = Status {
            state: State::Claimed,
            station: Some(station.into()),
            reader: Some(reader.into()),
            attempts: attempt,
            card_serial: None,
            vendor_profile: None,
            reason: None,
            ..current
        };
        log_event(&tx, State::Queued, &after)?;
        tx.commit()?;
        Ok(Some(Claim {
            tracking,
            batch,
            attempt,
            station: station.into(),
            reader: reader.into(),
        }))
    }

    /// Gives a claimed application back to the queue (card not touched).
    pub fn release(&mut self, tracking: &TrackingCode) -> Result<(), JournalError> {
        self.transition(tracking, State::Queued, |_, status| {
            status.station = None;
            status.reader = None;
            Ok(())
        })
    }

    /// Puts a failed or spoiled application back in the queue for a new card.
    pub fn requeue(&mut self, tracking: &TrackingCode) -> Result<(), JournalError> {
        self.transition(tracking, State::Queued, |_, status| {
            status.card_serial = None;
            status.vendor_profile = None;
            Ok(())
        })
    }

    /// Records that writing to card `card_serial` starts now. From `writing`
    /// or `written` (after a crash) it restarts on the same card only.
    pub fn mark_writing(
        &mut self,
        tracking: &TrackingCode,
        card_serial: &str,
        vendor_profile: &str,
    ) -> Result<(), JournalError> {
        let serial = bounded("card serial", card_serial)?.to_owned();
        let vendor = bounded("vendor profile", vendor_profile)?.to_owned();
        let me = self.owner.clone();
        self.transition(tracking, State::Writing, move |tx, status| {
            if status.state == State::Claimed {
                // Only the claim's owner writes for it: another may have
                // taken it back after the lease ran out.
                let owner: Option<String> = tx.query_row(
                    "SELECT owner FROM applications WHERE tracking = ?1",
                    [tracking.as_str()],
                    |row| row.get(0),
                )?;
                if owner.as_deref() != Some(me.as_str()) {
                    return Err(JournalError::ClaimLost {
                        tracking: tracking.clone(),
                        owner: owner.unwrap_or_else(|| "none".into()),
                    });
                }
            }
            if let Some(current) = status.card_serial.as_deref().filter(|c| *c != serial) {
                return Err(JournalError::CardMismatch {
                    tracking: tracking.clone(),
                    expected: current.into(),
                    found: serial,
                });
            }
            take_card(tx, &serial, tracking)?;
            status.card_serial = Some(serial);
            status.vendor_profile = Some(vendor);
            Ok(())
        })
    }

    /// Records that `step` starts on the card, before its first APDU is
    /// sent: after a crash, a pulled card or a failure, [`Status::last_step`]
    /// tells how far the card got.
    pub fn mark_step_started(
        &mut self,
        tracking: &TrackingCode,
        step: &str,
    ) -> Result<(), JournalError> {
        let name = bounded("step name", step)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let status = load(&tx, tracking)?;
        if status.state != State::Writing {
            return Err(JournalError::BadArgument(format!(
                "application {tracking} is {}; steps start only while writing",
                status.state
            )));
        }
        tx.execute(
            "INSERT INTO step_starts (tracking, attempt, card_serial, step, at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                tracking.as_str(),
                status.attempts,
                status.card_serial,
                name,
                now_ms()
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Records the measurements of one step while writing or verifying.
    pub fn mark_step(&mut self, tracking: &TrackingCode, step: &Step) -> Result<(), JournalError> {
        let name = bounded("step name", &step.name)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let status = load(&tx, tracking)?;
        if !matches!(status.state, State::Writing | State::Written) {
            return Err(JournalError::BadArgument(format!(
                "application {tracking} is {}; steps are recorded only while writing or written",
                status.state
            )));
        }
        tx.execute(
            "INSERT INTO steps (tracking, attempt, card_serial, step, duration_us, apdus, bytes_sent, bytes_received, at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                tracking.as_str(),
                status.attempts,
                status.card_serial,
                name,
                i64::try_from(step.duration.as_micros()).unwrap_or(i64::MAX),
                step.apdus,
                i64::try_from(step.bytes_sent).unwrap_or(i64::MAX),
                i64::try_from(step.bytes_received).unwrap_or(i64::MAX),
                now_ms()
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Records that every write to the card completed.
    pub fn mark_written(&mut self, tracking: &TrackingCode) -> Result<(), JournalError> {
        self.transition(tracking, State::Written, |_, _| Ok(()))
    }

    /// Records that the card read back and verified: the card is issued.
    pub fn mark_verified(&mut self, tracking: &TrackingCode) -> Result<(), JournalError> {
        self.transition(tracking, State::Verified, |tx, status| {
            set_card(tx, status, "issued")
        })
    }

    /// Records a failure; the card (if any) is released for reuse.
    pub fn mark_failed(
        &mut self,
        tracking: &TrackingCode,
        reason: &str,
    ) -> Result<(), JournalError> {
        let reason = bounded("reason", reason)?.to_owned();
        self.transition(tracking, State::Failed, move |tx, status| {
            status.reason = Some(reason);
            set_card(tx, status, "released")
        })
    }

    /// Records that the card is damaged or half-written beyond repair; it is
    /// never used again.
    pub fn mark_spoiled(
        &mut self,
        tracking: &TrackingCode,
        reason: &str,
    ) -> Result<(), JournalError> {
        let reason = bounded("reason", reason)?.to_owned();
        self.transition(tracking, State::Spoiled, move |tx, status| {
            status.reason = Some(reason);
            set_card(tx, status, "spoiled")
        })
    }

    /// The current status of one application.
    pub fn status(&self, tracking: &TrackingCode) -> Result<Status, JournalError> {
        load(&self.conn, tracking)
    }

    /// Applications a crashed station left in `claimed`, `writing` or
    /// `written`, oldest first, with the card they were being written to and
    /// what to do next. Call it at start-up, before claiming.
    pub fn recover(&self) -> Result<Vec<Unfinished>, JournalError> {
        let mut stmt = self.conn.prepare(
            "SELECT tracking FROM applications WHERE state IN ('claimed', 'writing', 'written')
             ORDER BY updated_at_ms, tracking",
        )?;
        let codes: Vec<String> = stmt
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        codes
            .iter()
            .map(|code| unfinished(load(&self.conn, &parse_tracking(code)?)?))
            .collect()
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
    /// let mut journal = Journal::open(dir.path().join("journal.db"))?;
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
        let serial = bounded("card serial", card_serial)?;
        let code: Option<String> = self
            .conn
            .query_row(
                "SELECT tracking FROM applications
                 WHERE card_serial = ?1 AND state IN ('claimed', 'writing', 'written')
                 ORDER BY updated_at_ms, tracking LIMIT 1",
                [serial],
                |row| row.get(0),
            )
            .optional()?;
        code.map(|code| unfinished(load(&self.conn, &parse_tracking(&code)?)?))
            .transpose()
    }

    /// Counts and timings for the station's end-of-run report.
    pub fn report(&self) -> Result<Report, JournalError> {
        report::build(&self.conn)
    }

    /// Runs one validated transition in one transaction; `change` adjusts
    /// the status (and cards) inside it. Any error rolls everything back.
    fn transition(
        &mut self,
        tracking: &TrackingCode,
        to: State,
        change: impl FnOnce(&Transaction<'_>, &mut Status) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut status = load(&tx, tracking)?;
        let from = status.state;
        if !from.can_go(to) {
            return Err(JournalError::InvalidTransition {
                tracking: tracking.clone(),
                from,
                to,
            });
        }
        change(&tx, &mut status)?;
        status.state = to;
        if to == State::Queued {
            status.reason = None;
        }
        // Only a claim has an owner and a lease (claim_next sets them).
        tx.execute(
            "UPDATE applications SET state = ?2, station = ?3, reader = ?4, card_serial = ?5,
             vendor_profile = ?6, reason = ?7, updated_at_ms = ?8, owner = NULL,
             lease_until_ms = NULL WHERE tracking = ?1",
            params![
                tracking.as_str(),
                to.as_str(),
                status.station,
                status.reader,
                status.card_serial,
                status.vendor_profile,
                status.reason,
                now_ms()
            ],
        )?;
        log_event(&tx, from, &status)?;
        tx.commit()?;
        Ok(())
    }
}

/// Inserts `codes` as queued applications of `batch` (each code once:
/// one already in the journal is left as it is), then calls `after` with
/// each code's position for the caller's own change in the same transaction.
fn enqueue<'a>(
    tx: &Transaction<'_>,
    batch: &str,
    codes: impl IntoIterator<Item = &'a TrackingCode>,
    mut after: impl FnMut(&Transaction<'_>, usize) -> Result<(), JournalError>,
) -> Result<EnqueueReport, JournalError> {
    let batch = bounded("batch name", batch)?;
    let now = now_ms();
    tx.execute(
        "INSERT OR IGNORE INTO batches (name, enqueued_at_ms) VALUES (?1, ?2)",
        params![batch, now],
    )?;
    let batch_id: i64 = tx.query_row("SELECT id FROM batches WHERE name = ?1", [batch], |row| {
        row.get(0)
    })?;
    let mut report = EnqueueReport::default();
    let mut insert = tx.prepare(
        "INSERT INTO applications (tracking, batch_id, seq, state, updated_at_ms)
         VALUES (?1, ?2, ?3, 'queued', ?4) ON CONFLICT (tracking) DO NOTHING",
    )?;
    let mut owner = tx.prepare("SELECT batch_id FROM applications WHERE tracking = ?1")?;
    for (index, code) in codes.into_iter().enumerate() {
        let seq = i64::try_from(index).unwrap_or(i64::MAX);
        if insert.execute(params![code.as_str(), batch_id, seq, now])? == 1 {
            report.added += 1;
        } else if owner.query_row([code.as_str()], |row| row.get::<_, i64>(0))? == batch_id {
            report.already_present += 1;
        } else {
            report.in_other_batch.push(code.clone());
            continue;
        }
        after(tx, index)?;
    }
    Ok(report)
}

/// An unfinished application with the next step for its state.
fn unfinished(status: Status) -> Result<Unfinished, JournalError> {
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
    Ok(Unfinished { status, recovery })
}

/// Assigns a card to an application, refusing cards that are taken.
fn take_card(
    tx: &Transaction<'_>,
    serial: &str,
    tracking: &TrackingCode,
) -> Result<(), JournalError> {
    let holder: Option<(String, String)> = tx
        .query_row(
            "SELECT tracking, status FROM cards WHERE serial = ?1",
            [serial],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    match holder {
        Some((owner, status)) if status == "issued" => Err(JournalError::CardIssued {
            serial: serial.into(),
            tracking: owner,
        }),
        Some((_, status)) if status == "spoiled" => Err(JournalError::CardSpoiled {
            serial: serial.into(),
        }),
        Some((owner, status)) if status == "in_use" && owner != tracking.as_str() => {
            Err(JournalError::CardInUse {
                serial: serial.into(),
                tracking: owner,
            })
        }
        Some(_) => {
            tx.execute(
                "UPDATE cards SET tracking = ?2, status = 'in_use' WHERE serial = ?1",
                [serial, tracking.as_str()],
            )?;
            Ok(())
        }
        None => {
            tx.execute(
                "INSERT INTO cards (serial, tracking, status) VALUES (?1, ?2, 'in_use')",
                [serial, tracking.as_str()],
            )?;
            Ok(())
        }
    }
}

/// Sets the status of the application's card, if it has one.
fn set_card(tx: &Transaction<'_>, status: &Status, card_status: &str) -> Result<(), JournalError> {
    if let Some(serial) = &status.card_serial {
        tx.execute(
            "UPDATE cards SET status = ?2 WHERE serial = ?1",
            [serial.as_str(), card_status],
        )?;
    }
    Ok(())
}

fn load(conn: &Connection, tracking: &TrackingCode) -> Result<Status, JournalError> {
    let row = conn
        .query_row(
            "SELECT b.name, a.state, a.card_serial, a.vendor_profile, a.station, a.reader, a.attempts, a.reason,
                 (SELECT s.step FROM step_starts s WHERE s.tracking = a.tracking AND s.attempt = a.attempts
                  ORDER BY s.id DESC LIMIT 1)
             FROM applications a JOIN batches b ON b.id = a.batch_id WHERE a.tracking = ?1",
            [tracking.as_str()],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                    row.get::<_, u32>(6)?,
                    row.get(7)?,
                    row.get(8)?,
                ))
            },
        )
        .optional()?;
    let Some((
        batch,
        state,
        card_serial,
        vendor_profile,
        station,
        reader,
        attempts,
        reason,
        last_step,
    )) = row
    else {
        return Err(JournalError::UnknownApplication(tracking.clone()));
    };
    let state = State::from_name(&state)
        .ok_or_else(|| JournalError::Corrupt(format!("unknown state {state:?}")))?;
    Ok(Status {
        tracking: tracking.clone(),
        batch,
        state,
        card_serial,
        vendor_profile,
        station,
        reader,
        attempts,
        reason,
        last_step,
    })
}

fn log_event(tx: &Transaction<'_>, from: State, after: &Status) -> Result<(), JournalError> {
    tx.execute(
        "INSERT INTO events (tracking, attempt, from_state, to_state, card_serial, station, reader, vendor_profile, reason, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            after.tracking.as_str(),
            after.attempts,
            from.as_str(),
            after.state.as_str(),
            after.card_serial,
            after.station,
            after.reader,
            after.vendor_profile,
            after.reason,
            now_ms()
        ],
    )?;
    Ok(())
}

fn parse_tracking(stored: &str) -> Result<TrackingCode, JournalError> {
    TrackingCode::parse(stored)
        .map_err(|e| JournalError::Corrupt(format!("tracking code {stored:?}: {e}")))
}

fn bounded<'a>(what: &str, text: &'a str) -> Result<&'a str, JournalError> {
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

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `HOST:PID:RANDOM`: this process on this machine, and one connection of it.
fn owner_id() -> Result<String, JournalError> {
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

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
