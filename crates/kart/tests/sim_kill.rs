//! A station killed with SIGKILL never loses a kept simulated card (issue
//! 16): `kart personalize --sim-dir` is killed after the journal bound an
//! application to the reader's new card (`writing`, with its serial) and
//! before that card's first change was written; a rerun finds the card in
//! its reader, resumes the application on it and verifies it, with no
//! spoil — while the card issued before it stays readable in the reader's
//! file the whole time.
//!
//! Where the kill lands is checked, not timed: the test reads the real
//! `SQLite` journal (WAL: a read takes no lock) until the application is at
//! the kill point — `writing` with no step start journaled yet — then takes
//! the journal's write lock (`BEGIN IMMEDIATE`), checks again under it, and
//! kills. The station's next move from there is a journal write (the start
//! of its first step, before any APDU of it: "Each step's start is
//! journaled before its first APDU", station.rs), so it cannot go on while
//! the lock is held. A run whose station went past the point between two
//! looks is started again in a new directory. The same for a kill after
//! the card was LOCKED (`written`) and before its verification was journaled.

use kart_testkit::cli::{self, ok_json as ok};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use serde_json::Value;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kart");
/// The sample batch's second application, the one the kill interrupts.
const KILLED: &str = "140409040023";
/// How long the test waits for the station to reach `writing` before it
/// calls the run broken (a bound for a hung process, not a timing).
const REACH_BOUND: Duration = Duration::from_secs(120);
/// Runs tried when the station passes the kill point between two looks at
/// the journal (its window is the CRN allocation and the PIN mailer's
/// fsync; a look takes well under a millisecond).
const ATTEMPTS: usize = 10;

fn kart(dir: &Path, args: &[&str]) -> Output {
    cli::run(BIN, dir, args)
}

/// `kart --sim-dir cards personalize --json --issuer issuer --reader sim:vendor-a BATCH`.
fn personalize_args(batch: &str) -> Vec<&str> {
    let mut args: Vec<&str> =
        "--sim-dir cards personalize --json --issuer issuer --reader sim:vendor-a"
            .split(' ')
            .collect();
    args.push(batch);
    args
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

/// Where `KILLED` stands: its state, card serial and how many step starts
/// the journal holds for it.
fn progress(conn: &Connection) -> Option<(String, Option<String>, i64)> {
    let (state, serial) = application(conn, KILLED)?;
    let steps = conn
        .query_row(
            "SELECT count(*) FROM step_starts WHERE tracking = ?1",
            [KILLED],
            |r| r.get(0),
        )
        .unwrap();
    Some((state, serial, steps))
}

/// Where the kill must land.
#[derive(Clone, Copy, Debug)]
enum At {
    /// `writing`, bound to the card, before the first step's start is
    /// journaled — so before any personalization APDU.
    Bound,
    /// `written` (the card is LOCKED), before the verification is journaled.
    Written,
}

impl At {
    /// The card serial when the journal is at this point; `Err(())` when
    /// the station went past it.
    fn reached(self, p: Option<(String, Option<String>, i64)>) -> Result<Option<String>, ()> {
        let Some((state, serial, steps)) = p else {
            return Ok(None);
        };
        match (self, state.as_str()) {
            (_, "queued" | "claimed") | (At::Written, "writing") => Ok(None),
            (At::Bound, "writing") if steps == 0 => Ok(serial),
            (At::Written, "written") => Ok(serial),
            _ => Err(()),
        }
    }
}

/// Runs `kart personalize` on `batch` and SIGKILLs it at `at`: once the
/// journal is there, the test takes the journal's write lock, checks again
/// under it and kills; the station, whose next step is a journal write,
/// cannot move on meanwhile. Returns the card serial the journal bound, or
/// `None` when the station went past `at` between two looks (the caller
/// starts again).
fn kill_at(dir: &Path, batch: &str, at: At) -> Option<String> {
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
    let serial = loop {
        // A read takes no lock (WAL): the station is not held up.
        match at.reached(progress(&conn)) {
            Err(()) => break None,
            Ok(None) => {}
            Ok(Some(_)) => {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .unwrap();
                if let Ok(Some(serial)) = at.reached(progress(&tx)) {
                    station.kill().unwrap(); // SIGKILL, the lock still held
                    station.wait().unwrap();
                    return Some(serial);
                }
            }
        }
        assert!(
            station.try_wait().unwrap().is_none(),
            "the station ended before {KILLED} was at {at:?}"
        );
        assert!(
            started.elapsed() < REACH_BOUND,
            "{KILLED} never reached {at:?}"
        );
        std::thread::yield_now();
    };
    station.kill().unwrap();
    station.wait().unwrap();
    serial
}

/// A directory where `one.csv` is issued and `two.csv`'s station was
/// killed at `at`, with the card serial the journal bound.
fn killed_at(at: At) -> (tempfile::TempDir, String) {
    for _ in 0..ATTEMPTS {
        let t = first_card_issued();
        if let Some(serial) = kill_at(t.path(), "two.csv", at) {
            return (t, serial);
        }
        println!("sim kill: the station went past {at:?} between two looks; again");
    }
    panic!("the station went past {at:?} in each of {ATTEMPTS} runs");
}

/// A directory with an issuer, `one.csv` (one application) issued on
/// `sim:vendor-a` with its card kept in `cards/`, and `two.csv` (`KILLED`)
/// still to do.
fn first_card_issued() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    cli::sample_batch(dir, "one.csv", |line| line == 2);
    cli::sample_batch(dir, "two.csv", |line| line == 3);
    ok(&kart(dir, &["issuer", "init", "--json", "issuer"]));
    let first = ok(&kart(dir, &personalize_args("one.csv")));
    assert_eq!(first["report"]["issued"], 1, "{first}");
    t
}

#[test]
fn a_station_killed_after_binding_a_card_finds_it_again_and_the_issued_card_stays() {
    let (t, serial) = killed_at(At::Bound);
    let dir = t.path();
    let reader_file = dir.join("cards/vendor-a-1.card.json");
    let issued = std::fs::read(&reader_file).unwrap();
    let before = info(dir);
    assert_eq!(before["lifecycle"]["name"], "LOCKED", "{before}");

    // Killed with the next application bound to the reader's new card.
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
    let pin = cli::last_id_pin_file(dir);
    let mut args: Vec<&str> =
        "--sim-dir cards verify --json --issuer issuer --reader sim:vendor-a --pin-file"
            .split(' ')
            .collect();
    args.push(pin.to_str().unwrap());
    let verify = ok(&kart(dir, &args));
    assert_eq!(verify["genuine"], true, "{verify}");
}

#[test]
fn a_station_killed_before_journaling_a_verification_presents_the_locked_card_again() {
    // Killed with the second card written and LOCKED, its verification
    // not journaled: the LOCKED card in the reader is not an issued one.
    let (t, serial) = killed_at(At::Written);
    let dir = t.path();
    let left = info(dir);
    assert_eq!(left["lifecycle"]["name"], "LOCKED", "{left}");
    assert_eq!(
        left["csn"].as_str().map(str::to_ascii_uppercase),
        Some(serial.to_ascii_uppercase())
    );

    resumed_on(dir, &serial);
    issued_in_the_reader(dir, &serial);
}
