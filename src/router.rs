//! Delivery rules: where a stanza goes once its sender is known
//! (RFC 6120 §8, §10 and RFC 6121 §8.5).

use std::rc::Rc;

use crate::im;
use crate::jid::Jid;
use crate::server::Server;
use crate::session::Session;
use crate::stanza::{self, Condition, Kind, StanzaError};
use crate::xml::{Element, NS_CLIENT};

/// Routes a stanza a bound client sent; `from` is already stamped.
pub fn from_client(server: &Server, origin: &Rc<Session>, stanza: Element, to: Option<Jid>) {
    let Some(kind) = Kind::of(&stanza) else {
        return;
    };
    if let Some(to) = &to
        && im::blocking::stop_outbound(server, origin, &stanza, to)
    {
        return;
    }
    let to = match (kind, to) {
        (Kind::Presence, Some(to)) => {
            return im::presence::directed_from_client(server, origin, stanza, to);
        }
        (_, Some(to)) => to,
        (Kind::Presence, None) => return im::presence::broadcast_own(server, origin, stanza),
        // RFC 6120 §10.3: no `to` means the sender's own account.
        (_, None) => origin.jid.to_bare(),
    };
    if kind == Kind::Message {
        im::carbons::copy_sent(server, origin, &stanza, &to);
    }
    deliver(server, stanza, &to);
}

/// Delivers `stanza` to `to`, answering with the errors RFC 6120/6121
/// prescribe when that is impossible.
pub fn deliver(server: &Server, stanza: Element, to: &Jid) {
    if server.is_local_host(to.domain()) {
        if to.local().is_none() {
            im::host::handle(server, stanza, to);
        } else {
            to_local_user(server, stanza, to);
        }
    } else if server.is_muc_host(to.domain()) {
        crate::muc::handle(server, stanza, to);
    } else if is_probe(&stanza) {
        // A probe is the server's own question; an error about it would
        // reach the user's clients as noise (RFC 6121 §4.3).
    } else {
        // No federation yet: every other domain is out of reach.
        bounce(
            server,
            &stanza,
            StanzaError::new(Condition::RemoteServerNotFound)
                .with_text(format!("{} is not reachable from this server", to.domain())),
        );
    }
}

fn is_probe(stanza: &Element) -> bool {
    Kind::of(stanza) == Some(Kind::Presence) && stanza.attr("type") == Some("probe")
}

/// Sends the error reply for `stanza` back to its sender.
pub fn bounce(server: &Server, stanza: &Element, error: StanzaError) {
    let Some(reply) = stanza::error_reply(stanza, &error) else {
        return;
    };
    reply_to_sender(server, reply);
}

/// Delivers a reply (result or error) to the address in its `to`.
pub fn reply_to_sender(server: &Server, reply: Element) {
    let to = reply.attr("to").and_then(|t| Jid::parse(t).ok());
    match to {
        Some(to) => deliver(server, reply, &to),
        None => log::debug!("dropping reply without a valid recipient: {reply}"),
    }
}

fn to_local_user(server: &Server, stanza: Element, to: &Jid) {
    let kind = Kind::of(&stanza);
    let bare = to.to_bare();
    // Online accounts (the common case) are known without a store read.
    if !server.has_open_session(&bare) && !server.account_exists(&bare) {
        if im::tombstones::to_deleted_account(server, &stanza, &bare) {
            return;
        }
        // RFC 6121 §8.5.1: no such user.
        match kind {
            Some(Kind::Presence) => im::presence::to_missing_account(server, &stanza, &bare),
            _ => bounce(
                server,
                &stanza,
                StanzaError::new(Condition::ServiceUnavailable),
            ),
        }
        return;
    }
    if im::blocking::stop_inbound(server, &stanza, &bare) {
        return;
    }
    if kind == Some(Kind::Presence) && im::presence::is_for_account(&stanza) {
        // Subscription stanzas and probes concern the account, whatever
        // resource they name (RFC 6121 §3, §4.3).
        return im::presence::to_bare(server, stanza, &bare);
    }
    if to.resource().is_some() {
        if let Some(session) = server.session(to) {
            session.send(&stanza);
            if kind == Some(Kind::Message) {
                im::carbons::copy_received(server, &stanza, &bare, &[session.id]);
            }
            return;
        }
        // RFC 6121 §8.5.3.2: no such resource.
        match kind {
            Some(Kind::Message) => match stanza.attr("type") {
                Some("error") => {}
                Some("groupchat") => bounce(
                    server,
                    &stanza,
                    StanzaError::new(Condition::ServiceUnavailable),
                ),
                // RFC 6121 §8.5.3.2.1: a headline for a gone resource is
                // silently dropped.
                Some("headline") => {}
                _ => to_bare_account(server, stanza, &bare),
            },
            Some(Kind::Presence) => im::presence::to_unavailable_resource(server, stanza, to),
            Some(Kind::Iq) => {
                if matches!(stanza.attr("type"), Some("get") | Some("set")) {
                    bounce(
                        server,
                        &stanza,
                        StanzaError::new(Condition::ServiceUnavailable),
                    );
                }
            }
            None => {}
        }
        return;
    }
    to_bare_account(server, stanza, &bare);
}

/// RFC 6121 §8.5.2: a stanza addressed to an existing account's bare JID.
fn to_bare_account(server: &Server, stanza: Element, bare: &Jid) {
    match Kind::of(&stanza) {
        Some(Kind::Message) => message_to_bare(server, stanza, bare),
        Some(Kind::Presence) => im::presence::to_bare(server, stanza, bare),
        Some(Kind::Iq) => im::account::handle(server, stanza, bare),
        None => {}
    }
}

fn message_to_bare(server: &Server, stanza: Element, bare: &Jid) {
    let ty = stanza.attr("type").unwrap_or("normal");
    if ty == "error" {
        return;
    }
    if ty == "groupchat" {
        return bounce(
            server,
            &stanza,
            StanzaError::new(Condition::ServiceUnavailable),
        );
    }
    let available: Vec<Rc<Session>> = server
        .sessions_of(bare)
        .into_iter()
        .filter(|s| s.is_available() && s.priority.get() >= 0)
        .collect();
    if available.is_empty() {
        im::carbons::copy_received(server, &stanza, bare, &[]);
        return im::offline::no_resource_available(server, stanza, bare);
    }
    let mut delivered = Vec::with_capacity(available.len());
    if ty == "headline" {
        for s in &available {
            s.send(&stanza);
            delivered.push(s.id);
        }
    } else {
        // chat and normal go to the highest-priority resources only.
        let top = available
            .iter()
            .map(|s| s.priority.get())
            .max()
            .unwrap_or(0);
        for s in available.iter().filter(|s| s.priority.get() == top) {
            s.send(&stanza);
            delivered.push(s.id);
        }
    }
    im::carbons::copy_received(server, &stanza, bare, &delivered);
}

/// A stanza from the server itself to a local full JID, e.g. an iq result.
pub fn send_to_session(server: &Server, to: &Jid, stanza: &Element) -> bool {
    match server.session(to) {
        Some(s) => {
            s.send(stanza);
            true
        }
        None => false,
    }
}

/// Shorthand used by handlers: a fresh stanza in the client namespace.
pub fn new_stanza(name: &'static str) -> Element {
    Element::new(name, NS_CLIENT)
}
