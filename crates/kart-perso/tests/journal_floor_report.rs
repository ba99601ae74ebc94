//! The floor report on one journal shared by two stations (two handles on
//! one real journal, as two station processes have), on every store: per
//! station, the failed applications with their reasons, and the stranded
//! ones with their cards.

#[macro_use]
mod journal_support;

use journal_support::Place;
use kart_perso::journal::{Journal, JournalOptions, State, StationCounts};
use kart_perso::record::TrackingCode;
use kart_testkit::engine::codes;

/// Two stations on one journal file: north issues two, fails one (South
/// retries and issues it) and leaves one writing; south fails one, spoils
/// one and holds one claimed.
fn two_station_floor(place: &Place) -> (Journal, Vec<TrackingCode>) {
    let c = codes(7, 14_040_904_000);
    let north = journal_support::open(place);
    let south = journal_support::open(place);
    north.enqueue_batch("floor.csv", &c).unwrap();

    for t in &c[..4] {
        let claim = north.claim_next("north", "r0").unwrap().unwrap();
        assert_eq!(&claim.tracking, t);
    }
    for (i, t) in c[..2].iter().enumerate() {
        north
            .mark_writing(t, &format!("N-{i}"), "vendor-a")
            .unwrap();
        north.mark_written(t).unwrap();
        north.mark_verified(t).unwrap();
    }
    north.mark_failed(&c[2], "reader error").unwrap();
    north.requeue(&c[2]).unwrap();
    north.mark_writing(&c[3], "N-3", "vendor-a").unwrap();

    let order: Vec<TrackingCode> = (0..4)
        .map(|_| south.claim_next("south", "r1").unwrap().unwrap().tracking)
        .collect();
    assert_eq!(
        order,
        [c[2].clone(), c[4].clone(), c[5].clone(), c[6].clone()]
    );
    south.mark_writing(&c[2], "S-2", "vendor-b").unwrap();
    south.mark_written(&c[2]).unwrap();
    south.mark_verified(&c[2]).unwrap();
    south.mark_failed(&c[4], "PIN set refused").unwrap();
    south.mark_writing(&c[5], "S-5", "vendor-b").unwrap();
    south.mark_spoiled(&c[5], "tearing").unwrap();
    (north, c)
}

on_every_store! {
    #[test]
    fn two_stations_on_one_journal_are_reported_apart() {
        let place = journal_support::fresh();
        let (north, c) = two_station_floor(&place);

        // Either handle, or a read-only one, sees the whole floor.
        let read_only = JournalOptions {
            read_only: true,
            ..JournalOptions::default()
        };
        let report = journal_support::open_with(&place, &read_only)
            .report()
            .unwrap();
        assert_eq!(report, north.report().unwrap());
        assert_eq!(
            report.per_station,
            [
                StationCounts {
                    station: "north".into(),
                    issued: 2,
                    failed: 1,
                    spoiled: 0,
                    in_progress: 1
                },
                StationCounts {
                    station: "south".into(),
                    issued: 1,
                    failed: 1,
                    spoiled: 1,
                    in_progress: 1
                },
            ]
        );
        // The totals agree with the stations' sum where each application is counted once.
        assert_eq!((report.issued, report.failed, report.spoiled), (3, 1, 1));
        assert_eq!(report.in_progress, 2);

        // Failures now standing: the retried one is issued, so not listed.
        let failures: Vec<_> = report
            .failures
            .iter()
            .map(|f| {
                (
                    f.tracking.as_str(),
                    f.state.as_str(),
                    f.reason.as_str(),
                    f.station.as_deref(),
                    f.card_serial.as_deref(),
                    f.attempts,
                )
            })
            .collect();
        assert_eq!(
            failures,
            [
                (
                    c[4].as_str(),
                    "failed",
                    "PIN set refused",
                    Some("south"),
                    None,
                    1
                ),
                (
                    c[5].as_str(),
                    "spoiled",
                    "tearing",
                    Some("south"),
                    Some("S-5"),
                    1
                ),
            ]
        );
        assert!(report.failures[0].at <= report.failures[1].at);

        // The stranded application carries its card serial and station.
        let stranded = north.stranded(None).unwrap();
        assert_eq!(stranded.len(), 1);
        assert_eq!(
            (
                &stranded[0].tracking,
                stranded[0].state,
                stranded[0].card_serial.as_str(),
                stranded[0].station.as_deref()
            ),
            (&c[3], State::Writing, "N-3", Some("north"))
        );
    }

    #[test]
    fn an_empty_journal_has_no_stations_and_no_failures() {
        let place = journal_support::fresh();
        let j = journal_support::open(&place);
        let report = j.report().unwrap();
        assert!(report.per_station.is_empty());
        assert!(report.failures.is_empty());
    }
}
