//! # kart-pcsc
//!
//! The PC/SC reader driver of kart, and the only crate that talks to the
//! `pcsc` crate (libpcsclite / `pcscd`).
//!
//! - [`Pcsc`]: the service — reader names and states, connecting to a card;
//! - [`Pcsc::wait_events`] with an [`EventWatch`]: readers plugged in or out,
//!   cards inserted or removed, with a timeout and a [`Canceller`];
//! - [`Connection`]: a connected card (shared or exclusive, T=0/T=1/any),
//!   its ATR and protocol, reset/reconnect; it implements
//!   [`kart_apdu::Transport`] with [`CardCaps`](kart_apdu::CardCaps) from the
//!   ATR and the reader's limits, and bounds every card operation by a
//!   timeout;
//! - [`Transaction`]: exclusive use of the card for as long as it lives;
//! - [`Watcher`]: many readers at once, a thread per reader, a closure per card;
//! - [`PcscError`]: every failure, naming the reader and what to do.
//!
//! ```no_run
//! use kart_apdu::{Card, Command};
//! use kart_pcsc::{ConnectOptions, Pcsc, Share};
//! let pcsc = Pcsc::establish()?;
//! let reader = pcsc.reader_names()?.into_iter().next().ok_or("no reader")?;
//! let mut conn = pcsc.connect(&reader, ConnectOptions { share: Share::Exclusive, ..Default::default() })?;
//! let mut card = Card::new(&mut conn);
//! let r = card.send(&Command::new(0x00, 0xA4, 0x00, 0x0C).with_data(&[0x3F, 0x00])?)?;
//! println!("SELECT MF: {}", r.sw());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod atr;
mod connection;
mod context;
mod error;
mod events;
mod watcher;

pub use atr::{atr_capabilities, caps_for, historical_bytes};
pub use connection::{
    ConnectOptions, Connection, Deadline, Disposition, Protocol, ProtocolChoice, Share, Transaction,
};
pub use context::{CardState, Pcsc, ReaderInfo};
pub use error::PcscError;
pub use events::{Canceller, EventWatch, ReaderEvent};
pub use watcher::{CardArrival, Watcher, WatcherOptions};
