//! The engine's multi-reader loop (`station::runner::run_all`) over real
//! simulated cards: a reader that must stop (a wedged one) never stops the
//! others, what its card did is still recorded, and the observer sees each
//! reader's progress.

use std::sync::Mutex;

use kart_perso::issuer::Issuer;
use kart_perso::journal::State;
use kart_perso::station::runner::{
    run_all, CardSource, Inserted, Observer, ReaderContext, RunOptions,
};
use kart_perso::station::StationError;
use kart_sim::SimCard;
use kart_spec::Profile;
use kart_testkit::engine::*;

/// Why a test reader stopped.
#[derive(Debug)]
struct Stop(String);

impl From<StationError> for Stop {
    fn from(e: StationError) -> Self {
        Stop(e.to_string())
    }
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A reader of fresh simulated cards; with `wedge_after`, it stops after
/// that many cards, as a PC/SC reader whose card let a deadline pass.
struct Sims<'a> {
    name: &'static str,
    issuer: &'a Issuer,
    profile: Profile,
    serial: u32,
    served: u32,
    wedge_after: Option<u32>,
}

impl CardSource for Sims<'_> {
    type Card = SimCard;
    type Error = Stop;

    fn name(&self) -> String {
        self.name.to_owned()
    }

    fn next_card(&mut self, ctx: &ReaderContext<'_>) -> Result<Option<Inserted<SimCard>>, Stop> {
        self.serial += 1;
        ctx.status("personalizing");
        Ok(Some(Inserted {
            card: sim_for(self.issuer, &self.profile, self.serial),
            profile: Ok(self.profile.clone()),
        }))
    }

    fn release(&mut self, _card: SimCard) -> Result<(), Stop> {
        self.served += 1;
        match self.wedge_after {
            Some(n) if self.served >= n => Err(Stop(format!("reader '{}' is wedged", self.name))),
            _ => Ok(()),
        }
    }
}

/// Every status and finished card, by reader.
#[derive(Default)]
struct Seen {
    status: Mutex<Vec<(usize, String)>>,
    done: Mutex<Vec<(usize, String)>>,
}

impl Observer for Seen {
    fn status(&self, reader: usize, status: &str) {
        self.status
            .lock()
            .unwrap()
            .push((reader, status.to_owned()));
    }
    fn done(&self, reader: usize, summary: &str) {
        self.done.lock().unwrap().push((reader, summary.to_owned()));
    }
}

#[test]
fn a_wedged_reader_stops_alone_and_its_card_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<String> = (1..=5).map(|n| row(n, "face.jpg")).collect();
    let batch = batch_file(dir.path(), &rows, 2000);
    let station = station(dir.path(), "station-1");
    assert_eq!(station.load_batch(&batch, validator()).unwrap().queued, 5);
    let spec = spec();
    let issuer = station_issuer(dir.path());
    let reader = |name, id: &str, serial, wedge_after| Sims {
        name,
        issuer: &issuer,
        profile: spec.profile(id).unwrap().clone(),
        serial,
        served: 0,
        wedge_after,
    };
    let sources = vec![
        reader("good", "vendor-b", 100, None),
        reader("wedged", "vendor-c", 200, Some(1)),
    ];
    let seen = Seen::default();
    let tally = run_all(&station, sources, &seen, &RunOptions::default());

    // The wedged reader stopped with its error; the good one emptied the queue.
    assert_eq!(tally.station, "station-1");
    assert_eq!(tally.errors.len(), 1, "{:?}", tally.errors);
    assert_eq!(tally.errors[0].0, "wedged");
    assert_eq!(tally.errors[0].1.to_string(), "reader 'wedged' is wedged");
    assert!(!tally.all_ok());
    let issued: Vec<_> = tally
        .results
        .iter()
        .filter(|r| r.result == "issued")
        .collect();
    assert_eq!(issued.len(), 5, "{:?}", tally.results);
    assert!(issued.iter().all(|r| r.ok && r.detail.starts_with("CSN ")));
    assert_eq!(
        tally
            .results
            .iter()
            .filter(|r| r.reader == "wedged")
            .count(),
        1,
        "the wedged reader's one card is recorded: {:?}",
        tally.results
    );
    for n in 1..=5 {
        assert_eq!(station.status(&code(n)).unwrap().state, State::Verified);
    }

    // The observer saw every card finish, and how each reader ended.
    assert_eq!(seen.done.lock().unwrap().len(), 5);
    let status = seen.status.lock().unwrap().clone();
    assert_eq!(status.iter().filter(|(_, s)| s == "done").count(), 1);
    assert!(status.contains(&(0, "done".to_owned())), "{status:?}");
    assert!(
        status.contains(&(1, "stopped: reader 'wedged' is wedged".to_owned())),
        "{status:?}"
    );
}

/// A reader whose one card matches no profile, then no more cards.
struct Unknown {
    given: bool,
}

impl CardSource for Unknown {
    type Card = SimCard;
    type Error = Stop;

    fn name(&self) -> String {
        "unknown".to_owned()
    }

    fn next_card(&mut self, _: &ReaderContext<'_>) -> Result<Option<Inserted<SimCard>>, Stop> {
        if std::mem::replace(&mut self.given, true) {
            return Ok(None);
        }
        let spec = spec();
        let profile = spec.profile("vendor-a").unwrap();
        let card = SimCard::with_config(
            profile,
            &kart_sim::SimConfig::new([0, 0, 0, 9], &[0x40; 16]),
        )
        .unwrap();
        Ok(Some(Inserted {
            card,
            profile: Err("matches no vendor profile".to_owned()),
        }))
    }
}

#[test]
fn a_card_of_no_profile_is_refused_and_touches_no_application() {
    let dir = tempfile::tempdir().unwrap();
    let batch = batch_file(dir.path(), &[row(1, "face.jpg")], 2000);
    let station = station(dir.path(), "station-1");
    assert_eq!(station.load_batch(&batch, validator()).unwrap().queued, 1);
    let seen = Seen::default();
    let tally = run_all(
        &station,
        vec![Unknown { given: false }],
        &seen,
        &RunOptions::default(),
    );
    assert!(tally.errors.is_empty());
    assert_eq!(tally.results.len(), 1);
    let r = &tally.results[0];
    assert_eq!(
        (r.result, r.ok, r.tracking.as_str()),
        ("card refused", false, "")
    );
    assert_eq!(r.detail, "matches no vendor profile");
    assert!(!tally.all_ok());
    assert_eq!(station.status(&code(1)).unwrap().state, State::Queued);
    assert!(seen.done.lock().unwrap().is_empty());
}
