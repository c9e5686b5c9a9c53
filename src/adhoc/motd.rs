//! Messages from a host to its users: the message of the day, sent to each
//! session once after its initial presence (as Prosody's mod_motd: once
//! per login, not again after a stream management resumption, which keeps
//! the session), and announcements to every online resource.

use std::rc::Rc;

use crate::env::Env;
use crate::jid::Jid;
use crate::session::Session;
use crate::xml::{Element, NS_CLIENT};

/// A message from `domain` to `to`; `headline` for announcements (not
/// stored for later: they concern who is online now).
pub fn message(env: &Env, domain: &str, to: &Jid, text: &str, headline: bool) -> Element {
    let mut message = Element::new("message", NS_CLIENT)
        .with_attr("from", domain)
        .with_attr("to", to.as_str())
        .with_attr("id", env.new_id());
    if headline {
        message.set_attr("type", "headline");
    }
    message.with_child(Element::new("body", NS_CLIENT).with_text(text))
}

/// Sends `origin` its host's message of the day if it has not had it.
pub fn after_initial_presence(env: &Env, origin: &Rc<Session>) {
    if origin.im.motd_sent.replace(true) {
        return;
    }
    let domain = origin.jid.domain();
    match env.store.server_notices().motd(domain) {
        Ok(Some(text)) => origin.send(&message(env, domain, &origin.jid, &text, false)),
        Ok(None) => {}
        Err(e) => log::error!("reading the message of the day of {domain}: {e}"),
    }
}

/// Sends `text` from `domain` to every online resource of its accounts;
/// returns how many.
pub fn announce(env: &Env, domain: &str, text: &str) -> usize {
    let mut reached = 0;
    for session in env.sessions.all() {
        if session.jid.domain() == domain {
            session.send(&message(env, domain, &session.jid, text, true));
            reached += 1;
        }
    }
    reached
}
