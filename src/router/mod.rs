//! Where a stanza goes once its sender is known (RFC 6120 §8, §10): the
//! route table picks the part of the server that answers for the
//! recipient's domain (`table`); the rules for local accounts (RFC 6121
//! §8.5) are in `local`, remote domains in `remote`.

mod local;
#[cfg(test)]
mod local_tests;
mod remote;
mod table;

pub use table::{Route, Routes, Service, Taken};

use std::rc::Rc;

use crate::im;
use crate::jid::Jid;
use crate::server::Server;
use crate::session::Session;
use crate::stanza::{self, Kind, StanzaError};
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

/// Delivers `stanza` to `to` through the route table, answering with the
/// errors RFC 6120/6121 prescribe when that is impossible.
pub fn deliver(server: &Server, stanza: Element, to: &Jid) {
    match server.routes.get(to.domain()) {
        Some(Route::UserHost) => {
            if to.local().is_none() {
                im::host::handle(server, stanza, to);
            } else {
                local::to_user(server, stanza, to);
            }
        }
        Some(Route::Service { service, .. }) => service.handle(server, stanza, to),
        None => remote::send(server, stanza, to),
    }
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
