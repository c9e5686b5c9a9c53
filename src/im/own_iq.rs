//! iqs about an account's instant messaging that its own resources address
//! to its bare JID (or to nothing): roster, blocking, carbons, push.

use crate::env::Env;
use crate::jid::Jid;
use crate::stanza;
use crate::xml::Element;

use super::blocking::NS_BLOCKING;
use super::carbons::NS_CARBONS;
use super::roster::NS_ROSTER;
use super::{blocking, carbons, roster_iq};

/// Handles `iq` if it belongs to one of these protocols; false otherwise.
pub fn dispatch(env: &Env, iq: &Element, account: &Jid) -> bool {
    let Some(payload) = iq.first_child() else {
        return false;
    };
    match payload.ns.as_ref() {
        NS_ROSTER if payload.name == "query" => roster_iq::handle(env, iq, account),
        NS_BLOCKING => answer(env, iq, blocking::handle_iq(env, iq, account), false),
        NS_CARBONS => answer(env, iq, carbons::handle_iq(env, iq, account), true),
        crate::push::NS_PUSH => return crate::push::handle_iq(env, iq, account),
        _ => return false,
    }
    true
}

/// Sends the error, or the empty result when the handler has not answered.
fn answer(env: &Env, iq: &Element, outcome: Result<(), stanza::StanzaError>, empty_result: bool) {
    let reply = match outcome {
        Ok(()) if empty_result => Some(stanza::iq_result(iq)),
        Ok(()) => None,
        Err(e) => stanza::error_reply(iq, &e),
    };
    if let Some(reply) = reply {
        env.reply_to_sender(reply);
    }
}
