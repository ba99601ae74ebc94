//! Moving a station's `SQLite` journal (and its CRN register) into the
//! floor's shared `PostgreSQL` journal, without changing any state: every
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

fn conflict(what: &str) -> JournalError {
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
                return Err(conflict(&format!(
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

/// The type of a column copied by [`copy_rows`], as both stores hold it.
#[derive(Clone, Copy)]
enum Column {
    /// `INTEGER` / `BIGINT`, never null.
    Int,
    /// Text, never null.
    Text,
    /// Text or null.
    OptText,
    /// A blob or null (`BYTEA`).
    OptBytes,
    /// A boolean.
    Bool,
}

/// A table [`copy_children`] copies.
struct ChildTable {
    /// Its name (the same in both stores).
    name: &'static str,
    /// Its columns after `tracking`, with their types.
    columns: &'static [(&'static str, Column)],
    /// The order in which its rows were written (an `ORDER BY` clause, or none).
    order: &'static str,
}

/// The tables [`copy_children`] copies.
const CHILDREN: [ChildTable; 5] = {
    use Column::{Bool, Int, OptBytes, OptText, Text};
    [
        ChildTable {
            name: "events",
            columns: &[
                ("attempt", Int),
                ("from_state", OptText),
                ("to_state", Text),
                ("card_serial", OptText),
                ("station", OptText),
                ("reader", OptText),
                ("vendor_profile", OptText),
                ("reason", OptText),
                ("at_ms", Int),
            ],
            order: " ORDER BY id",
        },
        ChildTable {
            name: "steps",
            columns: &[
                ("attempt", Int),
                ("card_serial", OptText),
                ("step", Text),
                ("duration_us", Int),
                ("apdus", Int),
                ("bytes_sent", Int),
                ("bytes_received", Int),
                ("at_ms", Int),
            ],
            order: " ORDER BY id",
        },
        ChildTable {
            name: "step_starts",
            columns: &[
                ("attempt", Int),
                ("card_serial", OptText),
                ("step", Text),
                ("at_ms", Int),
            ],
            order: " ORDER BY id",
        },
        ChildTable {
            name: "records",
            columns: &[
                ("line", Int),
                ("national_code", OptText),
                ("given_name_fa", OptText),
                ("family_name_fa", OptText),
                ("father_name_fa", OptText),
                ("given_name_en", OptText),
                ("family_name_en", OptText),
                ("father_name_en", OptText),
                ("birth_date", OptText),
                ("gender", OptText),
                ("photo", OptBytes),
                ("fingerprint", OptBytes),
                ("has_pin", Bool),
                ("replacement", Bool),
            ],
            order: "",
        },
        ChildTable {
            name: "superseded",
            columns: &[
                ("by_tracking", Text),
                ("card_serial", OptText),
                ("at_ms", Int),
            ],
            order: "",
        },
    ]
};

/// Events, steps, step starts, records and supersessions of the
/// applications copied now, in their original order.
fn copy_children(
    source: &Connection,
    tx: &mut Transaction<'_>,
    fresh: &HashSet<String>,
) -> Result<(), JournalError> {
    for table in &CHILDREN {
        copy_rows(source, tx, fresh, table)?;
    }
    Ok(())
}

/// Copies the rows of `table` whose `tracking` is in `fresh`, column by
/// column, in the order they were written.
fn copy_rows(
    source: &Connection,
    tx: &mut Transaction<'_>,
    fresh: &HashSet<String>,
    table: &ChildTable,
) -> Result<(), JournalError> {
    type Value = Box<dyn postgres::types::ToSql + Sync>;
    let ChildTable {
        name: table,
        columns,
        order,
    } = table;
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let names = names.join(", ");
    let placeholders: Vec<String> = (1..=columns.len() + 1).map(|i| format!("${i}")).collect();
    let insert = format!(
        "INSERT INTO {table} (tracking, {names}) VALUES ({})",
        placeholders.join(", ")
    );
    let mut stmt = source.prepare(&format!("SELECT tracking, {names} FROM {table}{order}"))?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let tracking: String = r.get(0)?;
        if !fresh.contains(&tracking) {
            continue;
        }
        let mut values: Vec<Value> = vec![Box::new(tracking)];
        for (i, (_, column)) in columns.iter().enumerate() {
            let i = i + 1;
            values.push(match column {
                Column::Int => Box::new(r.get::<_, i64>(i)?),
                Column::Text => Box::new(r.get::<_, String>(i)?),
                Column::OptText => Box::new(r.get::<_, Option<String>>(i)?),
                Column::OptBytes => Box::new(r.get::<_, Option<Vec<u8>>>(i)?),
                Column::Bool => Box::new(r.get::<_, bool>(i)?),
            });
        }
        let params: Vec<&(dyn postgres::types::ToSql + Sync)> =
            values.iter().map(AsRef::as_ref).collect();
        tx.execute(&insert, &params)?;
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
                return Err(conflict(&format!(
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
                return Err(conflict(&format!(
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
