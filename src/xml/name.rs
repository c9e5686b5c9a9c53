//! Names of elements and attributes and namespace URIs: nearly always one
//! of a few dozen well-known strings, so they are kept as `&'static str`
//! and a parsed stanza allocates only for its values and text.

use std::borrow::Cow;

/// An element or attribute name, or a namespace URI. Building one from a
/// string literal or a `NS_*` constant costs nothing; cloning a well-known
/// one costs nothing either.
pub type Name = Cow<'static, str>;

/// `s` as a [`Name`], without an allocation when it is well known.
pub fn intern(s: &str) -> Name {
    match known(s) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(s.to_owned()),
    }
}

macro_rules! known_names {
    ($($name:literal),* $(,)?) => {
        /// The static copy of a well-known name.
        fn known(s: &str) -> Option<&'static str> {
            match s {
                $($name => Some($name),)*
                _ => None,
            }
        }

        #[cfg(test)]
        const KNOWN: &[&str] = &[$($name),*];
    };
}

known_names! {
    // Stanzas and their common children.
    "message", "presence", "iq", "body", "thread", "subject", "show",
    "status", "priority", "error", "text", "query", "item", "x", "c",
    "delay", "forwarded", "sent", "received", "request", "active",
    "composing", "paused", "inactive", "gone", "markable", "displayed",
    "acknowledged", "origin-id", "stanza-id", "occupant-id", "ping",
    "time", "bind", "resource", "session", "jid", "photo", "invite",
    "decline", "reason", "password", "history", "actor", "continue",
    "destroy", "field", "value", "feature", "identity", "group", "block",
    "unblock", "blocklist", "enable", "disable", "private", "no-copy",
    "vCard", "pubsub", "items", "publish", "event", "store", "no-store",
    "hint", "nick", "replace", "reference",
    // Attributes.
    "to", "from", "id", "type", "xml:lang", "node", "ver", "hash", "name",
    "affiliation", "role", "code", "stamp", "by", "var", "label",
    "category", "subscription", "ask", "seconds", "maxchars",
    "maxstanzas", "since", "action", "sessionid", "xmlns",
    // Namespaces.
    "jabber:client",
    "jabber:server",
    "jabber:iq:roster",
    "jabber:iq:private",
    "jabber:iq:register",
    "jabber:iq:last",
    "jabber:iq:version",
    "jabber:x:conference",
    "jabber:x:data",
    "vcard-temp",
    "vcard-temp:x:update",
    "http://etherx.jabber.org/streams",
    "http://jabber.org/protocol/caps",
    "http://jabber.org/protocol/chatstates",
    "http://jabber.org/protocol/commands",
    "http://jabber.org/protocol/disco#info",
    "http://jabber.org/protocol/disco#items",
    "http://jabber.org/protocol/muc",
    "http://jabber.org/protocol/muc#admin",
    "http://jabber.org/protocol/muc#owner",
    "http://jabber.org/protocol/muc#user",
    "http://jabber.org/protocol/muc#request",
    "http://jabber.org/protocol/nick",
    "http://jabber.org/protocol/pubsub",
    "http://jabber.org/protocol/pubsub#event",
    "http://www.w3.org/XML/1998/namespace",
    "urn:ietf:params:xml:ns:xmpp-stanzas",
    "urn:ietf:params:xml:ns:xmpp-streams",
    "urn:ietf:params:xml:ns:xmpp-bind",
    "urn:ietf:params:xml:ns:xmpp-session",
    "urn:ietf:params:xml:ns:xmpp-sasl",
    "urn:ietf:params:xml:ns:xmpp-tls",
    "urn:xmpp:blocking",
    "urn:xmpp:carbons:2",
    "urn:xmpp:chat-markers:0",
    "urn:xmpp:delay",
    "urn:xmpp:forward:0",
    "urn:xmpp:hints",
    "urn:xmpp:message-correct:0",
    "urn:xmpp:occupant-id:0",
    "urn:xmpp:ping",
    "urn:xmpp:receipts",
    "urn:xmpp:sid:0",
    "urn:xmpp:time",
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{NS_CLIENT, NS_STREAM, NS_XML};

    #[test]
    fn well_known_names_are_static_and_others_owned() {
        for s in [
            NS_CLIENT, NS_STREAM, NS_XML, "message", "body", "to", "xml:lang",
        ] {
            assert!(matches!(intern(s), Cow::Borrowed(k) if k == s), "{s}");
        }
        for s in ["Message", "urn:example", "", "bodyx"] {
            assert!(matches!(intern(s), Cow::Owned(ref o) if o == s), "{s}");
        }
        for s in KNOWN {
            assert_eq!(intern(s), *s);
        }
    }
}
