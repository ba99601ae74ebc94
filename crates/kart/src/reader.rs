//! Reader selection: `--reader` values to real PC/SC readers or built-in
//! simulated cards, and opening the card in each.
//!
//! Syntax of a `--reader` value:
//! - `NAME` — a PC/SC reader: its exact name, or a part of it that matches
//!   only one reader (`kart readers` lists them);
//! - `all` — every PC/SC reader, with a card or not (a station waits for
//!   cards in the empty ones);
//! - `sim:PROFILE` — one simulated card of a vendor profile (`sim:vendor-a`);
//! - `sim:PROFILE*N` — N of them (`sim:vendor-a*4`), each in its own reader;
//! - `sim:all` / `sim:all*N` — one (or N) of every vendor profile.
//!
//! Without `--reader`, every PC/SC reader holding a card is used.
//! Simulated cards live inside this kart process: they start blank
//! (`PRE_PERSONALIZED`) every time and are gone when the command ends —
//! unless `--sim-dir` keeps them between commands (`crate::simstore`).

use crate::error::{CliError, Kind};
use kart_apdu::Transport;
use kart_pcsc::{ConnectOptions, Pcsc, Share};
use kart_sim::SimConfig;
use kart_spec::{Profile, Protocol, Spec};

/// Most simulated cards one `sim:` value may ask for.
const MAX_SIM_CARDS: usize = 256;

/// Where a card comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A PC/SC reader, by its full name.
    Pcsc(String),
    /// A simulated card of a profile; `index` tells its readers apart.
    Sim {
        /// The vendor profile the card follows.
        profile: Box<Profile>,
        /// 1, 2, … among the cards of the same profile.
        index: usize,
    },
}

impl Source {
    /// The reader's display name (`sim:vendor-a#2` for a simulated card).
    pub fn name(&self) -> String {
        match self {
            Source::Pcsc(name) => name.clone(),
            Source::Sim { profile, index } => format!("sim:{}#{index}", profile.id),
        }
    }

    /// Whether the card is simulated.
    pub fn is_simulated(&self) -> bool {
        matches!(self, Source::Sim { .. })
    }
}

/// A card opened in its reader.
pub struct OpenCard {
    /// The reader's display name.
    pub reader: String,
    /// The card's Answer To Reset.
    pub atr: Vec<u8>,
    /// `T=0` or `T=1`.
    pub protocol: &'static str,
    /// The raw APDU transport to the card.
    pub transport: Box<dyn Transport + Send>,
}

impl std::fmt::Debug for OpenCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenCard")
            .field("reader", &self.reader)
            .field("atr", &hex::encode_upper(&self.atr))
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

/// Parses `sim:PROFILE[*N]` into the profile ids and count; `None` if the
/// value is not a `sim:` value.
fn parse_sim(value: &str) -> Option<(&str, &str)> {
    let rest = value.strip_prefix("sim:")?;
    Some(rest.split_once('*').unwrap_or((rest, "1")))
}

/// Resolves `--reader` values (none: every PC/SC reader with a card).
pub fn resolve(values: &[String], spec: &Spec) -> Result<Vec<Source>, CliError> {
    let mut sources = Vec::new();
    let mut pcsc: Option<Vec<kart_pcsc::ReaderInfo>> = None;
    let mut pcsc_readers = || -> Result<Vec<kart_pcsc::ReaderInfo>, CliError> {
        if let Some(r) = &pcsc {
            return Ok(r.clone());
        }
        let r = Pcsc::establish()?.readers()?;
        pcsc = Some(r.clone());
        Ok(r)
    };
    if values.is_empty() {
        return with_cards(&pcsc_readers()?, spec);
    }
    for value in values {
        if let Some((id, count)) = parse_sim(value) {
            sources.extend(sim_sources(value, id, count, spec)?);
        } else if value == "all" {
            let readers = pcsc_readers()?;
            if readers.is_empty() {
                return Err(no_readers(spec));
            }
            sources.extend(readers.into_iter().map(|r| Source::Pcsc(r.name)));
        } else {
            let readers = pcsc_readers()?;
            sources.push(Source::Pcsc(match_reader(value, &readers, spec)?));
        }
    }
    Ok(sources)
}

/// Resolves exactly one reader (for commands that work on one card).
pub fn resolve_one(values: &[String], spec: &Spec) -> Result<Source, CliError> {
    let mut sources = resolve(values, spec)?;
    if sources.len() > 1 {
        let names: Vec<String> = sources.iter().map(Source::name).collect();
        return Err(CliError::with_hint(
            Kind::Usage,
            format!(
                "this command works on one card, but {} readers were selected ({})",
                names.len(),
                names.join(", ")
            ),
            "choose one with --reader NAME",
        ));
    }
    sources
        .pop()
        .ok_or_else(|| CliError::with_hint(Kind::Reader, "no reader selected", sim_hint(spec)))
}

fn sim_sources(value: &str, id: &str, count: &str, spec: &Spec) -> Result<Vec<Source>, CliError> {
    let n: usize = count
        .parse()
        .ok()
        .filter(|n| (1..=MAX_SIM_CARDS).contains(n))
        .ok_or_else(|| {
            CliError::with_hint(
                Kind::Usage,
                format!(
                    "'{}': the count after '*' must be a number from 1 to {MAX_SIM_CARDS}",
                    kart_spec::input::quote(value)
                ),
                "write e.g. --reader sim:vendor-a*4",
            )
        })?;
    let profiles: Vec<&Profile> = if id == "all" {
        spec.profiles.iter().collect()
    } else {
        vec![spec.profile(id).ok_or_else(|| {
            CliError::with_hint(
                Kind::Reader,
                format!(
                    "unknown simulated reader '{}': there is no vendor profile '{}'",
                    kart_spec::input::quote(value),
                    kart_spec::input::quote(id)
                ),
                sim_hint(spec),
            )
        })?]
    };
    Ok(profiles
        .into_iter()
        .flat_map(|p| {
            (1..=n).map(move |index| Source::Sim {
                profile: Box::new(p.clone()),
                index,
            })
        })
        .collect())
}

fn sim_hint(spec: &Spec) -> String {
    let ids: Vec<&str> = spec.profiles.iter().map(|p| p.id.as_str()).collect();
    format!(
        "use a PC/SC reader name (see `kart readers`), or a simulated card: sim:all, sim:PROFILE or sim:PROFILE*N with PROFILE one of {}",
        ids.join(", ")
    )
}

fn no_readers(spec: &Spec) -> CliError {
    CliError::with_hint(
        Kind::Reader,
        "no smart-card reader is connected",
        format!("plug one in, or {}", sim_hint(spec)),
    )
}

fn with_cards(readers: &[kart_pcsc::ReaderInfo], spec: &Spec) -> Result<Vec<Source>, CliError> {
    if readers.is_empty() {
        return Err(no_readers(spec));
    }
    let found: Vec<Source> = readers
        .iter()
        .filter(|r| r.card.has_card())
        .map(|r| Source::Pcsc(r.name.clone()))
        .collect();
    if found.is_empty() {
        return Err(CliError::with_hint(
            Kind::Card,
            format!(
                "no card in any reader ({})",
                readers
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "insert a card",
        ));
    }
    Ok(found)
}

/// The reader named `value`: exact name, else the only one containing it
/// (case-insensitive).
fn match_reader(
    value: &str,
    readers: &[kart_pcsc::ReaderInfo],
    spec: &Spec,
) -> Result<String, CliError> {
    if let Some(r) = readers.iter().find(|r| r.name == value) {
        return Ok(r.name.clone());
    }
    let needle = value.to_lowercase();
    let partial: Vec<&str> = readers
        .iter()
        .map(|r| r.name.as_str())
        .filter(|n| n.to_lowercase().contains(&needle))
        .collect();
    match partial.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => {
            let known: Vec<&str> = readers.iter().map(|r| r.name.as_str()).collect();
            let known = if known.is_empty() {
                "no PC/SC reader is connected".to_owned()
            } else {
                format!("known readers: {}", known.join(", "))
            };
            Err(CliError::with_hint(
                Kind::Reader,
                format!(
                    "unknown reader '{}' ({known})",
                    kart_spec::input::quote(value)
                ),
                sim_hint(spec),
            ))
        }
        many => Err(CliError::with_hint(
            Kind::Usage,
            format!(
                "reader '{value}' matches {} readers: {}",
                many.len(),
                many.join(", ")
            ),
            "give more of the name",
        )),
    }
}

/// Opens the card of `source`. A simulated card gets `config` (serial and
/// issuer master key) when given, else a random serial and the GP test key.
pub fn open(
    source: &Source,
    share: Share,
    config: Option<&SimConfig>,
) -> Result<OpenCard, CliError> {
    match source {
        Source::Pcsc(name) => {
            let conn = Pcsc::establish()?.connect(
                name,
                ConnectOptions {
                    share,
                    ..ConnectOptions::default()
                },
            )?;
            Ok(OpenCard {
                reader: name.clone(),
                atr: conn.atr().to_vec(),
                protocol: match conn.protocol() {
                    kart_pcsc::Protocol::T0 => "T=0",
                    kart_pcsc::Protocol::T1 => "T=1",
                },
                transport: Box::new(conn),
            })
        }
        Source::Sim { profile, .. } => {
            let card = crate::simstore::open_card(&source.name(), profile, config)?;
            Ok(OpenCard {
                reader: source.name(),
                atr: profile.atr.bytes().to_vec(),
                protocol: protocol_name(profile.protocol),
                transport: Box::new(card),
            })
        }
    }
}

/// `T=0` / `T=1`.
pub fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::T0 => "T=0",
        Protocol::T1 => "T=1",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec::embedded().unwrap()
    }

    #[test]
    fn sim_values_expand_to_one_reader_per_card() {
        let spec = spec();
        let names: Vec<String> = resolve(&["sim:vendor-b*3".into()], &spec)
            .unwrap()
            .iter()
            .map(Source::name)
            .collect();
        assert_eq!(
            names,
            ["sim:vendor-b#1", "sim:vendor-b#2", "sim:vendor-b#3"]
        );
        let all = resolve(&["sim:all".into()], &spec).unwrap();
        assert_eq!(all.len(), spec.profiles.len());
        assert!(all.iter().all(Source::is_simulated));
    }

    #[test]
    fn unknown_profile_is_a_reader_error_that_lists_the_profiles() {
        let e = resolve(&["sim:vendor-z".into()], &spec()).unwrap_err();
        assert_eq!(e.kind, Kind::Reader);
        assert!(e.hint.contains("vendor-a"), "{e}");
    }

    #[test]
    fn bad_counts_are_usage_errors() {
        for v in ["sim:vendor-a*0", "sim:vendor-a*x", "sim:vendor-a*100000"] {
            let e = resolve(&[v.into()], &spec()).unwrap_err();
            assert_eq!(e.kind, Kind::Usage, "{v}");
        }
    }

    #[test]
    fn reader_names_match_exactly_or_by_a_unique_part() {
        let readers: Vec<kart_pcsc::ReaderInfo> =
            ["ACS ACR39U 00 00", "kart vpcd 0 00 00", "kart vpcd 0 00 01"]
                .iter()
                .map(|n| kart_pcsc::ReaderInfo {
                    name: (*n).into(),
                    card: kart_pcsc::CardState::Absent,
                    atr: Vec::new(),
                })
                .collect();
        let spec = spec();
        assert_eq!(
            match_reader("acr39", &readers, &spec).unwrap(),
            "ACS ACR39U 00 00"
        );
        assert_eq!(
            match_reader("kart vpcd 0 00 01", &readers, &spec).unwrap(),
            "kart vpcd 0 00 01"
        );
        assert_eq!(
            match_reader("vpcd", &readers, &spec).unwrap_err().kind,
            Kind::Usage
        );
        let unknown = match_reader("omnikey", &readers, &spec).unwrap_err();
        assert_eq!(unknown.kind, Kind::Reader);
        assert!(unknown.what.contains("ACS ACR39U"), "{unknown}");
    }
}
