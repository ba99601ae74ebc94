//! `kart journal migrate` in the library: a station's `SQLite` journal and
//! CRN register moved into a shared `PostgreSQL` journal (a private server
//! the test starts) keep every state; a second run moves nothing; a
//! conflict moves nothing at all.

use std::time::Duration;

use kart_perso::crn::CrnAllocator;
use kart_perso::journal::{migrate, Journal, JournalLocation, JournalOptions, State, Step};
use kart_perso::record::TrackingCode;
use kart_pg_harness::PgServer;

/// `n` valid tracking codes.
fn codes(n: usize) -> Vec<TrackingCode> {
    kart_testkit::engine::codes(n, 14_040_904_000)
}

/// A station journal with an application in every state.
fn station_journal(path: &std::path::Path, all: &[TrackingCode]) {
    let j = Journal::open(path).unwrap();
    j.enqueue_batch("desk.csv", all).unwrap();
    let claim = || j.claim_next("desk-1", "r0").unwrap().unwrap().tracking;
    let (verified, failed, spoiled, writing, written, claimed) =
        (claim(), claim(), claim(), claim(), claim(), claim());
    for (t, serial) in [
        (&verified, "C-1"),
        (&spoiled, "C-3"),
        (&writing, "C-4"),
        (&written, "C-5"),
    ] {
        j.mark_writing(t, serial, "vendor-a").unwrap();
        j.mark_step_started(t, "write EF.ID").unwrap();
    }
    j.mark_step(
        &verified,
        &Step::new("write EF.ID", Duration::from_millis(120), 4, 900, 8),
    )
    .unwrap();
    j.mark_written(&verified).unwrap();
    j.mark_verified(&verified).unwrap();
    j.mark_failed(&failed, "reader error").unwrap();
    j.mark_spoiled(&spoiled, "tearing").unwrap();
    j.mark_written(&written).unwrap();
    assert_eq!(j.status(&claimed).unwrap().state, State::Claimed);
}

#[test]
fn a_station_journal_moves_with_every_state_once_and_conflicts_move_nothing() {
    let pg = PgServer::start().unwrap();
    let JournalLocation::Postgres(url) = pg.url().parse().unwrap() else {
        panic!("a PostgreSQL URL")
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let all = codes(8);
    station_journal(&path, &all);
    let crn_path = dir.path().join("crn.db");
    let crns = CrnAllocator::open(&crn_path).unwrap();
    let first_crn = crns.allocate("C-1", all[0].as_str()).unwrap();
    crns.allocate("C-4", all[3].as_str()).unwrap();
    drop(crns);

    let moved = migrate(&path, Some(&crn_path), &url).unwrap();
    assert_eq!(
        (
            moved.applications,
            moved.already_present,
            moved.cards,
            moved.crns
        ),
        (8, 0, 4, 2)
    );

    let local = Journal::open(&path).unwrap();
    let shared = Journal::open_location(
        &JournalLocation::Postgres(url.clone()),
        &JournalOptions::default(),
    )
    .unwrap();
    for code in &all {
        assert_eq!(
            shared.status(code).unwrap(),
            local.status(code).unwrap(),
            "{code}"
        );
    }
    assert_eq!(shared.report().unwrap(), local.report().unwrap());
    assert_eq!(
        shared.stranded(None).unwrap(),
        local.stranded(None).unwrap()
    );
    assert_eq!(shared.recover().unwrap(), local.recover().unwrap());
    // Claims keep their owner: the station's connection is not this one,
    // so another station cannot write for the claimed application.
    let claimed = &all[5];
    let other = Journal::open_location(
        &JournalLocation::Postgres(url.clone()),
        &JournalOptions::default(),
    )
    .unwrap();
    assert!(matches!(
        other.mark_writing(claimed, "C-9", "vendor-a"),
        Err(kart_perso::journal::JournalError::ClaimLost { .. })
    ));

    // CRNs: the same pair keeps its number; the next one follows the register.
    let shared_crns = CrnAllocator::open_shared(&url).unwrap();
    assert_eq!(
        shared_crns.allocate("C-1", all[0].as_str()).unwrap(),
        first_crn
    );
    let next = shared_crns.allocate("C-7", all[6].as_str()).unwrap();
    assert_eq!(next, kart_perso::crn::crn_of(3));

    // Again: nothing moves.
    let again = migrate(&path, Some(&crn_path), &url).unwrap();
    assert_eq!(
        (
            again.applications,
            again.already_present,
            again.cards,
            again.crns
        ),
        (0, 8, 0, 0)
    );

    // Another desk's journal holding one of these applications in another
    // state: refused, and nothing of it moves.
    let other_path = dir.path().join("other.db");
    let desk = Journal::open(&other_path).unwrap();
    let extra = codes(10).remove(9);
    desk.enqueue_batch("desk.csv", [&all[7], &extra]).unwrap();
    desk.claim_next("desk-2", "r0").unwrap();
    drop(desk);
    let error = migrate(&other_path, None, &url).unwrap_err().to_string();
    assert!(
        error.contains(all[7].as_str()) && error.contains("nothing was migrated"),
        "{error}"
    );
    assert!(matches!(
        shared.status(&extra),
        Err(kart_perso::journal::JournalError::UnknownApplication(_))
    ));
}
