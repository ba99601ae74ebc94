//! When a read-back card counts as issued.

use crate::card_data::Crn;
use crate::read;
use crate::record::Pin;
use crate::verify::{Check, Verdict};

/// What the card must show to be issued.
pub(super) struct Expected<'a> {
    /// The CRN assigned to this card for this application.
    pub crn: &'a Crn,
    /// The ID PIN, when this run set it: the verifier then reads and checks
    /// EF.ID and EF.FACE too.
    pub id_pin: Option<&'a Pin>,
    /// The security object this run wrote.
    pub written_sod: Option<&'a [u8]>,
    /// APDUs of the writing run, for the report.
    pub apdus: u64,
}

/// The card is issued when it is LOCKED with the expected CRN and EF.SOD,
/// and the verifier finds nothing wrong: every required check passes when
/// the PIN was given; without it (recovery), no check fails and passive and
/// active authentication passed.
pub(super) fn judge(verdict: &Verdict, expected: &Expected<'_>) -> Result<(), String> {
    if verdict.content.lifecycle != read::Lifecycle::Locked {
        return Err(format!("life cycle is {}, not LOCKED", verdict.lifecycle));
    }
    if verdict.crn.as_deref() != Some(expected.crn.as_str()) {
        return Err(format!(
            "CRN on the card is {}, expected {}",
            verdict.crn.as_deref().unwrap_or("(none)"),
            expected.crn
        ));
    }
    if let Some(written) = expected.written_sod {
        if verdict.content.data(read::EF_SOD.name) != Some(written) {
            return Err("EF.SOD read back differs from what was written".into());
        }
    }
    if let Some(failed) = verdict.failures().next() {
        return Err(format!("{}: {:?}", failed.name, failed.outcome));
    }
    let must_pass = ["sod.signature", "sod.signer", "aa"];
    let passed = |id: &str| verdict.check(id).is_some_and(Check::passed);
    if expected.id_pin.is_some() && !verdict.is_genuine() {
        return Err(format!("not genuine:\n{verdict}"));
    }
    if let Some(missing) = must_pass.iter().find(|id| !passed(id)) {
        return Err(format!("check {missing} did not pass"));
    }
    Ok(())
}
