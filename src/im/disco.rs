//! XEP-0030 service discovery for the server host and for accounts.

use crate::server::Server;
use crate::stanza::{Condition, StanzaError};
use crate::xml::Element;

use super::{NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PING, NS_TIME, NS_VERSION};

/// Features the server host answers itself.
const SERVER_FEATURES: &[&str] = &[
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    NS_PING,
    NS_TIME,
    NS_VERSION,
    super::blocking::NS_BLOCKING,
    super::carbons::NS_CARBONS,
];

pub fn server_info(server: &Server, node: Option<&str>) -> Result<Element, StanzaError> {
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
    if server.config.im.offline_max_messages > 0 {
        query.push_child(feature(super::offline::FEATURE));
    }
    Ok(query)
}

pub fn server_items(
    server: &Server,
    domain: &str,
    node: Option<&str>,
) -> Result<Element, StanzaError> {
    if node.is_some() {
        return Err(StanzaError::new(Condition::ItemNotFound));
    }
    let mut query = Element::new("query", NS_DISCO_ITEMS);
    for muc in server.muc_hosts_of(domain) {
        query.push_child(
            Element::new("item", NS_DISCO_ITEMS)
                .with_attr("jid", muc)
                .with_attr("name", "Chatrooms"),
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
    if owner_asking {
        query.push_child(feature(NS_DISCO_INFO));
    }
    Ok(query)
}

pub fn feature(var: &str) -> Element {
    Element::new("feature", NS_DISCO_INFO).with_attr("var", var)
}
