//! Certificate chain validation: time, issuer names, CA flags, path length,
//! key usage and signatures (verified with `ring`).

use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;

use super::{verify_signature, Certificate, PkiError, SignatureError};

/// What the leaf certificate must be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUsage {
    /// keyUsage digitalSignature (document signer, holder certificate).
    DigitalSignature,
    /// keyUsage keyCertSign (a CA checked as a leaf).
    KeyCertSign,
    /// No key usage requirement on the leaf.
    Any,
}

/// Validate `leaf` → `intermediates` (in order, leaf side first) → `root` at
/// time `at`.
///
/// Checks every certificate's validity period, that each one names the next
/// as issuer and is signed by its key (`ring`), that every issuer has
/// basicConstraints cA=TRUE, keyCertSign (when keyUsage is present) and a
/// satisfied pathLenConstraint, that the root is self-signed, and that the
/// leaf has `leaf_usage`. The first failure is returned as a typed error.
///
/// ```
/// use kart_perso::pki::{create_demo_issuer, IssuerPki, validate_chain, KeyUsage, PkiError};
/// let dir = tempfile::tempdir()?;
/// let now = time::OffsetDateTime::now_utc();
/// create_demo_issuer(dir.path(), now)?;
/// let pki = IssuerPki::load(dir.path())?;
/// let later = now + time::Duration::days(365 * 30);
/// let err = validate_chain(&pki.document_signer, &[], &pki.root, later, KeyUsage::DigitalSignature);
/// assert!(matches!(err, Err(PkiError::Expired { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn validate_chain(
    leaf: &Certificate,
    intermediates: &[Certificate],
    root: &Certificate,
    at: OffsetDateTime,
    leaf_usage: KeyUsage,
) -> Result<(), PkiError> {
    let path: Vec<X509Certificate<'_>> = std::iter::once(leaf)
        .chain(intermediates)
        .chain(std::iter::once(root))
        .map(Certificate::parsed)
        .collect();
    for cert in &path {
        check_validity(cert, at)?;
    }
    for (below, pair) in path.windows(2).enumerate() {
        let [subject, issuer] = pair else { continue };
        check_issued_by(subject, issuer)?;
        check_ca(issuer, below as u32)?;
    }
    if let Some(anchor) = path.last() {
        check_issued_by(anchor, anchor)?;
        check_ca(anchor, 0)?;
    }
    if let Some(first) = path.first() {
        check_leaf_usage(first, leaf_usage)?;
    }
    Ok(())
}

pub(crate) fn check_validity(
    cert: &X509Certificate<'_>,
    at: OffsetDateTime,
) -> Result<(), PkiError> {
    let t = at.unix_timestamp();
    let v = cert.validity();
    if t < v.not_before.timestamp() {
        return Err(PkiError::NotYetValid {
            subject: cert.subject().to_string(),
            not_before: v.not_before.to_string(),
        });
    }
    if t > v.not_after.timestamp() {
        return Err(PkiError::Expired {
            subject: cert.subject().to_string(),
            not_after: v.not_after.to_string(),
        });
    }
    Ok(())
}

fn check_issued_by(
    cert: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
) -> Result<(), PkiError> {
    if cert.issuer().as_raw() != issuer.subject().as_raw() {
        return Err(PkiError::WrongIssuer {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            expected: issuer.subject().to_string(),
        });
    }
    let sig_alg = cert.signature_algorithm.algorithm.to_id_string();
    verify_signature(
        issuer.public_key(),
        &sig_alg,
        None,
        cert.tbs_certificate.as_ref(),
        cert.signature_value.as_ref(),
    )
    .map_err(|e| match e {
        SignatureError::Unsupported(what) => PkiError::UnsupportedAlgorithm(what),
        SignatureError::Invalid => PkiError::BadSignature {
            subject: cert.subject().to_string(),
            issuer: issuer.subject().to_string(),
        },
    })
}

/// `below` = intermediate CAs between this CA and the leaf.
pub(crate) fn check_ca(ca: &X509Certificate<'_>, below: u32) -> Result<(), PkiError> {
    let subject = || ca.subject().to_string();
    let bc = ca
        .basic_constraints()
        .map_err(|e| PkiError::malformed("certificate basicConstraints", e))?;
    let Some(bc) = bc.filter(|bc| bc.value.ca) else {
        return Err(PkiError::NotCa { subject: subject() });
    };
    if let Some(allowed) = bc.value.path_len_constraint {
        if below > allowed {
            return Err(PkiError::PathLengthExceeded {
                subject: subject(),
                allowed,
                found: below,
            });
        }
    }
    let ku = ca
        .key_usage()
        .map_err(|e| PkiError::malformed("certificate keyUsage", e))?;
    if ku.is_some_and(|ku| !ku.value.key_cert_sign()) {
        return Err(PkiError::MissingKeyUsage {
            subject: subject(),
            usage: "keyCertSign",
        });
    }
    Ok(())
}

fn check_leaf_usage(leaf: &X509Certificate<'_>, usage: KeyUsage) -> Result<(), PkiError> {
    let (name, allowed): (&'static str, fn(&x509_parser::extensions::KeyUsage) -> bool) =
        match usage {
            KeyUsage::Any => return Ok(()),
            KeyUsage::DigitalSignature => ("digitalSignature", |k| k.digital_signature()),
            KeyUsage::KeyCertSign => ("keyCertSign", |k| k.key_cert_sign()),
        };
    let ku = leaf
        .key_usage()
        .map_err(|e| PkiError::malformed("certificate keyUsage", e))?;
    if ku.is_some_and(|ku| allowed(ku.value)) {
        Ok(())
    } else {
        Err(PkiError::MissingKeyUsage {
            subject: leaf.subject().to_string(),
            usage: name,
        })
    }
}
