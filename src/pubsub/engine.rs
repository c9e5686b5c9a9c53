//! The requests of XEP-0060 §6–§7 that any entity makes of a node:
//! publish (with auto-create and publish-options), retract, retrieve items,
//! subscribe, unsubscribe, and one's own subscriptions and affiliations.
//! The owner's requests are in `owner`. The same code serves PEP and the
//! pubsub service; [`ServiceRef`] says which.

use crate::env::{Continuation, Env};
use crate::jid::Jid;
use crate::stanza::{Condition, StanzaError};
use crate::store::StoreError;
use crate::store::pubsub::{self as stored, StoredItem, Subscription};
use crate::xml::Element;

use super::answer::Answer;
use super::config::{NodeConfig, SendLastPublished};
use super::node::{self, Node};
use super::policy::{
    check_node_count, check_offered, config_error, kept_items, max_nodes, may_create,
};
use super::{NS_DISCO_ITEMS, NS_PUBSUB, ServiceRef, errors, notify};

/// §7.1.
pub fn publish(
    env: &Env,
    svc: &ServiceRef,
    requester: &Jid,
    name: String,
    id: Option<String>,
    payload: Option<Element>,
    options: Option<&crate::forms::Form>,
) -> Result<Answer, StanzaError> {
    let limits = &env.config.pubsub;
    let payload_xml = match &payload {
        Some(p) => String::from_utf8_lossy(&p.to_bytes("")).into_owned(),
        None => String::new(),
    };
    if payload_xml.len() > limits.max_item_bytes {
        return Err(errors::not_acceptable(&format!(
            "an item's payload is at most {} bytes",
            limits.max_item_bytes
        ))
        .with_app(errors::PAYLOAD_TOO_BIG));
    }
    check_rate(env, requester)?;
    let limit = limits.max_items;
    let (node, create) = match node::load(env, svc, &name)? {
        Some(node) => {
            node.check_publish(svc, requester)?;
            if let Some(form) = options {
                node.config
                    .check_preconditions(form, limit)
                    .map_err(config_error)?;
            }
            (node, None)
        }
        None => {
            // §7.1.4: the node is created by its first publication.
            if !may_create(env, svc, requester) {
                return Err(errors::item_not_found());
            }
            let mut config = svc.default_config();
            if let Some(form) = options {
                config =
                    NodeConfig::from_publish_options(config, form, limit).map_err(config_error)?;
            }
            check_offered(&config)?;
            check_node_count(env, svc)?;
            let node = Node::new(name, config, requester);
            let record = node.to_record();
            (node, Some((record, max_nodes(env, svc))))
        }
    };
    if payload.is_none() && (node.config.persist_items || node.config.deliver_payloads) {
        // §7.1.3.6: a node that keeps or delivers payloads needs one.
        return Err(
            errors::bad_request("the item needs a payload").with_app(errors::PAYLOAD_REQUIRED)
        );
    }
    let item = StoredItem {
        id: id.unwrap_or_else(|| env.new_id()),
        stamp: env.archive.ids.next_stamp(env.now()),
        publisher: requester.bare_str().to_string(),
        payload: payload_xml,
    };
    svc.persist(
        env,
        stored::publish_op(
            svc.jid,
            &node.name,
            item.clone(),
            kept_items(env, &node.config),
            create,
        ),
    );
    let event = notify::published_event(env, svc, &node, &item, payload);
    notify::broadcast(env, svc, &node, event);
    Ok(Answer::with(
        Element::new("pubsub", NS_PUBSUB).with_child(
            Element::new("publish", NS_PUBSUB)
                .with_attr("node", node.name.as_str())
                .with_child(Element::new("item", NS_PUBSUB).with_attr("id", item.id.as_str())),
        ),
    ))
}

/// `[pubsub] publish_per_minute`, per account (or per remote entity's
/// domain: all of a remote server's users share one bucket).
fn check_rate(env: &Env, requester: &Jid) -> Result<(), StanzaError> {
    let per_minute = env.config.pubsub.publish_per_minute;
    if env.pubsub.allow_publish(requester, per_minute, env.clock()) {
        Ok(())
    } else {
        Err(StanzaError::new(Condition::PolicyViolation)
            .with_type(crate::stanza::ErrorType::Wait)
            .with_text(format!(
                "at most {per_minute} publications a minute; wait a moment"
            )))
    }
}

/// §7.2.
pub fn retract(
    env: &Env,
    svc: &ServiceRef,
    requester: &Jid,
    name: &str,
    ids: Vec<String>,
    notify: Option<bool>,
) -> Result<Answer, StanzaError> {
    let node = node::existing(env, svc, name)?;
    if !node.may_retract(svc, requester) {
        return Err(errors::forbidden());
    }
    let mut present = Vec::with_capacity(ids.len());
    for id in ids {
        let found = env.store.pubsub().item(svc.jid, name, &id).map_err(|e| {
            log::error!("reading item {id:?} of {name:?} at {}: {e}", svc.jid);
            errors::internal()
        })?;
        if found.is_some() {
            present.push(id);
        }
    }
    if present.is_empty() {
        // §7.2.3.5.
        return Err(errors::item_not_found());
    }
    svc.persist(env, stored::retract_op(svc.jid, name, present.clone()));
    if notify.unwrap_or(node.config.notify_retract) {
        notify::broadcast(env, svc, &node, notify::retract_event(name, &present));
    }
    Ok(Answer::empty())
}

/// §6.5.
pub fn items(
    env: &Env,
    svc: &ServiceRef,
    requester: &Jid,
    name: &str,
    max: Option<usize>,
    ids: &[String],
) -> Result<Answer, StanzaError> {
    let node = node::existing(env, svc, name)?;
    node.check_access(env, svc, requester)?;
    let mut stored = env.store.pubsub().items(svc.jid, name).map_err(|e| {
        log::error!("reading the items of {name:?} at {}: {e}", svc.jid);
        errors::internal()
    })?;
    if !ids.is_empty() {
        stored.retain(|item| ids.contains(&item.id));
    } else if let Some(max) = max {
        // §6.5.7: the most recent ones.
        let skip = stored.len().saturating_sub(max);
        stored.drain(..skip);
    }
    let publisher = notify::shows_publisher(env, svc);
    let mut items = Element::new("items", NS_PUBSUB).with_attr("node", name);
    for item in &stored {
        items.push_child(notify::item_element(NS_PUBSUB, item, publisher, true));
    }
    Ok(Answer::with(
        Element::new("pubsub", NS_PUBSUB).with_child(items),
    ))
}

/// §6.1.
pub fn subscribe(
    env: &Env,
    svc: &ServiceRef,
    requester: &Jid,
    name: &str,
    jid: &str,
) -> Result<Answer, StanzaError> {
    let jid = Jid::parse(jid).map_err(|_| invalid_jid())?;
    if jid.bare_str() != requester.bare_str() {
        // §6.1.3.1: one subscribes oneself.
        return Err(invalid_jid());
    }
    let mut node = node::existing(env, svc, name)?;
    node.check_access(env, svc, &jid)?;
    let existing = node
        .record
        .subscriptions
        .iter()
        .find(|s| s.jid == jid.as_str())
        .cloned();
    let subscription = match existing {
        Some(s) => s,
        None => {
            let max = env.config.pubsub.max_subscriptions_per_node as usize;
            let s = Subscription {
                jid: jid.as_str().to_string(),
                subid: env.new_id(),
            };
            add_subscription(&mut node.record.subscriptions, &s, max).map_err(|e| {
                StanzaError::new(Condition::NotAllowed)
                    .with_text(e)
                    .with_app(errors::TOO_MANY_SUBSCRIPTIONS)
            })?;
            // Applied again where it is stored: another client's change
            // to the node committing meanwhile is kept.
            let added = s.clone();
            svc.persist(
                env,
                stored::update_node_op(svc.jid, name, move |record| {
                    add_subscription(&mut record.subscriptions, &added, max)
                        .map_err(StoreError::LimitExceeded)
                }),
            );
            s
        }
    };
    let payload = Element::new("pubsub", NS_PUBSUB).with_child(subscription_element(
        NS_PUBSUB,
        Some(name),
        &subscription,
    ));
    let then: Option<Continuation> = match node.config.send_last_published_item {
        SendLastPublished::Never => None,
        SendLastPublished::OnSub | SendLastPublished::OnSubAndPresence => {
            let svc_jid = svc.jid.to_string();
            let account = svc.account.cloned();
            Some(Box::new(move |env: &Env| {
                let svc = ServiceRef {
                    jid: &svc_jid,
                    account: account.as_ref(),
                };
                notify::send_last_item(env, &svc, &node, &jid);
            }))
        }
    };
    Ok(Answer {
        payload: Some(payload),
        then,
    })
}

/// Subscriptions one bare JID may hold on one node (one per resource it
/// uses, within reason): one user cannot grow another's node unbounded.
pub const MAX_SUBSCRIPTIONS_PER_SUBSCRIBER: usize = 8;

/// Adds `s` unless its JID is subscribed already; refuses past `max` in
/// all or [`MAX_SUBSCRIPTIONS_PER_SUBSCRIBER`] for its bare JID.
pub fn add_subscription(
    subs: &mut Vec<Subscription>,
    s: &Subscription,
    max: usize,
) -> Result<(), String> {
    if subs.iter().any(|x| x.jid == s.jid) {
        return Ok(());
    }
    if subs.len() >= max {
        return Err(format!("this node has {max} subscriptions, the limit"));
    }
    let bare = |jid: &str| jid.split('/').next().unwrap_or(jid).to_string();
    let mine = bare(&s.jid);
    if subs.iter().filter(|x| bare(&x.jid) == mine).count() >= MAX_SUBSCRIPTIONS_PER_SUBSCRIBER {
        return Err(format!(
            "{mine} holds {MAX_SUBSCRIPTIONS_PER_SUBSCRIBER} subscriptions to this node, the limit"
        ));
    }
    subs.push(s.clone());
    Ok(())
}

fn invalid_jid() -> StanzaError {
    errors::bad_request("subscribe and unsubscribe your own JID").with_app(errors::INVALID_JID)
}

/// `<subscription node jid subid subscription='subscribed'/>`.
pub fn subscription_element(ns: &str, node: Option<&str>, s: &Subscription) -> Element {
    let mut el = Element::new("subscription", ns.to_string());
    if let Some(node) = node {
        el.set_attr("node", node);
    }
    el.set_attr("jid", s.jid.as_str());
    el.set_attr("subid", s.subid.as_str());
    el.set_attr("subscription", "subscribed");
    el
}

/// §6.2.
pub fn unsubscribe(
    env: &Env,
    svc: &ServiceRef,
    requester: &Jid,
    name: &str,
    jid: &str,
    subid: Option<&str>,
) -> Result<Answer, StanzaError> {
    let jid = Jid::parse(jid).map_err(|_| invalid_jid())?;
    let node = node::existing(env, svc, name)?;
    if jid.bare_str() != requester.bare_str() && !node.is_owner(svc, requester) {
        // §6.2.3.3: someone else's subscription.
        return Err(errors::forbidden());
    }
    let of_jid: Vec<&Subscription> = node
        .record
        .subscriptions
        .iter()
        .filter(|s| s.jid == jid.as_str())
        .collect();
    if of_jid.is_empty() {
        // §6.2.3.2.
        return Err(StanzaError::new(Condition::UnexpectedRequest)
            .with_type(crate::stanza::ErrorType::Cancel)
            .with_app(errors::NOT_SUBSCRIBED));
    }
    if let Some(id) = subid
        && !of_jid.iter().any(|s| s.subid == id)
    {
        // §6.2.3.5.
        return Err(
            errors::not_acceptable("no such subscription id").with_app(errors::INVALID_SUBID)
        );
    }
    let (gone, subid) = (jid.as_str().to_string(), subid.map(str::to_string));
    svc.persist(
        env,
        stored::update_node_op(svc.jid, name, move |record| {
            record
                .subscriptions
                .retain(|s| !(s.jid == gone && subid.as_ref().is_none_or(|id| *id == s.subid)));
            Ok(())
        }),
    );
    Ok(Answer::empty())
}

/// Every node of the service, decoded; a node whose record cannot be read
/// is logged and left out.
pub fn all_nodes(env: &Env, svc: &ServiceRef) -> Result<Vec<Node>, StanzaError> {
    let nodes = env.store.pubsub().nodes(svc.jid).map_err(|e| {
        log::error!("reading the nodes of {}: {e}", svc.jid);
        errors::internal()
    })?;
    Ok(nodes
        .into_iter()
        .filter_map(|(name, record)| match NodeConfig::decode(&record.config) {
            Ok(config) => Some(Node {
                name,
                record,
                config,
            }),
            Err(e) => {
                log::error!(
                    "pubsub node {name:?} of {}: bad configuration: {e}",
                    svc.jid
                );
                None
            }
        })
        .collect())
}

/// §5.6.
pub fn my_subscriptions(
    env: &Env,
    svc: &ServiceRef,
    requester: &Jid,
    only: Option<String>,
) -> Result<Answer, StanzaError> {
    let mut list = Element::new("subscriptions", NS_PUBSUB);
    if let Some(node) = &only {
        list.set_attr("node", node.as_str());
    }
    for node in all_nodes(env, svc)? {
        if only.as_ref().is_some_and(|o| *o != node.name) {
            continue;
        }
        for s in &node.record.subscriptions {
            if Jid::parse(&s.jid).is_ok_and(|j| j.bare_str() == requester.bare_str()) {
                list.push_child(subscription_element(NS_PUBSUB, Some(&node.name), s));
            }
        }
    }
    Ok(Answer::with(
        Element::new("pubsub", NS_PUBSUB).with_child(list),
    ))
}

/// §5.7.
pub fn my_affiliations(
    env: &Env,
    svc: &ServiceRef,
    requester: &Jid,
    only: Option<String>,
) -> Result<Answer, StanzaError> {
    let mut list = Element::new("affiliations", NS_PUBSUB);
    if let Some(node) = &only {
        list.set_attr("node", node.as_str());
    }
    for node in all_nodes(env, svc)? {
        if only.as_ref().is_some_and(|o| *o != node.name) {
            continue;
        }
        let affiliation = node.affiliation(svc, requester);
        if affiliation != crate::store::pubsub::Affiliation::None {
            list.push_child(
                Element::new("affiliation", NS_PUBSUB)
                    .with_attr("node", node.name.as_str())
                    .with_attr("affiliation", node::affiliation_name(affiliation)),
            );
        }
    }
    Ok(Answer::with(
        Element::new("pubsub", NS_PUBSUB).with_child(list),
    ))
}

/// disco#items of a service: the nodes the requester may see (§5.2),
/// or with `node` that node's items (§5.5).
pub fn disco_items(
    env: &Env,
    svc: &ServiceRef,
    requester: &Jid,
    node: Option<&str>,
) -> Result<Element, StanzaError> {
    let mut query = Element::new("query", NS_DISCO_ITEMS);
    match node {
        None => {
            for n in all_nodes(env, svc)? {
                if n.check_access(env, svc, requester).is_err() {
                    continue;
                }
                let mut item = Element::new("item", NS_DISCO_ITEMS)
                    .with_attr("jid", svc.jid)
                    .with_attr("node", n.name.as_str());
                if !n.config.title.is_empty() {
                    item.set_attr("name", n.config.title.as_str());
                }
                query.push_child(item);
            }
        }
        Some(name) => {
            let n = node::existing(env, svc, name)?;
            n.check_access(env, svc, requester)?;
            query.set_attr("node", name);
            let stored = env.store.pubsub().items(svc.jid, name).map_err(|e| {
                log::error!("reading the items of {name:?} at {}: {e}", svc.jid);
                errors::internal()
            })?;
            for item in stored {
                query.push_child(
                    Element::new("item", NS_DISCO_ITEMS)
                        .with_attr("jid", svc.jid)
                        .with_attr("name", item.id),
                );
            }
        }
    }
    Ok(query)
}
