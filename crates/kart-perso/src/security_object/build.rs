//! Building a signed security object.

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{ObjectIdentifier, OctetString, SetOfVec, UtcTime};
use der::{Any, Decode, Encode, Tag};
use time::OffsetDateTime;
use x509_cert::attr::Attribute;
use x509_cert::spki::AlgorithmIdentifierOwned;

use super::lds::{DataGroupHash, LdsSecurityObject};
use super::{SecurityObjectError, LDS_SECURITY_OBJECT_OID, MAX_FILES};
use crate::pki::{Certificate, IssuerSigner, KeyAlgorithm};

pub(super) const SIGNED_DATA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
pub(super) const LDS_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap(LDS_SECURITY_OBJECT_OID);
pub(super) const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
pub(super) const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
pub(super) const CONTENT_TYPE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
pub(super) const MESSAGE_DIGEST: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
/// RSASSA-PSS-params (RFC 4055 §3.1): SHA-256, MGF1 with SHA-256, salt 32.
const PSS_SHA256: &[u8] = &[
    0x30, 0x34, 0xA0, 0x0F, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
    0x01, 0x05, 0x00, 0xA1, 0x1C, 0x30, 0x1A, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01,
    0x01, 0x08, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0xA2, 0x03, 0x02, 0x01, 0x20,
];
const SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");

/// Build and sign a security object over `files` (file id, contents).
///
/// Each file's SHA-256 goes into the `LDSSecurityObject`; the CMS digest
/// follows the signer key (SHA-384 for P-384, SHA-256 otherwise). File ids
/// must be unique; at most [`MAX_FILES`](super::MAX_FILES) files. Returns
/// the DER `ContentInfo`. See the [module example](super).
pub fn build_security_object(
    files: &[(u16, &[u8])],
    signer: &Certificate,
    signer_key: &dyn IssuerSigner,
    signing_time: OffsetDateTime,
) -> Result<Vec<u8>, SecurityObjectError> {
    if files.is_empty() || files.len() > MAX_FILES {
        return Err(SecurityObjectError::Files(format!(
            "{} files given, between 1 and {MAX_FILES} allowed",
            files.len()
        )));
    }
    let mut hashes = Vec::with_capacity(files.len());
    for (i, (fid, contents)) in files.iter().enumerate() {
        if files.iter().take(i).any(|(f, _)| f == fid) {
            return Err(SecurityObjectError::Files(format!(
                "file {fid:04X} given twice"
            )));
        }
        hashes.push(DataGroupHash {
            data_group_number: *fid,
            data_group_hash_value: OctetString::new(
                ring::digest::digest(&ring::digest::SHA256, contents).as_ref(),
            )?,
        });
    }
    let lds = LdsSecurityObject {
        version: 0,
        hash_algorithm: digest_alg(SHA256),
        data_group_hash_values: hashes,
    }
    .to_der()?;

    let (digest_oid, digest) = match signer_key.algorithm() {
        KeyAlgorithm::EcdsaP384Sha384 => (SHA384, &ring::digest::SHA384),
        KeyAlgorithm::EcdsaP256Sha256
        | KeyAlgorithm::RsaPkcs1Sha256
        | KeyAlgorithm::RsaPssSha256 => (SHA256, &ring::digest::SHA256),
    };
    let (sig_oid, sig_params) = match signer_key.algorithm() {
        KeyAlgorithm::EcdsaP256Sha256 => ("1.2.840.10045.4.3.2", None),
        KeyAlgorithm::EcdsaP384Sha384 => ("1.2.840.10045.4.3.3", None),
        KeyAlgorithm::RsaPkcs1Sha256 => ("1.2.840.113549.1.1.11", Some(Any::null())),
        KeyAlgorithm::RsaPssSha256 => ("1.2.840.113549.1.1.10", Some(Any::from_der(PSS_SHA256)?)),
    };

    let signed_attrs = SetOfVec::try_from(vec![
        attribute(CONTENT_TYPE, Any::encode_from(&LDS_OID)?)?,
        attribute(
            MESSAGE_DIGEST,
            Any::new(
                Tag::OctetString,
                ring::digest::digest(digest, &lds).as_ref(),
            )?,
        )?,
        attribute(SIGNING_TIME, Any::encode_from(&utc_time(signing_time)?)?)?,
    ])?;
    // CMS signs the DER of the attributes with their universal SET tag (RFC 5652 §5.4).
    let signature = signer_key.sign(&signed_attrs.to_der()?)?;

    let cert = x509_cert::Certificate::from_der(signer.der())?;
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: cert.tbs_certificate.issuer.clone(),
            serial_number: cert.tbs_certificate.serial_number.clone(),
        }),
        digest_alg: digest_alg(digest_oid),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap(sig_oid),
            parameters: sig_params,
        },
        signature: OctetString::new(signature)?,
        unsigned_attrs: None,
    };
    let signed_data = SignedData {
        // v3: eContentType is not id-data (RFC 5652 §5.1).
        version: CmsVersion::V3,
        digest_algorithms: SetOfVec::try_from(vec![digest_alg(digest_oid)])?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: LDS_OID,
            econtent: Some(Any::new(Tag::OctetString, lds)?),
        },
        certificates: Some(CertificateSet(SetOfVec::try_from(vec![
            CertificateChoices::Certificate(cert),
        ])?)),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(vec![signer_info])?),
    };
    Ok(ContentInfo {
        content_type: SIGNED_DATA,
        content: Any::encode_from(&signed_data)?,
    }
    .to_der()?)
}

fn digest_alg(oid: ObjectIdentifier) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid,
        parameters: None,
    }
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, der::Error> {
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value])?,
    })
}

fn utc_time(t: OffsetDateTime) -> Result<UtcTime, SecurityObjectError> {
    let secs = u64::try_from(t.unix_timestamp())
        .map_err(|_| SecurityObjectError::Files(format!("signing time {t} is before 1970")))?;
    Ok(UtcTime::from_unix_duration(
        std::time::Duration::from_secs(secs),
    )?)
}
