//! Property tests: the loaders never panic on arbitrary input, and text
//! normalization is idempotent.

use std::path::PathBuf;

use kart_perso::record::{
    normalize_digits, normalize_latin, normalize_persian, Batch, BatchFormat, NationalCode,
    PersianText, SolarDate, Validator,
};
use proptest::prelude::*;

fn validator() -> Validator {
    Validator::as_of(SolarDate::parse("1404/09/04").unwrap())
}

const HEADER: &str = "tracking_code,national_code,given_name_fa,family_name_fa,father_name_fa,given_name_en,family_name_en,father_name_en,birth_date,gender,pin,photo,fingerprint\n";

proptest! {
    #[test]
    fn csv_loader_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(records) = Batch::from_reader(&bytes[..], BatchFormat::Csv, PathBuf::new(), validator()) {
            for item in records {
                if let Err(e) = item { prop_assert!(!e.problems.is_empty()); }
            }
        }
    }

    #[test]
    fn csv_loader_never_panics_on_arbitrary_rows(rows in proptest::collection::vec("[^\\n]{0,200}", 0..20)) {
        let text = format!("{HEADER}{}", rows.join("\n"));
        let records = Batch::from_reader(text.as_bytes(), BatchFormat::Csv, PathBuf::new(), validator()).unwrap();
        for item in records {
            if let Err(e) = item { prop_assert!(!e.problems.is_empty()); prop_assert!(e.line >= 2); }
        }
    }

    #[test]
    fn jsonl_loader_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let records = Batch::from_reader(&bytes[..], BatchFormat::JsonLines, PathBuf::new(), validator()).unwrap();
        for item in records {
            if let Err(e) = item { prop_assert!(!e.problems.is_empty()); }
        }
    }

    #[test]
    fn jsonl_loader_never_panics_on_arbitrary_field_values(
        values in proptest::collection::vec("\\PC{0,40}", 13),
    ) {
        let keys = HEADER.trim().split(',');
        let object: serde_json::Map<String, serde_json::Value> =
            keys.zip(values).map(|(k, v)| (k.to_owned(), serde_json::Value::String(v))).collect();
        let line = serde_json::to_string(&object).unwrap();
        let items: Vec<_> = Batch::from_reader(line.as_bytes(), BatchFormat::JsonLines, PathBuf::new(), validator())
            .unwrap()
            .collect();
        prop_assert_eq!(items.len(), 1);
    }

    #[test]
    fn persian_normalization_is_idempotent(s in "\\PC{0,60}") {
        let once = normalize_persian(&s);
        prop_assert_eq!(normalize_persian(&once), once.clone());
        prop_assert!(!once.contains(['\u{064A}', '\u{0643}']), "arabic yeh/kaf left");
    }

    #[test]
    fn persian_normalization_is_idempotent_on_arabic_script(s in "[\u{0600}-\u{06FF}\u{200C} \t]{0,40}") {
        let once = normalize_persian(&s);
        prop_assert_eq!(normalize_persian(&once), once.clone());
        if let Ok(text) = PersianText::parse(&s) {
            prop_assert_eq!(PersianText::parse(text.as_str()).unwrap(), text);
        }
    }

    #[test]
    fn latin_and_digit_normalization_are_idempotent(s in "\\PC{0,60}") {
        let once = normalize_latin(&s);
        prop_assert_eq!(normalize_latin(&once), once);
        let digits = normalize_digits(&s);
        prop_assert_eq!(normalize_digits(&digits), digits);
    }

    #[test]
    fn national_code_parse_never_panics_and_round_trips(s in "\\PC{0,14}") {
        if let Ok(code) = NationalCode::parse(&s) {
            prop_assert_eq!(NationalCode::parse(code.as_str()).unwrap(), code);
        }
    }

    #[test]
    fn solar_date_parse_never_panics_and_round_trips(s in "[0-9۰-۹/]{0,12}") {
        if let Ok(date) = SolarDate::parse(&s) {
            prop_assert_eq!(SolarDate::parse(&date.to_string()).unwrap(), date);
            let (y, m, d) = date.gregorian();
            prop_assert_eq!(SolarDate::from_gregorian(y, m, d), Some(date));
        }
    }
}
