//! What happens to a message for an account with no available resource.
//! RFC 6121 §8.5.2.2.1 allows storing it or refusing it; until offline
//! storage exists, chat and normal messages are refused so the sender knows.

use crate::jid::Jid;
use crate::router;
use crate::server::Server;
use crate::stanza::{Condition, StanzaError};
use crate::xml::Element;

pub fn no_resource_available(server: &Server, stanza: Element, _account: &Jid) {
    match stanza.attr("type").unwrap_or("normal") {
        "normal" | "chat" => router::bounce(
            server,
            &stanza,
            StanzaError::new(Condition::ServiceUnavailable),
        ),
        // headline: dropped (RFC 6121 §8.5.2.2.1); error/groupchat are
        // filtered before this point.
        _ => {}
    }
}
