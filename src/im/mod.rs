//! Everything the server host does for its users: server-level iq
//! handlers, iqs addressed to accounts, rosters, presence, subscriptions,
//! offline messages, carbons, blocking, and account data (vCards, private
//! XML, last activity, registration).

pub mod account;
pub mod account_disabling;
pub mod account_removal;
pub mod blocking;
pub mod blocklist;
pub mod broadcast;
pub mod cache;
pub mod caps;
pub mod carbons;
pub mod commands;
pub mod contact_info;
pub mod delay;
pub mod disco;
pub mod extdisco;
pub mod host;
pub mod last;
pub mod offline;
pub mod own_iq;
pub mod presence;
pub mod presence_access;
pub mod private;
pub mod probe;
pub mod register;
pub mod reply;
pub mod roster;
pub mod roster_iq;
pub mod session;
pub mod subscription;
pub mod subscription_flow;
pub mod tombstones;
pub mod undelivered;
pub mod vcard;
pub mod version;

pub use cache::ImCache;
pub use session::SessionIm;

pub const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
pub const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
pub const NS_PING: &str = "urn:xmpp:ping";
pub const NS_VERSION: &str = "jabber:iq:version";
pub const NS_TIME: &str = "urn:xmpp:time";
