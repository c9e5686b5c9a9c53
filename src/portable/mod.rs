//! Moving user data between servers in the format of XEP-0227 (Portable
//! Import/Export Format for XMPP-IM Servers, version 1.1), which Prosody
//! and ejabberd read and write: `perch export DIR` and `perch import PATH`.
//!
//! The data is organised by *record family* (accounts, rosters, vCards,
//! offline messages, …). Each family is one [`Family`] in [`FAMILIES`]: it
//! writes its elements into a user's `<user/>` element on export, and on
//! import claims the children of `<user/>` that are its own and turns them
//! into a write. Adding a family (say rosters, when they are stored) is one
//! new file here and one line in [`FAMILIES`]; the drivers in `export.rs`
//! and `import.rs` and the file handling in `files.rs` stay as they are.
//! Children of `<user/>` that no family claims are reported as not
//! imported, as the XEP asks ("SHOULD notify the operator").
//!
//! Today's families, each in its own file: accounts (SCRAM credentials),
//! roster (contacts and pending subscription requests), vCard, private XML,
//! offline messages, the account's PEP nodes (XEP-0227's "Personal
//! Eventing Protocol": configuration, affiliations, subscriptions and
//! items) and the account's message archive (XEP-0227's "Message
//! Archive").
//! Multi-user chat rooms, and so their message archives, are not carried,
//! nor are the nodes of the pubsub service at `pubsub.<domain>`: XEP-0227
//! has no format for them (its archives and nodes are users' only).

mod accounts;
mod archive;
mod export;
mod files;
mod import;
mod offline;
mod pep;
mod private_xml;
mod roster;
mod vcards;

pub use export::{ExportSummary, export};
pub use import::{ImportReport, import};

use std::fmt;
use std::path::PathBuf;

use crate::jid::Jid;
use crate::store::{Store, StoreError};
use crate::xml::Element;

/// The namespace of XEP-0227 since version 1.0.
pub const NS_PIE: &str = "urn:xmpp:pie:0";
/// The namespace of the versions before 1.0, still accepted on import.
pub const NS_PIE_OLD: &str = "http://www.xmpp.org/extensions/xep-0227.html#ns";
/// XInclude, which splits an export into one file per host and per user.
pub const NS_XINCLUDE: &str = "http://www.w3.org/2001/XInclude";

/// One family of per-user records in the portable format.
pub trait Family {
    /// Its name in reports ("accounts", "roster", …).
    fn name(&self) -> &'static str;

    /// Whether the user is skipped when this family cannot import its data
    /// (true for accounts: no user without credentials). Other families'
    /// failures skip only their own data.
    fn required(&self) -> bool {
        false
    }

    /// Appends this family's elements for `user` (a bare JID) to the
    /// user's `<user/>` element, reading through the export's snapshot.
    fn export_user(
        &self,
        source: &Source<'_>,
        user: &Jid,
        element: &mut Element,
    ) -> Result<(), PortableError>;

    /// Whether `child`, a child element of `<user/>`, is this family's.
    fn claims(&self, child: &Element) -> bool;

    /// Reads this family's data for `user` from its `<user/>` element and
    /// returns the write that stores it (inside the import's transaction),
    /// or `None` when there is nothing to store. Pure: nothing is written
    /// until every user has been read. Parts passed over while the rest is
    /// imported (one bad message among thousands) are told in `notices`,
    /// one line each, naming the user.
    fn import_user(
        &self,
        user: &Jid,
        element: &Element,
        notices: &mut Vec<String>,
    ) -> Result<Option<ImportWrite>, PortableError>;
}

/// What an export reads from. Nothing writes to the database while an
/// export runs (it works on a snapshot of a running server's, or on a
/// database no server holds), so reads through `store` see what `txn`
/// sees; `store` serves the families whose tables are read through the
/// store's own API.
pub struct Source<'a> {
    pub txn: &'a redb::ReadTransaction,
    pub store: &'a Store,
}

/// A family's part of an import, applied inside the import's transaction.
pub type ImportWrite = Box<dyn FnOnce(&redb::WriteTransaction) -> Result<(), StoreError>>;

/// Every family, in the order their elements appear in a `<user/>`.
/// Accounts come first: the other families' writes need the account.
pub const FAMILIES: &[&dyn Family] = &[
    &accounts::AccountsFamily,
    &roster::RosterFamily,
    &vcards::VCardFamily,
    &private_xml::PrivateXmlFamily,
    &offline::OfflineFamily,
    &pep::PepFamily,
    &archive::ArchiveFamily,
];

#[derive(Debug)]
pub enum PortableError {
    /// Reading or writing a file or directory failed.
    Io(PathBuf, std::io::Error),
    /// A file is not well-formed XML, or breaks a limit.
    Xml(PathBuf, String),
    /// A file is XML but not what XEP-0227 describes at that place.
    Format(PathBuf, String),
    /// The data of one user is unusable (reported, the import goes on).
    BadUserData(String),
    /// The export directory has files in it already.
    NotEmpty(PathBuf),
    Store(StoreError),
}

impl fmt::Display for PortableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortableError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            PortableError::Xml(p, why) => write!(f, "{}: not usable XML: {why}", p.display()),
            PortableError::Format(p, why) => write!(f, "{}: {why}", p.display()),
            PortableError::BadUserData(why) => f.write_str(why),
            PortableError::NotEmpty(p) => write!(
                f,
                "{} is not empty; export into a new or empty directory",
                p.display()
            ),
            PortableError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for PortableError {}

impl From<StoreError> for PortableError {
    fn from(e: StoreError) -> Self {
        PortableError::Store(e)
    }
}

impl<E: Into<redb::Error>> From<E> for PortableError {
    fn from(e: E) -> Self {
        PortableError::Store(StoreError::Db(e.into()))
    }
}
