//! Passive authentication reports each failure precisely, and the parser
//! rejects malformed input with typed errors, never a panic.

use std::sync::OnceLock;

use kart_perso::pki::{create_demo_issuer, IssuerPki, PkiError};
use kart_perso::security_object::{
    build_security_object, FileCheck, FileStatus, SecurityObject, SecurityObjectError, MAX_FILES,
    MAX_SECURITY_OBJECT_LEN,
};
use proptest::prelude::*;
use time::{Duration, OffsetDateTime};

const FILES: [(u16, &[u8]); 3] = [
    (0x0101, b"identity record"),
    (0x0102, b"facial image bytes"),
    (0x0103, b"fingerprint template"),
];

struct Fixture {
    _dir: tempfile::TempDir,
    pki: IssuerPki,
    now: OffsetDateTime,
    sod: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        create_demo_issuer(dir.path(), now).unwrap();
        let pki = IssuerPki::load(dir.path()).unwrap();
        let sod =
            build_security_object(&FILES, &pki.document_signer, &pki.document_signer_key, now)
                .unwrap();
        Fixture {
            _dir: dir,
            pki,
            now,
            sod,
        }
    })
}

fn statuses(checks: &[FileCheck]) -> Vec<(u16, FileStatus)> {
    checks.iter().map(|c| (c.fid, c.status)).collect()
}

#[test]
fn intact_card_passes_every_check() {
    let f = fixture();
    let report = SecurityObject::parse(&f.sod)
        .unwrap()
        .verify(&f.pki.root, &FILES, f.now);
    assert!(report.passed(), "{:?}", report.failures());
    assert!(report.failures().is_empty());
    assert_eq!(
        statuses(&report.files),
        [
            (0x0101, FileStatus::Match),
            (0x0102, FileStatus::Match),
            (0x0103, FileStatus::Match)
        ]
    );
}

#[test]
fn tampered_file_fails_only_its_own_hash() {
    let f = fixture();
    let read: [(u16, &[u8]); 3] = [FILES[0], (0x0102, b"facial image byteZ"), FILES[2]];
    let report = SecurityObject::parse(&f.sod)
        .unwrap()
        .verify(&f.pki.root, &read, f.now);
    assert!(report.signature.is_ok() && report.signer_trusted.is_ok());
    assert_eq!(
        statuses(&report.files),
        [
            (0x0101, FileStatus::Match),
            (0x0102, FileStatus::HashMismatch),
            (0x0103, FileStatus::Match)
        ]
    );
    assert_eq!(report.failures(), ["file 0102 hash mismatch"]);
    assert!(!report.passed());
}

#[test]
fn missing_and_uncovered_files_are_reported() {
    let f = fixture();
    let read: [(u16, &[u8]); 3] = [FILES[0], FILES[2], (0x0200, b"extra")];
    let report = SecurityObject::parse(&f.sod)
        .unwrap()
        .verify(&f.pki.root, &read, f.now);
    assert_eq!(
        statuses(&report.files),
        [
            (0x0101, FileStatus::Match),
            (0x0102, FileStatus::NotOnCard),
            (0x0103, FileStatus::Match),
            (0x0200, FileStatus::NotInSecurityObject)
        ]
    );
    assert!(!report.passed());
}

#[test]
fn signature_by_a_key_other_than_the_signer_certificate_fails() {
    let f = fixture();
    // Document signer certificate, but the card CA's key signs.
    let sod =
        build_security_object(&FILES, &f.pki.document_signer, &f.pki.card_ca_key, f.now).unwrap();
    let report = SecurityObject::parse(&sod)
        .unwrap()
        .verify(&f.pki.root, &FILES, f.now);
    assert!(
        matches!(report.signature, Err(SecurityObjectError::BadSignature(_))),
        "{:?}",
        report.signature
    );
    assert!(report.signer_trusted.is_ok());
    assert!(!report.passed());
}

#[test]
fn signer_from_another_issuer_is_not_trusted() {
    let f = fixture();
    let other_dir = tempfile::tempdir().unwrap();
    create_demo_issuer(other_dir.path(), f.now).unwrap();
    let other = IssuerPki::load(other_dir.path()).unwrap();
    let sod = build_security_object(
        &FILES,
        &other.document_signer,
        &other.document_signer_key,
        f.now,
    )
    .unwrap();
    let report = SecurityObject::parse(&sod)
        .unwrap()
        .verify(&f.pki.root, &FILES, f.now);
    assert!(report.signature.is_ok(), "the object itself is well signed");
    // Same root name, different key: the chain signature fails.
    assert!(
        matches!(report.signer_trusted, Err(PkiError::BadSignature { .. })),
        "{:?}",
        report.signer_trusted
    );
    assert!(!report.passed());
}

#[test]
fn expired_signer_is_reported_as_expired() {
    let f = fixture();
    // The demo document signer is valid for 3 years.
    let later = f.now + Duration::days(365 * 4);
    let report = SecurityObject::parse(&f.sod)
        .unwrap()
        .verify(&f.pki.root, &FILES, later);
    assert!(report.signature.is_ok());
    assert!(
        matches!(&report.signer_trusted, Err(PkiError::Expired { subject, .. }) if subject.contains("Document Signer")),
        "{:?}",
        report.signer_trusted
    );
}

#[test]
fn altered_signed_hash_breaks_the_message_digest() {
    let f = fixture();
    let hash = ring::digest::digest(&ring::digest::SHA256, FILES[0].1);
    let at = f.sod.windows(32).position(|w| w == hash.as_ref()).unwrap();
    let mut sod = f.sod.clone();
    sod[at] ^= 0x80;
    let report = SecurityObject::parse(&sod)
        .unwrap()
        .verify(&f.pki.root, &FILES, f.now);
    assert!(
        matches!(
            report.signature,
            Err(SecurityObjectError::MessageDigestMismatch)
        ),
        "{:?}",
        report.signature
    );
    assert_eq!(report.files[0].status, FileStatus::HashMismatch);
}

#[test]
fn build_rejects_bad_file_lists() {
    let f = fixture();
    let build = |files: &[(u16, &[u8])]| {
        build_security_object(
            files,
            &f.pki.document_signer,
            &f.pki.document_signer_key,
            f.now,
        )
    };
    assert!(matches!(build(&[]), Err(SecurityObjectError::Files(_))));
    let dup: [(u16, &[u8]); 2] = [(0x0101, b"a"), (0x0101, b"b")];
    assert!(build(&dup)
        .unwrap_err()
        .to_string()
        .contains("0101 given twice"));
    let many: Vec<(u16, &[u8])> = (0..=MAX_FILES as u16).map(|i| (i, &b"x"[..])).collect();
    assert!(matches!(build(&many), Err(SecurityObjectError::Files(_))));
    assert!(build(&many[..MAX_FILES]).is_ok());
}

#[test]
fn malformed_inputs_are_typed_errors() {
    let f = fixture();
    let mut trailing = f.sod.clone();
    trailing.push(0);
    assert!(matches!(
        SecurityObject::parse(&trailing),
        Err(SecurityObjectError::Malformed(_))
    ));
    assert!(matches!(
        SecurityObject::parse(&f.sod[..f.sod.len() - 1]),
        Err(SecurityObjectError::Malformed(_))
    ));
    assert!(matches!(
        SecurityObject::parse(&[]),
        Err(SecurityObjectError::Malformed(_))
    ));
    let huge = vec![0x30; MAX_SECURITY_OBJECT_LEN + 1];
    assert!(matches!(
        SecurityObject::parse(&huge),
        Err(SecurityObjectError::TooLarge { .. })
    ));
    // A certificate is a SEQUENCE too, but not a ContentInfo.
    assert!(SecurityObject::parse(f.pki.root.der()).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parser_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = SecurityObject::parse(&bytes);
    }

    #[test]
    fn parser_and_verifier_never_panic_on_mutated_objects(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let f = fixture();
        let mut sod = f.sod.clone();
        for (at, byte) in edits {
            let i = at.index(sod.len());
            sod[i] = byte;
        }
        if truncate {
            sod.truncate(cut.index(sod.len()));
        }
        if let Ok(parsed) = SecurityObject::parse(&sod) {
            let report = parsed.verify(&f.pki.root, &FILES, f.now);
            let _ = report.failures();
        }
    }
}
