//! An issuer whose keys live in a PKCS#11 token: `issuer.toml` names the
//! module and the token objects; the directory holds only certificates.
//!
//! ```toml
//! format = "kart-issuer/1"
//!
//! [pkcs11]
//! module = "/usr/lib/softhsm/libsofthsm2.so"
//! # pin_file = "/etc/kart/hsm-pin"   # else KART_HSM_PIN, else a prompt
//!
//! [keys]
//! root = "pkcs11:token=kart-issuer;object=root"
//! card_ca = "pkcs11:token=kart-issuer;object=card-ca"
//! document_signer = "pkcs11:token=kart-issuer;object=document-signer"
//! # document_signer_scheme = "pss"   # an RSA document signer signing with RSASSA-PSS
//!
//! [[master_keys]]
//! algorithm = "3des"              # or "aes128", "aes192", "aes256"
//! enc = "pkcs11:token=kart-issuer;object=gp-3des-enc"
//! mac = "pkcs11:token=kart-issuer;object=gp-3des-mac"
//! dek = "pkcs11:token=kart-issuer;object=gp-3des-dek"
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kart_apdu::gp::Diversification;
use serde::{Deserialize, Serialize};

use super::pkcs11::{Pin, Pkcs11Error, Pkcs11Uri, Token, TokenMasterKeys, TokenSigner};
use super::{Certificate, IssuerPki, IssuerSigner as _, PkiError, SecureChannelAlgorithm};

/// Name of the configuration file of a token issuer.
pub const ISSUER_TOML: &str = "issuer.toml";
const FORMAT: &str = "kart-issuer/1";

/// `issuer.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// `kart-issuer/1`.
    pub format: String,
    /// The module.
    pub pkcs11: Pkcs11Section,
    /// The signing keys.
    pub keys: KeysSection,
    /// The secure-channel master key sets.
    #[serde(default)]
    pub master_keys: Vec<MasterKeysSection>,
}

/// `[pkcs11]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Section {
    /// Path of the PKCS#11 module (a URI's `module-path` overrides it).
    pub module: PathBuf,
    /// A file holding the user PIN (else `KART_HSM_PIN`, else a prompt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_file: Option<PathBuf>,
}

/// `[keys]`: PKCS#11 URIs of the private keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysSection {
    /// The root's key (not used by the station; shown by `kart issuer show`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// The card CA's key.
    pub card_ca: String,
    /// The document signer's key.
    pub document_signer: String,
    /// `pss` for an RSA document signer key that signs with RSASSA-PSS
    /// (default `pkcs1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_signer_scheme: Option<String>,
}

/// `[[master_keys]]`: one set, three secret key objects.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterKeysSection {
    /// `3des`, `aes128`, `aes192`, `aes256`.
    pub algorithm: SecureChannelAlgorithm,
    /// URI of the ENC key.
    pub enc: String,
    /// URI of the MAC key.
    pub mac: String,
    /// URI of the DEK key.
    pub dek: String,
}

impl IssuerConfig {
    /// A configuration for keys named by the ceremony's labels in `token`.
    pub fn for_token(module: &Path, token: &str, algorithms: &[SecureChannelAlgorithm]) -> Self {
        let uri = |object: &str| {
            Pkcs11Uri {
                token: Some(token.to_owned()),
                object: Some(object.to_owned()),
                ..Pkcs11Uri::default()
            }
            .to_string()
        };
        Self {
            format: FORMAT.into(),
            pkcs11: Pkcs11Section {
                module: module.to_owned(),
                pin_file: None,
            },
            keys: KeysSection {
                root: Some(uri("root")),
                card_ca: uri("card-ca"),
                document_signer: uri("document-signer"),
                document_signer_scheme: None,
            },
            master_keys: algorithms
                .iter()
                .map(|&a| {
                    let prefix = master_label(a);
                    MasterKeysSection {
                        algorithm: a,
                        enc: uri(&format!("{prefix}-enc")),
                        mac: uri(&format!("{prefix}-mac")),
                        dek: uri(&format!("{prefix}-dek")),
                    }
                })
                .collect(),
        }
    }

    /// Reads and checks `dir/issuer.toml`.
    pub fn load(dir: &Path) -> Result<Self, PkiError> {
        let path = dir.join(ISSUER_TOML);
        let text = std::fs::read_to_string(&path).map_err(|e| PkiError::io(&path, e))?;
        let config: Self = toml::from_str(&text)
            .map_err(|e| PkiError::malformed("issuer.toml", e.message().to_owned()))?;
        if config.format != FORMAT {
            return Err(PkiError::malformed(
                "issuer.toml",
                format!("format is '{}', expected '{FORMAT}'", config.format),
            ));
        }
        Ok(config)
    }

    /// The TOML text.
    pub fn to_toml(&self) -> Result<String, PkiError> {
        toml::to_string(self).map_err(|e| PkiError::malformed("issuer.toml", e.to_string()))
    }
}

/// The object label prefix of a master key set made by the ceremony.
pub fn master_label(a: SecureChannelAlgorithm) -> &'static str {
    match a {
        SecureChannelAlgorithm::TripleDes => "gp-3des",
        SecureChannelAlgorithm::Aes128 => "gp-aes128",
        SecureChannelAlgorithm::Aes192 => "gp-aes192",
        SecureChannelAlgorithm::Aes256 => "gp-aes256",
    }
}

pub use super::pkcs11::PinPrompt;

/// The tokens of one configuration, opened (and logged in) once each.
pub struct Tokens<'a> {
    config: &'a IssuerConfig,
    dir: &'a Path,
    prompt: Option<PinPrompt<'a>>,
    open: HashMap<(PathBuf, String), Arc<Token>>,
}

impl std::fmt::Debug for Tokens<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("open", &self.open.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl<'a> Tokens<'a> {
    /// Tokens of `config` (relative PIN file paths are relative to `dir`).
    pub fn new(config: &'a IssuerConfig, dir: &'a Path, prompt: Option<PinPrompt<'a>>) -> Self {
        Self {
            config,
            dir,
            prompt,
            open: HashMap::new(),
        }
    }

    /// The token and object label a URI names, opening the token on first use.
    pub fn resolve(&mut self, uri: &str) -> Result<(Arc<Token>, String), Pkcs11Error> {
        let parsed: Pkcs11Uri = uri.parse()?;
        let bad = |reason: &str| Pkcs11Error::Uri {
            uri: uri.to_owned(),
            reason: reason.into(),
        };
        let label = parsed
            .token
            .clone()
            .ok_or_else(|| bad("no token= attribute"))?;
        let object = parsed
            .object
            .clone()
            .ok_or_else(|| bad("no object= attribute"))?;
        let module = parsed
            .module_path
            .clone()
            .unwrap_or_else(|| self.config.pkcs11.module.clone());
        let key = (module.clone(), label.clone());
        if let Some(t) = self.open.get(&key) {
            return Ok((Arc::clone(t), object));
        }
        let pin_file = parsed
            .pin_source
            .clone()
            .or_else(|| self.config.pkcs11.pin_file.clone())
            .map(|p| if p.is_relative() { self.dir.join(p) } else { p });
        let pin = Pin::obtain(&label, pin_file.as_deref(), self.prompt)?;
        let token = Token::open(&module, &label, pin)?;
        self.open.insert(key, Arc::clone(&token));
        Ok((token, object))
    }
}

/// The certificates (files in `dir`) and the token keys of a token issuer;
/// the master key sets, their diversification chosen per profile later.
pub fn load(
    dir: &Path,
    prompt: Option<PinPrompt<'_>>,
) -> Result<(IssuerPki, Vec<TokenMasterKeys>), PkiError> {
    let config = IssuerConfig::load(dir)?;
    let mut tokens = Tokens::new(&config, dir, prompt);
    let signer = |tokens: &mut Tokens<'_>, uri: &str| -> Result<TokenSigner, PkiError> {
        let (token, object) = tokens.resolve(uri)?;
        Ok(TokenSigner::open(&token, &object)?)
    };
    let card_ca_key = signer(&mut tokens, &config.keys.card_ca)?;
    let document_signer_key = match config.keys.document_signer_scheme.as_deref() {
        None | Some("pkcs1") => signer(&mut tokens, &config.keys.document_signer)?,
        Some("pss") => {
            let (token, object) = tokens.resolve(&config.keys.document_signer)?;
            TokenSigner::open_pss(&token, &object)?
        }
        Some(other) => {
            return Err(PkiError::malformed(
                "issuer.toml",
                format!("document_signer_scheme is '{other}', expected 'pkcs1' or 'pss'"),
            ))
        }
    };
    let mut sets = Vec::new();
    for set in &config.master_keys {
        let (token, enc) = tokens.resolve(&set.enc)?;
        let (mac_token, mac) = tokens.resolve(&set.mac)?;
        let (dek_token, dek) = tokens.resolve(&set.dek)?;
        if !Arc::ptr_eq(&token, &mac_token) || !Arc::ptr_eq(&token, &dek_token) {
            return Err(PkiError::malformed(
                "issuer.toml",
                "the ENC, MAC and DEK keys of a set must be in one token",
            ));
        }
        sets.push(TokenMasterKeys::open(
            &token,
            set.algorithm,
            [&enc, &mac, &dek],
            Diversification::None,
            0,
        )?);
    }
    let card_ca = Certificate::load(&dir.join("card-ca.pem"))?;
    let document_signer = Certificate::load(&dir.join("document-signer.pem"))?;
    for (cert, file, key) in [
        (&card_ca, "card-ca.pem", &card_ca_key),
        (
            &document_signer,
            "document-signer.pem",
            &document_signer_key,
        ),
    ] {
        if cert.parsed().public_key().subject_public_key.data.as_ref() != key.public_key() {
            return Err(PkiError::malformed(
                "issuer.toml",
                format!(
                    "token object '{}' is not the key of {file}: its public key differs from the certificate's",
                    key.object()
                ),
            ));
        }
    }
    let pki = IssuerPki {
        root: Certificate::load(&dir.join("root.pem"))?,
        card_ca,
        card_ca_key: Box::new(card_ca_key),
        document_signer,
        document_signer_key: Box::new(document_signer_key),
    };
    Ok((pki, sets))
}

/// Where the ceremony's master keys come from.
#[derive(Debug, Clone, Copy)]
pub enum MasterKeySource<'a> {
    /// Generated inside the token (nobody ever sees them).
    Generate,
    /// Known keys imported into the token (cards a vendor already keyed with
    /// them); the sets of `keys` whose algorithm the ceremony makes.
    Import(&'a super::MasterKeys),
}

/// The key ceremony: generates in `token` the root (P-384), card CA and
/// document signer (P-256) key pairs and the master key sets (3DES, AES-128,
/// AES-256), all sensitive and never extractable; writes to `dir` only the
/// certificates and `issuer.toml`. Refuses a token that already holds
/// objects of those labels, and existing files.
pub fn create(
    dir: &Path,
    token: &Arc<Token>,
    master: MasterKeySource<'_>,
    now: time::OffsetDateTime,
) -> Result<Vec<PathBuf>, PkiError> {
    use super::pkcs11::{generate_key_pair, generate_master_key, import_master_key, KeyPairKind};
    use super::signer::RcgenSigner;
    use cryptoki::object::ObjectClass;
    use rcgen::{BasicConstraints, IsCa, KeyUsagePurpose};
    use time::Duration;

    let algorithms = [
        SecureChannelAlgorithm::TripleDes,
        SecureChannelAlgorithm::Aes128,
        SecureChannelAlgorithm::Aes192,
        SecureChannelAlgorithm::Aes256,
    ];
    let mut labels = vec!["root", "card-ca", "document-signer"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    for a in algorithms {
        for k in ["enc", "mac", "dek"] {
            labels.push(format!("{}-{k}", master_label(a)));
        }
    }
    for label in &labels {
        for class in [ObjectClass::PRIVATE_KEY, ObjectClass::SECRET_KEY] {
            if token.find(label, class).is_ok() {
                return Err(PkiError::malformed(
                    "token",
                    format!(
                        "token '{}' already holds a key '{label}': use a fresh token (keys are never overwritten)",
                        token.label()
                    ),
                ));
            }
        }
    }
    let config = IssuerConfig::for_token(token.module(), token.label(), &algorithms);
    let toml_path = dir.join(ISSUER_TOML);
    let files = [
        dir.join("root.pem"),
        dir.join("card-ca.pem"),
        dir.join("document-signer.pem"),
        toml_path.clone(),
    ];
    std::fs::create_dir_all(dir).map_err(|e| PkiError::io(dir, e))?;
    if let Some(f) = files.iter().find(|f| f.exists()) {
        return Err(PkiError::io(
            f,
            std::io::Error::new(std::io::ErrorKind::AlreadyExists, "file exists"),
        ));
    }

    generate_key_pair(token, "root", b"\x01", KeyPairKind::P384)?;
    generate_key_pair(token, "card-ca", b"\x02", KeyPairKind::P256)?;
    generate_key_pair(token, "document-signer", b"\x03", KeyPairKind::P256)?;
    for a in algorithms {
        let prefix = master_label(a);
        let imported = match master {
            MasterKeySource::Generate => None,
            MasterKeySource::Import(keys) => keys.sets().iter().find(|s| s.algorithm == a),
        };
        for (k, value) in [
            ("enc", imported.map(super::MasterKeySet::enc)),
            ("mac", imported.map(super::MasterKeySet::mac)),
            ("dek", imported.map(super::MasterKeySet::dek)),
        ] {
            let label = format!("{prefix}-{k}");
            match value {
                Some(v) => import_master_key(token, &label, a, v)?,
                None => generate_master_key(token, &label, a)?,
            }
        }
    }

    let root_key = TokenSigner::open(token, "root")?;
    let ca_key = TokenSigner::open(token, "card-ca")?;
    let ds_key = TokenSigner::open(token, "document-signer")?;
    let start = now - Duration::days(1);
    let mut root =
        super::demo::params("kart Issuer Root CA", start, now + Duration::days(365 * 20))?;
    root.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let root_signer = RcgenSigner(&root_key);
    let root_pem = root.self_signed(&root_signer)?.pem();
    let root_issuer = rcgen::Issuer::from_params(&root, RcgenSigner(&root_key));

    let mut ca = super::demo::params("kart Card CA", start, now + Duration::days(365 * 10))?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.use_authority_key_identifier_extension = true;
    let ca_pem = ca.signed_by(&RcgenSigner(&ca_key), &root_issuer)?.pem();

    let mut ds = super::demo::params("kart Document Signer", start, now + Duration::days(365 * 3))?;
    ds.is_ca = IsCa::ExplicitNoCa;
    ds.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    ds.use_authority_key_identifier_extension = true;
    let ds_pem = ds.signed_by(&RcgenSigner(&ds_key), &root_issuer)?.pem();

    super::demo::write_file(&files[0], root_pem.as_bytes(), 0o644)?;
    super::demo::write_file(&files[1], ca_pem.as_bytes(), 0o644)?;
    super::demo::write_file(&files[2], ds_pem.as_bytes(), 0o644)?;
    super::demo::write_file(&toml_path, config.to_toml()?.as_bytes(), 0o644)?;
    Ok(files.to_vec())
}

/// One key of an issuer as `kart issuer show` prints it: never a secret.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    /// `root`, `card CA`, `document signer`, `master keys 3des`, ….
    pub role: String,
    /// Where the key lives: a file path or a PKCS#11 URI with its module.
    pub location: String,
    /// `EC P-256`, `EC P-384`, `RSA 2048`, `3DES`, `AES-128`, ….
    pub algorithm: String,
    /// The certificate's subject (signing keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Its notBefore (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// Its notAfter (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
}

/// Where each key of the issuer in `dir` lives, its algorithm and its
/// certificate's validity, from the files alone (no PIN, no key is opened).
pub fn describe(dir: &Path) -> Result<Vec<KeyInfo>, PkiError> {
    let config = if dir.join(ISSUER_TOML).exists() {
        Some(IssuerConfig::load(dir)?)
    } else {
        None
    };
    let module = config
        .as_ref()
        .map(|c| c.pkcs11.module.display().to_string())
        .unwrap_or_default();
    let in_token = |uri: &str| format!("{uri} (module {module})");
    let mut out = Vec::new();
    for (role, cert_file, key_file, uri) in [
        (
            "root",
            "root.pem",
            "root.key.pem",
            config.as_ref().and_then(|c| c.keys.root.clone()),
        ),
        (
            "card CA",
            "card-ca.pem",
            "card-ca.key.pem",
            config.as_ref().map(|c| c.keys.card_ca.clone()),
        ),
        (
            "document signer",
            "document-signer.pem",
            "document-signer.key.pem",
            config.as_ref().map(|c| c.keys.document_signer.clone()),
        ),
    ] {
        let cert = Certificate::load(&dir.join(cert_file))?;
        let parsed = cert.parsed();
        let location = match (&config, uri) {
            (Some(_), Some(uri)) => in_token(&uri),
            (Some(_), None) => "not named in issuer.toml (kept offline)".into(),
            (None, _) => {
                let f = dir.join(key_file);
                let offline = dir.join("offline").join(key_file);
                if f.exists() {
                    format!("file {}", f.display())
                } else if offline.exists() {
                    format!("file {}", offline.display())
                } else {
                    "not in the issuer directory (kept offline)".into()
                }
            }
        };
        let validity = parsed.validity();
        out.push(KeyInfo {
            role: role.into(),
            location,
            algorithm: spki_algorithm(&parsed),
            subject: Some(cert.subject().to_owned()),
            not_before: Some(rfc3339(validity.not_before.to_datetime())),
            not_after: Some(rfc3339(validity.not_after.to_datetime())),
        });
    }
    if let Some(c) = &config {
        for set in &c.master_keys {
            out.push(KeyInfo {
                role: format!("master keys {}", alg_name(set.algorithm)),
                location: format!(
                    "ENC {}, MAC {}, DEK {} (module {module})",
                    set.enc, set.mac, set.dek
                ),
                algorithm: alg_name(set.algorithm).into(),
                subject: None,
                not_before: None,
                not_after: None,
            });
        }
    } else {
        let path = dir.join("master-keys.json");
        for set in super::MasterKeys::load(&path)?.sets() {
            out.push(KeyInfo {
                role: format!("master keys {}", alg_name(set.algorithm)),
                location: format!("file {}", path.display()),
                algorithm: alg_name(set.algorithm).into(),
                subject: None,
                not_before: None,
                not_after: None,
            });
        }
    }
    Ok(out)
}

fn alg_name(a: SecureChannelAlgorithm) -> &'static str {
    match a {
        SecureChannelAlgorithm::TripleDes => "3DES",
        SecureChannelAlgorithm::Aes128 => "AES-128",
        SecureChannelAlgorithm::Aes192 => "AES-192",
        SecureChannelAlgorithm::Aes256 => "AES-256",
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn spki_algorithm(cert: &x509_parser::certificate::X509Certificate<'_>) -> String {
    let spki = cert.public_key();
    match spki.algorithm.algorithm.to_id_string().as_str() {
        "1.2.840.10045.2.1" => match super::signature::ec_curve_oid(spki).as_str() {
            "1.2.840.10045.3.1.7" => "EC P-256".into(),
            "1.3.132.0.34" => "EC P-384".into(),
            other => format!("EC {other}"),
        },
        "1.2.840.113549.1.1.1" => match spki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(k)) => format!("RSA {}", k.key_size()),
            _ => "RSA".into(),
        },
        other => other.to_owned(),
    }
}
