//! Any text as the applet specification (`nid-applet.toml`), loaded through
//! `Spec::load` beside the real conformance catalogue and profiles: no panic,
//! and every error names the file.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use kart_spec::Spec;
use libfuzzer_sys::fuzz_target;

const CONFORMANCE: &str = include_str!("../../applets-spec/conformance.toml");
const VENDOR_A: &str = include_str!("../../applets-spec/profiles/vendor-a.toml");

/// A spec directory of this process, made once; each input rewrites its applet file.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("kart-fuzz-spec-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("profiles")).expect("temp dir");
        std::fs::write(dir.join("conformance.toml"), CONFORMANCE).expect("conformance");
        std::fs::write(dir.join("profiles/vendor-a.toml"), VENDOR_A).expect("profile");
        dir
    })
}

fuzz_target!(|text: &str| {
    let dir = dir();
    std::fs::write(dir.join(kart_spec::APPLET_FILE), text).expect("write applet file");
    if let Err(e) = Spec::load(dir) {
        assert!(e.to_string().contains("nid-applet.toml"), "{e}");
    }
});
