//! Everything the server host does for its users: server-level iq
//! handlers, iqs addressed to accounts, presence and offline handling.

pub mod account;
pub mod account_removal;
pub mod contact_info;
pub mod disco;
pub mod extdisco;
pub mod host;
pub mod last;
pub mod offline;
pub mod presence;
pub mod presence_access;
pub mod private;
pub mod register;
pub mod reply;
pub mod tombstones;
pub mod vcard;
pub mod version;

pub const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
pub const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
pub const NS_PING: &str = "urn:xmpp:ping";
pub const NS_VERSION: &str = "jabber:iq:version";
pub const NS_TIME: &str = "urn:xmpp:time";
