//! Personalize one application on a simulated card of each vendor profile.
//!
//! `cargo run -p kart-examples --bin personalize_one [PROFILE]`
//!
//! The steps an integrator's station takes for one card: probe it (applet,
//! serial, life cycle), generate the holder's PINs (they go to a PIN mailer,
//! never to the screen), personalize it inside the secure channel, and read
//! the counters. `kart personalize` does the same for whole batches, with a
//! journal and many readers.

use kart_apdu::Card;
use kart_perso::card_data::Crn;
use kart_perso::personalize::{personalize, probe, Job};
use kart_perso::pin_mailer::Pins;
use kart_spec::Spec;

fn main() -> Result<(), kart_examples::Error> {
    let only = std::env::args().nth(1);
    let dir = tempfile::tempdir()?;
    let issuer = kart_examples::test_issuer(dir.path())?;
    let record = kart_examples::sample_record()?;
    let spec = Spec::embedded()?;
    for profile in spec
        .profiles
        .iter()
        .filter(|p| only.as_deref().is_none_or(|id| id == p.id))
    {
        // A blank card in a reader; with PC/SC this is a kart_pcsc::Connection.
        let mut card =
            Card::with_caps(kart_examples::blank_card(&issuer, profile)?, profile.caps());
        let info = probe(&mut card, profile)?;
        let pins = Pins::generate(record.pin.as_ref())?;
        let crn = Crn::parse("0000000017")?;
        let now = time::OffsetDateTime::now_utc();
        let job = Job::new(&record, &crn, &pins, now.date());
        let outcome = personalize(&mut card, profile, &issuer, &info, &job, now)?;
        println!(
            "{}: card {} personalized and locked for {} ({}), CRN {}: {} APDUs, {} bytes sent, {} steps",
            profile.id,
            outcome.csn,
            record.tracking_code,
            record.family_name.en.as_str(),
            outcome.crn,
            outcome.counters.apdus,
            outcome.counters.bytes_sent,
            outcome.steps.len()
        );
    }
    Ok(())
}
