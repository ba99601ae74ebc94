//! kart-pcsc through the real PC/SC stack: our driver → libpcsclite → a
//! private `pcscd` → the vsmartcard `vpcd` driver → a virtual card on
//! kart-sim's vpcd face (or vsmartcard's own `vicc`).
//!
//! `harness = false`: `main` first re-executes this binary in a private mount
//! namespace (kart-pcscd-harness) so the `pcscd` it starts is the only one
//! libpcsclite sees. Needs root and the packages from `scripts/setup`; without
//! them the run FAILS with a message saying so. Run one test with
//! `cargo test -p kart-pcsc --test stack -- NAME_SUBSTRING`.

use kart_apdu::{Card, CardCaps, Command, Transport, TransportError};
use kart_pcsc::{
    CardArrival, CardState, ConnectOptions, Disposition, EventWatch, Pcsc, PcscError, Protocol,
    ProtocolChoice, ReaderEvent, Share, Watcher, WatcherOptions,
};
use kart_pcscd_harness::runner::{run, Test};
use kart_pcscd_harness::Pcscd;
use kart_sim::vpcd::{serve, VpcdHandle};
use kart_testkit::pcscd::{start_private, wait_card};
use kart_testkit::test_card::{self as support, TestCard};
use std::process::{Child, Command as Process, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// What every test gets: the daemon and its readers.
struct Env {
    pcscd: Pcscd,
}

impl Env {
    fn reader(&self, i: usize) -> &str {
        &self.pcscd.readers()[i].name
    }
    fn port(&self, i: usize) -> u16 {
        self.pcscd.readers()[i].port
    }
    /// Puts `card` into reader `i` and waits until pcscd sees it.
    fn insert(&self, i: usize, card: TestCard) -> VpcdHandle<TestCard> {
        // pcscd notices a card that left at its next poll: wait for that,
        // or the old card's state would be taken for the new one's.
        wait_card(self.reader(i), false);
        let handle = serve(("127.0.0.1", self.port(i)), card).expect("serve the card");
        assert!(
            handle.wait_connected(Duration::from_secs(10)),
            "card not connected to vpcd: {:?}",
            handle.last_error()
        );
        wait_card(self.reader(i), true);
        handle
    }
}

/// Helper mode: `stack --hold-exclusive READER` connects exclusively, says
/// "held", and keeps the card until its stdin closes (another process for
/// the contention test; it inherits the namespace, so it must not re-enter it).
fn hold_exclusive(reader: &str) {
    let conn = Pcsc::establish()
        .and_then(|p| {
            p.connect(
                reader,
                ConnectOptions {
                    share: Share::Exclusive,
                    ..Default::default()
                },
            )
        })
        .expect("helper: exclusive connect");
    println!("held");
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
    drop(conn);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, reader] = args.as_slice() {
        if flag == "--hold-exclusive" {
            hold_exclusive(reader);
            return;
        }
    }
    let pcscd = start_private(5);
    let mut env = Env { pcscd };
    let failed = run(&mut env, &all_tests());
    if !failed.is_empty() {
        println!("--- pcscd log (tail) ---");
        let log = env.pcscd.log();
        let lines: Vec<&str> = log.lines().collect();
        for l in &lines[lines.len().saturating_sub(40)..] {
            println!("{l}");
        }
        std::fs::write("/tmp/kart-last-pcscd.log", &log).ok();
        drop(env); // stops pcscd: exit() would skip it
        std::process::exit(1);
    }
}

/// Every test, in the order they run (the pcscd restart last).
fn all_tests() -> Vec<Test<Env>> {
    vec![
        (
            "lists_readers_with_their_card_state",
            lists_readers_with_their_card_state,
        ),
        (
            "reports_insert_and_remove_events",
            reports_insert_and_remove_events,
        ),
        (
            "reports_existing_readers_and_cards_on_first_wait",
            reports_existing_readers_and_cards_on_first_wait,
        ),
        (
            "cancel_interrupts_an_endless_wait",
            cancel_interrupts_an_endless_wait,
        ),
        (
            "personalizes_over_t1_with_extended_length",
            personalizes_over_t1_with_extended_length,
        ),
        (
            "chains_long_commands_when_extended_length_is_off",
            chains_long_commands_when_extended_length_is_off,
        ),
        (
            "t0_card_answers_through_get_response",
            t0_card_answers_through_get_response,
        ),
        (
            "protocol_mismatch_is_a_typed_error",
            protocol_mismatch_is_a_typed_error,
        ),
        (
            "card_pulled_mid_transaction_is_card_removed",
            card_pulled_mid_transaction_is_card_removed,
        ),
        (
            "exclusive_holder_makes_others_get_sharing_violation",
            exclusive_holder_makes_others_get_sharing_violation,
        ),
        (
            "another_process_holding_the_card_gives_sharing_violation",
            another_process_holding_the_card_gives_sharing_violation,
        ),
        (
            "transaction_blocks_other_transactions_with_a_bounded_wait",
            transaction_blocks_other_transactions_with_a_bounded_wait,
        ),
        (
            "reset_by_another_program_is_card_reset_then_reconnect_works",
            reset_by_another_program_is_card_reset_then_reconnect_works,
        ),
        (
            "slow_card_hits_the_bounded_wait",
            slow_card_hits_the_bounded_wait,
        ),
        (
            "dropping_a_connection_leaves_the_card_unreset",
            dropping_a_connection_leaves_the_card_unreset,
        ),
        (
            "watcher_serves_several_readers_and_one_stuck_reader_stops_no_other",
            watcher_serves_several_readers_and_one_stuck_reader_stops_no_other,
        ),
        (
            "every_vendor_profile_of_the_simulator_personalizes_through_pcscd",
            every_vendor_profile_of_the_simulator_personalizes_through_pcscd,
        ),
        (
            "vicc_card_written_by_others_answers_through_our_driver",
            vicc_card_written_by_others_answers_through_our_driver,
        ),
        (
            "pcscd_restart_is_service_lost_then_reestablish_works",
            pcscd_restart_is_service_lost_then_reestablish_works,
        ),
    ]
}

// ---- helpers

fn pcsc() -> Pcsc {
    Pcsc::establish().expect("pcscd answers")
}

fn connect(reader: &str) -> kart_pcsc::Connection {
    pcsc()
        .connect(reader, ConnectOptions::default())
        .expect("connect")
}

fn update_binary(offset: u16, data: &[u8]) -> Command {
    let [p1, p2] = offset.to_be_bytes();
    Command::new(0x00, 0xD6, p1, p2).with_data(data).unwrap()
}

fn read_binary(offset: u16, ne: u32) -> Command {
    let [p1, p2] = offset.to_be_bytes();
    Command::new(0x00, 0xB0, p1, p2).with_le(ne).unwrap()
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

// ---- tests

fn lists_readers_with_their_card_state(env: &mut Env) {
    let card = env.insert(0, TestCard::t1());
    let readers = pcsc().readers().unwrap();
    let names: Vec<&str> = readers.iter().map(|r| r.name.as_str()).collect();
    for r in env.pcscd.readers() {
        assert!(
            names.contains(&r.name.as_str()),
            "{} missing from {names:?}",
            r.name
        );
    }
    let first = readers.iter().find(|r| r.name == env.reader(0)).unwrap();
    assert_eq!(first.card, CardState::Present);
    assert_eq!(first.atr, support::atr_t1_extended());
    let second = readers.iter().find(|r| r.name == env.reader(1)).unwrap();
    assert_eq!(second.card, CardState::Absent);
    assert!(second.atr.is_empty());
    drop(card);
}

fn reports_insert_and_remove_events(env: &mut Env) {
    let p = pcsc();
    let reader = env.reader(1).to_owned();
    let mut watch = EventWatch::reader(&reader);
    // Empty reader: nothing to report; the wait ends at its timeout.
    let t = Instant::now();
    assert_eq!(
        p.wait_events(&mut watch, Some(Duration::from_millis(300)))
            .unwrap(),
        vec![]
    );
    assert!(t.elapsed() >= Duration::from_millis(300));

    let card = serve(("127.0.0.1", env.port(1)), TestCard::t1()).unwrap();
    let events = p
        .wait_events(&mut watch, Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(
        events,
        vec![ReaderEvent::CardInserted {
            reader: reader.clone(),
            atr: support::atr_t1_extended()
        }]
    );
    card.pull();
    let events = p
        .wait_events(&mut watch, Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(
        events,
        vec![ReaderEvent::CardRemoved {
            reader: reader.clone()
        }]
    );
    card.insert();
    let events = p
        .wait_events(&mut watch, Some(Duration::from_secs(10)))
        .unwrap();
    assert!(
        matches!(&events[..], [ReaderEvent::CardInserted { .. }]),
        "{events:?}"
    );
    drop(card.stop());
    wait_card(&reader, false);
}

fn reports_existing_readers_and_cards_on_first_wait(env: &mut Env) {
    let _card = env.insert(2, TestCard::t1());
    let p = pcsc();
    let mut watch = EventWatch::all_readers();
    let events = p
        .wait_events(&mut watch, Some(Duration::from_secs(5)))
        .unwrap();
    let added: Vec<&ReaderEvent> = events
        .iter()
        .filter(|e| matches!(e, ReaderEvent::ReaderAdded(_)))
        .collect();
    assert_eq!(added.len(), env.pcscd.readers().len(), "{events:?}");
    // The card already in reader 2 is reported next.
    let events = p
        .wait_events(&mut watch, Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(
        events,
        vec![ReaderEvent::CardInserted {
            reader: env.reader(2).to_owned(),
            atr: support::atr_t1_extended()
        }]
    );
    // Nothing else happens.
    assert_eq!(
        p.wait_events(&mut watch, Some(Duration::from_millis(200)))
            .unwrap(),
        vec![]
    );
}

fn cancel_interrupts_an_endless_wait(env: &mut Env) {
    let p = pcsc();
    let canceller = p.canceller();
    let reader = env.reader(3).to_owned();
    let waiter = std::thread::spawn(move || {
        let mut watch = EventWatch::reader(&reader);
        let first = p.wait_events(&mut watch, Some(Duration::ZERO));
        let t = Instant::now();
        (first, p.wait_events(&mut watch, None), t.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    canceller.cancel();
    let (first, second, waited) = waiter.join().unwrap();
    assert_eq!(first, Ok(vec![]));
    assert_eq!(second, Err(PcscError::Cancelled));
    assert!(waited < Duration::from_secs(2), "cancel took {waited:?}");
}

fn personalizes_over_t1_with_extended_length(env: &mut Env) {
    let test_card = TestCard::t1();
    let log = Arc::clone(&test_card.log);
    let card = env.insert(1, test_card);
    let mut conn = connect(env.reader(1));
    assert_eq!(conn.protocol(), Protocol::T1);
    let caps = conn.capabilities();
    assert!(
        caps.extended_length && caps.chaining,
        "caps from the ATR: {caps:?}"
    );
    let data = pattern(1500);
    {
        let mut tx = conn.transaction().unwrap();
        let mut session = Card::new(&mut tx);
        session
            .send_ok(
                &Command::new(0x00, 0xA4, 0x00, 0x0C)
                    .with_data(&[0x3F, 0x00])
                    .unwrap(),
            )
            .unwrap();
        session.send_ok(&update_binary(0, &data)).unwrap();
        let back = session.send_ok(&read_binary(0, 1500)).unwrap();
        assert_eq!(back, data);
        // Three logical commands, three APDUs: no chaining, no GET RESPONSE.
        assert_eq!(session.counters().apdus, 3);
        drop(session);
        tx.end(Disposition::Leave).unwrap();
    }
    let log = log.lock().unwrap();
    let write = &log.apdus[log.apdus.len() - 2];
    assert_eq!(
        write.len(),
        4 + 3 + 1500,
        "the write crossed pcscd as one extended APDU"
    );
    drop(log);
    drop(conn);
    drop(card.stop());
}

fn chains_long_commands_when_extended_length_is_off(env: &mut Env) {
    let test_card = TestCard::t1();
    let log = Arc::clone(&test_card.log);
    let card = env.insert(1, test_card);
    let mut conn = connect(env.reader(1));
    // A vendor profile that says: short APDUs only, chaining allowed.
    conn.set_capabilities(CardCaps {
        chaining: true,
        ..CardCaps::SHORT_ONLY
    });
    let data = pattern(600);
    let mut session = Card::new(&mut conn);
    session.send_ok(&update_binary(16, &data)).unwrap();
    assert_eq!(session.counters().chained_parts, 2);
    let mut back = session.send_ok(&read_binary(16, 256)).unwrap();
    back.extend(session.send_ok(&read_binary(16 + 256, 256)).unwrap());
    back.extend(session.send_ok(&read_binary(16 + 512, 88)).unwrap());
    assert_eq!(back, data);
    drop(session);
    let log = log.lock().unwrap();
    let chained: Vec<u8> = log.apdus.iter().take(3).map(|a| a[0]).collect();
    assert_eq!(
        chained,
        [0x10, 0x10, 0x00],
        "CLA chaining bit on all parts but the last"
    );
    assert!(log.apdus.iter().all(|a| a.len() <= 261));
    drop(log);
    drop(conn);
    drop(card.stop());
}

fn t0_card_answers_through_get_response(env: &mut Env) {
    let card = env.insert(2, TestCard::t0());
    let mut conn = pcsc()
        .connect(
            env.reader(2),
            ConnectOptions {
                protocol: ProtocolChoice::T0,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(conn.protocol(), Protocol::T0);
    assert_eq!(conn.atr(), support::atr_t0());
    assert_eq!(conn.capabilities(), CardCaps::SHORT_ONLY);
    let mut session = Card::new(&mut conn);
    let challenge = session
        .send_ok(&Command::new(0x00, 0x84, 0x00, 0x00).with_le(8).unwrap())
        .unwrap();
    assert_eq!(challenge.len(), 8);
    session.send_ok(&update_binary(0, &pattern(200))).unwrap();
    assert_eq!(session.send_ok(&read_binary(0, 200)).unwrap(), pattern(200));
    let c = session.counters();
    assert_eq!((c.commands, c.get_responses), (3, 2), "{c:?}");
    drop(session);
    drop(conn);
    drop(card.stop());
}

fn protocol_mismatch_is_a_typed_error(env: &mut Env) {
    let card = env.insert(2, TestCard::t0());
    let err = pcsc()
        .connect(
            env.reader(2),
            ConnectOptions {
                protocol: ProtocolChoice::T1,
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, PcscError::ProtocolMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains(env.reader(2)));
    drop(card.stop());
}

fn card_pulled_mid_transaction_is_card_removed(env: &mut Env) {
    let card = env.insert(3, TestCard::t1().pulled_on(3));
    let mut conn = connect(env.reader(3));
    let mut tx = conn.transaction().unwrap();
    let mut session = Card::new(&mut tx);
    session.send_ok(&update_binary(0, &pattern(100))).unwrap();
    session.send_ok(&update_binary(100, &pattern(100))).unwrap();
    let err = session
        .send_ok(&update_binary(200, &pattern(100)))
        .unwrap_err();
    assert_eq!(
        err,
        kart_apdu::CardError::Transport(TransportError::CardRemoved),
        "{err}"
    );
    drop(session);
    drop(tx);
    // The typed PC/SC error says what happened, and its hint what to do.
    let removed = PcscError::CardRemoved(env.reader(3).to_owned());
    assert!(removed.to_string().contains(env.reader(3)));
    assert!(removed.hint().is_some_and(|h| h.contains("put it back")));
    drop(conn);
    drop(card.stop());
    wait_card(env.reader(3), false);
}

fn exclusive_holder_makes_others_get_sharing_violation(env: &mut Env) {
    let card = env.insert(4, TestCard::t1());
    let exclusive = ConnectOptions {
        share: Share::Exclusive,
        ..Default::default()
    };
    let holder = pcsc().connect(env.reader(4), exclusive).unwrap();
    let err = pcsc()
        .connect(env.reader(4), ConnectOptions::default())
        .unwrap_err();
    assert_eq!(err, PcscError::SharingViolation(env.reader(4).to_owned()));
    assert!(err.to_string().contains("in use by another program"));
    assert_eq!(TransportError::from(err), TransportError::SharingViolation);
    drop(holder);
    // Once released, others get in.
    let shared = pcsc().connect(env.reader(4), ConnectOptions::default());
    assert!(shared.is_ok(), "{shared:?}");
    drop(shared);
    drop(card.stop());
}

fn another_process_holding_the_card_gives_sharing_violation(env: &mut Env) {
    let card = env.insert(4, TestCard::t1());
    let mut other = Process::new(std::env::current_exe().unwrap())
        .args(["--hold-exclusive", env.reader(4)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the other process");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(other.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "held", "the other process holds the card");
    let err = pcsc()
        .connect(env.reader(4), ConnectOptions::default())
        .unwrap_err();
    assert_eq!(err, PcscError::SharingViolation(env.reader(4).to_owned()));
    drop(other.stdin.take()); // the other process lets go and exits
    assert!(other.wait().unwrap().success());
    assert!(pcsc()
        .connect(env.reader(4), ConnectOptions::default())
        .is_ok());
    drop(card.stop());
}

fn transaction_blocks_other_transactions_with_a_bounded_wait(env: &mut Env) {
    let card = env.insert(4, TestCard::t1());
    let mut a = connect(env.reader(4));
    let mut b = connect(env.reader(4));
    b.set_timeout(Duration::from_millis(400));
    let tx = a.transaction().unwrap();
    let t = Instant::now();
    let err = b.transaction().unwrap_err();
    assert!(matches!(err, PcscError::Timeout { .. }), "{err:?}");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "bounded: {:?}",
        t.elapsed()
    );
    tx.end(Disposition::Leave).unwrap();
    // b was abandoned after its timeout; a fresh connection works.
    assert!(matches!(b.transaction(), Err(PcscError::Abandoned(_))));
    let mut c = connect(env.reader(4));
    let mut rx = Vec::new();
    c.transaction()
        .unwrap()
        .transmit(&[0x00, 0x84, 0x00, 0x00, 0x08], &mut rx)
        .unwrap();
    assert_eq!(rx.len(), 10);
    drop((a, b, c));
    drop(card.stop());
}

fn reset_by_another_program_is_card_reset_then_reconnect_works(env: &mut Env) {
    let test_card = TestCard::t1();
    let log = Arc::clone(&test_card.log);
    let card = env.insert(4, test_card);
    let mut a = connect(env.reader(4));
    let mut b = connect(env.reader(4));
    let powerups = log.lock().unwrap().powerups;
    b.reconnect(Disposition::Reset).unwrap();
    assert!(
        log.lock().unwrap().powerups > powerups,
        "the card saw the reset"
    );
    let mut rx = Vec::new();
    let err = a
        .transmit(&[0x00, 0x84, 0x00, 0x00, 0x08], &mut rx)
        .unwrap_err();
    assert_eq!(err, TransportError::CardReset);
    a.reconnect(Disposition::Leave).unwrap();
    a.transmit(&[0x00, 0x84, 0x00, 0x00, 0x08], &mut rx)
        .unwrap();
    assert_eq!(&rx[8..], [0x90, 0x00]);
    drop((a, b));
    drop(card.stop());
}

fn slow_card_hits_the_bounded_wait(env: &mut Env) {
    let card = env.insert(5, TestCard::t1().slow(Duration::from_millis(1500)));
    let mut conn = pcsc()
        .connect(
            env.reader(5),
            ConnectOptions {
                timeout: Duration::from_millis(300),
                ..Default::default()
            },
        )
        .unwrap();
    let mut rx = Vec::new();
    let t = Instant::now();
    let err = conn
        .transmit(&[0x00, 0x84, 0x00, 0x00, 0x08], &mut rx)
        .unwrap_err();
    let waited = t.elapsed();
    assert_eq!(err, TransportError::Timeout(Duration::from_millis(300)));
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_millis(1200),
        "{waited:?}"
    );
    // The connection is not reused blindly after a timeout.
    let again = conn
        .transmit(&[0x00, 0x84, 0x00, 0x00, 0x08], &mut rx)
        .unwrap_err();
    assert!(
        matches!(again, TransportError::Other(ref m) if m.contains("abandoned")),
        "{again:?}"
    );
    drop(conn);
    drop(card.stop());
}

fn dropping_a_connection_leaves_the_card_unreset(env: &mut Env) {
    let test_card = TestCard::t1();
    let log = Arc::clone(&test_card.log);
    let card = env.insert(6, test_card);
    let conn = connect(env.reader(6));
    let before = log.lock().unwrap().powerups;
    drop(conn); // the pcsc crate alone would reset the card here
    let conn = connect(env.reader(6));
    conn.close(Disposition::Leave).unwrap();
    assert_eq!(
        log.lock().unwrap().powerups,
        before,
        "no reset on drop or close(Leave)"
    );
    let conn = connect(env.reader(6));
    conn.close(Disposition::Reset).unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while log.lock().unwrap().powerups == before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(log.lock().unwrap().powerups > before, "close(Reset) resets");
    drop(card.stop());
}

fn watcher_serves_several_readers_and_one_stuck_reader_stops_no_other(env: &mut Env) {
    // Reader 7 gets a card whose handling takes long; readers 8 and 9 get
    // cards one after another meanwhile.
    let (r7, r8, r9) = (
        env.reader(7).to_owned(),
        env.reader(8).to_owned(),
        env.reader(9).to_owned(),
    );
    let handled = Arc::new(Mutex::new(Vec::<(String, Vec<u8>)>::new()));
    let busy = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = mpsc::channel::<String>();
    let done_tx = Mutex::new(done_tx);
    let (h, b, slow) = (Arc::clone(&handled), Arc::clone(&busy), r7.clone());
    let watcher = Watcher::start(
        WatcherOptions {
            readers: vec![r7.clone(), r8.clone(), r9.clone()],
            ..Default::default()
        },
        move |arrival: CardArrival| {
            let conn = arrival.connection.expect("connected");
            let mut card = Card::new(conn);
            let challenge = card
                .send_ok(&Command::new(0x00, 0x84, 0x00, 0x00).with_le(8).unwrap())
                .expect("challenge");
            if arrival.reader == slow {
                b.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_secs(4));
                b.fetch_sub(1, Ordering::SeqCst);
            }
            h.lock().unwrap().push((arrival.reader.clone(), challenge));
            let _ = done_tx.lock().unwrap().send(arrival.reader);
        },
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while watcher.readers().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "watcher did not start on all readers: {:?}",
            watcher.readers()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let slow_card = serve(("127.0.0.1", env.port(7)), TestCard::t1()).unwrap();
    // Reader 7's closure is busy before the others get their cards.
    while busy.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "reader 7's card was not handled");
        std::thread::sleep(Duration::from_millis(5));
    }
    let c8 = serve(("127.0.0.1", env.port(8)), TestCard::t1()).unwrap();
    let first9 = serve(("127.0.0.1", env.port(9)), TestCard::t1()).unwrap();
    let recv = |what: &str| {
        done_rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("no card done: {what}"))
    };
    let mut seen = vec![recv("first"), recv("second")];
    seen.sort();
    let mut want = vec![r8.clone(), r9.clone()];
    want.sort();
    assert_eq!(seen, want, "readers 8 and 9 done while 7 is still busy");
    assert_eq!(
        busy.load(Ordering::SeqCst),
        1,
        "reader 7's card is still being handled"
    );
    // A second card in reader 9 while 7 is still stuck.
    drop(first9.stop());
    wait_card(&r9, false);
    let second9 = serve(("127.0.0.1", env.port(9)), TestCard::t1()).unwrap();
    assert_eq!(recv("second card in 9"), r9);
    assert_eq!(recv("slow card"), r7);
    let stuck = watcher.stop(Duration::from_secs(5));
    assert!(stuck.is_empty(), "{stuck:?}");
    assert_eq!(handled.lock().unwrap().len(), 4);
    drop((slow_card.stop(), c8.stop(), second9.stop()));
}

/// kart-sim's `SimCard` for each vendor profile behind a vpcd reader:
/// select the applet, write and read back a 1500-byte file the way the
/// profile allows (T=0 GET RESPONSE, extended length, or chaining).
fn every_vendor_profile_of_the_simulator_personalizes_through_pcscd(env: &mut Env) {
    let spec = kart_spec::Spec::embedded().expect("embedded spec");
    assert!(
        !spec.profiles.is_empty(),
        "the spec has conforming profiles"
    );
    for (i, profile) in spec.profiles.iter().enumerate() {
        let id = &profile.id;
        let sim = kart_sim::SimCard::new(profile)
            .expect("simulator")
            .with_test_mode_writes();
        wait_card(env.reader(i), false);
        let card = serve(("127.0.0.1", env.port(i)), sim).unwrap();
        wait_card(env.reader(i), true);
        let mut conn = connect(env.reader(i));
        let want = match profile.protocol {
            kart_spec::Protocol::T0 => Protocol::T0,
            kart_spec::Protocol::T1 => Protocol::T1,
        };
        assert_eq!(conn.protocol(), want, "{id}: protocol from the ATR");
        assert_eq!(conn.atr(), profile.atr.bytes(), "{id}");
        let caps = profile.caps();
        let mut tx = conn.transaction().unwrap();
        let mut session = Card::with_caps(&mut tx, caps);
        let aid = profile.applet_aid.bytes();
        // SELECT with FCI returned: a case-4 command, which T=0 answers with 61xx.
        let fci = session
            .send_ok(
                &Command::new(0x00, 0xA4, 0x04, 0x00)
                    .with_data(aid)
                    .unwrap()
                    .with_le(256)
                    .unwrap(),
            )
            .unwrap_or_else(|e| panic!("{id}: SELECT applet: {e}"));
        assert!(!fci.is_empty(), "{id}: SELECT returns the FCI");
        session
            .send_ok(
                &Command::new(0x00, 0xA4, 0x02, 0x0C)
                    .with_data(&[0x01, 0x1D])
                    .unwrap(),
            )
            .unwrap_or_else(|e| panic!("{id}: SELECT 011D: {e}"));
        let data = pattern(1500);
        // One command when the card takes it (extended length or chaining),
        // else short writes at increasing offsets.
        let step = if caps.extended_length || caps.chaining {
            data.len()
        } else {
            caps.max_command_data
        };
        for (n, part) in data.chunks(step).enumerate() {
            session
                .send_ok(&update_binary((n * step) as u16, part))
                .unwrap_or_else(|e| panic!("{id}: UPDATE BINARY: {e}"));
        }
        let mut back = Vec::new();
        let chunk = if caps.extended_length {
            caps.max_response_data
        } else {
            256
        }
        .min(data.len());
        while back.len() < data.len() {
            let ne = chunk.min(data.len() - back.len()) as u32;
            back.extend(
                session
                    .send_ok(&read_binary(back.len() as u16, ne))
                    .unwrap_or_else(|e| panic!("{id}: READ BINARY: {e}")),
            );
        }
        assert_eq!(back, data, "{id}: read back what was written");
        let c = session.counters();
        // What the profile's limits make the session do (vendor-a: GET
        // RESPONSE, vendor-b: extended length, vendor-c and -d: chaining).
        if profile.quirks.get_response {
            assert!(
                c.get_responses > 0,
                "{id}: T=0 answers through GET RESPONSE: {c:?}"
            );
        } else if caps.extended_length {
            assert_eq!(
                (c.chained_parts, c.get_responses),
                (0, 0),
                "{id}: extended length: {c:?}"
            );
        } else {
            assert!(caps.chaining, "{id}: a profile with neither: {caps:?}");
            assert!(c.chained_parts > 0, "{id}: chaining: {c:?}");
        }
        drop(session);
        tx.end(Disposition::Leave).unwrap();
        drop(conn);
        drop(card.stop());
    }
}

/// `vicc` from vsmartcard-vpicc, run as Debian 12 needs it (design.md §6);
/// killed when dropped, and its log shown if the test failed.
struct Vicc {
    child: Child,
    shim: tempfile_dir::Dir,
}

impl Vicc {
    fn start(port: u16) -> Self {
        let shim = tempfile_dir::Dir::new("kart-vicc-shim");
        std::os::unix::fs::symlink(
            "/usr/lib/python3/dist-packages/Cryptodome",
            shim.path().join("Crypto"),
        )
        .expect("Crypto shim");
        let path = format!(
            "/usr/lib/python3/site-packages/virtualsmartcard:{}",
            shim.path().display()
        );
        let log = std::fs::File::create(shim.path().join("vicc.log")).expect("vicc log");
        let child = Process::new("vicc")
            .args(["-t", "iso7816", "-H", "localhost", "-P", &port.to_string()])
            .env("PYTHONPATH", path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect(
                "vicc is not installed: run scripts/setup (vsmartcard-vpicc, python3-pycryptodome)",
            );
        Self { child, shim }
    }
}

impl Drop for Vicc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log =
                std::fs::read_to_string(self.shim.path().join("vicc.log")).unwrap_or_default();
            println!("--- vicc log ---\n{log}");
        }
    }
}

/// A temporary directory without another dependency.
mod tempfile_dir {
    pub struct Dir(std::path::PathBuf);
    impl Dir {
        pub fn new(prefix: &str) -> Self {
            let p = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).expect("temp dir");
            Self(p)
        }
        pub fn path(&self) -> &std::path::Path {
            &self.0
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn vicc_card_written_by_others_answers_through_our_driver(env: &mut Env) {
    let _vicc = Vicc::start(env.port(0));
    wait_card(env.reader(0), true);
    let mut conn = connect(env.reader(0));
    let mut card = Card::new(&mut conn);
    // SELECT MF by FID, no response data (P2 = 0C; ISO 7816-4 §11.2.2).
    card.send_ok(
        &Command::new(0x00, 0xA4, 0x00, 0x0C)
            .with_data(&[0x3F, 0x00])
            .unwrap(),
    )
    .expect("SELECT 3F00");
    // CREATE FILE (ISO 7816-4 §11.3.3): transparent EF 2F01 of 32 bytes, FCP
    // 62 { 82 01 01 (FDB: transparent), 83 02 2F01 (FID), 80 02 0020 (size) }.
    let fcp = [
        0x62, 0x0B, 0x82, 0x01, 0x01, 0x83, 0x02, 0x2F, 0x01, 0x80, 0x02, 0x00, 0x20,
    ];
    let created = card
        .send(
            &Command::new(0x00, 0xE0, 0x00, 0x00)
                .with_data(&fcp)
                .unwrap(),
        )
        .unwrap();
    assert!(created.is_success(), "CREATE FILE: {}", created.sw());
    // vicc selects the new EF; reading it must work (vicc's UPDATE BINARY
    // crashes on Debian 12's Python, so the content is vicc's initial one).
    let read = card.send(&read_binary(0, 256)).unwrap();
    // 32 bytes (the size in the FCP), and 6282 "end of file reached before
    // reading Ne bytes" (ISO 7816-4 §5.6) since 256 were asked for.
    assert_eq!(read.data(), [0u8; 32], "{}", read.sw());
    assert_eq!(u16::from(read.sw()), 0x6282);
    let c1 = card
        .send_ok(&Command::new(0x00, 0x84, 0x00, 0x00).with_le(8).unwrap())
        .expect("GET CHALLENGE");
    let c2 = card
        .send_ok(&Command::new(0x00, 0x84, 0x00, 0x00).with_le(8).unwrap())
        .expect("GET CHALLENGE");
    assert_eq!((c1.len(), c2.len()), (8, 8));
    assert_ne!(c1, c2, "two challenges from vicc differ");
}

fn pcscd_restart_is_service_lost_then_reestablish_works(env: &mut Env) {
    let mut p = pcsc();
    assert!(p.is_valid());
    // A station's watcher must carry on across the restart.
    let (tx, arrivals) = mpsc::channel::<String>();
    let tx = Mutex::new(tx);
    let watcher = Watcher::start(
        WatcherOptions {
            readers: vec![env.reader(6).to_owned()],
            ..Default::default()
        },
        move |a: CardArrival| {
            let ok = a.connection.is_ok();
            let _ = tx.lock().unwrap().send(format!("{} {ok}", a.reader));
        },
    )
    .unwrap();
    let conn_card = env.insert(5, TestCard::t1());
    let mut conn = connect(env.reader(5));
    env.pcscd.restart().expect("pcscd restarts");
    // A connection made before the restart reports it, typed.
    let mut rx = Vec::new();
    let lost = conn
        .transmit(&[0x00, 0x84, 0x00, 0x00, 0x08], &mut rx)
        .unwrap_err();
    assert!(
        matches!(lost, TransportError::ReaderUnavailable(ref m) if m.contains("restarted")),
        "{lost:?}"
    );
    drop(conn);
    drop(conn_card.stop());
    let err = p.reader_names().unwrap_err();
    assert!(err.is_service_lost(), "{err:?}");
    p.reestablish().unwrap();
    let names = p.reader_names().unwrap();
    assert_eq!(names.len(), env.pcscd.readers().len());
    let card = env.insert(6, TestCard::t1());
    let arrival = arrivals
        .recv_timeout(Duration::from_secs(15))
        .expect("the watcher served a card after the restart");
    assert_eq!(arrival, format!("{} true", env.reader(6)));
    assert!(watcher.stop(Duration::from_secs(5)).is_empty());
    drop(card.stop());
    // Stopped for good: no service, and the hint says to start it.
    env.pcscd.stop();
    let err = Pcsc::establish().unwrap_err();
    assert_eq!(err, PcscError::NoService);
    assert!(err.hint().is_some_and(|h| h.contains("start it")));
    env.pcscd.restart().unwrap();
}
