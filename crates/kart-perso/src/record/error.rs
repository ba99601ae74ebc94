//! Errors of record loading: per-field problems, per-record errors with the
//! line number, and batch-level errors.

use kart_spec::input::quote;
use std::fmt;
use std::path::PathBuf;

use super::TrackingCode;

/// A field of a batch record; its name is the CSV column and JSON key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// `tracking_code`
    TrackingCode,
    /// `national_code`
    NationalCode,
    /// `given_name_fa`
    GivenNameFa,
    /// `family_name_fa`
    FamilyNameFa,
    /// `father_name_fa`
    FatherNameFa,
    /// `given_name_en`
    GivenNameEn,
    /// `family_name_en`
    FamilyNameEn,
    /// `father_name_en`
    FatherNameEn,
    /// `birth_date`
    BirthDate,
    /// `gender`
    Gender,
    /// `pin` (optional)
    Pin,
    /// `photo`
    Photo,
    /// `fingerprint` (optional)
    Fingerprint,
    /// `replacement` (optional): `yes` when this application replaces the
    /// holder's earlier card, `no` or empty otherwise
    Replacement,
}

impl Field {
    /// Every field, in the canonical column order.
    pub const ALL: [Field; 14] = [
        Field::TrackingCode,
        Field::NationalCode,
        Field::GivenNameFa,
        Field::FamilyNameFa,
        Field::FatherNameFa,
        Field::GivenNameEn,
        Field::FamilyNameEn,
        Field::FatherNameEn,
        Field::BirthDate,
        Field::Gender,
        Field::Pin,
        Field::Photo,
        Field::Fingerprint,
        Field::Replacement,
    ];

    /// The column / key name.
    pub fn name(self) -> &'static str {
        match self {
            Field::TrackingCode => "tracking_code",
            Field::NationalCode => "national_code",
            Field::GivenNameFa => "given_name_fa",
            Field::FamilyNameFa => "family_name_fa",
            Field::FatherNameFa => "father_name_fa",
            Field::GivenNameEn => "given_name_en",
            Field::FamilyNameEn => "family_name_en",
            Field::FatherNameEn => "father_name_en",
            Field::BirthDate => "birth_date",
            Field::Gender => "gender",
            Field::Pin => "pin",
            Field::Photo => "photo",
            Field::Fingerprint => "fingerprint",
            Field::Replacement => "replacement",
        }
    }

    /// Looks a field up by its column / key name.
    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Optional fields may be absent or empty.
    pub fn is_optional(self) -> bool {
        matches!(self, Field::Pin | Field::Fingerprint | Field::Replacement)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What is wrong with one value. Messages never quote a PIN.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// A required field is absent or blank.
    #[error("is missing; every record needs it")]
    Missing,
    /// The value is empty after trimming.
    #[error("is empty")]
    Empty,
    /// Wrong number of digits.
    #[error("has {found} characters, expected {expected} digits")]
    WrongLength {
        /// Characters found.
        found: usize,
        /// Digits expected.
        expected: usize,
    },
    /// A character that is not a digit.
    #[error(
        "character {position} is {found:?}, expected a digit (ASCII, Persian or Arabic-Indic)"
    )]
    NotDigit {
        /// The offending character.
        found: char,
        /// 1-based position.
        position: usize,
    },
    /// Check digit mismatch.
    #[error("check digit is {found}, expected {expected}")]
    CheckDigit {
        /// The check digit in the value.
        found: u8,
        /// The check digit the other digits call for.
        expected: u8,
    },
    /// All ten digits are the same (formally valid, never issued).
    #[error("all digits are the same ({digit}); this is a placeholder, not a real national code")]
    AllSameDigit {
        /// The repeated digit.
        digit: char,
    },
    /// A Latin letter in a Persian field.
    #[error(
        "character {position} is the Latin letter {found:?}; this field takes Persian script only"
    )]
    LatinInPersian {
        /// The offending character.
        found: char,
        /// 1-based position.
        position: usize,
    },
    /// Something other than a Persian letter, space or ZWNJ.
    #[error("character {position} is {found:?} (U+{code:04X}), not allowed in a Persian name", code = u32::from(*found))]
    NotPersianLetter {
        /// The offending character.
        found: char,
        /// 1-based position.
        position: usize,
    },
    /// A Persian/Arabic character in a Latin field.
    #[error("character {position} is the Persian/Arabic character {found:?}; this field takes Latin letters only")]
    PersianInLatin {
        /// The offending character.
        found: char,
        /// 1-based position.
        position: usize,
    },
    /// Something other than A–Z, a–z, space, hyphen or apostrophe.
    #[error("character {position} is {found:?} (U+{code:04X}); Latin names take A-Z, a-z, space, '-' and ''' only", code = u32::from(*found))]
    NotLatinLetter {
        /// The offending character.
        found: char,
        /// 1-based position.
        position: usize,
    },
    /// Longer than the spec allows.
    #[error("is {bytes} bytes in UTF-8, at most {max} allowed by the applet spec")]
    TooLong {
        /// Actual length in bytes.
        bytes: usize,
        /// Allowed length.
        max: usize,
    },
    /// Not of the form YYYY/MM/DD.
    #[error("{:?} is not a Solar Hijri date of the form YYYY/MM/DD (e.g. 1399/05/19)", quote(.found))]
    DateFormat {
        /// The value (dates are not secret).
        found: String,
    },
    /// No such day in the Solar Hijri calendar.
    #[error("{year:04}/{month:02}/{day:02} does not exist in the Solar Hijri calendar")]
    NoSuchDate {
        /// Year.
        year: i32,
        /// Month.
        month: u8,
        /// Day.
        day: u8,
    },
    /// A birth date after today.
    #[error("{date} is in the future")]
    FutureDate {
        /// The date, Solar Hijri.
        date: String,
    },
    /// A birth date too long ago.
    #[error("{date} is more than 130 years ago; check the year")]
    ImplausiblyOld {
        /// The date, Solar Hijri.
        date: String,
    },
    /// Gender not M, F or X.
    #[error("{:?} is not a gender code; use M (male), F (female) or X (unspecified)", quote(.found))]
    Gender {
        /// The value found.
        found: String,
    },
    /// PIN of the wrong shape; the PIN itself is never shown.
    #[error("must be {min} to {max} digits (value not shown: it is secret)")]
    PinFormat {
        /// Fewest digits.
        min: usize,
        /// Most digits.
        max: usize,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {reason}")]
    File {
        /// The resolved path.
        path: PathBuf,
        /// The I/O error text.
        reason: String,
    },
    /// A file is larger than the spec allows.
    #[error("{path} is {bytes} bytes, at most {max} allowed by the applet spec")]
    FileTooLarge {
        /// The resolved path.
        path: PathBuf,
        /// Its size.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// The photo is not a complete JPEG.
    #[error("{path} is not a complete JPEG: {reason}")]
    NotJpeg {
        /// The resolved path.
        path: PathBuf,
        /// What is wrong (missing SOI or EOI marker).
        reason: &'static str,
    },
    /// A JSON value that is not a string.
    #[error("must be a JSON string")]
    NotString,
    /// A JSON key that no field has.
    #[error("is not a known field (known: tracking_code, national_code, given_name_fa, family_name_fa, father_name_fa, given_name_en, family_name_en, father_name_en, birth_date, gender, pin, photo, fingerprint, replacement)")]
    UnknownField,
    /// The line itself is malformed (bad JSON, wrong number of CSV fields).
    #[error("{0}")]
    Syntax(String),
    /// A photo or fingerprint path that leads out of the folder allowed for
    /// them (the batch file's folder, or the configured photo root).
    #[error("{path} is outside {folder}; photos and fingerprints must be in the batch file's folder (or set photo_root in kart.toml)")]
    OutsideFolder {
        /// The resolved path.
        path: PathBuf,
        /// The folder allowed.
        folder: PathBuf,
    },
    /// `replacement` is neither `yes` nor `no`.
    #[error("{found:?} is not yes or no")]
    YesNo {
        /// The value found.
        found: String,
    },
    /// Another row of the same batch has the same tracking code: both are rejected.
    #[error("is also on line {other_line}; both rows are rejected — give each application its own tracking code")]
    DuplicateTrackingCode {
        /// The other row's line.
        other_line: u64,
    },
    /// The tracking code belongs to an application of another batch.
    #[error("{tracking} is already {}; not queued again", known_as(.state, .card_serial.as_deref(), .batch))]
    KnownFromOtherBatch {
        /// The tracking code.
        tracking: TrackingCode,
        /// The batch that has it.
        batch: String,
        /// Its state there (`verified`, `queued`, …).
        state: String,
        /// Its card, if one was written.
        card_serial: Option<String>,
    },
    /// The holder already has a live application and this row is no replacement.
    #[error("{national_code} already has a live application {tracking} ({state}, batch {batch}); if this card replaces that one, set replacement=yes")]
    NationalCodeLive {
        /// The national code.
        national_code: String,
        /// The earlier application.
        tracking: TrackingCode,
        /// Its state.
        state: String,
        /// Its batch.
        batch: String,
    },
    /// A replacement of an application whose card is being written now.
    #[error("replaces application {tracking}, whose card {card_serial} is being written ({state}); let it finish, or close it with `kart spoil`, then load the batch again")]
    ReplacesUnfinished {
        /// The earlier application.
        tracking: TrackingCode,
        /// Its state (`claimed`, `writing` or `written`).
        state: String,
        /// Its card.
        card_serial: String,
    },
    /// A re-run: the row was rejected when its batch was first loaded, and
    /// its application stays failed.
    #[error("was rejected when this batch was first loaded, and stays so: {reason}")]
    RejectedBefore {
        /// The reason recorded then.
        reason: String,
    },
    /// Reading the batch stopped here.
    #[error("reading the batch failed here: {0}; the rest of the file was not read")]
    Read(String),
}

/// One problem with one field (or with the whole line when `field` is `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field, or `None` for a problem with the line as a whole.
    pub field: Option<Field>,
    /// For [`Problem::UnknownField`], the key as written.
    pub key: Option<String>,
    /// What is wrong.
    pub problem: Problem,
}

/// Everything wrong with one record, with its line number (1-based; for a
/// CSV record spanning lines, the line it starts on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordError {
    /// The line number in the batch file.
    pub line: u64,
    /// The record's tracking code when that field itself is valid, so the
    /// rejection can be recorded against its application; `None` when the
    /// code is missing or invalid, or the line could not be read as a record.
    pub tracking_code: Option<TrackingCode>,
    /// One entry per problem, never empty.
    pub problems: Vec<FieldError>,
}

impl RecordError {
    pub(crate) fn line_problem(line: u64, problem: Problem) -> Self {
        RecordError {
            line,
            tracking_code: None,
            problems: vec![FieldError {
                field: None,
                key: None,
                problem,
            }],
        }
    }

    /// One message per problem, each of the form
    /// `line 7, national_code: check digit is 3, expected 5`.
    pub fn messages(&self) -> impl Iterator<Item = String> + '_ {
        self.problems.iter().map(move |p| match (&p.key, p.field) {
            (Some(key), _) => format!("line {}, {}: {}", self.line, quote(key), p.problem),
            (None, Some(field)) => format!("line {}, {field}: {}", self.line, p.problem),
            (None, None) => format!("line {}: {}", self.line, p.problem),
        })
    }

    /// True when the problem list names `field`.
    pub fn has(&self, field: Field) -> bool {
        self.problems.iter().any(|p| p.field == Some(field))
    }
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let messages: Vec<String> = self.messages().collect();
        f.write_str(&messages.join("; "))
    }
}

impl std::error::Error for RecordError {}

/// A problem with the batch as a whole: nothing in it can be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// The file cannot be opened.
    #[error("cannot open batch file {path}: {source}")]
    Open {
        /// The path given.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The path is no regular file (a FIFO, a device, a directory).
    #[error("batch {0}")]
    NotRegular(kart_spec::input::ReadError),
    /// The file name says neither CSV nor JSON Lines.
    #[error("cannot tell the format of {path}: name it *.csv or *.jsonl (JSON Lines)")]
    UnknownFormat {
        /// The path given.
        path: PathBuf,
    },
    /// The CSV header row cannot be read.
    #[error("cannot read the CSV header row: {0}")]
    Header(String),
    /// The CSV header names unknown columns or lacks required ones.
    #[error("bad CSV header: missing columns [{}], unknown columns [{}], repeated columns [{}]; expected columns: {}", .missing.join(", "), quote_all(.unknown), quote_all(.repeated), expected_columns())]
    BadHeader {
        /// Required columns not present.
        missing: Vec<String>,
        /// Columns that are no field.
        unknown: Vec<String>,
        /// Columns given twice.
        repeated: Vec<String>,
    },
}

fn known_as(state: &str, card_serial: Option<&str>, batch: &str) -> String {
    match (state, card_serial) {
        ("verified", Some(card)) => format!("issued on card {card} (batch {batch})"),
        (state, Some(card)) => format!("{state} on card {card} in batch {batch}"),
        (state, None) => format!("{state} in batch {batch}"),
    }
}

/// Column names as found, each quoted at most 100 characters, and at most
/// 100 characters of them in all.
fn quote_all(columns: &[String]) -> String {
    quote(
        &columns
            .iter()
            .map(|c| quote(c))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

fn expected_columns() -> String {
    Field::ALL
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(",")
}
