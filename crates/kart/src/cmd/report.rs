//! `kart report`: where a batch stands, from the journal: issued, failed
//! with reasons, pending — per station, per vendor profile and per day, the
//! failed applications and the stranded ones with their cards. On a shared
//! journal that is the whole floor.

use super::{Ctx, Outcome};
use crate::error::{CliError, Kind};
use crate::output::table;
use kart_perso::journal::{Journal, JournalLocation, JournalOptions, Report, Stranded};
use kart_perso::station::StationFiles;
use serde_json::json;
use std::path::{Path, PathBuf};

/// `kart report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The station's directory (as given to `kart personalize`). [default: kart-station]
    #[arg(long, value_name = "DIR")]
    station_dir: Option<PathBuf>,
    /// The journal itself (instead of `--station-dir`): a file, or the
    /// floor's shared journal `postgres://USER@HOST:PORT/DB` (every station
    /// in one report; the password from PGPASSFILE or PGPASSWORD).
    #[arg(long, value_name = "FILE|URL")]
    journal: Option<PathBuf>,
}

/// Runs `kart report`.
pub fn run(args: &Args, ctx: &Ctx) -> Result<Outcome, CliError> {
    let journal = given_journal(ctx, args.journal.as_deref(), args.station_dir.as_deref())?;
    let opened = open(&journal)?;
    let (report, stranded) = (opened.report()?, opened.stranded(None)?);
    let superseded = opened.superseded()?;
    if ctx.out.json {
        let mut body = to_json(&report);
        if let Some(b) = body.as_object_mut() {
            b.insert("stranded".into(), stranded_json(&stranded));
            b.insert(
                "superseded".into(),
                superseded
                    .iter()
                    .map(|s| {
                        json!({
                            "tracking_code": s.tracking.as_str(),
                            "card_serial": s.card_serial,
                            "by": s.by.as_str(),
                            "at": utc(s.at),
                        })
                    })
                    .collect(),
            );
        }
        ctx.out.json("report", body);
        return Ok(Outcome::Ok);
    }
    show(ctx, &report);
    if !superseded.is_empty() {
        let mut t = table(["superseded application", "its card", "replaced by", "at"]);
        for s in &superseded {
            t.add_row([
                s.tracking.to_string(),
                s.card_serial.clone().unwrap_or_else(|| "-".into()),
                s.by.to_string(),
                utc(s.at),
            ]);
        }
        ctx.out.line(t);
    }
    show_stranded(ctx, &stranded);
    Ok(Outcome::Ok)
}

/// `--journal`, else `--station-dir`'s `journal.db`, else the configuration's
/// `journal`, else the default station directory's.
pub fn given_journal(
    ctx: &Ctx,
    journal: Option<&Path>,
    station_dir: Option<&Path>,
) -> Result<JournalLocation, CliError> {
    match (journal, station_dir) {
        (None, Some(dir)) => Ok(JournalLocation::sqlite(StationFiles::in_dir(dir).journal)),
        (given, _) => super::personalize::journal_location(
            ctx,
            given,
            &super::personalize::station_dir(ctx, None),
        ),
    }
}

/// Opens the journal read-only and builds its report.
pub fn load(journal: &JournalLocation) -> Result<Report, CliError> {
    Ok(open(journal)?.report()?)
}

/// The report and the applications waiting for their card.
pub fn load_with_stranded(journal: &JournalLocation) -> Result<(Report, Vec<Stranded>), CliError> {
    let journal = open(journal)?;
    Ok((journal.report()?, journal.stranded(None)?))
}

/// Opens the journal for reading only: a live station's, a read-only or
/// an archived one.
fn open(journal: &JournalLocation) -> Result<Journal, CliError> {
    let path = match journal {
        JournalLocation::Sqlite(path) => path,
        JournalLocation::Postgres(_) => {
            let options = JournalOptions {
                read_only: true,
                ..JournalOptions::default()
            };
            return Ok(Journal::open_location(journal, &options)?);
        }
    };
    if !path.is_file() {
        return Err(CliError::with_hint(
            Kind::Journal,
            format!("no journal at {}", path.display()),
            "give the station's directory with --station-dir DIR (kart personalize writes the journal there)",
        ));
    }
    Ok(Journal::open_for_report(path)?)
}

/// When, in UTC (`2026-12-02 06:44:10 UTC`).
pub fn utc(at: std::time::SystemTime) -> String {
    let t = time::OffsetDateTime::from(at);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn waited(at: std::time::SystemTime) -> std::time::Duration {
    std::time::SystemTime::now()
        .duration_since(at)
        .unwrap_or_default()
}

/// The waiting applications as JSON.
pub fn stranded_json(stranded: &[Stranded]) -> serde_json::Value {
    stranded
        .iter()
        .map(|s| {
            json!({
                "tracking_code": s.tracking.as_str(),
                "state": s.state.as_str(),
                "card_serial": s.card_serial,
                "vendor_profile": s.vendor_profile,
                "station": s.station,
                "reader": s.reader,
                "since": utc(s.since),
                "waiting_s": waited(s.since).as_secs(),
            })
        })
        .collect()
}

/// Lists the applications waiting for their card, and the way out.
pub fn show_stranded(ctx: &Ctx, stranded: &[Stranded]) {
    if stranded.is_empty() {
        return;
    }
    let mut t = table([
        "waiting for its card",
        "state",
        "card serial",
        "reader",
        "since",
        "waiting",
    ]);
    for s in stranded {
        t.add_row([
            s.tracking.to_string(),
            s.state.as_str().to_owned(),
            s.card_serial.clone(),
            s.reader.clone().unwrap_or_default(),
            utc(s.since),
            super::spoil::human(waited(s.since)),
        ]);
    }
    ctx.out.line(t);
    ctx.out.line(format!(
        "{} application(s) wait for their card: put each card back in a reader and run `kart personalize` again; for a card that will not come back: `kart spoil --stranded [--older-than 1d] --reason \"…\" [--requeue]`",
        stranded.len()
    ));
}

/// The report as JSON.
pub fn to_json(r: &Report) -> serde_json::Value {
    json!({
        "issued": r.issued,
        "failed": r.failed,
        "spoiled": r.spoiled,
        "pending": r.pending,
        "in_progress": r.in_progress,
        "reasons": r.reasons.iter().map(|(reason, n)| json!({ "reason": reason, "count": n })).collect::<Vec<_>>(),
        "per_vendor": r.per_vendor.iter().map(|v| json!({
            "profile": v.vendor_profile, "issued": v.issued, "failed": v.failed, "spoiled": v.spoiled,
        })).collect::<Vec<_>>(),
        "per_day": r.per_day.iter().map(|d| json!({
            "day": d.day, "issued": d.issued, "failed": d.failed, "spoiled": d.spoiled,
        })).collect::<Vec<_>>(),
        "steps": r.steps.iter().map(|s| json!({
            "step": s.step, "count": s.count, "mean_us": s.mean_us, "max_us": s.max_us,
            "apdus": s.apdus, "bytes_sent": s.bytes_sent, "bytes_received": s.bytes_received,
        })).collect::<Vec<_>>(),
        "per_station": r.per_station.iter().map(|s| json!({
            "station": s.station, "issued": s.issued, "failed": s.failed, "spoiled": s.spoiled,
            "in_progress": s.in_progress,
        })).collect::<Vec<_>>(),
        "failures": r.failures.iter().map(|f| json!({
            "tracking_code": f.tracking, "state": f.state, "reason": f.reason, "station": f.station,
            "reader": f.reader, "card_serial": f.card_serial, "attempts": f.attempts, "at": utc(f.at),
        })).collect::<Vec<_>>(),
    })
}

/// Prints the report (JSON or tables).
pub fn show(ctx: &Ctx, r: &Report) {
    if ctx.out.json {
        ctx.out.json("report", to_json(r));
        return;
    }
    let mut totals = table(["issued", "failed", "spoiled", "pending", "in progress"]);
    totals
        .add_row([r.issued, r.failed, r.spoiled, r.pending, r.in_progress].map(|n| n.to_string()));
    ctx.out.line(totals);
    if !r.per_station.is_empty() {
        let mut t = table(["station", "issued", "failed", "spoiled", "in progress"]);
        for s in &r.per_station {
            t.add_row([
                s.station.clone(),
                s.issued.to_string(),
                s.failed.to_string(),
                s.spoiled.to_string(),
                s.in_progress.to_string(),
            ]);
        }
        ctx.out.line(t);
    }
    if !r.per_vendor.is_empty() {
        let mut t = table(["vendor profile", "issued", "failed", "spoiled"]);
        for v in &r.per_vendor {
            t.add_row([
                v.vendor_profile.clone(),
                v.issued.to_string(),
                v.failed.to_string(),
                v.spoiled.to_string(),
            ]);
        }
        ctx.out.line(t);
    }
    if !r.per_day.is_empty() {
        let mut t = table(["day (UTC)", "issued", "failed", "spoiled"]);
        for d in &r.per_day {
            t.add_row([
                d.day.clone(),
                d.issued.to_string(),
                d.failed.to_string(),
                d.spoiled.to_string(),
            ]);
        }
        ctx.out.line(t);
    }
    if !r.reasons.is_empty() {
        let mut t = table(["failure reason", "count"]);
        for (reason, n) in &r.reasons {
            t.add_row([reason.clone(), n.to_string()]);
        }
        ctx.out.line(t);
    }
    if !r.failures.is_empty() {
        let mut t = table([
            "failed application",
            "state",
            "reason",
            "station",
            "reader",
            "card serial",
            "attempts",
            "at",
        ]);
        for f in &r.failures {
            t.add_row([
                f.tracking.clone(),
                f.state.clone(),
                f.reason.clone(),
                f.station.clone().unwrap_or_else(|| "-".into()),
                f.reader.clone().unwrap_or_else(|| "-".into()),
                f.card_serial.clone().unwrap_or_else(|| "-".into()),
                f.attempts.to_string(),
                utc(f.at),
            ]);
        }
        ctx.out.line(t);
    }
}
