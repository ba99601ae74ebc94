//! Tearing: for every vendor profile, the card is pulled after every single
//! APDU of a station's full run (probe, personalization, read-back), every
//! UPDATE BINARY is torn, and the station "crashes" (its thread dies and the
//! station is dropped, as in a killed process: only what the journal committed
//! survives) at every APDU, before and after the card received it, so at
//! every journal step. The card comes back, a station reopens the journal and
//! serves it again. And four readers serve one station at once, each card
//! pulled at its own point and put back into another reader. Afterwards:
//!
//! - every application is verified (or failed/spoiled with a reason): none is
//!   left queued, claimed, writing or written, none lost;
//! - none is issued twice: one issued card per application, one application
//!   per card serial, and each card holds its own application (EF.ID read
//!   with the PIN from the mailer, verified by the independent verifier);
//! - the journal's event log is a chain of allowed transitions ending in each
//!   application's state.
//!
//! Latency model off; the journal lives on tmpfs (its durability is tested
//! in kart-perso, not here) to keep the whole file well under three minutes.

use std::collections::{HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Once;

use kart_apdu::{Card, CardCaps, Transport, TransportError};
use kart_e2e::{Photo, World};
use kart_perso::journal::State;
use kart_perso::record::{Pin, Validator};
use kart_perso::station::{Served, Station, StationError, StationFiles};
use kart_perso::verify::Verifier;
use kart_sim::{Faults, SimCard};
use kart_spec::Profile;
use kart_testkit::transport::LosingReader;

/// How the run is interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// The card leaves the reader after answering APDU n.
    Pull,
    /// The n-th UPDATE BINARY loses power mid-write.
    Tear,
    /// The station dies as it is about to send APDU n.
    CrashBefore,
    /// The station dies right after the card processed APDU n.
    CrashAfter,
}

/// The panic payload of a simulated station crash.
struct Crash;

/// A reader whose station dies at APDU `at`.
struct Crashing<'a> {
    card: &'a mut SimCard,
    at: u64,
    after: bool,
    sent: u64,
}

impl Transport for Crashing<'_> {
    fn transmit(&mut self, apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
        self.sent += 1;
        if self.sent == self.at && !self.after {
            std::panic::panic_any(Crash);
        }
        let result = self.card.transmit(apdu, rx);
        if self.sent == self.at {
            std::panic::panic_any(Crash);
        }
        result
    }
    fn capabilities(&self) -> CardCaps {
        self.card.capabilities()
    }
}

/// Crashes are expected: keep them quiet, report every other panic.
fn quiet_crashes() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<Crash>() {
                default(info);
            }
        }));
    });
}

/// One profile's station files, batch and issued cards.
struct Rig {
    world: World,
    profile: Profile,
    files: StationFiles,
    batch: PathBuf,
    _shm: tempfile::TempDir,
}

impl Rig {
    fn new(profile_id: &str, applications: u64) -> Rig {
        let world = World::new().expect("world");
        let profile = world.profile(profile_id).expect("profile").clone();
        let batch = world
            .write_batch("batch.csv", 1, applications, Photo::Small)
            .expect("batch");
        let shm = tempfile::Builder::new()
            .prefix("kart-tearing-")
            .tempdir_in(shm_or_tmp())
            .expect("journal dir");
        let files = StationFiles::in_dir(shm.path());
        Rig {
            world,
            profile,
            files,
            batch,
            _shm: shm,
        }
    }

    /// A station (re)started on the journal, its batch loaded again.
    fn station(&self) -> Station {
        let issuer = self.world.load_issuer().expect("issuer");
        let station = Station::open("station-1", &self.files, issuer, self.world.spec.clone())
            .expect("station opens");
        station
            .load_batch(&self.batch, Validator::new())
            .expect("batch loads");
        station
    }

    fn card(&self, serial: u32) -> SimCard {
        self.world.card(&self.profile, serial).expect("sim card")
    }
}

fn shm_or_tmp() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    }
}

/// APDUs (and UPDATE BINARY commands) of one clean station run.
fn clean_run(profile_id: &str) -> (u64, u64) {
    let rig = Rig::new(profile_id, 1);
    let station = rig.station();
    let mut card = rig.card(1);
    let served = station
        .serve("reader-0", &mut card, &rig.profile)
        .expect("serve");
    assert!(matches!(served, Served::Issued { .. }), "{served:?}");
    let log = card.log();
    (log.apdus() as u64, log.count(0xD6) as u64)
}

/// Runs one card through `fault` at point `n`, until the station issues it.
/// Returns the card, how it ended, and how often it was interrupted.
fn one_card(
    rig: &Rig,
    station: &mut Option<Station>,
    fault: Fault,
    n: u64,
    serial: u32,
) -> (SimCard, Served, u32) {
    let mut card = rig.card(serial);
    match fault {
        Fault::Pull => card.set_faults(Faults::default().pull_after(n)),
        Fault::Tear => card.set_faults(Faults::default().tear_update(n)),
        Fault::CrashBefore | Fault::CrashAfter => {}
    }
    let mut interruptions = 0;
    loop {
        let s = station.get_or_insert_with(|| rig.station());
        let crashing =
            interruptions == 0 && matches!(fault, Fault::CrashBefore | Fault::CrashAfter);
        let result = if crashing {
            let mut reader = Crashing {
                card: &mut card,
                at: n,
                after: fault == Fault::CrashAfter,
                sent: 0,
            };
            catch_unwind(AssertUnwindSafe(|| {
                s.serve("reader-0", &mut reader, &rig.profile)
            }))
        } else {
            Ok(s.serve("reader-0", &mut card, &rig.profile))
        };
        match result {
            Ok(Ok(
                served @ (Served::Issued { .. } | Served::Failed { .. } | Served::Spoiled { .. }),
            )) => {
                return (card, served, interruptions);
            }
            Ok(Ok(Served::Pulled { .. }) | Err(StationError::Probe(_))) if card.is_removed() => {
                card.reinsert();
            }
            Err(payload) if payload.is::<Crash>() => {
                // The process died: the station is gone, the card is reset by
                // the next station's reader.
                *station = None;
                card.reinsert();
            }
            Ok(other) => panic!("{fault:?} at {n}: unexpected {other:?}"),
            Err(payload) => std::panic::resume_unwind(payload),
        }
        interruptions += 1;
        assert!(
            interruptions <= 3,
            "{fault:?} at {n}: no progress after {interruptions} interruptions"
        );
    }
}

/// Every interruption point of `fault` for one profile, then every invariant.
fn every_point(profile_id: &str, fault: Fault) {
    quiet_crashes();
    let (apdus, updates) = clean_run(profile_id);
    let points = if fault == Fault::Tear { updates } else { apdus };
    assert!(points >= 5, "{profile_id}: a full run has {points} points");
    let rig = Rig::new(profile_id, points);
    let mut station = None;
    let mut cards = Vec::new();
    for n in 1..=points {
        let serial = u32::try_from(n).expect("small");
        let (card, served, interruptions) = one_card(&rig, &mut station, fault, n, serial);
        // The fault hit exactly once (a pull after the very last APDU is
        // noticed by no one), so each point was really exercised.
        let expected = u32::from(!(fault == Fault::Pull && n == points));
        assert_eq!(interruptions, expected, "{profile_id} {fault:?} at {n}");
        cards.push((n, card, served));
    }
    drop(station);
    check_outcomes(&rig, fault, &mut cards);
    check_journal(&rig.files.journal, points);
}

/// Four readers of one station at once, each card pulled at its own point
/// and put back into the next reader: the concurrent claims, resumes and
/// journal writes still issue every application once, on its own card.
fn concurrent_readers(profile_id: &str) {
    const READERS: u64 = 4;
    const PER_READER: u64 = 5;
    let (apdus, _) = clean_run(profile_id);
    let rig = Rig::new(profile_id, READERS * PER_READER);
    let station = rig.station();
    let mut cards: Vec<(u64, SimCard, Served)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..READERS)
            .map(|r| {
                let (rig, station) = (&rig, &station);
                s.spawn(move || {
                    let mut done = Vec::new();
                    for i in 0..PER_READER {
                        let serial = r * 100 + i + 1;
                        // Spread the pull points over the whole run.
                        let at = 1 + (serial * 37) % apdus;
                        let mut card = rig.card(u32::try_from(serial).expect("small"));
                        card.set_faults(Faults::default().pull_after(at));
                        let mut reader = r;
                        let served = loop {
                            let name = format!("reader-{reader}");
                            match station.serve(&name, &mut card, &rig.profile) {
                                Ok(Served::Pulled { .. }) | Err(StationError::Probe(_))
                                    if card.is_removed() =>
                                {
                                    card.reinsert();
                                    reader = (reader + 1) % READERS;
                                }
                                Ok(served) => break served,
                                Err(e) => panic!("reader {reader}, card {serial}: {e}"),
                            }
                        };
                        done.push((at, card, served));
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("reader thread"))
            .collect()
    });
    drop(station);
    check_outcomes(&rig, Fault::Pull, &mut cards);
    check_journal(&rig.files.journal, READERS * PER_READER);
}

/// The reader loses the answer to each APDU of a full run in turn; the card
/// is then presented again until the station is done with it. Every card
/// that leaves the station LOCKED and authentic (passive and active
/// authentication pass) must be the one card the journal issued to its
/// application: no genuine card exists outside the journal.
fn lost_answer_at_every_apdu(profile_id: &str) {
    let (apdus, _) = clean_run(profile_id);
    let rig = Rig::new(profile_id, apdus);
    let station = rig.station();
    let mut outcomes = Vec::new();
    for n in 1..=apdus {
        let mut card = rig.card(u32::try_from(n).expect("small"));
        let mut reader = LosingReader {
            card: &mut card,
            at: n,
            sent: 0,
        };
        let first = station.serve("reader-0", &mut reader, &rig.profile);
        let mut last = format!("{first:?}");
        for _ in 0..3 {
            if last.starts_with("Ok(Issued")
                || last.starts_with("Ok(Failed")
                || last.starts_with("Ok(Spoiled")
                || last.contains("CardLocked")
            {
                break;
            }
            card.reinsert();
            last = format!("{:?}", station.serve("reader-0", &mut card, &rig.profile));
        }
        card.reinsert();
        outcomes.push((n, card, last));
    }
    let db = rusqlite::Connection::open_with_flags(
        &rig.files.journal,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("journal");
    let now = time::OffsetDateTime::now_utc();
    let mut wrong = Vec::new();
    for (n, card, last) in &mut outcomes {
        let verdict = Verifier::new(&rig.world.trust, now)
            .verify(&mut Card::new(&mut *card))
            .expect("card reads");
        let authentic = verdict.lifecycle == "LOCKED"
            && ["sod.signature", "sod.signer", "aa"].iter().all(|id| {
                verdict
                    .check(id)
                    .is_some_and(kart_perso::verify::Check::passed)
            });
        let issued: Option<String> = db
            .query_row(
                "SELECT tracking FROM cards WHERE serial = ?1 AND status = 'issued'",
                [&verdict.csn],
                |r| r.get(0),
            )
            .ok();
        if authentic != issued.is_some() {
            wrong.push(format!(
                "answer to APDU {n} lost: card {} authentic={authentic}, journal issued={issued:?}; station: {last}",
                verdict.csn
            ));
        }
    }
    assert!(wrong.is_empty(), "{profile_id}:\n{}", wrong.join("\n"));
    check_terminal(&rig.files.journal);
}

/// Every application ended: verified, or failed/spoiled with a reason; at
/// most one issued card each.
fn check_terminal(path: &Path) {
    let db =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("journal opens");
    let bad: Vec<(String, String)> = db
        .prepare("SELECT tracking, state FROM applications WHERE state NOT IN ('verified', 'failed', 'spoiled') OR (state != 'verified' AND coalesce(reason, '') = '')")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .expect("applications");
    assert!(bad.is_empty(), "unfinished or unexplained: {bad:?}");
    let twice: i64 = db
        .query_row("SELECT count(*) FROM (SELECT tracking FROM cards WHERE status = 'issued' GROUP BY tracking HAVING count(*) > 1)", [], |r| r.get(0))
        .expect("count");
    assert_eq!(twice, 0, "applications issued on two cards");
}

/// Every application verified, on its own card, issued once.
fn check_outcomes(rig: &Rig, fault: Fault, cards: &mut [(u64, SimCard, Served)]) {
    let station = rig.station();
    let mailer = mailer_pins(&rig.files.mailer);
    let mut issued_codes = HashSet::new();
    for (n, card, served) in cards.iter_mut() {
        let Served::Issued { tracking, csn, .. } = served else {
            panic!(
                "{} {fault:?} at {n}: ended {served:?}, not issued",
                rig.profile.id
            );
        };
        assert!(
            issued_codes.insert(tracking.clone()),
            "{tracking} issued twice"
        );
        let status = station.status(tracking).expect("status");
        assert_eq!(status.state, State::Verified, "{fault:?} at {n}");
        assert_eq!(status.card_serial.as_deref(), Some(csn.as_str()));
        // The card itself, read with the PIN the mailer holds for it.
        let pin = mailer
            .get(tracking.as_str())
            .unwrap_or_else(|| panic!("no mailer entry for {tracking}"));
        let pin = Pin::parse(pin).expect("mailer PIN");
        // Out of the station's reader, into a verifier's.
        card.reinsert();
        let verdict = Verifier::new(&rig.world.trust, time::OffsetDateTime::now_utc())
            .pin(&pin)
            .verify(&mut Card::new(&mut *card))
            .expect("card reads");
        assert!(verdict.is_genuine(), "{fault:?} at {n}:\n{verdict}");
        let identity = verdict
            .content
            .identity()
            .expect("EF.ID read")
            .expect("EF.ID decodes");
        assert_eq!(
            identity.tracking_code,
            tracking.as_str(),
            "card holds another application"
        );
    }
}

/// The last mailer entry of each tracking code: its ID PIN.
fn mailer_pins(path: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(path).expect("mailer");
    let mut pins = HashMap::new();
    for line in text.lines() {
        let field = |key: &str| {
            line.split(' ')
                .find_map(|kv| kv.strip_prefix(key))
                .map(str::to_owned)
        };
        if let (Some(t), Some(p)) = (field("tracking="), field("id_pin=")) {
            pins.insert(t, p);
        }
    }
    pins
}

/// The journal's tables agree with each other and with the state machine.
fn check_journal(path: &Path, applications: u64) {
    let db =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("journal opens");
    let apps: Vec<(String, String, Option<String>)> = db
        .prepare("SELECT tracking, state, card_serial FROM applications")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .expect("applications");
    assert_eq!(
        apps.len() as u64,
        applications,
        "applications lost or added"
    );
    for (tracking, state, serial) in &apps {
        assert_eq!(state, "verified", "{tracking}");
        let issued: Vec<String> = db
            .prepare("SELECT serial FROM cards WHERE tracking = ?1 AND status = 'issued'")
            .and_then(|mut s| s.query_map([tracking], |r| r.get(0))?.collect())
            .expect("cards");
        assert_eq!(issued.len(), 1, "{tracking}: issued cards {issued:?}");
        assert_eq!(Some(&issued[0]), serial.as_ref(), "{tracking}");
        let events: Vec<(String, String)> = db
            .prepare("SELECT from_state, to_state FROM events WHERE tracking = ?1 ORDER BY id")
            .and_then(|mut s| {
                s.query_map([tracking], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .expect("events");
        let mut at = State::Queued;
        for (from, to) in &events {
            let (from, to) = (
                State::from_name(from).expect("state"),
                State::from_name(to).expect("state"),
            );
            assert_eq!(from, at, "{tracking}: event chain broken: {events:?}");
            assert!(from.can_go(to), "{tracking}: {from} -> {to} is not allowed");
            at = to;
        }
        assert_eq!(at, State::Verified, "{tracking}: events end in {at}");
    }
    let serials: i64 = db
        .query_row(
            "SELECT count(DISTINCT serial) FROM cards WHERE status = 'issued'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(
        u64::try_from(serials).ok(),
        Some(applications),
        "one issued card per application"
    );
}

#[test]
fn vendor_a_concurrent_readers_with_pulled_cards() {
    concurrent_readers("vendor-a");
}

#[test]
fn vendor_c_concurrent_readers_with_pulled_cards() {
    concurrent_readers("vendor-c");
}

/// The spec's conforming profiles, every one of which each fault covers.
fn profile_ids() -> Vec<String> {
    kart_spec::Spec::embedded()
        .expect("embedded spec")
        .profiles
        .into_iter()
        .map(|p| p.id)
        .collect()
}

#[test]
fn every_profile_reader_loses_the_answer_to_every_apdu() {
    for id in profile_ids() {
        lost_answer_at_every_apdu(&id);
    }
}

macro_rules! tearing_tests {
    ($($name:ident: $fault:expr;)*) => {$(
        #[test]
        fn $name() {
            for id in profile_ids() {
                every_point(&id, $fault);
            }
        }
    )*};
}

tearing_tests! {
    every_profile_pulled_after_every_apdu: Fault::Pull;
    every_profile_every_update_torn: Fault::Tear;
    every_profile_station_crashes_before_every_apdu: Fault::CrashBefore;
    every_profile_station_crashes_after_every_apdu: Fault::CrashAfter;
}
