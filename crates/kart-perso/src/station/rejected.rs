//! The rejected records of a batch that can be recorded in the journal
//! against their applications: those whose tracking code itself is valid.

use crate::record::{RecordError, TrackingCode};

/// Each rejected record with a valid tracking code, with the loader's
/// reasons joined into one line (bounded for the journal).
pub(super) fn rejections(errors: &[RecordError]) -> Vec<(TrackingCode, String)> {
    errors
        .iter()
        .filter_map(|error| {
            let code = error.tracking_code.clone()?;
            let reasons: Vec<String> = error.messages().collect();
            Some((code, super::bounded(&reasons.join("; "))))
        })
        .collect()
}
