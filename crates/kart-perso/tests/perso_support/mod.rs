//! Shared fixtures for the personalization and station tests: demo issuers,
//! batch files with photos, and simulated cards keyed for an issuer.
#![allow(dead_code)]

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

/// A syntactically complete JPEG of `len` bytes (SOI … EOI).
pub fn jpeg(len: usize) -> Vec<u8> {
    let mut j = vec![0xFF, 0xD8, 0xFF, 0xE0];
    j.extend((0..len.saturating_sub(6)).map(|i| (i % 200) as u8));
    j.extend_from_slice(&[0xFF, 0xD9]);
    j
}

/// Luhn check digit appended to `body` (ISO/IEC 7812-1), computed here.
pub fn luhn(body: &str) -> String {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// Tracking code number `n` (12 digits with Luhn).
pub fn tracking(n: u32) -> String {
    luhn(&format!("14040904{n:03}"))
}

pub const HEADER: &str = "tracking_code,national_code,given_name_fa,family_name_fa,father_name_fa,given_name_en,family_name_en,father_name_en,birth_date,gender,photo";

/// A valid national code for holder `n`: 9 digits and the mod-11 check
/// digit (design §3); `national(1234567)` is 0012345679 (s = 112, r = 2,
/// d9 = 9).
pub fn national(n: u32) -> String {
    let body = format!("{n:09}");
    let s: u32 = body
        .bytes()
        .zip((2..=10).rev())
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let r = s % 11;
    format!("{body}{}", if r < 2 { r } else { 11 - r })
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
    /// file (a shared PostgreSQL one), when set.
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

/// A station over `dir` with the demo issuer in `dir/issuer` (created on first use).
pub fn station(dir: &Path, name: &str) -> kart_perso::station::Station {
    kart_perso::station::Station::open(name, &station_files(dir), station_issuer(dir), spec())
        .expect("station opens")
}

/// Parses a tracking code written by [`tracking`].
pub fn code(n: u32) -> kart_perso::record::TrackingCode {
    kart_perso::record::TrackingCode::parse(&tracking(n)).expect("tracking code")
}
