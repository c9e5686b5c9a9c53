//! The pubsub service at a domain of its own (`pubsub.<domain>`, XEP-0060):
//! a route table entry. Nodes are created by whom `[pubsub] create_nodes`
//! allows; the engine is the one PEP uses.

use crate::env::{Env, Service};
use crate::jid::Jid;
use crate::stanza::{self, Condition, Kind, StanzaError};
use crate::xml::Element;

use super::{
    NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PUBSUB, NS_PUBSUB_OWNER, ServiceRef, dispatch, engine,
    errors, node, request,
};

const NS_PING: &str = "urn:xmpp:ping";

/// What the service offers (XEP-0060 §10), for disco#info.
pub const SERVICE_FEATURES: &[&str] = &[
    "http://jabber.org/protocol/pubsub#access-open",
    "http://jabber.org/protocol/pubsub#access-presence",
    "http://jabber.org/protocol/pubsub#access-roster",
    "http://jabber.org/protocol/pubsub#access-whitelist",
    "http://jabber.org/protocol/pubsub#config-node",
    "http://jabber.org/protocol/pubsub#create-and-configure",
    "http://jabber.org/protocol/pubsub#create-nodes",
    "http://jabber.org/protocol/pubsub#delete-items",
    "http://jabber.org/protocol/pubsub#delete-nodes",
    "http://jabber.org/protocol/pubsub#instant-nodes",
    "http://jabber.org/protocol/pubsub#item-ids",
    "http://jabber.org/protocol/pubsub#last-published",
    "http://jabber.org/protocol/pubsub#manage-subscriptions",
    "http://jabber.org/protocol/pubsub#modify-affiliations",
    "http://jabber.org/protocol/pubsub#multi-items",
    "http://jabber.org/protocol/pubsub#outcast-affiliation",
    "http://jabber.org/protocol/pubsub#persistent-items",
    "http://jabber.org/protocol/pubsub#publish",
    "http://jabber.org/protocol/pubsub#publish-options",
    "http://jabber.org/protocol/pubsub#publisher-affiliation",
    "http://jabber.org/protocol/pubsub#purge-nodes",
    "http://jabber.org/protocol/pubsub#retract-items",
    "http://jabber.org/protocol/pubsub#retrieve-affiliations",
    "http://jabber.org/protocol/pubsub#retrieve-default",
    "http://jabber.org/protocol/pubsub#retrieve-items",
    "http://jabber.org/protocol/pubsub#retrieve-subscriptions",
    "http://jabber.org/protocol/pubsub#subscribe",
];

/// The pubsub service; one serves every configured pubsub domain.
pub struct PubsubService;

impl Service for PubsubService {
    fn name(&self) -> &str {
        "Publish-Subscribe"
    }

    fn handle(&self, env: &Env, stanza: Element, to: &Jid) {
        match Kind::of(&stanza) {
            Some(Kind::Iq) => iq(env, &stanza, to),
            Some(Kind::Message) if stanza.attr("type") != Some("error") => env.bounce(
                &stanza,
                StanzaError::new(Condition::ServiceUnavailable).with_by(to.domain()),
            ),
            _ => {}
        }
    }
}

fn iq(env: &Env, iq: &Element, to: &Jid) {
    let set = match iq.attr("type") {
        Some("set") => true,
        Some("get") => false,
        _ => return,
    };
    let Some(requester) = iq.attr("from").and_then(|f| Jid::parse(f).ok()) else {
        return;
    };
    if to.local().is_some() || to.resource().is_some() {
        return env.bounce(iq, StanzaError::new(Condition::ServiceUnavailable));
    }
    let svc = ServiceRef::domain(to.domain());
    let Some(payload) = iq.first_child() else {
        return env.bounce(iq, errors::bad_request("an empty iq"));
    };
    if payload.ns == NS_PUBSUB || payload.ns == NS_PUBSUB_OWNER {
        match request::parse(payload, set) {
            Ok(request) => {
                dispatch::handle(env, &svc, iq, request, &requester);
            }
            Err(e) => env.bounce(iq, e),
        }
        return;
    }
    let answer = match (payload.ns.as_ref(), payload.name.as_ref(), set) {
        (NS_DISCO_INFO, "query", false) => info(env, &svc, &requester, payload.attr("node")),
        (NS_DISCO_ITEMS, "query", false) => {
            engine::disco_items(env, &svc, &requester, payload.attr("node")).map(Some)
        }
        (NS_PING, "ping", false) => Ok(None),
        _ => Err(StanzaError::new(Condition::ServiceUnavailable)),
    };
    match answer {
        Ok(payload) => {
            let mut reply = stanza::iq_result(iq);
            if let Some(p) = payload {
                reply.push_child(p);
            }
            env.reply_to_sender(reply);
        }
        Err(e) => env.bounce(iq, e),
    }
}

fn identity(category: &str, kind: &str) -> Element {
    Element::new("identity", NS_DISCO_INFO)
        .with_attr("category", category)
        .with_attr("type", kind)
}

fn feature(var: &str) -> Element {
    Element::new("feature", NS_DISCO_INFO).with_attr("var", var)
}

/// §5.1 (the service) and §5.3 (a node).
fn info(
    env: &Env,
    svc: &ServiceRef,
    requester: &Jid,
    node: Option<&str>,
) -> Result<Option<Element>, StanzaError> {
    let mut query = Element::new("query", NS_DISCO_INFO);
    match node {
        None => {
            query.push_child(identity("pubsub", "service").with_attr("name", "Publish-Subscribe"));
            for f in [NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PING, NS_PUBSUB] {
                query.push_child(feature(f));
            }
            for f in SERVICE_FEATURES {
                query.push_child(feature(f));
            }
        }
        Some(name) => {
            let n = node::existing(env, svc, name)?;
            n.check_access(env, svc, requester)?;
            query.set_attr("node", name);
            query.push_child(identity("pubsub", "leaf"));
            query.push_child(feature(NS_PUBSUB));
        }
    }
    Ok(Some(query))
}
