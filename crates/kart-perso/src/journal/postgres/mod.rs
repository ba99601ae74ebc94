//! The `PostgreSQL` store: one journal shared by every station of a floor.
//!
//! Claims take the oldest queued application with `FOR UPDATE SKIP LOCKED`,
//! so stations never wait on each other's claims nor take the same one, and
//! hold it under a lease like the `SQLite` store. Every change is one
//! transaction that records station and reader in `events`. Times are the
//! server's clock, so the leases of stations with skewed clocks still agree.
//!
//! Connections: a pool of [`JournalOptions::pool_size`] connections; each
//! call checks one out for its transaction, so the readers of a station
//! call the journal at once, and one call waiting on a locked row or a slow
//! server holds up only its own reader.
//!
//! Faults: when the server restarts or the connection drops, a call
//! reconnects and retries with a doubling backoff until
//! [`JournalOptions::busy_timeout`] has passed, then fails with
//! [`JournalError::Unavailable`]; a server with every connection slot taken
//! (`max_connections`) is retried alike and gives
//! [`JournalError::NoConnectionSlot`] when a store's first connection meets
//! it (the pool's later connections report it as `Unavailable`, in the
//! server's words). A retry may follow a commit whose answer
//! was lost; every call therefore checks whether its change is already
//! there (same state, same card) and then succeeds without a second change.

mod records;
mod schema;
pub(crate) mod tls;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use postgres::{Client, GenericClient, Transaction};
use postgres_openssl::MakeTlsConnector;
use r2d2_postgres::PostgresConnectionManager;

use super::location::PgUrl;
use super::store::JournalStore;
use super::{
    bounded, check_card_holder, check_step, check_writer, millis, owner_id, parse_tracking,
    BatchRow, Claim, DayCounts, EnqueueReport, JournalError, JournalOptions, Report, RowsLoaded,
    State, Status, Step, StepTiming, StoredRecord, Stranded, Superseded, Unfinished, VendorCounts,
};
use crate::record::TrackingCode;

/// The server's clock in milliseconds since the epoch.
pub(super) const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// Key of the advisory lock held while a chunk of batch rows is loaded.
const BATCH_LOAD_LOCK: i64 = 0x6b61_7275;

/// First pause before a retry; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What opens the pool's connections.
pub(crate) type Manager = PostgresConnectionManager<MakeTlsConnector>;

/// Connections to the journal, checked out one per call.
pub(crate) type Pool = r2d2::Pool<Manager>;

/// The connection maker of a pool to `url`: its configuration and its TLS
/// settings, as [`PgUrl::connect`] uses them.
fn manager(url: &PgUrl) -> Result<Manager, JournalError> {
    Ok(PostgresConnectionManager::new(
        url.config(),
        tls::connector(url)?,
    ))
}

/// A pool of at most `size` connections to `url`. Nothing connects here:
/// connections open on first checkout, and one found closed (the server
/// restarted, the socket dropped) fails its first statement, which the
/// caller retries ([`with_backoff`]), and is dropped when handed back
/// (`has_broken`), then replaced by a new one. A checkout waits at most the
/// time its caller has left ([`checkout`]).
pub(crate) fn pool(url: &PgUrl, size: u32) -> Result<Pool, JournalError> {
    if size == 0 {
        return Err(JournalError::BadArgument(
            "a PostgreSQL journal needs a pool of at least 1 connection".into(),
        ));
    }
    Ok(r2d2::Pool::builder()
        .max_size(size)
        // Opened on demand, not held open for an idle station.
        .min_idle(Some(0))
        // Each checkout passes its own bound (`get_timeout`).
        .connection_timeout(MAX_BACKOFF)
        // No test query on checkout: it cost one more round trip per
        // transaction (86.8 instead of 46.8 per card), and a dead connection
        // is found by the statement itself, which is retried.
        .test_on_check_out(false)
        // Failures reach the caller as `JournalError`s; nothing is logged.
        .error_handler(Box::new(r2d2::NopErrorHandler))
        .build_unchecked(manager(url)?))
}

/// The first connection to `url`, made directly rather than through a pool
/// so that a TLS or login failure comes back typed and at once (a pool
/// keeps only the text of its last failure and retries it); a server that
/// cannot be reached is waited for until `deadline`.
fn first_connection(url: &PgUrl, deadline: Instant) -> Result<Client, JournalError> {
    with_backoff(deadline, |_| url.connect())
}

/// [`first_connection`] with the schema migrated on it, both retried
/// together until `deadline`: a server restarting in the middle of the
/// migration (its transaction rolled back, the connection closed) is
/// connected to again and the migration run again, as every other call
/// retries (the migration is one transaction and checks the version first).
fn first_connection_migrated(url: &PgUrl, deadline: Instant) -> Result<Client, JournalError> {
    with_backoff(deadline, |_| {
        let mut client = url.connect()?;
        schema::migrate(&mut client)?;
        Ok(client)
    })
}

/// Runs `attempt` until it succeeds, fails otherwise than with an
/// unreachable or full server or a deadlock, or `deadline` passes; the pause
/// between attempts doubles up to [`MAX_BACKOFF`]. `attempt` learns whether
/// it is a retry.
fn with_backoff<T>(
    deadline: Instant,
    mut attempt: impl FnMut(bool) -> Result<T, JournalError>,
) -> Result<T, JournalError> {
    let mut backoff = FIRST_BACKOFF;
    let mut retried = false;
    loop {
        match attempt(retried) {
            Err(e) if e.server_unavailable() || matches!(e, JournalError::Busy) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(e);
                }
                std::thread::sleep(backoff.min(deadline - now));
                backoff = (backoff * 2).min(MAX_BACKOFF);
                retried = true;
            }
            other => return other,
        }
    }
}

/// A connection of `pool`, waiting at most until `deadline` for a free one
/// (or for the server to take a new one).
pub(crate) fn checkout(
    pool: &Pool,
    deadline: Instant,
) -> Result<r2d2::PooledConnection<Manager>, JournalError> {
    let left = deadline.saturating_duration_since(Instant::now());
    pool.get_timeout(left.max(Duration::from_millis(1)))
        .map_err(|e| JournalError::Unavailable {
            reason: format!("no journal connection free or opened in time ({e})"),
        })
}

/// A journal in a `PostgreSQL` database.
pub(crate) struct PgStore {
    url: PgUrl,
    pool: Pool,
    owner: String,
    lease: Duration,
    retry_for: Duration,
    read_only: bool,
    /// Numbers this store's step rows, so a retried insert is known again.
    calls: AtomicU64,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL's Display carries no password.
        f.debug_struct("PgStore")
            .field("url", &self.url.to_string())
            .field("owner", &self.owner)
            .field("pool_size", &self.pool.max_size())
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects and applies the schema migrations.
    pub(crate) fn open(url: &PgUrl, options: &JournalOptions) -> Result<Self, JournalError> {
        let store = Self {
            url: url.clone(),
            pool: pool(url, options.pool_size)?,
            owner: owner_id()?,
            lease: options.lease,
            retry_for: options.busy_timeout,
            read_only: options.read_only,
            calls: AtomicU64::new(0),
        };
        let deadline = Instant::now() + store.retry_for;
        if store.read_only {
            // Nothing is created by a reader: a database no station has
            // opened yet has no tables to read.
            let mut first = first_connection(url, deadline)?;
            let created: Option<String> = first
                .query_one("SELECT to_regclass('schema_version')::text", &[])?
                .get(0);
            if created.is_none() {
                return Err(JournalError::NoSharedJournal {
                    url: url.to_string(),
                });
            }
        } else {
            first_connection_migrated(url, deadline)?;
        }
        Ok(store)
    }

    /// A name for one call's row, the same on every retry of the call:
    /// this store's owner and a number.
    fn call_id(&self) -> String {
        format!(
            "{}:{}",
            self.owner,
            self.calls.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Runs `work` on a connection of the pool, retrying with backoff while
    /// the server is unreachable (no connection checked out in time) or the
    /// transaction met a deadlock; `work` learns whether this is a retry (a
    /// lost answer may have committed the change already).
    fn with_client<T>(
        &self,
        mut work: impl FnMut(&mut Client, bool) -> Result<T, JournalError>,
    ) -> Result<T, JournalError> {
        let deadline = Instant::now() + self.retry_for;
        // The connection goes back to the pool at the end of the call; one
        // the failure closed is dropped there.
        with_backoff(deadline, |retried| {
            checkout(&self.pool, deadline).and_then(|mut client| work(&mut client, retried))
        })
    }

    /// Runs `work` in one transaction (retried as [`Self::with_client`]).
    fn in_tx<T>(
        &self,
        mut work: impl FnMut(&mut Transaction<'_>, bool) -> Result<T, JournalError>,
    ) -> Result<T, JournalError> {
        if self.read_only {
            return Err(JournalError::ReadOnly);
        }
        self.with_client(|client, retried| {
            let mut tx = client.transaction()?;
            let value = work(&mut tx, retried)?;
            tx.commit()?;
            Ok(value)
        })
    }

    /// One validated transition in one transaction; `change` adjusts the
    /// status (and cards) inside it. On a retry, an application already in
    /// `to` (on `card`, when given) is the lost answer of the first attempt.
    fn transition(
        &self,
        tracking: &TrackingCode,
        to: State,
        card: Option<&str>,
        change: impl Fn(&mut Transaction<'_>, &mut Status) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        self.in_tx(|tx, retried| {
            let mut status = load(tx, tracking, true)?;
            let from = status.state;
            let same_card = card.is_none_or(|c| status.card_serial.as_deref() == Some(c));
            if retried && from == to && to != State::Queued && same_card {
                return Ok(());
            }
            if !from.can_go(to) {
                return Err(JournalError::InvalidTransition {
                    tracking: tracking.clone(),
                    from,
                    to,
                });
            }
            change(tx, &mut status)?;
            status.state = to;
            if to == State::Queued {
                status.reason = None;
            }
            tx.execute(
                &format!(
                    "UPDATE applications SET state = $2, station = $3, reader = $4, card_serial = $5,
                     vendor_profile = $6, reason = $7, updated_at_ms = {NOW_MS}, owner = NULL,
                     lease_until_ms = NULL WHERE tracking = $1"
                ),
                &[
                    &tracking.as_str(),
                    &to.as_str(),
                    &status.station,
                    &status.reader,
                    &status.card_serial,
                    &status.vendor_profile,
                    &status.reason,
                ],
            )?;
            log_event(tx, from, &status)?;
            Ok(())
        })
    }
}

impl JournalStore for PgStore {
    fn owner(&self) -> &str {
        &self.owner
    }

    fn renew_leases(&self) -> Result<usize, JournalError> {
        let lease = millis(self.lease);
        let owner = self.owner.clone();
        self.in_tx(|tx, _| {
            // SKIP LOCKED: the renewal never waits on a row. Taking every
            // claimed row of this station in the table's order while a
            // batch load (which takes known rows in the file's order) held
            // some of them was a deadlock; a row locked right now is being
            // moved on (by this station's reader, a reclaim, a load) and is
            // renewed by the next call (every claim renews).
            let n = tx.execute(
                &format!(
                    "UPDATE applications SET lease_until_ms = {NOW_MS} + $2
                     WHERE tracking IN (SELECT tracking FROM applications
                                        WHERE state = 'claimed' AND owner = $1
                                        FOR NO KEY UPDATE SKIP LOCKED)"
                ),
                &[&owner, &lease],
            )?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    fn reclaim_expired(&self) -> Result<Vec<TrackingCode>, JournalError> {
        self.in_tx(|tx, _| {
            // SKIP LOCKED: a claim another station is moving on right now is
            // not expired for long; it is left to that station.
            let rows = tx.query(
                &format!(
                    "SELECT tracking, station, reader, card_serial, vendor_profile, attempts, batch_id
                     FROM applications WHERE state = 'claimed'
                       AND (lease_until_ms IS NULL OR lease_until_ms <= {NOW_MS})
                     ORDER BY tracking FOR UPDATE SKIP LOCKED"
                ),
                &[],
            )?;
            let mut reclaimed = Vec::with_capacity(rows.len());
            for row in rows {
                let tracking = parse_tracking(row.get::<_, &str>(0))?;
                let mut status = load(tx, &tracking, false)?;
                let from = status.state;
                // The rule is the state machine's, as for every transition.
                if !from.can_go(State::Queued) {
                    continue;
                }
                tx.execute(
                    &format!(
                        "UPDATE applications SET state = 'queued', station = NULL, reader = NULL,
                         reason = NULL, updated_at_ms = {NOW_MS}, owner = NULL, lease_until_ms = NULL
                         WHERE tracking = $1"
                    ),
                    &[&tracking.as_str()],
                )?;
                status.state = State::Queued;
                status.station = None;
                status.reader = None;
                status.reason = None;
                log_event(tx, from, &status)?;
                reclaimed.push(tracking);
            }
            Ok(reclaimed)
        })
    }

    fn enqueue_batch(
        &self,
        batch: &str,
        codes: &[&TrackingCode],
    ) -> Result<EnqueueReport, JournalError> {
        let batch = bounded("batch name", batch)?;
        self.in_tx(|tx, _| enqueue(tx, batch, codes))
    }

    fn reject(
        &self,
        batch: &str,
        rejected: &[(&TrackingCode, &str)],
    ) -> Result<EnqueueReport, JournalError> {
        let batch = bounded("batch name", batch)?;
        let rejected: Vec<(&TrackingCode, &str)> = rejected
            .iter()
            .map(|&(code, reason)| Ok((code, bounded("reason", reason)?)))
            .collect::<Result<_, JournalError>>()?;
        let codes: Vec<&TrackingCode> = rejected.iter().map(|(code, _)| *code).collect();
        self.in_tx(|tx, _| {
            let report = enqueue(tx, batch, &codes)?;
            let batch_id = batch_id(tx, batch)?;
            for (code, reason) in &rejected {
                let mut status = load(tx, code, true)?;
                let mine: i64 = tx
                    .query_one(
                        "SELECT batch_id FROM applications WHERE tracking = $1",
                        &[&code.as_str()],
                    )?
                    .get(0);
                if status.state != State::Queued || mine != batch_id {
                    continue;
                }
                status.state = State::Failed;
                status.reason = Some((*reason).to_owned());
                tx.execute(
                    &format!(
                        "UPDATE applications SET state = 'failed', reason = $2, updated_at_ms = {NOW_MS}
                         WHERE tracking = $1"
                    ),
                    &[&code.as_str(), reason],
                )?;
                log_event(tx, State::Queued, &status)?;
            }
            Ok(report)
        })
    }

    fn claim_next(&self, station: &str, reader: &str) -> Result<Option<Claim>, JournalError> {
        let (station, reader) = (bounded("station", station)?, bounded("reader", reader)?);
        let owner = self.owner.clone();
        let lease = millis(self.lease);
        self.in_tx(|tx, retried| {
            if retried {
                // A claim whose answer was lost is ours: hand it out again.
                if let Some(row) = tx.query_opt(
                    "SELECT a.tracking, b.name, a.attempts FROM applications a
                     JOIN batches b ON b.id = a.batch_id
                     WHERE a.state = 'claimed' AND a.owner = $1 AND a.station = $2 AND a.reader = $3
                     ORDER BY a.updated_at_ms DESC LIMIT 1",
                    &[&owner, &station, &reader],
                )? {
                    return Ok(Some(Claim {
                        tracking: parse_tracking(row.get::<_, &str>(0))?,
                        batch: row.get(1),
                        attempt: attempts(row.get(2))?,
                        station: station.into(),
                        reader: reader.into(),
                    }));
                }
            }
            let Some(row) = tx.query_opt(
                "SELECT tracking FROM applications WHERE state = 'queued'
                 ORDER BY batch_id, seq LIMIT 1 FOR UPDATE SKIP LOCKED",
                &[],
            )?
            else {
                return Ok(None);
            };
            let tracking = parse_tracking(row.get::<_, &str>(0))?;
            let current = load(tx, &tracking, false)?;
            if !current.state.can_go(State::Claimed) {
                return Err(JournalError::InvalidTransition {
                    tracking,
                    from: current.state,
                    to: State::Claimed,
                });
            }
            let attempt = current.attempts.saturating_add(1);
            tx.execute(
                &format!(
                    "UPDATE applications SET state = 'claimed', station = $2, reader = $3,
                     card_serial = NULL, vendor_profile = NULL, reason = NULL, attempts = $4,
                     updated_at_ms = {NOW_MS}, owner = $5, lease_until_ms = {NOW_MS} + $6
                     WHERE tracking = $1"
                ),
                &[
                    &tracking.as_str(),
                    &station,
                    &reader,
                    &i64::from(attempt),
                    &owner,
                    &lease,
                ],
            )?;
            let batch = current.batch.clone();
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
            log_event(tx, State::Queued, &after)?;
            Ok(Some(Claim {
                tracking,
                batch,
                attempt,
                station: station.into(),
                reader: reader.into(),
            }))
        })
    }

    fn release(&self, tracking: &TrackingCode) -> Result<(), JournalError> {
        self.transition(tracking, State::Queued, None, |_, status| {
            status.station = None;
            status.reader = None;
            Ok(())
        })
    }

    fn requeue(&self, tracking: &TrackingCode) -> Result<(), JournalError> {
        self.transition(tracking, State::Queued, None, |_, status| {
            status.card_serial = None;
            status.vendor_profile = None;
            Ok(())
        })
    }

    fn mark_writing(
        &self,
        tracking: &TrackingCode,
        card_serial: &str,
        vendor_profile: &str,
    ) -> Result<(), JournalError> {
        let serial = bounded("card serial", card_serial)?;
        let vendor = bounded("vendor profile", vendor_profile)?;
        let me = self.owner.clone();
        self.transition(tracking, State::Writing, Some(serial), |tx, status| {
            check_writer(status, &me, serial, || {
                Ok(tx
                    .query_one(
                        "SELECT owner FROM applications WHERE tracking = $1",
                        &[&tracking.as_str()],
                    )?
                    .get(0))
            })?;
            take_card(tx, serial, tracking)?;
            status.card_serial = Some(serial.into());
            status.vendor_profile = Some(vendor.into());
            Ok(())
        })
    }

    fn mark_step_started(&self, tracking: &TrackingCode, step: &str) -> Result<(), JournalError> {
        let name = bounded("step name", step)?;
        let call = self.call_id();
        self.in_tx(|tx, _| {
            let status = load(tx, tracking, true)?;
            check_step(&status, true)?;
            tx.execute(
                &format!(
                    "INSERT INTO step_starts (tracking, attempt, card_serial, step, at_ms, call_id)
                     VALUES ($1, $2, $3, $4, {NOW_MS}, $5) ON CONFLICT (call_id) DO NOTHING"
                ),
                &[
                    &tracking.as_str(),
                    &i64::from(status.attempts),
                    &status.card_serial,
                    &name,
                    &call,
                ],
            )?;
            Ok(())
        })
    }

    fn mark_step(&self, tracking: &TrackingCode, step: &Step) -> Result<(), JournalError> {
        let name = bounded("step name", &step.name)?;
        let call = self.call_id();
        self.in_tx(|tx, _| {
            let status = load(tx, tracking, true)?;
            check_step(&status, false)?;
            tx.execute(
                &format!(
                    "INSERT INTO steps (tracking, attempt, card_serial, step, duration_us, apdus,
                     bytes_sent, bytes_received, at_ms, call_id)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, {NOW_MS}, $9) ON CONFLICT (call_id) DO NOTHING"
                ),
                &[
                    &tracking.as_str(),
                    &i64::from(status.attempts),
                    &status.card_serial,
                    &name,
                    &i64::try_from(step.duration.as_micros()).unwrap_or(i64::MAX),
                    &i64::from(step.apdus),
                    &i64::try_from(step.bytes_sent).unwrap_or(i64::MAX),
                    &i64::try_from(step.bytes_received).unwrap_or(i64::MAX),
                    &call,
                ],
            )?;
            Ok(())
        })
    }

    fn mark_written(&self, tracking: &TrackingCode) -> Result<(), JournalError> {
        self.transition(tracking, State::Written, None, |_, _| Ok(()))
    }

    fn mark_verified(&self, tracking: &TrackingCode) -> Result<(), JournalError> {
        self.transition(tracking, State::Verified, None, |tx, status| {
            set_card(tx, status, "issued")
        })
    }

    fn mark_failed(&self, tracking: &TrackingCode, reason: &str) -> Result<(), JournalError> {
        let reason = bounded("reason", reason)?;
        self.transition(tracking, State::Failed, None, |tx, status| {
            status.reason = Some(reason.to_owned());
            set_card(tx, status, "released")
        })
    }

    fn mark_spoiled(&self, tracking: &TrackingCode, reason: &str) -> Result<(), JournalError> {
        let reason = bounded("reason", reason)?;
        self.transition(tracking, State::Spoiled, None, |tx, status| {
            status.reason = Some(reason.to_owned());
            set_card(tx, status, "spoiled")
        })
    }

    fn status(&self, tracking: &TrackingCode) -> Result<Status, JournalError> {
        self.with_client(|client, _| load(client, tracking, false))
    }

    fn recover(&self) -> Result<Vec<Unfinished>, JournalError> {
        self.with_client(|client, _| {
            let rows = client.query(
                "SELECT tracking FROM applications WHERE state IN ('claimed', 'writing', 'written')
                 ORDER BY updated_at_ms, tracking",
                &[],
            )?;
            rows.iter()
                .map(|row| Unfinished::of(load(client, &parse_tracking(row.get(0))?, false)?))
                .collect()
        })
    }

    fn unfinished_for_card(&self, card_serial: &str) -> Result<Option<Unfinished>, JournalError> {
        let serial = bounded("card serial", card_serial)?;
        self.with_client(|client, _| {
            let row = client.query_opt(
                "SELECT tracking FROM applications
                 WHERE card_serial = $1 AND state IN ('claimed', 'writing', 'written')
                 ORDER BY updated_at_ms, tracking LIMIT 1",
                &[&serial],
            )?;
            row.map(|row| Unfinished::of(load(client, &parse_tracking(row.get(0))?, false)?))
                .transpose()
        })
    }

    fn report(&self) -> Result<Report, JournalError> {
        self.with_client(|client, _| report(client))
    }

    fn open_batch(&self, name: &str) -> Result<i64, JournalError> {
        let name = bounded("batch name", name)?;
        self.in_tx(|tx, _| {
            tx.execute(
                &format!(
                    "INSERT INTO batches (name, enqueued_at_ms) VALUES ($1, {NOW_MS})
                     ON CONFLICT (name) DO NOTHING"
                ),
                &[&name],
            )?;
            batch_id(tx, name)
        })
    }

    fn adopt_batch(&self, legacy: &str, name: &str) -> Result<bool, JournalError> {
        let (legacy, name) = (bounded("batch name", legacy)?, bounded("batch name", name)?);
        if legacy == name {
            return Ok(false);
        }
        self.in_tx(|tx, _| {
            let renamed = tx.execute(
                "UPDATE batches SET name = $2 WHERE name = $1
                   AND NOT EXISTS (SELECT 1 FROM batches WHERE name = $2)
                   AND NOT EXISTS (SELECT 1 FROM applications a JOIN records r ON r.tracking = a.tracking
                                   WHERE a.batch_id = batches.id)",
                &[&legacy, &name],
            )?;
            Ok(renamed == 1)
        })
    }

    fn load_rows(&self, batch: i64, rows: Vec<BatchRow>) -> Result<RowsLoaded, JournalError> {
        // Retried as a whole: a chunk whose commit answer was lost is found
        // again as a re-run (the rules are idempotent).
        self.in_tx(|tx, _| {
            // Stations loading batches at once take turns: the batch rules
            // read what other rows (of any batch) hold, so two loads of one
            // batch must not both find a row new.
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&BATCH_LOAD_LOCK])?;
            let mut loaded = RowsLoaded::default();
            let mut ops = records::PgRows(tx);
            for row in rows.iter().cloned() {
                super::records::load_row(&mut ops, batch, row, &mut loaded)?;
            }
            Ok(loaded)
        })
    }

    fn record(&self, tracking: &TrackingCode) -> Result<Option<StoredRecord>, JournalError> {
        self.with_client(|client, _| records::record(client, tracking))
    }

    fn superseded_by(
        &self,
        tracking: &TrackingCode,
    ) -> Result<Option<(TrackingCode, Option<String>)>, JournalError> {
        self.with_client(|client, _| records::superseded_by(client, tracking))
    }

    fn superseded(&self) -> Result<Vec<Superseded>, JournalError> {
        self.with_client(|client, _| records::superseded(client))
    }

    fn stranded(&self, older_than: Option<Duration>) -> Result<Vec<Stranded>, JournalError> {
        let age = older_than.map_or(i64::MIN, millis);
        self.with_client(|client, _| {
            let rows = client.query(
                &format!(
                    "SELECT tracking, state, card_serial, vendor_profile, station, reader, updated_at_ms
                     FROM applications
                     WHERE state IN ('writing', 'written') AND card_serial IS NOT NULL
                       AND ($1 = {min} OR updated_at_ms <= {NOW_MS} - $1)
                     ORDER BY updated_at_ms, tracking",
                    min = i64::MIN
                ),
                &[&age],
            )?;
            rows.iter()
                .map(|row| {
                    let state: &str = row.get(1);
                    Ok(Stranded {
                        tracking: parse_tracking(row.get(0))?,
                        state: known_state(state)?,
                        card_serial: row.get(2),
                        vendor_profile: row.get(3),
                        station: row.get(4),
                        reader: row.get(5),
                        since: std::time::UNIX_EPOCH
                            + Duration::from_millis(u64::try_from(row.get::<_, i64>(6)).unwrap_or(0)),
                    })
                })
                .collect()
        })
    }
}

fn batch_id(tx: &mut impl GenericClient, name: &str) -> Result<i64, JournalError> {
    Ok(tx
        .query_one("SELECT id FROM batches WHERE name = $1", &[&name])?
        .get(0))
}

/// Inserts `codes` as queued applications of `batch`; one already in the
/// journal (loaded by this or any station) is left as it is.
fn enqueue(
    tx: &mut Transaction<'_>,
    batch: &str,
    codes: &[&TrackingCode],
) -> Result<EnqueueReport, JournalError> {
    tx.execute(
        &format!(
            "INSERT INTO batches (name, enqueued_at_ms) VALUES ($1, {NOW_MS})
             ON CONFLICT (name) DO NOTHING"
        ),
        &[&batch],
    )?;
    let batch_id = batch_id(tx, batch)?;
    let insert = tx.prepare(&format!(
        "INSERT INTO applications (tracking, batch_id, seq, state, updated_at_ms)
         VALUES ($1, $2, $3, 'queued', {NOW_MS}) ON CONFLICT (tracking) DO NOTHING"
    ))?;
    let owner = tx.prepare("SELECT batch_id FROM applications WHERE tracking = $1")?;
    let mut report = EnqueueReport::default();
    for (index, code) in codes.iter().enumerate() {
        let seq = i64::try_from(index).unwrap_or(i64::MAX);
        if tx.execute(&insert, &[&code.as_str(), &batch_id, &seq])? == 1 {
            report.added += 1;
        } else if tx.query_one(&owner, &[&code.as_str()])?.get::<_, i64>(0) == batch_id {
            report.already_present += 1;
        } else {
            report.in_other_batch.push((*code).clone());
        }
    }
    Ok(report)
}

/// Loads one application's status; `lock` takes its row for the
/// transaction (another station's transition on it waits).
pub(super) fn load(
    client: &mut impl GenericClient,
    tracking: &TrackingCode,
    lock: bool,
) -> Result<Status, JournalError> {
    let sql = format!(
        "SELECT b.name, a.state, a.card_serial, a.vendor_profile, a.station, a.reader, a.attempts, a.reason,
             (SELECT s.step FROM step_starts s WHERE s.tracking = a.tracking AND s.attempt = a.attempts
              ORDER BY s.id DESC LIMIT 1)
         FROM applications a JOIN batches b ON b.id = a.batch_id WHERE a.tracking = $1{}",
        if lock { " FOR UPDATE OF a" } else { "" }
    );
    let Some(row) = client.query_opt(&sql, &[&tracking.as_str()])? else {
        return Err(JournalError::UnknownApplication(tracking.clone()));
    };
    Ok(Status {
        tracking: tracking.clone(),
        batch: row.get(0),
        state: known_state(row.get(1))?,
        card_serial: row.get(2),
        vendor_profile: row.get(3),
        station: row.get(4),
        reader: row.get(5),
        attempts: attempts(row.get(6))?,
        reason: row.get(7),
        last_step: row.get(8),
    })
}

pub(super) fn known_state(name: &str) -> Result<State, JournalError> {
    State::from_name(name).ok_or_else(|| JournalError::Corrupt(format!("unknown state {name:?}")))
}

fn attempts(stored: i64) -> Result<u32, JournalError> {
    u32::try_from(stored).map_err(|_| JournalError::Corrupt(format!("attempts {stored}")))
}

pub(super) fn log_event(
    tx: &mut Transaction<'_>,
    from: State,
    after: &Status,
) -> Result<(), JournalError> {
    tx.execute(
        &format!(
            "INSERT INTO events (tracking, attempt, from_state, to_state, card_serial, station, reader,
             vendor_profile, reason, at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, {NOW_MS})"
        ),
        &[
            &after.tracking.as_str(),
            &i64::from(after.attempts),
            &from.as_str(),
            &after.state.as_str(),
            &after.card_serial,
            &after.station,
            &after.reader,
            &after.vendor_profile,
            &after.reason,
        ],
    )?;
    Ok(())
}

/// Assigns a card to an application, refusing cards that are taken; the
/// card's row is locked so two stations cannot take one card at once.
fn take_card(
    tx: &mut Transaction<'_>,
    serial: &str,
    tracking: &TrackingCode,
) -> Result<(), JournalError> {
    let holder = tx.query_opt(
        "SELECT tracking, status FROM cards WHERE serial = $1 FOR UPDATE",
        &[&serial],
    )?;
    let holder: Option<(String, String)> = holder.map(|row| (row.get(0), row.get(1)));
    check_card_holder(serial, tracking, holder.as_ref())?;
    // Two stations inserting one new serial at once: the primary key makes
    // the second fail and its transaction roll back.
    let sql = if holder.is_some() {
        "UPDATE cards SET tracking = $2, status = 'in_use' WHERE serial = $1"
    } else {
        "INSERT INTO cards (serial, tracking, status) VALUES ($1, $2, 'in_use')"
    };
    tx.execute(sql, &[&serial, &tracking.as_str()])?;
    Ok(())
}

fn set_card(
    tx: &mut Transaction<'_>,
    status: &Status,
    card_status: &str,
) -> Result<(), JournalError> {
    if let Some(serial) = &status.card_serial {
        tx.execute(
            "UPDATE cards SET status = $2 WHERE serial = $1",
            &[serial, &card_status],
        )?;
    }
    Ok(())
}

fn count(stored: i64) -> u64 {
    u64::try_from(stored).unwrap_or(0)
}

/// The same figures as the `SQLite` report, over every station.
fn report(client: &mut Client) -> Result<Report, JournalError> {
    let mut report = Report::default();
    for row in client.query(
        "SELECT state, count(*) FROM applications GROUP BY state",
        &[],
    )? {
        let n = count(row.get(1));
        match row.get::<_, &str>(0) {
            "verified" => report.issued += n,
            "failed" => report.failed += n,
            "spoiled" => report.spoiled += n,
            "queued" => report.pending += n,
            _ => report.in_progress += n,
        }
    }
    report.reasons = client
        .query(
            "SELECT coalesce(reason, '(no reason)'), count(*) FROM events
             WHERE to_state IN ('failed', 'spoiled') GROUP BY 1 ORDER BY 2 DESC, 1",
            &[],
        )?
        .iter()
        .map(|row| (row.get(0), count(row.get(1))))
        .collect();
    report.per_vendor = client
        .query(
            "SELECT vendor_profile, count(*) FILTER (WHERE state = 'verified'),
                    count(*) FILTER (WHERE state = 'failed'), count(*) FILTER (WHERE state = 'spoiled')
             FROM applications WHERE vendor_profile IS NOT NULL
             GROUP BY vendor_profile ORDER BY vendor_profile",
            &[],
        )?
        .iter()
        .map(|row| VendorCounts {
            vendor_profile: row.get(0),
            issued: count(row.get(1)),
            failed: count(row.get(2)),
            spoiled: count(row.get(3)),
        })
        .collect();
    report.per_day = client
        .query(
            "SELECT to_char(to_timestamp(at_ms / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
                    count(*) FILTER (WHERE to_state = 'verified'),
                    count(*) FILTER (WHERE to_state = 'failed'),
                    count(*) FILTER (WHERE to_state = 'spoiled')
             FROM events WHERE to_state IN ('verified', 'failed', 'spoiled') GROUP BY 1 ORDER BY 1",
            &[],
        )?
        .iter()
        .map(|row| DayCounts {
            day: row.get(0),
            issued: count(row.get(1)),
            failed: count(row.get(2)),
            spoiled: count(row.get(3)),
        })
        .collect();
    report.steps = client
        .query(
            "SELECT step, count(*), div(sum(duration_us), count(*))::bigint, max(duration_us), sum(apdus)::bigint,
                    sum(bytes_sent)::bigint, sum(bytes_received)::bigint
             FROM steps GROUP BY step ORDER BY step",
            &[],
        )?
        .iter()
        .map(|row| StepTiming {
            step: row.get(0),
            count: count(row.get(1)),
            mean_us: count(row.get(2)),
            max_us: count(row.get(3)),
            apdus: count(row.get(4)),
            bytes_sent: count(row.get(5)),
            bytes_received: count(row.get(6)),
        })
        .collect();
    floor(client, &mut report)?;
    Ok(report)
}

/// The floor sections of the report (per station, the failed applications):
/// the same figures as the `SQLite` store's.
fn floor(client: &mut Client, report: &mut Report) -> Result<(), JournalError> {
    let outcomes = client.query(
        "SELECT coalesce(station, '(no station)'), count(*) FILTER (WHERE to_state = 'verified'),
                count(*) FILTER (WHERE to_state = 'failed'), count(*) FILTER (WHERE to_state = 'spoiled')
         FROM events WHERE to_state IN ('verified', 'failed', 'spoiled') GROUP BY 1",
        &[],
    )?;
    let holding = client.query(
        "SELECT station, count(*) FROM applications
         WHERE state IN ('claimed', 'writing', 'written') AND station IS NOT NULL GROUP BY 1",
        &[],
    )?;
    report.per_station = super::report::per_station(
        outcomes.iter().map(|row| {
            (
                row.get(0),
                count(row.get(1)),
                count(row.get(2)),
                count(row.get(3)),
            )
        }),
        holding.iter().map(|row| (row.get(0), count(row.get(1)))),
    );
    report.failures = client
        .query(
            "SELECT tracking, state, coalesce(reason, '(no reason)'), station, reader, card_serial,
                    attempts, updated_at_ms
             FROM applications WHERE state IN ('failed', 'spoiled') ORDER BY updated_at_ms, tracking",
            &[],
        )?
        .iter()
        .map(|row| super::report::Failure {
            tracking: row.get(0),
            state: row.get(1),
            reason: row.get(2),
            station: row.get(3),
            reader: row.get(4),
            card_serial: row.get(5),
            attempts: count(row.get(6)),
            at: super::report::from_ms(row.get(7)),
        })
        .collect();
    Ok(())
}

/// A pool of `size` connections to the shared journal, its schema migrated
/// (for the CRN register, which lives in the same database); the first
/// connection is waited for at most until `deadline`.
pub(crate) fn pool_migrated(
    url: &PgUrl,
    size: u32,
    deadline: Instant,
) -> Result<Pool, JournalError> {
    first_connection_migrated(url, deadline)?;
    pool(url, size)
}

/// A connection to the shared journal with its schema migrated (for the
/// migration of an `SQLite` journal into it).
pub(crate) fn connect_migrated(url: &PgUrl) -> Result<Client, JournalError> {
    let mut client = url.connect()?;
    schema::migrate(&mut client)?;
    Ok(client)
}
