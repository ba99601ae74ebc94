//! `kart readers`: the readers, what is in them, and (`--watch`) what changes.

use super::{Ctx, Outcome};
use crate::cli::ReaderArgs;
use crate::error::{CliError, Kind};
use crate::families;
use crate::output::{hex, table};
use crate::reader::{self, Source};
use kart_pcsc::{CardState, EventWatch, Pcsc, ReaderEvent};
use serde_json::json;
use std::time::{Duration, Instant};

/// `kart readers`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    readers: ReaderArgs,
    /// Keep running and show readers and cards coming and going, until
    /// Ctrl-C or `--timeout`.
    #[arg(long)]
    watch: bool,
    /// With `--watch`: stop after this many seconds.
    #[arg(long, value_name = "SECONDS", requires = "watch")]
    timeout: Option<f64>,
}

/// One line of the listing.
struct Row {
    name: String,
    state: &'static str,
    atr: Vec<u8>,
}

/// Runs `kart readers`.
pub fn run(args: &Args, ctx: &Ctx) -> Result<Outcome, CliError> {
    if args.watch {
        return watch(args, ctx);
    }
    let rows = if args.readers.readers.is_empty() {
        Pcsc::establish()?
            .readers()?
            .into_iter()
            .map(|r| Row {
                name: r.name,
                state: state_name(r.card),
                atr: r.atr,
            })
            .collect()
    } else {
        listed(&args.readers.readers, ctx)?
    };
    let describe = |atr: &[u8]| {
        let profile = ctx.spec.profile_for_atr(atr).map(|p| p.id.clone());
        let family = families::recognize(atr).map(|f| f.description);
        (profile, family)
    };
    if ctx.out.json {
        let readers: Vec<_> = rows
            .iter()
            .map(|r| {
                let (profile, family) = describe(&r.atr);
                json!({
                    "name": r.name,
                    "card": r.state,
                    "atr": (!r.atr.is_empty()).then(|| hex(&r.atr)),
                    "profile": profile,
                    "family": family,
                })
            })
            .collect();
        ctx.out.json("readers", json!({ "readers": readers }));
        return Ok(Outcome::Ok);
    }
    if rows.is_empty() {
        ctx.out
            .line("no smart-card reader is connected (simulated cards: --reader sim:all)");
        return Ok(Outcome::Ok);
    }
    let mut t = table(["reader", "card", "ATR", "profile"]);
    for r in &rows {
        let (profile, family) = describe(&r.atr);
        let what = match (profile, family) {
            (Some(p), _) => p,
            (None, Some(f)) => f.to_owned(),
            (None, None) if r.atr.is_empty() => String::new(),
            (None, None) => "unknown".to_owned(),
        };
        t.add_row([r.name.clone(), r.state.to_owned(), hex(&r.atr), what]);
    }
    ctx.out.line(t);
    Ok(Outcome::Ok)
}

/// The readers named by `--reader`, PC/SC ones with their live state.
fn listed(values: &[String], ctx: &Ctx) -> Result<Vec<Row>, CliError> {
    let sources = reader::resolve(values, &ctx.spec)?;
    let pcsc_states = if sources.iter().any(|s| !s.is_simulated()) {
        Pcsc::establish()?.readers()?
    } else {
        Vec::new()
    };
    Ok(sources
        .iter()
        .map(|s| match s {
            Source::Sim { profile, .. } => Row {
                name: s.name(),
                state: "simulated",
                atr: profile.atr.bytes().to_vec(),
            },
            Source::Pcsc(name) => {
                let info = pcsc_states.iter().find(|r| &r.name == name);
                Row {
                    name: name.clone(),
                    state: info.map_or("unavailable", |i| state_name(i.card)),
                    atr: info.map(|i| i.atr.clone()).unwrap_or_default(),
                }
            }
        })
        .collect())
}

fn state_name(s: CardState) -> &'static str {
    match s {
        CardState::Absent => "empty",
        CardState::Present => "card",
        CardState::InUse => "card (in use)",
        CardState::Exclusive => "card (exclusive)",
        CardState::Mute => "card (mute)",
        CardState::Unavailable => "unavailable",
    }
}

/// `--watch`: print events as they come until the timeout (or Ctrl-C).
fn watch(args: &Args, ctx: &Ctx) -> Result<Outcome, CliError> {
    if !args.readers.readers.is_empty() {
        return Err(CliError::with_hint(
            Kind::Usage,
            "--watch follows the PC/SC readers and takes no --reader",
            "run `kart readers --watch` alone",
        ));
    }
    let deadline = match args.timeout {
        Some(s) if s.is_finite() && s >= 0.0 => Some(Instant::now() + Duration::from_secs_f64(s)),
        Some(_) => {
            return Err(CliError::with_hint(
                Kind::Usage,
                "--timeout must be a number of seconds, 0 or more",
                "e.g. --timeout 30",
            ))
        }
        None => None,
    };
    let pcsc = Pcsc::establish()?;
    let mut watch = EventWatch::all_readers();
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            return Ok(Outcome::Ok);
        }
        let slice = left.map_or(Duration::from_secs(1), |l| l.min(Duration::from_secs(1)));
        for event in pcsc.wait_events(&mut watch, Some(slice))? {
            print_event(ctx, &event);
        }
    }
}

fn print_event(ctx: &Ctx, event: &ReaderEvent) {
    let (kind, reader, atr) = match event {
        ReaderEvent::ReaderAdded(r) => ("reader-added", r, None),
        ReaderEvent::ReaderRemoved(r) => ("reader-removed", r, None),
        ReaderEvent::CardInserted { reader, atr } => ("card-inserted", reader, Some(atr)),
        ReaderEvent::CardRemoved { reader } => ("card-removed", reader, None),
    };
    if ctx.out.json {
        let profile = atr
            .and_then(|a| ctx.spec.profile_for_atr(a))
            .map(|p| p.id.clone());
        ctx.out.json(
            "readers",
            json!({ "event": kind, "reader": reader, "atr": atr.map(|a| hex(a)), "profile": profile }),
        );
    } else {
        let detail = atr.map_or_else(String::new, |a| {
            let profile = ctx
                .spec
                .profile_for_atr(a)
                .map_or_else(String::new, |p| format!(" ({})", p.id));
            format!("  ATR {}{profile}", hex(a))
        });
        ctx.out.line(format!("{kind:<15} {reader}{detail}"));
    }
}
