//! Any bytes as a JSON Lines batch: no panic, every error is attributed to a
//! line and says what is wrong.
#![no_main]

use kart_perso::record::{Batch, BatchFormat, SolarDate, Validator};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &[u8]| {
    let Some(today) = SolarDate::parse("1404/09/04").ok() else {
        return;
    };
    let base = std::path::PathBuf::from("/nonexistent-kart-fuzz");
    let Ok(records) =
        Batch::from_reader(raw, BatchFormat::JsonLines, base, Validator::as_of(today))
    else {
        return;
    };
    let lines = raw.iter().filter(|b| **b == b'\n').count() + 1;
    let mut seen = 0;
    for item in records {
        seen += 1;
        assert!(seen <= lines, "more results than lines");
        if let Err(e) = item {
            assert!(!e.problems.is_empty());
            assert!(e.line >= 1 && e.line as usize <= lines);
        }
    }
});
