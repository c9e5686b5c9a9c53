//! XEP-0030 service discovery for the server host and for accounts.

use crate::env::Env;
use crate::stanza::{Condition, StanzaError};
use crate::xml::Element;

use super::{NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PING, NS_TIME, NS_VERSION};
use super::{blocking, carbons, contact_info, extdisco, last, offline, private, register, vcard};

/// Features the server host answers itself.
const SERVER_FEATURES: &[&str] = &[
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    NS_PING,
    NS_TIME,
    NS_VERSION,
    last::NS_LAST,
    vcard::NS_VCARD,
    register::NS_REGISTER,
    blocking::NS_BLOCKING,
    carbons::NS_CARBONS,
    crate::adhoc::NS_COMMANDS,
];

/// Features an account's owner finds on their bare JID: what the server
/// does on the account's behalf.
const ACCOUNT_FEATURES: &[&str] = &[
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    vcard::NS_VCARD,
    private::NS_PRIVATE,
    last::NS_LAST,
    register::NS_REGISTER,
    // XEP-0357 §4: push notifications are enabled at the bare JID.
    crate::push::NS_PUSH,
];

pub fn server_info(env: &Env, node: Option<&str>) -> Result<Element, StanzaError> {
    if node.is_some() {
        return Err(StanzaError::new(Condition::ItemNotFound));
    }
    let mut query = Element::new("query", NS_DISCO_INFO).with_child(
        Element::new("identity", NS_DISCO_INFO)
            .with_attr("category", "server")
            .with_attr("type", "im")
            .with_attr("name", "Perch"),
    );
    for f in SERVER_FEATURES {
        query.push_child(feature(f));
    }
    if env.config.im.offline_max_messages > 0 {
        query.push_child(feature(offline::FEATURE));
    }
    if !env.config.external_services.is_empty() {
        query.push_child(feature(extdisco::NS_EXTDISCO));
    }
    if let Some(form) = contact_info::form(&env.config.contact) {
        query.push_child(form);
    }
    if let Some(form) = contact_info::outage_status_form(&env.config.contact) {
        query.push_child(form);
    }
    Ok(query)
}

pub fn server_items(env: &Env, domain: &str, node: Option<&str>) -> Result<Element, StanzaError> {
    if node.is_some() {
        return Err(StanzaError::new(Condition::ItemNotFound));
    }
    let mut query = Element::new("query", NS_DISCO_ITEMS);
    for (jid, name) in env.routes.services_of(domain) {
        query.push_child(
            Element::new("item", NS_DISCO_ITEMS)
                .with_attr("jid", jid)
                .with_attr("name", name),
        );
    }
    Ok(query)
}

/// disco#info of an account's bare JID. Its owner learns what the server
/// offers on the account; others only that the account exists.
pub fn account_info(owner_asking: bool, node: Option<&str>) -> Result<Element, StanzaError> {
    if node.is_some() {
        return Err(StanzaError::new(Condition::ItemNotFound));
    }
    let mut query = Element::new("query", NS_DISCO_INFO).with_child(
        Element::new("identity", NS_DISCO_INFO)
            .with_attr("category", "account")
            .with_attr("type", "registered"),
    );
    // XEP-0163 §6.1: every account is a PEP service.
    query.push_child(
        Element::new("identity", NS_DISCO_INFO)
            .with_attr("category", "pubsub")
            .with_attr("type", "pep"),
    );
    for f in PEP_FEATURES {
        query.push_child(feature(f));
    }
    if owner_asking {
        for f in ACCOUNT_FEATURES {
            query.push_child(feature(f));
        }
        // The account's archive (XEP-0313 §7) and its stanza ids
        // (XEP-0359 §6), answered at the bare JID by `archive::account`.
        for f in [
            crate::stanza::NS_MAM,
            "urn:xmpp:mam:2#extended",
            crate::stanza::NS_SID,
        ] {
            query.push_child(feature(f));
        }
    }
    Ok(query)
}

/// What each account's PEP service offers (XEP-0060 §10, XEP-0163,
/// XEP-0402 §4 and XEP-0411 for the bookmarks conversion).
pub const PEP_FEATURES: &[&str] = &[
    "http://jabber.org/protocol/pubsub",
    "http://jabber.org/protocol/pubsub#access-open",
    "http://jabber.org/protocol/pubsub#access-presence",
    "http://jabber.org/protocol/pubsub#access-roster",
    "http://jabber.org/protocol/pubsub#access-whitelist",
    "http://jabber.org/protocol/pubsub#auto-create",
    "http://jabber.org/protocol/pubsub#auto-subscribe",
    "http://jabber.org/protocol/pubsub#config-node",
    "http://jabber.org/protocol/pubsub#config-node-max",
    "http://jabber.org/protocol/pubsub#create-and-configure",
    "http://jabber.org/protocol/pubsub#create-nodes",
    "http://jabber.org/protocol/pubsub#delete-items",
    "http://jabber.org/protocol/pubsub#delete-nodes",
    "http://jabber.org/protocol/pubsub#filtered-notifications",
    "http://jabber.org/protocol/pubsub#item-ids",
    "http://jabber.org/protocol/pubsub#last-published",
    "http://jabber.org/protocol/pubsub#multi-items",
    "http://jabber.org/protocol/pubsub#persistent-items",
    "http://jabber.org/protocol/pubsub#presence-notifications",
    "http://jabber.org/protocol/pubsub#publish",
    "http://jabber.org/protocol/pubsub#publish-options",
    "http://jabber.org/protocol/pubsub#purge-nodes",
    "http://jabber.org/protocol/pubsub#retract-items",
    "http://jabber.org/protocol/pubsub#retrieve-affiliations",
    "http://jabber.org/protocol/pubsub#retrieve-items",
    "http://jabber.org/protocol/pubsub#retrieve-subscriptions",
    "http://jabber.org/protocol/pubsub#subscribe",
    "urn:xmpp:bookmarks:1#compat",
    "urn:xmpp:bookmarks:1#compat-pep",
];

/// disco#items of an account's bare JID: nothing is published there yet.
pub fn account_items(node: Option<&str>) -> Result<Element, StanzaError> {
    if node.is_some() {
        return Err(StanzaError::new(Condition::ItemNotFound));
    }
    Ok(Element::new("query", NS_DISCO_ITEMS))
}

pub fn feature(var: &str) -> Element {
    Element::new("feature", NS_DISCO_INFO).with_attr("var", var)
}
