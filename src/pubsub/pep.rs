//! The personal eventing service (XEP-0163): every account's bare JID is a
//! pubsub service owned by the account. Its nodes are created by their
//! first publication; their notifications follow presence: the account's
//! own resources and the resources of contacts subscribed to its presence
//! get the events of the nodes their client names with `NODE+notify` in its
//! entity capabilities (XEP-0115), which the service learns by asking the
//! client once per capability set and verifying the answer.

use std::rc::Rc;

use crate::env::Env;
use crate::im;
use crate::im::caps::{self, Features};
use crate::im::session::SessionCaps;
use crate::jid::Jid;
use crate::session::Session;
use crate::stanza::StanzaError;
use crate::xml::{Element, NS_CLIENT};

use super::request::{self, Request};
use super::{NS_DISCO_INFO, ServiceRef, dispatch, engine, errors, notify, sync};

/// The id of the server's capability queries. Clients answer with it;
/// Prosody uses the same, and test scripts written against it expect it.
const DISCO_ID: &str = "disco";

/// Services that may wait for one client's answer at once; past that, the
/// first answer, which every service of the client's contacts acts on,
/// serves the others.
const MAX_PENDING_QUERIES: usize = 32;

/// An iq with a `<pubsub/>` payload addressed to `account`'s bare JID.
pub fn handle_iq(env: &Env, iq: Element, account: &Jid) {
    let set = match iq.attr("type") {
        Some("set") => true,
        Some("get") => false,
        _ => return,
    };
    let Some(requester) = iq.attr("from").and_then(|f| Jid::parse(f).ok()) else {
        return;
    };
    let Some(payload) = iq.first_child() else {
        return;
    };
    let request = match request::parse(payload, set) {
        Ok(r) => r,
        Err(e) => return env.bounce(&iq, e),
    };
    let owner = requester.bare_str() == account.bare_str();
    if !owner && !may_ask_others(&request) {
        // Only the account writes to its own service.
        return env.bounce(&iq, errors::forbidden());
    }
    let svc = ServiceRef::pep(account);
    let follow = sync::Follow::of(&request);
    if dispatch::handle(env, &svc, &iq, request, &requester) && owner {
        follow.run(env, account);
    }
}

/// What someone other than the account may ask of its PEP service.
fn may_ask_others(request: &Request) -> bool {
    matches!(
        request,
        Request::Items { .. }
            | Request::Subscribe { .. }
            | Request::Unsubscribe { .. }
            | Request::Options { .. }
            | Request::MySubscriptions { .. }
            | Request::MyAffiliations { .. }
    )
}

/// A client of the account sent available presence: remember the
/// capabilities it claims, before the presence is broadcast, so that
/// contacts' services see them; if it came online or changed them, the
/// account's own service asks what it wants (or sends it the last items)
/// first, before the presence is echoed, as clients expect.
pub fn own_presence(env: &Env, origin: &Session, presence: &Element) {
    let initial = !origin.is_available();
    let claim = caps::claim_of(presence);
    let changed = {
        let mut current = origin.im.caps.borrow_mut();
        let same = match (current.as_ref(), &claim) {
            (Some(c), Some(claim)) => c.claim == *claim,
            (None, None) => true,
            _ => false,
        };
        if !same {
            *current = claim.map(|claim| SessionCaps {
                features: env.pubsub.caps.get(&claim.ver),
                claim,
                asked_by: Vec::new(),
            });
        }
        !same
    };
    origin.im.pep_fresh.set(initial || changed);
    presence_seen(env, &origin.jid.to_bare(), origin);
}

/// After a client's available presence went out: the services of contacts
/// that received it have seen it.
pub fn after_own_presence(origin: &Session) {
    origin.im.pep_fresh.set(false);
}

/// Available presence from someone reached the local account `account`.
pub fn presence_received(env: &Env, presence: &Element, account: &Jid) {
    if presence.attr("type").is_some() {
        return;
    }
    let Some(from) = presence.attr("from").and_then(|f| Jid::parse(f).ok()) else {
        return;
    };
    if from.resource().is_none() || !env.is_local_host(from.domain()) {
        return;
    }
    if let Some(session) = env.session(&from) {
        presence_seen(env, account, &session);
    }
}

/// The service of `account` saw `session` come online or change its
/// capabilities: it sends the last items the client wants, or first asks
/// what the client wants.
fn presence_seen(env: &Env, account: &Jid, session: &Session) {
    if !session.im.pep_fresh.get() {
        return;
    }
    let node = {
        let mut caps = session.im.caps.borrow_mut();
        let Some(caps) = caps.as_mut() else {
            return;
        };
        if caps.features.is_some() {
            None
        } else if caps.asked_by.len() >= MAX_PENDING_QUERIES
            || caps.asked_by.iter().any(|a| **a == *account.as_str())
        {
            // Enough questions are out: the first answer serves them all.
            return;
        } else {
            caps.asked_by.push(account.as_str().into());
            Some(caps.claim.disco_node())
        }
    };
    match node {
        None => notify::last_items_on_presence(env, account, session),
        Some(node) => {
            let query = Element::new("iq", NS_CLIENT)
                .with_attr("type", "get")
                .with_attr("id", DISCO_ID)
                .with_attr("from", account.as_str())
                .with_attr("to", session.jid.as_str())
                .with_child(Element::new("query", NS_DISCO_INFO).with_attr("node", node));
            session.send(&query);
        }
    }
}

/// Whether `contact` is subscribed to `account`'s presence ('from' or
/// 'both' in its roster).
pub fn has_subscriber(env: &Env, account: &Jid, contact: &Jid) -> bool {
    env.account(account).is_ok_and(|state| {
        state
            .roster
            .borrow()
            .item(&contact.to_bare())
            .is_some_and(|item| item.subscription.has_from())
    })
}

/// `account` just approved `contact`'s presence subscription (XEP-0163 §4.3.2):
/// the contact's online resources get the last items they want of the
/// account's nodes, as on presence.
pub fn subscription_approved(env: &Env, account: &Jid, contact: &Jid) {
    let contact = contact.to_bare();
    if contact.local().is_none() || !env.is_local_host(contact.domain()) {
        return;
    }
    let account = account.clone();
    env.after_durable(Box::new(move |env: &Env| {
        for session in env.sessions_of(&contact) {
            if session.is_available() {
                notify::last_items_on_presence(env, &account, &session);
            }
        }
    }));
}

/// A client's answer to a capability query of `account`'s service.
/// Returns whether it was one.
pub fn caps_answer(env: &Env, iq: &Element, account: &Jid) -> bool {
    if iq.attr("id") != Some(DISCO_ID) || iq.attr("type") != Some("result") {
        return false;
    }
    let Some(query) = iq.get_child("query", NS_DISCO_INFO) else {
        return false;
    };
    let Some(from) = iq.attr("from").and_then(|f| Jid::parse(f).ok()) else {
        return true;
    };
    let Some(session) = env.session(&from) else {
        return true;
    };
    let learned = {
        let mut current = session.im.caps.borrow_mut();
        let Some(caps) = current.as_mut() else {
            return true;
        };
        if query.attr("node") != Some(caps.claim.disco_node().as_str()) {
            return true;
        }
        // Only answers to a question this service asked count: a client
        // cannot make services re-send their items at will.
        let Some(asked) = caps.asked_by.iter().position(|a| **a == *account.as_str()) else {
            return true;
        };
        caps.asked_by.swap_remove(asked);
        match &caps.features {
            Some(_) => false,
            None => {
                if !caps::verifies(query, &caps.claim) {
                    log::debug!("{from}: capabilities do not match their hash; ignored");
                    return true;
                }
                let features: Rc<Features> = Rc::new(notify_features(query));
                env.pubsub
                    .caps
                    .insert(caps.claim.ver.clone(), features.clone());
                caps.features = Some(features);
                true
            }
        }
    };
    // The asking service sends what the client wants. When this answer is
    // the first to tell what the client wants, so do the other services
    // whose events it gets (its own account's, and its contacts'): one
    // of them may have published while the question was out.
    let mut services = vec![account.clone()];
    if learned {
        let own = session.jid.to_bare();
        for contact in std::iter::once(own.clone()).chain(im::broadcast::publishers(env, &own)) {
            if contact.local().is_some()
                && env.is_local_host(contact.domain())
                && !services.contains(&contact)
            {
                services.push(contact);
            }
        }
    }
    // Read once every write submitted so far is on disk: a publication
    // another client made a moment ago is then among the last items.
    let session = session.clone();
    env.after_durable(Box::new(move |env: &Env| {
        for service in &services {
            notify::last_items_on_presence(env, service, &session);
        }
    }));
    true
}

/// Features the services need of a verified answer: only the `+notify`
/// ones, bounded, so each remembered set stays small whatever a client
/// lists (a thousand sets are kept).
fn notify_features(query: &Element) -> Features {
    const MAX_NOTIFY: usize = 256;
    const MAX_VAR_BYTES: usize = 512;
    Features::from_vars(
        query
            .children()
            .filter(|c| c.is("feature", NS_DISCO_INFO))
            .filter_map(|c| c.attr("var"))
            .filter(|v| v.ends_with("+notify") && v.len() <= MAX_VAR_BYTES)
            .take(MAX_NOTIFY),
    )
}

/// disco#items of an account (XEP-0060 §5.2 and §5.5).
pub fn disco_items(
    env: &Env,
    account: &Jid,
    requester: &Jid,
    node: Option<&str>,
) -> Result<Element, StanzaError> {
    engine::disco_items(env, &ServiceRef::pep(account), requester, node)
}
