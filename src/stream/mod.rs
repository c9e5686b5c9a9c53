//! Client-to-server stream negotiation (RFC 6120 §4–§7) as a sans-I/O
//! state machine: events in, bytes and actions out. Sockets, TLS and timers
//! live in `net::connection`.

pub mod c2s;
pub mod error;

pub use c2s::{Action, C2sStream, Env, Policy, SaslJob};
pub use error::{StreamCondition, StreamError};

pub const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
pub const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
pub const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
pub const NS_SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
pub const NS_SASL_CB: &str = "urn:xmpp:sasl-cb:0";
/// Stream feature: roster versioning (RFC 6121 §2.6.1).
pub const NS_ROSTERVER: &str = "urn:xmpp:features:rosterver";
/// Stream feature: subscription pre-approval (RFC 6121 §3.4.1).
pub const NS_PRE_APPROVAL: &str = "urn:xmpp:features:pre-approval";
