//! Encrypted PKCS#8 issuer keys written by OpenSSL (an independent tool):
//! `openssl genpkey -aes256` (PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC) and
//! `openssl pkcs8 -topk8 -scrypt`, for P-256, P-384 and RSA; the wrong
//! passphrase is a typed error that never quotes it; a demo issuer whose
//! signing keys are encrypted loads with the passphrase from a file
//! (`crates/kart/tests/cli_hsm.rs`).
#![allow(clippy::doc_markdown)] // proper names (OpenSSL) are not code

use std::path::Path;

use kart_perso::pki::encrypted::{decrypt_pkcs8, Passphrase};
use kart_perso::pki::{IssuerKey, KeyAlgorithm, PkiError};
use kart_testkit::openssl::{genpkey, genpkey_with};

const PASS: &str = "tr0ub4dor&3 passphrase";

/// `openssl genpkey` of an `algorithm` key with `option`, encrypted with
/// AES-256 under the passphrase in the file `pw`, written to `out`.
fn encrypted_key(dir: &Path, algorithm: &str, option: &str, out: &str) {
    genpkey_with(
        dir,
        out,
        algorithm,
        option,
        &["-aes256", "-pass", "file:pw"],
    );
}

fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    kart_testkit::openssl::openssl(dir, args).stdout
}

/// The public key openssl derives, as the SubjectPublicKeyInfo BIT STRING holds it.
fn openssl_public(dir: &Path, key: &str) -> Vec<u8> {
    use x509_parser::prelude::FromDer as _;
    let spki = openssl(
        dir,
        &[
            "pkey", "-in", key, "-passin", "file:pw", "-pubout", "-outform", "DER",
        ],
    );
    let (_, parsed) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&spki).unwrap();
    parsed.subject_public_key.data.to_vec()
}

fn load(dir: &Path, key: &str) -> IssuerKey {
    let bytes = std::fs::read(dir.join(key)).unwrap();
    let der = decrypt_pkcs8(&bytes, &Passphrase::new(PASS)).unwrap();
    IssuerKey::from_pkcs8(&der).unwrap()
}

#[test]
fn keys_encrypted_by_openssl_decrypt_to_the_same_keys() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    std::fs::write(dir.join("pw"), format!("{PASS}\n")).unwrap();
    encrypted_key(dir, "EC", "ec_paramgen_curve:P-256", "p256.pem");
    genpkey(dir, "p384.plain.pem", "EC", "ec_paramgen_curve:P-384");
    openssl(
        dir,
        &[
            "pkcs8",
            "-topk8",
            "-scrypt",
            "-in",
            "p384.plain.pem",
            "-passout",
            "file:pw",
            "-out",
            "p384.pem",
        ],
    );
    encrypted_key(dir, "RSA", "rsa_keygen_bits:2048", "rsa.pem");
    assert!(std::fs::read_to_string(dir.join("p256.pem"))
        .unwrap()
        .contains("BEGIN ENCRYPTED PRIVATE KEY"));
    for (file, alg) in [
        ("p256.pem", KeyAlgorithm::EcdsaP256Sha256),
        ("p384.pem", KeyAlgorithm::EcdsaP384Sha384),
        ("rsa.pem", KeyAlgorithm::RsaPkcs1Sha256),
    ] {
        let key = load(dir, file);
        assert_eq!(key.algorithm(), alg, "{file}");
        assert_eq!(
            key.public_key(),
            openssl_public(dir, file).as_slice(),
            "{file}"
        );
    }
}

#[test]
fn a_wrong_passphrase_is_an_error_that_never_quotes_it() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    std::fs::write(dir.join("pw"), PASS).unwrap();
    encrypted_key(dir, "EC", "ec_paramgen_curve:P-256", "k.pem");
    let bytes = std::fs::read(dir.join("k.pem")).unwrap();
    let err = decrypt_pkcs8(&bytes, &Passphrase::new("not the passphrase")).unwrap_err();
    assert!(matches!(err, PkiError::Malformed { .. }), "{err}");
    assert!(!err.to_string().contains("not the passphrase"));
    assert!(!format!("{:?}", Passphrase::new(PASS)).contains("tr0ub4dor"));
    // Garbage is an error, not a panic.
    for junk in [
        &b""[..],
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        &[0x30, 0x82, 0xff],
    ] {
        assert!(decrypt_pkcs8(junk, &Passphrase::new(PASS)).is_err());
    }
}
