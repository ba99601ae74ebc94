//! The test profile `vendor-x-faulty`: each planted defect does what its name
//! says, against the README clause it breaks; its cards otherwise behave.

use kart_sim::SimCard;
use kart_testkit::raw::*;
use std::time::{Duration, Instant};

fn faulty() -> SimCard {
    let spec = spec();
    let p = spec.test_profile("vendor-x-faulty").expect("test profile");
    SimCard::new(p).unwrap().with_test_mode_writes()
}

fn select_applet(sim: &mut SimCard) {
    let aid = sim.profile().applet_aid.bytes().to_vec();
    assert_eq!(raw(sim, &select_aid(&aid)).1, 0x9000);
}

#[test]
fn faulty_profile_is_kept_apart_from_the_vendors() {
    let spec = spec();
    assert!(spec.profiles.iter().all(|p| p.id != "vendor-x-faulty"));
    let x = spec.test_profile("vendor-x-faulty").unwrap();
    assert_eq!(x.test.planted_defects.len(), 5);
    // Its cards are never taken for a vendor's by their ATR.
    assert!(x.matches_atr(x.atr.bytes()));
    assert!(spec.profile_for_atr(x.atr.bytes()).is_none());
    assert!(spec.profiles.iter().all(|p| !x.matches_atr(p.atr.bytes())));
}

#[test]
fn unknown_instruction_answers_6f00_instead_of_6d00() {
    let mut sim = faulty();
    select_applet(&mut sim);
    assert_eq!(raw(&mut sim, &[0x00, 0x7E, 0x00, 0x00]).1, 0x6F00);
    // README §8 wants 6D00, as a conforming card answers.
    let mut good = SimCard::new(&profile("vendor-b")).unwrap();
    select_applet(&mut good);
    assert_eq!(raw(&mut good, &[0x00, 0x7E, 0x00, 0x00]).1, 0x6D00);
}

#[test]
fn wrong_pin_is_answered_but_not_counted() {
    let mut sim = faulty();
    select_applet(&mut sim);
    let set = case3(0x00, 0x24, 0x01, 0x81, &pin_block("1234"));
    assert_eq!(raw(&mut sim, &set).1, 0x9000);
    let wrong = case3(0x00, 0x20, 0x00, 0x81, &pin_block("9999"));
    for _ in 0..5 {
        assert_eq!(raw(&mut sim, &wrong).1, 0x63C3, "never counts down");
    }
    let right = case3(0x00, 0x20, 0x00, 0x81, &pin_block("1234"));
    assert_eq!(raw(&mut sim, &right).1, 0x9000, "never blocks");
}

#[test]
fn get_challenge_is_a_counter() {
    let mut sim = faulty();
    select_applet(&mut sim);
    let a = raw(&mut sim, &[0x00, 0x84, 0x00, 0x00, 0x08]);
    let b = raw(&mut sim, &[0x00, 0x84, 0x00, 0x00, 0x08]);
    assert_eq!(a, (vec![0, 0, 0, 0, 0, 0, 0, 1], 0x9000));
    assert_eq!(b, (vec![0, 0, 0, 0, 0, 0, 0, 2], 0x9000));
}

#[test]
fn get_data_takes_at_least_400_ms() {
    let mut sim = faulty();
    select_applet(&mut sim);
    let start = Instant::now();
    assert_eq!(raw(&mut sim, &[0x00, 0xCA, 0xDF, 0x71, 0x00]).1, 0x9000);
    assert!(start.elapsed() >= Duration::from_millis(400));
}

#[test]
fn tear_next_update_tears_exactly_the_next_write() {
    let mut sim = SimCard::new(&profile("vendor-b"))
        .unwrap()
        .with_test_mode_writes();
    select_applet(&mut sim);
    assert_eq!(raw(&mut sim, &select_fid(0x0201)).1, 0x9000);
    let write = |v: u8| case3(0x00, 0xD6, 0x00, 0x00, &[v; 16]);
    assert_eq!(raw(&mut sim, &write(1)).1, 0x9000);
    sim.tear_next_update();
    let mut rx = Vec::new();
    assert!(kart_apdu::Transport::transmit(&mut sim, &write(2), &mut rx).is_err());
    sim.reinsert();
    select_applet(&mut sim);
    assert_eq!(raw(&mut sim, &select_fid(0x0201)).1, 0x9000);
    let (old, sw) = raw(&mut sim, &[0x00, 0xB0, 0x00, 0x00, 0x10]);
    assert_eq!((old, sw), (vec![1; 16], 0x9000), "the old content survives");
}
