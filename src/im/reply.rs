//! Answering an iq once a handler has decided: a result (with or without
//! payload) or the stanza error, routed back to the requester.

use crate::env::Env;
use crate::stanza::{self, StanzaError};
use crate::xml::Element;

/// The reply to `iq` for `outcome`; `None` when there must be none (an
/// error about an error).
pub fn reply_for(iq: &Element, outcome: Result<Option<Element>, StanzaError>) -> Option<Element> {
    match outcome {
        Ok(payload) => {
            let mut reply = stanza::iq_result(iq);
            if let Some(p) = payload {
                reply.push_child(p);
            }
            Some(reply)
        }
        Err(error) => stanza::error_reply(iq, &error),
    }
}

/// Sends the reply to `iq` for `outcome` to the requester.
pub fn answer(env: &Env, iq: &Element, outcome: Result<Option<Element>, StanzaError>) {
    if let Some(reply) = reply_for(iq, outcome) {
        env.reply_to_sender(reply);
    }
}

/// The JID in the iq's (server-stamped) `from`.
pub fn requester(iq: &Element) -> Option<crate::jid::Jid> {
    iq.attr("from").and_then(|f| crate::jid::Jid::parse(f).ok())
}
