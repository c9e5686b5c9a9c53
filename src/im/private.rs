//! Private XML storage (XEP-0049): an account keeps arbitrary XML on the
//! server, one record per namespace, readable and writable only by itself.

use crate::env::Env;
use crate::jid::Jid;
use crate::stanza::{Condition, StanzaError};
use crate::store::private_xml;
use crate::xml::Element;

use super::reply;

pub const NS_PRIVATE: &str = "jabber:iq:private";

/// An iq with a `jabber:iq:private` query addressed to `account`.
pub fn account_query(env: &Env, iq: Element, account: &Jid) {
    let owner = reply::requester(&iq).is_some_and(|r| r.bare_str() == account.bare_str());
    if !owner {
        // §3: another user's private data; `forbidden` is preferred.
        return reply::answer(env, &iq, Err(StanzaError::new(Condition::Forbidden)));
    }
    let Some(query) = iq.first_child() else {
        return;
    };
    match iq.attr("type") {
        Some("get") => {
            let outcome = check_get(query).and_then(|wanted| {
                match env.store.private_xml().get(account.as_str(), &wanted.ns) {
                    Ok(stored) => Ok(Some(get_result(wanted, stored))),
                    Err(e) => {
                        log::error!("reading private XML of {account}: {e}");
                        Err(StanzaError::new(Condition::InternalServerError))
                    }
                }
            });
            reply::answer(env, &iq, outcome);
        }
        Some("set") => {
            let entries = match check_set(query, env.config.limits.max_private_xml_bytes) {
                Ok(entries) => entries,
                Err(e) => return reply::answer(env, &iq, Err(e)),
            };
            // The account's total is checked where it is written, in the
            // same transaction; a refusal comes back as not-acceptable.
            env.persist(private_xml::set_op(
                account.as_str(),
                entries,
                env.config.limits.max_private_xml_bytes,
            ));
            reply::answer(env, &iq, Ok(None));
        }
        _ => {}
    }
}

/// §3: namespaces starting with `jabber:` or `http://jabber.org/`, and
/// `vcard-temp`, belong to protocols and are not storage.
pub fn is_reserved(ns: &str) -> bool {
    ns.is_empty()
        || ns.starts_with("jabber:")
        || ns.starts_with("http://jabber.org/")
        || ns == "vcard-temp"
}

fn reserved_error(ns: &str) -> StanzaError {
    StanzaError::new(Condition::NotAcceptable).with_text(format!(
        "the namespace '{ns}' is reserved and cannot be used for private storage"
    ))
}

/// The element a get asks for (its namespace is the key).
pub fn check_get(query: &Element) -> Result<&Element, StanzaError> {
    let mut children = query.children();
    let (Some(wanted), None) = (children.next(), children.next()) else {
        return Err(StanzaError::new(Condition::NotAcceptable)
            .with_text("name exactly one element, in the namespace to retrieve"));
    };
    if is_reserved(&wanted.ns) {
        return Err(reserved_error(&wanted.ns));
    }
    Ok(wanted)
}

/// The result of a get: what is stored, or the requested element back,
/// empty, when nothing is (as clients expect).
pub fn get_result(wanted: &Element, stored: Vec<Element>) -> Element {
    let mut query = Element::new("query", NS_PRIVATE);
    if stored.is_empty() {
        query.push_child(Element::new(wanted.name.clone(), wanted.ns.clone()));
    }
    for el in stored {
        query.push_child(el);
    }
    query
}

/// What a set stores: the elements grouped by namespace, in the order
/// given. Nothing is stored unless every element is acceptable.
pub fn check_set(
    query: &Element,
    max_bytes: usize,
) -> Result<Vec<(String, Vec<Element>)>, StanzaError> {
    let mut entries: Vec<(String, Vec<Element>)> = Vec::new();
    let mut size = 0usize;
    for el in query.children() {
        if is_reserved(&el.ns) {
            return Err(reserved_error(&el.ns));
        }
        size = size.saturating_add(el.to_bytes("").len());
        match entries.iter_mut().find(|(ns, _)| *ns == el.ns) {
            Some((_, list)) => list.push(el.clone()),
            None => entries.push((el.ns.to_string(), vec![el.clone()])),
        }
    }
    if entries.is_empty() {
        return Err(StanzaError::new(Condition::NotAcceptable)
            .with_text("nothing to store: include an element in its own namespace"));
    }
    if size > max_bytes {
        return Err(
            StanzaError::new(Condition::NotAcceptable).with_text(format!(
                "private XML storage is limited to {max_bytes} bytes per account"
            )),
        );
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(s: &str) -> Element {
        Element::parse(s).expect("parse")
    }

    #[test]
    fn reserved_namespaces() {
        for ns in [
            "jabber:client",
            "jabber:iq:roster",
            "http://jabber.org/protocol/muc",
            "vcard-temp",
            "",
        ] {
            assert!(is_reserved(ns), "{ns}");
        }
        for ns in [
            "storage:bookmarks",
            "exodus:prefs",
            "urn:xmpp:x",
            "vcard-temp:x:update",
        ] {
            assert!(!is_reserved(ns), "{ns}");
        }
    }

    #[test]
    fn get_names_one_unreserved_element() {
        let q = el("<query xmlns='jabber:iq:private'><prefs xmlns='exodus:prefs'/></query>");
        assert_eq!(check_get(&q).expect("ok").ns, "exodus:prefs");
        for bad in [
            "<query xmlns='jabber:iq:private'/>",
            "<query xmlns='jabber:iq:private'><a xmlns='x'/><b xmlns='y'/></query>",
            "<query xmlns='jabber:iq:private'><vCard xmlns='vcard-temp'/></query>",
            // No namespace of its own: it inherits jabber:iq:private.
            "<query xmlns='jabber:iq:private'><prefs/></query>",
        ] {
            assert_eq!(
                check_get(&el(bad)).map(|_| ()).map_err(|e| e.condition),
                Err(Condition::NotAcceptable),
                "{bad}"
            );
        }
    }

    #[test]
    fn empty_get_result_echoes_the_request() {
        let wanted = el("<storage xmlns='storage:bookmarks' extra='x'><c/></storage>");
        assert_eq!(
            get_result(&wanted, Vec::new()).to_string(),
            "<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query>"
        );
    }

    #[test]
    fn set_groups_by_namespace_and_refuses_reserved_or_big() {
        let q = el(
            "<query xmlns='jabber:iq:private'><a xmlns='x'/><b xmlns='y'/><c xmlns='x'/></query>",
        );
        let entries = check_set(&q, 1000).expect("ok");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].0, "x");
        assert_eq!(entries[0].1.len(), 2);
        assert_eq!(entries[1].0, "y");
        let reserved = el(
            "<query xmlns='jabber:iq:private'><a xmlns='x'/><vCard xmlns='vcard-temp'/></query>",
        );
        assert_eq!(
            check_set(&reserved, 1000).map_err(|e| e.condition),
            Err(Condition::NotAcceptable)
        );
        let empty = el("<query xmlns='jabber:iq:private'/>");
        assert_eq!(
            check_set(&empty, 1000).map_err(|e| e.condition),
            Err(Condition::NotAcceptable)
        );
        assert_eq!(
            check_set(&q, 10).map_err(|e| e.condition),
            Err(Condition::NotAcceptable)
        );
    }
}
