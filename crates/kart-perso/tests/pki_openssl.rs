//! Certificates and keys made by the system `openssl` (an independent
//! implementation) load and validate in kart's chain code, and bad chains
//! fail with the right typed error.

use std::path::{Path, PathBuf};

use kart_perso::pki::{validate_chain, Certificate, IssuerKey, KeyAlgorithm, KeyUsage, PkiError};
use kart_testkit::openssl::{
    ec_key, ec_leaf, ec_root, issue, openssl, openssl_output, root_ca, rsa_key,
};
use time::{Duration, OffsetDateTime};

fn cert(path: &Path) -> Certificate {
    Certificate::load(path).unwrap()
}

/// [`validate_chain`] of the document-signer-like leaf in file `leaf` up to
/// the root in file `root`, for a digital signature at `at`.
fn validate_ds(
    leaf: &Path,
    intermediates: &[Certificate],
    root: &Path,
    at: OffsetDateTime,
) -> Result<(), PkiError> {
    validate_chain(
        &cert(leaf),
        intermediates,
        &cert(root),
        at,
        KeyUsage::DigitalSignature,
    )
}

/// A P-256 root (self-signed, ten years) in files `name.pem` and `name.key`.
fn p256_root(dir: &Path, name: &str, subj: &str) -> (PathBuf, PathBuf) {
    ec_root(dir, name, "prime256v1", subj, 3650)
}

/// A P-256 end-entity certificate (`leaf_ext`) issued by `ca`, valid for `days`.
fn p256_leaf(
    dir: &Path,
    name: &str,
    subj: &str,
    ca: (&Path, &Path),
    days: u32,
) -> (PathBuf, PathBuf) {
    ec_leaf(dir, name, "prime256v1", subj, ca, "leaf_ext", days)
}

/// A P-256 CA certificate (`ca_ext`, path length 1) issued by `ca`.
fn p256_ca(dir: &Path, name: &str, subj: &str, ca: (&Path, &Path)) -> (PathBuf, PathBuf) {
    ec_leaf(dir, name, "prime256v1", subj, ca, "ca_ext", 1000)
}

#[test]
fn openssl_ec_chain_validates() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let (root, root_key) = ec_root(
        dir,
        "root",
        "secp384r1",
        "/C=IR/O=OpenSSL Test/CN=OpenSSL Root",
        3650,
    );
    let (ds, ds_key) = p256_leaf(dir, "ds", "/C=IR/CN=OpenSSL DS", (&root, &root_key), 365);

    let now = OffsetDateTime::now_utc();
    validate_ds(&ds, &[], &root, now).unwrap();
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
    let (leaf, _) = p256_leaf(dir, "leaf", "/C=IR/CN=Leaf", (&ca, &ca_key), 365);

    let now = OffsetDateTime::now_utc();
    validate_ds(&leaf, &[cert(&ca)], &root, now).unwrap();
    assert_eq!(
        IssuerKey::load(&root_key).unwrap().algorithm(),
        KeyAlgorithm::RsaPkcs1Sha256
    );
    // The intermediate is missing: the leaf does not name the root as issuer.
    let err = validate_ds(&leaf, &[], &root, now);
    assert!(matches!(err, Err(PkiError::WrongIssuer { .. })), "{err:?}");
}

#[test]
fn der_certificate_and_der_key_load_too() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let (root, _) = ec_root(dir, "root", "prime256v1", "/CN=DER Root", 30);
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
    let (root, root_key) = p256_root(dir, "root", "/CN=Root");
    let (ds, _) = p256_leaf(dir, "ds", "/CN=Short DS", (&root, &root_key), 30);

    let later = OffsetDateTime::now_utc() + Duration::days(60);
    let err = validate_ds(&ds, &[], &root, later);
    match err {
        Err(PkiError::Expired { subject, .. }) => assert_eq!(subject, "CN=Short DS"),
        other => panic!("expected Expired, got {other:?}"),
    }
    let earlier = OffsetDateTime::now_utc() - Duration::days(2);
    let err = validate_ds(&ds, &[], &root, earlier);
    assert!(matches!(err, Err(PkiError::NotYetValid { .. })), "{err:?}");
}

#[test]
fn certificate_signed_by_another_key_with_the_same_name_is_a_bad_signature() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let (real, _) = p256_root(dir, "real", "/CN=Issuer Root");
    let (fake, fake_key) = p256_root(dir, "fake", "/CN=Issuer Root");
    let (ds, _) = p256_leaf(dir, "ds", "/CN=DS", (&fake, &fake_key), 365);

    let now = OffsetDateTime::now_utc();
    let err = validate_ds(&ds, &[], &real, now);
    assert!(matches!(err, Err(PkiError::BadSignature { .. })), "{err:?}");
    validate_ds(&ds, &[], &fake, now).unwrap();
}

#[test]
fn certificate_from_a_differently_named_root_is_wrong_issuer() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let (a, _) = p256_root(dir, "a", "/CN=Root A");
    let (b, b_key) = p256_root(dir, "b", "/CN=Root B");
    let (ds, _) = p256_leaf(dir, "ds", "/CN=DS", (&b, &b_key), 365);
    let err = validate_ds(&ds, &[], &a, OffsetDateTime::now_utc());
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
    let (root, root_key) = p256_root(dir, "root", "/CN=Root");
    let (ds, ds_key) = p256_leaf(dir, "ds", "/CN=DS", (&root, &root_key), 365);
    let (leaf, _) = p256_leaf(dir, "leaf", "/CN=Leaf", (&ds, &ds_key), 100);
    let err = validate_ds(&leaf, &[cert(&ds)], &root, OffsetDateTime::now_utc());
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
    let (root, root_key) = p256_root(dir, "root", "/CN=Root");
    let (ca1, k1) = p256_ca(dir, "ca1", "/CN=CA1", (&root, &root_key));
    let (ca2, k2) = p256_ca(dir, "ca2", "/CN=CA2", (&ca1, &k1));
    let (leaf, _) = p256_leaf(dir, "leaf", "/CN=Leaf", (&ca2, &k2), 100);
    let err = validate_ds(
        &leaf,
        &[cert(&ca2), cert(&ca1)],
        &root,
        OffsetDateTime::now_utc(),
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
    let (root, root_key) = p256_root(dir, "root", "/CN=Root");
    let (leaf, _) = ec_leaf(
        dir,
        "leaf",
        "prime256v1",
        "/CN=No KU",
        (&root, &root_key),
        "leaf_no_ku",
        100,
    );
    let now = OffsetDateTime::now_utc();
    let err = validate_ds(&leaf, &[], &root, now);
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
        let verify = |msg| ["dgst", digest, "-verify", &pubkey, "-signature", &sig, msg];
        openssl(dir, &verify("msg"));
        std::fs::write(dir.join("msg2"), b"another message").unwrap();
        let bad = openssl_output(dir, &verify("msg2"));
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
