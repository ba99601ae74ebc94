//! Streaming batch loading: CSV (header row) and JSON Lines, one
//! `Result<IdentityRecord, RecordError>` per record, so a bad record never
//! stops the rest of the batch.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::error::{BatchError, Field, FieldError, Problem, RecordError};
use super::{IdentityRecord, RawFields, Validator};

/// Longest JSON line accepted; a longer one is reported and skipped.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// The two batch file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchFormat {
    /// Comma-separated values with a header row naming the fields.
    Csv,
    /// One JSON object per line.
    JsonLines,
}

impl BatchFormat {
    /// From the file name: `*.csv`, or `*.jsonl` / `*.ndjson`.
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Self::Csv),
            "jsonl" | "ndjson" => Some(Self::JsonLines),
            _ => None,
        }
    }
}

/// Entry points for loading a batch.
#[derive(Debug)]
pub struct Batch;

impl Batch {
    /// Opens a batch file, telling the format from its name; photo paths
    /// are resolved against the file's directory; "today" is the system date.
    pub fn open(path: impl AsRef<Path>) -> Result<Records<File>, BatchError> {
        Self::open_with(path, Validator::new())
    }

    /// Like [`Batch::open`] with a given validator (e.g. a fixed "today").
    pub fn open_with(
        path: impl AsRef<Path>,
        validator: Validator,
    ) -> Result<Records<File>, BatchError> {
        Self::open_confined(path, validator, None)
    }

    /// Like [`Batch::open_with`]; photo and fingerprint paths (relative to
    /// the batch file) must lead inside `photo_root` when given, else inside
    /// the batch file's folder.
    pub fn open_confined(
        path: impl AsRef<Path>,
        validator: Validator,
        photo_root: Option<&Path>,
    ) -> Result<Records<File>, BatchError> {
        let path = path.as_ref();
        let format = BatchFormat::from_path(path).ok_or_else(|| BatchError::UnknownFormat {
            path: path.to_owned(),
        })?;
        // Only a regular file: a FIFO or a device would block or never end.
        let file = kart_spec::input::open_regular(path).map_err(|e| match e {
            kart_spec::input::ReadError::Io { source, .. } => BatchError::Open {
                path: path.to_owned(),
                source,
            },
            other => BatchError::NotRegular(other),
        })?;
        let base = path.parent().map_or_else(PathBuf::new, Path::to_path_buf);
        let mut records = Self::from_reader(file, format, base, validator)?;
        if let Some(root) = photo_root {
            records.folder = resolved_folder(root);
        }
        Ok(records)
    }

    /// Reads a batch from any reader; relative file paths resolve against
    /// `base` and must lead inside it.
    ///
    /// ```
    /// use kart_perso::record::{Batch, BatchFormat, SolarDate, Validator};
    /// let csv = "tracking_code,national_code,given_name_fa,family_name_fa,father_name_fa,\
    ///            given_name_en,family_name_en,father_name_en,birth_date,gender,photo\n\
    ///            140409040007,0012345678,علی,کریمی,حسین,Ali,Karimi,Hossein,1369/06/31,M,a.jpg\n";
    /// let today = Validator::as_of(SolarDate::parse("1404/09/04").unwrap());
    /// let mut records = Batch::from_reader(csv.as_bytes(), BatchFormat::Csv, ".".into(), today)?;
    /// let error = records.next().unwrap().unwrap_err();
    /// let messages: Vec<String> = error.messages().collect();
    /// assert_eq!(messages[0], "line 2, national_code: check digit is 8, expected 9");
    /// assert!(messages[1].starts_with("line 2, photo: cannot read ./a.jpg"));
    /// # Ok::<(), kart_perso::record::BatchError>(())
    /// ```
    pub fn from_reader<R: Read>(
        reader: R,
        format: BatchFormat,
        base: PathBuf,
        validator: Validator,
    ) -> Result<Records<R>, BatchError> {
        let inner = match format {
            BatchFormat::Csv => Inner::Csv(CsvSource::new(reader)?),
            BatchFormat::JsonLines => Inner::Json(JsonSource {
                reader: BufReader::new(reader),
                line: 0,
            }),
        };
        Ok(Records {
            inner,
            folder: resolved_folder(&base),
            base,
            validator,
            done: false,
        })
    }
}

/// The records of a batch, streamed one by one.
///
/// A read error mid-file is yielded once (as [`Problem::Read`]) and ends the
/// stream; every other error concerns one record and the stream goes on.
pub struct Records<R> {
    inner: Inner<R>,
    base: PathBuf,
    /// Where photo and fingerprint paths must lead (resolved).
    folder: PathBuf,
    validator: Validator,
    done: bool,
}

impl<R> std::fmt::Debug for Records<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records")
            .field("base", &self.base)
            .field("folder", &self.folder)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

enum Inner<R> {
    Csv(CsvSource<R>),
    Json(JsonSource<R>),
}

/// What a source yields: raw fields of a record, a record-level syntax
/// error, or the end (possibly after a read error).
enum Next {
    Fields(u64, Box<RawFields>),
    Bad(RecordError),
    Fatal(RecordError),
    End,
}

impl<R: Read> Iterator for Records<R> {
    type Item = Result<IdentityRecord, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = match &mut self.inner {
            Inner::Csv(source) => source.next(),
            Inner::Json(source) => source.next(),
        };
        match next {
            Next::Fields(line, raw) => {
                Some(self.validator.record(&raw, line, &self.base, &self.folder))
            }
            Next::Bad(error) => Some(Err(error)),
            Next::Fatal(error) => {
                self.done = true;
                Some(Err(error))
            }
            Next::End => {
                self.done = true;
                None
            }
        }
    }
}

/// The folder with symbolic links resolved (`.` for an empty path); as
/// given when it does not resolve, so that nothing resolved is inside it.
fn resolved_folder(folder: &Path) -> PathBuf {
    let folder = if folder.as_os_str().is_empty() {
        Path::new(".")
    } else {
        folder
    };
    folder
        .canonicalize()
        .unwrap_or_else(|_| folder.to_path_buf())
}

struct CsvSource<R> {
    reader: csv::Reader<R>,
    columns: Vec<Field>,
}

impl<R: Read> CsvSource<R> {
    fn new(reader: R) -> Result<Self, BatchError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(reader);
        let header = reader
            .headers()
            .map_err(|e| BatchError::Header(e.to_string()))?
            .clone();
        let (mut columns, mut unknown, mut repeated) = (Vec::new(), Vec::new(), Vec::new());
        for name in &header {
            match Field::from_name(name.trim()) {
                Some(field) if columns.contains(&field) => repeated.push(name.to_owned()),
                Some(field) => columns.push(field),
                None => unknown.push(name.to_owned()),
            }
        }
        let missing: Vec<String> = Field::ALL
            .iter()
            .filter(|f| !f.is_optional() && !columns.contains(f))
            .map(|f| f.name().to_owned())
            .collect();
        if !(missing.is_empty() && unknown.is_empty() && repeated.is_empty()) {
            return Err(BatchError::BadHeader {
                missing,
                unknown,
                repeated,
            });
        }
        Ok(Self { reader, columns })
    }

    fn next(&mut self) -> Next {
        let mut record = csv::StringRecord::new();
        match self.reader.read_record(&mut record) {
            Ok(false) => Next::End,
            Ok(true) => {
                let line = record.position().map_or(0, csv::Position::line);
                let mut raw = RawFields::default();
                for (field, value) in self.columns.iter().zip(record.iter()) {
                    raw.set(*field, value.to_owned());
                }
                Next::Fields(line, Box::new(raw))
            }
            Err(error) => {
                let line = error.position().map_or(0, csv::Position::line);
                match error.kind() {
                    csv::ErrorKind::Io(_) => Next::Fatal(RecordError::line_problem(
                        line,
                        Problem::Read(error.to_string()),
                    )),
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => Next::Bad(RecordError::line_problem(
                        line,
                        Problem::Syntax(format!("has {len} fields, the header has {expected_len}")),
                    )),
                    csv::ErrorKind::Utf8 { err, .. } => {
                        let field = self.columns.get(err.field()).copied();
                        Next::Bad(RecordError {
                            line,
                            tracking_code: None,
                            problems: vec![FieldError {
                                field,
                                key: None,
                                problem: Problem::Syntax(
                                    "is not valid UTF-8; save the batch as UTF-8".into(),
                                ),
                            }],
                        })
                    }
                    _ => Next::Bad(RecordError::line_problem(
                        line,
                        Problem::Syntax(error.to_string()),
                    )),
                }
            }
        }
    }
}

struct JsonSource<R> {
    reader: BufReader<R>,
    line: u64,
}

impl<R: Read> JsonSource<R> {
    fn next(&mut self) -> Next {
        loop {
            // The line may hold a PIN: wipe it when done.
            let mut buf = Zeroizing::new(Vec::new());
            self.line += 1;
            let line = self.line;
            let limit = MAX_LINE_BYTES as u64 + 1;
            match (&mut self.reader).take(limit).read_until(b'\n', &mut buf) {
                Ok(0) => return Next::End,
                Ok(_) => {}
                Err(e) => {
                    return Next::Fatal(RecordError::line_problem(
                        line,
                        Problem::Read(e.to_string()),
                    ))
                }
            }
            if buf.len() > MAX_LINE_BYTES && buf.last() != Some(&b'\n') {
                if let Err(e) = self.skip_rest_of_line() {
                    return Next::Fatal(RecordError::line_problem(
                        line,
                        Problem::Read(e.to_string()),
                    ));
                }
                return Next::Bad(RecordError::line_problem(
                    line,
                    Problem::Syntax(format!("is longer than {MAX_LINE_BYTES} bytes; skipped")),
                ));
            }
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&buf)
            {
                Ok(map) => Next::Fields(line, Box::new(fields_of(map))),
                Err(e) => Next::Bad(RecordError::line_problem(
                    line,
                    Problem::Syntax(format!("is not a JSON object: {e}")),
                )),
            };
        }
    }

    fn skip_rest_of_line(&mut self) -> std::io::Result<()> {
        let mut scratch = Vec::new();
        loop {
            scratch.clear();
            let n = (&mut self.reader)
                .take(MAX_LINE_BYTES as u64)
                .read_until(b'\n', &mut scratch)?;
            if n == 0 || scratch.last() == Some(&b'\n') {
                return Ok(());
            }
        }
    }
}

fn fields_of(map: serde_json::Map<String, serde_json::Value>) -> RawFields {
    let mut raw = RawFields::default();
    for (key, value) in map {
        match (Field::from_name(&key), value) {
            (None, _) => raw.problem(FieldError {
                field: None,
                key: Some(key),
                problem: Problem::UnknownField,
            }),
            (Some(_), serde_json::Value::Null) => {}
            (Some(field), serde_json::Value::String(text)) => raw.set(field, text),
            (Some(Field::Replacement), serde_json::Value::Bool(yes)) => {
                raw.set(
                    Field::Replacement,
                    if yes { "yes" } else { "no" }.to_owned(),
                );
            }
            (Some(field), _) => raw.problem(FieldError {
                field: Some(field),
                key: None,
                problem: Problem::NotString,
            }),
        }
    }
    raw
}
