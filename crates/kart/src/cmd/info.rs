//! `kart info`: what card is this? ATR, protocol, vendor profile (or real
//! card family), card serial, CRN and the applet's life-cycle state.

use super::{Ctx, Outcome};
use crate::cli::ReaderArgs;
use crate::error::CliError;
use crate::families;
use crate::output::{hex, table};
use crate::reader;
use kart_apdu::{tlv, Card, CardError, Command, StatusWord, Transport};
use kart_pcsc::Share;
use kart_spec::Spec;
use serde_json::json;

/// `kart info`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    reader: ReaderArgs,
}

/// What `kart info` learned; `None` where the card did not say.
#[derive(Debug, Default)]
struct Facts {
    csn: Option<Vec<u8>>,
    applet_aid: Option<Vec<u8>>,
    lifecycle: Option<(u8, String)>,
    crn: Option<String>,
    /// The card manager's key information template (GET DATA `00E0`).
    keys: Option<Vec<kart_perso::keyinfo::KeyInfo>>,
    notes: Vec<String>,
}

/// Runs `kart info`.
pub fn run(args: &Args, ctx: &Ctx) -> Result<Outcome, CliError> {
    let source = reader::resolve_one(ctx.readers(&args.reader.readers), &ctx.spec)?;
    let open = reader::open(&source, Share::Shared, None)?;
    let profile = ctx.spec.profile_for_atr(&open.atr);
    let family = families::recognize(&open.atr);
    let mut card = Card::new(open.transport);
    let facts = probe(&mut card, &ctx.spec, profile.map(|p| p.applet_aid.bytes()))?;
    let lifecycle = facts.lifecycle.as_ref();
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

/// Asks the card manager for the CPLC, then the applet (the profile's AID
/// first, then every known AID) for its life-cycle state and CRN. A card
/// that refuses is described, not an error; a card that stops answering is.
fn probe<T: Transport>(
    card: &mut Card<T>,
    spec: &Spec,
    preferred: Option<&[u8]>,
) -> Result<Facts, CliError> {
    let mut facts = Facts::default();
    let select = |aid: &[u8], p2: u8| -> Result<Command, CliError> {
        let c = Command::new(0x00, 0xA4, 0x04, p2)
            .with_data(aid)
            .map_err(CardError::from)?;
        Ok(if p2 == 0 {
            c.with_le(256).map_err(CardError::from)?
        } else {
            c
        })
    };
    let isd = spec.applet.card_manager.aid.bytes();
    let r = card.send(&select(isd, 0x0C)?)?;
    if r.is_success() {
        match get_data(card, 0x9F7F)? {
            Ok(cplc) if cplc.len() >= 16 => {
                facts.csn = Some(
                    [cplc.get(..4), cplc.get(12..16)]
                        .into_iter()
                        .flatten()
                        .flatten()
                        .copied()
                        .collect(),
                );
            }
            Ok(cplc) => facts.notes.push(format!(
                "CPLC of {} bytes is too short for a serial number",
                cplc.len()
            )),
            Err(sw) => facts.notes.push(format!("GET DATA CPLC answered {sw}")),
        }
        // What a GP host tool reads before opening a channel (GP 2.3.1 §11.3.3.1).
        if let Ok(kit) = get_data(card, 0x00E0)? {
            facts.keys = kart_perso::keyinfo::parse_key_information(&kit).ok();
        }
    } else {
        facts
            .notes
            .push(format!("SELECT card manager answered {}", r.sw()));
    }
    let mut aids: Vec<&[u8]> = Vec::new();
    let candidates = preferred
        .into_iter()
        .chain(spec.profiles.iter().map(|p| p.applet_aid.bytes()))
        .chain([spec.applet.applet.default_aid.bytes()]);
    for aid in candidates {
        if !aids.contains(&aid) {
            aids.push(aid);
        }
    }
    for aid in aids {
        let r = card.send(&select(aid, 0x00)?)?;
        if !r.is_success() {
            continue;
        }
        facts.applet_aid = Some(aid.to_vec());
        let code = tlv::parse(r.data()).ok().and_then(|fci| {
            tlv::value_at(&fci, &[0x6F, 0x8A])
                .ok()
                .and_then(|v| v.first().copied())
        });
        let code = match code {
            Some(c) => Some(c),
            None => match get_data(card, 0xDF71)? {
                Ok(v) => v.first().copied(),
                Err(sw) => {
                    facts
                        .notes
                        .push(format!("GET DATA life cycle answered {sw}"));
                    None
                }
            },
        };
        facts.lifecycle = code.map(|c| (c, lifecycle_name(spec, c)));
        match get_data(card, 0xDF72)? {
            Ok(crn) => facts.crn = Some(String::from_utf8_lossy(&crn).into_owned()),
            Err(sw) if sw == StatusWord::REFERENCED_DATA_NOT_FOUND => {}
            Err(sw) => facts.notes.push(format!("GET DATA CRN answered {sw}")),
        }
        break;
    }
    if facts.applet_aid.is_none() {
        facts
            .notes
            .push("no national-ID applet answered SELECT under any known AID".to_owned());
    }
    Ok(facts)
}

/// GET DATA `tag`: the value inside the answered `tag L value`, or the status.
fn get_data<T: Transport>(
    card: &mut Card<T>,
    tag: u16,
) -> Result<Result<Vec<u8>, kart_apdu::StatusWord>, CliError> {
    let [p1, p2] = tag.to_be_bytes();
    let cmd = Command::new(0x80, 0xCA, p1, p2)
        .with_le(256)
        .map_err(CardError::from)?;
    let r = card.send(&cmd)?;
    if !r.is_success() {
        return Ok(Err(r.sw()));
    }
    let value = tlv::parse(r.data())
        .ok()
        .filter(|t| tlv::tag_number(t) == u32::from(tag))
        .and_then(|t| {
            tlv::value_at(&t, &[u32::from(tag)])
                .ok()
                .map(<[u8]>::to_vec)
        });
    Ok(Ok(value.unwrap_or_else(|| r.data().to_vec())))
}

fn lifecycle_name(spec: &Spec, code: u8) -> String {
    spec.applet
        .lifecycle
        .iter()
        .find(|s| s.code.bytes() == [code])
        .map_or_else(|| "unknown".to_owned(), |s| s.name.clone())
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
