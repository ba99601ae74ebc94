//! The floor under fire (issue 16, "Tests"): four station processes
//! (`kart personalize`, four simulated readers each, cards kept in a
//! per-station `--sim-dir` as cards left in real readers) on ONE shared
//! journal — an `SQLite` file, and a `PostgreSQL` 15 server the test starts
//! (and restarts once mid-batch) — stations killed with SIGKILL at random
//! and started again. No card is lost with a killed station: once every
//! station has run again, no application waits for its card. When
//! the last station is done, every application is verified exactly once on
//! one card, every issued card has its own CRN, every application's event
//! chain is a path of allowed transitions, and `kart report` shows the floor
//! per station.
//!
//! Here, not in `tests/` (kart-e2e): the test drives the `kart` binary, and
//! Cargo gives its path (`CARGO_BIN_EXE_kart`) only to the binary's own
//! package. The seed of the kill schedule is printed; `KART_CHAOS_SEED`
//! replays one.

use kart_perso::journal::State;
use kart_perso::record::TrackingCode;
use kart_pg_harness::PgServer;
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const STATIONS: usize = 4;
const APPLICATIONS: u64 = 96;
const KILLS: usize = 6;
/// Claims a killed station held before its first card command come back
/// when their lease (60 s) runs out: the finishing run waits at most this.
const FINISH_BOUND: Duration = Duration::from_secs(100);

/// xorshift64*: a reproducible kill schedule without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn kart() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kart"));
    c.env_remove("KART_PIN").env_remove("KART_ISSUER");
    c
}

fn checked(o: &Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn tracking_code(seq: u64) -> TrackingCode {
    kart_testkit::engine::codes(1, 14_040_500_000 + seq).remove(0)
}

/// A batch of `n` valid applications of distinct holders sharing one photo.
fn write_batch(dir: &Path, n: u64) -> PathBuf {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/batch");
    std::fs::copy(examples.join("photos/photo-1.jpg"), dir.join("face.jpg")).unwrap();
    let mut text = String::from("tracking_code,national_code,given_name_fa,family_name_fa,father_name_fa,given_name_en,family_name_en,father_name_en,birth_date,gender,photo\n");
    for seq in 1..=n {
        writeln!(
            text,
            "{},{},علی,کریمی,حسین,ALI,KARIMI,HOSSEIN,1369/06/31,M,face.jpg",
            tracking_code(seq),
            kart_testkit::ids::national_code(1_000 + seq)
        )
        .unwrap();
    }
    let path = dir.join("floor.csv");
    std::fs::write(&path, text).unwrap();
    path
}

/// Where the floor's shared state lives, and how a station joins it.
struct Floor {
    dir: PathBuf,
    issuer: PathBuf,
    batch: PathBuf,
    /// `--station-dir` every station shares (the PIN mailer; on `SQLite`
    /// the journal file too).
    shared: PathBuf,
    /// `--journal URL` on `PostgreSQL`.
    journal: Option<String>,
}

impl Floor {
    fn new(dir: &Path, journal: Option<String>) -> Self {
        let issuer = dir.join("issuer");
        checked(
            &kart()
                .args(["issuer", "init"])
                .arg(&issuer)
                .output()
                .unwrap(),
            "issuer init",
        );
        Floor {
            dir: dir.to_owned(),
            batch: write_batch(dir, APPLICATIONS),
            shared: dir.join("floor"),
            issuer,
            journal,
        }
    }

    /// `kart personalize` as station `n`: four readers (two vendors), its
    /// cards kept in its own directory so that a restarted station finds
    /// the cards its killed process left in its readers.
    fn station(&self, n: usize) -> Command {
        let mut c = kart();
        c.arg("--sim-dir")
            .arg(self.dir.join(format!("cards-{n}")))
            .args([
                "personalize",
                "--json",
                "--station",
                &format!("station-{n}"),
            ])
            .arg("--station-dir")
            .arg(&self.shared)
            .args(self.journal.iter().flat_map(|url| ["--journal", url]))
            .args(["--reader", "sim:vendor-a*2,sim:vendor-b*2", "--issuer"])
            .arg(&self.issuer)
            .arg(&self.batch)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn report(&self) -> Value {
        let out = kart()
            .args(["report", "--json", "--station-dir"])
            .arg(&self.shared)
            .args(self.journal.iter().flat_map(|url| ["--journal", url]))
            .output()
            .unwrap();
        serde_json::from_str(&checked(&out, "kart report")).unwrap()
    }
}

#[test]
fn four_stations_on_one_sqlite_journal_killed_at_random_issue_every_application_once() {
    let tmp = tempfile::tempdir().unwrap();
    let floor = Floor::new(tmp.path(), None);
    chaos(&floor, None);
    let db = Db::Sqlite {
        journal: Connection::open(floor.shared.join("journal.db")).unwrap(),
        crns: Connection::open(floor.issuer.join("crn.db")).unwrap(),
    };
    check_floor(&floor, &db);
}

/// The same floor on one `PostgreSQL` journal, restarted once mid-batch:
/// stations load the one batch at once (the load takes turns under an
/// advisory lock), CRNs come from the issuer-wide sequence, and stations
/// ride out the restart with their retries.
#[test]
fn four_stations_on_one_postgres_killed_at_random_and_a_database_restart_issue_every_application_once(
) {
    let mut pg = PgServer::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let floor = Floor::new(tmp.path(), Some(pg.url()));
    chaos(&floor, Some(&mut pg));
    check_floor(&floor, &Db::Postgres(pg));
}

/// Runs the floor: four stations, `KILLS` random SIGKILLs (each station
/// started again at once), the database restarted once after the third
/// kill when there is a server; then stations until the queue is done.
fn chaos(floor: &Floor, mut server: Option<&mut PgServer>) {
    let seed = std::env::var("KART_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("floor chaos: KART_CHAOS_SEED={seed}");
    let mut rng = Rng(seed);
    let started = Instant::now();

    let mut stations: Vec<Child> = (0..STATIONS)
        .map(|n| floor.station(n).spawn().unwrap())
        .collect();
    let mut kills = 0;
    while kills < KILLS {
        std::thread::sleep(Duration::from_millis(200 + rng.below(600)));
        let n = usize::try_from(rng.below(STATIONS as u64)).unwrap();
        if stations.iter_mut().all(|s| s.try_wait().unwrap().is_some()) {
            break; // the floor finished before the schedule did
        }
        if stations[n].try_wait().unwrap().is_some() {
            continue; // this one is done; pick another
        }
        stations[n].kill().unwrap(); // SIGKILL
        stations[n].wait().unwrap();
        kills += 1;
        stations[n] = floor.station(n).spawn().unwrap();
        if kills == 3 {
            if let Some(pg) = server.as_deref_mut() {
                pg.restart().unwrap();
                println!("floor chaos: database restarted at {:?}", started.elapsed());
            }
        }
    }
    println!("floor chaos: {kills} SIGKILLs in {:?}", started.elapsed());
    let mut per_process = Vec::new();
    for s in stations {
        let out = s.wait_with_output().unwrap();
        per_process.push(out);
    }
    // A claim a killed process held before its first card command waits for
    // its lease; a station started later takes it then.
    let deadline = Instant::now() + FINISH_BOUND;
    for round in 0.. {
        let r = floor.report();
        if r["pending"] == 0 && r["in_progress"] == 0 {
            break;
        }
        let errors: Vec<String> = per_process
            .iter()
            .filter(|o| o.status.code().is_some_and(|c| c != 0))
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            .collect();
        assert!(
            Instant::now() < deadline,
            "the floor never finished: {r}\nstations' errors: {errors:#?}"
        );
        // After every station had its turn, each found the cards its killed
        // processes left in its readers (kept in its --sim-dir from the
        // moment they went in, as a card stays in a real reader when the PC
        // dies): no application may still wait for its card.
        if round >= STATIONS {
            assert_eq!(
                r["stranded"],
                serde_json::json!([]),
                "cards lost with killed stations: {r}\nstations' errors: {errors:#?}"
            );
        }
        std::thread::sleep(Duration::from_millis(500));
        // Every station in turn: each finds the cards left in its own readers.
        let out = floor.station(round % STATIONS).output().unwrap();
        per_process.push(out);
    }
    println!("floor chaos: done in {:?}", started.elapsed());

    for out in &per_process {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "a station panicked: {err}");
    }
}

/// The shared journal, read with its own client (`rusqlite`, `psql`).
enum Db {
    Sqlite {
        journal: Connection,
        crns: Connection,
    },
    Postgres(PgServer),
}

impl Db {
    /// The rows of `sql` as text (NULL as empty); `crns`: on `SQLite` the
    /// register is the issuer's own file.
    fn rows(&self, sql: &str, crns: bool) -> Vec<Vec<String>> {
        match self {
            Db::Sqlite { journal, crns: c } => {
                let conn = if crns { c } else { journal };
                let mut stmt = conn.prepare(sql).unwrap();
                let n = stmt.column_count();
                stmt.query_map([], |r| {
                    (0..n)
                        .map(|i| {
                            Ok(match r.get_ref(i)? {
                                ValueRef::Null => String::new(),
                                ValueRef::Integer(v) => v.to_string(),
                                ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                                other => panic!("unexpected value {other:?}"),
                            })
                        })
                        .collect()
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
            }
            Db::Postgres(pg) => pg
                .psql(sql)
                .unwrap()
                .lines()
                .map(|l| l.split('|').map(str::to_owned).collect())
                .collect(),
        }
    }
}

/// Every application verified exactly once on one card with its own CRN,
/// its events a chain of allowed transitions from `queued`; and the report
/// shows the floor per station.
fn check_floor(floor: &Floor, db: &Db) {
    let apps = db.rows(
        "SELECT tracking, state, card_serial FROM applications",
        false,
    );
    assert_eq!(
        apps.len() as u64,
        APPLICATIONS,
        "applications lost or added"
    );
    let issued: BTreeMap<String, String> = db
        .rows(
            "SELECT tracking, count(*) FROM cards WHERE status = 'issued' GROUP BY tracking",
            false,
        )
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    let mut events: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for r in db.rows(
        "SELECT tracking, from_state, to_state FROM events ORDER BY tracking, id",
        false,
    ) {
        events
            .entry(r[0].clone())
            .or_default()
            .push((r[1].clone(), r[2].clone()));
    }
    let crns: BTreeMap<(String, String), String> = db
        .rows("SELECT tracking, card_serial, seq FROM crns", true)
        .into_iter()
        .map(|r| ((r[0].clone(), r[1].clone()), r[2].clone()))
        .collect();
    let mut serials = BTreeSet::new();
    let mut seqs = BTreeSet::new();
    for app in &apps {
        let (tracking, state, serial) = (&app[0], &app[1], &app[2]);
        assert_eq!(state, "verified", "{tracking}");
        assert!(!serial.is_empty(), "{tracking}: no card");
        assert!(serials.insert(serial.clone()), "card {serial} issued twice");
        assert_eq!(
            issued.get(tracking).map(String::as_str),
            Some("1"),
            "{tracking}: issued cards"
        );
        let chain = events.get(tracking).cloned().unwrap_or_default();
        let mut at = State::Queued;
        let mut verified = 0;
        for (from, to) in &chain {
            let to = State::from_name(to).expect("a state");
            if !from.is_empty() {
                let from = State::from_name(from).expect("a state");
                assert_eq!(from, at, "{tracking}: event chain broken: {chain:?}");
                assert!(from.can_go(to), "{tracking}: {from} -> {to} is not allowed");
            }
            verified += usize::from(to == State::Verified);
            at = to;
        }
        assert_eq!(at, State::Verified, "{tracking}: events end in {at}");
        assert_eq!(verified, 1, "{tracking}: verified {verified} times");
        let seq = crns
            .get(&(tracking.clone(), serial.clone()))
            .unwrap_or_else(|| panic!("{tracking}: its card {serial} has no CRN"));
        assert!(seqs.insert(seq.clone()), "CRN {seq} on two cards");
    }

    // The report shows the floor per station and agrees with the journal.
    let r = floor.report();
    assert_eq!(r["issued"], APPLICATIONS, "{r}");
    assert_eq!(
        (r["failed"].as_u64(), r["spoiled"].as_u64()),
        (Some(0), Some(0)),
        "{r}"
    );
    let per_station = r["per_station"].as_array().unwrap();
    let issued: u64 = per_station
        .iter()
        .map(|s| s["issued"].as_u64().unwrap())
        .sum();
    assert_eq!(
        issued, APPLICATIONS,
        "each verification counted at one station: {r}"
    );
    let names: BTreeSet<&str> = per_station
        .iter()
        .map(|s| s["station"].as_str().unwrap())
        .collect();
    assert!(names.len() >= 2, "work spread over stations: {names:?}");
    assert!(names.iter().all(|n| n.starts_with("station-")), "{names:?}");
    assert!(r["failures"].as_array().unwrap().is_empty(), "{r}");
    assert!(r["stranded"].as_array().unwrap().is_empty(), "{r}");
}
