//! Certificates and keys made by the system `openssl` (an independent
//! implementation) load and validate in kart's chain code, and bad chains
//! fail with the right typed error.

use std::path::Path;

use kart_perso::pki::{validate_chain, Certificate, IssuerKey, KeyAlgorithm, KeyUsage, PkiError};
use kart_testkit::openssl::{ec_key, issue, openssl, openssl_output, root_ca, rsa_key};
use time::{Duration, OffsetDateTime};

fn cert(path: &Path) -> Certificate {
    Certificate::load(path).unwrap()
}

#[test]
fn openssl_ec_chain_validates() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let root_key = ec_key(dir, "root", "secp384r1");
    let root = root_ca(
        dir,
        "root",
        &root_key,
        "/C=IR/O=OpenSSL Test/CN=OpenSSL Root",
        3650,
    );
    let ds_key = ec_key(dir, "ds", "prime256v1");
    let ds = issue(
        dir,
        "ds",
        &ds_key,
        "/C=IR/CN=OpenSSL DS",
        &root,
        &root_key,
        "leaf_ext",
        365,
    );

    let now = OffsetDateTime::now_utc();
    validate_chain(
        &cert(&ds),
        &[],
        &cert(&root),
        now,
        KeyUsage::DigitalSignature,
    )
    .unwrap();
    assert_eq!(cert(&ds).subject(), "C=IR, CN=OpenSSL DS");
    assert_eq!(
        IssuerKey::load(&root_key).unwrap().algorithm(),
        KeyAlgorithm::EcdsaP384Sha384
    );
    assert_eq!(
        IssuerKey::load(&ds_key).unwrap().algorithm(),
        KeyAlgorithm::EcdsaP256Sha256
    );
}

#[test]
fn openssl_rsa_chain_with_intermediate_validates() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let root_key = rsa_key(dir, "root");
    let root = root_ca(dir, "root", &root_key, "/C=IR/CN=RSA Root", 3650);
    let ca_key = rsa_key(dir, "ca");
    let ca = issue(
        dir,
        "ca",
        &ca_key,
        "/C=IR/CN=RSA Sub CA",
        &root,
        &root_key,
        "ca_ext",
        1000,
    );
    let leaf_key = ec_key(dir, "leaf", "prime256v1");
    let leaf = issue(
        dir,
        "leaf",
        &leaf_key,
        "/C=IR/CN=Leaf",
        &ca,
        &ca_key,
        "leaf_ext",
        365,
    );

    let now = OffsetDateTime::now_utc();
    validate_chain(
        &cert(&leaf),
        &[cert(&ca)],
        &cert(&root),
        now,
        KeyUsage::DigitalSignature,
    )
    .unwrap();
    assert_eq!(
        IssuerKey::load(&root_key).unwrap().algorithm(),
        KeyAlgorithm::RsaPkcs1Sha256
    );
    // The intermediate is missing: the leaf does not name the root as issuer.
    let err = validate_chain(
        &cert(&leaf),
        &[],
        &cert(&root),
        now,
        KeyUsage::DigitalSignature,
    );
    assert!(matches!(err, Err(PkiError::WrongIssuer { .. })), "{err:?}");
}

#[test]
fn der_certificate_and_der_key_load_too() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let key = ec_key(dir, "root", "prime256v1");
    let root = root_ca(dir, "root", &key, "/CN=DER Root", 30);
    openssl(
        dir,
        &[
            "x509", "-in", "root.pem", "-outform", "DER", "-out", "root.der",
        ],
    );
    openssl(
        dir,
        &[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            "root.key",
            "-outform",
            "DER",
            "-out",
            "root.key.der",
        ],
    );
    assert_eq!(cert(&dir.join("root.der")), cert(&root));
    IssuerKey::load(&dir.join("root.key.der")).unwrap();
}

#[test]
fn expired_and_not_yet_valid_certificates_are_rejected() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let root_key = ec_key(dir, "root", "prime256v1");
    let root = root_ca(dir, "root", &root_key, "/CN=Root", 3650);
    let ds_key = ec_key(dir, "ds", "prime256v1");
    let ds = issue(
        dir,
        "ds",
        &ds_key,
        "/CN=Short DS",
        &root,
        &root_key,
        "leaf_ext",
        30,
    );

    let later = OffsetDateTime::now_utc() + Duration::days(60);
    let err = validate_chain(
        &cert(&ds),
        &[],
        &cert(&root),
        later,
        KeyUsage::DigitalSignature,
    );
    match err {
        Err(PkiError::Expired { subject, .. }) => assert_eq!(subject, "CN=Short DS"),
        other => panic!("expected Expired, got {other:?}"),
    }
    let earlier = OffsetDateTime::now_utc() - Duration::days(2);
    let err = validate_chain(
        &cert(&ds),
        &[],
        &cert(&root),
        earlier,
        KeyUsage::DigitalSignature,
    );
    assert!(matches!(err, Err(PkiError::NotYetValid { .. })), "{err:?}");
}

#[test]
fn certificate_signed_by_another_key_with_the_same_name_is_a_bad_signature() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let real_key = ec_key(dir, "real", "prime256v1");
    let real = root_ca(dir, "real", &real_key, "/CN=Issuer Root", 3650);
    let fake_key = ec_key(dir, "fake", "prime256v1");
    let fake = root_ca(dir, "fake", &fake_key, "/CN=Issuer Root", 3650);
    let ds_key = ec_key(dir, "ds", "prime256v1");
    let ds = issue(
        dir, "ds", &ds_key, "/CN=DS", &fake, &fake_key, "leaf_ext", 365,
    );

    let now = OffsetDateTime::now_utc();
    let err = validate_chain(
        &cert(&ds),
        &[],
        &cert(&real),
        now,
        KeyUsage::DigitalSignature,
    );
    assert!(matches!(err, Err(PkiError::BadSignature { .. })), "{err:?}");
    validate_chain(
        &cert(&ds),
        &[],
        &cert(&fake),
        now,
        KeyUsage::DigitalSignature,
    )
    .unwrap();
}

#[test]
fn certificate_from_a_differently_named_root_is_wrong_issuer() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let a_key = ec_key(dir, "a", "prime256v1");
    let a = root_ca(dir, "a", &a_key, "/CN=Root A", 3650);
    let b_key = ec_key(dir, "b", "prime256v1");
    let b = root_ca(dir, "b", &b_key, "/CN=Root B", 3650);
    let ds_key = ec_key(dir, "ds", "prime256v1");
    let ds = issue(dir, "ds", &ds_key, "/CN=DS", &b, &b_key, "leaf_ext", 365);
    let err = validate_chain(
        &cert(&ds),
        &[],
        &cert(&a),
        OffsetDateTime::now_utc(),
        KeyUsage::DigitalSignature,
    );
    match err {
        Err(PkiError::WrongIssuer {
            issuer, expected, ..
        }) => {
            assert_eq!(
                (issuer.as_str(), expected.as_str()),
                ("CN=Root B", "CN=Root A")
            );
        }
        other => panic!("expected WrongIssuer, got {other:?}"),
    }
}

#[test]
fn leaf_used_as_issuer_is_not_a_ca() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let root_key = ec_key(dir, "root", "prime256v1");
    let root = root_ca(dir, "root", &root_key, "/CN=Root", 3650);
    let ds_key = ec_key(dir, "ds", "prime256v1");
    let ds = issue(
        dir, "ds", &ds_key, "/CN=DS", &root, &root_key, "leaf_ext", 365,
    );
    let leaf_key = ec_key(dir, "leaf", "prime256v1");
    let leaf = issue(
        dir, "leaf", &leaf_key, "/CN=Leaf", &ds, &ds_key, "leaf_ext", 100,
    );
    let err = validate_chain(
        &cert(&leaf),
        &[cert(&ds)],
        &cert(&root),
        OffsetDateTime::now_utc(),
        KeyUsage::DigitalSignature,
    );
    match err {
        Err(PkiError::NotCa { subject }) => assert_eq!(subject, "CN=DS"),
        other => panic!("expected NotCa, got {other:?}"),
    }
}

#[test]
fn path_length_constraint_is_enforced() {
    // root (pathlen 1) -> ca1 (pathlen 1) -> ca2 (pathlen 1) -> leaf: two CAs below root.
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let root_key = ec_key(dir, "root", "prime256v1");
    let root = root_ca(dir, "root", &root_key, "/CN=Root", 3650);
    let k1 = ec_key(dir, "ca1", "prime256v1");
    let ca1 = issue(dir, "ca1", &k1, "/CN=CA1", &root, &root_key, "ca_ext", 1000);
    let k2 = ec_key(dir, "ca2", "prime256v1");
    let ca2 = issue(dir, "ca2", &k2, "/CN=CA2", &ca1, &k1, "ca_ext", 1000);
    let lk = ec_key(dir, "leaf", "prime256v1");
    let leaf = issue(dir, "leaf", &lk, "/CN=Leaf", &ca2, &k2, "leaf_ext", 100);
    let err = validate_chain(
        &cert(&leaf),
        &[cert(&ca2), cert(&ca1)],
        &cert(&root),
        OffsetDateTime::now_utc(),
        KeyUsage::DigitalSignature,
    );
    match err {
        Err(PkiError::PathLengthExceeded {
            subject,
            allowed: 1,
            found: 2,
        }) => assert_eq!(subject, "CN=Root"),
        other => panic!("expected PathLengthExceeded, got {other:?}"),
    }
    // openssl agrees that this chain is invalid.
    let out = openssl_output(
        dir,
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "ca1.pem",
            "-untrusted",
            "ca2.pem",
            "leaf.pem",
        ],
    );
    assert!(!out.status.success());
}

#[test]
fn leaf_without_key_usage_fails_when_digital_signature_is_required() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let root_key = ec_key(dir, "root", "prime256v1");
    let root = root_ca(dir, "root", &root_key, "/CN=Root", 3650);
    let k = ec_key(dir, "leaf", "prime256v1");
    let leaf = issue(
        dir,
        "leaf",
        &k,
        "/CN=No KU",
        &root,
        &root_key,
        "leaf_no_ku",
        100,
    );
    let now = OffsetDateTime::now_utc();
    let err = validate_chain(
        &cert(&leaf),
        &[],
        &cert(&root),
        now,
        KeyUsage::DigitalSignature,
    );
    assert!(
        matches!(
            err,
            Err(PkiError::MissingKeyUsage {
                usage: "digitalSignature",
                ..
            })
        ),
        "{err:?}"
    );
    validate_chain(&cert(&leaf), &[], &cert(&root), now, KeyUsage::Any).unwrap();
}

#[test]
fn sec1_ec_key_is_rejected_with_a_conversion_hint() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    ec_key(dir, "k", "prime256v1");
    let err = IssuerKey::load(&dir.join("k.sec1.pem")).unwrap_err();
    assert!(matches!(err, PkiError::Malformed { .. }), "{err:?}");
    assert!(err.to_string().contains("openssl pkcs8 -topk8"), "{err}");
}

#[test]
fn issuer_key_signatures_verify_with_openssl() {
    // Signatures made by kart (ring) checked by `openssl dgst -verify`.
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let message = b"kart issuer key signature test";
    std::fs::write(dir.join("msg"), message).unwrap();
    for (name, key, digest) in [
        ("ec256", ec_key(dir, "ec256", "prime256v1"), "-sha256"),
        ("ec384", ec_key(dir, "ec384", "secp384r1"), "-sha384"),
        ("rsa", rsa_key(dir, "rsa"), "-sha256"),
    ] {
        let k = IssuerKey::load(&key).unwrap();
        std::fs::write(dir.join(format!("{name}.sig")), k.sign(message).unwrap()).unwrap();
        let pubkey = format!("{name}.pub");
        openssl(
            dir,
            &[
                "pkey",
                "-in",
                key.to_str().unwrap(),
                "-pubout",
                "-out",
                &pubkey,
            ],
        );
        let sig = format!("{name}.sig");
        openssl(
            dir,
            &[
                "dgst",
                digest,
                "-verify",
                &pubkey,
                "-signature",
                &sig,
                "msg",
            ],
        );
        std::fs::write(dir.join("msg2"), b"another message").unwrap();
        let bad = openssl_output(
            dir,
            &[
                "dgst",
                digest,
                "-verify",
                &pubkey,
                "-signature",
                &sig,
                "msg2",
            ],
        );
        assert!(
            !bad.status.success(),
            "{name}: signature must not verify another message"
        );
    }
}

#[test]
fn issuer_key_debug_is_redacted() {
    let d = tempfile::tempdir().unwrap();
    let key = IssuerKey::load(&ec_key(d.path(), "k", "prime256v1")).unwrap();
    let shown = format!("{key:?}");
    assert_eq!(
        shown,
        "IssuerKey { algorithm: EcdsaP256Sha256, key: <redacted> }"
    );
}

#[test]
fn a_huge_subject_is_quoted_short_in_errors() {
    use std::fmt::Write as _;
    // 30 organizational units of 60 characters: an 1800-character subject.
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let ou = "u".repeat(60);
    let mut subject = String::new();
    for i in 0..30 {
        write!(subject, "/OU={ou}{i:02}").unwrap();
    }
    subject.push_str("/CN=Big");
    let key = ec_key(dir, "root", "prime256v1");
    let root = root_ca(dir, "root", &key, &subject, 30);
    let root = cert(&root);
    assert!(root.subject().len() > 1800, "{}", root.subject());
    let later = OffsetDateTime::now_utc() + Duration::days(365);
    let err = validate_chain(&root, &[], &root, later, KeyUsage::Any).unwrap_err();
    assert!(matches!(err, PkiError::Expired { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.len() < 400, "{} bytes: {msg}", msg.len());
    assert!(msg.contains('…'), "{msg}");
}
