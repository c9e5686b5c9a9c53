//! What goes into an archive, and the stanza ids (XEP-0359) on messages.
//!
//! The choice follows what Prosody and ejabberd archive, which is what
//! clients expect to find when they catch up: a message with content a
//! person sees (a body, an encrypted payload, a correction, a retraction, a
//! reaction, a read marker, an invitation, a call), never a chat state
//! alone, an error, a headline, or a message whose sender asked that it not
//! be stored (XEP-0334).

use crate::jid::Jid;
use crate::xml::{Element, NS_CLIENT};

use super::NS_SID;

const NS_HINTS: &str = "urn:xmpp:hints";

/// Payload namespaces that make a message worth archiving without a body.
const CONTENT_NAMESPACES: &[&str] = &[
    // XEP-0380 explicit encryption, OMEMO (legacy and 2), OpenPGP.
    "urn:xmpp:eme:0",
    "eu.siacs.conversations.axolotl",
    "urn:xmpp:omemo:2",
    "jabber:x:encrypted",
    "urn:xmpp:openpgp:0",
    // XEP-0424 retraction, XEP-0444 reactions, XEP-0308 correction.
    "urn:xmpp:message-retract:1",
    "urn:xmpp:message-retract:0",
    "urn:xmpp:reactions:0",
    "urn:xmpp:message-correct:0",
    // XEP-0249 and XEP-0045 mediated invitations.
    "jabber:x:conference",
    // XEP-0353 calls: a missed call belongs in the history.
    "urn:xmpp:jingle-message:0",
    "urn:xmpp:jingle-message:1",
    // XEP-0066 out-of-band data (a shared file's link).
    "jabber:x:oob",
];

/// XEP-0333 markers other than `markable` (which is a request, not
/// content).
const NS_MARKERS: &str = "urn:xmpp:chat-markers:0";

/// Whether a message's content belongs in an archive (or in a room's
/// history): see the module documentation. The type is not checked here.
pub fn has_archivable_content(stanza: &Element) -> bool {
    if stanza.get_child("no-store", NS_HINTS).is_some()
        || stanza.get_child("no-permanent-store", NS_HINTS).is_some()
    {
        return false;
    }
    stanza.get_child("body", NS_CLIENT).is_some()
        || stanza.get_child("subject", NS_CLIENT).is_some()
        || stanza.get_child("store", NS_HINTS).is_some()
        || stanza.children().any(|c| {
            CONTENT_NAMESPACES.contains(&c.ns.as_ref())
                || (c.ns == NS_MARKERS && c.name != "markable")
                || (c.is("x", crate::stanza::NS_MUC_USER)
                    && c.get_child("invite", crate::stanza::NS_MUC_USER).is_some())
        })
}

/// Whether a one-to-one message goes into its owners' archives: of type
/// `chat` or `normal`, with archivable content.
pub fn is_archivable_chat(stanza: &Element) -> bool {
    matches!(stanza.attr("type").unwrap_or("normal"), "chat" | "normal")
        && has_archivable_content(stanza)
}

/// Removes the stanza ids that claim to be given by `by` (XEP-0359 §3.1:
/// only the entity named may add them; anyone else's would let a sender
/// make a message pass for another one of the archive).
pub fn strip_ids_by(stanza: &mut Element, by: &Jid) {
    stanza.remove_children_where(|c| {
        c.is("stanza-id", NS_SID)
            && c.attr("by")
                .and_then(|b| Jid::parse(b).ok())
                .is_none_or(|b| b == *by)
    });
}

/// Adds the stanza id `id` given by `by`.
pub fn stamp_id(stanza: &mut Element, by: &str, id: &str) {
    stanza.push_child(
        Element::new("stanza-id", NS_SID)
            .with_attr("by", by)
            .with_attr("id", id),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Element {
        Element::parse(xml).expect("xml")
    }

    #[test]
    fn what_is_archived() {
        let yes = [
            "<message xmlns='jabber:client' type='chat'><body>hi</body></message>",
            "<message xmlns='jabber:client'><body>no type is normal</body></message>",
            "<message xmlns='jabber:client' type='chat'><encrypted xmlns='eu.siacs.conversations.axolotl'/></message>",
            "<message xmlns='jabber:client' type='chat'><displayed xmlns='urn:xmpp:chat-markers:0' id='x'/></message>",
            "<message xmlns='jabber:client' type='chat'><reactions xmlns='urn:xmpp:reactions:0' id='x'/></message>",
            "<message xmlns='jabber:client' type='chat'><retract xmlns='urn:xmpp:message-retract:1' id='x'/></message>",
            "<message xmlns='jabber:client' type='chat'><store xmlns='urn:xmpp:hints'/><active xmlns='http://jabber.org/protocol/chatstates'/></message>",
            "<message xmlns='jabber:client'><propose xmlns='urn:xmpp:jingle-message:0' id='c'/></message>",
        ];
        for xml in yes {
            assert!(is_archivable_chat(&parse(xml)), "{xml}");
        }
        let no = [
            "<message xmlns='jabber:client' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
            "<message xmlns='jabber:client' type='chat'><markable xmlns='urn:xmpp:chat-markers:0'/></message>",
            "<message xmlns='jabber:client' type='error'><body>bounced</body></message>",
            "<message xmlns='jabber:client' type='headline'><body>news</body></message>",
            "<message xmlns='jabber:client' type='groupchat'><body>room</body></message>",
            "<message xmlns='jabber:client' type='chat'><body>secret</body><no-store xmlns='urn:xmpp:hints'/></message>",
            "<message xmlns='jabber:client' type='chat'><body>x</body><no-permanent-store xmlns='urn:xmpp:hints'/></message>",
        ];
        for xml in no {
            assert!(!is_archivable_chat(&parse(xml)), "{xml}");
        }
    }

    #[test]
    fn only_foreign_stanza_ids_survive() {
        let mut m = parse(
            "<message xmlns='jabber:client'><body>x</body>\
             <stanza-id xmlns='urn:xmpp:sid:0' by='Romeo@Example.org' id='forged'/>\
             <stanza-id xmlns='urn:xmpp:sid:0' by='room@muc.example.net' id='theirs'/>\
             <stanza-id xmlns='urn:xmpp:sid:0' id='no-by'/>\
             <origin-id xmlns='urn:xmpp:sid:0' id='kept'/></message>",
        );
        let romeo = Jid::parse("romeo@example.org").expect("jid");
        strip_ids_by(&mut m, &romeo);
        stamp_id(&mut m, "romeo@example.org", "real");
        let ids: Vec<_> = m
            .children()
            .filter(|c| c.ns == NS_SID)
            .map(|c| (c.name.to_string(), c.attr("id").unwrap_or("").to_string()))
            .collect();
        assert_eq!(
            ids,
            [
                ("stanza-id".to_string(), "theirs".to_string()),
                ("origin-id".to_string(), "kept".to_string()),
                ("stanza-id".to_string(), "real".to_string()),
            ]
        );
    }
}
