//! The shared journal's schema and its migrations, tracked in
//! `schema_version`. Applied on first use by whichever station connects
//! first; an advisory lock makes two stations starting at once apply each
//! migration once.

use postgres::Client;

use super::super::JournalError;

/// Key of the advisory lock held while migrating (any fixed number; "kart").
const MIGRATION_LOCK: i64 = 0x6b61_7274;

/// Migrations in order; migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE batches (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    enqueued_at_ms BIGINT NOT NULL
);
CREATE TABLE applications (
    tracking TEXT PRIMARY KEY,
    batch_id BIGINT NOT NULL REFERENCES batches(id),
    seq BIGINT NOT NULL,
    state TEXT NOT NULL CHECK (state IN
        ('queued', 'claimed', 'writing', 'written', 'verified', 'failed', 'spoiled')),
    station TEXT,
    reader TEXT,
    card_serial TEXT,
    vendor_profile TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    reason TEXT,
    updated_at_ms BIGINT NOT NULL,
    owner TEXT,
    lease_until_ms BIGINT
);
CREATE INDEX applications_queue ON applications (batch_id, seq) WHERE state = 'queued';
CREATE INDEX applications_by_card ON applications (card_serial) WHERE card_serial IS NOT NULL;
CREATE INDEX applications_unfinished ON applications (state, updated_at_ms)
    WHERE state IN ('claimed', 'writing', 'written');
-- One row per physical card: a serial belongs to one application at a time;
-- once issued or spoiled it is never reassigned.
CREATE TABLE cards (
    serial TEXT PRIMARY KEY,
    tracking TEXT NOT NULL REFERENCES applications(tracking),
    status TEXT NOT NULL CHECK (status IN ('in_use', 'issued', 'spoiled', 'released'))
);
CREATE UNIQUE INDEX cards_one_issued_per_application ON cards (tracking) WHERE status = 'issued';
CREATE UNIQUE INDEX cards_one_in_use_per_application ON cards (tracking) WHERE status = 'in_use';
CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    tracking TEXT NOT NULL REFERENCES applications(tracking),
    attempt BIGINT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    card_serial TEXT,
    station TEXT,
    reader TEXT,
    vendor_profile TEXT,
    reason TEXT,
    at_ms BIGINT NOT NULL
);
CREATE INDEX events_by_tracking ON events (tracking);
CREATE TABLE steps (
    id BIGSERIAL PRIMARY KEY,
    tracking TEXT NOT NULL REFERENCES applications(tracking),
    attempt BIGINT NOT NULL,
    card_serial TEXT,
    step TEXT NOT NULL,
    duration_us BIGINT NOT NULL,
    apdus BIGINT NOT NULL,
    bytes_sent BIGINT NOT NULL,
    bytes_received BIGINT NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE TABLE step_starts (
    id BIGSERIAL PRIMARY KEY,
    tracking TEXT NOT NULL REFERENCES applications(tracking),
    attempt BIGINT NOT NULL,
    card_serial TEXT,
    step TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE INDEX step_starts_by_tracking ON step_starts (tracking, id);
-- Each row of a loaded batch with a valid tracking code: its line and, for
-- a valid row, the validated fields (the photo as its path, never its
-- bytes; a PIN never, has_pin only).
CREATE TABLE records (
    tracking TEXT PRIMARY KEY REFERENCES applications(tracking),
    line BIGINT NOT NULL,
    national_code TEXT,
    given_name_fa TEXT,
    family_name_fa TEXT,
    father_name_fa TEXT,
    given_name_en TEXT,
    family_name_en TEXT,
    father_name_en TEXT,
    birth_date TEXT,
    gender TEXT,
    photo BYTEA,
    fingerprint BYTEA,
    has_pin BOOLEAN NOT NULL DEFAULT FALSE,
    replacement BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX records_by_national_code ON records (national_code) WHERE national_code IS NOT NULL;
CREATE TABLE superseded (
    tracking TEXT PRIMARY KEY REFERENCES applications(tracking),
    by_tracking TEXT NOT NULL REFERENCES applications(tracking),
    card_serial TEXT,
    at_ms BIGINT NOT NULL
);
-- The issuer's CRN register: one sequence for every station; a (card
-- serial, tracking) pair keeps its number.
CREATE SEQUENCE crn_seq MINVALUE 1 MAXVALUE 999999999 NO CYCLE;
CREATE TABLE crns (
    seq BIGINT PRIMARY KEY,
    card_serial TEXT NOT NULL,
    tracking TEXT NOT NULL,
    UNIQUE (card_serial, tracking)
);
",
    r"
-- Each step row names the call that wrote it: a call retried after its
-- commit's answer was lost writes its row once. (A step may legitimately
-- start again in one attempt, when a pulled card is re-personalized, so
-- the step itself is no key.) Rows from before have none.
ALTER TABLE steps ADD COLUMN call_id TEXT;
ALTER TABLE step_starts ADD COLUMN call_id TEXT;
CREATE UNIQUE INDEX steps_once_per_call ON steps (call_id);
CREATE UNIQUE INDEX step_starts_once_per_call ON step_starts (call_id);
",
];

/// The schema version this program writes.
#[allow(clippy::cast_possible_wrap)] // a handful of migrations
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the schema up to [`VERSION`], each migration in its own
/// transaction, under the migration lock.
pub fn migrate(client: &mut Client) -> Result<(), JournalError> {
    let mut tx = client.transaction()?;
    // Held to the end of the transaction: a second station waits here,
    // then sees the version the first one wrote.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
    let found: Option<i64> = tx
        .query_opt("SELECT max(version) FROM schema_version", &[])?
        .and_then(|row| row.get(0));
    let found = found.unwrap_or(0);
    if found > VERSION {
        return Err(JournalError::SchemaTooNew {
            found,
            supported: VERSION,
        });
    }
    let start = usize::try_from(found).unwrap_or(0);
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(start) {
        tx.batch_execute(sql)?;
        let version = i64::try_from(index + 1).unwrap_or(i64::MAX);
        tx.execute("DELETE FROM schema_version", &[])?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&version],
        )?;
    }
    tx.commit()?;
    Ok(())
}
