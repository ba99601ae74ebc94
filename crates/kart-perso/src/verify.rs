//! Verifying a card as a bank does, in the order ICAO 9303 readers use:
//! read everything, then passive authentication as separate checks (the
//! security object parses, its signature verifies with the embedded document
//! signer, the signer chains to a trusted root and is valid, every data
//! file's SHA-256 matches), holder certificates, consistency of EF.ID with
//! the card and the certificates, the life-cycle state, and finally active
//! authentication — run only when passive authentication passed.
//!
//! ```
//! use kart_perso::pki::{create_demo_issuer, IssuerPki};
//! use kart_perso::verify::{verify_card, TrustAnchors, VerifyError};
//! use kart_apdu::{Transport, TransportError};
//! let dir = tempfile::tempdir()?;
//! let now = time::OffsetDateTime::now_utc();
//! create_demo_issuer(dir.path(), now)?;
//! let pki = IssuerPki::load(dir.path())?;
//! let trust = TrustAnchors::new(pki.root).with_intermediate(pki.card_ca);
//!
//! // A "card" without the applet: every SELECT answers 6A82.
//! struct Blank;
//! impl Transport for Blank {
//!     fn transmit(&mut self, _: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
//!         rx.clear();
//!         rx.extend_from_slice(&[0x6A, 0x82]);
//!         Ok(())
//!     }
//! }
//! let err = verify_card(Blank, &trust, None, now).unwrap_err();
//! assert!(matches!(err, VerifyError::Read(_)));
//! // On a real card: `let verdict = verify_card(reader, &trust, Some(&pin), now)?;`
//! // then `verdict.is_genuine()`, `println!("{verdict}")` or `serde_json::to_string(&verdict)`.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod trust;
mod verdict;

use kart_apdu::{Card, CardError, Transport};
use kart_spec::{Spec, SpecError};
use ring::rand::{SecureRandom, SystemRandom};
use thiserror::Error;
use time::OffsetDateTime;
use x509_parser::oid_registry::OID_X509_SERIALNUMBER;

pub use trust::TrustAnchors;
pub use verdict::{Check, Outcome, Verdict};

use crate::pki::{verify_card_signature, Certificate};
use crate::read::{
    read_card, CardContent, FileContent, Lifecycle, PinStatus, ReadError, EF_CERT_AUTH,
    EF_CERT_SIGN, EF_ID, EF_PIN_STATUS, EF_SOD,
};
use crate::record::Pin;
use crate::security_object::{FileStatus, SecurityObject};

/// Length of the active-authentication challenge (spec §8.10 allows 8..32).
pub const CHALLENGE_LEN: usize = 32;

/// Why a card could not be verified at all (a check that fails is not an
/// error: it is in the [`Verdict`]).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Reading the card failed.
    #[error("cannot read the card: {0}")]
    Read(#[from] ReadError),
    /// The built-in applet spec did not load.
    #[error("applet spec: {0}")]
    Spec(#[from] SpecError),
    /// The card failed during INTERNAL AUTHENTICATE.
    #[error("INTERNAL AUTHENTICATE: {0}")]
    Card(#[from] CardError),
    /// The system random generator failed.
    #[error("system random number generator failed; cannot make a challenge")]
    Random,
}

impl VerifyError {
    /// What the operator should do about it, when there is something to do.
    #[must_use]
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            VerifyError::Spec(e) => e.hint(),
            _ => None,
        }
    }
}

/// Verifies the card behind `transport` against `trust` at time `now`,
/// verifying `pin` as the ID PIN when given (without it, EF.ID, EF.FACE
/// and EF.FINGER are not read and their checks are skipped).
/// See the [module example](self); [`Verifier`] offers more options.
pub fn verify_card<T: Transport>(
    transport: T,
    trust: &TrustAnchors,
    pin: Option<&Pin>,
    now: OffsetDateTime,
) -> Result<Verdict, VerifyError> {
    let mut verifier = Verifier::new(trust, now);
    if let Some(pin) = pin {
        verifier = verifier.pin(pin);
    }
    verifier.verify(&mut Card::new(transport))
}

/// Card verification with options: the ATR (to pick the vendor profile), a
/// spec other than the built-in one, the PIN.
///
/// ```no_run
/// # fn run(transport: impl kart_apdu::Transport, trust: kart_perso::verify::TrustAnchors,
/// #        atr: &[u8], pin: kart_perso::record::Pin) -> Result<(), Box<dyn std::error::Error>> {
/// use kart_perso::verify::Verifier;
/// let mut card = kart_apdu::Card::new(transport);
/// let verdict = Verifier::new(&trust, time::OffsetDateTime::now_utc())
///     .atr(atr)
///     .pin(&pin)
///     .verify(&mut card)?;
/// println!("{verdict}");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Verifier<'a> {
    trust: &'a TrustAnchors,
    now: OffsetDateTime,
    spec: Option<&'a Spec>,
    atr: Option<&'a [u8]>,
    pin: Option<&'a Pin>,
}

impl<'a> Verifier<'a> {
    /// A verifier trusting `trust`, judging validity at `now`.
    pub fn new(trust: &'a TrustAnchors, now: OffsetDateTime) -> Self {
        Self {
            trust,
            now,
            spec: None,
            atr: None,
            pin: None,
        }
    }

    /// Uses this spec instead of the built-in one.
    #[must_use]
    pub fn spec(mut self, spec: &'a Spec) -> Self {
        self.spec = Some(spec);
        self
    }

    /// The card's ATR, to pick its vendor profile without trying every AID.
    #[must_use]
    pub fn atr(mut self, atr: &'a [u8]) -> Self {
        self.atr = Some(atr);
        self
    }

    /// Verify this ID PIN on the card (and read the files it protects).
    #[must_use]
    pub fn pin(mut self, pin: &'a Pin) -> Self {
        self.pin = Some(pin);
        self
    }

    /// Reads the card, runs every check, and active authentication when
    /// passive authentication passed.
    pub fn verify<T: Transport>(&self, card: &mut Card<T>) -> Result<Verdict, VerifyError> {
        let embedded;
        let spec = if let Some(s) = self.spec {
            s
        } else {
            embedded = Spec::embedded()?;
            &embedded
        };
        let content = read_card(card, spec, self.atr, self.pin)?;
        let (mut verdict, auth_cert) = self.assess_content(content);
        let aa = match auth_cert {
            Some(cert) => active_authentication(card, &cert)?,
            None => Outcome::Skipped("passive authentication did not pass".into()),
        };
        verdict.checks.push(Check::new(AA, AA_NAME, aa));
        Ok(verdict)
    }

    /// Every check that needs no card session, on content already read;
    /// active authentication is reported as skipped, so the verdict cannot
    /// be genuine.
    pub fn assess(&self, content: CardContent) -> Verdict {
        let (mut verdict, _) = self.assess_content(content);
        verdict.checks.push(Check::new(
            AA,
            AA_NAME,
            Outcome::Skipped("not run: needs the card".into()),
        ));
        verdict
    }

    /// The checks before active authentication, and the authentication
    /// certificate when passive authentication passed.
    fn assess_content(&self, content: CardContent) -> (Verdict, Option<Certificate>) {
        let mut checks = vec![pin_check(content.pin)];
        let passive = self.passive(&content, &mut checks);
        let auth = holder_check(
            &content,
            EF_CERT_AUTH.name,
            self.trust,
            self.now,
            &mut checks,
        );
        let sign = holder_check(
            &content,
            EF_CERT_SIGN.name,
            self.trust,
            self.now,
            &mut checks,
        );
        let certs: Vec<&Certificate> = auth.iter().chain(sign.iter()).collect();
        checks.push(certificate_crn_check(content.crn.as_deref(), &certs));
        identity_checks(&content, &certs, &mut checks);
        checks.push(Check::new(
            "lifecycle",
            "Applet is LOCKED (issued)",
            match content.lifecycle {
                Lifecycle::Locked => Outcome::Pass,
                other => Outcome::Fail(format!(
                    "the applet is {other}: personalization was not finished"
                )),
            },
        ));
        let auth_for_aa =
            auth.filter(|_| passive && checks.iter().any(|c| c.id == "cert.auth" && c.passed()));
        let verdict = Verdict {
            profile: content.profile.clone(),
            csn: hex::encode_upper(content.csn),
            crn: content.crn.clone(),
            lifecycle: content.lifecycle.to_string(),
            checks,
            content,
        };
        (verdict, auth_for_aa)
    }

    /// Passive authentication; true when it passed.
    fn passive(&self, content: &CardContent, checks: &mut Vec<Check>) -> bool {
        let parsed = match content.data(EF_SOD.name) {
            Some(der) => SecurityObject::parse(der).map_err(|e| e.to_string()),
            None => Err("EF.SOD is empty or unreadable".to_owned()),
        };
        let sod = match parsed {
            Ok(sod) => {
                checks.push(Check::new(SOD_PARSE, SOD_PARSE_NAME, Outcome::Pass));
                sod
            }
            Err(reason) => {
                checks.push(Check::new(SOD_PARSE, SOD_PARSE_NAME, Outcome::Fail(reason)));
                let skip = || Outcome::Skipped("the security object did not parse".into());
                checks.push(Check::new(SOD_SIGNATURE, SOD_SIGNATURE_NAME, skip()));
                checks.push(Check::new(SOD_SIGNER, SOD_SIGNER_NAME, skip()));
                return false;
            }
        };
        let files: Vec<(u16, &[u8])> = content
            .files
            .iter()
            .filter(|f| f.name != EF_SOD.name && f.name != EF_PIN_STATUS.name)
            .filter_map(|f| match &f.content {
                FileContent::Data(d) => Some((f.fid, d.as_slice())),
                _ => None,
            })
            .collect();
        let mut reports = self
            .trust
            .roots()
            .iter()
            .map(|root| sod.verify(root, &files, self.now));
        let first = reports.next();
        let report = match first {
            Some(r) if r.signer_trusted.is_ok() => Some(r),
            Some(r) => Some(reports.find(|r| r.signer_trusted.is_ok()).unwrap_or(r)),
            None => None,
        };
        let Some(report) = report else {
            checks.push(Check::new(
                SOD_SIGNATURE,
                SOD_SIGNATURE_NAME,
                Outcome::Skipped("no trusted root given".into()),
            ));
            return false;
        };
        checks.push(Check::new(
            SOD_SIGNATURE,
            SOD_SIGNATURE_NAME,
            outcome(report.signature.as_ref()),
        ));
        checks.push(Check::new(
            SOD_SIGNER,
            SOD_SIGNER_NAME,
            outcome(report.signer_trusted.as_ref()),
        ));
        let mut passed = report.signature.is_ok() && report.signer_trusted.is_ok();
        for file in &report.files {
            let card_file = content.files.iter().find(|f| f.fid == file.fid);
            let name =
                card_file.map_or_else(|| format!("file {:04X}", file.fid), |f| f.name.clone());
            let needs_pin = card_file.is_some_and(|f| f.content == FileContent::NeedsPin);
            let check_name = format!("{name} hash matches the security object");
            let id = format!("hash.{:04X}", file.fid);
            let check = match file.status {
                FileStatus::Match => Check::new(id, check_name, Outcome::Pass),
                FileStatus::NotOnCard if needs_pin => Check::new(
                    id,
                    check_name,
                    Outcome::Skipped(format!("not checked: {name} needs the ID PIN")),
                )
                .optional(),
                FileStatus::HashMismatch => Check::new(
                    id,
                    check_name,
                    Outcome::Fail(format!(
                        "{name} was altered: its SHA-256 differs from the signed hash"
                    )),
                ),
                FileStatus::NotOnCard => Check::new(
                    id,
                    check_name,
                    Outcome::Fail(format!(
                        "{name} is listed in the security object but empty or absent on the card"
                    )),
                ),
                FileStatus::NotInSecurityObject => Check::new(
                    id,
                    check_name,
                    Outcome::Fail(format!(
                        "{name} is on the card but not covered by the security object"
                    )),
                ),
            };
            passed &= !check.failed();
            checks.push(check);
        }
        passed
    }
}

const SOD_PARSE: &str = "sod.parse";
const SOD_PARSE_NAME: &str = "Security object (EF.SOD) parses";
const SOD_SIGNATURE: &str = "sod.signature";
const SOD_SIGNATURE_NAME: &str = "Security object signature verifies with its document signer";
const SOD_SIGNER: &str = "sod.signer";
const SOD_SIGNER_NAME: &str = "Document signer chains to a trusted root and is valid";
const AA: &str = "aa";
const AA_NAME: &str = "Active authentication: the card holds the authentication key";

fn outcome<T, E: std::fmt::Display>(r: Result<T, E>) -> Outcome {
    match r {
        Ok(_) => Outcome::Pass,
        Err(reason) => Outcome::Fail(reason.to_string()),
    }
}

fn pin_check(pin: PinStatus) -> Check {
    let outcome = match pin {
        PinStatus::Verified => Outcome::Pass,
        PinStatus::NotGiven => {
            Outcome::Skipped("no PIN given: EF.ID, EF.FACE and EF.FINGER were not read".into())
        }
        other => Outcome::Fail(other.to_string()),
    };
    Check::new("pin", "ID PIN verification", outcome).optional()
}

/// Chain check of one holder certificate; returns it when it parsed.
fn holder_check(
    content: &CardContent,
    file: &str,
    trust: &TrustAnchors,
    now: OffsetDateTime,
    checks: &mut Vec<Check>,
) -> Option<Certificate> {
    let (id, name) = if file == EF_CERT_AUTH.name {
        (
            "cert.auth",
            "Authentication certificate chains to the issuer and is valid",
        )
    } else {
        (
            "cert.sign",
            "Signing certificate chains to the issuer and is valid",
        )
    };
    let cert = match content.certificate(file) {
        Some(Ok(cert)) => cert,
        Some(Err(e)) => {
            checks.push(Check::new(id, name, Outcome::Fail(format!("{file}: {e}"))));
            return None;
        }
        None => {
            checks.push(Check::new(
                id,
                name,
                Outcome::Fail(format!("{file} is empty")),
            ));
            return None;
        }
    };
    checks.push(Check::new(id, name, outcome(trust.validate(&cert, now))));
    Some(cert)
}

/// A subject attribute of a certificate as text.
fn subject_attr(cert: &Certificate, common_name: bool) -> Option<String> {
    let parsed = cert.parsed();
    let subject = parsed.subject();
    let mut values = if common_name {
        subject.iter_common_name().collect::<Vec<_>>()
    } else {
        subject.iter_by_oid(&OID_X509_SERIALNUMBER).collect()
    };
    let value = values.pop()?;
    if !values.is_empty() {
        return None;
    }
    value.as_str().ok().map(str::to_owned)
}

/// The first certificate whose CN (`common_name`) or serialNumber is not `want`.
fn mismatch<'c>(
    certs: &[&'c Certificate],
    common_name: bool,
    want: &str,
) -> Option<&'c Certificate> {
    certs
        .iter()
        .find(|c| subject_attr(c, common_name).as_deref() != Some(want))
        .copied()
}

/// The holder certificates name the card's CRN as their CN, as
/// [`issue_holder_certificate`](crate::pki::issue_holder_certificate) does.
fn certificate_crn_check(crn: Option<&str>, certs: &[&Certificate]) -> Check {
    let outcome = match crn {
        None => Outcome::Fail("the card has no CRN (GET DATA DF72 answered 6A88)".into()),
        Some(_) if certs.is_empty() => {
            Outcome::Skipped("no holder certificate could be read".into())
        }
        Some(crn) => mismatch(certs, true, crn).map_or(Outcome::Pass, |c| {
            Outcome::Fail(format!(
                "certificate '{}' does not name CRN {crn} as its CN",
                c.subject()
            ))
        }),
    };
    Check::new(
        "cert.crn",
        "Holder certificates' CN equals the card's CRN",
        outcome,
    )
}

/// EF.ID decodes, and agrees with the chip (CPLC CSN), the card's CRN
/// (GET DATA) and the certificates' serialNumber (national code).
fn identity_checks(content: &CardContent, certs: &[&Certificate], checks: &mut Vec<Check>) {
    const NEEDS_PIN: &str = "not checked: EF.ID needs the ID PIN";
    let needs_pin = matches!(
        content.file(EF_ID.name).map(|f| &f.content),
        Some(FileContent::NeedsPin)
    );
    let decoded = match content.identity() {
        Some(Ok(id)) => Ok(id),
        Some(Err(e)) => Err(Outcome::Fail(e.to_string())),
        None if needs_pin => Err(Outcome::Skipped(NEEDS_PIN.into())),
        None => Err(Outcome::Fail("EF.ID is empty".into())),
    };
    let id = match decoded {
        Ok(id) => {
            checks.push(Check::new("id.decode", ID_DECODE, Outcome::Pass));
            id
        }
        Err(outcome) => {
            let why = if needs_pin {
                NEEDS_PIN
            } else {
                "EF.ID did not decode"
            };
            let mark = |c: Check| if needs_pin { c.optional() } else { c };
            checks.push(mark(Check::new("id.decode", ID_DECODE, outcome)));
            for (cid, name) in ID_CHECKS {
                checks.push(mark(Check::new(cid, name, Outcome::Skipped(why.into()))));
            }
            return;
        }
    };
    let [(csn_id, csn_name), (crn_id, crn_name), (nc_id, nc_name)] = ID_CHECKS;
    let csn = if id.csn == content.csn {
        Outcome::Pass
    } else {
        Outcome::Fail(format!(
            "EF.ID names CSN {}, the chip's CPLC says {}: the data was written for another card",
            hex::encode_upper(id.csn),
            hex::encode_upper(content.csn)
        ))
    };
    checks.push(Check::new(csn_id, csn_name, csn));
    let crn = content.crn.as_deref();
    let crn = if Some(id.crn.as_str()) == crn {
        Outcome::Pass
    } else {
        Outcome::Fail(format!(
            "EF.ID names CRN {}, GET DATA DF72 says {}",
            id.crn,
            crn.unwrap_or("nothing")
        ))
    };
    checks.push(Check::new(crn_id, crn_name, crn));
    let code = id.national_code.as_str();
    let national_code = match mismatch(certs, false, code) {
        _ if certs.is_empty() => Outcome::Skipped("no holder certificate could be read".into()),
        None => Outcome::Pass,
        Some(c) => Outcome::Fail(format!(
            "certificate '{}' is not issued to national code {code}",
            c.subject()
        )),
    };
    checks.push(Check::new(nc_id, nc_name, national_code));
}

const ID_DECODE: &str = "EF.ID decodes as the applet spec defines";
const ID_CHECKS: [(&str, &str); 3] = [
    ("id.csn", "CSN in EF.ID equals the chip's CPLC CSN"),
    (
        "id.crn",
        "CRN in EF.ID equals the card's CRN (GET DATA DF72)",
    ),
    (
        "id.national-code",
        "National code in EF.ID equals the certificates' serialNumber",
    ),
];

/// INTERNAL AUTHENTICATE on a fresh random challenge, the answer checked
/// with the authentication certificate's key (spec §8.10).
fn active_authentication<T: Transport>(
    card: &mut Card<T>,
    auth: &Certificate,
) -> Result<Outcome, VerifyError> {
    let mut challenge = [0u8; CHALLENGE_LEN];
    SystemRandom::new()
        .fill(&mut challenge)
        .map_err(|_| VerifyError::Random)?;
    let cmd = crate::applet::internal_authenticate(&challenge).map_err(CardError::from)?;
    let response = card.send(&cmd)?;
    if !response.is_success() {
        return Ok(Outcome::Fail(format!(
            "the card refused INTERNAL AUTHENTICATE: {}",
            response.sw()
        )));
    }
    Ok(
        match verify_card_signature(auth, &challenge, response.data()) {
            Ok(()) => Outcome::Pass,
            Err(e) => Outcome::Fail(e.to_string()),
        },
    )
}
