//! The `kart` binary through the real PC/SC stack: kart → libpcsclite → a
//! private `pcscd` → the vsmartcard `vpcd` driver → a simulated card served
//! by kart-sim's vpcd face from this test process.
//!
//! `harness = false`: `main` first re-executes this binary in a private
//! mount namespace (kart-pcscd-harness), so the `pcscd` it starts is the
//! only one that this process and the `kart` processes it runs can see.
//! Needs root and the packages from `scripts/setup`; without them the run
//! FAILS with a message saying so.

mod support;

use kart_pcscd_harness::runner::{run, Test};
use kart_sim::vpcd::serve;
use kart_sim::Faults;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use support::{wait_card, Env};

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

fn json(o: &Output) -> Value {
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    assert_eq!(v["format"], "kart/1");
    v
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The first valid application of the sample batch, with its photo, in `dir`.
fn one_record_batch(dir: &Path) -> PathBuf {
    kart_testkit::cli::sample_batch(dir, "one.csv", |line| line <= 2)
}

/// The ID PIN the PIN mailer holds for `tracking`, written to a 0600 file.
fn pin_file_from_mailer(dir: &Path, tracking: &str) -> PathBuf {
    let mailer = std::fs::read_to_string(dir.join("kart-station/pin-mailer.txt")).unwrap();
    let line = mailer
        .lines()
        .rev()
        .find(|l| l.starts_with(&format!("tracking={tracking} ")))
        .unwrap();
    let pin = line
        .split(' ')
        .find_map(|w| w.strip_prefix("id_pin="))
        .unwrap();
    let path = dir.join("id-pin");
    std::fs::write(&path, pin).unwrap();
    path
}

/// Every test, in the order they run.
const TESTS: &[Test<Env>] = &[
    (
        "readers_lists_the_vpcd_readers_and_the_card",
        readers_lists_the_vpcd_readers_and_the_card,
    ),
    (
        "info_reads_a_t0_and_a_t1_card_through_pcscd",
        info_reads_a_t0_and_a_t1_card_through_pcscd,
    ),
    (
        "unknown_reader_name_is_exit_code_3",
        unknown_reader_name_is_exit_code_3,
    ),
    (
        "personalize_then_verify_and_read_in_separate_processes",
        personalize_then_verify_and_read_in_separate_processes,
    ),
    (
        "personalize_serves_two_readers_in_parallel",
        personalize_serves_two_readers_in_parallel,
    ),
    (
        "a_card_pulled_mid_way_is_resumed_by_the_next_run",
        a_card_pulled_mid_way_is_resumed_by_the_next_run,
    ),
    (
        "watch_shows_a_card_pulled_out",
        watch_shows_a_card_pulled_out,
    ),
    (
        "key_generation_at_the_models_tail_does_not_trip_its_deadline",
        key_generation_at_the_models_tail_does_not_trip_its_deadline,
    ),
    // Last: the mute card wedges its reader inside pcscd until it answers.
    (
        "a_mute_card_wedges_only_its_reader_and_the_run_ends_without_it",
        a_mute_card_wedges_only_its_reader_and_the_run_ends_without_it,
    ),
];

fn main() {
    let mut env = Env::start();
    let failed = run(&mut env, TESTS);
    env.finish(&failed);
}

fn readers_lists_the_vpcd_readers_and_the_card(env: &mut Env) {
    let card = env.insert(0, "vendor-b", 0x0101);
    let o = env.kart(&["readers", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    let readers = v["readers"].as_array().unwrap();
    let find = |name: &str| {
        readers
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or_default()
    };
    let r0 = find(env.reader(0));
    assert_eq!(r0["profile"], "vendor-b", "{v}");
    assert!(r0["card"].as_str().unwrap().starts_with("card"), "{r0}");
    assert_eq!(find(env.reader(1))["card"], "empty", "{v}");
    let text = String::from_utf8_lossy(&env.kart(&["readers"]).stdout).into_owned();
    assert!(
        text.contains(env.reader(0)) && text.contains("vendor-b"),
        "{text}"
    );
    card.stop();
    wait_card(env.reader(0), false);
}

fn info_reads_a_t0_and_a_t1_card_through_pcscd(env: &mut Env) {
    let t1 = env.insert(0, "vendor-c", 0x0201);
    let t0 = env.insert(1, "vendor-a", 0x0202);
    for (i, profile, protocol, serial) in [
        (0, "vendor-c", "T=1", "00000201"),
        (1, "vendor-a", "T=0", "00000202"),
    ] {
        let o = env.kart(&["info", "--json", "--reader", env.reader(i)]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let v = json(&o);
        assert_eq!(v["profile"]["id"], profile);
        assert_eq!(v["protocol"], protocol);
        assert_eq!(v["lifecycle"]["name"], "PRE_PERSONALIZED");
        assert!(v["csn"].as_str().unwrap().ends_with(serial), "{v}");
    }
    // Two cards present: a command for one card needs --reader.
    let o = env.kart(&["info"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    t1.stop();
    t0.stop();
    wait_card(env.reader(0), false);
    wait_card(env.reader(1), false);
}

fn unknown_reader_name_is_exit_code_3(env: &mut Env) {
    let o = env.kart(&["info", "--reader", "Omnikey 5422"]);
    assert_eq!(code(&o), 3);
    let err = stderr(&o);
    assert!(
        err.starts_with("error: unknown reader 'Omnikey 5422'") && err.contains(" — hint: "),
        "{err}"
    );
    assert!(
        err.contains(env.reader(0)),
        "lists the known readers: {err}"
    );
}

/// `kart personalize` of `batch` on `reader` keeping its journal in
/// `station`, waiting at most `card_timeout` seconds for each card.
fn personalize_with_station(
    env: &Env,
    reader: &str,
    card_timeout: &str,
    station: &Path,
    batch: &Path,
) -> Output {
    env.personalize(
        reader,
        &[
            "--card-timeout",
            card_timeout,
            "--station-dir",
            station.to_str().unwrap(),
        ],
        batch.to_str().unwrap(),
    )
}

fn personalize_then_verify_and_read_in_separate_processes(env: &mut Env) {
    let card = env.insert(0, "vendor-b", 0x0301);
    let batch = one_record_batch(env.dir.path());
    let o = env.personalize(env.reader(0), &[], batch.to_str().unwrap());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{v}");
    assert_eq!(results[0]["result"], "issued");
    assert_eq!(results[0]["reader"], env.reader(0));
    assert_eq!(v["report"]["issued"], 1);

    // The card is now locked: info says so, in another process.
    let o = env.kart(&["info", "--json", "--reader", env.reader(0)]);
    let v = json(&o);
    assert_eq!(v["lifecycle"]["name"], "LOCKED");
    assert!(v["crn"].as_str().is_some_and(|c| c.len() == 10), "{v}");

    // A bank verifies it, with the ID PIN from the mailer.
    let pin = pin_file_from_mailer(env.dir.path(), "140409040015");
    let o = env.kart(&[
        "verify",
        "--json",
        "--reader",
        env.reader(0),
        "--issuer",
        "issuer",
        "--pin-file",
        pin.to_str().unwrap(),
    ]);
    assert_eq!(
        code(&o),
        0,
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
    let v = json(&o);
    assert_eq!(v["genuine"], true);
    assert!(
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["result"] != "fail"),
        "{v}"
    );

    reads_with_the_right_pin_only(env, &pin);

    // Another station meets this locked card: it is set aside, not written.
    let other = env.dir.path().join("other-station");
    let o = personalize_with_station(env, env.reader(0), "1", &other, &batch);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["results"][0]["result"], "card refused", "{v}");
    assert!(
        v["results"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("LOCKED"),
        "{v}"
    );
    assert_eq!(
        v["report"]["pending"], 1,
        "the application still waits: {v}"
    );
    card.stop();
    wait_card(env.reader(0), false);
}

/// The holder reads the personalized card in reader 0; a wrong PIN is refused.
fn reads_with_the_right_pin_only(env: &Env, pin: &Path) {
    // `kart read` in reader 0 with the PIN in file `pin_file`.
    let read = |pin_file: &Path| {
        env.kart(&[
            "read",
            "--reader",
            env.reader(0),
            "--pin-file",
            pin_file.to_str().unwrap(),
        ])
    };
    let photo = env.dir.path().join("face.jpg");
    let o = env.kart(&[
        "read",
        "--json",
        "--reader",
        env.reader(0),
        "--pin-file",
        pin.to_str().unwrap(),
        "--photo",
        photo.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["identity"]["national_code"], "0012345679");
    assert_eq!(v["identity"]["family_name_fa"], "کریمی");
    assert_eq!(v["identity"]["tracking_code"], "140409040015");
    let original = std::fs::read(env.dir.path().join("photos/photo-1.jpg")).unwrap();
    assert_eq!(std::fs::read(&photo).unwrap(), original);
    let o = read(pin);
    assert!(String::from_utf8_lossy(&o.stdout).contains("علی / ALI"));

    // A wrong PIN is refused with the tries left, and never printed.
    let wrong = env.dir.path().join("wrong-pin");
    let right = std::fs::read_to_string(pin).unwrap();
    let other = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    std::fs::write(&wrong, other).unwrap();
    let o = read(&wrong);
    assert_eq!(code(&o), 4);
    let err = stderr(&o);
    assert!(
        err.contains("refused the ID PIN") && err.contains("tries left") && !err.contains(other),
        "{err}"
    );
    // The right PIN resets the counter.
    let o = read(pin);
    assert_eq!(code(&o), 0);
}

fn personalize_serves_two_readers_in_parallel(env: &mut Env) {
    let b = env.insert(0, "vendor-b", 0x0501);
    let a = env.insert(1, "vendor-a", 0x0502);
    let dir = env.dir.path().join("two");
    std::fs::create_dir_all(&dir).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/batch");
    std::fs::create_dir_all(dir.join("photos")).unwrap();
    for p in ["photo-2.jpg", "photo-3.jpg"] {
        std::fs::copy(src.join("photos").join(p), dir.join("photos").join(p)).unwrap();
    }
    let text = std::fs::read_to_string(src.join("applications.csv")).unwrap();
    let rows: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| [0, 2, 3].contains(i))
        .map(|(_, l)| l)
        .collect();
    let batch = dir.join("two.csv");
    std::fs::write(&batch, rows.join("\n") + "\n").unwrap();
    let station = dir.join("station");
    let o = personalize_with_station(env, "all", "20", &station, &batch);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{v}");
    assert!(results.iter().all(|r| r["result"] == "issued"), "{v}");
    let mut readers: Vec<&str> = results
        .iter()
        .map(|r| r["reader"].as_str().unwrap())
        .collect();
    readers.sort_unstable();
    assert_eq!(
        readers,
        [env.reader(0), env.reader(1)],
        "one card per reader"
    );
    let vendors: Vec<&str> = v["report"]["per_vendor"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["profile"].as_str().unwrap())
        .collect();
    assert_eq!(vendors.len(), 2, "{v}");
    b.stop();
    a.stop();
    wait_card(env.reader(0), false);
    wait_card(env.reader(1), false);
}

fn a_card_pulled_mid_way_is_resumed_by_the_next_run(env: &mut Env) {
    let mut sim = env.blank_card("vendor-b", 0x0601);
    // Pulled after the 12th APDU: inside the secure channel, files half written.
    sim.set_faults(Faults::default().pull_after(12));
    let port = env.pcscd.readers()[0].port;
    let handle = serve(("127.0.0.1", port), sim).unwrap();
    wait_card(env.reader(0), true);
    let dir = env.dir.path().join("pulled");
    std::fs::create_dir_all(&dir).unwrap();
    let batch = one_record_batch(&dir);
    let station = dir.join("station");
    let run = || personalize_with_station(env, env.reader(0), "2", &station, &batch);
    let o = run();
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["results"][0]["result"], "pulled", "{v}");
    assert_eq!(v["report"]["issued"], 0);
    assert_eq!(
        v["report"]["in_progress"], 1,
        "the application waits for its card: {v}"
    );

    // The same card comes back; the next run finds it in the journal.
    let mut sim = handle.stop();
    wait_card(env.reader(0), false);
    sim.reinsert();
    let handle = serve(("127.0.0.1", port), sim).unwrap();
    wait_card(env.reader(0), true);
    let o = run();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["results"][0]["result"], "issued", "{v}");
    assert_eq!(v["report"]["issued"], 1);
    assert_eq!(v["report"]["in_progress"], 0);
    let mailer = std::fs::read_to_string(station.join("pin-mailer.txt")).unwrap();
    assert!(mailer.lines().count() >= 1);
    let o = env.kart(&["info", "--json", "--reader", env.reader(0)]);
    assert_eq!(json(&o)["lifecycle"]["name"], "LOCKED");
    handle.stop();
    wait_card(env.reader(0), false);
}

fn watch_shows_a_card_pulled_out(env: &mut Env) {
    let card = env.insert(1, "vendor-a", 0x0401);
    let child = Command::new(env!("CARGO_BIN_EXE_kart"))
        .args(["readers", "--watch", "--timeout", "3", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kart readers --watch");
    std::thread::sleep(Duration::from_secs(1));
    card.pull();
    let o = child.wait_with_output().expect("watch ends at its timeout");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let events: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let seen = |kind: &str| {
        events
            .iter()
            .any(|e| e["event"] == kind && e["reader"] == env.reader(1))
    };
    assert!(
        seen("card-inserted"),
        "the card already there is reported first: {events:?}"
    );
    assert!(seen("card-removed"), "{events:?}");
    assert!(events.iter().all(|e| e["format"] == "kart/1"));
    let _ = card.stop();
}

/// A vendor-C card that takes its modelled time for real, every key
/// generation at the model's tail (its cap, first-call factor included):
/// the slowest healthy card of that vendor. `kart personalize` waits for it,
/// with the deadlines it takes from the embedded vendor-C model.
fn key_generation_at_the_models_tail_does_not_trip_its_deadline(env: &mut Env) {
    let mut slow = env.profile("vendor-c").clone();
    let tail = slow.latency.keygen;
    slow.latency.keygen = kart_spec::KeyGeneration {
        median_ms: tail.cap_ms,
        sigma: 0.0,
        ..tail
    };
    let issuer = kart_perso::issuer::Issuer::load(&env.issuer()).expect("issuer");
    let (keys, _) = issuer.channel_keys(&slow).expect("channel keys");
    let mut sim = kart_sim::SimCard::with_config(
        &slow,
        &kart_sim::SimConfig::with_keys(0x0801_u32.to_be_bytes(), keys),
    )
    .expect("simulated card");
    sim.set_latency(kart_sim::LatencyMode::Real);
    let card = serve(("127.0.0.1", env.pcscd.readers()[0].port), sim).unwrap();
    wait_card(env.reader(0), true);
    let dir = env.dir.path().join("slow-keygen");
    std::fs::create_dir_all(&dir).unwrap();
    let batch = one_record_batch(&dir);
    let o = personalize_with_station(env, env.reader(0), "5", &dir.join("station"), &batch);
    let v = json(&o);
    assert_eq!(code(&o), 0, "{v} {}", stderr(&o));
    assert_eq!(v["results"][0]["result"], "issued", "{v}");
    assert!(v["reader_errors"].as_array().unwrap().is_empty(), "{v}");
    card.stop();
    wait_card(env.reader(0), false);
}

/// How long the mute card stays silent: far beyond any deadline of its
/// vendor's model for SELECT, short enough to end the test run soon after.
const MUTE: Duration = Duration::from_secs(12);
/// How long the test waits for the run: less than [`MUTE`], so a run that
/// waits for the mute card to answer fails.
const RUN_ENDS_WITHIN: Duration = Duration::from_secs(10);

fn a_mute_card_wedges_only_its_reader_and_the_run_ends_without_it(env: &mut Env) {
    let good = env.insert(0, "vendor-b", 0x0701);
    let mut mute = env.blank_card("vendor-a", 0x0702);
    mute.set_faults(Faults::default().slow_from(1, MUTE));
    let mute = serve(("127.0.0.1", env.pcscd.readers()[1].port), mute).unwrap();
    wait_card(env.reader(1), true);
    let dir = env.dir.path().join("wedged");
    std::fs::create_dir_all(&dir).unwrap();
    let batch = one_record_batch(&dir);
    let mut child = Command::new(env!("CARGO_BIN_EXE_kart"))
        .args([
            "personalize",
            "--json",
            "--reader",
            "all",
            // Far longer than the test waits: only a run that ends when the
            // work is done, not when the wedged reader gives up, passes.
            "--card-timeout",
            "600",
            "--station-dir",
            dir.join("station").to_str().unwrap(),
            "--issuer",
            "issuer",
            batch.to_str().unwrap(),
        ])
        .current_dir(env.dir.path())
        .env_remove("KART_PIN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kart personalize");
    let started = std::time::Instant::now();
    while child.try_wait().expect("kart runs").is_none() {
        if started.elapsed() > RUN_ENDS_WITHIN {
            let _ = child.kill();
            panic!("the run waited on the mute card's reader");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let o = child.wait_with_output().expect("kart output");
    let v = json(&o);
    assert_eq!(code(&o), 1, "a wedged reader is reported: {v}");
    // The good reader issued the application.
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{v}");
    assert_eq!(results[0]["result"], "issued", "{v}");
    assert_eq!(results[0]["reader"], env.reader(0), "{v}");
    // The mute one is named wedged, with what to do.
    let errors = v["reader_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{v}");
    assert_eq!(errors[0]["reader"], env.reader(1), "{v}");
    let error = errors[0]["error"].to_string();
    assert!(
        error.contains("wedged") && error.contains("re-insert"),
        "{error}"
    );
    good.stop();
    // Once it answers, pcscd lets the reader go.
    mute.stop();
    wait_card(env.reader(0), false);
    wait_card(env.reader(1), false);
}
