//! `kart read`: the identity data on a card, as a table (Persian names in
//! UTF-8) or JSON. Needs the ID PIN, from a file, `$KART_PIN` or a prompt.

use super::{Ctx, Outcome};
use crate::cli::ReaderArgs;
use crate::error::{CliError, Kind};
use crate::output::table;
use crate::reader;
use crate::secrets::{read_pin, PinSource};
use kart_apdu::Card;
use kart_pcsc::Share;
use kart_perso::read::{read_card, CardIdentity, PinStatus};
use serde_json::json;
use std::path::PathBuf;

/// `kart read`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    reader: ReaderArgs,
    /// The ID PIN, read from this file (else `$KART_PIN`, else a prompt).
    #[arg(long, value_name = "FILE")]
    pin_file: Option<PathBuf>,
    /// Save the facial image (JPEG) to this file.
    #[arg(long, value_name = "FILE")]
    photo: Option<PathBuf>,
}

/// Runs `kart read`.
pub fn run(args: &Args, ctx: &Ctx) -> Result<Outcome, CliError> {
    let pin = read_pin(PinSource {
        file: args.pin_file.as_deref(),
        prompt: true,
        role: "ID PIN",
    })?
    .ok_or_else(|| {
        CliError::with_hint(
            Kind::Input,
            "the ID PIN is needed to read the identity data",
            "give --pin-file FILE, set KART_PIN, or run on a terminal to be asked",
        )
    })?;
    let source = reader::resolve_one(ctx.readers(&args.reader.readers), &ctx.spec)?;
    let open = reader::open(&source, Share::Shared, None)?;
    let mut card = Card::new(open.transport);
    let content = read_card(&mut card, &ctx.spec, Some(&open.atr), Some(&pin))
        .map_err(|e| CliError::new(Kind::Card, e))?;
    match content.pin {
        PinStatus::Verified => {}
        PinStatus::Wrong { tries_left } => {
            return Err(CliError::with_hint(
                Kind::Card,
                format!("the card refused the ID PIN ({tries_left} tries left)"),
                "check the PIN; after the last try the PIN blocks and needs the PUK",
            ))
        }
        other => {
            return Err(CliError::with_hint(
                Kind::Card,
                format!("the ID PIN was not accepted: {other}"),
                "is the card personalized? see `kart info`",
            ))
        }
    }
    let identity = content
        .identity()
        .ok_or_else(|| {
            CliError::new(
                Kind::Card,
                "EF.ID is empty: the card holds no identity data",
            )
        })?
        .map_err(|e| CliError::new(Kind::Card, format!("EF.ID does not decode: {e}")))?;
    if let Some(path) = &args.photo {
        let photo = content
            .photo()
            .ok_or_else(|| CliError::new(Kind::Card, "the card holds no facial image"))?;
        std::fs::write(path, photo).map_err(|e| {
            CliError::new(
                Kind::Io,
                format!("cannot write the photo to {}: {e}", path.display()),
            )
        })?;
    }
    if ctx.out.json {
        ctx.out.json(
            "read",
            json!({
                "reader": open.reader,
                "profile": content.profile,
                "lifecycle": content.lifecycle.to_string(),
                "identity": identity,
                "photo_bytes": content.photo().map(<[u8]>::len),
            }),
        );
        return Ok(Outcome::Ok);
    }
    show_identity(ctx, &identity, content.photo());
    Ok(Outcome::Ok)
}

/// The identity as a table: Persian and Latin names side by side.
fn show_identity(ctx: &Ctx, identity: &CardIdentity, photo: Option<&[u8]>) {
    let date = |d: kart_perso::read::GregorianDate| {
        let (y, m, day) = d.ymd();
        format!("{y:04}-{m:02}-{day:02}")
    };
    let rows = [
        ("national code", identity.national_code.to_string()),
        (
            "given name",
            format!("{} / {}", identity.given_name_fa, identity.given_name_en),
        ),
        (
            "family name",
            format!("{} / {}", identity.family_name_fa, identity.family_name_en),
        ),
        (
            "father's name",
            format!("{} / {}", identity.father_name_fa, identity.father_name_en),
        ),
        (
            "birth date",
            format!(
                "{} ({})",
                identity.birth_date,
                date(identity.birth_date_gregorian)
            ),
        ),
        ("gender", identity.gender.code().to_string()),
        ("card serial (CSN)", hex::encode_upper(identity.csn)),
        ("card registration (CRN)", identity.crn.clone()),
        ("issued", date(identity.issue_date)),
        ("expires", date(identity.expiry_date)),
        ("tracking code", identity.tracking_code.clone()),
        (
            "photo",
            photo.map_or_else(|| "none".to_owned(), |p| format!("JPEG, {} bytes", p.len())),
        ),
    ];
    let mut t = table(["field", "value"]);
    for (k, v) in rows {
        t.add_row([k.to_owned(), v]);
    }
    ctx.out.line(t);
}
