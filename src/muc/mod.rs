//! The multi-user chat service (XEP-0045), one per host that has a MUC
//! domain (`conference.<domain>` by default).
//!
//! Not implemented yet: every stanza to a MUC domain is refused with
//! `service-unavailable`, which tells clients the rooms are not there.

use crate::jid::Jid;
use crate::router;
use crate::server::Server;
use crate::stanza::{Condition, StanzaError};
use crate::xml::Element;

pub fn handle(server: &Server, stanza: Element, _to: &Jid) {
    router::bounce(
        server,
        &stanza,
        StanzaError::new(Condition::ServiceUnavailable),
    );
}
