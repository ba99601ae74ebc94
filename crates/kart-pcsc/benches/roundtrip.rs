//! Per-APDU round trip through a real pcscd (private, with a vpcd reader and
//! kart-sim's vpcd face as the card): kart-pcsc's `Connection` against a bare
//! `pcsc` crate loop on the same reader and card.
//!
//! `cargo bench -p kart-pcsc --bench roundtrip` (as root; see scripts/setup).

use kart_apdu::Transport;
use kart_pcsc::{ConnectOptions, Pcsc};
use kart_testkit::pcscd::{start_private, wait_card};
use kart_testkit::test_card::TestCard;
use std::ffi::CString;
use std::time::{Duration, Instant};

const GET_CHALLENGE: [u8; 5] = [0x00, 0x84, 0x00, 0x00, 0x08];
const WARMUP: usize = 300;
const N: usize = 5_000;
const ROUNDS: usize = 3;

fn main() {
    let pcscd = start_private(1);
    let reader = pcscd.readers()[0].clone();
    let card =
        kart_sim::vpcd::serve(("127.0.0.1", reader.port), TestCard::t1()).expect("serve the card");
    wait_card(&reader.name, true);

    let mut ours = Vec::new();
    let mut raw = Vec::new();
    for _ in 0..ROUNDS {
        ours.push(kart_pcsc_loop(&reader.name));
        raw.push(raw_pcsc_loop(&reader.name));
    }
    let best = |v: &[Duration]| v.iter().min().copied().unwrap_or_default();
    let (o, r) = (best(&ours), best(&raw));
    println!("per-APDU round trip (GET CHALLENGE, 8 bytes), best of {ROUNDS} rounds of {N}:");
    println!("  raw pcsc crate loop : {:>8.1} µs", micros(r));
    println!("  kart-pcsc Connection: {:>8.1} µs", micros(o));
    println!(
        "  ratio kart-pcsc / raw: {:.2}",
        o.as_secs_f64() / r.as_secs_f64()
    );
    println!(
        "  all rounds (µs) raw {:?} ours {:?}",
        fmt_rounds(&raw),
        fmt_rounds(&ours)
    );
    drop(card.stop());
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn fmt_rounds(v: &[Duration]) -> Vec<String> {
    v.iter().map(|d| format!("{:.1}", micros(*d))).collect()
}

/// Mean time per APDU through kart-pcsc.
fn kart_pcsc_loop(reader: &str) -> Duration {
    let mut conn = Pcsc::establish()
        .unwrap()
        .connect(reader, ConnectOptions::default())
        .unwrap();
    let mut rx = Vec::new();
    for _ in 0..WARMUP {
        conn.transmit(&GET_CHALLENGE, &mut rx).unwrap();
    }
    let t = Instant::now();
    for _ in 0..N {
        conn.transmit(&GET_CHALLENGE, &mut rx).unwrap();
        assert_eq!(rx.len(), 10);
    }
    t.elapsed() / N as u32
}

/// Mean time per APDU with the `pcsc` crate alone.
fn raw_pcsc_loop(reader: &str) -> Duration {
    let ctx = pcsc::Context::establish(pcsc::Scope::User).unwrap();
    let name = CString::new(reader).unwrap();
    let card = ctx
        .connect(&name, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
        .unwrap();
    let mut buf = [0u8; pcsc::MAX_BUFFER_SIZE];
    for _ in 0..WARMUP {
        card.transmit(&GET_CHALLENGE, &mut buf).unwrap();
    }
    let t = Instant::now();
    for _ in 0..N {
        let r = card.transmit(&GET_CHALLENGE, &mut buf).unwrap();
        assert_eq!(r.len(), 10);
    }
    let per = t.elapsed() / N as u32;
    let _ = card.disconnect(pcsc::Disposition::LeaveCard);
    per
}
