//! Event notifications (XEP-0060 §7.1.2, §7.2.2, §8.4.2, §8.5.2): who
//! receives them and what they look like. A node's explicit subscribers
//! get every event; on a PEP service (XEP-0163 §4.3) the account's own
//! resources and its contacts' resources get those of the nodes their
//! client asked for with `NODE+notify` in its entity capabilities, if the
//! node's access model lets them in. The last item also goes to a new
//! subscriber and, on PEP, to a resource that comes online.

use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::env::Env;
use crate::im;
use crate::jid::Jid;
use crate::session::Session;
use crate::store::pubsub::StoredItem;
use crate::xml::{Element, NS_CLIENT};

use super::config::{NodeConfig, NotificationType, SendLastPublished};
use super::node::Node;
use super::{NS_PUBSUB_EVENT, ServiceRef};

/// An `<item/>` in namespace `ns` (the event's or the retrieval's).
pub fn item_element(ns: &str, item: &StoredItem, publisher: bool, payload: bool) -> Element {
    let mut el = Element::new("item", ns.to_string()).with_attr("id", item.id.as_str());
    if publisher && !item.publisher.is_empty() {
        el.set_attr("publisher", item.publisher.as_str());
    }
    if payload && !item.payload.is_empty() {
        match Element::parse(&item.payload) {
            Ok(p) => el.push_child(p),
            Err(e) => log::error!("stored pubsub item {}: {e}", item.id),
        }
    }
    el
}

/// Whether items of this service carry their publisher.
pub fn shows_publisher(env: &Env, svc: &ServiceRef) -> bool {
    !svc.is_pep() && env.config.pubsub.expose_publisher
}

/// `<items node><item/></items>` announcing `item`.
pub fn items_event(env: &Env, svc: &ServiceRef, node: &Node, item: &StoredItem) -> Element {
    Element::new("items", NS_PUBSUB_EVENT)
        .with_attr("node", node.name.as_str())
        .with_child(item_element(
            NS_PUBSUB_EVENT,
            item,
            shows_publisher(env, svc),
            node.config.deliver_payloads,
        ))
}

/// [`items_event`] for an item just published, whose payload is at hand:
/// it is not parsed back from its stored text.
pub fn published_event(
    env: &Env,
    svc: &ServiceRef,
    node: &Node,
    item: &StoredItem,
    payload: Option<Element>,
) -> Element {
    let without_payload = StoredItem {
        payload: String::new(),
        ..item.clone()
    };
    let mut el = item_element(
        NS_PUBSUB_EVENT,
        &without_payload,
        shows_publisher(env, svc),
        false,
    );
    if let Some(p) = payload.filter(|_| node.config.deliver_payloads) {
        el.push_child(p);
    }
    Element::new("items", NS_PUBSUB_EVENT)
        .with_attr("node", node.name.as_str())
        .with_child(el)
}

/// `<items node><retract id/>…</items>`.
pub fn retract_event(node: &str, ids: &[String]) -> Element {
    let mut items = Element::new("items", NS_PUBSUB_EVENT).with_attr("node", node);
    for id in ids {
        items.push_child(Element::new("retract", NS_PUBSUB_EVENT).with_attr("id", id.as_str()));
    }
    items
}

fn message(env: &Env, svc: &ServiceRef, config: &NodeConfig, event_child: Element) -> Element {
    let ty = match config.notification_type {
        NotificationType::Headline => "headline",
        NotificationType::Normal => "normal",
    };
    Element::new("message", NS_CLIENT)
        .with_attr("from", svc.jid)
        .with_attr("type", ty)
        .with_attr("id", env.new_id())
        .with_child(Element::new("event", NS_PUBSUB_EVENT).with_child(event_child))
}

/// Sends an event about `node` to everyone who should get it.
pub fn broadcast(env: &Env, svc: &ServiceRef, node: &Node, event_child: Element) {
    if !node.config.deliver_notifications {
        return;
    }
    let mut stanza = message(env, svc, &node.config, event_child);
    let prepared = svc.account.map(|_| stanza.prepare_with_to(NS_CLIENT));
    // Explicit subscriptions (§6.1): to the JID as subscribed.
    let mut reached: Vec<Jid> = Vec::new();
    for sub in &node.record.subscriptions {
        let Ok(to) = Jid::parse(&sub.jid) else {
            continue;
        };
        if node.check_access(env, svc, &to).is_err() || blocked(env, svc, &to) {
            continue;
        }
        stanza.set_attr("to", to.as_str());
        env.deliver(stanza.clone(), &to);
        reached.push(to);
    }
    if let (Some(account), Some(prepared)) = (svc.account, prepared) {
        // Serialized once above (without `to`); each copy only gets its own.
        for session in interested_sessions(env, svc, account, node) {
            // A full JID subscribed explicitly has its copy already, and a
            // bare JID's copy went to every resource of it.
            if reached.iter().any(|r| {
                *r == session.jid || (r.is_bare() && r.bare_str() == session.jid.bare_str())
            }) {
                continue;
            }
            env.hold
                .send_prepared(&session.outbox, &prepared, session.jid.as_str());
        }
    }
}

/// XEP-0163 §4.3: the available resources of the account and of its
/// presence subscribers whose clients want this node's events and whom
/// the access model admits.
fn interested_sessions(
    env: &Env,
    svc: &ServiceRef,
    account: &Jid,
    node: &Node,
) -> Vec<Rc<Session>> {
    let mut out: Vec<Rc<Session>> = env
        .sessions_of(account)
        .into_iter()
        .filter(|s| s.is_available() && wants(s, &node.name))
        .collect();
    let contacts = im::broadcast::subscribers(env, account);
    for contact in contacts {
        if contact.local().is_none() || !env.is_local_host(contact.domain()) {
            continue;
        }
        let sessions: Vec<Rc<Session>> = env
            .sessions_of(&contact)
            .into_iter()
            .filter(|s| s.is_available() && wants(s, &node.name))
            .collect();
        if sessions.is_empty()
            || node.check_access(env, svc, &contact).is_err()
            || blocked(env, svc, &contact)
        {
            continue;
        }
        out.extend(sessions);
    }
    out
}

/// Whether a PEP account and `who` block each other either way
/// (XEP-0191: no events in either direction).
fn blocked(env: &Env, svc: &ServiceRef, who: &Jid) -> bool {
    let Some(account) = svc.account else {
        return false;
    };
    if im::broadcast::blocks(env, account, who) {
        return true;
    }
    let bare = who.to_bare();
    who.local().is_some()
        && env.is_local_host(who.domain())
        && bare != *account
        && im::broadcast::blocks(env, &bare, account)
}

/// Whether the session's client asked for `node`'s events (XEP-0115).
pub fn wants(session: &Session, node: &str) -> bool {
    session
        .im
        .caps
        .borrow()
        .as_ref()
        .and_then(|c| c.features.as_ref())
        .is_some_and(|f| f.wants_notify(node))
}

/// The moment an item was published, from its stamp (µs since 1970).
fn published_at(item: &StoredItem) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(item.stamp)
}

/// Sends the node's newest item to `to` (§6.1.7, XEP-0163 §4.3.2), marked
/// with when it was published (XEP-0203).
pub fn send_last_item(env: &Env, svc: &ServiceRef, node: &Node, to: &Jid) {
    let last = match env.store.pubsub().last_item(svc.jid, &node.name) {
        Ok(Some(item)) => item,
        Ok(None) => return,
        Err(e) => {
            log::error!(
                "reading the last item of {:?} at {}: {e}",
                node.name,
                svc.jid
            );
            return;
        }
    };
    let mut stanza = message(env, svc, &node.config, items_event(env, svc, node, &last))
        .with_attr("to", to.as_str());
    stanza.push_child(im::delay::element(svc.jid, published_at(&last), None));
    env.deliver(stanza, to);
}

/// On PEP, a resource of the account or of a contact came online or
/// changed capabilities: it gets the last item of each node it wants and
/// may see, where the node sends it on presence.
pub fn last_items_on_presence(env: &Env, account: &Jid, session: &Session) {
    let svc = ServiceRef::pep(account);
    let nodes = match env.store.pubsub().nodes(account.as_str()) {
        Ok(nodes) => nodes,
        Err(e) => {
            log::error!("reading the PEP nodes of {account}: {e}");
            return;
        }
    };
    for (name, record) in nodes {
        if !wants(session, &name) {
            continue;
        }
        let Ok(config) = NodeConfig::decode(&record.config) else {
            continue;
        };
        if config.send_last_published_item != SendLastPublished::OnSubAndPresence {
            continue;
        }
        let node = Node {
            name,
            record,
            config,
        };
        if node.check_access(env, &svc, &session.jid).is_ok() && !blocked(env, &svc, &session.jid) {
            send_last_item(env, &svc, &node, &session.jid);
        }
    }
}
