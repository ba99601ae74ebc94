//! Moving a station's `SQLite` journal (and its CRN register) into the
//! floor's shared PostgreSQL journal, without changing any state: every
//! application keeps its state, attempts, card, claim owner and lease, its
//! events, steps and record; cards and CRNs keep their numbers.
//!
//! One transaction: all or nothing. Idempotent: an application already
//! there exactly as in the file is left alone, so a second run moves
//! nothing. A conflict (the same tracking code, card or CRN already there
//! with other data) refuses the whole move with one line naming it.

use std::collections::HashSet;
use std::path::Path;

use postgres::Transaction;
use rusqlite::{Connection, OpenFlags};

use super::{postgres as pg, schema, JournalError, PgUrl};

/// What [`migrate`] moved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Migrated {
    /// Applications copied (with their events, steps and records).
    pub applications: u64,
    /// Applications already in the shared journal exactly as in the file.
    pub already_present: u64,
    /// Cards copied.
    pub cards: u64,
    /// CRNs copied from the station's register.
    pub crns: u64,
}

fn conflict(what: String) -> JournalError {
    JournalError::BadArgument(format!("{what}; nothing was migrated"))
}

/// Copies the journal at `from` (and the CRN register at `crns`, if given)
/// into the shared journal at `to`.
pub fn migrate(from: &Path, crns: Option<&Path>, to: &PgUrl) -> Result<Migrated, JournalError> {
    let source = open_source(from)?;
    let mut client = pg::connect_migrated(to)?;
    let mut tx = client.transaction()?;
    let mut done = Migrated::default();
    let fresh = copy_applications(&source, &mut tx, &mut done)?;
    copy_children(&source, &mut tx, &fresh)?;
    copy_cards(&source, &mut tx, &mut done)?;
    if let Some(path) = crns {
        let register = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| JournalError::Open {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        copy_crns(&register, &mut tx, &mut done)?;
    }
    tx.commit()?;
    Ok(done)
}

fn open_source(path: &Path) -> Result<Connection, JournalError> {
    let open_error = |reason: String| JournalError::Open {
        path: path.to_owned(),
        reason,
    };
    if !path.is_file() {
        return Err(open_error("no such file".into()));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| open_error(e.to_string()))?;
    let found = schema::version(&conn)?;
    if found != schema::VERSION {
        return Err(open_error(format!(
            "schema version {found}, expected {}; open it with this kart once (kart report) to migrate it",
            schema::VERSION
        )));
    }
    Ok(conn)
}

type AppRow = (
    String,
    String,
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    Option<String>,
    i64,
    Option<String>,
    Option<i64>,
);

/// Copies batches and applications; returns the tracking codes copied now.
fn copy_applications(
    source: &Connection,
    tx: &mut Transaction<'_>,
    done: &mut Migrated,
) -> Result<HashSet<String>, JournalError> {
    let mut stmt = source.prepare(
        "SELECT a.tracking, b.name, b.enqueued_at_ms, a.seq, a.state, a.station, a.reader,
                a.card_serial, a.vendor_profile, a.attempts, a.reason, a.updated_at_ms, a.owner,
                a.lease_until_ms
         FROM applications a JOIN batches b ON b.id = a.batch_id ORDER BY b.id, a.seq",
    )?;
    let rows: Vec<AppRow> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
                r.get(11)?,
                r.get(12)?,
                r.get(13)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let mut fresh = HashSet::new();
    for row in rows {
        let (tracking, batch, enqueued, seq, state, station, reader, card, vendor, attempts) = (
            &row.0, &row.1, row.2, row.3, &row.4, &row.5, &row.6, &row.7, &row.8, row.9,
        );
        let there = tx.query_opt(
            "SELECT b.name, a.state, a.card_serial, a.attempts, a.updated_at_ms
             FROM applications a JOIN batches b ON b.id = a.batch_id WHERE a.tracking = $1",
            &[tracking],
        )?;
        if let Some(there) = there {
            let same = there.get::<_, &str>(0) == batch
                && there.get::<_, &str>(1) == state
                && there.get::<_, Option<String>>(2) == *card
                && there.get::<_, i64>(3) == attempts
                && there.get::<_, i64>(4) == row.11;
            if !same {
                return Err(conflict(format!(
                    "application {tracking} is already in the shared journal ({} in batch {}) and differs from the station's ({state} in batch {batch})",
                    there.get::<_, &str>(1),
                    there.get::<_, &str>(0)
                )));
            }
            done.already_present += 1;
            continue;
        }
        tx.execute(
            "INSERT INTO batches (name, enqueued_at_ms) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[batch, &enqueued],
        )?;
        tx.execute(
            "INSERT INTO applications (tracking, batch_id, seq, state, station, reader, card_serial,
                 vendor_profile, attempts, reason, updated_at_ms, owner, lease_until_ms)
             SELECT $1, id, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 FROM batches WHERE name = $2",
            &[
                tracking, batch, &seq, state, station, reader, card, vendor, &attempts, &row.10,
                &row.11, &row.12, &row.13,
            ],
        )?;
        fresh.insert(tracking.clone());
        done.applications += 1;
    }
    Ok(fresh)
}

/// Events, steps, step starts, records and supersessions of the
/// applications copied now, in their original order.
fn copy_children(
    source: &Connection,
    tx: &mut Transaction<'_>,
    fresh: &HashSet<String>,
) -> Result<(), JournalError> {
    let mut stmt = source.prepare(
        "SELECT tracking, attempt, from_state, to_state, card_serial, station, reader,
                vendor_profile, reason, at_ms FROM events ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let tracking: String = r.get(0)?;
        if !fresh.contains(&tracking) {
            continue;
        }
        tx.execute(
            "INSERT INTO events (tracking, attempt, from_state, to_state, card_serial, station,
                 reader, vendor_profile, reason, at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &tracking,
                &r.get::<_, i64>(1)?,
                &r.get::<_, Option<String>>(2)?,
                &r.get::<_, String>(3)?,
                &r.get::<_, Option<String>>(4)?,
                &r.get::<_, Option<String>>(5)?,
                &r.get::<_, Option<String>>(6)?,
                &r.get::<_, Option<String>>(7)?,
                &r.get::<_, Option<String>>(8)?,
                &r.get::<_, i64>(9)?,
            ],
        )?;
    }
    let mut stmt = source.prepare(
        "SELECT tracking, attempt, card_serial, step, duration_us, apdus, bytes_sent,
                bytes_received, at_ms FROM steps ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let tracking: String = r.get(0)?;
        if !fresh.contains(&tracking) {
            continue;
        }
        tx.execute(
            "INSERT INTO steps (tracking, attempt, card_serial, step, duration_us, apdus, bytes_sent,
                 bytes_received, at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &tracking,
                &r.get::<_, i64>(1)?,
                &r.get::<_, Option<String>>(2)?,
                &r.get::<_, String>(3)?,
                &r.get::<_, i64>(4)?,
                &r.get::<_, i64>(5)?,
                &r.get::<_, i64>(6)?,
                &r.get::<_, i64>(7)?,
                &r.get::<_, i64>(8)?,
            ],
        )?;
    }
    let mut stmt = source.prepare(
        "SELECT tracking, attempt, card_serial, step, at_ms FROM step_starts ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let tracking: String = r.get(0)?;
        if !fresh.contains(&tracking) {
            continue;
        }
        tx.execute(
            "INSERT INTO step_starts (tracking, attempt, card_serial, step, at_ms)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &tracking,
                &r.get::<_, i64>(1)?,
                &r.get::<_, Option<String>>(2)?,
                &r.get::<_, String>(3)?,
                &r.get::<_, i64>(4)?,
            ],
        )?;
    }
    let mut stmt = source.prepare(
        "SELECT tracking, line, national_code, given_name_fa, family_name_fa, father_name_fa,
                given_name_en, family_name_en, father_name_en, birth_date, gender, photo,
                fingerprint, has_pin, replacement FROM records",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let tracking: String = r.get(0)?;
        if !fresh.contains(&tracking) {
            continue;
        }
        let text = |i: usize| r.get::<_, Option<String>>(i);
        tx.execute(
            "INSERT INTO records (tracking, line, national_code, given_name_fa, family_name_fa,
                 father_name_fa, given_name_en, family_name_en, father_name_en, birth_date, gender,
                 photo, fingerprint, has_pin, replacement)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            &[
                &tracking,
                &r.get::<_, i64>(1)?,
                &text(2)?,
                &text(3)?,
                &text(4)?,
                &text(5)?,
                &text(6)?,
                &text(7)?,
                &text(8)?,
                &text(9)?,
                &text(10)?,
                &r.get::<_, Option<Vec<u8>>>(11)?,
                &r.get::<_, Option<Vec<u8>>>(12)?,
                &r.get::<_, bool>(13)?,
                &r.get::<_, bool>(14)?,
            ],
        )?;
    }
    let mut stmt =
        source.prepare("SELECT tracking, by_tracking, card_serial, at_ms FROM superseded")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let tracking: String = r.get(0)?;
        if !fresh.contains(&tracking) {
            continue;
        }
        tx.execute(
            "INSERT INTO superseded (tracking, by_tracking, card_serial, at_ms) VALUES ($1, $2, $3, $4)",
            &[
                &tracking,
                &r.get::<_, String>(1)?,
                &r.get::<_, Option<String>>(2)?,
                &r.get::<_, i64>(3)?,
            ],
        )?;
    }
    Ok(())
}

fn copy_cards(
    source: &Connection,
    tx: &mut Transaction<'_>,
    done: &mut Migrated,
) -> Result<(), JournalError> {
    let mut stmt = source.prepare("SELECT serial, tracking, status FROM cards ORDER BY serial")?;
    let cards: Vec<(String, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (serial, tracking, status) in cards {
        let there = tx.query_opt(
            "SELECT tracking, status FROM cards WHERE serial = $1",
            &[&serial],
        )?;
        match there {
            Some(row) if row.get::<_, &str>(0) == tracking && row.get::<_, &str>(1) == status => {}
            Some(row) => {
                return Err(conflict(format!(
                    "card {serial} is already in the shared journal for application {} ({}), not {tracking} ({status})",
                    row.get::<_, &str>(0),
                    row.get::<_, &str>(1)
                )))
            }
            None => {
                tx.execute(
                    "INSERT INTO cards (serial, tracking, status) VALUES ($1, $2, $3)",
                    &[&serial, &tracking, &status],
                )?;
                done.cards += 1;
            }
        }
    }
    Ok(())
}

fn copy_crns(
    register: &Connection,
    tx: &mut Transaction<'_>,
    done: &mut Migrated,
) -> Result<(), JournalError> {
    let mut stmt = register.prepare("SELECT seq, card_serial, tracking FROM crns ORDER BY seq")?;
    let crns: Vec<(i64, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (seq, serial, tracking) in crns {
        let there = tx.query_opt(
            "SELECT seq, card_serial, tracking FROM crns WHERE seq = $1 OR (card_serial = $2 AND tracking = $3)",
            &[&seq, &serial, &tracking],
        )?;
        match there {
            Some(row)
                if row.get::<_, i64>(0) == seq
                    && row.get::<_, &str>(1) == serial
                    && row.get::<_, &str>(2) == tracking => {}
            Some(row) => {
                return Err(conflict(format!(
                    "CRN {} (card {serial}, application {tracking}) clashes with the shared register's CRN {} for card {}",
                    crate::crn::crn_of(seq).as_str(),
                    crate::crn::crn_of(row.get(0)).as_str(),
                    row.get::<_, &str>(1)
                )))
            }
            None => {
                tx.execute(
                    "INSERT INTO crns (seq, card_serial, tracking) VALUES ($1, $2, $3)",
                    &[&seq, &serial, &tracking],
                )?;
                done.crns += 1;
            }
        }
    }
    if done.crns > 0 {
        // The sequence continues past every number now in the register.
        tx.execute(
            "SELECT setval('crn_seq', GREATEST((SELECT max(seq) FROM crns),
                 (SELECT CASE WHEN is_called THEN last_value ELSE 1 END FROM crn_seq)))",
            &[],
        )?;
    }
    Ok(())
}
