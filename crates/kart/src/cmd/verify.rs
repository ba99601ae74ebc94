//! `kart verify`: is this card genuine? Passive authentication check by
//! check, holder certificates, consistency, life cycle, active
//! authentication and, with a PIN, the ID PIN — each with its verdict.

use super::{Ctx, Outcome};
use crate::cli::ReaderArgs;
use crate::error::{CliError, Kind};
use crate::output::table;
use crate::reader;
use crate::secrets::{read_pin, PinSource};
use kart_apdu::{Card, Transport};
use kart_pcsc::Share;
use kart_perso::verify::{Outcome as CheckOutcome, TrustAnchors, Verdict, Verifier, VerifyError};
use kart_spec::Spec;
use std::path::{Path, PathBuf};

/// `kart verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    reader: ReaderArgs,
    /// Issuer directory: its `root.pem` is the trust anchor and `card-ca.pem`
    /// the CA of the holder certificates. No private key is read.
    #[arg(long, value_name = "DIR", env = "KART_ISSUER")]
    issuer: Option<PathBuf>,
    /// Trust anchor: an issuer root certificate (PEM or DER), instead of `--issuer`.
    #[arg(long, value_name = "FILE", conflicts_with = "issuer")]
    trust: Option<PathBuf>,
    /// With `--trust`: the card CA certificate that issues holder certificates.
    #[arg(long, value_name = "FILE", requires = "trust")]
    card_ca: Option<PathBuf>,
    /// Also check the ID PIN, read from this file (else `$KART_PIN` when set).
    #[arg(long, value_name = "FILE")]
    pin_file: Option<PathBuf>,
    /// Also check the ID PIN: from `$KART_PIN`, else asked on the terminal.
    #[arg(long)]
    pin: bool,
}

/// Runs `kart verify`.
pub fn run(args: &Args, ctx: &Ctx) -> Result<Outcome, CliError> {
    let issuer = match (&args.issuer, &args.trust) {
        (None, None) => Some(ctx.issuer(None)?),
        (given, _) => given.clone(),
    };
    let trust = trust_anchors(
        issuer.as_deref(),
        args.trust.as_deref(),
        args.card_ca.as_deref(),
    )?;
    // The PIN is optional: --pin-file, else $KART_PIN, else a prompt when --pin asks for one.
    let pin = read_pin(PinSource {
        file: args.pin_file.as_deref(),
        prompt: args.pin,
        role: "ID PIN",
    })?;
    if args.pin && pin.is_none() {
        return Err(CliError::with_hint(
            Kind::Input,
            "--pin was given but no ID PIN is available",
            "set KART_PIN, give --pin-file FILE, or run on a terminal to be asked",
        ));
    }
    let source = reader::resolve_one(ctx.readers(&args.reader.readers), &ctx.spec)?;
    let open = reader::open(&source, Share::Shared, None)?;
    let mut card = Card::new(open.transport);
    let verdict = verify(&mut card, &ctx.spec, &trust, &open.atr, pin.as_ref())?;
    show(ctx, &open.reader, &verdict);
    Ok(Outcome::from_pass(verdict.is_genuine()))
}

/// Trust anchors from an issuer directory or explicit certificate files.
pub fn trust_anchors(
    issuer: Option<&Path>,
    root: Option<&Path>,
    card_ca: Option<&Path>,
) -> Result<TrustAnchors, CliError> {
    let (root, ca) = match (issuer, root) {
        (Some(dir), _) => {
            if !dir.is_dir() {
                return Err(CliError::with_hint(
                    Kind::Issuer,
                    format!("issuer directory {} does not exist", dir.display()),
                    "give --issuer DIR (create a demo one with `kart issuer init DIR`) or --trust ROOT.pem",
                ));
            }
            (dir.join("root.pem"), Some(dir.join("card-ca.pem")))
        }
        (None, Some(root)) => (root.to_path_buf(), card_ca.map(Path::to_path_buf)),
        (None, None) => {
            return Err(CliError::with_hint(
                Kind::Usage,
                "no trust anchor given",
                "give --issuer DIR or --trust ROOT.pem",
            ))
        }
    };
    let cas: Vec<&Path> = ca.iter().map(PathBuf::as_path).collect();
    Ok(TrustAnchors::load(&root, &cas)?)
}

/// Runs the verifier on an open card.
pub fn verify<T: Transport>(
    card: &mut Card<T>,
    spec: &Spec,
    trust: &TrustAnchors,
    atr: &[u8],
    pin: Option<&kart_perso::record::Pin>,
) -> Result<Verdict, CliError> {
    let mut v = Verifier::new(trust, time::OffsetDateTime::now_utc())
        .spec(spec)
        .atr(atr);
    if let Some(pin) = pin {
        v = v.pin(pin);
    }
    v.verify(card).map_err(verify_error)
}

fn verify_error(e: VerifyError) -> CliError {
    match e {
        VerifyError::Card(c) => CliError::from(c),
        VerifyError::Read(r) => CliError::new(Kind::Card, r),
        e => {
            let hint = e.hint();
            CliError::hinted(Kind::Io, e, hint)
        }
    }
}

/// Prints the verdict, check by check.
pub fn show(ctx: &Ctx, reader: &str, verdict: &Verdict) {
    if ctx.out.json {
        let mut body = serde_json::to_value(verdict).unwrap_or_default();
        if let Some(b) = body.as_object_mut() {
            b.insert("reader".into(), reader.into());
            b.insert("genuine".into(), verdict.is_genuine().into());
        }
        ctx.out.json("verify", body);
        return;
    }
    ctx.out.line(format!(
        "card in {reader}: profile {}, CSN {}, CRN {}, life cycle {}",
        verdict.profile,
        verdict.csn,
        verdict.crn.as_deref().unwrap_or("—"),
        verdict.lifecycle
    ));
    let mut t = table(["check", "what", "result", "detail"]);
    for c in &verdict.checks {
        let (result, detail) = match &c.outcome {
            CheckOutcome::Pass => ("pass", String::new()),
            CheckOutcome::Fail(r) => ("FAIL", r.clone()),
            CheckOutcome::Skipped(r) => ("skipped", r.clone()),
        };
        t.add_row([c.id.clone(), c.name.clone(), result.to_owned(), detail]);
    }
    ctx.out.line(t);
    let failed = verdict.failures().count();
    ctx.out.line(if verdict.is_genuine() {
        "verdict: GENUINE".to_owned()
    } else {
        format!("verdict: NOT GENUINE ({failed} check(s) failed)")
    });
}
