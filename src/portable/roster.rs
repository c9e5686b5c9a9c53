//! The roster family: the user's contacts and the subscription requests
//! waiting for an answer.
//!
//! Contacts are the `<query xmlns='jabber:iq:roster'/>` of XEP-0227 §4.1,
//! holding RFC 6121 `<item/>`s with `jid`, `name`, `subscription`, `ask`,
//! `approved` (pre-approval, RFC 6121 §3.4) and `<group/>`s, exactly as a
//! roster result shows them. Pending inbound requests are `<presence
//! type='subscribe'/>` elements qualified by 'jabber:client', children of
//! `<user/>` (§4.4), with the requester in `from`.
//!
//! Roster versions are not part of the format: imported items all get
//! version 1, so clients fetch the whole roster once.

use std::collections::BTreeMap;

use crate::im::roster::{Change, NS_ROSTER, Roster, RosterItem, Subscription};
use crate::jid::Jid;
use crate::store::roster::{load_in, write_op};
use crate::xml::{Element, NS_CLIENT};

use super::{Family, ImportWrite, PortableError, Source};

pub struct RosterFamily;

fn is_subscription_request(child: &Element) -> bool {
    child.is("presence", NS_CLIENT) && child.attr("type") == Some("subscribe")
}

fn subscription(value: Option<&str>) -> Result<Option<Subscription>, String> {
    Ok(Some(match value.unwrap_or("none") {
        "none" => Subscription::None,
        "to" => Subscription::To,
        "from" => Subscription::From,
        "both" => Subscription::Both,
        // Not an item at all; nothing to keep.
        "remove" => return Ok(None),
        other => return Err(format!("roster item with subscription {other:?}")),
    }))
}

/// The roster item an `<item/>` describes; `None` for `subscription='remove'`.
fn parse_item(item: &Element) -> Result<Option<RosterItem>, String> {
    let raw = item.attr("jid").ok_or("a roster item without jid")?;
    let jid = Jid::parse(raw)
        .map_err(|e| format!("roster item {raw:?}: {e}"))?
        .to_bare();
    let Some(subscription) = subscription(item.attr("subscription"))? else {
        return Ok(None);
    };
    let mut parsed = RosterItem::new(jid);
    parsed.subscription = subscription;
    parsed.name = item.attr("name").map(str::to_string);
    parsed.ask = item.attr("ask") == Some("subscribe");
    parsed.approved = matches!(item.attr("approved"), Some("true" | "1"));
    parsed.groups = item
        .children()
        .filter(|g| g.is("group", NS_ROSTER))
        .map(Element::text)
        .collect();
    parsed.version = 1;
    Ok(Some(parsed))
}

impl Family for RosterFamily {
    fn name(&self) -> &'static str {
        "roster"
    }

    fn export_user(
        &self,
        source: &Source<'_>,
        user: &Jid,
        element: &mut Element,
    ) -> Result<(), PortableError> {
        let roster = load_in(source.txn, user)?;
        if !roster.is_empty() {
            let mut query = Element::new("query", NS_ROSTER);
            for item in roster.items() {
                query.push_child(item.to_element());
            }
            element.push_child(query);
        }
        for (contact, request) in roster.pending_in() {
            let mut presence = request.clone();
            presence.ns = NS_CLIENT.into();
            presence.set_attr("from", contact.as_str());
            presence.set_attr("to", user.as_str());
            presence.set_attr("type", "subscribe");
            element.push_child(presence);
        }
        Ok(())
    }

    fn claims(&self, child: &Element) -> bool {
        child.is("query", NS_ROSTER) || is_subscription_request(child)
    }

    fn import_user(
        &self,
        user: &Jid,
        element: &Element,
        _notices: &mut Vec<String>,
    ) -> Result<Option<ImportWrite>, PortableError> {
        let bad = |why: String| PortableError::BadUserData(format!("{user}: {why}"));
        let mut items: BTreeMap<Jid, RosterItem> = BTreeMap::new();
        for query in element.children().filter(|c| c.is("query", NS_ROSTER)) {
            for item in query.children().filter(|c| c.is("item", NS_ROSTER)) {
                if let Some(parsed) = parse_item(item).map_err(&bad)? {
                    items.insert(parsed.jid.clone(), parsed);
                }
            }
        }
        let mut pending: BTreeMap<Jid, Element> = BTreeMap::new();
        for request in element.children().filter(|c| is_subscription_request(c)) {
            let raw = request
                .attr("from")
                .ok_or_else(|| bad("a subscription request without from".to_string()))?;
            let from = Jid::parse(raw)
                .map_err(|e| bad(format!("subscription request from {raw:?}: {e}")))?
                .to_bare();
            pending.insert(from, request.clone());
        }
        if items.is_empty() && pending.is_empty() {
            return Ok(None);
        }
        let items: Vec<RosterItem> = items.into_values().collect();
        let pending: Vec<(Jid, Element)> = pending.into_iter().collect();
        let version = u64::from(!items.is_empty());
        let roster = Roster::from_parts(version, 0, items.clone(), Vec::new(), pending.clone());
        let changes: Vec<Change> = items
            .into_iter()
            .map(Change::Item)
            .chain(pending.into_iter().map(|(jid, request)| Change::PendingIn {
                jid,
                request: Some(request),
            }))
            .collect();
        let op = write_op(user, &roster, &changes);
        Ok(Some(Box::new(move |txn| op(txn))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_read_as_rfc_6121_writes_them() {
        let item = Element::parse(
            "<item xmlns='jabber:iq:roster' jid='Nurse@Capulet.lit/x' name='Nurse' \
             subscription='both' ask='subscribe' approved='true'>\
             <group>Servants</group><group>Capulets</group></item>",
        )
        .expect("xml");
        let parsed = parse_item(&item).expect("valid").expect("an item");
        assert_eq!(parsed.jid.as_str(), "nurse@capulet.lit");
        assert_eq!(parsed.subscription, Subscription::Both);
        assert!(parsed.ask && parsed.approved);
        assert_eq!(parsed.groups, ["Servants", "Capulets"]);
        let removed =
            Element::parse("<item xmlns='jabber:iq:roster' jid='a@b' subscription='remove'/>")
                .expect("xml");
        assert_eq!(parse_item(&removed), Ok(None));
        let odd = Element::parse("<item xmlns='jabber:iq:roster' jid='a@b' subscription='x'/>")
            .expect("xml");
        assert!(parse_item(&odd).is_err());
        let no_jid = Element::parse("<item xmlns='jabber:iq:roster'/>").expect("xml");
        assert!(parse_item(&no_jid).is_err());
    }
}
