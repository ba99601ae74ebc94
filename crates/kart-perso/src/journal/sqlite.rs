//! The `SQLite` store: one station's journal in one file (the embedded default).
//!
//! Durability: WAL with `synchronous = FULL`. In WAL mode `NORMAL` can lose
//! the last commits on power loss; a lost "writing" record would let a
//! half-written card's application be claimed again, so every transition is
//! fsynced. It costs milliseconds per transition against seconds of card I/O.
//!
//! Concurrency: every change is one `BEGIN IMMEDIATE` transaction, so stations
//! and readers with their own connections serialize on the write lock (waiting
//! at most the busy timeout) and two readers never claim the same application.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{
    params, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};

use super::store::JournalStore;
use super::{
    bounded, check_card_holder, check_step, check_writer, millis, now_ms, owner_id, parse_tracking,
    report, schema, Claim, EnqueueReport, JournalError, JournalOptions, Report, State, Status,
    Step, Unfinished,
};
use super::{BatchRow, RowsLoaded, StoredRecord, Stranded, Superseded};
use crate::record::TrackingCode;

/// A journal in one `SQLite` file.
///
/// Each connection is one owner of claims: [`Journal::owner`] names the
/// process and the connection (host, process id, a random part), so two
/// processes of one station name never take each other's claims.
#[derive(Debug)]
pub(crate) struct SqliteStore {
    pub(super) conn: Connection,
    pub(super) owner: String,
    pub(super) lease: Duration,
}

impl SqliteStore {
    /// Opens (or creates) the journal at `path` and migrates its schema.
    pub(super) fn open_with(path: &Path, options: &JournalOptions) -> Result<Self, JournalError> {
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

impl SqliteStore {
    fn renew_leases(&mut self) -> Result<usize, JournalError> {
        let until = now_ms().saturating_add(millis(self.lease));
        Ok(self.conn.execute(
            "UPDATE applications SET lease_until_ms = ?2 WHERE state = 'claimed' AND owner = ?1",
            params![self.owner, until],
        )?)
    }

    fn reclaim_expired(&mut self) -> Result<Vec<TrackingCode>, JournalError> {
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

    fn enqueue_batch(
        &mut self,
        batch: &str,
        codes: &[&TrackingCode],
    ) -> Result<EnqueueReport, JournalError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let report = enqueue(&tx, batch, codes.iter().copied(), |_, _| Ok(()))?;
        tx.commit()?;
        Ok(report)
    }

    fn reject(
        &mut self,
        batch: &str,
        rejected: &[(&TrackingCode, &str)],
    ) -> Result<EnqueueReport, JournalError> {
        let rejected: Vec<(&TrackingCode, &str)> = rejected
            .iter()
            .map(|&(code, reason)| Ok((code, bounded("reason", reason)?)))
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

    fn claim_next(&mut self, station: &str, reader: &str) -> Result<Option<Claim>, JournalError> {
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

    fn release(&mut self, tracking: &TrackingCode) -> Result<(), JournalError> {
        self.transition(tracking, State::Queued, |_, status| {
            status.station = None;
            status.reader = None;
            Ok(())
        })
    }

    fn requeue(&mut self, tracking: &TrackingCode) -> Result<(), JournalError> {
        self.transition(tracking, State::Queued, |_, status| {
            status.card_serial = None;
            status.vendor_profile = None;
            Ok(())
        })
    }

    fn mark_writing(
        &mut self,
        tracking: &TrackingCode,
        card_serial: &str,
        vendor_profile: &str,
    ) -> Result<(), JournalError> {
        let serial = bounded("card serial", card_serial)?.to_owned();
        let vendor = bounded("vendor profile", vendor_profile)?.to_owned();
        let me = self.owner.clone();
        self.transition(tracking, State::Writing, move |tx, status| {
            check_writer(status, &me, &serial, || {
                Ok(tx.query_row(
                    "SELECT owner FROM applications WHERE tracking = ?1",
                    [tracking.as_str()],
                    |row| row.get(0),
                )?)
            })?;
            take_card(tx, &serial, tracking)?;
            status.card_serial = Some(serial);
            status.vendor_profile = Some(vendor);
            Ok(())
        })
    }

    fn mark_step_started(
        &mut self,
        tracking: &TrackingCode,
        step: &str,
    ) -> Result<(), JournalError> {
        let name = bounded("step name", step)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let status = load(&tx, tracking)?;
        check_step(&status, true)?;
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

    fn mark_step(&mut self, tracking: &TrackingCode, step: &Step) -> Result<(), JournalError> {
        let name = bounded("step name", &step.name)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let status = load(&tx, tracking)?;
        check_step(&status, false)?;
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

    fn mark_written(&mut self, tracking: &TrackingCode) -> Result<(), JournalError> {
        self.transition(tracking, State::Written, |_, _| Ok(()))
    }

    fn mark_verified(&mut self, tracking: &TrackingCode) -> Result<(), JournalError> {
        self.transition(tracking, State::Verified, |tx, status| {
            set_card(tx, status, "issued")
        })
    }

    fn mark_failed(&mut self, tracking: &TrackingCode, reason: &str) -> Result<(), JournalError> {
        let reason = bounded("reason", reason)?.to_owned();
        self.transition(tracking, State::Failed, move |tx, status| {
            status.reason = Some(reason);
            set_card(tx, status, "released")
        })
    }

    fn mark_spoiled(&mut self, tracking: &TrackingCode, reason: &str) -> Result<(), JournalError> {
        let reason = bounded("reason", reason)?.to_owned();
        self.transition(tracking, State::Spoiled, move |tx, status| {
            status.reason = Some(reason);
            set_card(tx, status, "spoiled")
        })
    }

    fn status(&self, tracking: &TrackingCode) -> Result<Status, JournalError> {
        load(&self.conn, tracking)
    }

    fn recover(&self) -> Result<Vec<Unfinished>, JournalError> {
        let mut stmt = self.conn.prepare(
            "SELECT tracking FROM applications WHERE state IN ('claimed', 'writing', 'written')
             ORDER BY updated_at_ms, tracking",
        )?;
        let codes: Vec<String> = stmt
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        codes
            .iter()
            .map(|code| Unfinished::of(load(&self.conn, &parse_tracking(code)?)?))
            .collect()
    }

    fn unfinished_for_card(&self, card_serial: &str) -> Result<Option<Unfinished>, JournalError> {
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
        code.map(|code| Unfinished::of(load(&self.conn, &parse_tracking(&code)?)?))
            .transpose()
    }

    fn report(&self) -> Result<Report, JournalError> {
        report::build(&self.conn)
    }
}

/// The `SQLite` store as a [`JournalStore`]: its one connection behind a
/// mutex, so the readers of a station share it and take turns (`SQLite`
/// has one writer at a time anyway; each call is one short transaction).
#[derive(Debug)]
pub(crate) struct LockedSqlite {
    store: Mutex<SqliteStore>,
    owner: String,
}

impl From<SqliteStore> for LockedSqlite {
    fn from(store: SqliteStore) -> Self {
        Self {
            owner: store.owner.clone(),
            store: Mutex::new(store),
        }
    }
}

impl LockedSqlite {
    /// The connection, for one call. A call that panicked left no
    /// transaction open (a dropped transaction rolls back), so a poisoned
    /// lock still guards a sound connection.
    fn store(&self) -> MutexGuard<'_, SqliteStore> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl JournalStore for LockedSqlite {
    fn owner(&self) -> &str {
        &self.owner
    }

    fn renew_leases(&self) -> Result<usize, JournalError> {
        self.store().renew_leases()
    }

    fn reclaim_expired(&self) -> Result<Vec<TrackingCode>, JournalError> {
        self.store().reclaim_expired()
    }

    fn enqueue_batch(
        &self,
        batch: &str,
        codes: &[&TrackingCode],
    ) -> Result<EnqueueReport, JournalError> {
        self.store().enqueue_batch(batch, codes)
    }

    fn reject(
        &self,
        batch: &str,
        rejected: &[(&TrackingCode, &str)],
    ) -> Result<EnqueueReport, JournalError> {
        self.store().reject(batch, rejected)
    }

    fn claim_next(&self, station: &str, reader: &str) -> Result<Option<Claim>, JournalError> {
        self.store().claim_next(station, reader)
    }

    fn release(&self, tracking: &TrackingCode) -> Result<(), JournalError> {
        self.store().release(tracking)
    }

    fn requeue(&self, tracking: &TrackingCode) -> Result<(), JournalError> {
        self.store().requeue(tracking)
    }

    fn mark_writing(
        &self,
        tracking: &TrackingCode,
        card_serial: &str,
        vendor_profile: &str,
    ) -> Result<(), JournalError> {
        self.store()
            .mark_writing(tracking, card_serial, vendor_profile)
    }

    fn mark_step_started(&self, tracking: &TrackingCode, step: &str) -> Result<(), JournalError> {
        self.store().mark_step_started(tracking, step)
    }

    fn mark_step(&self, tracking: &TrackingCode, step: &Step) -> Result<(), JournalError> {
        self.store().mark_step(tracking, step)
    }

    fn mark_written(&self, tracking: &TrackingCode) -> Result<(), JournalError> {
        self.store().mark_written(tracking)
    }

    fn mark_verified(&self, tracking: &TrackingCode) -> Result<(), JournalError> {
        self.store().mark_verified(tracking)
    }

    fn mark_failed(&self, tracking: &TrackingCode, reason: &str) -> Result<(), JournalError> {
        self.store().mark_failed(tracking, reason)
    }

    fn mark_spoiled(&self, tracking: &TrackingCode, reason: &str) -> Result<(), JournalError> {
        self.store().mark_spoiled(tracking, reason)
    }

    fn status(&self, tracking: &TrackingCode) -> Result<Status, JournalError> {
        self.store().status(tracking)
    }

    fn recover(&self) -> Result<Vec<Unfinished>, JournalError> {
        self.store().recover()
    }

    fn unfinished_for_card(&self, card_serial: &str) -> Result<Option<Unfinished>, JournalError> {
        self.store().unfinished_for_card(card_serial)
    }

    fn report(&self) -> Result<Report, JournalError> {
        self.store().report()
    }

    fn open_batch(&self, name: &str) -> Result<i64, JournalError> {
        self.store().open_batch(name)
    }

    fn adopt_batch(&self, legacy: &str, name: &str) -> Result<bool, JournalError> {
        self.store().adopt_batch(legacy, name)
    }

    fn load_rows(&self, batch: i64, rows: Vec<BatchRow>) -> Result<RowsLoaded, JournalError> {
        self.store().load_rows(batch, rows)
    }

    fn record(&self, tracking: &TrackingCode) -> Result<Option<StoredRecord>, JournalError> {
        self.store().record(tracking)
    }

    fn superseded_by(
        &self,
        tracking: &TrackingCode,
    ) -> Result<Option<(TrackingCode, Option<String>)>, JournalError> {
        self.store().superseded_by(tracking)
    }

    fn superseded(&self) -> Result<Vec<Superseded>, JournalError> {
        self.store().superseded()
    }

    fn stranded(&self, older_than: Option<Duration>) -> Result<Vec<Stranded>, JournalError> {
        self.store().stranded(older_than)
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
    check_card_holder(serial, tracking, holder.as_ref())?;
    let sql = if holder.is_some() {
        "UPDATE cards SET tracking = ?2, status = 'in_use' WHERE serial = ?1"
    } else {
        "INSERT INTO cards (serial, tracking, status) VALUES (?1, ?2, 'in_use')"
    };
    tx.execute(sql, [serial, tracking.as_str()])?;
    Ok(())
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

pub(super) fn load(conn: &Connection, tracking: &TrackingCode) -> Result<Status, JournalError> {
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

pub(super) fn log_event(
    tx: &Transaction<'_>,
    from: State,
    after: &Status,
) -> Result<(), JournalError> {
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
