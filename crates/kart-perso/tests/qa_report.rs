//! The three renderings of a QA batch: JSON carries its format version and
//! every outcome, `JUnit` has one testsuite per card and one testcase per check
//! with `failure`/`skipped`, and the HTML escapes whatever a card answered.

use kart_perso::qa::report::{HTML_FILE, JSON_FILE, JUNIT_FILE};
use kart_perso::qa::{
    BatchReport, CardReport, CheckResult, CommandLatency, CommandSamples, Outcome,
};

fn check(id: &str, outcome: Outcome, observed: &str, detail: &str) -> CheckResult {
    CheckResult {
        id: id.into(),
        title: format!("title of {id}"),
        clause: "8".into(),
        outcome,
        observed: observed.into(),
        detail: detail.into(),
        commands: vec![CommandLatency {
            command: "VERIFY".into(),
            apdus: 2,
            total_us: 1500,
            max_us: 1000,
            model_us: 2000,
        }],
    }
}

fn card(reader: &str, checks: Vec<CheckResult>) -> CardReport {
    CardReport {
        reader: reader.into(),
        profile: "vendor-a".into(),
        csn: Some("4B41000100000001".into()),
        lifecycle: "PRE_PERSONALIZED".into(),
        checks,
        latencies: vec![CommandSamples {
            command: "VERIFY".into(),
            model_us: 2000,
            samples_us: vec![500, 1000],
        }],
        apdus: 2,
        duration_ms: 1234,
    }
}

fn batch() -> BatchReport {
    let good = card(
        "reader <1>",
        vec![
            check("PIN-016", Outcome::Pass, "63C2, 63C1, 63C0, 6983", ""),
            check(
                "ATOM-025",
                Outcome::Skipped,
                "",
                "needs the simulator's hook",
            ),
        ],
    );
    let bad = card(
        "reader & 2",
        vec![
            check(
                "PIN-016",
                Outcome::Fail,
                "wrong PIN: 63C3 <never counts>",
                "expected \"63C2\"",
            ),
            check("ATOM-025", Outcome::Pass, "old content", ""),
        ],
    );
    BatchReport::new(vec![good, bad], time::OffsetDateTime::UNIX_EPOCH)
}

#[test]
fn json_is_versioned_and_keeps_every_outcome() {
    let b = batch();
    assert!(!b.passed);
    let v: serde_json::Value = serde_json::from_str(&b.to_json().unwrap()).unwrap();
    assert_eq!(v["format"], "kart-qa/1");
    assert_eq!(v["generated_at"], "1970-01-01T00:00:00Z");
    assert_eq!(v["cards"][0]["checks"][1]["outcome"], "skipped");
    assert_eq!(v["cards"][1]["checks"][0]["outcome"], "fail");
    assert_eq!(v["cards"][1]["checks"][0]["commands"][0]["max_us"], 1000);
}

#[test]
fn junit_has_a_suite_per_card_and_a_case_per_check() {
    let x = batch().to_junit();
    assert!(x.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    assert!(x.contains("<testsuites name=\"kart qa\" tests=\"4\" failures=\"1\" skipped=\"1\">"));
    assert!(x.contains("<testsuite name=\"reader &lt;1&gt;\" tests=\"2\" failures=\"0\" skipped=\"1\" time=\"1.234\""));
    assert!(
        x.contains("<testsuite name=\"reader &amp; 2\" tests=\"2\" failures=\"1\" skipped=\"0\"")
    );
    assert_eq!(x.matches("<testcase ").count(), 4);
    assert!(x.contains("<skipped message=\"needs the simulator&apos;s hook\"/>"));
    assert!(x.contains("<failure message=\"PIN-016: title of PIN-016\" type=\"nonconformance\">observed: wrong PIN: 63C3 &lt;never counts&gt;\nexpected &quot;63C2&quot;</failure>"));
    assert!(x.contains("classname=\"vendor-a.PIN\" name=\"PIN-016\" time=\"0.001500\""));
}

#[test]
fn html_is_one_page_with_the_matrix_and_escaped_text() {
    let h = batch().to_html();
    assert!(h.starts_with("<!DOCTYPE html>"));
    assert!(h.contains("1 of 2 cards conform"));
    assert!(h.contains("<td class=\"fail\" title=\"PIN-016: expected &quot;63C2&quot;\">✗</td>"));
    assert!(
        h.contains("<td class=\"skip\" title=\"ATOM-025: needs the simulator&apos;s hook\">–</td>")
    );
    assert!(!h.contains("<never counts>"));
    assert_eq!(h.matches("<svg ").count(), 2);
    assert!(!h.contains("<script") && !h.contains("<link") && !h.contains("src="));
}

#[test]
fn write_puts_the_three_files_in_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("new/reports");
    let paths = batch().write(&out).unwrap();
    assert_eq!(
        paths,
        [
            out.join(JSON_FILE),
            out.join(JUNIT_FILE),
            out.join(HTML_FILE)
        ]
    );
    for p in paths {
        assert!(std::fs::metadata(p).unwrap().len() > 100);
    }
}

/// Every character a card or profile might put in a report: all of C0,
/// DEL, C1, the non-characters U+FFFE and U+FFFF, the last BMP and the last
/// Unicode characters, markup.
fn hostile_text() -> String {
    (0u32..0x100)
        .chain([0xFFFD, 0xFFFE, 0xFFFF, 0x1_0000, 0x10_FFFF, 0x202E])
        .filter_map(char::from_u32)
        .chain("<&>\"']]>".chars())
        .collect()
}

#[test]
fn junit_is_well_formed_xml_for_any_text() {
    let t = hostile_text();
    let b = BatchReport::new(
        vec![card(
            &t,
            vec![
                check(&t, Outcome::Fail, &t, &t),
                check(&t, Outcome::Skipped, &t, &t),
                check(&t, Outcome::Pass, &t, &t),
            ],
        )],
        time::OffsetDateTime::UNIX_EPOCH,
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(JUNIT_FILE);
    std::fs::write(&path, b.to_junit()).unwrap();
    // Python's expat, an independent XML parser, must accept the file.
    let out = kart_testkit::process::run_ok(
        std::process::Command::new("python3")
            .args([
                "-c",
                "import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); print(len(r.findall('.//testcase')))",
            ])
            .arg(&path),
        "python3 must be installed",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3");
}
