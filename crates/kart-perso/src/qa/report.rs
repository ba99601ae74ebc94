//! A batch of card reports and its three renderings: versioned JSON, `JUnit`
//! XML (one testsuite per card, one testcase per check id) and a single
//! self-contained HTML page (pass/fail matrix, per-command latency charts as
//! inline SVG, no external assets).
//!
//! ```
//! use kart_perso::qa::{BatchReport, CardReport};
//! let card = CardReport {
//!     reader: "sim:vendor-a#1".into(), profile: "vendor-a".into(), csn: None,
//!     lifecycle: "PRE_PERSONALIZED".into(), checks: vec![], latencies: vec![],
//!     apdus: 0, duration_ms: 0,
//! };
//! let batch = BatchReport::new(vec![card], time::OffsetDateTime::UNIX_EPOCH);
//! assert!(batch.to_json()?.contains("\"format\": \"kart-qa/1\""));
//! assert!(batch.to_junit().contains("<testsuite name=\"sim:vendor-a#1\""));
//! assert!(batch.to_html().starts_with("<!DOCTYPE html>"));
//! # Ok::<(), serde_json::Error>(())
//! ```

// Durations and counts become floats only to be printed or drawn.
#![allow(clippy::cast_precision_loss)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{CardReport, CommandSamples, Outcome};

/// The JSON format's name and version; bumped when a field changes meaning.
pub const FORMAT: &str = "kart-qa/1";
/// File names written by [`BatchReport::write`].
pub const JSON_FILE: &str = "qa-report.json";
/// `JUnit` XML report file name.
pub const JUNIT_FILE: &str = "qa-report.xml";
/// HTML report file name.
pub const HTML_FILE: &str = "qa-report.html";

/// The QA results of every card of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchReport {
    /// [`FORMAT`].
    pub format: &'static str,
    /// When the run ended (RFC 3339, UTC).
    pub generated_at: String,
    /// True when every card passed.
    pub passed: bool,
    /// One report per card.
    pub cards: Vec<CardReport>,
}

impl BatchReport {
    /// The batch of `cards`, stamped `at`.
    pub fn new(cards: Vec<CardReport>, at: OffsetDateTime) -> Self {
        BatchReport {
            format: FORMAT,
            generated_at: at
                .replace_nanosecond(0)
                .unwrap_or(at)
                .format(&Rfc3339)
                .unwrap_or_default(),
            passed: cards.iter().all(CardReport::passed),
            cards,
        }
    }

    /// Pretty-printed JSON.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }

    /// `JUnit` XML: a `testsuite` per card (named after its reader), a
    /// `testcase` per check id, `failure` with observed and expected,
    /// `skipped` with the reason.
    pub fn to_junit(&self) -> String {
        let count = |o: Outcome| -> usize {
            self.cards
                .iter()
                .map(|c| c.checks.iter().filter(|k| k.outcome == o).count())
                .sum()
        };
        let tests: usize = self.cards.iter().map(|c| c.checks.len()).sum();
        let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            x,
            "<testsuites name=\"kart qa\" tests=\"{tests}\" failures=\"{}\" skipped=\"{}\">",
            count(Outcome::Fail),
            count(Outcome::Skipped)
        );
        for card in &self.cards {
            let n = |o: Outcome| card.checks.iter().filter(|k| k.outcome == o).count();
            let _ = writeln!(
                x,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\" timestamp=\"{}\">",
                esc(&card.reader),
                card.checks.len(),
                n(Outcome::Fail),
                n(Outcome::Skipped),
                card.duration_ms as f64 / 1000.0,
                esc(&self.generated_at)
            );
            let _ = writeln!(
                x,
                "    <properties><property name=\"profile\" value=\"{}\"/><property name=\"csn\" value=\"{}\"/><property name=\"lifecycle\" value=\"{}\"/></properties>",
                esc(&card.profile),
                esc(card.csn.as_deref().unwrap_or("")),
                esc(&card.lifecycle)
            );
            for k in &card.checks {
                let secs = k.commands.iter().map(|c| c.total_us).sum::<u64>() as f64 / 1e6;
                let _ = write!(
                    x,
                    "    <testcase classname=\"{}.{}\" name=\"{}\" time=\"{secs:.6}\">",
                    esc(&card.profile),
                    esc(k.id.split('-').next().unwrap_or_default()),
                    esc(&k.id)
                );
                match k.outcome {
                    Outcome::Pass => {}
                    Outcome::Fail => {
                        let _ = write!(
                            x,
                            "\n      <failure message=\"{}: {}\" type=\"nonconformance\">observed: {}\n{}</failure>\n    ",
                            esc(&k.id),
                            esc(&k.title),
                            esc(&k.observed),
                            esc(&k.detail)
                        );
                    }
                    Outcome::Skipped => {
                        let _ =
                            write!(x, "\n      <skipped message=\"{}\"/>\n    ", esc(&k.detail));
                    }
                }
                if k.outcome == Outcome::Pass {
                    let _ = write!(x, "<system-out>{}</system-out>", esc(&k.observed));
                }
                x.push_str("</testcase>\n");
            }
            x.push_str("  </testsuite>\n");
        }
        x.push_str("</testsuites>\n");
        x
    }

    /// One HTML page: summary, the cards × checks matrix, then per card its
    /// failures and a latency chart.
    pub fn to_html(&self) -> String {
        let mut h = String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>kart QA report</title>\n<style>\n");
        h.push_str(CSS);
        h.push_str("</style>\n</head>\n<body>\n");
        let failed = self.cards.iter().filter(|c| !c.passed()).count();
        let _ = writeln!(
            h,
            "<h1>kart QA report</h1>\n<p class=\"summary {}\">{} of {} cards conform · generated {} · format {}</p>",
            if failed == 0 { "ok" } else { "bad" },
            self.cards.len() - failed,
            self.cards.len(),
            esc(&self.generated_at),
            FORMAT
        );
        h.push_str("<h2>Conformance matrix</h2>\n<table class=\"matrix\">\n<thead><tr><th>Card</th><th>Profile</th>");
        let ids: Vec<&str> = self
            .cards
            .first()
            .map(|c| c.checks.iter().map(|k| k.id.as_str()).collect())
            .unwrap_or_default();
        for id in &ids {
            let _ = write!(h, "<th class=\"id\"><span>{}</span></th>", esc(id));
        }
        h.push_str("<th>Result</th></tr></thead>\n<tbody>\n");
        for card in &self.cards {
            let _ = write!(
                h,
                "<tr><td class=\"card\"><a href=\"#{}\">{}</a></td><td>{}</td>",
                anchor(&card.reader),
                esc(&card.reader),
                esc(&card.profile)
            );
            for id in &ids {
                match card.check(id) {
                    Some(k) => {
                        let (class, mark) = match k.outcome {
                            Outcome::Pass => ("pass", "✓"),
                            Outcome::Fail => ("fail", "✗"),
                            Outcome::Skipped => ("skip", "–"),
                        };
                        let tip = if k.outcome == Outcome::Pass {
                            &k.observed
                        } else {
                            &k.detail
                        };
                        let _ = write!(
                            h,
                            "<td class=\"{class}\" title=\"{}: {}\">{mark}</td>",
                            esc(id),
                            esc(tip)
                        );
                    }
                    None => h.push_str("<td></td>"),
                }
            }
            let _ = writeln!(
                h,
                "<td class=\"{}\">{}</td></tr>",
                if card.passed() { "pass" } else { "fail" },
                if card.passed() { "conforms" } else { "FAILS" }
            );
        }
        h.push_str("</tbody>\n</table>\n<p class=\"legend\"><span class=\"pass\">✓</span> pass <span class=\"fail\">✗</span> fail <span class=\"skip\">–</span> skipped (hover a cell for details)</p>\n");
        for card in &self.cards {
            card_section(&mut h, card);
        }
        h.push_str("</body>\n</html>\n");
        h
    }

    /// Writes [`JSON_FILE`], [`JUNIT_FILE`] and [`HTML_FILE`] into `dir`
    /// (created if missing) and returns their paths.
    pub fn write(&self, dir: &Path) -> std::io::Result<[PathBuf; 3]> {
        std::fs::create_dir_all(dir)?;
        let json = self.to_json().map_err(std::io::Error::other)?;
        let paths = [
            dir.join(JSON_FILE),
            dir.join(JUNIT_FILE),
            dir.join(HTML_FILE),
        ];
        for (path, text) in paths.iter().zip([json, self.to_junit(), self.to_html()]) {
            std::fs::write(path, text)?;
        }
        Ok(paths)
    }
}

fn card_section(h: &mut String, card: &CardReport) {
    let _ = writeln!(
        h,
        "<section id=\"{}\">\n<h2>{} <small>{} · CSN {} · found {} · {} APDUs · {:.1} s</small></h2>",
        anchor(&card.reader),
        esc(&card.reader),
        esc(&card.profile),
        esc(card.csn.as_deref().unwrap_or("unknown")),
        esc(&card.lifecycle),
        card.apdus,
        card.duration_ms as f64 / 1000.0
    );
    let notes: Vec<_> = card
        .checks
        .iter()
        .filter(|k| k.outcome != Outcome::Pass)
        .collect();
    if !notes.is_empty() {
        h.push_str("<table class=\"notes\"><thead><tr><th>Check</th><th>Result</th><th>Observed</th><th>Expected or reason</th></tr></thead><tbody>\n");
        for k in notes {
            let (class, word) = if k.outcome == Outcome::Fail {
                ("fail", "fail")
            } else {
                ("skip", "skipped")
            };
            let _ = writeln!(
                h,
                "<tr><td>{} <small>{}</small></td><td class=\"{class}\">{word}</td><td>{}</td><td>{}</td></tr>",
                esc(&k.id),
                esc(&k.title),
                esc(&k.observed),
                esc(&k.detail)
            );
        }
        h.push_str("</tbody></table>\n");
    }
    h.push_str("<h3>Round trip per command</h3>\n");
    latency_chart(h, &card.latencies);
    h.push_str("</section>\n");
}

/// Log-scale axis from 10 µs to 10 s.
const AXIS_FROM: f64 = 1.0;
const AXIS_TO: f64 = 7.0;

fn x_of(us: u64, left: f64, width: f64) -> f64 {
    let l = (us.max(1) as f64).log10().clamp(AXIS_FROM, AXIS_TO);
    left + (l - AXIS_FROM) / (AXIS_TO - AXIS_FROM) * width
}

/// One row per command: the range of its round trips (bar), the median
/// (dark mark) and the profile's model (red tick), on a log scale.
fn latency_chart(h: &mut String, commands: &[CommandSamples]) {
    let (left, width, row) = (230.0, 620.0, 22.0);
    let height = 40.0 + row * commands.len() as f64;
    let _ = writeln!(
        h,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"{}\" height=\"{height}\" viewBox=\"0 0 {} {height}\" role=\"img\" aria-label=\"round trip per command\">",
        left + width + 130.0,
        left + width + 130.0
    );
    for (i, label) in ["10 µs", "100 µs", "1 ms", "10 ms", "100 ms", "1 s", "10 s"]
        .iter()
        .enumerate()
    {
        let x = left + i as f64 / 6.0 * width;
        let _ = writeln!(
            h,
            "<line x1=\"{x:.1}\" y1=\"18\" x2=\"{x:.1}\" y2=\"{:.1}\" class=\"grid\"/><text x=\"{x:.1}\" y=\"12\" class=\"axis\" text-anchor=\"middle\">{label}</text>",
            height - 10.0
        );
    }
    for (i, c) in commands.iter().enumerate() {
        let y = 24.0 + row * i as f64;
        let mut sorted = c.samples_us.clone();
        sorted.sort_unstable();
        let (min, max) = (
            sorted.first().copied().unwrap_or(0),
            sorted.last().copied().unwrap_or(0),
        );
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0);
        let (x0, x1) = (x_of(min, left, width), x_of(max, left, width));
        let _ = writeln!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"label\" text-anchor=\"end\">{} ({})</text>\
<rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"12\" class=\"range\"><title>{}: {} APDUs, {} to {}</title></rect>\
<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"3\" height=\"12\" class=\"median\"><title>median {}</title></rect>\
<line x1=\"{xm:.1}\" y1=\"{:.1}\" x2=\"{xm:.1}\" y2=\"{:.1}\" class=\"model\"><title>model {}</title></line>\
<text x=\"{:.1}\" y=\"{:.1}\" class=\"value\">max {}</text>",
            left - 8.0,
            y + 10.0,
            esc(&c.command),
            sorted.len(),
            (x1 - x0).max(2.0),
            esc(&c.command),
            sorted.len(),
            fmt_us(min),
            fmt_us(max),
            x_of(median, left, width) - 1.5,
            fmt_us(median),
            y - 2.0,
            y + 14.0,
            fmt_us(c.model_us),
            left + width + 8.0,
            y + 10.0,
            fmt_us(max),
            xm = x_of(c.model_us, left, width),
        );
    }
    h.push_str("</svg>\n<p class=\"legend\">bar: fastest to slowest round trip · dark mark: median · red tick: the profile's latency model</p>\n");
}

fn fmt_us(us: u64) -> String {
    match us {
        0..=999 => format!("{us} µs"),
        1000..=999_999 => format!("{:.1} ms", us as f64 / 1000.0),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

fn anchor(reader: &str) -> String {
    reader
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// Escapes text for XML and HTML content and attribute values; characters
/// XML 1.0 does not allow (C0 controls but tab and newline, U+FFFE, U+FFFF)
/// and the other controls become U+FFFD, so the report is well-formed
/// whatever a card or profile said.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c.is_control() && c != '\n' && c != '\t')
                || matches!(c, '\u{FFFE}' | '\u{FFFF}') =>
            {
                out.push('\u{FFFD}');
            }
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:24px;color:#222}
h1{margin:0 0 4px}h2{margin-top:28px}h2 small{font-weight:normal;color:#666;font-size:60%}
.summary{font-size:18px;padding:6px 10px;border-radius:4px;display:inline-block}
.summary.ok{background:#e3f6e3}.summary.bad{background:#fde2e2}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}
.matrix td{text-align:center}.matrix td.card{text-align:left;white-space:nowrap}
.matrix th.id{height:80px;vertical-align:bottom;padding:2px}
.matrix th.id span{writing-mode:vertical-rl;transform:rotate(180deg);font-weight:normal}
td.pass,span.pass{background:#c8ecc8;color:#145214}td.fail,span.fail{background:#f7c1c1;color:#7a0d0d;font-weight:bold}
td.skip,span.skip{background:#eee;color:#777}.legend{color:#555;font-size:12px}
.notes td{vertical-align:top;max-width:520px}
svg.chart{background:#fafafa;border:1px solid #ddd}.grid{stroke:#ddd}
.axis,.value,.label{font-size:11px;fill:#444}.range{fill:#9cc3e6}.median{fill:#1f4e79}
.model{stroke:#d62728;stroke-width:2}
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_controls() {
        assert_eq!(esc("a<b>&\"'\u{1}"), "a&lt;b&gt;&amp;&quot;&apos;\u{FFFD}");
    }

    #[test]
    fn log_axis_places_decades_evenly() {
        assert!((x_of(10, 0.0, 600.0) - 0.0).abs() < 1e-9);
        assert!((x_of(1000, 0.0, 600.0) - 200.0).abs() < 1e-9);
        assert!((x_of(u64::MAX, 0.0, 600.0) - 600.0).abs() < 1e-9);
    }
}
