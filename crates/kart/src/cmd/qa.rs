//! `kart qa`: the conformance suite of `applets-spec/conformance.toml`
//! ([`kart_perso::qa`]) on every selected card in parallel, one thread per
//! card, with progress per card, a summary table, and the reports (JSON,
//! `JUnit` XML, HTML) in `--report-dir`. Exit code 0 when every card
//! conforms, 1 otherwise.
//!
//! Besides the readers of `--reader`, `sim:vendor-x-faulty[*N]` names the
//! simulated cards of a test profile with planted defects.

use super::{Ctx, Outcome};
use crate::cli::ReaderArgs;
use crate::error::{CliError, Kind};
use crate::output::table;
use crate::progress::Progress;
use crate::reader::{self, Source};
use crate::simkeys::sim_config;
use kart_apdu::{CardCaps, Transport, TransportError};
use kart_pcsc::{ConnectOptions, Connection, Disposition, Pcsc, Share};
use kart_perso::issuer::{Issuer, MASTER_KEYS_FILE};
use kart_perso::pki::MasterKeys;
use kart_perso::qa::{qa_issuer, run_card, BatchReport, CardReport, QaTarget, Setup, Simulated};
use kart_perso::record::{Batch, IdentityRecord};
use kart_spec::{Profile, Protocol};
use std::path::{Path, PathBuf};

/// `kart qa`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub reader: ReaderArgs,
    /// Issuer directory (only its secure-channel master keys are used).
    #[arg(long, value_name = "DIR", env = "KART_ISSUER")]
    pub issuer: Option<PathBuf>,
    /// Where to write the reports (JSON, `JUnit` XML, HTML).
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
}

/// The test holder QA writes on blank cards: the first sample application.
const SAMPLE_ROW: &str = "tracking_code,national_code,given_name_fa,family_name_fa,father_name_fa,given_name_en,family_name_en,father_name_en,birth_date,gender,photo
140409040015,0012345679,علی,کریمی,حسین,ALI,KARIMI,HOSSEIN,1369/06/31,M,photo.jpg
";
const SAMPLE_PHOTO: &[u8] = include_bytes!("../../../../examples/batch/photos/photo-1.jpg");

/// Runs `kart qa`.
pub fn run(args: &Args, ctx: &Ctx) -> Result<Outcome, CliError> {
    let dir = args.issuer.as_deref().ok_or_else(|| {
        CliError::with_hint(
            Kind::Usage,
            "kart qa needs the issuer's secure-channel master keys",
            "give --issuer DIR (or set KART_ISSUER); `kart issuer init DIR` creates a demo issuer",
        )
    })?;
    let sources = resolve(&args.reader.readers, ctx)?;
    let scratch = Scratch::new()?;
    let now = time::OffsetDateTime::now_utc();
    let record = sample_record(&scratch.0)?;
    let issuer = if dir
        .join(kart_perso::pki::token_issuer::ISSUER_TOML)
        .exists()
    {
        // Master keys in a token: QA opens channels through it.
        let token = super::personalize::load_issuer(dir)?;
        let mut qa = qa_issuer(MasterKeys::empty(), &scratch.0.join("qa-pki"), now)?;
        qa.token_master_keys = token.token_master_keys;
        qa
    } else {
        let issuer_keys = MasterKeys::load(&dir.join(MASTER_KEYS_FILE))?;
        qa_issuer(issuer_keys, &scratch.0.join("qa-pki"), now)?
    };
    let names: Vec<String> = sources.iter().map(Source::name).collect();
    let progress = Progress::new(ctx.out, &names, names.len() as u64);
    let results: Vec<Result<CardReport, CliError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = sources
            .iter()
            .enumerate()
            .map(|(i, source)| {
                let (progress, record, issuer) = (&progress, &record, &issuer);
                scope.spawn(move || {
                    progress.status(i, "running the conformance suite…");
                    let result = qa_one(source, ctx, issuer, record, now);
                    progress.done(
                        i,
                        match &result {
                            Ok(r) if r.passed() => "conforms".to_owned(),
                            Ok(r) => format!("FAILS {}", r.failed_ids().join(" ")),
                            Err(e) => format!("error: {e}"),
                        },
                    );
                    result
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(CliError::new(Kind::Io, "a QA thread stopped unexpectedly"))
                })
            })
            .collect()
    });
    progress.finish();
    let mut cards = Vec::new();
    let mut errors = Vec::new();
    for (name, r) in names.iter().zip(results) {
        match r {
            Ok(report) => cards.push(report),
            Err(e) => errors.push(format!("{name}: {e}")),
        }
    }
    let batch = BatchReport::new(cards, time::OffsetDateTime::now_utc());
    let written = match &args.report_dir {
        Some(out) => Some(batch.write(out).map_err(|e| {
            CliError::new(
                Kind::Io,
                format!("cannot write the QA reports to {}: {e}", out.display()),
            )
        })?),
        None => None,
    };
    show(ctx, &batch, &errors, written.as_ref());
    Ok(Outcome::from_pass(batch.passed && errors.is_empty()))
}

/// `--reader` values in order, with `sim:` values that name a test profile
/// (planted defects) resolved here and the others by the common resolver.
fn resolve(values: &[String], ctx: &Ctx) -> Result<Vec<Source>, CliError> {
    if values.is_empty() {
        return reader::resolve(values, &ctx.spec);
    }
    let mut sources = Vec::new();
    for value in values {
        let test = value.strip_prefix("sim:").and_then(|v| {
            let (id, count) = v.split_once('*').unwrap_or((v, "1"));
            ctx.spec.test_profile(id).map(|p| (p, count))
        });
        let Some((profile, count)) = test else {
            sources.extend(reader::resolve(std::slice::from_ref(value), &ctx.spec)?);
            continue;
        };
        let n: usize = count
            .parse()
            .ok()
            .filter(|n| (1..=256).contains(n))
            .ok_or_else(|| {
                CliError::with_hint(
                    Kind::Usage,
                    format!(
                        "'{}': the count after '*' must be a number from 1 to 256",
                        kart_spec::input::quote(value)
                    ),
                    "write e.g. --reader sim:vendor-x-faulty*2",
                )
            })?;
        sources.extend((1..=n).map(|index| Source::Sim {
            profile: Box::new(profile.clone()),
            index,
        }));
    }
    Ok(sources)
}

fn qa_one(
    source: &Source,
    ctx: &Ctx,
    issuer: &Issuer,
    record: &IdentityRecord,
    now: time::OffsetDateTime,
) -> Result<CardReport, CliError> {
    let (profile, mut target): (Profile, Box<dyn QaTarget>) = match source {
        Source::Sim { profile, .. } => {
            let config = sim_config(issuer, profile)?;
            let card = crate::simstore::open_card(&source.name(), profile, Some(&config))?;
            ((**profile).clone(), Box::new(Simulated(card)))
        }
        Source::Pcsc(name) => {
            let conn = Pcsc::establish()?.connect(
                name,
                ConnectOptions {
                    share: Share::Exclusive,
                    ..ConnectOptions::default()
                },
            )?;
            let atr = conn.atr().to_vec();
            let profile = ctx
                .spec
                .profile_for_atr(&atr)
                .or_else(|| ctx.spec.test_profiles.iter().find(|p| p.matches_atr(&atr)))
                .ok_or_else(|| {
                    CliError::with_hint(
                        Kind::Card,
                        format!(
                            "no vendor profile matches the ATR {}",
                            hex::encode_upper(&atr)
                        ),
                        "add the card's profile to a spec directory and give --spec DIR",
                    )
                })?
                .clone();
            (profile, Box::new(Reader(conn)))
        }
    };
    let setup = Setup {
        spec: &ctx.spec,
        profile: &profile,
        issuer,
        record,
        now,
    };
    Ok(run_card(&source.name(), target.as_mut(), &setup))
}

/// A card in a PC/SC reader: ATR, protocol and warm reset; QA does not tear it.
struct Reader(Connection);

impl Transport for Reader {
    fn transmit(&mut self, apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
        self.0.transmit(apdu, rx)
    }
    fn capabilities(&self) -> CardCaps {
        self.0.capabilities()
    }
}

impl QaTarget for Reader {
    fn atr(&self) -> Option<Vec<u8>> {
        Some(self.0.atr().to_vec())
    }
    fn protocol(&self) -> Option<Protocol> {
        Some(match self.0.protocol() {
            kart_pcsc::Protocol::T0 => Protocol::T0,
            kart_pcsc::Protocol::T1 => Protocol::T1,
        })
    }
    fn reset(&mut self) -> Result<bool, TransportError> {
        self.0
            .reconnect(Disposition::Reset)
            .map(|()| true)
            .map_err(|e| TransportError::Other(e.to_string()))
    }
}

/// A private scratch directory (sample holder, throwaway QA PKI), removed at the end.
/// A private scratch directory, removed on drop.
pub(super) struct Scratch(pub(super) PathBuf);

impl Scratch {
    pub(super) fn new() -> Result<Self, CliError> {
        let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        let dir = std::env::temp_dir().join(format!("kart-qa-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| {
            CliError::new(Kind::Io, format!("cannot create {}: {e}", dir.display()))
        })?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// QA's test holder (the first sample application), its photo in `dir`.
pub(super) fn sample_record(dir: &Path) -> Result<IdentityRecord, CliError> {
    let io = |e: std::io::Error| {
        CliError::new(Kind::Io, format!("cannot write the QA sample holder: {e}"))
    };
    std::fs::write(dir.join("photo.jpg"), SAMPLE_PHOTO).map_err(io)?;
    std::fs::write(dir.join("holder.csv"), SAMPLE_ROW).map_err(io)?;
    Batch::open(dir.join("holder.csv"))?
        .next()
        .and_then(Result::ok)
        .ok_or_else(|| CliError::new(Kind::Io, "the built-in QA sample holder does not validate"))
}

fn show(ctx: &Ctx, batch: &BatchReport, errors: &[String], written: Option<&[PathBuf; 3]>) {
    if ctx.out.json {
        let body = serde_json::json!({
            "passed": batch.passed && errors.is_empty(),
            "report": batch,
            "errors": errors,
            "reports": written.map(|w| w.iter().map(|p| p.display().to_string()).collect::<Vec<_>>()),
        });
        ctx.out.json("qa", body);
        return;
    }
    let mut t = table([
        "Card",
        "Profile",
        "Result",
        "Pass",
        "Fail",
        "Skipped",
        "Failed checks",
    ]);
    for card in &batch.cards {
        let count = |o| card.checks.iter().filter(|c| c.outcome == o).count();
        t.add_row([
            card.reader.clone(),
            card.profile.clone(),
            if card.passed() { "conforms" } else { "FAILS" }.to_owned(),
            count(kart_perso::qa::Outcome::Pass).to_string(),
            count(kart_perso::qa::Outcome::Fail).to_string(),
            count(kart_perso::qa::Outcome::Skipped).to_string(),
            card.failed_ids().join(" "),
        ]);
    }
    ctx.out.line(t);
    for card in &batch.cards {
        for c in card
            .checks
            .iter()
            .filter(|c| c.outcome == kart_perso::qa::Outcome::Fail)
        {
            ctx.out.line(format!(
                "{} {} {}: observed {}; {}",
                card.reader, c.id, c.title, c.observed, c.detail
            ));
        }
    }
    for e in errors {
        ctx.out.line(format!("error: {e}"));
    }
    if let Some(paths) = written {
        for p in paths {
            ctx.out.line(format!("report: {}", p.display()));
        }
    }
    let ok = batch.cards.iter().filter(|c| c.passed()).count();
    ctx.out.line(format!(
        "{ok} of {} cards conform{}",
        batch.cards.len() + errors.len(),
        if errors.is_empty() {
            String::new()
        } else {
            format!(", {} could not be tested", errors.len())
        }
    ));
}
