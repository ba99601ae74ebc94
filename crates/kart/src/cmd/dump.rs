//! `kart dump`: every file the given credentials can read, written raw to a
//! directory for checking with independent tools (`openssl cms -verify`,
//! `openssl x509`), with a manifest of FIDs, sizes and SHA-256.
//!
//! Without a PIN: `EF.SOD`, the certificates, `EF.PIN_STATUS` and the
//! CPLC; with the ID PIN (`--pin-file`, `$KART_PIN`) also `EF.ID`,
//! `EF.FACE` and `EF.FINGER`. Each file is named by its EF (`EF.SOD`, `CPLC`); the
//! directory gets `manifest.json` (format `kart-dump/1`) and `SHA256SUMS`
//! (`sha256sum -c SHA256SUMS`). Files are mode 0600 (they hold personal
//! data); the PIN is never written.

use super::{Ctx, Outcome};
use crate::cli::ReaderArgs;
use crate::error::{CliError, Kind};
use crate::output::table;
use crate::reader;
use crate::secrets::{read_pin, PinSource};
use kart_apdu::Card;
use kart_pcsc::Share;
use kart_perso::read::{read_card, FileContent, PinStatus};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Format version of `manifest.json`.
pub const MANIFEST_FORMAT: &str = "kart-dump/1";

/// `kart dump`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    reader: ReaderArgs,
    /// The ID PIN, read from this file (else `$KART_PIN`); without it the
    /// PIN-protected files (EF.ID, EF.FACE, EF.FINGER) are left out.
    #[arg(long, value_name = "FILE")]
    pin_file: Option<PathBuf>,
    /// Directory to write (created; must be empty if it exists).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

/// One file written.
struct Written {
    name: String,
    fid: Option<u16>,
    size: usize,
    sha256: String,
}

/// Runs `kart dump`.
pub fn run(args: &Args, ctx: &Ctx) -> Result<Outcome, CliError> {
    let pin = read_pin(PinSource {
        file: args.pin_file.as_deref(),
        prompt: false,
        role: "ID PIN",
    })?;
    prepare_dir(&args.dir)?;
    let source = reader::resolve_one(ctx.readers(&args.reader.readers), &ctx.spec)?;
    let open = reader::open(&source, Share::Shared, None)?;
    let mut card = Card::new(open.transport);
    let content = read_card(&mut card, &ctx.spec, Some(&open.atr), pin.as_ref())
        .map_err(|e| CliError::new(Kind::Card, e))?;
    match content.pin {
        PinStatus::Verified | PinStatus::NotGiven => {}
        PinStatus::Wrong { tries_left } => {
            return Err(CliError::with_hint(
                Kind::Card,
                format!(
                    "the card refused the ID PIN ({tries_left} tries left); nothing was written"
                ),
                "check the PIN, or dump without --pin-file for the public files only",
            ))
        }
        other => {
            return Err(CliError::with_hint(
                Kind::Card,
                format!("the ID PIN was not accepted: {other}; nothing was written"),
                "dump without --pin-file for the public files only",
            ))
        }
    }
    let mut written = vec![write_file(&args.dir, "CPLC", None, &content.cplc)?];
    let mut skipped = Vec::new();
    for f in &content.files {
        match &f.content {
            FileContent::Data(d) => written.push(write_file(&args.dir, &f.name, Some(f.fid), d)?),
            FileContent::Empty => skipped.push((f.name.clone(), f.fid, "empty")),
            FileContent::NeedsPin => skipped.push((f.name.clone(), f.fid, "needs the ID PIN")),
            FileContent::NotReadable => skipped.push((f.name.clone(), f.fid, "never readable")),
        }
    }
    let sums = written.iter().fold(String::new(), |mut s, w| {
        s.push_str(&w.sha256);
        s.push_str("  ");
        s.push_str(&w.name);
        s.push('\n');
        s
    });
    write_private(&args.dir.join("SHA256SUMS"), sums.as_bytes())?;
    let files: Vec<_> = written
        .iter()
        .map(|w| {
            json!({
                "name": w.name, "file": w.name,
                "fid": w.fid.map(|f| format!("{f:04X}")),
                "size": w.size, "sha256": w.sha256,
            })
        })
        .collect();
    let skipped_json: Vec<_> = skipped
        .iter()
        .map(|(name, fid, why)| json!({"name": name, "fid": format!("{fid:04X}"), "reason": why}))
        .collect();
    let body = json!({
        "reader": open.reader,
        "atr": hex::encode_upper(&open.atr),
        "profile": content.profile,
        "applet_aid": hex::encode_upper(&content.aid),
        "csn": hex::encode_upper(content.csn),
        "crn": content.crn,
        "lifecycle": content.lifecycle.to_string(),
        "files": files,
        "skipped": skipped_json,
    });
    let mut manifest = json!({ "format": MANIFEST_FORMAT });
    if let (Some(m), Some(b)) = (manifest.as_object_mut(), body.as_object()) {
        m.extend(b.clone());
    }
    let mut text = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    text.push(b'\n');
    write_private(&args.dir.join("manifest.json"), &text)?;
    if ctx.out.json {
        let mut out = body;
        if let Some(o) = out.as_object_mut() {
            o.insert("dir".into(), json!(args.dir.display().to_string()));
        }
        ctx.out.json("dump", out);
        return Ok(Outcome::Ok);
    }
    show(ctx, &written, &skipped, &args.dir);
    Ok(Outcome::Ok)
}

/// The human output: one row per file written or left out.
fn show(ctx: &Ctx, written: &[Written], skipped: &[(String, u16, &str)], dir: &Path) {
    let mut t = table(["file", "FID", "bytes", "SHA-256"]);
    for w in written {
        t.add_row([
            w.name.clone(),
            w.fid
                .map_or_else(|| "GET DATA 9F7F".into(), |f| format!("{f:04X}")),
            w.size.to_string(),
            w.sha256.clone(),
        ]);
    }
    for (name, fid, why) in skipped {
        t.add_row([
            name.clone(),
            format!("{fid:04X}"),
            "—".into(),
            format!("not written: {why}"),
        ]);
    }
    ctx.out.line(t);
    ctx.out.line(format!(
        "{} file(s) written to {} with manifest.json and SHA256SUMS",
        written.len(),
        dir.display()
    ));
}

/// Creates `dir` (mode 0700) or accepts it empty; refuses one with files in it.
fn prepare_dir(dir: &Path) -> Result<(), CliError> {
    let io = |e: std::io::Error| {
        CliError::with_hint(
            Kind::Io,
            format!("cannot create the dump directory {}: {e}", dir.display()),
            "give a directory kart may create or write",
        )
    };
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(io)?;
        if entries.next().is_some() {
            return Err(CliError::with_hint(
                Kind::Usage,
                format!("the dump directory {} is not empty", dir.display()),
                "give a new or empty directory (nothing is overwritten)",
            ));
        }
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir).map_err(io)
}

fn write_file(dir: &Path, name: &str, fid: Option<u16>, data: &[u8]) -> Result<Written, CliError> {
    write_private(&dir.join(name), data)?;
    Ok(Written {
        name: name.to_owned(),
        fid,
        size: data.len(),
        sha256: hex::encode(ring::digest::digest(&ring::digest::SHA256, data)),
    })
}

/// Writes a new file with mode 0600.
fn write_private(path: &Path, data: &[u8]) -> Result<(), CliError> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
        .and_then(|mut f| f.write_all(data).and_then(|()| f.sync_all()))
        .map_err(|e| CliError::new(Kind::Io, format!("cannot write {}: {e}", path.display())))
}
