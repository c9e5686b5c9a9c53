//! A request handed to the part of the engine that answers it, and the
//! answer sent back: the user requests of XEP-0060 §6–§7 in `engine`, the
//! owner's of §8 in `owner`.

use crate::env::Env;
use crate::jid::Jid;
use crate::stanza::{self, StanzaError};
use crate::xml::Element;

use super::answer::Answer;
use super::request::Request;
use super::{ServiceRef, engine, errors, owner};

/// Handles `request`, which came in `iq` from `requester`, and answers it.
/// Returns whether it succeeded.
pub fn handle(
    env: &Env,
    svc: &ServiceRef,
    iq: &Element,
    request: Request,
    requester: &Jid,
) -> bool {
    match run(env, svc, request, requester) {
        Ok(answer) => {
            let mut reply = stanza::iq_result(iq);
            if let Some(payload) = answer.payload {
                reply.push_child(payload);
            }
            env.reply_to_sender(reply);
            if let Some(then) = answer.then {
                then(env);
            }
            true
        }
        Err(e) => {
            env.bounce(iq, e);
            false
        }
    }
}

pub fn run(
    env: &Env,
    svc: &ServiceRef,
    request: Request,
    requester: &Jid,
) -> Result<Answer, StanzaError> {
    match request {
        Request::Publish {
            node,
            id,
            payload,
            options,
        } => engine::publish(env, svc, requester, node, id, payload, options.as_ref()),
        Request::Retract { node, ids, notify } => {
            engine::retract(env, svc, requester, &node, ids, notify)
        }
        Request::Items { node, max, ids } => engine::items(env, svc, requester, &node, max, &ids),
        Request::Subscribe { node, jid } => engine::subscribe(env, svc, requester, &node, &jid),
        Request::Unsubscribe { node, jid, subid } => {
            engine::unsubscribe(env, svc, requester, &node, &jid, subid.as_deref())
        }
        Request::Options { .. } => Err(errors::unsupported("subscription-options")),
        Request::MySubscriptions { node } => engine::my_subscriptions(env, svc, requester, node),
        Request::MyAffiliations { node } => engine::my_affiliations(env, svc, requester, node),
        other => owner::run(env, svc, other, requester),
    }
}
