//! The `jabber:iq:roster` protocol (RFC 6121 §2): roster get with roster
//! versioning (§2.6), roster set to add, update (§2.3, §2.4) and remove
//! (§2.5) items, and roster pushes to the account's interested resources.

use std::collections::BTreeSet;

use crate::env::Env;
use crate::jid::Jid;
use crate::stanza::{self, Condition, StanzaError};
use crate::xml::{Element, NS_CLIENT};

use super::broadcast;
use super::cache::AccountState;
use super::roster::{Catchup, Change, MAX_GROUPS_PER_ITEM, MAX_NAME_BYTES, NS_ROSTER, Roster};
use super::subscription::{Request, SubState};

/// A roster set, parsed and checked.
#[derive(Debug, PartialEq, Eq)]
pub enum RosterSet {
    Update {
        jid: Jid,
        name: Option<String>,
        groups: Vec<String>,
    },
    Remove {
        jid: Jid,
    },
}

/// Checks a roster set against RFC 6121 §2.1.2 and §2.3.3; `owner` is the
/// account whose roster it is.
pub fn parse_set(query: &Element, owner: &Jid) -> Result<RosterSet, StanzaError> {
    let mut items = query.children().filter(|c| c.is("item", NS_ROSTER));
    let (Some(item), None) = (items.next(), items.next()) else {
        return Err(StanzaError::new(Condition::BadRequest)
            .with_text("a roster set carries exactly one item"));
    };
    let raw = item
        .attr("jid")
        .ok_or_else(|| StanzaError::new(Condition::BadRequest).with_text("the item has no jid"))?;
    let jid = Jid::parse(raw)
        .map_err(|e| StanzaError::new(Condition::JidMalformed).with_text(e.to_string()))?;
    if jid.resource().is_some() {
        return Err(StanzaError::new(Condition::BadRequest)
            .with_text("roster items are bare JIDs, without a resource"));
    }
    if jid == owner.to_bare() {
        return Err(StanzaError::new(Condition::NotAllowed)
            .with_text("an account is always subscribed to itself; it has no roster item"));
    }
    // §2.1.2.5: 'remove' is the only subscription value a client may set;
    // 'ask' and 'approved' from a client are ignored (§2.1.2.1, §2.1.2.2).
    if item.attr("subscription") == Some("remove") {
        return Ok(RosterSet::Remove { jid });
    }
    let name = match item.attr("name") {
        Some(n) if n.len() > MAX_NAME_BYTES => {
            return Err(StanzaError::new(Condition::NotAcceptable)
                .with_text(format!("the name is longer than {MAX_NAME_BYTES} bytes")));
        }
        Some("") | None => None,
        Some(n) => Some(n.to_string()),
    };
    let mut groups = Vec::new();
    let mut seen = BTreeSet::new();
    for group in item.children().filter(|c| c.is("group", NS_ROSTER)) {
        let text = group.text();
        if text.is_empty() {
            return Err(
                StanzaError::new(Condition::NotAcceptable).with_text("a group name is empty")
            );
        }
        if text.len() > MAX_NAME_BYTES {
            return Err(
                StanzaError::new(Condition::NotAcceptable).with_text(format!(
                    "a group name is longer than {MAX_NAME_BYTES} bytes"
                )),
            );
        }
        if !seen.insert(text.clone()) {
            return Err(StanzaError::new(Condition::BadRequest)
                .with_text(format!("the group {text:?} is listed twice")));
        }
        groups.push(text);
    }
    if groups.len() > MAX_GROUPS_PER_ITEM {
        return Err(
            StanzaError::new(Condition::NotAcceptable).with_text(format!(
                "an item may be in at most {MAX_GROUPS_PER_ITEM} groups"
            )),
        );
    }
    Ok(RosterSet::Update { jid, name, groups })
}

/// Handles a roster iq the account `owner` receives (RFC 6121 §2.1.5: only
/// the account's own resources may read or change it).
pub fn handle(env: &Env, iq: &Element, owner: &Jid) {
    let result = answer(env, iq, owner);
    if let Err(error) = result
        && let Some(reply) = stanza::error_reply(iq, &error)
    {
        env.reply_to_sender(reply);
    }
}

fn answer(env: &Env, iq: &Element, owner: &Jid) -> Result<(), StanzaError> {
    let from = iq.attr("from").and_then(|f| Jid::parse(f).ok());
    if from.as_ref().map(Jid::to_bare).as_ref() != Some(owner) {
        return Err(StanzaError::new(Condition::Forbidden)
            .with_text("only the account itself may use its roster"));
    }
    let Some(query) = iq.first_child() else {
        return Err(StanzaError::new(Condition::BadRequest));
    };
    let state = env.account(owner).map_err(|e| internal(&e))?;
    match iq.attr("type") {
        Some("get") => {
            if let Some(session) = from.as_ref().and_then(|f| env.session(f)) {
                session.im.roster_interested.set(true);
            }
            get(env, iq, &state.roster.borrow(), query.attr("ver"));
            Ok(())
        }
        Some("set") => set(env, iq, owner, &state, parse_set(query, owner)?),
        _ => Ok(()),
    }
}

fn internal(e: &dyn std::fmt::Display) -> StanzaError {
    log::error!("roster: {e}");
    StanzaError::new(Condition::InternalServerError)
}

fn get(env: &Env, iq: &Element, roster: &Roster, ver: Option<&str>) {
    let version = super::roster::version_string(roster.version());
    match roster.catch_up(ver) {
        Catchup::Current => env.reply_to_sender(stanza::iq_result(iq)),
        Catchup::Pushes(changes) => {
            env.reply_to_sender(stanza::iq_result(iq));
            if let Some(to) = iq.attr("from").and_then(|f| Jid::parse(f).ok()) {
                for (item, ver) in changes {
                    send_push(env, &to, item, ver);
                }
            }
        }
        Catchup::Full(items) => {
            let mut query = Element::new("query", NS_ROSTER).with_attr("ver", version);
            for item in items {
                query.push_child(item.to_element());
            }
            env.reply_to_sender(stanza::iq_result(iq).with_child(query));
        }
    }
}

fn set(
    env: &Env,
    iq: &Element,
    owner: &Jid,
    state: &AccountState,
    request: RosterSet,
) -> Result<(), StanzaError> {
    match request {
        RosterSet::Update { jid, name, groups } => {
            let changes = {
                let mut roster = state.roster.borrow_mut();
                if roster.item(&jid).is_none() && roster.len() >= env.config.im.roster_max_items {
                    return Err(roster_full(env));
                }
                let changes = roster.set_item(&jid, name, groups);
                save(env, state, owner, &roster, &changes);
                changes
            };
            env.reply_to_sender(stanza::iq_result(iq));
            push(env, owner, &changes);
        }
        RosterSet::Remove { jid } => {
            let (before, changes) = {
                let mut roster = state.roster.borrow_mut();
                let before = roster.state(&jid);
                let changes = roster.remove_item(&jid).ok_or_else(|| {
                    StanzaError::new(Condition::ItemNotFound)
                        .with_text(format!("{jid} is not on the roster"))
                })?;
                save(env, state, owner, &roster, &changes);
                (before, changes)
            };
            env.reply_to_sender(stanza::iq_result(iq));
            push(env, owner, &changes);
            end_subscriptions(env, owner, &jid, before);
        }
    }
    Ok(())
}

/// RFC 6121 §2.5.2: `contact`, whom `owner` no longer keeps (a removed
/// roster item, a deleted account), learns that every subscription between
/// them in `before` ended, and stops seeing `owner` online.
pub fn end_subscriptions(env: &Env, owner: &Jid, contact: &Jid, before: SubState) {
    if before.subscription.has_to() || before.pending_out {
        send_request(env, owner, contact, Request::Unsubscribe);
    }
    if before.subscription.has_from() || before.pending_in {
        send_request(env, owner, contact, Request::Unsubscribed);
    }
    if before.subscription.has_from() {
        broadcast::unavailable_to(env, owner, contact);
    }
}

/// RFC 6121 leaves the limit to the server; `not-allowed` says "not
/// this", and the text says why.
pub fn roster_full(env: &Env) -> StanzaError {
    StanzaError::new(Condition::NotAllowed).with_text(format!(
        "the roster is full ({} items)",
        env.config.im.roster_max_items
    ))
}

/// A subscription stanza from the user's bare JID to `contact`.
pub fn send_request(env: &Env, user: &Jid, contact: &Jid, request: Request) {
    let presence = Element::new("presence", NS_CLIENT)
        .with_attr("from", user.as_str())
        .with_attr("to", contact.as_str())
        .with_attr("type", request.as_str());
    env.deliver(presence, contact);
}

/// Writes roster changes through to the store.
pub fn save(env: &Env, state: &AccountState, owner: &Jid, roster: &Roster, changes: &[Change]) {
    if !changes.is_empty() {
        env.persist_for(
            state,
            crate::store::roster::write_op(owner, roster, changes),
        );
    }
}

/// Sends the roster pushes for `changes` to every interested resource of
/// `owner` (RFC 6121 §2.1.6).
pub fn push(env: &Env, owner: &Jid, changes: &[Change]) {
    let items: Vec<(Element, u64)> = changes.iter().filter_map(Change::push_item).collect();
    if items.is_empty() {
        return;
    }
    for session in env.sessions_of(owner) {
        if session.im.roster_interested.get() {
            for (item, ver) in &items {
                send_push(env, &session.jid, item.clone(), *ver);
            }
        }
    }
}

fn send_push(env: &Env, to: &Jid, item: Element, ver: u64) {
    let push = Element::new("iq", NS_CLIENT)
        .with_attr("type", "set")
        .with_attr("id", env.new_id())
        .with_attr("to", to.as_str())
        .with_child(
            Element::new("query", NS_ROSTER)
                .with_attr("ver", super::roster::version_string(ver))
                .with_child(item),
        );
    env.send_to_session(to, &push);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(items: &str) -> Element {
        Element::parse(&format!("<query xmlns='jabber:iq:roster'>{items}</query>")).expect("parse")
    }

    fn owner() -> Jid {
        Jid::parse("juliet@example.com").expect("jid")
    }

    fn condition(items: &str) -> Condition {
        match parse_set(&query(items), &owner()) {
            Err(e) => e.condition,
            Ok(set) => panic!("accepted {items}: {set:?}"),
        }
    }

    #[test]
    fn valid_sets() {
        assert_eq!(
            parse_set(
                &query(
                    "<item jid='Nurse@Example.com' name='Nurse' subscription='both' ask='subscribe'><group>Servants</group></item>"
                ),
                &owner()
            ),
            Ok(RosterSet::Update {
                jid: Jid::parse("nurse@example.com").expect("jid"),
                name: Some("Nurse".into()),
                groups: vec!["Servants".into()],
            })
        );
        assert_eq!(
            parse_set(
                &query("<item jid='nurse@example.com' subscription='remove'/>"),
                &owner()
            ),
            Ok(RosterSet::Remove {
                jid: Jid::parse("nurse@example.com").expect("jid"),
            })
        );
    }

    #[test]
    fn bad_sets_get_the_rfc_errors() {
        assert_eq!(condition(""), Condition::BadRequest);
        assert_eq!(
            condition("<item jid='a@b'/><item jid='c@d'/>"),
            Condition::BadRequest
        );
        assert_eq!(condition("<item/>"), Condition::BadRequest);
        assert_eq!(condition("<item jid='a@b@c'/>"), Condition::JidMalformed);
        assert_eq!(condition("<item jid='a@b/res'/>"), Condition::BadRequest);
        assert_eq!(
            condition("<item jid='Juliet@example.com'/>"),
            Condition::NotAllowed
        );
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        assert_eq!(
            condition(&format!("<item jid='a@b' name='{long}'/>")),
            Condition::NotAcceptable
        );
        assert_eq!(
            condition("<item jid='a@b'><group/></item>"),
            Condition::NotAcceptable
        );
        assert_eq!(
            condition(&format!("<item jid='a@b'><group>{long}</group></item>")),
            Condition::NotAcceptable
        );
        assert_eq!(
            condition("<item jid='a@b'><group>G</group><group>G</group></item>"),
            Condition::BadRequest
        );
    }
}
