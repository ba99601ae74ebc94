//! `kart qa` end to end on simulated cards: every vendor profile conforms
//! (exit 0), the faulty test profile fails on exactly its planted defects
//! (exit 1), the three reports are written and well formed, and usage errors
//! are one line with a hint.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

fn kart(args: &[&str]) -> Output {
    kart_testkit::cli::run(env!("CARGO_BIN_EXE_kart"), Path::new("."), args)
}

fn issuer(dir: &Path) -> String {
    let path = dir.join("issuer");
    let o = kart(&["issuer", "init", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    path.to_str().unwrap().to_owned()
}

/// `kart qa --reader <reader> --issuer <issuer> [options…]`.
fn qa(reader: &str, issuer: &str, options: &[&str]) -> Output {
    let mut args = vec!["qa", "--reader", reader, "--issuer", issuer];
    args.extend_from_slice(options);
    kart(&args)
}

/// The failed check ids of each card in a `kart-qa/1` report.
fn failed(report: &Value) -> Vec<BTreeSet<String>> {
    report["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|card| {
            card["checks"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["outcome"] == "fail")
                .map(|c| c["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .collect()
}

/// A small well-formedness check with XML's rules, which the HTML page
/// follows too: every element closed in order, quoted attributes, only the
/// five predefined entities. Returns the number of elements.
fn well_formed(doc: &str) -> Result<usize, String> {
    let (mut stack, mut rest, mut elements) = (Vec::<String>::new(), doc, 0);
    while let Some(i) = rest.find(['<', '&']) {
        let tail = &rest[i..];
        if tail.starts_with('&') {
            let end = tail.find(';').ok_or("unterminated entity")?;
            if !["&amp", "&lt", "&gt", "&quot", "&apos"].contains(&&tail[..end]) {
                return Err(format!("unknown entity {}", &tail[..=end]));
            }
            rest = &tail[end + 1..];
            continue;
        }
        let end = tail.find('>').ok_or("unterminated tag")?;
        let tag = &tail[1..end];
        rest = &tail[end + 1..];
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        if tag.matches('"').count() % 2 != 0 || tag.contains('<') {
            return Err(format!("malformed tag <{tag}>"));
        }
        if let Some(name) = tag.strip_prefix('/') {
            match stack.pop() {
                Some(open) if open == name.trim() => {}
                open => return Err(format!("</{name}> closes {open:?}")),
            }
        } else {
            elements += 1;
            if !tag.ends_with('/') {
                stack.push(tag.split_whitespace().next().unwrap_or_default().to_owned());
            }
        }
    }
    match stack.pop() {
        None => Ok(elements),
        Some(open) => Err(format!("<{open}> is never closed")),
    }
}

#[test]
fn well_formed_check_finds_what_it_should() {
    assert_eq!(well_formed("<a x=\"1\"><b/>&amp;</a>"), Ok(2));
    assert!(well_formed("<a><b></a></b>").is_err());
    assert!(well_formed("<a>&nbsp;</a>").is_err());
    assert!(well_formed("<a>").is_err());
}

#[test]
fn every_vendor_profile_conforms_and_three_reports_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = issuer(dir.path());
    let out = dir.path().join("reports");
    let o = qa("sim:all", &issuer, &["--report-dir", out.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // `sim:all` is one card of every conforming profile of the spec.
    let spec = kart_spec::Spec::embedded().unwrap();
    let n = spec.profiles.len();
    assert_eq!(text.matches("conforms").count(), n, "{text}");
    assert!(
        text.contains(&format!("{n} of {n} cards conform")),
        "{text}"
    );

    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("qa-report.json")).unwrap())
            .unwrap();
    assert_eq!(json["format"], "kart-qa/1");
    assert_eq!(json["passed"], true);
    let profiles: BTreeSet<&str> = json["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["profile"].as_str().unwrap())
        .collect();
    assert_eq!(
        profiles,
        spec.profiles.iter().map(|p| p.id.as_str()).collect()
    );
    for card in json["cards"].as_array().unwrap() {
        let checks = card["checks"].as_array().unwrap();
        assert_eq!(checks.len(), 31);
        assert!(checks.iter().all(|c| c["outcome"] == "pass"), "{card}");
        assert!(!card["latencies"].as_array().unwrap().is_empty());
    }

    let junit = std::fs::read_to_string(out.join("qa-report.xml")).unwrap();
    well_formed(&junit).unwrap();
    assert_eq!(junit.matches("<testsuite ").count(), n);
    assert_eq!(junit.matches("<testcase ").count(), n * 31);
    assert!(junit.contains(&format!(
        "<testsuites name=\"kart qa\" tests=\"{}\" failures=\"0\" skipped=\"0\">",
        n * 31
    )));
    assert!(junit.contains("name=\"PIN-016\""));

    let html = std::fs::read_to_string(out.join("qa-report.html")).unwrap();
    let elements = well_formed(&html).unwrap();
    assert!(elements > 100);
    assert!(html.contains("<table class=\"matrix\">"));
    assert_eq!(html.matches("<td class=\"pass\" title=\"").count(), n * 31);
    assert_eq!(html.matches("<svg ").count(), n);
    assert!(
        !html.contains("http://")
            || html.matches("http://").count()
                == html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count(),
        "no external assets"
    );
    assert!(
        !html.contains("src=") && !html.contains("<link"),
        "no external assets"
    );
}

#[test]
fn faulty_profile_fails_on_exactly_its_planted_defects() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = issuer(dir.path());
    let o = qa("sim:vendor-x-faulty*2", &issuer, &["--json"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let json: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (json["format"].as_str(), json["command"].as_str()),
        (Some("kart/1"), Some("qa"))
    );
    assert_eq!(json["passed"], false);
    // The defects listed in applets-spec/profiles/vendor-x-faulty.toml and
    // the checks that must catch them (see its comments).
    let want: BTreeSet<String> = [
        "APDU-003", "AC-014", "PIN-016", "PIN-017", "PIN-018", "PIN-019", "RND-024", "TIME-028",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(json["report"]["format"], "kart-qa/1");
    assert_eq!(failed(&json["report"]), vec![want.clone(), want]);
}

#[test]
fn mixed_batch_fails_only_the_faulty_card() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = issuer(dir.path());
    let o = qa("sim:vendor-b,sim:vendor-x-faulty", &issuer, &[]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("1 of 2 cards conform"), "{text}");
    assert!(
        text.contains("sim:vendor-x-faulty#1 APDU-003 Unknown instruction: observed INS 7E: 6F00"),
        "{text}"
    );
}

#[test]
fn usage_errors_are_one_line_with_a_hint() {
    let o = kart(&["qa", "--reader", "sim:vendor-a"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--issuer") && err.contains("hint"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let issuer = issuer(dir.path());
    let o = qa("sim:vendor-z", &issuer, &[]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = qa("sim:vendor-x-faulty*0", &issuer, &[]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
