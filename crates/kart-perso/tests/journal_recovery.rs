//! Crash recovery and concurrent claims on a real database (the claim and
//! card tests on every store: an `SQLite` file and a `PostgreSQL` server). A crash is a
//! real one: a child process drives an application into a state and aborts.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::thread;

use kart_perso::journal::{Journal, JournalOptions, Recovery, State};
use kart_perso::record::TrackingCode;

#[macro_use]
mod journal_support;

const CHILD_ENV: &str = "KART_JOURNAL_CRASH_CHILD";

/// `n` valid tracking codes.
fn codes(n: usize) -> Vec<TrackingCode> {
    kart_testkit::engine::codes(n, 14_040_904_000)
}

/// Puts `codes(2)[0]` into `state` and `codes(2)[1]` into `verified`.
fn drive(journal: &mut Journal, state: State) {
    let [t, done] = <[TrackingCode; 2]>::try_from(codes(2)).unwrap();
    journal.enqueue_batch("batch.csv", [&t, &done]).unwrap();
    assert_eq!(
        journal.claim_next("st-1", "r0").unwrap().unwrap().tracking,
        t
    );
    assert_eq!(
        journal.claim_next("st-1", "r1").unwrap().unwrap().tracking,
        done
    );
    journal.mark_writing(&done, "CARD-1", "vendor-a").unwrap();
    journal.mark_written(&done).unwrap();
    journal.mark_verified(&done).unwrap();
    match state {
        State::Queued => journal.release(&t).unwrap(),
        State::Claimed => {}
        State::Failed => journal.mark_failed(&t, "reader gone").unwrap(),
        _ => {
            journal.mark_writing(&t, "CARD-0", "vendor-a").unwrap();
            match state {
                State::Spoiled => journal.mark_spoiled(&t, "tearing").unwrap(),
                State::Written | State::Verified => {
                    journal.mark_written(&t).unwrap();
                    if state == State::Verified {
                        journal.mark_verified(&t).unwrap();
                    }
                }
                _ => {}
            }
        }
    }
}

/// Not a test on its own: the child process of `crash_in_every_state`.
#[test]
#[ignore = "helper run in a child process by crash_in_every_state"]
fn crash_child() {
    let spec = std::env::var(CHILD_ENV).expect("run by crash_in_every_state");
    let (path, state) = spec.split_once('|').unwrap();
    let mut journal = Journal::open(path).unwrap();
    drive(&mut journal, State::from_name(state).unwrap());
    // No drop, no close, no checkpoint: the process dies here.
    std::process::abort();
}

fn crash_in(dir: &Path, state: State) -> std::path::PathBuf {
    let path = dir.join(format!("{state}.db"));
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{}|{state}", path.display()))
        .output()
        .unwrap();
    assert!(!status.status.success(), "the child must die by abort");
    assert!(
        path.with_extension("db-wal").exists(),
        "the child left its WAL behind"
    );
    path
}

#[test]
fn crash_in_every_state_then_recover_lists_exactly_the_unfinished() {
    let dir = tempfile::tempdir().unwrap();
    let [t, done] = <[TrackingCode; 2]>::try_from(codes(2)).unwrap();
    for state in State::ALL {
        let path = crash_in(dir.path(), state);
        let journal = Journal::open(&path).unwrap();
        assert_eq!(
            journal.status(&t).unwrap().state,
            state,
            "the last transition survived the crash"
        );
        assert_eq!(journal.status(&done).unwrap().state, State::Verified);
        let unfinished = journal.recover().unwrap();
        if state.is_unfinished() {
            assert_eq!(unfinished.len(), 1, "{state}");
            let u = &unfinished[0];
            assert_eq!((&u.status.tracking, u.status.state), (&t, state));
            assert_eq!(
                (u.status.station.as_deref(), u.status.reader.as_deref()),
                (Some("st-1"), Some("r0"))
            );
            let (card, recovery) = match state {
                State::Claimed => (None, Recovery::Requeue),
                State::Writing => (Some("CARD-0"), Recovery::RepersonalizeOrSpoil),
                _ => (Some("CARD-0"), Recovery::Verify),
            };
            assert_eq!(
                (u.status.card_serial.as_deref(), u.recovery),
                (card, recovery)
            );
            // Following the advice finishes the application on the same card.
            match recovery {
                Recovery::Requeue => {
                    journal.release(&t).unwrap();
                    journal.claim_next("st-2", "r0").unwrap().unwrap();
                    journal.mark_writing(&t, "CARD-0", "vendor-a").unwrap();
                    journal.mark_written(&t).unwrap();
                }
                Recovery::RepersonalizeOrSpoil => {
                    journal.mark_writing(&t, "CARD-0", "vendor-a").unwrap();
                    journal.mark_written(&t).unwrap();
                }
                Recovery::Verify => {}
            }
            journal.mark_verified(&t).unwrap();
            assert!(journal.recover().unwrap().is_empty());
        } else {
            assert!(unfinished.is_empty(), "{state}: {unfinished:?}");
        }
        // Never issued twice: the verified application is not claimable and
        // its card cannot be written for anyone else.
        assert!(journal
            .claim_next("st-2", "r0")
            .unwrap()
            .is_none_or(|c| c.tracking != done));
    }
}

on_every_store! {
    #[test]
    fn two_threads_with_their_own_connections_never_claim_the_same_application() {
        let place = journal_support::fresh();
        let all = codes(300);
        journal_support::open(&place)
            .enqueue_batch("big.csv", &all)
            .unwrap();
        let workers: Vec<_> = (0..2)
            .map(|reader| {
                let location = place.location.clone();
                thread::spawn(move || {
                    let journal =
                        Journal::open_location(&location, &JournalOptions::default()).unwrap();
                    let mut mine = Vec::new();
                    while let Some(claim) = journal.claim_next("st-1", &format!("r{reader}")).unwrap() {
                        mine.push(claim.tracking);
                    }
                    mine
                })
            })
            .collect();
        let claimed: Vec<Vec<TrackingCode>> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        let (a, b): (HashSet<_>, HashSet<_>) =
            (claimed[0].iter().collect(), claimed[1].iter().collect());
        assert_eq!(a.len(), claimed[0].len(), "no duplicate within a reader");
        assert!(a.is_disjoint(&b), "no application claimed by both readers");
        assert_eq!(
            a.len() + b.len(),
            all.len(),
            "every application claimed once"
        );
        let journal = journal_support::open(&place);
        assert_eq!(journal.report().unwrap().in_progress, 300);
    }
}

on_every_store! {
    #[test]
    fn the_application_awaiting_a_card_is_found_by_its_serial_in_every_state() {
        for state in State::ALL {
            let place = journal_support::fresh();
            let mut journal = journal_support::open(&place);
            drive(&mut journal, state);
            let t = &codes(1)[0];
            let found = journal.unfinished_for_card("CARD-0").unwrap();
            let expected = match state {
                State::Writing => Some(Recovery::RepersonalizeOrSpoil),
                State::Written => Some(Recovery::Verify),
                // Claimed has no card yet; the rest are finished or queued.
                _ => None,
            };
            assert_eq!(found.as_ref().map(|u| u.recovery), expected, "{state}");
            if let Some(u) = found {
                assert_eq!(&u.status.tracking, t);
                assert_eq!(u.status.card_serial.as_deref(), Some("CARD-0"));
                // The same answer recover() gives for that card.
                let listed = journal.recover().unwrap();
                assert!(listed.contains(&u), "{state}: {listed:?}");
            }
            // The verified application's card is awaited by nobody.
            assert!(journal.unfinished_for_card("CARD-1").unwrap().is_none());
            assert!(journal.unfinished_for_card("CARD-9").unwrap().is_none());
        }
    }
}

on_every_store! {
    #[test]
    fn a_card_released_by_a_failure_is_awaited_by_its_next_application_only() {
        let place = journal_support::fresh();
        let journal = journal_support::open(&place);
        let [a, b] = <[TrackingCode; 2]>::try_from(codes(2)).unwrap();
        journal.enqueue_batch("batch.csv", [&a, &b]).unwrap();
        journal.claim_next("st-1", "r0").unwrap();
        journal.mark_writing(&a, "CARD-0", "vendor-a").unwrap();
        journal.mark_failed(&a, "channel refused").unwrap();
        assert!(journal.unfinished_for_card("CARD-0").unwrap().is_none());
        journal.claim_next("st-1", "r0").unwrap();
        journal.mark_writing(&b, "CARD-0", "vendor-a").unwrap();
        let waiting = journal.unfinished_for_card("CARD-0").unwrap().unwrap();
        assert_eq!(waiting.status.tracking, b);
        assert!(matches!(
            journal.unfinished_for_card(" "),
            Err(kart_perso::journal::JournalError::BadArgument(_))
        ));
    }
}

on_every_store! {
    #[test]
    fn rejected_applications_are_failed_at_enqueue_and_never_claimed() {
        let place = journal_support::fresh();
        let journal = journal_support::open(&place);
        let [good, bad, late, other] = <[TrackingCode; 4]>::try_from(codes(4)).unwrap();
        journal.enqueue_batch("other.csv", [&other]).unwrap();
        journal.enqueue_batch("batch.csv", [&good, &late]).unwrap();
        let report = journal
            .reject(
                "batch.csv",
                [
                    (&bad, "line 3, gender: must be M or F"),
                    // Queued from an earlier load, invalid in this one.
                    (&late, "line 4, photo: cannot read face.jpg"),
                    // Another batch's application: left alone.
                    (&other, "line 5, gender: must be M or F"),
                ],
            )
            .unwrap();
        assert_eq!(report.added, 1);
        assert_eq!(report.already_present, 1);
        assert_eq!(report.in_other_batch, vec![other.clone()]);
        for (t, reason) in [(&bad, "gender"), (&late, "photo")] {
            let status = journal.status(t).unwrap();
            assert_eq!(status.state, State::Failed);
            assert_eq!(status.attempts, 0, "never claimed");
            assert!(status.reason.unwrap().contains(reason));
        }
        assert_eq!(journal.status(&other).unwrap().state, State::Queued);
        let counts = journal.report().unwrap();
        assert_eq!((counts.failed, counts.pending), (2, 2));
        assert!(counts
            .reasons
            .iter()
            .any(|(r, n)| r.contains("gender") && *n == 1));

        // Loading again changes nothing; only valid applications are claimed.
        let again = journal
            .reject("batch.csv", [(&bad, "line 3, gender: must be M or F")])
            .unwrap();
        assert_eq!((again.added, again.already_present), (0, 1));
        assert_eq!(journal.report().unwrap().failed, 2);
        let mut claimed = HashSet::new();
        while let Some(claim) = journal.claim_next("st-1", "r0").unwrap() {
            claimed.insert(claim.tracking);
        }
        assert_eq!(claimed, HashSet::from([good, other]));
        // A rejected application can be queued again once its record is fixed.
        journal.requeue(&bad).unwrap();
        assert_eq!(journal.status(&bad).unwrap().state, State::Queued);
    }
}

on_every_store! {
    #[test]
    fn a_rejection_with_an_unstorable_reason_changes_nothing() {
        let place = journal_support::fresh();
        let journal = journal_support::open(&place);
        let [a, b] = <[TrackingCode; 2]>::try_from(codes(2)).unwrap();
        let long = "x".repeat(5000);
        let err = journal
            .reject(
                "batch.csv",
                [(&a, "line 2, gender: bad"), (&b, long.as_str())],
            )
            .unwrap_err();
        assert!(err.to_string().contains("reason"), "{err}");
        assert!(matches!(
            journal.status(&a),
            Err(kart_perso::journal::JournalError::UnknownApplication(_))
        ));
    }
}
