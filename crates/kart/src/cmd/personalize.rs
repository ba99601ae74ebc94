//! `kart personalize`: a batch (or a one-line batch for one record) on one
//! or many readers in parallel, resumable from the station's journal.

use super::{report, Ctx, Outcome};
use crate::batch::{self, Run, Tally};
use crate::cli::ReaderArgs;
use crate::error::{CliError, Kind};
use crate::output::table;
use crate::progress::Progress;
use crate::reader::{self, Source};
use kart_perso::card_data::{CardFacts, Crn};
use kart_perso::issuer::Issuer;
use kart_perso::personalize::Job;
use kart_perso::pin_mailer::Pins;
use kart_perso::plan::{self, Lifecycle, PlanInput};
use kart_perso::record::{Batch, RecordError, Validator};
use kart_perso::station::{BatchLoad, Station, StationFiles};
use kart_spec::Profile;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The station directory used when `--station-dir` is not given.
pub const DEFAULT_STATION_DIR: &str = "kart-station";

/// `kart personalize`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    reader: ReaderArgs,
    /// The batch of applications (`*.csv` or `*.jsonl`); one record is a
    /// batch of one line.
    #[arg(value_name = "BATCH")]
    batch: PathBuf,
    /// Issuer directory (certificates, keys, master keys).
    #[arg(long, value_name = "DIR", env = "KART_ISSUER")]
    issuer: Option<PathBuf>,
    /// The station's directory: journal (`journal.db`) and PIN mailer
    /// (`pin-mailer.txt`, mode 0600). A re-run with the same directory
    /// resumes the batch. CRNs come from the issuer's register (`crn.db` in
    /// the issuer directory, or `crn_register` in kart.toml), shared by
    /// every station directory. [default: kart-station]
    #[arg(long, value_name = "DIR")]
    station_dir: Option<PathBuf>,
    /// The station's name in the journal (reports group by it). Claims belong to
    /// the running process, not to the name, so desks may share one.
    /// [default: the host name]
    #[arg(long, value_name = "NAME")]
    station: Option<String>,
    /// How long a PC/SC reader waits for the next card, in seconds. [default: 120]
    #[arg(long, value_name = "SECONDS")]
    card_timeout: Option<u64>,
    /// Print each application's plan and touch no card.
    #[arg(long)]
    dry_run: bool,
    /// With `--dry-run`: the vendor profile to plan for (default: the
    /// profiles of the simulated readers given, else every profile).
    #[arg(long, value_name = "PROFILE", requires = "dry_run")]
    profile: Option<String>,
}

/// Runs `kart personalize`.
pub fn run(args: &Args, ctx: &Ctx) -> Result<Outcome, CliError> {
    if args.dry_run {
        return dry_run(args, ctx);
    }
    let sources = reader::resolve(ctx.readers(&args.reader.readers), &ctx.spec)?;
    let issuer_dir = ctx.issuer(args.issuer.as_deref())?;
    let issuer = load_issuer(&issuer_dir)?;
    let files = station_files(
        &station_dir(ctx, args.station_dir.as_deref()),
        &crn_register(ctx, &issuer_dir),
    )?;
    let name = args
        .station
        .clone()
        .or_else(|| ctx.config.station.clone())
        .unwrap_or_else(kart_perso::host::name);
    let card_timeout = args.card_timeout.or(ctx.config.card_timeout).unwrap_or(120);
    let station =
        Station::open(&name, &files, issuer, ctx.spec.clone()).map_err(station_open_error)?;
    let load = load_batch(&station, &args.batch)?;
    let tally = personalize_loaded(
        ctx,
        &station,
        &files.journal,
        &sources,
        Duration::from_secs(card_timeout),
        None,
    )?;
    let report = report::load(&files.journal)?;
    show(ctx, "personalize", &args.batch, &load, &tally, &report);
    finish(&load, tally)
}

/// The station directory given, else the configuration's, else the default.
pub fn station_dir(ctx: &Ctx, given: Option<&Path>) -> PathBuf {
    given
        .map(Path::to_path_buf)
        .or_else(|| ctx.config.station_dir.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATION_DIR))
}

/// Loads the issuer, saying clearly when the directory is not one.
pub fn load_issuer(dir: &Path) -> Result<Issuer, CliError> {
    if !dir.is_dir() {
        return Err(CliError::with_hint(
            Kind::Issuer,
            format!("issuer directory {} does not exist", dir.display()),
            "give --issuer DIR (create a demo one with `kart issuer init DIR`)",
        ));
    }
    kart_perso::pki::encrypted::set_prompt(super::issuer_hsm::prompt_passphrase);
    Ok(Issuer::load_with_prompt(
        dir,
        Some(&super::issuer_hsm::prompt),
    )?)
}

/// The issuer's CRN register: the configuration's `crn_register`, else
/// `crn.db` in the issuer directory.
pub fn crn_register(ctx: &Ctx, issuer_dir: &Path) -> PathBuf {
    ctx.config
        .crn_register
        .clone()
        .unwrap_or_else(|| issuer_dir.join(kart_perso::station::CRN_REGISTER_FILE))
}

/// The station's files in `dir` (created if missing) with the issuer's CRN
/// register `crns`.
pub fn station_files(dir: &Path, crns: &Path) -> Result<StationFiles, CliError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        CliError::new(
            Kind::Io,
            format!("cannot create the station directory {}: {e}", dir.display()),
        )
    })?;
    Ok(StationFiles::for_issuer(dir, crns))
}

/// Station errors when opening: journal ones keep their exit code; a CRN
/// register that cannot be opened stops the station before any card.
pub fn station_open_error(e: kart_perso::station::StationError) -> CliError {
    use kart_perso::crn::CrnError;
    use kart_perso::station::StationError as S;
    match e {
        S::Journal(j) => CliError::from(j),
        e @ S::Crn(CrnError::Open { .. }) => CliError::with_hint(
            Kind::Journal,
            e.to_string(),
            "every desk of an issuer needs the same writable register: fix its permissions, or name one with crn_register in kart.toml",
        ),
        e => CliError::new(Kind::Io, e),
    }
}

/// Queues the batch; rejected records are reported, not fatal.
pub fn load_batch(station: &Station, batch: &Path) -> Result<BatchLoad, CliError> {
    station.load_batch(batch, Validator::new()).map_err(|e| {
        use kart_perso::station::StationError as S;
        match e {
            S::Batch(b) => CliError::from(b),
            S::Journal(j) => CliError::from(j),
            e => CliError::new(Kind::Input, e),
        }
    })
}

/// Runs the queued applications on `sources` with progress bars.
pub fn personalize_loaded(
    ctx: &Ctx,
    station: &Station,
    journal: &Path,
    sources: &[Source],
    card_timeout: Duration,
    after_issue: Option<batch::AfterIssue<'_>>,
) -> Result<Tally, CliError> {
    let before = report::load(journal)?;
    let names: Vec<String> = sources.iter().map(Source::name).collect();
    let progress = Progress::new(ctx.out, &names, before.pending + before.in_progress);
    let run = Run {
        station,
        journal,
        issuer: station.issuer(),
        spec: &ctx.spec,
        progress: &progress,
        card_timeout,
        after_issue,
    };
    let tally = batch::run_all(&run, sources);
    progress.finish();
    Ok(tally)
}

/// The exit: rejected rows, failed cards or stopped readers make it 1; a
/// run where every reader stopped on an error before serving any card
/// gives that error's code.
pub fn finish(load: &BatchLoad, mut tally: Tally) -> Result<Outcome, CliError> {
    if tally.results.is_empty() && !tally.errors.is_empty() {
        return Err(tally.errors.swap_remove(0).1);
    }
    Ok(Outcome::from_pass(
        load.rejected.is_empty() && tally.all_ok(),
    ))
}

/// Rejected records as JSON.
pub fn rejected_json(load: &BatchLoad) -> serde_json::Value {
    load.rejected
        .iter()
        .map(|r| json!({ "line": r.line, "problems": r.messages().collect::<Vec<_>>() }))
        .collect()
}

/// Prints what happened (JSON or tables).
pub fn show(
    ctx: &Ctx,
    command: &str,
    batch: &Path,
    load: &BatchLoad,
    tally: &Tally,
    report: &kart_perso::journal::Report,
) {
    if ctx.out.json {
        let mut body = json!({
            "batch": batch.display().to_string(),
            "queued": load.queued,
            "already_in_journal": load.already_present,
            "rejected": rejected_json(load),
            "report": report::to_json(report),
        });
        if let (Some(b), serde_json::Value::Object(t)) = (body.as_object_mut(), tally.to_json()) {
            b.extend(t);
        }
        ctx.out.json(command, body);
        return;
    }
    show_rejected(ctx, &load.rejected);
    if !tally.results.is_empty() {
        let mut t = table(["tracking code", "reader", "result", "detail"]);
        for r in &tally.results {
            t.add_row([
                r.tracking.clone(),
                r.reader.clone(),
                r.result.to_owned(),
                r.detail.clone(),
            ]);
        }
        ctx.out.line(t);
    }
    for (reader, e) in &tally.errors {
        crate::output::eprintln_flushed(&format!("reader {reader} stopped: {e}"));
    }
    report::show(ctx, report);
    let issued = tally.results.iter().filter(|r| r.ok).count();
    ctx.out.line(format!(
        "this run: {issued} card(s) issued, {} not; {} row(s) rejected{}",
        tally.results.len() - issued,
        load.rejected.len(),
        if report.pending + report.in_progress > 0 {
            format!(
                "; {} application(s) still to do: run again with the same --station-dir to resume",
                report.pending + report.in_progress
            )
        } else {
            String::new()
        }
    ));
}

/// Prints the records the batch loader refused, with every reason.
pub fn show_rejected(ctx: &Ctx, rejected: &[RecordError]) {
    if rejected.is_empty() {
        return;
    }
    let mut t = table(["rejected line", "problem"]);
    for r in rejected {
        for m in r.messages() {
            t.add_row([r.line.to_string(), m]);
        }
    }
    ctx.out
        .line(format!("{} record(s) rejected:", rejected.len()));
    ctx.out.line(t);
}

/// `--dry-run`: each valid record's plan for each profile; no card, no journal.
fn dry_run(args: &Args, ctx: &Ctx) -> Result<Outcome, CliError> {
    let profiles = dry_run_profiles(args, ctx)?;
    let today = time::OffsetDateTime::now_utc().date();
    let crn = Crn::parse("0000000000").map_err(|e| CliError::new(Kind::Io, e))?;
    let mut rejected = Vec::new();
    let mut plans = Vec::new();
    for item in Batch::open(&args.batch)? {
        let record = match item {
            Ok(r) => r,
            Err(e) => {
                rejected.push(e);
                continue;
            }
        };
        // Placeholder secrets: the plan shows PIN blocks redacted anyway.
        let pins = Pins::generate(record.pin.as_ref()).map_err(|e| CliError::new(Kind::Io, e))?;
        let job = Job::new(&record, &crn, &pins, today);
        let facts = CardFacts {
            csn: [0; 8],
            crn: crn.clone(),
            issued: job.issued,
            expires: job.expires,
        };
        for profile in &profiles {
            let plan = plan::build(&PlanInput {
                record: &record,
                profile,
                card: &facts,
                lifecycle: Lifecycle::PrePersonalized,
                rewrite: false,
                pins: &pins,
            })
            .map_err(|e| {
                CliError::new(
                    Kind::Input,
                    format!("application {}: {e}", record.tracking_code),
                )
            })?;
            plans.push((record.tracking_code.to_string(), profile.id.clone(), plan));
        }
    }
    if ctx.out.json {
        let list: Vec<_> = plans
            .iter()
            .map(|(tracking, profile, plan)| {
                let c = plan.counts();
                json!({
                    "tracking_code": tracking,
                    "profile": profile,
                    "steps": plan.steps.iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
                    "apdus_known": c.apdus,
                    "bytes_known": c.bytes,
                    "steps_filled_during_execution": c.placeholders,
                    "plan": plan.to_string(),
                })
            })
            .collect();
        let load = BatchLoad {
            rejected,
            ..BatchLoad::default()
        };
        ctx.out.json(
            "personalize",
            json!({ "dry_run": true, "batch": args.batch.display().to_string(), "plans": list, "rejected": rejected_json(&load) }),
        );
        return Ok(Outcome::from_pass(load.rejected.is_empty()));
    }
    for (tracking, profile, plan) in &plans {
        ctx.out.line(format!(
            "application {tracking} on a {profile} card (CSN and CRN filled in at the card):"
        ));
        ctx.out.line(plan);
    }
    show_rejected(ctx, &rejected);
    Ok(Outcome::from_pass(rejected.is_empty()))
}

/// The profiles to plan for: `--profile`, else those of the simulated
/// readers given, else every profile.
fn dry_run_profiles<'a>(args: &Args, ctx: &'a Ctx) -> Result<Vec<&'a Profile>, CliError> {
    Ok(if let Some(id) = &args.profile {
        vec![ctx.spec.profile(id).ok_or_else(|| {
            CliError::with_hint(
                Kind::Usage,
                format!("there is no vendor profile '{id}'"),
                format!(
                    "choose one of {}",
                    ctx.spec
                        .profiles
                        .iter()
                        .map(|p| p.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?]
    } else {
        let sims: Vec<&Profile> = ctx
            .readers(&args.reader.readers)
            .iter()
            .filter_map(|r| r.strip_prefix("sim:"))
            .filter_map(|r| ctx.spec.profile(r.split('*').next().unwrap_or(r)))
            .collect();
        if sims.is_empty() {
            ctx.spec.profiles.iter().collect()
        } else {
            sims
        }
    })
}
