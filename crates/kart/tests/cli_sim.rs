//! The `kart` binary end to end on simulated cards (`--reader sim:…`): exit
//! codes, one-line errors with hints, JSON shapes, and the full flow of a
//! batch. No reader and no pcscd are needed (the PC/SC flows are in
//! `tests/pcscd.rs`).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kart_testkit::cli::{self, code, one_line_error, stderr, stdout};

fn kart(args: &[&str]) -> Output {
    kart_in(Path::new("."), args)
}

fn kart_in(dir: &Path, args: &[&str]) -> Output {
    cli::run(env!("CARGO_BIN_EXE_kart"), dir, args)
}

/// The JSON document on stdout, checked to carry the format version.
fn json(o: &Output) -> Value {
    let v = cli::json(o);
    assert_eq!(v["format"], "kart/1", "{v}");
    v
}

/// The JSON document of a run that succeeded (exit code 0).
fn json_ok(o: &Output) -> Value {
    assert_eq!(code(o), 0, "{}", stderr(o));
    json(o)
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// A copy of the sample batch (and its photos) in `dir`, keeping only
/// the data rows for which `keep(line_number)` is true.
fn sample_batch(dir: &Path, keep: impl Fn(usize) -> bool) -> PathBuf {
    cli::sample_batch(dir, "applications.csv", keep)
}

/// The issued cards of a personalize/demo result; checks that every other
/// result is a rejected row failed with its validation reason.
fn issued_only(v: &Value) -> Vec<Value> {
    let (issued, other): (Vec<Value>, Vec<Value>) = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .cloned()
        .partition(|r| r["result"] == "issued");
    for r in &other {
        assert_eq!(r["result"], "failed", "{r}");
        assert!(r["detail"].as_str().unwrap().starts_with("line "), "{r}");
    }
    issued
}

/// `kart personalize --json --reader <reader> --issuer <issuer> <batch>` in `dir`.
fn personalize_json(dir: &Path, reader: &str, issuer: &Path, batch: &Path) -> Output {
    personalize(dir, &["--json", "--reader", reader], issuer, batch)
}

/// `kart personalize --reader <reader> --issuer <issuer> <batch>` in `dir`.
fn personalize_text(dir: &Path, reader: &str, issuer: &Path, batch: &Path) -> Output {
    personalize(dir, &["--reader", reader], issuer, batch)
}

fn personalize(dir: &Path, options: &[&str], issuer: &Path, batch: &Path) -> Output {
    let mut args = vec!["personalize"];
    args.extend_from_slice(options);
    args.extend([
        "--issuer",
        issuer.to_str().unwrap(),
        batch.to_str().unwrap(),
    ]);
    kart_in(dir, &args)
}

fn issuer(dir: &Path) -> PathBuf {
    issuer_at(&dir.join("issuer"))
}

/// `kart issuer init <path>`, checked to succeed.
fn issuer_at(path: &Path) -> PathBuf {
    let o = kart(&["issuer", "init", path.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    path.to_path_buf()
}

/// `kart personalize --reader <reader> --station-dir <station> --issuer <issuer> <batch>` in `dir`.
fn personalize_at(dir: &Path, reader: &str, station: &Path, issuer: &Path, batch: &Path) -> Output {
    personalize(
        dir,
        &[
            "--reader",
            reader,
            "--station-dir",
            station.to_str().unwrap(),
        ],
        issuer,
        batch,
    )
}

/// `kart report --json` in `dir`, checked to carry the format version.
fn report_json(dir: &Path) -> Value {
    json(&kart_in(dir, &["report", "--json"]))
}

/// `kart args` with `$KART_PIN` set to `pin`.
fn kart_with_pin(args: &[&str], pin: &str) -> Output {
    cli::command(env!("CARGO_BIN_EXE_kart"), Path::new("."))
        .args(args)
        .env("KART_PIN", pin)
        .output()
        .unwrap()
}

/// The check `id` of a `kart verify --json` document (`null` if it has none).
fn check(v: &Value, id: &str) -> Value {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .cloned()
        .unwrap_or_default()
}

/// `kart verify --reader <reader> --issuer <issuer> [options…]`.
fn verify(reader: &str, issuer: &Path, options: &[&str]) -> Output {
    let mut args = vec![
        "verify",
        "--reader",
        reader,
        "--issuer",
        issuer.to_str().unwrap(),
    ];
    args.extend_from_slice(options);
    kart(&args)
}

/// `kart script [options…] --reader sim:vendor-b <file>`, the file written
/// with `text` in `dir` first.
fn script(dir: &Path, name: &str, text: &str, options: &[&str]) -> Output {
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    let mut args = vec!["script"];
    args.extend_from_slice(options);
    args.extend(["--reader", "sim:vendor-b", file.to_str().unwrap()]);
    kart(&args)
}

#[test]
fn help_lists_every_command_and_the_exit_codes() {
    let o = kart(&["--help"]);
    assert_eq!(code(&o), 0);
    let text = stdout(&o);
    for c in [
        "readers",
        "info",
        "apdu",
        "script",
        "personalize",
        "verify",
        "read",
        "qa",
        "issuer",
        "report",
        "demo",
    ] {
        assert!(text.contains(&format!("  {c} ")), "{c} missing: {text}");
    }
    for line in [
        "0  success",
        "2  usage error",
        "3  no reader",
        "7  journal error",
    ] {
        assert!(text.contains(line), "{line} missing");
    }
}

#[test]
fn bad_arguments_are_one_line_usage_errors_with_exit_code_2() {
    let o = kart(&["info", "--frobnicate"]);
    assert_eq!(code(&o), 2);
    let line = one_line_error(&o);
    assert!(line.contains("--frobnicate"), "{line}");
    let o = kart(&["apdu", "--reader", "sim:vendor-a", "00A4"]);
    assert_eq!(code(&o), 2);
    assert!(one_line_error(&o).contains("APDU 1 ('00A4')"));
    let o = kart(&["info", "--reader", "sim:vendor-a*0"]);
    assert_eq!(code(&o), 2);
}

#[test]
fn unknown_reader_is_exit_code_3_with_a_hint() {
    let o = kart(&["info", "--reader", "sim:vendor-z"]);
    assert_eq!(code(&o), 3);
    let line = one_line_error(&o);
    assert!(
        line.contains("sim:vendor-z") && line.contains("sim:all"),
        "{line}"
    );
    // With --json the error is also on stdout, as JSON.
    let o = kart(&["--json", "info", "--reader", "sim:vendor-z"]);
    assert_eq!(code(&o), 3);
    let v = json(&o);
    assert_eq!(v["command"], "info");
    assert_eq!(v["error"]["exit_code"], 3);
    assert_eq!(v["error"]["kind"], "reader");
}

#[test]
fn readers_lists_simulated_readers_with_their_profiles() {
    let o = kart(&[
        "readers",
        "--reader",
        "sim:all",
        "--reader",
        "sim:vendor-b*2",
        "--json",
    ]);
    let v = json_ok(&o);
    let readers = v["readers"].as_array().unwrap();
    let names: Vec<&str> = readers
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    // `sim:all`: one reader per conforming profile of the spec, in its order.
    let spec = kart_spec::Spec::embedded().unwrap();
    let mut want: Vec<String> = spec
        .profiles
        .iter()
        .map(|p| format!("sim:{}#1", p.id))
        .collect();
    want.extend(["sim:vendor-b#1".into(), "sim:vendor-b#2".into()]);
    assert_eq!(names, want);
    assert!(readers.iter().all(|r| r["card"] == "simulated"));
    for (reader, p) in readers.iter().zip(&spec.profiles) {
        assert_eq!(reader["profile"], p.id.as_str());
    }
    assert_eq!(readers[2]["profile"], "vendor-c");
}

#[test]
fn info_names_profile_family_and_blank_life_cycle_of_every_profile() {
    let table = [
        ("vendor-a", "T=0", "3B7F94"),
        ("vendor-b", "T=1", "3BFF96"),
        ("vendor-c", "T=1", "3BDB97"),
        ("vendor-d", "T=1", "3BDB97"),
    ];
    // Every profile of the spec has its row.
    let spec = kart_spec::Spec::embedded().unwrap();
    let ids: Vec<&str> = spec.profiles.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(table.map(|r| r.0).to_vec(), ids, "add a row per profile");
    for (id, protocol, prefix) in table {
        let o = kart(&["info", "--json", "--reader", &format!("sim:{id}")]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let v = json(&o);
        assert_eq!(v["command"], "info");
        assert_eq!(v["profile"]["id"], id);
        assert_eq!(v["protocol"], protocol);
        assert_eq!(v["family"]["atr_prefix"], prefix);
        assert_eq!(v["lifecycle"]["name"], "PRE_PERSONALIZED");
        assert_eq!(v["lifecycle"]["code"], "07");
        assert_eq!(v["csn"].as_str().unwrap().len(), 16);
        assert!(v["crn"].is_null());
    }
    let o = kart(&["info", "--reader", "sim:vendor-a"]);
    let text = stdout(&o);
    assert!(
        text.contains("PRE_PERSONALIZED") && text.contains("vendor-a"),
        "{text}"
    );
}

#[test]
fn apdu_goes_through_the_card_session_and_traces() {
    // vendor-a is T=0 with a 248-byte read limit: the session lowers Le to it.
    let o = kart(&[
        "apdu",
        "--json",
        "--trace",
        "--reader",
        "sim:vendor-a",
        "80CA9F7F00",
        "00 A4 04 00 09 F04B4152544E494401",
    ]);
    let v = json_ok(&o);
    let ex = v["exchanges"].as_array().unwrap();
    assert_eq!(ex[0]["sw"], "9000");
    assert!(ex[0]["data"].as_str().unwrap().starts_with("9F7F2A"));
    assert_eq!(
        ex[1]["sw"], "6A82",
        "vendor-a uses its own AID, not the default"
    );
    let trace = stderr(&o);
    assert!(
        trace.contains(">> 80CA9F7FF8") && trace.contains("<< 9F7F2A"),
        "{trace}"
    );
}

#[test]
fn script_checks_expected_status_words() {
    let dir = tempfile::tempdir().unwrap();
    let o = script(
        dir.path(),
        "good.apdu",
        "# the default AID is vendor-b's\n00A4040009F04B4152544E494401 ; expect 9000\n00CADF7100 ; expect 9000\n0020008108FFFFFFFFFFFFFFFF ; expect 63CX 6984\n",
        &["--json"],
    );
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let v = json(&o);
    assert_eq!(v["failed"], 0);
    assert_eq!(v["run"], 3);
    assert_eq!(v["results"][2]["command"], "00200081 <8 bytes redacted>");

    let o = script(
        dir.path(),
        "bad.apdu",
        "00A4040009F04B4152544E494401 ; expect 6A82\n00CADF7100 ; expect 9000\n",
        &["--json"],
    );
    assert_eq!(code(&o), 1);
    let v = json(&o);
    assert_eq!(
        (v["failed"].as_u64(), v["run"].as_u64()),
        (Some(1), Some(1)),
        "stops at the mismatch"
    );

    let o = script(
        dir.path(),
        "broken.apdu",
        "00CADF7100\n00A4 ; expect 9000\n",
        &[],
    );
    assert_eq!(code(&o), 5);
    assert!(one_line_error(&o).contains("line 2"));
}

#[test]
fn issuer_init_writes_the_hierarchy_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("iss");
    let o = kart(&["issuer", "init", "--json", path.to_str().unwrap()]);
    let v = json_ok(&o);
    assert_eq!(v["files"].as_array().unwrap().len(), 7);
    for f in [
        "root.pem",
        "card-ca.pem",
        "document-signer.pem",
        "master-keys.json",
    ] {
        assert!(path.join(f).is_file(), "{f}");
    }
    let o = kart(&["issuer", "init", path.to_str().unwrap()]);
    assert_eq!(code(&o), 6);
    assert!(one_line_error(&o).contains("already holds an issuer"));
}

#[test]
fn issuer_init_writes_distinct_enc_mac_and_dek_keys_per_set() {
    let dir = tempfile::tempdir().unwrap();
    let path = issuer(dir.path());
    let keys: Value =
        serde_json::from_str(&std::fs::read_to_string(path.join("master-keys.json")).unwrap())
            .unwrap();
    let sets = keys["key_sets"].as_array().unwrap();
    // 3DES, AES-128, AES-192, AES-256.
    assert_eq!(sets.len(), 4, "{keys}");
    for set in sets {
        let (enc, mac, dek) = (&set["enc"], &set["mac"], &set["dek"]);
        assert!(enc.is_string(), "{}", set["name"]);
        assert!(enc != mac && mac != dek && enc != dek, "{}", set["name"]);
    }
}

#[test]
fn simulated_cards_need_the_issuers_key_set_for_their_profile() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = issuer(dir.path());
    // Drop the AES-128 set that vendor-b's SCP03 channel needs.
    let file = path.join("master-keys.json");
    let mut keys: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    keys["key_sets"]
        .as_array_mut()
        .unwrap()
        .retain(|s| s["algorithm"] != "aes128");
    std::fs::write(&file, keys.to_string()).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let batch = sample_batch(dir.path(), |line| line == 2);
    let run = |reader: &str| {
        let station = dir.path().join(reader.replace(':', "-"));
        personalize_at(dir.path(), reader, &station, &path, &batch)
    };
    let o = run("sim:vendor-b");
    assert_eq!(code(&o), 6, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("error: cannot key a simulated vendor-b card")
            && err.contains("no Aes128 master key set")
            && err.contains("kart issuer init"),
        "{err}"
    );
    // vendor-a (SCP02, 3DES) still has its set: its card is issued.
    let o = run("sim:vendor-a");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn personalize_without_an_issuer_directory_is_exit_code_6() {
    let dir = tempfile::tempdir().unwrap();
    let batch = sample_batch(dir.path(), |_| true);
    let o = personalize_text(dir.path(), "sim:vendor-a", Path::new("no-such-dir"), &batch);
    assert_eq!(code(&o), 6);
    let line = one_line_error(&o);
    assert!(
        line.contains("no-such-dir") && line.contains("kart issuer init"),
        "{line}"
    );
}

#[test]
fn personalize_a_batch_on_parallel_simulated_readers_reports_bad_rows_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = issuer(dir.path());
    let batch = sample_batch(dir.path(), |_| true);
    let run = || personalize_json(dir.path(), "sim:vendor-b*2,sim:vendor-c", &issuer, &batch);
    let o = run();
    assert_eq!(code(&o), 1, "bad rows make the run exit 1: {}", stderr(&o));
    let v = json(&o);
    let rejected: Vec<u64> = v["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(rejected, [8, 9, 10]);
    let reasons = v["rejected"].to_string();
    assert!(
        reasons.contains("national_code: check digit") && reasons.contains("not a complete JPEG"),
        "{reasons}"
    );
    let results = issued_only(&v);
    assert_eq!(results.len(), 6, "{v}");
    let readers: std::collections::BTreeSet<&str> = results
        .iter()
        .map(|r| r["reader"].as_str().unwrap())
        .collect();
    assert!(readers.len() >= 2, "work spread over readers: {readers:?}");
    assert_eq!(v["report"]["issued"], 6);
    assert_eq!(v["report"]["pending"], 0);

    // The PINs went to the mailer, never to the output.
    let mailer = std::fs::read_to_string(dir.path().join("kart-station/pin-mailer.txt")).unwrap();
    assert_eq!(mailer.lines().count(), 6);
    let printed = format!("{}{}", stdout(&o), stderr(&o));
    for line in mailer.lines() {
        for secret in line
            .split(' ')
            .filter_map(|w| w.split_once('='))
            .filter(|(k, _)| k.contains("pin") || *k == "puk")
        {
            assert!(!printed.contains(secret.1), "{} printed", secret.0);
        }
    }

    // A re-run resumes from the journal: nothing is issued twice.
    let o = run();
    let v = json(&o);
    assert_eq!(v["queued"], 0);
    assert!(v["already_in_journal"].as_u64().unwrap() >= 6, "{v}");
    assert!(issued_only(&v).is_empty(), "{v}");
    assert_eq!(v["report"]["issued"], 6);

    // And `kart report` reads the same journal.
    let o = kart_in(dir.path(), &["report", "--json"]);
    let v = json_ok(&o);
    assert_eq!(v["issued"], 6);
    let failed = v["failed"].as_u64().unwrap();
    let counted: u64 = v["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    assert!(counted >= failed, "every failure has a reason: {v}");
    let vendors: Vec<&str> = v["per_vendor"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["profile"].as_str().unwrap())
        .collect();
    assert!(vendors.contains(&"vendor-b"), "{vendors:?}");
    let o = kart_in(dir.path(), &["report"]);
    assert!(stdout(&o).contains("issued"));
}

#[test]
fn only_valid_rows_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = issuer(dir.path());
    let batch = sample_batch(dir.path(), |line| line <= 3);
    let o = personalize_text(dir.path(), "sim:vendor-a", &issuer, &batch);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("issued"));
}

#[test]
fn dry_run_prints_plans_without_pins_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let batch = sample_batch(dir.path(), |line| line == 2);
    // Give the record a PIN of its own, to look for it in the output.
    let text = std::fs::read_to_string(&batch).unwrap();
    let text = text
        .replacen("gender,photo", "gender,pin,photo", 1)
        .replacen(",M,photos", ",M,482915,photos", 1);
    std::fs::write(&batch, text).unwrap();
    let o = kart_in(
        dir.path(),
        &[
            "personalize",
            "--dry-run",
            "--profile",
            "vendor-b",
            "--issuer",
            "unused",
            batch.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("set ID PIN") && out.contains("set status LOCKED"),
        "{out}"
    );
    assert!(
        !out.contains("482915") && !out.contains("343832393135"),
        "PIN digits in the plan: {out}"
    );
    assert!(!dir.path().join("kart-station").exists());
    let o = kart_in(
        dir.path(),
        &[
            "personalize",
            "--dry-run",
            "--json",
            "--issuer",
            "unused",
            batch.to_str().unwrap(),
        ],
    );
    let v = json(&o);
    assert_eq!(
        v["plans"].as_array().unwrap().len(),
        kart_spec::Spec::embedded().unwrap().profiles.len(),
        "one plan per profile"
    );
}

#[test]
fn verify_a_blank_card_is_not_genuine() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = issuer(dir.path());
    let o = verify("sim:vendor-c", &issuer, &["--json"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["genuine"], false);
    assert_eq!(v["lifecycle"], "PRE_PERSONALIZED");
    let result = |id: &str| check(&v, id)["result"].clone();
    assert_eq!(result("lifecycle"), "fail", "{v}");
    assert_eq!(result("sod.parse"), "fail", "{v}");
    assert_eq!(
        result("aa"),
        "skipped",
        "active authentication only after passive: {v}"
    );
    let o = verify("sim:vendor-c", &issuer, &[]);
    assert!(stdout(&o).contains("verdict: NOT GENUINE"));

    // $KART_PIN is used when set; the blank card has no PIN to check it against.
    let o = kart_with_pin(
        &[
            "verify",
            "--json",
            "--reader",
            "sim:vendor-c",
            "--issuer",
            issuer.to_str().unwrap(),
        ],
        "735102",
    );
    assert_eq!(code(&o), 1);
    let pin = check(&json(&o), "pin");
    assert!(pin.is_object(), "a PIN check");
    assert_ne!(pin["result"], "skipped", "{pin}");
    assert!(!stdout(&o).contains("735102") && !stderr(&o).contains("735102"));
    // --pin asks for a PIN; without a terminal and without $KART_PIN that is an input error.
    let o = verify("sim:vendor-c", &issuer, &["--pin"]);
    assert_eq!(code(&o), 5);
    one_line_error(&o);
}

#[test]
fn verify_and_read_refuse_bad_pin_files_and_missing_issuers() {
    let dir = tempfile::tempdir().unwrap();
    let pin = dir.path().join("pin");
    std::fs::write(&pin, "12ab\n").unwrap();
    let issuer = issuer(dir.path());
    let o = verify(
        "sim:vendor-a",
        &issuer,
        &["--pin-file", pin.to_str().unwrap()],
    );
    assert_eq!(code(&o), 5);
    let line = one_line_error(&o);
    assert!(line.contains("ID PIN") && !line.contains("12ab"), "{line}");

    let o = kart(&[
        "read",
        "--reader",
        "sim:vendor-a",
        "--pin-file",
        pin.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 5);

    let o = kart(&["read", "--reader", "sim:vendor-a"]);
    assert_eq!(code(&o), 5, "no PIN at all");
    assert!(one_line_error(&o).contains("KART_PIN"));

    let o = verify("sim:vendor-a", &dir.path().join("missing"), &[]);
    assert_eq!(code(&o), 6);
    one_line_error(&o);
}

#[test]
fn read_on_a_blank_card_is_a_card_error() {
    let o = kart_with_pin(&["read", "--reader", "sim:vendor-b"], "123456");
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    let line = one_line_error(&o);
    assert!(!line.contains("123456"));
}

#[test]
fn report_without_a_journal_is_exit_code_7() {
    let dir = tempfile::tempdir().unwrap();
    let o = kart_in(dir.path(), &["report"]);
    assert_eq!(code(&o), 7);
    assert!(one_line_error(&o).contains("no journal"));
}

#[test]
fn demo_issues_and_verifies_the_sample_batch_on_every_profile() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("demo");
    let o = kart(&["demo", "--json", "--dir", work.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let v = json(&o);
    assert_eq!(v["command"], "demo");
    for r in issued_only(&v) {
        let ms = r["modelled_card_ms"].as_u64().unwrap();
        assert!(ms > 100, "the vendor latency model gives card time: {r}");
    }
    assert_eq!(v["rejected"].as_array().unwrap().len(), 3);
    let results = issued_only(&v);
    assert_eq!(results.len(), 6, "{v}");
    let profiles = cli::reader_profiles(&results);
    let spec = kart_spec::Spec::embedded().unwrap();
    assert_eq!(
        profiles.len(),
        spec.profiles.len(),
        "every vendor profile used: {profiles:?}"
    );
    // A second run replaces its own directory …
    let o = kart(&["demo", "--dir", work.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("verified genuine"));
    // … but never a directory it did not make.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("keep.txt"), "mine").unwrap();
    let o = kart(&["demo", "--dir", other.to_str().unwrap()]);
    assert_eq!(code(&o), 8);
    assert!(other.join("keep.txt").is_file());
}

#[test]
fn the_configuration_file_gives_defaults_and_rejects_typos() {
    let dir = tempfile::tempdir().unwrap();
    issuer(dir.path());
    let batch = sample_batch(dir.path(), |line| line == 2);
    // The example configuration, with simulated readers instead of PC/SC ones.
    let example = std::fs::read_to_string(examples().join("kart.toml")).unwrap();
    let config = example.replace("readers = [\"all\"]", "readers = [\"sim:vendor-c\"]");
    assert_ne!(config, example);
    std::fs::write(dir.path().join("kart.toml"), config).unwrap();
    let o = kart_in(
        dir.path(),
        &["personalize", "--json", batch.to_str().unwrap()],
    );
    let v = json_ok(&o);
    assert_eq!(v["results"][0]["reader"], "sim:vendor-c#1");
    assert_eq!(
        report_json(dir.path())["issued"],
        1,
        "station_dir from the configuration"
    );

    std::fs::write(dir.path().join("typo.toml"), "isuer = \"issuer\"\n").unwrap();
    let o = kart_in(dir.path(), &["--config", "typo.toml", "report"]);
    assert_eq!(code(&o), 5);
    let line = one_line_error(&o);
    assert!(
        line.contains("isuer") && line.contains("typo.toml"),
        "{line}"
    );
}

#[test]
fn unreadable_batches_are_input_errors() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = issuer(dir.path());
    let run = |batch: &str| personalize_text(dir.path(), "sim:vendor-a", &issuer, Path::new(batch));
    let o = run("missing.csv");
    assert_eq!(code(&o), 5);
    assert!(one_line_error(&o).contains("missing.csv"));
    std::fs::write(dir.path().join("batch.xlsx"), "x").unwrap();
    let o = run("batch.xlsx");
    assert_eq!(code(&o), 5);
    assert!(one_line_error(&o).contains("*.csv"));
    std::fs::write(dir.path().join("bad-header.csv"), "name,code\nA,1\n").unwrap();
    let o = run("bad-header.csv");
    assert_eq!(code(&o), 5);
    assert!(one_line_error(&o).contains("tracking_code"));
}

#[test]
fn arguments_that_are_not_utf8_are_usage_errors_not_panics() {
    use std::os::unix::ffi::OsStrExt;
    let junk = std::ffi::OsStr::from_bytes(&[0xFF, 0xFE]);
    let o = Command::new(env!("CARGO_BIN_EXE_kart"))
        .arg("info")
        .arg("--reader")
        .arg(junk)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(code(&o), 2);
    one_line_error(&o);
    assert_eq!(json(&o)["error"]["kind"], "usage");
}

#[test]
fn bench_measures_per_card_costs_and_parallel_throughput() {
    let o = kart(&[
        "bench",
        "--json",
        "--profile",
        "vendor-c",
        "--cards",
        "2",
        "--parallel",
        "1,2",
        "--reader-cards",
        "1",
    ]);
    let v = json_ok(&o);
    let profiles = v["profiles"].as_array().unwrap();
    assert_eq!(profiles.len(), 1, "{v}");
    let p = &profiles[0];
    assert_eq!(p["profile"], "vendor-c");
    let c = &p["per_card"];
    let num = |v: &Value| v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    assert_eq!(c["cards"], 2);
    let apdus = num(&c["apdus"]);
    assert!(
        apdus >= 10.0,
        "a personalization is more than a few APDUs: {c}"
    );
    // Every command has a 4-byte header, every response a 2-byte status word.
    assert!(num(&c["bytes_sent"]) > 4.0 * apdus, "{c}");
    assert!(num(&c["bytes_received"]) >= 2.0 * apdus, "{c}");
    let modelled_ms = num(&c["modelled_card_ms"]);
    assert!(modelled_ms > 0.0 && num(&c["our_ms"]) > 0.0, "{c}");
    // The card time's distribution, and the readers a station needs for a
    // province's 12,000 cards in an 8-hour shift at the mean card time.
    let (p50, p90, p99) = (
        num(&c["modelled_card_ms_p50"]),
        num(&c["modelled_card_ms_p90"]),
        num(&c["modelled_card_ms_p99"]),
    );
    assert!(0.0 < p50 && p50 <= p90 && p90 <= p99, "{c}");
    let needed = (12_000.0 * modelled_ms / (8.0 * 3_600_000.0))
        .ceil()
        .max(1.0);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let needed = needed as u64;
    assert_eq!(c["readers_for_shift"].as_u64(), Some(needed), "{c}");
    let runs = p["throughput"].as_array().unwrap();
    let readers: Vec<u64> = runs
        .iter()
        .map(|r| r["readers"].as_u64().unwrap())
        .collect();
    assert_eq!(readers, [1, 2]);
    for r in runs {
        assert_eq!(r["cards"], r["readers"], "one card per reader: {r}");
        let seconds = num(&r["seconds"]);
        // Real latency: no run is much faster than a card's modelled time
        // (each card draws its own key generation times, so cards differ).
        assert!(
            seconds * 1000.0 >= modelled_ms * 0.5,
            "{r} vs {modelled_ms} ms"
        );
        let per_hour = num(&r["cards"]) * 3600.0 / seconds;
        assert!((num(&r["cards_per_hour"]) - per_hour).abs() < 1.0, "{r}");
    }

    let o = kart(&[
        "bench",
        "--profile",
        "vendor-c",
        "--cards",
        "1",
        "--parallel",
        "1",
        "--reader-cards",
        "1",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    for column in [
        "APDUs/card",
        "modelled card ms",
        "our ms/card",
        "cards/hour",
        "card ms p90",
        "readers for 12000 cards in 8 h",
    ] {
        assert!(text.contains(column), "{column}: {text}");
    }

    let o = kart(&["bench", "--profile", "vendor-z"]);
    assert_eq!(code(&o), 2);
    assert!(
        one_line_error(&o).contains("unknown profile 'vendor-z'"),
        "{}",
        stderr(&o)
    );
}

/// A station directory whose journal holds the sample batch's first
/// application issued on a simulated card and its second left `writing` on
/// a card that never came back (as a pulled card or a lost answer leaves
/// it; driven through the journal, since a simulated card always answers).
fn station_with_a_lost_card(dir: &Path) -> (PathBuf, PathBuf) {
    use kart_perso::journal::Journal;
    use kart_perso::record::TrackingCode;
    let issuer = issuer(dir);
    let batch = sample_batch(dir, |line| line <= 3);
    std::fs::create_dir_all(dir.join("kart-station")).unwrap();
    // The batch loaded as `kart personalize` loads it.
    let lost = TrackingCode::parse("140409040023").unwrap();
    let station = kart_perso::station::Station::open(
        "kart",
        &kart_perso::station::StationFiles::in_dir(dir.join("kart-station")),
        kart_perso::issuer::Issuer::load(&issuer).unwrap(),
        kart_spec::Spec::embedded().unwrap(),
    )
    .unwrap();
    station
        .load_batch(&batch, kart_perso::record::Validator::new())
        .unwrap();
    drop(station);
    // Claims go in file order: the first application is claimed and given
    // back so that the second is the one written to the lost card.
    let journal = Journal::open(dir.join("kart-station/journal.db")).unwrap();
    let first = journal.claim_next("kart", "sim-0").unwrap().unwrap();
    let second = journal.claim_next("kart", "sim-0").unwrap().unwrap();
    assert_eq!(second.tracking, lost);
    journal.release(&first.tracking).unwrap();
    journal
        .mark_writing(&lost, "DEAD0000CHIP0001", "vendor-a")
        .unwrap();
    drop(journal);
    let o = personalize_json(dir, "sim:vendor-a", &issuer, &batch);
    let v = json(&o);
    let issued = issued_only(&v);
    assert_eq!(issued.len(), 1, "{v}");
    assert_eq!(issued[0]["tracking_code"], "140409040015", "{v}");
    assert_eq!(
        v["report"]["in_progress"], 1,
        "the lost card's application waits: {v}"
    );
    (issuer, batch)
}

#[test]
fn spoil_closes_an_application_whose_card_never_came_back_and_requeue_reissues_it() {
    let dir = tempfile::tempdir().unwrap();
    let (issuer, batch) = station_with_a_lost_card(dir.path());

    let o = kart_in(
        dir.path(),
        &["spoil", "140409040023", "--reason", "chip dead", "--json"],
    );
    let v = json_ok(&o);
    assert_eq!(v["command"], "spoil");
    assert_eq!(v["state"], "spoiled");
    assert_eq!(v["card_serial"], "DEAD0000CHIP0001");
    let v = report_json(dir.path());
    assert_eq!(
        (v["spoiled"].as_u64(), v["in_progress"].as_u64()),
        (Some(1), Some(0)),
        "{v}"
    );
    assert!(v["reasons"].to_string().contains("chip dead"), "{v}");

    // Spoiled twice without --requeue: refused, with the way forward.
    let o = kart_in(dir.path(), &["spoil", "140409040023", "--reason", "again"]);
    assert_eq!(code(&o), 2);
    assert!(one_line_error(&o).contains("--requeue"));

    // --requeue: the next run issues it on another card.
    let o = kart_in(
        dir.path(),
        &[
            "spoil",
            "140409040023",
            "--reason",
            "chip dead",
            "--requeue",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("queued for a new card"),
        "{}",
        stdout(&o)
    );
    let o = personalize_json(dir.path(), "sim:vendor-a", &issuer, &batch);
    let v = json_ok(&o);
    let issued = issued_only(&v);
    assert_eq!(issued.len(), 1, "{v}");
    assert_eq!(issued[0]["tracking_code"], "140409040023", "{v}");
    let journal =
        kart_perso::journal::Journal::open(dir.path().join("kart-station/journal.db")).unwrap();
    let status = journal
        .status(&kart_perso::record::TrackingCode::parse("140409040023").unwrap())
        .unwrap();
    assert_eq!(status.attempts, 2);
    assert_ne!(status.card_serial.as_deref(), Some("DEAD0000CHIP0001"));
    assert_eq!(
        (
            v["report"]["issued"].as_u64(),
            v["report"]["in_progress"].as_u64()
        ),
        (Some(2), Some(0)),
        "{v}"
    );
}

#[test]
fn spoil_refuses_verified_and_unknown_applications_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    station_with_a_lost_card(dir.path());
    let o = kart_in(
        dir.path(),
        &[
            "spoil",
            "140409040015",
            "--reason",
            "holder says lost",
            "--requeue",
        ],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let line = one_line_error(&o);
    assert!(
        line.contains("verified") && line.contains("new application"),
        "{line}"
    );
    let v = report_json(dir.path());
    assert_eq!(
        (v["issued"].as_u64(), v["spoiled"].as_u64()),
        (Some(1), Some(0)),
        "{v}"
    );

    let o = kart_in(
        dir.path(),
        &["spoil", "140409040031", "--reason", "x", "--json"],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let o = kart_in(dir.path(), &["spoil", "12345", "--reason", "x"]);
    assert_eq!(code(&o), 2);
    one_line_error(&o);
    let o = kart(&[
        "spoil",
        "140409040023",
        "--reason",
        "x",
        "--journal",
        "/nonexistent/j.db",
    ]);
    assert_eq!(code(&o), 7);
}

#[test]
fn stranded_applications_are_named_after_the_run_and_listed_by_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let (issuer, batch) = station_with_a_lost_card(dir.path());
    // The run's last line names the application and the card it waits for.
    let o = personalize_text(dir.path(), "sim:vendor-a", &issuer, &batch);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let last = stdout(&o).lines().last().unwrap_or_default().to_owned();
    assert!(
        last.contains("1 application(s) wait for their card: 140409040023 (card DEAD0000CHIP0001)")
            && last.contains("kart spoil --stranded")
            && !last.contains("still to do"),
        "{last}"
    );
    // The report lists it with its card and since when.
    let o = kart_in(dir.path(), &["report"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("140409040023") && text.contains("DEAD0000CHIP0001") && text.contains(" UTC"),
        "{text}"
    );
    let v = report_json(dir.path());
    let stranded = v["stranded"].as_array().unwrap();
    assert_eq!(stranded.len(), 1, "{v}");
    assert_eq!(stranded[0]["tracking_code"], "140409040023");
    assert_eq!(stranded[0]["state"], "writing");
    assert_eq!(stranded[0]["card_serial"], "DEAD0000CHIP0001");
    assert!(
        stranded[0]["since"].as_str().unwrap().ends_with(" UTC"),
        "{v}"
    );
    assert!(stranded[0]["waiting_s"].is_u64(), "{v}");
}

#[test]
fn spoil_takes_many_codes_or_the_stranded_ones_older_than_a_duration() {
    let dir = tempfile::tempdir().unwrap();
    station_with_a_lost_card(dir.path());
    // Many codes: one is verified, so nothing is spoiled.
    let o = kart_in(
        dir.path(),
        &["spoil", "140409040023", "140409040015", "--reason", "lost"],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(one_line_error(&o).contains("140409040015"));
    let v = report_json(dir.path());
    assert_eq!(v["stranded"].as_array().unwrap().len(), 1, "{v}");
    // Usage errors.
    for args in [
        &["spoil", "--stranded", "140409040023", "--reason", "x"][..],
        &["spoil", "--older-than", "1d", "--reason", "x"],
        &[
            "spoil",
            "--stranded",
            "--older-than",
            "soon",
            "--reason",
            "x",
        ],
        &["spoil", "--reason", "x"],
    ] {
        let o = kart_in(dir.path(), args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
    }
    // None has waited a day yet.
    let o = kart_in(
        dir.path(),
        &[
            "spoil",
            "--stranded",
            "--older-than",
            "1d",
            "--reason",
            "lost",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("no application waits for its card for 1d 0h or more"),
        "{}",
        stdout(&o)
    );
    // Every stranded one, requeued.
    let o = kart_in(
        dir.path(),
        &[
            "spoil",
            "--stranded",
            "--reason",
            "lost in transit",
            "--requeue",
            "--json",
        ],
    );
    let v = json_ok(&o);
    let spoiled = v["spoiled"].as_array().unwrap();
    assert_eq!(spoiled.len(), 1, "{v}");
    assert_eq!(spoiled[0]["tracking"], "140409040023");
    assert_eq!(spoiled[0]["card_serial"], "DEAD0000CHIP0001");
    assert_eq!(v["state"], "queued", "{v}");
    let v = report_json(dir.path());
    assert!(v["stranded"].as_array().unwrap().is_empty(), "{v}");
    assert_eq!(v["pending"], 1, "{v}");
}

#[test]
fn report_reads_a_journal_it_cannot_write_beside_and_names_a_path_it_cannot_open() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    std::fs::create_dir(&archive).unwrap();
    let path = archive.join("journal.db");
    let journal = kart_perso::journal::Journal::open(&path).unwrap();
    let code_1 = kart_perso::record::TrackingCode::parse("140409040015").unwrap();
    journal.enqueue_batch("batch.csv", [&code_1]).unwrap();
    drop(journal);
    assert!(!archive.join("journal.db-shm").exists());

    // Not a journal: the path is named.
    let other = dir.path().join("notes.db");
    std::fs::write(&other, b"these are not the droids").unwrap();
    let o = kart(&["report", "--journal", other.to_str().unwrap()]);
    assert_eq!(code(&o), 7);
    assert!(
        one_line_error(&o).contains(other.to_str().unwrap()),
        "{}",
        stderr(&o)
    );

    // An archived journal in a folder nobody may write to. Root writes
    // anywhere, so the report runs as nobody (when the test runs as root).
    let root = std::process::Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&root.stdout).trim() != "0"
        || std::process::Command::new("setpriv")
            .arg("--version")
            .output()
            .is_err()
    {
        eprintln!("not root or no setpriv: the read-only case is not run");
        return;
    }
    for (p, mode) in [
        (dir.path(), 0o755),
        (archive.as_path(), 0o555),
        (path.as_path(), 0o444),
    ] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_kart"))
        .args(["report", "--json", "--journal", path.to_str().unwrap()])
        .current_dir(dir.path())
        .output()
        .unwrap();
    std::fs::set_permissions(&archive, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json(&o)["pending"], 1);
}

#[test]
fn photos_outside_the_batch_folder_need_a_photo_root_in_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = issuer(dir.path());
    // The batch in its own folder, its photos beside that folder.
    sample_batch(dir.path(), |line| line == 2);
    let batches = dir.path().join("batches");
    std::fs::create_dir(&batches).unwrap();
    let text = std::fs::read_to_string(dir.path().join("applications.csv")).unwrap();
    let batch = batches.join("applications.csv");
    std::fs::write(&batch, text.replace(",photos/", ",../photos/")).unwrap();
    let run = || personalize_json(dir.path(), "sim:vendor-b", &issuer, &batch);
    let o = run();
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let v = json(&o);
    let problems = v["rejected"][0]["problems"].to_string();
    assert!(
        problems.contains("line 2, photo: ")
            && problems.contains("is outside")
            && problems.contains("photo_root"),
        "{v}"
    );
    assert!(
        v["journal_batch"]
            .as_str()
            .unwrap()
            .starts_with("applications.csv@"),
        "{v}"
    );

    // The photo root names the folder above: the same batch file, fixed
    // nowhere, loads (a new station directory: the row is failed in the first).
    std::fs::write(
        dir.path().join("kart.toml"),
        format!(
            "photo_root = {:?}\nstation_dir = \"station-2\"\n",
            dir.path().to_str().unwrap()
        ),
    )
    .unwrap();
    let o = run();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(issued_only(&json(&o)).len(), 1);

    std::fs::write(
        dir.path().join("kart.toml"),
        "photo_root = \"no-such-folder\"\n",
    )
    .unwrap();
    let o = run();
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    assert!(one_line_error(&o).contains("no-such-folder"));
}

/// The CRNs of the issued cards of a personalize result (`CSN …, CRN …` details).
fn issued_crns(v: &Value) -> Vec<String> {
    issued_only(v)
        .iter()
        .map(|r| {
            let detail = r["detail"].as_str().unwrap();
            let crn = detail.split("CRN ").nth(1).expect("a CRN in the detail");
            crn.chars().take_while(char::is_ascii_digit).collect()
        })
        .collect()
}

#[test]
fn two_station_directories_of_one_issuer_never_repeat_a_crn() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = issuer(dir.path());
    let (mut crns, mut stations) = (Vec::new(), Vec::new());
    for (desk, lines) in [("desk-1", 2..=4), ("desk-2", 5..=7)] {
        let rows = dir.path().join(desk);
        let batch = sample_batch(&rows, |l| lines.contains(&l));
        let o = personalize(
            dir.path(),
            &["--json", "--reader", "sim:vendor-b", "--station-dir", desk],
            &issuer,
            &batch,
        );
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let v = json(&o);
        stations.push(v["station"].as_str().unwrap().to_owned());
        let issued = issued_crns(&v);
        assert_eq!(issued.len(), 3, "{desk}");
        crns.extend(issued);
    }
    // Without --station, a desk is named after its machine.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(stations, [host.trim(), host.trim()]);
    let distinct: std::collections::BTreeSet<&String> = crns.iter().collect();
    assert_eq!(distinct.len(), 6, "a CRN repeated across desks: {crns:?}");
    // The register is the issuer's, not a desk's.
    assert!(issuer.join("crn.db").is_file());
    assert!(!dir.path().join("desk-1/crn.db").exists());
}

#[test]
fn a_crn_register_that_cannot_be_opened_stops_the_station_before_any_card() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = issuer(dir.path());
    let batch = sample_batch(dir.path(), |l| l <= 3);
    std::fs::write(
        dir.path().join("kart.toml"),
        "crn_register = \"no/such/folder/crn.db\"\n",
    )
    .unwrap();
    let o = personalize_text(dir.path(), "sim:vendor-b", &issuer, &batch);
    assert_eq!(code(&o), 7, "{}", stderr(&o));
    let line = one_line_error(&o);
    assert!(line.contains("no/such/folder/crn.db"), "{line}");
    assert!(line.contains("crn_register"), "{line}");
    assert!(!dir.path().join("kart-station/pin-mailer.txt").exists());
}

#[test]
fn a_replacement_row_supersedes_the_holders_issued_card_and_the_report_lists_it() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = issuer(dir.path());
    let batch = sample_batch(dir.path(), |line| line == 2);
    let personalize = |batch: &Path| personalize_json(dir.path(), "sim:vendor-b", &issuer, batch);
    let o = personalize(&batch);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let first = issued_only(&json(&o));
    let csn = first[0]["detail"].as_str().unwrap()[4..]
        .split(',')
        .next()
        .unwrap()
        .to_owned();
    // The same holder again: refused without replacement=yes, issued with it.
    let text = std::fs::read_to_string(&batch).unwrap();
    let row = text
        .lines()
        .nth(1)
        .unwrap()
        .replace("140409040015", "140409040106");
    let header = text.lines().next().unwrap();
    let again = dir.path().join("again.csv");
    std::fs::write(&again, format!("{header}\n{row}\n")).unwrap();
    let o = personalize(&again);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let v = json(&o);
    assert!(
        v["rejected"][0]["problems"][0]
            .as_str()
            .unwrap()
            .contains("already has a live application 140409040015"),
        "{v}"
    );
    let replacement = dir.path().join("replacement.csv");
    let row = row.replace("140409040106", "140409040114");
    std::fs::write(&replacement, format!("{header},replacement\n{row},yes\n")).unwrap();
    let o = personalize(&replacement);
    let v = json_ok(&o);
    assert_eq!(v["superseded"][0]["tracking_code"], "140409040015", "{v}");
    assert_eq!(v["superseded"][0]["card_serial"], csn.as_str(), "{v}");
    assert_eq!(v["superseded"][0]["by"], "140409040114", "{v}");
    assert_eq!(issued_only(&v)[0]["tracking_code"], "140409040114");
    let v = report_json(dir.path());
    assert_eq!(v["superseded"][0]["tracking_code"], "140409040015", "{v}");
    let o = kart_in(dir.path(), &["report"]);
    assert!(stdout(&o).contains("replaced by"), "{}", stdout(&o));
}

#[test]
fn issuer_init_puts_the_root_key_offline_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("iss");
    let o = kart(&["issuer", "init", path.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(path.join("offline/root.key.pem").is_file());
    assert!(!path.join("root.key.pem").exists());
    let err = stderr(&o);
    assert!(
        err.starts_with("warning: ") && err.contains("offline") && err.contains("root key"),
        "{err}"
    );
}

/// A wrong issuer is refused with exit 6 before any card is touched: the
/// journal of a station that already issued a card gains nothing (no
/// application queued, none failed, no card spoiled).
#[test]
fn personalize_with_a_wrong_issuer_is_exit_code_6_and_touches_no_card() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let good = issuer(dir.path());
    let other = issuer_at(&dir.path().join("other"));
    let station = dir.path().join("station");
    let run = |issuer: &Path, keep: usize| {
        let batch_dir = dir.path().join(format!("batch-{keep}"));
        let batch = sample_batch(&batch_dir, |line| line == keep);
        personalize_at(dir.path(), "sim:vendor-b", &station, issuer, &batch)
    };
    let o = run(&good, 2);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let report = || {
        let o = kart(&[
            "report",
            "--json",
            "--station-dir",
            station.to_str().unwrap(),
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let v = json(&o);
        (
            v["issued"].clone(),
            v["failed"].clone(),
            v["spoiled"].clone(),
            v["pending"].clone(),
            v["in_progress"].clone(),
        )
    };
    let before = report();
    assert_eq!(before.0, 1);

    // Each way an issuer directory can be wrong: its name, how it is
    // broken from a copy of the good one, the batch line it runs, and the
    // file and the words the refusal names.
    let cases: [(&str, Breakage, usize, &str, &str); 3] = [
        // The card CA key of another issuer.
        (
            "wrong-key",
            &|wrong| {
                std::fs::copy(other.join("card-ca.key.pem"), wrong.join("card-ca.key.pem"))
                    .unwrap();
            },
            3,
            "card-ca.key.pem",
            "does not belong",
        ),
        // The document signer of another issuer: the chain is broken.
        (
            "wrong-chain",
            &|wrong| {
                for f in ["document-signer.pem", "document-signer.key.pem"] {
                    std::fs::copy(other.join(f), wrong.join(f)).unwrap();
                }
            },
            4,
            "document-signer.pem",
            "does not verify",
        ),
        // A key file other users may read.
        (
            "wrong-mode",
            &|wrong| {
                let key = wrong.join("document-signer.key.pem");
                std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
            },
            5,
            "document-signer.key.pem",
            "chmod 600",
        ),
    ];
    for (name, spoil, keep, file, says) in cases {
        let wrong = dir.path().join(name);
        copy_dir(&good, &wrong);
        spoil(&wrong);
        let o = run(&wrong, keep);
        assert_eq!(code(&o), 6, "{name}: {}", stderr(&o));
        let line = one_line_error(&o);
        assert!(line.contains(file) && line.contains(says), "{name}: {line}");
        assert_eq!(report(), before, "{name}");
    }
}

/// How a test breaks a copy of a good issuer directory (given its path).
type Breakage<'a> = &'a dyn Fn(&Path);

/// Copies the files of `from` (not its subfolders) to a new `to`, keeping modes.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// `kart args` in `dir`, killed (and the test failed) if it runs longer
/// than 20 seconds: a read that blocks must not hang the suite.
fn kart_bounded(dir: &Path, args: &[&str]) -> Output {
    let mut child = cli::command(env!("CARGO_BIN_EXE_kart"), dir)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run kart");
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(20) {
            child.kill().unwrap();
            let _ = child.wait();
            panic!("kart {args:?} blocked");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_fifo_or_a_device_given_as_a_file_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    kart_testkit::process::mkfifo(&d.join("fifo"), &[]);
    kart_testkit::process::mkfifo(&d.join("batch.csv"), &[]);
    for args in [
        &["--config", "fifo", "report"][..],
        &[
            "personalize",
            "--dry-run",
            "--profile",
            "vendor-a",
            "batch.csv",
        ],
        &["--config", "/dev/zero", "report"],
        &["script", "--reader", "sim:vendor-a", "fifo"],
        &["script", "--reader", "sim:vendor-a", "/dev/zero"],
        &["read", "--reader", "sim:vendor-a", "--pin-file", "fifo"],
        &[
            "read",
            "--reader",
            "sim:vendor-a",
            "--pin-file",
            "/dev/zero",
        ],
    ] {
        let o = kart_bounded(d, args);
        assert_eq!(code(&o), 5, "{args:?}: {}", stderr(&o));
        let line = one_line_error(&o);
        assert!(line.contains("not a regular file"), "{args:?}: {line}");
    }
}

#[test]
fn a_huge_configuration_line_is_not_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let long = "x".repeat(60_000);
    std::fs::write(dir.path().join("long.toml"), format!("station = {long}\n")).unwrap();
    let o = kart_in(dir.path(), &["--config", "long.toml", "report"]);
    assert_eq!(code(&o), 5);
    let line = one_line_error(&o);
    assert!(line.len() < 500, "{} bytes: {}", line.len(), &line[..500]);
    assert!(
        line.contains("long.toml") && line.contains("line 1"),
        "{line}"
    );
}

#[test]
fn a_malformed_pin_command_is_not_echoed() {
    // VERIFY, CHANGE REFERENCE DATA and RESET RETRY COUNTER with PIN-like
    // data and a wrong length: refused, and the data is not in the error.
    for apdu in [
        "00200081083132333435363738393A",
        "00 24 00 81 10 3132333435363738 3837363534333231 FF FF",
        "002C0081083132333435363738:3837",
        "0020008108313233343536373",
    ] {
        let o = kart(&["apdu", "--json", "--reader", "sim:vendor-a", apdu]);
        assert_eq!(code(&o), 2, "{apdu}: {}", stderr(&o));
        let out = stderr(&o) + &stdout(&o);
        for secret in ["31323334", "3132 3334", "38373635"] {
            assert!(!out.contains(secret), "{apdu}: {out}");
        }
        assert!(out.contains("withheld"), "{out}");
    }
    // Other commands are still quoted, so the operator sees the typo.
    let o = kart(&["apdu", "--reader", "sim:vendor-a", "00A4040009F04B"]);
    assert_eq!(code(&o), 2);
    assert!(one_line_error(&o).contains("00A4040009F04B"));
}

#[test]
fn text_from_a_profile_reaches_the_terminal_without_control_characters() {
    // A spec directory whose vendor-b profile name carries a screen clear,
    // a window-title sequence, a C1 CSI and a right-to-left override.
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../applets-spec");
    let spec = dir.path().join("spec");
    std::fs::create_dir_all(spec.join("profiles")).unwrap();
    for f in ["nid-applet.toml", "conformance.toml"] {
        std::fs::copy(src.join(f), spec.join(f)).unwrap();
    }
    for p in kart_spec::Spec::embedded().unwrap().profiles {
        let f = format!("profiles/{}.toml", p.id);
        std::fs::copy(src.join(&f), spec.join(&f)).unwrap();
    }
    let b = spec.join("profiles/vendor-b.toml");
    let text = std::fs::read_to_string(&b).unwrap();
    let evil = text.replacen(
        "name = \"Vendor B",
        "name = \"\\u001B[2J\\u001B]0;owned\\u0007\\u009B31m\\u202EVendor B",
        1,
    );
    assert_ne!(evil, text);
    std::fs::write(&b, evil).unwrap();
    let o = kart(&[
        "--spec",
        spec.to_str().unwrap(),
        "info",
        "--reader",
        "sim:vendor-b",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("Vendor B"), "{out}");
    for bad in ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}'] {
        assert!(!out.contains(bad), "{bad:?} reached the terminal: {out:?}");
    }
    // JSON keeps the exact text, escaped.
    let o = kart(&[
        "--spec",
        spec.to_str().unwrap(),
        "info",
        "--json",
        "--reader",
        "sim:vendor-b",
    ]);
    assert!(!stdout(&o).contains('\u{1b}'));
    assert!(json(&o)["profile"]["name"]
        .as_str()
        .unwrap()
        .starts_with("\u{1b}[2J"));
}

/// Every entry of `dir` with its permission bits.
fn modes(dir: &Path) -> Vec<(String, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut v: Vec<(String, u32)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let mode = e.metadata().unwrap().permissions().mode() & 0o777;
            (e.file_name().to_string_lossy().into_owned(), mode)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn station_files_are_0600_in_a_0700_directory() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let issuer = issuer(dir.path());
    let station = dir.path().join("station");
    let run = |keep: usize| {
        let batch = sample_batch(&dir.path().join(format!("b{keep}")), |l| l == keep);
        let o = personalize_at(dir.path(), "sim:vendor-c", &station, &issuer, &batch);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    };
    let check = || {
        let mode = std::fs::metadata(&station).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "station directory");
        let files = modes(&station);
        for name in ["journal.db", "pin-mailer.txt"] {
            assert!(files.iter().any(|(n, _)| n == name), "{name}: {files:?}");
        }
        for (name, mode) in &files {
            assert_eq!(*mode, 0o600, "{name}: {files:?}");
        }
    };
    run(2);
    check();
    // A directory and journal opened up by hand are closed again.
    std::fs::set_permissions(&station, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        station.join("journal.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    run(3);
    check();
}

#[test]
fn a_huge_reader_name_is_quoted_short() {
    // (A PC/SC reader name needs pcscd: a simulated one goes through the
    // same message.)
    let long = format!("sim:{}", "v".repeat(100_000));
    let o = kart(&["info", "--reader", &long]);
    assert_eq!(code(&o), 3, "{} bytes on stderr", stderr(&o).len());
    let line = one_line_error(&o);
    assert!(line.len() < 1000, "{} bytes: {}", line.len(), &line[..1000]);
    assert!(line.contains("vvv…"), "{line}");
}
