//! What a client asks of a pubsub service (XEP-0060 §6–§8): the `<pubsub>`
//! payload of an iq, parsed into one [`Request`] before anything is looked
//! up. Errors here are the ones XEP-0060 names for malformed requests
//! (`bad-request` with `<nodeid-required/>`, `<item-required/>`, …).

use crate::forms::{Form, FormError};
use crate::stanza::StanzaError;
use crate::xml::Element;

use super::errors;
use super::{NS_PUBSUB, NS_PUBSUB_OWNER};

/// Longest node name or item id accepted (bytes): the store's limit, as
/// both are keys in the database (and echoed in every notification).
pub use crate::store::pubsub::MAX_NAME_BYTES;
/// Most item ids one retrieval or retraction may name.
pub const MAX_IDS: usize = 256;

/// One request, from the child of `<pubsub>` (or `<pubsub#owner>`) that
/// names it.
#[derive(Debug, PartialEq)]
pub enum Request {
    /// §7.1: an item, with the id the client chose (if any) and its payload
    /// (at most one element), and publish-options (§7.1.5).
    Publish {
        node: String,
        id: Option<String>,
        payload: Option<Element>,
        options: Option<Form>,
    },
    /// §7.2: remove items; `notify` as the client asked (None: the node's
    /// setting decides).
    Retract {
        node: String,
        ids: Vec<String>,
        notify: Option<bool>,
    },
    /// §6.1.
    Subscribe {
        node: String,
        jid: String,
    },
    /// §6.2.
    Unsubscribe {
        node: String,
        jid: String,
        subid: Option<String>,
    },
    /// §6.3: subscription options, which this service does not offer.
    Options {
        node: Option<String>,
    },
    /// §6.5: all items, the newest `max`, or the named ones.
    Items {
        node: String,
        max: Option<usize>,
        ids: Vec<String>,
    },
    /// §5.6: the requester's subscriptions (on one node or all).
    MySubscriptions {
        node: Option<String>,
    },
    /// §5.7: the requester's affiliations.
    MyAffiliations {
        node: Option<String>,
    },
    /// §8.1: a new node (None: an instant node, named by the service),
    /// with its configuration form if one came along.
    Create {
        node: Option<String>,
        config: Option<Form>,
    },
    /// §8.2: the configuration form (get) or a new configuration (set).
    ConfigureGet {
        node: String,
    },
    ConfigureSet {
        node: String,
        form: Form,
    },
    /// §8.3: the default configuration.
    Default,
    /// §8.4.
    Delete {
        node: String,
        redirect: Option<String>,
    },
    /// §8.5.
    Purge {
        node: String,
    },
    /// §8.8: the node's subscriptions (get) or changes to them (set).
    SubscriptionsGet {
        node: String,
    },
    SubscriptionsSet {
        node: String,
        changes: Vec<(String, String)>,
    },
    /// §8.9: the node's affiliations (get) or changes to them (set).
    AffiliationsGet {
        node: String,
    },
    AffiliationsSet {
        node: String,
        changes: Vec<(String, String)>,
    },
}

impl Request {
    /// Whether only the node's owner may ask this.
    pub fn is_owner_request(&self) -> bool {
        matches!(
            self,
            Request::ConfigureGet { .. }
                | Request::ConfigureSet { .. }
                | Request::Delete { .. }
                | Request::Purge { .. }
                | Request::SubscriptionsGet { .. }
                | Request::SubscriptionsSet { .. }
                | Request::AffiliationsGet { .. }
                | Request::AffiliationsSet { .. }
        )
    }
}

/// Parses the `<pubsub>` element of an iq of type `get` (`set` = false) or
/// `set`.
pub fn parse(pubsub: &Element, set: bool) -> Result<Request, StanzaError> {
    if pubsub.name != "pubsub" {
        return Err(errors::bad_request("expected a <pubsub/> element"));
    }
    match pubsub.ns.as_ref() {
        NS_PUBSUB => parse_user(pubsub, set),
        NS_PUBSUB_OWNER => parse_owner(pubsub, set),
        _ => Err(errors::bad_request("unknown pubsub namespace")),
    }
}

fn parse_user(pubsub: &Element, set: bool) -> Result<Request, StanzaError> {
    let mut verbs = pubsub
        .children()
        .filter(|c| c.ns == NS_PUBSUB && !matches!(c.name.as_ref(), "publish-options"));
    let Some(verb) = verbs.next() else {
        return Err(errors::bad_request(
            "the <pubsub/> element names no request",
        ));
    };
    // §8.1.3: <create/> may come with <configure/>; everything else alone.
    let second = verbs.next();
    match (verb.name.as_ref(), set) {
        ("publish", true) => publish(pubsub, verb, second),
        ("retract", true) => retract(verb),
        ("subscribe", true) => Ok(Request::Subscribe {
            node: node_of(verb)?,
            jid: jid_of(verb)?,
        }),
        ("unsubscribe", true) => Ok(Request::Unsubscribe {
            node: node_of(verb)?,
            jid: jid_of(verb)?,
            subid: verb.attr("subid").map(str::to_string),
        }),
        ("create", true) => create(verb, second),
        ("options", _) => Ok(Request::Options {
            node: optional_node(verb)?,
        }),
        ("items", false) => items(verb),
        ("subscriptions", false) => Ok(Request::MySubscriptions {
            node: optional_node(verb)?,
        }),
        ("affiliations", false) => Ok(Request::MyAffiliations {
            node: optional_node(verb)?,
        }),
        ("default", false) => Ok(Request::Default),
        (name, _) => Err(errors::bad_request(&format!(
            "<{name}/> is not a request of type {}",
            if set { "set" } else { "get" }
        ))),
    }
}

fn parse_owner(pubsub: &Element, set: bool) -> Result<Request, StanzaError> {
    let Some(verb) = pubsub.children().find(|c| c.ns == NS_PUBSUB_OWNER) else {
        return Err(errors::bad_request(
            "the <pubsub/> element names no request",
        ));
    };
    match (verb.name.as_ref(), set) {
        ("configure", false) => Ok(Request::ConfigureGet {
            node: node_of(verb)?,
        }),
        ("configure", true) => {
            let node = node_of(verb)?;
            match Form::find_in(verb) {
                Some(Ok(form)) => Ok(Request::ConfigureSet { node, form }),
                Some(Err(e)) => Err(form_error(e)),
                None => Err(errors::bad_request("a configuration needs a data form")),
            }
        }
        ("default", false) => Ok(Request::Default),
        ("delete", true) => Ok(Request::Delete {
            node: node_of(verb)?,
            redirect: verb
                .get_child("redirect", NS_PUBSUB_OWNER)
                .and_then(|r| r.attr("uri"))
                .map(str::to_string),
        }),
        ("purge", true) => Ok(Request::Purge {
            node: node_of(verb)?,
        }),
        ("subscriptions", false) => Ok(Request::SubscriptionsGet {
            node: node_of(verb)?,
        }),
        ("subscriptions", true) => Ok(Request::SubscriptionsSet {
            node: node_of(verb)?,
            changes: pairs(verb, "subscription", "subscription")?,
        }),
        ("affiliations", false) => Ok(Request::AffiliationsGet {
            node: node_of(verb)?,
        }),
        ("affiliations", true) => Ok(Request::AffiliationsSet {
            node: node_of(verb)?,
            changes: pairs(verb, "affiliation", "affiliation")?,
        }),
        (name, _) => Err(errors::bad_request(&format!(
            "<{name}/> is not an owner request of type {}",
            if set { "set" } else { "get" }
        ))),
    }
}

fn publish(
    pubsub: &Element,
    verb: &Element,
    second: Option<&Element>,
) -> Result<Request, StanzaError> {
    if second.is_some() {
        return Err(errors::bad_request("publish one node at a time"));
    }
    let node = node_of(verb)?;
    let mut items = verb.children().filter(|c| c.is("item", NS_PUBSUB));
    let item = items.next();
    if items.next().is_some() {
        // §7.1.3.6: one item per request.
        return Err(
            errors::bad_request("publish one item at a time").with_app(errors::INVALID_PAYLOAD)
        );
    }
    let (id, payload) = match item {
        None => (None, None),
        Some(item) => {
            let id = match item.attr("id") {
                Some(id) => Some(checked_name(id, "item id")?.to_string()),
                None => None,
            };
            let mut payloads = item.children();
            let payload = payloads.next().cloned();
            if payloads.next().is_some() {
                // §7.1.3.5: a single payload element.
                return Err(errors::bad_request("an item holds one payload element")
                    .with_app(errors::INVALID_PAYLOAD));
            }
            (id, payload)
        }
    };
    let options = match pubsub.get_child("publish-options", NS_PUBSUB) {
        None => None,
        Some(po) => match po.children().next() {
            None => None,
            Some(x) if x.is("x", crate::forms::NS_DATA) => Some(parse_form_lenient(x)?),
            Some(_) => return Err(errors::bad_request("publish-options holds a data form")),
        },
    };
    Ok(Request::Publish {
        node,
        id,
        payload,
        options,
    })
}

/// Parses a data form whose `type` may be missing (clients send
/// publish-options as `<x xmlns='jabber:x:data'>`): it is read as a submit.
fn parse_form_lenient(x: &Element) -> Result<Form, StanzaError> {
    if x.attr("type").is_some() {
        return Form::parse(x).map_err(form_error);
    }
    let mut typed = x.clone();
    typed.set_attr("type", "submit");
    Form::parse(&typed).map_err(form_error)
}

fn retract(verb: &Element) -> Result<Request, StanzaError> {
    let node = node_of(verb)?;
    let ids = ids_of(verb)?;
    if ids.is_empty() {
        return Err(errors::bad_request("name the item to retract").with_app(errors::ITEM_REQUIRED));
    }
    let notify = match verb.attr("notify") {
        None => None,
        Some(v) => match crate::forms::parse_bool(v) {
            Some(b) => Some(b),
            None => return Err(errors::bad_request("notify is true or false")),
        },
    };
    Ok(Request::Retract { node, ids, notify })
}

fn create(verb: &Element, second: Option<&Element>) -> Result<Request, StanzaError> {
    let node = optional_node(verb)?;
    let config = match second {
        None => None,
        Some(c) if c.name == "configure" => match Form::find_in(c) {
            None => None,
            Some(Ok(form)) => Some(form),
            Some(Err(e)) => return Err(form_error(e)),
        },
        Some(other) => {
            return Err(errors::bad_request(&format!(
                "<create/> comes alone or with <configure/>, not <{}/>",
                other.name
            )));
        }
    };
    Ok(Request::Create { node, config })
}

fn items(verb: &Element) -> Result<Request, StanzaError> {
    let node = node_of(verb)?;
    let max = match verb.attr("max_items") {
        None => None,
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(errors::bad_request("max_items is a positive number")),
        },
    };
    Ok(Request::Items {
        node,
        max,
        ids: ids_of(verb)?,
    })
}

/// The `<item id=…/>` children of a retraction or retrieval.
fn ids_of(verb: &Element) -> Result<Vec<String>, StanzaError> {
    let mut ids = Vec::new();
    for item in verb.children().filter(|c| c.name == "item") {
        let Some(id) = item.attr("id") else {
            return Err(
                errors::bad_request("an <item/> names its id").with_app(errors::ITEM_REQUIRED)
            );
        };
        if ids.len() == MAX_IDS {
            return Err(errors::not_acceptable(&format!(
                "name at most {MAX_IDS} items in one request"
            )));
        }
        ids.push(checked_name(id, "item id")?.to_string());
    }
    Ok(ids)
}

/// `(jid, value)` of each `<subscription/>` or `<affiliation/>` an owner
/// sets (§8.8.2, §8.9.2).
fn pairs(verb: &Element, child: &str, attr: &str) -> Result<Vec<(String, String)>, StanzaError> {
    let mut out = Vec::new();
    for el in verb.children().filter(|c| c.name == child) {
        let (Some(jid), Some(value)) = (el.attr("jid"), el.attr(attr)) else {
            return Err(errors::bad_request(&format!(
                "each <{child}/> names a jid and a {attr}"
            )));
        };
        if out.len() == MAX_IDS {
            return Err(errors::not_acceptable(&format!(
                "change at most {MAX_IDS} entries in one request"
            )));
        }
        out.push((jid.to_string(), value.to_string()));
    }
    Ok(out)
}

fn node_of(verb: &Element) -> Result<String, StanzaError> {
    match optional_node(verb)? {
        Some(node) => Ok(node),
        // §7.1.3.3 and elsewhere: NodeID required.
        None => Err(errors::bad_request("name the node").with_app(errors::NODEID_REQUIRED)),
    }
}

fn optional_node(verb: &Element) -> Result<Option<String>, StanzaError> {
    match verb.attr("node") {
        None => Ok(None),
        Some(node) => Ok(Some(checked_name(node, "node name")?.to_string())),
    }
}

fn jid_of(verb: &Element) -> Result<String, StanzaError> {
    match verb.attr("jid") {
        Some(jid) if !jid.is_empty() => Ok(jid.to_string()),
        // §6.1.3.1: the JID to subscribe is required.
        _ => Err(errors::bad_request("name the JID").with_app(errors::INVALID_JID)),
    }
}

/// Node names and item ids: non-empty, bounded, without NUL (database keys
/// separate their parts with it).
fn checked_name<'a>(name: &'a str, what: &str) -> Result<&'a str, StanzaError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES || name.contains('\0') {
        return Err(errors::not_acceptable(&format!(
            "a {what} is 1 to {MAX_NAME_BYTES} bytes"
        )));
    }
    Ok(name)
}

fn form_error(e: FormError) -> StanzaError {
    errors::bad_request(&format!("malformed data form: {e}"))
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
