//! Security objects cross-checked with the system `openssl`: ours verify
//! with `openssl cms -verify`, tampered ones do not, and one signed by
//! `openssl cms -sign` over an LDS content built by `openssl asn1parse
//! -genconf` verifies in kart.

use std::fmt::Write as _;
use std::path::Path;

use kart_perso::pki::{create_demo_issuer, Certificate, IssuerKey};
use kart_perso::security_object::{build_security_object, FileStatus, SecurityObject};
use kart_testkit::cards::issuer as demo_pki;
use kart_testkit::openssl::{
    cms_verify, ec_key, ec_leaf, ec_root, issue, openssl, root_ca, rsa_key,
};
use time::OffsetDateTime;

const FILES: [(u16, &[u8]); 3] = [
    (0x0101, "identity: علی رضایی 0499370899".as_bytes()),
    (0x0102, b"\xFF\xD8\xFF\xE0 not really a JPEG"),
    (0x0103, b"fingerprint template"),
];

/// `openssl cms -verify` exactly as the task states it, writing the content to `content.der`.
fn openssl_cms_verify(dir: &Path, sod: &str, root: &str) -> std::process::Output {
    cms_verify(dir, sod, root, "content.der")
}

/// SHA-256 of `data` computed by `openssl dgst`.
fn openssl_sha256(dir: &Path, data: &[u8]) -> Vec<u8> {
    std::fs::write(dir.join("dgst.in"), data).unwrap();
    openssl(
        dir,
        &["dgst", "-sha256", "-binary", "-out", "dgst.out", "dgst.in"],
    );
    std::fs::read(dir.join("dgst.out")).unwrap()
}

/// A demo issuer in a temporary directory, and the security object over
/// [`FILES`] its document signer signs now.
fn demo_security_object() -> (tempfile::TempDir, Vec<u8>) {
    let now = OffsetDateTime::now_utc();
    let (d, pki) = demo_pki(now);
    let sod =
        build_security_object(&FILES, &pki.document_signer, &pki.document_signer_key, now).unwrap();
    (d, sod)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn demo_security_object_verifies_with_openssl_cms() {
    let (d, sod) = demo_security_object();
    let dir = d.path();
    std::fs::write(dir.join("sod.der"), &sod).unwrap();

    let out = openssl_cms_verify(dir, "sod.der", "root.pem");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let content = std::fs::read(dir.join("content.der")).unwrap();
    assert_eq!(content, SecurityObject::parse(&sod).unwrap().content());
    for (_, data) in FILES {
        assert!(
            contains(&content, &openssl_sha256(dir, data)),
            "content lacks a file hash"
        );
    }
    // openssl's own reading of the LDSSecurityObject: version 0, SHA-256, FIDs as INTEGERs.
    let parsed = openssl(dir, &["asn1parse", "-inform", "DER", "-in", "content.der"]);
    let text = String::from_utf8_lossy(&parsed.stdout);
    for needle in [
        "INTEGER           :00",
        "sha256",
        "INTEGER           :0101",
        "INTEGER           :0102",
        "INTEGER           :0103",
    ] {
        assert!(text.contains(needle), "{needle} not in\n{text}");
    }
    // The CMS structure names the ICAO eContentType.
    let cms = openssl(
        dir,
        &[
            "cms", "-cmsout", "-print", "-inform", "DER", "-in", "sod.der", "-noout",
        ],
    );
    assert!(String::from_utf8_lossy(&cms.stdout).contains("2.23.136.1.1.1"));
}

#[test]
fn tampered_security_object_fails_openssl_cms_verify() {
    let (d, sod) = demo_security_object();
    let dir = d.path();
    let hash = openssl_sha256(dir, FILES[1].1);
    let at = sod
        .windows(hash.len())
        .position(|w| w == hash.as_slice())
        .unwrap();
    let mut tampered = sod.clone();
    tampered[at] ^= 0x01;
    std::fs::write(dir.join("tampered.der"), &tampered).unwrap();
    let out = openssl_cms_verify(dir, "tampered.der", "root.pem");
    assert!(
        !out.status.success(),
        "openssl accepted a tampered security object"
    );

    // A different issuer's root must not be accepted either.
    let other = tempfile::tempdir().unwrap();
    create_demo_issuer(other.path(), OffsetDateTime::now_utc()).unwrap();
    std::fs::write(dir.join("sod.der"), &sod).unwrap();
    let out = openssl_cms_verify(
        dir,
        "sod.der",
        other.path().join("root.pem").to_str().unwrap(),
    );
    assert!(!out.status.success(), "openssl accepted a foreign root");
}

#[test]
fn rsa_and_p384_document_signers_from_openssl_verify_both_ways() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let root_key = rsa_key(dir, "root");
    let root = root_ca(dir, "root", &root_key, "/C=IR/CN=RSA Root", 3650);
    let rsa_ds_key = rsa_key(dir, "rsa-ds");
    let rsa_ds = issue(
        dir,
        "rsa-ds",
        &rsa_ds_key,
        "/CN=RSA DS",
        &root,
        &root_key,
        "leaf_ext",
        365,
    );
    let (ec_ds, ec_ds_key) = ec_leaf(
        dir,
        "p384-ds",
        "secp384r1",
        "/CN=P-384 DS",
        (&root, &root_key),
        "leaf_ext",
        365,
    );
    let root_cert = Certificate::load(&root).unwrap();
    let now = OffsetDateTime::now_utc();

    for (name, cert, key) in [("rsa", rsa_ds, rsa_ds_key), ("p384", ec_ds, ec_ds_key)] {
        let cert = Certificate::load(&cert).unwrap();
        let key = IssuerKey::load(&key).unwrap();
        let sod = build_security_object(&FILES, &cert, &key, now).unwrap();
        let file = format!("{name}.sod");
        std::fs::write(dir.join(&file), &sod).unwrap();
        let out = openssl_cms_verify(dir, &file, "root.pem");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report = SecurityObject::parse(&sod)
            .unwrap()
            .verify(&root_cert, &FILES, now);
        assert!(report.passed(), "{name}: {:?}", report.failures());
    }
}

#[test]
fn security_object_signed_by_openssl_verifies_in_kart() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let (root, root_key) = ec_root(dir, "root", "prime256v1", "/C=IR/CN=OpenSSL CSCA", 3650);
    let ds_key = ec_key(dir, "ds", "prime256v1");
    issue(
        dir,
        "ds",
        &ds_key,
        "/C=IR/CN=OpenSSL DS",
        &root,
        &root_key,
        "leaf_ext",
        365,
    );

    // The LDSSecurityObject, encoded by openssl from a text description.
    let mut conf = String::from(
        "asn1=SEQUENCE:lds\n[lds]\nversion=INTEGER:0\nalg=SEQUENCE:alg\nhashes=SEQUENCE:hashes\n[alg]\noid=OID:sha256\n[hashes]\n",
    );
    for (fid, _) in FILES {
        writeln!(conf, "h{fid:04x}=SEQUENCE:h{fid:04x}").unwrap();
    }
    for (fid, data) in FILES {
        let hash = hex::encode(openssl_sha256(dir, data));
        writeln!(
            conf,
            "[h{fid:04x}]\nfid=INTEGER:0x{fid:04X}\nhash=FORMAT:HEX,OCTETSTRING:{hash}"
        )
        .unwrap();
    }
    std::fs::write(dir.join("lds.cnf"), conf).unwrap();
    openssl(
        dir,
        &[
            "asn1parse",
            "-genconf",
            "lds.cnf",
            "-out",
            "lds.der",
            "-noout",
        ],
    );
    openssl(
        dir,
        &[
            "cms",
            "-sign",
            "-binary",
            "-nodetach",
            "-in",
            "lds.der",
            "-econtent_type",
            "2.23.136.1.1.1",
            "-md",
            "sha256",
            "-signer",
            "ds.pem",
            "-inkey",
            "ds.key",
            "-outform",
            "DER",
            "-out",
            "sod.der",
        ],
    );
    let sod = std::fs::read(dir.join("sod.der")).unwrap();
    let parsed = SecurityObject::parse(&sod).unwrap();
    assert_eq!(
        parsed.content(),
        std::fs::read(dir.join("lds.der")).unwrap()
    );
    assert_eq!(parsed.signer().subject(), "C=IR, CN=OpenSSL DS");
    let now = OffsetDateTime::now_utc();
    let report = parsed.verify(&Certificate::load(&root).unwrap(), &FILES, now);
    assert!(report.passed(), "{:?}", report.failures());

    let altered: [(u16, &[u8]); 3] = [FILES[0], FILES[1], (0x0103, b"another template")];
    let report = parsed.verify(&Certificate::load(&root).unwrap(), &altered, now);
    assert_eq!(report.files[2].status, FileStatus::HashMismatch);
    assert_eq!(report.failures(), ["file 0103 hash mismatch"]);
}
