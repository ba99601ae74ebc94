//! Runs a journal test on every store: an `SQLite` file, and a PostgreSQL
//! database on a private server the test starts (and stops by PID).
//!
//! `on_every_store! { #[test] fn name() { … } }` makes `name::sqlite` and
//! `name::postgres`; inside, [`fresh`] gives a new empty journal location
//! of the store under test and [`open`] opens it.

#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use kart_perso::journal::{Journal, JournalLocation, JournalOptions};
use kart_pg_harness::PgServer;

/// Which store a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// A file per journal.
    Sqlite,
    /// A database per journal on one private server per test.
    Postgres,
}

thread_local! {
    static STORE: Cell<Store> = const { Cell::new(Store::Sqlite) };
    static SERVER: RefCell<Option<Rc<PgServer>>> = const { RefCell::new(None) };
    static DATABASES: Cell<u32> = const { Cell::new(0) };
}

/// A journal's location, and what keeps it alive (its folder or server).
pub struct Place {
    /// Where the journal is.
    pub location: JournalLocation,
    /// A scratch folder (the `SQLite` file lives in it).
    pub dir: tempfile::TempDir,
    server: Option<Rc<PgServer>>,
}

impl Place {
    /// The server, on PostgreSQL.
    pub fn server(&self) -> Option<&PgServer> {
        self.server.as_deref()
    }
}

/// The store of the running test.
pub fn store() -> Store {
    STORE.with(Cell::get)
}

/// Runs `test` on `store`; the PostgreSQL server (if one was started)
/// stops when it returns.
pub fn run(store: Store, test: impl FnOnce()) {
    STORE.with(|s| s.set(store));
    test();
    SERVER.with(|s| s.borrow_mut().take());
}

/// A new, empty journal location of the store under test.
pub fn fresh() -> Place {
    let dir = tempfile::tempdir().unwrap();
    match store() {
        Store::Sqlite => Place {
            location: JournalLocation::sqlite(dir.path().join("journal.db")),
            dir,
            server: None,
        },
        Store::Postgres => {
            let server = SERVER.with(|s| {
                s.borrow_mut()
                    .get_or_insert_with(|| {
                        Rc::new(PgServer::start().expect("PostgreSQL 15 for the journal tests"))
                    })
                    .clone()
            });
            let n = DATABASES.with(|d| {
                d.set(d.get() + 1);
                d.get()
            });
            let name = format!("journal_{n}");
            server.psql(&format!("CREATE DATABASE {name}")).unwrap();
            let url = server.url();
            let base = url.rsplit_once('/').unwrap().0;
            Place {
                location: format!("{base}/{name}").parse().unwrap(),
                dir,
                server: Some(server),
            }
        }
    }
}

/// Opens the journal at `place` with default options.
pub fn open(place: &Place) -> Journal {
    open_with(place, &JournalOptions::default())
}

/// Opens the journal at `place`.
pub fn open_with(place: &Place, options: &JournalOptions) -> Journal {
    Journal::open_location(&place.location, options).unwrap()
}

/// Makes each test a module with one test per store.
macro_rules! on_every_store {
    ($( $(#[doc = $doc:literal])* #[test] fn $name:ident() $body:block )*) => {
        $(
            $(#[doc = $doc])*
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                #[test]
                fn sqlite() {
                    $crate::journal_support::run($crate::journal_support::Store::Sqlite, || $body);
                }

                #[test]
                fn postgres() {
                    $crate::journal_support::run($crate::journal_support::Store::Postgres, || $body);
                }
            }
        )*
    };
}
