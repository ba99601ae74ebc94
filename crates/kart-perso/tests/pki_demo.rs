//! The demo issuer hierarchy, holder certificates and master keys, checked
//! with the system `openssl` as an independent verifier.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use kart_perso::pki::{
    create_demo_issuer, issue_holder_certificate, validate_chain, verify_card_signature,
    Certificate, Holder, HolderKey, IssuerKey, IssuerPki, KeyUsage, MasterKeys, PkiError,
    SecureChannelAlgorithm,
};
use kart_testkit::cards::{issuer as demo_pki, malformed_certificate};
use kart_testkit::openssl::{ec_key, ec_root, openssl, openssl_output};
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use time::{Duration, OffsetDateTime};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Stands in for the card's GENERATE ASYMMETRIC KEY PAIR.
fn card_key() -> EcdsaKeyPair {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap()
}

fn not_after(cert: &Certificate) -> i64 {
    let (_, c) = x509_parser::parse_x509_certificate(cert.der()).unwrap();
    c.validity().not_after.timestamp()
}

fn not_before(cert: &Certificate) -> i64 {
    let (_, c) = x509_parser::parse_x509_certificate(cert.der()).unwrap();
    c.validity().not_before.timestamp()
}

#[test]
fn demo_issuer_writes_a_hierarchy_openssl_accepts() {
    let d = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    let files = create_demo_issuer(d.path(), now).unwrap();
    for key in [
        &files.root_key,
        &files.card_ca_key,
        &files.document_signer_key,
        &files.master_keys,
    ] {
        assert_eq!(mode(key), 0o600, "{}", key.display());
    }
    let dir = d.path();
    openssl(
        dir,
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "card-ca.pem",
            "document-signer.pem",
        ],
    );
    let root_ext = openssl(
        dir,
        &[
            "x509",
            "-in",
            "root.pem",
            "-noout",
            "-ext",
            "basicConstraints,keyUsage",
        ],
    );
    let text = String::from_utf8_lossy(&root_ext.stdout);
    assert!(
        text.contains("CA:TRUE, pathlen:1") && text.contains("Certificate Sign"),
        "{text}"
    );
    let ds_ext = openssl(
        dir,
        &[
            "x509",
            "-in",
            "document-signer.pem",
            "-noout",
            "-ext",
            "keyUsage",
        ],
    );
    assert!(String::from_utf8_lossy(&ds_ext.stdout).contains("Digital Signature"));

    let pki = IssuerPki::load(dir).unwrap();
    validate_chain(&pki.card_ca, &[], &pki.root, now, KeyUsage::KeyCertSign).unwrap();
    validate_chain(
        &pki.document_signer,
        &[],
        &pki.root,
        now,
        KeyUsage::DigitalSignature,
    )
    .unwrap();
    // The document signer may not issue certificates.
    let err = validate_chain(
        &pki.document_signer,
        &[],
        &pki.root,
        now,
        KeyUsage::KeyCertSign,
    );
    assert!(
        matches!(
            err,
            Err(PkiError::MissingKeyUsage {
                usage: "keyCertSign",
                ..
            })
        ),
        "{err:?}"
    );
}

#[test]
fn demo_issuer_never_overwrites_existing_files() {
    let d = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    create_demo_issuer(d.path(), now).unwrap();
    let before = std::fs::read(d.path().join("offline/root.key.pem")).unwrap();
    let err = create_demo_issuer(d.path(), now).unwrap_err();
    assert!(
        matches!(&err, PkiError::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists),
        "{err:?}"
    );
    assert_eq!(
        std::fs::read(d.path().join("offline/root.key.pem")).unwrap(),
        before
    );
}

/// Writes `cert` as `holder.pem` and has `openssl verify` check it up to
/// the demo root through the card CA (required to succeed).
fn verify_holder_pem(dir: &Path, cert: &Certificate) -> std::process::Output {
    std::fs::write(dir.join("holder.der"), cert.der()).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-inform",
            "DER",
            "-in",
            "holder.der",
            "-out",
            "holder.pem",
        ],
    );
    openssl(
        dir,
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "card-ca.pem",
            "holder.pem",
        ],
    )
}

#[test]
fn holder_certificate_verifies_with_openssl_and_carries_the_card_key() {
    let now = OffsetDateTime::now_utc();
    let (d, pki) = demo_pki(now);
    let dir = d.path();
    let card = card_key();
    let holder = Holder {
        crn: "1234567890",
        national_code: "0499370899",
        public_key: &HolderKey::ec_p256(card.public_key().as_ref()).unwrap(),
    };
    let cert = issue_holder_certificate(&pki.card_ca, &pki.card_ca_key, &holder, now).unwrap();
    validate_chain(
        &cert,
        std::slice::from_ref(&pki.card_ca),
        &pki.root,
        now,
        KeyUsage::DigitalSignature,
    )
    .unwrap();

    verify_holder_pem(dir, &cert);
    let subject = openssl(
        dir,
        &[
            "x509",
            "-in",
            "holder.pem",
            "-noout",
            "-subject",
            "-nameopt",
            "RFC2253",
            "-ext",
            "keyUsage,basicConstraints",
        ],
    );
    let text = String::from_utf8_lossy(&subject.stdout);
    assert!(
        text.contains("subject=CN=1234567890,serialNumber=0499370899,C=IR"),
        "{text}"
    );
    assert!(
        text.contains("Digital Signature") && text.contains("CA:FALSE"),
        "{text}"
    );

    // Active authentication in miniature: the card signs a challenge, openssl
    // checks it with the key in the holder certificate.
    let challenge = b"\x01\x02\x03\x04\x05\x06\x07\x08";
    let sig = card
        .sign(&ring::rand::SystemRandom::new(), challenge)
        .unwrap();
    std::fs::write(dir.join("challenge"), challenge).unwrap();
    std::fs::write(dir.join("challenge.sig"), sig.as_ref()).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-in",
            "holder.pem",
            "-noout",
            "-pubkey",
            "-out",
            "holder.pub",
        ],
    );
    openssl(
        dir,
        &[
            "dgst",
            "-sha256",
            "-verify",
            "holder.pub",
            "-signature",
            "challenge.sig",
            "challenge",
        ],
    );

    // Seven years, not more.
    let years = (not_after(&cert) - not_before(&cert)) / (365 * 86_400);
    assert_eq!(years, 7);
}

#[test]
fn holder_validity_is_clamped_to_the_issuer() {
    let d = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    create_demo_issuer(d.path(), now).unwrap();
    let pki = IssuerPki::load(d.path()).unwrap();
    let card = card_key();
    let holder = Holder {
        crn: "1234567890",
        national_code: "0499370899",
        public_key: &HolderKey::ec_p256(card.public_key().as_ref()).unwrap(),
    };
    // The card CA lives 10 years; issuing 9 years from now leaves about one.
    let late = now + Duration::days(365 * 9);
    let cert = issue_holder_certificate(&pki.card_ca, &pki.card_ca_key, &holder, late).unwrap();
    assert_eq!(not_after(&cert), not_after(&pki.card_ca));
    validate_chain(
        &cert,
        std::slice::from_ref(&pki.card_ca),
        &pki.root,
        late,
        KeyUsage::DigitalSignature,
    )
    .unwrap();

    let too_late = now + Duration::days(365 * 11);
    let err =
        issue_holder_certificate(&pki.card_ca, &pki.card_ca_key, &holder, too_late).unwrap_err();
    assert!(matches!(err, PkiError::IssuerExpired { .. }), "{err:?}");
}

#[test]
fn holder_certificate_from_an_openssl_ca_chains_to_it() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let (ca, ca_key) = ec_root(
        dir,
        "ca",
        "secp384r1",
        "/C=IR/O=NOCR Test/CN=Digital Citizen Test CA",
        3650,
    );
    let ca_cert = Certificate::load(&ca).unwrap();
    let key = IssuerKey::load(&ca_key).unwrap();
    let card = card_key();
    let holder = Holder {
        crn: "0000000019",
        national_code: "0499370899",
        public_key: &HolderKey::ec_p256(card.public_key().as_ref()).unwrap(),
    };
    let now = OffsetDateTime::now_utc();
    let cert = issue_holder_certificate(&ca_cert, &key, &holder, now).unwrap();
    validate_chain(&cert, &[], &ca_cert, now, KeyUsage::DigitalSignature).unwrap();
    std::fs::write(dir.join("h.der"), cert.der()).unwrap();
    openssl(
        dir,
        &["x509", "-inform", "DER", "-in", "h.der", "-out", "h.pem"],
    );
    openssl(dir, &["verify", "-CAfile", "ca.pem", "h.pem"]);
}

#[test]
fn bad_holder_inputs_are_typed_errors() {
    let d = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    create_demo_issuer(d.path(), now).unwrap();
    let pki = IssuerPki::load(d.path()).unwrap();
    let card = card_key();
    let point = card.public_key().as_ref().to_vec();
    let mut compressed_prefix = point.clone();
    compressed_prefix[0] = 0x02;
    let mut off_curve = point.clone();
    off_curve[64] ^= 0x01; // y no longer matches x
    for bad in [
        &point[..64],
        &point[1..],
        &compressed_prefix[..],
        &off_curve[..],
        &[][..],
    ] {
        // No certificate without a holder key, and no such key from these bytes.
        let err = HolderKey::ec_p256(bad).unwrap_err();
        assert!(matches!(err, PkiError::BadHolderKey(_)), "{err:?}");
    }
    for (crn, code) in [
        ("123456789", "0499370899"),
        ("1234567890", "04993708a9"),
        ("", ""),
    ] {
        let holder = Holder {
            crn,
            national_code: code,
            public_key: &HolderKey::ec_p256(&point).unwrap(),
        };
        let err =
            issue_holder_certificate(&pki.card_ca, &pki.card_ca_key, &holder, now).unwrap_err();
        assert!(matches!(err, PkiError::BadHolder { .. }), "{err:?}");
    }
}

#[test]
fn master_keys_file_round_trips_and_is_guarded() {
    let d = tempfile::tempdir().unwrap();
    let files = create_demo_issuer(d.path(), OffsetDateTime::now_utc()).unwrap();
    let keys = MasterKeys::load(&files.master_keys).unwrap();
    let names: Vec<_> = keys
        .sets()
        .iter()
        .map(|s| (s.name.as_str(), s.algorithm, s.enc().len()))
        .collect();
    assert_eq!(
        names,
        [
            ("scp02", SecureChannelAlgorithm::TripleDes, 16),
            ("scp03-aes128", SecureChannelAlgorithm::Aes128, 16),
            ("scp03-aes192", SecureChannelAlgorithm::Aes192, 24),
            ("scp03-aes256", SecureChannelAlgorithm::Aes256, 32),
        ]
    );
    let set = keys.get("scp03-aes128").unwrap();
    assert_ne!(set.enc(), set.mac(), "keys are independent random values");
    let shown = format!("{keys:?}");
    for s in keys.sets() {
        assert!(
            !shown.contains(&hex::encode(s.enc()))
                && !shown.to_uppercase().contains(&hex::encode_upper(s.dek()))
        );
    }

    std::fs::set_permissions(&files.master_keys, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = MasterKeys::load(&files.master_keys).unwrap_err();
    assert!(err.to_string().contains("chmod 600"), "{err}");

    let short = r#"{"format":"kart-master-keys/1","key_sets":[{"name":"x","algorithm":"aes256","version":1,"enc":"00","mac":"00","dek":"00"}]}"#;
    assert!(matches!(
        MasterKeys::from_json(short),
        Err(PkiError::MasterKeys(_))
    ));
    assert!(matches!(
        MasterKeys::from_json("{"),
        Err(PkiError::MasterKeys(_))
    ));
    let wrong_format = r#"{"format":"other/2","key_sets":[]}"#;
    assert!(MasterKeys::from_json(wrong_format)
        .unwrap_err()
        .to_string()
        .contains("expected 'kart-master-keys/1'"));
}

#[test]
fn malformed_certificate_and_key_files_are_typed_errors() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let files = create_demo_issuer(dir, OffsetDateTime::now_utc()).unwrap();
    let der = Certificate::load(&files.root).unwrap().der().to_vec();
    let mut trailing = der.clone();
    trailing.push(0);
    for bad in [
        &der[..der.len() - 1],
        &trailing[..],
        b"-----BEGIN CERTIFICATE-----\nAAA\n",
        b"",
    ] {
        malformed_certificate(bad);
    }
    let key_pem = std::fs::read(&files.document_signer_key).unwrap();
    assert!(matches!(
        Certificate::from_pem_or_der(&key_pem),
        Err(PkiError::Malformed { .. })
    ));
    assert!(matches!(
        IssuerKey::from_pem_or_der(&der),
        Err(PkiError::KeyRejected(_))
    ));
    assert!(matches!(
        IssuerKey::load(&dir.join("missing.pem")),
        Err(PkiError::Io { .. })
    ));
    // openssl can read what we wrote.
    let out = openssl_output(dir, &["pkey", "-in", "document-signer.key.pem", "-noout"]);
    assert!(out.status.success());
}

/// The card's key is made by openssl and its INTERNAL AUTHENTICATE answer
/// (raw r || s) is cut from an `openssl dgst -sign` DER signature, so the
/// accepted signature is an independent vector.
/// Signs `challenge` with `dir/card.key` as the card would (SHA-256),
/// writing the signature to `dir/out`.
fn sign_as_the_card(dir: &Path, challenge: &[u8], out: &str) {
    std::fs::write(dir.join("challenge"), challenge).unwrap();
    openssl(
        dir,
        &[
            "dgst",
            "-sha256",
            "-sign",
            "card.key",
            "-out",
            out,
            "challenge",
        ],
    );
}

#[test]
fn active_authentication_accepts_the_card_key_and_nothing_else() {
    let now = OffsetDateTime::now_utc();
    let (d, pki) = demo_pki(now);
    let dir = d.path();

    ec_key(dir, "card", "prime256v1");
    openssl(
        dir,
        &[
            "ec",
            "-in",
            "card.key",
            "-pubout",
            "-conv_form",
            "uncompressed",
            "-outform",
            "DER",
            "-out",
            "card.spki",
        ],
    );
    let spki = std::fs::read(dir.join("card.spki")).unwrap();
    let point = &spki[spki.len() - 65..];
    let holder = Holder {
        crn: "1234567890",
        national_code: "0499370899",
        public_key: &HolderKey::ec_p256(point).unwrap(),
    };
    let cert = issue_holder_certificate(&pki.card_ca, &pki.card_ca_key, &holder, now).unwrap();

    let challenge = b"0123456789abcdef";
    sign_as_the_card(dir, challenge, "sig.der");
    let parsed = openssl(dir, &["asn1parse", "-inform", "DER", "-in", "sig.der"]);
    let mut raw = Vec::new();
    for line in String::from_utf8_lossy(&parsed.stdout)
        .lines()
        .filter(|l| l.contains("INTEGER"))
    {
        let hex_int = line.rsplit(':').next().unwrap();
        let int = hex::decode(format!("{hex_int:0>64}")).unwrap();
        raw.extend_from_slice(&int[int.len() - 32..]);
    }
    assert_eq!(raw.len(), 64);
    verify_card_signature(&cert, challenge, &raw).unwrap();

    // Another challenge, another card, a DER-encoded answer: all rejected.
    let err = verify_card_signature(&cert, b"0123456789abcdeX", &raw).unwrap_err();
    assert!(
        matches!(err, PkiError::CardSignatureInvalid { .. }),
        "{err:?}"
    );
    let other = card_key();
    let other_holder = Holder {
        public_key: &HolderKey::ec_p256(other.public_key().as_ref()).unwrap(),
        ..holder
    };
    let other_cert =
        issue_holder_certificate(&pki.card_ca, &pki.card_ca_key, &other_holder, now).unwrap();
    assert!(matches!(
        verify_card_signature(&other_cert, challenge, &raw),
        Err(PkiError::CardSignatureInvalid { .. })
    ));
    let der_sig = std::fs::read(dir.join("sig.der")).unwrap();
    assert!(matches!(
        verify_card_signature(&cert, challenge, &der_sig),
        Err(PkiError::Malformed { .. })
    ));
    // A P-384 certificate is not a card certificate.
    assert!(matches!(
        verify_card_signature(&pki.root, challenge, &raw),
        Err(PkiError::UnsupportedAlgorithm(_))
    ));
}

/// An RSA-2048 card key made by openssl: its modulus and exponent, as the
/// card's 7F49 { 81 82 } answer carries them, become a holder certificate
/// that openssl verifies against the issuer chain, and an `openssl dgst
/// -sha256 -sign` signature (RSASSA-PKCS1-v1_5) passes active authentication.
#[test]
fn rsa_holder_keys_certify_and_authenticate_with_openssl_as_the_card() {
    let now = OffsetDateTime::now_utc();
    let (d, pki) = demo_pki(now);
    let dir = d.path();
    openssl(dir, &["genrsa", "-out", "card.key", "2048"]);
    let text = openssl(dir, &["rsa", "-in", "card.key", "-noout", "-modulus"]);
    let modulus = String::from_utf8_lossy(&text.stdout);
    let modulus = hex::decode(modulus.trim().trim_start_matches("Modulus=")).unwrap();
    assert_eq!(modulus.len(), 256);
    let mut answer = vec![0x7F, 0x49, 0x82, 0x01, 0x09, 0x81, 0x82, 0x01, 0x00];
    answer.extend_from_slice(&modulus);
    answer.extend_from_slice(&[0x82, 0x03, 0x01, 0x00, 0x01]);
    let key = HolderKey::from_card(&answer).unwrap();
    assert_eq!(key.algorithm(), "RSA-2048");
    let holder = Holder {
        crn: "1234567890",
        national_code: "0499370899",
        public_key: &key,
    };
    let cert = issue_holder_certificate(&pki.card_ca, &pki.card_ca_key, &holder, now).unwrap();
    assert_eq!(HolderKey::from_certificate(&cert).unwrap(), key);
    let verified = verify_holder_pem(dir, &cert);
    assert!(String::from_utf8_lossy(&verified.stdout).contains("holder.pem: OK"));
    // The certificate carries the card's modulus.
    let in_cert = openssl(dir, &["x509", "-in", "holder.pem", "-noout", "-modulus"]);
    assert_eq!(
        String::from_utf8_lossy(&in_cert.stdout).trim(),
        format!("Modulus={}", hex::encode_upper(&modulus))
    );

    let challenge = b"0123456789abcdef";
    sign_as_the_card(dir, challenge, "sig.bin");
    let sig = std::fs::read(dir.join("sig.bin")).unwrap();
    assert_eq!(sig.len(), 256);
    verify_card_signature(&cert, challenge, &sig).unwrap();
    assert!(matches!(
        verify_card_signature(&cert, b"0123456789abcdeX", &sig),
        Err(PkiError::CardSignatureInvalid { .. })
    ));
    assert!(matches!(
        verify_card_signature(&cert, challenge, &sig[..64]),
        Err(PkiError::Malformed { .. })
    ));
    // Too small a modulus is no card key.
    let mut small = vec![0x7F, 0x49, 0x81, 0x87, 0x81, 0x81, 0x80];
    small.extend_from_slice(&modulus[..128]);
    small.extend_from_slice(&[0x82, 0x03, 0x01, 0x00, 0x01]);
    assert!(matches!(
        HolderKey::from_card(&small),
        Err(PkiError::BadHolderKey(_))
    ));
}
