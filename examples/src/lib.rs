//! # kart integrator examples
//!
//! Two programs show how to use the kart libraries from an application:
//!
//! - `personalize_one` — personalize one application on a simulated card:
//!   probe the card, generate the PINs, run the plan inside the secure
//!   channel, lock the card;
//! - `read_and_verify` — open a PC/SC reader (or a freshly personalized
//!   simulated card), read the identity data and verify the card as a bank
//!   does, then print the verdict.
//!
//! ```sh
//! cargo run -p kart-examples --bin personalize_one
//! cargo run -p kart-examples --bin read_and_verify                      # simulated card
//! KART_PIN=… cargo run -p kart-examples --bin read_and_verify -- "READER" issuer/
//! ```
//!
//! This library holds only the setup the examples share: a test issuer and
//! the sample application.
#![forbid(unsafe_code)]

use kart_perso::issuer::Issuer;
use kart_perso::pki::{create_demo_issuer, IssuerPki, MasterKeys};
use kart_perso::record::{Batch, IdentityRecord};
use std::path::Path;

/// Anything that can go wrong in an example.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// A test issuer in `dir`: a demo PKI (root, card CA, document signer) and
/// secure-channel master keys equal to the `GlobalPlatform` test keys that
/// simulated cards ([`kart_sim::SimCard::new`]) are made with.
///
/// A real issuer loads its own keys with [`Issuer::load`].
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let issuer = kart_examples::test_issuer(dir.path())?;
/// assert_eq!(issuer.master_keys.sets().len(), 3);
/// # Ok::<(), kart_examples::Error>(())
/// ```
pub fn test_issuer(dir: &Path) -> Result<Issuer, Error> {
    create_demo_issuer(dir, time::OffsetDateTime::now_utc())?;
    let set = |name: &str, algorithm: &str, len: usize| {
        let key = hex::encode(kart_sim::default_test_key(len));
        format!(
            r#"{{"name":"{name}","algorithm":"{algorithm}","version":1,"enc":"{key}","mac":"{key}","dek":"{key}"}}"#
        )
    };
    let keys = format!(
        r#"{{"format":"kart-master-keys/1","key_sets":[{},{},{}]}}"#,
        set("scp02", "3des", 16),
        set("scp03-aes128", "aes128", 16),
        set("scp03-aes256", "aes256", 32)
    );
    Ok(Issuer {
        pki: IssuerPki::load(dir)?,
        master_keys: MasterKeys::from_json(&keys)?,
    })
}

/// The first application of the sample batch `examples/batch/applications.csv`.
///
/// ```
/// let record = kart_examples::sample_record()?;
/// assert_eq!(record.national_code.as_str(), "0012345679");
/// # Ok::<(), kart_examples::Error>(())
/// ```
pub fn sample_record() -> Result<IdentityRecord, Error> {
    let batch = Path::new(env!("CARGO_MANIFEST_DIR")).join("batch/applications.csv");
    let first = Batch::open(batch)?
        .next()
        .ok_or("the sample batch is empty")?;
    Ok(first?)
}
