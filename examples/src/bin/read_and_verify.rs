//! Read a card and verify it as a bank does, then print the verdict.
//!
//! - `cargo run -p kart-examples --bin read_and_verify` — a simulated card,
//!   personalized first by a test issuer, then read and verified with its ID PIN;
//! - `cargo run -p kart-examples --bin read_and_verify -- READER ISSUER_DIR` —
//!   the card in a PC/SC reader, trusting `ISSUER_DIR/root.pem` (and
//!   `card-ca.pem`); the ID PIN, if any, comes from `$KART_PIN`.
//!
//! Exit code 0 when the card is genuine, 1 when it is not.

use kart_apdu::{Card, Transport};
use kart_perso::card_data::Crn;
use kart_perso::personalize::personalize_one;
use kart_perso::pin_mailer::Pins;
use kart_perso::read::read_card;
use kart_perso::record::Pin;
use kart_perso::verify::{TrustAnchors, Verifier};
use kart_spec::Spec;
use std::path::Path;
use std::process::ExitCode;

fn main() -> Result<ExitCode, kart_examples::Error> {
    let spec = Spec::embedded()?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let genuine = match args.as_slice() {
        [reader, issuer_dir] => {
            let pcsc = kart_pcsc::Pcsc::establish()?;
            let conn = pcsc.connect(reader, kart_pcsc::ConnectOptions::default())?;
            let atr = conn.atr().to_vec();
            let dir = Path::new(issuer_dir);
            let trust = TrustAnchors::load(&dir.join("root.pem"), &[&dir.join("card-ca.pem")])?;
            let pin = std::env::var("KART_PIN")
                .ok()
                .map(|p| Pin::parse(&p))
                .transpose()?;
            read_and_verify(&spec, &mut Card::new(conn), &atr, &trust, pin.as_ref())?
        }
        [] => {
            let dir = tempfile::tempdir()?;
            let issuer = kart_examples::test_issuer(dir.path())?;
            let record = kart_examples::sample_record()?;
            let profile = spec.profile("vendor-c").ok_or("no vendor-c profile")?;
            let mut sim = kart_examples::blank_card(&issuer, profile)?;
            let pins = Pins::generate(None)?;
            let now = time::OffsetDateTime::now_utc();
            let crn = Crn::parse("0000000017")?;
            personalize_one(&mut sim, profile, &issuer, &record, &crn, &pins, now)?;
            let mut card = Card::with_caps(sim, profile.caps());
            // The holder types the ID PIN from the PIN mailer.
            let pin = Pin::parse(std::str::from_utf8(pins.id_pin.expose())?)?;
            let trust = TrustAnchors::new(issuer.pki.root.clone())
                .with_intermediate(issuer.pki.card_ca.clone());
            read_and_verify(&spec, &mut card, profile.atr.bytes(), &trust, Some(&pin))?
        }
        _ => return Err("usage: read_and_verify [READER ISSUER_DIR]".into()),
    };
    Ok(if genuine {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Reads the identity, verifies the card, prints both; returns the verdict.
fn read_and_verify<T: Transport>(
    spec: &Spec,
    card: &mut Card<T>,
    atr: &[u8],
    trust: &TrustAnchors,
    pin: Option<&Pin>,
) -> Result<bool, kart_examples::Error> {
    let content = read_card(card, spec, Some(atr), pin)?;
    match content.identity() {
        Some(Ok(id)) => println!(
            "{} {} ({} {}), national code {}, born {}",
            id.given_name_fa,
            id.family_name_fa,
            id.given_name_en,
            id.family_name_en,
            id.national_code,
            id.birth_date
        ),
        Some(Err(e)) => println!("EF.ID does not decode: {e}"),
        None => println!("identity not read ({})", content.pin),
    }
    let mut verifier = Verifier::new(trust, time::OffsetDateTime::now_utc())
        .spec(spec)
        .atr(atr);
    if let Some(pin) = pin {
        verifier = verifier.pin(pin);
    }
    let verdict = verifier.verify(card)?;
    println!("{verdict}");
    Ok(verdict.is_genuine())
}
