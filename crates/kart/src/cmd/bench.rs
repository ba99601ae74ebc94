//! `kart bench`: what personalizing a card costs, per vendor profile, on
//! simulated cards with the vendor's latency model. Two measurements:
//!
//! - per card (`Accounted`: the simulator answers at once and adds the
//!   modelled card time to a virtual clock): APDUs, bytes, modelled card
//!   time, and our own software time (wall time minus time spent inside the
//!   simulator);
//! - throughput (`Real`: the simulator sleeps the modelled time, so readers
//!   overlap as real cards do and only our CPU work competes for the cores):
//!   cards per hour with 1, 2, 4, 8 readers in parallel.
//!
//! `cargo bench -p kart-e2e` has the fuller tables; this is the station's
//! own quick check on the machine it runs on.

use super::qa::{sample_record, Scratch};
use super::{Ctx, Outcome};
use crate::error::{CliError, Kind};
use crate::output::table;
use crate::simkeys::sim_config;
use kart_apdu::{Card, Counters, Transport, TransportError};
use kart_perso::card_data::Crn;
use kart_perso::issuer::Issuer;
use kart_perso::personalize::{personalize, probe, Job};
use kart_perso::pin_mailer::Pins;
use kart_perso::record::{IdentityRecord, Photo};
use kart_sim::{LatencyMode, SimCard};
use kart_spec::Profile;
use serde_json::json;
use std::time::{Duration, Instant};

/// `kart bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Vendor profile to measure (repeat for several; default: every profile).
    #[arg(long = "profile", value_name = "PROFILE")]
    profiles: Vec<String>,

    /// Cards personalized one after the other for the per-card figures.
    #[arg(long, default_value_t = 10, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    cards: u32,

    /// Simulated readers working in parallel, one throughput run each.
    #[arg(long, default_value = "1,2,4,8", value_name = "LIST", value_delimiter = ',',
          value_parser = clap::value_parser!(u32).range(1..=64))]
    parallel: Vec<u32>,

    /// Cards each reader personalizes in a throughput run (each takes the
    /// vendor's modelled card time in real time, seconds per card).
    #[arg(long, default_value_t = 2, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=100))]
    reader_cards: u32,

    /// Measure with this issuer's keys (files or a PKCS#11 token) instead
    /// of a throw-away demo issuer.
    #[arg(long, value_name = "DIR")]
    issuer: Option<std::path::PathBuf>,
}

/// One personalized card: what crossed the wire and what the time went to.
struct CardCost {
    counters: Counters,
    /// The vendor model's card time.
    modelled: Duration,
    /// Wall time outside the simulator: our software.
    ours: Duration,
}

/// A province's daily intake, and the shift that must issue it (issue 18).
const SHIFT_CARDS: u32 = 12_000;
/// The shift, hours.
const SHIFT_HOURS: u32 = 8;

/// Per-card means over `cards` cards of one profile.
#[derive(Debug, serde::Serialize)]
struct PerCard {
    cards: u32,
    apdus: f64,
    bytes_sent: f64,
    bytes_received: f64,
    modelled_card_ms: f64,
    our_ms: f64,
    /// The modelled card time's median, p90 and p99 over the cards (key
    /// generation is drawn per key, so cards differ).
    modelled_card_ms_p50: f64,
    modelled_card_ms_p90: f64,
    modelled_card_ms_p99: f64,
    /// Readers one station needs to issue [`SHIFT_CARDS`] cards in
    /// [`SHIFT_HOURS`] hours at the mean modelled card time.
    readers_for_shift: u32,
}

/// One throughput run.
#[derive(Debug, serde::Serialize)]
struct Throughput {
    readers: u32,
    cards: u32,
    seconds: f64,
    cards_per_hour: f64,
}

/// Runs `kart bench`.
pub fn run(args: &Args, ctx: &Ctx) -> Result<Outcome, CliError> {
    let profiles = chosen_profiles(&args.profiles, ctx)?;
    let scratch = Scratch::new()?;
    let now = time::OffsetDateTime::now_utc();
    let issuer = if let Some(dir) = &args.issuer {
        super::personalize::load_issuer(dir)?
    } else {
        kart_perso::pki::create_demo_issuer(&scratch.0.join("issuer"), now)?;
        Issuer::load(&scratch.0.join("issuer"))?
    };
    let record = bench_record(&scratch.0)?;
    let mut results = Vec::new();
    for profile in profiles {
        note(ctx, &format!("{}: per-card costs…", profile.id));
        let per_card = per_card(&issuer, profile, &record, args.cards)?;
        let mut runs = Vec::new();
        for &readers in &args.parallel {
            note(
                ctx,
                &format!("{}: {readers} readers in parallel…", profile.id),
            );
            runs.push(throughput(
                &issuer,
                profile,
                &record,
                readers,
                args.reader_cards,
            )?);
        }
        results.push((profile.id.clone(), per_card, runs));
    }
    show(ctx, &results);
    Ok(Outcome::Ok)
}

/// The photo every bench card carries: the 14 455-byte JPEG of the
/// benchmark tables (`tests/fixtures/photo-typical.jpg`, BENCHMARKS.md), a
/// typical ID-card photo. The photo is most of a card's bytes, so the
/// modelled card time depends on it more than on anything else.
const BENCH_PHOTO: &[u8] = include_bytes!("../../../../tests/fixtures/photo-typical.jpg");

/// The QA sample holder with [`BENCH_PHOTO`] for a photo.
fn bench_record(dir: &std::path::Path) -> Result<IdentityRecord, CliError> {
    let mut record = sample_record(dir)?;
    let path = dir.join("bench-photo.jpg");
    std::fs::write(&path, BENCH_PHOTO)
        .map_err(|e| CliError::new(Kind::Io, format!("cannot write the bench photo: {e}")))?;
    record.photo = Photo::from_bytes(BENCH_PHOTO.to_vec()).map_err(|e| {
        CliError::new(
            Kind::Io,
            format!("the built-in bench photo does not validate: {e}"),
        )
    })?;
    record.photo_path = path;
    Ok(record)
}

/// Where the run is, on stderr (a run takes seconds per card and reader).
fn note(ctx: &Ctx, text: &str) {
    if !ctx.out.json {
        crate::output::eprintln_flushed(text);
    }
}

fn chosen_profiles<'a>(ids: &[String], ctx: &'a Ctx) -> Result<Vec<&'a Profile>, CliError> {
    if ids.is_empty() {
        return Ok(ctx.spec.profiles.iter().collect());
    }
    ids.iter()
        .map(|id| {
            ctx.spec.profile(id).ok_or_else(|| {
                let known: Vec<&str> = ctx.spec.profiles.iter().map(|p| p.id.as_str()).collect();
                CliError::with_hint(
                    Kind::Usage,
                    format!("unknown profile '{}'", kart_spec::input::quote(id)),
                    format!("the profiles are {}", known.join(", ")),
                )
            })
        })
        .collect()
}

/// A transport that adds up the time spent inside the simulated card, so
/// what remains of the wall time is ours.
struct Timed<T> {
    inner: T,
    inside: Duration,
}

impl<T: Transport> Transport for Timed<T> {
    fn transmit(&mut self, apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
        let started = Instant::now();
        let result = self.inner.transmit(apdu, rx);
        self.inside += started.elapsed();
        result
    }
}

/// Probes and personalizes one blank simulated card of `profile`.
fn one_card(
    issuer: &Issuer,
    profile: &Profile,
    record: &IdentityRecord,
    mode: LatencyMode,
) -> Result<CardCost, CliError> {
    let failed = |e: &dyn std::fmt::Display| {
        CliError::new(
            Kind::Card,
            format!("personalizing a simulated {} card failed: {e}", profile.id),
        )
    };
    let mut sim = SimCard::with_config(profile, &sim_config(issuer, profile)?)?;
    sim.set_latency(mode);
    let mut timed = Timed {
        inner: &mut sim,
        inside: Duration::ZERO,
    };
    let started = Instant::now();
    let mut card = Card::with_caps(&mut timed, profile.caps());
    let info = probe(&mut card, profile).map_err(|e| failed(&e))?;
    let pins = Pins::generate(record.pin.as_ref()).map_err(|e| failed(&e))?;
    let crn = Crn::parse("0000000017").map_err(|e| failed(&e))?;
    let now = time::OffsetDateTime::now_utc();
    let job = Job::new(record, &crn, &pins, now.date());
    personalize(&mut card, profile, issuer, &info, &job, now).map_err(|e| failed(&e))?;
    let counters = card.counters();
    let wall = started.elapsed();
    let ours = wall.saturating_sub(timed.inside);
    Ok(CardCost {
        counters,
        modelled: sim.modelled_time(),
        ours,
    })
}

fn per_card(
    issuer: &Issuer,
    profile: &Profile,
    record: &IdentityRecord,
    cards: u32,
) -> Result<PerCard, CliError> {
    let (mut apdus, mut sent, mut received) = (0u64, 0u64, 0u64);
    let mut ours = Duration::ZERO;
    let mut times = Vec::with_capacity(cards as usize);
    for _ in 0..cards {
        let c = one_card(issuer, profile, record, LatencyMode::Accounted)?;
        apdus += c.counters.apdus;
        sent += c.counters.bytes_sent;
        received += c.counters.bytes_received;
        times.push(c.modelled);
        ours += c.ours;
    }
    let modelled: Duration = times.iter().sum();
    let mean_ms = ms(modelled) / f64::from(cards);
    times.sort_unstable();
    Ok(PerCard {
        cards,
        apdus: mean(apdus, cards),
        bytes_sent: mean(sent, cards),
        bytes_received: mean(received, cards),
        modelled_card_ms: mean_ms,
        our_ms: ms(ours) / f64::from(cards),
        modelled_card_ms_p50: ms(quantile(&times, 50)),
        modelled_card_ms_p90: ms(quantile(&times, 90)),
        modelled_card_ms_p99: ms(quantile(&times, 99)),
        readers_for_shift: readers_for_shift(mean_ms),
    })
}

/// The `percent`-th percentile of sorted `times` (nearest rank).
fn quantile(times: &[Duration], percent: usize) -> Duration {
    let rank = (times.len() * percent).div_ceil(100).max(1);
    times.get(rank - 1).copied().unwrap_or_default()
}

/// Readers that issue [`SHIFT_CARDS`] in [`SHIFT_HOURS`] at `card_ms` each.
///
/// Card time only: inserting and removing cards adds the operator's time.
fn readers_for_shift(card_ms: f64) -> u32 {
    let shift_ms = f64::from(SHIFT_HOURS) * 3_600_000.0;
    let readers = (f64::from(SHIFT_CARDS) * card_ms / shift_ms).ceil();
    // At least one; a card time of hours would need more readers than a
    // station has, which u32 still counts.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let readers = readers.clamp(1.0, f64::from(u32::MAX)) as u32;
    readers
}

#[allow(clippy::cast_precision_loss)] // counts of APDUs and bytes, far below 2^52
fn mean(total: u64, n: u32) -> f64 {
    total as f64 / f64::from(n)
}

/// `readers` threads, each personalizing `each` cards that take their
/// modelled time for real.
fn throughput(
    issuer: &Issuer,
    profile: &Profile,
    record: &IdentityRecord,
    readers: u32,
    each: u32,
) -> Result<Throughput, CliError> {
    let started = Instant::now();
    let outcomes: Vec<Result<(), CliError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..readers)
            .map(|_| {
                scope.spawn(|| {
                    (0..each).try_for_each(|_| {
                        one_card(issuer, profile, record, LatencyMode::Real).map(|_| ())
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(CliError::new(
                        Kind::Io,
                        "a bench thread stopped unexpectedly",
                    ))
                })
            })
            .collect()
    });
    outcomes.into_iter().collect::<Result<(), CliError>>()?;
    let seconds = started.elapsed().as_secs_f64();
    let cards = readers * each;
    Ok(Throughput {
        readers,
        cards,
        seconds,
        cards_per_hour: f64::from(cards) * 3600.0 / seconds.max(f64::EPSILON),
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn show(ctx: &Ctx, results: &[(String, PerCard, Vec<Throughput>)]) {
    if ctx.out.json {
        let profiles: Vec<_> = results
            .iter()
            .map(|(id, per_card, runs)| {
                json!({ "profile": id, "per_card": per_card, "throughput": runs })
            })
            .collect();
        ctx.out.json(
            "bench",
            json!({ "profiles": profiles, "photo_bytes": BENCH_PHOTO.len() }),
        );
        return;
    }
    let mut t = table([
        "profile",
        "cards",
        "APDUs/card",
        "bytes sent/card",
        "bytes received/card",
        "modelled card ms",
        "our ms/card",
    ]);
    for (id, c, _) in results {
        t.add_row([
            id.clone(),
            c.cards.to_string(),
            format!("{:.0}", c.apdus),
            format!("{:.0}", c.bytes_sent),
            format!("{:.0}", c.bytes_received),
            format!("{:.0}", c.modelled_card_ms),
            format!("{:.1}", c.our_ms),
        ]);
    }
    ctx.out.line(format!(
        "per card (latency model accounted, cards one after the other, photo {} bytes):",
        BENCH_PHOTO.len()
    ));
    ctx.out.line(t);
    let mut t = table([
        "profile",
        "card ms p50",
        "card ms p90",
        "card ms p99",
        &format!("readers for {SHIFT_CARDS} cards in {SHIFT_HOURS} h"),
    ]);
    for (id, c, _) in results {
        t.add_row([
            id.clone(),
            format!("{:.0}", c.modelled_card_ms_p50),
            format!("{:.0}", c.modelled_card_ms_p90),
            format!("{:.0}", c.modelled_card_ms_p99),
            c.readers_for_shift.to_string(),
        ]);
    }
    ctx.out
        .line("station sizing (modelled card time; operator handling not included):");
    ctx.out.line(t);
    let mut t = table(["profile", "readers", "cards", "seconds", "cards/hour"]);
    for (id, _, runs) in results {
        for r in runs {
            t.add_row([
                id.clone(),
                r.readers.to_string(),
                r.cards.to_string(),
                format!("{:.2}", r.seconds),
                format!("{:.0}", r.cards_per_hour),
            ]);
        }
    }
    ctx.out
        .line("throughput (simulated cards take their modelled time for real):");
    ctx.out.line(t);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_cards_carry_the_typical_photo_of_the_benchmark_tables() {
        let dir = tempfile::tempdir().unwrap();
        let record = bench_record(dir.path()).unwrap();
        // tests/fixtures/photo-typical.jpg, tables 1–3 of BENCHMARKS.md.
        assert_eq!(record.photo.as_bytes().len(), 14_455);
        assert_eq!(std::fs::read(&record.photo_path).unwrap(), BENCH_PHOTO);
    }
}
