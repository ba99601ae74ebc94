//! The operator's way out for a card that never comes back: an application
//! left `writing`/`written` waits for its card forever, so the operator
//! closes it by hand — the card is spoiled (never reused) and, if asked, the
//! application goes back to the queue for a new card.

use thiserror::Error;

use crate::journal::{Journal, JournalError, State, Status};
use crate::record::TrackingCode;

/// Why [`spoil`] refused; nothing was changed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SpoilError {
    /// The application is issued: its card is good and in the holder's hands.
    #[error("application {tracking} is verified on card {serial}: an issued card is never spoiled or requeued")]
    Verified {
        /// The application.
        tracking: TrackingCode,
        /// Its issued card.
        serial: String,
    },
    /// No card was ever written for it: nothing to spoil.
    #[error("application {tracking} is {state} and has no card to spoil")]
    NoCard {
        /// The application.
        tracking: TrackingCode,
        /// Its state (`queued`, `claimed` or `failed`).
        state: State,
    },
    /// Already spoiled, and no requeue asked.
    #[error("application {tracking} is already spoiled ({reason})")]
    AlreadySpoiled {
        /// The application.
        tracking: TrackingCode,
        /// The reason recorded then.
        reason: String,
    },
    /// The journal failed or refused (unknown application, a station moved
    /// it meanwhile, disk full…).
    #[error(transparent)]
    Journal(#[from] JournalError),
}

impl SpoilError {
    /// What the operator should do about it, when there is something to do.
    #[must_use]
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Self::Verified { .. } => {
                Some("if the issued card is lost or broken, enrol a replacement as a new application")
            }
            Self::NoCard { .. } => Some(
                "a queued application waits for a reader; a claimed one goes back to the queue when its station stops",
            ),
            Self::AlreadySpoiled { .. } => Some("add --requeue to issue it on a new card"),
            Self::Journal(e) => e.hint(),
        }
    }
}

/// What [`spoil`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spoiled {
    /// The card now marked spoiled (never reused), if it had one.
    pub card_serial: Option<String>,
    /// `false` when an earlier call (or a station) had spoiled it already
    /// and only the requeue was left to do.
    pub newly_spoiled: bool,
    /// The application's status afterwards (`spoiled`, or `queued` after a
    /// requeue).
    pub status: Status,
}

/// Marks the card of an application left `writing` or `written` spoiled,
/// with the operator's `reason`, and with `requeue` puts the application
/// back in the queue for a new card. Refuses verified applications and
/// those without a card. An already spoiled application with `requeue` is
/// only requeued, so a run interrupted between the two steps can be
/// repeated.
///
/// Run it only for a card that will not come back: a station serving that
/// card right now would find its application closed and stop.
///
/// ```
/// use kart_perso::journal::{Journal, State};
/// use kart_perso::record::TrackingCode;
/// use kart_perso::station::spoil;
/// # let dir = tempfile::tempdir()?;
/// let mut journal = Journal::open(dir.path().join("journal.db"))?;
/// let code = TrackingCode::parse("140409040007").unwrap();
/// journal.enqueue_batch("batch.csv", [&code])?;
/// journal.claim_next("station-1", "reader-0")?;
/// journal.mark_writing(&code, "4790503300001234", "vendor-a")?;
/// // The card's chip died mid-write:
/// let done = spoil(&mut journal, &code, "chip dead after a lost answer", true)?;
/// assert_eq!(done.card_serial.as_deref(), Some("4790503300001234"));
/// assert_eq!(done.status.state, State::Queued);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn spoil(
    journal: &mut Journal,
    tracking: &TrackingCode,
    reason: &str,
    requeue: bool,
) -> Result<Spoiled, SpoilError> {
    let before = journal.status(tracking)?;
    let newly_spoiled = check(&before, requeue)?;
    if newly_spoiled {
        // The journal re-checks the state in its own transaction: a station
        // that verified the card meanwhile makes this fail, not spoil it.
        journal.mark_spoiled(tracking, reason)?;
    }
    if requeue {
        journal.requeue(tracking)?;
    }
    Ok(Spoiled {
        card_serial: before.card_serial,
        newly_spoiled,
        status: journal.status(tracking)?,
    })
}

/// [`spoil`] for many applications: every one is checked first, and if any
/// would be refused (or is unknown, or the reason is empty) nothing is
/// changed and that refusal is returned; then each is spoiled (and
/// requeued) in turn. A code given twice is handled once.
///
/// ```
/// use kart_perso::journal::{Journal, State};
/// use kart_perso::record::TrackingCode;
/// use kart_perso::station::spoil_many;
/// # let dir = tempfile::tempdir()?;
/// let mut journal = Journal::open(dir.path().join("journal.db"))?;
/// let codes = [TrackingCode::parse("140409040007").unwrap(), TrackingCode::parse("140409040015").unwrap()];
/// journal.enqueue_batch("batch.csv", &codes)?;
/// for (code, card) in codes.iter().zip(["4790503300001234", "4790503300005678"]) {
///     journal.claim_next("station-1", "reader-0")?;
///     journal.mark_writing(code, card, "vendor-a")?;
/// }
/// let done = spoil_many(&mut journal, &codes, "cards lost in transit", true)?;
/// assert!(done.iter().all(|d| d.status.state == State::Queued));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn spoil_many(
    journal: &mut Journal,
    codes: &[TrackingCode],
    reason: &str,
    requeue: bool,
) -> Result<Vec<Spoiled>, SpoilError> {
    if reason.trim().is_empty() {
        return Err(SpoilError::Journal(JournalError::BadArgument(
            "reason is empty".into(),
        )));
    }
    let mut unique: Vec<&TrackingCode> = Vec::with_capacity(codes.len());
    for code in codes {
        if !unique.contains(&code) {
            unique.push(code);
        }
    }
    for code in &unique {
        check(&journal.status(code)?, requeue)?;
    }
    unique
        .into_iter()
        .map(|code| spoil(journal, code, reason, requeue))
        .collect()
}

/// Whether [`spoil`] may proceed: `Ok(true)` when the card is to be
/// spoiled now, `Ok(false)` when it already is (only the requeue is left).
fn check(before: &Status, requeue: bool) -> Result<bool, SpoilError> {
    let tracking = &before.tracking;
    match before.state {
        State::Writing | State::Written => Ok(true),
        State::Spoiled if requeue => Ok(false),
        State::Spoiled => Err(SpoilError::AlreadySpoiled {
            tracking: tracking.clone(),
            reason: before.reason.clone().unwrap_or_default(),
        }),
        State::Verified => Err(SpoilError::Verified {
            tracking: tracking.clone(),
            serial: before.card_serial.clone().unwrap_or_default(),
        }),
        state @ (State::Queued | State::Claimed | State::Failed) => Err(SpoilError::NoCard {
            tracking: tracking.clone(),
            state,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> TrackingCode {
        TrackingCode::parse(text).unwrap()
    }

    /// A journal with one application written to `serial` up to `state`.
    fn journal_with(dir: &std::path::Path, tracking: &TrackingCode, state: State) -> Journal {
        let journal = Journal::open(dir.join("journal.db")).unwrap();
        journal.enqueue_batch("batch.csv", [tracking]).unwrap();
        if state == State::Queued {
            return journal;
        }
        journal.claim_next("station-1", "reader-0").unwrap();
        if state == State::Claimed {
            return journal;
        }
        journal
            .mark_writing(tracking, "4790503300001234", "vendor-a")
            .unwrap();
        if state == State::Written || state == State::Verified {
            journal.mark_written(tracking).unwrap();
        }
        if state == State::Verified {
            journal.mark_verified(tracking).unwrap();
        }
        journal
    }

    #[test]
    fn a_written_application_is_spoiled_and_its_card_is_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let tracking = code("140409040007");
        let mut journal = journal_with(dir.path(), &tracking, State::Written);
        let done = spoil(&mut journal, &tracking, "chip dead", false).unwrap();
        assert!(done.newly_spoiled);
        assert_eq!(done.status.state, State::Spoiled);
        assert_eq!(done.status.reason.as_deref(), Some("chip dead"));
        assert_eq!(journal.report().unwrap().spoiled, 1);
        // Once more without --requeue: refused, the first reason kept.
        let again = spoil(&mut journal, &tracking, "other", false).unwrap_err();
        assert!(again.to_string().contains("chip dead"), "{again}");
        // The card cannot be taken by another application.
        let other = code("140409040015");
        journal.enqueue_batch("batch.csv", [&other]).unwrap();
        journal.claim_next("station-1", "reader-0").unwrap();
        let taken = journal
            .mark_writing(&other, "4790503300001234", "vendor-a")
            .unwrap_err();
        assert!(matches!(taken, JournalError::CardSpoiled { .. }), "{taken}");
    }

    #[test]
    fn requeue_after_spoiling_lets_a_new_card_be_claimed_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let tracking = code("140409040007");
        let mut journal = journal_with(dir.path(), &tracking, State::Writing);
        let done = spoil(&mut journal, &tracking, "chip dead", true).unwrap();
        assert_eq!(done.card_serial.as_deref(), Some("4790503300001234"));
        assert_eq!(done.status.state, State::Queued);
        assert_eq!(done.status.card_serial, None);
        let claim = journal
            .claim_next("station-1", "reader-1")
            .unwrap()
            .unwrap();
        assert_eq!((claim.tracking, claim.attempt), (tracking.clone(), 2));
        journal
            .mark_writing(&tracking, "4790503300005678", "vendor-a")
            .unwrap();
    }

    #[test]
    fn an_already_spoiled_application_is_only_requeued() {
        let dir = tempfile::tempdir().unwrap();
        let tracking = code("140409040007");
        let mut journal = journal_with(dir.path(), &tracking, State::Writing);
        journal
            .mark_spoiled(&tracking, "read-back mismatch")
            .unwrap();
        let done = spoil(&mut journal, &tracking, "operator", true).unwrap();
        assert!(!done.newly_spoiled);
        assert_eq!(done.status.state, State::Queued);
    }

    #[test]
    fn verified_and_cardless_applications_are_refused_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let tracking = code("140409040007");
        let mut journal = journal_with(dir.path(), &tracking, State::Verified);
        let refused = spoil(&mut journal, &tracking, "lost", true).unwrap_err();
        assert!(matches!(refused, SpoilError::Verified { .. }), "{refused}");
        assert!(
            refused
                .hint()
                .is_some_and(|h| h.contains("new application")),
            "{refused}: {:?}",
            refused.hint()
        );
        assert_eq!(journal.status(&tracking).unwrap().state, State::Verified);

        for state in [State::Queued, State::Claimed] {
            let dir = tempfile::tempdir().unwrap();
            let mut journal = journal_with(dir.path(), &tracking, state);
            let refused = spoil(&mut journal, &tracking, "lost", true).unwrap_err();
            assert!(
                matches!(refused, SpoilError::NoCard { state: s, .. } if s == state),
                "{refused}"
            );
            assert_eq!(journal.status(&tracking).unwrap().state, state);
        }
    }

    #[test]
    fn many_codes_are_all_checked_before_any_is_spoiled() {
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = (code("140409040007"), code("140409040015"));
        let mut journal = journal_with(dir.path(), &first, State::Writing);
        journal.enqueue_batch("batch.csv", [&second]).unwrap();
        // The second is still queued: no card to spoil, so neither is touched.
        let refused =
            spoil_many(&mut journal, &[first.clone(), second.clone()], "lost", true).unwrap_err();
        assert!(matches!(refused, SpoilError::NoCard { .. }), "{refused}");
        assert_eq!(journal.status(&first).unwrap().state, State::Writing);
        journal.claim_next("station-1", "reader-0").unwrap();
        journal
            .mark_writing(&second, "4790503300005678", "vendor-a")
            .unwrap();
        let done = spoil_many(
            &mut journal,
            &[first.clone(), second.clone(), first.clone()],
            "lost",
            false,
        )
        .unwrap();
        assert_eq!(done.len(), 2);
        assert!(done.iter().all(|d| d.status.state == State::Spoiled));
        assert_eq!(journal.report().unwrap().spoiled, 2);
    }

    #[test]
    fn an_unknown_application_or_empty_reason_is_a_journal_error() {
        let dir = tempfile::tempdir().unwrap();
        let tracking = code("140409040007");
        let mut journal = journal_with(dir.path(), &tracking, State::Writing);
        let unknown = spoil(&mut journal, &code("140409040015"), "x", false).unwrap_err();
        assert!(matches!(
            unknown,
            SpoilError::Journal(JournalError::UnknownApplication(_))
        ));
        let empty = spoil(&mut journal, &tracking, "  ", true).unwrap_err();
        assert!(matches!(
            empty,
            SpoilError::Journal(JournalError::BadArgument(_))
        ));
        assert_eq!(journal.status(&tracking).unwrap().state, State::Writing);
    }
}
