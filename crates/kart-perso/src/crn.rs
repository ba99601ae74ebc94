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
//! ```
//! use kart_perso::crn::CrnAllocator;
//! let dir = tempfile::tempdir()?;
//! let mut crns = CrnAllocator::open(&dir.path().join("crn.db"))?;
//! let first = crns.allocate("4790503300001234", "140409040007")?;
//! assert_eq!(first.as_str(), "0000000018"); // sequence 1, Luhn check digit 8
//! assert_eq!(crns.allocate("4790503300001234", "140409040007")?, first);
//! assert_ne!(crns.allocate("4790503300005678", "140409040015")?, first);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::record::luhn_check_digit;
use std::path::Path;
use std::time::Duration;

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
}

/// Allocates CRNs from an `SQLite` file.
#[derive(Debug)]
pub struct CrnAllocator {
    conn: Connection,
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
        Ok(Self { conn })
    }

    /// The CRN of (`card_serial`, `tracking`), allocated on first use.
    pub fn allocate(&mut self, card_serial: &str, tracking: &str) -> Result<Crn, CrnError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
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
        Ok(crn_of(seq))
    }
}

/// The CRN of a sequence number: 9 digits and the Luhn check digit.
pub fn crn_of(seq: i64) -> Crn {
    let body = format!("{:09}", seq.clamp(0, MAX_SEQUENCE));
    let check = luhn_check_digit(&body.bytes().map(|b| b - b'0').collect::<Vec<u8>>());
    // 9 ASCII digits and one more: always a valid CRN.
    Crn(format!("{body}{check}"))
}
