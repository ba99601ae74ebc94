//! Reporting queries: counts by state, by vendor profile and by day, failure
//! reasons, and step timings.

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
    let mut stmt = conn.prepare("SELECT state, count(*) FROM applications GROUP BY state")?;
    let rows = stmt.query_map([], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, u64>(1)?))
    })?;
    for row in rows {
        let (state, n) = row?;
        match state.as_str() {
            "verified" => report.issued += n,
            "failed" => report.failed += n,
            "spoiled" => report.spoiled += n,
            "queued" => report.pending += n,
            _ => report.in_progress += n,
        }
    }
    let mut stmt = conn.prepare(
        "SELECT coalesce(reason, '(no reason)'), count(*) FROM events
         WHERE to_state IN ('failed', 'spoiled') GROUP BY 1 ORDER BY 2 DESC, 1",
    )?;
    report.reasons = stmt
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut stmt = conn.prepare(
        "SELECT vendor_profile, sum(state = 'verified'), sum(state = 'failed'), sum(state = 'spoiled')
         FROM applications WHERE vendor_profile IS NOT NULL GROUP BY vendor_profile ORDER BY vendor_profile",
    )?;
    report.per_vendor = stmt
        .query_map([], |row| {
            Ok(VendorCounts {
                vendor_profile: row.get(0)?,
                issued: row.get(1)?,
                failed: row.get(2)?,
                spoiled: row.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut stmt = conn.prepare(
        "SELECT date(at_ms / 1000, 'unixepoch'), sum(to_state = 'verified'), sum(to_state = 'failed'),
                sum(to_state = 'spoiled')
         FROM events WHERE to_state IN ('verified', 'failed', 'spoiled') GROUP BY 1 ORDER BY 1",
    )?;
    report.per_day = stmt
        .query_map([], |row| {
            Ok(DayCounts {
                day: row.get(0)?,
                issued: row.get(1)?,
                failed: row.get(2)?,
                spoiled: row.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut stmt = conn.prepare(
        "SELECT step, count(*), CAST(avg(duration_us) AS INTEGER), max(duration_us), sum(apdus),
                sum(bytes_sent), sum(bytes_received)
         FROM steps GROUP BY step ORDER BY step",
    )?;
    report.steps = stmt
        .query_map([], |row| {
            Ok(StepTiming {
                step: row.get(0)?,
                count: row.get(1)?,
                mean_us: row.get(2)?,
                max_us: row.get(3)?,
                apdus: row.get(4)?,
                bytes_sent: row.get(5)?,
                bytes_received: row.get(6)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(report)
}
