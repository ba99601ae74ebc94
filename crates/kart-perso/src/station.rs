//! The personalization station: batches in, issued cards out, every step in
//! the journal before the card is touched.
//!
//! For each card presented in a reader, [`Station::serve`]:
//! 1. probes the card (applet, CSN, life cycle, CRN) without writing;
//! 2. if the journal has an unfinished application on this card (a pulled
//!    card or a crashed station), resumes it: a card still writable is
//!    personalized again (same CRN, new PINs, keys regenerated only while the
//!    life cycle allows), a LOCKED card is verified and marked verified, or
//!    spoiled when its content does not verify;
//! 3. otherwise claims the next queued application, marks it `writing` with
//!    the card serial, personalizes, marks it `written`, reads the card back
//!    and marks it `verified`, or `failed` with the reason. A card pulled
//!    mid-way leaves the application `writing` until the card comes back.
//!
//! Only the card's own refusal (a status word) before any data of the
//! application reached the card, or a failure before the card is written,
//! fails an application and frees the card for another; a card refused
//! after data reached it, or read back and found wrong, is spoiled and
//! never reused. Each step's start is journaled before its first APDU. A
//! claim belongs to this station's journal connection and its lease; only
//! expired leases of others are taken back. While the issuer's token is
//! away the station touches no card and claims nothing
//! ([`StationError::IssuerUnavailable`]). A lost answer (reader
//! time-out, card reset, reader gone) or garbage from the card leaves the
//! card's state unknown — it may be LOCKED and authentic already — so it is
//! handled as a pulled card: the application stays `writing` or `written`,
//! bound to that card, and is resumed or verified when the card comes back.
//!
//! A station is shared by reference between threads, one per reader, each
//! with its own transport; their journal calls run at once (a `PostgreSQL`
//! journal checks out a connection of its pool per call), the mailer is
//! locked per call.
//!
//! ```no_run
//! # fn run(transport: impl kart_apdu::Transport) -> Result<(), Box<dyn std::error::Error>> {
//! use kart_perso::station::{Station, StationFiles};
//! use kart_perso::record::Validator;
//! let issuer = kart_perso::issuer::Issuer::load(std::path::Path::new("issuer"))?;
//! let station = Station::open("station-1", &StationFiles::in_dir("var"), issuer, kart_spec::Spec::embedded()?)?;
//! let loaded = station.load_batch(std::path::Path::new("batch.csv"), Validator::new())?;
//! println!("{} queued, {} rejected", loaded.queued, loaded.rejected.len());
//! let profile = station.spec().profile("vendor-b").unwrap().clone();
//! println!("{:?}", station.serve("reader-0", transport, &profile)?);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use kart_apdu::{Card, Transport};
use kart_spec::{Profile, Spec};
use thiserror::Error;
use time::OffsetDateTime;

use crate::card_data::Crn;
use crate::crn::{CrnAllocator, CrnError};
use crate::issuer::Issuer;
use crate::journal::{
    BatchRow, Journal, JournalError, JournalLocation, JournalOptions, PgUrl, Recovery, Report,
    State, Status, Step, StoredRecord,
};
use crate::personalize::{
    personalize_observed, probe, CardInfo, Job, Outcome, PersoError, StepStart,
};
use crate::pin_mailer::{MailerEntry, MailerError, PinMailer, Pins};
use crate::plan::Lifecycle;
use crate::record::{Batch, BatchError, IdentityRecord, Pin, RecordError, TrackingCode, Validator};
use crate::verify::{TrustAnchors, Verifier};
use sha2::{Digest, Sha256};

mod judge;
mod pins;
pub mod runner;
mod spoil;
mod stored;
mod uncertain;

use judge::{judge, Expected};
pub use spoil::{spoil, spoil_many, SpoilError, Spoiled};

/// Longest reason stored in the journal.
const MAX_REASON: usize = 900;

/// Rows written to the journal per transaction while a batch streams in.
const LOAD_CHUNK: usize = 2000;

/// Where a station keeps its files.
#[derive(Debug, Clone)]
pub struct StationFiles {
    /// The journal database.
    pub journal: PathBuf,
    /// The PIN-mailer file (mode 0600).
    pub mailer: PathBuf,
    /// The issuer's CRN register, shared by every station of the issuer
    /// (see [`crate::crn`]).
    pub crns: PathBuf,
    /// The floor's shared `PostgreSQL` journal: when set, the journal and the
    /// CRN register are there, and `journal` and `crns` are not used.
    pub shared_journal: Option<PgUrl>,
}

/// The CRN register's file name in an issuer directory.
pub const CRN_REGISTER_FILE: &str = "crn.db";

impl StationFiles {
    /// `journal.db`, `pin-mailer.txt` and `crn.db` all in `dir`: for one
    /// desk that is alone with its issuer (tests, benchmarks). Stations of a
    /// real issuer share its register: use [`StationFiles::for_issuer`].
    pub fn in_dir(dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref();
        Self {
            journal: dir.join("journal.db"),
            mailer: dir.join("pin-mailer.txt"),
            crns: dir.join(CRN_REGISTER_FILE),
            shared_journal: None,
        }
    }

    /// These files with the journal at `location`: a `PostgreSQL` URL makes
    /// the station use the floor's shared journal and CRN register; a path
    /// replaces [`StationFiles::journal`].
    ///
    /// ```
    /// use kart_perso::station::StationFiles;
    /// let url = "postgres://kart@db.bureau:5432/kart".parse()?;
    /// let files = StationFiles::in_dir("desk-3").with_journal(url);
    /// assert_eq!(files.journal_location().to_string(), "postgres://kart@db.bureau:5432/kart");
    /// # Ok::<(), kart_perso::journal::JournalError>(())
    /// ```
    #[must_use]
    pub fn with_journal(self, location: JournalLocation) -> Self {
        match location {
            JournalLocation::Sqlite(journal) => Self {
                journal,
                shared_journal: None,
                ..self
            },
            JournalLocation::Postgres(url) => Self {
                shared_journal: Some(url),
                ..self
            },
        }
    }

    /// Where the station's journal is.
    pub fn journal_location(&self) -> JournalLocation {
        match &self.shared_journal {
            Some(url) => JournalLocation::Postgres(url.clone()),
            None => JournalLocation::Sqlite(self.journal.clone()),
        }
    }

    /// `journal.db` and `pin-mailer.txt` in the station's `dir`, and the CRN
    /// register `crn_register`, the one file every desk of the issuer uses.
    ///
    /// ```
    /// use kart_perso::station::StationFiles;
    /// let files = StationFiles::for_issuer("desk-3", "issuer/crn.db");
    /// assert_eq!(files.journal, std::path::Path::new("desk-3/journal.db"));
    /// assert_eq!(files.crns, std::path::Path::new("issuer/crn.db"));
    /// ```
    pub fn for_issuer(dir: impl AsRef<Path>, crn_register: impl Into<PathBuf>) -> Self {
        Self {
            crns: crn_register.into(),
            ..Self::in_dir(dir)
        }
    }
}

/// Why the station could not serve a card (a card that fails is not an
/// error: its application is marked and [`Served`] says so).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StationError {
    /// The journal failed; nothing was written to the card after it.
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
    /// The card could not be probed; no application was touched.
    #[error("card not usable: {0}")]
    Probe(PersoError),
    /// The card is LOCKED and no unfinished application is waiting for it.
    #[error("card {csn} is LOCKED and not awaited by any application; put it aside")]
    CardLocked {
        /// Its serial.
        csn: String,
    },
    /// The PIN mailer failed.
    #[error(transparent)]
    Mailer(#[from] MailerError),
    /// No CRN could be allocated.
    #[error(transparent)]
    Crn(#[from] CrnError),
    /// The batch file could not be read.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// An application in the journal has no loaded record.
    #[error(
        "application {0} is in the journal but its record cannot be read (no valid row stored, its photo no longer reads as a JPEG within bounds, or the PIN its batch sets is not loaded); fix the photo if need be and load its batch file again"
    )]
    RecordMissing(TrackingCode),
    /// The issuer's keys cannot be used (its PKCS#11 token is absent or was
    /// removed): the station takes no new application until they can; cards
    /// in progress stay bound to theirs and resume.
    #[error("the issuer's keys are unavailable ({0}); the station is paused and takes no new application until they are back")]
    IssuerUnavailable(String),
}

impl StationError {
    /// What the operator should do about it, when there is something to
    /// do; the card's or issuer's error underneath gives its own.
    #[must_use]
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            StationError::Probe(e) => e.hint(),
            StationError::Journal(e) => e.hint(),
            StationError::IssuerUnavailable(_) => Some(
                "reconnect the issuer's token (pkcs11-tool -L lists tokens), then run again: cards in progress resume",
            ),
            _ => None,
        }
    }
}

/// What happened to the card in the reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Served {
    /// Personalized, read back and verified: the card is issued.
    Issued {
        /// The application.
        tracking: TrackingCode,
        /// The card serial.
        csn: String,
        /// The card registration number.
        crn: Crn,
        /// APDUs exchanged while writing (0 when only verified on recovery).
        apdus: u64,
    },
    /// The card left the reader, or its state is unknown (the reader lost an
    /// answer, the card answered garbage): the application waits in the
    /// journal, bound to this card; present the card again to resume.
    Pulled {
        /// The application.
        tracking: TrackingCode,
        /// The card serial.
        csn: String,
    },
    /// Personalization failed; the application is marked failed with the reason.
    Failed {
        /// The application.
        tracking: TrackingCode,
        /// Why.
        reason: String,
    },
    /// The card is written but does not verify; it is marked spoiled.
    Spoiled {
        /// The application.
        tracking: TrackingCode,
        /// Why.
        reason: String,
    },
    /// No application is queued.
    QueueEmpty,
}

/// What [`Station::load_batch`] did.
#[derive(Debug, Default)]
pub struct BatchLoad {
    /// The batch's name in the journal: its file name and the start of
    /// its content's SHA-256 (`applications.csv@3f2a…`), so that the same
    /// file given by another path is the same batch.
    pub batch: String,
    /// Valid applications newly queued.
    pub queued: usize,
    /// Valid records already in the journal (a re-run): their records are
    /// stored again for recovery, nothing is queued twice.
    pub already_present: usize,
    /// Records rejected, by line, with their reasons: failed validation,
    /// a tracking code on two rows (both rows), a tracking code of another
    /// batch (issued on card X, queued in batch Y…), a holder with a live
    /// application and no `replacement=yes`. Those whose tracking code is
    /// valid and new are also in the journal, already `failed` with these
    /// reasons; no reader claims them.
    pub rejected: Vec<RecordError>,
    /// Earlier applications superseded by replacement rows: (earlier
    /// application, its card if it was issued, the replacement).
    pub superseded: Vec<(TrackingCode, Option<String>, TrackingCode)>,
}

/// A personalization station over one journal.
pub struct Station {
    name: String,
    spec: Spec,
    issuer: Issuer,
    /// Shared by the readers without a lock: its calls run at once (see
    /// [`crate::journal::JournalStore`]).
    journal: Journal,
    mailer: Mutex<PinMailer>,
    crns: CrnAllocator,
    /// PINs set by the loaded batches, by tracking code: the only part of a
    /// record not kept in the journal (records are read from it on claim).
    batch_pins: Mutex<pins::PinBook>,
    trust: TrustAnchors,
    /// Set when a card stopped on the issuer's token being unavailable;
    /// cleared once the issuer's keys sign again.
    issuer_down: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Station {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Station")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Station {
    /// Opens the station's files and gives back to the queue every claim
    /// whose lease ran out (a crashed station's, whatever its name); claims
    /// of live stations, this name's included, are left alone.
    /// Applications left `writing` or `written` wait for their card.
    pub fn open(
        name: &str,
        files: &StationFiles,
        issuer: Issuer,
        spec: Spec,
    ) -> Result<Self, StationError> {
        Self::open_with(name, files, issuer, spec, &JournalOptions::default())
    }

    /// [`Station::open`] with explicit journal options (lease, size cap).
    pub fn open_with(
        name: &str,
        files: &StationFiles,
        issuer: Issuer,
        spec: Spec,
        journal_options: &JournalOptions,
    ) -> Result<Self, StationError> {
        // The issuer's register first: a station that cannot draw CRNs
        // must not start, nor leave files behind.
        let crns = match &files.shared_journal {
            Some(url) => CrnAllocator::open_shared(url)?,
            None => CrnAllocator::open(&files.crns)?,
        };
        let journal = Journal::open_location(&files.journal_location(), journal_options)?;
        journal.reclaim_expired()?;
        Ok(Self {
            name: name.to_owned(),
            spec,
            journal,
            mailer: Mutex::new(PinMailer::open(&files.mailer)?),
            crns,
            batch_pins: Mutex::new(pins::PinBook::default()),
            issuer_down: std::sync::atomic::AtomicBool::new(false),
            trust: TrustAnchors::new(issuer.pki.root.clone())
                .with_intermediate(issuer.pki.card_ca.clone()),
            issuer,
        })
    }

    /// The station's name in the journal.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The applet spec and profiles in use.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The issuer this station personalizes for; its master keys also key
    /// simulated cards, so callers need not load the issuer a second time.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// Counts and step timings for the end-of-run report.
    pub fn report(&self) -> Result<Report, StationError> {
        Ok(self.journal.report()?)
    }

    /// Where an application stands in the journal.
    pub fn status(&self, tracking: &TrackingCode) -> Result<Status, StationError> {
        Ok(self.journal.status(tracking)?)
    }

    /// Whether an unfinished application waits for the card `card_serial`
    /// (hex CSN): [`serve`](Self::serve) would resume it, even on a LOCKED
    /// card. A card source uses it to tell a card still to finish from one
    /// issued and done.
    pub fn awaits_card(&self, card_serial: &str) -> Result<bool, StationError> {
        Ok(self
            .journal
            .unfinished_for_card(card_serial)?
            .is_some_and(|u| u.recovery != Recovery::Requeue))
    }

    /// Streams a batch file into the journal: each row validated (its
    /// photo read and checked, then dropped) and stored with its fields in
    /// transactions of a few thousand rows, so that memory does not grow
    /// with the batch; the batch rules are applied against the whole
    /// journal (see [`BatchLoad::rejected`]). Idempotent: a re-run queues
    /// nothing twice but stores the records again (and a PIN set by the
    /// batch, kept in memory only), as a restarted station must. Photo and
    /// fingerprint paths must stay in the batch file's folder.
    pub fn load_batch(&self, path: &Path, validator: Validator) -> Result<BatchLoad, StationError> {
        self.load_batch_confined(path, validator, None)
    }

    /// Like [`Station::load_batch`]; photo and fingerprint paths must lead
    /// inside `photo_root` when given (the `photo_root` of `kart.toml`).
    pub fn load_batch_confined(
        &self,
        path: &Path,
        validator: Validator,
        photo_root: Option<&Path>,
    ) -> Result<BatchLoad, StationError> {
        let records = Batch::open_confined(path, validator, photo_root)?;
        let name = batch_name(path)?;
        // A journal from before batches were named by content knows this
        // one by the path as typed: it keeps its applications, renamed.
        let legacy = path.display().to_string();
        self.journal.adopt_batch(&legacy, &name)?;
        let batch = self.journal.open_batch(&name)?;
        let mut load = BatchLoad {
            batch: name,
            ..BatchLoad::default()
        };
        let mut chunk = Vec::with_capacity(LOAD_CHUNK);
        let mut pins = HashMap::new();
        for (seq, item) in (0u64..).zip(records) {
            match item {
                Ok(record) => {
                    if let Some(pin) = &record.pin {
                        pins.insert(record.tracking_code.as_str().to_owned(), pin.clone());
                    }
                    chunk.push(BatchRow::Valid {
                        seq,
                        record: Box::new(StoredRecord::of(&record)),
                    });
                }
                Err(error) if error.tracking_code.is_some() => {
                    chunk.push(BatchRow::Rejected { seq, error });
                }
                Err(error) => load.rejected.push(error),
            }
            if chunk.len() >= LOAD_CHUNK {
                self.store_rows(batch, &mut chunk, &mut pins, &mut load)?;
            }
        }
        self.store_rows(batch, &mut chunk, &mut pins, &mut load)?;
        load.rejected.sort_by_key(|e| e.line);
        Ok(load)
    }

    /// Stores a chunk of rows; keeps the batch PINs (`pins`) of the rows
    /// that stand for their application, no other row's.
    fn store_rows(
        &self,
        batch: i64,
        chunk: &mut Vec<BatchRow>,
        pins: &mut HashMap<String, Pin>,
        load: &mut BatchLoad,
    ) -> Result<(), StationError> {
        if chunk.is_empty() {
            return Ok(());
        }
        let rows = std::mem::replace(chunk, Vec::with_capacity(LOAD_CHUNK));
        let loaded = self.journal.load_rows(batch, rows)?;
        if !pins.is_empty() {
            let accepted: Vec<(&TrackingCode, Pin)> = loaded
                .accepted
                .iter()
                .filter_map(|t| pins.remove(t.as_str()).map(|pin| (t, pin)))
                .collect();
            pins.clear();
            let mut book = lock(&self.batch_pins);
            for (tracking, pin) in &accepted {
                book.insert(tracking, pin);
            }
        }
        load.queued += loaded.queued;
        load.already_present += loaded.already_present;
        load.rejected.extend(loaded.rejected);
        load.superseded.extend(loaded.superseded);
        Ok(())
    }

    /// Serves the card behind `transport`, a card of `profile`, in `reader`.
    pub fn serve<T: Transport>(
        &self,
        reader: &str,
        transport: T,
        profile: &Profile,
    ) -> Result<Served, StationError> {
        self.check_issuer()?;
        let mut card = Card::with_caps(transport, profile.caps());
        let info = probe(&mut card, profile).map_err(StationError::Probe)?;
        let csn = info.cplc.csn_hex();
        let waiting = self
            .journal
            .unfinished_for_card(&csn)?
            .filter(|u| u.recovery != Recovery::Requeue);
        if let Some(unfinished) = waiting {
            return self.resume(&mut card, profile, &info, &unfinished.status);
        }
        if info.lifecycle == Lifecycle::Locked {
            return Err(StationError::CardLocked { csn });
        }
        let Some(tracking) = self.claim(reader)? else {
            return Ok(Served::QueueEmpty);
        };
        let Some(record) = self.record(&tracking) else {
            self.journal.release(&tracking)?;
            return Err(StationError::RecordMissing(tracking));
        };
        let writing = self.journal.mark_writing(&tracking, &csn, &profile.id);
        if let Err(e) = writing {
            // The card is taken, issued or spoiled: the application waits for another.
            self.journal.release(&tracking)?;
            return Err(e.into());
        }
        self.write_and_verify(&mut card, profile, &info, &record)
    }

    /// Picks up an application left `writing` or `written` on this card.
    fn resume<T: Transport>(
        &self,
        card: &mut Card<T>,
        profile: &Profile,
        info: &CardInfo,
        status: &Status,
    ) -> Result<Served, StationError> {
        let tracking = &status.tracking;
        let csn = info.cplc.csn_hex();
        if info.lifecycle == Lifecycle::Locked {
            if status.state == State::Writing {
                // Pulled after the last write landed: the content decides.
                self.journal.mark_written(tracking)?;
            }
            let crn = self.crns.allocate(&csn, tracking.as_str())?;
            let expected = Expected {
                crn: &crn,
                id_pin: None,
                written_sod: None,
                apdus: 0,
            };
            return self.verify_and_mark(card, tracking, &expected);
        }
        let Some(record) = self.record(tracking) else {
            return Err(StationError::RecordMissing(tracking.clone()));
        };
        self.journal.mark_writing(tracking, &csn, &profile.id)?;
        self.write_and_verify(card, profile, info, &record)
    }

    fn write_and_verify<T: Transport>(
        &self,
        card: &mut Card<T>,
        profile: &Profile,
        info: &CardInfo,
        record: &IdentityRecord,
    ) -> Result<Served, StationError> {
        let tracking = &record.tracking_code;
        let csn = info.cplc.csn_hex();
        let crn = self.crns.allocate(&csn, tracking.as_str())?;
        let pins = Pins::generate(record.pin.as_ref())?;
        // The mailer entry is durable before any PIN reaches the card.
        lock(&self.mailer).append(&MailerEntry {
            tracking: tracking.as_str(),
            crn: crn.as_str(),
            csn: &csn,
            pins: &pins,
        })?;
        let now = OffsetDateTime::now_utc();
        let job = Job::new(record, &crn, &pins, now.date());
        // Each step is journaled before its first APDU; `wrote` tells
        // whether anything of this application may be on the card.
        let mut wrote = info.touched();
        let mut journal_failed = None;
        let mut on_start = |step: StepStart<'_>| {
            wrote |= step.writes;
            self.journal
                .mark_step_started(tracking, step.name)
                .map_err(|e| {
                    journal_failed = Some(e);
                    PersoError::Stopped {
                        step: step.name.to_owned(),
                    }
                })
        };
        let result =
            personalize_observed(card, profile, &self.issuer, info, &job, now, &mut on_start);
        if let Some(e) = journal_failed {
            // The card keeps its application (`writing`): it resumes once
            // the journal works again.
            return Err(e.into());
        }
        match result {
            Ok(outcome) => {
                self.record_steps(tracking, &outcome)?;
                self.journal.mark_written(tracking)?;
                let pin = std::str::from_utf8(pins.id_pin.expose())
                    .ok()
                    .and_then(|digits| Pin::parse(digits).ok());
                let expected = Expected {
                    crn: &crn,
                    id_pin: pin.as_ref(),
                    written_sod: Some(&outcome.security_object),
                    apdus: outcome.counters.apdus,
                };
                self.verify_and_mark(card, tracking, &expected)
            }
            // The card may have carried out the command whose answer was
            // lost: it stays bound to the application, never freed.
            Err(e) if uncertain::perso(&e) => {
                if uncertain::issuer_unavailable(&e) {
                    self.issuer_down
                        .store(true, std::sync::atomic::Ordering::SeqCst);
                }
                Ok(Served::Pulled {
                    tracking: tracking.clone(),
                    csn,
                })
            }
            // Refused after data of this application reached the card: the
            // card is never released for another one, it is spoiled.
            Err(e) if wrote => {
                let reason = bounded(&format!(
                    "{e}; data of this application had reached the card, so the card is spoiled and never reused"
                ));
                self.journal.mark_spoiled(tracking, &reason)?;
                Ok(Served::Spoiled {
                    tracking: tracking.clone(),
                    reason,
                })
            }
            Err(e) => {
                let reason = bounded(&e.to_string());
                self.journal.mark_failed(tracking, &reason)?;
                Ok(Served::Failed {
                    tracking: tracking.clone(),
                    reason,
                })
            }
        }
    }

    fn record_steps(&self, tracking: &TrackingCode, outcome: &Outcome) -> Result<(), StationError> {
        for s in &outcome.steps {
            self.journal.mark_step(
                tracking,
                &Step::new(
                    s.name.clone(),
                    s.duration,
                    u32::try_from(s.apdus).unwrap_or(u32::MAX),
                    s.bytes_sent,
                    s.bytes_received,
                ),
            )?;
        }
        Ok(())
    }

    /// Verifies the card with [`crate::verify`]; marks the application
    /// verified, or spoiled when the card does not verify. A card pulled
    /// or unanswered while reading stays `written` and is verified when it
    /// comes back.
    fn verify_and_mark<T: Transport>(
        &self,
        card: &mut Card<T>,
        tracking: &TrackingCode,
        expected: &Expected<'_>,
    ) -> Result<Served, StationError> {
        let now = OffsetDateTime::now_utc();
        let mut verifier = Verifier::new(&self.trust, now).spec(&self.spec);
        if let Some(pin) = expected.id_pin {
            verifier = verifier.pin(pin);
        }
        let judged = match verifier.verify(card) {
            Ok(verdict) => judge(&verdict, expected),
            Err(e) if uncertain::read_back(&e) => {
                let csn = self.status(tracking)?.card_serial.unwrap_or_default();
                return Ok(Served::Pulled {
                    tracking: tracking.clone(),
                    csn,
                });
            }
            Err(e) => Err(format!("read-back failed: {e}")),
        };
        match judged {
            Ok(()) => {
                self.journal.mark_verified(tracking)?;
                let csn = self.status(tracking)?.card_serial.unwrap_or_default();
                Ok(Served::Issued {
                    tracking: tracking.clone(),
                    csn,
                    crn: expected.crn.clone(),
                    apdus: expected.apdus,
                })
            }
            Err(reason) => {
                let reason = bounded(&format!("verification failed: {reason}"));
                self.journal.mark_spoiled(tracking, &reason)?;
                Ok(Served::Spoiled {
                    tracking: tracking.clone(),
                    reason,
                })
            }
        }
    }

    /// Claims the next queued application for `reader`, renewing the
    /// leases of the claims this station's other readers hold: a station
    /// at work keeps what it claimed.
    fn claim(&self, reader: &str) -> Result<Option<TrackingCode>, StationError> {
        self.journal.renew_leases()?;
        let claim = self.journal.claim_next(&self.name, reader)?;
        Ok(claim.map(|c| c.tracking))
    }

    /// The claimed application's record, read from the journal, its photo
    /// read now; `None` when its row was not valid, its batch PIN is not
    /// in memory (its batch was not loaded by this process), or its photo
    /// no longer reads as a valid JPEG.
    fn record(&self, tracking: &TrackingCode) -> Option<IdentityRecord> {
        let stored = self.journal.record(tracking).ok()??;
        let pin = if stored.has_pin {
            Some(lock(&self.batch_pins).get(tracking)?)
        } else {
            None
        };
        stored::identity(stored, pin).ok()
    }

    /// While the issuer's token is known to be away, a probe signature with
    /// each issuer key: until both sign again no card is touched, so no new
    /// application is bound to a card that cannot be finished.
    fn check_issuer(&self) -> Result<(), StationError> {
        use std::sync::atomic::Ordering;
        const PROBE: &[u8] = b"kart station: is the issuer back?";
        if !self.issuer_down.load(Ordering::SeqCst) {
            return Ok(());
        }
        let pki = &self.issuer.pki;
        pki.document_signer_key
            .sign(PROBE)
            .and_then(|_| pki.card_ca_key.sign(PROBE))
            .map_err(|e| StationError::IssuerUnavailable(e.to_string()))?;
        self.issuer_down.store(false, Ordering::SeqCst);
        Ok(())
    }
}

/// A poisoned lock only means another reader's thread panicked; the data
/// behind it (journal connection, file handle, map) is still sound.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The batch's name in the journal: its file name and the first 16 hex
/// digits of its content's SHA-256.
fn batch_name(path: &Path) -> Result<String, BatchError> {
    let open_error = |source| BatchError::Open {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(open_error)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(open_error)?;
    let digest = hex::encode(hasher.finalize());
    let file_name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok(format!("{file_name}@{}", &digest[..16]))
}

fn bounded(reason: &str) -> String {
    let mut end = reason.len().min(MAX_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}
