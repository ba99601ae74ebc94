//! One journal shared by many stations: leases and claims across stations
//! on every store, and the faults of a database server (a restart in the
//! middle of a batch, a server that stays down) on a real `PostgreSQL` 15
//! the test starts and stops by PID; and one station's journal called by
//! its readers at once, on a pool of connections.

use std::collections::HashSet;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use kart_perso::journal::{Journal, JournalError, JournalLocation, JournalOptions, State, Step};
use kart_perso::record::TrackingCode;
use kart_pg_harness::PgServer;

#[macro_use]
mod journal_support;

/// `n` valid tracking codes.
fn codes(n: usize) -> Vec<TrackingCode> {
    kart_testkit::engine::codes(n, 14_040_904_000)
}

fn short_lease() -> JournalOptions {
    JournalOptions {
        lease: Duration::ZERO,
        ..JournalOptions::default()
    }
}

on_every_store! {
    /// Four stations with their own connections drain one queue: every
    /// application is claimed exactly once.
    #[test]
    fn four_stations_never_claim_the_same_application() {
        let place = journal_support::fresh();
        let all = codes(120);
        journal_support::open(&place).enqueue_batch("floor.csv", &all).unwrap();
        let stations: Vec<_> = (0..4)
            .map(|station| {
                let location = place.location.clone();
                thread::spawn(move || {
                    let journal =
                        Journal::open_location(&location, &JournalOptions::default()).unwrap();
                    let mut mine = Vec::new();
                    while let Some(claim) =
                        journal.claim_next(&format!("st-{station}"), "r0").unwrap()
                    {
                        assert_eq!(claim.station, format!("st-{station}"));
                        mine.push(claim.tracking);
                    }
                    mine
                })
            })
            .collect();
        let claimed: Vec<TrackingCode> = stations
            .into_iter()
            .flat_map(|s| s.join().unwrap())
            .collect();
        let unique: HashSet<_> = claimed.iter().collect();
        assert_eq!(claimed.len(), all.len(), "every application claimed");
        assert_eq!(unique.len(), all.len(), "none claimed twice");
        let report = journal_support::open(&place).report().unwrap();
        assert_eq!((report.in_progress, report.pending), (120, 0));
    }

    /// A station that stops renewing loses its claim to another once the
    /// lease runs out, and cannot write for it afterwards.
    #[test]
    fn an_expired_claim_returns_to_the_queue_and_its_old_owner_loses_it() {
        let place = journal_support::fresh();
        let code = codes(1).remove(0);
        let crashed = journal_support::open_with(&place, &short_lease());
        crashed.enqueue_batch("floor.csv", [&code]).unwrap();
        let claim = crashed.claim_next("st-a", "r0").unwrap().unwrap();
        let other = journal_support::open(&place);
        assert_eq!(other.reclaim_expired().unwrap(), std::slice::from_ref(&code));
        assert_eq!(other.status(&code).unwrap().state, State::Queued);
        let again = other.claim_next("st-b", "r1").unwrap().unwrap();
        assert_eq!((again.tracking.clone(), again.attempt), (code.clone(), claim.attempt + 1));
        match crashed.mark_writing(&code, "CARD-1", "vendor-a") {
            Err(JournalError::ClaimLost { owner, .. }) => assert_eq!(owner, other.owner()),
            other => panic!("expected ClaimLost, got {other:?}"),
        }
        other.mark_writing(&code, "CARD-1", "vendor-a").unwrap();
        let status = other.status(&code).unwrap();
        assert_eq!((status.station.as_deref(), status.reader.as_deref()), (Some("st-b"), Some("r1")));
    }

    /// Live claims are not taken back, whoever asks.
    #[test]
    fn a_live_claim_is_not_reclaimed() {
        let place = journal_support::fresh();
        let code = codes(1).remove(0);
        let live = journal_support::open(&place);
        live.enqueue_batch("floor.csv", [&code]).unwrap();
        live.claim_next("st-a", "r0").unwrap().unwrap();
        let other = journal_support::open(&place);
        assert!(other.reclaim_expired().unwrap().is_empty());
        assert_eq!(live.renew_leases().unwrap(), 1);
        assert!(other.claim_next("st-b", "r0").unwrap().is_none());
        live.mark_writing(&code, "CARD-1", "vendor-a").unwrap();
    }

    /// A batch loaded again, from another station, adds nothing.
    #[test]
    fn loading_a_batch_again_from_another_station_is_idempotent() {
        let place = journal_support::fresh();
        let all = codes(10);
        let first = journal_support::open(&place).enqueue_batch("floor.csv", &all).unwrap();
        assert_eq!((first.added, first.already_present), (10, 0));
        let again = journal_support::open(&place).enqueue_batch("floor.csv", &all).unwrap();
        assert_eq!((again.added, again.already_present), (0, 10));
        let other = journal_support::open(&place).enqueue_batch("other.csv", &all[..3]).unwrap();
        assert_eq!(other.in_other_batch, all[..3].to_vec());
        assert_eq!(journal_support::open(&place).report().unwrap().pending, 10);
    }

    /// One card serial cannot be taken by two applications from two stations.
    #[test]
    fn one_card_serial_serves_one_application_across_stations() {
        let place = journal_support::fresh();
        let two = codes(2);
        let a = journal_support::open(&place);
        a.enqueue_batch("floor.csv", &two).unwrap();
        let b = journal_support::open(&place);
        let ca = a.claim_next("st-a", "r0").unwrap().unwrap();
        let cb = b.claim_next("st-b", "r0").unwrap().unwrap();
        a.mark_writing(&ca.tracking, "CARD-9", "vendor-a").unwrap();
        match b.mark_writing(&cb.tracking, "CARD-9", "vendor-a") {
            Err(JournalError::CardInUse { tracking, .. }) => assert_eq!(tracking, ca.tracking.as_str()),
            other => panic!("expected CardInUse, got {other:?}"),
        }
        assert_eq!(b.status(&cb.tracking).unwrap().state, State::Claimed);
    }
}

/// The server restarts between two transitions of a card in a reader: the
/// next call reconnects, retries and succeeds, and the card stays bound to
/// its application.
#[test]
fn a_database_restart_mid_batch_is_retried_and_the_card_resumes() {
    let mut pg = PgServer::start().unwrap();
    let location: JournalLocation = pg.url().parse().unwrap();
    let options = JournalOptions {
        busy_timeout: Duration::from_secs(30),
        ..JournalOptions::default()
    };
    let all = codes(3);
    let journal = Journal::open_location(&location, &options).unwrap();
    journal.enqueue_batch("floor.csv", &all).unwrap();
    let claim = journal.claim_next("st-a", "r0").unwrap().unwrap();
    journal
        .mark_writing(&claim.tracking, "CARD-1", "vendor-a")
        .unwrap();
    pg.restart().unwrap();
    journal.mark_written(&claim.tracking).unwrap();
    journal.mark_verified(&claim.tracking).unwrap();
    let status = journal.status(&claim.tracking).unwrap();
    assert_eq!(
        (status.state, status.card_serial.as_deref()),
        (State::Verified, Some("CARD-1"))
    );
    // Restarted while a second station is between claims: it carries on.
    let next = journal.claim_next("st-a", "r0").unwrap().unwrap();
    assert_ne!(next.tracking, claim.tracking);
    assert_eq!(journal.report().unwrap().issued, 1);
}

/// A server that stays down: the call gives up after the bound with a
/// typed error, and changes nothing.
#[test]
fn a_server_that_stays_down_gives_unavailable_after_the_bound() {
    let mut pg = PgServer::start().unwrap();
    let location: JournalLocation = pg.url().parse().unwrap();
    let options = JournalOptions {
        busy_timeout: Duration::from_millis(800),
        ..JournalOptions::default()
    };
    let code = codes(1).remove(0);
    let journal = Journal::open_location(&location, &options).unwrap();
    journal.enqueue_batch("floor.csv", [&code]).unwrap();
    pg.stop();
    let started = Instant::now();
    match journal.claim_next("st-a", "r0") {
        Err(JournalError::Unavailable { reason }) => assert!(!reason.is_empty()),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(700),
        "retried for the bound: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(10),
        "gave up after the bound: {waited:?}"
    );
    pg.restart().unwrap();
    assert_eq!(journal.status(&code).unwrap().state, State::Queued);
}

/// Two stations draw CRNs from the one register in the shared journal at
/// once: every CRN is unique, and a pair asked again keeps its number.
#[test]
fn crns_from_the_shared_register_are_unique_across_stations() {
    use kart_perso::crn::CrnAllocator;
    let pg = PgServer::start().unwrap();
    let JournalLocation::Postgres(url) = pg.url().parse().unwrap() else {
        panic!("a PostgreSQL URL")
    };
    let stations: Vec<_> = (0..2)
        .map(|station| {
            let url = url.clone();
            thread::spawn(move || {
                let crns = CrnAllocator::open_shared(&url).unwrap();
                (0..50)
                    .map(|i| {
                        let (serial, tracking) =
                            (format!("CARD-{station}-{i}"), format!("T-{station}-{i}"));
                        let crn = crns.allocate(&serial, &tracking).unwrap();
                        assert_eq!(
                            crns.allocate(&serial, &tracking).unwrap(),
                            crn,
                            "same pair, same CRN"
                        );
                        crn.as_str().to_owned()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let all: Vec<String> = stations
        .into_iter()
        .flat_map(|s| s.join().unwrap())
        .collect();
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!((all.len(), unique.len()), (100, 100));
    // The table's constraint, not only the code, keeps them unique.
    let error = pg
        .psql("INSERT INTO crns (seq, card_serial, tracking) SELECT seq, 'OTHER', 'OTHER' FROM crns LIMIT 1")
        .unwrap_err();
    assert!(error.to_string().contains("duplicate key"), "{error}");
}

/// A loopback proxy to the server that, once armed, forwards the next
/// `COMMIT` and then cuts the connection before the server's answer comes
/// back: the lost-answer case, on a real server and a real socket.
struct LosingProxy {
    port: u16,
    armed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl LosingProxy {
    fn start(server_port: u16) -> Self {
        use std::io::{Read, Write};
        use std::net::{Shutdown, TcpListener, TcpStream};
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = armed.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { return };
                let mut server = TcpStream::connect(("127.0.0.1", server_port)).unwrap();
                let (mut client_rx, mut server_tx) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let flag = flag.clone();
                thread::spawn(move || {
                    let mut buf = [0u8; 8192];
                    while let Ok(n @ 1..) = client_rx.read(&mut buf) {
                        let commit = buf[..n].windows(7).any(|w| w == b"COMMIT\0");
                        let lose = commit && flag.swap(false, Ordering::SeqCst);
                        if lose {
                            // The client's side goes first, so no answer
                            // can reach it; then the server commits.
                            let _ = client_rx.shutdown(Shutdown::Both);
                        }
                        if server_tx.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        if lose {
                            thread::sleep(Duration::from_millis(300));
                            let _ = server_tx.shutdown(Shutdown::Both);
                            break;
                        }
                    }
                });
                thread::spawn(move || {
                    let _ = std::io::copy(&mut server, &mut client);
                });
            }
        });
        Self { port, armed }
    }

    /// A journal on `pg` whose connections all go through a new proxy.
    fn journal(pg: &PgServer) -> (Journal, Self) {
        let proxy = Self::start(pg.port());
        let url = pg
            .url()
            .replace(&format!(":{}/", pg.port()), &format!(":{}/", proxy.port));
        let location: JournalLocation = url.parse().unwrap();
        let journal = Journal::open_location(&location, &JournalOptions::default()).unwrap();
        (journal, proxy)
    }

    fn lose_next_commit_answer(&self) {
        self.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The connection drops after a transition committed but before its answer
/// arrived: the call reconnects, finds its change made, and succeeds
/// without making it twice; the card stays bound to its application.
#[test]
fn a_lost_answer_is_resolved_on_reconnect_without_a_second_change() {
    let pg = PgServer::start().unwrap();
    let (journal, proxy) = LosingProxy::journal(&pg);
    let all = codes(2);
    journal.enqueue_batch("floor.csv", &all).unwrap();

    proxy.lose_next_commit_answer();
    let claim = journal.claim_next("st-a", "r0").unwrap().unwrap();
    assert_eq!(
        claim.tracking, all[0],
        "the claim whose answer was lost, not the next one"
    );
    proxy.lose_next_commit_answer();
    journal
        .mark_writing(&claim.tracking, "CARD-1", "vendor-a")
        .unwrap();
    proxy.lose_next_commit_answer();
    journal.mark_written(&claim.tracking).unwrap();
    proxy.lose_next_commit_answer();
    journal.mark_verified(&claim.tracking).unwrap();

    let status = journal.status(&claim.tracking).unwrap();
    assert_eq!(
        (status.state, status.card_serial.as_deref(), status.attempts),
        (State::Verified, Some("CARD-1"), 1)
    );
    let events = pg
        .psql(&format!(
            "SELECT string_agg(to_state, ',' ORDER BY id) FROM events WHERE tracking = '{}'",
            claim.tracking
        ))
        .unwrap();
    assert_eq!(
        events, "claimed,writing,written,verified",
        "each change made once"
    );
    assert_eq!(journal.status(&all[1]).unwrap().state, State::Queued);
}

/// The connection drops after a step row committed but before the answer
/// arrived: the retry finds its row and writes no second one, for a step's
/// start and for its measurements. A step started again (the card
/// re-personalized in the same attempt) is still a row of its own.
#[test]
fn a_step_row_whose_answer_was_lost_is_written_once() {
    let pg = PgServer::start().unwrap();
    let (journal, proxy) = LosingProxy::journal(&pg);
    let code = codes(1).remove(0);
    journal.enqueue_batch("floor.csv", [&code]).unwrap();
    journal.claim_next("st-a", "r0").unwrap().unwrap();
    journal.mark_writing(&code, "CARD-1", "vendor-a").unwrap();

    proxy.lose_next_commit_answer();
    journal.mark_step_started(&code, "write EF.ID").unwrap();
    proxy.lose_next_commit_answer();
    let step = Step::new("write EF.ID", Duration::from_millis(120), 4, 900, 8);
    journal.mark_step(&code, &step).unwrap();

    let rows = |table: &str| {
        pg.psql(&format!(
            "SELECT count(*) FROM {table} WHERE tracking = '{code}'"
        ))
        .unwrap()
    };
    assert_eq!(rows("step_starts"), "1", "one start row for one call");
    assert_eq!(rows("steps"), "1", "one measurement row for one call");
    assert_eq!(journal.report().unwrap().steps[0].count, 1);

    journal.mark_step_started(&code, "write EF.ID").unwrap();
    assert_eq!(rows("step_starts"), "2", "a second start is a second call");
    assert_eq!(
        journal.status(&code).unwrap().last_step.as_deref(),
        Some("write EF.ID")
    );
}

/// Counts the client connections to the test database (the counting one
/// left out).
fn connections(pg: &PgServer) -> usize {
    pg.psql(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND backend_type = 'client backend'
           AND pid <> pg_backend_pid()",
    )
    .unwrap()
    .parse()
    .unwrap()
}

/// One reader's work on a claimed application, card `card`.
fn issue(journal: &Journal, tracking: &TrackingCode, card: &str) -> Result<(), JournalError> {
    journal.mark_writing(tracking, card, "vendor-a")?;
    journal.mark_step_started(tracking, "write EF.ID")?;
    journal.mark_written(tracking)?;
    journal.mark_verified(tracking)
}

/// Asserts that while an outside client holds the row of one claimed
/// application locked, a call of one station's journal on it waits and the
/// station's other readers (threads sharing that journal) still claim and
/// issue other applications; once the lock goes, the waiting call ends.
fn a_locked_row_holds_up_only_its_own_call(pool_size: u32) {
    let pg = PgServer::start().unwrap();
    let location: JournalLocation = pg.url().parse().unwrap();
    let options = JournalOptions {
        busy_timeout: Duration::from_secs(20),
        pool_size,
        ..JournalOptions::default()
    };
    let journal = Arc::new(Journal::open_location(&location, &options).unwrap());
    journal.enqueue_batch("floor.csv", &codes(4)).unwrap();
    let held = journal.claim_next("st-a", "r0").unwrap().unwrap().tracking;

    let mut outside = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    let mut lock = outside.transaction().unwrap();
    lock.execute(
        "SELECT 1 FROM applications WHERE tracking = $1 FOR UPDATE",
        &[&held.as_str()],
    )
    .unwrap();
    let (ended, waiting_ended) = mpsc::channel();
    let waiting = {
        let (journal, held) = (journal.clone(), held.clone());
        thread::spawn(move || {
            let result = journal.mark_writing(&held, "CARD-HELD", "vendor-a");
            let _ = ended.send(());
            result
        })
    };
    // The call is in the server, waiting for the row lock.
    let blocked = (0..500).any(|_| {
        thread::sleep(Duration::from_millis(20));
        lock.query_one(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
            &[],
        )
        .unwrap()
        .get::<_, i64>(0)
            == 1
    });
    assert!(blocked, "the call on the locked row waits for the lock");

    let (done, issued) = mpsc::channel();
    let readers: Vec<_> = (1..=3)
        .map(|reader| {
            let (journal, done) = (journal.clone(), done.clone());
            thread::spawn(move || {
                let result = journal
                    .claim_next("st-a", &format!("r{reader}"))
                    .and_then(|claim| {
                        let claim = claim.expect("a queued application");
                        issue(&journal, &claim.tracking, &format!("CARD-{reader}"))
                            .map(|()| claim.tracking)
                    });
                let _ = done.send(result);
            })
        })
        .collect();
    let mut others = HashSet::new();
    for _ in &readers {
        let tracking = issued
            .recv_timeout(Duration::from_secs(15))
            .expect("the other readers go on while one call waits on a locked row")
            .unwrap();
        others.insert(tracking);
    }
    assert_eq!(others.len(), 3);
    assert!(!others.contains(&held));
    assert!(
        waiting_ended.try_recv().is_err(),
        "the call on the locked row still waits"
    );

    lock.commit().unwrap();
    waiting.join().unwrap().unwrap();
    for reader in readers {
        reader.join().unwrap();
    }
    let status = journal.status(&held).unwrap();
    assert_eq!(
        (status.state, status.card_serial.as_deref()),
        (State::Writing, Some("CARD-HELD"))
    );
    assert_eq!(journal.report().unwrap().issued, 3);
}

/// On the default pool.
#[test]
fn a_call_waiting_on_a_locked_row_holds_up_no_other_reader() {
    a_locked_row_holds_up_only_its_own_call(JournalOptions::default().pool_size);
}

/// Eight readers of one station drain a queue on a pool of 3: the journal
/// never has more than 3 connections open, and after a server restart the
/// pool replaces its dead connections and the readers finish the queue.
#[test]
fn a_pool_opens_at_most_its_size_and_recovers_after_a_restart() {
    const SIZE: usize = 3;
    let mut pg = PgServer::start().unwrap();
    let location: JournalLocation = pg.url().parse().unwrap();
    let options = JournalOptions {
        busy_timeout: Duration::from_secs(30),
        pool_size: u32::try_from(SIZE).unwrap(),
        ..JournalOptions::default()
    };
    let journal = Journal::open_location(&location, &options).unwrap();
    let all = codes(48);
    let drain = |journal: &Journal, pg: &PgServer, take: usize| {
        let most = std::sync::atomic::AtomicUsize::new(0);
        let left = std::sync::atomic::AtomicUsize::new(take);
        let taken = |left: &std::sync::atomic::AtomicUsize| {
            left.fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |n| n.checked_sub(1),
            )
            .is_ok()
        };
        thread::scope(|scope| {
            let readers: Vec<_> = (0..8)
                .map(|reader| {
                    let (left, taken) = (&left, &taken);
                    scope.spawn(move || {
                        while taken(left) {
                            let claim = journal
                                .claim_next("st-a", &format!("r{reader}"))
                                .unwrap()
                                .expect("a queued application");
                            let card = format!("CARD-{}", claim.tracking);
                            issue(journal, &claim.tracking, &card).unwrap();
                        }
                    })
                })
                .collect();
            while readers.iter().any(|r| !r.is_finished()) {
                most.fetch_max(connections(pg), std::sync::atomic::Ordering::SeqCst);
            }
        });
        most.into_inner()
    };

    journal.enqueue_batch("floor.csv", &all).unwrap();
    let before = drain(&journal, &pg, 24);
    assert!(
        before <= SIZE,
        "{before} connections open on a pool of {SIZE}"
    );
    assert_eq!(journal.report().unwrap().issued, 24);

    pg.restart().unwrap();
    let after = drain(&journal, &pg, 24);
    assert!(
        after <= SIZE,
        "{after} connections open on a pool of {SIZE}"
    );
    assert!(connections(&pg) <= SIZE);
    let report = journal.report().unwrap();
    assert_eq!((report.issued, report.pending), (48, 0));
}

/// The server log's lines that name a deadlock or a lock timeout, with the
/// statements they name (for a failing assertion's message).
fn lock_failures(pg: &PgServer) -> String {
    let log = pg.log();
    let lines: Vec<&str> = log.lines().collect();
    let mut found = Vec::new();
    for (at, line) in lines.iter().enumerate() {
        if line.contains("deadlock detected")
            || line.contains("could not serialize")
            || line.contains("lock timeout")
        {
            found.extend(lines[at..lines.len().min(at + 8)].iter().copied());
        }
    }
    found.join("\n")
}

/// A server, its journal location, and options whose busy timeout is
/// shorter than `PostgreSQL`'s `deadlock_timeout` (1 s): one deadlock met by
/// a call fails it.
fn short_busy_server() -> (PgServer, JournalLocation, JournalOptions) {
    let pg = PgServer::start().unwrap();
    let location: JournalLocation = pg.url().parse().unwrap();
    let options = JournalOptions {
        busy_timeout: Duration::from_millis(600),
        ..JournalOptions::default()
    };
    (pg, location, options)
}

/// Asserts that no call failed and the server log names no deadlock.
fn assert_no_lock_failures(pg: &PgServer, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "calls failed: {failures:#?}\nserver log:\n{}",
        lock_failures(pg)
    );
    assert_eq!(lock_failures(pg), "", "the server met no deadlock");
}

/// Four stations of six readers each work one queue at once the way
/// `kart personalize` does (renew the station's leases, claim, write,
/// steps, verify) while a supervisor reclaims expired claims and reads the
/// report, on a busy timeout too short to outlast one deadlock: no call
/// fails with `Busy`, and the server detected no deadlock.
#[test]
fn stations_working_one_queue_at_once_never_deadlock() {
    const STATIONS: usize = 4;
    const READERS: usize = 6;
    const APPLICATIONS: usize = 240;
    let (pg, location, options) = short_busy_server();
    let all = codes(APPLICATIONS);
    Journal::open_location(&location, &options)
        .unwrap()
        .enqueue_batch("floor.csv", &all)
        .unwrap();
    let failures = std::sync::Mutex::new(Vec::<String>::new());
    let issued = std::sync::atomic::AtomicUsize::new(0);
    let note = |what: &str, e: &JournalError| {
        failures.lock().unwrap().push(format!("{what}: {e}"));
    };
    let drained = std::sync::atomic::AtomicBool::new(false);
    thread::scope(|scope| {
        for station in 0..STATIONS {
            let journal = Arc::new(Journal::open_location(&location, &options).unwrap());
            for reader in 0..READERS {
                let (journal, note, issued) = (journal.clone(), &note, &issued);
                scope.spawn(move || loop {
                    let name = format!("st-{station}");
                    let reader = format!("r{reader}");
                    if let Err(e) = journal.renew_leases() {
                        note("renew_leases", &e);
                    }
                    let claim = match journal.claim_next(&name, &reader) {
                        Ok(Some(claim)) => claim,
                        Ok(None) => break,
                        Err(e) => {
                            note("claim_next", &e);
                            continue;
                        }
                    };
                    let card = format!("CARD-{}", claim.tracking);
                    let step = Step::new("write EF.ID", Duration::from_millis(3), 4, 900, 8);
                    let done = journal
                        .mark_writing(&claim.tracking, &card, "vendor-a")
                        .and_then(|()| journal.mark_step_started(&claim.tracking, &step.name))
                        .and_then(|()| journal.mark_step(&claim.tracking, &step))
                        .and_then(|()| journal.mark_written(&claim.tracking))
                        .and_then(|()| journal.mark_verified(&claim.tracking));
                    match done {
                        Ok(()) => {
                            issued.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        Err(e) => note("issuing", &e),
                    }
                });
            }
        }
        let (note, drained, location, options) = (&note, &drained, &location, &options);
        scope.spawn(move || {
            let journal = Journal::open_location(location, options).unwrap();
            while !drained.load(std::sync::atomic::Ordering::SeqCst) {
                if let Err(e) = journal.reclaim_expired() {
                    note("reclaim_expired", &e);
                }
                if let Err(e) = journal.report() {
                    note("report", &e);
                }
            }
        });
        while issued.load(std::sync::atomic::Ordering::SeqCst) < APPLICATIONS
            && failures.lock().unwrap().is_empty()
        {
            thread::sleep(Duration::from_millis(50));
        }
        drained.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    assert_no_lock_failures(&pg, &failures.into_inner().unwrap());
    assert_eq!(
        Journal::open_location(&location, &options)
            .unwrap()
            .report()
            .unwrap()
            .issued,
        u64::try_from(APPLICATIONS).unwrap()
    );
}

/// `n` rows of a batch file, one valid record for each code, line `i + 2`.
fn batch_rows(codes: &[TrackingCode]) -> Vec<kart_perso::journal::BatchRow> {
    codes
        .iter()
        .enumerate()
        .map(|(i, code)| kart_perso::journal::BatchRow::Valid {
            seq: u64::try_from(i).unwrap(),
            record: Box::new(kart_perso::journal::StoredRecord {
                tracking: code.clone(),
                line: u64::try_from(i).unwrap() + 2,
                national_code: format!("{:010}", 1_000_000 + i),
                given_name_fa: "علی".into(),
                family_name_fa: "رضایی".into(),
                father_name_fa: "حسن".into(),
                given_name_en: "Ali".into(),
                family_name_en: "Rezaei".into(),
                father_name_en: "Hassan".into(),
                birth_date: "1370/01/01".into(),
                gender: "M".into(),
                photo: format!("photos/{code}.jpg").into(),
                fingerprint: None,
                has_pin: false,
                replacement: false,
            }),
        })
        .collect()
}

/// One station loads a batch again (a second `kart personalize` started
/// on the same file) while another station's readers renew the leases of
/// the claims they hold on it: the load takes each known row in the file's
/// order, the renewal took the station's claimed rows in the table's
/// order, and the two orders differ (rows are claimed, and their row
/// versions move, in no file order). Neither call may fail with `Busy`, on
/// a busy timeout shorter than one deadlock takes to be detected, and the
/// server meets no deadlock.
#[test]
fn loading_a_batch_again_while_another_station_renews_its_claims_never_deadlocks() {
    const ROWS: usize = 64;
    const ROUNDS: usize = 12;
    let (pg, location, options) = short_busy_server();
    let loader = Journal::open_location(&location, &options).unwrap();
    let rows = batch_rows(&codes(ROWS));
    let batch = loader.open_batch("floor.csv").unwrap();
    assert_eq!(loader.load_rows(batch, rows.clone()).unwrap().queued, ROWS);
    let station = Journal::open_location(&location, &options).unwrap();
    for reader in 0..ROWS {
        station
            .claim_next("st-b", &format!("r{reader}"))
            .unwrap()
            .unwrap();
    }
    // The file's rows in an order the table does not have them in.
    let mut again = rows;
    again.reverse();
    let failures = std::sync::Mutex::new(Vec::<String>::new());
    thread::scope(|scope| {
        let (failures, loader, again) = (&failures, &loader, &again);
        scope.spawn(move || {
            for _ in 0..ROUNDS {
                if let Err(e) = loader.load_rows(batch, again.clone()) {
                    failures.lock().unwrap().push(format!("load_rows: {e}"));
                }
            }
        });
        for _ in 0..3 {
            let station = &station;
            scope.spawn(move || {
                for _ in 0..ROUNDS {
                    match station.renew_leases() {
                        Ok(n) => assert!(n <= ROWS),
                        Err(e) => failures.lock().unwrap().push(format!("renew_leases: {e}")),
                    }
                }
            });
        }
    });
    assert_no_lock_failures(&pg, &failures.into_inner().unwrap());
    assert_eq!(
        station.renew_leases().unwrap(),
        ROWS,
        "every claim still held"
    );
}

/// A station opening the shared journal while the server restarts in the
/// middle of the schema migration (here: while the migration waits for the
/// migration lock an outside client holds, as a second station starting at
/// once does) reconnects and migrates again, as every other call retries:
/// the open succeeds once the server is back, with the schema in place.
#[test]
fn a_restart_during_the_schema_migration_is_retried() {
    let mut pg = PgServer::start().unwrap();
    let location: JournalLocation = pg.url().parse().unwrap();
    let options = JournalOptions {
        busy_timeout: Duration::from_secs(30),
        ..JournalOptions::default()
    };
    let mut outside = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    let mut lock = outside.transaction().unwrap();
    // The migration lock's key ("kart").
    lock.execute("SELECT pg_advisory_xact_lock($1)", &[&0x6b61_7274_i64])
        .unwrap();
    let opening = thread::spawn(move || {
        Journal::open_location(&location, &options).map(|journal| journal.report().map(|_| ()))
    });
    let waiting = (0..500).any(|_| {
        thread::sleep(Duration::from_millis(20));
        // Its own client: a transaction sees one snapshot of the activity.
        pg.psql(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event = 'advisory'",
        )
        .unwrap()
            == "1"
    });
    assert!(waiting, "the migration waits for the migration lock");
    pg.restart().unwrap();
    drop(lock);
    let opened = opening.join().unwrap();
    assert!(
        matches!(opened, Ok(Ok(()))),
        "the open is retried past the restart: {opened:?}"
    );
    assert_eq!(
        pg.psql("SELECT count(*) FROM applications").unwrap(),
        "0",
        "the schema is in place"
    );
}

/// `kart report` (a read-only open) on a database no station has opened
/// yet says so, typed, rather than failing on a missing table; once a
/// station has opened it, the report is the empty floor's.
#[test]
fn a_read_only_open_of_a_database_without_a_journal_says_so() {
    let pg = PgServer::start().unwrap();
    let location: JournalLocation = pg.url().parse().unwrap();
    let read_only = JournalOptions {
        read_only: true,
        ..JournalOptions::default()
    };
    match Journal::open_location(&location, &read_only) {
        Err(e @ JournalError::NoSharedJournal { .. }) => {
            assert!(e.hint().is_some_and(|h| h.contains("--journal")), "{e}");
        }
        other => panic!(
            "expected NoSharedJournal, got {:?}",
            other.map(|j| j.report())
        ),
    }
    Journal::open_location(&location, &JournalOptions::default()).unwrap();
    let report = Journal::open_location(&location, &read_only)
        .unwrap()
        .report()
        .unwrap();
    assert_eq!(
        (report.pending, report.in_progress, report.issued),
        (0, 0, 0)
    );
}

/// A server with every connection slot taken (a floor bigger than its
/// `max_connections`): a station's open is retried until the busy timeout,
/// then fails typed, with what to change on the server; once a slot is
/// free the open goes through.
#[test]
fn a_server_with_no_connection_slot_left_says_so() {
    const SLOTS: usize = 4;
    let mut pg = PgServer::start().unwrap();
    pg.psql(&format!("ALTER SYSTEM SET max_connections = {SLOTS}"))
        .unwrap();
    pg.psql("ALTER SYSTEM SET superuser_reserved_connections = 0")
        .unwrap();
    pg.restart().unwrap();
    let location: JournalLocation = pg.url().parse().unwrap();
    let options = JournalOptions {
        busy_timeout: Duration::from_millis(600),
        ..JournalOptions::default()
    };
    let holders: Vec<_> = (0..SLOTS)
        .map(|_| postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap())
        .collect();
    let started = Instant::now();
    match Journal::open_location(&location, &options) {
        Err(e @ JournalError::NoConnectionSlot { .. }) => {
            assert!(
                e.hint().is_some_and(|h| h.contains("max_connections")),
                "{e}"
            );
        }
        other => panic!(
            "expected NoConnectionSlot, got {:?}",
            other.map(|j| j.report())
        ),
    }
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "retried for the bound: {:?}",
        started.elapsed()
    );
    drop(holders);
    let options = JournalOptions {
        busy_timeout: Duration::from_secs(5),
        ..options
    };
    Journal::open_location(&location, &options)
        .unwrap()
        .report()
        .unwrap();
}
