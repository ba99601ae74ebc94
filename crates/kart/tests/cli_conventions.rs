//! Everyday CLI conventions: shell completions and man pages generated from
//! the clap definitions, and `kart info` showing an applet label as text.

use std::process::{Command, Output};

fn kart(args: &[&str]) -> Output {
    kart_testkit::cli::run(env!("CARGO_BIN_EXE_kart"), std::path::Path::new("."), args)
}

fn out(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn completions_cover_every_command_and_are_valid_bash() {
    for shell in ["bash", "zsh", "fish"] {
        let script = out(&kart(&["completions", shell]));
        for word in [
            "personalize",
            "dump",
            "sim",
            "serve",
            "completions",
            "sim-dir",
            "pin-file",
        ] {
            assert!(script.contains(word), "{shell}: no '{word}'");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kart.bash");
    std::fs::write(&path, out(&kart(&["completions", "bash"]))).unwrap();
    let check = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    // Sourced, it registers the completion function for `kart`.
    let probe = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p kart", path.display()))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&probe.stdout).contains("kart"),
        "{probe:?}"
    );
    let bad = kart(&["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn man_pages_are_written_for_kart_and_each_command() {
    let dir = tempfile::tempdir().unwrap();
    let o = kart(&["man", "--json", dir.path().to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(out(&o).as_bytes()).unwrap();
    let files: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    for page in [
        "kart.1",
        "kart-dump.1",
        "kart-sim-serve.1",
        "kart-personalize.1",
        "kart-completions.1",
    ] {
        assert!(files.contains(&page), "{page} missing from {files:?}");
    }
    let dump = std::fs::read_to_string(dir.path().join("kart-dump.1")).unwrap();
    assert!(
        dump.starts_with(".ie") || dump.contains(".TH kart-dump"),
        "{dump}"
    );
    assert!(dump.contains("pin\\-file"), "the options are in the page");
    let top = std::fs::read_to_string(dir.path().join("kart.1")).unwrap();
    assert!(top.contains("sim\\-dir") && top.contains("dump"), "{top}");
}

#[test]
fn info_shows_a_printable_applet_label_next_to_its_hex() {
    let text = out(&kart(&["info", "--reader", "sim:vendor-a"]));
    assert!(
        text.contains("4E49442C56454E444F522D41202020 \"NID,VENDOR-A\""),
        "{text}"
    );
    let v: serde_json::Value = serde_json::from_slice(
        out(&kart(&["info", "--json", "--reader", "sim:vendor-c"])).as_bytes(),
    )
    .unwrap();
    assert_eq!(v["applet_aid"], "4B415254204944204341524420432020");
    assert_eq!(v["applet_label"], "KART ID CARD C");
    // The card manager's key information template: ENC, MAC, DEK, AES-256, version 31.
    let keys = v["card_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3, "{v}");
    assert_eq!(
        keys[0],
        serde_json::json!({"id": "01", "version": "31", "type": "AES", "length": 32})
    );
}
