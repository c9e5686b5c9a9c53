//! Remote domains: every domain the route table does not hold. They will
//! be reached over server-to-server links (federation); this is where a
//! stanza for one is handed to its link, and queued while the link
//! connects. Until federation exists, each is out of reach and a stanza
//! to one is answered with `remote-server-not-found`.

use crate::env::Env;
use crate::jid::Jid;
use crate::stanza::{Condition, Kind, StanzaError};
use crate::xml::Element;

/// Sends `stanza` towards the remote domain of `to`.
pub(super) fn send(env: &Env, stanza: Element, to: &Jid) {
    if is_probe(&stanza) {
        // A probe is the server's own question; an error about it would
        // reach the user's clients as noise (RFC 6121 §4.3).
        return;
    }
    env.bounce(
        &stanza,
        StanzaError::new(Condition::RemoteServerNotFound)
            .with_text(format!("{} is not reachable from this server", to.domain())),
    );
}

fn is_probe(stanza: &Element) -> bool {
    Kind::of(stanza) == Some(Kind::Presence) && stanza.attr("type") == Some("probe")
}
