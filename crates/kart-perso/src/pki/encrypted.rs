//! Encrypted PKCS#8 issuer key files (PBES2, RFC 8018), as `openssl genpkey
//! -aes256` and `openssl pkcs8 -topk8 -v2 aes-256-cbc` write them:
//! PBKDF2-HMAC-SHA256 or scrypt, AES-128/256-CBC.
//!
//! The passphrase comes from [`Passphrase::obtain`]: the file
//! `KART_KEY_PASSPHRASE_FILE` names, else `KART_KEY_PASSPHRASE`, else the
//! prompt a program installed with [`set_prompt`] (the CLI asks on the
//! terminal); never an argument. Passphrase and decrypted key are zeroized.
//!
//! ```
//! use kart_perso::pki::encrypted::{decrypt_pkcs8, Passphrase};
//! // An EncryptedPrivateKeyInfo made with the `pkcs8` crate, PBKDF2-SHA256 + AES-256-CBC.
//! let rng = ring::rand::SystemRandom::new();
//! let plain = ring::signature::EcdsaKeyPair::generate_pkcs8(
//!     &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
//! let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(2048, &[7; 16], &[9; 16]).unwrap();
//! let info = pkcs8::PrivateKeyInfo::try_from(plain.as_ref()).unwrap();
//! let encrypted = info.encrypt_with_params(params, "correct horse").unwrap();
//! let der = decrypt_pkcs8(encrypted.as_bytes(), &Passphrase::new("correct horse"))?;
//! assert_eq!(&der[..], plain.as_ref());
//! assert!(decrypt_pkcs8(encrypted.as_bytes(), &Passphrase::new("wrong")).is_err());
//! # Ok::<(), kart_perso::pki::PkiError>(())
//! ```

use std::path::Path;
use std::sync::OnceLock;

use zeroize::Zeroizing;

use super::key::{first_pem, looks_like_pem};
use super::{IssuerKey, PkiError};

/// Environment variable holding the passphrase of encrypted key files.
pub const PASSPHRASE_ENV: &str = "KART_KEY_PASSPHRASE";
/// Environment variable naming a file that holds the passphrase.
pub const PASSPHRASE_FILE_ENV: &str = "KART_KEY_PASSPHRASE_FILE";
/// Largest passphrase file read.
const MAX_PASSPHRASE: usize = 1024;

/// A prompt for the passphrase of a key file (given its path).
pub type PassphrasePrompt = fn(&Path) -> Option<Zeroizing<String>>;

static PROMPT: OnceLock<PassphrasePrompt> = OnceLock::new();

/// Installs the prompt [`Passphrase::obtain`] falls back to (once per process).
pub fn set_prompt(prompt: PassphrasePrompt) {
    let _ = PROMPT.set(prompt);
}

/// A key file's passphrase: zeroized, never printed.
pub struct Passphrase(Zeroizing<String>);

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

impl Passphrase {
    /// A passphrase from its text (one trailing newline removed).
    pub fn new(text: &str) -> Self {
        let t = text.strip_suffix('\n').unwrap_or(text);
        Self(Zeroizing::new(t.strip_suffix('\r').unwrap_or(t).to_owned()))
    }

    /// The passphrase for `key_file`: from the file `KART_KEY_PASSPHRASE_FILE`
    /// names, else `KART_KEY_PASSPHRASE`, else the installed prompt.
    pub fn obtain(key_file: &Path) -> Result<Self, PkiError> {
        let err = |reason: String| PkiError::EncryptedKey {
            path: key_file.to_owned(),
            reason,
        };
        if let Some(file) = std::env::var_os(PASSPHRASE_FILE_ENV) {
            let bytes = Zeroizing::new(std::fs::read(&file).map_err(|e| {
                err(format!(
                    "cannot read the passphrase file {}: {e}",
                    Path::new(&file).display()
                ))
            })?);
            if bytes.len() > MAX_PASSPHRASE {
                return Err(err(format!(
                    "the passphrase file holds more than {MAX_PASSPHRASE} bytes"
                )));
            }
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| err("the passphrase file is not UTF-8".into()))?;
            return Ok(Self::new(text));
        }
        if let Some(value) = std::env::var_os(PASSPHRASE_ENV) {
            let value = Zeroizing::new(
                value
                    .into_string()
                    .map_err(|_| err(format!("{PASSPHRASE_ENV} is not UTF-8")))?,
            );
            return Ok(Self::new(&value));
        }
        if let Some(text) = PROMPT.get().and_then(|p| p(key_file)) {
            return Ok(Self::new(&text));
        }
        Err(err(format!(
            "it is encrypted and no passphrase was given: set {PASSPHRASE_FILE_ENV} (a file) or {PASSPHRASE_ENV}, or run on a terminal"
        )))
    }
}

/// Whether `bytes` are an encrypted PKCS#8 key (PEM `ENCRYPTED PRIVATE KEY`).
pub fn is_encrypted(bytes: &[u8]) -> bool {
    looks_like_pem(bytes)
        && first_pem(bytes, "private key").is_ok_and(|p| p.label == "ENCRYPTED PRIVATE KEY")
}

/// Decrypts an `EncryptedPrivateKeyInfo` (PEM or DER) into PKCS#8 DER.
pub fn decrypt_pkcs8(
    bytes: &[u8],
    passphrase: &Passphrase,
) -> Result<Zeroizing<Vec<u8>>, PkiError> {
    let der = if looks_like_pem(bytes) {
        let pem = first_pem(bytes, "private key")?;
        if pem.label != "ENCRYPTED PRIVATE KEY" {
            return Err(PkiError::malformed(
                "private key",
                format!(
                    "PEM label is '{}', expected 'ENCRYPTED PRIVATE KEY'",
                    pem.label
                ),
            ));
        }
        pem.contents
    } else {
        bytes.to_vec()
    };
    let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice())
        .map_err(|e| PkiError::malformed("encrypted private key", e.to_string()))?;
    let doc = info.decrypt(passphrase.0.as_bytes()).map_err(|_| {
        PkiError::malformed(
            "encrypted private key",
            "cannot decrypt it: wrong passphrase, or an unsupported scheme (PBES2 with PBKDF2-SHA256 or scrypt and AES-CBC are supported)",
        )
    })?;
    Ok(Zeroizing::new(doc.as_bytes().to_vec()))
}

/// Loads an issuer key file that may be encrypted: plain PKCS#8 as
/// [`IssuerKey::load`], encrypted PKCS#8 with [`Passphrase::obtain`].
pub fn load_key(path: &Path) -> Result<IssuerKey, PkiError> {
    // The same guard as a plain key file: owner-only mode, a regular file,
    // a bounded read.
    super::key::check_private_mode(path)?;
    let mut bytes = Zeroizing::new(Vec::new());
    kart_spec::input::read_regular_into(path, super::MAX_KEY_FILE_BYTES, &mut bytes)?;
    if !is_encrypted(&bytes) {
        return IssuerKey::from_pem_or_der(&bytes);
    }
    let passphrase = Passphrase::obtain(path)?;
    let der = decrypt_pkcs8(&bytes, &passphrase).map_err(|e| PkiError::EncryptedKey {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    IssuerKey::from_pkcs8(&der)
}
