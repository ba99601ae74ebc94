//! Reporting queries: counts by state, by station, by vendor profile and by
//! day, failure reasons, the failed applications themselves, and step timings.
//! On a shared journal this is the whole floor in one report.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use super::JournalError;

/// The station's end-of-run report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Applications verified on a card (issued).
    pub issued: u64,
    /// Applications now failed.
    pub failed: u64,
    /// Applications now spoiled (their card is unusable).
    pub spoiled: u64,
    /// Applications waiting in the queue.
    pub pending: u64,
    /// Applications claimed, being written or awaiting verification.
    pub in_progress: u64,
    /// Every failure and spoil recorded (retries included), by reason,
    /// most frequent first.
    pub reasons: Vec<(String, u64)>,
    /// Current counts per vendor profile of the card last used.
    pub per_vendor: Vec<VendorCounts>,
    /// Outcomes per UTC day on which they were recorded.
    pub per_day: Vec<DayCounts>,
    /// Timings per step name.
    pub steps: Vec<StepTiming>,
    /// Outcomes per station that recorded them, and what each holds now;
    /// by station name.
    pub per_station: Vec<StationCounts>,
    /// The applications now failed or spoiled, each with its reason, oldest
    /// first.
    pub failures: Vec<Failure>,
}

/// Outcomes one station recorded, and its applications in progress now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StationCounts {
    /// The station's name (`(no station)` for transitions recorded outside
    /// any station, e.g. a spoil from the command line before any claim).
    pub station: String,
    /// Verifications it recorded.
    pub issued: u64,
    /// Failures it recorded.
    pub failed: u64,
    /// Spoiled cards it recorded.
    pub spoiled: u64,
    /// Applications it holds now: claimed, being written or awaiting
    /// verification.
    pub in_progress: u64,
}

/// One application that is now failed or spoiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Its tracking code.
    pub tracking: String,
    /// `failed` or `spoiled`.
    pub state: String,
    /// Why, as recorded (`(no reason)` if none was).
    pub reason: String,
    /// The station of its last attempt.
    pub station: Option<String>,
    /// The reader of its last attempt.
    pub reader: Option<String>,
    /// The card of its last attempt, if one was bound.
    pub card_serial: Option<String>,
    /// Attempts so far.
    pub attempts: u64,
    /// When it reached this state.
    pub at: SystemTime,
}

/// Folds per-station outcome rows and in-progress rows into one sorted
/// list: the same for every store, whatever its SQL.
pub(crate) fn per_station(
    outcomes: impl IntoIterator<Item = (String, u64, u64, u64)>,
    in_progress: impl IntoIterator<Item = (String, u64)>,
) -> Vec<StationCounts> {
    let mut by_name: BTreeMap<String, StationCounts> = BTreeMap::new();
    for (station, issued, failed, spoiled) in outcomes {
        let e = by_name
            .entry(station.clone())
            .or_insert_with(|| StationCounts {
                station,
                ..StationCounts::default()
            });
        e.issued += issued;
        e.failed += failed;
        e.spoiled += spoiled;
    }
    for (station, n) in in_progress {
        by_name
            .entry(station.clone())
            .or_insert_with(|| StationCounts {
                station,
                ..StationCounts::default()
            })
            .in_progress += n;
    }
    by_name.into_values().collect()
}

/// A journal timestamp (milliseconds since the epoch) as a time; a negative
/// one (a clock set wrong) is the epoch.
pub(crate) fn from_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// Counts for one vendor profile.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VendorCounts {
    /// The vendor profile.
    pub vendor_profile: String,
    /// Issued.
    pub issued: u64,
    /// Failed.
    pub failed: u64,
    /// Spoiled.
    pub spoiled: u64,
}

/// Outcomes recorded on one day.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DayCounts {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    /// Verifications.
    pub issued: u64,
    /// Failures.
    pub failed: u64,
    /// Spoiled cards.
    pub spoiled: u64,
}

/// Aggregate timing of one step name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepTiming {
    /// The step name.
    pub step: String,
    /// How many times it ran.
    pub count: u64,
    /// Mean duration, microseconds.
    pub mean_us: u64,
    /// Longest duration, microseconds.
    pub max_us: u64,
    /// APDUs over all runs.
    pub apdus: u64,
    /// Bytes sent over all runs.
    pub bytes_sent: u64,
    /// Bytes received over all runs.
    pub bytes_received: u64,
}

pub(super) fn build(conn: &Connection) -> Result<Report, JournalError> {
    let mut report = Report::default();
    let states = query(
        conn,
        "SELECT state, count(*) FROM applications GROUP BY state",
        |row| Ok((row.get::<_, String>(0)?, row.get::<_, u64>(1)?)),
    )?;
    for (state, n) in states {
        match state.as_str() {
            "verified" => report.issued += n,
            "failed" => report.failed += n,
            "spoiled" => report.spoiled += n,
            "queued" => report.pending += n,
            _ => report.in_progress += n,
        }
    }
    report.reasons = query(
        conn,
        "SELECT coalesce(reason, '(no reason)'), count(*) FROM events
         WHERE to_state IN ('failed', 'spoiled') GROUP BY 1 ORDER BY 2 DESC, 1",
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    report.per_vendor = outcomes(
        conn,
        "SELECT vendor_profile, sum(state = 'verified'), sum(state = 'failed'), sum(state = 'spoiled')
         FROM applications WHERE vendor_profile IS NOT NULL GROUP BY vendor_profile ORDER BY vendor_profile",
    )?
    .into_iter()
    .map(|(vendor_profile, issued, failed, spoiled)| VendorCounts {
        vendor_profile,
        issued,
        failed,
        spoiled,
    })
    .collect();
    report.per_day = outcomes(
        conn,
        "SELECT date(at_ms / 1000, 'unixepoch'), sum(to_state = 'verified'), sum(to_state = 'failed'),
                sum(to_state = 'spoiled')
         FROM events WHERE to_state IN ('verified', 'failed', 'spoiled') GROUP BY 1 ORDER BY 1",
    )?
    .into_iter()
    .map(|(day, issued, failed, spoiled)| DayCounts {
        day,
        issued,
        failed,
        spoiled,
    })
    .collect();
    report.steps = query(
        conn,
        "SELECT step, count(*), CAST(avg(duration_us) AS INTEGER), max(duration_us), sum(apdus),
                sum(bytes_sent), sum(bytes_received)
         FROM steps GROUP BY step ORDER BY step",
        |row| {
            Ok(StepTiming {
                step: row.get(0)?,
                count: row.get(1)?,
                mean_us: row.get(2)?,
                max_us: row.get(3)?,
                apdus: row.get(4)?,
                bytes_sent: row.get(5)?,
                bytes_received: row.get(6)?,
            })
        },
    )?;
    floor(conn, &mut report)?;
    Ok(report)
}

/// Every row of `sql` (a query without parameters), each made by `row`.
fn query<T>(
    conn: &Connection,
    sql: &str,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, JournalError> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The rows of `sql` that count outcomes: a name, then issued, failed and
/// spoiled.
fn outcomes(conn: &Connection, sql: &str) -> Result<Vec<(String, u64, u64, u64)>, JournalError> {
    query(conn, sql, |row| {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
    })
}

/// The floor sections: per station, and the failed applications.
fn floor(conn: &Connection, report: &mut Report) -> Result<(), JournalError> {
    let outcomes = outcomes(
        conn,
        "SELECT coalesce(station, '(no station)'), sum(to_state = 'verified'), sum(to_state = 'failed'),
                sum(to_state = 'spoiled')
         FROM events WHERE to_state IN ('verified', 'failed', 'spoiled') GROUP BY 1",
    )?;
    let holding = query(
        conn,
        "SELECT station, count(*) FROM applications
         WHERE state IN ('claimed', 'writing', 'written') AND station IS NOT NULL GROUP BY 1",
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    report.per_station = per_station(outcomes, holding);
    report.failures = query(
        conn,
        "SELECT tracking, state, coalesce(reason, '(no reason)'), station, reader, card_serial, attempts,
                updated_at_ms
         FROM applications WHERE state IN ('failed', 'spoiled') ORDER BY updated_at_ms, tracking",
        |row| {
            Ok(Failure {
                tracking: row.get(0)?,
                state: row.get(1)?,
                reason: row.get(2)?,
                station: row.get(3)?,
                reader: row.get(4)?,
                card_serial: row.get(5)?,
                attempts: row.get(6)?,
                at: from_ms(row.get(7)?),
            })
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stations_are_merged_by_name_and_sorted() {
        let got = per_station(
            [("b".to_owned(), 2, 1, 0), ("a".to_owned(), 1, 0, 1)],
            [("b".to_owned(), 3), ("c".to_owned(), 1)],
        );
        let names: Vec<_> = got.iter().map(|s| s.station.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(
            (got[1].issued, got[1].failed, got[1].in_progress),
            (2, 1, 3)
        );
        assert_eq!((got[2].issued, got[2].in_progress), (0, 1));
    }

    #[test]
    fn a_negative_timestamp_is_the_epoch() {
        assert_eq!(from_ms(-5), UNIX_EPOCH);
        assert_eq!(from_ms(1500), UNIX_EPOCH + Duration::from_millis(1500));
    }
}
