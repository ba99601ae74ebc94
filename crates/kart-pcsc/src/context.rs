//! The PC/SC service: readers, their states, connecting to cards.

use crate::connection::{ConnectOptions, Connection};
use crate::error::PcscError;
use crate::events::Canceller;

/// What is in a reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardState {
    /// No card.
    Absent,
    /// A card is present and nobody uses it.
    Present,
    /// A card is present and some program is connected (shared).
    InUse,
    /// A card is present and a program holds it exclusively.
    Exclusive,
    /// A card is present but does not answer the reset.
    Mute,
    /// The reader cannot be used (being removed, or its driver failed).
    Unavailable,
}

impl CardState {
    pub(crate) fn from_pcsc(s: pcsc::State) -> Self {
        if s.intersects(pcsc::State::UNKNOWN | pcsc::State::UNAVAILABLE | pcsc::State::IGNORE) {
            CardState::Unavailable
        } else if !s.contains(pcsc::State::PRESENT) {
            CardState::Absent
        } else if s.contains(pcsc::State::MUTE) {
            CardState::Mute
        } else if s.contains(pcsc::State::EXCLUSIVE) {
            CardState::Exclusive
        } else if s.contains(pcsc::State::INUSE) {
            CardState::InUse
        } else {
            CardState::Present
        }
    }

    /// Whether a card is in the reader (whatever its use).
    pub fn has_card(self) -> bool {
        matches!(
            self,
            CardState::Present | CardState::InUse | CardState::Exclusive | CardState::Mute
        )
    }
}

/// A reader and what is in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderInfo {
    /// The PC/SC reader name.
    pub name: String,
    /// What is in it.
    pub card: CardState,
    /// The card's ATR (empty when there is no card).
    pub atr: Vec<u8>,
}

/// A connection to the PC/SC service (`SCardEstablishContext`).
///
/// After `pcscd` restarts, every call answers [`PcscError::ServiceLost`]
/// (see [`PcscError::is_service_lost`]): call [`Pcsc::reestablish`].
///
/// ```no_run
/// use kart_pcsc::Pcsc;
/// let pcsc = Pcsc::establish()?;
/// for r in pcsc.readers()? {
///     println!("{}: {:?}", r.name, r.card);
/// }
/// # Ok::<(), kart_pcsc::PcscError>(())
/// ```
pub struct Pcsc {
    pub(crate) ctx: pcsc::Context,
    pub(crate) canceller: Canceller,
}

impl std::fmt::Debug for Pcsc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pcsc").finish_non_exhaustive()
    }
}

impl Pcsc {
    /// Connects to `pcscd`.
    pub fn establish() -> Result<Self, PcscError> {
        let ctx = pcsc::Context::establish(pcsc::Scope::User)
            .map_err(|e| PcscError::from_pcsc(e, "", crate::error::ESTABLISH))?;
        let canceller = Canceller::new(ctx.clone());
        Ok(Self { ctx, canceller })
    }

    /// Connects to `pcscd` again (after it restarted).
    pub fn reestablish(&mut self) -> Result<(), PcscError> {
        let fresh = Self::establish()?;
        // Cancellers handed out earlier keep working on the new context.
        self.canceller.replace_context(fresh.ctx.clone());
        self.ctx = fresh.ctx;
        Ok(())
    }

    /// Whether the connection to `pcscd` still works.
    pub fn is_valid(&self) -> bool {
        self.ctx.is_valid().is_ok()
    }

    /// The names of the connected readers (empty when there are none).
    pub fn reader_names(&self) -> Result<Vec<String>, PcscError> {
        match self.ctx.list_readers_owned() {
            Ok(names) => Ok(names
                .iter()
                .map(|n| n.to_string_lossy().into_owned())
                .collect()),
            Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
            Err(e) => Err(PcscError::from_pcsc(e, "", "list readers")),
        }
    }

    /// The connected readers with what is in them.
    pub fn readers(&self) -> Result<Vec<ReaderInfo>, PcscError> {
        let names = self.reader_names()?;
        let mut states: Vec<pcsc::ReaderState> = names
            .iter()
            .filter_map(|n| std::ffi::CString::new(n.as_str()).ok())
            .map(|n| pcsc::ReaderState::new(n, pcsc::State::UNAWARE))
            .collect();
        if states.is_empty() {
            return Ok(Vec::new());
        }
        match self
            .ctx
            .get_status_change(std::time::Duration::ZERO, &mut states)
        {
            Ok(()) | Err(pcsc::Error::Timeout) => {}
            Err(e) => return Err(PcscError::from_pcsc(e, "", "read the reader states")),
        }
        Ok(states
            .iter()
            .map(|s| {
                let card = CardState::from_pcsc(s.event_state());
                ReaderInfo {
                    name: s.name().to_string_lossy().into_owned(),
                    card,
                    atr: if card.has_card() {
                        s.atr().to_vec()
                    } else {
                        Vec::new()
                    },
                }
            })
            .collect())
    }

    /// Connects to the card in `reader`. The connection has its own PC/SC
    /// context and I/O thread, so a hung card blocks nothing else.
    pub fn connect(&self, reader: &str, options: ConnectOptions) -> Result<Connection, PcscError> {
        Connection::open(reader, options)
    }

    /// A handle that interrupts [`Pcsc::wait_events`] from another thread.
    pub fn canceller(&self) -> Canceller {
        self.canceller.clone()
    }
}
