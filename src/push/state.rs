//! What push keeps in memory: each account's registrations (loaded from
//! the store on first use; memory is the truth after, written through like
//! the IM state), and per registration the state of its deliveries:
//! when the last notification left, how many messages were counted since
//! (coalescing), and which notifications await the app server's answer.
//!
//! The delivery rules are a small state machine over the clock it is
//! given: [`Delivery::on_message`] when a message arrives,
//! [`Delivery::due`] and [`Delivery::overdue`] when time passes
//! ([`PushState::due`] lists the registrations the clock made something
//! due for); nothing here sends or writes.

use std::cell::RefCell;
use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::config::PushConfig;
use crate::fasthash::{FastHash, FastMap};
use crate::jid::Jid;
use crate::store::push::StoredRegistration;
use crate::store::{Store, StoreError};
use crate::xml::Element;

use super::trigger::Summary;

/// Notifications to one registration that may await an answer; beyond
/// them messages are only counted, so a slow app server makes the server
/// hold nothing more.
pub const MAX_IN_FLIGHT: usize = 4;
/// Accounts whose registrations stay in memory without a notification in
/// flight, a message held or a write pending, before a sweep drops them.
const IDLE_ACCOUNTS: usize = 1024;

/// The clock's part of the delivery rules, from `[push]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// After a notification, messages are only counted for this long.
    pub coalesce: Duration,
    /// An app server that has not answered a notification within this
    /// long has failed it: the registration is disabled, as after an
    /// error.
    pub answer_timeout: Duration,
}

impl Timing {
    pub fn of(config: &PushConfig) -> Timing {
        Timing {
            coalesce: Duration::from_secs(config.coalesce_secs),
            answer_timeout: Duration::from_secs(config.answer_timeout_secs),
        }
    }
}

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
    /// flight): the next message's, or the one the sweep sends when it is
    /// [`Delivery::due`].
    Held,
    /// A notification went unanswered for the answer timeout: the app
    /// server failed. (The sweep normally notices first.)
    TimedOut,
}

/// The deliveries to one registration.
#[derive(Debug, Default)]
pub struct Delivery {
    last_sent: Option<Instant>,
    /// Messages counted since the last notification.
    pending: u32,
    /// What the last of those may tell; none unless the configuration
    /// lets notifications carry a sender or body (boxed: most
    /// registrations never hold one).
    held_summary: Option<Box<Summary>>,
    /// Notifications awaiting an answer: id and when it left.
    in_flight: Vec<(String, Instant)>,
}

impl Delivery {
    /// One more message, which may tell `summary`, deserves a
    /// notification at `now`.
    pub fn on_message(&mut self, now: Instant, timing: Timing, summary: &Summary) -> Verdict {
        if self.overdue(now, timing.answer_timeout) {
            return Verdict::TimedOut;
        }
        self.pending = self.pending.saturating_add(1);
        let recent = self
            .last_sent
            .is_some_and(|at| now.saturating_duration_since(at) < timing.coalesce);
        if recent || self.in_flight.len() >= MAX_IN_FLIGHT {
            self.held_summary = (*summary != Summary::default()).then(|| Box::new(summary.clone()));
            return Verdict::Held;
        }
        self.held_summary = None;
        Verdict::Send {
            message_count: std::mem::take(&mut self.pending),
        }
    }

    /// Whether a notification has awaited its answer for `answer_timeout`
    /// at `now`.
    pub fn overdue(&self, now: Instant, answer_timeout: Duration) -> bool {
        self.in_flight
            .iter()
            .any(|(_, sent)| now.saturating_duration_since(*sent) >= answer_timeout)
    }

    /// How many held messages a notification may tell at `now`: some are
    /// held, the coalescing window after the last notification is over,
    /// and fewer than [`MAX_IN_FLIGHT`] notifications await answers.
    pub fn due(&self, now: Instant, coalesce: Duration) -> Option<u32> {
        let window_over = self
            .last_sent
            .is_none_or(|at| now.saturating_duration_since(at) >= coalesce);
        (self.pending > 0 && window_over && self.in_flight.len() < MAX_IN_FLIGHT)
            .then_some(self.pending)
    }

    /// Takes the held messages (their count, and what the last may tell)
    /// for the notification that tells them.
    pub fn take_held(&mut self) -> (u32, Summary) {
        let summary = self.held_summary.take().map(|s| *s).unwrap_or_default();
        (std::mem::take(&mut self.pending), summary)
    }

    /// Whether something waits on the clock: messages held or
    /// notifications in flight.
    pub fn is_busy(&self) -> bool {
        self.pending > 0 || !self.in_flight.is_empty()
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

/// One registration of one account, named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub account: Jid,
    pub app: Jid,
    pub node: String,
}

/// What the clock made due ([`PushState::due`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Due {
    /// Registrations whose app server let a notification go unanswered
    /// for the answer timeout: to be disabled.
    pub timed_out: Vec<Target>,
    /// Registrations with held messages a notification may now tell.
    pub flushes: Vec<Target>,
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
    /// Accounts with a registration that [`Delivery::is_busy`]: the only
    /// ones [`PushState::due`] looks at, so a sweep costs nothing for the
    /// accounts that wait for nothing. Each is also in `accounts` (the
    /// idle sweep keeps busy accounts), so this is no larger than it.
    busy: RefCell<HashSet<Jid, FastHash>>,
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
        let out = f(&mut state.registrations);
        let mut busy = self.busy.borrow_mut();
        if state.registrations.iter().any(|r| r.delivery.is_busy()) {
            if !busy.contains(account) {
                busy.insert(account.clone());
            }
        } else {
            busy.remove(account);
        }
        Ok(out)
    }

    /// Whether any account waits on the clock (a sweep has work).
    pub fn has_work(&self) -> bool {
        !self.busy.borrow().is_empty()
    }

    /// The registrations the clock made something due for at `now`.
    /// (Accounts leave the busy index when [`PushState::with`] leaves them
    /// idle; any found idle here leave it too.)
    pub fn due(&self, now: Instant, timing: Timing) -> Due {
        let accounts = self.accounts.borrow();
        let mut due = Due::default();
        self.busy.borrow_mut().retain(|account| {
            let Some(state) = accounts.get(account) else {
                return false;
            };
            let mut still_busy = false;
            for r in &state.registrations {
                still_busy |= r.delivery.is_busy();
                let target = || Target {
                    account: account.clone(),
                    app: r.app.clone(),
                    node: r.node.clone(),
                };
                if r.delivery.overdue(now, timing.answer_timeout) {
                    due.timed_out.push(target());
                } else if r.delivery.due(now, timing.coalesce).is_some() {
                    due.flushes.push(target());
                }
            }
            still_busy
        });
        due
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
        self.busy.borrow_mut().remove(account);
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

    /// Drops idle accounts (nothing in flight or held, every write
    /// processed up to `committed`) once there are more than
    /// [`IDLE_ACCOUNTS`].
    fn sweep(&self, committed: u64) {
        let mut accounts = self.accounts.borrow_mut();
        if accounts.len() < IDLE_ACCOUNTS {
            return;
        }
        accounts.retain(|_, state| {
            state.last_write > committed || state.registrations.iter().any(|r| r.delivery.is_busy())
        });
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
