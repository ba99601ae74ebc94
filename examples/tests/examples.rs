//! The integrator examples run and do what their documentation says.

use std::process::Command;

/// Runs the example `bin` without arguments, requires it to succeed and
/// returns what it printed.
fn succeeds(bin: &str) -> String {
    let o = Command::new(bin).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

#[test]
fn personalize_one_locks_a_card_of_every_profile() {
    let out = succeeds(env!("CARGO_BIN_EXE_personalize_one"));
    let profiles = kart_spec::Spec::embedded().unwrap().profiles;
    for profile in &profiles {
        assert!(out.contains(&format!("{}: card ", profile.id)), "{out}");
    }
    assert_eq!(
        out.matches("personalized and locked for 140409040015")
            .count(),
        profiles.len(),
        "{out}"
    );
}

#[test]
fn read_and_verify_finds_a_freshly_personalized_card_genuine() {
    let out = succeeds(env!("CARGO_BIN_EXE_read_and_verify"));
    assert!(
        out.contains("علی کریمی (ALI KARIMI), national code 0012345679"),
        "{out}"
    );
    assert!(out.contains("verdict: GENUINE"), "{out}");
}

#[test]
fn read_and_verify_rejects_bad_arguments() {
    let o = Command::new(env!("CARGO_BIN_EXE_read_and_verify"))
        .arg("only-one")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("usage: read_and_verify"));
}

#[test]
fn the_example_master_keys_file_loads_with_a_set_per_cipher() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("issuer/master-keys.example.json");
    // from_json: git does not keep the 0600 mode that `load` insists on.
    let keys =
        kart_perso::pki::MasterKeys::from_json(&std::fs::read_to_string(path).unwrap()).unwrap();
    let names: Vec<&str> = keys.sets().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["scp02", "scp03-aes128", "scp03-aes192", "scp03-aes256"]
    );
    // Every profile of the spec finds its set.
    for p in kart_spec::Spec::embedded().unwrap().profiles {
        let sc = p.secure_channel;
        let want = kart_perso::pki::SecureChannelAlgorithm::for_channel(sc.scp, sc.key_length);
        assert!(
            keys.sets().iter().any(|s| Some(s.algorithm) == want),
            "{}",
            p.id
        );
    }
    // The GP test key, as its README says (GlobalPlatform Card Spec test keys 40..4F).
    assert_eq!(
        keys.sets()[0].enc(),
        kart_sim::default_test_key(16).as_slice()
    );
}
