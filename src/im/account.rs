//! iqs addressed to an account's bare JID, which the server answers on the
//! account's behalf (RFC 6121 §8.5.2.1.3).

use crate::env::Env;
use crate::jid::Jid;
use crate::stanza::{self, Condition, StanzaError};
use crate::xml::Element;

use super::last::NS_LAST;
use super::private::NS_PRIVATE;
use super::register::NS_REGISTER;
use super::vcard::NS_VCARD;
use super::{NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PING, disco, last, private, register, vcard};

pub fn handle(env: &Env, iq: Element, account: &Jid) {
    let ty = iq.attr("type").unwrap_or_default();
    if ty != "get" && ty != "set" {
        return;
    }
    if super::own_iq::dispatch(env, &iq, account) {
        return;
    }
    let owner_asking = iq
        .attr("from")
        .and_then(|f| Jid::parse(f).ok())
        .is_some_and(|f| f.to_bare() == *account);
    // Account data: these may answer only once a write is on disk.
    match iq.first_child().map(|p| (p.name.as_ref(), p.ns.as_ref())) {
        Some(("vCard", NS_VCARD)) => return vcard::account_query(env, iq, account),
        Some(("query", NS_PRIVATE)) => return private::account_query(env, iq, account),
        Some(("query", NS_LAST)) => return last::account_query(env, &iq, account),
        Some(("query", NS_REGISTER)) => return register::from_user(env, iq, account),
        _ => {}
    }
    let answer = match iq.first_child() {
        Some(p) if p.is("ping", NS_PING) && ty == "get" => Ok(None),
        Some(p) if p.is("query", NS_DISCO_INFO) && ty == "get" => {
            disco::account_info(owner_asking, p.attr("node")).map(Some)
        }
        Some(p) if p.is("query", NS_DISCO_ITEMS) && ty == "get" => {
            disco::account_items(p.attr("node")).map(Some)
        }
        _ => Err(StanzaError::new(Condition::ServiceUnavailable)),
    };
    super::reply::answer(env, &iq, answer);
}

/// Used by handlers that answer with just a payload.
pub fn result_with(iq: &Element, payload: Element) -> Element {
    stanza::iq_result(iq).with_child(payload)
}
