//! Where a stanza goes once its sender is known (RFC 6120 §8, §10): the
//! route table picks the part of the server that answers for the
//! recipient's domain (`table`); the rules for local accounts (RFC 6121
//! §8.5) are in `local`, remote domains in `remote`.

mod local;
#[cfg(test)]
mod local_tests;
mod remote;
mod table;

pub use table::{Route, Routes, Taken};

use std::rc::Rc;

use crate::archive;
use crate::env::{Env, Routing};
use crate::im;
use crate::jid::Jid;
use crate::pubsub;
use crate::session::Session;
use crate::stanza::Kind;
use crate::xml::{Element, NS_CLIENT};

/// Routes a stanza a bound client sent; `from` is already stamped.
pub fn from_client(env: &Env, origin: &Rc<Session>, stanza: Element, to: Option<Jid>) {
    let Some(kind) = Kind::of(&stanza) else {
        return;
    };
    if let Some(to) = &to
        && im::blocking::stop_outbound(env, origin, &stanza, to)
    {
        return;
    }
    let to = match (kind, to) {
        (Kind::Presence, Some(to)) => {
            let user = origin.jid.to_bare();
            let approval = stanza.attr("type") == Some("subscribed")
                && !pubsub::pep::has_subscriber(env, &user, &to);
            im::presence::directed_from_client(env, origin, stanza, to.clone());
            if approval && pubsub::pep::has_subscriber(env, &user, &to) {
                pubsub::pep::subscription_approved(env, &user, &to);
            }
            return;
        }
        (_, Some(to)) => to,
        (Kind::Presence, None) => {
            let available = stanza.attr("type").is_none();
            if available {
                pubsub::pep::own_presence(env, origin, &stanza);
            }
            im::presence::broadcast_own(env, origin, stanza);
            if available {
                pubsub::pep::after_own_presence(origin);
            }
            return;
        }
        // RFC 6120 §10.3: no `to` means the sender's own account.
        (_, None) => origin.jid.to_bare(),
    };
    let mut stanza = stanza;
    if kind == Kind::Message {
        match archive::chat::sent(env, &mut stanza, &origin.jid, &to) {
            // The sender's other clients learn the id with their copy
            // (XEP-0313 §5.1.1); the recipient gets its own archive's.
            Some(id) => {
                let owner = origin.jid.to_bare();
                if env.any_session_of(&owner, |s| s.id != origin.id && s.im.carbons.get()) {
                    let mut copy = stanza.clone();
                    archive::policy::stamp_id(&mut copy, owner.as_str(), &id);
                    im::carbons::copy_sent(env, origin, &copy, &to);
                }
            }
            None => im::carbons::copy_sent(env, origin, &stanza, &to),
        }
    }
    env.deliver(stanza, &to);
}

/// The route table is how handlers reach every destination.
impl Routing for Routes {
    fn deliver(&self, env: &Env, stanza: Element, to: &Jid) {
        match self.get(to.domain()) {
            Some(Route::UserHost) => {
                if to.local().is_none() {
                    im::host::handle(env, stanza, to);
                } else {
                    local::to_user(env, stanza, to);
                }
            }
            Some(Route::Service { service, .. }) => service.handle(env, stanza, to),
            None => match self.remote() {
                Some(federation) => federation.handle(env, stanza, to),
                None => remote::send(env, stanza, to),
            },
        }
    }

    fn is_user_host(&self, domain: &str) -> bool {
        Routes::is_user_host(self, domain)
    }

    fn services_of(&self, domain: &str) -> Vec<(String, String)> {
        Routes::services_of(self, domain)
            .map(|(jid, name)| (jid.to_string(), name.to_string()))
            .collect()
    }
}

/// Shorthand used by handlers: a fresh stanza in the client namespace.
pub fn new_stanza(name: &'static str) -> Element {
    Element::new(name, NS_CLIENT)
}
