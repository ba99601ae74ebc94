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
use kart_perso::journal::JournalLocation;
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
    /// The journal, instead of `journal.db` in the station directory: a
    /// file, or the floor's shared journal `postgres://USER@HOST:PORT/DB`
    /// (the password from PGPASSFILE or PGPASSWORD, never the URL), which
    /// also holds the issuer's CRN register. TLS as libpq: `?sslmode=` disable,
    /// prefer, require, verify-ca or verify-full, `&sslrootcert=CA-FILE`,
    /// `&sslcert=FILE&sslkey=FILE` (or PGSSLMODE, PGSSLROOTCERT). [default:
    /// `journal` in kart.toml]
    #[arg(long, value_name = "FILE|URL")]
    journal: Option<PathBuf>,
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
    let dir = station_dir(ctx, args.station_dir.as_deref());
    let location = journal_location(ctx, args.journal.as_deref(), &dir)?;
    let files = station_files(&dir, &crn_register(ctx, &issuer_dir))?.with_journal(location);
    let name = args
        .station
        .clone()
        .or_else(|| ctx.config.station.clone())
        .unwrap_or_else(kart_perso::host::name);
    let card_timeout = args.card_timeout.or(ctx.config.card_timeout).unwrap_or(120);
    let station =
        Station::open(&name, &files, issuer, ctx.spec.clone()).map_err(station_open_error)?;
    let load = load_batch(&station, &args.batch, ctx.config.photo_root.as_deref())?;
    let tally = personalize_loaded(
        ctx,
        &station,
        &files.journal_location(),
        &sources,
        Duration::from_secs(card_timeout),
        None,
    )?;
    let (report, stranded) = report::load_with_stranded(&files.journal_location())?;
    show(
        ctx,
        "personalize",
        &args.batch,
        &load,
        &tally,
        &report,
        &stranded,
    );
    finish(&load, tally)
}

/// The station directory given, else the configuration's, else the default.
pub fn station_dir(ctx: &Ctx, given: Option<&Path>) -> PathBuf {
    given
        .map(Path::to_path_buf)
        .or_else(|| ctx.config.station_dir.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATION_DIR))
}

/// The journal given (`--journal`), else the configuration's `journal`,
/// else `journal.db` in the station directory `dir`.
pub fn journal_location(
    ctx: &Ctx,
    given: Option<&Path>,
    dir: &Path,
) -> Result<JournalLocation, CliError> {
    let parse = |text: &str| {
        text.parse::<JournalLocation>().map_err(|e| {
            CliError::with_hint(
                Kind::Usage,
                format!("journal {e}"),
                "give a journal file, or postgres://USER@HOST:PORT/DB with the password in PGPASSFILE or PGPASSWORD",
            )
        })
    };
    match (given, ctx.config.journal.as_deref()) {
        (Some(path), _) => match path.to_str() {
            Some(text) => parse(text),
            None => Ok(JournalLocation::sqlite(path)),
        },
        (None, Some(text)) => parse(text),
        (None, None) => Ok(JournalLocation::sqlite(StationFiles::in_dir(dir).journal)),
    }
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
/// register `crns`. The directory is made (or set) 0700, and the journal
/// is created empty with mode 0600 before `SQLite` opens it (its `-wal`
/// and `-shm` files take the database's mode), or set to 0600 if it
/// exists: it holds holders' identity data. The CRN register is the
/// issuer's, shared by its desks: its permissions are left alone.
pub fn station_files(dir: &Path, crns: &Path) -> Result<StationFiles, CliError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let io = |what: &str, path: &Path, e: std::io::Error| {
        CliError::new(Kind::Io, format!("cannot {what} {}: {e}", path.display()))
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io("create the station directory", dir, e))?;
    let private = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| io("restrict the permissions of", path, e))
    };
    private(dir, 0o700)?;
    let files = StationFiles::for_issuer(dir, crns);
    let db = &files.journal;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(db)
        .map_err(|e| io("create", db, e))?;
    private(db, 0o600)?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut side = db.as_os_str().to_owned();
        side.push(suffix);
        let side = PathBuf::from(side);
        if side.is_file() {
            private(&side, 0o600)?;
        }
    }
    Ok(files)
}

/// Station errors when opening: journal ones keep their exit code; a CRN
/// register that cannot be opened stops the station before any card.
pub fn station_open_error(e: kart_perso::station::StationError) -> CliError {
    use kart_perso::crn::CrnError;
    use kart_perso::station::StationError as S;
    match e {
        S::Journal(j) => CliError::from(j),
        // The shared register is the journal's database: its errors (TLS,
        // unreachable server) are the journal's, with their hints.
        S::Crn(CrnError::Shared(j)) => {
            let hint = j.hint();
            CliError::hinted(Kind::Journal, format!("the shared CRN register: {j}"), hint)
        }
        e @ S::Crn(CrnError::Open { .. }) => CliError::with_hint(
            Kind::Journal,
            e.to_string(),
            "every desk of an issuer needs the same writable register: fix its permissions, or name one with crn_register in kart.toml",
        ),
        e => CliError::new(Kind::Io, e),
    }
}

/// Queues the batch; rejected records are reported, not fatal. Photos must
/// be in the batch file's folder, or in `photo_root` when given.
pub fn load_batch(
    station: &Station,
    batch: &Path,
    photo_root: Option<&Path>,
) -> Result<BatchLoad, CliError> {
    if let Some(root) = photo_root.filter(|r| !r.is_dir()) {
        return Err(CliError::with_hint(
            Kind::Input,
            format!("the photo root {} is not a folder", root.display()),
            "set photo_root in kart.toml to the folder holding the batches' photos, or remove it",
        ));
    }
    station
        .load_batch_confined(batch, Validator::new(), photo_root)
        .map_err(|e| {
            use kart_perso::station::StationError as S;
            match e {
                S::Batch(b) => CliError::from(b),
                S::Journal(j) => CliError::from(j),
                e => {
                    let hint = e.hint();
                    CliError::hinted(Kind::Input, e, hint)
                }
            }
        })
}

/// Runs the queued applications on `sources` with progress bars.
pub fn personalize_loaded(
    ctx: &Ctx,
    station: &Station,
    journal: &JournalLocation,
    sources: &[Source],
    card_timeout: Duration,
    after_issue: Option<batch::AfterIssue<'_>>,
) -> Result<Tally, CliError> {
    let before = report::load(journal)?;
    let names: Vec<String> = sources.iter().map(Source::name).collect();
    let progress = Progress::new(ctx.out, &names, before.pending + before.in_progress);
    let run = Run {
        station,
        issuer: station.issuer(),
        spec: &ctx.spec,
        progress: &progress,
        sim_latency: ctx.sim_latency,
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
    stranded: &[kart_perso::journal::Stranded],
) {
    if ctx.out.json {
        let mut body = json!({
            "batch": batch.display().to_string(),
            "journal_batch": load.batch,
            "queued": load.queued,
            "already_in_journal": load.already_present,
            "rejected": rejected_json(load),
            "superseded": load.superseded.iter().map(|(earlier, card, by)| json!({
                "tracking_code": earlier.as_str(), "card_serial": card, "by": by.as_str(),
            })).collect::<Vec<_>>(),
            "stranded": report::stranded_json(stranded),
            "report": report::to_json(report),
        });
        if let (Some(b), serde_json::Value::Object(t)) =
            (body.as_object_mut(), batch::tally_json(tally))
        {
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
    for (earlier, card, by) in &load.superseded {
        let card = card
            .as_ref()
            .map_or_else(String::new, |c| format!(" (card {c} superseded)"));
        ctx.out
            .line(format!("application {earlier} is replaced by {by}{card}"));
    }
    let issued = tally.results.iter().filter(|r| r.ok).count();
    let waiting = stranded.len();
    let to_do = usize::try_from(report.pending + report.in_progress)
        .unwrap_or(usize::MAX)
        .saturating_sub(waiting);
    let mut line = format!(
        "this run: {issued} card(s) issued, {} not; {} row(s) rejected",
        tally.results.len() - issued,
        load.rejected.len(),
    );
    if to_do > 0 {
        line.push_str("; ");
        line.push_str(&to_do.to_string());
        line.push_str(
            " application(s) still to do: run again with the same --station-dir to resume",
        );
    }
    if waiting > 0 {
        const NAMED: usize = 10;
        let mut named: Vec<String> = stranded
            .iter()
            .take(NAMED)
            .map(|s| format!("{} (card {})", s.tracking, s.card_serial))
            .collect();
        if waiting > NAMED {
            named.push(format!(
                "and {} more (`kart report` lists them)",
                waiting - NAMED
            ));
        }
        line.push_str("; ");
        line.push_str(&waiting.to_string());
        line.push_str(" application(s) wait for their card: ");
        line.push_str(&named.join(", "));
        line.push_str(" — put each card back in a reader and run again, or close a card that will not come back with `kart spoil --stranded --reason …` (add --requeue to issue it on a new card)");
    }
    ctx.out.line(line);
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
    let photo_root = ctx.config.photo_root.as_deref();
    for item in Batch::open_confined(&args.batch, Validator::new(), photo_root)? {
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
                format!(
                    "there is no vendor profile '{}'",
                    kart_spec::input::quote(id)
                ),
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
