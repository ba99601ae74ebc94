//! `kart spoil`: the operator closes applications whose card never came
//! back (a broken chip after a lost answer): each card is spoiled in the
//! journal, never reused, and with `--requeue` each application waits for
//! a new card. `--stranded` takes every application waiting for a card
//! (those `kart report` lists), `--older-than` only the long-waiting ones.

use super::{Ctx, Outcome};
use crate::error::{CliError, Kind};
use kart_perso::journal::{Journal, JournalError, JournalLocation, JournalOptions};
use kart_perso::record::TrackingCode;
use kart_perso::station::{spoil_many, SpoilError, Spoiled};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

/// `kart spoil`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The applications' tracking codes (one or more).
    #[arg(
        value_name = "TRACKING_CODE",
        required_unless_present = "stranded",
        conflicts_with = "stranded"
    )]
    tracking: Vec<String>,
    /// Every application waiting for its card (`writing`/`written` after a
    /// crash or a lost answer, as `kart report` lists them).
    #[arg(long)]
    stranded: bool,
    /// With `--stranded`: only those waiting at least DURATION (`90s`,
    /// `30m`, `12h`, `2d`, `1h30m`).
    #[arg(long, value_name = "DURATION", requires = "stranded", value_parser = parse_duration)]
    older_than: Option<Duration>,
    /// Why the cards are spoiled (kept in the journal and the report).
    #[arg(long, value_name = "TEXT")]
    reason: String,
    /// Also put the applications back in the queue, to be issued on new cards.
    #[arg(long)]
    requeue: bool,
    /// The station's directory (as given to `kart personalize`). [default: kart-station]
    #[arg(long, value_name = "DIR")]
    station_dir: Option<PathBuf>,
    /// The journal itself (instead of `--station-dir`): a file, or the
    /// floor's shared journal `postgres://USER@HOST:PORT/DB`.
    #[arg(long, value_name = "FILE|URL")]
    journal: Option<PathBuf>,
}

/// Runs `kart spoil`.
pub fn run(args: &Args, ctx: &Ctx) -> Result<Outcome, CliError> {
    let mut codes = Vec::with_capacity(args.tracking.len());
    for text in &args.tracking {
        codes.push(TrackingCode::parse(text).map_err(|e| {
            CliError::with_hint(
                Kind::Usage,
                format!("tracking code {text:?}: {e}"),
                "give the applications' 12-digit tracking codes, as in the batch file",
            )
        })?);
    }
    let location =
        super::report::given_journal(ctx, args.journal.as_deref(), args.station_dir.as_deref())?;
    // Never create a journal file here: an empty one would only say "unknown".
    if let JournalLocation::Sqlite(path) = &location {
        if !path.is_file() {
            return Err(CliError::with_hint(
                Kind::Journal,
                format!("no journal at {}", path.display()),
                "give the station's directory with --station-dir DIR (kart personalize writes the journal there)",
            ));
        }
    }
    let mut journal = Journal::open_location(&location, &JournalOptions::default())?;
    if args.stranded {
        codes = journal
            .stranded(args.older_than)?
            .into_iter()
            .map(|s| s.tracking)
            .collect();
    }
    let done = spoil_many(&mut journal, &codes, &args.reason, args.requeue).map_err(refused)?;
    if ctx.out.json {
        let item = |(tracking, d): (&TrackingCode, &Spoiled)| {
            json!({
                "tracking": tracking.as_str(),
                "card_serial": d.card_serial,
                "newly_spoiled": d.newly_spoiled,
                "requeued": args.requeue,
                "state": d.status.state.as_str(),
                "reason": args.reason,
            })
        };
        let items: Vec<_> = done.iter().map(|d| item((&d.status.tracking, d))).collect();
        // One application: its keys at the top level too, as before.
        let mut body = match items.as_slice() {
            [one] => one.clone(),
            _ => json!({ "requeued": args.requeue, "reason": args.reason }),
        };
        if let Some(b) = body.as_object_mut() {
            b.insert("spoiled".into(), serde_json::Value::Array(items));
        }
        ctx.out.json("spoil", body);
        return Ok(Outcome::Ok);
    }
    if done.is_empty() {
        let older = args
            .older_than
            .map_or_else(String::new, |d| format!(" for {} or more", human(d)));
        ctx.out.line(format!(
            "no application waits for its card{older}: nothing spoiled"
        ));
    }
    for d in &done {
        let tracking = &d.status.tracking;
        let serial = d.card_serial.as_deref().unwrap_or("-");
        if args.requeue {
            ctx.out.line(format!(
                "{tracking}: card {serial} spoiled (never reused); the application is queued for a new card"
            ));
        } else {
            ctx.out.line(format!(
                "{tracking}: card {serial} spoiled (never reused); `kart spoil {tracking} --reason … --requeue` issues it on a new card"
            ));
        }
    }
    Ok(Outcome::Ok)
}

/// A refusal is the operator's to fix (exit 2); journal failures keep theirs.
fn refused(e: SpoilError) -> CliError {
    match e {
        SpoilError::Journal(
            j @ (JournalError::UnknownApplication(_)
            | JournalError::BadArgument(_)
            | JournalError::InvalidTransition { .. }),
        ) => CliError::new(Kind::Usage, j),
        SpoilError::Journal(j) => CliError::from(j),
        e => CliError::new(Kind::Usage, e),
    }
}

/// `90s`, `30m`, `12h`, `2d`, `1w`, or several together (`1h30m`); a bare
/// number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration; write e.g. 90s, 30m, 12h, 2d or 1h30m");
    let text = text.trim();
    if text.is_empty() {
        return Err(bad());
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    for c in text.chars() {
        if let Some(d) = c.to_digit(10) {
            let n = number.unwrap_or(0);
            number = Some(
                n.checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(d)))
                    .ok_or_else(bad)?,
            );
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(bad()),
        };
        let n = number.take().ok_or_else(bad)?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
    }
    if number.is_some() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// `3d 4h`, `2h 5m`, `40s`: the two largest units.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, minutes, seconds) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, _) => format!("{minutes}m {seconds}s"),
        (0, _, _) => format!("{hours}h {minutes}m"),
        _ => format!("{days}d {hours}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_operator_units() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        for bad in ["", "h", "3x", "1h30", "99999999999999999999d", "-5m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(human(Duration::from_secs(5400)), "1h 30m");
        assert_eq!(human(Duration::from_secs(40)), "40s");
    }
}
