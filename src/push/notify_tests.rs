//! The glue between delivery and push, against an in-process server
//! without sockets: Romeo enables push to an "app server" that is a
//! session of the nurse (so what it is sent can be read), Juliet writes to
//! him, and what reaches the app server depends on whether Romeo's
//! sessions are connected, asleep or gone.

use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::jid::Jid;
use crate::router::from_client;
use crate::session::Session;
use crate::stream::sm::StreamManagement;
use crate::testing::world::{World, received};
use crate::xml::{Element, NS_CLIENT};

const APP: &str = "nurse@localhost/app";

fn world() -> World {
    World::new(
        &["romeo@localhost", "juliet@localhost", "nurse@localhost"],
        "",
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
