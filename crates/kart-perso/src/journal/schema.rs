//! The schema and its migrations, tracked in `schema_version`.

use rusqlite::{Connection, OptionalExtension};

use super::JournalError;

/// Migrations in order; migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE batches (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    enqueued_at_ms INTEGER NOT NULL
);
CREATE TABLE applications (
    tracking TEXT PRIMARY KEY,
    batch_id INTEGER NOT NULL REFERENCES batches(id),
    seq INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN
        ('queued', 'claimed', 'writing', 'written', 'verified', 'failed', 'spoiled')),
    station TEXT,
    reader TEXT,
    card_serial TEXT,
    vendor_profile TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    updated_at_ms INTEGER NOT NULL
);
CREATE INDEX applications_queue ON applications (state, batch_id, seq);
-- One row per physical card. A card serial belongs to one application at a
-- time; once issued or spoiled it is never reassigned.
CREATE TABLE cards (
    serial TEXT PRIMARY KEY,
    tracking TEXT NOT NULL REFERENCES applications(tracking),
    status TEXT NOT NULL CHECK (status IN ('in_use', 'issued', 'spoiled', 'released'))
);
CREATE UNIQUE INDEX cards_one_issued_per_application ON cards (tracking) WHERE status = 'issued';
CREATE UNIQUE INDEX cards_one_in_use_per_application ON cards (tracking) WHERE status = 'in_use';
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    tracking TEXT NOT NULL REFERENCES applications(tracking),
    attempt INTEGER NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    card_serial TEXT,
    station TEXT,
    reader TEXT,
    vendor_profile TEXT,
    reason TEXT,
    at_ms INTEGER NOT NULL
);
CREATE INDEX events_by_tracking ON events (tracking);
CREATE TABLE steps (
    id INTEGER PRIMARY KEY,
    tracking TEXT NOT NULL REFERENCES applications(tracking),
    attempt INTEGER NOT NULL,
    card_serial TEXT,
    step TEXT NOT NULL,
    duration_us INTEGER NOT NULL,
    apdus INTEGER NOT NULL,
    bytes_sent INTEGER NOT NULL,
    bytes_received INTEGER NOT NULL,
    at_ms INTEGER NOT NULL
);
",
    r"
-- Finding the application awaiting a card presented in a reader.
CREATE INDEX applications_by_card ON applications (card_serial) WHERE card_serial IS NOT NULL;
",
    r"
-- A claim belongs to one journal connection of one process (owner) until
-- its lease runs out; only expired leases are taken back (issue 13).
ALTER TABLE applications ADD COLUMN owner TEXT;
ALTER TABLE applications ADD COLUMN lease_until_ms INTEGER;
-- Each step's start, recorded before its first APDU: how far a card got.
CREATE TABLE step_starts (
    id INTEGER PRIMARY KEY,
    tracking TEXT NOT NULL REFERENCES applications(tracking),
    attempt INTEGER NOT NULL,
    card_serial TEXT,
    step TEXT NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE INDEX step_starts_by_tracking ON step_starts (tracking, id);
",
    r"
-- Each row of a loaded batch that has a valid tracking code: its line (to
-- tell a re-run from a repeated code) and, for a valid row, the validated
-- fields, so that a station reads a record only when it claims it. The
-- photo is stored as its resolved path, never its bytes; a PIN set by the
-- batch is never stored (has_pin only).
CREATE TABLE records (
    tracking TEXT PRIMARY KEY REFERENCES applications(tracking),
    line INTEGER NOT NULL,
    national_code TEXT,
    given_name_fa TEXT,
    family_name_fa TEXT,
    father_name_fa TEXT,
    given_name_en TEXT,
    family_name_en TEXT,
    father_name_en TEXT,
    birth_date TEXT,
    gender TEXT,
    photo BLOB,
    fingerprint BLOB,
    has_pin INTEGER NOT NULL DEFAULT 0,
    replacement INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX records_by_national_code ON records (national_code) WHERE national_code IS NOT NULL;
-- An application replaced by a later one for the same holder: its card (if
-- issued) is superseded.
CREATE TABLE superseded (
    tracking TEXT PRIMARY KEY REFERENCES applications(tracking),
    by_tracking TEXT NOT NULL REFERENCES applications(tracking),
    card_serial TEXT,
    at_ms INTEGER NOT NULL
);
",
];

/// The schema version this program writes.
#[allow(clippy::cast_possible_wrap)] // a handful of migrations
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Reads the stored version (0 for a new file).
pub fn version(conn: &Connection) -> Result<i64, JournalError> {
    let has_table: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
        [],
        |row| row.get(0),
    )?;
    if !has_table {
        return Ok(0);
    }
    Ok(conn
        .query_row("SELECT version FROM schema_version", [], |row| row.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Brings the schema up to [`VERSION`], each migration in its own transaction.
pub fn migrate(conn: &mut Connection) -> Result<(), JournalError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
        [],
    )?;
    let found = version(&tx)?;
    if found > VERSION {
        return Err(JournalError::SchemaTooNew {
            found,
            supported: VERSION,
        });
    }
    let start = usize::try_from(found).unwrap_or(0);
    for sql in MIGRATIONS.iter().skip(start) {
        tx.execute_batch(sql)?;
    }
    tx.execute("DELETE FROM schema_version", [])?;
    tx.execute(
        "INSERT INTO schema_version (version) VALUES (?1)",
        [VERSION],
    )?;
    tx.commit()?;
    Ok(())
}
