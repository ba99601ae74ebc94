//! A wrong issuer is refused when it is loaded, before any card is touched:
//! keys that are not their certificate's, a broken chain, certificates
//! expired or not yet valid (made by the system `openssl ca`, an
//! independent implementation, with explicit start and end dates), wrong
//! key usages, key files others may read, files that are not regular files.
//! Every error names the file.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use kart_perso::issuer::Issuer;
use kart_perso::pki::{create_demo_issuer, IssuerPki, PkiError};
use kart_testkit::openssl::{genpkey, openssl};
use time::OffsetDateTime;

/// `openssl ca` configuration: any subject, the extensions we name.
const CA_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
default_ca = kart_test_ca
[kart_test_ca]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
unique_subject = no
[any]
countryName = optional
organizationName = optional
commonName = supplied
[ds_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
authorityKeyIdentifier = keyid
[ds_wrong_usage]
basicConstraints = CA:FALSE
keyUsage = critical,keyEncipherment
authorityKeyIdentifier = keyid
[ca_ext]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
authorityKeyIdentifier = keyid
[ca_not_a_ca]
basicConstraints = CA:FALSE
keyUsage = critical,keyCertSign,digitalSignature
authorityKeyIdentifier = keyid
";

const DS_SUBJECT: &str = "/C=IR/O=kart demo issuer/CN=kart Demo Document Signer";
const CA_SUBJECT: &str = "/C=IR/O=kart demo issuer/CN=kart Demo Card CA";

fn demo() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    create_demo_issuer(d.path(), OffsetDateTime::now_utc()).unwrap();
    d
}

/// Both the document signer and the card CA re-issued with their proper
/// extensions and dates that hold now.
fn reissue_both_well(issuer: &Path) {
    reissue(
        issuer,
        DOCUMENT_SIGNER,
        "ds_ext",
        "20240101000000Z",
        "20400101000000Z",
    );
    reissue(
        issuer,
        CARD_CA,
        "ca_ext",
        "20240101000000Z",
        "20400101000000Z",
    );
}

/// With `openssl ca` and the issuer's own root key, certifies the `held`
/// certificate's key again for its subject with the extension section
/// `ext`, valid from `start` to `end` (`YYYYMMDDHHMMSSZ`), and puts the
/// certificate in place of its file.
fn reissue(issuer: &Path, held: Held, ext: &str, start: &str, end: &str) {
    let (key, cert, subject) = held;
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    std::fs::write(w.join("ca.cnf"), CA_CNF).unwrap();
    std::fs::write(w.join("index.txt"), "").unwrap();
    std::fs::write(w.join("serial"), "1000\n").unwrap();
    let path = |p: PathBuf| p.to_str().unwrap().to_owned();
    let key = path(issuer.join(key));
    openssl(
        w,
        &[
            "req", "-new", "-config", "ca.cnf", "-key", &key, "-subj", subject, "-out", "x.csr",
        ],
    );
    openssl(
        w,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-cert",
            &path(issuer.join("root.pem")),
            "-keyfile",
            &path(issuer.join("offline/root.key.pem")),
            "-in",
            "x.csr",
            "-out",
            "x.pem",
            "-startdate",
            start,
            "-enddate",
            end,
            "-extensions",
            ext,
            "-notext",
        ],
    );
    std::fs::copy(w.join("x.pem"), issuer.join(cert)).unwrap();
}

/// Key file, certificate file and subject of a certificate the demo issuer holds.
type Held = (&'static str, &'static str, &'static str);
const DOCUMENT_SIGNER: Held = ("document-signer.key.pem", "document-signer.pem", DS_SUBJECT);
const CARD_CA: Held = ("card-ca.key.pem", "card-ca.pem", CA_SUBJECT);

/// The demo issuer with `held` re-issued by the root with extensions `ext`,
/// valid from `start` to `end`: why it is refused at load, which must name
/// the re-issued certificate's file.
fn refused_reissued(held: Held, ext: &str, start: &str, end: &str) -> PkiError {
    let d = demo();
    let (_, cert, _) = held;
    reissue(d.path(), held, ext, start, end);
    let e = load_err(d.path());
    assert_names(&e, cert);
    e
}

fn load_err(dir: &Path) -> PkiError {
    Issuer::load(dir).expect_err("the wrong issuer must be refused at load")
}

fn assert_names(e: &PkiError, file: &str) {
    assert!(e.to_string().contains(file), "{file} not named in: {e}");
}

/// What an `InFile` error wraps.
fn inner(e: &PkiError) -> &PkiError {
    match e {
        PkiError::InFile { source, .. } => source,
        other => other,
    }
}

#[test]
fn a_good_issuer_loads_without_its_offline_root_key() {
    let d = demo();
    assert!(d.path().join("offline/root.key.pem").is_file());
    let mode = std::fs::metadata(d.path().join("offline"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    assert!(!d.path().join("root.key.pem").exists());
    std::fs::remove_dir_all(d.path().join("offline")).unwrap();
    Issuer::load(d.path()).unwrap();
}

#[test]
fn a_certificate_reissued_by_openssl_with_good_dates_loads() {
    // The control for the tests below: openssl's output itself is accepted.
    let d = demo();
    reissue_both_well(d.path());
    Issuer::load(d.path()).unwrap();
}

#[test]
fn a_card_ca_key_of_another_issuer_is_refused() {
    let (a, b) = (demo(), demo());
    std::fs::copy(
        b.path().join("card-ca.key.pem"),
        a.path().join("card-ca.key.pem"),
    )
    .unwrap();
    let e = load_err(a.path());
    assert!(matches!(e, PkiError::KeyMismatch { .. }), "{e:?}");
    assert_names(&e, "card-ca.key.pem");
    assert_names(&e, "card-ca.pem");
}

#[test]
fn a_document_signer_key_swapped_with_the_card_ca_key_is_refused() {
    // Same issuer, same curve: only the probe signature tells them apart.
    let a = demo();
    std::fs::copy(
        a.path().join("card-ca.key.pem"),
        a.path().join("document-signer.key.pem"),
    )
    .unwrap();
    let e = load_err(a.path());
    assert!(matches!(e, PkiError::KeyMismatch { .. }), "{e:?}");
    assert_names(&e, "document-signer.key.pem");
}

#[test]
fn a_document_signer_certificate_of_another_issuer_breaks_the_chain() {
    // Both demo roots have the same name: the signature decides.
    let (a, b) = (demo(), demo());
    for f in ["document-signer.pem", "document-signer.key.pem"] {
        std::fs::copy(b.path().join(f), a.path().join(f)).unwrap();
    }
    let e = load_err(a.path());
    assert!(matches!(inner(&e), PkiError::BadSignature { .. }), "{e:?}");
    assert_names(&e, "document-signer.pem");
}

#[test]
fn a_root_of_another_issuer_breaks_both_chains() {
    let (a, b) = (demo(), demo());
    std::fs::copy(b.path().join("root.pem"), a.path().join("root.pem")).unwrap();
    let e = load_err(a.path());
    assert!(matches!(inner(&e), PkiError::BadSignature { .. }), "{e:?}");
    assert_names(&e, "card-ca.pem");
}

#[test]
fn an_expired_document_signer_is_refused() {
    let e = refused_reissued(
        DOCUMENT_SIGNER,
        "ds_ext",
        "20200101000000Z",
        "20210101000000Z",
    );
    assert!(matches!(inner(&e), PkiError::Expired { .. }), "{e:?}");
}

#[test]
fn a_card_ca_not_yet_valid_is_refused() {
    let e = refused_reissued(CARD_CA, "ca_ext", "20900101000000Z", "20950101000000Z");
    assert!(matches!(inner(&e), PkiError::NotYetValid { .. }), "{e:?}");
}

#[test]
fn a_document_signer_without_digital_signature_is_refused() {
    let e = refused_reissued(
        DOCUMENT_SIGNER,
        "ds_wrong_usage",
        "20240101000000Z",
        "20400101000000Z",
    );
    assert!(
        matches!(
            inner(&e),
            PkiError::MissingKeyUsage {
                usage: "digitalSignature",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn a_card_ca_that_is_not_a_ca_is_refused() {
    let e = refused_reissued(CARD_CA, "ca_not_a_ca", "20240101000000Z", "20400101000000Z");
    assert!(matches!(inner(&e), PkiError::NotCa { .. }), "{e:?}");
}

#[test]
fn an_expired_issuer_is_refused_at_a_later_time() {
    let d = demo();
    let later = OffsetDateTime::now_utc() + time::Duration::days(365 * 4);
    let e = IssuerPki::load_at(d.path(), later).unwrap_err();
    assert!(matches!(inner(&e), PkiError::Expired { .. }), "{e:?}");
    assert_names(&e, "document-signer.pem");
}

#[test]
fn a_key_file_others_may_read_is_refused() {
    for key in ["card-ca.key.pem", "document-signer.key.pem"] {
        let d = demo();
        let path = d.path().join(key);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = load_err(d.path());
        assert!(
            matches!(e, PkiError::KeyFileMode { mode: 0o640, .. }),
            "{e:?}"
        );
        assert_names(&e, key);
        assert!(e.hint().is_some_and(|h| h.contains("chmod 600")), "{e}");
    }
}

#[test]
fn a_fifo_or_a_device_in_place_of_a_certificate_is_refused_without_blocking() {
    let d = demo();
    let root = d.path().join("root.pem");
    std::fs::remove_file(&root).unwrap();
    kart_testkit::process::mkfifo(&root, &[]);
    let e = load_err(d.path());
    assert!(matches!(e, PkiError::Read(_)), "{e:?}");
    assert!(e.to_string().contains("root.pem is a FIFO"), "{e}");

    std::fs::remove_file(&root).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &root).unwrap();
    let e = load_err(d.path());
    assert!(e.to_string().contains("not a regular file"), "{e}");

    // A regular file too large to be a certificate is not read whole.
    std::fs::remove_file(&root).unwrap();
    let f = std::fs::File::create(&root).unwrap();
    f.set_len(1 << 30).unwrap();
    let e = load_err(d.path());
    assert!(e.to_string().contains("larger than"), "{e}");
}

#[test]
fn a_fifo_in_place_of_a_key_is_refused() {
    let d = demo();
    let key = d.path().join("card-ca.key.pem");
    std::fs::remove_file(&key).unwrap();
    kart_testkit::process::mkfifo(&key, &["-m", "600"]);
    let e = load_err(d.path());
    assert!(e.to_string().contains("card-ca.key.pem is a FIFO"), "{e}");
}

#[test]
fn openssl_rsa_and_p384_keys_with_their_certificates_load() {
    // Keys of other algorithms, made by openssl, are not mistaken for
    // mismatches.
    let d = demo();
    let dir = d.path();
    genpkey(
        dir,
        "document-signer.key.pem",
        "RSA",
        "rsa_keygen_bits:2048",
    );
    std::fs::remove_file(dir.join("card-ca.key.pem")).unwrap();
    genpkey(dir, "card-ca.key.pem", "EC", "ec_paramgen_curve:P-384");
    for key in ["document-signer.key.pem", "card-ca.key.pem"] {
        std::fs::set_permissions(dir.join(key), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    reissue_both_well(dir);
    let issuer = Issuer::load(dir).unwrap();
    assert_eq!(
        issuer.pki.document_signer_key.algorithm(),
        kart_perso::pki::KeyAlgorithm::RsaPkcs1Sha256
    );
    assert_eq!(
        issuer.pki.card_ca_key.algorithm(),
        kart_perso::pki::KeyAlgorithm::EcdsaP384Sha384
    );
}
