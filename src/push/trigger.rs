//! Which messages wake a phone (XEP-0357 leaves it to the server): the
//! ones a person would want to know about while the app sleeps, decided
//! from the stanza alone. A message with text, an encrypted one (OMEMO),
//! a call (XEP-0353 `<propose/>`), and in a room only a message that
//! mentions the user's nickname; not chat states, receipts, markers,
//! errors or headlines. What the notification may tell is decided here too
//! ([`Summary`]), within what the configuration allows.

use crate::config::PushConfig;
use crate::xml::{Element, NS_CLIENT};

/// OMEMO (XEP-0384), the version Conversations and most clients speak and
/// the current one.
const NS_OMEMO_LEGACY: &str = "eu.siacs.conversations.axolotl";
const NS_OMEMO: &str = "urn:xmpp:omemo:2";
/// Jingle Message Initiation (XEP-0353): a call is being proposed.
const NS_JINGLE_MESSAGE: &str = "urn:xmpp:jingle-message:0";

/// Why a message deserves a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Text,
    Encrypted,
    Call,
    /// A room message naming the user's nickname.
    Mention,
}

/// What one notification may say beyond "something arrived".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// `last-message-sender`: the `from` of the message.
    pub sender: Option<String>,
    /// `last-message-body`: never the fallback text of an encrypted
    /// message.
    pub body: Option<String>,
}

/// Whether `message`, arriving for an account none of whose clients is
/// connected, deserves a notification. `room_nick` is the nickname the
/// account's sleeping session uses in the room a groupchat message comes
/// from (`None`: not in that room, or not a room message).
pub fn reason(message: &Element, room_nick: Option<&str>) -> Option<Reason> {
    let body = body_text(message);
    match message.attr("type").unwrap_or("normal") {
        "error" | "headline" => None,
        "groupchat" => {
            let nick = room_nick.filter(|n| !n.trim().is_empty())?;
            // A room's own messages (subject, status) come from its bare JID.
            body.filter(|b| mentions(b, nick)).map(|_| Reason::Mention)
        }
        _ => {
            if is_encrypted(message) {
                Some(Reason::Encrypted)
            } else if message
                .children()
                .any(|c| c.is("propose", NS_JINGLE_MESSAGE))
            {
                Some(Reason::Call)
            } else if body.is_some_and(|b| !b.trim().is_empty()) {
                Some(Reason::Text)
            } else {
                None
            }
        }
    }
}

/// What the notification for `message` may tell, given why it is sent.
pub fn summary(message: &Element, reason: Reason, config: &PushConfig) -> Summary {
    Summary {
        sender: config
            .include_sender
            .then(|| message.attr("from").map(str::to_string))
            .flatten(),
        body: (config.include_body && reason != Reason::Encrypted)
            .then(|| body_text(message))
            .flatten(),
    }
}

fn is_encrypted(message: &Element) -> bool {
    message
        .children()
        .any(|c| c.is("encrypted", NS_OMEMO_LEGACY) || c.is("encrypted", NS_OMEMO))
}

fn body_text(message: &Element) -> Option<String> {
    message.get_child("body", NS_CLIENT).map(Element::text)
}

/// Whether `body` names `nick`, as a word of its own (case-insensitive):
/// "anna" is mentioned in "Anna: lunch?" but not in "Annabel".
fn mentions(body: &str, nick: &str) -> bool {
    let body = body.to_lowercase();
    let nick = nick.to_lowercase();
    let is_word_char = |c: char| c.is_alphanumeric() || c == '_';
    body.match_indices(&nick).any(|(at, _)| {
        let before = body[..at].chars().next_back();
        let after = body[at + nick.len()..].chars().next();
        !before.is_some_and(is_word_char) && !after.is_some_and(is_word_char)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(attrs: &str, inner: &str) -> Element {
        Element::parse(&format!(
            "<message xmlns='jabber:client' from='juliet@capulet.lit/balcony' {attrs}>{inner}</message>"
        ))
        .expect("xml")
    }

    #[test]
    fn text_encryption_and_calls_push_in_chats() {
        assert_eq!(
            reason(&message("type='chat'", "<body>hi</body>"), None),
            Some(Reason::Text)
        );
        assert_eq!(
            reason(&message("", "<body>hi</body>"), None),
            Some(Reason::Text)
        );
        assert_eq!(
            reason(
                &message(
                    "type='chat'",
                    "<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'/></encrypted>\
                     <body>I sent you an OMEMO encrypted message</body>"
                ),
                None
            ),
            Some(Reason::Encrypted)
        );
        assert_eq!(
            reason(
                &message("type='chat'", "<encrypted xmlns='urn:xmpp:omemo:2'/>"),
                None
            ),
            Some(Reason::Encrypted)
        );
        assert_eq!(
            reason(
                &message(
                    "type='chat'",
                    "<propose xmlns='urn:xmpp:jingle-message:0' id='c1'/>"
                ),
                None
            ),
            Some(Reason::Call)
        );
    }

    #[test]
    fn the_rest_does_not_push() {
        for (attrs, inner) in [
            (
                "type='chat'",
                "<composing xmlns='http://jabber.org/protocol/chatstates'/>",
            ),
            (
                "type='chat'",
                "<received xmlns='urn:xmpp:receipts' id='1'/>",
            ),
            ("type='chat'", "<body>  </body>"),
            ("type='error'", "<body>bounced</body>"),
            ("type='headline'", "<body>news</body>"),
            (
                "type='chat'",
                "<retract xmlns='urn:xmpp:jingle-message:0' id='c1'/>",
            ),
        ] {
            assert_eq!(reason(&message(attrs, inner), None), None, "{inner}");
        }
    }

    #[test]
    fn in_rooms_only_mentions_push() {
        let said = |body: &str| message("type='groupchat'", &format!("<body>{body}</body>"));
        assert_eq!(
            reason(&said("Romeo: are you there?"), Some("romeo")),
            Some(Reason::Mention)
        );
        assert_eq!(
            reason(&said("where is romeo?"), Some("Romeo")),
            Some(Reason::Mention)
        );
        assert_eq!(reason(&said("hello everyone"), Some("Romeo")), None);
        assert_eq!(reason(&said("Romeos everywhere"), Some("Romeo")), None);
        assert_eq!(reason(&said("Romeo: hi"), None), None, "not in the room");
        assert_eq!(reason(&said("anything"), Some(" ")), None);
        let encrypted = message("type='groupchat'", "<encrypted xmlns='urn:xmpp:omemo:2'/>");
        assert_eq!(reason(&encrypted, Some("Romeo")), None);
    }

    #[test]
    fn the_summary_tells_only_what_is_allowed() {
        let chat = message("type='chat'", "<body>Wherefore art thou, Romeo?</body>");
        let quiet = PushConfig::default();
        assert_eq!(summary(&chat, Reason::Text, &quiet), Summary::default());
        let open = PushConfig {
            include_sender: true,
            include_body: true,
            ..PushConfig::default()
        };
        assert_eq!(
            summary(&chat, Reason::Text, &open),
            Summary {
                sender: Some("juliet@capulet.lit/balcony".into()),
                body: Some("Wherefore art thou, Romeo?".into()),
            }
        );
        let omemo = message(
            "type='chat'",
            "<encrypted xmlns='eu.siacs.conversations.axolotl'/><body>fallback</body>",
        );
        assert_eq!(summary(&omemo, Reason::Encrypted, &open).body, None);
    }
}
