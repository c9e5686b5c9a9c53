//! Client-to-server stream negotiation (RFC 6120 §4–§7) as a sans-I/O
//! state machine: events in, bytes and actions out. Sockets, TLS and timers
//! live in `net::connection`.

pub mod bind2;
pub mod c2s;
pub mod component;
pub mod csi;
pub mod dialback;
pub mod error;
pub mod s2s_in;
pub mod s2s_out;
pub mod sasl2;
pub mod sm;

pub use c2s::{Action, C2sStream, Env, Policy, SaslJob};
pub use error::{StreamCondition, StreamError};

use crate::xml::{Element, NS_CLIENT};

/// Where a stream state machine writes. Stream-level bytes (the header,
/// features, STARTTLS and SASL negotiation, stream errors, the close) are
/// the transport's own; stanzas to the client are kept apart, because once
/// the client has a session they go into its outbound queue, where they are
/// counted (stream management) and framed like every other stanza.
pub trait StreamOut {
    /// The transport's buffer for stream-level bytes.
    fn transport(&mut self) -> &mut Vec<u8>;

    /// One stanza, written by `write` with `jabber:client` as the default
    /// namespace.
    fn stanza_with(&mut self, write: &mut dyn FnMut(&mut Vec<u8>));

    fn stanza(&mut self, stanza: &Element) {
        self.stanza_with(&mut |buf| stanza.write_to(buf, NS_CLIENT));
    }
}

/// Everything in one buffer, in order: what a stream without a session
/// (and a test) sees.
impl StreamOut for Vec<u8> {
    fn transport(&mut self) -> &mut Vec<u8> {
        self
    }

    fn stanza_with(&mut self, write: &mut dyn FnMut(&mut Vec<u8>)) {
        write(self);
    }
}

pub const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
pub const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
pub const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
pub const NS_SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
pub const NS_SASL_CB: &str = "urn:xmpp:sasl-cb:0";
/// Stream feature: roster versioning (RFC 6121 §2.6.1).
pub const NS_ROSTERVER: &str = "urn:xmpp:features:rosterver";
/// Stream feature: subscription pre-approval (RFC 6121 §3.4.1).
pub const NS_PRE_APPROVAL: &str = "urn:xmpp:features:pre-approval";
/// Client State Indication (XEP-0352): a stream feature and two elements.
pub const NS_CSI: &str = "urn:xmpp:csi:0";
/// Server Dialback (XEP-0220): the `db:` elements.
pub const NS_DIALBACK: &str = "jabber:server:dialback";
/// Server Dialback with error handling, as a stream feature (XEP-0220 §2.4.2).
pub const NS_DIALBACK_FEATURE: &str = "urn:xmpp:features:dialback";
