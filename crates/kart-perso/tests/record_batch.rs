//! Loading whole batches: good records come through, every bad one gives
//! its own error with line and field, and the rest of the batch still loads.

use std::path::PathBuf;

use kart_perso::record::{
    Batch, BatchError, BatchFormat, Field, Gender, IdentityRecord, RecordError, SolarDate,
    Validator,
};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/records")
}

/// "Today" fixed at 1404/09/04 (2025-11-25) so the future-date check is reproducible.
fn validator() -> Validator {
    Validator::as_of(SolarDate::parse("1404/09/04").unwrap())
}

fn load(name: &str) -> Vec<Result<IdentityRecord, RecordError>> {
    Batch::open_with(fixtures().join(name), validator())
        .unwrap()
        .collect()
}

/// Every item of a batch read from `reader` in `format`, its photos
/// relative to `base`.
fn read(
    reader: impl std::io::Read,
    format: BatchFormat,
    base: PathBuf,
) -> Vec<Result<IdentityRecord, RecordError>> {
    Batch::from_reader(reader, format, base, validator())
        .unwrap()
        .collect()
}

/// `items` has `total` entries, `valid` of them records, and those are the
/// expected ones ([`assert_good_records`]).
fn assert_items(items: &[Result<IdentityRecord, RecordError>], total: usize, valid: usize) {
    assert_eq!(items.len(), total);
    let good: Vec<&IdentityRecord> = items.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(good.len(), valid);
    assert_good_records(&good);
}

fn assert_good_records(good: &[&IdentityRecord]) {
    let ali = good[0];
    assert_eq!(ali.tracking_code.as_str(), "140409040007");
    assert_eq!(ali.national_code.as_str(), "0012345679");
    assert_eq!(ali.given_name.fa.as_str(), "علی");
    assert_eq!(ali.father_name.en.as_str(), "HOSSEIN");
    assert_eq!(ali.birth_date.gregorian(), (1990, 9, 22)); // jdatetime: 1369/06/31 -> 1990-09-22
    assert_eq!(ali.gender, Gender::Male);
    assert_eq!(ali.pin.as_ref().unwrap().expose_digits(), b"8642");
    assert_eq!(ali.photo.as_bytes().len(), 918);
    assert!(ali.fingerprint.as_ref().unwrap().ends_with("finger1.fmr"));
    let maryam = good[1];
    assert_eq!(
        maryam.national_code.as_str(),
        "2720010121",
        "Persian digits normalized"
    );
    assert_eq!(
        maryam.given_name.fa.as_str(),
        "مریم",
        "Arabic yeh normalized"
    );
    assert_eq!(
        maryam.family_name.fa.as_str(),
        "احمدی\u{200C}نژاد",
        "ZWNJ kept"
    );
    assert_eq!(maryam.birth_date.to_string(), "1380/01/01");
    assert!(maryam.pin.is_none() && maryam.fingerprint.is_none());
}

/// The error of a rejected item, as the operator reads it.
fn error_text(item: &Result<IdentityRecord, RecordError>) -> String {
    item.as_ref().unwrap_err().to_string()
}

fn messages(result: &Result<IdentityRecord, RecordError>) -> Vec<String> {
    result
        .as_ref()
        .err()
        .map(|e| e.messages().collect())
        .unwrap_or_default()
}

#[test]
fn csv_batch_yields_good_records_and_one_error_per_problem() {
    let items = load("batch.csv");
    assert_items(&items, 9, 3);
    assert_eq!(
        messages(&items[2]),
        ["line 4, national_code: check digit is 8, expected 9"]
    );
    let bad = items[3].as_ref().unwrap_err();
    assert_eq!(bad.line, 5);
    assert!(bad.has(Field::GivenNameFa) && bad.has(Field::BirthDate));
    assert_eq!(bad.problems.len(), 2, "{bad}");
    assert!(bad
        .to_string()
        .contains("line 5, birth_date: 1400/12/30 does not exist in the Solar Hijri calendar"));
    let bad = items[4].as_ref().unwrap_err();
    for field in [
        Field::GivenNameEn,
        Field::BirthDate,
        Field::Pin,
        Field::Photo,
    ] {
        assert!(bad.has(field), "{field} in {bad}");
    }
    assert!(
        !bad.to_string().contains("\"12\""),
        "the PIN is never shown: {bad}"
    );
    assert!(bad.to_string().contains("does not end with the EOI marker"));
    let bad = items[5].as_ref().unwrap_err();
    assert!(bad.has(Field::NationalCode) && bad.has(Field::Gender) && bad.has(Field::Photo));
    assert!(
        bad.to_string()
            .contains("line 7, gender: \"Q\" is not a gender code"),
        "{bad}"
    );
    assert!(bad
        .to_string()
        .contains("does not start with the SOI marker"));
    let bad = items[6].as_ref().unwrap_err();
    assert!(
        bad.to_string()
            .contains("too-large.jpg is 48429 bytes, at most 20470"),
        "{bad}"
    );
    assert!(bad.has(Field::Fingerprint));
    assert_eq!(
        messages(&items[7]),
        ["line 9: has 4 fields, the header has 13"]
    );
    // A quoted field spanning two lines: the record starts on line 10, its
    // inner newline and indentation collapse to one space.
    let multi = items[8].as_ref().unwrap();
    assert_eq!(multi.line, 10);
    assert_eq!(multi.family_name.fa.as_str(), "امینی فر");
}

#[test]
fn json_lines_batch_matches_csv_and_reports_json_problems() {
    let items = load("batch.jsonl");
    assert_items(&items, 10, 2);
    assert_eq!(
        messages(&items[2]),
        ["line 3, national_code: check digit is 8, expected 9"]
    );
    // Line 8 is blank and skipped; line 9 has a number where a string belongs
    // and lacks most fields.
    let bad = items[7].as_ref().unwrap_err();
    assert_eq!(bad.line, 9);
    assert!(bad
        .to_string()
        .contains("line 9, national_code: must be a JSON string"));
    assert!(bad.to_string().contains("line 9, photo: is missing"));
    let bad = items[8].as_ref().unwrap_err();
    assert_eq!(bad.line, 10);
    assert!(bad.to_string().starts_with("line 10: is not a JSON object"));
    let bad = items[9].as_ref().unwrap_err();
    assert_eq!(messages(&items[9]), [
        "line 11, nickname: is not a known field (known: tracking_code, national_code, given_name_fa, family_name_fa, father_name_fa, given_name_en, family_name_en, father_name_en, birth_date, gender, pin, photo, fingerprint, replacement)"
    ], "{bad}");
}

#[test]
fn bad_header_is_a_batch_error_naming_the_columns() {
    let csv = "tracking_code,national_code,nick,nick,gender,gender\n";
    let Err(BatchError::BadHeader {
        missing,
        unknown,
        repeated,
    }) = Batch::from_reader(
        csv.as_bytes(),
        BatchFormat::Csv,
        PathBuf::new(),
        validator(),
    )
    else {
        panic!("expected a bad header");
    };
    assert!(missing.contains(&"photo".to_owned()) && !missing.contains(&"pin".to_owned()));
    assert_eq!(unknown, ["nick", "nick"]);
    assert_eq!(repeated, ["gender"]);
}

#[test]
fn unreadable_file_and_unknown_format_are_batch_errors() {
    let err = Batch::open(fixtures().join("no-such-batch.csv"))
        .map(drop)
        .unwrap_err();
    assert!(matches!(err, BatchError::Open { .. }), "{err}");
    let err = Batch::open(fixtures().join("finger1.fmr"))
        .map(drop)
        .unwrap_err();
    assert!(matches!(err, BatchError::UnknownFormat { .. }), "{err}");
}

#[test]
fn invalid_utf8_in_a_csv_field_names_the_field_and_continues() {
    let header = "tracking_code,national_code,given_name_fa,family_name_fa,father_name_fa,given_name_en,family_name_en,father_name_en,birth_date,gender,photo\n";
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend_from_slice(b"140409040007,0012345679,\xFF\xFE,a,b,c,d,e,f,g,h\n");
    bytes.extend_from_slice(b"140409040015,0012345678,,,,,,,,,\n");
    let items: Vec<_> = read(&bytes[..], BatchFormat::Csv, PathBuf::new());
    assert_eq!(items.len(), 2);
    assert!(error_text(&items[0]).contains("line 2, given_name_fa: is not valid UTF-8"));
    assert!(items[1].as_ref().unwrap_err().has(Field::NationalCode));
}

#[test]
fn overlong_json_line_is_skipped_and_the_next_line_still_loads() {
    let mut text = format!("{{\"pad\": \"{}\"}}\n", "x".repeat(2 << 20));
    text.push_str("{\"tracking_code\": \"140409040008\"}\n");
    let items: Vec<_> = read(text.as_bytes(), BatchFormat::JsonLines, PathBuf::new());
    assert_eq!(items.len(), 2);
    assert!(error_text(&items[0]).contains("line 1: is longer than"));
    let second = items[1].as_ref().unwrap_err();
    assert_eq!(second.line, 2);
    assert!(second
        .to_string()
        .contains("tracking_code: check digit is 8, expected 7"));
}

#[test]
fn debug_output_of_a_record_never_shows_the_pin() {
    let items = load("batch.csv");
    let ali = items[0].as_ref().unwrap();
    let debug = format!("{ali:?}");
    assert!(debug.contains("Pin(<redacted>)"), "{debug}");
    assert!(!debug.contains("8642"), "{debug}");
    assert!(
        debug.contains("Photo(918 bytes of JPEG)"),
        "photo bytes are not dumped"
    );
}

/// A reader that fails after handing out `ok` bytes, like a file on a
/// storage device that goes away mid-batch.
struct FailingReader<'a> {
    data: &'a [u8],
    ok: usize,
}

impl std::io::Read for FailingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.ok == 0 {
            return Err(std::io::Error::other("device removed"));
        }
        let n = buf.len().min(self.ok).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.ok -= n;
        Ok(n)
    }
}

#[test]
fn read_error_mid_batch_is_reported_once_and_ends_the_stream() {
    let text = std::fs::read(fixtures().join("batch.jsonl")).unwrap();
    let first_line = text.iter().position(|&b| b == b'\n').unwrap() + 1;
    for format in [BatchFormat::JsonLines, BatchFormat::Csv] {
        let data = if format == BatchFormat::Csv {
            std::fs::read(fixtures().join("batch.csv")).unwrap()
        } else {
            text.clone()
        };
        let reader = FailingReader {
            data: &data,
            ok: first_line + 300,
        };
        let items: Vec<_> = read(reader, format, fixtures());
        let last = items.last().unwrap().as_ref().unwrap_err();
        assert!(
            last.to_string().contains("reading the batch failed here: ")
                && last.to_string().contains("device removed"),
            "{format:?}: {last}"
        );
        assert_eq!(
            items
                .iter()
                .filter(|r| r
                    .as_ref()
                    .is_err_and(|e| e.to_string().contains("device removed")))
                .count(),
            1
        );
    }
}

#[test]
fn csv_with_a_utf8_byte_order_mark_still_has_a_good_header() {
    let mut bytes = vec![0xEF, 0xBB, 0xBF];
    bytes.extend(std::fs::read(fixtures().join("batch.csv")).unwrap());
    let items: Vec<_> = read(&bytes[..], BatchFormat::Csv, fixtures());
    assert_eq!(items.iter().filter(|r| r.is_ok()).count(), 3);
}

#[test]
fn a_rejected_record_carries_its_tracking_code_only_when_that_field_is_valid() {
    let tracking = |r: &Result<IdentityRecord, RecordError>| {
        r.as_ref()
            .unwrap_err()
            .tracking_code
            .as_ref()
            .map(|c| c.as_str().to_owned())
    };
    let csv = load("batch.csv");
    // Line 4: a wrong national code check digit; its tracking code is fine.
    assert_eq!(tracking(&csv[2]).as_deref(), Some("140409040015"));
    // Line 9: too few fields, the line is no record: nothing to trust.
    let short = csv
        .iter()
        .find(|r| r.as_ref().is_err_and(|e| e.line == 9))
        .unwrap();
    assert_eq!(tracking(short), None);
    let json = load("batch.jsonl");
    let on_line = |line: u64| {
        json.iter()
            .find(|r| r.as_ref().is_err_and(|e| e.line == line))
            .unwrap()
    };
    // Line 9: a number where a string belongs; the tracking code is fine.
    assert_eq!(tracking(on_line(9)).as_deref(), Some("140409040064"));
    // Line 10: not JSON.
    assert_eq!(tracking(on_line(10)), None);

    // A tracking code whose Luhn check digit is wrong (…0007 is right,
    // ISO/IEC 7812-1) is not carried, though the rest of the record is valid.
    let header = "tracking_code,national_code,given_name_fa,family_name_fa,father_name_fa,\
                  given_name_en,family_name_en,father_name_en,birth_date,gender,photo";
    let text = format!(
        "{header}\n140409040008,0012345679,علی,کریمی,حسین,Ali,Karimi,Hossein,1369/06/31,M,photos/holder1.jpg\n"
    );
    let items: Vec<_> = read(text.as_bytes(), BatchFormat::Csv, fixtures());
    let error = items[0].as_ref().unwrap_err();
    assert!(error.has(Field::TrackingCode), "{error}");
    assert_eq!(error.tracking_code, None);
}

#[test]
fn the_replacement_column_takes_yes_or_no_and_json_booleans() {
    let header = "tracking_code,national_code,given_name_fa,family_name_fa,father_name_fa,\
                  given_name_en,family_name_en,father_name_en,birth_date,gender,photo,replacement";
    let row =
        "140409040007,0012345679,علی,کریمی,حسین,Ali,Karimi,Hossein,1369/06/31,M,photos/holder1.jpg";
    let text = format!("{header}\n{row},yes\n{row},\n{row},No\n{row},perhaps\n");
    let items: Vec<_> = read(text.as_bytes(), BatchFormat::Csv, fixtures());
    let flags: Vec<Option<bool>> = items
        .iter()
        .map(|r| r.as_ref().ok().map(|r| r.replacement))
        .collect();
    assert_eq!(flags, [Some(true), Some(false), Some(false), None]);
    let bad = items[3].as_ref().unwrap_err();
    assert_eq!(
        bad.messages().collect::<Vec<_>>(),
        ["line 5, replacement: \"perhaps\" is not yes or no"]
    );
    let json = r#"{"tracking_code":"140409040007","national_code":"0012345679","given_name_fa":"علی","family_name_fa":"کریمی","father_name_fa":"حسین","given_name_en":"Ali","family_name_en":"Karimi","father_name_en":"Hossein","birth_date":"1369/06/31","gender":"M","photo":"photos/holder1.jpg","replacement":true}"#;
    let items: Vec<_> = read(json.as_bytes(), BatchFormat::JsonLines, fixtures());
    assert!(items[0].as_ref().unwrap().replacement);
}

#[test]
fn photo_paths_may_not_leave_the_batch_folder() {
    let header = "tracking_code,national_code,given_name_fa,family_name_fa,father_name_fa,\
                  given_name_en,family_name_en,father_name_en,birth_date,gender,photo";
    // The fixture photo, reached through the parent folder: the same file,
    // but the path leaves the folder the batch is read from.
    let base = fixtures().join("photos");
    let text = format!(
        "{header}\n140409040007,0012345679,علی,کریمی,حسین,Ali,Karimi,Hossein,1369/06/31,M,../photos/holder1.jpg\n\
         140409040015,0012345679,علی,کریمی,حسین,Ali,Karimi,Hossein,1369/06/31,M,../batch.csv\n"
    );
    let items: Vec<_> = read(text.as_bytes(), BatchFormat::Csv, base.clone());
    assert!(items[0].is_ok(), "{:?}", items[0]);
    let outside = items[1].as_ref().unwrap_err();
    assert!(outside.has(Field::Photo), "{outside}");
    assert!(outside.to_string().contains("is outside"), "{outside}");
    assert!(outside.to_string().contains("photo_root"), "{outside}");
}

#[test]
fn a_huge_unknown_column_is_quoted_short() {
    let huge = "n".repeat(1_000_000);
    let csv = format!("tracking_code,national_code,{huge},{huge}x\n");
    let Err(e @ BatchError::BadHeader { .. }) = Batch::from_reader(
        csv.as_bytes(),
        BatchFormat::Csv,
        PathBuf::new(),
        validator(),
    ) else {
        panic!("expected a bad header");
    };
    let msg = e.to_string();
    assert!(msg.len() < 1000, "{} bytes: {}", msg.len(), &msg[..1000]);
    assert!(msg.contains("nnn…"), "{msg}");
}

#[test]
fn a_fingerprint_swapped_for_a_fifo_after_validation_is_refused_without_blocking() {
    let items = load("batch.csv");
    let mut record = items
        .into_iter()
        .find_map(|r| r.ok().filter(|r| r.fingerprint.is_some()))
        .expect("a record with a fingerprint");
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("finger.fmr");
    kart_testkit::process::mkfifo(&fifo, &[]);
    for path in [fifo, PathBuf::from("/dev/zero")] {
        record.fingerprint = Some(path);
        let r = record.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(kart_perso::card_data::ef_finger(&r).map(drop));
        });
        let e = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("reading the fingerprint blocked")
            .unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }
}

#[test]
fn a_huge_unknown_json_key_is_quoted_short() {
    let huge = "k".repeat(500_000);
    let jsonl = format!("{{\"{huge}\": \"x\", \"tracking_code\": \"140409040007\"}}\n");
    let items: Vec<_> = read(jsonl.as_bytes(), BatchFormat::JsonLines, PathBuf::new());
    let e = items[0].as_ref().unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("kkk…: is not a known field"),
        "{}",
        &msg[..300]
    );
    let unknown: Vec<String> = e.messages().filter(|m| m.contains("known field")).collect();
    assert_eq!(unknown.len(), 1);
    assert!(unknown[0].len() < 600, "{} bytes", unknown[0].len());
}
