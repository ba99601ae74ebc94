//! Journal errors; storage failures are classified so the station can tell
//! the operator what to do. A failed call never changes anything: its
//! transaction is rolled back.

use std::path::PathBuf;

use rusqlite::ErrorCode;

use super::State;
use crate::record::TrackingCode;

/// What went wrong in the journal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// `SQLITE_FULL`: the disk (or the configured size cap) is full.
    #[error("the journal is full (disk full or size cap reached): the change was rolled back and nothing was lost")]
    DiskFull,
    /// `SQLITE_READONLY`: the journal cannot be written.
    #[error("the journal is read-only: the change was rolled back")]
    ReadOnly,
    /// Another connection held the lock longer than the busy timeout.
    #[error("the journal stayed locked by another station longer than the busy timeout; the change was not made")]
    Busy,
    /// The file cannot be opened as a journal.
    #[error("cannot open the journal {path}: {reason}")]
    Open {
        /// The path given.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The shared journal's database holds no journal yet: no station has
    /// opened it (the first station creates the tables), so a read-only
    /// open (`kart report`) has nothing to read.
    #[error("the database at {url} holds no kart journal yet")]
    NoSharedJournal {
        /// The journal URL, without its password.
        url: String,
    },
    /// The schema is newer than this program.
    #[error("the journal has schema version {found}, this program knows up to {supported}")]
    SchemaTooNew {
        /// Version in the file.
        found: i64,
        /// Newest version known here.
        supported: i64,
    },
    /// No application with that tracking code.
    #[error("no application {0} in the journal")]
    UnknownApplication(TrackingCode),
    /// The move is not allowed from the current state.
    #[error("application {tracking} is {from}; it cannot become {to}")]
    InvalidTransition {
        /// The application.
        tracking: TrackingCode,
        /// Its current state.
        from: State,
        /// The state asked for.
        to: State,
    },
    /// The card is being written for another application.
    #[error("card {serial} is in use for application {tracking}")]
    CardInUse {
        /// The card serial.
        serial: String,
        /// The application holding it.
        tracking: String,
    },
    /// The card already holds a verified application.
    #[error("card {serial} was already issued to application {tracking}")]
    CardIssued {
        /// The card serial.
        serial: String,
        /// The application it was issued to.
        tracking: String,
    },
    /// The card was marked spoiled.
    #[error("card {serial} is spoiled")]
    CardSpoiled {
        /// The card serial.
        serial: String,
    },
    /// The application is being written to a different card.
    #[error("application {tracking} is being written to card {expected}, not {found}")]
    CardMismatch {
        /// The application.
        tracking: TrackingCode,
        /// Its card.
        expected: String,
        /// The card named in the call.
        found: String,
    },
    /// The claim was taken back after its lease ran out, or belongs to
    /// another process: this station must not write for it.
    #[error("application {tracking} is claimed by {owner}, not by this station; it was taken back after its lease ran out or belongs to another process")]
    ClaimLost {
        /// The application.
        tracking: TrackingCode,
        /// The owner of the claim now (`none` when it is no longer claimed).
        owner: String,
    },
    /// An argument the journal cannot store.
    #[error("{0}")]
    BadArgument(String),
    /// Stored data that does not parse (the file was edited or damaged).
    #[error("the journal holds invalid data ({0})")]
    Corrupt(String),
    /// The journal's database server cannot be reached (down, restarting,
    /// network gone) and stayed so past the retry bound; nothing was changed
    /// that the next call will not resolve.
    #[error("the journal database is unavailable ({reason}); the call was retried until the busy timeout")]
    Unavailable {
        /// What the last attempt met.
        reason: String,
    },
    /// The journal's database server has no connection slot left (its
    /// `max_connections` are all taken: a floor bigger than the server was
    /// set up for) and had none free until the retry bound.
    #[error("the journal database has no connection slot left ({reason}); the call was retried until the busy timeout")]
    NoConnectionSlot {
        /// The server's message.
        reason: String,
    },
    /// The TLS settings of the journal URL cannot be put in place: a
    /// certificate or key file is missing, unreadable, not PEM, too open, or
    /// an option kart does not support.
    #[error("cannot set up TLS to the journal database: {reason}")]
    TlsSetup {
        /// What is wrong (file names, never a key's content).
        reason: String,
    },
    /// The TLS handshake with the journal's server failed: its certificate
    /// is not signed by the trusted CA, does not name the host, or the
    /// handshake broke off.
    #[error("the TLS handshake with the journal database at {host} failed ({reason})")]
    TlsHandshake {
        /// The host as the URL names it.
        host: String,
        /// What the TLS library reported.
        reason: String,
    },
    /// `sslmode` requires TLS but the server answered that it has none.
    #[error("the journal database at {host} does not offer TLS, but the journal URL's sslmode requires it")]
    TlsNotOffered {
        /// The host as the URL names it.
        host: String,
    },
    /// The server refused a connection made without TLS (`hostssl` only).
    #[error("the journal database refused a connection without TLS ({reason})")]
    TlsRequired {
        /// The server's message.
        reason: String,
    },
    /// Any other database error (the store's own message; no password in it).
    #[error("journal database error: {reason}")]
    Database {
        /// The database's message.
        reason: String,
    },
}

impl JournalError {
    /// What the operator should do about it, when there is something to do
    /// (the message itself only states what happened).
    #[must_use]
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self {
            Self::DiskFull => "free disk space or raise the journal's size cap, then run again",
            Self::ReadOnly => "open the journal writable (check file permissions and the mount) to record transitions",
            Self::Busy => "another station holds the journal; run again (the change can be repeated safely)",
            Self::NoSharedJournal { .. } => "start a station on it first (kart personalize --journal URL creates the journal), or check that the URL names the floor's database",
            Self::SchemaTooNew { .. } => "use a kart at least as new as the one that last wrote this journal",
            Self::UnknownApplication(_) => "enqueue its batch first",
            Self::CardInUse { .. } => "take another card",
            Self::CardIssued { .. } => "the card can never be used again: set it aside and take another",
            Self::CardSpoiled { .. } => "discard the card",
            Self::CardMismatch { .. } => "finish or spoil that card first (kart spoil)",
            Self::ClaimLost { .. } => "present the card again: the application is claimed anew or resumes where it is",
            Self::Corrupt(_) => "restore the journal from a backup",
            Self::Unavailable { .. } => "check that the shared journal's database server is up and reachable, then run the command again (the journal resumes)",
            Self::NoConnectionSlot { .. } => "raise max_connections on the journal's server (a station holds up to 6 connections: its journal's 4 and the CRN register's 2) or put a connection pooler in front, then run again (the journal resumes)",
            Self::TlsSetup { .. } => "check the journal URL's sslrootcert, sslcert and sslkey files (PEM, the key readable by this user only)",
            Self::TlsHandshake { .. } => "check that sslrootcert names the CA that signed the server's certificate and, under sslmode=verify-full, that the URL's host is a name the certificate holds",
            Self::TlsNotOffered { .. } => "turn TLS on in the server (ssl = on) or check that the URL names the right server",
            Self::TlsRequired { .. } => "set sslmode=verify-full and sslrootcert=CA-FILE (or sslmode=require) in the journal URL",
            Self::Open { .. } | Self::InvalidTransition { .. } | Self::BadArgument(_) | Self::Database { .. } => return None,
        })
    }

    /// Whether the server could not take the call at all (down, restarting,
    /// unreachable, or no connection slot left): what a retry after a pause
    /// may cure, and the same call can then be repeated safely.
    pub(crate) fn server_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Unavailable { .. } | Self::NoConnectionSlot { .. }
        )
    }
}

impl From<rusqlite::Error> for JournalError {
    fn from(error: rusqlite::Error) -> Self {
        match error.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => JournalError::DiskFull,
            Some(ErrorCode::ReadOnly) => JournalError::ReadOnly,
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => JournalError::Busy,
            _ => JournalError::Database {
                reason: error.to_string(),
            },
        }
    }
}

impl From<postgres::Error> for JournalError {
    fn from(error: postgres::Error) -> Self {
        use postgres::error::SqlState;
        let Some(db) = error.as_db_error() else {
            // No answer from the server: connection refused, closed or reset.
            return JournalError::Unavailable {
                reason: error.to_string(),
            };
        };
        let code = db.code();
        if *code == SqlState::DISK_FULL {
            JournalError::DiskFull
        } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
            JournalError::ReadOnly
        } else if *code == SqlState::T_R_DEADLOCK_DETECTED
            || *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::LOCK_NOT_AVAILABLE
        {
            JournalError::Busy
        } else if *code == SqlState::TOO_MANY_CONNECTIONS {
            JournalError::NoConnectionSlot {
                reason: db.message().to_owned(),
            }
        } else if *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
        {
            JournalError::Unavailable {
                reason: db.message().to_owned(),
            }
        } else {
            JournalError::Database {
                reason: db.message().to_owned(),
            }
        }
    }
}
