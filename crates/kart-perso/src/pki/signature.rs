//! Signature verification with `ring`, chosen explicitly from the algorithm OIDs.

use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::x509::SubjectPublicKeyInfo;

const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const P256: &str = "1.2.840.10045.3.1.7";
const P384: &str = "1.3.132.0.34";

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SignatureError {
    /// The key/algorithm combination is not supported.
    Unsupported(String),
    /// The signature is wrong for this key and message.
    Invalid,
}

/// The named curve of an EC key in `spki`, as a dotted OID; empty when the
/// parameters name none (explicit curves are not supported).
pub(crate) fn ec_curve_oid(spki: &SubjectPublicKeyInfo<'_>) -> String {
    spki.algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string())
        .unwrap_or_default()
}

/// Verify `sig` over `message` with the key in `spki`.
///
/// `sig_alg` is the signature algorithm OID; `digest_alg` is used when
/// `sig_alg` is plain `rsaEncryption` (as CMS `SignerInfo`s often say).
pub(crate) fn verify_signature(
    spki: &SubjectPublicKeyInfo<'_>,
    sig_alg: &str,
    digest_alg: Option<&str>,
    message: &[u8],
    sig: &[u8],
) -> Result<(), SignatureError> {
    let key_alg = spki.algorithm.algorithm.to_id_string();
    let alg: &'static dyn VerificationAlgorithm = match key_alg.as_str() {
        EC_PUBLIC_KEY => {
            let curve = ec_curve_oid(spki);
            match (curve.as_str(), sig_alg) {
                (P256, "1.2.840.10045.4.3.2") => &signature::ECDSA_P256_SHA256_ASN1,
                (P256, "1.2.840.10045.4.3.3") => &signature::ECDSA_P256_SHA384_ASN1,
                (P384, "1.2.840.10045.4.3.2") => &signature::ECDSA_P384_SHA256_ASN1,
                (P384, "1.2.840.10045.4.3.3") => &signature::ECDSA_P384_SHA384_ASN1,
                _ => {
                    return Err(SignatureError::Unsupported(format!(
                        "signature {sig_alg} with EC key on curve {curve}"
                    )))
                }
            }
        }
        RSA_ENCRYPTION => match (sig_alg, digest_alg) {
            // RSASSA-PSS: ring checks SHA-256, MGF1-SHA-256 and a 32-byte
            // salt; other parameters fail as a bad signature.
            ("1.2.840.113549.1.1.10", Some("2.16.840.1.101.3.4.2.1")) => {
                &signature::RSA_PSS_2048_8192_SHA256
            }
            ("1.2.840.113549.1.1.11", _) | (RSA_ENCRYPTION, Some("2.16.840.1.101.3.4.2.1")) => {
                &signature::RSA_PKCS1_2048_8192_SHA256
            }
            ("1.2.840.113549.1.1.12", _) | (RSA_ENCRYPTION, Some("2.16.840.1.101.3.4.2.2")) => {
                &signature::RSA_PKCS1_2048_8192_SHA384
            }
            ("1.2.840.113549.1.1.13", _) | (RSA_ENCRYPTION, Some("2.16.840.1.101.3.4.2.3")) => {
                &signature::RSA_PKCS1_2048_8192_SHA512
            }
            _ => {
                return Err(SignatureError::Unsupported(format!(
                    "signature {sig_alg} with RSA key"
                )))
            }
        },
        other => return Err(SignatureError::Unsupported(format!("public key {other}"))),
    };
    UnparsedPublicKey::new(alg, spki.subject_public_key.as_ref())
        .verify(message, sig)
        .map_err(|_| SignatureError::Invalid)
}
