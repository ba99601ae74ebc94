//! The seam under [`Journal`](super::Journal): what a journal store does.
//! `SQLite` (one station, one file) and `PostgreSQL` (one journal for a floor)
//! implement it; both take their transition rules from [`State::can_go`](super::State::can_go).

use std::time::Duration;

use super::{
    BatchRow, Claim, EnqueueReport, JournalError, Report, RowsLoaded, Status, Step, StoredRecord,
    Stranded, Superseded, Unfinished,
};
use crate::record::TrackingCode;

/// A journal database. Every change is one transaction; every rule on
/// states comes from [`State::can_go`](super::State::can_go). See [`Journal`](super::Journal)
/// for what each call means.
///
/// Calls take `&self` and a store is `Sync`: the readers of a station call
/// one journal at once, each call on a connection of its own where the
/// store has several (the `PostgreSQL` pool), so one slow call does not
/// hold up the others.
pub trait JournalStore: std::fmt::Debug + Send + Sync {
    /// Who owns the claims made through this store (all its connections):
    /// `HOST:PID:RANDOM`.
    fn owner(&self) -> &str;

    /// Extends the lease of every claim this store holds; returns how
    /// many it extended. On a shared journal a claim whose row another
    /// transaction holds at that moment (a batch load, a transition) is
    /// skipped rather than waited for, and renewed by the next call.
    fn renew_leases(&self) -> Result<usize, JournalError>;

    /// Gives back to the queue every claim whose lease ran out (its owner
    /// crashed, or stopped renewing) and returns them. Claims of live
    /// owners are left alone, whatever their station's name.
    fn reclaim_expired(&self) -> Result<Vec<TrackingCode>, JournalError>;

    /// All or nothing: on error no application of the call is queued.
    fn enqueue_batch(
        &self,
        batch: &str,
        codes: &[&TrackingCode],
    ) -> Result<EnqueueReport, JournalError>;

    /// Records applications of a batch whose records were rejected (invalid
    /// fields) as `failed` with their reasons, so reports show them at once
    /// and no reader ever claims them. Like [`Journal::enqueue_batch`] it is
    /// idempotent and all or nothing; an application of this batch still
    /// `queued` (its record was valid when the batch was first loaded) is
    /// failed too, others are left as they are.
    fn reject(
        &self,
        batch: &str,
        rejected: &[(&TrackingCode, &str)],
    ) -> Result<EnqueueReport, JournalError>;

    /// Atomically takes the oldest queued application for `reader` of
    /// `station`; `None` when the queue is empty.
    fn claim_next(&self, station: &str, reader: &str) -> Result<Option<Claim>, JournalError>;

    /// Gives a claimed application back to the queue (card not touched).
    fn release(&self, tracking: &TrackingCode) -> Result<(), JournalError>;

    /// Puts a failed or spoiled application back in the queue for a new card.
    fn requeue(&self, tracking: &TrackingCode) -> Result<(), JournalError>;

    /// Records that writing to card `card_serial` starts now. From `writing`
    /// or `written` (after a crash) it restarts on the same card only.
    fn mark_writing(
        &self,
        tracking: &TrackingCode,
        card_serial: &str,
        vendor_profile: &str,
    ) -> Result<(), JournalError>;

    /// Records that `step` starts on the card, before its first APDU is
    /// sent: after a crash, a pulled card or a failure, [`Status::last_step`]
    /// tells how far the card got.
    fn mark_step_started(&self, tracking: &TrackingCode, step: &str) -> Result<(), JournalError>;

    /// Records the measurements of one step while writing or verifying.
    fn mark_step(&self, tracking: &TrackingCode, step: &Step) -> Result<(), JournalError>;

    /// Records that every write to the card completed.
    fn mark_written(&self, tracking: &TrackingCode) -> Result<(), JournalError>;

    /// Records that the card read back and verified: the card is issued.
    fn mark_verified(&self, tracking: &TrackingCode) -> Result<(), JournalError>;

    /// Records a failure; the card (if any) is released for reuse.
    fn mark_failed(&self, tracking: &TrackingCode, reason: &str) -> Result<(), JournalError>;

    /// Records that the card is damaged or half-written beyond repair; it is
    /// never used again.
    fn mark_spoiled(&self, tracking: &TrackingCode, reason: &str) -> Result<(), JournalError>;

    /// The current status of one application.
    fn status(&self, tracking: &TrackingCode) -> Result<Status, JournalError>;

    /// Applications a crashed station left in `claimed`, `writing` or
    /// `written`, oldest first, with the card they were being written to and
    /// what to do next. Call it at start-up, before claiming.
    fn recover(&self) -> Result<Vec<Unfinished>, JournalError>;

    /// The application left `writing` or `written` on card `card_serial`,
    /// if any, with what to do next: what a station asks for each card
    /// presented, before claiming a new application for it (an indexed
    /// lookup, not a scan of [`Journal::recover`]).
    fn unfinished_for_card(&self, card_serial: &str) -> Result<Option<Unfinished>, JournalError>;

    /// Counts and timings for the station's end-of-run report.
    fn report(&self) -> Result<Report, JournalError>;

    /// The journal's id of batch `name` (created if new). A batch is
    /// identified by its name: the station names it by file name and
    /// content hash.
    fn open_batch(&self, name: &str) -> Result<i64, JournalError>;

    /// Gives batch `legacy` — a batch loaded before records were kept,
    /// named by the path as then typed — the name `name`, when `legacy`
    /// exists, holds no stored record and `name` is not taken: a journal
    /// from before the upgrade then resumes its batch under its new name.
    /// `true` when renamed.
    fn adopt_batch(&self, legacy: &str, name: &str) -> Result<bool, JournalError>;

    /// Loads a chunk of rows of batch `batch` (from [`Journal::open_batch`])
    /// in one transaction: valid new records are queued with their fields,
    /// rejected ones recorded as failed with their reasons, and the batch
    /// rules applied (see the module). Idempotent: the same rows again (a
    /// re-run) queue nothing twice. All or nothing.
    fn load_rows(&self, batch: i64, rows: Vec<BatchRow>) -> Result<RowsLoaded, JournalError>;

    /// The validated record of an application, if its batch row was valid.
    fn record(&self, tracking: &TrackingCode) -> Result<Option<StoredRecord>, JournalError>;

    /// The application that superseded `tracking`, with the earlier card
    /// (if it was issued), when a replacement row replaced it.
    fn superseded_by(
        &self,
        tracking: &TrackingCode,
    ) -> Result<Option<(TrackingCode, Option<String>)>, JournalError>;

    /// Every superseded application, oldest first.
    fn superseded(&self) -> Result<Vec<Superseded>, JournalError>;

    /// Applications left `writing` or `written` on a card, oldest first;
    /// with `older_than`, only those waiting at least that long.
    fn stranded(&self, older_than: Option<Duration>) -> Result<Vec<Stranded>, JournalError>;
}
