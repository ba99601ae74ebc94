//! Finding the tracking code of a record the loader rejected, so that the
//! rejection can be recorded in the journal against its application.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::record::{BatchFormat, Field, TrackingCode};

/// Longest JSON line read when looking for a rejected record's tracking code.
const MAX_JSON_LINE: u64 = 1 << 20;

/// The raw `tracking_code` of the records starting on `lines` of a CSV or
/// JSON Lines batch, where it is a valid code. Used only to record rejected
/// records in the journal; the loader has already reported why they failed.
pub(super) fn raw_tracking_codes(
    path: &Path,
    lines: impl Iterator<Item = u64>,
) -> HashMap<u64, TrackingCode> {
    let wanted: HashSet<u64> = lines.collect();
    let mut found = HashMap::new();
    if wanted.is_empty() {
        return found;
    }
    let field = Field::TrackingCode.name();
    let mut keep = |line: u64, raw: Option<&str>| {
        if let Some(code) = raw.and_then(|r| TrackingCode::parse(r).ok()) {
            if wanted.contains(&line) {
                found.insert(line, code);
            }
        }
    };
    match BatchFormat::from_path(path) {
        Some(BatchFormat::Csv) => {
            let Ok(mut reader) = csv::Reader::from_path(path) else {
                return found;
            };
            let column = reader
                .headers()
                .ok()
                .and_then(|h| h.iter().position(|n| n.trim() == field));
            for record in reader.records().map_while(Result::ok) {
                let line = record.position().map_or(0, csv::Position::line);
                keep(line, column.and_then(|c| record.get(c)));
            }
        }
        Some(BatchFormat::JsonLines) => {
            let Ok(file) = std::fs::File::open(path) else {
                return found;
            };
            let mut reader = std::io::BufReader::new(file);
            let mut text = Vec::new();
            for line in 1u64.. {
                text.clear();
                // Bounded like the loader's lines; past a longer line, stop looking.
                let limit = MAX_JSON_LINE;
                match std::io::BufRead::read_until(
                    &mut std::io::Read::take(&mut reader, limit),
                    b'\n',
                    &mut text,
                ) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let value: Option<serde_json::Value> = serde_json::from_slice(&text).ok();
                keep(line, value.as_ref().and_then(|v| v.get(field)?.as_str()));
                if !text.ends_with(b"\n") && text.len() as u64 >= limit {
                    break;
                }
            }
        }
        None => {}
    }
    found
}
