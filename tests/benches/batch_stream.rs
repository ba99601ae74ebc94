//! Streaming a large batch into a station (BENCHMARKS.md, table 5): for a
//! generated CSV batch of 100 000 and 1 000 000 rows sharing one tiny JPEG,
//! the rows validated per second while `Station::load_batch` streams them
//! into the journal, the time from the last validated row to the first card
//! issued (the end-of-load report the CLI prints included; a simulated
//! vendor-b card, latency model off), and the process's peak resident set
//! (`VmHWM`) and the journal's size, each size in a fresh child process so
//! that peaks do not mix.
//!
//! `cargo bench -p kart-e2e --bench batch_stream`; `KART_BENCH_ROWS`
//! (default `100000,1000000`) chooses the sizes; `KART_BENCH_PINS=1` gives
//! every row a PIN (the one part of a record the station keeps in memory).

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use kart_e2e::{national_code, tracking_code, Photo, World};
use kart_perso::record::Validator;
use kart_perso::station::{Served, Station, StationFiles};
use kart_sim::LatencyMode;

const CHILD: &str = "KART_BENCH_STREAM_CHILD";

fn main() {
    if let Ok(rows) = std::env::var(CHILD) {
        child(rows.parse().expect("row count"));
        return;
    }
    let sizes: Vec<u64> = std::env::var("KART_BENCH_ROWS")
        .unwrap_or_else(|_| "100000,1000000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let exe = std::env::current_exe().expect("own path");
    let pins = if with_pins() {
        ", a PIN in every row"
    } else {
        ""
    };
    println!("5. Streaming a batch into the station — CSV rows sharing one {}-byte JPEG{pins}, vendor-b card, latency off", Photo::Small.bytes().len());
    println!(
        "{:>9} {:>9} {:>9} {:>10} {:>13} {:>12} {:>12} {:>11}",
        "rows",
        "CSV MB",
        "load s",
        "rows/s",
        "report ms",
        "1st card ms",
        "peak RSS MB",
        "journal MB"
    );
    for rows in sizes {
        let out = kart_testkit::process::run_ok(
            Command::new(&exe).env(CHILD, rows.to_string()),
            "child run",
        );
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
}

/// One size: generate, load, report, issue the first card, peak RSS.
fn child(rows: u64) {
    let world = World::new().expect("bench world");
    let dir = world.dir();
    std::fs::write(dir.join("face.jpg"), Photo::Small.bytes()).expect("photo");
    let batch = dir.join(format!("stream-{rows}.csv"));
    write_batch(&batch, rows);
    let csv_mb = mb(std::fs::metadata(&batch).map_or(0, |m| m.len()));
    let station_dir = dir.join("station");
    std::fs::create_dir_all(&station_dir).expect("station dir");
    let station = Station::open(
        "bench",
        &StationFiles::in_dir(&station_dir),
        world.load_issuer().expect("issuer"),
        world.spec.clone(),
    )
    .expect("station");
    let start = Instant::now();
    let load = station.load_batch(&batch, Validator::new()).expect("load");
    let loaded = Instant::now();
    assert_eq!(load.queued, usize::try_from(rows).unwrap_or(usize::MAX));
    assert!(load.rejected.is_empty(), "{:?}", load.rejected.first());
    let report = station.report().expect("report");
    assert_eq!(report.pending, rows);
    let reported = Instant::now();
    let profile = world.profile("vendor-b").expect("profile");
    let mut card = world.card(profile, 1).expect("card");
    card.set_latency(LatencyMode::Off);
    let served = station
        .serve("reader-0", &mut card, profile)
        .expect("serve");
    assert!(matches!(served, Served::Issued { .. }), "{served:?}");
    let issued = Instant::now();
    let load_s = (loaded - start).as_secs_f64();
    let journal_bytes: u64 = ["journal.db", "journal.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(station_dir.join(f)).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "{:>9} {:>9.1} {:>9.2} {:>10.0} {:>13.0} {:>12.0} {:>12.1} {:>11.1}",
        rows,
        csv_mb,
        load_s,
        f64::from(u32::try_from(rows).unwrap_or(u32::MAX)) / load_s,
        (reported - loaded).as_secs_f64() * 1000.0,
        (issued - loaded).as_secs_f64() * 1000.0,
        peak_rss_kib() / 1024.0,
        mb(journal_bytes),
    );
}

fn with_pins() -> bool {
    std::env::var("KART_BENCH_PINS").is_ok_and(|v| v == "1")
}

/// Writes `rows` valid applications, one holder each, streaming to disk.
fn write_batch(path: &Path, rows: u64) {
    let file = std::fs::File::create(path).expect("batch file");
    let mut out = BufWriter::new(file);
    out.write_all(kart_e2e::CSV_HEADER.as_bytes())
        .expect("write");
    let pins = with_pins();
    for seq in 1..=rows {
        let pin = if pins {
            format!("{:06}", seq % 1_000_000)
        } else {
            String::new()
        };
        writeln!(
            out,
            "{},{},علی,کریمی,حسین,Ali,Karimi,Hossein,1369/06/31,M,{pin},face.jpg,",
            tracking_code(14_040_000_000 + seq),
            national_code(seq),
        )
        .expect("write");
    }
    out.flush().expect("flush");
}

/// `VmHWM` of /proc/self/status, in KiB (0 where there is none).
fn peak_rss_kib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u32>().ok())
        .map_or(0.0, f64::from)
}

fn mb(bytes: u64) -> f64 {
    f64::from(u32::try_from(bytes / 1024).unwrap_or(u32::MAX)) / 1024.0
}
