//! A station runs a batch: valid records become verified cards, invalid ones
//! are reported with their reasons, a card that refuses a write after data
//! reached it is spoiled (never reused) while one refusing before fails its
//! application, a card that answers garbage mid-write keeps its application
//! until it works again, and the batch goes on.

use std::os::unix::fs::PermissionsExt;

use kart_apdu::{CardCaps, Transport, TransportError};
use kart_perso::journal::{JournalError, State};
use kart_perso::pki::SecureChannelAlgorithm;
use kart_perso::station::{Served, StationError};
use kart_sim::{Faults, SimCard};
use kart_testkit::engine::*;

#[test]
fn batch_with_valid_and_invalid_records_issues_the_valid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows: Vec<String> = (1..=3).map(|n| row(n, "face.jpg")).collect();
    // Line 5: national code with a wrong check digit.
    let good = national(1_234_570);
    let bad = format!("{}{}", &good[..9], (good.as_bytes()[9] - b'0' + 1) % 10);
    rows.push(row(4, "face.jpg").replace(&good, &bad));
    let batch = batch_file(dir.path(), &rows, 3000);
    let station = station(dir.path(), "station-1");
    let load = station.load_batch(&batch, validator()).unwrap();
    assert_eq!(load.queued, 3);
    assert_eq!(load.rejected.len(), 1);
    let reason: Vec<String> = load.rejected[0].messages().collect();
    assert!(reason[0].contains("national_code"), "{reason:?}");

    // The rejected application is in the journal, failed with the loader's
    // reason as soon as the batch is loaded; no reader claims it.
    let rejected = station.status(&code(4)).unwrap();
    assert_eq!((rejected.state, rejected.attempts), (State::Failed, 0));
    assert!(rejected.reason.unwrap().contains("national_code"));
    let report = station.report().unwrap();
    assert_eq!((report.failed, report.pending), (1, 3));

    let spec = spec();
    let mut crns = Vec::new();
    // Three applications, on cards of the spec's profiles in turn.
    for (n, profile) in (1u32..=3).zip(spec.profiles.iter().cycle()) {
        let id = profile.id.as_str();
        let mut card = station_sim(dir.path(), profile, 100 + n);
        match station.serve("reader-0", &mut card, profile).unwrap() {
            Served::Issued { tracking, crn, .. } => {
                assert_eq!(tracking, code(n));
                crns.push(crn);
            }
            other => panic!("{id}: {other:?}"),
        }
        assert_eq!(station.status(&code(n)).unwrap().state, State::Verified);
    }
    let rejected = station.status(&code(4)).unwrap();
    assert_eq!(rejected.state, State::Failed);
    assert!(rejected.reason.unwrap().contains("national_code"));
    let distinct: std::collections::HashSet<_> = crns.iter().collect();
    assert_eq!(distinct.len(), 3, "every card has its own CRN");

    // Nothing left to do: the next card is not touched.
    let profile = spec.profile("vendor-b").unwrap();
    let mut spare = station_sim(dir.path(), profile, 999);
    assert_eq!(
        station.serve("reader-0", &mut spare, profile).unwrap(),
        Served::QueueEmpty
    );

    // The report counts the outcomes and times every step.
    let report = station.report().unwrap();
    assert_eq!((report.issued, report.failed, report.pending), (3, 1, 0));
    let face = report
        .steps
        .iter()
        .find(|s| s.step == "write EF.FACE")
        .unwrap();
    assert_eq!(face.count, 3);
    assert!(face.apdus >= 3 * 2 && face.bytes_sent > 3 * 3000);

    // Loading the batch again queues nothing twice.
    let again = station.load_batch(&batch, validator()).unwrap();
    assert_eq!((again.queued, again.already_present), (0, 3));

    // The PIN mailer holds one entry per card and only its owner can read it.
    let mailer = dir.path().join("pin-mailer.txt");
    let mode = std::fs::metadata(&mailer).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&mailer).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert!(text
        .lines()
        .all(|l| l.contains(" id_pin=") && l.contains(" puk=")));
}

/// A reader between the station and a simulated card that, from APDU
/// `from` on, hands the station `answer` instead of the card's response.
/// With `card_sees_it` the card carries each command out first (its answer
/// is garbled on the way back); without, the card never sees it.
struct Tampering<'a> {
    card: &'a mut SimCard,
    from: u64,
    sent: u64,
    answer: &'static [u8],
    card_sees_it: bool,
}

impl<'a> Tampering<'a> {
    /// From APDU `from` on, `card` (which sees the command when
    /// `card_sees_it`) seems to answer `answer`.
    fn new(card: &'a mut SimCard, from: u64, answer: &'static [u8], card_sees_it: bool) -> Self {
        Self {
            card,
            from,
            sent: 0,
            answer,
            card_sees_it,
        }
    }
}

impl Transport for Tampering<'_> {
    fn transmit(&mut self, apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
        self.sent += 1;
        if self.sent < self.from {
            return self.card.transmit(apdu, rx);
        }
        if self.card_sees_it {
            self.card.transmit(apdu, rx)?;
        }
        rx.clear();
        rx.extend_from_slice(self.answer);
        Ok(())
    }
    fn capabilities(&self) -> CardCaps {
        self.card.capabilities()
    }
}

/// APDU 12 of a vendor-c run is past the probe: the application is
/// `writing` on the card when the fault strikes.
const MID_WRITE: u64 = 12;

#[test]
fn card_answering_garbage_mid_write_keeps_its_application_and_the_batch_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (station, _) = loaded_station(dir.path(), 2, 3000);
    let spec = spec();
    let profile = spec.profile("vendor-c").unwrap();

    // 34 56 is no status word (ISO/IEC 7816-4 §5.6: SW1 is 6X or 9X), so
    // what the card did with the command is unknown.
    let mut bad = station_sim(dir.path(), profile, 1);
    let mut garbling = Tampering::new(&mut bad, MID_WRITE, &[0x12, 0x34, 0x56], true);
    let bad_csn = match station.serve("reader-0", &mut garbling, profile).unwrap() {
        Served::Pulled { tracking, csn } => {
            assert_eq!(tracking, code(1));
            csn
        }
        other => panic!("{other:?}"),
    };
    // Not failed, not released: the application waits, bound to that card.
    let status = station.status(&code(1)).unwrap();
    assert_eq!(status.state, State::Writing);
    assert_eq!(status.card_serial.as_deref(), Some(bad_csn.as_str()));
    // The journal shows how far the card got: a step inside the channel,
    // journaled before its first APDU though it never finished.
    let last = status.last_step.expect("a step was started");
    let report = station.report().unwrap();
    assert!(
        !report.steps.iter().any(|s| s.step == last),
        "{last} did not finish"
    );

    // The batch goes on with the next application on another card.
    issue_next(&station, dir.path(), &profile.id, 2, 2);

    // Working again, the card resumes its own application.
    bad.reinsert();
    match station.serve("reader-0", &mut bad, profile).unwrap() {
        Served::Issued { tracking, csn, .. } => {
            assert_eq!((tracking, csn), (code(1), bad_csn));
        }
        other => panic!("{other:?}"),
    }
    let report = station.report().unwrap();
    assert_eq!(
        (report.issued, report.failed, report.in_progress),
        (2, 0, 0)
    );
}

#[test]
fn card_refusing_a_write_after_data_reached_it_is_spoiled_never_reused_and_the_batch_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (station, _) = loaded_station(dir.path(), 2, 3000);
    let spec = spec();
    let profile = spec.profile("vendor-c").unwrap();

    // 6A84, not enough memory: the card said no and did nothing.
    let mut full = station_sim(dir.path(), profile, 1);
    let mut refusing = Tampering::new(&mut full, MID_WRITE, &[0x6A, 0x84], false);
    match station.serve("reader-0", &mut refusing, profile).unwrap() {
        Served::Spoiled { tracking, reason } => {
            assert_eq!(tracking, code(1));
            assert!(reason.contains("6A84"), "{reason}");
            assert!(reason.contains("never reused"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // The journal says how far the card got: the step the card refused.
    let status = station.status(&code(1)).unwrap();
    assert_eq!(status.state, State::Spoiled);
    let last = status
        .last_step
        .expect("the refused step was journaled first");
    assert!(status.reason.unwrap().contains(&last), "{last}");
    // Identity data reached that card: it is never given to another application.
    full.reinsert();
    assert!(matches!(
        station.serve("reader-0", &mut full, profile),
        Err(StationError::Journal(JournalError::CardSpoiled { .. }))
    ));
    assert_eq!(station.status(&code(2)).unwrap().state, State::Queued);

    issue_next(&station, dir.path(), &profile.id, 2, 2);
    assert_eq!(station.status(&code(2)).unwrap().state, State::Verified);
}

#[test]
fn card_answering_garbage_before_anything_is_claimed_touches_no_application() {
    let dir = tempfile::tempdir().unwrap();
    let (station, _) = loaded_station(dir.path(), 1, 3000);
    let spec = spec();
    let profile = spec.profile("vendor-a").unwrap();
    let mut bad = station_sim(dir.path(), profile, 1);
    bad.set_faults(Faults::default().garbage_from(1));
    assert!(station.serve("reader-0", &mut bad, profile).is_err());
    assert_eq!(station.status(&code(1)).unwrap().state, State::Queued);
}

#[test]
fn rejected_json_lines_record_is_failed_in_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("face.jpg"), jpeg(2000)).unwrap();
    let line = |n: u32, gender: &str| {
        format!(
            r#"{{"tracking_code":"{}","national_code":"0012345679","given_name_fa":"علی","family_name_fa":"کریمی","father_name_fa":"حسین","given_name_en":"ALI","family_name_en":"KARIMI","father_name_en":"HOSSEIN","birth_date":"1369/06/30","gender":"{gender}","photo":"face.jpg"}}"#,
            tracking(n)
        )
    };
    let path = dir.path().join("batch.jsonl");
    // Line 3: a wrong Luhn check digit in the tracking code itself.
    let bad_code = line(3, "F").replace(&tracking(3), "140409040008");
    std::fs::write(
        &path,
        format!("{}\n{}\n{bad_code}\n", line(1, "Q"), line(2, "F")),
    )
    .unwrap();
    let station = station(dir.path(), "station-1");
    let load = station.load_batch(&path, validator()).unwrap();
    assert_eq!((load.queued, load.rejected.len()), (1, 2));
    // Line 1 is failed at once; line 3 has no application to fail.
    assert_eq!(station.status(&code(1)).unwrap().state, State::Failed);
    let report = station.report().unwrap();
    assert_eq!((report.failed, report.pending), (1, 1));
    issue_next(&station, dir.path(), "vendor-b", 1, 2);
    let failed = station.status(&code(1)).unwrap();
    assert_eq!(failed.state, State::Failed);
    assert!(failed.reason.unwrap().contains("gender"));
}

#[test]
fn station_cards_are_keyed_with_the_issuers_three_distinct_master_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (station, _) = loaded_station(dir.path(), 4, 2000);
    let issuer = station_issuer(dir.path());
    let spec = spec();
    // Three applications, on cards of the spec's profiles in turn.
    for (n, profile) in (1u32..=3).zip(spec.profiles.iter().cycle()) {
        let id = profile.id.as_str();
        let sc = profile.secure_channel;
        let algorithm = SecureChannelAlgorithm::for_channel(sc.scp, sc.key_length).unwrap();
        let set = issuer
            .master_keys
            .sets()
            .iter()
            .find(|s| s.algorithm == algorithm)
            .unwrap();
        assert!(
            set.enc() != set.mac() && set.mac() != set.dek() && set.enc() != set.dek(),
            "{}: the demo issuer keeps three distinct keys",
            set.name
        );
        // Keyed ENC = MAC = DEK with the issuer's right ENC key, as cards
        // were before SimConfig::with_keys: the secure channel must not open.
        let mut wrong = kart_sim::SimCard::with_config(
            profile,
            &kart_sim::SimConfig::new(0x70u32.to_be_bytes(), set.enc()),
        )
        .unwrap();
        match station.serve("reader-0", &mut wrong, profile).unwrap() {
            Served::Failed { tracking, .. } => assert_eq!(tracking, code(n)),
            other => panic!("{id}: {other:?}"),
        }
    }
    issue_next(&station, dir.path(), "vendor-c", 1, 4);
}

/// Writes `name` in `dir` with `header` and `rows` (the photo `face.jpg`
/// must exist).
fn write_batch(
    dir: &std::path::Path,
    name: &str,
    header: &str,
    rows: &[String],
) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut text = String::from(header);
    for r in rows {
        text.push('\n');
        text.push_str(r);
    }
    text.push('\n');
    std::fs::write(&path, text).unwrap();
    path
}

/// Serves a fresh card of `profile_id` (serial `serial`) at `reader-0` and
/// asserts that `station` issued application `n` on it; returns its CSN.
fn issue_next(
    station: &kart_perso::station::Station,
    dir: &std::path::Path,
    profile_id: &str,
    serial: u32,
    n: u32,
) -> String {
    let (_card, served) = serve_new_card(station, "reader-0", dir, profile_id, serial);
    match served {
        Served::Issued { tracking, csn, .. } => {
            assert_eq!(tracking, code(n));
            csn
        }
        other => panic!("{other:?}"),
    }
}

fn messages(load: &kart_perso::station::BatchLoad) -> Vec<String> {
    load.rejected
        .iter()
        .flat_map(kart_perso::record::RecordError::messages)
        .collect()
}

#[test]
fn a_tracking_code_on_two_rows_rejects_both_rows_with_both_lines() {
    let dir = tempfile::tempdir().unwrap();
    // Lines 2 and 4 share application 1 (for two different holders).
    let twin = row(1, "face.jpg").replace(&national(1_234_567), &national(7_000_001));
    let batch = batch_file(
        dir.path(),
        &[row(1, "face.jpg"), row(2, "face.jpg"), twin],
        2000,
    );
    let station = station(dir.path(), "station-1");
    let load = station.load_batch(&batch, validator()).unwrap();
    let lines: Vec<u64> = load.rejected.iter().map(|r| r.line).collect();
    assert_eq!(lines, [2, 4], "{:?}", messages(&load));
    let text = messages(&load).join("\n");
    assert!(
        text.contains("line 2, tracking_code: is also on line 4"),
        "{text}"
    );
    assert!(
        text.contains("line 4, tracking_code: is also on line 2"),
        "{text}"
    );
    assert_eq!(load.queued, 1);
    // Neither row is issued: the application is failed with both lines.
    let status = station.status(&code(1)).unwrap();
    assert_eq!(status.state, State::Failed);
    assert!(status.reason.unwrap().contains("line 2 and line 4"));
    issue_next(&station, dir.path(), "vendor-b", 1, 2);
    let (_spare, served) = serve_new_card(&station, "reader-0", dir.path(), "vendor-b", 2);
    assert_eq!(served, Served::QueueEmpty);
    // A re-run says the same and queues nothing.
    let again = station.load_batch(&batch, validator()).unwrap();
    assert_eq!(again.queued, 0);
    assert_eq!(
        again.rejected.iter().map(|r| r.line).collect::<Vec<_>>(),
        [2, 4]
    );
}

#[test]
fn a_tracking_code_of_another_batch_is_reported_with_its_card_or_batch() {
    let dir = tempfile::tempdir().unwrap();
    let first = batch_file(dir.path(), &[row(1, "face.jpg"), row(2, "face.jpg")], 2000);
    let station = station(dir.path(), "station-1");
    let loaded = station.load_batch(&first, validator()).unwrap();
    assert!(loaded.batch.starts_with("batch.csv@"), "{}", loaded.batch);
    let csn = issue_next(&station, dir.path(), "vendor-b", 1, 1);
    // A later batch repeats applications 1 (issued) and 2 (queued).
    let rows = [row(1, "face.jpg"), row(2, "face.jpg"), row(3, "face.jpg")];
    let later = write_batch(dir.path(), "later.csv", HEADER, &rows);
    let load = station.load_batch(&later, validator()).unwrap();
    assert_eq!(load.queued, 1);
    let text = messages(&load);
    assert_eq!(text.len(), 2, "{text:?}");
    assert!(
        text[0].starts_with("line 2, tracking_code: ")
            && text[0].contains(&format!(
                "is already issued on card {csn} (batch {}",
                loaded.batch
            )),
        "{text:?}"
    );
    assert!(
        text[1].starts_with("line 3, tracking_code: ")
            && text[1].contains(&format!("is already queued in batch {}", loaded.batch)),
        "{text:?}"
    );
    // Left as they were.
    assert_eq!(station.status(&code(1)).unwrap().state, State::Verified);
    assert_eq!(station.status(&code(2)).unwrap().batch, loaded.batch);
}

#[test]
fn the_same_file_by_another_path_is_the_same_batch() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let (station, load) = loaded_station(dir.path(), 1, 2000);
    assert_eq!(load.queued, 1);
    let other_path = dir.path().join("sub").join("..").join("batch.csv");
    let again = station.load_batch(&other_path, validator()).unwrap();
    assert_eq!((again.queued, again.already_present), (0, 1));
    assert!(again.rejected.is_empty(), "{:?}", messages(&again));
    assert_eq!(again.batch, load.batch);
}

#[test]
fn a_holder_with_a_live_application_is_rejected_unless_the_row_is_a_replacement() {
    let dir = tempfile::tempdir().unwrap();
    let header = format!("{HEADER},replacement");
    // Line 3: a second application for holder 1, not a replacement.
    let second = row(2, "face.jpg").replace(&national(1_234_568), &national(1_234_567));
    let batch = batch_file(dir.path(), &[], 2000);
    let batch = write_batch(
        dir.path(),
        batch.file_name().unwrap().to_str().unwrap(),
        &header,
        &[format!("{},", row(1, "face.jpg")), format!("{second},no")],
    );
    let station = station(dir.path(), "station-1");
    let load = station.load_batch(&batch, validator()).unwrap();
    assert_eq!(load.queued, 1);
    let text = messages(&load);
    assert_eq!(text.len(), 1, "{text:?}");
    assert!(
        text[0].starts_with(&format!(
            "line 3, national_code: {} already has a live application {} (queued",
            national(1_234_567),
            tracking(1)
        )) && text[0].contains("replacement=yes"),
        "{text:?}"
    );
    assert_eq!(station.status(&code(2)).unwrap().state, State::Failed);
    // A re-run says so again.
    let again = station.load_batch(&batch, validator()).unwrap();
    let text = messages(&again);
    assert_eq!(
        (again.queued, again.already_present, text.len()),
        (0, 1, 1),
        "{text:?}"
    );
    assert!(
        text[0].starts_with("line 3, tracking_code: was rejected when this batch was first loaded")
            && text[0].contains("already has a live application"),
        "{text:?}"
    );

    // Issued; then a replacement card for the same holder in a later batch.
    let spec = spec();
    let profile = spec.profile("vendor-a").unwrap();
    let mut card = station_sim(dir.path(), profile, 1);
    let csn = match station.serve("reader-0", &mut card, profile).unwrap() {
        Served::Issued { csn, .. } => csn,
        other => panic!("{other:?}"),
    };
    let replacement = row(3, "face.jpg").replace(&national(1_234_569), &national(1_234_567));
    let later = write_batch(
        dir.path(),
        "later.csv",
        &header,
        &[format!("{replacement},yes")],
    );
    let load = station.load_batch(&later, validator()).unwrap();
    assert!(load.rejected.is_empty(), "{:?}", messages(&load));
    assert_eq!(load.queued, 1);
    assert_eq!(load.superseded, [(code(1), Some(csn.clone()), code(3))]);
    let journal = kart_perso::journal::Journal::open_location(
        &station_files(dir.path()).journal_location(),
        &kart_perso::journal::JournalOptions::default(),
    )
    .unwrap();
    assert_eq!(
        journal.superseded_by(&code(1)).unwrap(),
        Some((code(3), Some(csn.clone())))
    );
    let listed = journal.superseded().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            &listed[0].tracking,
            listed[0].card_serial.as_deref(),
            &listed[0].by
        ),
        (&code(1), Some(csn.as_str()), &code(3))
    );
    drop(journal);
    let mut card = station_sim(dir.path(), profile, 2);
    match station.serve("reader-0", &mut card, profile).unwrap() {
        Served::Issued { tracking, .. } => assert_eq!(tracking, code(3)),
        other => panic!("{other:?}"),
    }

    // A replacement of a queued application fails the earlier one.
    let queued = write_batch(
        dir.path(),
        "queued.csv",
        &header,
        &[
            format!("{},", row(4, "face.jpg")),
            format!(
                "{},yes",
                row(5, "face.jpg").replace(&national(1_234_571), &national(1_234_570))
            ),
        ],
    );
    let load = station.load_batch(&queued, validator()).unwrap();
    assert!(load.rejected.is_empty(), "{:?}", messages(&load));
    assert_eq!(load.queued, 1);
    let earlier = station.status(&code(4)).unwrap();
    assert_eq!(earlier.state, State::Failed);
    assert!(earlier
        .reason
        .unwrap()
        .contains(&format!("superseded by application {}", tracking(5))));
}

#[test]
fn photos_may_not_leave_the_batch_folder_unless_a_photo_root_allows_it() {
    let outer = tempfile::tempdir().unwrap();
    let dir = outer.path().join("batches");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(outer.path().join("outside.jpg"), jpeg(2000)).unwrap();
    std::os::unix::fs::symlink(outer.path().join("outside.jpg"), dir.join("link.jpg")).unwrap();
    let batch = batch_file(
        &dir,
        &[
            row(1, "../outside.jpg"),
            row(2, "link.jpg"),
            row(3, "face.jpg"),
        ],
        2000,
    );
    let station = station(&dir, "station-1");
    let load = station.load_batch(&batch, validator()).unwrap();
    assert_eq!(load.queued, 1);
    let text = messages(&load);
    assert_eq!(text.len(), 2, "{text:?}");
    assert!(
        text[0].starts_with("line 2, photo: ") && text[0].contains("is outside"),
        "{text:?}"
    );
    assert!(
        text[1].starts_with("line 3, photo: ") && text[1].contains("is outside"),
        "{text:?}"
    );

    // With the outer folder as photo root both load (in a fresh journal).
    let other = outer.path().join("station-2");
    std::fs::create_dir(&other).unwrap();
    let station = kart_perso::station::Station::open(
        "station-2",
        &kart_perso::station::StationFiles::in_dir(&other),
        station_issuer(&dir),
        spec(),
    )
    .unwrap();
    let load = station
        .load_batch_confined(&batch, validator(), Some(outer.path()))
        .unwrap();
    assert!(load.rejected.is_empty(), "{:?}", messages(&load));
    assert_eq!(load.queued, 3);
}

#[test]
fn records_are_read_from_the_journal_so_a_restarted_station_serves_without_reloading() {
    let dir = tempfile::tempdir().unwrap();
    let batch = batch_file(dir.path(), &[row(1, "face.jpg")], 2000);
    station(dir.path(), "station-1")
        .load_batch(&batch, validator())
        .unwrap();
    // A new process: the batch is not loaded again.
    let restarted = station(dir.path(), "station-1");
    issue_next(&restarted, dir.path(), "vendor-c", 1, 1);
}

#[test]
fn a_batch_pin_is_taken_only_from_the_row_that_stands_for_its_application() {
    let dir = tempfile::tempdir().unwrap();
    let header = HEADER.replace(",photo", ",pin,photo");
    let with_pin =
        |pin: &str| row(1, "face.jpg").replace(",M,face.jpg", &format!(",M,{pin},face.jpg"));
    let _ = batch_file(dir.path(), &[], 2000);
    let first = write_batch(dir.path(), "first.csv", &header, &[with_pin("1234")]);
    let station = station(dir.path(), "station-1");
    station.load_batch(&first, validator()).unwrap();
    // Another batch repeats the application with another PIN: reported, and
    // its PIN is not the one the card gets.
    let later = write_batch(dir.path(), "later.csv", &header, &[with_pin("9999")]);
    let load = station.load_batch(&later, validator()).unwrap();
    assert_eq!(load.rejected.len(), 1, "{:?}", messages(&load));
    issue_next(&station, dir.path(), "vendor-b", 1, 1);
    let mailer = std::fs::read_to_string(dir.path().join("pin-mailer.txt")).unwrap();
    assert!(mailer.contains(" id_pin=1234"), "the first batch's PIN");
    assert!(!mailer.contains("9999"));
}

#[test]
fn a_batch_queued_before_the_upgrade_resumes_under_its_new_name() {
    let dir = tempfile::tempdir().unwrap();
    let batch = batch_file(dir.path(), &[row(1, "face.jpg"), row(2, "face.jpg")], 2000);
    // As the station queued batches before: by the path as typed, no records.
    let journal = kart_perso::journal::Journal::open(dir.path().join("journal.db")).unwrap();
    journal
        .enqueue_batch(&batch.display().to_string(), [&code(1), &code(2)])
        .unwrap();
    drop(journal);
    let station = station(dir.path(), "station-1");
    let load = station.load_batch(&batch, validator()).unwrap();
    assert!(load.rejected.is_empty(), "{:?}", messages(&load));
    assert_eq!((load.queued, load.already_present), (0, 2));
    assert_eq!(station.status(&code(1)).unwrap().batch, load.batch);
    issue_next(&station, dir.path(), "vendor-b", 1, 1);
}

/// The batch rules hold on the floor's shared journal too: the same tests,
/// each on its own database of a private `PostgreSQL` server, with the
/// station's journal and CRN register there.
#[test]
fn the_batch_rules_hold_on_a_shared_postgresql_journal() {
    let pg = kart_pg_harness::PgServer::start().unwrap();
    let tests: [(&str, fn()); 4] = [
        (
            "two_rows",
            a_tracking_code_on_two_rows_rejects_both_rows_with_both_lines,
        ),
        (
            "other_batch",
            a_tracking_code_of_another_batch_is_reported_with_its_card_or_batch,
        ),
        ("same_file", the_same_file_by_another_path_is_the_same_batch),
        (
            "replacement",
            a_holder_with_a_live_application_is_rejected_unless_the_row_is_a_replacement,
        ),
    ];
    let url = pg.url();
    let base = url.rsplit_once('/').unwrap().0;
    for (name, test) in tests {
        pg.psql(&format!("CREATE DATABASE {name}")).unwrap();
        use_journal(Some(format!("{base}/{name}").parse().unwrap()));
        test();
    }
    use_journal(None);
}
