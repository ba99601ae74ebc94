//! Parsing a security object and passive authentication as a list of checks.

use std::fmt;

use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Encode, Tag, Tagged};
use time::OffsetDateTime;
use x509_cert::attr::Attributes;

use super::build::{CONTENT_TYPE, LDS_OID, MESSAGE_DIGEST, SHA256, SHA384, SIGNED_DATA};
use super::lds::LdsSecurityObject;
use super::{SecurityObjectError, MAX_FILES, MAX_SECURITY_OBJECT_LEN};
use crate::pki::{
    validate_chain, verify_signature, Certificate, KeyUsage, PkiError, SignatureError,
};

/// A parsed security object; nothing is trusted until [`verify`](Self::verify).
#[derive(Debug, Clone)]
pub struct SecurityObject {
    content: Vec<u8>,
    hashes: Vec<(u16, Vec<u8>)>,
    signer: Certificate,
    digest_alg: ObjectIdentifier,
    signature_alg: String,
    signed_attrs: Vec<u8>,
    content_type: Option<ObjectIdentifier>,
    message_digest: Vec<u8>,
    signature: Vec<u8>,
}

/// Result of checking one file against the security object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    /// SHA-256 of the file read from the card equals the signed hash.
    Match,
    /// The file's hash differs from the signed hash: the file was altered.
    HashMismatch,
    /// The security object lists the file but it was not read from the card.
    NotOnCard,
    /// The file was read from the card but the security object does not cover it.
    NotInSecurityObject,
}

/// One file's check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileCheck {
    /// File id (FID).
    pub fid: u16,
    /// Outcome.
    pub status: FileStatus,
}

impl fmt::Display for FileCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.status {
            FileStatus::Match => "hash matches",
            FileStatus::HashMismatch => "hash mismatch",
            FileStatus::NotOnCard => "listed in the security object but not read from the card",
            FileStatus::NotInSecurityObject => "not covered by the security object",
        };
        write!(f, "file {:04X} {what}", self.fid)
    }
}

/// Passive authentication, check by check.
#[derive(Debug)]
pub struct Verification {
    /// contentType and messageDigest attributes and the CMS signature, checked
    /// with the embedded document signer certificate.
    pub signature: Result<(), SecurityObjectError>,
    /// The document signer certificate chains to the issuer root.
    pub signer_trusted: Result<(), PkiError>,
    /// One entry per file in the security object, then one per extra file read.
    pub files: Vec<FileCheck>,
}

impl Verification {
    /// True when every check passed.
    pub fn passed(&self) -> bool {
        self.signature.is_ok()
            && self.signer_trusted.is_ok()
            && self.files.iter().all(|f| f.status == FileStatus::Match)
    }

    /// One line per failed check, e.g. `file 0102 hash mismatch`.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Err(e) = &self.signature {
            out.push(format!("security object signature: {e}"));
        }
        if let Err(e) = &self.signer_trusted {
            out.push(format!("document signer not trusted: {e}"));
        }
        out.extend(
            self.files
                .iter()
                .filter(|f| f.status != FileStatus::Match)
                .map(ToString::to_string),
        );
        out
    }
}

impl SecurityObject {
    /// Parse a DER `ContentInfo` holding `SignedData` over an `LDSSecurityObject`.
    ///
    /// Strict DER, at most [`MAX_SECURITY_OBJECT_LEN`] bytes and [`MAX_FILES`]
    /// hashes, exactly one signer whose certificate is embedded.
    ///
    /// ```
    /// use kart_perso::security_object::{SecurityObject, SecurityObjectError};
    /// let err = SecurityObject::parse(&[0x30, 0x03, 0x02, 0x01]).unwrap_err();
    /// assert!(matches!(err, SecurityObjectError::Malformed(_)));
    /// ```
    pub fn parse(der: &[u8]) -> Result<Self, SecurityObjectError> {
        if der.len() > MAX_SECURITY_OBJECT_LEN {
            return Err(SecurityObjectError::TooLarge {
                len: der.len(),
                max: MAX_SECURITY_OBJECT_LEN,
            });
        }
        let ci = ContentInfo::from_der(der)?;
        expect_oid("contentType", ci.content_type, SIGNED_DATA, "id-signedData")?;
        let sd = SignedData::from_der(&ci.content.to_der()?)?;

        let encap = &sd.encap_content_info;
        expect_oid(
            "eContentType",
            encap.econtent_type,
            LDS_OID,
            "id-icao-ldsSecurityObject",
        )?;
        let econtent = encap
            .econtent
            .as_ref()
            .ok_or_else(|| unexpected("eContent", "absent", "the LDSSecurityObject"))?;
        if econtent.tag() != Tag::OctetString {
            return Err(unexpected("eContent", econtent.tag(), "OCTET STRING"));
        }
        let content = econtent.value().to_vec();
        let hashes = parse_lds(&content)?;

        let [signer_info] = sd.signer_infos.0.as_slice() else {
            return Err(unexpected(
                "signerInfos",
                sd.signer_infos.0.len(),
                "exactly one",
            ));
        };
        let SignerIdentifier::IssuerAndSerialNumber(sid) = &signer_info.sid else {
            return Err(unexpected(
                "sid",
                "subjectKeyIdentifier",
                "issuerAndSerialNumber",
            ));
        };
        let signer_der = sd
            .certificates
            .iter()
            .flat_map(|set| set.0.iter())
            .find_map(|c| match c {
                CertificateChoices::Certificate(c)
                    if c.tbs_certificate.issuer == sid.issuer
                        && c.tbs_certificate.serial_number == sid.serial_number =>
                {
                    Some(c)
                }
                _ => None,
            })
            .ok_or(SecurityObjectError::SignerCertificateMissing)?
            .to_der()?;
        let signed_attrs = signer_info
            .signed_attrs
            .as_ref()
            .ok_or(SecurityObjectError::SignedAttribute("signedAttrs"))?;
        let content_type = single_value(signed_attrs, CONTENT_TYPE, "contentType")?
            .decode_as::<ObjectIdentifier>()
            .ok();
        let message_digest = single_value(signed_attrs, MESSAGE_DIGEST, "messageDigest")?
            .decode_as::<OctetString>()
            .map_err(|_| unexpected("messageDigest", "not an OCTET STRING", "OCTET STRING"))?
            .into_bytes();

        Ok(Self {
            content,
            hashes,
            signer: Certificate::from_der(signer_der)?,
            digest_alg: signer_info.digest_alg.oid,
            signature_alg: signer_info.signature_algorithm.oid.to_string(),
            signed_attrs: signed_attrs.to_der()?,
            content_type,
            message_digest,
            signature: signer_info.signature.as_bytes().to_vec(),
        })
    }

    /// The signed `LDSSecurityObject` DER (the eContent).
    pub fn content(&self) -> &[u8] {
        &self.content
    }

    /// The signed (file id, SHA-256) pairs, in security-object order.
    pub fn file_hashes(&self) -> &[(u16, Vec<u8>)] {
        &self.hashes
    }

    /// The embedded document signer certificate (not yet trusted).
    pub fn signer(&self) -> &Certificate {
        &self.signer
    }

    /// Passive authentication against `root` at time `at`, comparing every
    /// signed hash with `files` (file id, contents) as read from the card.
    /// Every check runs; none stops the others. See the [module example](super).
    pub fn verify(
        &self,
        root: &Certificate,
        files: &[(u16, &[u8])],
        at: OffsetDateTime,
    ) -> Verification {
        let mut checks: Vec<FileCheck> = self
            .hashes
            .iter()
            .map(|(fid, signed)| {
                let status = match files.iter().find(|(f, _)| f == fid) {
                    None => FileStatus::NotOnCard,
                    Some((_, data)) => {
                        if ring::digest::digest(&ring::digest::SHA256, data).as_ref()
                            == signed.as_slice()
                        {
                            FileStatus::Match
                        } else {
                            FileStatus::HashMismatch
                        }
                    }
                };
                FileCheck { fid: *fid, status }
            })
            .collect();
        checks.extend(
            files
                .iter()
                .filter(|(fid, _)| !self.hashes.iter().any(|(f, _)| f == fid))
                .map(|(fid, _)| FileCheck {
                    fid: *fid,
                    status: FileStatus::NotInSecurityObject,
                }),
        );
        Verification {
            signature: self.check_signature(),
            signer_trusted: validate_chain(&self.signer, &[], root, at, KeyUsage::DigitalSignature),
            files: checks,
        }
    }

    fn check_signature(&self) -> Result<(), SecurityObjectError> {
        if self.content_type != Some(LDS_OID) {
            return Err(SecurityObjectError::ContentTypeMismatch);
        }
        let digest = if self.digest_alg == SHA256 {
            &ring::digest::SHA256
        } else if self.digest_alg == SHA384 {
            &ring::digest::SHA384
        } else {
            return Err(SecurityObjectError::UnsupportedAlgorithm(format!(
                "digest {}",
                self.digest_alg
            )));
        };
        if ring::digest::digest(digest, &self.content).as_ref() != self.message_digest.as_slice() {
            return Err(SecurityObjectError::MessageDigestMismatch);
        }
        verify_signature(
            self.signer.parsed().public_key(),
            &self.signature_alg,
            Some(&self.digest_alg.to_string()),
            &self.signed_attrs,
            &self.signature,
        )
        .map_err(|e| match e {
            SignatureError::Unsupported(what) => SecurityObjectError::UnsupportedAlgorithm(what),
            SignatureError::Invalid => {
                SecurityObjectError::BadSignature(self.signer.subject().to_owned())
            }
        })
    }
}

fn parse_lds(content: &[u8]) -> Result<Vec<(u16, Vec<u8>)>, SecurityObjectError> {
    let lds = LdsSecurityObject::from_der(content)?;
    if lds.version != 0 {
        return Err(unexpected("LDSSecurityObject version", lds.version, "0"));
    }
    if lds.hash_algorithm.oid != SHA256 {
        return Err(SecurityObjectError::UnsupportedAlgorithm(format!(
            "file hash {}",
            lds.hash_algorithm.oid
        )));
    }
    let values = lds.data_group_hash_values;
    if values.is_empty() || values.len() > MAX_FILES {
        return Err(unexpected("number of file hashes", values.len(), "1 to 64"));
    }
    let mut hashes: Vec<(u16, Vec<u8>)> = Vec::with_capacity(values.len());
    for v in values {
        let fid = v.data_group_number;
        let hash = v.data_group_hash_value.into_bytes();
        if hash.len() != 32 {
            return Err(unexpected("file hash length", hash.len(), "32 (SHA-256)"));
        }
        if hashes.iter().any(|(f, _)| *f == fid) {
            return Err(unexpected(
                "file id",
                format!("{fid:04X} twice"),
                "unique file ids",
            ));
        }
        hashes.push((fid, hash));
    }
    Ok(hashes)
}

fn single_value<'a>(
    attrs: &'a Attributes,
    oid: ObjectIdentifier,
    name: &'static str,
) -> Result<&'a der::Any, SecurityObjectError> {
    let mut matching = attrs.iter().filter(|a| a.oid == oid);
    match (matching.next(), matching.next()) {
        (Some(attr), None) => match attr.values.as_slice() {
            [value] => Ok(value),
            _ => Err(SecurityObjectError::SignedAttribute(name)),
        },
        _ => Err(SecurityObjectError::SignedAttribute(name)),
    }
}

fn expect_oid(
    field: &'static str,
    found: ObjectIdentifier,
    want: ObjectIdentifier,
    expected: &'static str,
) -> Result<(), SecurityObjectError> {
    if found == want {
        Ok(())
    } else {
        Err(unexpected(field, found, expected))
    }
}

fn unexpected(
    field: &'static str,
    found: impl fmt::Display,
    expected: &'static str,
) -> SecurityObjectError {
    SecurityObjectError::Unexpected {
        field,
        found: found.to_string(),
        expected,
    }
}
