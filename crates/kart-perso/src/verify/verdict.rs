//! The verdict: a list of named checks with their outcomes.

use std::fmt;

use serde::Serialize;

use crate::read::CardContent;

/// Outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", content = "reason", rename_all = "lowercase")]
pub enum Outcome {
    /// The check passed.
    Pass,
    /// The check failed, with the reason.
    Fail(String),
    /// The check was not run, with the reason.
    Skipped(String),
}

/// One check of the verification.
///
/// ```
/// use kart_perso::verify::{Check, Outcome};
/// let check = Check {
///     id: "aa".into(),
///     name: "Active authentication".into(),
///     required: true,
///     outcome: Outcome::Fail("the card refused INTERNAL AUTHENTICATE".into()),
/// };
/// assert!(check.failed());
/// assert_eq!(
///     serde_json::to_string(&check)?,
///     r#"{"id":"aa","name":"Active authentication","required":true,"result":"fail","reason":"the card refused INTERNAL AUTHENTICATE"}"#
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable identifier for scripts (`sod.signature`, `hash.0101`, `aa`).
    pub id: String,
    /// What the check establishes, for humans.
    pub name: String,
    /// Whether the card is genuine only if this check passes.
    pub required: bool,
    /// Its outcome.
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl Check {
    pub(crate) fn new(id: impl Into<String>, name: impl Into<String>, outcome: Outcome) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            required: true,
            outcome,
        }
    }

    /// Marks the check optional: a skip does not count against the card.
    pub(crate) fn optional(mut self) -> Self {
        self.required = false;
        self
    }

    /// Whether it passed.
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Pass
    }

    /// Whether it failed.
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Fail(_))
    }
}

/// The result of verifying a card: see [`verify_card`](super::verify_card)
/// for an example. Serializes as its fields plus `"genuine"`.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Vendor profile of the card.
    pub profile: String,
    /// Card serial number, hex.
    pub csn: String,
    /// CRN from GET DATA, when set.
    pub crn: Option<String>,
    /// Life-cycle state.
    pub lifecycle: String,
    /// Every check, in the order run.
    pub checks: Vec<Check>,
    /// Everything read from the card (not serialized: it holds the photo and
    /// the holder's data).
    pub content: CardContent,
}

impl Serialize for Verdict {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'a> {
            genuine: bool,
            profile: &'a str,
            csn: &'a str,
            crn: Option<&'a str>,
            lifecycle: &'a str,
            checks: &'a [Check],
        }
        Json {
            genuine: self.is_genuine(),
            profile: &self.profile,
            csn: &self.csn,
            crn: self.crn.as_deref(),
            lifecycle: &self.lifecycle,
            checks: &self.checks,
        }
        .serialize(s)
    }
}

impl Verdict {
    /// True only when every required check passed and no check failed.
    ///
    /// Checks that need the ID PIN are optional: without a PIN the chip can
    /// still be proven genuine (signed certificates, active authentication)
    /// while the identity data stays unchecked — see [`Verdict::skipped`].
    /// A wrong PIN is a failed check, so the verdict is then not genuine.
    pub fn is_genuine(&self) -> bool {
        self.checks
            .iter()
            .all(|c| !c.failed() && (c.passed() || !c.required))
    }

    /// The check with id `id`.
    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.failed())
    }

    /// The checks that were not run.
    pub fn skipped(&self) -> impl Iterator<Item = &Check> {
        self.checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Skipped(_)))
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "card {} CSN {} CRN {} lifecycle {}",
            self.profile,
            self.csn,
            self.crn.as_deref().unwrap_or("(none)"),
            self.lifecycle
        )?;
        for c in &self.checks {
            let (mark, reason) = match &c.outcome {
                Outcome::Pass => ("PASS", None),
                Outcome::Fail(r) => ("FAIL", Some(r)),
                Outcome::Skipped(r) => ("SKIP", Some(r)),
            };
            write!(f, "  {mark}  {:<17} {}", c.id, c.name)?;
            match reason {
                Some(r) => writeln!(f, ": {r}")?,
                None => writeln!(f)?,
            }
        }
        let failed = self.failures().count();
        let skipped = self.skipped().count();
        if self.is_genuine() && skipped > 0 {
            write!(f, "verdict: GENUINE ({skipped} optional check(s) not run)")
        } else if self.is_genuine() {
            write!(f, "verdict: GENUINE")
        } else if failed > 0 {
            write!(f, "verdict: NOT GENUINE ({failed} check(s) failed)")
        } else {
            write!(f, "verdict: NOT GENUINE (required checks were not run)")
        }
    }
}
