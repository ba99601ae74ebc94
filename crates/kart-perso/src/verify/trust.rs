//! The certificates a verifier trusts: issuer roots, and the intermediate CAs
//! (card CA) that the card does not carry.

use std::path::Path;

use crate::pki::{validate_chain, Certificate, KeyUsage, PkiError};
use time::OffsetDateTime;

/// Trusted issuer roots plus known intermediate CAs.
///
/// ```
/// use kart_perso::pki::{create_demo_issuer, IssuerPki};
/// use kart_perso::verify::TrustAnchors;
/// let dir = tempfile::tempdir()?;
/// let files = create_demo_issuer(dir.path(), time::OffsetDateTime::now_utc())?;
/// let trust = TrustAnchors::load(&files.root, &[files.card_ca.as_path()])?;
/// assert_eq!(trust.roots().len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct TrustAnchors {
    roots: Vec<Certificate>,
    intermediates: Vec<Certificate>,
}

impl TrustAnchors {
    /// Trust `root` and nothing else yet.
    pub fn new(root: Certificate) -> Self {
        Self {
            roots: vec![root],
            intermediates: Vec::new(),
        }
    }

    /// Also trust another root (e.g. the previous generation's).
    #[must_use]
    pub fn with_root(mut self, root: Certificate) -> Self {
        self.roots.push(root);
        self
    }

    /// Add an intermediate CA (e.g. the card CA that issues holder
    /// certificates). It is not trusted by itself: it must chain to a root.
    #[must_use]
    pub fn with_intermediate(mut self, ca: Certificate) -> Self {
        self.intermediates.push(ca);
        self
    }

    /// Load a root and intermediates from PEM or DER files.
    pub fn load(root: &Path, intermediates: &[&Path]) -> Result<Self, PkiError> {
        let load = |p: &Path| Certificate::load(p).map_err(|e| PkiError::in_file(p, e));
        let mut trust = Self::new(load(root)?);
        for path in intermediates {
            trust = trust.with_intermediate(load(path)?);
        }
        Ok(trust)
    }

    /// The trusted roots.
    pub fn roots(&self) -> &[Certificate] {
        &self.roots
    }

    /// The known intermediate CAs.
    pub fn intermediates(&self) -> &[Certificate] {
        &self.intermediates
    }

    /// Validates `leaf` at `at` through any known intermediate (or none) to
    /// any root; the first path that validates wins. When none does, the most
    /// telling error is returned: one from a path whose names matched.
    pub(crate) fn validate(&self, leaf: &Certificate, at: OffsetDateTime) -> Result<(), PkiError> {
        let mut best: Option<PkiError> = None;
        for root in &self.roots {
            let direct = std::iter::once(None);
            let via = self.intermediates.iter().map(Some);
            for intermediate in direct.chain(via) {
                let path = intermediate.map(std::slice::from_ref).unwrap_or_default();
                match validate_chain(leaf, path, root, at, KeyUsage::DigitalSignature) {
                    Ok(()) => return Ok(()),
                    Err(e) => {
                        let names_matched = !matches!(e, PkiError::WrongIssuer { .. });
                        if best.is_none()
                            || (names_matched && matches!(best, Some(PkiError::WrongIssuer { .. })))
                        {
                            best = Some(e);
                        }
                    }
                }
            }
        }
        Err(best.unwrap_or(PkiError::Malformed {
            what: "trust anchors",
            reason: "no root certificate to validate against".into(),
        }))
    }
}
