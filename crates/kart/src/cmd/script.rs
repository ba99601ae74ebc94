//! `kart script FILE`: APDUs from a file, each with the status words it
//! must answer.
//!
//! One APDU per line, in hex; after a `;`, `expect` and one or more status
//! words, where `X` matches any nibble. `#` starts a comment.
//!
//! ```text
//! # select the national-ID applet, read the CPLC
//! 00A4040009F04B4152544E494401 ; expect 9000
//! 80CA9F7F00                   ; expect 9000
//! 0020008108FFFFFFFFFFFFFFFF   ; expect 63CX 6984
//! ```
//!
//! A line without `expect` accepts any status word. The run stops at the
//! first mismatch unless `--keep-going`; any mismatch gives exit code 1.

use super::apdu::{parse_command, shown_command, RawSession};
use super::{Ctx, Outcome};
use crate::error::{CliError, Kind};
use crate::output::{hex, table};
use kart_apdu::{Command, StatusWord};
use kart_spec::input::quote;
use serde_json::json;
use std::path::PathBuf;

/// Largest script read.
const MAX_SCRIPT_BYTES: u64 = 1 << 20;

/// `kart script`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    session: RawSession,
    /// Run every line even after a mismatch.
    #[arg(long)]
    keep_going: bool,
    /// The script.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// A status word pattern: `9000`, `61XX`, `63CX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SwPattern {
    value: u16,
    mask: u16,
}

impl SwPattern {
    fn parse(text: &str) -> Option<Self> {
        if text.len() != 4 {
            return None;
        }
        let mut value = 0u16;
        let mut mask = 0u16;
        for c in text.chars() {
            value <<= 4;
            mask <<= 4;
            if !c.eq_ignore_ascii_case(&'x') {
                value |= u16::try_from(c.to_digit(16)?).ok()?;
                mask |= 0xF;
            }
        }
        Some(Self { value, mask })
    }

    fn matches(self, sw: StatusWord) -> bool {
        u16::from(sw) & self.mask == self.value
    }
}

impl std::fmt::Display for SwPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for shift in [12u16, 8, 4, 0] {
            let wildcard = (self.mask >> shift) % 16 == 0;
            if wildcard {
                f.write_str("X")?;
            } else {
                write!(f, "{:X}", (self.value >> shift) % 16)?;
            }
        }
        Ok(())
    }
}

/// One line of a script.
#[derive(Debug)]
struct Step {
    line: usize,
    command: Command,
    expect: Vec<SwPattern>,
}

fn parse_script(text: &str) -> Result<Vec<Step>, (usize, String)> {
    let mut steps = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let (apdu, rest) = content.split_once(';').unwrap_or((content, ""));
        let command =
            parse_command(apdu).map_err(|why| (line, format!("not a command APDU: {why}")))?;
        let mut words = rest
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty());
        let expect = match words.next() {
            None => Vec::new(),
            Some(w) if w.eq_ignore_ascii_case("expect") => {
                let pats: Vec<SwPattern> = words
                    .map(|w| {
                        SwPattern::parse(w).ok_or_else(|| {
                            (
                                line,
                                format!(
                                    "'{}' is not a status word pattern (4 hex digits, X for any)",
                                    quote(w)
                                ),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?;
                if pats.is_empty() {
                    return Err((line, "`expect` needs at least one status word".to_owned()));
                }
                pats
            }
            Some(w) => {
                return Err((
                    line,
                    format!(
                        "unknown word '{}' after ';' (only `expect SW...` is allowed)",
                        quote(w)
                    ),
                ))
            }
        };
        steps.push(Step {
            line,
            command,
            expect,
        });
    }
    Ok(steps)
}

/// Runs `kart script`.
pub fn run(args: &Args, ctx: &Ctx) -> Result<Outcome, CliError> {
    let text = kart_spec::input::read_regular(&args.file, MAX_SCRIPT_BYTES)
        .map_err(|e| e.to_string())
        .and_then(|b| String::from_utf8(b).map_err(|_| "it is not UTF-8 text".to_owned()))
        .map_err(|e| {
            CliError::with_hint(
                Kind::Input,
                format!("cannot read the script {}: {e}", args.file.display()),
                "give a readable UTF-8 text file with one APDU per line",
            )
        })?;
    let steps = parse_script(&text).map_err(|(line, why)| {
        CliError::with_hint(
            Kind::Input,
            format!("{}, line {line}: {why}", args.file.display()),
            "write `HEX ; expect SW [SW...]`, e.g. `00A4040009F04B4152544E494401 ; expect 9000`",
        )
    })?;
    let (reader, mut card) = args.session.open(ctx)?;
    let mut rows = Vec::new();
    let mut failures = 0usize;
    for step in &steps {
        let r = card.send(&step.command)?;
        let ok = step.expect.is_empty() || step.expect.iter().any(|p| p.matches(r.sw()));
        if !ok {
            failures += 1;
        }
        rows.push((step, r, ok));
        if !ok && !args.keep_going {
            break;
        }
    }
    let expected = |s: &Step| {
        if s.expect.is_empty() {
            "any".to_owned()
        } else {
            s.expect
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    if ctx.out.json {
        let results: Vec<_> = rows
            .iter()
            .map(|(s, r, ok)| {
                json!({
                    "line": s.line,
                    "command": shown_command(&s.command),
                    "data": hex(r.data()),
                    "sw": format!("{:04X}", r.sw()),
                    "expected": expected(s),
                    "ok": ok,
                })
            })
            .collect();
        ctx.out.json(
            "script",
            json!({
                "reader": reader,
                "file": args.file.display().to_string(),
                "steps": steps.len(),
                "run": rows.len(),
                "failed": failures,
                "results": results,
            }),
        );
    } else {
        let mut t = table(["line", "command", "SW", "expected", "result"]);
        for (s, r, ok) in &rows {
            t.add_row([
                s.line.to_string(),
                shown_command(&s.command),
                r.sw().to_string(),
                expected(s),
                if *ok { "ok" } else { "MISMATCH" }.to_owned(),
            ]);
        }
        ctx.out.line(t);
        ctx.out.line(format!(
            "{} of {} lines run, {failures} mismatch{}",
            rows.len(),
            steps.len(),
            if failures == 1 { "" } else { "es" }
        ));
    }
    Ok(Outcome::from_pass(failures == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_with_wildcards() {
        let p = SwPattern::parse("63CX").unwrap();
        assert!(p.matches(StatusWord::verification_failed(2)));
        assert!(!p.matches(StatusWord::new(0x63, 0x82)));
        assert_eq!(p.to_string(), "63CX");
        assert!(SwPattern::parse("900").is_none());
        assert!(SwPattern::parse("90G0").is_none());
    }

    #[test]
    fn scripts_parse_with_comments_and_report_the_bad_line() {
        let steps = parse_script(
            "# head\n\n00A4040009F04B4152544E494401 ; expect 9000\n80CA9F7F00  # cplc\n",
        )
        .unwrap();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].line, 3);
        assert_eq!(steps[0].expect.len(), 1);
        assert!(steps[1].expect.is_empty());
        let (line, why) = parse_script("80CA9F7F00\n00A4 ; expect 9000\n").unwrap_err();
        assert_eq!(line, 2);
        assert!(why.contains("not a command APDU"), "{why}");
        let (line, why) = parse_script("80CA9F7F00 ; want 9000").unwrap_err();
        assert_eq!(line, 1);
        assert!(why.contains("want"));
        assert!(parse_script("80CA9F7F00 ; expect").is_err());
    }
}
