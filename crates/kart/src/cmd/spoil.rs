//! `kart spoil`: the operator closes an application whose card never came
//! back (a broken chip after a lost answer): its card is spoiled in the
//! journal, never reused, and with `--requeue` the application waits for a
//! new card.

use super::{Ctx, Outcome};
use crate::error::{CliError, Kind};
use kart_perso::journal::{Journal, JournalError};
use kart_perso::record::TrackingCode;
use kart_perso::station::{spoil, SpoilError, StationFiles};
use serde_json::json;
use std::path::PathBuf;

/// `kart spoil`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The application's tracking code.
    #[arg(value_name = "TRACKING_CODE")]
    tracking: String,
    /// Why the card is spoiled (kept in the journal and the report).
    #[arg(long, value_name = "TEXT")]
    reason: String,
    /// Also put the application back in the queue, to be issued on a new card.
    #[arg(long)]
    requeue: bool,
    /// The station's directory (as given to `kart personalize`). [default: kart-station]
    #[arg(long, value_name = "DIR")]
    station_dir: Option<PathBuf>,
    /// The journal file itself (instead of `--station-dir`).
    #[arg(long, value_name = "FILE")]
    journal: Option<PathBuf>,
}

/// Runs `kart spoil`.
pub fn run(args: &Args, ctx: &Ctx) -> Result<Outcome, CliError> {
    let tracking = TrackingCode::parse(&args.tracking).map_err(|e| {
        CliError::with_hint(
            Kind::Usage,
            format!("tracking code {:?}: {e}", args.tracking),
            "give the application's 12-digit tracking code, as in the batch file",
        )
    })?;
    let path = args.journal.clone().unwrap_or_else(|| {
        StationFiles::in_dir(super::personalize::station_dir(
            ctx,
            args.station_dir.as_deref(),
        ))
        .journal
    });
    // Never create a journal here: an empty one would only say "unknown".
    if !path.is_file() {
        return Err(CliError::with_hint(
            Kind::Journal,
            format!("no journal at {}", path.display()),
            "give the station's directory with --station-dir DIR (kart personalize writes the journal there)",
        ));
    }
    let mut journal = Journal::open(&path)?;
    let done = spoil(&mut journal, &tracking, &args.reason, args.requeue).map_err(refused)?;
    let serial = done.card_serial.as_deref().unwrap_or("-");
    if ctx.out.json {
        ctx.out.json(
            "spoil",
            json!({
                "tracking": tracking.as_str(),
                "card_serial": done.card_serial,
                "newly_spoiled": done.newly_spoiled,
                "requeued": args.requeue,
                "state": done.status.state.as_str(),
                "reason": args.reason,
            }),
        );
    } else if args.requeue {
        ctx.out.line(format!(
            "{tracking}: card {serial} spoiled (never reused); the application is queued for a new card"
        ));
    } else {
        ctx.out.line(format!(
            "{tracking}: card {serial} spoiled (never reused); `kart spoil {tracking} --reason … --requeue` issues it on a new card"
        ));
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
