//! Personalize one application on a simulated card of each vendor profile.
//!
//! `cargo run -p kart-examples --bin personalize_one [PROFILE]`
//!
//! The steps an integrator's station takes for one card: generate the
//! holder's PINs (they go to a PIN mailer, never to the screen), then one
//! call, [`personalize_one`], probes the card (applet, serial, life cycle)
//! and personalizes it inside the secure channel; read the counters. `kart personalize` does the same for whole batches, with a
//! journal and many readers.

use kart_perso::card_data::Crn;
use kart_perso::personalize::personalize_one;
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
        let card = kart_examples::blank_card(&issuer, profile)?;
        let pins = Pins::generate(record.pin.as_ref())?;
        let crn = Crn::parse("0000000017")?;
        let now = time::OffsetDateTime::now_utc();
        let outcome = personalize_one(card, profile, &issuer, &record, &crn, &pins, now)?;
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
