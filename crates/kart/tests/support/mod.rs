//! What the `harness = false` PC/SC tests of the `kart` binary share: a
//! private `pcscd` with one vpcd device (two readers), a work directory
//! holding a demo issuer, and blank simulated cards keyed with that issuer's
//! master keys, served to a reader.

use kart_pcscd_harness::Pcscd;
use kart_perso::issuer::Issuer;
use kart_sim::vpcd::{serve, VpcdHandle};
use kart_sim::SimCard;
use kart_spec::{Profile, Spec};
pub use kart_testkit::pcscd::wait_card;
use std::path::PathBuf;
use std::process::Output;

/// What every test gets: the daemon, a work directory with an issuer.
pub struct Env {
    pub pcscd: Pcscd,
    pub dir: tempfile::TempDir,
    pub spec: Spec,
}

impl Env {
    /// Enters a private mount namespace, starts `pcscd` there and creates
    /// the issuer `issuer/` in a fresh work directory (`kart issuer init`).
    /// Exits with a message when the machine cannot run these tests.
    pub fn start() -> Env {
        let pcscd = kart_testkit::pcscd::start_private(1);
        let env = Env {
            pcscd,
            dir: tempfile::tempdir().expect("temporary directory"),
            spec: Spec::embedded().expect("spec"),
        };
        let o = env.kart(&["issuer", "init", "issuer"]);
        assert!(
            o.status.success(),
            "kart issuer init: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        env
    }

    /// After the run: on failures, prints pcscd's log, stops it, removes
    /// the work directory and exits 1 (`exit` alone would skip both).
    pub fn finish(self, failed: &[&str]) {
        if !failed.is_empty() {
            println!("--- pcscd log ---\n{}", self.pcscd.log());
            drop(self);
            std::process::exit(1);
        }
    }

    pub fn reader(&self, i: usize) -> &str {
        &self.pcscd.readers()[i].name
    }

    pub fn issuer(&self) -> PathBuf {
        self.dir.path().join("issuer")
    }

    /// A vendor profile, or a test profile such as `vendor-x-faulty`.
    pub fn profile(&self, id: &str) -> &Profile {
        self.spec
            .profile(id)
            .or_else(|| self.spec.test_profile(id))
            .expect("profile")
    }

    /// A blank card of `profile` keyed with the issuer's distinct ENC, MAC
    /// and DEK master keys for its channel, as a vendor ships it.
    pub fn blank_card(&self, profile: &str, serial: u32) -> SimCard {
        let profile = self.profile(profile);
        let issuer = Issuer::load(&self.issuer()).expect("issuer");
        kart_testkit::engine::sim_for(&issuer, profile, serial)
    }

    /// A blank card put into reader `i`; waits until pcscd sees it.
    pub fn insert(&self, i: usize, profile: &str, serial: u32) -> VpcdHandle<SimCard> {
        let port = self.pcscd.readers()[i].port;
        let handle =
            serve(("127.0.0.1", port), self.blank_card(profile, serial)).expect("serve the card");
        wait_card(self.reader(i), true);
        handle
    }

    /// `kart personalize --json --reader <reader> --issuer issuer <options> <batch>`
    /// in the work directory.
    #[allow(dead_code)] // qa_pcscd does not personalize
    pub fn personalize(&self, reader: &str, options: &[&str], batch: &str) -> Output {
        let mut args = vec![
            "personalize",
            "--json",
            "--reader",
            reader,
            "--issuer",
            "issuer",
        ];
        args.extend_from_slice(options);
        args.push(batch);
        self.kart(&args)
    }

    /// Runs the `kart` binary in the work directory, with no PIN or issuer
    /// from the environment.
    pub fn kart(&self, args: &[&str]) -> Output {
        kart_testkit::cli::run(env!("CARGO_BIN_EXE_kart"), self.dir.path(), args)
    }
}
