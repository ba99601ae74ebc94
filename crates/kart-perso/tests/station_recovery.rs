//! Pulled cards and crashed stations: the application waits in the journal,
//! the card comes back, and the run ends verified with exactly one issuance.
//! A reader that loses the card's answer is handled like a pulled card.

use std::time::Duration;

use kart_perso::journal::{Journal, JournalError, JournalOptions, State};
use kart_perso::station::Served;
use kart_sim::{Faults, SimCard};
use kart_testkit::engine::*;
use kart_testkit::transport::LosingReader;

/// The card of a clean run (personalization plus read-back, application 1),
/// with its APDU log.
fn clean_run(profile_id: &str) -> SimCard {
    let dir = tempfile::tempdir().unwrap();
    let batch = batch_file(dir.path(), &[row(1, "face.jpg")], 3000);
    let station = station(dir.path(), "probe");
    station.load_batch(&batch, validator()).unwrap();
    let spec = spec();
    let profile = spec.profile(profile_id).unwrap();
    let mut card = station_sim(dir.path(), profile, 1);
    assert!(matches!(
        station.serve("r", &mut card, profile).unwrap(),
        Served::Issued { .. }
    ));
    card
}

/// APDUs a complete personalization plus read-back takes on a clean card.
fn full_run_apdus(profile_id: &str) -> u64 {
    clean_run(profile_id).log().entries().len() as u64
}

/// Serves `card` until the application is verified, re-inserting it after each pull.
fn serve_until_done(
    station: &kart_perso::station::Station,
    card: &mut SimCard,
    profile: &kart_spec::Profile,
) -> usize {
    let mut pulls = 0;
    loop {
        match station.serve("reader-0", &mut *card, profile) {
            Ok(Served::Issued { tracking, .. }) => {
                assert_eq!(tracking, code(1));
                return pulls;
            }
            Ok(Served::Pulled { .. }) | Err(_) if card.is_removed() => {
                pulls += 1;
                card.reinsert();
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(pulls < 3, "no progress");
    }
}

/// The ids of the spec's conforming profiles.
fn profile_ids() -> Vec<String> {
    spec().profiles.into_iter().map(|p| p.id).collect()
}

#[test]
fn card_pulled_at_any_point_resumes_to_one_verified_issuance() {
    for id in profile_ids() {
        let id = id.as_str();
        let total = full_run_apdus(id);
        // Early (probe), during files, key generation, PINs, around the lock, during read-back.
        let points = [
            2,
            9,
            total / 4,
            total / 2,
            total * 2 / 3,
            total - 12,
            total - 6,
            total - 1,
        ];
        for pull_after in points {
            let dir = tempfile::tempdir().unwrap();
            let batch = batch_file(dir.path(), &[row(1, "face.jpg"), row(2, "face.jpg")], 3000);
            let station = station(dir.path(), "station-1");
            station.load_batch(&batch, validator()).unwrap();
            let spec = spec();
            let profile = spec.profile(id).unwrap();
            let mut card = station_sim(dir.path(), profile, 7);
            card.set_faults(Faults::default().pull_after(pull_after));
            let pulls = serve_until_done(&station, &mut card, profile);
            assert_eq!(pulls, 1, "{id} pulled after {pull_after}");
            let status = station.status(&code(1)).unwrap();
            assert_eq!(
                status.state,
                State::Verified,
                "{id} pulled after {pull_after}"
            );
            assert_eq!(status.attempts, 1, "{id}: claimed once");
            // One current PIN-mailer line per application: a resumed card's
            // earlier entry is marked superseded, so a print run takes one.
            let mailer = std::fs::read_to_string(dir.path().join("pin-mailer.txt")).unwrap();
            let own = format!("tracking={} ", code(1));
            let (current, superseded): (Vec<&str>, Vec<&str>) = mailer
                .lines()
                .filter(|l| l.starts_with(&own))
                .partition(|l| l.ends_with(" superseded=0"));
            assert_eq!(current.len(), 1, "{id} pulled after {pull_after}: {mailer}");
            assert!(
                superseded.iter().all(|l| l.ends_with(" superseded=1")),
                "{id} pulled after {pull_after}: {mailer}"
            );
            // The second application was never touched, and goes to the next card.
            assert_eq!(station.status(&code(2)).unwrap().state, State::Queued);
            // The issued card is not given to the next application.
            card.reinsert();
            assert!(
                station.serve("reader-0", &mut card, profile).is_err(),
                "{id}: locked card reused"
            );
            assert_eq!(station.status(&code(2)).unwrap().state, State::Queued);
        }
    }
}

#[test]
fn torn_write_resumes_to_one_verified_issuance() {
    let dir = tempfile::tempdir().unwrap();
    let (station, _) = loaded_station(dir.path(), 1, 3000);
    let spec = spec();
    let profile = spec.profile("vendor-a").unwrap();
    let mut card = station_sim(dir.path(), profile, 9);
    card.set_faults(Faults::default().tear_update(5));
    assert_eq!(serve_until_done(&station, &mut card, profile), 1);
    assert_eq!(station.status(&code(1)).unwrap().state, State::Verified);
}

#[test]
fn crashed_station_mid_write_recovers_on_restart() {
    for id in profile_ids() {
        let id = id.as_str();
        let total = full_run_apdus(id);
        for stop_after in [total / 3, total - 6] {
            let dir = tempfile::tempdir().unwrap();
            let batch = batch_file(dir.path(), &[row(1, "face.jpg")], 3000);
            let spec = spec();
            let profile = spec.profile(id).unwrap();
            let mut card = station_sim(dir.path(), profile, 11);
            {
                let station = station(dir.path(), "station-1");
                station.load_batch(&batch, validator()).unwrap();
                // The power goes: the card stops answering and the station is dropped mid-run.
                card.set_faults(Faults::default().pull_after(stop_after));
                let _ = station.serve("reader-0", &mut card, profile);
                let state = station.status(&code(1)).unwrap().state;
                assert!(
                    matches!(state, State::Writing | State::Written),
                    "{id}: {state}"
                );
            }
            // Restart: a new station on the same files, the batch read again.
            let station = station(dir.path(), "station-1");
            station.load_batch(&batch, validator()).unwrap();
            card.reinsert();
            assert!(
                matches!(
                    station.serve("reader-0", &mut card, profile).unwrap(),
                    Served::Issued { .. }
                ),
                "{id} stopped after {stop_after}"
            );
            let status = station.status(&code(1)).unwrap();
            assert_eq!((status.state, status.attempts), (State::Verified, 1));
        }
    }
}

#[test]
fn application_claimed_by_a_crashed_station_goes_back_to_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let batch = batch_file(dir.path(), &[row(1, "face.jpg")], 3000);
    {
        let station = station(dir.path(), "station-1");
        station.load_batch(&batch, validator()).unwrap();
    }
    {
        // Crash between claim and the first card command; the crashed
        // process never renews its lease, which has run out by now.
        let expired = JournalOptions {
            lease: Duration::ZERO,
            ..JournalOptions::default()
        };
        let journal = Journal::open_with(dir.path().join("journal.db"), &expired).unwrap();
        journal
            .claim_next("station-1", "reader-0")
            .unwrap()
            .unwrap();
    }
    let station = station(dir.path(), "station-1");
    assert_eq!(station.status(&code(1)).unwrap().state, State::Queued);
    station.load_batch(&batch, validator()).unwrap();
    let (_card, served) = serve_new_card(&station, "reader-0", dir.path(), "vendor-b", 3);
    assert!(matches!(served, Served::Issued { .. }));
}

#[test]
fn another_stations_claim_is_left_alone_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let batch = batch_file(dir.path(), &[row(1, "face.jpg")], 3000);
    station(dir.path(), "station-1")
        .load_batch(&batch, validator())
        .unwrap();
    let journal = Journal::open(dir.path().join("journal.db")).unwrap();
    journal
        .claim_next("station-2", "reader-0")
        .unwrap()
        .unwrap();
    let _station = station(dir.path(), "station-1");
    assert_eq!(station_state(&journal), State::Claimed);
}

#[test]
fn a_live_process_of_the_same_station_name_keeps_its_claim() {
    let dir = tempfile::tempdir().unwrap();
    let batch = batch_file(dir.path(), &[row(1, "face.jpg")], 3000);
    station(dir.path(), "kart")
        .load_batch(&batch, validator())
        .unwrap();
    // Another `kart personalize` of the same name and directory, alive and
    // between its claim and its first card command.
    let running = Journal::open(dir.path().join("journal.db")).unwrap();
    running.claim_next("kart", "reader-0").unwrap().unwrap();
    let second = station(dir.path(), "kart");
    assert_eq!(station_state(&running), State::Claimed);
    // Its claim is still its own to write for; the second station cannot.
    let spec = spec();
    let profile = spec.profile("vendor-b").unwrap();
    let mut card = station_sim(dir.path(), profile, 7);
    assert_eq!(
        second.serve("reader-1", &mut card, profile).unwrap(),
        Served::QueueEmpty
    );
    running
        .mark_writing(&code(1), "4790503300000007", "vendor-b")
        .unwrap();
}

#[test]
fn only_the_owner_of_a_claim_writes_for_it_and_only_expired_leases_are_reclaimed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let short = JournalOptions {
        lease: Duration::from_secs(2),
        ..JournalOptions::default()
    };
    let owner = Journal::open_with(&path, &short).unwrap();
    owner.enqueue_batch("batch.csv", [&code(1)]).unwrap();
    owner.claim_next("desk-1", "reader-0").unwrap().unwrap();
    let other = Journal::open(&path).unwrap();
    assert_ne!(owner.owner(), other.owner());
    assert!(other.reclaim_expired().unwrap().is_empty());
    match other.mark_writing(&code(1), "4790503300000001", "vendor-b") {
        Err(JournalError::ClaimLost { owner: held, .. }) => assert_eq!(held, owner.owner()),
        r => panic!("{r:?}"),
    }
    // Renewed, the lease outlives its first term; unrenewed, it runs out.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(owner.renew_leases().unwrap(), 1);
    std::thread::sleep(Duration::from_millis(1200));
    assert!(other.reclaim_expired().unwrap().is_empty());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(other.reclaim_expired().unwrap(), [code(1)]);
    assert_eq!(other.status(&code(1)).unwrap().state, State::Queued);
    // The old owner lost it: it may not write for it any more.
    other.claim_next("desk-2", "reader-0").unwrap().unwrap();
    assert!(matches!(
        owner.mark_writing(&code(1), "4790503300000001", "vendor-b"),
        Err(JournalError::ClaimLost { .. })
    ));
}

fn station_state(journal: &Journal) -> State {
    journal.status(&code(1)).unwrap().state
}

#[test]
fn locked_card_that_does_not_verify_is_spoiled() {
    // A card written for application 1 but presented with a CRN allocator that
    // lost its record cannot prove its CRN: it is spoiled, never issued.
    let dir = tempfile::tempdir().unwrap();
    let batch = batch_file(dir.path(), &[row(1, "face.jpg")], 3000);
    let spec = spec();
    let profile = spec.profile("vendor-c").unwrap();
    let mut card = station_sim(dir.path(), profile, 5);
    let total = full_run_apdus("vendor-c");
    {
        let station = station(dir.path(), "station-1");
        station.load_batch(&batch, validator()).unwrap();
        card.set_faults(Faults::default().pull_after(total - 6));
        let _ = station.serve("reader-0", &mut card, profile);
    }
    std::fs::remove_file(dir.path().join("crn.db")).unwrap();
    // The fresh allocator hands the card's old number to another card first.
    kart_perso::crn::CrnAllocator::open(&dir.path().join("crn.db"))
        .unwrap()
        .allocate("0000000000000000", "000000000000")
        .unwrap();
    let station = station(dir.path(), "station-1");
    station.load_batch(&batch, validator()).unwrap();
    card.reinsert();
    match station.serve("reader-0", &mut card, profile).unwrap() {
        Served::Spoiled { tracking, reason } => {
            assert_eq!(tracking, code(1));
            assert!(reason.contains("CRN"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(station.status(&code(1)).unwrap().state, State::Spoiled);
}

/// Position (1-based) of the SET STATUS LOCKED command (INS F0, the last
/// one of a run) in a clean run.
fn set_status_locked_at(profile_id: &str) -> u64 {
    let card = clean_run(profile_id);
    let entries = card.log().entries();
    let at = entries.iter().rposition(|e| e.ins == 0xF0).unwrap();
    at as u64 + 1
}

/// The station loses the answer to APDU `at` of the first run: the
/// application must stay `left` (bound to the card, not failed or spoiled),
/// and the card put back must end issued to that one application.
fn lost_answer_resumes(profile_id: &str, at: u64, left: State) {
    let dir = tempfile::tempdir().unwrap();
    let (station, _) = loaded_station(dir.path(), 2, 3000);
    let spec = spec();
    let profile = spec.profile(profile_id).unwrap();
    let mut card = station_sim(dir.path(), profile, 1);
    let mut reader = LosingReader {
        card: &mut card,
        at,
        sent: 0,
    };
    let served = station.serve("reader-0", &mut reader, profile).unwrap();
    let Served::Pulled { tracking, csn } = served else {
        panic!("{profile_id}, answer {at} lost: {served:?}");
    };
    assert_eq!(tracking, code(1));
    let status = station.status(&code(1)).unwrap();
    assert_eq!(status.state, left, "{profile_id}");
    assert_eq!(status.card_serial.as_deref(), Some(csn.as_str()));

    card.reinsert();
    match station.serve("reader-0", &mut card, profile).unwrap() {
        Served::Issued {
            tracking,
            csn: again,
            ..
        } => {
            assert_eq!((tracking, again), (code(1), csn));
        }
        other => panic!("{profile_id}: {other:?}"),
    }
    // The second application is still queued, for another card.
    assert_eq!(station.status(&code(2)).unwrap().state, State::Queued);
}

#[test]
fn answer_to_set_status_locked_lost_keeps_the_locked_card_bound_to_its_application() {
    for profile_id in profile_ids() {
        let profile_id = profile_id.as_str();
        lost_answer_resumes(profile_id, set_status_locked_at(profile_id), State::Writing);
    }
}

#[test]
fn answer_lost_during_read_back_leaves_the_application_written_until_verified() {
    for profile_id in profile_ids() {
        let profile_id = profile_id.as_str();
        lost_answer_resumes(profile_id, full_run_apdus(profile_id), State::Written);
    }
}
