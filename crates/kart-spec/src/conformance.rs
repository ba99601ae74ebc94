//! The QA conformance catalogue: `conformance.toml`.

use crate::error::SpecError;
use serde::Deserialize;
use std::collections::HashSet;

/// Areas a check id may start with.
pub const AREAS: [&str; 11] = [
    "ATR", "APDU", "SC", "AC", "PIN", "KEY", "RND", "ATOM", "DATA", "TIME", "GP",
];

/// One conformance check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// `<AREA>-<NNN>`, e.g. `PIN-016`.
    pub id: String,
    /// Short title.
    pub title: String,
    /// Clause of `applets-spec/README.md` it tests.
    pub clause: String,
    /// What the QA suite does.
    pub procedure: String,
    /// What makes it pass.
    pub pass: String,
}

impl Check {
    /// The area part of the id (`PIN`).
    pub fn area(&self) -> &str {
        self.id.split('-').next().unwrap_or_default()
    }
}

/// `conformance.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conformance {
    /// The checks, in order.
    pub checks: Vec<Check>,
}

impl Conformance {
    /// The check with id `id`.
    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }

    pub(crate) fn validate(&self, file: &str) -> Result<(), SpecError> {
        let mut numbers = HashSet::new();
        for (i, c) in self.checks.iter().enumerate() {
            let field = format!("checks[{i}].id");
            let (area, num) = c.id.split_once('-').unwrap_or(("", ""));
            if !AREAS.contains(&area) || num.len() != 3 || !num.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(SpecError::invalid(
                    file,
                    field,
                    format!(
                        "`{}` is not <AREA>-<NNN> with AREA one of {}",
                        crate::input::quote(&c.id),
                        AREAS.join(", ")
                    ),
                ));
            }
            if !numbers.insert(num.to_owned()) {
                return Err(SpecError::invalid(
                    file,
                    field,
                    format!(
                        "number {num} of `{}` is already used",
                        crate::input::quote(&c.id)
                    ),
                ));
            }
            if [&c.title, &c.clause, &c.procedure, &c.pass]
                .iter()
                .any(|s| s.trim().is_empty())
            {
                return Err(SpecError::invalid(
                    file,
                    format!("checks[{i}]"),
                    format!(
                        "`{}` has an empty title, clause, procedure or pass",
                        crate::input::quote(&c.id)
                    ),
                ));
            }
        }
        Ok(())
    }
}
