//! Field-level validation: national code, tracking code, dates, text, PIN,
//! gender, photo. Vectors come from independent sources, named per test.

use kart_perso::record::{
    normalize_persian, Gender, LatinText, NationalCode, PersianText, Photo, Pin, Problem,
    SolarDate, TrackingCode, Validator,
};

// National codes computed independently with this Python one-liner (design.md §3 rule):
//   python3 -c "b='001234567';t=sum(int(b[i])*(10-i) for i in range(9))%11;print(b+str(t if t<2 else 11-t))"
// giving 0012345679 (r=2), 1234567891 (r=1), 9876543210 (r=0), 2720010121 (r=1), 0123456789 (r=2).
#[test]
fn national_codes_valid_per_independent_computation() {
    for code in [
        "0012345679",
        "1234567891",
        "9876543210",
        "2720010121",
        "0123456789",
        "0000000019",
    ] {
        assert_eq!(NationalCode::parse(code).unwrap().as_str(), code);
    }
}

#[test]
fn national_code_wrong_check_digit_names_both_digits() {
    assert_eq!(
        NationalCode::parse("0012345678"),
        Err(Problem::CheckDigit {
            found: 8,
            expected: 9
        })
    );
    assert_eq!(
        NationalCode::parse("9876543211"),
        Err(Problem::CheckDigit {
            found: 1,
            expected: 0
        })
    );
}

#[test]
fn national_code_accepts_persian_and_arabic_indic_digits() {
    assert_eq!(
        NationalCode::parse("۰۰۱۲۳۴۵۶۷۹").unwrap().as_str(),
        "0012345679"
    );
    assert_eq!(
        NationalCode::parse("٠٠١٢٣٤٥٦٧٩").unwrap().as_str(),
        "0012345679"
    );
    assert_eq!(
        NationalCode::parse(" 0012345679 ").unwrap().as_str(),
        "0012345679"
    );
}

#[test]
fn national_code_rejects_same_digits_length_and_non_digits() {
    // 4444444444 passes the check-digit rule (r = 7, 11 - 7 = 4) but is a placeholder.
    assert_eq!(
        NationalCode::parse("4444444444"),
        Err(Problem::AllSameDigit { digit: '4' })
    );
    assert_eq!(
        NationalCode::parse("0000000000"),
        Err(Problem::AllSameDigit { digit: '0' })
    );
    assert_eq!(
        NationalCode::parse("001234567"),
        Err(Problem::WrongLength {
            found: 9,
            expected: 10
        })
    );
    assert_eq!(
        NationalCode::parse("00123a5679"),
        Err(Problem::NotDigit {
            found: 'a',
            position: 6
        })
    );
    // Other Unicode digits (here Devanagari) are not accepted.
    assert!(matches!(
        NationalCode::parse("००१२३४५६७९"),
        Err(Problem::NotDigit { .. })
    ));
}

// Luhn check digits computed independently with Python (ISO/IEC 7812-1 algorithm):
//   def luhn(s): d=[int(c) for c in s][::-1]; t=sum((2*x-9 if 2*x>9 else 2*x) if i%2==0 else x for i,x in enumerate(d)); return (10-t%10)%10
// 14040904000 -> 7, 10000000000 -> 8, 99999999999 -> 1, 12345678901 -> 5.
#[test]
fn tracking_codes_with_luhn_check_digit() {
    for code in [
        "140409040007",
        "100000000008",
        "999999999991",
        "123456789015",
    ] {
        assert!(TrackingCode::parse(code).is_ok(), "{code}");
    }
    assert_eq!(
        TrackingCode::parse("140409040008"),
        Err(Problem::CheckDigit {
            found: 8,
            expected: 7
        })
    );
    // Swapping two neighbours is caught.
    assert!(TrackingCode::parse("140409040070").is_err());
    assert_eq!(
        TrackingCode::parse("14040904000"),
        Err(Problem::WrongLength {
            found: 11,
            expected: 12
        })
    );
    assert_eq!(
        TrackingCode::parse("۱۴۰۴۰۹۰۴۰۰۰۷").unwrap().as_str(),
        "140409040007"
    );
}

// Solar Hijri <-> Gregorian pairs from Python jdatetime 6.1.1 (independent of ICU4X):
//   python3 -c "import jdatetime; print(jdatetime.date(1399,5,19).togregorian())"
// and the well-known Nowruz 1400/01/01 = 2021-03-21.
#[test]
fn solar_dates_convert_like_jdatetime() {
    let pairs = [
        ("1400/01/01", (2021, 3, 21)),
        ("1399/05/19", (2020, 8, 9)),
        ("1399/12/30", (2021, 3, 20)),
        ("1403/12/30", (2025, 3, 20)),
        ("1357/11/22", (1979, 2, 11)),
        ("1300/01/01", (1921, 3, 21)),
        ("1375/06/31", (1996, 9, 21)),
        ("1404/09/04", (2025, 11, 25)),
    ];
    for (solar, gregorian) in pairs {
        let date = SolarDate::parse(solar).unwrap();
        assert_eq!(date.gregorian(), gregorian, "{solar}");
        assert_eq!(date.to_string(), solar);
        let (y, m, d) = gregorian;
        assert_eq!(SolarDate::from_gregorian(y, m, d), Some(date), "{solar}");
    }
}

#[test]
fn esfand_30th_only_in_leap_years() {
    // jdatetime: isleap() is True for 1399 and 1403, False for 1400, 1401, 1402, 1404.
    assert!(SolarDate::parse("1399/12/30").is_ok());
    assert!(SolarDate::parse("1403/12/30").is_ok());
    for year in [1400, 1401, 1402, 1404] {
        assert_eq!(
            SolarDate::parse(&format!("{year}/12/30")),
            Err(Problem::NoSuchDate {
                year,
                month: 12,
                day: 30
            })
        );
    }
    assert!(SolarDate::parse("1399/12/31").is_err());
    assert!(SolarDate::parse("1399/07/31").is_err(), "Mehr has 30 days");
    assert!(SolarDate::parse("1399/13/01").is_err());
    assert!(SolarDate::parse("1399/00/10").is_err());
}

#[test]
fn dates_accept_persian_digits_and_reject_other_shapes() {
    assert_eq!(
        SolarDate::parse("۱۳۹۹/۰۵/۱۹").unwrap().to_string(),
        "1399/05/19"
    );
    for bad in [
        "1399-05-19",
        "1399/5/19",
        "99/05/19",
        "1399/05/19/01",
        "",
        "abcd/ef/gh",
        "+399/05/19",
    ] {
        assert!(
            matches!(SolarDate::parse(bad), Err(Problem::DateFormat { .. })),
            "{bad:?}"
        );
    }
    assert_eq!(
        SolarDate::parse("1399/05/19").unwrap().compact(),
        "13990519"
    );
}

#[test]
fn birth_date_not_in_future_nor_implausibly_old() {
    let v = Validator::as_of(SolarDate::parse("1404/09/04").unwrap());
    assert!(v.birth_date("1404/09/04").is_ok());
    assert!(matches!(
        v.birth_date("1404/09/05"),
        Err(Problem::FutureDate { .. })
    ));
    assert!(v.birth_date("1280/01/01").is_ok());
    assert!(matches!(
        v.birth_date("1250/01/01"),
        Err(Problem::ImplausiblyOld { .. })
    ));
}

#[test]
fn persian_text_normalizes_yeh_kaf_space_and_keeps_zwnj() {
    // U+064A ARABIC YEH and U+0643 ARABIC KAF become U+06CC and U+06A9.
    let t = PersianText::parse(
        "  \u{0639}\u{0644}\u{064A}   \u{0643}\u{0631}\u{064A}\u{0645}\u{064A} ",
    )
    .unwrap();
    assert_eq!(
        t.as_str(),
        "\u{0639}\u{0644}\u{06CC} \u{06A9}\u{0631}\u{06CC}\u{0645}\u{06CC}"
    );
    let zwnj = PersianText::parse("احمدی\u{200C}نژاد").unwrap();
    assert!(zwnj.as_str().contains('\u{200C}'));
    // NFC: alef + combining madda above (U+0627 U+0653) composes to U+0622.
    assert_eq!(
        normalize_persian("\u{0627}\u{0653}\u{0631}\u{0634}"),
        "\u{0622}\u{0631}\u{0634}"
    );
}

#[test]
fn persian_text_rejects_latin_digits_and_overlong() {
    assert_eq!(
        PersianText::parse("عAلی"),
        Err(Problem::LatinInPersian {
            found: 'A',
            position: 2
        })
    );
    assert!(matches!(
        PersianText::parse("علی۲"),
        Err(Problem::NotPersianLetter { found: '۲', .. })
    ));
    assert_eq!(PersianText::parse("   "), Err(Problem::Empty));
    // applets-spec tag C2: at most 96 bytes; 49 two-byte letters = 98 bytes.
    let long = "ب".repeat(49);
    assert_eq!(
        PersianText::parse(&long),
        Err(Problem::TooLong { bytes: 98, max: 96 })
    );
    assert!(PersianText::parse(&"ب".repeat(48)).is_ok());
}

#[test]
fn latin_text_rejects_persian_and_symbols() {
    assert_eq!(
        LatinText::parse(" Ahmadi-Nejad ").unwrap().as_str(),
        "AHMADI-NEJAD"
    );
    assert!(LatinText::parse("O'Neil").is_ok());
    assert_eq!(
        LatinText::parse("Aliی"),
        Err(Problem::PersianInLatin {
            found: 'ی',
            position: 4
        })
    );
    assert!(matches!(
        LatinText::parse("Ali3"),
        Err(Problem::NotLatinLetter { found: '3', .. })
    ));
    assert!(matches!(
        LatinText::parse("José"),
        Err(Problem::NotLatinLetter { found: 'é', .. })
    ));
    // applets-spec tag C5: at most 64 bytes.
    assert_eq!(
        LatinText::parse(&"A".repeat(65)),
        Err(Problem::TooLong { bytes: 65, max: 64 })
    );
    assert!(LatinText::parse(&"a".repeat(64)).is_ok());
}

#[test]
fn pin_is_redacted_and_never_echoed_in_errors() {
    let pin = Pin::parse("98765432").unwrap();
    assert_eq!(format!("{pin:?}"), "Pin(<redacted>)");
    assert_eq!(pin.expose_digits(), b"98765432");
    assert_ne!(pin, Pin::parse("98765431").unwrap());
    let err = Pin::parse("123").unwrap_err().to_string();
    assert!(!err.contains("123"), "{err}");
    let err = Pin::parse("123456789").unwrap_err().to_string();
    assert!(!err.contains("123456789"), "{err}");
    assert!(Pin::parse("12 4").is_err());
}

#[test]
fn gender_codes() {
    assert_eq!(Gender::parse("M").unwrap().code(), 'M');
    assert_eq!(Gender::parse("f").unwrap(), Gender::Female);
    assert_eq!(Gender::parse("x").unwrap(), Gender::Unspecified);
    assert_eq!(
        Gender::parse("Z"),
        Err(Problem::Gender { found: "Z".into() })
    );
    assert!(Gender::parse("Male").is_err());
}

#[test]
fn photo_needs_soi_and_eoi_markers() {
    assert!(Photo::from_bytes(vec![0xFF, 0xD8, 0x00, 0xFF, 0xD9]).is_ok());
    assert!(Photo::from_bytes(vec![0xFF, 0xD8, 0xFF, 0xD9]).is_ok());
    assert!(Photo::from_bytes(vec![0xFF, 0xD8, 0xD9]).is_err());
    assert!(Photo::from_bytes(vec![0xFF, 0xD9]).is_err());
    assert!(Photo::from_bytes(vec![0x89, b'P', b'N', b'G', 0xFF, 0xD9]).is_err());
    assert!(Photo::from_bytes(Vec::new()).is_err());
}

/// Runs `f` on another thread and gives up after a few seconds, so a read
/// that blocks fails the test instead of hanging it.
fn within_seconds<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("the read blocked")
}

#[test]
fn photos_are_read_only_from_regular_files() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("face.jpg");
    kart_testkit::process::mkfifo(&fifo, &[]);
    let e = within_seconds(move || Photo::load(&fifo).unwrap_err());
    assert!(
        matches!(&e, Problem::File { reason, .. } if reason.contains("FIFO")),
        "{e}"
    );
    let e = within_seconds(|| Photo::load(std::path::Path::new("/dev/zero")).unwrap_err());
    assert!(
        matches!(&e, Problem::File { reason, .. } if reason.contains("not a regular file")),
        "{e}"
    );
    let e = Photo::load(dir.path()).unwrap_err();
    assert!(matches!(&e, Problem::File { .. }), "{e}");
}

#[test]
fn errors_quote_at_most_a_hundred_characters_of_a_huge_value() {
    let huge = "1".repeat(1_000_000);
    for e in [
        kart_perso::record::SolarDate::parse(&huge).unwrap_err(),
        Gender::parse(&huge).unwrap_err(),
    ] {
        let msg = e.to_string();
        assert!(msg.len() < 300, "{} bytes: {}", msg.len(), &msg[..300]);
    }
    let e = Gender::parse("\u{1b}[2J").unwrap_err().to_string();
    assert!(!e.contains('\u{1b}'), "{e}");
}
