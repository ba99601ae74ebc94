//! Many stations, one journal (BENCHMARKS.md, table 8): for N = 1, 2, 4, 8
//! station processes (`kart personalize --journal postgres://…`, 16
//! simulated readers each) on ONE private `PostgreSQL` 15 server the bench
//! starts, the cards per hour, the scaling against one station, the
//! database's transactions and active milliseconds per card
//! (`pg_stat_database` deltas), the p99 claim latency and the cards per hour
//! at which one `PostgreSQL` core would be the limit: 3 600 000 ms per hour
//! divided by the database's milliseconds per card, once from its active
//! time (a session running a statement, lock and CPU waits included: an
//! upper bound on an oversubscribed machine) and once from the server's CPU
//! time (postmaster and reaped backends, `/proc/PID/stat`). The last
//! columns take each station in its own window (its first claim to its last
//! `verified`): how far apart the stations' first claims were, and the
//! floor's steady rate, the sum of the stations' own rates.
//!
//! By default the CLI's simulated readers answer at once
//! (`LatencyMode::Accounted`): stations run as fast as their CPU lets them
//! and the database sees the most load per second. The stations inherit
//! `KART_SIM_LATENCY` (`real`, `real/N`): their cards then take the
//! latency model's time, or a share of it.
//!
//! `cargo bench -p kart-e2e --bench floor --profile dev` (or release). The
//! `kart` binary must be built first (`cargo build -p kart`, same profile):
//! `KART_BIN` names it, else it is looked for next to the bench's own
//! profile directory, then in `target/debug`. `KART_FLOOR_STATIONS`
//! (default `1,2,4,8`), `KART_FLOOR_CARDS` (cards per run, default 256) and
//! `KART_FLOOR_PROFILE` (default `vendor-a`) choose the runs;
//! `KART_FLOOR_CARDS_PER_READER` instead gives every run N × 16 × that
//! many cards, the same work per reader whatever N;
//! `KART_FLOOR_SIM_DIR=1` keeps the stations' simulated cards on disk
//! (`--sim-dir`, as before 2026-12-02; the default keeps them in memory);
//! `KART_FLOOR_PHOTO` (`small`, the default: 840 bytes; or `typical`:
//! 14 455 bytes, the photo of tables 1–3) the batch's photo. The photo is
//! most of a card's bytes: at real card speed a vendor-A station card takes
//! about 3.6 s with the small photo and 13.5 s with the typical one.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use kart_e2e::{national_code, tracking_code, Photo};
use kart_pg_harness::PgServer;

const READERS: usize = 16;

fn main() {
    let stations: Vec<usize> = list("KART_FLOOR_STATIONS", "1,2,4,8");
    let cards: u64 = number("KART_FLOOR_CARDS").unwrap_or(256);
    // The same work per reader whatever N: N × 16 × this many cards a run.
    let per_reader: Option<u64> = number("KART_FLOOR_CARDS_PER_READER");
    let profile = std::env::var("KART_FLOOR_PROFILE").unwrap_or_else(|_| "vendor-a".into());
    let kart = kart_bin();
    // The stations inherit it: `kart personalize --sim-latency`.
    let latency = std::env::var("KART_SIM_LATENCY").unwrap_or_else(|_| "accounted".into());
    let photo = match std::env::var("KART_FLOOR_PHOTO").as_deref() {
        Ok("typical") => Photo::Typical,
        Ok("small") | Err(_) => Photo::Small,
        Ok(other) => panic!("KART_FLOOR_PHOTO={other}: small or typical"),
    };
    println!(
        "8. Many stations, one PostgreSQL journal — {READERS} × sim:{profile} per station, KART_SIM_LATENCY={latency}, {cards} cards per run, photo {} bytes, kart = {}",
        photo.bytes().len(),
        kart.display()
    );
    println!(
        "{:>8} {:>6} {:>8} {:>9} {:>11} {:>8} {:>6} {:>11} {:>14} {:>8} {:>10} {:>10} {:>12} {:>16} {:>13} {:>16} {:>14} {:>14} {:>14}",
        "stations",
        "cards",
        "wall s",
        "window s",
        "cards/hour",
        "scaling",
        "effic.",
        "CPU ms/card",
        "PG CPU ms/card",
        "xact/card",
        "db ms/card",
        "claim p50",
        "claim p99 ms",
        "limit active c/h",
        "limit CPU c/h",
        "sessions/station",
        "start spread s",
        "steady c/h",
        "steady scaling"
    );
    let (mut base, mut steady_base) = (None, None);
    for n in stations {
        let cards = per_reader.map_or(cards, |c| c * (n * READERS) as u64);
        let run = run(&kart, n, cards, &profile, photo);
        let rate = run.cards_per_hour();
        let scale = rate / *base.get_or_insert(rate / float(n));
        let steady_scale =
            run.steady_per_hour / *steady_base.get_or_insert(run.steady_per_hour / float(n));
        println!(
            "{n:>8} {:>6} {:>8.2} {:>9.2} {:>11.0} {:>7.2}× {:>5.0} % {:>11.0} {:>14.1} {:>8.1} {:>10.2} {:>10} {:>12} {:>16.0} {:>13.0} {:>16.1} {:>14.2} {:>14.0} {:>13.2}×",
            run.cards,
            run.wall_s,
            run.window_s,
            rate,
            scale,
            100.0 * scale / float(n),
            1000.0 * run.station_cpu_s / float(run.cards),
            1000.0 * run.pg_cpu_s / float(run.cards),
            float(run.xacts) / float(run.cards),
            run.db_ms / float(run.cards),
            run.claim_p50_ms,
            run.claim_p99_ms,
            3.6e6 / (run.db_ms / float(run.cards)),
            3.6e6 / (1000.0 * run.pg_cpu_s / float(run.cards)),
            float(run.sessions) / float(n),
            run.start_spread_s,
            run.steady_per_hour,
            steady_scale,
        );
    }
}

/// The number in environment variable `name`, if set.
fn number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.trim().parse().ok())
}

/// One run's figures.
struct Run {
    cards: u64,
    /// From spawning the stations to the last one's exit.
    wall_s: f64,
    /// From the first claim to the last `verified` event in the journal.
    window_s: f64,
    /// User + system time of the station processes (and the bench's `psql`).
    station_cpu_s: f64,
    /// CPU of the `PostgreSQL` server and its backends.
    pg_cpu_s: f64,
    xacts: u64,
    db_ms: f64,
    /// Database sessions the stations opened.
    sessions: u64,
    claim_p50_ms: i64,
    claim_p99_ms: i64,
    /// From the first station's first claim to the last station's.
    start_spread_s: f64,
    /// The sum over stations of each one's cards per hour in its own
    /// window (its first claim to its last `verified`).
    steady_per_hour: f64,
}

impl Run {
    fn cards_per_hour(&self) -> f64 {
        float(self.cards) * 3600.0 / self.window_s
    }
}

/// N stations on a fresh server and batch, until every card is verified.
fn run(kart: &Path, n: usize, cards: u64, profile: &str, photo: Photo) -> Run {
    let pg = PgServer::start().expect("PostgreSQL (needs root and the postgresql package)");
    let url = pg.url();
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let issuer = dir.join("issuer");
    ok(
        Command::new(kart)
            .args(["issuer", "init"])
            .arg(&issuer)
            .current_dir(dir),
        "kart issuer init",
    );
    let batch = write_batch(dir, cards, photo);
    // Stations loading one batch at the same moment race on the load (a
    // finding of the floor chaos test): station 0 loads it, the others start
    // once every application is in the journal (a head start of the load's
    // time, a few hundred milliseconds).
    let before = db_stats(&pg);
    let cpu_before = children_cpu_seconds();
    let pg_cpu_before = server_cpu_seconds(&pg);
    let start = Instant::now();
    let mut children = vec![station(kart, dir, 0, &url, &issuer, &batch, profile)];
    let mut polls = 0;
    while n > 1 && !loaded(&pg, cards) {
        polls += 1;
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    children.extend((1..n).map(|s| station(kart, dir, s, &url, &issuer, &batch, profile)));
    for (s, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().expect("station exit");
        assert!(
            out.status.success(),
            "station-{s}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let wall_s = start.elapsed().as_secs_f64();
    let station_cpu_s = children_cpu_seconds() - cpu_before;
    // The stations' backends are reaped by the postmaster soon after they
    // exit; a short wait lets their CPU time reach its `cutime`.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let pg_cpu_s = server_cpu_seconds(&pg) - pg_cpu_before;
    let after = db_stats(&pg);
    let verified: u64 = psql(
        &pg,
        "SELECT count(*) FROM applications WHERE state = 'verified'",
    )
    .parse()
    .expect("count");
    assert_eq!(verified, cards, "every application verified");
    let window_ms: f64 = psql(
        &pg,
        "SELECT max(at_ms) FILTER (WHERE to_state = 'verified') - min(at_ms) FILTER (WHERE to_state = 'claimed') FROM events",
    )
    .parse()
    .expect("window");
    let (claim_p50_ms, claim_p99_ms) = claim_latency(&pg);
    let (start_spread_s, steady_per_hour) = per_station(&pg);
    Run {
        cards,
        wall_s,
        window_s: window_ms / 1000.0,
        station_cpu_s,
        pg_cpu_s,
        // Less the bench's own polls of the load (one transaction each).
        xacts: (after.xacts - before.xacts).saturating_sub(polls),
        db_ms: after.active_ms - before.active_ms,
        // Less the bench's own: the polls and the `after` snapshot.
        sessions: (after.sessions - before.sessions).saturating_sub(polls + 1),
        claim_p50_ms,
        claim_p99_ms,
        start_spread_s,
        steady_per_hour,
    }
}

/// Each station's own window, from its first claim to its last `verified`:
/// how far apart the stations started (the processes start together, but
/// on a small machine their start-up takes turns for the cores) and the
/// floor's rate once every station runs, the sum of their own rates. A
/// floor that works a shift pays start-up once; the window of the whole
/// run pays it in every figure.
fn per_station(pg: &PgServer) -> (f64, f64) {
    let out = psql(
        pg,
        "SELECT string_agg(first || ' ' || last || ' ' || verified, ' ') FROM ( \
           SELECT min(at_ms) FILTER (WHERE to_state = 'claimed') AS first, \
                  max(at_ms) FILTER (WHERE to_state = 'verified') AS last, \
                  count(*) FILTER (WHERE to_state = 'verified') AS verified \
           FROM events WHERE station IS NOT NULL GROUP BY station) s",
    );
    let values: Vec<f64> = out
        .split_whitespace()
        .map(|v| v.parse().expect("ms or count"))
        .collect();
    if values.len() < 3 {
        return (0.0, 0.0);
    }
    let (mut first, mut last_first, mut rate) = (f64::MAX, f64::MIN, 0.0);
    for s in values.chunks_exact(3) {
        first = first.min(s[0]);
        last_first = last_first.max(s[0]);
        rate += s[2] * 3.6e6 / (s[1] - s[0]);
    }
    ((last_first - first) / 1000.0, rate)
}

/// Whether all `cards` applications are in the journal (the table exists
/// once the first station opened it).
fn loaded(pg: &PgServer, cards: u64) -> bool {
    pg.psql("SELECT count(*) FROM applications")
        .is_ok_and(|out| out.trim() == cards.to_string())
}

/// `kart personalize` as station `s` with its readers and directories.
fn station(
    kart: &Path,
    dir: &Path,
    s: usize,
    url: &str,
    issuer: &Path,
    batch: &Path,
    profile: &str,
) -> Child {
    let mut cmd = Command::new(kart);
    if keep_cards() {
        cmd.arg("--sim-dir").arg(dir.join(format!("cards-{s}")));
    }
    cmd.args([
        "personalize",
        "--json",
        "--station",
        &format!("station-{s}"),
    ])
    .args([
        "--journal",
        url,
        "--reader",
        &format!("sim:{profile}*{READERS}"),
    ])
    .arg("--issuer")
    .arg(issuer)
    .arg("--station-dir")
    .arg(dir.join(format!("station-{s}")))
    .arg(batch)
    .current_dir(dir)
    .env_remove("KART_PIN")
    .env_remove("KART_ISSUER")
    .env_remove("KART_SIM_DIR")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn a station")
}

/// `KART_FLOOR_SIM_DIR=1`: the stations keep their simulated cards on disk
/// (`--sim-dir`), every command that changes a card rewriting its file
/// with two fsyncs (BENCHMARKS §6). That is the simulator's own cost, not
/// the engine's, so by default the cards live in the station's memory.
fn keep_cards() -> bool {
    std::env::var("KART_FLOOR_SIM_DIR").is_ok_and(|v| v == "1")
}

/// Claim latency as the journal sees it: for every card after a reader's
/// first, the time from that reader's previous `verified` event to its next
/// `claimed` event (the claim transaction plus the reader taking its next
/// simulated card). Percentiles by `percentile_disc`, in milliseconds.
fn claim_latency(pg: &PgServer) -> (i64, i64) {
    let out = psql(
        pg,
        "WITH e AS (SELECT station, reader, to_state, at_ms, \
           lag(to_state) OVER w AS prev_state, lag(at_ms) OVER w AS prev_at \
           FROM events WHERE to_state IN ('claimed', 'verified') \
           WINDOW w AS (PARTITION BY station, reader ORDER BY at_ms, id)) \
         SELECT coalesce(percentile_disc(0.5) WITHIN GROUP (ORDER BY at_ms - prev_at), 0) || ' ' || \
                coalesce(percentile_disc(0.99) WITHIN GROUP (ORDER BY at_ms - prev_at), 0) \
         FROM e WHERE to_state = 'claimed' AND prev_state = 'verified'",
    );
    let mut it = out.split_whitespace().map(|v| v.parse().expect("ms"));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// The `kart` database's counters so far (`pg_stat_database`).
struct DbStats {
    /// `xact_commit + xact_rollback`.
    xacts: u64,
    /// `active_time`, milliseconds (`PostgreSQL` 14+).
    active_ms: f64,
    /// `sessions` established (`PostgreSQL` 14+).
    sessions: u64,
}

fn db_stats(pg: &PgServer) -> DbStats {
    let out = psql(
        pg,
        "SELECT (xact_commit + xact_rollback) || ' ' || active_time || ' ' || sessions FROM pg_stat_database WHERE datname = 'kart'",
    );
    let mut it = out.split_whitespace();
    DbStats {
        xacts: it.next().and_then(|v| v.parse().ok()).expect("xacts"),
        active_ms: it.next().and_then(|v| v.parse().ok()).expect("active_time"),
        sessions: it.next().and_then(|v| v.parse().ok()).expect("sessions"),
    }
}

fn psql(pg: &PgServer, sql: &str) -> String {
    pg.psql(sql).expect("psql").trim().to_owned()
}

fn ok(cmd: &mut Command, what: &str) {
    let out = cmd
        .env_remove("KART_PIN")
        .env_remove("KART_ISSUER")
        .output()
        .expect(what);
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `cards` valid applications of distinct holders sharing one photo.
fn write_batch(dir: &Path, cards: u64, photo: Photo) -> PathBuf {
    std::fs::write(dir.join("face.jpg"), photo.bytes()).expect("photo");
    let mut text = String::from(kart_e2e::CSV_HEADER);
    for seq in 1..=cards {
        writeln!(
            text,
            "{},{},علی,کریمی,حسین,Ali,Karimi,Hossein,1369/06/31,M,,face.jpg,",
            tracking_code(14_040_000_000 + seq),
            national_code(seq),
        )
        .expect("write");
    }
    let path = dir.join("floor.csv");
    std::fs::write(&path, text).expect("batch");
    path
}

/// `KART_BIN`, else `kart` in the bench's profile directory, else in
/// `target/debug`.
fn kart_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("KART_BIN") {
        return bin.into();
    }
    let exe = std::env::current_exe().expect("own path");
    // target/<profile>/deps/floor-HASH
    let profile_dir = exe.parent().and_then(Path::parent).expect("profile dir");
    let candidates = [
        profile_dir.join("kart"),
        profile_dir.with_file_name("debug").join("kart"),
    ];
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .expect("no kart binary: run `cargo build -p kart` (or set KART_BIN)")
}

fn list(var: &str, default: &str) -> Vec<usize> {
    std::env::var(var)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect()
}

/// A count as a float for the figures (counts here are far below 2^32).
fn float(count: impl TryInto<u32>) -> f64 {
    f64::from(count.try_into().unwrap_or(u32::MAX))
}

/// CPU time (user + system) of this process's waited-for children so far
/// (the station processes).
fn children_cpu_seconds() -> f64 {
    let t = stat_ticks("/proc/self/stat");
    t.children
}

/// CPU time of the `PostgreSQL` server: the postmaster's own and that of its
/// backends that have exited and been reaped (the stations' sessions end
/// with the stations); 0 if it cannot be read.
fn server_cpu_seconds(pg: &PgServer) -> f64 {
    pg.pid().map_or(0.0, |pid| {
        let t = stat_ticks(&format!("/proc/{pid}/stat"));
        t.own + t.children
    })
}

/// Seconds of CPU from a `/proc/PID/stat`.
struct Ticks {
    /// `utime` + `stime` (fields 14, 15).
    own: f64,
    /// `cutime` + `cstime` (fields 16, 17).
    children: f64,
}

/// Reads a `/proc/PID/stat` (clock ticks of 1/100 s on Linux); zeros elsewhere.
fn stat_ticks(path: &str) -> Ticks {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u32>().ok())
            .map_or(0.0, f64::from)
    };
    // Field k (1-based) is at 0-based k - 3 after ")".
    Ticks {
        own: (ticks(11) + ticks(12)) / 100.0,
        children: (ticks(13) + ticks(14)) / 100.0,
    }
}
