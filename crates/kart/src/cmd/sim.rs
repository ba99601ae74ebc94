//! `kart sim serve`: the reference card as a product. One simulated card per
//! `--vpcd HOST:PORT` connects to a vsmartcard `vpcd` reader of a real
//! `pcscd`, so any PC/SC program (a bank's reader app, `opensc-tool`,
//! pyscard, a `GlobalPlatform` tool) talks to it as to a card in a reader.
//!
//! - Keys: the issuer's master key set for the profile with `--issuer DIR`,
//!   else the GP test key `40 41 … 4F` (`kart_sim::default_test_key`).
//! - `--sim-dir DIR` (global): the card of the n-th `--vpcd` is the stored
//!   card `sim:PROFILE#n`, the one `kart … --reader sim:PROFILE` uses.
//! - `--swap N`: when a card has been locked (issued) and left alone for
//!   [`SWAP_IDLE`], it is taken out and a fresh blank card put in, N times
//!   per reader — an operator feeding a station.
//! - The card stays until the process is stopped (Ctrl-C); when `pcscd`
//!   goes away it keeps trying to reconnect. Every change to a card is
//!   written as it happens, so stopping loses nothing.
//!
//! Output: one line per event (`--json`: one JSON object per line with
//! `event`, `reader`, `vpcd`, …).

use super::{Ctx, Outcome};
use crate::error::{CliError, Kind};
use crate::simkeys::sim_config;
use crate::simstore;
use kart_perso::applet::Lifecycle;
use kart_perso::issuer::Issuer;
use kart_sim::vpcd::{serve_with, ServeOptions, VirtualCard, VpcdHandle};
use kart_sim::{SimCard, SimConfig};
use kart_spec::Profile;
use serde_json::json;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a locked card is left alone before `--swap` takes it out.
pub const SWAP_IDLE: Duration = Duration::from_millis(500);
/// How long `--swap` leaves the reader empty between two cards.
pub const SWAP_GAP: Duration = Duration::from_millis(1500);
/// How often the readers are looked at.
const TICK: Duration = Duration::from_millis(50);

/// `kart sim`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Serve simulated cards to vpcd readers of a real pcscd until stopped.
    Serve(ServeArgs),
}

/// `kart sim serve`.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Vendor profile of the cards (`vendor-b`; test profiles such as
    /// `vendor-x-faulty` too).
    #[arg(long, value_name = "PROFILE")]
    profile: String,
    /// vpcd reader to put a card in, `HOST:PORT` (its reader.conf
    /// `DEVICENAME /dev/null:0xPPPP` slot port). Repeat, or separate with
    /// commas, for several readers.
    #[arg(long, value_name = "HOST:PORT", value_delimiter = ',', required = true)]
    vpcd: Vec<String>,
    /// Key the cards with this issuer's master keys (default: the GP test key).
    #[arg(long, value_name = "DIR")]
    issuer: Option<PathBuf>,
    /// After a card is locked, put a fresh blank card in the reader, this
    /// many times per reader.
    #[arg(long, value_name = "N", default_value_t = 0)]
    swap: u32,
}

/// Runs `kart sim`.
pub fn run(args: &Args, ctx: &Ctx) -> Result<Outcome, CliError> {
    match &args.action {
        Action::Serve(a) => serve(a, ctx),
    }
}

/// What the serving thread lets the main thread see of its card.
#[derive(Debug, Default)]
struct Seen {
    lifecycle: u8,
    last_apdu: Option<Instant>,
    apdus: u64,
    store_error: Option<String>,
}

/// A simulated card behind vpcd that reports what it does.
struct Served {
    card: SimCard,
    seen: Arc<Mutex<Seen>>,
}

impl Served {
    fn new(card: SimCard) -> (Served, Arc<Mutex<Seen>>) {
        let seen = Arc::new(Mutex::new(Seen {
            lifecycle: card.lifecycle_code(),
            ..Seen::default()
        }));
        (
            Served {
                card,
                seen: Arc::clone(&seen),
            },
            seen,
        )
    }
}

impl VirtualCard for Served {
    fn atr(&self) -> Vec<u8> {
        self.card.atr()
    }
    fn power_on(&mut self) {
        self.card.power_on();
    }
    fn power_off(&mut self) {
        self.card.power_off();
    }
    fn reset(&mut self) {
        self.card.reset();
    }
    fn process(&mut self, apdu: &[u8]) -> Option<Vec<u8>> {
        let answer = self.card.process(apdu);
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.lifecycle = self.card.lifecycle_code();
        seen.last_apdu = Some(Instant::now());
        seen.apdus += 1;
        seen.store_error = self.card.store_error().map(str::to_owned);
        answer
    }
}

/// One reader being served.
struct Slot {
    reader: String,
    profile: String,
    vpcd: String,
    handle: Option<VpcdHandle<Served>>,
    seen: Arc<Mutex<Seen>>,
    connected: bool,
    /// When an emptied reader gets its next card (`--swap`).
    refill_at: Option<Instant>,
    /// Connections to vpcd so far (`VpcdHandle::connections`).
    connections: u64,
    waiting: bool,
    swaps_left: u32,
    store_error_shown: bool,
}

/// How serve makes cards.
struct Maker<'a> {
    profile: &'a Profile,
    issuer: Option<Issuer>,
}

impl Maker<'_> {
    fn config(&self) -> Result<SimConfig, CliError> {
        if let Some(issuer) = &self.issuer {
            return sim_config(issuer, self.profile);
        }
        let mut config = SimConfig::new(
            [0; 4],
            &kart_sim::default_test_key(self.profile.secure_channel.key_length),
        );
        config.ic_serial = random_serial()?;
        Ok(config)
    }

    /// The card in `reader` now (stored, else blank), or a fresh blank one.
    fn card(&self, reader: &str, fresh: bool) -> Result<SimCard, CliError> {
        let config = self.config()?;
        if fresh {
            return simstore::station_card(reader, self.profile, &config, None);
        }
        simstore::open_card(reader, self.profile, Some(&config))
    }
}

fn random_serial() -> Result<[u8; 4], CliError> {
    use ring::rand::SecureRandom;
    let mut serial = [0u8; 4];
    ring::rand::SystemRandom::new()
        .fill(&mut serial)
        .map_err(|_| CliError::new(Kind::Io, "the system random generator failed"))?;
    Ok(serial)
}

fn serve(args: &ServeArgs, ctx: &Ctx) -> Result<Outcome, CliError> {
    let profile = ctx
        .spec
        .profile(&args.profile)
        .or_else(|| ctx.spec.test_profile(&args.profile))
        .ok_or_else(|| {
            let ids: Vec<&str> = ctx.spec.profiles.iter().map(|p| p.id.as_str()).collect();
            CliError::with_hint(
                Kind::Usage,
                format!("there is no profile '{}'", args.profile),
                format!("give --profile with one of {}", ids.join(", ")),
            )
        })?;
    let issuer = args
        .issuer
        .as_deref()
        .map(|dir| {
            Issuer::load(dir).map_err(|e| {
                CliError::with_hint(
                    Kind::Issuer,
                    format!("cannot load the issuer {}: {e}", dir.display()),
                    "create one with `kart issuer init DIR`, or leave out --issuer for the test key",
                )
            })
        })
        .transpose()?;
    let maker = Maker { profile, issuer };
    let mut slots = Vec::new();
    for (i, vpcd) in args.vpcd.iter().enumerate() {
        let reader = format!("sim:{}#{}", profile.id, i + 1);
        let card = maker.card(&reader, false)?;
        let mut slot = Slot {
            reader,
            profile: profile.id.clone(),
            vpcd: vpcd.clone(),
            handle: None,
            seen: Arc::default(),
            connected: false,
            connections: 0,
            refill_at: None,
            waiting: false,
            swaps_left: args.swap,
            store_error_shown: false,
        };
        put_in(ctx, &mut slot, card, "serving")?;
        slots.push(slot);
    }
    loop {
        std::thread::sleep(TICK);
        for slot in &mut slots {
            watch(ctx, slot, &maker)?;
        }
    }
}

/// Serves `card` in `slot`'s reader and says so.
fn put_in(ctx: &Ctx, slot: &mut Slot, card: SimCard, event: &str) -> Result<(), CliError> {
    let csn = hex::encode_upper(card.csn());
    let lifecycle = card.lifecycle_code();
    let stored = card.stored_at().map(|p| p.display().to_string());
    let (served, seen) = Served::new(card);
    let options = ServeOptions {
        connect_timeout: Duration::from_secs(2),
        ..ServeOptions::default()
    };
    let hint = "give --vpcd HOST:PORT of a vpcd reader (reader.conf `DEVICENAME /dev/null:0xPPPP`)";
    let addr = std::net::ToSocketAddrs::to_socket_addrs(slot.vpcd.as_str())
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            CliError::with_hint(
                Kind::Usage,
                format!("vpcd reader address '{}' is not HOST:PORT", slot.vpcd),
                hint,
            )
        })?;
    let handle = serve_with(addr, served, options)
        .map_err(|e| CliError::with_hint(Kind::Io, e.to_string(), hint))?;
    slot.handle = Some(handle);
    slot.seen = seen;
    slot.connected = false;
    slot.connections = 0;
    slot.waiting = false;
    let name = lifecycle_name(lifecycle);
    event_line(
        ctx,
        json!({ "event": event, "reader": slot.reader, "vpcd": slot.vpcd, "csn": csn,
                "lifecycle": name, "stored": stored, "swaps_left": slot.swaps_left }),
        format!(
            "{}: {event} a {} card {csn} ({name}) to vpcd {}{}",
            slot.reader,
            slot.profile,
            slot.vpcd,
            stored.map_or_else(String::new, |s| format!(", stored in {s}"))
        ),
    );
    Ok(())
}

/// The spec's name of a life-cycle code, the code in hex when it has none.
fn lifecycle_name(code: u8) -> String {
    Lifecycle::from_code(code)
        .name()
        .map_or_else(|| format!("{code:02X}"), str::to_owned)
}

/// Looks at one reader: connection changes, reconnects, swaps.
fn watch(ctx: &Ctx, slot: &mut Slot, maker: &Maker<'_>) -> Result<(), CliError> {
    if slot.refill_at.is_some_and(|t| Instant::now() >= t) {
        slot.refill_at = None;
        let card = maker.card(&slot.reader, true)?;
        put_in(ctx, slot, card, "swapped in")?;
    }
    let Some(handle) = &slot.handle else {
        return Ok(());
    };
    // Counted, not sampled: a reconnect between two looks is still seen.
    let connections = handle.connections();
    let connected = handle.is_connected();
    if slot.connected && (!connected || connections > slot.connections) {
        slot.connected = false;
        event_line(
            ctx,
            json!({ "event": "disconnected", "reader": slot.reader, "vpcd": slot.vpcd }),
            format!("{}: disconnected (vpcd {})", slot.reader, slot.vpcd),
        );
    }
    if connected && connections > slot.connections {
        slot.connections = connections;
        slot.connected = true;
        slot.waiting = false;
        event_line(
            ctx,
            json!({ "event": "connected", "reader": slot.reader, "vpcd": slot.vpcd,
                    "connections": connections }),
            format!("{}: connected (vpcd {})", slot.reader, slot.vpcd),
        );
    }
    if !connected {
        if let Some(why) = handle.last_error() {
            // pcscd is not there (yet, or any more): keep trying.
            if !slot.waiting {
                slot.waiting = true;
                event_line(
                    ctx,
                    json!({ "event": "waiting", "reader": slot.reader, "vpcd": slot.vpcd, "reason": why }),
                    format!("{}: waiting for pcscd — {why}", slot.reader),
                );
            }
            handle.insert();
        }
    }
    let (locked_idle, store_error) = {
        let seen = slot.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let locked = Lifecycle::from_code(seen.lifecycle) == Lifecycle::Locked;
        let idle = seen.last_apdu.is_some_and(|t| t.elapsed() >= SWAP_IDLE);
        (locked && idle, seen.store_error.clone())
    };
    if let Some(e) = store_error.filter(|_| !slot.store_error_shown) {
        slot.store_error_shown = true;
        event_line(
            ctx,
            json!({ "event": "store-failed", "reader": slot.reader, "error": e }),
            format!(
                "{}: the card could not be written ({e}); it left the reader",
                slot.reader
            ),
        );
    }
    if locked_idle && slot.swaps_left > 0 {
        if let Some(h) = slot.handle.take() {
            drop(h.stop());
        }
        slot.swaps_left -= 1;
        event_line(
            ctx,
            json!({ "event": "removed", "reader": slot.reader, "reason": "locked" }),
            format!("{}: the locked card was taken out", slot.reader),
        );
        // The reader stays empty a moment, long enough for pcscd's polling
        // to see the card go, as when an operator swaps cards.
        slot.refill_at = Some(Instant::now() + SWAP_GAP);
    }
    Ok(())
}

fn event_line(ctx: &Ctx, json_body: serde_json::Value, human: String) {
    if ctx.out.json {
        ctx.out.json("sim serve", json_body);
    } else {
        ctx.out.line(human);
    }
}
