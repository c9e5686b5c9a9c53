//! What push keeps in memory: each account's registrations (loaded from
//! the store on first use; memory is the truth after, written through like
//! the IM state), and per registration the state of its deliveries:
//! when the last notification left, how many messages were counted since
//! (coalescing), and which notifications await the app server's answer.
//!
//! The delivery rules are a small state machine over the clock it is
//! given ([`Delivery::on_message`]); nothing here sends or writes.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use crate::fasthash::FastMap;
use crate::jid::Jid;
use crate::store::push::StoredRegistration;
use crate::store::{Store, StoreError};
use crate::xml::Element;

/// An app server that has not answered a notification within this long
/// has failed it: the registration is disabled, as after an error.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// Notifications to one registration that may await an answer; beyond
/// them messages are only counted, so a slow app server makes the server
/// hold nothing more.
pub const MAX_IN_FLIGHT: usize = 4;
/// Accounts whose registrations stay in memory without a notification in
/// flight or a write pending, before a sweep drops them.
const IDLE_ACCOUNTS: usize = 1024;

/// One app server (and node) an account enabled.
#[derive(Debug)]
pub struct Registration {
    pub app: Jid,
    pub node: String,
    /// The submitted publish-options form, sent with every notification.
    pub options: Option<Element>,
    /// Unix seconds.
    pub enabled_at: u64,
    pub delivery: Delivery,
}

impl Registration {
    pub fn new(app: Jid, node: String, options: Option<Element>, enabled_at: u64) -> Self {
        Registration {
            app,
            node,
            options,
            enabled_at,
            delivery: Delivery::default(),
        }
    }

    pub fn is(&self, app: &Jid, node: &str) -> bool {
        self.app == *app && self.node == node
    }

    pub fn to_stored(&self) -> StoredRegistration {
        StoredRegistration {
            app: self.app.to_string(),
            node: self.node.clone(),
            enabled_at: self.enabled_at,
            options: self
                .options
                .as_ref()
                .map(|o| String::from_utf8_lossy(&o.to_bytes("")).into_owned())
                .unwrap_or_default(),
        }
    }

    /// A stored registration, if it can still be read.
    fn from_stored(stored: &StoredRegistration) -> Option<Self> {
        let app = Jid::parse(&stored.app).ok()?;
        let options = match stored.options.as_str() {
            "" => None,
            xml => Some(Element::parse(xml).ok()?),
        };
        Some(Registration::new(
            app,
            stored.node.clone(),
            options,
            stored.enabled_at,
        ))
    }
}

/// Adds `new` to `list`, replacing one for the same app server and node;
/// beyond `max` the oldest go. Returns those that went.
pub fn upsert(list: &mut Vec<Registration>, new: Registration, max: usize) -> Vec<Registration> {
    let mut gone: Vec<Registration> = Vec::new();
    if let Some(at) = list.iter().position(|r| r.is(&new.app, &new.node)) {
        // The same registration again: new options (XEP-0357 §5), and
        // what is in flight for it stays its own.
        let old = std::mem::replace(&mut list[at], new);
        list[at].delivery = old.delivery;
        return gone;
    }
    list.push(new);
    while list.len() > max.max(1) {
        let oldest = list
            .iter()
            .enumerate()
            .min_by_key(|(_, r)| r.enabled_at)
            .map_or(0, |(at, _)| at);
        gone.push(list.remove(oldest));
    }
    gone
}

/// What to do about one more message for a registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Publish a notification standing for this many messages.
    Send { message_count: u32 },
    /// Counted; a later notification tells it (coalescing, or too many in
    /// flight).
    Held,
    /// A notification went unanswered for [`ANSWER_TIMEOUT`]: the app
    /// server failed.
    TimedOut,
}

/// The deliveries to one registration.
#[derive(Debug, Default)]
pub struct Delivery {
    last_sent: Option<Instant>,
    /// Messages counted since the last notification.
    pending: u32,
    /// Notifications awaiting an answer: id and when it left.
    in_flight: Vec<(String, Instant)>,
}

impl Delivery {
    /// One more message deserves a notification at `now`; `coalesce` is
    /// the window after a notification in which messages are only counted.
    pub fn on_message(&mut self, now: Instant, coalesce: Duration) -> Verdict {
        let overdue = self
            .in_flight
            .iter()
            .any(|(_, sent)| now.saturating_duration_since(*sent) >= ANSWER_TIMEOUT);
        if overdue {
            return Verdict::TimedOut;
        }
        self.pending = self.pending.saturating_add(1);
        let recent = self
            .last_sent
            .is_some_and(|at| now.saturating_duration_since(at) < coalesce);
        if recent || self.in_flight.len() >= MAX_IN_FLIGHT {
            return Verdict::Held;
        }
        Verdict::Send {
            message_count: std::mem::take(&mut self.pending),
        }
    }

    /// The notification `id` left at `now`.
    pub fn sent(&mut self, id: String, now: Instant) {
        self.last_sent = Some(now);
        self.in_flight.push((id, now));
    }

    /// The app server answered `id`; false if it was not awaited.
    pub fn answered(&mut self, id: &str) -> bool {
        let before = self.in_flight.len();
        self.in_flight.retain(|(sent, _)| sent != id);
        self.in_flight.len() != before
    }

    pub fn awaits(&self, id: &str) -> bool {
        self.in_flight.iter().any(|(sent, _)| sent == id)
    }

    pub fn in_flight_ids(&self) -> impl Iterator<Item = &str> {
        self.in_flight.iter().map(|(id, _)| id.as_str())
    }
}

struct AccountPush {
    registrations: Vec<Registration>,
    /// Commit sequence number of the last write made for these.
    last_write: u64,
}

/// Push's state on the event loop.
#[derive(Default)]
pub struct PushState {
    accounts: RefCell<FastMap<Jid, AccountPush>>,
    /// Notification id -> the account it was sent for.
    awaiting: RefCell<FastMap<String, Jid>>,
}

impl PushState {
    /// Runs `f` on the registrations of `account`, loaded on first use.
    pub fn with<T>(
        &self,
        store: &Store,
        account: &Jid,
        f: impl FnOnce(&mut Vec<Registration>) -> T,
    ) -> Result<T, StoreError> {
        if !self.accounts.borrow().contains_key(account) {
            let stored = store.push_registrations(account.as_str())?;
            let registrations = stored
                .iter()
                .filter_map(|s| {
                    let loaded = Registration::from_stored(s);
                    if loaded.is_none() {
                        log::error!(
                            "push registration of {account} at {} is unreadable; ignored",
                            s.app
                        );
                    }
                    loaded
                })
                .collect();
            self.sweep(store.committed_seq());
            self.accounts.borrow_mut().insert(
                account.clone(),
                AccountPush {
                    registrations,
                    last_write: 0,
                },
            );
        }
        let mut accounts = self.accounts.borrow_mut();
        let Some(state) = accounts.get_mut(account) else {
            return Ok(f(&mut Vec::new()));
        };
        Ok(f(&mut state.registrations))
    }

    /// Notes write `seq` made for `account`'s registrations: they are not
    /// dropped from memory before it is on disk.
    pub fn wrote(&self, account: &Jid, seq: u64) {
        if let Some(state) = self.accounts.borrow_mut().get_mut(account) {
            state.last_write = state.last_write.max(seq);
        }
    }

    /// Remembers that notification `id` was sent for `account`.
    pub fn await_answer(&self, id: &str, account: &Jid) {
        self.awaiting
            .borrow_mut()
            .insert(id.to_string(), account.clone());
    }

    /// Whether notification `id`, sent for `account`, awaits an answer.
    pub fn is_awaited(&self, id: &str, account: &Jid) -> bool {
        self.awaiting.borrow().get(id) == Some(account)
    }

    /// The account notification `id` was sent for, if it is awaited; it
    /// no longer is.
    pub fn take_awaited(&self, id: &str) -> Option<Jid> {
        self.awaiting.borrow_mut().remove(id)
    }

    /// Forgets notifications that will not be answered (their
    /// registration went).
    pub fn forget_awaited<'a>(&self, ids: impl Iterator<Item = &'a str>) {
        let mut awaiting = self.awaiting.borrow_mut();
        for id in ids {
            awaiting.remove(id);
        }
    }

    /// Drops an account's state (the account was deleted).
    pub fn forget(&self, account: &Jid) {
        let gone = self.accounts.borrow_mut().remove(account);
        if let Some(gone) = gone {
            for r in &gone.registrations {
                self.forget_awaited(r.delivery.in_flight_ids());
            }
        }
    }

    /// Notifications awaiting an answer, all accounts together.
    pub fn awaiting_count(&self) -> usize {
        self.awaiting.borrow().len()
    }

    /// Drops idle accounts (nothing in flight, every write processed up to
    /// `committed`) once there are more than [`IDLE_ACCOUNTS`].
    fn sweep(&self, committed: u64) {
        let mut accounts = self.accounts.borrow_mut();
        if accounts.len() < IDLE_ACCOUNTS {
            return;
        }
        accounts.retain(|_, state| {
            state.last_write > committed
                || state
                    .registrations
                    .iter()
                    .any(|r| r.delivery.in_flight_ids().next().is_some())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(node: &str, at: u64) -> Registration {
        Registration::new(
            Jid::parse("push.example").expect("jid"),
            node.into(),
            None,
            at,
        )
    }

    #[test]
    fn one_notification_a_message_without_coalescing() {
        let mut d = Delivery::default();
        let t0 = Instant::now();
        for i in 0..3 {
            let now = t0 + Duration::from_millis(i);
            assert_eq!(
                d.on_message(now, Duration::ZERO),
                Verdict::Send { message_count: 1 }
            );
            d.sent(format!("n{i}"), now);
            assert!(d.answered(&format!("n{i}")));
        }
        assert!(!d.answered("n0"), "answered once");
    }

    #[test]
    fn messages_within_the_window_are_counted_into_the_next() {
        let mut d = Delivery::default();
        let t0 = Instant::now();
        let window = Duration::from_secs(30);
        assert_eq!(d.on_message(t0, window), Verdict::Send { message_count: 1 });
        d.sent("a".into(), t0);
        d.answered("a");
        let soon = t0 + Duration::from_secs(10);
        assert_eq!(d.on_message(soon, window), Verdict::Held);
        assert_eq!(d.on_message(soon, window), Verdict::Held);
        let later = t0 + Duration::from_secs(31);
        assert_eq!(
            d.on_message(later, window),
            Verdict::Send { message_count: 3 }
        );
    }

    #[test]
    fn a_silent_app_server_is_held_to_a_few_then_times_out() {
        let mut d = Delivery::default();
        let t0 = Instant::now();
        for i in 0..MAX_IN_FLIGHT {
            assert!(matches!(
                d.on_message(t0, Duration::ZERO),
                Verdict::Send { .. }
            ));
            d.sent(format!("n{i}"), t0);
        }
        assert_eq!(d.on_message(t0, Duration::ZERO), Verdict::Held);
        assert_eq!(d.in_flight_ids().count(), MAX_IN_FLIGHT);
        let late = t0 + ANSWER_TIMEOUT;
        assert_eq!(d.on_message(late, Duration::ZERO), Verdict::TimedOut);
    }

    #[test]
    fn an_answer_frees_a_place_and_the_held_count_goes_with_the_next() {
        let mut d = Delivery::default();
        let t0 = Instant::now();
        for i in 0..MAX_IN_FLIGHT {
            d.on_message(t0, Duration::ZERO);
            d.sent(format!("n{i}"), t0);
        }
        assert_eq!(d.on_message(t0, Duration::ZERO), Verdict::Held);
        assert!(d.answered("n0"));
        assert_eq!(
            d.on_message(t0, Duration::ZERO),
            Verdict::Send { message_count: 2 }
        );
    }

    #[test]
    fn upsert_replaces_the_same_and_evicts_the_oldest() {
        let mut list = Vec::new();
        assert!(upsert(&mut list, registration("a", 5), 2).is_empty());
        assert!(upsert(&mut list, registration("b", 3), 2).is_empty());
        list[0].delivery.sent("x".into(), Instant::now());
        // Same app server and node: replaced in place, deliveries kept.
        assert!(upsert(&mut list, registration("a", 9), 2).is_empty());
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].enabled_at, 9);
        assert!(list[0].delivery.awaits("x"));
        let gone = upsert(&mut list, registration("c", 10), 2);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].node, "b", "the oldest goes");
        let nodes: Vec<_> = list.iter().map(|r| r.node.as_str()).collect();
        assert_eq!(nodes, ["a", "c"]);
    }

    #[test]
    fn registrations_round_trip_through_the_store_layout() {
        let options = Element::parse(
            "<x xmlns='jabber:x:data' type='submit'><field var='secret'><value>s</value></field></x>",
        )
        .expect("xml");
        let r = Registration::new(
            Jid::parse("push.example").expect("jid"),
            "n".into(),
            Some(options.clone()),
            42,
        );
        let back = Registration::from_stored(&r.to_stored()).expect("readable");
        assert!(back.is(&r.app, "n"));
        assert_eq!(back.enabled_at, 42);
        assert_eq!(back.options, Some(options));
    }

    #[test]
    fn the_awaited_are_taken_once() {
        let state = PushState::default();
        let account = Jid::parse("romeo@x").expect("jid");
        state.await_answer("push-1", &account);
        state.await_answer("push-2", &account);
        assert!(state.is_awaited("push-1", &account));
        assert!(!state.is_awaited("push-1", &Jid::parse("juliet@x").expect("jid")));
        assert_eq!(state.take_awaited("push-1"), Some(account.clone()));
        assert_eq!(state.take_awaited("push-1"), None);
        state.forget_awaited(["push-2"].into_iter());
        assert_eq!(state.awaiting_count(), 0);
    }
}
