//! Stored simulated cards: a card left in its reader keeps everything
//! non-volatile between processes (files, PIN counters, key pairs, life
//! cycle, CRN) and a damaged or foreign file is refused, never overwritten.

use kart_apdu::{Card, Command};
use kart_sim::store::{CardStore, Slot, StoreError, FORMAT};
use kart_sim::{default_test_key, SimCard, SimConfig};
use kart_testkit::raw::*;
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

const READER: &str = "sim:vendor-c#1";

fn config(serial: u8) -> SimConfig {
    SimConfig::new([0, 0, 0, serial], &default_test_key(32))
}

fn stored(store: &CardStore, serial: u8) -> SimCard {
    store
        .card(READER, &profile("vendor-c"), &config(serial))
        .unwrap()
}

/// A store in a new directory (removed with the returned guard) whose
/// reader holds the card of serial `serial`, personalized ([`personalize`])
/// and saved.
fn store_with_a_personalized_card(serial: u8) -> (tempfile::TempDir, CardStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = CardStore::open(dir.path()).unwrap();
    let (_, card) = personalize(stored(&store, serial));
    drop(card);
    (dir, store)
}

/// Writes a card's data, PINs, keys and CRN in a real secure channel.
fn personalize(card: SimCard) -> (Vec<u8>, SimCard) {
    let mut ch = open_channel(card);
    write_file(&mut ch, 0x011D, &[0x30, 0x03, 0x02, 0x01, 0x05]);
    for (p2, pin) in [
        (0x81, pin_block("1234")),
        (0x82, pin_block("123456")),
        (0x83, b"12345678".to_vec()),
    ] {
        ch.send_ok(&Command::new(0x00, 0x24, 0x01, p2).with_data(&pin).unwrap())
            .unwrap();
    }
    let point = ch
        .send_ok(&Command::new(0x00, 0x47, 0x80, 0x01).with_le(256).unwrap())
        .unwrap();
    ch.send_ok(
        &Command::new(0x00, 0xDA, 0xDF, 0x72)
            .with_data(b"0123456789")
            .unwrap(),
    )
    .unwrap();
    let card = ch.into_inner().into_inner().into_inner();
    (point[5..].to_vec(), card)
}

#[test]
fn a_stored_card_keeps_its_memory_between_processes() {
    let dir = tempfile::tempdir().unwrap();
    let store = CardStore::open(dir.path()).unwrap();
    let card = stored(&store, 5);
    // Nothing changed yet: nothing written.
    assert!(!store.has_card(READER));
    let (point, card) = personalize(card);
    assert!(store.has_card(READER));
    drop(card);

    // "Another process": the same card comes back from the file, with its
    // own serial whatever the opener's config says.
    let mut again = Card::with_caps(stored(&store, 99), profile("vendor-c").caps());
    assert_eq!(again.transport().ic_serial(), [0, 0, 0, 5]);
    let aid = profile("vendor-c").applet_aid.bytes().to_vec();
    again
        .send_ok(
            &Command::new(0x00, 0xA4, 0x04, 0x0C)
                .with_data(&aid)
                .unwrap(),
        )
        .unwrap();
    let crn = again
        .send_ok(&Command::new(0x00, 0xCA, 0xDF, 0x72).with_le(256).unwrap())
        .unwrap();
    assert_eq!(&crn[3..], b"0123456789");
    assert_eq!(
        read_file(&mut again, 0x011D).unwrap(),
        [0x30, 0x03, 0x02, 0x01, 0x05]
    );
    // The key pair survived as PKCS#8: same public key, and it still signs.
    let read_point = again
        .send_ok(&Command::new(0x00, 0x47, 0x81, 0x01).with_le(256).unwrap())
        .unwrap();
    assert_eq!(&read_point[5..], point.as_slice());
    let challenge = [7u8; 16];
    let sig = again.send_ok(&internal_authenticate(&challenge)).unwrap();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
        .verify(&challenge, &sig)
        .expect("the stored key signs");
    // A wrong PIN is counted in the file: the next process sees 63C1 left after one more.
    let wrong = Command::new(0x00, 0x20, 0x00, 0x81)
        .with_data(&pin_block("9999"))
        .unwrap();
    assert_eq!(again.send(&wrong).unwrap().sw().0, 0x63C2);
    drop(again);
    let mut third = Card::with_caps(stored(&store, 1), profile("vendor-c").caps());
    third
        .send_ok(
            &Command::new(0x00, 0xA4, 0x04, 0x0C)
                .with_data(&aid)
                .unwrap(),
        )
        .unwrap();
    assert_eq!(third.send(&wrong).unwrap().sw().0, 0x63C1);
    let right = Command::new(0x00, 0x20, 0x00, 0x81)
        .with_data(&pin_block("1234"))
        .unwrap();
    assert_eq!(third.send(&right).unwrap().sw().0, 0x9000);
}

#[test]
fn the_file_has_a_format_version_no_channel_keys_and_mode_0600() {
    let (dir, store) = store_with_a_personalized_card(6);
    let path = store.path(READER);
    assert_eq!(path.file_name().unwrap(), "vendor-c-1.card.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["format"], FORMAT);
    assert_eq!(v["profile"], "vendor-c");
    assert_eq!(v["ic_serial"], "00000006");
    // Secure-channel keys are not part of the card file.
    assert!(
        !text.contains(&hex::encode_upper(default_test_key(32))),
        "{text}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from("vendor-c-1.card.json")]);
}

fn refused(store: &CardStore) -> StoreError {
    store
        .card(READER, &profile("vendor-c"), &config(1))
        .unwrap_err()
}

#[test]
fn a_truncated_or_foreign_file_is_an_error_and_is_not_overwritten() {
    let (_dir, store) = store_with_a_personalized_card(7);
    let path = store.path(READER);
    let whole = std::fs::read(&path).unwrap();

    let truncated = &whole[..whole.len() / 2];
    std::fs::write(&path, truncated).unwrap();
    let e = refused(&store);
    assert!(matches!(e, StoreError::Damaged { .. }), "{e}");
    assert!(e.to_string().contains("left untouched"), "{e}");
    // A fresh card for that reader is refused too: the damaged card stays.
    assert!(next(&store, 2).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), truncated);

    let other = String::from_utf8(whole.clone())
        .unwrap()
        .replace(FORMAT, "kart-sim-card/2");
    std::fs::write(&path, &other).unwrap();
    let e = refused(&store);
    assert!(
        matches!(&e, StoreError::Version { found, .. } if found == "kart-sim-card/2"),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), other);

    let edited = String::from_utf8(whole.clone())
        .unwrap()
        .replace("\"vendor-c\"", "\"vendor-a\"");
    std::fs::write(&path, &edited).unwrap();
    assert!(matches!(refused(&store), StoreError::Profile { .. }));

    // A bad value inside a well-formed file: a PIN block that is not a PIN.
    let mut v: serde_json::Value = serde_json::from_slice(&whole).unwrap();
    v["pins"][0]["block"] = "41424344FFFFFFFF".into();
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    let e = refused(&store);
    assert!(e.to_string().contains("PIN 1"), "{e}");

    // Put the good file back: the card is whole again.
    std::fs::write(&path, &whole).unwrap();
    assert_eq!(stored(&store, 1).ic_serial(), [0, 0, 0, 7]);
}

/// The next card put in the reader, keyed with `config(serial)`.
fn next(store: &CardStore, serial: u8) -> Result<SimCard, StoreError> {
    store.card_in(Slot::Next, READER, &profile("vendor-c"), &config(serial))
}

/// A card with serial `serial` personalized in the reader: its file.
fn issued(store: &CardStore, serial: u8) -> Vec<u8> {
    drop(personalize(stored(store, serial)).1);
    std::fs::read(store.path(READER)).unwrap()
}

#[test]
fn a_fresh_card_replaces_the_stored_one_when_it_first_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = CardStore::open(dir.path()).unwrap();
    let before = issued(&store, 8);
    let fresh = next(&store, 9).unwrap();
    assert_eq!(
        std::fs::read(store.path(READER)).unwrap(),
        before,
        "not yet changed"
    );
    let (_, fresh) = personalize(fresh);
    drop(fresh);
    assert_eq!(stored(&store, 1).ic_serial(), [0, 0, 0, 9]);
    assert!(
        !store.has_inserted_card(READER),
        "moved into the reader's file"
    );
}

#[test]
fn a_fresh_card_is_on_disk_before_its_first_command_and_comes_back_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let store = CardStore::open(dir.path()).unwrap();
    let before = issued(&store, 3);
    // Inserted, then the process dies before any command: the card is kept.
    drop(next(&store, 4).unwrap());
    assert!(store.has_inserted_card(READER));
    // The next process gets the same card (its serial, not the config's),
    // and the issued card is still the reader's.
    assert_eq!(next(&store, 5).unwrap().ic_serial(), [0, 0, 0, 4]);
    assert_eq!(std::fs::read(store.path(READER)).unwrap(), before);
    assert_eq!(stored(&store, 1).ic_serial(), [0, 0, 0, 3]);

    // A damaged inserted card is refused and left as it was.
    let inserted = store.inserted_path(READER);
    std::fs::write(&inserted, b"{\"format\":").unwrap();
    let e = next(&store, 6).unwrap_err();
    assert!(matches!(e, StoreError::Damaged { .. }), "{e}");
    assert_eq!(std::fs::read(&inserted).unwrap(), b"{\"format\":");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(inserted.parent().unwrap()), 0o700);
        assert_eq!(mode(&inserted), 0o600);
    }
}

#[test]
fn every_truncation_of_a_stored_card_is_refused_and_no_input_panics() {
    use proptest::prelude::*;
    let (_dir, store) = store_with_a_personalized_card(10);
    let whole = std::fs::read(store.path(READER)).unwrap();
    assert_eq!(kart_sim::store::validate(&whole).unwrap(), "vendor-c");
    // The JSON's closing brace and newline are the last 2 bytes: any cut
    // before them leaves a document that is not whole.
    for n in 0..whole.len() - 2 {
        let e = kart_sim::store::validate(&whole[..n]).unwrap_err();
        assert!(matches!(e, StoreError::Damaged { .. }), "cut at {n}: {e}");
    }
    // Random edits of a real file: an answer, never a panic.
    proptest!(ProptestConfig::with_cases(300), |(at in 0..whole.len(), byte in any::<u8>())| {
        let mut edited = whole.clone();
        edited[at] = byte;
        let _ = kart_sim::store::validate(&edited);
    });
}

#[test]
fn a_stored_rsa_card_keeps_its_rsa_key_pair() {
    use ring::signature::{RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256};
    let dir = tempfile::tempdir().unwrap();
    let store = CardStore::open(dir.path()).unwrap();
    let p = profile("vendor-b");
    let config = SimConfig::new([0, 0, 0, 3], &default_test_key(16));
    let card = store.card("sim:vendor-b#1", &p, &config).unwrap();
    let mut ch = open_channel(card);
    let template = ch
        .send_ok(&Command::new(0x00, 0x47, 0x80, 0x01).with_le(256).unwrap())
        .unwrap();
    drop(ch);
    let mut again = Card::with_caps(store.card("sim:vendor-b#1", &p, &config).unwrap(), p.caps());
    again
        .send_ok(
            &Command::new(0x00, 0xA4, 0x04, 0x0C)
                .with_data(p.applet_aid.bytes())
                .unwrap(),
        )
        .unwrap();
    let read = again
        .send_ok(&Command::new(0x00, 0x47, 0x81, 0x01).with_le(256).unwrap())
        .unwrap();
    assert_eq!(read, template, "the same RSA public key after a reload");
    // 7F49 { 81 modulus, 82 exponent }: verify a signature of the reloaded card.
    let object = kart_apdu::tlv::parse(&read).unwrap();
    let n = kart_apdu::tlv::value_at(&object, &[0x7F49, 0x81]).unwrap();
    let e = kart_apdu::tlv::value_at(&object, &[0x7F49, 0x82]).unwrap();
    assert_eq!(n.len(), 256);
    let challenge = [9u8; 16];
    let sig = again.send_ok(&internal_authenticate(&challenge)).unwrap();
    RsaPublicKeyComponents { n, e }
        .verify(&RSA_PKCS1_2048_8192_SHA256, &challenge, &sig)
        .expect("the stored RSA key signs");
}
