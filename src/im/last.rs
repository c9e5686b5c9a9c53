//! XEP-0012 last activity: how long ago an account went offline (and the
//! status it left with), and how long the server has been up.
//!
//! "Offline" means a session stopped being available, by an unavailable
//! presence or by disconnecting; a session that never sent available
//! presence never was online for anyone, so it leaves no trace. For the
//! same reason an account whose sessions are connected but unavailable
//! gets the recorded logout, not the "0 seconds" XEP-0012 §3.1 gives for
//! "connected or available" resources: what others could see is that it
//! went away (and Prosody answers the same, see `lastactivity.scs`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::env::Env;
use crate::jid::Jid;
use crate::session::Session;
use crate::stanza::{Condition, StanzaError};
use crate::store::{LastLogout, last_logout};
use crate::xml::{Element, NS_CLIENT};

use super::presence_access::may_see_presence;
use super::reply;

pub const NS_LAST: &str = "jabber:iq:last";

/// The server's answer about itself: seconds since start, no text.
pub fn uptime(up: Duration) -> Element {
    Element::new("query", NS_LAST).with_attr("seconds", up.as_secs().to_string())
}

/// A last-activity query to an account's bare JID.
pub fn account_query(env: &Env, iq: &Element, account: &Jid) {
    let allowed = match (iq.attr("type"), reply::requester(iq)) {
        (Some("get"), Some(requester)) => may_see_presence(env, &requester, account),
        _ => return reply::answer(env, iq, Err(StanzaError::new(Condition::BadRequest))),
    };
    if !allowed {
        return reply::answer(env, iq, Err(StanzaError::new(Condition::Forbidden)));
    }
    // A logout is recorded when a session ends, with nobody waiting for
    // the write: read once everything submitted so far is on disk.
    let iq = iq.clone();
    let account = account.clone();
    env.after_durable(Box::new(move |env| {
        let online = env.sessions_of(&account).iter().any(|s| s.is_available());
        let outcome = match env.store.last_logouts().get(account.as_str()) {
            Ok(last) => answer(online, last.as_ref(), unix_secs(env.now())).map(Some),
            Err(e) => {
                log::error!("reading the last logout of {account}: {e}");
                Err(StanzaError::new(Condition::InternalServerError))
            }
        };
        reply::answer(env, &iq, outcome);
    }));
}

/// The answer for an account: 0 seconds while a resource is available
/// (XEP-0012 §3.1), else the time since the recorded logout and its status.
pub fn answer(
    online: bool,
    last: Option<&LastLogout>,
    now_unix: u64,
) -> Result<Element, StanzaError> {
    if online {
        return Ok(Element::new("query", NS_LAST).with_attr("seconds", "0"));
    }
    let Some(last) = last else {
        return Err(StanzaError::new(Condition::ItemNotFound)
            .with_text("no logout has been recorded for this account"));
    };
    Ok(Element::new("query", NS_LAST)
        .with_attr("seconds", now_unix.saturating_sub(last.at).to_string())
        .with_text(last.status.as_str()))
}

/// Records a logout if `session` was available until now; `presence` is
/// the unavailable presence whose status is kept (if it has one). Called
/// before the session's presence is cleared.
pub fn went_offline(env: &Env, session: &Session, presence: &Element) {
    if !session.is_available() {
        return;
    }
    let logout = LastLogout {
        at: unix_secs(env.now()),
        status: presence
            .get_child("status", NS_CLIENT)
            .map(Element::text)
            .unwrap_or_default(),
    };
    env.persist(last_logout::record_op(session.jid.bare_str(), &logout));
}

fn unix_secs(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn online_accounts_answer_zero() {
        let last = LastLogout {
            at: 100,
            status: "Heading Home".into(),
        };
        let q = answer(true, Some(&last), 1000).expect("answer");
        assert_eq!(q.to_string(), "<query xmlns='jabber:iq:last' seconds='0'/>");
        let q = answer(false, Some(&last), 1003).expect("answer");
        assert_eq!(
            q.to_string(),
            "<query xmlns='jabber:iq:last' seconds='903'>Heading Home</query>"
        );
        // A clock that went backwards does not produce a negative age.
        let q = answer(false, Some(&last), 50).expect("answer");
        assert_eq!(q.attr("seconds"), Some("0"));
        assert_eq!(
            answer(false, None, 5).map_err(|e| e.condition),
            Err(Condition::ItemNotFound)
        );
    }

    #[test]
    fn uptime_has_no_text() {
        assert_eq!(
            uptime(Duration::from_millis(123_999)).to_string(),
            "<query xmlns='jabber:iq:last' seconds='123'/>"
        );
    }
}
