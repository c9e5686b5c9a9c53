//! Stanzas addressed to the server's own domain: the iqs it answers itself
//! (disco, ping, version, time), and the rest refused as RFC 6120 says.

use std::time::SystemTime;

use crate::env::Env;
use crate::jid::Jid;
use crate::stanza::{Condition, Kind, StanzaError};
use crate::xml::Element;

use super::extdisco::{self, NS_EXTDISCO};
use super::last::{self, NS_LAST};
use super::register::{self, NS_REGISTER};
use super::{NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PING, NS_TIME, NS_VERSION, disco, reply, version};

pub fn handle(env: &Env, stanza: Element, to: &Jid) {
    match Kind::of(&stanza) {
        Some(Kind::Iq) => iq(env, stanza, to),
        // A message to the server itself has no reader; presence to the
        // server (e.g. a directed presence) needs no answer.
        Some(Kind::Message) | Some(Kind::Presence) | None => {}
    }
}

fn iq(env: &Env, iq: Element, to: &Jid) {
    let ty = iq.attr("type").unwrap_or_default();
    if ty != "get" && ty != "set" {
        // Results and errors for the server: it sends no requests yet.
        return;
    }
    if to.resource().is_none()
        && let Some(user) = local_user(env, &iq, to)
        && iq.first_child().is_some_and(|p| p.is("query", NS_REGISTER))
    {
        // Password change and account removal, addressed to the server.
        return register::from_user(env, iq, &user);
    }
    if to.resource().is_none()
        && iq
            .first_child()
            .is_some_and(|p| p.is("command", crate::adhoc::NS_COMMANDS))
    {
        // XEP-0050 ad-hoc commands (the XEP-0133 administration).
        return super::commands::execute(env, iq, to);
    }
    let answer = if to.resource().is_some() {
        Err(StanzaError::new(Condition::ServiceUnavailable))
    } else {
        answer(env, &iq, to, ty == "get")
    };
    super::reply::answer(env, &iq, answer);
}

fn answer(env: &Env, iq: &Element, to: &Jid, get: bool) -> Result<Option<Element>, StanzaError> {
    let Some(payload) = iq.first_child() else {
        return Err(StanzaError::new(Condition::BadRequest));
    };
    let ns = payload.ns.as_ref();
    match (ns, payload.name.as_ref(), get) {
        (NS_PING, "ping", true) => Ok(None),
        (NS_DISCO_INFO, "query", true) => {
            let node = payload.attr("node");
            let asker = reply::requester(iq);
            // The ad-hoc commands' nodes (XEP-0050 §2.3), else the server's.
            match node.and_then(|n| super::commands::info(env, to.domain(), asker.as_ref(), n)) {
                Some(commands) => commands.map(Some),
                None => disco::server_info(env, node).map(Some),
            }
        }
        (NS_DISCO_ITEMS, "query", true) => match payload.attr("node") {
            Some(crate::adhoc::NS_COMMANDS) => {
                let asker = reply::requester(iq);
                Ok(Some(super::commands::items(
                    env,
                    to.domain(),
                    asker.as_ref(),
                )))
            }
            node => {
                let domain = iq.attr("to").unwrap_or_default();
                disco::server_items(env, domain, node).map(Some)
            }
        },
        (NS_VERSION, "query", true) => Ok(Some(version::answer())),
        (NS_TIME, "time", true) => Ok(Some(time_answer(env.now()))),
        (NS_LAST, "query", true) => Ok(Some(last::uptime(env.started.elapsed()))),
        (NS_EXTDISCO, "services" | "credentials", true) => {
            let host = iq.attr("to").and_then(|t| Jid::parse(t).ok());
            let user = host.and_then(|h| local_user(env, iq, &h)).ok_or_else(|| {
                StanzaError::new(Condition::Forbidden)
                    .with_text("external services are for this server's users")
            })?;
            let services = &env.config.external_services;
            let now = env.now();
            if payload.name == "services" {
                Ok(Some(extdisco::services(services, &user, payload, now)))
            } else {
                extdisco::credentials(services, &user, payload, now).map(Some)
            }
        }
        (NS_REGISTER, "query", _) => Err(StanzaError::new(Condition::Forbidden)
            .with_text("only users of this server may manage their account here")),
        (
            NS_PING | NS_DISCO_INFO | NS_DISCO_ITEMS | NS_VERSION | NS_TIME | NS_LAST | NS_EXTDISCO,
            _,
            _,
        ) => Err(StanzaError::new(Condition::BadRequest)),
        _ => Err(StanzaError::new(Condition::ServiceUnavailable)),
    }
}

/// The sender of `iq` as an account of the host `to`, if it is one.
fn local_user(env: &Env, iq: &Element, to: &Jid) -> Option<Jid> {
    let from = reply::requester(iq)?;
    (from.local().is_some() && from.domain() == to.domain() && env.is_local_host(to.domain()))
        .then(|| from.to_bare())
}

/// XEP-0202. The offset is reported as UTC: a server on a Pi often has no
/// meaningful local zone, and clients render `utc` in their own.
fn time_answer(now: SystemTime) -> Element {
    Element::new("time", NS_TIME)
        .with_child(Element::new("tzo", NS_TIME).with_text("+00:00"))
        .with_child(Element::new("utc", NS_TIME).with_text(crate::datetime::format_utc(now, false)))
}
