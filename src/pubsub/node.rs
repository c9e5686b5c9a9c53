//! A node as the engine sees it: its stored record (affiliations,
//! subscriptions) with its configuration decoded, and the rules of who may
//! do what (XEP-0060 §4.1 affiliations, §4.5 access models).

use crate::env::Env;
use crate::jid::Jid;
use crate::stanza::{Condition, StanzaError};
use crate::store::pubsub::{Affiliation, NodeRecord};

use super::ServiceRef;
use super::config::{AccessModel, NodeConfig, PublishModel};
use super::errors;

pub struct Node {
    pub name: String,
    pub record: NodeRecord,
    pub config: NodeConfig,
}

impl Node {
    /// A new node owned by `owner`.
    pub fn new(name: String, config: NodeConfig, owner: &Jid) -> Node {
        Node {
            name,
            record: NodeRecord {
                config: config.encode(),
                affiliations: vec![(owner.bare_str().to_string(), Affiliation::Owner)],
                subscriptions: Vec::new(),
            },
            config,
        }
    }

    /// The record to store, with the configuration as it is now.
    pub fn to_record(&self) -> NodeRecord {
        NodeRecord {
            config: self.config.encode(),
            ..self.record.clone()
        }
    }

    /// `who`'s affiliation. On a PEP service the account owns every node.
    pub fn affiliation(&self, svc: &ServiceRef, who: &Jid) -> Affiliation {
        if svc.account.is_some_and(|a| a.bare_str() == who.bare_str()) {
            return Affiliation::Owner;
        }
        self.record
            .affiliations
            .iter()
            .find(|(jid, _)| jid == who.bare_str())
            .map(|(_, a)| *a)
            .unwrap_or(Affiliation::None)
    }

    /// The account whose roster the presence and roster access models
    /// consult: the PEP account, or the first owner of a service's node.
    fn roster_owner(&self, svc: &ServiceRef) -> Option<Jid> {
        if let Some(account) = svc.account {
            return Some(account.clone());
        }
        self.record
            .affiliations
            .iter()
            .find(|(_, a)| *a == Affiliation::Owner)
            .and_then(|(jid, _)| Jid::parse(jid).ok())
    }

    /// Whether `who` may see the node's items and subscribe (§4.5, §6.1.3,
    /// §6.5.9): the error to answer otherwise.
    pub fn check_access(&self, env: &Env, svc: &ServiceRef, who: &Jid) -> Result<(), StanzaError> {
        match self.affiliation(svc, who) {
            // §4.1: a publish-only entity publishes, and sees nothing.
            Affiliation::Outcast | Affiliation::PublishOnly => return Err(errors::forbidden()),
            Affiliation::Owner | Affiliation::Publisher | Affiliation::Member => return Ok(()),
            Affiliation::None => {}
        }
        match self.config.access_model {
            AccessModel::Open => Ok(()),
            AccessModel::Presence => {
                if self.roster_allows(env, svc, who, None) {
                    Ok(())
                } else {
                    Err(StanzaError::new(Condition::NotAuthorized)
                        .with_app(errors::PRESENCE_SUBSCRIPTION_REQUIRED))
                }
            }
            AccessModel::Roster => {
                let groups = &self.config.roster_groups_allowed;
                if self.roster_allows(env, svc, who, Some(groups)) {
                    Ok(())
                } else {
                    Err(StanzaError::new(Condition::NotAuthorized)
                        .with_app(errors::NOT_IN_ROSTER_GROUP))
                }
            }
            // Approval by the owner is not offered: an owner admits
            // someone to an authorize node by making them a member.
            AccessModel::Whitelist | AccessModel::Authorize => {
                Err(StanzaError::new(Condition::NotAllowed).with_app(errors::CLOSED_NODE))
            }
        }
    }

    /// Whether the owner's roster lets `who` in: a subscription to the
    /// owner's presence ('from' or 'both'), and with `groups`, membership
    /// in one of them.
    fn roster_allows(
        &self,
        env: &Env,
        svc: &ServiceRef,
        who: &Jid,
        groups: Option<&Vec<String>>,
    ) -> bool {
        let Some(owner) = self.roster_owner(svc) else {
            return false;
        };
        if !env.is_local_host(owner.domain()) {
            return false;
        }
        let Ok(state) = env.account(&owner) else {
            return false;
        };
        let roster = state.roster.borrow();
        let Some(item) = roster.item(&who.to_bare()) else {
            return false;
        };
        match groups {
            None => item.subscription.has_from(),
            Some(groups) => item.groups.iter().any(|g| groups.contains(g)),
        }
    }

    /// Whether `who` may publish (§7.1.3.1: the publish model).
    pub fn check_publish(&self, svc: &ServiceRef, who: &Jid) -> Result<(), StanzaError> {
        match self.affiliation(svc, who) {
            Affiliation::Owner | Affiliation::Publisher | Affiliation::PublishOnly => Ok(()),
            Affiliation::Outcast => Err(errors::forbidden()),
            Affiliation::Member | Affiliation::None => match self.config.publish_model {
                PublishModel::Open => Ok(()),
                PublishModel::Subscribers if self.is_subscribed(who) => Ok(()),
                _ => Err(errors::forbidden()),
            },
        }
    }

    /// Whether `who` (any of its resources) holds a subscription.
    pub fn is_subscribed(&self, who: &Jid) -> bool {
        self.record
            .subscriptions
            .iter()
            .any(|s| Jid::parse(&s.jid).is_ok_and(|j| j.bare_str() == who.bare_str()))
    }

    /// Whether `who` may retract items, purge or see the node's
    /// subscribers: owners and publishers (§7.2.3.1).
    pub fn may_retract(&self, svc: &ServiceRef, who: &Jid) -> bool {
        matches!(
            self.affiliation(svc, who),
            Affiliation::Owner | Affiliation::Publisher
        )
    }

    pub fn is_owner(&self, svc: &ServiceRef, who: &Jid) -> bool {
        self.affiliation(svc, who) == Affiliation::Owner
    }
}

/// The node `name` of the service, if it exists.
pub fn load(env: &Env, svc: &ServiceRef, name: &str) -> Result<Option<Node>, StanzaError> {
    let record = env.store.pubsub().node(svc.jid, name).map_err(|e| {
        log::error!("reading pubsub node {name:?} of {}: {e}", svc.jid);
        errors::internal()
    })?;
    let Some(record) = record else {
        return Ok(None);
    };
    let config = NodeConfig::decode(&record.config).map_err(|e| {
        log::error!(
            "pubsub node {name:?} of {}: bad configuration: {e}",
            svc.jid
        );
        errors::internal()
    })?;
    Ok(Some(Node {
        name: name.to_string(),
        record,
        config,
    }))
}

/// The node, or `item-not-found` (§6.1.3.12 and elsewhere).
pub fn existing(env: &Env, svc: &ServiceRef, name: &str) -> Result<Node, StanzaError> {
    load(env, svc, name)?.ok_or_else(errors::item_not_found)
}

/// Affiliation names as XEP-0060 writes them.
pub fn affiliation_name(a: Affiliation) -> &'static str {
    match a {
        Affiliation::Owner => "owner",
        Affiliation::Publisher => "publisher",
        Affiliation::PublishOnly => "publish-only",
        Affiliation::Member => "member",
        Affiliation::None => "none",
        Affiliation::Outcast => "outcast",
    }
}

pub fn parse_affiliation(s: &str) -> Option<Affiliation> {
    Some(match s {
        "owner" => Affiliation::Owner,
        "publisher" => Affiliation::Publisher,
        "publish-only" => Affiliation::PublishOnly,
        "member" => Affiliation::Member,
        "none" => Affiliation::None,
        "outcast" => Affiliation::Outcast,
        _ => return None,
    })
}
