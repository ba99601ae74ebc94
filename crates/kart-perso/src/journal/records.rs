//! Validated records in the journal: a batch is streamed into the journal
//! row by row (in batched transactions), and a station reads one record —
//! then its photo — only when it claims the application.
//!
//! The batch-level rules are enforced here, against everything the journal
//! knows, not only the rows of one file:
//! - a tracking code on two rows of one batch rejects both rows;
//! - a tracking code of another batch is reported (issued on card X, queued
//!   in batch Y…) and left as it is;
//! - a national code with a live application (queued, in progress or
//!   issued) rejects the later row, unless the row is a replacement: then
//!   the earlier application is superseded (a queued one is failed, an
//!   issued one's card recorded as superseded).
//!
//! ```
//! use kart_perso::journal::{BatchRow, Journal, StoredRecord};
//! use kart_perso::record::{RecordError, TrackingCode};
//! # let dir = tempfile::tempdir()?;
//! let journal = Journal::open(dir.path().join("journal.db"))?;
//! let batch = journal.open_batch("batch.csv@0123456789abcdef")?;
//! let record = StoredRecord::example(TrackingCode::parse("140409040007").unwrap(), 2, "0012345679");
//! let loaded = journal.load_rows(batch, vec![BatchRow::Valid { seq: 0, record: Box::new(record.clone()) }])?;
//! assert_eq!(loaded.queued, 1);
//! assert_eq!(journal.record(&record.tracking)?.unwrap().national_code, "0012345679");
//! // The same code on another line of the same batch: both rows are rejected.
//! let again = StoredRecord { line: 5, ..record };
//! let loaded = journal.load_rows(batch, vec![BatchRow::Valid { seq: 3, record: Box::new(again) }])?;
//! let lines: Vec<u64> = loaded.rejected.iter().map(|e: &RecordError| e.line).collect();
//! assert_eq!(lines, [5, 2]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};

use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};

use super::sqlite::{load, log_event, SqliteStore};
use super::{bounded, now_ms, parse_tracking, JournalError, State};
use crate::record::{Field, FieldError, IdentityRecord, Problem, RecordError, TrackingCode};

/// A validated record as the journal keeps it: the fields in their
/// validated (normalized) text, the photo as its resolved path — never its
/// bytes — and whether the batch set a PIN (the PIN itself is never stored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecord {
    /// The application.
    pub tracking: TrackingCode,
    /// Its line in the batch file.
    pub line: u64,
    /// National code.
    pub national_code: String,
    /// Given name, Persian.
    pub given_name_fa: String,
    /// Family name, Persian.
    pub family_name_fa: String,
    /// Father's name, Persian.
    pub father_name_fa: String,
    /// Given name, Latin.
    pub given_name_en: String,
    /// Family name, Latin.
    pub family_name_en: String,
    /// Father's name, Latin.
    pub father_name_en: String,
    /// Birth date, Solar Hijri `YYYY/MM/DD`.
    pub birth_date: String,
    /// `M`, `F` or `X`.
    pub gender: String,
    /// The photo file, resolved.
    pub photo: PathBuf,
    /// The fingerprint template file, if any.
    pub fingerprint: Option<PathBuf>,
    /// The batch set a PIN for it (kept in the station's memory only).
    pub has_pin: bool,
    /// The row replaces the holder's earlier card.
    pub replacement: bool,
}

impl StoredRecord {
    /// What the journal keeps of a validated record.
    pub fn of(record: &IdentityRecord) -> Self {
        Self {
            tracking: record.tracking_code.clone(),
            line: record.line,
            national_code: record.national_code.as_str().to_owned(),
            given_name_fa: record.given_name.fa.as_str().to_owned(),
            family_name_fa: record.family_name.fa.as_str().to_owned(),
            father_name_fa: record.father_name.fa.as_str().to_owned(),
            given_name_en: record.given_name.en.as_str().to_owned(),
            family_name_en: record.family_name.en.as_str().to_owned(),
            father_name_en: record.father_name.en.as_str().to_owned(),
            birth_date: record.birth_date.to_string(),
            gender: record.gender.code().to_string(),
            photo: record.photo_path.clone(),
            fingerprint: record.fingerprint.clone(),
            has_pin: record.pin.is_some(),
            replacement: record.replacement,
        }
    }

    /// A plausible record for examples and tests (photo `face.jpg`).
    pub fn example(tracking: TrackingCode, line: u64, national_code: &str) -> Self {
        Self {
            tracking,
            line,
            national_code: national_code.to_owned(),
            given_name_fa: "علی".into(),
            family_name_fa: "کریمی".into(),
            father_name_fa: "حسین".into(),
            given_name_en: "ALI".into(),
            family_name_en: "KARIMI".into(),
            father_name_en: "HOSSEIN".into(),
            birth_date: "1369/06/30".into(),
            gender: "M".into(),
            photo: PathBuf::from("face.jpg"),
            fingerprint: None,
            has_pin: false,
            replacement: false,
        }
    }
}

/// One row of a batch with a valid tracking code, in file order.
#[derive(Clone, Debug)]
pub enum BatchRow {
    /// A valid record.
    Valid {
        /// Its position in the file (the queue order).
        seq: u64,
        /// The record.
        record: Box<StoredRecord>,
    },
    /// A rejected record whose tracking code itself is valid.
    Rejected {
        /// Its position in the file.
        seq: u64,
        /// Why (its `tracking_code` is `Some`).
        error: RecordError,
    },
}

/// What [`Journal::load_rows`] did with a chunk of rows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RowsLoaded {
    /// Applications newly queued.
    pub queued: usize,
    /// Rows of this batch already in the journal (a re-run).
    pub already_present: usize,
    /// The valid rows that now stand for their application (newly queued
    /// or re-run): the caller keeps their batch PINs, no other row's.
    pub accepted: Vec<TrackingCode>,
    /// Every rejected row with its reasons: those given, with the batch
    /// rules' findings added, and the rows the rules reject (both rows of a
    /// repeated tracking code, a second live application of a holder).
    pub rejected: Vec<RecordError>,
    /// Earlier applications superseded by a replacement row: (earlier
    /// application, its card if issued, the replacement).
    pub superseded: Vec<(TrackingCode, Option<String>, TrackingCode)>,
}

/// Longest reason stored for a rejected row.
const MAX_REASON: usize = 900;

impl SqliteStore {
    /// The journal's id of batch `name` (created if new). A batch is
    /// identified by its name: the station names it by file name and
    /// content hash.
    pub(super) fn open_batch(&mut self, name: &str) -> Result<i64, JournalError> {
        let name = bounded("batch name", name)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT OR IGNORE INTO batches (name, enqueued_at_ms) VALUES (?1, ?2)",
            params![name, now_ms()],
        )?;
        let id = tx.query_row("SELECT id FROM batches WHERE name = ?1", [name], |row| {
            row.get(0)
        })?;
        tx.commit()?;
        Ok(id)
    }

    /// Gives batch `legacy` — a batch loaded before records were kept,
    /// named by the path as then typed — the name `name`, when `legacy`
    /// exists, holds no stored record and `name` is not taken: a journal
    /// from before the upgrade then resumes its batch under its new name.
    /// `true` when renamed.
    pub(super) fn adopt_batch(&mut self, legacy: &str, name: &str) -> Result<bool, JournalError> {
        let (legacy, name) = (bounded("batch name", legacy)?, bounded("batch name", name)?);
        if legacy == name {
            return Ok(false);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let renamed = tx.execute(
            "UPDATE batches SET name = ?2 WHERE name = ?1
               AND NOT EXISTS (SELECT 1 FROM batches WHERE name = ?2)
               AND NOT EXISTS (SELECT 1 FROM applications a JOIN records r ON r.tracking = a.tracking
                               WHERE a.batch_id = batches.id)",
            params![legacy, name],
        )?;
        tx.commit()?;
        Ok(renamed == 1)
    }

    /// Loads a chunk of rows of batch `batch` (from [`Journal::open_batch`])
    /// in one transaction: valid new records are queued with their fields,
    /// rejected ones recorded as failed with their reasons, and the batch
    /// rules applied (see the module). Idempotent: the same rows again (a
    /// re-run) queue nothing twice. All or nothing.
    pub(super) fn load_rows(
        &mut self,
        batch: i64,
        rows: Vec<BatchRow>,
    ) -> Result<RowsLoaded, JournalError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut loaded = RowsLoaded::default();
        let mut ops = SqliteRows(&tx);
        for row in rows {
            load_row(&mut ops, batch, row, &mut loaded)?;
        }
        tx.commit()?;
        Ok(loaded)
    }

    /// The validated record of an application, if its batch row was valid.
    pub(super) fn record(
        &self,
        tracking: &TrackingCode,
    ) -> Result<Option<StoredRecord>, JournalError> {
        self.conn
            .query_row(
                "SELECT line, national_code, given_name_fa, family_name_fa, father_name_fa,
                        given_name_en, family_name_en, father_name_en, birth_date, gender,
                        photo, fingerprint, has_pin, replacement
                 FROM records WHERE tracking = ?1 AND national_code IS NOT NULL",
                [tracking.as_str()],
                |row| {
                    Ok(StoredRecord {
                        tracking: tracking.clone(),
                        line: row.get(0)?,
                        national_code: row.get(1)?,
                        given_name_fa: row.get(2)?,
                        family_name_fa: row.get(3)?,
                        father_name_fa: row.get(4)?,
                        given_name_en: row.get(5)?,
                        family_name_en: row.get(6)?,
                        father_name_en: row.get(7)?,
                        birth_date: row.get(8)?,
                        gender: row.get(9)?,
                        photo: path_from(&row.get::<_, Vec<u8>>(10)?),
                        fingerprint: row.get::<_, Option<Vec<u8>>>(11)?.map(|b| path_from(&b)),
                        has_pin: row.get(12)?,
                        replacement: row.get(13)?,
                    })
                },
            )
            .optional()
            .map_err(Into::into)
    }

    /// The application that superseded `tracking`, with the earlier card
    /// (if it was issued), when a replacement row replaced it.
    pub(super) fn superseded_by(
        &self,
        tracking: &TrackingCode,
    ) -> Result<Option<(TrackingCode, Option<String>)>, JournalError> {
        let found: Option<(String, Option<String>)> = self
            .conn
            .query_row(
                "SELECT by_tracking, card_serial FROM superseded WHERE tracking = ?1",
                [tracking.as_str()],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        found
            .map(|(by, card)| Ok((parse_tracking(&by)?, card)))
            .transpose()
    }
}

/// An application replaced by a later one for the same holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Superseded {
    /// The earlier application.
    pub tracking: TrackingCode,
    /// Its card, when it had been issued.
    pub card_serial: Option<String>,
    /// The replacement.
    pub by: TrackingCode,
    /// When the replacement was loaded.
    pub at: std::time::SystemTime,
}

impl SqliteStore {
    /// Every superseded application, oldest first.
    pub(super) fn superseded(&self) -> Result<Vec<Superseded>, JournalError> {
        let mut stmt = self.conn.prepare(
            "SELECT tracking, card_serial, by_tracking, at_ms FROM superseded ORDER BY at_ms, tracking",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, Option<String>>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (tracking, card_serial, by, at) = row?;
            out.push(Superseded {
                tracking: parse_tracking(&tracking)?,
                card_serial,
                by: parse_tracking(&by)?,
                at: std::time::UNIX_EPOCH
                    + std::time::Duration::from_millis(u64::try_from(at).unwrap_or(0)),
            });
        }
        Ok(out)
    }
}

/// An application already in the journal, as a row meets it.
pub(super) struct Known {
    pub(super) batch_id: i64,
    pub(super) batch: String,
    pub(super) state: State,
    pub(super) card_serial: Option<String>,
    pub(super) line: Option<u64>,
    /// Its stored row was valid (fields kept); `false` for a rejected row.
    pub(super) valid_row: bool,
    /// Why it failed, if it did.
    pub(super) reason: Option<String>,
}

/// The holder's live application a new row meets: its tracking code,
/// state, batch name, card and batch id.
pub(super) type Holder = (String, String, String, Option<String>, i64);

/// What the batch rules need from a store, inside the one transaction of a
/// chunk of rows: each store implements these; the rules (below) are
/// written once.
pub(super) trait RowOps {
    /// The application `tracking`, if the journal has it.
    fn known(&mut self, tracking: &TrackingCode) -> Result<Option<Known>, JournalError>;
    /// The holder's live application other than `tracking`, newest first.
    fn live_holder(
        &mut self,
        national_code: &str,
        tracking: &TrackingCode,
    ) -> Result<Option<Holder>, JournalError>;
    /// Inserts a queued application.
    fn insert_application(
        &mut self,
        batch: i64,
        seq: u64,
        tracking: &TrackingCode,
    ) -> Result<(), JournalError>;
    /// Stores the row's line and, for a valid row, its fields.
    fn put_record(
        &mut self,
        record: Option<&StoredRecord>,
        tracking: &TrackingCode,
        line: u64,
    ) -> Result<(), JournalError>;
    /// Fails a `queued` application with `reason` (recording the event);
    /// `false` (nothing changed) in any other state.
    fn fail_queued(&mut self, tracking: &TrackingCode, reason: &str) -> Result<bool, JournalError>;
    /// Records that `earlier` (with its card, if issued) is superseded by `by`.
    fn supersede(
        &mut self,
        earlier: &TrackingCode,
        by: &TrackingCode,
        card: Option<&str>,
    ) -> Result<(), JournalError>;
}

/// The `SQLite` store's primitives.
struct SqliteRows<'a, 'c>(&'a Transaction<'c>);

impl RowOps for SqliteRows<'_, '_> {
    fn known(&mut self, tracking: &TrackingCode) -> Result<Option<Known>, JournalError> {
        known(self.0, tracking)
    }

    fn live_holder(
        &mut self,
        national_code: &str,
        tracking: &TrackingCode,
    ) -> Result<Option<Holder>, JournalError> {
        Ok(self
            .0
            .prepare_cached(
                "SELECT r.tracking, a.state, b.name, a.card_serial, a.batch_id FROM records r
                 JOIN applications a ON a.tracking = r.tracking JOIN batches b ON b.id = a.batch_id
                 WHERE r.national_code = ?1 AND r.tracking <> ?2
                   AND a.state IN ('queued', 'claimed', 'writing', 'written', 'verified')
                   AND NOT EXISTS (SELECT 1 FROM superseded s WHERE s.tracking = r.tracking)
                 ORDER BY a.updated_at_ms DESC, r.tracking LIMIT 1",
            )?
            .query_row(params![national_code, tracking.as_str()], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            })
            .optional()?)
    }

    fn insert_application(
        &mut self,
        batch: i64,
        seq: u64,
        tracking: &TrackingCode,
    ) -> Result<(), JournalError> {
        insert_application(self.0, batch, seq, tracking)
    }

    fn put_record(
        &mut self,
        record: Option<&StoredRecord>,
        tracking: &TrackingCode,
        line: u64,
    ) -> Result<(), JournalError> {
        put_record(self.0, record, tracking, line)
    }

    fn fail_queued(&mut self, tracking: &TrackingCode, reason: &str) -> Result<bool, JournalError> {
        fail_queued(self.0, tracking, reason)
    }

    fn supersede(
        &mut self,
        earlier: &TrackingCode,
        by: &TrackingCode,
        card: Option<&str>,
    ) -> Result<(), JournalError> {
        self.0.execute(
            "INSERT INTO superseded (tracking, by_tracking, card_serial, at_ms)
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (tracking) DO NOTHING",
            params![earlier.as_str(), by.as_str(), card, now_ms()],
        )?;
        Ok(())
    }
}

fn known(tx: &Transaction<'_>, tracking: &TrackingCode) -> Result<Option<Known>, JournalError> {
    type Row = (
        i64,
        String,
        String,
        Option<String>,
        Option<u64>,
        bool,
        Option<String>,
    );
    let row: Option<Row> = tx
        .prepare_cached(
            "SELECT a.batch_id, b.name, a.state, a.card_serial, r.line,
                    r.national_code IS NOT NULL, a.reason
             FROM applications a JOIN batches b ON b.id = a.batch_id
             LEFT JOIN records r ON r.tracking = a.tracking
             WHERE a.tracking = ?1",
        )?
        .query_row([tracking.as_str()], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
                row.get(6)?,
            ))
        })
        .optional()?;
    row.map(
        |(batch_id, batch, state, card_serial, line, valid_row, reason)| {
            Ok(Known {
                batch_id,
                batch,
                state: State::from_name(&state)
                    .ok_or_else(|| JournalError::Corrupt(format!("unknown state {state:?}")))?,
                card_serial,
                line,
                valid_row,
                reason,
            })
        },
    )
    .transpose()
}

/// Applies the batch rules to one row.
pub(super) fn load_row(
    tx: &mut impl RowOps,
    batch: i64,
    row: BatchRow,
    loaded: &mut RowsLoaded,
) -> Result<(), JournalError> {
    let (seq, line, tracking) = match &row {
        BatchRow::Valid { seq, record } => (*seq, record.line, record.tracking.clone()),
        BatchRow::Rejected { seq, error } => {
            let Some(tracking) = error.tracking_code.clone() else {
                loaded.rejected.push(error.clone());
                return Ok(());
            };
            (*seq, error.line, tracking)
        }
    };
    match tx.known(&tracking)? {
        Some(k) if k.batch_id != batch => {
            let problem = Problem::KnownFromOtherBatch {
                tracking: tracking.clone(),
                batch: k.batch,
                state: k.state.as_str().to_owned(),
                card_serial: k.card_serial,
            };
            loaded
                .rejected
                .push(with_problem(row, &tracking, Field::TrackingCode, problem));
        }
        Some(k) if k.line.is_some_and(|first| first != line) => {
            let first = k.line.unwrap_or_default();
            let reason = format!(
                "line {first} and line {line} have the same tracking code {tracking}; both rows are rejected"
            );
            if tx.fail_queued(&tracking, &truncated(&reason))? {
                loaded.queued = loaded.queued.saturating_sub(1);
            }
            let problem = Problem::DuplicateTrackingCode { other_line: first };
            loaded
                .rejected
                .push(with_problem(row, &tracking, Field::TrackingCode, problem));
            loaded.rejected.push(problem_error(
                first,
                &tracking,
                Field::TrackingCode,
                Problem::DuplicateTrackingCode { other_line: line },
            ));
        }
        // A re-run of a valid row the batch rules rejected: rejected again.
        Some(k) if k.state == State::Failed && k.line.is_some() && !k.valid_row => {
            if let BatchRow::Valid { .. } = row {
                let problem = Problem::RejectedBefore {
                    reason: k.reason.unwrap_or_default(),
                };
                loaded
                    .rejected
                    .push(with_problem(row, &tracking, Field::TrackingCode, problem));
            } else if let BatchRow::Rejected { error, .. } = row {
                loaded.rejected.push(error);
            }
        }
        Some(_) => match row {
            // A re-run of the same batch.
            BatchRow::Valid { record, .. } => {
                tx.put_record(Some(&record), &tracking, line)?;
                loaded.already_present += 1;
                loaded.accepted.push(tracking);
            }
            BatchRow::Rejected { error, .. } => {
                tx.fail_queued(&tracking, &truncated(&reasons(&error)))?;
                tx.put_record(None, &tracking, line)?;
                loaded.rejected.push(error);
            }
        },
        None => match row {
            BatchRow::Valid { record, .. } => {
                new_valid(tx, batch, seq, &record, loaded)?;
            }
            BatchRow::Rejected { error, .. } => {
                insert_failed(tx, batch, seq, &tracking, line, &reasons(&error))?;
                loaded.rejected.push(error);
            }
        },
    }
    Ok(())
}

/// A valid row whose tracking code is new: the holder rule decides.
fn new_valid(
    tx: &mut impl RowOps,
    batch: i64,
    seq: u64,
    record: &StoredRecord,
    loaded: &mut RowsLoaded,
) -> Result<(), JournalError> {
    let tracking = record.tracking.clone();
    let live = tx.live_holder(&record.national_code, &tracking)?;
    let Some((earlier, state, earlier_batch, card, earlier_batch_id)) = live else {
        insert_queued(tx, batch, seq, record)?;
        loaded.queued += 1;
        loaded.accepted.push(tracking);
        return Ok(());
    };
    let earlier = parse_tracking(&earlier)?;
    let problem = match (record.replacement, state.as_str()) {
        (false, _) => Problem::NationalCodeLive {
            national_code: record.national_code.clone(),
            tracking: earlier,
            state,
            batch: earlier_batch,
        },
        (true, "queued" | "verified") => {
            insert_queued(tx, batch, seq, record)?;
            loaded.queued += 1;
            loaded.accepted.push(tracking.clone());
            let reason = format!(
                "superseded by application {tracking} (a replacement, line {})",
                record.line
            );
            if tx.fail_queued(&earlier, &truncated(&reason))? && earlier_batch_id == batch {
                loaded.queued = loaded.queued.saturating_sub(1);
            }
            tx.supersede(&earlier, &tracking, card.as_deref())?;
            loaded.superseded.push((earlier, card, tracking));
            return Ok(());
        }
        (true, _) => Problem::ReplacesUnfinished {
            tracking: earlier,
            state,
            card_serial: card.unwrap_or_default(),
        },
    };
    let error = problem_error(record.line, &tracking, Field::NationalCode, problem);
    insert_failed(tx, batch, seq, &tracking, record.line, &reasons(&error))?;
    loaded.rejected.push(error);
    Ok(())
}

fn insert_application(
    tx: &Transaction<'_>,
    batch: i64,
    seq: u64,
    tracking: &TrackingCode,
) -> Result<(), JournalError> {
    tx.prepare_cached(
        "INSERT INTO applications (tracking, batch_id, seq, state, updated_at_ms)
         VALUES (?1, ?2, ?3, 'queued', ?4)",
    )?
    .execute(params![
        tracking.as_str(),
        batch,
        i64::try_from(seq).unwrap_or(i64::MAX),
        now_ms()
    ])?;
    Ok(())
}

fn insert_queued(
    tx: &mut impl RowOps,
    batch: i64,
    seq: u64,
    record: &StoredRecord,
) -> Result<(), JournalError> {
    tx.insert_application(batch, seq, &record.tracking)?;
    tx.put_record(Some(record), &record.tracking, record.line)
}

fn insert_failed(
    tx: &mut impl RowOps,
    batch: i64,
    seq: u64,
    tracking: &TrackingCode,
    line: u64,
    reason: &str,
) -> Result<(), JournalError> {
    tx.insert_application(batch, seq, tracking)?;
    tx.put_record(None, tracking, line)?;
    tx.fail_queued(tracking, &truncated(reason))?;
    Ok(())
}

/// Fails a `queued` application with `reason`; `false` (nothing changed)
/// in any other state.
fn fail_queued(
    tx: &Transaction<'_>,
    tracking: &TrackingCode,
    reason: &str,
) -> Result<bool, JournalError> {
    let mut status = load(tx, tracking)?;
    if status.state != State::Queued {
        return Ok(false);
    }
    let reason = truncated(reason);
    status.state = State::Failed;
    status.reason = Some(reason.clone());
    tx.execute(
        "UPDATE applications SET state = 'failed', reason = ?2, updated_at_ms = ?3
         WHERE tracking = ?1",
        params![tracking.as_str(), reason, now_ms()],
    )?;
    log_event(tx, State::Queued, &status)?;
    Ok(true)
}

/// Stores the row's line and, for a valid row, its fields (a rejected row
/// keeps no fields, so it never counts as the holder's application).
fn put_record(
    tx: &Transaction<'_>,
    record: Option<&StoredRecord>,
    tracking: &TrackingCode,
    line: u64,
) -> Result<(), JournalError> {
    let r = record;
    tx.prepare_cached(
        "INSERT INTO records (tracking, line, national_code, given_name_fa, family_name_fa,
             father_name_fa, given_name_en, family_name_en, father_name_en, birth_date, gender,
             photo, fingerprint, has_pin, replacement)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
         ON CONFLICT (tracking) DO UPDATE SET line = excluded.line,
             national_code = excluded.national_code, given_name_fa = excluded.given_name_fa,
             family_name_fa = excluded.family_name_fa, father_name_fa = excluded.father_name_fa,
             given_name_en = excluded.given_name_en, family_name_en = excluded.family_name_en,
             father_name_en = excluded.father_name_en, birth_date = excluded.birth_date,
             gender = excluded.gender, photo = excluded.photo, fingerprint = excluded.fingerprint,
             has_pin = excluded.has_pin, replacement = excluded.replacement",
    )?
    .execute(params![
        tracking.as_str(),
        line,
        r.map(|r| &r.national_code),
        r.map(|r| &r.given_name_fa),
        r.map(|r| &r.family_name_fa),
        r.map(|r| &r.father_name_fa),
        r.map(|r| &r.given_name_en),
        r.map(|r| &r.family_name_en),
        r.map(|r| &r.father_name_en),
        r.map(|r| &r.birth_date),
        r.map(|r| &r.gender),
        r.map(|r| path_bytes(&r.photo)),
        r.and_then(|r| r.fingerprint.as_deref().map(path_bytes)),
        r.is_some_and(|r| r.has_pin),
        r.is_some_and(|r| r.replacement),
    ])?;
    Ok(())
}

/// The row's own error with `problem` added, or a new error for a valid row.
fn with_problem(
    row: BatchRow,
    tracking: &TrackingCode,
    field: Field,
    problem: Problem,
) -> RecordError {
    match row {
        BatchRow::Valid { record, .. } => problem_error(record.line, tracking, field, problem),
        BatchRow::Rejected { mut error, .. } => {
            error.problems.push(FieldError {
                field: Some(field),
                key: None,
                problem,
            });
            error
        }
    }
}

fn problem_error(
    line: u64,
    tracking: &TrackingCode,
    field: Field,
    problem: Problem,
) -> RecordError {
    RecordError {
        line,
        tracking_code: Some(tracking.clone()),
        problems: vec![FieldError {
            field: Some(field),
            key: None,
            problem,
        }],
    }
}

/// At most [`MAX_REASON`] bytes, cut on a character boundary.
pub(super) fn truncated(reason: &str) -> String {
    let mut end = reason.len().min(MAX_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}

fn reasons(error: &RecordError) -> String {
    error.messages().collect::<Vec<_>>().join("; ")
}

#[cfg(unix)]
pub(super) fn path_bytes(path: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str().as_bytes().to_vec()
}

#[cfg(not(unix))]
pub(super) fn path_bytes(path: &Path) -> Vec<u8> {
    path.to_string_lossy().as_bytes().to_vec()
}

#[cfg(unix)]
pub(super) fn path_from(bytes: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
}

#[cfg(not(unix))]
pub(super) fn path_from(bytes: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
}
