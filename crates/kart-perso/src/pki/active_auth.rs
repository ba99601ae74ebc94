//! Active authentication: a card's INTERNAL AUTHENTICATE answer checked
//! against its holder certificate.

use super::{Certificate, HolderKey, PkiError};

/// Check `signature` — ECDSA P-256 with SHA-256 as raw `r ‖ s` (64 bytes), or
/// RSASSA-PKCS1-v1_5 with SHA-256, over `challenge` as the applet spec
/// (§8.10) defines it — with the public key of `holder`. Validate the holder certificate's chain first
/// ([`validate_chain`](super::validate_chain)); this checks only the signature.
///
/// ```
/// use kart_perso::pki::{create_demo_issuer, issue_holder_certificate,
///     verify_card_signature, Holder, HolderKey, IssuerPki, PkiError};
/// use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING as ALG};
/// let dir = tempfile::tempdir()?;
/// let now = time::OffsetDateTime::now_utc();
/// create_demo_issuer(dir.path(), now)?;
/// let pki = IssuerPki::load(dir.path())?;
/// let rng = ring::rand::SystemRandom::new();
/// let card = EcdsaKeyPair::from_pkcs8(&ALG,
///     EcdsaKeyPair::generate_pkcs8(&ALG, &rng).unwrap().as_ref(), &rng).unwrap();
/// let key = HolderKey::ec_p256(card.public_key().as_ref())?;
/// let holder = Holder { crn: "1234567890", national_code: "0499370899", public_key: &key };
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
    let key = HolderKey::from_certificate(holder)?;
    if signature.len() != key.signature_len() {
        return Err(PkiError::malformed(
            "card signature",
            format!(
                "{} bytes, expected {} for its {} key",
                signature.len(),
                key.signature_len(),
                key.algorithm()
            ),
        ));
    }
    if key.verifies(challenge, signature) {
        Ok(())
    } else {
        Err(PkiError::CardSignatureInvalid {
            subject: holder.subject().to_owned(),
        })
    }
}
