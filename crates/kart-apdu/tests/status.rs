//! Status words against ISO/IEC 7816-4:2020 §5.6 (Tables 5 and 6) and
//! `GlobalPlatform` Card Specification v2.3.1 §11.1.3.

use kart_apdu::{Response, ResponseError, Status, StatusWord};

#[test]
fn table6_status_words_classify() {
    let cases = [
        (0x9000, Status::Success),
        (0x6100, Status::BytesAvailable(0)),
        (0x6282, Status::EndOfFile),
        (0x63C0, Status::VerificationFailed { retries_left: 0 }),
        (0x6581, Status::MemoryFailure),
        (0x6700, Status::WrongLength),
        (0x6883, Status::LastCommandOfChainExpected),
        (0x6884, Status::ChainingNotSupported),
        (0x6982, Status::SecurityStatusNotSatisfied),
        (0x6983, Status::AuthenticationMethodBlocked),
        (0x6988, Status::SmDataObjectsIncorrect),
        (0x6A82, Status::FileNotFound),
        (0x6A86, Status::IncorrectP1P2),
        (0x6B00, Status::WrongParameters),
        (0x6C10, Status::WrongLe(0x10)),
        (0x6D00, Status::InsNotSupported),
        (0x6E00, Status::ClaNotSupported),
        (0x6F00, Status::NoPreciseDiagnosis),
        (0x9F10, Status::Unknown(0x9F10)),
    ];
    for (sw, status) in cases {
        assert_eq!(StatusWord(sw).status(), status, "{sw:04X}");
        assert_eq!(u16::from(StatusWord::from(sw)), sw);
    }
}

#[test]
fn only_9000_is_success_and_62_63_are_warnings() {
    assert!(StatusWord::SUCCESS.check().is_ok());
    let err = StatusWord(0x6A82).check().unwrap_err();
    assert_eq!(err.status(), Status::FileNotFound);
    assert_eq!(
        err.to_string(),
        "card answered 6A82 (file or application not found)"
    );
    assert!(StatusWord(0x6282).is_warning() && StatusWord(0x63C1).is_warning());
    assert!(!StatusWord(0x9000).is_warning() && !StatusWord(0x6982).is_warning());
}

// §5.1: a response is an optional data field followed by SW1 SW2.
#[test]
fn response_needs_two_status_bytes() {
    assert_eq!(
        Response::from_bytes(&[0x90]),
        Err(ResponseError::TooShort(1))
    );
    assert_eq!(Response::from_bytes(&[]), Err(ResponseError::TooShort(0)));
    let r = Response::from_bytes(&[0xCA, 0xFE, 0x62, 0x82]).unwrap();
    assert_eq!(
        (r.data(), r.sw().status()),
        (&[0xCA, 0xFE][..], Status::EndOfFile)
    );
    assert_eq!(r.to_vec(), [0xCA, 0xFE, 0x62, 0x82]);
    assert!(r.into_data().is_err());
}
