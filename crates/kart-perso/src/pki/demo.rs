//! A demo issuer hierarchy on disk, and the loader the engine uses for it.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use super::chain::{check_ca, check_validity};
use super::holder::random_serial;
use super::{
    validate_chain, verify_signature, Certificate, IssuerKey, IssuerSigner, KeyUsage, MasterKeys,
    PkiError, SignatureError,
};

const ROOT: &str = "root.pem";
/// The folder of an issuer directory that holds what stations never read:
/// the root key (move it off the station machine).
pub const OFFLINE_DIR: &str = "offline";
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
    /// Its PKCS#8 key (`offline/root.key.pem`, mode 0600, in a 0700
    /// folder): only needed to issue new sub-CAs; stations never read it,
    /// so move it off the station machine.
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
/// card CA and root → document signer, PEM certificates and PKCS#8 keys
/// (the root key in the `offline/` folder), plus random secure-channel
/// master keys. Existing files are never
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
        root_key: dir.join(OFFLINE_DIR).join(ROOT_KEY),
        card_ca: dir.join(CARD_CA),
        card_ca_key: dir.join(CARD_CA_KEY),
        document_signer: dir.join(SIGNER),
        document_signer_key: dir.join(SIGNER_KEY),
        master_keys: dir.join(MASTER_KEYS),
    };
    let start = now - Duration::days(1);
    let offline = dir.join(OFFLINE_DIR);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&offline)
        .map_err(|e| PkiError::io(&offline, e))?;

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
    /// Loads the files laid out by [`create_demo_issuer`] from `dir` and
    /// checks them as a whole at the current time (see [`load_at`](Self::load_at)).
    /// The root key is never read: it stays offline after issuing the sub-CAs.
    pub fn load(dir: &Path) -> Result<Self, PkiError> {
        Self::load_at(dir, OffsetDateTime::now_utc())
    }

    /// Loads `dir` and refuses it unless the whole issuer works at `now`:
    /// each certificate is valid at `now`; the card CA and the document
    /// signer chain to the root (names, signatures, basic constraints, path
    /// length); the card CA is a CA with keyCertSign, the document signer
    /// has digitalSignature; each private key belongs to its certificate (a
    /// probe signed with the key verifies with the certificate's public
    /// key); key files are regular files readable by their owner only.
    /// The error names the file and what is wrong with it, so a wrong
    /// issuer is refused before any card is touched.
    pub fn load_at(dir: &Path, now: OffsetDateTime) -> Result<Self, PkiError> {
        let cert = |name: &str| {
            let path = dir.join(name);
            Certificate::load(&path).map_err(|e| PkiError::in_file(&path, e))
        };
        // Plain or encrypted PKCS#8 (the passphrase asked for when needed).
        let key = |name: &str| -> Result<Box<dyn IssuerSigner>, PkiError> {
            let path = dir.join(name);
            super::encrypted::load_key(&path)
                .map(|k| Box::new(k) as Box<dyn IssuerSigner>)
                .map_err(|e| PkiError::in_file(&path, e))
        };
        let pki = Self {
            root: cert(ROOT)?,
            card_ca: cert(CARD_CA)?,
            card_ca_key: key(CARD_CA_KEY)?,
            document_signer: cert(SIGNER)?,
            document_signer_key: key(SIGNER_KEY)?,
        };
        pki.check(dir, now)?;
        Ok(pki)
    }

    fn check(&self, dir: &Path, now: OffsetDateTime) -> Result<(), PkiError> {
        self.check_certificates(dir, now)?;
        let card_ca = dir.join(CARD_CA);
        let signer = dir.join(SIGNER);
        check_key_matches(
            &self.card_ca_key,
            &self.card_ca,
            &dir.join(CARD_CA_KEY),
            &card_ca,
        )?;
        check_key_matches(
            &self.document_signer_key,
            &self.document_signer,
            &dir.join(SIGNER_KEY),
            &signer,
        )
    }

    /// The certificates of `dir` as a whole at `now`: validity, the chains
    /// to the root, the card CA a CA with keyCertSign, the document signer
    /// with digitalSignature. (A token issuer's keys are matched to their
    /// certificates when the token objects are opened.)
    pub(crate) fn check_certificates(
        &self,
        dir: &Path,
        now: OffsetDateTime,
    ) -> Result<(), PkiError> {
        let root = dir.join(ROOT);
        let card_ca = dir.join(CARD_CA);
        let signer = dir.join(SIGNER);
        for (path, cert) in [
            (&root, &self.root),
            (&card_ca, &self.card_ca),
            (&signer, &self.document_signer),
        ] {
            check_validity(&cert.parsed(), now).map_err(|e| PkiError::in_file(path, e))?;
        }
        validate_chain(&self.root, &[], &self.root, now, KeyUsage::Any)
            .map_err(|e| PkiError::in_file(&root, e))?;
        validate_chain(&self.card_ca, &[], &self.root, now, KeyUsage::KeyCertSign)
            .and_then(|()| check_ca(&self.card_ca.parsed(), 0))
            .map_err(|e| PkiError::in_file(&card_ca, e))?;
        validate_chain(
            &self.document_signer,
            &[],
            &self.root,
            now,
            KeyUsage::DigitalSignature,
        )
        .map_err(|e| PkiError::in_file(&signer, e))
    }
}

/// `key` belongs to `cert`: the public keys are equal, and a probe signed
/// with the key verifies with the certificate's key.
fn check_key_matches(
    key: &dyn IssuerSigner,
    cert: &Certificate,
    key_path: &Path,
    cert_path: &Path,
) -> Result<(), PkiError> {
    const PROBE: &[u8] = b"kart issuer key probe";
    let mismatch = || PkiError::KeyMismatch {
        key: key_path.to_owned(),
        certificate: cert_path.to_owned(),
    };
    let parsed = cert.parsed();
    let spki = parsed.public_key();
    if spki.subject_public_key.as_ref() != key.public_key() {
        return Err(mismatch());
    }
    let signature = key.sign(PROBE)?;
    verify_signature(
        spki,
        key.algorithm().signature_oid(),
        None,
        PROBE,
        &signature,
    )
    .map_err(|e| match e {
        SignatureError::Unsupported(what) => {
            PkiError::in_file(cert_path, PkiError::UnsupportedAlgorithm(what))
        }
        SignatureError::Invalid => mismatch(),
    })
}
