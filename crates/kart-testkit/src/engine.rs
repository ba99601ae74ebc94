//! Fixtures for the personalization and station tests: demo issuers,
//! batch files with photos, and simulated cards keyed for an issuer.

use std::path::{Path, PathBuf};

use kart_perso::issuer::Issuer;
use kart_perso::record::{Batch, IdentityRecord, SolarDate, Validator};
use kart_sim::{SimCard, SimConfig};
use kart_spec::{Profile, Spec};

/// A demo issuer in `dir` as `create_demo_issuer` makes it: three distinct
/// random keys (ENC, MAC, DEK) per master key set. Key its cards with [`sim_for`].
pub fn demo_issuer(dir: &Path) -> Issuer {
    let now = time::OffsetDateTime::now_utc();
    kart_perso::pki::create_demo_issuer(dir, now).expect("demo issuer");
    Issuer::load(dir).expect("load issuer")
}

pub use crate::ids::{jpeg, luhn};

/// Tracking code number `n` (12 digits with Luhn), `n` below 1000.
pub fn tracking(n: u32) -> String {
    luhn(&format!("14040904{n:03}"))
}

/// The CSV header of the batches [`batch_file`] writes.
pub const HEADER: &str = "tracking_code,national_code,given_name_fa,family_name_fa,father_name_fa,given_name_en,family_name_en,father_name_en,birth_date,gender,photo";

/// A valid national code for holder `n` ([`crate::ids::national_code`]).
pub fn national(n: u32) -> String {
    crate::ids::national_code(u64::from(n))
}

/// One valid CSV row, application `n` of holder `n` (each row its own
/// holder: a holder has one live application).
pub fn row(n: u32, photo: &str) -> String {
    format!(
        "{},{},علی,کریمی,حسین,ALI,KARIMI,HOSSEIN,1369/06/30,M,{photo}",
        tracking(n),
        national(1_234_566 + n)
    )
}

/// Writes `batch.csv` with `rows` and a photo of `photo_len` bytes.
pub fn batch_file(dir: &Path, rows: &[String], photo_len: usize) -> PathBuf {
    std::fs::write(dir.join("face.jpg"), jpeg(photo_len)).expect("photo");
    let path = dir.join("batch.csv");
    let mut text = String::from(HEADER);
    for r in rows {
        text.push('\n');
        text.push_str(r);
    }
    text.push('\n');
    std::fs::write(&path, text).expect("batch");
    path
}

/// A validator as of 1404/09/04, the date the test batches are valid on.
pub fn validator() -> Validator {
    Validator::as_of(SolarDate::parse("1404/09/04").expect("date"))
}

/// The valid records of a batch file.
pub fn records(path: &Path) -> Vec<IdentityRecord> {
    Batch::open_with(path, validator())
        .expect("batch opens")
        .map(|r| r.expect("valid record"))
        .collect()
}

/// The embedded applet spec.
pub fn spec() -> Spec {
    Spec::embedded().expect("spec")
}

/// A fresh simulated card of `profile` with IC serial `serial`, keyed with
/// `issuer`'s master key set for the profile (distinct ENC, MAC and DEK).
pub fn sim_for(issuer: &Issuer, profile: &Profile, serial: u32) -> SimCard {
    let (keys, _) = issuer.channel_keys(profile).expect("channel keys");
    SimCard::with_config(profile, &SimConfig::with_keys(serial.to_be_bytes(), keys))
        .expect("sim card")
}

/// The demo issuer of the stations over `dir`, in `dir/issuer` (created on first use).
pub fn station_issuer(dir: &Path) -> Issuer {
    let issuer_dir = dir.join("issuer");
    if issuer_dir.join("root.pem").exists() {
        Issuer::load(&issuer_dir).expect("load issuer")
    } else {
        demo_issuer(&issuer_dir)
    }
}

/// A fresh simulated card keyed for the stations over `dir`.
pub fn station_sim(dir: &Path, profile: &Profile, serial: u32) -> SimCard {
    sim_for(&station_issuer(dir), profile, serial)
}

thread_local! {
    /// The journal stations of this test thread use instead of their own
    /// file (a shared `PostgreSQL` one), when set.
    static JOURNAL: std::cell::RefCell<Option<kart_perso::journal::JournalLocation>> =
        const { std::cell::RefCell::new(None) };
}

/// Makes [`station`] (on this thread) use `journal`, or its own file.
pub fn use_journal(journal: Option<kart_perso::journal::JournalLocation>) {
    JOURNAL.with(|j| *j.borrow_mut() = journal);
}

/// The files of a station over `dir`: its own journal file, or the one set
/// with [`use_journal`].
pub fn station_files(dir: &Path) -> kart_perso::station::StationFiles {
    let files = kart_perso::station::StationFiles::in_dir(dir);
    match JOURNAL.with(|j| j.borrow().clone()) {
        Some(journal) => files.with_journal(journal),
        None => files,
    }
}

/// A station over `dir` with the demo issuer in `dir/issuer` (created on
/// first use), on the journal [`station_files`] gives.
pub fn station(dir: &Path, name: &str) -> kart_perso::station::Station {
    kart_perso::station::Station::open(name, &station_files(dir), station_issuer(dir), spec())
        .expect("station opens")
}

/// Parses a tracking code written by [`tracking`].
pub fn code(n: u32) -> kart_perso::record::TrackingCode {
    kart_perso::record::TrackingCode::parse(&tracking(n)).expect("tracking code")
}

/// `n` tracking codes from sequence number `base` on (11 digits and the
/// Luhn check digit of [`crate::ids::tracking_code`]).
///
/// ```
/// let codes = kart_testkit::engine::codes(2, 14_040_904_000);
/// assert_eq!(codes[0].as_str(), "140409040007");
/// assert_eq!(codes.len(), 2);
/// ```
pub fn codes(n: usize, base: u64) -> Vec<kart_perso::record::TrackingCode> {
    (base..)
        .take(n)
        .map(|seq| {
            kart_perso::record::TrackingCode::parse(&crate::ids::tracking_code(seq))
                .expect("tracking code")
        })
        .collect()
}

/// `station-1` over `dir` with a batch of applications 1 to `rows` (each its
/// own holder, a photo of `photo_len` bytes) loaded: the start of most
/// station tests. Returns the station and what the load reported.
pub fn loaded_station(
    dir: &Path,
    rows: u32,
    photo_len: usize,
) -> (kart_perso::station::Station, kart_perso::station::BatchLoad) {
    let rows: Vec<String> = (1..=rows).map(|n| row(n, "face.jpg")).collect();
    let batch = batch_file(dir, &rows, photo_len);
    let station = station(dir, "station-1");
    let load = station
        .load_batch(&batch, validator())
        .expect("batch loads");
    (station, load)
}

/// Personalizes the card in `card` as a station does: probe, a job for
/// `record` with CRN `crn` and fresh random PINs, personalize at `now`.
/// Returns the engine's result and the PINs the job carried.
///
/// # Panics
/// When the CRN is malformed or the probe fails (a test's setup is wrong).
pub fn personalize_fresh<T: kart_apdu::Transport>(
    card: &mut kart_apdu::Card<T>,
    profile: &Profile,
    issuer: &Issuer,
    record: &IdentityRecord,
    crn: &str,
    now: time::OffsetDateTime,
) -> (
    Result<kart_perso::personalize::Outcome, kart_perso::personalize::PersoError>,
    kart_perso::pin_mailer::Pins,
) {
    use kart_perso::personalize::{personalize, probe, Job};
    let info = probe(card, profile).expect("probe");
    let crn = kart_perso::card_data::Crn::parse(crn).expect("CRN");
    let pins = kart_perso::pin_mailer::Pins::generate(None).expect("PINs");
    let job = Job::new(record, &crn, &pins, now.date());
    (personalize(card, profile, issuer, &info, &job, now), pins)
}

/// The ID PIN of `pins`, as the holder types it from the PIN mailer.
pub fn id_pin(pins: &kart_perso::pin_mailer::Pins) -> kart_perso::record::Pin {
    let digits = std::str::from_utf8(pins.id_pin.expose()).expect("ASCII digits");
    kart_perso::record::Pin::parse(digits).expect("a valid PIN")
}

/// The trust anchors a verifier of `issuer`'s cards needs: root and card CA.
pub fn trust_of(issuer: &Issuer) -> kart_perso::verify::TrustAnchors {
    kart_perso::verify::TrustAnchors::new(issuer.pki.root.clone())
        .with_intermediate(issuer.pki.card_ca.clone())
}

/// The verifier's verdict on the card in `card`, issued by `issuer`, read
/// with `pin` at `now` against `spec`.
///
/// # Panics
/// When verification cannot run at all (the card does not answer).
pub fn verdict<T: kart_apdu::Transport>(
    card: &mut kart_apdu::Card<T>,
    issuer: &Issuer,
    spec: &Spec,
    pin: &kart_perso::record::Pin,
    now: time::OffsetDateTime,
) -> kart_perso::verify::Verdict {
    kart_perso::verify::Verifier::new(&trust_of(issuer), now)
        .spec(spec)
        .pin(pin)
        .verify(card)
        .expect("verification runs")
}

/// A fresh card of profile `profile_id` with serial `serial`, keyed for the
/// stations over `dir`, served once by `station` in `reader`: the card and
/// what the station made of it.
pub fn serve_new_card(
    station: &kart_perso::station::Station,
    reader: &str,
    dir: &Path,
    profile_id: &str,
    serial: u32,
) -> (SimCard, kart_perso::station::Served) {
    let spec = spec();
    let profile = spec.profile(profile_id).expect("profile");
    let mut card = station_sim(dir, profile, serial);
    let served = station
        .serve(reader, &mut card, profile)
        .expect("station serves");
    (card, served)
}
