//! Storage behaviour on a real database file: idempotent enqueue, schema
//! versioning, the report, a full disk and a read-only journal.

use std::time::Duration;

use kart_perso::journal::{
    DayCounts, Journal, JournalError, JournalOptions, State, Step, StepTiming, VendorCounts,
};
use kart_perso::record::TrackingCode;
use kart_testkit::engine::codes;

#[test]
fn enqueue_is_idempotent_and_flags_codes_from_other_batches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let batch = codes(20, 14_040_904_000);
    let journal = Journal::open(&path).unwrap();
    let first = journal.enqueue_batch("a.csv", &batch).unwrap();
    assert_eq!((first.added, first.already_present), (20, 0));
    let again = journal.enqueue_batch("a.csv", &batch).unwrap();
    assert_eq!(
        (
            again.added,
            again.already_present,
            again.in_other_batch.len()
        ),
        (0, 20, 0)
    );
    drop(journal);
    let journal = Journal::open(&path).unwrap();
    let overlap = &batch[15..];
    let mut other = codes(5, 14_040_905_000);
    other.extend_from_slice(overlap);
    let report = journal.enqueue_batch("b.csv", &other).unwrap();
    assert_eq!(report.added, 5);
    assert_eq!(report.in_other_batch, overlap);
    assert_eq!(journal.report().unwrap().pending, 25);
    assert_eq!(journal.status(&batch[16]).unwrap().batch, "a.csv");
}

#[test]
fn schema_is_versioned_and_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    drop(Journal::open(&path).unwrap());
    let raw = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = raw
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, kart_perso::journal::SCHEMA_VERSION);
    assert!(
        version >= 4,
        "claims with owners and leases came in version 3, batch records in 4"
    );
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    drop(Journal::open(&path).unwrap()); // re-opening migrates nothing and succeeds
    let newer = kart_perso::journal::SCHEMA_VERSION + 5;
    raw.execute("UPDATE schema_version SET version = ?1", [newer])
        .unwrap();
    let err = Journal::open(&path).unwrap_err();
    assert!(
        matches!(
            err,
            JournalError::SchemaTooNew { found, supported }
                if found == newer && supported == kart_perso::journal::SCHEMA_VERSION
        ),
        "{err}"
    );
}

#[test]
fn report_counts_issued_failed_spoiled_pending_per_vendor_day_and_step() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::open(dir.path().join("journal.db")).unwrap();
    let c = codes(6, 14_040_904_000);
    j.enqueue_batch("a.csv", &c).unwrap();
    for (i, vendor) in ["vendor-a", "vendor-b", "vendor-a", "vendor-b", "vendor-a"]
        .into_iter()
        .enumerate()
    {
        let claim = j.claim_next("st", "r0").unwrap().unwrap();
        assert_eq!(claim.tracking, c[i]);
        j.mark_writing(&c[i], &format!("CARD-{i}"), vendor).unwrap();
    }
    let write = |us| Step::new("write EF.ID", Duration::from_micros(us), 5, 1000, 10);
    j.mark_step(&c[0], &write(100)).unwrap();
    j.mark_step(&c[1], &write(300)).unwrap();
    for t in &c[..2] {
        j.mark_written(t).unwrap();
        j.mark_verified(t).unwrap();
    }
    j.mark_failed(&c[2], "PIN set refused").unwrap();
    j.mark_spoiled(&c[3], "tearing").unwrap();
    let report = j.report().unwrap();
    assert_eq!(
        (
            report.issued,
            report.failed,
            report.spoiled,
            report.pending,
            report.in_progress
        ),
        (2, 1, 1, 1, 1)
    );
    assert_eq!(
        report.reasons,
        [("PIN set refused".to_owned(), 1), ("tearing".to_owned(), 1)]
    );
    assert_eq!(
        report.per_vendor,
        [
            VendorCounts {
                vendor_profile: "vendor-a".into(),
                issued: 1,
                failed: 1,
                spoiled: 0
            },
            VendorCounts {
                vendor_profile: "vendor-b".into(),
                issued: 1,
                failed: 0,
                spoiled: 1
            },
        ]
    );
    let today: String = rusqlite::Connection::open_in_memory()
        .unwrap()
        .query_row("SELECT date('now')", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        report.per_day,
        [DayCounts {
            day: today,
            issued: 2,
            failed: 1,
            spoiled: 1
        }]
    );
    assert_eq!(
        report.steps,
        [StepTiming {
            step: "write EF.ID".into(),
            count: 2,
            mean_us: 200,
            max_us: 300,
            apdus: 10,
            bytes_sent: 2000,
            bytes_received: 20
        }]
    );
    // Retries count every failure in the reasons, but each application once.
    j.requeue(&c[2]).unwrap();
    j.claim_next("st", "r0").unwrap().unwrap();
    j.mark_failed(&c[2], "PIN set refused").unwrap();
    let report = j.report().unwrap();
    assert_eq!((report.failed, report.reasons[0].1), (1, 2));
}

#[test]
fn full_disk_gives_a_typed_error_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    drop(Journal::open(&path).unwrap());
    let size = std::fs::metadata(&path).unwrap().len();
    // Cap the file a few pages above the empty schema (SQLite's max_page_count).
    let options = JournalOptions {
        max_size_bytes: Some(size + 5 * 4096),
        ..JournalOptions::default()
    };
    let j = Journal::open_with(&path, &options).unwrap();
    let small = codes(10, 14_040_904_000);
    j.enqueue_batch("small.csv", &small).unwrap();
    let big = codes(5000, 14_040_910_000);
    let err = j.enqueue_batch("big.csv", &big).unwrap_err();
    assert!(matches!(err, JournalError::DiskFull), "{err}");
    assert!(err.to_string().contains("nothing was lost"));
    assert!(
        matches!(j.status(&big[0]), Err(JournalError::UnknownApplication(_))),
        "big batch rolled back"
    );
    assert_eq!(j.report().unwrap().pending, 10);
    // Fill the rest with step records until a transition hits the cap; the
    // application it was for stays where it was.
    let t = j.claim_next("st", "r0").unwrap().unwrap().tracking;
    j.mark_writing(&t, "CARD-0", "vendor-a").unwrap();
    let long = Step::new("x".repeat(1000), Duration::from_millis(1), 1, 1, 1);
    let mut steps = 0;
    let err = loop {
        match j.mark_step(&t, &long) {
            Ok(()) => steps += 1,
            Err(e) => break e,
        }
        assert!(steps < 10_000, "the cap never hit");
    };
    assert!(matches!(err, JournalError::DiskFull), "{err}");
    let before = j.status(&t).unwrap();
    let err = j.mark_written(&t).and_then(|()| j.mark_verified(&t));
    let after = j.status(&t).unwrap();
    if let Err(e) = err {
        assert!(matches!(e, JournalError::DiskFull), "{e}");
    }
    assert!(matches!(
        after.state,
        State::Writing | State::Written | State::Verified
    ));
    assert!(before.state == State::Writing);
    drop(j);
    // Without the cap everything recorded so far is there and work goes on.
    let j = Journal::open(&path).unwrap();
    assert_eq!(j.report().unwrap().steps[0].count, steps);
    assert_eq!(j.status(&t).unwrap(), after);
    if after.state == State::Writing {
        j.mark_written(&t).unwrap();
    }
    if after.state != State::Verified {
        j.mark_verified(&t).unwrap();
    }
    j.enqueue_batch("big.csv", &big).unwrap();
    assert_eq!(j.report().unwrap().pending, 5009);
}

#[test]
fn read_only_journal_reports_but_refuses_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let c = codes(3, 14_040_904_000);
    Journal::open(&path)
        .unwrap()
        .enqueue_batch("a.csv", &c)
        .unwrap();
    let options = JournalOptions {
        read_only: true,
        ..JournalOptions::default()
    };
    let j = Journal::open_with(&path, &options).unwrap();
    assert_eq!(j.report().unwrap().pending, 3);
    let err = j.claim_next("st", "r0").unwrap_err();
    assert!(matches!(err, JournalError::ReadOnly), "{err}");
    assert!(matches!(
        j.enqueue_batch("b.csv", &codes(1, 1)),
        Err(JournalError::ReadOnly)
    ));
    drop(j);
    let j = Journal::open(&path).unwrap();
    assert_eq!(j.status(&c[0]).unwrap().state, State::Queued);
    assert_eq!(j.report().unwrap().pending, 3);
}

#[test]
fn opening_a_file_that_is_not_a_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    std::fs::write(
        &path,
        b"this is not an SQLite database, just some text that is long enough",
    )
    .unwrap();
    let err = Journal::open(&path).unwrap_err();
    assert!(err.to_string().contains("not a database"), "{err}");
}

#[test]
fn a_version_1_journal_is_migrated_and_keeps_its_applications() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let code = TrackingCode::parse("140409040007").unwrap();
    {
        let journal = Journal::open(&path).unwrap();
        journal.enqueue_batch("a.csv", [&code]).unwrap();
        journal.claim_next("st", "r0").unwrap();
        journal.mark_writing(&code, "CARD-7", "vendor-a").unwrap();
    }
    // Undo migrations 4, 3 and 2 by hand: the file is now as version 1 wrote it.
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(
        "DROP TABLE superseded; DROP TABLE records;
         ALTER TABLE applications DROP COLUMN owner;
         ALTER TABLE applications DROP COLUMN lease_until_ms;
         DROP TABLE step_starts;
         DROP INDEX applications_by_card; UPDATE schema_version SET version = 1;",
    )
    .unwrap();
    let index = |raw: &rusqlite::Connection| -> i64 {
        raw.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'applications_by_card'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(index(&raw), 0);
    let journal = Journal::open(&path).unwrap();
    assert_eq!(index(&raw), 1, "migration 2 adds the card index");
    let records: i64 = raw
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('records', 'superseded')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        records, 2,
        "migration 4 adds the records and superseded tables"
    );
    assert_eq!(
        journal.record(&code).unwrap(),
        None,
        "no record stored before"
    );
    let waiting = journal.unfinished_for_card("CARD-7").unwrap().unwrap();
    assert_eq!(waiting.status.tracking, code);
    assert_eq!(waiting.status.state, State::Writing);
}
