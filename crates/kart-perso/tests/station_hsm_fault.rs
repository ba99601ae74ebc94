//! The issuer's token goes away in the middle of a card: the signer fails
//! with a typed "token removed" error after data reached the card. The card
//! is not spoiled nor failed: it stays bound to its application (as a
//! pulled card does) and, once the token is back, the same card resumes to
//! one verified issuance.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kart_perso::pki::pkcs11::Pkcs11Error;
use kart_perso::pki::{IssuerSigner, KeyAlgorithm, PkiError};
use kart_perso::station::{Served, Station, StationFiles};
use kart_testkit::engine::*;

/// A signer whose token can be "removed".
#[derive(Debug)]
struct Removable {
    inner: Box<dyn IssuerSigner>,
    removed: Arc<AtomicBool>,
}

impl IssuerSigner for Removable {
    fn algorithm(&self) -> KeyAlgorithm {
        self.inner.algorithm()
    }
    fn public_key(&self) -> &[u8] {
        self.inner.public_key()
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        if self.removed.load(Ordering::SeqCst) {
            return Err(PkiError::Pkcs11(Pkcs11Error::TokenRemoved {
                token: "kart".into(),
                rv: "CKR_DEVICE_REMOVED".into(),
            }));
        }
        self.inner.sign(message)
    }
    fn location(&self) -> String {
        "test token".into()
    }
}

/// A station over `dir` whose document signer sits in a token that starts
/// out removed (the security object is signed after the data files are
/// written); the flag puts it back.
fn station_with_removable_token(dir: &std::path::Path) -> (Station, Arc<AtomicBool>) {
    let mut issuer = station_issuer(dir);
    let removed = Arc::new(AtomicBool::new(true));
    let key =
        kart_perso::pki::IssuerKey::load(&dir.join("issuer/document-signer.key.pem")).unwrap();
    issuer.pki.document_signer_key = Box::new(Removable {
        inner: Box::new(key),
        removed: Arc::clone(&removed),
    });
    let station = Station::open("hsm", &StationFiles::in_dir(dir), issuer, spec()).unwrap();
    (station, removed)
}

#[test]
fn token_removed_mid_card_keeps_the_card_bound_and_it_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let batch = batch_file(dir.path(), &[row(1, "face.jpg")], 3000);
    let (station, removed) = station_with_removable_token(dir.path());
    station.load_batch(&batch, validator()).unwrap();
    let spec = spec();
    let profile = spec.profile("vendor-b").unwrap();
    let mut card = station_sim(dir.path(), profile, 7);

    let served = station.serve("r", &mut card, profile).unwrap();
    assert!(matches!(served, Served::Pulled { .. }), "{served:?}");
    removed.store(false, Ordering::SeqCst);
    let served = station.serve("r", &mut card, profile).unwrap();
    assert!(matches!(served, Served::Issued { .. }), "{served:?}");
}

/// While the token is away the station pauses: the next card is not
/// touched and no new application is claimed (it would be bound to a card
/// that cannot be finished); once the token is back both cards are issued.
#[test]
fn a_station_whose_token_is_away_takes_no_new_application_until_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let batch = batch_file(dir.path(), &[row(1, "face.jpg"), row(2, "face.jpg")], 3000);
    let (station, removed) = station_with_removable_token(dir.path());
    station.load_batch(&batch, validator()).unwrap();
    let spec = spec();
    let profile = spec.profile("vendor-c").unwrap();
    let mut first = station_sim(dir.path(), profile, 7);
    assert!(matches!(
        station.serve("r0", &mut first, profile).unwrap(),
        Served::Pulled { .. }
    ));
    // Paused: the second card is not even probed, application 2 stays queued.
    let mut second = station_sim(dir.path(), profile, 8);
    assert!(matches!(
        station.serve("r1", &mut second, profile),
        Err(kart_perso::station::StationError::IssuerUnavailable(_))
    ));
    assert_eq!(second.log().apdus(), 0, "the paused station touched a card");
    assert_eq!(
        station.status(&code(2)).unwrap().state,
        kart_perso::journal::State::Queued
    );
    removed.store(false, Ordering::SeqCst);
    assert!(matches!(
        station.serve("r1", &mut second, profile).unwrap(),
        Served::Issued { .. }
    ));
    assert!(matches!(
        station.serve("r0", &mut first, profile).unwrap(),
        Served::Issued { .. }
    ));
}
