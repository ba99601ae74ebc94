//! Any bytes as a CSV batch: no panic, every error is attributed to a line,
//! and no record is silently dropped (each data row yields a record or an error).
#![no_main]

use kart_perso::record::{Batch, BatchFormat, SolarDate, Validator};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &[u8]| {
    let Some(today) = SolarDate::parse("1404/09/04").ok() else {
        return;
    };
    let base = std::path::PathBuf::from("/nonexistent-kart-fuzz");
    let Ok(records) = Batch::from_reader(raw, BatchFormat::Csv, base, Validator::as_of(today))
    else {
        return;
    };
    for item in records.take(10_000) {
        if let Err(e) = item {
            assert!(!e.problems.is_empty());
            let text = e.to_string();
            assert!(text.starts_with("line "), "{text}");
        }
    }
});
