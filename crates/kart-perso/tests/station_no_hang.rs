//! A station never deadlocks on its own journal: when the journal refuses a
//! transition (a card serial already issued, spoiled or in use), the station
//! gives the claim back and says why, and the other readers go on.

use std::sync::{mpsc, Arc};
use std::time::Duration;

use kart_perso::journal::{JournalError, State};
use kart_perso::station::{Served, StationError};
use kart_spec::Profile;
use kart_testkit::engine::*;

fn profile_of(id: &str) -> &'static Profile {
    Box::leak(Box::new(spec().profile(id).unwrap().clone()))
}

/// Far beyond a served card (milliseconds with the latency model off): only
/// a deadlocked station takes this long.
const HUNG: Duration = Duration::from_secs(60);

#[test]
fn a_card_serial_already_issued_is_refused_without_hanging_the_station() {
    let dir = tempfile::tempdir().unwrap();
    let (station, _) = loaded_station(dir.path(), 2, 3000);
    let spec = spec();
    let profile = spec.profile("vendor-b").unwrap();
    let mut first = station_sim(dir.path(), profile, 100);
    assert!(matches!(
        station.serve("reader-0", &mut first, profile).unwrap(),
        Served::Issued { .. }
    ));

    // A blank card carrying the serial of the card just issued (a vendor's
    // duplicate): the journal refuses to write to it.
    let twin = station_sim(dir.path(), profile, 100);
    let station = Arc::new(station);
    let (done, result) = mpsc::channel();
    {
        // Not a scoped thread: a deadlocked one must not hang the test too.
        let station = Arc::clone(&station);
        std::thread::spawn(move || {
            let mut twin = twin;
            let served = station.serve("reader-1", &mut twin, profile_of("vendor-b"));
            // The journal must still answer this thread afterwards.
            let report = station.report();
            let _ = done.send((served, report));
        });
    }
    let (served, report) = result
        .recv_timeout(HUNG)
        .expect("the station deadlocked on its journal");
    match served {
        Err(StationError::Journal(JournalError::CardIssued { serial, .. })) => {
            assert!(serial.ends_with("0064"), "{serial}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(report.unwrap().issued, 1);
    // The claim went back to the queue: the next good card takes it.
    assert_eq!(station.status(&code(2)).unwrap().state, State::Queued);
    let (_good, served) = serve_new_card(&station, "reader-1", dir.path(), &profile.id, 101);
    assert!(matches!(served, Served::Issued { ref tracking, .. } if *tracking == code(2)));
}
