//! `kart apdu HEX...`: raw APDUs for engineers, sent through the `Card`
//! session (so `61xx` GET RESPONSE, `6Cxx` re-sends and chaining happen as
//! for every other command), with an optional trace on stderr.

use super::{Ctx, Outcome};
use crate::cli::ReaderArgs;
use crate::error::{CliError, Kind};
use crate::output::hex;
use crate::reader;
use kart_apdu::{Card, Command, Response, TraceEvent, Transport};
use kart_pcsc::Share;
use serde_json::json;

/// `--reader` and `--trace`: the one card `kart apdu` and `kart script`
/// talk to, and whether they show the APDUs.
#[derive(Debug, clap::Args)]
pub(crate) struct RawSession {
    #[command(flatten)]
    reader: ReaderArgs,
    /// Print every APDU that crosses the reader on stderr (PINs redacted).
    #[arg(long)]
    trace: bool,
}

impl RawSession {
    /// The one selected reader's name and a `Card` session (shared access)
    /// on its card, tracing on stderr when `--trace` is given.
    pub(crate) fn open(
        &self,
        ctx: &Ctx,
    ) -> Result<(String, Card<Box<dyn Transport + Send>>), CliError> {
        let source = reader::resolve_one(ctx.readers(&self.reader.readers), &ctx.spec)?;
        let open = reader::open(&source, Share::Shared, None)?;
        let mut card = Card::new(open.transport);
        if self.trace {
            card.set_trace(Some(stderr_trace()));
        }
        Ok((open.reader, card))
    }
}

/// `kart apdu`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    session: RawSession,
    /// Command APDUs in hex, e.g. `00A4040009F04B4152544E494401` (spaces
    /// and colons inside one APDU are ignored). Do not put real PINs here:
    /// use `kart script` with a file.
    #[arg(required = true, value_name = "HEX")]
    apdus: Vec<String>,
}

/// Runs `kart apdu`.
pub fn run(args: &Args, ctx: &Ctx) -> Result<Outcome, CliError> {
    let commands = args
        .apdus
        .iter()
        .enumerate()
        .map(|(i, text)| {
            parse_command(text).map_err(|why| {
                CliError::with_hint(
                    Kind::Usage,
                    format!(
                        "APDU {} ({}) is not a command APDU: {why}",
                        i + 1,
                        shown_input(text)
                    ),
                    "write CLA INS P1 P2 [Lc data] [Le] in hex, e.g. 00A4040009F04B4152544E494401",
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (reader, mut card) = args.session.open(ctx)?;
    let mut exchanges = Vec::new();
    for cmd in &commands {
        let r = card.send(cmd)?;
        if !ctx.out.json {
            print_exchange(ctx, cmd, &r);
        }
        exchanges.push(exchange_json(cmd, &r));
    }
    if ctx.out.json {
        ctx.out
            .json("apdu", json!({ "reader": reader, "exchanges": exchanges }));
    }
    Ok(Outcome::Ok)
}

/// Hex text to a command; VERIFY, CHANGE REFERENCE DATA and RESET RETRY
/// COUNTER are marked sensitive so traces redact their data.
pub(crate) fn parse_command(text: &str) -> Result<Command, String> {
    let clean: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    let bytes = hex::decode(&clean).map_err(|e| format!("not hex ({e})"))?;
    let cmd = Command::decode(&bytes).map_err(|e| e.to_string())?;
    Ok(if matches!(cmd.ins(), 0x20 | 0x24 | 0x2C) {
        cmd.sensitive()
    } else {
        cmd
    })
}

/// An APDU as typed, for an error message: quoted (at most 100
/// characters), but only its header when its INS is VERIFY, CHANGE
/// REFERENCE DATA or RESET RETRY COUNTER, whose data is a PIN.
pub(crate) fn shown_input(text: &str) -> String {
    let clean: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    let ins = clean.get(2..4).and_then(|h| u8::from_str_radix(h, 16).ok());
    if matches!(ins, Some(0x20 | 0x24 | 0x2C)) {
        let header = clean.get(..8).unwrap_or(&clean);
        format!(
            "'{}…', its data withheld: it may hold a PIN",
            kart_spec::input::quote(header)
        )
    } else {
        format!("'{}'", kart_spec::input::quote(text))
    }
}

/// A trace hook that prints each APDU on stderr.
pub(crate) fn stderr_trace() -> kart_apdu::TraceHook {
    Box::new(|e: &TraceEvent<'_>| crate::output::eprintln_flushed(&e.to_string()))
}

/// The command as shown to people and in JSON: its data withheld if sensitive.
pub(crate) fn shown_command(cmd: &Command) -> String {
    if cmd.is_sensitive() {
        format!(
            "{} <{} bytes redacted>",
            hex(&[cmd.cla(), cmd.ins(), cmd.p1(), cmd.p2()]),
            cmd.data().len()
        )
    } else {
        hex(&cmd.to_vec())
    }
}

fn exchange_json(cmd: &Command, r: &Response) -> serde_json::Value {
    json!({
        "command": shown_command(cmd),
        "data": hex(r.data()),
        "sw": format!("{:04X}", r.sw()),
        "status": r.sw().status().to_string(),
    })
}

fn print_exchange(ctx: &Ctx, cmd: &Command, r: &Response) {
    ctx.out.line(format!("> {}", shown_command(cmd)));
    if !r.data().is_empty() {
        ctx.out.line(format!("< {}", hex(r.data())));
    }
    ctx.out.line(format!("< {}", r.sw()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_with_spaces_parses_and_pin_commands_are_sensitive() {
        let select = parse_command("00A40400 09 F04B4152544E494401").unwrap();
        assert_eq!(select.data(), hex::decode("F04B4152544E494401").unwrap());
        assert!(!select.is_sensitive());
        let verify = parse_command("0020008108313233343536FFFF").unwrap();
        assert!(verify.is_sensitive());
        assert!(!shown_command(&verify).contains("313233"));
        assert!(parse_command("00A4").is_err());
        assert!(parse_command("zz").unwrap_err().contains("not hex"));
        assert!(parse_command("00A4040009F0").is_err());
    }
}
