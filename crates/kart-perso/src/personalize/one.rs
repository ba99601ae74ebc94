//! One card, one call: what an integrator without a station needs.

use kart_apdu::{Card, Transport};
use kart_spec::Profile;
use time::OffsetDateTime;

use super::{personalize, Job, Outcome, PersoError};
use crate::card_data::Crn;
use crate::issuer::Issuer;
use crate::pin_mailer::Pins;
use crate::probe::probe_card;
use crate::record::IdentityRecord;

/// Personalizes the card behind `transport` (a card of `profile`) for
/// `record`: probes it, builds the job (issued `now`, with `crn` and
/// `pins`), runs the plan inside the secure channel and locks the card.
///
/// No journal, no CRN register: the caller assigns `crn` and sends `pins`
/// to its PIN mailer. A station that serves batches uses
/// [`Station::serve`](crate::station::Station::serve) instead.
///
/// # Errors
/// When the card cannot be probed, is already LOCKED, refuses a command,
/// or the plan cannot be built from `record`.
///
/// ```no_run
/// # fn demo(transport: impl kart_apdu::Transport, profile: &kart_spec::Profile,
/// #        issuer: &kart_perso::issuer::Issuer, record: &kart_perso::record::IdentityRecord)
/// #        -> Result<(), Box<dyn std::error::Error>> {
/// use kart_perso::card_data::Crn;
/// use kart_perso::personalize::personalize_one;
/// use kart_perso::pin_mailer::Pins;
/// let pins = Pins::generate(record.pin.as_ref())?;
/// let crn = Crn::parse("0000000017")?;
/// let outcome = personalize_one(transport, profile, issuer, record, &crn, &pins, time::OffsetDateTime::now_utc())?;
/// println!("{} locked in {} APDUs", outcome.csn, outcome.counters.apdus);
/// # Ok(()) }
/// ```
pub fn personalize_one<T: Transport>(
    transport: T,
    profile: &Profile,
    issuer: &Issuer,
    record: &IdentityRecord,
    crn: &Crn,
    pins: &Pins,
    now: OffsetDateTime,
) -> Result<Outcome, PersoError> {
    let mut card = Card::with_caps(transport, profile.caps());
    let info = probe_card(&mut card, profile)?;
    let job = Job::new(record, crn, pins, now.date());
    personalize(&mut card, profile, issuer, &info, &job, now)
}
