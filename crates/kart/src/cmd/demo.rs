//! `kart demo`: the whole flow on simulated cards, with no reader and no
//! pcscd. It creates a demo issuer in a work directory, writes the sample
//! batch (`examples/batch/applications.csv`, built into the binary, with
//! its deliberately invalid rows), personalizes every valid application on
//! simulated cards of every vendor profile in parallel, verifies each issued
//! card in full (as a bank would, with the ID PIN from the PIN mailer, as
//! its holder would type it) and prints the report.
//!
//! Exit code 0 when every valid application was issued and verified
//! genuine; the invalid rows are expected to be rejected (the station may
//! also list them as failed applications, with the same reasons).

use super::personalize::{load_batch, personalize_loaded, show, station_files, station_open_error};
use super::{issuer, report, verify, Ctx, Outcome};
use crate::cli::ReaderArgs;
use crate::error::{CliError, Kind};
use crate::reader;
use kart_apdu::{Card, Transport};
use kart_perso::issuer::Issuer;
use kart_perso::record::{Pin, TrackingCode};
use kart_perso::station::Station;
use std::path::{Path, PathBuf};
use std::time::Duration;
use zeroize::Zeroizing;

/// Marks a directory as made by `kart demo`, so a re-run may replace it.
const MARKER: &str = ".kart-demo";

/// The sample batch and its photos, built in so the demo runs anywhere.
const SAMPLE: [(&str, &[u8]); 9] = [
    (
        "applications.csv",
        include_bytes!("../../../../examples/batch/applications.csv"),
    ),
    (
        "photos/photo-1.jpg",
        include_bytes!("../../../../examples/batch/photos/photo-1.jpg"),
    ),
    (
        "photos/photo-2.jpg",
        include_bytes!("../../../../examples/batch/photos/photo-2.jpg"),
    ),
    (
        "photos/photo-3.jpg",
        include_bytes!("../../../../examples/batch/photos/photo-3.jpg"),
    ),
    (
        "photos/photo-4.jpg",
        include_bytes!("../../../../examples/batch/photos/photo-4.jpg"),
    ),
    (
        "photos/photo-5.jpg",
        include_bytes!("../../../../examples/batch/photos/photo-5.jpg"),
    ),
    (
        "photos/photo-6.jpg",
        include_bytes!("../../../../examples/batch/photos/photo-6.jpg"),
    ),
    (
        "photos/photo-7.jpg",
        include_bytes!("../../../../examples/batch/photos/photo-7.jpg"),
    ),
    (
        "photos/broken.jpg",
        include_bytes!("../../../../examples/batch/photos/broken.jpg"),
    ),
];

/// `kart demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Readers to use (default `sim:all`: one simulated card of every
    /// vendor profile, each in its own reader thread).
    #[command(flatten)]
    reader: ReaderArgs,
    /// Work directory for the demo issuer, batch, journal and PIN mailer.
    /// A directory left by an earlier demo is replaced.
    #[arg(long, value_name = "DIR", default_value = "kart-demo")]
    dir: PathBuf,
}

/// Runs `kart demo`.
pub fn run(args: &Args, ctx: &Ctx) -> Result<Outcome, CliError> {
    let readers = if args.reader.readers.is_empty() {
        vec!["sim:all".to_owned()]
    } else {
        args.reader.readers.clone()
    };
    let sources = reader::resolve(&readers, &ctx.spec)?;
    prepare_dir(&args.dir)?;
    let issuer_dir = args.dir.join("issuer");
    issuer::init(&issuer_dir)?;
    let batch = write_sample(&args.dir.join("batch"))?;
    ctx.out.line(format!(
        "demo issuer in {}, sample batch {}",
        issuer_dir.display(),
        batch.display()
    ));

    let trust = verify::trust_anchors(Some(&issuer_dir), None, None)?;
    let files = station_files(
        &args.dir.join("station"),
        &issuer_dir.join(kart_perso::station::CRN_REGISTER_FILE),
    )?;
    let station = Station::open(
        "kart-demo",
        &files,
        Issuer::load(&issuer_dir)?,
        ctx.spec.clone(),
    )
    .map_err(station_open_error)?;
    let load = load_batch(&station, &batch, None)?;
    let mailer = files.mailer.clone();
    let spec = &ctx.spec;
    // Full verification of each issued card, with the ID PIN its holder
    // got in the PIN mailer.
    let check = |tracking: &TrackingCode, atr: &[u8], transport: &mut dyn Transport| {
        let pin = mailer_id_pin(&mailer, tracking)?;
        let mut card = Card::new(transport);
        let verdict = verify::verify(&mut card, spec, &trust, atr, Some(&pin))?;
        Ok(if verdict.is_genuine() {
            None
        } else {
            let failed: Vec<String> = verdict.failures().map(|c| c.id.clone()).collect();
            Some(format!("not genuine: {}", failed.join(", ")))
        })
    };
    let tally = personalize_loaded(
        ctx,
        &station,
        &files.journal_location(),
        &sources,
        Duration::from_secs(120),
        Some(&check),
    )?;
    let (report, stranded) = report::load_with_stranded(&files.journal_location())?;
    show(ctx, "demo", &batch, &load, &tally, &report, &stranded);
    // Rejected rows may come back from the station as failed applications
    // (with their validation reasons); every valid one must be issued.
    let issued = tally
        .results
        .iter()
        .filter(|r| r.ok && r.result == "issued")
        .count();
    let all_verified = tally.errors.is_empty()
        && issued == load.queued
        && issued > 0
        && report.spoiled == 0
        && report.pending == 0
        && report.in_progress == 0;
    ctx.out.line(if all_verified {
        format!(
            "demo done: {} cards issued and verified genuine, {} invalid rows rejected as expected",
            report.issued,
            load.rejected.len()
        )
    } else {
        "demo finished with failures (see above)".to_owned()
    });
    Ok(Outcome::from_pass(all_verified))
}

/// Empties `dir` if an earlier demo made it; refuses any other non-empty directory.
fn prepare_dir(dir: &Path) -> Result<(), CliError> {
    let io = |e: std::io::Error| {
        CliError::new(Kind::Io, format!("demo directory {}: {e}", dir.display()))
    };
    if dir.join(MARKER).is_file() {
        std::fs::remove_dir_all(dir).map_err(io)?;
    } else if dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        return Err(CliError::with_hint(
            Kind::Io,
            format!("{} exists and was not made by `kart demo`", dir.display()),
            "choose another directory with --dir DIR",
        ));
    }
    std::fs::create_dir_all(dir).map_err(io)?;
    std::fs::write(
        dir.join(MARKER),
        "made by `kart demo`; the next demo run replaces this directory\n",
    )
    .map_err(io)
}

/// Writes the built-in sample batch into `dir`; returns the batch path.
fn write_sample(dir: &Path) -> Result<PathBuf, CliError> {
    for (name, bytes) in SAMPLE {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                CliError::new(Kind::Io, format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        std::fs::write(&path, bytes).map_err(|e| {
            CliError::new(Kind::Io, format!("cannot write {}: {e}", path.display()))
        })?;
    }
    Ok(dir.join("applications.csv"))
}

/// The ID PIN of the latest mailer entry for `tracking` (a later entry
/// supersedes an earlier one). Only the demo reads the mailer back.
fn mailer_id_pin(path: &Path, tracking: &TrackingCode) -> Result<Pin, CliError> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        CliError::new(
            Kind::Io,
            format!("cannot read the PIN mailer {}: {e}", path.display()),
        )
    })?);
    let wanted = format!("tracking={tracking}");
    let digits = text
        .lines()
        .rev()
        .find(|l| l.split(' ').next() == Some(wanted.as_str()))
        .and_then(|l| l.split(' ').find_map(|w| w.strip_prefix("id_pin=")))
        .ok_or_else(|| {
            CliError::new(
                Kind::Io,
                format!("the PIN mailer has no entry for {tracking}"),
            )
        })?;
    Pin::parse(digits)
        .map_err(|e| CliError::new(Kind::Io, format!("PIN mailer entry for {tracking}: {e}")))
}
