//! The glue between delivery and push, against an in-process server
//! without sockets: Romeo enables push to an "app server" that is a
//! session of the nurse (so what it is sent can be read), Juliet writes to
//! him, and what reaches the app server depends on whether Romeo's
//! sessions are connected, asleep or gone, and on the time the sweep is
//! given.

use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::jid::Jid;
use crate::push::sweep::sweep_at;
use crate::router::from_client;
use crate::session::Session;
use crate::stream::sm::StreamManagement;
use crate::testing::world::{World, received};
use crate::xml::{Element, NS_CLIENT};

const APP: &str = "nurse@localhost/app";

fn world() -> World {
    world_with("")
}

/// A world whose configuration has `push` in its `[push]` table.
fn world_with(push: &str) -> World {
    World::new(
        &["romeo@localhost", "juliet@localhost", "nurse@localhost"],
        &format!("[push]\n{push}\n"),
    )
}

/// `xml` sent by `from`'s client, routed as its connection would.
fn send(w: &World, from: &Rc<Session>, xml: &str) {
    let mut stanza =
        Element::parse(&xml.replacen(' ', &format!(" xmlns='{NS_CLIENT}' "), 1)).expect("stanza");
    stanza.set_attr("from", from.jid.as_str());
    let to = stanza.attr("to").map(|t| Jid::parse(t).expect("to"));
    from_client(&w.server.env(), from, stanza, to);
}

/// The session's connection is gone; stream management keeps it.
fn hibernate(session: &Session) {
    let mut sm = StreamManagement::new(Some("sm-1".into()), Duration::from_secs(300));
    sm.waiting_until = Some(Instant::now() + Duration::from_secs(300));
    *session.sm.borrow_mut() = Some(sm);
}

fn enable(w: &World, romeo: &Rc<Session>) {
    send(
        w,
        romeo,
        &format!(
            "<iq type='set' id='e1'><enable xmlns='urn:xmpp:push:0' jid='{APP}' node='n1'/></iq>"
        ),
    );
    let answer = received(romeo);
    assert!(answer.contains("type='result'"), "{answer}");
}

fn registrations(w: &World) -> usize {
    let env = w.server.env();
    let romeo = Jid::parse("romeo@localhost").expect("jid");
    env.push
        .with(env.store, &romeo, |list| list.len())
        .expect("read")
}

/// The id of the one notification in `text`.
fn notification_id(text: &str) -> String {
    let at = text.find("id='push-").expect("a notification") + 4;
    let end = text[at..].find('\'').expect("end of the id") + at;
    text[at..end].to_string()
}

#[test]
fn a_connected_session_means_no_notification() {
    let w = world();
    let app = w.session(APP, Some(0));
    let romeo = w.session("romeo@localhost/phone", Some(0));
    let juliet = w.session("juliet@localhost/balcony", Some(0));
    enable(&w, &romeo);
    send(
        &w,
        &juliet,
        "<message to='romeo@localhost' type='chat'><body>hi</body></message>",
    );
    assert!(received(&romeo).contains("hi"));
    assert_eq!(received(&app), "");
}

#[test]
fn a_sleeping_session_is_notified_and_an_error_disables_the_registration() {
    let w = world();
    let app = w.session(APP, Some(0));
    let romeo = w.session("romeo@localhost/phone", Some(0));
    let juliet = w.session("juliet@localhost/balcony", Some(0));
    enable(&w, &romeo);
    hibernate(&romeo);
    // Romeo's laptop is connected: he will see it there.
    let laptop = w.session("romeo@localhost/laptop", Some(0));
    send(
        &w,
        &juliet,
        "<message to='romeo@localhost' type='chat'><body>one</body></message>",
    );
    assert_eq!(received(&app), "");
    w.server.unbind(&laptop);
    send(
        &w,
        &juliet,
        "<message to='romeo@localhost' type='chat'><body>two</body></message>",
    );
    let published = received(&app);
    assert!(published.contains("<publish node='n1'>"), "{published}");
    assert!(published.contains("from='romeo@localhost'"), "{published}");
    assert!(
        !published.contains("two"),
        "no body by default: {published}"
    );
    // Someone else's error about it changes nothing.
    let id = notification_id(&published);
    let error = format!(
        "<iq type='error' to='romeo@localhost' id='{id}'><error type='cancel'>\
         <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    );
    send(&w, &juliet, &error);
    assert_eq!(registrations(&w), 1);
    send(&w, &app, &error);
    assert_eq!(registrations(&w), 0);
    w.block_on(w.server.store().flush());
    let stored = w
        .server
        .store()
        .push_registrations("romeo@localhost")
        .expect("read");
    assert_eq!(stored, []);
}

#[test]
fn an_absent_account_is_notified_of_stored_messages() {
    let w = world();
    let app = w.session(APP, Some(0));
    let juliet = w.session("juliet@localhost/balcony", Some(0));
    {
        let romeo = w.session("romeo@localhost/phone", Some(0));
        enable(&w, &romeo);
        w.server.unbind(&romeo);
    }
    send(
        &w,
        &juliet,
        "<message to='romeo@localhost/phone' type='chat'><body>later</body></message>",
    );
    assert_eq!(w.offline("romeo@localhost").len(), 1);
    let published = received(&app);
    assert!(
        published.contains("<value>1</value>"),
        "a count of one: {published}"
    );
    // A result keeps the registration.
    let id = notification_id(&published);
    send(
        &w,
        &app,
        &format!("<iq type='result' to='romeo@localhost' id='{id}'/>"),
    );
    assert_eq!(registrations(&w), 1);
}

/// Romeo, asleep with push enabled, the app server's session, and
/// Juliet's; Juliet's first message is notified (returned).
fn asleep_and_notified(w: &World) -> (Rc<Session>, Rc<Session>, Rc<Session>, String) {
    let app = w.session(APP, Some(0));
    let romeo = w.session("romeo@localhost/phone", Some(0));
    let juliet = w.session("juliet@localhost/balcony", Some(0));
    enable(w, &romeo);
    hibernate(&romeo);
    send(
        w,
        &juliet,
        "<message to='romeo@localhost' type='chat'><body>one</body></message>",
    );
    let published = received(&app);
    assert!(published.contains("<value>1</value>"), "{published}");
    (app, romeo, juliet, published)
}

#[test]
fn the_sweep_disables_a_silent_app_server_without_another_message() {
    let w = world_with("answer_timeout_secs = 5");
    let (app, _romeo, _juliet, _published) = asleep_and_notified(&w);
    let sent = Instant::now();
    let env = w.server.env();
    assert_eq!(env.push.awaiting_count(), 1);
    sweep_at(&env, sent + Duration::from_secs(4));
    assert_eq!(registrations(&w), 1, "within the timeout");
    sweep_at(&env, sent + Duration::from_secs(6));
    assert_eq!(registrations(&w), 0);
    assert_eq!(env.push.awaiting_count(), 0, "its answer is not awaited");
    assert!(!env.push.has_work());
    assert_eq!(received(&app), "", "nothing more is sent");
    w.block_on(w.server.store().flush());
    let stored = w
        .server
        .store()
        .push_registrations("romeo@localhost")
        .expect("read");
    assert_eq!(stored, []);
}

#[test]
fn held_messages_are_told_when_the_window_ends() {
    let w = world_with("coalesce_secs = 30\ninclude_body = true");
    let (app, _romeo, juliet, published) = asleep_and_notified(&w);
    let sent = Instant::now();
    let id = notification_id(&published);
    send(
        &w,
        &app,
        &format!("<iq type='result' to='romeo@localhost' id='{id}'/>"),
    );
    for body in ["two", "three"] {
        send(
            &w,
            &juliet,
            &format!("<message to='romeo@localhost' type='chat'><body>{body}</body></message>"),
        );
    }
    assert_eq!(received(&app), "", "held within the window");
    let env = w.server.env();
    sweep_at(&env, sent + Duration::from_secs(10));
    assert_eq!(received(&app), "", "the window is not over");
    sweep_at(&env, sent + Duration::from_secs(31));
    let flushed = received(&app);
    assert!(flushed.contains("<value>2</value>"), "both held: {flushed}");
    assert!(flushed.contains("three"), "the last one's body: {flushed}");
    assert!(!flushed.contains("two"), "{flushed}");
    sweep_at(&env, sent + Duration::from_secs(62));
    assert_eq!(received(&app), "", "told once");
}

#[test]
fn held_messages_are_not_told_once_a_client_is_awake() {
    let w = world_with("coalesce_secs = 30");
    let (app, romeo, juliet, published) = asleep_and_notified(&w);
    let sent = Instant::now();
    let id = notification_id(&published);
    send(
        &w,
        &app,
        &format!("<iq type='result' to='romeo@localhost' id='{id}'/>"),
    );
    send(
        &w,
        &juliet,
        "<message to='romeo@localhost' type='chat'><body>two</body></message>",
    );
    // The phone resumes: its session is awake again.
    romeo.sm.borrow_mut().as_mut().expect("sm").waiting_until = None;
    let env = w.server.env();
    sweep_at(&env, sent + Duration::from_secs(31));
    assert_eq!(received(&app), "");
    assert!(!env.push.has_work(), "the held message is forgotten");
    assert_eq!(registrations(&w), 1);
}
