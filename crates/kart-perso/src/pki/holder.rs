//! Holder certificates for key pairs generated on the card.

use rcgen::{CertificateParams, DistinguishedName, DnType, IsCa, KeyUsagePurpose, SerialNumber};
use ring::rand::SecureRandom;
use time::OffsetDateTime;

use super::signer::RcgenSigner;
use super::{Certificate, HolderKey, IssuerSigner, PkiError};

/// Validity of a holder certificate, clamped to the issuer's notAfter.
pub const HOLDER_VALIDITY_YEARS: i64 = 7;

/// The card and holder a certificate is issued for.
#[derive(Debug, Clone, Copy)]
pub struct Holder<'a> {
    /// Card registration number: 10 ASCII digits; becomes the subject CN
    /// (as on the real card, CN = CRN).
    pub crn: &'a str,
    /// Holder's national code (10 ASCII digits); becomes the subject serialNumber.
    pub national_code: &'a str,
    /// The public key the card generated ([`HolderKey::from_card`]).
    pub public_key: &'a HolderKey,
}

/// Issue a holder certificate signed by `issuer_key`, the key of `issuer`.
///
/// Subject `C=IR, serialNumber=<national code>, CN=<CRN>`; validity from `now`
/// for [`HOLDER_VALIDITY_YEARS`] years or until the issuer expires; keyUsage
/// digitalSignature (critical); a random 16-byte serial number.
///
/// ```
/// use kart_perso::pki::{create_demo_issuer, issue_holder_certificate, validate_chain,
///     Holder, HolderKey, IssuerPki, KeyUsage};
/// use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
/// let dir = tempfile::tempdir()?;
/// let now = time::OffsetDateTime::now_utc();
/// create_demo_issuer(dir.path(), now)?;
/// let pki = IssuerPki::load(dir.path())?;
/// // Stands in for GENERATE ASYMMETRIC KEY PAIR on the card.
/// let rng = ring::rand::SystemRandom::new();
/// let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
/// let card_key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
/// let key = HolderKey::ec_p256(card_key.public_key().as_ref())?;
/// let holder = Holder { crn: "1234567890", national_code: "0499370899", public_key: &key };
/// let cert = issue_holder_certificate(&pki.card_ca, &pki.card_ca_key, &holder, now)?;
/// validate_chain(&cert, std::slice::from_ref(&pki.card_ca), &pki.root, now, KeyUsage::DigitalSignature)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn issue_holder_certificate(
    issuer: &Certificate,
    issuer_key: &dyn IssuerSigner,
    holder: &Holder<'_>,
    now: OffsetDateTime,
) -> Result<Certificate, PkiError> {
    check_digits("CRN", holder.crn)?;
    check_digits("national code", holder.national_code)?;

    let parsed = issuer.parsed();
    let issuer_end = parsed.validity().not_after.to_datetime();
    let not_after = (now + time::Duration::days(365 * HOLDER_VALIDITY_YEARS + 2)).min(issuer_end);
    if not_after <= now {
        return Err(PkiError::IssuerExpired {
            subject: issuer.subject().to_owned(),
            not_after: parsed.validity().not_after.to_string(),
        });
    }

    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "IR");
    dn.push(DnType::CustomDnType(vec![2, 5, 4, 5]), holder.national_code);
    dn.push(DnType::CommonName, holder.crn);
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.not_before = now;
    params.not_after = not_after;
    params.serial_number = Some(random_serial()?);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;

    let rc_issuer =
        rcgen::Issuer::from_ca_cert_der(&issuer.der().to_vec().into(), RcgenSigner(issuer_key))?;
    let cert = params.signed_by(holder.public_key, &rc_issuer)?;
    Certificate::from_der(cert.der().to_vec())
}

/// A random positive 16-byte certificate serial number (RFC 5280 §4.1.2.2).
pub(crate) fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut serial = vec![0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut serial)
        .map_err(|_| PkiError::Random)?;
    if let Some(first) = serial.first_mut() {
        *first = (*first & 0x7f) | 0x01;
    }
    Ok(SerialNumber::from(serial))
}

fn check_digits(field: &'static str, value: &str) -> Result<(), PkiError> {
    if value.len() == 10 && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(PkiError::BadHolder {
            field,
            value: value.chars().take(32).collect(),
            reason: "must be exactly 10 ASCII digits",
        })
    }
}
