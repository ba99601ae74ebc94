//! Fault injection, the APDU log and the latency model.

use kart_apdu::{Card, CardError, Command, TransportError};
use kart_sim::vpcd::VirtualCard;
use kart_sim::{Faults, LatencyMode, SimCard};
use kart_testkit::raw::*;
use std::time::{Duration, Instant};

fn test_mode(id: &str) -> SimCard {
    let p = profile(id);
    let mut sim = SimCard::new(&p).unwrap().with_test_mode_writes();
    assert_eq!(raw(&mut sim, &select_aid(p.applet_aid.bytes())).1, 0x9000);
    sim
}

#[test]
fn pulled_card_answers_nothing() {
    let mut sim = test_mode("vendor-b");
    sim.set_faults(Faults::default().pull_after(2));
    assert_eq!(raw(&mut sim, &[0, 0x84, 0, 0, 8]).1, 0x9000);
    let mut rx = Vec::new();
    assert_eq!(
        kart_apdu::Transport::transmit(&mut sim, &[0, 0x84, 0, 0, 8], &mut rx),
        Err(TransportError::CardRemoved)
    );
    assert_eq!(VirtualCard::process(&mut sim, &[0, 0x84, 0, 0, 8]), None);
    assert!(sim.is_removed());
    // Back in the reader: volatile state gone (card manager selected), data kept.
    sim.reinsert();
    assert_eq!(raw(&mut sim, &[0, 0x20, 0, 0x81]).1, 0x6D00);
}

#[test]
fn torn_update_leaves_old_or_new_content_never_a_mix() {
    for id in &profile_ids() {
        let p = profile(id);
        let mut sim = test_mode(id);
        let old = vec![0x0A; 200];
        let new = vec![0x0B; 200];
        assert_eq!(raw(&mut sim, &select_fid(0x011D)).1, 0x9000);
        assert_eq!(raw(&mut sim, &case3(0, 0xD6, 0, 0, &old)).1, 0x9000);
        // The card's 2nd UPDATE BINARY (counted since manufacture) loses power mid-write.
        sim.set_faults(Faults::default().tear_update(2));
        let mut rx = Vec::new();
        let torn = kart_apdu::Transport::transmit(&mut sim, &case3(0, 0xD6, 0, 0, &new), &mut rx);
        assert_eq!(torn, Err(TransportError::CardRemoved), "{id}");
        sim.reinsert();
        assert_eq!(raw(&mut sim, &select_aid(p.applet_aid.bytes())).1, 0x9000);
        let mut card = Card::with_caps(&mut sim, p.caps());
        assert_eq!(
            read_file(&mut card, 0x011D).unwrap(),
            old,
            "{id}: torn write must leave the old content"
        );
        // Written again without a fault: the new content, whole.
        write_file(&mut card, 0x011D, &new);
        assert_eq!(read_file(&mut card, 0x011D).unwrap(), new, "{id}");
    }
}

#[test]
fn garbage_answers_are_reported_not_trusted() {
    let p = profile("vendor-b");
    let mut sim = SimCard::new(&p).unwrap();
    sim.set_faults(Faults::default().garbage_from(1));
    let mut card = Card::with_caps(sim, p.caps());
    let mut malformed = 0;
    for _ in 0..50 {
        // Random bytes of 2..5 may look like a response; the session must not panic on them.
        if let Err(CardError::MalformedResponse(n)) =
            card.send(&Command::new(0, 0x84, 0, 0).with_le(8).unwrap())
        {
            assert!(n < 2);
            malformed += 1;
        }
    }
    // P(len < 2) = 2/6 per answer: 50 answers with none short is (4/6)^50 ≈ 2e-9.
    assert!(malformed > 0);
}

#[test]
fn slow_card_takes_at_least_the_delay() {
    let mut sim = test_mode("vendor-c");
    sim.set_faults(Faults::default().slow_from(1, Duration::from_millis(30)));
    let start = Instant::now();
    assert_eq!(raw(&mut sim, &[0, 0x84, 0, 0, 8]).1, 0x9000);
    assert!(start.elapsed() >= Duration::from_millis(30));
}

#[test]
fn log_counts_apdus_and_bytes_per_instruction() {
    let mut sim = test_mode("vendor-a");
    sim.clear_log();
    raw(&mut sim, &[0, 0x84, 0, 0, 8]);
    raw(&mut sim, &[0, 0x84, 0, 0, 8]);
    raw(&mut sim, &select_fid(0x011D));
    raw(&mut sim, &[0, 0x7E, 0, 0]);
    let log = sim.log();
    assert_eq!(log.apdus(), 4);
    assert_eq!(log.count(0x84), 2);
    assert_eq!(log.counts_by_ins().get(&0xA4), Some(&1));
    assert_eq!(log.command_bytes(), 5 + 5 + 7 + 4);
    assert_eq!(log.response_bytes(), 10 + 10 + 2 + 2);
    assert_eq!(log.entries()[3].sw, 0x6D00);
}

#[test]
fn accounted_latency_follows_the_profile_model() {
    // vendor-a: 3500 µs per command, 190 µs per byte, atomic writes
    // 2200 µs per 256 bytes (applets-spec/profiles/vendor-a.toml).
    let mut sim = test_mode("vendor-a");
    sim.set_latency(LatencyMode::Accounted);
    sim.clear_log();
    raw(&mut sim, &[0, 0x84, 0, 0, 8]); // 5 + 10 bytes
    assert_eq!(sim.modelled_time(), Duration::from_micros(3500 + 15 * 190));
    raw(&mut sim, &select_fid(0x011D)); // 7 + 2 bytes
    raw(&mut sim, &case3(0, 0xD6, 0, 0, &[1; 100])); // 105 + 2 bytes, 100 written
    let want = (3500 + 15 * 190) + (3500 + 9 * 190) + (3500 + 107 * 190 + 100 * 2200 / 256);
    assert_eq!(sim.modelled_time(), Duration::from_micros(want));
}

/// The modelled time of one GENERATE ASYMMETRIC KEY PAIR on a fresh
/// vendor-d card (key generation drawn from seed 1) in a secure channel at
/// `level`, and its command and response lengths.
fn secured_generate(level: kart_apdu::gp::SecurityLevel) -> (Duration, u64, u64) {
    let p = profile("vendor-d");
    let mut sim = SimCard::new(&p).unwrap();
    sim.set_latency_seed(1);
    sim.set_latency(LatencyMode::Accounted);
    let inner = applet_selected(sim);
    let (keys, params) = host_keys(&p);
    let mut ch = kart_apdu::gp::SecureChannel::open(inner, &keys, &params, level)
        .unwrap_or_else(|e| panic!("open channel: {}", e.error));
    ch.inner_mut().transport_mut().clear_log();
    let generate = Command::new(0x00, 0x47, 0x80, 0x01).with_le(256).unwrap();
    assert!(ch.send(&generate).unwrap().is_success());
    let sim = ch.inner_mut().transport();
    let entry = sim.log().entries()[0];
    (
        sim.modelled_time(),
        entry.command_bytes as u64,
        entry.response_bytes as u64,
    )
}

#[test]
fn accounted_latency_charges_the_cipher_for_an_r_mac_response() {
    // vendor-d (applets-spec/profiles/vendor-d.toml): 30 µs per byte,
    // secure-messaging cipher and MAC 9000 µs per 256 bytes. Under R-MAC
    // the card MACs its answer as it checks the command's MAC: both go
    // through its cipher. The same card seed draws the same key generation
    // time at both levels, so the difference is transfer and cipher alone.
    use kart_apdu::gp::SecurityLevel;
    let (plain, c, r) = secured_generate(SecurityLevel::C_DEC_C_MAC);
    let (macced, c_m, r_m) = secured_generate(SecurityLevel::C_DEC_C_MAC_R_MAC);
    assert_eq!((c_m, r_m), (c, r + 8), "the answer carries an 8-byte R-MAC");
    let cost =
        |command: u64, response: u64, cipher: u64| (command + response) * 30 + cipher * 9000 / 256;
    let want = cost(c_m, r_m, c_m + r_m) - cost(c, r, c);
    assert_eq!(macced.checked_sub(plain), Some(Duration::from_micros(want)));
}

/// The modelled time of one GENERATE ASYMMETRIC KEY PAIR on a fresh
/// vendor-c card whose key generation times are drawn from `seed`.
fn keygen_time(seed: u64) -> Duration {
    let mut sim = test_mode("vendor-c");
    sim.set_latency_seed(seed);
    sim.set_latency(LatencyMode::Accounted);
    assert_eq!(raw(&mut sim, &[0, 0x47, 0x80, 0x01, 0x00]).1, 0x9000);
    sim.modelled_time()
}

#[test]
fn accounted_latency_draws_key_generation_from_the_profile_distribution() {
    // vendor-c: GENERATE 5 bytes in, 70 + 2 out at 22 µs per byte, and a
    // key generation drawn around 207 ms (σ 0.2), capped at 470 ms, the
    // card's first 1.5 times slower.
    let fixed = Duration::from_micros(1500 + 77 * 22);
    let times: Vec<Duration> = (1..=40).map(keygen_time).collect();
    for t in &times {
        let keygen = t.checked_sub(fixed).expect("more than the fixed costs");
        assert!(
            keygen > Duration::from_millis(100) && keygen <= Duration::from_millis(705),
            "{keygen:?}"
        );
    }
    // Drawn, not constant; and the same seed draws the same time again.
    assert!(times.iter().any(|t| *t != times[0]), "{times:?}");
    assert_eq!(keygen_time(7), times[6]);
}

#[test]
fn latency_off_by_default() {
    let mut sim = test_mode("vendor-b");
    raw(&mut sim, &[0, 0x84, 0, 0, 8]);
    assert_eq!(sim.modelled_time(), Duration::ZERO);
}

#[test]
fn pin_counters_survive_power_off() {
    let mut sim = test_mode("vendor-b");
    assert_eq!(
        raw(&mut sim, &case3(0, 0x24, 0x01, 0x81, &pin_block("1234"))).1,
        0x9000
    );
    assert_eq!(raw(&mut sim, &verify_id_pin("0000")).1, 0x63C2);
    assert_eq!(raw(&mut sim, &verify_id_pin("1234")).1, 0x9000);
    assert_eq!(raw(&mut sim, &verify_id_pin("0000")).1, 0x63C2);
    sim.power_off();
    sim.power_on();
    let aid = profile("vendor-b").applet_aid.bytes().to_vec();
    assert_eq!(raw(&mut sim, &select_aid(&aid)).1, 0x9000);
    // Still 2 tries, and the earlier verification is gone.
    assert_eq!(raw(&mut sim, &[0, 0x20, 0, 0x81]).1, 0x63C2);
    assert_eq!(sim.atr(), profile("vendor-b").atr.bytes());
}
