//! Active authentication: a card's INTERNAL AUTHENTICATE answer checked
//! against its holder certificate.

use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

use super::{Certificate, PkiError};

const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const P256: &str = "1.2.840.10045.3.1.7";

/// Check `signature` — raw `r ‖ s`, 64 bytes, ECDSA P-256 with SHA-256 over
/// `challenge` as the applet spec (§8.10) defines it — with the public key of
/// `holder`. Validate the holder certificate's chain first
/// ([`validate_chain`](super::validate_chain)); this checks only the signature.
///
/// ```
/// use kart_perso::pki::{create_demo_issuer, issue_holder_certificate,
///     verify_card_signature, Holder, IssuerPki, PkiError};
/// use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING as ALG};
/// let dir = tempfile::tempdir()?;
/// let now = time::OffsetDateTime::now_utc();
/// create_demo_issuer(dir.path(), now)?;
/// let pki = IssuerPki::load(dir.path())?;
/// let rng = ring::rand::SystemRandom::new();
/// let card = EcdsaKeyPair::from_pkcs8(&ALG,
///     EcdsaKeyPair::generate_pkcs8(&ALG, &rng).unwrap().as_ref(), &rng).unwrap();
/// let holder = Holder { crn: "1234567890", national_code: "0499370899",
///     public_point: card.public_key().as_ref() };
/// let cert = issue_holder_certificate(&pki.card_ca, &pki.card_ca_key, &holder, now)?;
///
/// let challenge = [7u8; 16];
/// let answer = card.sign(&rng, &challenge).unwrap(); // the card's INTERNAL AUTHENTICATE
/// verify_card_signature(&cert, &challenge, answer.as_ref())?;
/// assert!(matches!(verify_card_signature(&cert, &[8u8; 16], answer.as_ref()),
///     Err(PkiError::CardSignatureInvalid { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn verify_card_signature(
    holder: &Certificate,
    challenge: &[u8],
    signature: &[u8],
) -> Result<(), PkiError> {
    let cert = holder.parsed();
    let spki = cert.public_key();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    if spki.algorithm.algorithm.to_id_string() != EC_PUBLIC_KEY || curve.as_deref() != Some(P256) {
        return Err(PkiError::UnsupportedAlgorithm(format!(
            "holder key {} (curve {}); cards sign with EC P-256",
            spki.algorithm.algorithm,
            curve.unwrap_or_default()
        )));
    }
    if signature.len() != 64 {
        return Err(PkiError::malformed(
            "card signature",
            format!("{} bytes, expected 64 (r || s)", signature.len()),
        ));
    }
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, spki.subject_public_key.as_ref())
        .verify(challenge, signature)
        .map_err(|_| PkiError::CardSignatureInvalid {
            subject: holder.subject().to_owned(),
        })
}
