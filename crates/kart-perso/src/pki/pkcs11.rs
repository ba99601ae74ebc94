//! Issuer keys in a hardware security module, through PKCS#11 (`cryptoki`).
//!
//! - [`Pkcs11Uri`]: RFC 7512 URIs (`pkcs11:token=kart;object=card-ca`) name
//!   the token objects; `module-path` may name the module, `pin-source` a PIN
//!   file; `pin-value` is refused (a secret has no place in a configuration).
//! - [`Token`]: one module and token, logged in once with the user PIN
//!   ([`Pin`]: `KART_HSM_PIN`, a PIN file or a prompt, never an argument); a
//!   pool of sessions, one per thread using it at a time.
//! - [`TokenSigner`]: an [`IssuerSigner`] whose private key never leaves the
//!   token: ECDSA P-256/P-384 (`CKM_ECDSA` over a digest made here), RSA
//!   PKCS#1 v1.5 (`CKM_SHA256_RSA_PKCS`) and PSS (`CKM_SHA256_RSA_PKCS_PSS`,
//!   [`TokenSigner::open_pss`]; security objects only: rcgen, which builds
//!   the certificates, has no PSS).
//! - [`TokenMasterKeys`]: a [`CardKeySource`] that diversifies GlobalPlatform
//!   master keys inside the token — EMV CPS v1.1 and VISA2 by `CKM_DES3_ECB`
//!   encryption, KDF3 by `CKM_AES_CMAC` — so that a master key never enters
//!   process memory; only the card's own keys come out, for one session.
//! - [`generate_key_pair`], [`generate_master_key`], [`import_master_key`]:
//!   the key ceremony; every private and secret key is created sensitive and
//!   never extractable.
//!
//! The PKCS#11 module is loaded and initialized once per process and stays
//! loaded (SoftHSM reads `SOFTHSM2_CONF` at that moment).

// Proper names (GlobalPlatform, SoftHSM, OpenSC) are not code.
#![allow(clippy::doc_markdown)]

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use der::{Decode as _, Encode as _};
use kart_apdu::gp::{
    CardKeySource, Diversification, GpError, KeySet, KeySourceError, KeySourceFault,
};
use zeroize::Zeroizing;

use super::{IssuerSigner, KeyAlgorithm, PkiError, SecureChannelAlgorithm};

/// The environment variable the user PIN may come from.
pub const PIN_ENV: &str = "KART_HSM_PIN";

/// DER of the P-256 curve OID (`CKA_EC_PARAMS`).
const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
/// DER of the P-384 curve OID.
const P384_PARAMS: &[u8] = &[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22];

/// What went wrong with a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Pkcs11Error {
    /// The module could not be loaded or initialized.
    #[error("PKCS#11 module {module}: {reason}")]
    Module {
        /// Its path.
        module: PathBuf,
        /// Why.
        reason: String,
    },
    /// No slot holds a token with this label.
    #[error("token '{token}' is not present in {module} (slots with tokens: {present})")]
    TokenAbsent {
        /// The label asked for.
        token: String,
        /// The module.
        module: PathBuf,
        /// Labels of the tokens that are there.
        present: String,
    },
    /// The token went away while in use (removed, or the device failed).
    #[error("token '{token}' was removed or stopped answering ({rv})")]
    TokenRemoved {
        /// Its label.
        token: String,
        /// The PKCS#11 return value.
        rv: String,
    },
    /// The user PIN is wrong. Not retried: a token locks after a few wrong PINs.
    #[error(
        "wrong user PIN for token '{token}' (not retried: the token locks after a few wrong PINs)"
    )]
    PinIncorrect {
        /// The token.
        token: String,
    },
    /// The user PIN is locked.
    #[error("the user PIN of token '{token}' is locked; the security officer must unlock it")]
    PinLocked {
        /// The token.
        token: String,
    },
    /// No PIN was given.
    #[error("no PIN for token '{token}': set {PIN_ENV}, give a PIN file, or run on a terminal to be asked")]
    NoPin {
        /// The token.
        token: String,
    },
    /// A PIN file could not be read.
    #[error("cannot read the PIN file {path}: {reason}")]
    PinFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A key object is not in the token.
    #[error("token '{token}' has no {class} object '{object}'")]
    ObjectMissing {
        /// The token.
        token: String,
        /// The object label.
        object: String,
        /// `private key`, `public key`, `secret key`.
        class: &'static str,
    },
    /// A key object is of the wrong type for its use.
    #[error("object '{object}' in token '{token}' is {found}, expected {expected}")]
    WrongKeyType {
        /// The token.
        token: String,
        /// The object label.
        object: String,
        /// What it should be.
        expected: String,
        /// What it is.
        found: String,
    },
    /// A malformed PKCS#11 URI.
    #[error("bad PKCS#11 URI '{uri}': {reason}")]
    Uri {
        /// The URI (never with a PIN: `pin-value` is refused before quoting).
        uri: String,
        /// Why.
        reason: String,
    },
    /// Any other PKCS#11 failure.
    #[error("token '{token}': {operation} failed: {rv}")]
    Device {
        /// The token.
        token: String,
        /// What was being done.
        operation: &'static str,
        /// The PKCS#11 error.
        rv: String,
    },
}

impl Pkcs11Error {
    /// The kind of fault, as a [`CardKeySource`] reports it.
    pub fn fault(&self) -> KeySourceFault {
        match self {
            Self::TokenAbsent { .. } | Self::TokenRemoved { .. } => KeySourceFault::Unavailable,
            Self::PinIncorrect { .. } | Self::PinLocked { .. } | Self::NoPin { .. } => {
                KeySourceFault::Denied
            }
            Self::ObjectMissing { .. } | Self::WrongKeyType { .. } => KeySourceFault::Key,
            _ => KeySourceFault::Device,
        }
    }

    /// Whether the token is absent or went away (the station may pause and retry).
    pub fn is_unavailable(&self) -> bool {
        self.fault() == KeySourceFault::Unavailable
    }
}

impl From<Pkcs11Error> for KeySourceError {
    fn from(e: Pkcs11Error) -> Self {
        KeySourceError::new(e.fault(), e.to_string())
    }
}

/// An RFC 7512 PKCS#11 URI, the attributes kart uses.
///
/// ```
/// use kart_perso::pki::pkcs11::Pkcs11Uri;
/// let uri: Pkcs11Uri = "pkcs11:token=kart%20issuer;object=card-ca;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so".parse()?;
/// assert_eq!(uri.token.as_deref(), Some("kart issuer"));
/// assert_eq!(uri.object.as_deref(), Some("card-ca"));
/// assert_eq!(uri.module_path.as_deref(), Some(std::path::Path::new("/usr/lib/softhsm/libsofthsm2.so")));
/// assert!("pkcs11:object=k?pin-value=1234".parse::<Pkcs11Uri>().is_err());
/// # Ok::<(), kart_perso::pki::pkcs11::Pkcs11Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// `token`: the token label.
    pub token: Option<String>,
    /// `object`: the object label (`CKA_LABEL`).
    pub object: Option<String>,
    /// `type`: `private`, `public`, `secret-key`, `cert`, `data`.
    pub object_type: Option<String>,
    /// `id`: `CKA_ID` bytes.
    pub id: Option<Vec<u8>>,
    /// `module-path` (query): the module to load.
    pub module_path: Option<PathBuf>,
    /// `pin-source` (query): a file holding the user PIN (`file:` URI or path).
    pub pin_source: Option<PathBuf>,
}

impl std::str::FromStr for Pkcs11Uri {
    type Err = Pkcs11Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| Pkcs11Error::Uri {
            uri: s.chars().take(200).collect(),
            reason: reason.into(),
        };
        let rest = s
            .strip_prefix("pkcs11:")
            .ok_or_else(|| bad("does not start with 'pkcs11:'"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut uri = Pkcs11Uri::default();
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| bad("a path attribute has no '='"))?;
            let value = percent_decode(value).ok_or_else(|| bad("bad percent-encoding"))?;
            match name {
                "token" => uri.token = Some(utf8(value).ok_or_else(|| bad("token is not UTF-8"))?),
                "object" => {
                    uri.object = Some(utf8(value).ok_or_else(|| bad("object is not UTF-8"))?);
                }
                "type" => uri.object_type = Some(utf8(value).ok_or_else(|| bad("bad type"))?),
                "id" => uri.id = Some(value),
                // Other standard attributes narrow the search; kart selects by token and object.
                "manufacturer"
                | "model"
                | "serial"
                | "library-manufacturer"
                | "library-description"
                | "library-version"
                | "slot-description"
                | "slot-manufacturer"
                | "slot-id" => {}
                _ => return Err(bad(&format!("unknown path attribute '{name}'"))),
            }
        }
        for attr in query.split('&').filter(|a| !a.is_empty()) {
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| bad("a query attribute has no '='"))?;
            if name == "pin-value" {
                return Err(Pkcs11Error::Uri {
                    uri: "pkcs11:…?pin-value=<redacted>".into(),
                    reason: format!("pin-value is refused: give the PIN through {PIN_ENV}, a PIN file (pin-source) or the prompt"),
                });
            }
            let value = utf8(percent_decode(value).ok_or_else(|| bad("bad percent-encoding"))?)
                .ok_or_else(|| bad("a query value is not UTF-8"))?;
            match name {
                "module-path" => uri.module_path = Some(PathBuf::from(value)),
                "pin-source" => {
                    uri.pin_source = Some(PathBuf::from(
                        value.strip_prefix("file:").unwrap_or(&value).to_owned(),
                    ));
                }
                "module-name" => {}
                _ => return Err(bad(&format!("unknown query attribute '{name}'"))),
            }
        }
        Ok(uri)
    }
}

impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("pkcs11:")?;
        let mut sep = "";
        for (name, value) in [
            ("token", self.token.as_deref()),
            ("object", self.object.as_deref()),
            ("type", self.object_type.as_deref()),
        ] {
            if let Some(v) = value {
                write!(f, "{sep}{name}={}", percent_encode(v.as_bytes()))?;
                sep = ";";
            }
        }
        if let Some(id) = &self.id {
            write!(f, "{sep}id={}", percent_encode_all(id))?;
        }
        Ok(())
    }
}

fn utf8(v: Vec<u8>) -> Option<String> {
    String::from_utf8(v).ok()
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

fn percent_encode(b: &[u8]) -> String {
    b.iter()
        .map(|&c| {
            if c.is_ascii_alphanumeric() || b"-._~:[]@!$'()*+,".contains(&c) {
                char::from(c).to_string()
            } else {
                format!("%{c:02X}")
            }
        })
        .collect()
}

fn percent_encode_all(b: &[u8]) -> String {
    use std::fmt::Write as _;
    b.iter().fold(String::new(), |mut s, c| {
        let _ = write!(s, "%{c:02X}");
        s
    })
}

/// A prompt for a token's user PIN (given the token label), if there is a terminal.
pub type PinPrompt<'a> = &'a dyn Fn(&str) -> Option<Zeroizing<String>>;

/// The user PIN of a token: zeroized, never printed.
pub struct Pin(Zeroizing<String>);

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

impl Pin {
    /// A PIN from its text (trailing newline removed).
    pub fn new(pin: &str) -> Self {
        Self(Zeroizing::new(
            pin.trim_end_matches(['\r', '\n']).to_owned(),
        ))
    }

    /// The PIN from `pin_file` if given, else from `KART_HSM_PIN`, else from
    /// `prompt` (a terminal prompt the caller provides); else [`Pkcs11Error::NoPin`].
    pub fn obtain(
        token: &str,
        pin_file: Option<&Path>,
        prompt: Option<PinPrompt<'_>>,
    ) -> Result<Self, Pkcs11Error> {
        if let Some(path) = pin_file {
            let text =
                std::fs::read(path)
                    .map(Zeroizing::new)
                    .map_err(|e| Pkcs11Error::PinFile {
                        path: path.to_owned(),
                        reason: e.to_string(),
                    })?;
            let text = std::str::from_utf8(&text).map_err(|_| Pkcs11Error::PinFile {
                path: path.to_owned(),
                reason: "not UTF-8".into(),
            })?;
            if text.len() > 256 {
                return Err(Pkcs11Error::PinFile {
                    path: path.to_owned(),
                    reason: "longer than 256 bytes".into(),
                });
            }
            return Ok(Self::new(text));
        }
        if let Some(pin) = std::env::var_os(PIN_ENV) {
            let pin = Zeroizing::new(pin.into_string().map_err(|_| Pkcs11Error::NoPin {
                token: token.into(),
            })?);
            return Ok(Self::new(&pin));
        }
        if let Some(pin) = prompt.and_then(|p| p(token)) {
            return Ok(Self::new(&pin));
        }
        Err(Pkcs11Error::NoPin {
            token: token.into(),
        })
    }

    fn auth(&self) -> AuthPin {
        AuthPin::from(self.0.as_str())
    }
}

/// Loads and initializes a module once per process; later calls share it.
fn context(module: &Path) -> Result<Pkcs11, Pkcs11Error> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut map = CONTEXTS
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(ctx) = map.get(module) {
        return Ok(ctx.clone());
    }
    let err = |reason: String| Pkcs11Error::Module {
        module: module.to_owned(),
        reason,
    };
    let ctx = Pkcs11::new(module).map_err(|e| err(e.to_string()))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(err(e.to_string())),
    }
    map.insert(module.to_owned(), ctx.clone());
    drop(map);
    Ok(ctx)
}

/// One token of one module, logged in as the user; a pool of sessions.
pub struct Token {
    ctx: Pkcs11,
    slot: Slot,
    label: String,
    module: PathBuf,
    pin: Pin,
    /// Set once the token refused the PIN: never offered again (a token
    /// locks after a few wrong PINs).
    pin_refused: std::sync::atomic::AtomicBool,
    pool: Mutex<Vec<Session>>,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("label", &self.label)
            .field("module", &self.module)
            .finish_non_exhaustive()
    }
}

fn rv_of(e: &CkError) -> Option<RvError> {
    match e {
        CkError::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}

fn removed(rv: RvError) -> bool {
    matches!(
        rv,
        RvError::TokenNotPresent
            | RvError::DeviceRemoved
            | RvError::SessionHandleInvalid
            | RvError::SessionClosed
            | RvError::DeviceError
            | RvError::TokenNotRecognized
            | RvError::CryptokiNotInitialized
    )
}

impl Token {
    /// Opens the token labelled `label` in `module` and logs in with `pin`
    /// once. A wrong PIN is one error, never retried.
    pub fn open(module: &Path, label: &str, pin: Pin) -> Result<Arc<Self>, Pkcs11Error> {
        let ctx = context(module)?;
        let slot = find_slot(&ctx, module, label)?;
        let token = Self {
            ctx,
            slot,
            label: label.to_owned(),
            module: module.to_owned(),
            pin,
            pin_refused: std::sync::atomic::AtomicBool::new(false),
            pool: Mutex::new(Vec::new()),
        };
        let session = token.new_session()?;
        token.login(&session)?;
        token.give_back(session);
        Ok(Arc::new(token))
    }

    /// The token's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The module's path.
    pub fn module(&self) -> &Path {
        &self.module
    }

    /// Sessions idle in the pool (each thread that used the token at the same
    /// time as another left one; all share the one login).
    pub fn idle_sessions(&self) -> usize {
        self.pool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    fn new_session(&self) -> Result<Session, Pkcs11Error> {
        self.ctx
            .open_rw_session(self.slot)
            .map_err(|e| self.map_err("C_OpenSession", &e))
    }

    fn login(&self, session: &Session) -> Result<(), Pkcs11Error> {
        use std::sync::atomic::Ordering;
        if self.pin_refused.load(Ordering::SeqCst) {
            return Err(Pkcs11Error::PinIncorrect {
                token: self.label.clone(),
            });
        }
        match session.login(UserType::User, Some(&self.pin.auth())) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
            Err(e) => {
                let err = self.map_err("C_Login", &e);
                if matches!(
                    err,
                    Pkcs11Error::PinIncorrect { .. } | Pkcs11Error::PinLocked { .. }
                ) {
                    self.pin_refused.store(true, Ordering::SeqCst);
                }
                Err(err)
            }
        }
    }

    fn give_back(&self, session: Session) {
        self.pool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(session);
    }

    /// Runs `f` on a session of the pool (a new one if all are in use); a
    /// session that saw the token go away is dropped, not pooled. If the
    /// token says it is no longer logged in (it was re-inserted), logs in
    /// once more with the same PIN and retries once.
    pub(crate) fn with_session<R>(
        &self,
        operation: &'static str,
        f: impl Fn(&Session) -> Result<R, CkError>,
    ) -> Result<R, Pkcs11Error> {
        let pooled = self
            .pool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let session = match pooled {
            Some(s) => s,
            None => self.reopen()?,
        };
        let result = match f(&session) {
            Err(e) if rv_of(&e) == Some(RvError::UserNotLoggedIn) => {
                self.login(&session)?;
                f(&session)
            }
            other => other,
        };
        match result {
            Ok(r) => {
                self.give_back(session);
                Ok(r)
            }
            Err(e) => {
                if !rv_of(&e).is_some_and(removed) {
                    self.give_back(session);
                }
                Err(self.map_err(operation, &e))
            }
        }
    }

    /// A new session, finding the token's slot again if it came back elsewhere.
    fn reopen(&self) -> Result<Session, Pkcs11Error> {
        let session = match self.new_session() {
            Ok(s) => s,
            Err(e) if e.is_unavailable() => {
                let slot = find_slot(&self.ctx, &self.module, &self.label)?;
                self.ctx
                    .open_rw_session(slot)
                    .map_err(|e| self.map_err("C_OpenSession", &e))?
            }
            Err(e) => return Err(e),
        };
        Ok(session)
    }

    fn map_err(&self, operation: &'static str, e: &CkError) -> Pkcs11Error {
        let token = self.label.clone();
        match rv_of(e) {
            Some(RvError::PinIncorrect) => Pkcs11Error::PinIncorrect { token },
            Some(RvError::PinLocked) => Pkcs11Error::PinLocked { token },
            Some(rv) if removed(rv) || rv == RvError::SlotIdInvalid => Pkcs11Error::TokenRemoved {
                token,
                rv: format!("{rv}"),
            },
            _ => Pkcs11Error::Device {
                token,
                operation,
                rv: e.to_string(),
            },
        }
    }

    /// The handle of the object labelled `label` of `class`.
    pub(crate) fn find(
        &self,
        label: &str,
        class: ObjectClass,
    ) -> Result<ObjectHandle, Pkcs11Error> {
        let found = self.with_session("C_FindObjects", |s| {
            s.find_objects(&[
                Attribute::Class(class),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
        })?;
        found
            .first()
            .copied()
            .ok_or_else(|| Pkcs11Error::ObjectMissing {
                token: self.label.clone(),
                object: label.to_owned(),
                class: class_name(class),
            })
    }

    fn key_type(&self, handle: ObjectHandle) -> Result<(KeyType, Vec<Attribute>), Pkcs11Error> {
        let attrs = self.with_session("C_GetAttributeValue", |s| {
            s.get_attributes(
                handle,
                &[
                    AttributeType::KeyType,
                    AttributeType::EcParams,
                    AttributeType::ValueLen,
                    AttributeType::Modulus,
                ],
            )
        })?;
        let kt = attrs
            .iter()
            .find_map(|a| match a {
                Attribute::KeyType(k) => Some(*k),
                _ => None,
            })
            .ok_or_else(|| Pkcs11Error::Device {
                token: self.label.clone(),
                operation: "C_GetAttributeValue",
                rv: "no CKA_KEY_TYPE".into(),
            })?;
        Ok((kt, attrs))
    }
}

fn class_name(class: ObjectClass) -> &'static str {
    if class == ObjectClass::PRIVATE_KEY {
        "private key"
    } else if class == ObjectClass::PUBLIC_KEY {
        "public key"
    } else if class == ObjectClass::SECRET_KEY {
        "secret key"
    } else {
        "other"
    }
}

fn find_slot(ctx: &Pkcs11, module: &Path, label: &str) -> Result<Slot, Pkcs11Error> {
    let dev = |e: CkError| Pkcs11Error::Module {
        module: module.to_owned(),
        reason: e.to_string(),
    };
    let mut present = Vec::new();
    for slot in ctx.get_slots_with_token().map_err(dev)? {
        let Ok(info) = ctx.get_token_info(slot) else {
            continue;
        };
        let l = info.label().trim_end().to_owned();
        if l == label {
            return Ok(slot);
        }
        if !l.is_empty() {
            present.push(l);
        }
    }
    Err(Pkcs11Error::TokenAbsent {
        token: label.to_owned(),
        module: module.to_owned(),
        present: if present.is_empty() {
            "none".into()
        } else {
            present.join(", ")
        },
    })
}

/// A private key in a token, as an [`IssuerSigner`]; it never leaves the token.
pub struct TokenSigner {
    token: Arc<Token>,
    object: String,
    handle: ObjectHandle,
    algorithm: KeyAlgorithm,
    public: Vec<u8>,
}

impl fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSigner")
            .field("token", &self.token.label)
            .field("object", &self.object)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// The private key labelled `object` and its public key (the public key
    /// object of the same label).
    pub fn open(token: &Arc<Token>, object: &str) -> Result<Self, Pkcs11Error> {
        Self::open_with(token, object, false)
    }

    /// [`open`](Self::open), an RSA key signing with RSASSA-PSS (SHA-256,
    /// MGF1-SHA-256, 32-byte salt) instead of PKCS#1 v1.5.
    pub fn open_pss(token: &Arc<Token>, object: &str) -> Result<Self, Pkcs11Error> {
        Self::open_with(token, object, true)
    }

    fn open_with(token: &Arc<Token>, object: &str, pss: bool) -> Result<Self, Pkcs11Error> {
        let handle = token.find(object, ObjectClass::PRIVATE_KEY)?;
        let (kt, attrs) = token.key_type(handle)?;
        let wrong = |found: String| Pkcs11Error::WrongKeyType {
            token: token.label.clone(),
            object: object.to_owned(),
            expected: "an EC P-256/P-384 or RSA 2048-4096 private key".into(),
            found,
        };
        let algorithm = if kt == KeyType::EC {
            let params = attrs.iter().find_map(|a| match a {
                Attribute::EcParams(p) => Some(p.as_slice()),
                _ => None,
            });
            match params {
                Some(P256_PARAMS) => KeyAlgorithm::EcdsaP256Sha256,
                Some(P384_PARAMS) => KeyAlgorithm::EcdsaP384Sha384,
                _ => return Err(wrong("an EC key on another curve".into())),
            }
        } else if kt == KeyType::RSA && pss {
            KeyAlgorithm::RsaPssSha256
        } else if kt == KeyType::RSA {
            KeyAlgorithm::RsaPkcs1Sha256
        } else {
            return Err(wrong(format!("a {kt} key")));
        };
        let public = public_key(token, object, kt)?;
        if kt == KeyType::RSA && !(256..=512).contains(&rsa_modulus_len(&public)) {
            return Err(wrong("an RSA key outside 2048-4096 bits".into()));
        }
        Ok(Self {
            token: Arc::clone(token),
            object: object.to_owned(),
            handle,
            algorithm,
            public,
        })
    }

    /// The object label.
    pub fn object(&self) -> &str {
        &self.object
    }
}

fn rsa_modulus_len(rsa_public_key: &[u8]) -> usize {
    #[derive(der::Sequence)]
    struct RsaPub<'a> {
        n: der::asn1::UintRef<'a>,
        e: der::asn1::UintRef<'a>,
    }
    RsaPub::from_der(rsa_public_key).map_or(0, |k| {
        let _ = k.e;
        k.n.as_bytes().len()
    })
}

/// The public key of `object` as a SubjectPublicKeyInfo BIT STRING holds it.
fn public_key(token: &Token, object: &str, kt: KeyType) -> Result<Vec<u8>, Pkcs11Error> {
    let handle = token.find(object, ObjectClass::PUBLIC_KEY)?;
    let attrs = token.with_session("C_GetAttributeValue", |s| {
        s.get_attributes(
            handle,
            &[
                AttributeType::EcPoint,
                AttributeType::Modulus,
                AttributeType::PublicExponent,
            ],
        )
    })?;
    let mut point = None;
    let mut n = None;
    let mut e = None;
    for a in attrs {
        match a {
            Attribute::EcPoint(p) => point = Some(p),
            Attribute::Modulus(m) => n = Some(m),
            Attribute::PublicExponent(x) => e = Some(x),
            _ => {}
        }
    }
    let bad = |what: &str| Pkcs11Error::WrongKeyType {
        token: token.label.clone(),
        object: object.to_owned(),
        expected: "a public key object matching its private key".into(),
        found: what.into(),
    };
    if kt == KeyType::EC {
        let p = point.ok_or_else(|| bad("an EC public key without CKA_EC_POINT"))?;
        // CKA_EC_POINT is a DER OCTET STRING holding the point (some modules give the raw point).
        match der::asn1::OctetStringRef::from_der(&p) {
            Ok(os) => Ok(os.as_bytes().to_vec()),
            Err(_) if p.first() == Some(&0x04) => Ok(p),
            Err(_) => Err(bad("a malformed CKA_EC_POINT")),
        }
    } else {
        let (Some(n), Some(e)) = (n, e) else {
            return Err(bad("an RSA public key without modulus or exponent"));
        };
        rsa_public_key_der(&n, &e).ok_or_else(|| bad("a malformed RSA public key"))
    }
}

/// DER `RSAPublicKey` (RFC 8017 A.1.1) from big-endian modulus and exponent.
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Option<Vec<u8>> {
    #[derive(der::Sequence)]
    struct RsaPub<'a> {
        n: der::asn1::UintRef<'a>,
        e: der::asn1::UintRef<'a>,
    }
    RsaPub {
        n: der::asn1::UintRef::new(n).ok()?,
        e: der::asn1::UintRef::new(e).ok()?,
    }
    .to_der()
    .ok()
}

/// `r ‖ s` (PKCS#11 ECDSA) to DER `Ecdsa-Sig-Value` (RFC 5480 / X9.62).
fn ecdsa_der(raw: &[u8]) -> Option<Vec<u8>> {
    #[derive(der::Sequence)]
    struct Sig<'a> {
        r: der::asn1::UintRef<'a>,
        s: der::asn1::UintRef<'a>,
    }
    if raw.is_empty() || raw.len() % 2 != 0 {
        return None;
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    Sig {
        r: der::asn1::UintRef::new(r).ok()?,
        s: der::asn1::UintRef::new(s).ok()?,
    }
    .to_der()
    .ok()
}

impl IssuerSigner for TokenSigner {
    fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    fn public_key(&self) -> &[u8] {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        let handle = self.handle;
        let sig = match self.algorithm {
            KeyAlgorithm::EcdsaP256Sha256 | KeyAlgorithm::EcdsaP384Sha384 => {
                let alg = if self.algorithm == KeyAlgorithm::EcdsaP256Sha256 {
                    &ring::digest::SHA256
                } else {
                    &ring::digest::SHA384
                };
                let digest = ring::digest::digest(alg, message);
                let raw = self.token.with_session("C_Sign", |s| {
                    s.sign(&Mechanism::Ecdsa, handle, digest.as_ref())
                })?;
                ecdsa_der(&raw).ok_or_else(|| {
                    PkiError::Pkcs11(Pkcs11Error::Device {
                        token: self.token.label.clone(),
                        operation: "C_Sign",
                        rv: format!("ECDSA signature of {} bytes", raw.len()),
                    })
                })?
            }
            KeyAlgorithm::RsaPkcs1Sha256 => self.token.with_session("C_Sign", |s| {
                s.sign(&Mechanism::Sha256RsaPkcs, handle, message)
            })?,
            KeyAlgorithm::RsaPssSha256 => self.token.with_session("C_Sign", |s| {
                let params = PkcsPssParams {
                    hash_alg: MechanismType::SHA256,
                    mgf: PkcsMgfType::MGF1_SHA256,
                    s_len: 32.into(),
                };
                s.sign(&Mechanism::Sha256RsaPkcsPss(params), handle, message)
            })?,
        };
        Ok(sig)
    }

    fn location(&self) -> String {
        format!(
            "token '{}' ({}), object '{}'",
            self.token.label,
            self.token.module.display(),
            self.object
        )
    }
}

/// One GlobalPlatform master key set in a token (ENC, MAC, DEK objects),
/// as a [`CardKeySource`]: diversification happens inside the token.
pub struct TokenMasterKeys {
    token: Arc<Token>,
    algorithm: SecureChannelAlgorithm,
    method: Diversification,
    key_version: u8,
    keys: [(String, ObjectHandle); 3],
}

impl fmt::Debug for TokenMasterKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenMasterKeys")
            .field("token", &self.token.label)
            .field("algorithm", &self.algorithm)
            .field("method", &self.method)
            .field(
                "objects",
                &[&self.keys[0].0, &self.keys[1].0, &self.keys[2].0],
            )
            .finish_non_exhaustive()
    }
}

impl TokenMasterKeys {
    /// The secret keys labelled `enc`, `mac`, `dek`, checked to be of
    /// `algorithm`'s type and length, used with `method` under `key_version`.
    pub fn open(
        token: &Arc<Token>,
        algorithm: SecureChannelAlgorithm,
        labels: [&str; 3],
        method: Diversification,
        key_version: u8,
    ) -> Result<Self, Pkcs11Error> {
        let mut keys = Vec::with_capacity(3);
        for label in labels {
            let handle = token.find(label, ObjectClass::SECRET_KEY)?;
            let (kt, attrs) = token.key_type(handle)?;
            let len = attrs.iter().find_map(|a| match a {
                Attribute::ValueLen(l) => usize::try_from(u64::from(*l)).ok(),
                _ => None,
            });
            let ok = match algorithm {
                SecureChannelAlgorithm::TripleDes => kt == KeyType::DES2 || kt == KeyType::DES3,
                SecureChannelAlgorithm::Aes128
                | SecureChannelAlgorithm::Aes192
                | SecureChannelAlgorithm::Aes256 => {
                    kt == KeyType::AES && len.is_none_or(|l| l == algorithm.key_len())
                }
            };
            if !ok {
                return Err(Pkcs11Error::WrongKeyType {
                    token: token.label.clone(),
                    object: label.to_owned(),
                    expected: format!("a {} secret key", secret_kind(algorithm)),
                    found: format!(
                        "a {kt} key{}",
                        len.map(|l| format!(" of {l} bytes")).unwrap_or_default()
                    ),
                });
            }
            keys.push((label.to_owned(), handle));
        }
        let [enc, mac, dek]: [(String, ObjectHandle); 3] =
            keys.try_into().map_err(|_| Pkcs11Error::Device {
                token: token.label.clone(),
                operation: "C_FindObjects",
                rv: "three keys expected".into(),
            })?;
        Ok(Self {
            token: Arc::clone(token),
            algorithm,
            method,
            key_version,
            keys: [enc, mac, dek],
        })
    }

    /// The block cipher of this set.
    pub fn algorithm(&self) -> SecureChannelAlgorithm {
        self.algorithm
    }

    /// The object labels of ENC, MAC and DEK.
    pub fn labels(&self) -> [&str; 3] {
        [&self.keys[0].0, &self.keys[1].0, &self.keys[2].0]
    }

    /// The token holding the set.
    pub fn token(&self) -> &Arc<Token> {
        &self.token
    }

    /// The same keys, diversified by `method` and presented under `key_version`.
    #[must_use]
    pub fn for_profile(&self, method: Diversification, key_version: u8) -> Self {
        Self {
            token: Arc::clone(&self.token),
            algorithm: self.algorithm,
            method,
            key_version,
            keys: self.keys.clone(),
        }
    }

    fn one(
        &self,
        handle: ObjectHandle,
        idx: u8,
        kdd: &[u8; 10],
    ) -> Result<Zeroizing<Vec<u8>>, Pkcs11Error> {
        match self.method {
            Diversification::Visa2 | Diversification::EmvCps11 => {
                let six: [u8; 6] = if self.method == Diversification::Visa2 {
                    [kdd[0], kdd[1], kdd[4], kdd[5], kdd[6], kdd[7]]
                } else {
                    [kdd[4], kdd[5], kdd[6], kdd[7], kdd[8], kdd[9]]
                };
                let mut block = [0u8; 16];
                block[..6].copy_from_slice(&six);
                block[6..8].copy_from_slice(&[0xF0, idx]);
                block[8..14].copy_from_slice(&six);
                block[14..].copy_from_slice(&[0x0F, idx]);
                let out = self.token.with_session("C_Encrypt", |s| {
                    s.encrypt(&Mechanism::Des3Ecb, handle, &block)
                })?;
                Ok(Zeroizing::new(out))
            }
            Diversification::Kdf3 => {
                // SP 800-108 counter mode, AES-CMAC PRF: counter ‖ 00 00 00 idx 00 ‖ kdd.
                let len = self.algorithm.key_len();
                let mut out = Zeroizing::new(Vec::with_capacity(len + 16));
                let mut counter = 1u8;
                while out.len() < len {
                    let mut input = [0u8; 16];
                    input[0] = counter;
                    input[4] = idx;
                    input[6..].copy_from_slice(kdd);
                    let block = Zeroizing::new(self.token.with_session("C_Sign", |s| {
                        s.sign(&Mechanism::AesCMac, handle, &input)
                    })?);
                    out.extend_from_slice(&block);
                    counter += 1;
                }
                out.truncate(len);
                Ok(out)
            }
            // A master key in a token is never a card's key as it is: that
            // would need it outside the token.
            Diversification::None => Err(Pkcs11Error::WrongKeyType {
                token: self.token.label.clone(),
                object: self.keys[0].0.clone(),
                expected: "a master key with a diversification method".into(),
                found: "a profile without diversification (its card keys would be the master keys, which never leave the token)".into(),
            }),
        }
    }
}

impl CardKeySource for TokenMasterKeys {
    fn card_keys(&self, kdd: &[u8; 10], _key_version: u8) -> Result<KeySet, GpError> {
        let enc = self
            .one(self.keys[0].1, 1, kdd)
            .map_err(KeySourceError::from)?;
        let mac = self
            .one(self.keys[1].1, 2, kdd)
            .map_err(KeySourceError::from)?;
        let dek = self
            .one(self.keys[2].1, 3, kdd)
            .map_err(KeySourceError::from)?;
        KeySet::new(&enc, &mac, &dek, self.key_version)
    }
}

fn secret_kind(algorithm: SecureChannelAlgorithm) -> &'static str {
    match algorithm {
        SecureChannelAlgorithm::TripleDes => "DES2 (2-key 3DES)",
        SecureChannelAlgorithm::Aes128 => "16-byte AES",
        SecureChannelAlgorithm::Aes192 => "24-byte AES",
        SecureChannelAlgorithm::Aes256 => "32-byte AES",
    }
}

/// The kind of key pair [`generate_key_pair`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPairKind {
    /// EC on P-256.
    P256,
    /// EC on P-384.
    P384,
    /// RSA with this many bits (2048-4096).
    Rsa(u32),
}

fn private_template(label: &str, id: &[u8]) -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ]
}

/// Generates a key pair labelled `label` in the token: the private key
/// sensitive, never extractable, for signing only.
pub fn generate_key_pair(
    token: &Token,
    label: &str,
    id: &[u8],
    kind: KeyPairKind,
) -> Result<(), Pkcs11Error> {
    let mut public = vec![
        Attribute::Token(true),
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ];
    let mechanism = match kind {
        KeyPairKind::P256 => {
            public.push(Attribute::EcParams(P256_PARAMS.to_vec()));
            Mechanism::EccKeyPairGen
        }
        KeyPairKind::P384 => {
            public.push(Attribute::EcParams(P384_PARAMS.to_vec()));
            Mechanism::EccKeyPairGen
        }
        KeyPairKind::Rsa(bits) => {
            if !(2048..=4096).contains(&bits) {
                return Err(Pkcs11Error::WrongKeyType {
                    token: token.label.clone(),
                    object: label.to_owned(),
                    expected: "RSA of 2048-4096 bits".into(),
                    found: format!("{bits} bits"),
                });
            }
            public.push(Attribute::ModulusBits(u64::from(bits).into()));
            public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
            Mechanism::RsaPkcsKeyPairGen
        }
    };
    let private = private_template(label, id);
    token.with_session("C_GenerateKeyPair", |s| {
        s.generate_key_pair(&mechanism, &public, &private)
            .map(|_| ())
    })
}

fn secret_template(label: &str, algorithm: SecureChannelAlgorithm) -> Vec<Attribute> {
    let mut t = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Decrypt(false),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::Verify(false),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    match algorithm {
        // Diversification by 3DES-ECB encryption (EMV CPS, VISA2).
        SecureChannelAlgorithm::TripleDes => {
            t.extend([Attribute::Encrypt(true), Attribute::Sign(false)]);
        }
        // Diversification by AES-CMAC (KDF3).
        SecureChannelAlgorithm::Aes128
        | SecureChannelAlgorithm::Aes192
        | SecureChannelAlgorithm::Aes256 => {
            t.extend([Attribute::Encrypt(false), Attribute::Sign(true)]);
        }
    }
    t
}

/// Generates a master key labelled `label` inside the token: sensitive,
/// never extractable, usable only for the diversification its algorithm needs.
pub fn generate_master_key(
    token: &Token,
    label: &str,
    algorithm: SecureChannelAlgorithm,
) -> Result<(), Pkcs11Error> {
    let mut t = secret_template(label, algorithm);
    let mechanism = match algorithm {
        SecureChannelAlgorithm::TripleDes => Mechanism::Des2KeyGen,
        SecureChannelAlgorithm::Aes128
        | SecureChannelAlgorithm::Aes192
        | SecureChannelAlgorithm::Aes256 => {
            t.push(Attribute::ValueLen((algorithm.key_len() as u64).into()));
            Mechanism::AesKeyGen
        }
    };
    token.with_session("C_GenerateKey", |s| {
        s.generate_key(&mechanism, &t).map(|_| ())
    })
}

/// Imports a known master key (for cards a vendor already keyed) into the
/// token under `label`: sensitive and never extractable from then on. The
/// caller's copy of `value` should be zeroized.
pub fn import_master_key(
    token: &Token,
    label: &str,
    algorithm: SecureChannelAlgorithm,
    value: &[u8],
) -> Result<(), Pkcs11Error> {
    if value.len() != algorithm.key_len() {
        return Err(Pkcs11Error::WrongKeyType {
            token: token.label.clone(),
            object: label.to_owned(),
            expected: format!("a {} secret key", secret_kind(algorithm)),
            found: format!("{} bytes", value.len()),
        });
    }
    let mut t = secret_template(label, algorithm);
    t.push(Attribute::Class(ObjectClass::SECRET_KEY));
    t.push(Attribute::KeyType(match algorithm {
        SecureChannelAlgorithm::TripleDes => KeyType::DES2,
        _ => KeyType::AES,
    }));
    t.push(Attribute::Value(value.to_vec()));
    let result = token.with_session("C_CreateObject", |s| s.create_object(&t).map(|_| ()));
    if let Some(Attribute::Value(v)) = t.last_mut() {
        zeroize::Zeroize::zeroize(v);
    }
    result
}
