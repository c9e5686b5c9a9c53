//! The sessions a client may resume (XEP-0198 §4), by resumption id, and a
//! short memory of those that ended, so a late `<resume/>` learns how many
//! of its stanzas the server handled (`<failed h/>`).
//!
//! Ids are 18 bytes from the operating system's random generator (144
//! bits: unguessable), and an id only resumes a session of the account
//! that authenticated the new stream: someone else's id, even a valid one,
//! is answered exactly like an unknown one.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::fasthash::FastMap;
use crate::ids::Ids;
use crate::jid::Jid;
use crate::session::Session;

/// How long the `h` of an ended session is kept for a late `<resume/>`.
pub const ENDED_KEPT: Duration = Duration::from_secs(3600);
/// At most this many ended sessions are remembered (a few dozen bytes
/// each); the oldest are forgotten first.
pub const MAX_ENDED: usize = 10_000;

/// What a `<resume/>` finds.
pub enum Found {
    Session(Rc<Session>),
    /// Nothing to resume; `h` is what the session had handled, if it ended
    /// recently (and was the same account's).
    Nothing {
        h: Option<u32>,
    },
}

struct Ended {
    account: Box<str>,
    handled: u32,
    at: Instant,
}

#[derive(Default)]
pub struct Resumption {
    live: RefCell<FastMap<Box<str>, Rc<Session>>>,
    ended: RefCell<FastMap<Box<str>, Ended>>,
    /// `ended`'s ids, oldest first.
    ended_order: RefCell<VecDeque<Box<str>>>,
}

impl Resumption {
    /// A fresh resumption id.
    pub fn new_id(ids: &Ids) -> Box<str> {
        let bytes: [u8; 18] = ids.random_bytes();
        let mut id = Vec::with_capacity(24);
        crate::sasl::base64::encode_into(&bytes, &mut id);
        String::from_utf8_lossy(&id).into()
    }

    pub fn register(&self, id: &str, session: Rc<Session>) {
        self.live.borrow_mut().insert(id.into(), session);
    }

    /// The session `id` names, if it belongs to `account` (bare).
    pub fn find(&self, id: &str, account: &Jid, now: Instant) -> Found {
        let bare = account.bare_str();
        if let Some(session) = self.live.borrow().get(id)
            && session.jid.bare_str() == bare
        {
            return Found::Session(session.clone());
        }
        let h = self
            .ended
            .borrow()
            .get(id)
            .filter(|e| &*e.account == bare && now.duration_since(e.at) < ENDED_KEPT)
            .map(|e| e.handled);
        Found::Nothing { h }
    }

    /// The session `id` ended (or is no longer resumable) having handled
    /// `handled` stanzas.
    pub fn ended(&self, id: &str, account: &Jid, handled: u32, now: Instant) {
        self.live.borrow_mut().remove(id);
        let mut ended = self.ended.borrow_mut();
        let mut order = self.ended_order.borrow_mut();
        while order.len() >= MAX_ENDED
            || order.front().is_some_and(|oldest| {
                ended
                    .get(oldest)
                    .is_none_or(|e| now.duration_since(e.at) >= ENDED_KEPT)
            })
        {
            match order.pop_front() {
                Some(oldest) => {
                    ended.remove(&oldest);
                }
                None => break,
            }
        }
        ended.insert(
            id.into(),
            Ended {
                account: account.bare_str().into(),
                handled,
                at: now,
            },
        );
        order.push_back(id.into());
    }

    /// Every resumable session (to save them when the server stops).
    pub fn all(&self) -> Vec<Rc<Session>> {
        self.live.borrow().values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::Outbox;
    use crate::section::OutputHold;

    fn session(full: &str) -> Rc<Session> {
        Rc::new(Session::new(
            1,
            Jid::parse(full).expect("jid"),
            Outbox::new(),
            OutputHold::new(),
        ))
    }

    #[test]
    fn ids_are_random_and_attribute_safe() {
        let ids = Ids::default();
        let a = Resumption::new_id(&ids);
        let b = Resumption::new_id(&ids);
        assert_ne!(a, b);
        assert_eq!(a.len(), 24);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
        );
    }

    #[test]
    fn only_the_same_account_finds_a_session() {
        let r = Resumption::default();
        let now = Instant::now();
        r.register("id1", session("juliet@example.com/balcony"));
        let juliet = Jid::parse("juliet@example.com").expect("jid");
        let romeo = Jid::parse("romeo@example.com").expect("jid");
        assert!(matches!(r.find("id1", &juliet, now), Found::Session(_)));
        assert!(matches!(
            r.find("id1", &romeo, now),
            Found::Nothing { h: None }
        ));
        assert!(matches!(
            r.find("other", &juliet, now),
            Found::Nothing { h: None }
        ));
    }

    #[test]
    fn an_ended_session_tells_its_count_for_an_hour() {
        let r = Resumption::default();
        let now = Instant::now();
        let juliet = Jid::parse("juliet@example.com").expect("jid");
        let romeo = Jid::parse("romeo@example.com").expect("jid");
        r.register("id1", session("juliet@example.com/balcony"));
        r.ended("id1", &juliet, 42, now);
        assert!(r.all().is_empty());
        assert!(matches!(
            r.find("id1", &juliet, now),
            Found::Nothing { h: Some(42) }
        ));
        assert!(matches!(
            r.find("id1", &romeo, now),
            Found::Nothing { h: None }
        ));
        assert!(matches!(
            r.find("id1", &juliet, now + ENDED_KEPT),
            Found::Nothing { h: None }
        ));
    }

    #[test]
    fn ended_sessions_are_bounded() {
        let r = Resumption::default();
        let now = Instant::now();
        let juliet = Jid::parse("juliet@example.com").expect("jid");
        for i in 0..MAX_ENDED + 5 {
            r.ended(&format!("id{i}"), &juliet, 1, now);
        }
        assert_eq!(r.ended.borrow().len(), MAX_ENDED);
        assert!(matches!(
            r.find("id0", &juliet, now),
            Found::Nothing { h: None }
        ));
        assert!(matches!(
            r.find(&format!("id{}", MAX_ENDED + 4), &juliet, now),
            Found::Nothing { h: Some(1) }
        ));
    }
}
