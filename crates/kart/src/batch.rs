//! The CLI's card sources for the engine's multi-reader loop
//! ([`kart_perso::station::runner`]): a simulated reader gets a fresh blank
//! card for each application; a PC/SC reader waits for a card, serves it,
//! and waits for it to be taken out before the next.

use crate::error::{CliError, Kind};
use crate::progress::Progress;
use crate::reader::Source;
use crate::simkeys::sim_config;
use crate::simstore::Awaited;
use kart_apdu::{CardCaps, Transport, TransportError};
use kart_pcsc::{ConnectOptions, Connection, EventWatch, Pcsc, ReaderEvent, Share};
use kart_perso::issuer::Issuer;
use kart_perso::record::TrackingCode;
use kart_perso::station::runner::{
    self, CardSource, Inserted, Observer, ReaderContext, RunOptions,
};
use kart_perso::station::Station;
use kart_sim::{LatencyMode, SimCard};
use kart_spec::{Profile, Spec};
use serde_json::json;
use std::time::{Duration, Instant};

/// A check run on each card right after it is issued (the demo's full
/// verification): `Ok(None)` when it passed, `Ok(Some(why))` when not.
pub type AfterIssue<'a> = &'a (dyn Fn(&TrackingCode, &[u8], &mut dyn Transport) -> Result<Option<String>, CliError>
         + Sync);

/// What happened on every reader.
pub type Tally = runner::Tally<CliError>;

/// What the readers share and need.
pub struct Run<'a> {
    /// The station, shared by every reader.
    pub station: &'a Station,
    /// The issuer, whose master keys key simulated cards.
    pub issuer: &'a Issuer,
    /// The spec, to match ATRs to profiles.
    pub spec: &'a Spec,
    /// The progress bars.
    pub progress: &'a Progress,
    /// How simulated cards spend their modelled time.
    pub sim_latency: LatencyMode,
    /// How long a PC/SC reader waits for the next card.
    pub card_timeout: Duration,
    /// Run on each issued simulated card.
    pub after_issue: Option<AfterIssue<'a>>,
}

/// The results as JSON.
pub fn tally_json(tally: &Tally) -> serde_json::Value {
    json!({
        "station": tally.station,
        "results": tally.results.iter().map(|r| json!({
            "tracking_code": r.tracking, "reader": r.reader, "result": r.result, "detail": r.detail,
            "modelled_card_ms": r.modelled.map(|d| d.as_millis()),
        })).collect::<Vec<_>>(),
        "reader_errors": tally.errors.iter().map(|(reader, e)| json!({
            "reader": reader, "error": e.to_json(),
        })).collect::<Vec<_>>(),
    })
}

/// Runs the station on every source until the queue is empty (or a reader
/// fails); returns what happened.
pub fn run_all(run: &Run<'_>, sources: &[Source]) -> Tally {
    let readers = sources
        .iter()
        .map(|source| match source {
            Source::Sim { profile, .. } => Reader::Sim(SimReader {
                name: source.name(),
                profile: profile.clone(),
                issuer: run.issuer,
                after_issue: run.after_issue,
                latency: run.sim_latency,
                first: true,
            }),
            Source::Pcsc(name) => Reader::Pcsc(PcscReader {
                name: name.clone(),
                spec: run.spec,
                card_timeout: run.card_timeout,
                pcsc: None,
            }),
        })
        .collect();
    let options = RunOptions {
        pause_limit: run.card_timeout,
    };
    runner::run_all(run.station, readers, run.progress, &options)
}

impl Observer for Progress {
    fn status(&self, reader: usize, status: &str) {
        Progress::status(self, reader, status);
    }

    fn done(&self, reader: usize, summary: &str) {
        Progress::done(self, reader, summary);
    }
}

/// A reader of either kind.
enum Reader<'a> {
    Sim(SimReader<'a>),
    Pcsc(PcscReader<'a>),
}

/// A card of either kind.
enum StationCard {
    Sim(Box<SimCard>),
    Pcsc(Box<Connection>),
}

impl Transport for StationCard {
    fn transmit(&mut self, apdu: &[u8], rx: &mut Vec<u8>) -> Result<(), TransportError> {
        match self {
            StationCard::Sim(c) => c.transmit(apdu, rx),
            StationCard::Pcsc(c) => c.transmit(apdu, rx),
        }
    }

    fn capabilities(&self) -> CardCaps {
        match self {
            StationCard::Sim(c) => c.capabilities(),
            StationCard::Pcsc(c) => c.capabilities(),
        }
    }
}

impl CardSource for Reader<'_> {
    type Card = StationCard;
    type Error = CliError;

    fn name(&self) -> String {
        match self {
            Reader::Sim(r) => r.name.clone(),
            Reader::Pcsc(r) => r.name.clone(),
        }
    }

    fn next_card(
        &mut self,
        ctx: &ReaderContext<'_>,
    ) -> Result<Option<Inserted<StationCard>>, CliError> {
        match self {
            Reader::Sim(r) => r.next_card(ctx).map(Some),
            Reader::Pcsc(r) => r.next_card(ctx),
        }
    }

    fn sets_aside_unusable_cards(&self) -> bool {
        matches!(self, Reader::Pcsc(_))
    }

    fn check_issued(
        &mut self,
        tracking: &TrackingCode,
        profile: &Profile,
        card: &mut StationCard,
        ctx: &ReaderContext<'_>,
    ) -> Result<Option<String>, CliError> {
        match (self, card) {
            (Reader::Sim(r), StationCard::Sim(card)) => match r.after_issue {
                Some(f) => {
                    ctx.status("verifying");
                    f(tracking, profile.atr.bytes(), card.as_mut())
                }
                None => Ok(None),
            },
            _ => Ok(None),
        }
    }

    fn modelled_time(&self, card: &StationCard) -> Option<Duration> {
        match card {
            StationCard::Sim(c) => Some(c.modelled_time()),
            StationCard::Pcsc(_) => None,
        }
    }

    fn release(&mut self, card: StationCard) -> Result<(), CliError> {
        // A card that let a deadline pass wedges its reader inside pcscd:
        // every later command there would wait too. The reader is left out
        // for the rest of the run; the others go on.
        let wedged = matches!(&card, StationCard::Pcsc(c) if c.is_abandoned());
        drop(card);
        if wedged {
            return Err(CliError::with_hint(
                Kind::Reader,
                format!(
                    "reader '{}' is wedged: its card did not answer within the vendor model's deadline; the reader is left out for the rest of the run",
                    self.name()
                ),
                "re-insert the card (or restart pcscd), then run again: its application resumes",
            ));
        }
        Ok(())
    }

    fn stopped_status(&self, error: &CliError) -> String {
        error.what.clone()
    }

    fn ready_for_next(&mut self, ctx: &ReaderContext<'_>) -> Result<bool, CliError> {
        match self {
            Reader::Sim(_) => Ok(true),
            Reader::Pcsc(r) => r.take_out(ctx),
        }
    }
}

/// A simulated reader: a fresh blank card for each application. With kept
/// cards (`--sim-dir`) each card is on disk before the station sends it a
/// command, so before the journal can bind its serial: a station killed at
/// any point finds the card again in its reader ([`crate::simstore::station_card`]).
struct SimReader<'a> {
    name: String,
    profile: Box<Profile>,
    issuer: &'a Issuer,
    after_issue: Option<AfterIssue<'a>>,
    latency: LatencyMode,
    /// The first card may be one the simulator's store kept from an earlier run.
    first: bool,
}

impl SimReader<'_> {
    fn next_card(&mut self, ctx: &ReaderContext<'_>) -> Result<Inserted<StationCard>, CliError> {
        let config = sim_config(self.issuer, &self.profile)?;
        // A LOCKED card left in the reader is presented again when the
        // journal still waits for it (killed before its verification).
        let awaited = |card: &SimCard| -> Result<bool, CliError> {
            Ok(ctx.station().awaits_card(&hex::encode_upper(card.csn()))?)
        };
        let first = std::mem::take(&mut self.first).then_some(&awaited as Awaited<'_>);
        let mut sim = crate::simstore::station_card(&self.name, &self.profile, &config, first)?;
        // The model's clock tells what a real card would take; by default
        // it costs nothing (`--sim-latency` may make the card take it).
        sim.set_latency(self.latency);
        ctx.status("personalizing");
        Ok(Inserted {
            card: StationCard::Sim(Box::new(sim)),
            profile: Ok(self.profile.as_ref().clone()),
        })
    }
}

/// A PC/SC reader: waits for each card to be inserted, then taken out.
struct PcscReader<'a> {
    name: String,
    spec: &'a Spec,
    card_timeout: Duration,
    /// Established on the reader's own thread, at its first card.
    pcsc: Option<Pcsc>,
}

impl PcscReader<'_> {
    fn pcsc(&mut self) -> Result<&Pcsc, CliError> {
        Ok(match &mut self.pcsc {
            Some(pcsc) => pcsc,
            slot @ None => slot.insert(Pcsc::establish()?),
        })
    }

    fn next_card(
        &mut self,
        ctx: &ReaderContext<'_>,
    ) -> Result<Option<Inserted<StationCard>>, CliError> {
        self.pcsc()?;
        if ctx.pending()? == 0 {
            return Ok(None);
        }
        ctx.status("insert a blank card");
        if !self.wait_for(true, ctx)? {
            return Ok(None);
        }
        let name = self.name.clone();
        let mut conn = self.pcsc()?.connect(
            &name,
            ConnectOptions {
                share: Share::Exclusive,
                ..ConnectOptions::default()
            },
        )?;
        let atr = conn.atr().to_vec();
        // A card the station cannot use is set aside; the station goes on.
        let profile = match self.spec.profile_for_atr(&atr) {
            None => Err(format!(
                "the card (ATR {}) matches no vendor profile; use a card of a supported vendor",
                hex::encode_upper(&atr)
            )),
            Some(profile) => {
                ctx.status(&format!("personalizing ({})", profile.id));
                // Each command waits what the vendor's model allows it.
                let model = profile.latency;
                conn.set_deadlines(Box::new(move |apdu: &[u8]| model.deadline(apdu)));
                Ok(profile.clone())
            }
        };
        Ok(Some(Inserted {
            card: StationCard::Pcsc(Box::new(conn)),
            profile,
        }))
    }

    fn take_out(&mut self, ctx: &ReaderContext<'_>) -> Result<bool, CliError> {
        if ctx.pending()? == 0 {
            return Ok(false);
        }
        ctx.status("take the card out");
        self.wait_for(false, ctx)?;
        Ok(true)
    }

    /// Waits until the reader holds a card (`present`) or is empty: `true`;
    /// or until another reader took the last application: `false`.
    fn wait_for(&mut self, present: bool, ctx: &ReaderContext<'_>) -> Result<bool, CliError> {
        let (reader, timeout) = (self.name.clone(), self.card_timeout);
        let pcsc = self.pcsc()?;
        let deadline = Instant::now() + timeout;
        let mut watch = EventWatch::reader(&reader);
        let mut has_card = false;
        loop {
            for e in pcsc.wait_events(&mut watch, Some(Duration::from_millis(500)))? {
                match e {
                    ReaderEvent::CardInserted { .. } => has_card = true,
                    ReaderEvent::CardRemoved { .. } => has_card = false,
                    _ => {}
                }
            }
            if has_card == present {
                return Ok(true);
            }
            if ctx.queue_empty() {
                return Ok(false);
            }
            if Instant::now() >= deadline {
                let what = if present {
                    "no card was inserted"
                } else {
                    "the card was not taken out"
                };
                return Err(CliError::with_hint(
                    Kind::Card,
                    format!("{what} in '{reader}' within {}s", timeout.as_secs()),
                    "run the command again when the cards are ready (the journal resumes the batch)",
                ));
            }
        }
    }
}
