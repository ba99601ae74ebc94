//! Card registration numbers: 10 digits, unique per card.
//!
//! A CRN is a 9-digit sequence number followed by a Luhn check digit, so a
//! mistyped CRN is caught. Sequence numbers come from an `SQLite` register of
//! their own, keyed by (card serial, tracking code): the same card
//! re-personalized for the same application keeps its CRN, any other pair
//! gets the next number. The number is allocated durably before it is
//! written to a card, so no two cards ever carry the same CRN.
//!
//! CRNs are unique per issuer (the CRN is the holder certificate's CN), so
//! the register belongs to the issuer, not to a station directory: every
//! desk of an issuer on one machine opens the same file (the CLI keeps it in
//! the issuer directory, or where the configuration's `crn_register` says).
//! Allocation is one `BEGIN IMMEDIATE` transaction, so desks sharing the
//! file never draw the same number.
//!
//! Stations sharing a `PostgreSQL` journal ([`CrnAllocator::open_shared`])
//! draw from one issuer-wide sequence in that database instead; the table's
//! constraints keep CRNs and (card serial, tracking) pairs unique, and a
//! retried allocation (the answer was lost) finds the number it drew.
//!
//! ```
//! use kart_perso::crn::CrnAllocator;
//! let dir = tempfile::tempdir()?;
//! let crns = CrnAllocator::open(&dir.path().join("crn.db"))?;
//! let first = crns.allocate("4790503300001234", "140409040007")?;
//! assert_eq!(first.as_str(), "0000000018"); // sequence 1, Luhn check digit 8
//! assert_eq!(crns.allocate("4790503300001234", "140409040007")?, first);
//! assert_ne!(crns.allocate("4790503300005678", "140409040015")?, first);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::record::luhn_check_digit;
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use thiserror::Error;

use crate::card_data::Crn;

/// Largest sequence number (9 digits).
const MAX_SEQUENCE: i64 = 999_999_999;

/// Why no CRN could be allocated.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CrnError {
    /// The register could not be opened or created.
    #[error("cannot open the CRN register {path}: {reason}")]
    Open {
        /// The register's file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The database failed.
    #[error("CRN allocator database: {0}; no CRN was assigned")]
    Database(#[from] rusqlite::Error),
    /// All 10⁹ numbers are used.
    #[error("all 999999999 CRN sequence numbers are used; start a new issuer range")]
    Exhausted,
    /// The shared register (the `PostgreSQL` journal) failed.
    #[error("the shared CRN register: {0}; no CRN was assigned")]
    Shared(crate::journal::JournalError),
}

/// Allocates CRNs from an `SQLite` file or the shared journal's register.
///
/// The readers of a station draw at once: the file's one connection is
/// taken in turns, the shared register has a small pool of its own.
#[derive(Debug)]
pub struct CrnAllocator {
    register: Register,
}

/// Connections of the shared register: a CRN is drawn once per card, a
/// short statement against seconds of card I/O, so two are seldom both
/// busy, and one stuck call still leaves one for the station's other readers.
const SHARED_POOL_SIZE: u32 = 2;

/// How long a shared draw waits for the server (connection, retries)
/// before it gives up: the sum of its backoffs.
const SHARED_RETRY_FOR: Duration = Duration::from_millis(6_200);

/// Where the numbers come from.
enum Register {
    File(Mutex<Connection>),
    Shared(crate::journal::postgres::Pool),
}

impl std::fmt::Debug for Register {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(_) => f.write_str("File"),
            Self::Shared(_) => f.write_str("Shared"),
        }
    }
}

impl CrnAllocator {
    /// Opens (or creates) the allocator database at `path`.
    pub fn open(path: &Path) -> Result<Self, CrnError> {
        let open = || -> Result<Connection, rusqlite::Error> {
            let conn = Connection::open(path)?;
            conn.busy_timeout(Duration::from_secs(5))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS crns (
                     seq INTEGER PRIMARY KEY,
                     card_serial TEXT NOT NULL,
                     tracking TEXT NOT NULL,
                     UNIQUE (card_serial, tracking))",
            )?;
            Ok(conn)
        };
        let conn = open().map_err(|e| CrnError::Open {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            register: Register::File(Mutex::new(conn)),
        })
    }

    /// The issuer-wide register in the shared journal at `url` (its schema
    /// migrated if this is the first station).
    pub fn open_shared(url: &crate::journal::PgUrl) -> Result<Self, CrnError> {
        let deadline = Instant::now() + SHARED_RETRY_FOR;
        let pool = crate::journal::postgres::pool_migrated(url, SHARED_POOL_SIZE, deadline)
            .map_err(CrnError::Shared)?;
        Ok(Self {
            register: Register::Shared(pool),
        })
    }

    /// The CRN of (`card_serial`, `tracking`), allocated on first use.
    pub fn allocate(&self, card_serial: &str, tracking: &str) -> Result<Crn, CrnError> {
        let conn = match &self.register {
            Register::File(conn) => conn,
            Register::Shared(pool) => return allocate_shared(pool, card_serial, tracking),
        };
        // A draw that panicked left no transaction open (dropped, it rolled back).
        let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let existing: Option<i64> = tx
            .query_row(
                "SELECT seq FROM crns WHERE card_serial = ?1 AND tracking = ?2",
                params![card_serial, tracking],
                |row| row.get(0),
            )
            .optional()?;
        let seq = if let Some(seq) = existing {
            seq
        } else {
            let next: i64 =
                tx.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM crns", [], |row| {
                    row.get(0)
                })?;
            if next > MAX_SEQUENCE {
                return Err(CrnError::Exhausted);
            }
            tx.execute(
                "INSERT INTO crns (seq, card_serial, tracking) VALUES (?1, ?2, ?3)",
                params![next, card_serial, tracking],
            )?;
            next
        };
        tx.commit()?;
        drop(conn);
        Ok(crn_of(seq))
    }
}

/// Draws from the shared sequence on a connection of the pool, retried
/// with a short doubling backoff while the server is unreachable (the
/// pair's number, if a lost answer hid the first try's commit, is found by
/// the retry); a checkout waits at most until the draw's deadline.
fn allocate_shared(
    pool: &crate::journal::postgres::Pool,
    card_serial: &str,
    tracking: &str,
) -> Result<Crn, CrnError> {
    use crate::journal::postgres::checkout;
    use crate::journal::JournalError;
    let deadline = Instant::now() + SHARED_RETRY_FOR;
    let mut last = None;
    for attempt in 0..5u32 {
        if attempt > 0 {
            let pause = Duration::from_millis(100) * 2u32.pow(attempt);
            std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
        }
        let mut conn = match checkout(pool, deadline) {
            Ok(conn) => conn,
            Err(e) => {
                last = Some(e);
                continue;
            }
        };
        let conn = &mut *conn;
        // Looked up first: a pair asked again draws no number.
        let find = "SELECT seq FROM crns WHERE card_serial = $1 AND tracking = $2";
        let drawn = conn
            .query_opt(find, &[&card_serial, &tracking])
            .and_then(|found| match found {
                Some(row) => Ok(Some(row.get::<_, i64>(0))),
                None => conn
                    .query_opt(
                        "INSERT INTO crns (seq, card_serial, tracking) VALUES (nextval('crn_seq'), $1, $2)
                         ON CONFLICT (card_serial, tracking) DO NOTHING RETURNING seq",
                        &[&card_serial, &tracking],
                    )
                    .map(|row| row.map(|row| row.get::<_, i64>(0))),
            })
            .and_then(|seq| match seq {
                Some(seq) => Ok(seq),
                // Another station drew for the same pair at the same time.
                None => conn
                    .query_one(find, &[&card_serial, &tracking])
                    .map(|row| row.get(0)),
            });
        match drawn {
            Ok(seq) => return Ok(crn_of(seq)),
            Err(e)
                if e.code()
                    == Some(&postgres::error::SqlState::SEQUENCE_GENERATOR_LIMIT_EXCEEDED) =>
            {
                return Err(CrnError::Exhausted)
            }
            Err(e) => match JournalError::from(e) {
                e if e.server_unavailable() => last = Some(e),
                other => return Err(CrnError::Shared(other)),
            },
        }
    }
    Err(CrnError::Shared(last.unwrap_or(
        JournalError::Unavailable {
            reason: "no connection".into(),
        },
    )))
}

/// The CRN of a sequence number: 9 digits and the Luhn check digit.
pub fn crn_of(seq: i64) -> Crn {
    let body = format!("{:09}", seq.clamp(0, MAX_SEQUENCE));
    let check = luhn_check_digit(&body.bytes().map(|b| b - b'0').collect::<Vec<u8>>());
    // 9 ASCII digits and one more: always a valid CRN.
    Crn(format!("{body}{check}"))
}
