//! Issuer keys in a SoftHSM2 token through PKCS#11: the ceremony, every
//! vendor profile personalized and verified with token keys, the security
//! object signed in the token checked by `openssl cms -verify`, the key
//! attributes checked by `pkcs11-tool` (OpenSC, an independent client),
//! diversification inside the token against published vectors and OpenSSL,
//! and the faults (wrong PIN, absent token, missing or mistyped objects).
//! Each test has its own token directory (`softhsm_support`).

#![allow(clippy::doc_markdown)] // proper names (SoftHSM, OpenSC) are not code
mod perso_support;
mod softhsm_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use kart_apdu::gp::{CardKeySource, Diversification, KeySet, SoftwareKeys};
use kart_apdu::Card;
use kart_perso::card_data::Crn;
use kart_perso::issuer::Issuer;
use kart_perso::personalize::personalize_one;
use kart_perso::pin_mailer::Pins;
use kart_perso::pki::pkcs11::{
    import_master_key, Pin, Pkcs11Error, Token, TokenMasterKeys, TokenSigner,
};
use kart_perso::pki::token_issuer::{create, MasterKeySource};
use kart_perso::pki::{IssuerSigner, MasterKeys, PkiError, SecureChannelAlgorithm};
use kart_perso::record::Pin as CardPin;
use kart_perso::security_object::build_security_object;
use kart_perso::verify::{TrustAnchors, Verifier};
use kart_sim::{SimCard, SimConfig};
use kart_spec::{Profile, Scp};
use perso_support::*;
use softhsm_support::{pkcs11_tool, with_token, SoftHsm, MODULE, PIN, TOKEN};

fn token() -> Arc<Token> {
    Token::open(Path::new(MODULE), TOKEN, Pin::new(PIN)).unwrap()
}

fn token_issuer(hsm: &SoftHsm, master: MasterKeySource<'_>) -> PathBuf {
    let dir = hsm.dir.join("issuer");
    create(&dir, &token(), master, time::OffsetDateTime::now_utc()).unwrap();
    dir
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

/// The known master set a vendor keyed `profile`'s cards with.
fn vendor_keys(keys: &MasterKeys, profile: &Profile) -> KeySet {
    let sc = &profile.secure_channel;
    let alg = match (sc.scp, sc.key_length) {
        (Scp::Scp02, _) => SecureChannelAlgorithm::TripleDes,
        (Scp::Scp03, 16) => SecureChannelAlgorithm::Aes128,
        _ => SecureChannelAlgorithm::Aes256,
    };
    let set = keys.sets().iter().find(|s| s.algorithm == alg).unwrap();
    KeySet::new(set.enc(), set.mac(), set.dek(), sc.key_version).unwrap()
}

#[test]
fn every_profile_is_personalized_and_verified_with_all_keys_in_the_token() {
    with_token(
        "every_profile_is_personalized_and_verified_with_all_keys_in_the_token",
        |hsm| {
            let known = MasterKeys::generate().unwrap();
            let dir = token_issuer(hsm, MasterKeySource::Import(&known));
            // Only certificates and issuer.toml on disk: no key file.
            let mut names: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            assert_eq!(
                names,
                [
                    "card-ca.pem",
                    "document-signer.pem",
                    "issuer.toml",
                    "root.pem"
                ]
            );
            let issuer = Issuer::load(&dir).unwrap();
            assert!(issuer
                .pki
                .card_ca_key
                .location()
                .contains("token 'kart-test'"));
            let spec = spec();
            let batch = batch_file(&hsm.dir, &[row(1, "face.jpg")], 4000);
            let record = records(&batch).remove(0);
            let mut done = 0;
            for profile in spec.profiles.iter().filter(|p| !p.id.contains("faulty")) {
                // The station cannot see the master keys.
                assert!(issuer.channel_keys(profile).is_err());
                let cfg = SimConfig::with_keys([0, 0, 1, 2], vendor_keys(&known, profile));
                let mut sim = SimCard::with_config(profile, &cfg).unwrap();
                let crn = Crn::parse("0000000018").unwrap();
                let pins = Pins::generate(None).unwrap();
                let now = time::OffsetDateTime::now_utc();
                personalize_one(&mut sim, profile, &issuer, &record, &crn, &pins, now)
                    .unwrap_or_else(|e| panic!("{}: {e}", profile.id));
                let mut card = Card::with_caps(&mut sim, profile.caps());
                let pin =
                    CardPin::parse(std::str::from_utf8(pins.id_pin.expose()).unwrap()).unwrap();
                let trust = TrustAnchors::new(issuer.pki.root.clone())
                    .with_intermediate(issuer.pki.card_ca.clone());
                let verdict = Verifier::new(&trust, now)
                    .spec(&spec)
                    .pin(&pin)
                    .verify(&mut card)
                    .unwrap();
                assert!(verdict.is_genuine(), "{}: {verdict}", profile.id);
                done += 1;
            }
            assert!(done >= 3, "only {done} profiles");
            println!("{done} profiles personalized and verified with token keys");
        },
    );
}

#[test]
fn security_object_signed_in_the_token_verifies_with_openssl_cms() {
    with_token(
        "security_object_signed_in_the_token_verifies_with_openssl_cms",
        |hsm| {
            let dir = token_issuer(hsm, MasterKeySource::Generate);
            let issuer = Issuer::load(&dir).unwrap();
            let files: [(u16, &[u8]); 2] = [(0x0101, b"identity"), (0x0102, b"face")];
            let now = time::OffsetDateTime::now_utc();
            let sod = build_security_object(
                &files,
                &issuer.pki.document_signer,
                &*issuer.pki.document_signer_key,
                now,
            )
            .unwrap();
            std::fs::write(hsm.dir.join("sod.der"), &sod).unwrap();
            let out = Command::new("openssl")
                .current_dir(&hsm.dir)
                .args([
                    "cms",
                    "-verify",
                    "-inform",
                    "DER",
                    "-in",
                    "sod.der",
                    "-binary",
                    "-purpose",
                    "any",
                    "-out",
                    "content.der",
                    "-CAfile",
                ])
                .arg(dir.join("root.pem"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(String::from_utf8_lossy(&out.stderr).contains("Verification successful"));
            // Tampered: one byte of the signed content changed.
            let mut bad = sod.clone();
            let n = bad.len();
            bad[n - 5] ^= 0x01;
            std::fs::write(hsm.dir.join("bad.der"), &bad).unwrap();
            let out = Command::new("openssl")
                .current_dir(&hsm.dir)
                .args([
                    "cms", "-verify", "-inform", "DER", "-in", "bad.der", "-binary", "-purpose",
                    "any", "-out", "bad.out", "-CAfile",
                ])
                .arg(dir.join("root.pem"))
                .output()
                .unwrap();
            assert!(!out.status.success());
        },
    );
}

#[test]
fn pkcs11_tool_shows_private_and_secret_keys_never_extractable() {
    with_token(
        "pkcs11_tool_shows_private_and_secret_keys_never_extractable",
        |hsm| {
            token_issuer(hsm, MasterKeySource::Generate);
            let listing = pkcs11_tool(&["--login", "--pin", PIN, "--list-objects"]);
            // Blocks start at "Private Key Object" / "Secret Key Object" / "Public Key Object".
            let mut keys = 0;
            for block in listing.split("Object;").skip(1) {
                let kind = listing_kind(&listing, block);
                if kind == "Public" {
                    continue;
                }
                let access = block
                    .lines()
                    .find(|l| l.trim_start().starts_with("Access:"))
                    .unwrap_or_else(|| panic!("no Access line in {block}"));
                assert!(access.contains("sensitive"), "{access}");
                assert!(access.contains("never extractable"), "{access}");
                assert!(
                    !access
                        .replace("never extractable", "")
                        .contains("extractable"),
                    "{access}"
                );
                keys += 1;
            }
            // root, card CA, document signer; 3 master sets of ENC, MAC, DEK.
            assert_eq!(keys, 3 + 9, "{listing}");
            for label in [
                "root",
                "card-ca",
                "document-signer",
                "gp-3des-enc",
                "gp-aes256-dek",
            ] {
                assert!(
                    listing.contains(&format!("label:      {label}")),
                    "{label} in {listing}"
                );
            }
        },
    );
}

/// "Private Key" / "Secret Key" / "Public Key" for the block of the listing.
fn listing_kind<'a>(listing: &'a str, block: &str) -> &'a str {
    let at = listing.find(block).unwrap();
    let before = &listing[..at];
    let line = before.lines().last().unwrap_or_default();
    if line.contains("Private Key") {
        "Private"
    } else if line.contains("Secret Key") {
        "Secret"
    } else {
        "Public"
    }
}

/// 2-key 3DES ECB of one block by `openssl enc` (K3 = K1).
fn openssl_des2_ecb(dir: &Path, key: &str, block: &str) -> String {
    std::fs::write(dir.join("block.bin"), h(block)).unwrap();
    let out = Command::new("openssl")
        .current_dir(dir)
        .args([
            "enc",
            "-des-ede3",
            "-nopad",
            "-K",
            &format!("{key}{}", &key[..16]),
            "-in",
            "block.bin",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    hex::encode(out.stdout)
}

#[test]
fn diversification_in_the_token_matches_published_vectors() {
    with_token(
        "diversification_in_the_token_matches_published_vectors",
        |hsm| {
            let t = token();
            // GlobalPlatform test key 40..4F as a vendor master set (EMV CPS 1.1 and VISA2).
            let gp = "404142434445464748494a4b4c4d4e4f";
            for k in ["v-enc", "v-mac", "v-dek"] {
                import_master_key(&t, k, SecureChannelAlgorithm::TripleDes, &h(gp)).unwrap();
            }
            let kdd: [u8; 10] = h("00010203040506070809").try_into().unwrap();
            let labels = ["v-enc", "v-mac", "v-dek"];
            for (method, enc_block) in [
                (
                    Diversification::EmvCps11,
                    "040506070809f001040506070809".to_owned() + "0f01",
                ),
                (
                    Diversification::Visa2,
                    "000104050607f001000104050607".to_owned() + "0f01",
                ),
            ] {
                let source = TokenMasterKeys::open(
                    &t,
                    SecureChannelAlgorithm::TripleDes,
                    labels,
                    method,
                    0x20,
                )
                .unwrap();
                let card = source.card_keys(&kdd, 0x20).unwrap();
                assert_eq!(card.version(), 0x20);
                let software =
                    SoftwareKeys::new(KeySet::from_master(&h(gp), 0x20).unwrap(), method)
                        .card_keys(&kdd, 0x20)
                        .unwrap();
                // Same keys: a channel opened with each against one card agrees (compared
                // through a key check value, the keys themselves stay private).
                let expected = openssl_des2_ecb(&hsm.dir, gp, &enc_block);
                assert_eq!(kcv(&card, false), kcv(&software, false), "{method:?}");
                assert_eq!(
                    kcv(&card, false)[0],
                    kcv_of(&h(&expected), false),
                    "{method:?} against openssl"
                );
            }
            // KDF3: GlobalPlatformPro's published AES-256 vector (ENC).
            let master = h("8C72C72CF908411653018807950D82FBAD947562F0828A0B10B8B9606ABF3BCD");
            for k in ["a-enc", "a-mac", "a-dek"] {
                import_master_key(&t, k, SecureChannelAlgorithm::Aes256, &master).unwrap();
            }
            let kdd: [u8; 10] = h("D9B1DE5D0362DEDCE4FB").try_into().unwrap();
            let source = TokenMasterKeys::open(
                &t,
                SecureChannelAlgorithm::Aes256,
                ["a-enc", "a-mac", "a-dek"],
                Diversification::Kdf3,
                0x31,
            )
            .unwrap();
            let card = source.card_keys(&kdd, 0x31).unwrap();
            let published = h("9aac5d0b3601f89438a0d9d0b6b256cfb47e6462dfa5228d3420c4ac7c224781");
            assert_eq!(kcv(&card, true)[0], kcv_of(&published, true));
            let software = SoftwareKeys::new(
                KeySet::from_master(&master, 0x31).unwrap(),
                Diversification::Kdf3,
            )
            .card_keys(&kdd, 0x31)
            .unwrap();
            assert_eq!(kcv(&card, true), kcv(&software, true));
            // A DES key used as an AES set is refused, naming the object.
            let err = TokenMasterKeys::open(
                &t,
                SecureChannelAlgorithm::Aes128,
                labels,
                Diversification::Kdf3,
                1,
            )
            .unwrap_err();
            assert!(
                matches!(&err, Pkcs11Error::WrongKeyType { object, .. } if object == "v-enc"),
                "{err}"
            );
        },
    );
}

/// Key check values of ENC, MAC, DEK: the keys themselves stay private.
fn kcv(keys: &KeySet, aes: bool) -> [[u8; 3]; 3] {
    keys.check_values(aes).unwrap()
}

fn kcv_of(key: &[u8], aes: bool) -> [u8; 3] {
    kart_apdu::gp::crypto::key_check_value(key, aes).unwrap()
}

#[test]
fn faults_are_typed_and_name_what_is_wrong() {
    with_token("faults_are_typed_and_name_what_is_wrong", |hsm| {
        // Wrong PIN: one error, not retried; the right PIN still logs in after it.
        let err = Token::open(Path::new(MODULE), TOKEN, Pin::new("000000")).unwrap_err();
        assert!(matches!(err, Pkcs11Error::PinIncorrect { .. }), "{err}");
        assert!(!err.to_string().contains("000000"));
        let t = token();
        // Token absent.
        let err = Token::open(Path::new(MODULE), "no-such-token", Pin::new(PIN)).unwrap_err();
        assert!(
            matches!(&err, Pkcs11Error::TokenAbsent { token, .. } if token == "no-such-token"),
            "{err}"
        );
        assert!(err.is_unavailable());
        // Missing object, named.
        let err = TokenSigner::open(&t, "card-ca").unwrap_err();
        assert!(
            matches!(&err, Pkcs11Error::ObjectMissing { object, .. } if object == "card-ca"),
            "{err}"
        );
        // An issuer whose card CA key is gone: Issuer::load names it.
        let dir = token_issuer(hsm, MasterKeySource::Generate);
        let toml = std::fs::read_to_string(dir.join("issuer.toml")).unwrap();
        std::fs::write(
            dir.join("issuer.toml"),
            toml.replace("object=card-ca", "object=gone"),
        )
        .unwrap();
        let err = Issuer::load(&dir).unwrap_err();
        assert!(
            matches!(&err, PkiError::Pkcs11(Pkcs11Error::ObjectMissing { object, .. }) if object == "gone"),
            "{err}"
        );
        // A secret key named where a signing key is expected: wrong class, named.
        std::fs::write(
            dir.join("issuer.toml"),
            toml.replace("object=card-ca", "object=gp-aes128-enc"),
        )
        .unwrap();
        let err = Issuer::load(&dir).unwrap_err();
        assert!(err.to_string().contains("gp-aes128-enc"), "{err}");
        // A PIN in the URI is refused without being quoted.
        std::fs::write(
            dir.join("issuer.toml"),
            toml.replace("object=card-ca", "object=card-ca?pin-value=4321"),
        )
        .unwrap();
        let err = Issuer::load(&dir).unwrap_err();
        assert!(!err.to_string().contains("4321"), "{err}");
    });
}

/// P-384 and RSA 2048/3072 key pairs generated in the token sign what their
/// public keys (read from the token's public key objects) verify, with
/// ring's verifiers (another implementation than SoftHSM's OpenSSL one).
#[test]
fn p384_and_rsa_keys_in_the_token_sign_verifiably() {
    use kart_perso::pki::pkcs11::{generate_key_pair, KeyPairKind};
    use kart_perso::pki::KeyAlgorithm;
    use ring::signature::{UnparsedPublicKey, ECDSA_P384_SHA384_ASN1, RSA_PKCS1_2048_8192_SHA256};
    with_token("p384_and_rsa_keys_in_the_token_sign_verifiably", |_| {
        let t = token();
        for (label, kind) in [
            ("p384", KeyPairKind::P384),
            ("rsa2048", KeyPairKind::Rsa(2048)),
            ("rsa3072", KeyPairKind::Rsa(3072)),
        ] {
            generate_key_pair(&t, label, label.as_bytes(), kind).unwrap();
            let signer = TokenSigner::open(&t, label).unwrap();
            let msg = b"signed attributes of a security object";
            let sig = signer.sign(msg).unwrap();
            let alg: &dyn ring::signature::VerificationAlgorithm = match signer.algorithm() {
                KeyAlgorithm::EcdsaP384Sha384 => &ECDSA_P384_SHA384_ASN1,
                KeyAlgorithm::RsaPkcs1Sha256 => &RSA_PKCS1_2048_8192_SHA256,
                other @ (KeyAlgorithm::EcdsaP256Sha256 | KeyAlgorithm::RsaPssSha256) => {
                    panic!("{label}: {other:?}")
                }
            };
            UnparsedPublicKey::new(alg, signer.public_key())
                .verify(msg, &sig)
                .unwrap_or_else(|_| panic!("{label}: signature does not verify"));
            assert!(UnparsedPublicKey::new(alg, signer.public_key())
                .verify(b"other", &sig)
                .is_err());
        }
        // RSA outside 2048-4096 is refused before the token is asked.
        assert!(generate_key_pair(&t, "rsa1024", b"x", KeyPairKind::Rsa(1024)).is_err());
    });
}

/// A token object that is not the certificate's key is refused at load;
/// a PIN the token refused is never offered to it again.
#[test]
fn a_key_that_is_not_the_certificates_is_refused_and_a_refused_pin_is_not_retried() {
    use kart_perso::pki::pkcs11::{generate_key_pair, KeyPairKind};
    with_token(
        "a_key_that_is_not_the_certificates_is_refused_and_a_refused_pin_is_not_retried",
        |hsm| {
            let dir = token_issuer(hsm, MasterKeySource::Generate);
            generate_key_pair(&token(), "impostor", b"\x09", KeyPairKind::P256).unwrap();
            let toml = std::fs::read_to_string(dir.join("issuer.toml")).unwrap();
            std::fs::write(
                dir.join("issuer.toml"),
                toml.replace("object=document-signer", "object=impostor"),
            )
            .unwrap();
            let err = Issuer::load(&dir).unwrap_err();
            assert!(
                err.to_string()
                    .contains("'impostor' is not the key of document-signer.pem"),
                "{err}"
            );

            // SoftHSM counts wrong PINs; one refused login leaves the count at one.
            let before = pkcs11_tool(&["-T"]);
            let err = Token::open(Path::new(MODULE), TOKEN, Pin::new("111111")).unwrap_err();
            assert!(matches!(err, Pkcs11Error::PinIncorrect { .. }));
            let after = pkcs11_tool(&["-T"]);
            assert!(!before.contains("PIN count low"), "{before}");
            assert!(
                after.contains("PIN count low") || after == before,
                "{after}"
            );
            assert!(!after.contains("PIN locked"), "{after}");
            // The right PIN still works.
            token();
        },
    );
}

/// An RSA 2048 document signer in the token signing with RSASSA-PSS: the
/// security object verifies with `openssl cms -verify` and with kart's own
/// passive authentication; a PSS key refuses to sign certificates.
#[test]
fn rsa_pss_document_signer_in_the_token_verifies_with_openssl_cms() {
    use kart_perso::pki::pkcs11::{generate_key_pair, KeyPairKind};
    use kart_perso::pki::{Certificate, KeyAlgorithm};
    use kart_perso::security_object::SecurityObject;
    with_token(
        "rsa_pss_document_signer_in_the_token_verifies_with_openssl_cms",
        |hsm| {
            let t = token();
            generate_key_pair(&t, "ds-rsa", b"\x0d", KeyPairKind::Rsa(2048)).unwrap();
            let ds_key = TokenSigner::open_pss(&t, "ds-rsa").unwrap();
            assert_eq!(ds_key.algorithm(), KeyAlgorithm::RsaPssSha256);

            let dir = &hsm.dir;
            let ds_cert = openssl_document_signer(dir, ds_key.public_key());

            let files: [(u16, &[u8]); 2] = [(0x0101, b"identity"), (0x0102, b"face")];
            let now = time::OffsetDateTime::now_utc();
            let sod = build_security_object(&files, &ds_cert, &ds_key, now).unwrap();
            std::fs::write(dir.join("sod.der"), &sod).unwrap();
            let out = Command::new("openssl")
                .current_dir(dir)
                .args([
                    "cms",
                    "-verify",
                    "-inform",
                    "DER",
                    "-in",
                    "sod.der",
                    "-binary",
                    "-purpose",
                    "any",
                    "-out",
                    "content.der",
                    "-CAfile",
                    "root.pem",
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let root = Certificate::load(&dir.join("root.pem")).unwrap();
            let verification = SecurityObject::parse(&sod)
                .unwrap()
                .verify(&root, &files, now);
            assert!(verification.passed(), "{:?}", verification.failures());

            // Certificates cannot be signed with a PSS key (rcgen has no PSS).
            let holder = kart_perso::pki::Holder {
                crn: "1234567890",
                national_code: "0499370899",
                public_key: &kart_perso::pki::HolderKey::ec_p256(&rcgen_point()).unwrap(),
            };
            assert!(
                kart_perso::pki::issue_holder_certificate(&ds_cert, &ds_key, &holder, now).is_err()
            );
        },
    );
}

/// A root made by openssl issues a document signer certificate for an RSA
/// public key (given as `RSAPublicKey`), written out as a PEM
/// SubjectPublicKeyInfo; `dir/root.pem` is the root.
fn openssl_document_signer(dir: &Path, rsa_public_key: &[u8]) -> kart_perso::pki::Certificate {
    // A root made by openssl issues the document signer certificate for
    // the token's public key (written out as a PEM SubjectPublicKeyInfo).
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "root.key",
        "-out",
        "root.pem",
        "-days",
        "30",
        "-subj",
        "/C=IR/CN=PSS test root",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    let spki = rsa_spki_pem(rsa_public_key);
    std::fs::write(dir.join("ds.pub.pem"), spki).unwrap();
    std::fs::write(
        dir.join("ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-new",
        "-subj",
        "/C=IR/CN=PSS document signer",
        "-force_pubkey",
        "ds.pub.pem",
        "-CA",
        "root.pem",
        "-CAkey",
        "root.key",
        "-days",
        "10",
        "-extfile",
        "ext",
        "-out",
        "ds.pem",
    ]);
    kart_perso::pki::Certificate::load(&dir.join("ds.pem")).unwrap()
}

/// A valid P-256 point (from ring) for a holder.
fn rcgen_point() -> Vec<u8> {
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec()
}

/// PEM SubjectPublicKeyInfo (rsaEncryption) around an `RSAPublicKey`.
fn rsa_spki_pem(rsa_public_key: &[u8]) -> String {
    use base64_lite::encode;
    let mut bits = vec![0u8];
    bits.extend_from_slice(rsa_public_key);
    let alg = h("300d06092a864886f70d0101010500");
    let mut body = alg;
    body.extend(der_tlv(0x03, &bits));
    let spki = der_tlv(0x30, &body);
    let b64 = encode(&spki);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    )
}

fn der_tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(value);
    out
}

mod base64_lite {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    pub fn encode(data: &[u8]) -> String {
        let mut s = String::new();
        for c in data.chunks(3) {
            let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= c.len() {
                    s.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
                } else {
                    s.push('=');
                }
            }
        }
        s
    }
}

/// 16 reader threads share one token: one login, a pool of at most one
/// session per thread, every signature good.
#[test]
fn sixteen_threads_share_one_logged_in_token() {
    use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};
    with_token("sixteen_threads_share_one_logged_in_token", |hsm| {
        let dir = token_issuer(hsm, MasterKeySource::Generate);
        let issuer = Issuer::load(&dir).unwrap();
        let spec = spec();
        let profile = spec.profile("vendor-c").unwrap();
        let key = &*issuer.pki.card_ca_key;
        std::thread::scope(|s| {
            for n in 0..16u8 {
                let issuer = &issuer;
                s.spawn(move || {
                    let (source, params) = issuer.card_key_source(profile).unwrap();
                    for i in 0..20u8 {
                        let msg = [n, i];
                        let sig = key.sign(&msg).unwrap();
                        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key.public_key())
                            .verify(&msg, &sig)
                            .unwrap();
                        source
                            .card_keys(&[n, i, 0, 0, 0, 0, 0, 0, 0, 0], params.key_version)
                            .unwrap();
                    }
                });
            }
        });
        // The signers and the master key sets share one token (one login);
        // its pool holds at most one session per thread that used it at once.
        let shared = issuer.token_master_keys[0].token();
        let idle = shared.idle_sessions();
        assert!((1..=17).contains(&idle), "{idle} sessions");
    });
}
