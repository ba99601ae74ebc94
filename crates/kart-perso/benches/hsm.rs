//! Per-card issuer key time: file keys (ring, software diversification)
//! against keys in a SoftHSM2 token through PKCS#11, and the token's
//! capacity with 16 reader threads sharing it.
//!
//! Per card the station makes three signatures (two holder certificates by
//! the card CA, the security object by the document signer, all ECDSA
//! P-256) and derives the card's static keys once (ENC, MAC, DEK: three
//! DES3-ECB encryptions or AES-CMACs). This bench times exactly those
//! operations.
//!
//! ```sh
//! cargo bench -p kart-perso --bench hsm            # needs softhsm2 (scripts/setup)
//! ```
//!
//! It makes its own token directory (`SOFTHSM2_CONF`) and removes it.
#![allow(clippy::doc_markdown, clippy::many_single_char_names, missing_docs)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kart_apdu::gp::{CardKeySource, Diversification, KeySet, SoftwareKeys};
use kart_perso::pki::pkcs11::{Pin, Token, TokenMasterKeys, TokenSigner};
use kart_perso::pki::token_issuer::{create, MasterKeySource};
use kart_perso::pki::{
    create_demo_issuer, IssuerPki, IssuerSigner, MasterKeys, SecureChannelAlgorithm,
};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const CARDS: u32 = 300;
const THREADS: u32 = 16;

fn per_card(
    ca: &dyn IssuerSigner,
    ds: &dyn IssuerSigner,
    keys: &dyn CardKeySource,
    n: u32,
) -> Duration {
    let tbs = [0x5Au8; 600];
    let mut kdd = [0u8; 10];
    let start = Instant::now();
    for i in 0..n {
        kdd[6..].copy_from_slice(&i.to_be_bytes());
        keys.card_keys(&kdd, 0x20).expect("card keys");
        ca.sign(&tbs).expect("sign");
        ca.sign(&tbs).expect("sign");
        ds.sign(&tbs).expect("sign");
    }
    start.elapsed() / n
}

fn shared(ca: &dyn IssuerSigner, ds: &dyn IssuerSigner, keys: &dyn CardKeySource) -> f64 {
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| per_card(ca, ds, keys, CARDS / 4));
        }
    });
    f64::from(THREADS * (CARDS / 4)) / start.elapsed().as_secs_f64()
}

/// One entry per secure channel the spec's profiles use (algorithm and
/// diversification), with the profiles that use it; `issuer` is a file
/// issuer's directory.
fn channels(issuer: &Path) -> Vec<(SecureChannelAlgorithm, Diversification, Vec<String>)> {
    let spec = kart_spec::Spec::embedded().expect("embedded spec");
    let issuer = kart_perso::issuer::Issuer::load(issuer).expect("file issuer");
    let mut channels: Vec<(SecureChannelAlgorithm, Diversification, Vec<String>)> = Vec::new();
    for profile in &spec.profiles {
        let sc = &profile.secure_channel;
        let alg = SecureChannelAlgorithm::for_channel(sc.scp, sc.key_length).expect("algorithm");
        let (_, params) = issuer.channel_keys(profile).expect("channel keys");
        let method = params.diversification;
        match channels
            .iter_mut()
            .find(|(a, m, _)| (*a, *m) == (alg, method))
        {
            Some((_, _, ids)) => ids.push(profile.id.clone()),
            None => channels.push((alg, method, vec![profile.id.clone()])),
        }
    }
    channels
}

fn main() {
    let scratch = tempfile::tempdir().expect("scratch");
    let dir = scratch.path();
    std::fs::create_dir(dir.join("tokens")).unwrap();
    std::fs::write(
        dir.join("softhsm2.conf"),
        format!(
            "directories.tokendir = {}\nlog.level = ERROR\n",
            dir.join("tokens").display()
        ),
    )
    .unwrap();
    // Before the module is loaded: SoftHSM reads it at C_Initialize.
    std::env::set_var("SOFTHSM2_CONF", dir.join("softhsm2.conf"));
    let init = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            "bench",
            "--pin",
            "1111",
            "--so-pin",
            "2222",
        ])
        .output()
        .expect("softhsm2-util (scripts/setup)");
    assert!(init.status.success());
    let now = time::OffsetDateTime::now_utc();
    let files = IssuerPki::load(&{
        create_demo_issuer(&dir.join("files"), now).unwrap();
        dir.join("files")
    })
    .unwrap();
    let token: Arc<Token> = Token::open(Path::new(MODULE), "bench", Pin::new("1111")).unwrap();
    let known = MasterKeys::generate().unwrap();
    create(
        &dir.join("token"),
        &token,
        MasterKeySource::Import(&known),
        now,
    )
    .unwrap();
    let ca = TokenSigner::open(&token, "card-ca").unwrap();
    let ds = TokenSigner::open(&token, "document-signer").unwrap();

    println!("per card: 3 ECDSA P-256 signatures + one card key set (ENC, MAC, DEK); mean over {CARDS} cards");
    println!("| keys | diversification | per card (ms) | 16 threads sharing the keys: cards/s |");
    println!("|---|---|---|---|");
    for (alg, method, ids) in channels(&dir.join("files")) {
        let name = format!("{alg:?} {method:?} ({})", ids.join(", "));
        let set = known.sets().iter().find(|s| s.algorithm == alg).unwrap();
        let software = SoftwareKeys::new(
            KeySet::new(set.enc(), set.mac(), set.dek(), 0x20).unwrap(),
            method,
        );
        let prefix = kart_perso::pki::token_issuer::master_label(alg);
        let (e, m, d) = (
            format!("{prefix}-enc"),
            format!("{prefix}-mac"),
            format!("{prefix}-dek"),
        );
        let in_token = TokenMasterKeys::open(&token, alg, [&e, &m, &d], method, 0x20).unwrap();
        // Warm up both.
        per_card(
            &*files.card_ca_key,
            &*files.document_signer_key,
            &software,
            20,
        );
        per_card(&ca, &ds, &in_token, 20);
        let f = per_card(
            &*files.card_ca_key,
            &*files.document_signer_key,
            &software,
            CARDS,
        );
        let t = per_card(&ca, &ds, &in_token, CARDS);
        let fs = shared(&*files.card_ca_key, &*files.document_signer_key, &software);
        let ts = shared(&ca, &ds, &in_token);
        println!(
            "| files (ring) | {name} | {:.3} | {fs:.0} |",
            f.as_secs_f64() * 1e3
        );
        println!(
            "| SoftHSM2 token | {name} | {:.3} | {ts:.0} |",
            t.as_secs_f64() * 1e3
        );
    }
}
