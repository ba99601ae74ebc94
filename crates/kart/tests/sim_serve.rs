//! `kart sim serve` through a real, private `pcscd` with vpcd readers
//! (`harness = false`, root, packages from `scripts/setup`): third-party
//! PC/SC clients — Debian's `opensc-tool` and `python3-pyscard` — talk to the
//! served card (ATR, SELECT, GET DATA 0066/00E0, GET STATUS, EF.SOD), the
//! EF.SOD read by pyscard verifies with `openssl cms -verify`, the served card
//! is the stored card `--sim-dir` keeps, the server reconnects after a
//! pcscd restart, and `--swap` feeds a station fresh cards.

#[allow(dead_code)]
mod support;

use kart_pcscd_harness::runner::{run, Test};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};
use support::{wait_card, Env};

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok_json(o: &Output) -> Value {
    assert_eq!(code(o), 0, "{}\n{}", text(&o.stdout), text(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o.stdout)))
}

/// A running `kart sim serve`, stopped by its PID when dropped.
struct Server {
    child: Child,
    events: Receiver<Value>,
    seen: Vec<Value>,
}

impl Server {
    fn start(env: &Env, args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kart"))
            .args(args)
            .current_dir(env.dir.path())
            .env_remove("KART_SIM_DIR")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start kart sim serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, events) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON event line ({e}): {line}"));
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        Server {
            child,
            events,
            seen: Vec::new(),
        }
    }

    /// Waits (at most `secs`) for the n-th event named `event`.
    fn wait_event(&mut self, event: &str, n: usize, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let found: Vec<&Value> = self.seen.iter().filter(|e| e["event"] == event).collect();
            if found.len() >= n {
                return found[n - 1].clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) => {
                    assert_eq!(v["format"], "kart/1", "{v}");
                    assert_eq!(v["command"], "sim serve", "{v}");
                    self.seen.push(v);
                }
                Err(e) => panic!(
                    "no '{event}' event #{n} within {secs}s ({e}); saw {:?}",
                    self.seen
                ),
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first `rows` applications of the sample batch, with their photos, in `dir/NAME`.
fn batch(dir: &Path, name: &str, rows: usize) -> String {
    kart_testkit::cli::sample_batch(dir, name, |line| line <= rows + 1);
    name.to_owned()
}

fn opensc(reader: &str, args: &[&str]) -> String {
    let o = kart_testkit::process::run_ok(
        Command::new("opensc-tool")
            .args(["--reader", reader])
            .args(args),
        "opensc-tool (package opensc, scripts/setup)",
    );
    text(&o.stdout)
}

/// Talks to the card with pyscard: GP discovery on the ISD, then EF.SOD of
/// the applet `aid`, written to `sod`. Prints one JSON object.
const PYSCARD: &str = r#"
import json, sys
from smartcard.System import readers
reader, aid, sod_path = sys.argv[1], sys.argv[2], sys.argv[3]
r = [x for x in readers() if str(x) == reader][0]
c = r.createConnection()
c.connect()
def tx(hexapdu):
    data, sw1, sw2 = c.transmit(list(bytes.fromhex(hexapdu)))
    return bytes(data), (sw1 << 8) | sw2
out = {"atr": bytes(c.getATR()).hex().upper()}
out["select_isd"] = "%04X" % tx("00A4040C08A000000151000000")[1]
for name, apdu in [("card_data", "80CA006600"), ("key_info", "80CA00E000"),
                   ("unknown_tag", "80CA00FE00"), ("status_isd", "80F28002024F0000"),
                   ("status_apps", "80F24002024F0000")]:
    d, sw = tx(apdu)
    out[name] = {"data": d.hex().upper(), "sw": "%04X" % sw}
out["select_applet"] = "%04X" % tx("00A4040C%02X%s" % (len(aid) // 2, aid))[1]
out["select_sod"] = "%04X" % tx("00A4020C02011D")[1]
sod = b""
while True:
    d, sw = tx("00B0%04X00" % len(sod))
    if sw >> 8 == 0x6C:
        d, sw = tx("00B0%04X%02X" % (len(sod), sw & 0xFF))
    if sw in (0x9000, 0x6282):
        sod += d
    if sw != 0x9000 or not d:
        break
out["sod_bytes"] = len(sod)
open(sod_path, "wb").write(sod)
print(json.dumps(out))
"#;

const TESTS: &[Test<Env>] = &[
    (
        "third_party_clients_and_a_station_use_the_served_card",
        third_party_clients_and_a_station_use_the_served_card,
    ),
    (
        "swap_feeds_the_station_a_fresh_card_after_each_locked_one",
        swap_feeds_the_station_a_fresh_card_after_each_locked_one,
    ),
];

fn main() {
    let mut env = Env::start();
    let failed = run(&mut env, TESTS);
    env.finish(&failed);
}

fn third_party_clients_and_a_station_use_the_served_card(env: &mut Env) {
    let port = env.pcscd.readers()[0].port;
    let vpcd = format!("127.0.0.1:{port}");
    let reader = env.reader(0).to_owned();
    let args = [
        "--json",
        "--sim-dir",
        "cards",
        "sim",
        "serve",
        "--profile",
        "vendor-b",
        "--vpcd",
        &vpcd,
        "--issuer",
        "issuer",
    ];
    let mut server = Server::start(env, &args);
    let serving = server.wait_event("serving", 1, 10);
    assert_eq!(serving["reader"], "sim:vendor-b#1", "{serving}");
    assert_eq!(serving["lifecycle"], "PRE_PERSONALIZED");
    server.wait_event("connected", 1, 10);
    wait_card(&reader, true);

    // opensc-tool: the ATR, and the GP discovery a GP host tool starts with.
    let profile = env.profile("vendor-b").clone();
    let want_atr = hex::encode(profile.atr.bytes());
    opensc_sees_the_card_manager(&reader, &want_atr);

    // A station personalizes it through pcscd (the card has the issuer's keys).
    let one = batch(env.dir.path(), "one.csv", 1);
    let v = ok_json(&env.personalize(&reader, &[], &one));
    assert_eq!(v["report"]["issued"], 1, "{v}");

    // pyscard reads the card manager and EF.SOD; openssl verifies the SOD.
    pyscard_reads_a_verifiable_sod(env, &reader, &profile);

    // The served card is the stored card: kart sees it without pcscd too.
    let stored = ok_json(&env.kart(&[
        "--sim-dir",
        "cards",
        "info",
        "--json",
        "--reader",
        "sim:vendor-b",
    ]));
    let live = ok_json(&env.kart(&["info", "--json", "--reader", &reader]));
    assert_eq!(stored["lifecycle"]["name"], "LOCKED", "{stored}");
    assert_eq!(stored["csn"], live["csn"], "{stored}\n{live}");

    // pcscd restarts: the server reconnects and the card is back.
    env.pcscd.restart().expect("restart pcscd");
    server.wait_event("connected", 2, 20);
    wait_card(&reader, true);
    let atr = opensc(&reader, &["--atr"]);
    let got_atr: String = atr.chars().filter(char::is_ascii_hexdigit).collect();
    assert!(got_atr.to_lowercase().contains(&want_atr), "{atr}");

    // Stopped and started again, the server serves the same stored card.
    drop(server);
    wait_card(&reader, false);
    let mut again = Server::start(env, &args);
    let serving = again.wait_event("serving", 1, 10);
    assert_eq!(serving["lifecycle"], "LOCKED", "{serving}");
    assert_eq!(serving["csn"], live["csn"]);
    again.wait_event("connected", 1, 10);
    wait_card(&reader, true);
    let live = ok_json(&env.kart(&["info", "--json", "--reader", &reader]));
    assert_eq!(live["lifecycle"]["name"], "LOCKED");
}

fn swap_feeds_the_station_a_fresh_card_after_each_locked_one(env: &mut Env) {
    // One server, two readers (two --vpcd values); the station uses the second.
    let vpcd: Vec<String> = env
        .pcscd
        .readers()
        .iter()
        .map(|r| format!("127.0.0.1:{}", r.port))
        .collect();
    let both = vpcd.join(",");
    let reader = env.reader(1).to_owned();
    let mut server = Server::start(
        env,
        &[
            "--json",
            "sim",
            "serve",
            "--profile",
            "vendor-a",
            "--vpcd",
            &both,
            "--issuer",
            "issuer",
            "--swap",
            "1",
        ],
    );
    server.wait_event("connected", 2, 10);
    let readers: Vec<&str> = server
        .seen
        .iter()
        .filter(|e| e["event"] == "serving")
        .map(|e| e["reader"].as_str().unwrap())
        .collect();
    assert_eq!(readers, ["sim:vendor-a#1", "sim:vendor-a#2"]);
    wait_card(env.reader(0), true);
    wait_card(&reader, true);
    let two = batch(env.dir.path(), "two.csv", 2);
    let v = ok_json(&env.personalize(
        &reader,
        &["--station-dir", "swap-station", "--card-timeout", "20"],
        &two,
    ));
    assert_eq!(v["report"]["issued"], 2, "{v}");
    let swapped = server.wait_event("swapped in", 1, 5);
    assert_eq!(swapped["lifecycle"], "PRE_PERSONALIZED", "{swapped}");
    assert_eq!(swapped["swaps_left"], 0);
    assert_eq!(
        swapped["reader"], "sim:vendor-a#2",
        "only the reader whose card was locked"
    );
    let results = v["results"].as_array().unwrap();
    let csns: Vec<&str> = results
        .iter()
        .filter_map(|r| r["detail"].as_str())
        .filter_map(|d| d.split_whitespace().nth(1))
        .collect();
    assert_eq!(csns.len(), 2, "{v}");
    assert_ne!(csns[0], csns[1], "two different cards: {v}");
}

/// `opensc-tool`: the ATR, then SELECT of the ISD, GET DATA 0066 and 00E0 and
/// GET STATUS of the ISD, each 9000 with what GP says.
fn opensc_sees_the_card_manager(reader: &str, want_atr: &str) {
    let atr = opensc(reader, &["--atr"]);
    let got_atr: String = atr.chars().filter(char::is_ascii_hexdigit).collect();
    assert!(got_atr.to_lowercase().contains(want_atr), "{atr}");
    let gp = opensc(
        reader,
        &[
            "-s",
            "00A4040C08A000000151000000",
            "-s",
            "80CA006600",
            "-s",
            "80CA00E000",
            "-s",
            "80F28002024F0000",
        ],
    );
    assert_eq!(gp.matches("SW1=0x90, SW2=0x00").count(), 4, "{gp}");
    assert!(
        gp.contains("06 07 2A 86 48 86 FC 6B 01"),
        "GP card recognition OID: {gp}"
    );
    assert!(
        gp.contains("E0 12 C0 04 01 30 88 10"),
        "key information: {gp}"
    );
    assert!(gp.contains("E3 "), "GET STATUS: {gp}");
}

/// pyscard: the card manager and EF.SOD of the (personalized) card; the SOD
/// verifies with `openssl cms -verify` against the issuer root.
fn pyscard_reads_a_verifiable_sod(env: &Env, reader: &str, profile: &kart_spec::Profile) {
    let sod = env.dir.path().join("sod-pyscard.der");
    let aid = hex::encode_upper(profile.applet_aid.bytes());
    let o = Command::new("/usr/bin/python3")
        .args(["-c", PYSCARD, reader, &aid])
        .arg(&sod)
        .output()
        .expect("python3 with pyscard (package python3-pyscard, scripts/setup)");
    assert!(
        o.status.success(),
        "pyscard: {}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let py: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(py["atr"], hex::encode_upper(profile.atr.bytes()), "{py}");
    assert_eq!(py["select_isd"], "9000");
    assert!(
        py["card_data"]["data"]
            .as_str()
            .unwrap()
            .starts_with("6631732F06072A864886FC6B01"),
        "{py}"
    );
    assert_eq!(py["card_data"]["sw"], "9000");
    assert_eq!(
        py["key_info"]["data"], "E012C00401308810C00402308810C00403308810",
        "{py}"
    );
    assert_eq!(py["unknown_tag"]["sw"], "6A88", "not 6D00: {py}");
    assert!(
        py["status_isd"]["data"]
            .as_str()
            .unwrap()
            .contains("4F08A000000151000000"),
        "{py}"
    );
    // The applet, LOCKED (83) after the station.
    assert!(
        py["status_apps"]["data"]
            .as_str()
            .unwrap()
            .contains(&format!("4F{:02X}{aid}9F700183", aid.len() / 2)),
        "{py}"
    );
    assert_eq!(py["select_sod"], "9000");
    assert!(py["sod_bytes"].as_u64().unwrap() > 500, "{py}");
    let cms = Command::new("openssl")
        .args([
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-purpose",
            "any",
            "-out",
            "/dev/null",
            "-in",
        ])
        .arg(&sod)
        .arg("-CAfile")
        .arg(env.issuer().join("root.pem"))
        .output()
        .unwrap();
    assert!(
        cms.status.success(),
        "openssl cms -verify: {}",
        text(&cms.stderr)
    );
}
