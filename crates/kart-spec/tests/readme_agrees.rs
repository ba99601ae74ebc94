//! applets-spec/README.md and the TOML files must not disagree: every table
//! of the README equals, row for row, what the TOML files say, and every TOML
//! entry appears in the README.

use kart_spec::{Access, ChannelNeed, Spec};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

type Rows = BTreeSet<Vec<String>>;

/// Markdown tables of `text`, keyed by their header row.
fn tables(text: &str) -> HashMap<Vec<String>, Rows> {
    let mut out: HashMap<Vec<String>, Rows> = HashMap::new();
    let mut current: Option<(Vec<String>, Rows)> = None;
    for line in text.lines().chain(std::iter::once("")) {
        if let Some(cells) = line
            .trim()
            .strip_prefix('|')
            .and_then(|l| l.strip_suffix('|'))
        {
            let cells: Vec<String> = cells.split('|').map(|c| c.trim().to_owned()).collect();
            match &mut current {
                None => current = Some((cells, Rows::new())),
                Some(_)
                    if cells
                        .iter()
                        .all(|c| c.chars().all(|ch| ch == '-' || ch == ':')) => {}
                Some((_, rows)) => {
                    rows.insert(cells);
                }
            }
        } else if let Some((header, rows)) = current.take() {
            assert!(
                out.insert(header.clone(), rows).is_none(),
                "README has two tables with header {header:?}"
            );
        }
    }
    out
}

fn yn(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

fn access(a: Access) -> String {
    match a {
        Access::Always => "ALWAYS",
        Access::IdPin => "ID_PIN",
        Access::SignPin => "SIGN_PIN",
        Access::Sc => "SC",
        Access::Never => "NEVER",
    }
    .to_owned()
}

macro_rules! row {
    ($($cell:expr),* $(,)?) => { vec![$($cell.to_string()),*] };
}

// One block per README table; splitting it would scatter the tables.
#[allow(clippy::too_many_lines)]
fn expected(spec: &Spec) -> Vec<(Vec<&'static str>, Rows)> {
    let ap = &spec.applet;
    let mut v = Vec::new();
    v.push((
        vec!["Application", "AID"],
        [
            row![ap.card_manager.name, ap.card_manager.aid],
            row![
                format!("{} (default)", ap.applet.name),
                ap.applet.default_aid
            ],
        ]
        .into_iter()
        .collect(),
    ));
    v.push((
        vec!["State", "Code", "Allows"],
        ap.lifecycle
            .iter()
            .map(|l| row![l.name, l.code, l.allows])
            .collect(),
    ));
    v.push((
        vec!["From", "To", "Command", "P2"],
        ap.transitions
            .iter()
            .map(|t| row![t.from, t.to, t.command, t.p2])
            .collect(),
    ));
    v.push((
        vec![
            "Name",
            "FID",
            "Max size",
            "Read",
            "Write",
            "Mandatory",
            "Content",
        ],
        ap.files
            .iter()
            .map(|f| {
                row![
                    f.name,
                    f.fid,
                    f.max_size,
                    access(f.read),
                    access(f.write),
                    yn(f.mandatory),
                    f.content
                ]
            })
            .collect(),
    ));
    v.push((
        vec!["File", "Tag", "Name", "Min", "Max", "Encoding", "Required"],
        ap.tags
            .iter()
            .map(|t| {
                let enc = format!("{:?}", t.encoding);
                let enc = match enc.as_str() {
                    "AsciiDigits" => "ascii-digits".to_owned(),
                    other => other.to_lowercase(),
                };
                row![t.file, t.tag, t.name, t.min, t.max, enc, yn(t.required)]
            })
            .collect(),
    ));
    v.push((
        vec!["Tag", "Name", "Length", "GET", "PUT"],
        ap.data_objects
            .iter()
            .map(|d| row![d.tag, d.name, d.length, access(d.get), access(d.put)])
            .collect(),
    ));
    v.push((
        vec![
            "Name",
            "Reference",
            "Min length",
            "Max length",
            "Retries",
            "Purpose",
        ],
        ap.pins
            .iter()
            .map(|p| {
                row![
                    p.name,
                    p.reference,
                    p.min_length,
                    p.max_length,
                    p.retries,
                    p.purpose
                ]
            })
            .collect(),
    ));
    v.push((
        vec!["Name", "Reference", "Algorithm", "Used by"],
        ap.keys
            .iter()
            .map(|k| row![k.name, k.reference, k.algorithm, k.used_by])
            .collect(),
    ));
    v.push((
        vec![
            "Command",
            "CLA",
            "INS",
            "P1",
            "P2",
            "Secure channel",
            "Refused when locked",
            "Status words",
        ],
        ap.commands
            .iter()
            .map(|c| {
                let sc = match c.secure_channel {
                    ChannelNeed::None => "NONE",
                    ChannelNeed::CMac => "C-MAC",
                    ChannelNeed::CMacCDec => "C-MAC+C-DEC",
                };
                let sw: Vec<String> = c.sw.iter().map(ToString::to_string).collect();
                row![
                    c.name,
                    c.cla,
                    c.ins,
                    c.p1,
                    c.p2,
                    sc,
                    yn(c.refused_when_locked),
                    sw.join(" ")
                ]
            })
            .collect(),
    ));
    let general: Vec<String> = ap.general.sw.iter().map(ToString::to_string).collect();
    v.push((
        vec!["Status words any command may answer"],
        [vec![general.join(" ")]].into_iter().collect(),
    ));
    v.push((
        vec![
            "Profile",
            "Protocol",
            "ATR",
            "ATR mask",
            "Applet AID",
            "Max command data",
            "Max response data",
            "Extended length",
            "Chaining",
            "SCP",
            "i",
            "Key version",
            "Key length",
            "Diversification",
        ],
        spec.profiles
            .iter()
            .map(|p| {
                let sc = p.secure_channel;
                row![
                    p.id,
                    if p.protocol == kart_spec::Protocol::T0 {
                        "T=0"
                    } else {
                        "T=1"
                    },
                    p.atr,
                    p.atr_mask,
                    p.applet_aid,
                    p.limits.max_command_data,
                    p.limits.max_response_data,
                    yn(p.limits.extended_length),
                    yn(p.limits.chaining),
                    if sc.scp == kart_spec::Scp::Scp02 {
                        "SCP02"
                    } else {
                        "SCP03"
                    },
                    format!("{:02X}", sc.i),
                    format!("{:02X}", sc.key_version),
                    sc.key_length,
                    match sc.diversification {
                        kart_spec::Diversification::None => "none",
                        kart_spec::Diversification::EmvCps => "emv-cps",
                        kart_spec::Diversification::Visa2 => "visa2",
                        kart_spec::Diversification::Kdf3 => "kdf3",
                    },
                ]
            })
            .collect(),
    ));
    v.push((
        vec![
            "Profile",
            "GET RESPONSE needed",
            "Max read chunk",
            "Wrong Le answer",
            "Holder keys",
        ],
        spec.profiles
            .iter()
            .map(|p| {
                row![
                    p.id,
                    yn(p.quirks.get_response),
                    p.quirks.max_read_chunk,
                    if p.quirks.wrong_le == kart_spec::WrongLe::ExactLe {
                        "6CXX"
                    } else {
                        "6282"
                    },
                    match p.holder_key {
                        kart_spec::HolderKeyAlgorithm::EcP256 => "ec-p256",
                        kart_spec::HolderKeyAlgorithm::Rsa2048 => "rsa-2048",
                    },
                ]
            })
            .collect(),
    ));
    v.push((
        vec![
            "Profile",
            "Chip class",
            "Command µs",
            "Per byte µs",
            "Atomic write µs/256 B",
            "Plain write µs/256 B",
            "Cipher µs/256 B",
            "Signature ms",
            "Key generation median ms",
            "Key generation σ",
            "Key generation cap ms",
            "First key generation ×",
        ],
        spec.profiles
            .iter()
            .map(|p| {
                let l = p.latency;
                row![
                    p.id,
                    match l.chip_class {
                        kart_spec::ChipClass::Fast => "fast",
                        kart_spec::ChipClass::Mid => "mid",
                        kart_spec::ChipClass::Slow => "slow",
                    },
                    l.command_us,
                    l.per_byte_us,
                    l.atomic_write_per_256_us,
                    l.plain_write_per_256_us,
                    l.cipher_per_256_us,
                    l.sign_ms,
                    l.keygen.median_ms,
                    l.keygen.sigma,
                    l.keygen.cap_ms,
                    l.keygen.first_call_factor,
                ]
            })
            .collect(),
    ));
    v
}

#[test]
fn readme_tables_equal_the_toml_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../applets-spec");
    let spec = Spec::load(&dir).unwrap();
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let mut found = tables(&readme);
    for (header, want) in expected(&spec) {
        let header: Vec<String> = header.into_iter().map(str::to_owned).collect();
        let got = found
            .remove(&header)
            .unwrap_or_else(|| panic!("README lacks the table {header:?}"));
        let missing: Vec<_> = want.difference(&got).collect();
        let extra: Vec<_> = got.difference(&want).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "table {header:?}:\n in TOML, not README: {missing:?}\n in README, not TOML: {extra:?}"
        );
    }
    assert!(
        found.is_empty(),
        "README tables with no TOML counterpart: {:?}",
        found.keys().collect::<Vec<_>>()
    );
}

#[test]
fn every_conformance_clause_exists_in_the_readme() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../applets-spec");
    let spec = Spec::load(&dir).unwrap();
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    for c in &spec.conformance.checks {
        let heading = if c.clause.contains('.') {
            format!("### {} ", c.clause)
        } else {
            format!("## {}. ", c.clause)
        };
        assert!(
            readme.contains(&heading),
            "{} cites clause {} which README.md does not have",
            c.id,
            c.clause
        );
    }
}

#[test]
fn every_status_word_in_the_toml_is_explained_in_the_readme() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../applets-spec");
    let spec = Spec::load(&dir).unwrap();
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let meanings = readme
        .split("Status word meanings")
        .nth(1)
        .unwrap_or_default();
    for c in spec
        .applet
        .commands
        .iter()
        .map(|c| &c.sw)
        .chain([&spec.applet.general.sw])
    {
        for sw in c {
            assert!(
                meanings.contains(&format!("`{sw}`")),
                "status word {sw} has no meaning in README.md"
            );
        }
    }
}
