//! Personalize a simulated card of each vendor profile by hand — raw
//! commands and hand-built TLVs from applets-spec/README.md, inside a real
//! GP secure channel (SCP02 or SCP03 per the profile) — then read it back,
//! authenticate it and sign with it, and lock it.

use kart_apdu::{Card, Command};
use kart_sim::{SimCard, SimConfig};
use kart_testkit::raw::*;
use ring::signature::{
    RsaPublicKeyComponents, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256,
};

const ID_PIN: &str = "482916";
const SIGN_PIN: &str = "73019264";
const PUK: &str = "55190387";

fn ok(card: &mut Channel, cmd: &Command) -> Vec<u8> {
    card.send_ok(cmd).unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// A holder public key as GENERATE ASYMMETRIC KEY PAIR answers it (spec §8.9).
#[derive(Debug, PartialEq)]
enum Public {
    /// The uncompressed point inside `7F49 43 86 41 …`.
    Ec(Vec<u8>),
    /// Modulus and exponent inside `7F49 82 0109 81 82 0100 … 82 03 …`.
    Rsa(Vec<u8>, Vec<u8>),
}

fn public_key(p: &kart_spec::Profile, public: &[u8]) -> Public {
    if p.holder_key == kart_spec::HolderKeyAlgorithm::Rsa2048 {
        assert_eq!(
            &public[..9],
            [0x7F, 0x49, 0x82, 0x01, 0x09, 0x81, 0x82, 0x01, 0x00],
            "RSA public key template"
        );
        assert_eq!(public.len(), 9 + 256 + 5);
        assert_eq!(&public[265..267], [0x82, 0x03], "exponent tag");
        assert_eq!(public[9] & 0x80, 0x80, "a full 2048-bit modulus");
        return Public::Rsa(public[9..265].to_vec(), public[267..].to_vec());
    }
    assert_eq!(
        &public[..5],
        [0x7F, 0x49, 0x43, 0x86, 0x41],
        "public key template"
    );
    assert_eq!(public.len(), 5 + 65);
    assert_eq!(public[5], 0x04, "uncompressed point");
    Public::Ec(public[5..].to_vec())
}

/// The card's signature check (§8.10): ECDSA P-256 raw r‖s, or RSASSA-PKCS1-v1_5, SHA-256.
fn verifies(key: &Public, message: &[u8], signature: &[u8]) -> bool {
    match key {
        Public::Ec(point) => UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
            .verify(message, signature)
            .is_ok(),
        Public::Rsa(n, e) => RsaPublicKeyComponents { n, e }
            .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature)
            .is_ok(),
    }
}

fn personalize(id: &str) {
    let p = profile(id);
    let config = SimConfig::new(
        [0x12, 0x34, 0x56, 0x78],
        &kart_sim::default_test_key(p.secure_channel.key_length),
    );
    let sim = SimCard::with_config(&p, &config).unwrap();
    let mut card = open_channel(sim);

    let id_record = identity_record(&config.csn());
    let face = face(6000);
    let sod = tlv(&[0x30], &[0xA5; 3000]);
    write_file(&mut card, 0x0101, &id_record);
    write_file(&mut card, 0x0102, &face);
    ok(
        &mut card,
        &Command::new(0x00, 0xDA, 0xDF, 0x72)
            .with_data(b"1234567890")
            .unwrap(),
    );
    for (p2, value) in [
        (0x81, pin_block(ID_PIN)),
        (0x82, pin_block(SIGN_PIN)),
        (0x83, PUK.as_bytes().to_vec()),
    ] {
        ok(
            &mut card,
            &Command::new(0x00, 0x24, 0x01, p2)
                .with_data(&value)
                .unwrap()
                .sensitive(),
        );
    }
    let mut points = Vec::new();
    for key in [0x01, 0x02] {
        // An RSA-2048 public key (270 bytes) needs an extended Le.
        let le = if p.limits.extended_length { 2048 } else { 256 };
        let public = ok(
            &mut card,
            &Command::new(0x00, 0x47, 0x80, key).with_le(le).unwrap(),
        );
        points.push(public_key(&p, &public));
    }
    assert_ne!(points[0], points[1], "two distinct key pairs");
    // Stand-ins for the certificates (the simulator stores, never parses them).
    write_file(&mut card, 0x0201, &tlv(&[0x30], &[0x11; 700]));
    write_file(&mut card, 0x0202, &tlv(&[0x30], &[0x22; 700]));
    write_file(&mut card, 0x011D, &sod);
    ok(&mut card, &Command::new(0x84, 0xF0, 0x40, 0x0F));
    // Key generation is over once personalized.
    let r = card
        .send(&Command::new(0x00, 0x47, 0x80, 0x01).with_le(256).unwrap())
        .unwrap();
    assert_eq!(r.sw().0, 0x6985);

    let sim = card.into_inner().into_inner().into_inner();
    let sim = use_as_holder(
        &p,
        sim,
        &Written {
            id_record,
            face,
            sod,
            points,
        },
    );
    lock(sim);
}

struct Written {
    id_record: Vec<u8>,
    face: Vec<u8>,
    sod: Vec<u8>,
    points: Vec<Public>,
}

/// Holder side, no secure channel.
fn use_as_holder(p: &kart_spec::Profile, mut sim: SimCard, w: &Written) -> SimCard {
    let Written {
        id_record,
        face,
        sod,
        points,
    } = w;
    let apdus_before = sim.log().apdus();
    let mut holder = Card::with_caps(&mut sim, p.caps());
    holder
        .send_ok(
            &Command::new(0x00, 0xA4, 0x04, 0x0C)
                .with_data(p.applet_aid.bytes())
                .unwrap(),
        )
        .unwrap();
    assert_eq!(
        read_file(&mut holder, 0x0101),
        Err(0x6982),
        "EF.ID needs the ID PIN"
    );
    assert_eq!(
        &read_file(&mut holder, 0x011D).unwrap(),
        sod,
        "EF.SOD is public"
    );
    holder
        .send_ok(
            &Command::new(0x00, 0x20, 0x00, 0x81)
                .with_data(&pin_block(ID_PIN))
                .unwrap(),
        )
        .unwrap();
    assert_eq!(&read_file(&mut holder, 0x0101).unwrap(), id_record);
    assert_eq!(&read_file(&mut holder, 0x0102).unwrap(), face);
    let lifecycle = holder
        .send_ok(&Command::new(0x00, 0xCA, 0xDF, 0x71).with_le(256).unwrap())
        .unwrap();
    assert_eq!(lifecycle, [0xDF, 0x71, 0x01, 0x0F]);
    let crn = holder
        .send_ok(&Command::new(0x00, 0xCA, 0xDF, 0x72).with_le(256).unwrap())
        .unwrap();
    assert_eq!(crn, tlv(&[0xDF, 0x72], b"1234567890"));

    // Active authentication: ECDSA P-256 SHA-256 (raw r||s) or RSASSA-PKCS1-v1_5
    // SHA-256 over the challenge, as the profile's holder key.
    let challenge = *b"terminal-chal-16";
    let sig = holder.send_ok(&internal_authenticate(&challenge)).unwrap();
    let rsa = p.holder_key == kart_spec::HolderKeyAlgorithm::Rsa2048;
    assert_eq!(sig.len(), if rsa { 256 } else { 64 });
    assert!(
        verifies(&points[0], &challenge, &sig),
        "AA signature verifies with AUTH_KEY"
    );
    assert!(!verifies(&points[1], &challenge, &sig));

    // Signing needs SIGN PIN, once per verification.
    let doc = b"document digest stand-in";
    let pso = Command::new(0x00, 0x2A, 0x9E, 0x9A)
        .with_data(doc)
        .unwrap()
        .with_le(256)
        .unwrap();
    assert_eq!(holder.send(&pso).unwrap().sw().0, 0x6982);
    holder
        .send_ok(
            &Command::new(0x00, 0x20, 0x00, 0x82)
                .with_data(&pin_block(SIGN_PIN))
                .unwrap(),
        )
        .unwrap();
    let sig = holder.send_ok(&pso).unwrap();
    assert!(
        verifies(&points[1], doc, &sig),
        "signature verifies with SIGN_KEY"
    );
    assert_eq!(holder.send(&pso).unwrap().sw().0, 0x6982);
    drop(holder);
    assert!(sim.log().apdus() > apdus_before);
    sim
}

fn lock(sim: SimCard) {
    // Lock, then every personalization write answers 6985 even inside the channel.
    let mut card = open_channel(sim);
    ok(&mut card, &Command::new(0x84, 0xF0, 0x40, 0x83));
    ok(
        &mut card,
        &Command::new(0x00, 0xA4, 0x02, 0x0C)
            .with_data(&[0x01, 0x1D])
            .unwrap(),
    );
    for cmd in [
        Command::new(0x00, 0xD6, 0x00, 0x00)
            .with_data(&[0x00])
            .unwrap(),
        Command::new(0x00, 0x0E, 0x00, 0x00),
        Command::new(0x00, 0xDA, 0xDF, 0x72)
            .with_data(b"0987654321")
            .unwrap(),
        Command::new(0x00, 0x47, 0x80, 0x01).with_le(256).unwrap(),
        Command::new(0x00, 0x24, 0x01, 0x81)
            .with_data(&pin_block("1111"))
            .unwrap(),
        Command::new(0x84, 0xF0, 0x40, 0x83),
    ] {
        assert_eq!(
            card.send(&cmd).unwrap().sw().0,
            0x6985,
            "{cmd:?} on a LOCKED card"
        );
    }
}

#[test]
fn vendor_a_t0_scp02_personalizes_and_reads_back() {
    personalize("vendor-a");
}

#[test]
fn vendor_b_extended_scp03_aes128_personalizes_and_reads_back() {
    personalize("vendor-b");
}

#[test]
fn vendor_c_chaining_scp03_aes256_personalizes_and_reads_back() {
    personalize("vendor-c");
}

#[test]
fn finalize_refused_until_everything_is_written() {
    let p = profile("vendor-b");
    let mut card = open_channel(SimCard::new(&p).unwrap());
    write_file(&mut card, 0x0101, &identity_record(&[0; 8]));
    let r = card.send(&Command::new(0x84, 0xF0, 0x40, 0x0F)).unwrap();
    assert_eq!(r.sw().0, 0x6985);
    // Skipping a state is refused too.
    let r = card.send(&Command::new(0x84, 0xF0, 0x40, 0x83)).unwrap();
    assert_eq!(r.sw().0, 0x6985);
}

#[test]
fn a_wrong_mac_closes_the_channel() {
    let p = profile("vendor-b");
    let mut card = open_channel(SimCard::new(&p).unwrap());
    ok(
        &mut card,
        &Command::new(0x00, 0xA4, 0x02, 0x0C)
            .with_data(&[0x01, 0x1D])
            .unwrap(),
    );
    // A secured UPDATE BINARY with a MAC the card did not compute.
    let sim = card.transport_mut().inner_mut().transport_mut();
    // CLA 04: the ISO class with secure messaging (84 would be refused as 6E00).
    let forged = [0x04, 0xD6, 0x00, 0x00, 0x09, 0xAA, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(raw(sim, &forged).1, 0x6988);
    assert_eq!(
        raw(sim, &forged).1,
        0x6982,
        "channel closed: secured command refused"
    );
    assert_eq!(
        raw(sim, &[0x00, 0xD6, 0x00, 0x00, 0x01, 0xAA]).1,
        0x6982,
        "and a plain write needs a channel"
    );
}

#[test]
fn wrong_master_key_does_not_open_a_channel() {
    let p = profile("vendor-a");
    let config = SimConfig::new([1, 2, 3, 4], &[0x77; 16]);
    let inner = applet_selected(SimCard::with_config(&p, &config).unwrap());
    let (keys, params) = host_keys(&p);
    let level = kart_apdu::gp::SecurityLevel::C_MAC;
    let Err(failed) = kart_apdu::gp::SecureChannel::open(inner, &keys, &params, level) else {
        panic!("the host must refuse the card cryptogram");
    };
    assert!(
        matches!(failed.error, kart_apdu::gp::GpError::CardCryptogramMismatch),
        "{}",
        failed.error
    );
}

#[test]
fn master_key_of_the_wrong_length_is_refused() {
    let p = profile("vendor-c");
    let e = SimCard::with_config(&p, &SimConfig::new([0; 4], &[0x40; 16])).unwrap_err();
    assert!(
        e.hint()
            .is_some_and(|h| h.contains("give a 32-byte master key")),
        "{e}: {:?}",
        e.hint()
    );
}
