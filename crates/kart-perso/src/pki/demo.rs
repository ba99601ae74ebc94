//! A demo issuer hierarchy on disk, and the loader the engine uses for it.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use super::holder::random_serial;
use super::{Certificate, IssuerKey, IssuerSigner, MasterKeys, PkiError};

const ROOT: &str = "root.pem";
const ROOT_KEY: &str = "root.key.pem";
const CARD_CA: &str = "card-ca.pem";
const CARD_CA_KEY: &str = "card-ca.key.pem";
const SIGNER: &str = "document-signer.pem";
const SIGNER_KEY: &str = "document-signer.key.pem";
const MASTER_KEYS: &str = "master-keys.json";

/// Paths of the files written by [`create_demo_issuer`].
#[derive(Debug, Clone)]
pub struct DemoFiles {
    /// Issuer root certificate (`root.pem`), P-384, CA with pathLen 1, 20 years.
    pub root: PathBuf,
    /// Its PKCS#8 key (`root.key.pem`, mode 0600).
    pub root_key: PathBuf,
    /// Card CA certificate (`card-ca.pem`), P-256, CA with pathLen 0, 10 years;
    /// issues holder certificates.
    pub card_ca: PathBuf,
    /// Its PKCS#8 key (`card-ca.key.pem`, mode 0600).
    pub card_ca_key: PathBuf,
    /// Document signer certificate (`document-signer.pem`), P-256,
    /// digitalSignature, 3 years; signs security objects.
    pub document_signer: PathBuf,
    /// Its PKCS#8 key (`document-signer.key.pem`, mode 0600).
    pub document_signer_key: PathBuf,
    /// Secure-channel master keys (`master-keys.json`, mode 0600); see [`MasterKeys`].
    pub master_keys: PathBuf,
}

/// Create a demo issuer hierarchy in `dir` (created if missing): root →
/// card CA and root → document signer, PEM certificates and PKCS#8 keys,
/// plus random secure-channel master keys. Existing files are never
/// overwritten (the call fails with an `Io` error instead).
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let files = kart_perso::pki::create_demo_issuer(dir.path(), time::OffsetDateTime::now_utc())?;
/// assert!(files.root.exists() && files.master_keys.exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn create_demo_issuer(dir: &Path, now: OffsetDateTime) -> Result<DemoFiles, PkiError> {
    std::fs::create_dir_all(dir).map_err(|e| PkiError::io(dir, e))?;
    let files = DemoFiles {
        root: dir.join(ROOT),
        root_key: dir.join(ROOT_KEY),
        card_ca: dir.join(CARD_CA),
        card_ca_key: dir.join(CARD_CA_KEY),
        document_signer: dir.join(SIGNER),
        document_signer_key: dir.join(SIGNER_KEY),
        master_keys: dir.join(MASTER_KEYS),
    };
    let start = now - Duration::days(1);

    let root_key = new_key(&rcgen::PKCS_ECDSA_P384_SHA384, &files.root_key)?;
    let mut root = params(
        "kart Demo Issuer Root CA",
        start,
        now + Duration::days(365 * 20),
    )?;
    root.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    write_file(
        &files.root,
        root.self_signed(&root_key)?.pem().as_bytes(),
        0o644,
    )?;
    let root_issuer = rcgen::Issuer::from_params(&root, &root_key);

    let ca_key = new_key(&rcgen::PKCS_ECDSA_P256_SHA256, &files.card_ca_key)?;
    let mut ca = params("kart Demo Card CA", start, now + Duration::days(365 * 10))?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.use_authority_key_identifier_extension = true;
    let ca_pem = ca.signed_by(&ca_key, &root_issuer)?.pem();
    write_file(&files.card_ca, ca_pem.as_bytes(), 0o644)?;

    let ds_key = new_key(&rcgen::PKCS_ECDSA_P256_SHA256, &files.document_signer_key)?;
    let mut ds = params(
        "kart Demo Document Signer",
        start,
        now + Duration::days(365 * 3),
    )?;
    ds.is_ca = IsCa::ExplicitNoCa;
    ds.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    ds.use_authority_key_identifier_extension = true;
    let ds_pem = ds.signed_by(&ds_key, &root_issuer)?.pem();
    write_file(&files.document_signer, ds_pem.as_bytes(), 0o644)?;

    let keys = MasterKeys::generate()?;
    write_file(&files.master_keys, keys.to_json()?.as_bytes(), 0o600)?;
    Ok(files)
}

pub(crate) fn params(
    cn: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<CertificateParams, PkiError> {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "IR");
    dn.push(DnType::OrganizationName, "kart demo issuer");
    dn.push(DnType::CommonName, cn);
    let mut p = CertificateParams::default();
    p.distinguished_name = dn;
    p.not_before = not_before;
    p.not_after = not_after;
    p.serial_number = Some(random_serial()?);
    Ok(p)
}

/// Generate a key, write it as PKCS#8 PEM with mode 0600, return it as an [`IssuerKey`].
fn new_key(alg: &'static rcgen::SignatureAlgorithm, path: &Path) -> Result<IssuerKey, PkiError> {
    let pair = KeyPair::generate_for(alg)?;
    let pem = Zeroizing::new(pair.serialize_pem());
    write_file(path, pem.as_bytes(), 0o600)?;
    IssuerKey::from_pkcs8(pair.serialized_der())
}

pub(crate) fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| PkiError::io(path, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| PkiError::io(path, e))
}

/// An issuer's certificates and keys, as the personalization engine uses them.
#[derive(Debug)]
pub struct IssuerPki {
    /// The trust anchor.
    pub root: Certificate,
    /// Issues holder certificates.
    pub card_ca: Certificate,
    /// Key of `card_ca` (a file or a token object).
    pub card_ca_key: Box<dyn IssuerSigner>,
    /// Signs security objects.
    pub document_signer: Certificate,
    /// Key of `document_signer` (a file or a token object).
    pub document_signer_key: Box<dyn IssuerSigner>,
}

impl IssuerPki {
    /// Load the files laid out by [`create_demo_issuer`] from `dir` (the root
    /// key is not loaded: it stays offline after issuing the sub-CAs).
    pub fn load(dir: &Path) -> Result<Self, PkiError> {
        Ok(Self {
            root: Certificate::load(&dir.join(ROOT))?,
            card_ca: Certificate::load(&dir.join(CARD_CA))?,
            card_ca_key: Box::new(super::encrypted::load_key(&dir.join(CARD_CA_KEY))?),
            document_signer: Certificate::load(&dir.join(SIGNER))?,
            document_signer_key: Box::new(super::encrypted::load_key(&dir.join(SIGNER_KEY))?),
        })
    }
}
