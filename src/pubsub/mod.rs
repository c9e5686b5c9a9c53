//! Publish-subscribe (XEP-0060): one engine for the personal eventing
//! service of every account (PEP, XEP-0163) and for the pubsub service at
//! `pubsub.<domain>`.
//!
//! - `request`: the `<pubsub/>` payload parsed into a [`request::Request`];
//! - `node`: a node loaded from the store, affiliations and access models;
//! - `dispatch`: a request to the code that answers it, the [`answer::Answer`]
//!   back; `engine`: the requests any entity makes (publish, retract,
//!   items, subscribe…), `owner`: the owner's (create, configure,
//!   delete…); `policy`: the service-wide rules (who creates nodes, how
//!   many nodes and items);
//! - `notify`: event notifications and the last item sent on subscription
//!   and presence;
//! - `pep`: the service at each account's bare JID, with the entity
//!   capabilities that filter its notifications; `host`: the service at a
//!   domain of its own (a route table entry);
//! - `config`, `errors`: node configuration forms, XEP-0060's errors;
//! - `bookmarks`, `avatar`: conversions that keep older protocols in step.

pub mod answer;
pub mod avatar;
pub mod bookmarks;
pub mod config;
pub mod dispatch;
pub mod engine;
pub mod errors;
pub mod host;
pub mod node;
pub mod notify;
pub mod owner;
pub mod pep;
pub mod policy;
pub mod request;
pub mod state;
pub mod sync;

use crate::jid::Jid;

pub const NS_PUBSUB: &str = "http://jabber.org/protocol/pubsub";
pub const NS_PUBSUB_OWNER: &str = "http://jabber.org/protocol/pubsub#owner";
pub const NS_PUBSUB_EVENT: &str = "http://jabber.org/protocol/pubsub#event";
pub const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
pub const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";

/// The service a request is for: an account's PEP service (its address is
/// the bare JID) or a pubsub service at a domain.
#[derive(Clone, Copy)]
pub struct ServiceRef<'a> {
    /// The service's address: where events come from, the store's key.
    pub jid: &'a str,
    /// The account, for PEP: its owner.
    pub account: Option<&'a Jid>,
}

impl<'a> ServiceRef<'a> {
    pub fn pep(account: &'a Jid) -> ServiceRef<'a> {
        ServiceRef {
            jid: account.as_str(),
            account: Some(account),
        }
    }

    pub fn domain(domain: &'a str) -> ServiceRef<'a> {
        ServiceRef {
            jid: domain,
            account: None,
        }
    }

    pub fn is_pep(&self) -> bool {
        self.account.is_some()
    }

    /// Submits a write to the service's nodes; on PEP it does nothing if
    /// the account was deleted before it commits.
    pub fn persist(&self, env: &crate::env::Env, op: crate::store::WriteOp) {
        match self.account {
            Some(account) => env.persist(crate::store::pubsub::for_account(account.as_str(), op)),
            None => env.persist(op),
        };
    }

    /// The configuration of a node created without one.
    pub fn default_config(&self) -> config::NodeConfig {
        if self.is_pep() {
            config::NodeConfig::pep_default()
        } else {
            config::NodeConfig::service_default()
        }
    }
}
