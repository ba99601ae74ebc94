//! `kart qa` through the real PC/SC stack: a private `pcscd` → the
//! vsmartcard `vpcd` driver → simulated cards served as virtual cards. A
//! conforming card passes every check but the torn write (a reader cannot
//! tear a card, so QA skips it); a faulty card fails exactly the checks its
//! planted defects break. Runs as root (see `kart-pcscd-harness`).

use kart_pcscd_harness::{enter_private_namespace, Pcscd};
use kart_perso::pki::{MasterKeys, SecureChannelAlgorithm};
use kart_sim::vpcd::{serve, VpcdHandle};
use kart_sim::{SimCard, SimConfig};
use kart_spec::{Profile, Scp, Spec};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The issuer's master key for `profile`'s channel (ENC = MAC = DEK, as
/// `kart issuer init` writes them).
fn key_for<'a>(keys: &'a MasterKeys, profile: &Profile) -> &'a [u8] {
    let wanted = match (
        profile.secure_channel.scp,
        profile.secure_channel.key_length,
    ) {
        (Scp::Scp02, _) => SecureChannelAlgorithm::TripleDes,
        (Scp::Scp03, 16) => SecureChannelAlgorithm::Aes128,
        (Scp::Scp03, _) => SecureChannelAlgorithm::Aes256,
    };
    keys.sets()
        .iter()
        .find(|s| s.algorithm == wanted)
        .expect("key set")
        .enc()
}

fn insert(pcscd: &Pcscd, i: usize, profile: &Profile, keys: &MasterKeys) -> VpcdHandle<SimCard> {
    let config = SimConfig::new([0, 0, 0x0A, i as u8], key_for(keys, profile));
    let card = SimCard::with_config(profile, &config).expect("simulated card");
    let reader = &pcscd.readers()[i];
    let handle = serve(("127.0.0.1", reader.port), card).expect("serve the card");
    let deadline = Instant::now() + Duration::from_secs(10);
    let pcsc = kart_pcsc::Pcsc::establish().expect("pcscd");
    while !pcsc
        .readers()
        .expect("reader states")
        .iter()
        .any(|r| r.name == reader.name && r.card.has_card())
    {
        assert!(
            Instant::now() < deadline,
            "{} never saw the card",
            reader.name
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    handle
}

fn ids(card: &Value, outcome: &str) -> BTreeSet<String> {
    card["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["outcome"] == outcome)
        .map(|c| c["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn qa_through_pcscd(pcscd: &Pcscd, dir: &Path) {
    let kart = env!("CARGO_BIN_EXE_kart");
    let issuer = dir.join("issuer");
    let init = Command::new(kart)
        .args(["issuer", "init"])
        .arg(&issuer)
        .output()
        .expect("kart");
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let keys = MasterKeys::load(&issuer.join("master-keys.json")).expect("master keys");
    let spec = Spec::embedded().expect("spec");
    let good = spec.profile("vendor-a").expect("vendor-a"); // T=0, GET RESPONSE
    let faulty = spec.test_profile("vendor-x-faulty").expect("test profile");
    let _cards = [
        insert(pcscd, 0, good, &keys),
        insert(pcscd, 1, faulty, &keys),
    ];
    let readers: Vec<&str> = pcscd.readers().iter().map(|r| r.name.as_str()).collect();
    let out = dir.join("reports");
    let o = Command::new(kart)
        .args(["qa", "--reader", &readers.join(","), "--issuer"])
        .arg(&issuer)
        .arg("--report-dir")
        .arg(&out)
        .env_remove("KART_ISSUER")
        .output()
        .expect("kart qa");
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{text}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(text.contains("1 of 2 cards conform"), "{text}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("qa-report.json")).expect("report"))
            .expect("JSON");
    let cards = report["cards"].as_array().expect("cards");
    assert_eq!(cards.len(), 2);
    let (a, x) = (&cards[0], &cards[1]);
    assert_eq!(
        (a["profile"].as_str(), x["profile"].as_str()),
        (Some("vendor-a"), Some("vendor-x-faulty"))
    );
    // The profile comes from the ATR pcscd reports, so ATR-001/002 ran; the
    // reader warm-resets the card for PIN-019; only tearing is left out.
    let only_tear: BTreeSet<String> = ["ATOM-025".to_owned()].into();
    assert!(ids(a, "fail").is_empty(), "{a}");
    assert_eq!(ids(a, "skipped"), only_tear);
    let planted: BTreeSet<String> = [
        "APDU-003", "AC-014", "PIN-016", "PIN-017", "PIN-018", "PIN-019", "RND-024", "TIME-028",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(ids(x, "fail"), planted, "{x}");
    assert_eq!(ids(x, "skipped"), only_tear);
}

fn main() {
    if let Err(e) = enter_private_namespace() {
        eprintln!("FAILED to set up the PC/SC test environment: {e}");
        std::process::exit(1);
    }
    let pcscd = match Pcscd::start(1) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("FAILED to start a private pcscd: {e}");
            std::process::exit(1);
        }
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let started = Instant::now();
    let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        qa_through_pcscd(&pcscd, dir.path());
    }))
    .is_ok();
    println!(
        "test qa_through_pcscd ... {} ({} ms)",
        if ok { "ok" } else { "FAILED" },
        started.elapsed().as_millis()
    );
    if !ok {
        println!("--- pcscd log ---\n{}", pcscd.log());
        drop(pcscd);
        std::process::exit(1);
    }
}
