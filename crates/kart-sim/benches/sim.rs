//! What the simulator itself costs per APDU, in process, so that benchmarks
//! of the engine can subtract it; and the latency model's figure for the same
//! work, printed once for comparison.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use kart_apdu::Transport;
use kart_sim::{LatencyMode, SimCard};
use std::hint::black_box;

fn profile(id: &str) -> kart_spec::Profile {
    kart_spec::Spec::embedded()
        .unwrap()
        .profile(id)
        .unwrap()
        .clone()
}

fn selected(id: &str) -> SimCard {
    let p = profile(id);
    let mut sim = SimCard::new(&p).unwrap().with_test_mode_writes();
    let mut select = vec![0x00, 0xA4, 0x04, 0x0C, p.applet_aid.bytes().len() as u8];
    select.extend_from_slice(p.applet_aid.bytes());
    let mut rx = Vec::new();
    sim.transmit(&select, &mut rx).unwrap();
    sim.transmit(&[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x01, 0x1D], &mut rx)
        .unwrap();
    sim
}

fn per_apdu(c: &mut Criterion) {
    let mut rx = Vec::with_capacity(4096);
    let mut sim = selected("vendor-b");
    c.bench_function("sim GET CHALLENGE 8", |b| {
        b.iter(|| {
            sim.transmit(black_box(&[0x00, 0x84, 0x00, 0x00, 0x08]), &mut rx)
                .unwrap();
        });
    });

    let mut update = vec![0x00, 0xD6, 0x00, 0x00, 0xFF];
    update.extend_from_slice(&[0x5A; 255]);
    c.bench_function("sim UPDATE BINARY 255 (atomic)", |b| {
        b.iter(|| sim.transmit(black_box(&update), &mut rx).unwrap());
    });

    let mut big = vec![0x00, 0xD6, 0x00, 0x00, 0x00, 0x08, 0x00];
    big.extend_from_slice(&[0xA5; 2048]);
    sim.transmit(&big, &mut rx).unwrap();
    c.bench_function("sim READ BINARY 2048 (extended)", |b| {
        b.iter(|| {
            sim.transmit(
                black_box(&[0x00, 0xB0, 0x00, 0x00, 0x00, 0x08, 0x00]),
                &mut rx,
            )
            .unwrap();
        });
    });

    // The model's figure for the same UPDATE BINARY on each vendor.
    for p in kart_spec::Spec::embedded().unwrap().profiles {
        let id = p.id.as_str();
        let mut s = selected(id);
        s.set_latency(LatencyMode::Accounted);
        s.clear_log();
        s.transmit(&update, &mut rx).unwrap();
        eprintln!("model: UPDATE BINARY 255 on {id} = {:?}", s.modelled_time());
    }
}

criterion_group!(benches, per_apdu);
criterion_main!(benches);
