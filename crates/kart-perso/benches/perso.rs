//! Software cost of personalization, card time excluded: the plan alone,
//! and a whole card (probe, secure channel, key generation, two holder
//! certificates, the security object, PINs, lock) on an in-process simulated
//! card of each vendor profile with its latency model off. The modelled card
//! time is printed once per profile for comparison.
//!
//! `cargo bench -p kart-perso --bench perso`

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use kart_apdu::Card;
use kart_perso::card_data::{CardFacts, Crn};
use kart_perso::issuer::Issuer;
use kart_perso::personalize::{personalize, probe, Job};
use kart_perso::pin_mailer::Pins;
use kart_perso::plan::{self, Lifecycle, PlanInput};
use kart_perso::record::{Batch, BatchFormat, IdentityRecord, SolarDate, Validator};
use kart_sim::{LatencyMode, SimCard, SimConfig};
use kart_spec::{Profile, Spec};

fn jpeg(len: usize) -> Vec<u8> {
    let mut j = vec![0xFF, 0xD8, 0xFF, 0xE0];
    j.resize(len - 2, 0x5A);
    j.extend_from_slice(&[0xFF, 0xD9]);
    j
}

fn record(dir: &std::path::Path) -> IdentityRecord {
    std::fs::write(dir.join("face.jpg"), jpeg(12_000)).unwrap();
    let csv = "tracking_code,national_code,given_name_fa,family_name_fa,father_name_fa,given_name_en,family_name_en,father_name_en,birth_date,gender,photo\n\
               140409040007,0012345679,علی,کریمی,حسین,ALI,KARIMI,HOSSEIN,1369/06/30,M,face.jpg\n";
    let today = Validator::as_of(SolarDate::parse("1404/09/04").unwrap());
    Batch::from_reader(csv.as_bytes(), BatchFormat::Csv, dir.to_owned(), today)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
}

/// A demo issuer with distinct random ENC, MAC and DEK per master key set,
/// as `kart issuer init` makes it.
fn issuer(dir: &std::path::Path) -> Issuer {
    kart_perso::pki::create_demo_issuer(dir, time::OffsetDateTime::now_utc()).unwrap();
    Issuer::load(dir).unwrap()
}

/// A blank card keyed with `issuer`'s master key set for `profile`.
fn sim(issuer: &Issuer, profile: &Profile, latency: LatencyMode) -> SimCard {
    let (keys, _) = issuer.channel_keys(profile).unwrap();
    let mut card =
        SimCard::with_config(profile, &SimConfig::with_keys([0, 0, 0, 1], keys)).unwrap();
    card.set_latency(latency);
    card
}

fn run(profile: &Profile, issuer: &Issuer, record: &IdentityRecord, sim: &mut SimCard) {
    let mut card = Card::with_caps(sim, profile.caps());
    let info = probe(&mut card, profile).unwrap();
    let crn = Crn::parse("0000000018").unwrap();
    let pins = Pins::generate(None).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let job = Job::new(record, &crn, &pins, now.date());
    black_box(personalize(&mut card, profile, issuer, &info, &job, now).unwrap());
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let record = record(dir.path());
    let issuer = issuer(&dir.path().join("issuer"));
    let spec = Spec::embedded().unwrap();
    let pins = Pins::generate(None).unwrap();
    let facts = CardFacts {
        csn: [0x4B, 0x41, 0, 1, 0, 0, 0, 1],
        crn: Crn::parse("0000000018").unwrap(),
        issued: time::OffsetDateTime::now_utc().date(),
        expires: time::OffsetDateTime::now_utc().date(),
    };
    let mut group = c.benchmark_group("perso");
    group.sample_size(20);
    for profile in &spec.profiles {
        let mut modelled = sim(&issuer, profile, LatencyMode::Accounted);
        run(profile, &issuer, &record, &mut modelled);
        eprintln!(
            "{}: modelled card time {:?} for {} APDUs",
            profile.id,
            modelled.modelled_time(),
            modelled.log().entries().len()
        );
        group.bench_function(format!("plan/{}", profile.id), |b| {
            b.iter(|| {
                plan::build(&PlanInput {
                    record: &record,
                    profile,
                    card: &facts,
                    lifecycle: Lifecycle::PrePersonalized,
                    rewrite: false,
                    pins: &pins,
                })
                .unwrap()
            });
        });
        group.bench_function(format!("card/{}", profile.id), |b| {
            b.iter_batched(
                || sim(&issuer, profile, LatencyMode::Off),
                |mut card| run(profile, &issuer, &record, &mut card),
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(perso, benches);
criterion_main!(perso);
