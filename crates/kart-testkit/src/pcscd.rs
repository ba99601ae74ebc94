//! A private pcscd for the `harness = false` PC/SC tests, and waiting for
//! what it reports.

use std::time::{Duration, Instant};

use kart_pcscd_harness::{enter_private_namespace, Pcscd};

/// Enters a private mount namespace and starts a `pcscd` there with
/// `devices` vpcd devices (two readers each). Exits the process with a
/// message when the machine cannot run these tests: they bring their own
/// `main`, so there is no harness to report a failure to.
pub fn start_private(devices: usize) -> Pcscd {
    if let Err(e) = enter_private_namespace() {
        eprintln!("FAILED to set up the PC/SC test environment: {e}");
        std::process::exit(1);
    }
    Pcscd::start(devices).unwrap_or_else(|e| {
        eprintln!("FAILED to start a private pcscd: {e}");
        std::process::exit(1);
    })
}

/// Waits (at most 10 s) until pcscd reports `reader` with a card, or without.
///
/// # Panics
/// When pcscd does not answer or the state is not seen in time.
pub fn wait_card(reader: &str, present: bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let pcsc = kart_pcsc::Pcsc::establish().expect("pcscd answers");
    loop {
        let state = pcsc
            .readers()
            .expect("reader states")
            .into_iter()
            .find(|r| r.name == reader)
            .map(|r| r.card);
        if state.is_some_and(|s| s.has_card() == present) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "reader {reader}: card present={present} not seen in 10 s (state {state:?})"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
