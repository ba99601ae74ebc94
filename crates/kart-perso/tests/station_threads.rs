//! One station, several readers: one thread per reader, each with its own
//! cards, sharing the journal. Every application is issued exactly once.

use std::collections::HashSet;

use kart_perso::journal::State;
use kart_perso::station::Served;
use kart_testkit::engine::*;

#[test]
fn one_reader_per_profile_shares_one_journal_without_double_issuance() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<String> = (1..=6).map(|n| row(n, "face.jpg")).collect();
    let batch = batch_file(dir.path(), &rows, 2000);
    let station = station(dir.path(), "station-1");
    assert_eq!(station.load_batch(&batch, validator()).unwrap().queued, 6);
    let spec = spec();
    let issuer = station_issuer(dir.path());

    let issued: Vec<Served> = std::thread::scope(|s| {
        let handles: Vec<_> = spec
            .profiles
            .iter()
            .map(|p| p.id.as_str())
            .enumerate()
            .map(|(reader, id)| {
                let (station, issuer) = (&station, &issuer);
                let profile = spec.profile(id).unwrap().clone();
                s.spawn(move || {
                    let mut served = Vec::new();
                    for k in 0..3u32 {
                        let mut card = sim_for(issuer, &profile, 1000 * (reader as u32 + 1) + k);
                        served.push(
                            station
                                .serve(&format!("reader-{reader}"), &mut card, &profile)
                                .unwrap(),
                        );
                    }
                    served
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });

    let mut trackings = HashSet::new();
    let mut crns = HashSet::new();
    let mut empty = 0;
    for s in issued {
        match s {
            Served::Issued { tracking, crn, .. } => {
                assert!(trackings.insert(tracking), "issued twice");
                assert!(crns.insert(crn), "CRN reused");
            }
            Served::QueueEmpty => empty += 1,
            other => panic!("{other:?}"),
        }
    }
    // Each reader tries three cards; six applications, the rest find none.
    assert_eq!((trackings.len(), empty), (6, 3 * spec.profiles.len() - 6));
    for n in 1..=6 {
        assert_eq!(station.status(&code(n)).unwrap().state, State::Verified);
    }
}
