//! The requests of XEP-0060 §8: creating nodes (by anyone the service lets
//! create them), and what only a node's owner may do: configure, delete,
//! purge, manage subscriptions and affiliations.

use crate::env::Env;
use crate::jid::Jid;
use crate::stanza::{Condition, StanzaError};
use crate::store::StoreError;
use crate::store::pubsub::{self as stored, Affiliation, Subscription};
use crate::xml::Element;

use super::answer::Answer;
use super::config::NodeConfig;
use super::engine::{add_subscription, subscription_element};
use super::node::{self, Node, affiliation_name, parse_affiliation};
use super::policy::{self, config_error, kept_items};
use super::request::Request;
use super::{NS_PUBSUB, NS_PUBSUB_EVENT, NS_PUBSUB_OWNER, ServiceRef, errors, notify};

pub fn run(
    env: &Env,
    svc: &ServiceRef,
    request: Request,
    requester: &Jid,
) -> Result<Answer, StanzaError> {
    let limit = env.config.pubsub.max_items;
    match request {
        Request::Create { node, config } => create(env, svc, requester, node, config.as_ref()),
        Request::Default => Ok(Answer::with(
            Element::new("pubsub", NS_PUBSUB_OWNER).with_child(
                Element::new("default", NS_PUBSUB_OWNER)
                    .with_child(svc.default_config().to_form(limit)),
            ),
        )),
        Request::ConfigureGet { node } => {
            let node = owned(env, svc, requester, &node)?;
            Ok(Answer::with(
                Element::new("pubsub", NS_PUBSUB_OWNER).with_child(
                    Element::new("configure", NS_PUBSUB_OWNER)
                        .with_attr("node", node.name.as_str())
                        .with_child(node.config.to_form(limit)),
                ),
            ))
        }
        Request::ConfigureSet { node, form } => {
            let mut node = owned(env, svc, requester, &node)?;
            if form.kind == crate::forms::FormType::Cancel {
                return Ok(Answer::empty());
            }
            let before = kept_items(env, &node.config);
            node.config.apply(&form, limit).map_err(config_error)?;
            policy::check_offered(&node.config)?;
            // Only the configuration: subscriptions made meanwhile stay.
            let config = node.config.encode();
            svc.persist(
                env,
                stored::update_node_op(svc.jid, &node.name, move |record| {
                    record.config = config.clone();
                    Ok(())
                }),
            );
            let after = kept_items(env, &node.config);
            if after < before {
                svc.persist(env, stored::trim_op(svc.jid, &node.name, after));
            }
            Ok(Answer::empty())
        }
        Request::Delete { node, redirect } => {
            let node = owned(env, svc, requester, &node)?;
            svc.persist(env, stored::delete_node_op(svc.jid, &node.name));
            if node.config.notify_delete {
                let mut delete =
                    Element::new("delete", NS_PUBSUB_EVENT).with_attr("node", node.name.as_str());
                if let Some(uri) = redirect {
                    delete.push_child(
                        Element::new("redirect", NS_PUBSUB_EVENT).with_attr("uri", uri),
                    );
                }
                notify::broadcast(env, svc, &node, delete);
            }
            Ok(Answer::empty())
        }
        Request::Purge { node } => {
            let node = owned(env, svc, requester, &node)?;
            svc.persist(env, stored::purge_op(svc.jid, &node.name));
            if node.config.notify_retract {
                let purge =
                    Element::new("purge", NS_PUBSUB_EVENT).with_attr("node", node.name.as_str());
                notify::broadcast(env, svc, &node, purge);
            }
            Ok(Answer::empty())
        }
        Request::SubscriptionsGet { node } => {
            let node = owned(env, svc, requester, &node)?;
            let mut list = Element::new("subscriptions", NS_PUBSUB_OWNER)
                .with_attr("node", node.name.as_str());
            for s in &node.record.subscriptions {
                list.push_child(subscription_element(NS_PUBSUB_OWNER, None, s));
            }
            Ok(Answer::with(
                Element::new("pubsub", NS_PUBSUB_OWNER).with_child(list),
            ))
        }
        Request::SubscriptionsSet { node, changes } => {
            let mut node = owned(env, svc, requester, &node)?;
            let (removed, added) = set_subscriptions(env, &mut node, changes)?;
            let max = env.config.pubsub.max_subscriptions_per_node as usize;
            svc.persist(
                env,
                stored::update_node_op(svc.jid, &node.name, move |record| {
                    record.subscriptions.retain(|s| !removed.contains(&s.jid));
                    for s in &added {
                        add_subscription(&mut record.subscriptions, s, max)
                            .map_err(StoreError::LimitExceeded)?;
                    }
                    Ok(())
                }),
            );
            Ok(Answer::empty())
        }
        Request::AffiliationsGet { node } => {
            let node = owned(env, svc, requester, &node)?;
            let mut list =
                Element::new("affiliations", NS_PUBSUB_OWNER).with_attr("node", node.name.as_str());
            if let Some(account) = svc.account {
                list.push_child(affiliation_element(account.as_str(), Affiliation::Owner));
            }
            for (jid, a) in &node.record.affiliations {
                if svc.account.is_some_and(|acc| acc.as_str() == jid) {
                    continue;
                }
                list.push_child(affiliation_element(jid, *a));
            }
            Ok(Answer::with(
                Element::new("pubsub", NS_PUBSUB_OWNER).with_child(list),
            ))
        }
        Request::AffiliationsSet { node, changes } => {
            let mut node = owned(env, svc, requester, &node)?;
            let affiliations = set_affiliations(svc, &mut node, changes)?;
            let outcasts: Vec<String> = affiliations
                .iter()
                .filter(|(_, a)| *a == Affiliation::Outcast)
                .map(|(j, _)| j.clone())
                .collect();
            svc.persist(
                env,
                stored::update_node_op(svc.jid, &node.name, move |record| {
                    record.affiliations = affiliations.clone();
                    // An outcast loses its subscriptions (§4.1), also
                    // those made while this was on its way.
                    record.subscriptions.retain(|s| {
                        let bare = s.jid.split('/').next().unwrap_or(&s.jid);
                        !outcasts.iter().any(|o| o == bare)
                    });
                    Ok(())
                }),
            );
            Ok(Answer::empty())
        }
        // The user requests are the engine's.
        _ => Err(errors::bad_request("not an owner request")),
    }
}

/// §8.1.
fn create(
    env: &Env,
    svc: &ServiceRef,
    requester: &Jid,
    name: Option<String>,
    form: Option<&crate::forms::Form>,
) -> Result<Answer, StanzaError> {
    if !policy::may_create(env, svc, requester) {
        return Err(errors::forbidden());
    }
    let instant = name.is_none();
    let name = name.unwrap_or_else(|| env.new_id());
    if node::load(env, svc, &name)?.is_some() {
        // §8.1.3.
        return Err(StanzaError::new(Condition::Conflict));
    }
    policy::check_node_count(env, svc)?;
    let mut config: NodeConfig = svc.default_config();
    if let Some(form) = form {
        config
            .apply(form, env.config.pubsub.max_items)
            .map_err(config_error)?;
        policy::check_offered(&config)?;
    }
    let node = Node::new(name, config, requester);
    svc.persist(
        env,
        stored::create_node_op(
            svc.jid,
            &node.name,
            node.to_record(),
            policy::max_nodes(env, svc),
        ),
    );
    if instant {
        return Ok(Answer::with(Element::new("pubsub", NS_PUBSUB).with_child(
            Element::new("create", NS_PUBSUB).with_attr("node", node.name.as_str()),
        )));
    }
    Ok(Answer::empty())
}

/// The node, if `requester` owns it: `forbidden` otherwise (§8.2.3.2).
fn owned(env: &Env, svc: &ServiceRef, requester: &Jid, name: &str) -> Result<Node, StanzaError> {
    let node = node::existing(env, svc, name)?;
    if !node.is_owner(svc, requester) {
        return Err(errors::forbidden());
    }
    Ok(node)
}

fn affiliation_element(jid: &str, a: Affiliation) -> Element {
    Element::new("affiliation", NS_PUBSUB_OWNER)
        .with_attr("jid", jid)
        .with_attr("affiliation", affiliation_name(a))
}

/// §8.8.2: `subscribed` adds a subscription, `none` removes a JID's;
/// checked against the node: the JIDs whose subscriptions go and
/// the subscriptions added.
fn set_subscriptions(
    env: &Env,
    node: &mut Node,
    changes: Vec<(String, String)>,
) -> Result<(Vec<String>, Vec<Subscription>), StanzaError> {
    let max = env.config.pubsub.max_subscriptions_per_node as usize;
    let mut subs = node.record.subscriptions.clone();
    let (mut removed, mut added): (Vec<String>, Vec<Subscription>) = (Vec::new(), Vec::new());
    for (jid, state) in changes {
        let jid = Jid::parse(&jid)
            .map_err(|_| errors::bad_request("a malformed JID").with_app(errors::INVALID_JID))?;
        match state.as_str() {
            "none" => {
                subs.retain(|s| s.jid != jid.as_str());
                added.retain(|s| s.jid != jid.as_str());
                removed.push(jid.as_str().to_string());
            }
            "subscribed" => {
                let s = Subscription {
                    jid: jid.as_str().to_string(),
                    subid: env.new_id(),
                };
                let before = subs.len();
                add_subscription(&mut subs, &s, max).map_err(|e| {
                    StanzaError::new(Condition::NotAllowed)
                        .with_text(e)
                        .with_app(errors::TOO_MANY_SUBSCRIPTIONS)
                })?;
                if subs.len() > before {
                    removed.retain(|r| *r != s.jid);
                    added.push(s);
                }
            }
            other => {
                return Err(errors::not_acceptable(&format!(
                    "subscription state {other:?}: use subscribed or none"
                )));
            }
        }
    }
    node.record.subscriptions = subs;
    Ok((removed, added))
}

/// §8.9.2: affiliations by bare JID; `none` removes one. The last owner
/// stays (§8.9.2.4), and on PEP the account's own affiliation is fixed.
fn set_affiliations(
    svc: &ServiceRef,
    node: &mut Node,
    changes: Vec<(String, String)>,
) -> Result<Vec<(String, Affiliation)>, StanzaError> {
    let mut affs = node.record.affiliations.clone();
    for (jid, value) in changes {
        let jid = Jid::parse(&jid)
            .map_err(|_| errors::bad_request("a malformed JID").with_app(errors::INVALID_JID))?
            .to_bare();
        let Some(affiliation) = parse_affiliation(&value) else {
            return Err(errors::not_acceptable(&format!(
                "affiliation {value:?}: use owner, publisher, publish-only, member, outcast or none"
            )));
        };
        if svc.account.is_some_and(|a| a.bare_str() == jid.bare_str()) {
            return Err(errors::not_acceptable("the account owns its PEP nodes"));
        }
        affs.retain(|(j, _)| j != jid.as_str());
        if affiliation != Affiliation::None {
            affs.push((jid.as_str().to_string(), affiliation));
        }
    }
    if !svc.is_pep() && !affs.iter().any(|(_, a)| *a == Affiliation::Owner) {
        return Err(errors::not_acceptable("a node keeps at least one owner"));
    }
    node.record.affiliations = affs.clone();
    Ok(affs)
}
