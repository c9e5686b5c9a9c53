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

/// Slots in [`TABLE`]: a power of two, well above the number of names so
/// that probes are short.
const SLOTS: usize = 512;

/// Where a name's probe starts. Cheap and good enough for a fixed set:
/// length, first and last byte.
const fn slot_of(s: &[u8]) -> usize {
    let len = s.len();
    if len == 0 {
        return 0;
    }
    let first = s[0] as usize;
    let last = s[len - 1] as usize;
    (len * 97 + first * 31 + last * 7) & (SLOTS - 1)
}

/// An open-addressing table of the well-known names, built at compile
/// time (a `match` on strings is a chain of comparisons at opt-level z).
const fn build(names: &[&'static str]) -> [Option<&'static str>; SLOTS] {
    let mut table = [None; SLOTS];
    let mut i = 0;
    while i < names.len() {
        let mut slot = slot_of(names[i].as_bytes());
        while table[slot].is_some() {
            slot = (slot + 1) & (SLOTS - 1);
        }
        table[slot] = Some(names[i]);
        i += 1;
    }
    table
}

static TABLE: [Option<&'static str>; SLOTS] = build(KNOWN);

/// The static copy of a well-known name.
fn known(s: &str) -> Option<&'static str> {
    let mut slot = slot_of(s.as_bytes());
    // Every probe sequence ends at an empty slot: the table is never full.
    for _ in 0..SLOTS {
        let k = (*TABLE.get(slot)?)?;
        if k == s {
            return Some(k);
        }
        slot = (slot + 1) & (SLOTS - 1);
    }
    None
}

macro_rules! known_names {
    ($($name:literal),* $(,)?) => {
        /// Names worth keeping static (a name not listed is only copied).
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
            assert!(matches!(intern(s), Cow::Borrowed(k) if k == *s), "{s}");
        }
        assert!(KNOWN.len() < SLOTS / 2);
    }
}
