//! The delivery rules over a clock the tests move: coalescing, answers,
//! timeouts, and what the sweep finds due.

use super::*;
use crate::testing::TempDir;

const TIMEOUT: Duration = Duration::from_secs(60);

fn registration(node: &str, at: u64) -> Registration {
    Registration::new(
        Jid::parse("push.example").expect("jid"),
        node.into(),
        None,
        at,
    )
}

fn timing(coalesce_secs: u64) -> Timing {
    Timing {
        coalesce: Duration::from_secs(coalesce_secs),
        answer_timeout: TIMEOUT,
    }
}

/// One more message without a summary.
fn message(d: &mut Delivery, now: Instant, timing: Timing) -> Verdict {
    d.on_message(now, timing, &Summary::default())
}

#[test]
fn one_notification_a_message_without_coalescing() {
    let mut d = Delivery::default();
    let t0 = Instant::now();
    for i in 0..3 {
        let now = t0 + Duration::from_millis(i);
        assert_eq!(
            message(&mut d, now, timing(0)),
            Verdict::Send { message_count: 1 }
        );
        d.sent(format!("n{i}"), now);
        assert!(d.answered(&format!("n{i}")));
        assert_eq!(d.due(now, Duration::ZERO), None, "nothing held");
    }
    assert!(!d.answered("n0"), "answered once");
    assert!(!d.is_busy());
}

#[test]
fn messages_within_the_window_are_counted_into_the_next() {
    let mut d = Delivery::default();
    let t0 = Instant::now();
    let window = timing(30);
    assert_eq!(
        message(&mut d, t0, window),
        Verdict::Send { message_count: 1 }
    );
    d.sent("a".into(), t0);
    d.answered("a");
    let soon = t0 + Duration::from_secs(10);
    assert_eq!(message(&mut d, soon, window), Verdict::Held);
    assert_eq!(message(&mut d, soon, window), Verdict::Held);
    let later = t0 + Duration::from_secs(31);
    assert_eq!(
        message(&mut d, later, window),
        Verdict::Send { message_count: 3 }
    );
}

#[test]
fn held_messages_are_due_when_the_window_ends() {
    let mut d = Delivery::default();
    let t0 = Instant::now();
    let window = timing(30);
    message(&mut d, t0, window);
    d.sent("a".into(), t0);
    d.answered("a");
    let said = Summary {
        sender: Some("juliet@capulet.lit/balcony".into()),
        body: Some("the second".into()),
    };
    let soon = t0 + Duration::from_secs(5);
    assert_eq!(
        d.on_message(soon, window, &Summary::default()),
        Verdict::Held
    );
    assert_eq!(d.on_message(soon, window, &said), Verdict::Held);
    assert!(d.is_busy(), "held messages wait on the clock");
    assert_eq!(d.due(t0 + Duration::from_secs(29), window.coalesce), None);
    let end = t0 + Duration::from_secs(30);
    assert_eq!(d.due(end, window.coalesce), Some(2));
    assert_eq!(d.take_held(), (2, said), "the last message's summary");
    assert_eq!(d.due(end, window.coalesce), None, "told once");
    assert!(!d.is_busy());
}

#[test]
fn messages_held_by_unanswered_notifications_are_due_after_an_answer() {
    let mut d = Delivery::default();
    let t0 = Instant::now();
    for i in 0..MAX_IN_FLIGHT {
        assert!(matches!(
            message(&mut d, t0, timing(0)),
            Verdict::Send { .. }
        ));
        d.sent(format!("n{i}"), t0);
    }
    assert_eq!(message(&mut d, t0, timing(0)), Verdict::Held);
    assert_eq!(message(&mut d, t0, timing(0)), Verdict::Held);
    assert_eq!(d.due(t0, Duration::ZERO), None, "no place for it yet");
    assert!(d.answered("n2"));
    assert_eq!(d.due(t0, Duration::ZERO), Some(2));
    // With a window, the answer does not shorten it.
    assert_eq!(d.due(t0, Duration::from_secs(5)), None);
    assert_eq!(
        d.due(t0 + Duration::from_secs(5), Duration::from_secs(5)),
        Some(2)
    );
}

#[test]
fn a_silent_app_server_is_held_to_a_few_then_times_out() {
    let mut d = Delivery::default();
    let t0 = Instant::now();
    for i in 0..MAX_IN_FLIGHT {
        assert!(matches!(
            message(&mut d, t0, timing(0)),
            Verdict::Send { .. }
        ));
        d.sent(format!("n{i}"), t0);
    }
    assert_eq!(message(&mut d, t0, timing(0)), Verdict::Held);
    assert_eq!(d.in_flight_ids().count(), MAX_IN_FLIGHT);
    assert!(!d.overdue(t0 + TIMEOUT - Duration::from_millis(1), TIMEOUT));
    assert!(d.overdue(t0 + TIMEOUT, TIMEOUT));
    let late = t0 + TIMEOUT;
    assert_eq!(message(&mut d, late, timing(0)), Verdict::TimedOut);
}

#[test]
fn the_timeout_is_the_configured_one() {
    let mut d = Delivery::default();
    let t0 = Instant::now();
    let quick = Timing {
        coalesce: Duration::ZERO,
        answer_timeout: Duration::from_secs(1),
    };
    message(&mut d, t0, quick);
    d.sent("n".into(), t0);
    assert!(d.overdue(t0 + Duration::from_secs(1), quick.answer_timeout));
    assert_eq!(
        message(&mut d, t0 + Duration::from_secs(1), quick),
        Verdict::TimedOut
    );
    let config = PushConfig {
        coalesce_secs: 7,
        answer_timeout_secs: 2,
        ..PushConfig::default()
    };
    assert_eq!(
        Timing::of(&config),
        Timing {
            coalesce: Duration::from_secs(7),
            answer_timeout: Duration::from_secs(2),
        }
    );
}

#[test]
fn an_answer_frees_a_place_and_the_held_count_goes_with_the_next() {
    let mut d = Delivery::default();
    let t0 = Instant::now();
    for i in 0..MAX_IN_FLIGHT {
        message(&mut d, t0, timing(0));
        d.sent(format!("n{i}"), t0);
    }
    assert_eq!(message(&mut d, t0, timing(0)), Verdict::Held);
    assert!(d.answered("n0"));
    assert_eq!(
        message(&mut d, t0, timing(0)),
        Verdict::Send { message_count: 2 }
    );
}

/// A state with `accounts`, each with one registration (node "n"),
/// loaded from an empty store.
fn state_with(accounts: &[&str]) -> (TempDir, Store, PushState) {
    let dir = TempDir::new("push-state");
    let store = Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
    let state = PushState::default();
    for account in accounts {
        let account = Jid::parse(account).expect("jid");
        state
            .with(&store, &account, |list| list.push(registration("n", 1)))
            .expect("load");
    }
    (dir, store, state)
}

fn jid(s: &str) -> Jid {
    Jid::parse(s).expect("jid")
}

fn target(account: &str) -> Target {
    Target {
        account: jid(account),
        app: jid("push.example"),
        node: "n".into(),
    }
}

#[test]
fn the_sweep_finds_timeouts_and_flushes_only_among_busy_accounts() {
    let (_dir, store, state) = state_with(&["idle@x", "silent@x", "coalesced@x"]);
    assert!(!state.has_work(), "registrations alone wait for nothing");
    let t0 = Instant::now();
    let window = timing(30);
    let send = |account: &str, id: &str, at: Instant| {
        state
            .with(&store, &jid(account), |list| {
                let d = &mut list[0].delivery;
                let verdict = message(d, at, window);
                if matches!(verdict, Verdict::Send { .. }) {
                    d.sent(id.into(), at);
                }
                verdict
            })
            .expect("in memory")
    };
    assert!(matches!(send("silent@x", "s1", t0), Verdict::Send { .. }));
    assert!(matches!(
        send("coalesced@x", "c1", t0),
        Verdict::Send { .. }
    ));
    state
        .with(&store, &jid("coalesced@x"), |list| {
            list[0].delivery.answered("c1")
        })
        .expect("in memory");
    assert_eq!(
        send("coalesced@x", "-", t0 + Duration::from_secs(1)),
        Verdict::Held
    );
    assert!(state.has_work());
    assert_eq!(
        state.busy.borrow().len(),
        2,
        "the idle account is not looked at"
    );
    assert_eq!(
        state.due(t0 + Duration::from_secs(10), window),
        Due::default()
    );
    assert_eq!(
        state.due(t0 + Duration::from_secs(30), window),
        Due {
            timed_out: Vec::new(),
            flushes: vec![target("coalesced@x")],
        }
    );
    assert_eq!(
        state.due(t0 + TIMEOUT, window),
        Due {
            timed_out: vec![target("silent@x")],
            flushes: vec![target("coalesced@x")],
        }
    );
    // The flush is told and the silent registration goes: nothing is due,
    // and both accounts leave the index at the next sweep.
    state
        .with(&store, &jid("coalesced@x"), |list| {
            list[0].delivery.take_held()
        })
        .expect("in memory");
    state
        .with(&store, &jid("silent@x"), |list| list.clear())
        .expect("in memory");
    assert_eq!(state.due(t0 + TIMEOUT, window), Due::default());
    assert!(!state.has_work());
}

#[test]
fn busy_accounts_survive_the_idle_sweep_and_leave_the_index_when_forgotten() {
    let (_dir, store, state) = state_with(&["held@x"]);
    let t0 = Instant::now();
    state
        .with(&store, &jid("held@x"), |list| {
            let d = &mut list[0].delivery;
            d.sent("a".into(), t0);
            d.answered("a");
            message(d, t0, timing(30))
        })
        .expect("in memory");
    // Loading accounts beyond the idle limit sweeps the idle ones.
    for i in 0..IDLE_ACCOUNTS + 1 {
        state
            .with(&store, &jid(&format!("idle{i}@x")), |_| ())
            .expect("load");
    }
    let accounts = state.accounts.borrow();
    assert!(
        accounts.contains_key(&jid("held@x")),
        "a held message is kept"
    );
    assert!(accounts.len() < IDLE_ACCOUNTS, "the idle ones went");
    drop(accounts);
    state.forget(&jid("held@x"));
    assert!(!state.has_work());
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
