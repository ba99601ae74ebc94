//! Per-card benchmarks on the simulator, printed as tables (BENCHMARKS.md
//! explains every column):
//!
//! 1. APDUs and bytes per personalized card, per vendor profile, next to the
//!    fewest the profile's limits allow;
//! 2. time per card on the latency model (`Accounted`: virtual clock) against
//!    our own software time, as a percentage of the model;
//! 3. station throughput with 1, 2, 4, 8 and 16 readers in parallel (`Real`:
//!    the simulator sleeps the modelled time, so readers overlap as real
//!    cards do and only our CPU work competes for the two cores).
//!
//! `cargo bench -p kart-e2e --bench perso`; environment:
//! `KART_BENCH_CARDS` cards per profile in table 2 (default 50),
//! `KART_BENCH_READER_CARDS` cards per reader in table 3 (default 4: with
//! 2, one card's first-card costs and vendor B's random key generation
//! weigh more),
//! `KART_BENCH_READERS` (default `1,2,4,8,16`), `KART_BENCH_PROFILES`
//! (default all).

use std::time::{Duration, Instant};

use kart_apdu::{Card, CardCaps, Counters, Transport, TransportError};
use kart_e2e::{Photo, World};
use kart_perso::crn::crn_of;
use kart_perso::personalize::{personalize, probe, Job, Outcome};
use kart_perso::pin_mailer::Pins;
use kart_perso::record::{IdentityRecord, Validator};
use kart_perso::station::{Served, Station, StationFiles};
use kart_sim::{LatencyMode, SimCard};
use kart_spec::{Profile, Scp};

fn main() {
    let world = World::new().expect("bench world");
    let profiles: Vec<Profile> = match std::env::var("KART_BENCH_PROFILES") {
        Ok(list) => list
            .split(',')
            .map(|id| world.profile(id.trim()).expect("profile").clone())
            .collect(),
        Err(_) => world.spec.profiles.clone(),
    };
    let cards = env_number("KART_BENCH_CARDS", 50);
    let records = world
        .batch("bench.csv", 1, cards.max(1), Photo::Typical)
        .expect("records");
    println!("kart per-card benchmarks — photo {} bytes (typical ID photo), latency model per vendor profile\n", Photo::Typical.bytes().len());
    apdus_and_bytes(&world, &profiles, &records[0]);
    time_per_card(&world, &profiles, &records);
    for profile in &profiles {
        throughput(&world, profile);
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A transport that measures the time spent inside the simulated card, so
/// that what remains of the wall time is ours.
struct Timed<T> {
    inner: T,
    inside: Duration,
}

impl<T: Transport> Transport for Timed<T> {
    fn transmit(&mut self, apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
        let t = Instant::now();
        let r = self.inner.transmit(apdu, rx);
        self.inside += t.elapsed();
        r
    }
    fn capabilities(&self) -> CardCaps {
        self.inner.capabilities()
    }
}

/// One card through probe and personalization on the engine.
struct Run {
    outcome: Outcome,
    probe: Counters,
    wall: Duration,
    in_card: Duration,
    model: Duration,
}

fn run_one(
    world: &World,
    profile: &Profile,
    record: &IdentityRecord,
    serial: u32,
    mode: LatencyMode,
) -> Run {
    let mut sim = world.card(profile, serial).expect("sim");
    sim.set_latency(mode);
    let mut card = Card::with_caps(
        Timed {
            inner: sim,
            inside: Duration::ZERO,
        },
        profile.caps(),
    );
    let pins = Pins::generate(None).expect("pins");
    let crn = crn_of(i64::from(serial));
    let now = time::OffsetDateTime::now_utc();
    let t = Instant::now();
    let info = probe(&mut card, profile).expect("probe");
    let probe_counters = card.counters();
    let job = Job::new(record, &crn, &pins, now.date());
    let outcome =
        personalize(&mut card, profile, &world.issuer, &info, &job, now).expect("personalize");
    let wall = t.elapsed();
    let timed = card.into_inner();
    let sim = timed.inner;
    Run {
        outcome,
        probe: probe_counters,
        wall,
        in_card: timed.inside,
        model: sim.modelled_time(),
    }
}

/// The fewest APDUs a personalization can take under the profile's limits
/// and the applet spec's command set, for files of these lengths.
fn minimum_apdus(profile: &Profile, file_lengths: &[usize]) -> u64 {
    let form = if profile.limits.extended_length {
        65_535
    } else {
        255
    };
    let max = profile.limits.max_command_data.min(form);
    let block = match profile.secure_channel.scp {
        Scp::Scp02 => 8,
        Scp::Scp03 => 16,
    };
    // C-MAC (8 bytes) and C-DEC padding (ISO 9797-1 method 2: at least one byte).
    let chunk = ((max - 8) / block * block - 1) as u64;
    // SELECT applet, INITIALIZE UPDATE, EXTERNAL AUTHENTICATE, PUT DATA CRN,
    // GENERATE ×2, CHANGE REFERENCE DATA ×3, SET STATUS ×2 (spec §4: 07→0F→83).
    let mut n = 11;
    // A card that answers data only through GET RESPONSE forces one for each
    // command that has data and answers data: INITIALIZE UPDATE, and both
    // GENERATE commands (their data field is the C-MAC).
    if profile.quirks.get_response {
        n += 3;
    }
    for len in file_lengths {
        // SELECT (the spec has no short EF identifiers) + UPDATE BINARY parts.
        n += 1 + (*len as u64).div_ceil(chunk);
    }
    n
}

fn apdus_and_bytes(world: &World, profiles: &[Profile], record: &IdentityRecord) {
    println!("1. APDUs and bytes per personalized card (engine, probe shown apart)");
    println!(
        "{:<10} {:>6} {:>6} {:>7} {:>5} {:>9} {:>9} {:>9} {:>8} {:>6} {:>7}",
        "profile",
        "APDUs",
        "min",
        "excess",
        "GET-R",
        "sent B",
        "recv B",
        "payload B",
        "overhead",
        "probe",
        "probe B"
    );
    for profile in profiles {
        let run = run_one(world, profile, record, 1, LatencyMode::Off);
        let c = run.outcome.counters;
        let lengths: Vec<usize> = run.outcome.files.iter().map(|(_, d)| d.len()).collect();
        let min = minimum_apdus(profile, &lengths);
        // What must reach the card: file contents, CRN (10 digits), three PIN blocks (3 × 8).
        let payload = lengths.iter().sum::<usize>() + 10 + 24;
        println!(
            "{:<10} {:>6} {:>6} {:>+7} {:>5} {:>9} {:>9} {:>9} {:>7.1}% {:>6} {:>7}",
            profile.id,
            c.apdus,
            min,
            i128::from(c.apdus) - i128::from(min),
            c.get_responses,
            c.bytes_sent,
            c.bytes_received,
            payload,
            (float(c.bytes_sent) / float(payload) - 1.0) * 100.0,
            run.probe.apdus,
            run.probe.bytes_sent + run.probe.bytes_received,
        );
    }
    println!();
}

fn time_per_card(world: &World, profiles: &[Profile], records: &[IdentityRecord]) {
    println!("2. Time per card on the latency model (Accounted: virtual clock; {} cards per profile, medians)", records.len());
    println!(
        "{:<10} {:<5} {:>10} {:>10} {:>10} {:>10} {:>9} {:>12} {:>10} {:>10} {:>10}",
        "profile",
        "chip",
        "model ms",
        "ours ms",
        "card ms",
        "total ms",
        "ours/model",
        "cards/h/rdr",
        "mean ms",
        "p90 ms",
        "p99 ms"
    );
    for profile in profiles {
        let mut model = Vec::new();
        let mut ours = Vec::new();
        let mut card = Vec::new();
        for (i, record) in records.iter().enumerate() {
            let run = run_one(
                world,
                profile,
                record,
                100 + u32::try_from(i).unwrap_or(0),
                LatencyMode::Accounted,
            );
            model.push(run.model);
            ours.push(run.wall.saturating_sub(run.in_card));
            card.push(run.in_card);
        }
        let mean = model.iter().sum::<Duration>() / u32::try_from(model.len()).unwrap_or(1).max(1);
        let (m, o, s) = (median(&mut model), median(&mut ours), median(&mut card));
        let total = m + o;
        println!(
            "{:<10} {:<5} {:>10.1} {:>10.2} {:>10.2} {:>10.1} {:>8.2}% {:>12.0} {:>10.1} {:>10.1} {:>10.1}",
            profile.id,
            format!("{:?}", profile.latency.chip_class).to_lowercase(),
            ms(m),
            ms(o),
            ms(s),
            ms(total),
            o.as_secs_f64() / m.as_secs_f64() * 100.0,
            3600.0 / total.as_secs_f64(),
            ms(mean),
            ms(quantile(&model, 90)),
            ms(quantile(&model, 99)),
        );
    }
    println!(
        "   model = the profile's latency model summed over every APDU (probe + personalization);"
    );
    println!("   ours = wall time minus time inside the simulated card (plan, secure channel, certificates, security object);");
    println!("   card = the simulator's own CPU time (not part of a real card's cost);");
    println!("   mean, p90, p99 = the model's card time over the cards (key generation is drawn per key).\n");
}

/// The `percent`-th percentile of sorted `v` (nearest rank).
fn quantile(v: &[Duration], percent: usize) -> Duration {
    let rank = (v.len() * percent).div_ceil(100).max(1);
    v.get(rank - 1).copied().unwrap_or_default()
}

fn throughput(world: &World, profile: &Profile) {
    let per_reader = env_number("KART_BENCH_READER_CARDS", 4);
    let readers: Vec<u64> = std::env::var("KART_BENCH_READERS")
        .unwrap_or_else(|_| "1,2,4,8,16".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    println!(
        "3. Station throughput, {} — Real latency (the simulator sleeps the model), {per_reader} cards per reader,",
        profile.id
    );
    println!("   full station per card: probe, journal, CRN, PIN mailer, personalization, read-back verification");
    println!(
        "{:>7} {:>6} {:>9} {:>10} {:>8} {:>10} {:>11}",
        "readers", "cards", "wall s", "cards/h", "scaling", "efficiency", "CPU ms/card"
    );
    let mut base = None;
    for (run, &n) in readers.iter().enumerate() {
        let dir = tempfile::tempdir().expect("station dir");
        let batch = world
            .write_batch(
                &format!("throughput-{run}.csv"),
                10_000 * (run as u64 + 1),
                n * per_reader,
                Photo::Typical,
            )
            .expect("batch");
        let station = Station::open(
            "bench",
            &StationFiles::in_dir(dir.path()),
            world.load_issuer().expect("issuer"),
            world.spec.clone(),
        )
        .expect("station");
        station.load_batch(&batch, Validator::new()).expect("load");
        let t = Instant::now();
        let cpu = cpu_seconds();
        std::thread::scope(|s| {
            for r in 0..n {
                let station = &station;
                s.spawn(move || {
                    for c in 0..per_reader {
                        let serial = u32::try_from(r * 1000 + c + 1).unwrap_or(0);
                        let mut sim: SimCard = world.card(profile, serial).expect("sim");
                        sim.set_latency(LatencyMode::Real);
                        let served = station
                            .serve(&format!("reader-{r}"), &mut sim, profile)
                            .expect("serve");
                        assert!(matches!(served, Served::Issued { .. }), "{served:?}");
                    }
                });
            }
        });
        let wall = t.elapsed();
        let cpu = cpu_seconds() - cpu;
        let cards = n * per_reader;
        let per_hour = float(cards) / wall.as_secs_f64() * 3600.0;
        let one = *base.get_or_insert(per_hour / float(n));
        println!(
            "{:>7} {:>6} {:>9.2} {:>10.0} {:>7.2}x {:>9.0}% {:>11.1}",
            n,
            cards,
            wall.as_secs_f64(),
            per_hour,
            per_hour / one,
            per_hour / one / float(n) * 100.0,
            cpu * 1000.0 / float(cards),
        );
    }
    println!();
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// CPU time (user + system) of this process so far, from `/proc/self/stat`
/// (fields 14 and 15, in clock ticks of 1/100 s on Linux); 0 elsewhere.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u32>().ok())
            .unwrap_or(0)
    };
    // utime and stime (fields 14 and 15) are at 0-based 11 and 12 after ")".
    (f64::from(ticks(11)) + f64::from(ticks(12))) / 100.0
}

/// Counts as floats for ratios (counts here are far below 2³²).
fn float(n: impl TryInto<u32>) -> f64 {
    f64::from(n.try_into().unwrap_or(u32::MAX))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
