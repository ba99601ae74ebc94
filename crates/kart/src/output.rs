//! Human and machine output.
//!
//! Machine output (`--json`) is one JSON object per command on stdout that
//! names its own format version, `{"format": "kart/1", "command": ..., ...}`,
//! so scripts keep working when the human text changes. Human output uses
//! tables. Progress and traces go to stderr.

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use kart_spec::input::printable;
use serde_json::{Map, Value};
use std::io::{IsTerminal, Write};

/// The version of the JSON output; bumped when a field changes meaning or goes.
pub const FORMAT: &str = "kart/1";

/// Where and how a command writes its results.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// Machine output instead of tables.
    pub json: bool,
    /// Whether progress bars may be drawn (stderr is a terminal, no `--json`).
    pub progress: bool,
}

impl Output {
    /// Output for the given `--json` flag.
    pub fn new(json: bool) -> Self {
        Self {
            json,
            progress: !json && std::io::stderr().is_terminal(),
        }
    }

    /// Prints the result of `command` as JSON: `body`'s fields after
    /// `format` and `command`.
    // A method, like `line`, so every command writes through its `Output`.
    #[allow(clippy::unused_self)]
    pub fn json(self, command: &str, body: Value) {
        let mut object = Map::new();
        object.insert("format".into(), FORMAT.into());
        object.insert("command".into(), command.into());
        match body {
            Value::Object(fields) => object.extend(fields),
            other => {
                object.insert("result".into(), other);
            }
        }
        write_stdout(&Value::Object(object).to_string());
    }

    /// Prints a line of human output (ignored with `--json`), without
    /// terminal control characters (see [`println_flushed`]).
    pub fn line(self, text: impl std::fmt::Display) {
        if !self.json {
            println_flushed(&text.to_string());
        }
    }
}

/// Writes a line of human text to stdout; a closed pipe (`kart … | head`)
/// is not an error. Text from cards, readers, profiles and files passes
/// through here, so terminal control characters and bidirectional
/// overrides are replaced (U+FFFD) first: a card cannot clear the screen
/// or hide what the operator reads.
pub fn println_flushed(text: &str) {
    write_stdout(&printable(text));
}

/// JSON already escapes control characters; its strings stay exact.
fn write_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Writes bytes to stdout as they are; a closed pipe is not an error.
pub fn print_bytes(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Writes a line to stderr, without terminal control characters (as
/// [`println_flushed`]); a closed stderr is not worth a panic.
pub fn eprintln_flushed(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{}", printable(text));
    let _ = err.flush();
}

/// A table with kart's look and the given header.
pub fn table<I, S>(header: I) -> Table
where
    I: IntoIterator<Item = S>,
    S: Into<comfy_table::Cell>,
{
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header);
    t
}

/// Upper-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}
