//! Sending notifications and hearing back: the glue between the delivery
//! rules (`router::local` and the rooms' `muc::dispatch`, which call
//! [`message_stored`] and [`message_queued`]) and the decisions of
//! `trigger` and `state`.
//! Notifications leave from the account's bare JID through the router, so
//! a local app server (a component, the pubsub service) gets them
//! directly and a remote one over federation; its answer (or the bounce
//! of an unreachable one) comes back to that bare JID ([`answer`]).

use std::time::Instant;

use crate::env::Env;
use crate::jid::Jid;
use crate::session::Session;
use crate::stanza::Kind;
use crate::xml::Element;

use super::notification::Notification;
use super::state::{Registration, Timing, Verdict};
use super::trigger::{self, Summary};

/// Notification ids start with this, so an answer is recognized cheaply.
const ID_PREFIX: &str = "push-";

/// Whether a session is asleep: stream management keeps it for its client
/// to resume, and no connection carries it (XEP-0198 §4).
pub fn is_hibernated(session: &Session) -> bool {
    session
        .sm
        .borrow()
        .as_ref()
        .is_some_and(|sm| sm.waiting_until.is_some())
}

/// `message` for `account` went to offline storage (or nowhere): no
/// session of the account was available for it.
pub fn message_stored(env: &Env, message: &Element, account: &Jid) {
    if !nobody_awake(env, account) {
        // A connected client that is not available (negative priority,
        // no presence yet) learns of stored messages itself.
        return;
    }
    if let Some(reason) = trigger::reason(message, None) {
        notify(env, message, account, reason);
    }
}

/// `message` was queued for `session`: if every session of its account
/// is asleep, nobody will see it unless the phone wakes. Called for every
/// message a session is sent (the router's and the rooms'), so the common
/// case, a connected session, costs one check.
pub fn message_queued(env: &Env, message: &Element, session: &Session) {
    if !is_hibernated(session) || Kind::of(message) != Some(Kind::Message) {
        return;
    }
    let account = session.jid.to_bare();
    if !nobody_awake(env, &account) {
        return;
    }
    let nick = room_nick(session, message);
    if let Some(reason) = trigger::reason(message, nick.as_deref()) {
        notify(env, message, &account, reason);
    }
}

/// Whether every session of `account` is asleep, or it has none: only
/// then does a message deserve a notification.
pub(super) fn nobody_awake(env: &Env, account: &Jid) -> bool {
    !env.any_session_of(account, |s| !is_hibernated(s))
}

/// The nickname `session` uses in the room a groupchat `message` comes
/// from: the resource of the presence it sent to that room.
fn room_nick(session: &Session, message: &Element) -> Option<String> {
    if message.attr("type") != Some("groupchat") {
        return None;
    }
    let room = Jid::parse(message.attr("from")?).ok()?;
    session
        .directed
        .borrow()
        .iter()
        .find(|j| j.bare_str() == room.bare_str())
        .and_then(|j| j.resource().map(str::to_string))
}

/// Publishes (or counts) a notification for `message` to each of the
/// account's registrations.
fn notify(env: &Env, message: &Element, account: &Jid, reason: trigger::Reason) {
    let config = &env.config.push;
    let summary = trigger::summary(message, reason, config);
    let timing = Timing::of(config);
    let now = env.clock();
    let mut outgoing = Vec::new();
    let decided = env.push.with(env.store, account, |list| {
        let mut failed = Vec::new();
        for (at, r) in list.iter_mut().enumerate() {
            match r.delivery.on_message(now, timing, &summary) {
                Verdict::Send { message_count } => {
                    outgoing.push(publish(env, account, r, message_count, &summary, now));
                }
                Verdict::Held => {}
                Verdict::TimedOut => failed.push(at),
            }
        }
        failed
            .into_iter()
            .rev()
            .map(|at| list.remove(at))
            .collect::<Vec<_>>()
    });
    let failed = match decided {
        Ok(failed) => failed,
        Err(e) => return log::error!("push registrations of {account}: {e}"),
    };
    for r in failed {
        disable(env, account, r, &timed_out(timing));
    }
    send(env, account, outgoing);
}

/// A notification built and noted as sent, to be delivered by [`send`]:
/// its id, the app server, the iq.
pub(super) type Outgoing = (String, Jid, Element);

/// The notification to `r` standing for `message_count` messages, which
/// may tell `summary`; `r` notes it as sent at `now`.
pub(super) fn publish(
    env: &Env,
    account: &Jid,
    r: &mut Registration,
    message_count: u32,
    summary: &Summary,
    now: Instant,
) -> Outgoing {
    let id = format!("{ID_PREFIX}{}", env.new_id());
    let iq = Notification {
        from: account.as_str(),
        to: r.app.as_str(),
        id: &id,
        node: &r.node,
        message_count,
        summary,
        options: r.options.as_ref(),
    }
    .to_iq();
    r.delivery.sent(id.clone(), now);
    (id, r.app.clone(), iq)
}

/// Delivers notifications built by [`publish`]; their answers are awaited.
pub(super) fn send(env: &Env, account: &Jid, outgoing: Vec<Outgoing>) {
    for (id, app, iq) in outgoing {
        env.push.await_answer(&id, account);
        env.deliver(iq, &app);
    }
}

/// Why a registration whose app server did not answer is disabled.
pub(super) fn timed_out(timing: Timing) -> String {
    format!(
        "did not answer a notification in {} s",
        timing.answer_timeout.as_secs()
    )
}

/// If `iq` (to `account`'s bare JID) answers a notification, handles it:
/// a result frees its place, an error disables the registration. False
/// for any other iq.
pub fn answer(env: &Env, iq: &Element, account: &Jid) -> bool {
    let error = match iq.attr("type") {
        Some("result") => false,
        Some("error") => true,
        _ => return false,
    };
    let Some(id) = iq.attr("id").filter(|id| id.starts_with(ID_PREFIX)) else {
        return false;
    };
    if !env.push.is_awaited(id, account) {
        return false;
    }
    env.push.take_awaited(id);
    let from = iq.attr("from").and_then(|f| Jid::parse(f).ok());
    let found = env.push.with(env.store, account, |list| {
        let Some(at) = list.iter().position(|r| r.delivery.awaits(id)) else {
            return Answered::Unknown;
        };
        // The app server, or an entity at its address (a bare JID app
        // server answering from a resource).
        let app = &list[at].app;
        if !from
            .as_ref()
            .is_some_and(|f| f == app || f.to_bare() == app.to_bare())
        {
            return Answered::NotFromTheAppServer;
        }
        if error {
            return Answered::Failed(Box::new(list.remove(at)));
        }
        list[at].delivery.answered(id);
        Answered::Fine
    });
    match found {
        Ok(Answered::Failed(gone)) => {
            let why = format!("answered with {}", condition(iq));
            disable(env, account, *gone, &why);
        }
        // Someone else's word about our notification counts for nothing:
        // the app server's answer is still awaited.
        Ok(Answered::NotFromTheAppServer) => env.push.await_answer(id, account),
        Ok(Answered::Fine | Answered::Unknown) => {}
        Err(e) => log::error!("push registrations of {account}: {e}"),
    }
    true
}

enum Answered {
    Fine,
    Failed(Box<Registration>),
    NotFromTheAppServer,
    /// Its registration went meanwhile.
    Unknown,
}

/// The stanza error condition of an error reply, for the log.
fn condition(iq: &Element) -> String {
    iq.get_child("error", crate::xml::NS_CLIENT)
        .and_then(|e| {
            e.children()
                .find(|c| c.ns == crate::stanza::NS_STANZAS)
                .map(|c| c.name.to_string())
        })
        .unwrap_or_else(|| "an error".into())
}

/// Removes a registration whose app server failed (XEP-0357 §7: an error
/// disables it), in memory (done by the caller) and on disk.
pub(super) fn disable(env: &Env, account: &Jid, gone: Registration, why: &str) {
    log::info!(
        "push: {} (node {}) {why}; disabled for {account}",
        gone.app,
        gone.node
    );
    env.push.forget_awaited(gone.delivery.in_flight_ids());
    match crate::store::push::delete_op(account.as_str(), gone.app.as_str(), &gone.node) {
        Ok(op) => env.push.wrote(account, env.persist(op)),
        Err(e) => log::error!("push registrations of {account}: {e}"),
    }
}
