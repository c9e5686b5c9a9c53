//! iqs about an account's instant messaging that its own resources address
//! to its bare JID (or to nothing): roster, blocking, carbons.

use crate::jid::Jid;
use crate::router;
use crate::server::Server;
use crate::stanza;
use crate::xml::Element;

use super::blocking::NS_BLOCKING;
use super::carbons::NS_CARBONS;
use super::roster::NS_ROSTER;
use super::{blocking, carbons, roster_iq};

/// Handles `iq` if it belongs to one of these protocols; false otherwise.
pub fn dispatch(server: &Server, iq: &Element, account: &Jid) -> bool {
    let Some(payload) = iq.first_child() else {
        return false;
    };
    match payload.ns.as_ref() {
        NS_ROSTER if payload.name == "query" => roster_iq::handle(server, iq, account),
        NS_BLOCKING => answer(server, iq, blocking::handle_iq(server, iq, account), false),
        NS_CARBONS => answer(server, iq, carbons::handle_iq(server, iq, account), true),
        _ => return false,
    }
    true
}

/// Sends the error, or the empty result when the handler has not answered.
fn answer(
    server: &Server,
    iq: &Element,
    outcome: Result<(), stanza::StanzaError>,
    empty_result: bool,
) {
    let reply = match outcome {
        Ok(()) if empty_result => Some(stanza::iq_result(iq)),
        Ok(()) => None,
        Err(e) => stanza::error_reply(iq, &e),
    };
    if let Some(reply) = reply {
        router::reply_to_sender(server, reply);
    }
}
