//! Opening a journal for reports only, wherever it lies: a live station's,
//! a read-only one, or an archived copy on read-only media. `SQLite` opens
//! a WAL journal read-only only where it can create its shared-memory file
//! beside it; where it cannot and no write-ahead log is pending, the file
//! is opened as immutable (nothing can change it there anyway).

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::sqlite::{LockedSqlite, SqliteStore};
use super::{schema, Journal, JournalError, JournalOptions};

impl Journal {
    /// Opens the journal at `path` read-only for [`Journal::report`] and
    /// the other queries; every error names the path.
    ///
    /// ```
    /// use kart_perso::journal::Journal;
    /// # let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("journal.db");
    /// drop(Journal::open(&path)?);
    /// assert_eq!(Journal::open_for_report(&path)?.report()?.pending, 0);
    /// std::fs::write(dir.path().join("other.db"), b"not a journal")?;
    /// let error = Journal::open_for_report(dir.path().join("other.db")).unwrap_err();
    /// assert!(error.to_string().contains("other.db"), "{error}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_for_report(path: impl AsRef<Path>) -> Result<Self, JournalError> {
        let path = path.as_ref();
        let options = JournalOptions {
            read_only: true,
            ..JournalOptions::default()
        };
        let first = match Self::open_with(path, &options) {
            Ok(journal) => return Ok(journal),
            Err(e) => e,
        };
        if matches!(first, JournalError::SchemaTooNew { .. }) {
            return Err(first);
        }
        let wal = wal_path(path);
        let pending_log = std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0);
        if pending_log {
            return Err(JournalError::Open {
                path: path.to_owned(),
                reason: format!(
                    "{first}; its write-ahead log {} holds changes that can only be read where a shared-memory file can be created beside it: copy the journal with its -wal file to a writable folder and read it there",
                    wal.display()
                ),
            });
        }
        open_immutable(path).map_err(|_| named(path, first))
    }
}

/// The error, with the path in it.
fn named(path: &Path, e: JournalError) -> JournalError {
    match e {
        e @ JournalError::Open { .. } => e,
        other => JournalError::Open {
            path: path.to_owned(),
            reason: other.to_string(),
        },
    }
}

fn wal_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    name.into()
}

/// Opens `path` as an immutable database (no locks, no shared memory).
fn open_immutable(path: &Path) -> Result<Journal, JournalError> {
    let absolute = std::path::absolute(path).map_err(|e| JournalError::Open {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let uri = format!(
        "file:{}?immutable=1",
        uri_escape(&absolute.to_string_lossy())
    );
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let open_error = |e: rusqlite::Error| JournalError::Open {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let conn = Connection::open_with_flags(uri, flags).map_err(open_error)?;
    let found = schema::version(&conn).map_err(|e| named(path, e))?;
    if found != schema::VERSION {
        return Err(JournalError::Open {
            path: path.to_owned(),
            reason: format!(
                "schema version {found}, expected {}; open it writable once to migrate",
                schema::VERSION
            ),
        });
    }
    Ok(Journal::with_store(Box::new(LockedSqlite::from(
        SqliteStore {
            conn,
            owner: super::owner_id()?,
            lease: JournalOptions::default().lease,
        },
    ))))
}

/// Percent-escapes what a file URI cannot carry as is.
fn uri_escape(path: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b'?' | b'#' | b'%' | b' ' | 0x80.. => {
                let _ = write!(out, "%{b:02X}");
            }
            _ => out.push(char::from(b)),
        }
    }
    out
}
