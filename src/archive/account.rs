//! An account's own archive (XEP-0313 §4–§7): queries, the query form,
//! preferences and metadata, asked by the account's own clients at its
//! bare JID. Anyone else gets `forbidden`.

use std::rc::Rc;

use crate::env::Env;
use crate::jid::Jid;
use crate::stanza::{self, Condition, StanzaError};
use crate::store::archive::{self, Kind};
use crate::xml::Element;

use super::page::{self, Target};
use super::prefs::Prefs;
use super::{NS_MAM, ids, query};

/// Handles an iq whose payload is in [`NS_MAM`], addressed to `account`.
pub fn handle(env: &Env, iq: Element, account: &Jid) {
    let outcome = answer(env, &iq, account);
    if let Err(error) = outcome
        && let Some(reply) = stanza::error_reply(&iq, &error)
    {
        env.reply_to_sender(reply);
    }
}

fn answer(env: &Env, iq: &Element, account: &Jid) -> Result<(), StanzaError> {
    let requester = iq.attr("from").and_then(|f| Jid::parse(f).ok());
    if requester.as_ref().is_none_or(|r| r.to_bare() != *account) {
        return Err(StanzaError::new(Condition::Forbidden)
            .with_text("only the account's own clients may use its archive"));
    }
    let Some(payload) = iq.first_child() else {
        return Err(StanzaError::new(Condition::BadRequest));
    };
    let ty = iq.attr("type").unwrap_or_default();
    match (payload.name.as_ref(), ty) {
        ("query", "get") => reply(env, iq, query::form()),
        ("query", "set") => {
            let limits = &env.config.archive;
            let parsed = query::parse(payload, limits.page_default, limits.page_max)?;
            let target = Target {
                kind: Kind::User,
                owner: account,
                show_real_jids: false,
            };
            let caught_up = page::answer(env, iq, &parsed, &target)?;
            if caught_up && let Some(session) = requester.as_ref().and_then(|r| env.session(r)) {
                // It has the archived offline messages: see `im::offline`.
                session.im.archive_queried.set(true);
            }
            Ok(())
        }
        ("prefs", "get") => {
            let prefs = env
                .archive
                .prefs_of(env.store, account)
                .map(|p| (*p).clone())
                .unwrap_or_else(|| Prefs::with_default(env.config.archive.default_policy));
            reply(env, iq, prefs.to_element())
        }
        ("prefs", "set") => {
            let prefs = Prefs::parse(payload)?;
            let op = archive::put_prefs_op(account.as_str(), prefs.encode());
            match env.account(account) {
                Ok(state) => env.persist_for(&state, op),
                Err(_) => {
                    env.persist(op);
                }
            }
            let element = prefs.to_element();
            env.archive.remember(account, Some(Rc::new(prefs)));
            reply(env, iq, element)
        }
        ("metadata", "get") => reply(env, iq, metadata(env, account)?),
        _ => Err(StanzaError::new(Condition::FeatureNotImplemented)),
    }
}

fn reply(env: &Env, iq: &Element, payload: Element) -> Result<(), StanzaError> {
    env.reply_to_sender(stanza::iq_result(iq).with_child(payload));
    Ok(())
}

/// XEP-0313 §6.3: the first and last message of the archive.
pub fn metadata_of(env: &Env, kind: Kind, owner: &Jid) -> Result<Element, StanzaError> {
    let stats = archive::stats(env.store, kind, owner.as_str()).map_err(|e| {
        log::error!("reading the archive of {owner}: {e}");
        StanzaError::new(Condition::InternalServerError)
    })?;
    let mut metadata = Element::new("metadata", NS_MAM);
    if stats.count > 0 {
        for (name, stamp) in [("start", stats.first), ("end", stats.last)] {
            metadata.push_child(
                Element::new(name, NS_MAM)
                    .with_attr("id", env.archive.ids.id(owner.as_str(), stamp))
                    .with_attr(
                        "timestamp",
                        crate::datetime::format_utc(ids::time_of(stamp), false),
                    ),
            );
        }
    }
    Ok(metadata)
}

fn metadata(env: &Env, account: &Jid) -> Result<Element, StanzaError> {
    metadata_of(env, Kind::User, account)
}
