//! Identity records: the model, its validation, and streaming batch loading.
//!
//! A batch is a CSV file (header row) or a JSON Lines file, one application
//! per record, with these fields (column names = JSON keys):
//!
//! | field | content |
//! |---|---|
//! | `tracking_code` | 12 digits from the receipt, Luhn check digit ([`TrackingCode`]) |
//! | `national_code` | 10 digits with the mod-11 check digit ([`NationalCode`]) |
//! | `given_name_fa`, `family_name_fa`, `father_name_fa` | Persian script ([`PersianText`]) |
//! | `given_name_en`, `family_name_en`, `father_name_en` | Latin letters ([`LatinText`]) |
//! | `birth_date` | Solar Hijri `YYYY/MM/DD` ([`SolarDate`]) |
//! | `gender` | `M` (male), `F` (female) or `X` (unspecified) ([`Gender`]) |
//! | `pin` | optional, 4–8 digits, secret ([`Pin`]) |
//! | `photo` | JPEG path, relative to the batch file ([`Photo`]) |
//! | `fingerprint` | optional template path, relative to the batch file |
//! | `replacement` | optional, `yes` when the application replaces the holder's earlier card (`no` or empty otherwise) |
//!
//! Photo and fingerprint paths resolve relative to the batch file and must
//! stay inside its folder (symbolic links resolved), unless a photo root is
//! given ([`Batch::open_confined`]): then they must be inside that folder.
//!
//! Persian and Arabic-Indic digits are accepted everywhere digits are.
//!
//! ```no_run
//! use kart_perso::record::Batch;
//! for item in Batch::open("batch-2025-11-25.csv")? {
//!     match item {
//!         Ok(record) => println!("{} ok", record.tracking_code),
//!         Err(bad) => eprintln!("{bad}"), // e.g. "line 7, national_code: check digit is 3, expected 5"
//!     }
//! }
//! # Ok::<(), kart_perso::record::BatchError>(())
//! ```

mod codes;
mod date;
mod error;
pub mod limits;
mod loader;
mod photo;
mod secret;
mod text;

use std::path::{Path, PathBuf};

pub use codes::{luhn_check_digit, NationalCode, TrackingCode};
pub use date::SolarDate;
pub use error::{BatchError, Field, FieldError, Problem, RecordError};
pub use loader::{Batch, BatchFormat, Records};
pub use photo::Photo;
pub use secret::Pin;
pub use text::{normalize_digits, normalize_latin, normalize_persian, LatinText, PersianText};

use limits::OLDEST_BIRTH_DAYS;

/// The holder's gender as printed on the card.
///
/// Batch and card encoding (applet spec, tag CA): `M` = male, `F` = female,
/// `X` = unspecified (the ICAO 9303 letters); lower case is accepted on input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Gender {
    /// `M`
    Male,
    /// `F`
    Female,
    /// `X`
    Unspecified,
}

impl Gender {
    /// Parses `M`, `F` or `X` (either case, surrounding space ignored).
    ///
    /// ```
    /// use kart_perso::record::Gender;
    /// assert_eq!(Gender::parse(" f").unwrap(), Gender::Female);
    /// assert!(Gender::parse("Male").is_err());
    /// ```
    pub fn parse(raw: &str) -> Result<Self, Problem> {
        match raw.trim() {
            "M" | "m" => Ok(Gender::Male),
            "F" | "f" => Ok(Gender::Female),
            "X" | "x" => Ok(Gender::Unspecified),
            other => Err(Problem::Gender {
                found: other.chars().take(16).collect(),
            }),
        }
    }

    /// The one-letter code, `M`, `F` or `X`.
    pub fn code(self) -> char {
        match self {
            Gender::Male => 'M',
            Gender::Female => 'F',
            Gender::Unspecified => 'X',
        }
    }
}

/// A name in both scripts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name {
    /// Persian script.
    pub fa: PersianText,
    /// Latin letters.
    pub en: LatinText,
}

/// One validated application: everything the card will hold about its holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityRecord {
    /// Line of the batch file this record starts on.
    pub line: u64,
    /// Links the application to the card issued for it.
    pub tracking_code: TrackingCode,
    /// The holder's national code.
    pub national_code: NationalCode,
    /// Given name.
    pub given_name: Name,
    /// Family name.
    pub family_name: Name,
    /// Father's name.
    pub father_name: Name,
    /// Birth date (Solar Hijri; [`SolarDate::gregorian`] gives the equivalent).
    pub birth_date: SolarDate,
    /// Gender.
    pub gender: Gender,
    /// Initial PIN, if the batch sets one (otherwise the station generates it).
    pub pin: Option<Pin>,
    /// Facial image.
    pub photo: Photo,
    /// Where the facial image was read from (resolved, symbolic links
    /// followed), so that it can be read again when the card is written.
    pub photo_path: PathBuf,
    /// Fingerprint template file, checked readable and within bounds.
    pub fingerprint: Option<PathBuf>,
    /// The row says this application replaces the holder's earlier card.
    pub replacement: bool,
}

/// Checks raw field values into [`IdentityRecord`]s against a fixed "today".
#[derive(Clone, Copy, Debug)]
pub struct Validator {
    today: SolarDate,
}

impl Default for Validator {
    fn default() -> Self {
        Self::new()
    }
}

impl Validator {
    /// A validator whose "today" is the system clock's date (UTC).
    pub fn new() -> Self {
        Self {
            today: SolarDate::today(),
        }
    }

    /// A validator with a fixed "today", for reproducible runs and tests.
    pub fn as_of(today: SolarDate) -> Self {
        Self { today }
    }

    /// Checks a birth date: a real day, not after today, not implausibly old.
    pub fn birth_date(self, raw: &str) -> Result<SolarDate, Problem> {
        let date = SolarDate::parse(raw)?;
        if date > self.today {
            return Err(Problem::FutureDate {
                date: date.to_string(),
            });
        }
        if self.today.days_since(date) > OLDEST_BIRTH_DAYS {
            return Err(Problem::ImplausiblyOld {
                date: date.to_string(),
            });
        }
        Ok(date)
    }

    /// Validates every field, collecting one [`FieldError`] per problem.
    /// File paths resolve against `base` and must lead inside `folder`.
    pub(crate) fn record(
        self,
        raw: &RawFields,
        line: u64,
        base: &Path,
        folder: &Path,
    ) -> Result<IdentityRecord, RecordError> {
        let mut c = Collector {
            raw,
            problems: raw.extra_problems.clone(),
        };
        let tracking_code = c.required(Field::TrackingCode, TrackingCode::parse);
        let valid_tracking_code = tracking_code.clone();
        let national_code = c.required(Field::NationalCode, NationalCode::parse);
        let given_fa = c.required(Field::GivenNameFa, PersianText::parse);
        let family_fa = c.required(Field::FamilyNameFa, PersianText::parse);
        let father_fa = c.required(Field::FatherNameFa, PersianText::parse);
        let given_en = c.required(Field::GivenNameEn, LatinText::parse);
        let family_en = c.required(Field::FamilyNameEn, LatinText::parse);
        let father_en = c.required(Field::FatherNameEn, LatinText::parse);
        let birth_date = c.required(Field::BirthDate, |v| self.birth_date(v));
        let gender = c.required(Field::Gender, Gender::parse);
        let pin = c.optional(Field::Pin, Pin::parse);
        let photo = c.required(Field::Photo, |v| {
            let path = inside(&base.join(v), folder)?;
            Photo::load(&path).map(|photo| (photo, path))
        });
        let fingerprint = c.optional(Field::Fingerprint, |v| {
            let path = inside(&base.join(v), folder)?;
            photo::check_fingerprint(&path).map(|()| path)
        });
        let replacement = c.optional(Field::Replacement, yes_no);
        let (
            Some(tracking_code),
            Some(national_code),
            Some(given_fa),
            Some(family_fa),
            Some(father_fa),
            Some(given_en),
            Some(family_en),
            Some(father_en),
            Some(birth_date),
            Some(gender),
            Ok(pin),
            Some((photo, photo_path)),
            Ok(fingerprint),
            Ok(replacement),
            true,
        ) = (
            tracking_code,
            national_code,
            given_fa,
            family_fa,
            father_fa,
            given_en,
            family_en,
            father_en,
            birth_date,
            gender,
            pin,
            photo,
            fingerprint,
            replacement,
            c.problems.is_empty(),
        )
        else {
            return Err(RecordError {
                line,
                tracking_code: valid_tracking_code,
                problems: c.problems,
            });
        };
        Ok(IdentityRecord {
            line,
            tracking_code,
            national_code,
            given_name: Name {
                fa: given_fa,
                en: given_en,
            },
            family_name: Name {
                fa: family_fa,
                en: family_en,
            },
            father_name: Name {
                fa: father_fa,
                en: father_en,
            },
            birth_date,
            gender,
            pin,
            photo,
            photo_path,
            fingerprint,
            replacement: replacement.unwrap_or(false),
        })
    }
}

/// `path` with symbolic links resolved, refused when it leads out of
/// `folder` (itself resolved). A path that does not resolve (no such file)
/// or is no regular file (a device, a FIFO) is given back as it is, for the
/// file check to report — without opening it.
fn inside(path: &Path, folder: &Path) -> Result<PathBuf, Problem> {
    let Ok(resolved) = path.canonicalize() else {
        return Ok(path.to_path_buf());
    };
    if !resolved.is_file() {
        return Ok(path.to_path_buf());
    }
    if resolved.starts_with(folder) {
        Ok(resolved)
    } else {
        Err(Problem::OutsideFolder {
            path: path.to_path_buf(),
            folder: folder.to_path_buf(),
        })
    }
}

/// `yes` / `no` (either case; `y`, `n`, `true`, `false`, `1`, `0` too).
fn yes_no(raw: &str) -> Result<bool, Problem> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" | "1" => Ok(true),
        "no" | "n" | "false" | "0" => Ok(false),
        _ => Err(Problem::YesNo {
            found: raw.trim().chars().take(16).collect(),
        }),
    }
}

/// Parses fields one by one and keeps every problem.
struct Collector<'a> {
    raw: &'a RawFields,
    problems: Vec<FieldError>,
}

impl Collector<'_> {
    /// `None` when the field is missing or bad (the problem is recorded).
    fn required<T>(
        &mut self,
        field: Field,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<T> {
        let Some(value) = self.raw.get(field) else {
            self.push(field, Problem::Missing);
            return None;
        };
        parse(value)
            .map_err(|problem| self.push(field, problem))
            .ok()
    }

    /// `Ok(None)` when absent, `Err(())` when present but bad (recorded).
    fn optional<T>(
        &mut self,
        field: Field,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Result<Option<T>, ()> {
        match self.raw.get(field) {
            None => Ok(None),
            Some(value) => parse(value)
                .map(Some)
                .map_err(|problem| self.push(field, problem)),
        }
    }

    fn push(&mut self, field: Field, problem: Problem) {
        self.problems.push(FieldError {
            field: Some(field),
            key: None,
            problem,
        });
    }
}

/// The raw text of one record's fields, zeroized on drop (it may hold a PIN).
#[derive(Default)]
pub(crate) struct RawFields {
    values: [Option<String>; Field::ALL.len()],
    /// Problems found while reading (unknown keys, non-string values).
    extra_problems: Vec<FieldError>,
}

impl RawFields {
    /// Stores a value; blank values count as absent.
    pub(crate) fn set(&mut self, field: Field, value: String) {
        if let Some(slot) = self.values.get_mut(field.index()) {
            if let Some(mut old) = slot.take() {
                zeroize::Zeroize::zeroize(&mut old);
            }
            *slot = Some(value);
        }
    }

    pub(crate) fn problem(&mut self, error: FieldError) {
        self.extra_problems.push(error);
    }

    fn get(&self, field: Field) -> Option<&str> {
        self.values
            .get(field.index())
            .and_then(Option::as_deref)
            .filter(|v| !v.trim().is_empty())
    }
}

impl Drop for RawFields {
    fn drop(&mut self) {
        for value in self.values.iter_mut().flatten() {
            zeroize::Zeroize::zeroize(value);
        }
    }
}
