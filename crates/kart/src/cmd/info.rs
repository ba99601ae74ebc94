//! `kart info`: what card is this? ATR, protocol, vendor profile (or real
//! card family), card serial, CRN and the applet's life-cycle state.

use super::{Ctx, Outcome};
use crate::cli::ReaderArgs;
use crate::error::CliError;
use crate::families;
use crate::output::{hex, table};
use crate::reader;
use kart_apdu::Card;
use kart_pcsc::Share;
use kart_perso::probe::survey_card;
use serde_json::json;

/// `kart info`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    reader: ReaderArgs,
}

/// Runs `kart info`.
pub fn run(args: &Args, ctx: &Ctx) -> Result<Outcome, CliError> {
    let source = reader::resolve_one(ctx.readers(&args.reader.readers), &ctx.spec)?;
    let open = reader::open(&source, Share::Shared, None)?;
    let profile = ctx.spec.profile_for_atr(&open.atr);
    let family = families::recognize(&open.atr);
    let mut card = Card::new(open.transport);
    let facts = survey_card(&mut card, &ctx.spec, profile.map(|p| p.applet_aid.bytes()))?;
    let lifecycle = facts
        .lifecycle
        .map(|l| (l.code(), l.name().unwrap_or("unknown")));
    if ctx.out.json {
        ctx.out.json(
            "info",
            json!({
                "reader": open.reader,
                "atr": hex(&open.atr),
                "protocol": open.protocol,
                "profile": profile.map(|p| json!({ "id": p.id, "name": p.name })),
                "family": family.map(|f| json!({ "atr_prefix": f.prefix, "description": f.description })),
                "applet_aid": facts.applet_aid.as_deref().map(hex),
                "applet_label": facts.applet_aid.as_deref().and_then(aid_label),
                "csn": facts.csn.as_deref().map(hex),
                "crn": facts.crn,
                "card_keys": facts.keys.as_ref().map(|keys| keys.iter().map(|k| json!({
                    "id": format!("{:02X}", k.id), "version": format!("{:02X}", k.version),
                    "type": k.kind.to_string(), "length": k.length,
                })).collect::<Vec<_>>()),
                "lifecycle": lifecycle.map(|(code, name)| json!({ "code": format!("{code:02X}"), "name": name })),
                "notes": facts.notes,
            }),
        );
        return Ok(Outcome::Ok);
    }
    let none = || "—".to_owned();
    let mut t = table(["", ""]);
    t.add_row(["reader".to_owned(), open.reader.clone()]);
    t.add_row(["ATR".to_owned(), hex(&open.atr)]);
    t.add_row(["protocol".to_owned(), open.protocol.to_owned()]);
    t.add_row([
        "vendor profile".to_owned(),
        profile.map_or_else(
            || "none matches".to_owned(),
            |p| format!("{} ({})", p.id, p.name),
        ),
    ]);
    if let Some(f) = family {
        t.add_row([
            "real card family".to_owned(),
            format!("{} — ATR prefix {}", f.description, f.prefix),
        ]);
    }
    t.add_row([
        "applet".to_owned(),
        facts.applet_aid.as_deref().map_or_else(
            || "not found".to_owned(),
            |aid| match aid_label(aid) {
                Some(label) => format!("{} \"{label}\"", hex(aid)),
                None => hex(aid),
            },
        ),
    ]);
    t.add_row([
        "life cycle".to_owned(),
        lifecycle.map_or_else(none, |(c, n)| format!("{n} ({c:02X})")),
    ]);
    t.add_row([
        "CSN".to_owned(),
        facts.csn.as_deref().map_or_else(none, hex),
    ]);
    t.add_row(["CRN".to_owned(), facts.crn.clone().unwrap_or_else(none)]);
    t.add_row([
        "card keys".to_owned(),
        facts.keys.as_ref().map_or_else(none, |keys| {
            keys.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }),
    ]);
    ctx.out.line(t);
    for n in &facts.notes {
        ctx.out.line(format!("note: {n}"));
    }
    Ok(Outcome::Ok)
}

/// The text an AID spells, when it holds one: its longest run of at
/// least 4 printable ASCII characters, trailing spaces cut
/// (`4E49442C56454E444F522D41202020` → `NID,VENDOR-A`).
fn aid_label(aid: &[u8]) -> Option<String> {
    let best = aid
        .split(|b| !(0x20..=0x7E).contains(b))
        .max_by_key(|run| run.len())?;
    let text = String::from_utf8_lossy(best).trim_end().to_owned();
    (text.trim_start().len() >= 4).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::aid_label;

    #[test]
    fn printable_aids_get_their_text_and_others_none() {
        let label = |h: &str| aid_label(&hex::decode(h).unwrap());
        assert_eq!(
            label("4E49442C56454E444F522D41202020").as_deref(),
            Some("NID,VENDOR-A")
        );
        assert_eq!(
            label("4B415254204944204341524420432020").as_deref(),
            Some("KART ID CARD C")
        );
        assert_eq!(label("F04B4152544E494401").as_deref(), Some("KARTNID"));
        assert_eq!(label("A000000151000000"), None);
        assert_eq!(label("F0414201"), None);
    }
}
