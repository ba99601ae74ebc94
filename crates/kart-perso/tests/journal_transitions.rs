//! Every transition of the journal's state machine, valid and invalid, on a
//! real database of every store (an `SQLite` file, a `PostgreSQL` server the
//! test starts), and the card-serial rules.

use kart_perso::journal::{Journal, JournalError, State, Step};
use kart_perso::record::TrackingCode;
use std::time::Duration;

#[macro_use]
mod journal_support;

/// Valid tracking codes (Luhn check digits computed with Python, see `record_fields.rs`).
const CODES: [&str; 4] = [
    "140409040007",
    "140409040015",
    "140409040023",
    "140409040031",
];

fn code(i: usize) -> TrackingCode {
    TrackingCode::parse(CODES[i]).unwrap()
}

fn journal() -> (journal_support::Place, Journal) {
    journal_of(CODES.len())
}

fn journal_of(n: usize) -> (journal_support::Place, Journal) {
    let place = journal_support::fresh();
    let journal = journal_support::open(&place);
    let codes: Vec<TrackingCode> = (0..n).map(code).collect();
    journal.enqueue_batch("batch-a.csv", &codes).unwrap();
    (place, journal)
}

/// Drives application `code(0)` into `state` by the shortest legal path.
fn drive(journal: &mut Journal, state: State) -> TrackingCode {
    let t = code(0);
    if state == State::Queued {
        return t;
    }
    assert_eq!(journal.claim_next("st", "r0").unwrap().unwrap().tracking, t);
    match state {
        State::Claimed => {}
        State::Failed => journal.mark_failed(&t, "reader error").unwrap(),
        _ => {
            journal.mark_writing(&t, "CARD-0", "vendor-a").unwrap();
            match state {
                State::Writing => {}
                State::Spoiled => journal.mark_spoiled(&t, "tearing").unwrap(),
                _ => {
                    journal.mark_written(&t).unwrap();
                    if state == State::Verified {
                        journal.mark_verified(&t).unwrap();
                    }
                }
            }
        }
    }
    assert_eq!(journal.status(&t).unwrap().state, state);
    t
}

/// Attempts the move to `to` with the journal's public API.
fn attempt(
    journal: &mut Journal,
    t: &TrackingCode,
    from: State,
    to: State,
) -> Result<(), JournalError> {
    match to {
        State::Queued if from == State::Claimed => journal.release(t),
        State::Queued => journal.requeue(t),
        State::Claimed => match journal.claim_next("st", "r1")? {
            Some(claim) if &claim.tracking == t => Ok(()),
            Some(claim) => panic!("claimed {} instead", claim.tracking),
            None => Err(JournalError::InvalidTransition {
                tracking: t.clone(),
                from,
                to,
            }),
        },
        State::Writing => journal.mark_writing(t, "CARD-0", "vendor-a"),
        State::Written => journal.mark_written(t),
        State::Verified => journal.mark_verified(t),
        State::Failed => journal.mark_failed(t, "test"),
        State::Spoiled => journal.mark_spoiled(t, "test"),
    }
}

on_every_store! {
    #[test]
    fn every_pair_of_states_is_accepted_or_refused_as_specified() {
        use State::{Claimed, Failed, Queued, Spoiled, Verified, Writing, Written};
        let allowed = [
            (Queued, Claimed),
            (Queued, Failed),
            (Claimed, Queued),
            (Claimed, Writing),
            (Claimed, Failed),
            (Writing, Writing),
            (Writing, Written),
            (Writing, Failed),
            (Writing, Spoiled),
            (Written, Writing),
            (Written, Verified),
            (Written, Failed),
            (Written, Spoiled),
            (Failed, Queued),
            (Spoiled, Queued),
        ];
        for from in State::ALL {
            for to in State::ALL {
                // One application only, so a claim can only take that one.
                let (_dir, mut journal) = journal_of(1);
                let t = drive(&mut journal, from);
                let events_before = journal.report().unwrap();
                let result = attempt(&mut journal, &t, from, to);
                let expected = allowed.contains(&(from, to));
                assert_eq!(from.can_go(to), expected, "{from} -> {to}");
                if expected {
                    result.unwrap_or_else(|e| panic!("{from} -> {to} refused: {e}"));
                    assert_eq!(journal.status(&t).unwrap().state, to);
                } else {
                    match result {
                        Err(JournalError::InvalidTransition {
                            from: f, to: t2, ..
                        }) => assert_eq!((f, t2), (from, to)),
                        other => panic!("{from} -> {to}: expected InvalidTransition, got {other:?}"),
                    }
                    assert_eq!(
                        journal.status(&t).unwrap().state,
                        from,
                        "refused move changed nothing"
                    );
                    assert_eq!(journal.report().unwrap(), events_before);
                }
            }
        }
    }
}

on_every_store! {
    #[test]
    fn unknown_application_is_a_typed_error() {
        let (_dir, journal) = journal();
        let stranger = TrackingCode::parse("999999999991").unwrap();
        assert!(matches!(
            journal.mark_written(&stranger),
            Err(JournalError::UnknownApplication(_))
        ));
        assert!(matches!(
            journal.status(&stranger),
            Err(JournalError::UnknownApplication(_))
        ));
    }
}

on_every_store! {
    #[test]
    fn verified_application_is_never_claimed_again() {
        let (_dir, mut journal) = journal();
        let t = drive(&mut journal, State::Verified);
        let mut claimed = Vec::new();
        while let Some(claim) = journal.claim_next("st", "r0").unwrap() {
            claimed.push(claim.tracking);
        }
        assert_eq!(claimed.len(), CODES.len() - 1);
        assert!(!claimed.contains(&t));
        assert!(matches!(
            journal.requeue(&t),
            Err(JournalError::InvalidTransition { .. })
        ));
    }
}

on_every_store! {
    #[test]
    fn a_card_serial_is_issued_to_at_most_one_application() {
        let (_dir, mut journal) = journal();
        let first = drive(&mut journal, State::Verified);
        let second = journal.claim_next("st", "r0").unwrap().unwrap().tracking;
        assert_ne!(first, second);
        let err = journal
            .mark_writing(&second, "CARD-0", "vendor-a")
            .unwrap_err();
        assert!(
            matches!(&err, JournalError::CardIssued { serial, tracking } if serial == "CARD-0" && tracking == first.as_str()),
            "{err}"
        );
        assert_eq!(journal.status(&second).unwrap().state, State::Claimed);
        journal.mark_writing(&second, "CARD-1", "vendor-a").unwrap();
        // A card being written for one application cannot be taken by another.
        let third = journal.claim_next("st", "r1").unwrap().unwrap().tracking;
        assert!(matches!(
            journal.mark_writing(&third, "CARD-1", "vendor-a"),
            Err(JournalError::CardInUse { .. })
        ));
        // A spoiled card is never reused, even for the same application.
        journal
            .mark_spoiled(&second, "tearing during UPDATE BINARY")
            .unwrap();
        journal.requeue(&second).unwrap();
        journal.release(&third).unwrap();
        let again = journal.claim_next("st", "r0").unwrap().unwrap().tracking;
        assert!(matches!(
            journal.mark_writing(&again, "CARD-1", "vendor-a"),
            Err(JournalError::CardSpoiled { .. })
        ));
    }
}

on_every_store! {
    #[test]
    fn a_failed_application_releases_its_card_for_reuse() {
        let (_dir, mut journal) = journal();
        let t = drive(&mut journal, State::Writing);
        journal
            .mark_failed(&t, "card removed before first write")
            .unwrap();
        let next = journal.claim_next("st", "r0").unwrap().unwrap().tracking;
        journal.mark_writing(&next, "CARD-0", "vendor-a").unwrap();
        assert_eq!(
            journal.status(&next).unwrap().card_serial.as_deref(),
            Some("CARD-0")
        );
    }
}

on_every_store! {
    #[test]
    fn restart_after_crash_must_use_the_same_card() {
        let (_dir, mut journal) = journal();
        let t = drive(&mut journal, State::Written);
        let err = journal.mark_writing(&t, "CARD-9", "vendor-a").unwrap_err();
        assert!(matches!(err, JournalError::CardMismatch { .. }), "{err}");
        journal.mark_writing(&t, "CARD-0", "vendor-a").unwrap();
        assert_eq!(journal.status(&t).unwrap().state, State::Writing);
    }
}

on_every_store! {
    #[test]
    fn requeued_application_counts_attempts_and_clears_the_card() {
        let (_dir, mut journal) = journal();
        let t = drive(&mut journal, State::Spoiled);
        assert_eq!(
            journal.status(&t).unwrap().reason.as_deref(),
            Some("tearing")
        );
        journal.requeue(&t).unwrap();
        let status = journal.status(&t).unwrap();
        assert_eq!(
            (status.state, status.card_serial, status.reason),
            (State::Queued, None, None)
        );
        let claim = journal.claim_next("st", "r0").unwrap().unwrap();
        assert_eq!((claim.tracking, claim.attempt), (t, 2));
    }
}

on_every_store! {
    #[test]
    fn steps_are_recorded_only_while_writing_or_written() {
        let (_dir, mut journal) = journal();
        let t = drive(&mut journal, State::Claimed);
        let step = Step::new("select applet", Duration::from_micros(1500), 1, 14, 2);
        assert!(matches!(
            journal.mark_step(&t, &step),
            Err(JournalError::BadArgument(_))
        ));
        journal.mark_writing(&t, "CARD-0", "vendor-a").unwrap();
        journal.mark_step(&t, &step).unwrap();
        journal.mark_written(&t).unwrap();
        journal
            .mark_step(
                &t,
                &Step::new("read back EF.ID", Duration::from_micros(2500), 3, 15, 400),
            )
            .unwrap();
        assert_eq!(journal.report().unwrap().steps.len(), 2);
    }
}

on_every_store! {
    #[test]
    fn empty_or_oversized_text_arguments_are_refused() {
        let (_dir, mut journal) = journal();
        let t = drive(&mut journal, State::Claimed);
        assert!(matches!(
            journal.mark_writing(&t, "", "vendor-a"),
            Err(JournalError::BadArgument(_))
        ));
        assert!(matches!(
            journal.mark_failed(&t, &"x".repeat(2000)),
            Err(JournalError::BadArgument(_))
        ));
        assert_eq!(journal.status(&t).unwrap().state, State::Claimed);
    }
}
