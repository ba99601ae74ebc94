//! The bad-input catalogue: malformed records, profiles, certificates, keys,
//! card files and card responses, each with the clear, specific error it must
//! give (the variant, and a message that names the problem), and the proof
//! that nothing else is lost (the good record after a bad one still loads).
//!
//! Expected errors come from the rules of the applet spec and design §3 (check
//! digits, Solar Hijri calendar, field bounds), from ISO 7816-4 (response
//! APDUs) and from X.509/PKCS#8 as `openssl` produces them; keys and
//! certificates are made here with the `openssl` command line tool.

use std::path::Path;

use kart_apdu::{Card, CardError, Command, Transport, TransportError};
use kart_e2e::{national_code, tracking_code, Photo, World, CSV_HEADER};
use kart_perso::card_data::Cplc;
use kart_perso::personalize::{personalize, probe, Job, PersoError};
use kart_perso::pin_mailer::Pins;
use kart_perso::pki::{validate_chain, Certificate, IssuerKey, KeyUsage, MasterKeys, PkiError};
use kart_perso::read::{read_card, CardIdentity, IdentityError, ReadError};
use kart_perso::record::{
    Batch, BatchError, BatchFormat, Field, IdentityRecord, Problem, RecordError, SolarDate,
    Validator,
};
use kart_perso::security_object::{
    build_security_object, FileStatus, SecurityObject, SecurityObjectError,
};
use kart_sim::Faults;
use kart_spec::{Profile, SpecError};

// ───────────────────────────── records ─────────────────────────────

/// The valid value of every field, in canonical column order.
fn valid_fields(seq: u64) -> Vec<(Field, String)> {
    vec![
        (Field::TrackingCode, tracking_code(seq)),
        (Field::NationalCode, national_code(seq)),
        (Field::GivenNameFa, "علی".into()),
        (Field::FamilyNameFa, "کریمی".into()),
        (Field::FatherNameFa, "حسین".into()),
        (Field::GivenNameEn, "Ali".into()),
        (Field::FamilyNameEn, "Karimi".into()),
        (Field::FatherNameEn, "Hossein".into()),
        (Field::BirthDate, "1369/06/31".into()),
        (Field::Gender, "M".into()),
        (Field::Pin, String::new()),
        (Field::Photo, "photo-small.jpg".into()),
        (Field::Fingerprint, String::new()),
    ]
}

fn csv_row(fields: &[(Field, String)]) -> String {
    let cells: Vec<&str> = fields.iter().map(|(_, v)| v.as_str()).collect();
    format!("{}\n", cells.join(","))
}

/// A directory with the photo and fingerprint files the catalogue refers to.
fn record_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let put = |name: &str, bytes: &[u8]| std::fs::write(dir.path().join(name), bytes).unwrap();
    put("photo-small.jpg", Photo::Small.bytes());
    put("not-a-jpeg.jpg", b"\x89PNG\r\n\x1a\n0000");
    let typical = Photo::Typical.bytes();
    put("truncated.jpg", &typical[..typical.len() / 2]);
    // 20 470 bytes is the applet spec's EF.FACE bound.
    let mut huge = typical.to_vec();
    huge.splice(2..2, std::iter::repeat_n(0u8, 20_470));
    put("huge.jpg", &huge);
    // FIFOs block a reader that opens them without checking: refused.
    for fifo in ["fifo.jpg", "fifo.fmr"] {
        kart_testkit::process::mkfifo(&dir.path().join(fifo), &[]);
    }
    dir
}

fn load(dir: &Path, text: &str, format: BatchFormat) -> Vec<Result<IdentityRecord, RecordError>> {
    let today = Validator::as_of(SolarDate::parse("1404/09/04").expect("valid date"));
    Batch::from_reader(text.as_bytes(), format, dir.to_owned(), today)
        .expect("header is valid")
        .collect()
}

type ProblemCheck = fn(&Problem) -> bool;
type KeyCheck = fn(&PkiError) -> bool;
type IdentityCheck = fn(&IdentityError) -> bool;
/// (what, replace this, with that, expected error, message words)
type ProfileCase = (
    &'static str,
    &'static str,
    &'static str,
    Box<dyn Fn(&SpecError) -> bool>,
    &'static str,
);
/// A change to the (tag, value) list of EF.ID.
type Change = Box<dyn FnOnce(&mut Vec<(u8, Vec<u8>)>)>;

/// One bad field value, the problem it must give, and words its message must hold.
struct BadField {
    field: Field,
    value: &'static str,
    is: ProblemCheck,
    says: &'static str,
}

const BAD_FIELDS: &[BadField] = &[
    BadField {
        field: Field::NationalCode,
        value: "0012345678",
        is: |p| {
            matches!(
                p,
                Problem::CheckDigit {
                    found: 8,
                    expected: 9
                }
            )
        },
        says: "check digit is 8, expected 9",
    },
    BadField {
        field: Field::NationalCode,
        value: "1111111111",
        is: |p| matches!(p, Problem::AllSameDigit { digit: '1' }),
        says: "placeholder",
    },
    BadField {
        field: Field::NationalCode,
        value: "00123456",
        is: |p| {
            matches!(
                p,
                Problem::WrongLength {
                    found: 8,
                    expected: 10
                }
            )
        },
        says: "expected 10 digits",
    },
    BadField {
        field: Field::NationalCode,
        value: "00123x5679",
        is: |p| {
            matches!(
                p,
                Problem::NotDigit {
                    found: 'x',
                    position: 6
                }
            )
        },
        says: "expected a digit",
    },
    BadField {
        field: Field::TrackingCode,
        value: "140409040008",
        is: |p| {
            matches!(
                p,
                Problem::CheckDigit {
                    found: 8,
                    expected: 7
                }
            )
        },
        says: "check digit",
    },
    BadField {
        field: Field::GivenNameFa,
        value: "Ali",
        is: |p| {
            matches!(
                p,
                Problem::LatinInPersian {
                    found: 'A',
                    position: 1
                }
            )
        },
        says: "Persian script only",
    },
    BadField {
        field: Field::FamilyNameFa,
        value: "کریمی!",
        is: |p| matches!(p, Problem::NotPersianLetter { found: '!', .. }),
        says: "not allowed in a Persian name",
    },
    // 49 Persian letters are 98 bytes of UTF-8; the spec allows 96.
    BadField {
        field: Field::FatherNameFa,
        value: "ححححححححححححححححححححححححححححححححححححححححححححححححح",
        is: |p| matches!(p, Problem::TooLong { bytes: 98, max: 96 }),
        says: "at most 96",
    },
    BadField {
        field: Field::GivenNameEn,
        value: "علی",
        is: |p| matches!(p, Problem::PersianInLatin { position: 1, .. }),
        says: "Latin letters only",
    },
    BadField {
        field: Field::FamilyNameEn,
        value: "Karimi3",
        is: |p| {
            matches!(
                p,
                Problem::NotLatinLetter {
                    found: '3',
                    position: 7
                }
            )
        },
        says: "A-Z",
    },
    BadField {
        field: Field::BirthDate,
        value: "1369-06-31",
        is: |p| matches!(p, Problem::DateFormat { .. }),
        says: "YYYY/MM/DD",
    },
    // Mehr (month 7) has 30 days in the Solar Hijri calendar.
    BadField {
        field: Field::BirthDate,
        value: "1400/07/31",
        is: |p| {
            matches!(
                p,
                Problem::NoSuchDate {
                    year: 1400,
                    month: 7,
                    day: 31
                }
            )
        },
        says: "does not exist",
    },
    BadField {
        field: Field::BirthDate,
        value: "1405/01/01",
        is: |p| matches!(p, Problem::FutureDate { .. }),
        says: "in the future",
    },
    BadField {
        field: Field::BirthDate,
        value: "1250/01/01",
        is: |p| matches!(p, Problem::ImplausiblyOld { .. }),
        says: "130 years",
    },
    BadField {
        field: Field::Gender,
        value: "Male",
        is: |p| matches!(p, Problem::Gender { .. }),
        says: "M (male), F (female) or X",
    },
    BadField {
        field: Field::Gender,
        value: "",
        is: |p| matches!(p, Problem::Missing),
        says: "missing",
    },
    BadField {
        field: Field::Pin,
        value: "12a4",
        is: |p| matches!(p, Problem::PinFormat { .. }),
        says: "secret",
    },
    BadField {
        field: Field::Pin,
        value: "123",
        is: |p| matches!(p, Problem::PinFormat { min: 4, .. }),
        says: "digits",
    },
    BadField {
        field: Field::Photo,
        value: "fifo.jpg",
        is: |p| matches!(p, Problem::File { .. }),
        says: "FIFO, not a regular file",
    },
    BadField {
        field: Field::Photo,
        value: "/dev/zero",
        is: |p| matches!(p, Problem::File { .. }),
        says: "not a regular file",
    },
    BadField {
        field: Field::Fingerprint,
        value: "fifo.fmr",
        is: |p| matches!(p, Problem::File { .. }),
        says: "FIFO, not a regular file",
    },
    BadField {
        field: Field::Photo,
        value: "missing.jpg",
        is: |p| matches!(p, Problem::File { .. }),
        says: "cannot read",
    },
    BadField {
        field: Field::Photo,
        value: "not-a-jpeg.jpg",
        is: |p| matches!(p, Problem::NotJpeg { .. }),
        says: "SOI",
    },
    BadField {
        field: Field::Photo,
        value: "truncated.jpg",
        is: |p| matches!(p, Problem::NotJpeg { .. }),
        says: "EOI",
    },
    BadField {
        field: Field::Photo,
        value: "huge.jpg",
        is: |p| matches!(p, Problem::FileTooLarge { max: 20_470, .. }),
        says: "at most 20470",
    },
    BadField {
        field: Field::Fingerprint,
        value: "no-such.fmr",
        is: |p| matches!(p, Problem::File { .. }),
        says: "cannot read",
    },
];

#[test]
fn every_bad_field_is_named_with_its_problem_and_the_next_record_still_loads() {
    let dir = record_dir();
    for case in BAD_FIELDS {
        let mut bad = valid_fields(1);
        for (f, v) in &mut bad {
            if *f == case.field {
                *v = case.value.to_owned();
            }
        }
        for format in [BatchFormat::Csv, BatchFormat::JsonLines] {
            let text = match format {
                BatchFormat::Csv => {
                    format!("{CSV_HEADER}{}{}", csv_row(&bad), csv_row(&valid_fields(2)))
                }
                BatchFormat::JsonLines => {
                    format!("{}\n{}\n", json_line(&bad), json_line(&valid_fields(2)))
                }
            };
            let results = load(dir.path(), &text, format);
            assert_eq!(
                results.len(),
                2,
                "{} {:?}: one result per record",
                case.field,
                case.value
            );
            let err = results[0].as_ref().expect_err(case.value);
            let hit = err
                .problems
                .iter()
                .find(|p| p.field == Some(case.field))
                .unwrap_or_else(|| panic!("{} {:?} not reported: {err}", case.field, case.value));
            assert!(
                (case.is)(&hit.problem),
                "{} {:?}: got {:?}",
                case.field,
                case.value,
                hit.problem
            );
            let message = err.to_string();
            assert!(
                message.contains(case.field.name()),
                "message {message:?} does not name the field"
            );
            assert!(
                message.contains(case.says),
                "message {message:?} lacks {:?}",
                case.says
            );
            let line = if format == BatchFormat::Csv { 2 } else { 1 };
            assert!(message.starts_with(&format!("line {line}, ")), "{message}");
            if case.field == Field::Pin {
                assert!(
                    !message.contains(case.value),
                    "the PIN was echoed: {message}"
                );
            }
            let good = results[1].as_ref().expect("the next record is not lost");
            assert_eq!(good.tracking_code.as_str(), tracking_code(2));
        }
    }
}

fn json_line(fields: &[(Field, String)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(f, v)| format!("\"{}\":\"{v}\"", f.name()))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// Malformed lines: the problem is the line's, and the batch goes on.
#[test]
fn malformed_lines_are_reported_by_line_and_skipped() {
    let dir = record_dir();
    let good = csv_row(&valid_fields(3));
    let cases: [(&str, BatchFormat, &str); 6] = [
        (
            "1,2,3\n",
            BatchFormat::Csv,
            "has 3 fields, the header has 13",
        ),
        (
            "not json at all\n",
            BatchFormat::JsonLines,
            "is not a JSON object",
        ),
        (
            "[1, 2, 3]\n",
            BatchFormat::JsonLines,
            "is not a JSON object",
        ),
        (
            r#"{"tracking_code": 140409040007}"#,
            BatchFormat::JsonLines,
            "tracking_code: must be a JSON string",
        ),
        (
            r#"{"nationl_code": "0012345679"}"#,
            BatchFormat::JsonLines,
            "nationl_code: is not a known field",
        ),
        ("\u{feff}{}\n", BatchFormat::JsonLines, "line 1"),
    ];
    for (bad, format, says) in cases {
        let text = match format {
            BatchFormat::Csv => format!("{CSV_HEADER}{bad}{good}"),
            BatchFormat::JsonLines => format!("{bad}\n{}\n", json_line(&valid_fields(3))),
        };
        let results = load(dir.path(), &text, format);
        let first = results.first().expect("a result for the bad line");
        let message = first.as_ref().expect_err(bad).to_string();
        assert!(
            message.contains(says),
            "{bad:?}: {message:?} lacks {says:?}"
        );
        let last = results.last().expect("a result for the good line");
        assert!(
            last.is_ok(),
            "{bad:?}: the good record after it was lost: {last:?}"
        );
    }
    // Invalid UTF-8 inside a CSV field: named, not a crash, not mojibake.
    let mut bytes = CSV_HEADER.as_bytes().to_vec();
    bytes.extend_from_slice(
        csv_row(&valid_fields(4))
            .replace("Ali", "A\u{1}i")
            .as_bytes(),
    );
    let at = bytes.iter().position(|b| *b == 1).expect("marker");
    bytes[at] = 0xFF;
    bytes.extend_from_slice(good.as_bytes());
    let today = Validator::as_of(SolarDate::parse("1404/09/04").expect("date"));
    let results: Vec<_> =
        Batch::from_reader(bytes.as_slice(), BatchFormat::Csv, dir.path().into(), today)
            .expect("header")
            .collect();
    let message = results[0].as_ref().expect_err("bad UTF-8").to_string();
    assert!(message.contains("not valid UTF-8"), "{message}");
    assert!(results[1].is_ok(), "record after bad UTF-8 lost");
}

#[test]
fn bad_batch_files_are_refused_as_a_whole_with_what_to_do() {
    let dir = record_dir();
    let today = Validator::as_of(SolarDate::parse("1404/09/04").expect("date"));
    let header = CSV_HEADER
        .replace("national_code,", "")
        .replace("photo,", "foto,photo,photo,");
    let err = Batch::from_reader(
        header.as_bytes(),
        BatchFormat::Csv,
        dir.path().into(),
        today,
    )
    .expect_err("bad header");
    match &err {
        BatchError::BadHeader {
            missing,
            unknown,
            repeated,
        } => {
            assert_eq!(missing, &["national_code"]);
            assert_eq!(unknown, &["foto"]);
            assert_eq!(repeated, &["photo"]);
        }
        other => panic!("expected BadHeader, got {other:?}"),
    }
    assert!(err
        .to_string()
        .contains("expected columns: tracking_code,national_code"));

    let err = Batch::open(dir.path().join("batch.xlsx")).expect_err("unknown format");
    assert!(matches!(err, BatchError::UnknownFormat { .. }));
    assert!(err.to_string().contains("*.csv or *.jsonl"), "{err}");
    let err = Batch::open(dir.path().join("absent.csv")).expect_err("absent");
    assert!(matches!(err, BatchError::Open { .. }));
    assert!(err.to_string().contains("absent.csv"), "{err}");
}

// ───────────────────────────── profiles ─────────────────────────────

const VENDOR_A: &str = include_str!("../../applets-spec/profiles/vendor-a.toml");

type SpecCheck = fn(&SpecError) -> bool;

fn parse_error(e: &SpecError) -> bool {
    matches!(e, SpecError::Parse { file, .. } if file == "profiles/vendor-a.toml")
}

fn invalid(field: &'static str) -> impl Fn(&SpecError) -> bool {
    move |e| matches!(e, SpecError::Invalid { field: f, .. } if f == field)
}

// One row per bad profile: a table reads better than the same split in two.
#[allow(clippy::too_many_lines)]
fn profile_cases() -> Vec<ProfileCase> {
    vec![
        (
            "short APDU limit exceeded",
            "max_command_data = 255",
            "max_command_data = 300",
            Box::new(invalid("limits.max_command_data")),
            "needs extended length",
        ),
        (
            "ATR mask shorter than ATR",
            "atr_mask = \"FFFFFFFFFFFFFFFFFFFFFFFF0000FFFFFFFFFFFF\"",
            "atr_mask = \"FFFF\"",
            Box::new(invalid("atr_mask")),
            "mask has 2 bytes but the ATR has 20",
        ),
        (
            "ATR not hex",
            "atr = \"3B7F94",
            "atr = \"ZZ7F94",
            Box::new(parse_error as SpecCheck),
            "line",
        ),
        (
            "unknown SCP",
            "scp = \"SCP02\"",
            "scp = \"SCP04\"",
            Box::new(parse_error as SpecCheck),
            "SCP04",
        ),
        (
            "unknown field",
            "[quirks]",
            "[quirks]\ncolour = \"red\"",
            Box::new(parse_error as SpecCheck),
            "colour",
        ),
        (
            "missing section",
            "[latency]",
            "[latency_model]",
            Box::new(parse_error as SpecCheck),
            "latency",
        ),
        (
            "SCP02 with AES-192 key length",
            "key_length = 16",
            "key_length = 24",
            Box::new(invalid("secure_channel.key_length")),
            "SCP02 uses 16-byte",
        ),
        (
            "T=1 on a T=0 ATR",
            "protocol = \"T=0\"",
            "protocol = \"T=1\"",
            Box::new(invalid("protocol")),
            "offers only T=0",
        ),
        (
            "zero read chunk",
            "max_read_chunk = 248",
            "max_read_chunk = 0",
            Box::new(invalid("quirks.max_read_chunk")),
            "must be 1..=256",
        ),
        (
            "extended length on T=0",
            "extended_length = false",
            "extended_length = true",
            Box::new(invalid("limits.extended_length")),
            "T=0 cannot carry",
        ),
        (
            "not TOML",
            "[limits]",
            "[limits",
            Box::new(parse_error as SpecCheck),
            "line",
        ),
        (
            "negative latency",
            "median_ms = 214",
            "median_ms = -214",
            Box::new(parse_error as SpecCheck),
            "median_ms",
        ),
        (
            "negative key generation spread",
            "sigma = 0.15",
            "sigma = -0.15",
            Box::new(invalid("latency.keygen.sigma")),
            "σ ≥ 0",
        ),
        (
            "key generation cap below its median",
            "cap_ms = 470",
            "cap_ms = 100",
            Box::new(invalid("latency.keygen.cap_ms")),
            "below the median",
        ),
        (
            "first key generation faster than the others",
            "first_call_factor = 1.4",
            "first_call_factor = 0.5",
            Box::new(invalid("latency.keygen.first_call_factor")),
            "factor ≥ 1",
        ),
    ]
}

#[test]
fn every_bad_profile_names_the_file_and_the_field() {
    let cases = profile_cases();
    assert!(
        Profile::from_toml_str("profiles/vendor-a.toml", VENDOR_A).is_ok(),
        "the base profile loads"
    );
    for (what, from, to, expected, says) in cases {
        assert!(VENDOR_A.contains(from), "{what}: base text lacks {from:?}");
        let text = VENDOR_A.replacen(from, to, 1);
        let err = Profile::from_toml_str("profiles/vendor-a.toml", &text).expect_err(what);
        assert!(expected(&err), "{what}: got {err:?}");
        let message = err.to_string();
        assert!(
            message.starts_with("profiles/vendor-a.toml: "),
            "{what}: {message}"
        );
        assert!(message.contains(says), "{what}: {message:?} lacks {says:?}");
    }
}

// ───────────────────────── certificates and keys ─────────────────────────

fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    kart_testkit::openssl::openssl(dir, args).stdout
}

#[test]
fn bad_certificates_are_refused_with_the_reason() {
    let world = World::new().expect("world");
    let good = world.issuer.pki.document_signer.der().to_vec();
    let malformed = |bytes: &[u8], says: &str| {
        let err = kart_testkit::cards::malformed_certificate(bytes);
        assert!(err.to_string().contains(says), "{err} lacks {says:?}");
    };
    malformed(b"hello", "certificate is malformed");
    malformed(&good[..good.len() - 10], "certificate is malformed");
    let mut trailing = good.clone();
    trailing.push(0);
    malformed(&trailing, "1 trailing bytes after the certificate");
    let key_pem = std::fs::read(world.issuer_dir().join("document-signer.key.pem")).expect("key");
    malformed(&key_pem, "expected 'CERTIFICATE'");

    // Chain problems, each its own variant.
    let pki = &world.issuer.pki;
    let now = time::OffsetDateTime::now_utc();
    let later = now + time::Duration::days(365 * 30);
    let err = validate_chain(
        &pki.document_signer,
        &[],
        &pki.root,
        later,
        KeyUsage::DigitalSignature,
    )
    .expect_err("expired");
    assert!(matches!(err, PkiError::Expired { .. }), "{err:?}");
    assert!(err.to_string().contains("renew"), "{err}");
    let err = validate_chain(
        &pki.document_signer,
        &[],
        &pki.card_ca,
        now,
        KeyUsage::DigitalSignature,
    )
    .expect_err("wrong issuer");
    assert!(matches!(err, PkiError::WrongIssuer { .. }), "{err:?}");

    // A root made by openssl with the same name as ours but another key.
    let dir = tempfile::tempdir().expect("dir");
    let subject = pki.root.subject().replace(", ", "/");
    openssl(
        dir.path(),
        &[
            "ecparam",
            "-name",
            "secp384r1",
            "-genkey",
            "-noout",
            "-out",
            "k.pem",
        ],
    );
    openssl(
        dir.path(),
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "k.pem",
            "-subj",
            &format!("/{subject}"),
            "-days",
            "30",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            "root.pem",
        ],
    );
    let impostor = Certificate::load(&dir.path().join("root.pem")).expect("openssl root loads");
    // openssl starts the impostor's validity now: judge a few minutes later.
    let soon = now + time::Duration::minutes(5);
    let err = validate_chain(
        &pki.document_signer,
        &[],
        &impostor,
        soon,
        KeyUsage::DigitalSignature,
    )
    .expect_err("bad signature");
    assert!(
        matches!(
            err,
            PkiError::BadSignature { .. } | PkiError::WrongIssuer { .. }
        ),
        "{err:?}"
    );
}

/// A copy of the world's issuer directory (its files, not `offline/`).
fn issuer_copy(world: &World) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("dir");
    for e in std::fs::read_dir(world.issuer_dir()).expect("issuer dir") {
        let e = e.expect("entry");
        if e.file_type().expect("type").is_file() {
            std::fs::copy(e.path(), dir.path().join(e.file_name())).expect("copy");
        }
    }
    dir
}

type IssuerEdit = fn(&Path, &Path);

/// (what, how the issuer is made wrong from another issuer's files, file
/// named, words of the message)
const WRONG_ISSUERS: &[(&str, IssuerEdit, &str, &str)] = &[
    (
        "card CA key of another issuer",
        |d, other| {
            std::fs::copy(other.join("card-ca.key.pem"), d.join("card-ca.key.pem")).unwrap();
        },
        "card-ca.key.pem",
        "does not belong to the certificate",
    ),
    (
        "document signer key swapped with the card CA key",
        |d, _| {
            std::fs::copy(d.join("card-ca.key.pem"), d.join("document-signer.key.pem")).unwrap();
        },
        "document-signer.key.pem",
        "does not belong to the certificate",
    ),
    (
        "document signer of another issuer",
        |d, other| {
            for f in ["document-signer.pem", "document-signer.key.pem"] {
                std::fs::copy(other.join(f), d.join(f)).unwrap();
            }
        },
        "document-signer.pem",
        "does not verify",
    ),
    (
        "root of another issuer",
        |d, other| {
            std::fs::copy(other.join("root.pem"), d.join("root.pem")).unwrap();
        },
        "card-ca.pem",
        "does not verify",
    ),
    (
        "card CA key readable by others",
        |d, _| {
            use std::os::unix::fs::PermissionsExt;
            let key = d.join("card-ca.key.pem");
            std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o644)).unwrap();
        },
        "card-ca.key.pem",
        "chmod 600",
    ),
    (
        "/dev/zero as the root certificate",
        |d, _| {
            std::fs::remove_file(d.join("root.pem")).unwrap();
            std::os::unix::fs::symlink("/dev/zero", d.join("root.pem")).unwrap();
        },
        "root.pem",
        "not a regular file",
    ),
];

#[test]
fn wrong_issuers_are_refused_at_load_naming_the_file() {
    let world = World::new().expect("world");
    let other = tempfile::tempdir().expect("dir");
    kart_perso::pki::create_demo_issuer(other.path(), time::OffsetDateTime::now_utc())
        .expect("other issuer");
    kart_perso::issuer::Issuer::load(issuer_copy(&world).path()).expect("the copy is good");
    for (what, edit, file, says) in WRONG_ISSUERS {
        let dir = issuer_copy(&world);
        edit(dir.path(), other.path());
        let err = kart_perso::issuer::Issuer::load(dir.path()).expect_err(what);
        // What the operator reads: the message, then what to do.
        let message = format!("{err} — {}", err.hint().unwrap_or_default());
        assert!(
            message.contains(file),
            "{what}: {message} does not name {file}"
        );
        assert!(message.contains(says), "{what}: {message:?} lacks {says:?}");
    }
}

#[test]
fn bad_private_keys_are_refused_with_how_to_convert_them() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    // SEC1 ("EC PRIVATE KEY") and encrypted PKCS#8 are not what kart takes.
    openssl(
        d,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "sec1.pem",
        ],
    );
    openssl(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-in",
            "sec1.pem",
            "-passout",
            "pass:kart-test",
            "-out",
            "enc.pem",
        ],
    );
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:secp521r1",
            "-out",
            "p521.pem",
        ],
    );
    openssl(
        d,
        &["genpkey", "-algorithm", "ED25519", "-out", "ed25519.pem"],
    );
    let read = |name: &str| std::fs::read(d.join(name)).expect("key file");
    let cases: [(&str, KeyCheck, &str); 5] = [
        (
            "sec1.pem",
            |e| {
                matches!(
                    e,
                    PkiError::Malformed {
                        what: "private key",
                        ..
                    }
                )
            },
            "openssl pkcs8 -topk8 -nocrypt",
        ),
        (
            "enc.pem",
            |e| {
                matches!(
                    e,
                    PkiError::Malformed {
                        what: "private key",
                        ..
                    }
                )
            },
            "ENCRYPTED PRIVATE KEY",
        ),
        (
            "p521.pem",
            |e| matches!(e, PkiError::KeyRejected(_)),
            "P-256/P-384 or RSA",
        ),
        (
            "ed25519.pem",
            |e| matches!(e, PkiError::KeyRejected(_)),
            "PKCS#8",
        ),
        (
            "garbage",
            |e| matches!(e, PkiError::KeyRejected(_)),
            "private key rejected",
        ),
    ];
    std::fs::write(d.join("garbage"), b"\x30\x03\x02\x01\x00").expect("write");
    for (file, is, says) in cases {
        let err = IssuerKey::from_pem_or_der(&read(file)).expect_err(file);
        assert!(is(&err), "{file}: {err:?}");
        assert!(
            err.to_string().contains(says),
            "{file}: {err} lacks {says:?}"
        );
    }
}

#[test]
fn bad_master_key_files_are_refused_without_echoing_a_key() {
    let good = kart_e2e::test_master_keys_json();
    assert!(MasterKeys::from_json(&good).is_ok());
    let key16 = hex::encode(kart_sim::default_test_key(16));
    let cases: [(String, &str); 5] = [
        (
            good.replace("kart-master-keys/1", "kart-master-keys/9"),
            "expected 'kart-master-keys/1'",
        ),
        (
            good.replacen(&key16, &format!("{}zz", &key16[2..]), 1),
            "enc is not hex",
        ),
        (
            good.replacen(&key16, &key16[..30], 1),
            "enc is 15 bytes, TripleDes needs 16",
        ),
        (
            good.replace("scp03-aes128", "scp02"),
            "key set 'scp02' appears twice",
        ),
        (good[..good.len() / 2].to_owned(), "not a valid keys file"),
    ];
    for (text, says) in cases {
        let err = MasterKeys::from_json(&text).expect_err(says);
        assert!(matches!(err, PkiError::MasterKeys(_)), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(says), "{message:?} lacks {says:?}");
        assert!(
            !message.contains(&key16[..16]),
            "a master key was echoed: {message}"
        );
    }
    // A keys file others can read is refused, with the fix.
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("master-keys.json");
    std::fs::write(&path, &good).expect("write");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod");
    let err = MasterKeys::load(&path).expect_err("world-readable");
    assert!(err.to_string().contains("chmod 600"), "{err}");
}

/// A key in a field of the wrong type (here `version`) must not reach the
/// error message: `serde_json` quotes the offending value.
#[test]
fn a_key_in_a_mistyped_field_is_not_echoed() {
    let good = kart_e2e::test_master_keys_json();
    let key16 = hex::encode(kart_sim::default_test_key(16));
    let text = good.replacen("\"version\":1", &format!("\"version\":\"{key16}\""), 1);
    let err = MasterKeys::from_json(&text).expect_err("mistyped");
    assert!(matches!(err, PkiError::MasterKeys(_)), "{err:?}");
    assert!(
        !err.to_string().contains(&key16),
        "a master key was echoed: {err}"
    );
}

// ───────────────────────── card files and answers ─────────────────────────

/// One BER-TLV data object with a one-byte tag (lengths below 256).
fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match value.len() {
        n if n < 0x80 => out.push(n as u8),
        n => out.extend_from_slice(&[0x81, n as u8]),
    }
    out.extend_from_slice(value);
    out
}

/// EF.ID as applet spec §6.1 lays it out, with `change` applied to the list
/// of (tag, value) before encoding. 1369/06/31 is 1990-09-22.
fn ef_id(change: impl FnOnce(&mut Vec<(u8, Vec<u8>)>)) -> Vec<u8> {
    let mut objects: Vec<(u8, Vec<u8>)> = vec![
        (0xC1, b"0012345679".to_vec()),
        (0xC2, "علی".as_bytes().to_vec()),
        (0xC3, "کریمی".as_bytes().to_vec()),
        (0xC4, "حسین".as_bytes().to_vec()),
        (0xC5, b"ALI".to_vec()),
        (0xC6, b"KARIMI".to_vec()),
        (0xC7, b"HOSSEIN".to_vec()),
        (0xC8, b"13690631".to_vec()),
        (0xC9, b"19900922".to_vec()),
        (0xCA, b"M".to_vec()),
        (0xCB, vec![0x4B, 0x41, 0, 1, 0, 0, 0, 1]),
        (0xCC, b"0000000018".to_vec()),
        (0xCD, b"20251125".to_vec()),
        (0xCE, b"20351125".to_vec()),
        (0xCF, b"140409040007".to_vec()),
    ];
    change(&mut objects);
    let body: Vec<u8> = objects.iter().flat_map(|(t, v)| tlv(*t, v)).collect();
    tlv(0xE1, &body)
}

#[test]
fn every_bad_ef_id_is_named_by_tag() {
    let base = CardIdentity::decode(&ef_id(|_| {})).expect("the spec's layout decodes");
    assert_eq!(base.national_code.as_str(), "0012345679");
    let set = |tag: u8, value: &'static [u8]| -> Change {
        Box::new(move |o| {
            if let Some(slot) = o.iter_mut().find(|(t, _)| *t == tag) {
                slot.1 = value.to_vec();
            }
        })
    };
    let cases: Vec<(&str, Change, IdentityCheck, &str)> = vec![
        (
            "missing CRN",
            Box::new(|o| o.retain(|(t, _)| *t != 0xCC)),
            |e| matches!(e, IdentityError::Missing { tag: 0xCC, .. }),
            "lacks tag CC",
        ),
        (
            "duplicate gender",
            Box::new(|o| o.push((0xCA, b"F".to_vec()))),
            |e| matches!(e, IdentityError::Duplicate(0xCA)),
            "more than once",
        ),
        (
            "unknown tag",
            Box::new(|o| o.push((0xDE, b"x".to_vec()))),
            |e| matches!(e, IdentityError::Unknown(0xDE)),
            "does not define",
        ),
        (
            "short national code",
            set(0xC1, b"00123"),
            |e| {
                matches!(
                    e,
                    IdentityError::Length {
                        tag: 0xC1,
                        len: 5,
                        ..
                    }
                )
            },
            "expected 10 to 10",
        ),
        (
            "bad check digit",
            set(0xC1, b"0012345678"),
            |e| matches!(e, IdentityError::Encoding { tag: 0xC1, .. }),
            "check digit",
        ),
        (
            "no such Solar day",
            set(0xC8, b"14000731"),
            |e| matches!(e, IdentityError::Encoding { tag: 0xC8, .. }),
            "no such day",
        ),
        (
            "dates disagree",
            set(0xC9, b"19900923"),
            |e| matches!(e, IdentityError::Encoding { tag: 0xC9, .. }),
            "not the same day",
        ),
        (
            "expiry before issue",
            set(0xCE, b"20201125"),
            |e| matches!(e, IdentityError::Encoding { tag: 0xCE, .. }),
            "not after issue",
        ),
        (
            "gender code",
            set(0xCA, b"Q"),
            |e| matches!(e, IdentityError::Encoding { tag: 0xCA, .. }),
            "gender",
        ),
    ];
    for (what, change, is, says) in cases {
        let err = CardIdentity::decode(&ef_id(change)).expect_err(what);
        assert!(is(&err), "{what}: {err:?}");
        let message = err.to_string();
        assert!(
            message.contains("EF.ID") && message.contains(says),
            "{what}: {message:?} lacks {says:?}"
        );
    }
    let err = CardIdentity::decode(&tlv(0xE2, &[])).expect_err("wrong template");
    assert!(matches!(err, IdentityError::NotTemplate(0xE2)), "{err:?}");
    let whole = ef_id(|_| {});
    let err = CardIdentity::decode(&whole[..whole.len() - 3]).expect_err("truncated");
    assert!(matches!(err, IdentityError::Tlv(_)), "{err:?}");
}

#[test]
fn bad_cplc_and_public_keys_from_a_card_are_named() {
    // GET DATA 9F7F must hold 42 bytes (GP Card Spec v2.3, CPLC).
    let err = Cplc::parse(&[0x9F, 0x7F, 0x03, 1, 2, 3]).expect_err("short CPLC");
    assert!(err.to_string().contains("3 bytes, expected 42"), "{err}");
    // GENERATE ASYMMETRIC KEY PAIR answers 7F49 { 86 04‖X‖Y } for P-256.
    let compressed = [0x7F, 0x49, 0x23, 0x86, 0x21, 0x02]
        .iter()
        .copied()
        .chain([0xAB; 32])
        .collect::<Vec<_>>();
    let err = kart_perso::pki::HolderKey::from_card(&compressed)
        .expect_err("compressed point")
        .to_string();
    assert!(err.contains("EC point of 33 bytes, expected 65"), "{err}");
    // … and 7F49 { 81 modulus 82 exponent } for RSA: a 512-bit modulus is
    // no holder key.
    let mut short_rsa = vec![0x7F, 0x49, 0x47, 0x81, 0x40];
    short_rsa.extend([0xC3; 64]);
    short_rsa.extend([0x82, 0x03, 0x01, 0x00, 0x01]);
    let err = kart_perso::pki::HolderKey::from_card(&short_rsa)
        .expect_err("short RSA modulus")
        .to_string();
    assert!(err.contains("RSA modulus of 512 bits"), "{err}");
}

#[test]
fn security_objects_that_are_not_or_no_longer_valid_are_refused() {
    let world = World::new().expect("world");
    let pki = &world.issuer.pki;
    let now = time::OffsetDateTime::now_utc();
    let files: [(u16, &[u8]); 2] = [(0x0101, b"identity"), (0x0102, Photo::Small.bytes())];
    let sod = build_security_object(&files, &pki.document_signer, &pki.document_signer_key, now)
        .expect("build");

    let err = SecurityObject::parse(&sod[..sod.len() - 1]).expect_err("truncated");
    assert!(matches!(err, SecurityObjectError::Malformed(_)), "{err:?}");
    let err = SecurityObject::parse(&vec![0x30; 70_000]).expect_err("too large");
    assert!(
        matches!(err, SecurityObjectError::TooLarge { len: 70_000, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("not a security object"), "{err}");

    let parsed = SecurityObject::parse(&sod).expect("parses");
    let altered: [(u16, &[u8]); 2] = [(0x0101, b"identitY"), (0x0102, Photo::Small.bytes())];
    let v = parsed.verify(&pki.root, &altered, now);
    assert!(!v.passed());
    assert_eq!(v.files[0].status, FileStatus::HashMismatch);
    assert!(
        v.failures().iter().any(|f| f == "file 0101 hash mismatch"),
        "{:?}",
        v.failures()
    );
    let v = parsed.verify(&pki.card_ca, &files, now);
    assert!(
        matches!(v.signer_trusted, Err(PkiError::WrongIssuer { .. })),
        "{:?}",
        v.signer_trusted
    );

    // A flipped bit in the signature (the last bytes of the DER).
    let mut forged = sod.clone();
    let last = forged.len() - 2;
    forged[last] ^= 1;
    if let Ok(parsed) = SecurityObject::parse(&forged) {
        let v = parsed.verify(&pki.root, &files, now);
        assert!(v.signature.is_err(), "forged signature accepted");
    }
}

/// A card that answers every APDU with the same bytes.
struct Stuck(Vec<u8>);

impl Transport for Stuck {
    fn transmit(&mut self, _apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
        rx.clone_from(&self.0);
        Ok(())
    }
}

#[test]
fn hostile_response_apdus_end_in_bounded_typed_errors() {
    let get_challenge = Command::new(0x00, 0x84, 0x00, 0x00)
        .with_le(8)
        .expect("command");
    // ISO 7816-4: a response APDU has at least SW1 SW2.
    for answer in [vec![], vec![0x90]] {
        let err = Card::new(Stuck(answer.clone()))
            .send(&get_challenge)
            .expect_err("short");
        assert_eq!(err, CardError::MalformedResponse(answer.len()));
        assert!(err.to_string().contains("not a response APDU"), "{err}");
    }
    // 61xx forever: GET RESPONSE is bounded.
    let mut card = Card::new(Stuck(vec![0xAA, 0x61, 0xFF]));
    let err = card.send(&get_challenge).expect_err("endless 61xx");
    assert!(matches!(err, CardError::ResponseTooLong(_)), "{err:?}");
    assert!(card.counters().apdus <= 1 + kart_apdu::MAX_GET_RESPONSES as u64);
    // 6Cxx forever: one re-send, then the status is the answer.
    let mut card = Card::new(Stuck(vec![0x6C, 0x04]));
    let err = card.send_ok(&get_challenge).expect_err("endless 6Cxx");
    assert!(matches!(err, CardError::Status(_)), "{err:?}");
    assert_eq!(card.counters().apdus, 2);
    // Reading such a card says which step failed.
    let spec = kart_spec::Spec::embedded().expect("spec");
    let err = read_card(&mut Card::new(Stuck(vec![0x90])), &spec, None, None).expect_err("read");
    assert!(matches!(err, ReadError::Card { .. }), "{err:?}");
}

/// Garbage from the simulated card from APDU `n` on, at every point of a
/// personalization: always a typed error naming the step, never a panic,
/// never a card reported as personalized.
#[test]
fn garbage_from_a_simulated_card_at_every_apdu_is_a_typed_error() {
    let world = World::new().expect("world");
    let records = world
        .batch("garbage.csv", 50, 1, Photo::Small)
        .expect("records");
    let record = &records[0];
    let now = time::OffsetDateTime::now_utc();
    for profile in &world.spec.profiles {
        // The APDU count of a clean run bounds where garbage can start.
        let clean = {
            let mut card = Card::with_caps(world.card(profile, 1).expect("sim"), profile.caps());
            let info = probe(&mut card, profile).expect("probe");
            run(&world, &mut card, profile, &info, record, now).expect("clean run");
            card.into_inner().log().apdus() as u64
        };
        for n in 1..=clean {
            let mut sim = world.card(profile, 1).expect("sim");
            sim.set_faults(Faults::default().garbage_from(n));
            let mut card = Card::with_caps(sim, profile.caps());
            let result = probe(&mut card, profile)
                .and_then(|info| run(&world, &mut card, profile, &info, record, now));
            let err = result.expect_err("garbage never personalizes a card");
            let message = err.to_string();
            match &err {
                PersoError::Malformed { step, .. }
                | PersoError::CardRefused { step, .. }
                | PersoError::Card { step, .. }
                | PersoError::Transport { step, .. } => {
                    assert!(
                        !step.is_empty() && message.contains(step.as_str()),
                        "{message}"
                    );
                }
                PersoError::SecureChannel(_) => assert!(message.starts_with("secure channel: ")),
                other => panic!("{}: garbage from APDU {n} gave {other:?}", profile.id),
            }
        }
    }
}

fn run<T: Transport>(
    world: &World,
    card: &mut Card<T>,
    profile: &Profile,
    info: &kart_perso::personalize::CardInfo,
    record: &IdentityRecord,
    now: time::OffsetDateTime,
) -> Result<(), PersoError> {
    let pins = Pins::generate(None).expect("pins");
    let crn = kart_perso::crn::crn_of(1);
    let job = Job::new(record, &crn, &pins, now.date());
    personalize(card, profile, &world.issuer, info, &job, now).map(drop)
}
