//! Stranded applications: left `writing` or `written` after a crash or a
//! lost answer, bound to a card, they wait for that card to be presented
//! again. The report lists them, with the card and since when, so that the
//! operator finds the card or closes them with `kart spoil`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::params;

use super::sqlite::SqliteStore;
use super::{now_ms, parse_tracking, JournalError, State};
use crate::record::TrackingCode;

/// An application waiting for its card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stranded {
    /// The application.
    pub tracking: TrackingCode,
    /// `writing` or `written`.
    pub state: State,
    /// The card it waits for.
    pub card_serial: String,
    /// Its vendor profile.
    pub vendor_profile: Option<String>,
    /// The station and reader that last served it.
    pub station: Option<String>,
    /// The reader.
    pub reader: Option<String>,
    /// When it entered its state (its last transition).
    pub since: SystemTime,
}

impl SqliteStore {
    /// Applications left `writing` or `written` on a card, oldest first;
    /// with `older_than`, only those waiting at least that long.
    ///
    /// ```
    /// use kart_perso::journal::{Journal, State};
    /// use kart_perso::record::TrackingCode;
    /// # let dir = tempfile::tempdir()?;
    /// let mut journal = Journal::open(dir.path().join("journal.db"))?;
    /// let code = TrackingCode::parse("140409040007").unwrap();
    /// journal.enqueue_batch("batch.csv", [&code])?;
    /// journal.claim_next("station-1", "reader-0")?;
    /// journal.mark_writing(&code, "4790503300001234", "vendor-a")?;
    /// let waiting = journal.stranded(None)?;
    /// assert_eq!((waiting[0].state, waiting[0].card_serial.as_str()), (State::Writing, "4790503300001234"));
    /// assert!(journal.stranded(Some(std::time::Duration::from_secs(3600)))?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub(super) fn stranded(
        &self,
        older_than: Option<Duration>,
    ) -> Result<Vec<Stranded>, JournalError> {
        let cutoff = older_than.map_or(i64::MAX, |d| {
            now_ms().saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        });
        let mut stmt = self.conn.prepare(
            "SELECT tracking, state, card_serial, vendor_profile, station, reader, updated_at_ms
             FROM applications
             WHERE state IN ('writing', 'written') AND card_serial IS NOT NULL
               AND updated_at_ms <= ?1
             ORDER BY updated_at_ms, tracking",
        )?;
        let rows = stmt.query_map(params![cutoff], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, Option<String>>(3)?,
                row.get::<_, Option<String>>(4)?,
                row.get::<_, Option<String>>(5)?,
                row.get::<_, i64>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (tracking, state, card_serial, vendor_profile, station, reader, at) = row?;
            out.push(Stranded {
                tracking: parse_tracking(&tracking)?,
                state: State::from_name(&state)
                    .ok_or_else(|| JournalError::Corrupt(format!("unknown state {state:?}")))?,
                card_serial,
                vendor_profile,
                station,
                reader,
                since: UNIX_EPOCH + Duration::from_millis(u64::try_from(at).unwrap_or(0)),
            });
        }
        Ok(out)
    }
}
