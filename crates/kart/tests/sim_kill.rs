//! A station killed with SIGKILL never loses a kept simulated card (issue
//! 16): `kart personalize --sim-dir` is killed after the journal bound an
//! application to the reader's new card (`writing`, with its serial) and
//! before that card's first change was written; a rerun finds the card in
//! its reader, resumes the application on it and verifies it, with no
//! spoil — while the card issued before it stays readable in the reader's
//! file the whole time.
//!
//! The kill lands there every time, with no timing: the test holds the
//! journal's write lock (`BEGIN IMMEDIATE`, the real `SQLite` journal) from
//! the moment it sees the application `writing`. The station's next step
//! is to journal the start of its first personalization step, before any
//! APDU of it (station.rs: "Each step's start is journaled before its first
//! APDU"), so it waits on the lock, and is killed there.

use kart_testkit::cli::{self, code, json, stderr};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kart");
/// The sample batch's second application, the one the kill interrupts.
const KILLED: &str = "140409040023";
/// How long the test waits for the station to reach `writing` before it
/// calls the run broken (a bound for a hung process, not a timing).
const REACH_BOUND: Duration = Duration::from_secs(120);

fn kart(dir: &Path, args: &[&str]) -> Output {
    cli::run(BIN, dir, args)
}

fn ok(o: &Output) -> Value {
    assert_eq!(
        code(o),
        0,
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(o)
    );
    json(o)
}

fn personalize_args(batch: &str) -> Vec<&str> {
    vec![
        "--sim-dir",
        "cards",
        "personalize",
        "--json",
        "--issuer",
        "issuer",
        "--reader",
        "sim:vendor-a",
        batch,
    ]
}

/// `kart --sim-dir cards info --json --reader sim:vendor-a`.
fn info(dir: &Path) -> Value {
    ok(&kart(
        dir,
        &[
            "--sim-dir",
            "cards",
            "info",
            "--json",
            "--reader",
            "sim:vendor-a",
        ],
    ))
}

/// The ID PIN of the last card issued, from the PIN mailer, in a file.
fn pin_file(dir: &Path) -> PathBuf {
    let mailer = std::fs::read_to_string(dir.join("kart-station/pin-mailer.txt")).unwrap();
    let pin = mailer
        .lines()
        .rev()
        .find_map(|l| l.split(' ').find_map(|w| w.strip_prefix("id_pin=")))
        .unwrap()
        .to_owned();
    let path = dir.join("id-pin");
    std::fs::write(&path, pin).unwrap();
    path
}

/// The journal's state and card serial of `tracking`, if it is loaded.
fn application(conn: &Connection, tracking: &str) -> Option<(String, Option<String>)> {
    conn.query_row(
        "SELECT state, card_serial FROM applications WHERE tracking = ?1",
        [tracking],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .unwrap()
}

/// Runs `kart personalize` on `batch` and SIGKILLs it once the journal
/// holds `KILLED` in `state`, holding the journal's write lock from that
/// moment to the kill; returns the card serial the journal bound.
fn kill_once(dir: &Path, batch: &str, state: &str) -> String {
    let mut station = cli::command(BIN, dir)
        .args(personalize_args(batch))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The journal exists: the first run made it.
    let mut conn = Connection::open(dir.join("kart-station/journal.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(30)).unwrap();
    let started = Instant::now();
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        if let Some((now, Some(serial))) = application(&tx, KILLED) {
            if now == state {
                // The station cannot journal its next step while the lock
                // is held: from `writing`, its first personalization step
                // (before any APDU of it); from `written`, the verification.
                station.kill().unwrap(); // SIGKILL
                station.wait().unwrap();
                drop(tx);
                return serial;
            }
            assert!(
                ["claimed", "writing"].contains(&now.as_str()),
                "{KILLED} went to {now} before the kill"
            );
        }
        drop(tx); // rolled back: the station goes on
        assert!(
            station.try_wait().unwrap().is_none(),
            "the station ended before {KILLED} was {state}"
        );
        assert!(
            started.elapsed() < REACH_BOUND,
            "{KILLED} never reached {state}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// An issuer, `one.csv` (one application) issued on `sim:vendor-a` with
/// its card kept in `cards/`, and `two.csv` (`KILLED`) still to do.
fn first_card_issued(dir: &Path) {
    cli::sample_batch(dir, "one.csv", |line| line == 2);
    cli::sample_batch(dir, "two.csv", |line| line == 3);
    ok(&kart(dir, &["issuer", "init", "--json", "issuer"]));
    let first = ok(&kart(dir, &personalize_args("one.csv")));
    assert_eq!(first["report"]["issued"], 1, "{first}");
}

#[test]
fn a_station_killed_after_binding_a_card_finds_it_again_and_the_issued_card_stays() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    first_card_issued(dir);
    let reader_file = dir.join("cards/vendor-a-1.card.json");
    let issued = std::fs::read(&reader_file).unwrap();
    let before = info(dir);
    assert_eq!(before["lifecycle"]["name"], "LOCKED", "{before}");

    // Killed with the next application bound to the reader's new card.
    let serial = kill_once(dir, "two.csv", "writing");
    assert_ne!(
        Some(serial.to_ascii_uppercase()),
        before["csn"].as_str().map(str::to_ascii_uppercase),
        "the second application is bound to a new card"
    );
    // The card issued before is still the one `info`, `verify`, `read` see.
    assert_eq!(
        std::fs::read(&reader_file).unwrap(),
        issued,
        "the issued card is kept until the new card first changes"
    );
    assert_eq!(info(dir)["csn"], before["csn"]);

    // The rerun finds the bound card in its reader and resumes on it.
    resumed_on(dir, &serial);
    // That card is now the one in the reader, issued and genuine.
    issued_in_the_reader(dir, &serial);
}

/// A rerun of `two.csv` issues `KILLED` on the card `serial`, no spoil.
fn resumed_on(dir: &Path, serial: &str) {
    let again = ok(&kart(dir, &personalize_args("two.csv")));
    let results: Vec<(&str, &str)> = again["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["tracking_code"].as_str().unwrap(),
                r["result"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(results, [(KILLED, "issued")], "{again}");
    let report = &again["report"];
    assert_eq!(report["issued"], 2, "{again}");
    assert_eq!(report["spoiled"], 0, "{again}");
    assert_eq!(report["in_progress"], 0, "{again}");
    assert_eq!(again["stranded"], serde_json::json!([]), "{again}");
    let conn = Connection::open(dir.join("kart-station/journal.db")).unwrap();
    assert_eq!(
        application(&conn, KILLED),
        Some(("verified".to_owned(), Some(serial.to_owned()))),
        "verified on the card it was bound to"
    );
}

/// `serial` is the LOCKED card in the reader and verifies with the last PIN.
fn issued_in_the_reader(dir: &Path, serial: &str) {
    let now = info(dir);
    assert_eq!(now["lifecycle"]["name"], "LOCKED", "{now}");
    assert_eq!(
        now["csn"].as_str().map(str::to_ascii_uppercase),
        Some(serial.to_ascii_uppercase())
    );
    let pin = pin_file(dir);
    let verify = ok(&kart(
        dir,
        &[
            "--sim-dir",
            "cards",
            "verify",
            "--json",
            "--issuer",
            "issuer",
            "--reader",
            "sim:vendor-a",
            "--pin-file",
            pin.to_str().unwrap(),
        ],
    ));
    assert_eq!(verify["genuine"], true, "{verify}");
}

#[test]
fn a_station_killed_before_journaling_a_verification_presents_the_locked_card_again() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    first_card_issued(dir);

    // Killed with the second card written and LOCKED, its verification
    // not journaled: the LOCKED card in the reader is not an issued one.
    let serial = kill_once(dir, "two.csv", "written");
    let left = info(dir);
    assert_eq!(left["lifecycle"]["name"], "LOCKED", "{left}");
    assert_eq!(
        left["csn"].as_str().map(str::to_ascii_uppercase),
        Some(serial.to_ascii_uppercase())
    );

    resumed_on(dir, &serial);
    issued_in_the_reader(dir, &serial);
}
