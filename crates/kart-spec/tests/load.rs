//! The spec files load, validate, and broken ones are refused with the
//! specific error.

use kart_spec::{Access, Protocol, Scp, Spec, SpecError};
use std::path::{Path, PathBuf};

fn spec_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../applets-spec")
}

#[test]
fn directory_and_embedded_copies_load_and_agree() {
    let dir = Spec::load(&spec_dir()).expect("applets-spec/ loads");
    let emb = Spec::embedded().expect("embedded spec loads");
    assert_eq!(format!("{:?}", dir.applet), format!("{:?}", emb.applet));
    assert_eq!(format!("{:?}", dir.profiles), format!("{:?}", emb.profiles));
    assert_eq!(dir.conformance.checks.len(), emb.conformance.checks.len());
}

#[test]
fn profiles_differ_the_way_real_cards_do() {
    let spec = Spec::embedded().unwrap();
    // Every conforming file of profiles/ is a profile, sorted by id.
    let mut files: Vec<String> = std::fs::read_dir(spec_dir().join("profiles"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".toml").map(str::to_owned))
        .filter(|id| spec.test_profile(id).is_none())
        .collect();
    files.sort();
    let ids: Vec<_> = spec.profiles.iter().map(|p| p.id.clone()).collect();
    assert_eq!(ids, files);
    assert!(ids.len() >= 4, "{ids:?}");
    let a = spec.profile("vendor-a").unwrap();
    let b = spec.profile("vendor-b").unwrap();
    let c = spec.profile("vendor-c").unwrap();
    assert_eq!(
        (a.protocol, a.secure_channel.scp, a.secure_channel.i),
        (Protocol::T0, Scp::Scp02, 0x55)
    );
    assert!(a.quirks.get_response && !a.caps().extended_length && !a.caps().chaining);
    assert_eq!(
        (b.protocol, b.secure_channel.key_length),
        (Protocol::T1, 16)
    );
    assert!(b.caps().extended_length && b.caps().max_command_data >= 1024);
    assert_eq!(
        (c.secure_channel.scp, c.secure_channel.key_length),
        (Scp::Scp03, 32)
    );
    assert!(c.caps().chaining && !c.caps().extended_length);
    // Vendor C stands for the mid chip class with slow atomic writes.
    assert!(c.latency.atomic_write_per_256_us > b.latency.atomic_write_per_256_us);
    // Vendor D: short APDUs with chaining under AES-192, 254-byte reads.
    let d = spec.profile("vendor-d").unwrap();
    assert_eq!(
        (
            d.protocol,
            d.secure_channel.scp,
            d.secure_channel.key_length
        ),
        (Protocol::T1, Scp::Scp03, 24)
    );
    assert!(d.caps().chaining && !d.caps().extended_length);
    assert_eq!(d.caps().max_response_data, 254);
    // Each profile recognises its own ATR and no other's.
    for p in &spec.profiles {
        assert_eq!(
            spec.profile_for_atr(p.atr.bytes()).map(|q| q.id.as_str()),
            Some(p.id.as_str())
        );
    }
    // T=1 ATRs carry "IRN" in their historical bytes, like the real cards.
    for p in spec.profiles.iter().filter(|p| p.protocol == Protocol::T1) {
        let info = kart_spec::AtrInfo::parse(p.atr.bytes()).unwrap();
        assert!(info.historical.windows(3).any(|w| w == b"IRN"), "{}", p.id);
    }
}

#[test]
fn masked_atr_bytes_may_vary() {
    let spec = Spec::embedded().unwrap();
    let a = spec.profile("vendor-a").unwrap();
    let mut atr = a.atr.bytes().to_vec();
    let masked = a.atr_mask.bytes().iter().position(|m| *m == 0).unwrap();
    atr[masked] ^= 0x5A;
    assert!(a.matches_atr(&atr));
    atr[0] = 0x3F;
    assert!(!a.matches_atr(&atr));
}

#[test]
fn applet_lookups() {
    let spec = Spec::embedded().unwrap();
    let ap = &spec.applet;
    assert_eq!(ap.file_by_fid(0x011D).unwrap().name, "EF.SOD");
    assert_eq!(ap.file("EF.ID").unwrap().read, Access::IdPin);
    assert_eq!(ap.pin("PUK").unwrap().retries, 10);
    assert_eq!(ap.lifecycle_code("LOCKED"), Some(0x83));
    let verify = ap.command("VERIFY").unwrap();
    assert!(ap.allows_sw(verify, kart_apdu::StatusWord(0x63C1)));
    assert!(!ap.allows_sw(verify, kart_apdu::StatusWord(0x6B00)));
    assert_eq!(ap.tags_of("EF.ID").count(), 16);
}

/// Copies applets-spec/ to a temporary directory, applies `edit` to one file
/// and loads the copy.
fn load_with(file: &str, edit: impl Fn(String) -> String) -> SpecError {
    let tmp = tempfile::tempdir().unwrap();
    let src = spec_dir();
    std::fs::create_dir(tmp.path().join("profiles")).unwrap();
    let spec = Spec::embedded().unwrap();
    let profiles: Vec<String> = spec
        .profiles
        .iter()
        .map(|p| format!("profiles/{}.toml", p.id))
        .collect();
    for f in ["nid-applet.toml", "conformance.toml"]
        .into_iter()
        .chain(profiles.iter().map(String::as_str))
    {
        let mut text = std::fs::read_to_string(src.join(f)).unwrap();
        if f == file {
            let edited = edit(text.clone());
            assert_ne!(edited, text, "the edit must change {f}");
            text = edited;
        }
        std::fs::write(tmp.path().join(f), text).unwrap();
    }
    Spec::load(tmp.path()).expect_err("the broken spec must be refused")
}

fn assert_invalid(e: &SpecError, file: &str, field: &str, words: &str) {
    let msg = e.to_string();
    match e {
        SpecError::Invalid {
            file: f,
            field: fl,
            problem,
        } => {
            assert_eq!((f.as_str(), fl.as_str()), (file, field), "{msg}");
            assert!(problem.contains(words), "{msg}");
        }
        other => panic!("expected Invalid, got {other}"),
    }
}

#[test]
fn duplicate_fid_is_named() {
    let e = load_with("nid-applet.toml", |t| {
        t.replacen("fid = \"0102\"", "fid = \"0101\"", 1)
    });
    assert_invalid(&e, "nid-applet.toml", "files[1].fid", "duplicate FID 0101");
}

#[test]
fn unknown_access_condition_is_named() {
    let e = load_with("nid-applet.toml", |t| {
        t.replacen("read = \"ID_PIN\"", "read = \"PASSWORD\"", 1)
    });
    let msg = e.to_string();
    assert!(matches!(e, SpecError::Parse { .. }), "{msg}");
    assert!(
        msg.starts_with("nid-applet.toml:") && msg.contains("PASSWORD") && msg.contains("ID_PIN"),
        "{msg}"
    );
}

#[test]
fn atr_mask_length_mismatch_is_named() {
    let e = load_with("profiles/vendor-b.toml", |t| {
        t.replacen("atr_mask = \"FF", "atr_mask = \"", 1)
    });
    assert_invalid(
        &e,
        "profiles/vendor-b.toml",
        "atr_mask",
        "mask has 24 bytes but the ATR has 25",
    );
}

#[test]
fn wrong_tck_is_named() {
    let e = load_with("profiles/vendor-c.toml", |t| {
        t.replace("9000DC\"", "9000DD\"")
    });
    assert_invalid(&e, "profiles/vendor-c.toml", "atr", "TCK is wrong");
}

#[test]
fn extended_length_on_t0_is_refused() {
    let e = load_with("profiles/vendor-a.toml", |t| {
        t.replace("extended_length = false", "extended_length = true")
    });
    assert_invalid(
        &e,
        "profiles/vendor-a.toml",
        "limits.extended_length",
        "T=0 cannot carry",
    );
}

#[test]
fn large_commands_without_extended_length_are_refused() {
    let e = load_with("profiles/vendor-c.toml", |t| {
        t.replace("max_command_data = 255", "max_command_data = 1024")
    });
    assert_invalid(
        &e,
        "profiles/vendor-c.toml",
        "limits.max_command_data",
        "needs extended length",
    );
}

#[test]
fn protocol_contradicting_the_atr_is_refused() {
    let e = load_with("profiles/vendor-b.toml", |t| {
        t.replace("protocol = \"T=1\"", "protocol = \"T=0\"")
    });
    assert_invalid(&e, "profiles/vendor-b.toml", "protocol", "ATR offers T=1");
}

#[test]
fn scp02_with_aes256_key_is_refused() {
    let e = load_with("profiles/vendor-a.toml", |t| {
        t.replace("key_length = 16", "key_length = 32")
    });
    assert_invalid(
        &e,
        "profiles/vendor-a.toml",
        "secure_channel.key_length",
        "SCP02 uses 16-byte",
    );
}

#[test]
fn tag_bigger_than_its_file_is_refused() {
    let e = load_with("nid-applet.toml", |t| {
        t.replace("max = 20470", "max = 30000")
    });
    assert_invalid(
        &e,
        "nid-applet.toml",
        "tags[16].max",
        "cannot fit in EF.FACE",
    );
}

#[test]
fn duplicate_conformance_number_is_refused() {
    let e = load_with("conformance.toml", |t| {
        t.replace("id = \"ATR-002\"", "id = \"APDU-001\"")
    });
    assert_invalid(&e, "conformance.toml", "checks[1].id", "already used");
}

#[test]
fn missing_directory_names_the_path() {
    let e = Spec::load(Path::new("/nonexistent/applets-spec")).unwrap_err();
    assert!(
        e.to_string()
            .contains("/nonexistent/applets-spec/nid-applet.toml"),
        "{e}"
    );
}

/// A copy of applets-spec/ where `profiles/vendor-b.toml` is replaced by
/// `make(path)`.
fn spec_with_profile(make: impl Fn(&Path)) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let src = spec_dir();
    std::fs::create_dir(tmp.path().join("profiles")).unwrap();
    let spec = Spec::embedded().unwrap();
    let others: Vec<String> = spec
        .profiles
        .iter()
        .filter(|p| p.id != "vendor-b")
        .map(|p| format!("profiles/{}.toml", p.id))
        .collect();
    for f in ["nid-applet.toml", "conformance.toml"]
        .into_iter()
        .chain(others.iter().map(String::as_str))
    {
        std::fs::copy(src.join(f), tmp.path().join(f)).unwrap();
    }
    make(&tmp.path().join("profiles/vendor-b.toml"));
    tmp
}

#[test]
fn a_fifo_or_a_device_as_profile_is_refused_without_blocking() {
    let fifo = spec_with_profile(|p| {
        let ok = std::process::Command::new("mkfifo")
            .arg(p)
            .status()
            .unwrap();
        assert!(ok.success());
    });
    let e = Spec::load(fifo.path()).unwrap_err();
    assert!(matches!(e, SpecError::Read(_)), "{e}");
    assert!(e.to_string().contains("vendor-b.toml is a FIFO"), "{e}");

    let zero = spec_with_profile(|p| std::os::unix::fs::symlink("/dev/zero", p).unwrap());
    let e = Spec::load(zero.path()).unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");

    let big = spec_with_profile(|p| {
        let f = std::fs::File::create(p).unwrap();
        f.set_len(kart_spec::MAX_SPEC_FILE_BYTES + 1).unwrap();
    });
    let e = Spec::load(big.path()).unwrap_err();
    assert!(e.to_string().contains("larger than"), "{e}");
}

#[test]
fn a_parse_error_quotes_at_most_a_hundred_characters_of_the_line() {
    let long = "x".repeat(500_000);
    let e = load_with("profiles/vendor-b.toml", |t| {
        t.replacen("name = ", &format!("name = \"{long}\"\nname2 = "), 1)
    });
    let msg = e.to_string();
    assert!(matches!(e, SpecError::Parse { .. }), "{msg}");
    assert!(msg.len() < 400, "{} bytes: {}", msg.len(), &msg[..400]);
    assert!(msg.contains("line "), "{msg}");

    let e = load_with("profiles/vendor-b.toml", |t| {
        format!("{t}\nunknown_key_{long} = 1\n")
    });
    let msg = e.to_string();
    assert!(msg.len() < 400, "{} bytes: {}", msg.len(), &msg[..400]);

    // A value that parses but is invalid is quoted short too.
    let e = load_with("profiles/vendor-b.toml", |t| {
        t.replacen("id = \"vendor-b\"", &format!("id = \"{long}\""), 1)
    });
    assert!(
        matches!(e, SpecError::Invalid { .. }),
        "{}",
        &e.to_string()[..400]
    );
    let msg = e.to_string();
    assert!(msg.len() < 400, "{} bytes: {}", msg.len(), &msg[..400]);
}
