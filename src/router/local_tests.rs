//! The delivery rules of RFC 6121 §8.5 (and the route table's other two
//! kinds of destination), against an in-process server with bound sessions
//! and no sockets: each test routes a stanza and reads what every session's
//! outbox received.

use std::rc::Rc;

use super::from_client;
use crate::jid::Jid;
use crate::session::Session;
use crate::testing::world::{World, received};
use crate::xml::{Element, NS_CLIENT};

/// The routing world: juliet, romeo and nurse.
fn world(extra: &str) -> World {
    World::new(
        &["juliet@localhost", "romeo@localhost", "nurse@localhost"],
        extra,
    )
}

/// Routing into the world, as a connection or the server would.
trait Route {
    fn send(&self, from: &Rc<Session>, xml: &str);
    fn deliver(&self, xml: &str);
    fn offline_count(&self, account: &str) -> usize;
}

impl Route for World {
    /// `xml` from `from`'s session, routed as the connection would.
    fn send(&self, from: &Rc<Session>, xml: &str) {
        let mut stanza = parse(xml);
        stanza.set_attr("from", from.jid.as_str());
        let to = stanza.attr("to").map(|t| Jid::parse(t).expect("to"));
        from_client(&self.server.env(), from, stanza, to);
    }

    /// A stanza from outside any session (the server itself, a room).
    fn deliver(&self, xml: &str) {
        let stanza = parse(xml);
        let to = Jid::parse(stanza.attr("to").expect("to")).expect("to");
        self.server.env().deliver(stanza, &to);
    }

    fn offline_count(&self, account: &str) -> usize {
        self.offline(account).len()
    }
}

/// A stanza in the client namespace, as the framer would hand it over.
fn parse(xml: &str) -> Element {
    let name_end = xml.find([' ', '>', '/']).expect("a start tag");
    let with_ns = format!(
        "{} xmlns='{NS_CLIENT}'{}",
        &xml[..name_end],
        &xml[name_end..]
    );
    Element::parse(&with_ns).expect("stanza")
}

fn error_condition(text: &str) -> Option<&str> {
    let error = text.find("type='error'")?;
    [
        "service-unavailable",
        "remote-server-not-found",
        "item-not-found",
        "resource-constraint",
    ]
    .into_iter()
    .find(|c| text[error..].contains(c))
}

#[test]
fn a_message_to_a_connected_full_jid_goes_to_that_resource_only() {
    let w = world("");
    let juliet = w.session("juliet@localhost/balcony", Some(0));
    let juliet_phone = w.session("juliet@localhost/phone", Some(0));
    let romeo = w.session("romeo@localhost/garden", Some(0));
    w.send(
        &romeo,
        "<message to='juliet@localhost/balcony' type='chat' id='m1'><body>hi</body></message>",
    );
    assert!(received(&juliet).contains("id='m1'"));
    assert!(!received(&juliet_phone).contains("id='m1'"));
    assert_eq!(received(&romeo), "");
}

#[test]
fn chat_to_the_bare_jid_goes_to_the_highest_priority_resources() {
    // RFC 6121 §8.5.2.1.1.
    let w = world("");
    let high = w.session("juliet@localhost/desk", Some(5));
    let also_high = w.session("juliet@localhost/laptop", Some(5));
    let low = w.session("juliet@localhost/phone", Some(1));
    let romeo = w.session("romeo@localhost/garden", Some(0));
    w.send(
        &romeo,
        "<message to='juliet@localhost' type='chat' id='m2'><body>hi</body></message>",
    );
    assert!(received(&high).contains("id='m2'"));
    assert!(received(&also_high).contains("id='m2'"));
    assert!(!received(&low).contains("id='m2'"));
}

#[test]
fn a_headline_to_the_bare_jid_goes_to_every_available_resource() {
    // RFC 6121 §8.5.2.1.1: headline to all non-negative resources.
    let w = world("");
    let high = w.session("juliet@localhost/desk", Some(5));
    let low = w.session("juliet@localhost/phone", Some(0));
    let negative = w.session("juliet@localhost/bot", Some(-1));
    let romeo = w.session("romeo@localhost/garden", Some(0));
    w.send(
        &romeo,
        "<message to='juliet@localhost' type='headline' id='h1'><body>news</body></message>",
    );
    assert!(received(&high).contains("id='h1'"));
    assert!(received(&low).contains("id='h1'"));
    assert!(!received(&negative).contains("id='h1'"));
}

#[test]
fn without_an_available_resource_a_chat_message_is_stored_offline() {
    // RFC 6121 §8.5.2.2.1 (and negative priority counts as unavailable).
    let w = world("");
    let negative = w.session("juliet@localhost/bot", Some(-1));
    let romeo = w.session("romeo@localhost/garden", Some(0));
    w.send(
        &romeo,
        "<message to='juliet@localhost' type='chat' id='m3'><body>later</body></message>",
    );
    assert!(!received(&negative).contains("id='m3'"));
    assert_eq!(w.offline_count("juliet@localhost"), 1);
    // A headline is not stored, an error message neither.
    w.send(
        &romeo,
        "<message to='juliet@localhost' type='headline'><body>x</body></message>",
    );
    w.send(
        &romeo,
        "<message to='juliet@localhost' type='error'><body>x</body></message>",
    );
    assert_eq!(w.offline_count("juliet@localhost"), 1);
    assert_eq!(received(&romeo), "");
}

#[test]
fn a_message_to_a_gone_resource_is_treated_by_type() {
    // RFC 6121 §8.5.3.2.1.
    let w = world("");
    let juliet = w.session("juliet@localhost/balcony", Some(0));
    let romeo = w.session("romeo@localhost/garden", Some(0));
    // chat and normal: as if to the bare JID.
    w.send(
        &romeo,
        "<message to='juliet@localhost/gone' type='chat' id='c1'><body>a</body></message>",
    );
    assert!(received(&juliet).contains("id='c1'"));
    // headline: dropped silently.
    w.send(
        &romeo,
        "<message to='juliet@localhost/gone' type='headline' id='h2'><body>a</body></message>",
    );
    assert!(!received(&juliet).contains("id='h2'"));
    assert_eq!(received(&romeo), "");
    // groupchat: service-unavailable to the sender.
    w.send(
        &romeo,
        "<message to='juliet@localhost/gone' type='groupchat' id='g1'><body>a</body></message>",
    );
    let bounced = received(&romeo);
    assert!(bounced.contains("id='g1'"), "{bounced}");
    assert_eq!(
        error_condition(&bounced),
        Some("service-unavailable"),
        "{bounced}"
    );
}

#[test]
fn an_iq_to_a_gone_resource_gets_service_unavailable_and_a_result_is_dropped() {
    // RFC 6121 §8.5.3.2.1 (iq): requests are answered, answers dropped.
    let w = world("");
    let romeo = w.session("romeo@localhost/garden", Some(0));
    w.send(
        &romeo,
        "<iq to='juliet@localhost/gone' type='get' id='q1'><ping xmlns='urn:xmpp:ping'/></iq>",
    );
    let answer = received(&romeo);
    assert!(answer.contains("id='q1'"), "{answer}");
    assert_eq!(
        error_condition(&answer),
        Some("service-unavailable"),
        "{answer}"
    );
    w.send(
        &romeo,
        "<iq to='juliet@localhost/gone' type='result' id='q2'/>",
    );
    assert_eq!(received(&romeo), "");
}

#[test]
fn stanzas_to_an_account_that_does_not_exist() {
    // RFC 6121 §8.5.1.
    let w = world("");
    let romeo = w.session("romeo@localhost/garden", Some(0));
    w.send(
        &romeo,
        "<message to='nobody@localhost' type='chat' id='n1'><body>a</body></message>",
    );
    let answer = received(&romeo);
    assert_eq!(
        error_condition(&answer),
        Some("service-unavailable"),
        "{answer}"
    );
    // A subscription request is answered with unsubscribed.
    w.send(&romeo, "<presence to='nobody@localhost' type='subscribe'/>");
    let answer = received(&romeo);
    assert!(
        answer.contains("type='unsubscribed'") && answer.contains("from='nobody@localhost'"),
        "{answer}"
    );
    // Other presence is dropped.
    w.send(&romeo, "<presence to='nobody@localhost'/>");
    assert_eq!(received(&romeo), "");
}

#[test]
fn a_groupchat_message_to_a_bare_account_is_refused() {
    let w = world("");
    let juliet = w.session("juliet@localhost/balcony", Some(0));
    let romeo = w.session("romeo@localhost/garden", Some(0));
    w.send(
        &romeo,
        "<message to='juliet@localhost' type='groupchat' id='g2'><body>a</body></message>",
    );
    assert!(!received(&juliet).contains("id='g2'"));
    assert_eq!(
        error_condition(&received(&romeo)),
        Some("service-unavailable")
    );
}

#[test]
fn a_message_without_to_goes_to_the_senders_own_account() {
    // RFC 6120 §10.3.1: no `to` is the sender's own bare JID.
    let w = world("");
    let desk = w.session("juliet@localhost/desk", Some(1));
    let phone = w.session("juliet@localhost/phone", Some(0));
    w.send(
        &desk,
        "<message type='chat' id='self'><body>note</body></message>",
    );
    assert!(received(&desk).contains("id='self'"));
    assert!(!received(&phone).contains("id='self'"));
}

#[test]
fn a_remote_domain_is_out_of_reach_without_running_federation() {
    let w = world("");
    let romeo = w.session("romeo@localhost/garden", Some(0));
    w.send(
        &romeo,
        "<message to='mercutio@example.org' type='chat' id='r1'><body>a</body></message>",
    );
    let answer = received(&romeo);
    assert!(answer.contains("id='r1'"), "{answer}");
    assert_eq!(
        error_condition(&answer),
        Some("remote-server-not-found"),
        "{answer}"
    );
    // A probe gets no error: it is the server's own question.
    w.deliver("<presence from='romeo@localhost' to='mercutio@example.org' type='probe'/>");
    assert_eq!(received(&romeo), "");
}

#[test]
fn a_service_domain_reaches_its_service() {
    // The MUC service answers its own disco#info; the user host lists it.
    let w = world("");
    let romeo = w.session("romeo@localhost/garden", Some(0));
    w.send(
        &romeo,
        "<iq to='conference.localhost' type='get' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    );
    let answer = received(&romeo);
    assert!(
        answer.contains("id='d1'") && answer.contains("type='result'"),
        "{answer}"
    );
    assert!(answer.contains("conference"), "{answer}");
    w.send(
        &romeo,
        "<iq to='localhost' type='get' id='d2'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>",
    );
    let answer = received(&romeo);
    assert!(
        answer.contains("jid='conference.localhost'") && answer.contains("name='Chatrooms'"),
        "{answer}"
    );
}

#[test]
fn a_subscription_request_past_the_limit_is_refused_with_the_limit() {
    // Romeo keeps one unanswered request; the second is answered with an
    // error naming the limit, and not kept.
    let w = world("[im]\nroster_max_items = 1\n");
    let romeo = w.session("romeo@localhost/garden", Some(0));
    let juliet = w.session("juliet@localhost/balcony", Some(0));
    let nurse = w.session("nurse@localhost/hall", Some(0));
    w.send(
        &juliet,
        "<presence to='romeo@localhost' type='subscribe' id='j'/>",
    );
    assert!(received(&romeo).contains("from='juliet@localhost'"));
    assert!(!received(&juliet).contains("type='error'"));
    w.send(
        &nurse,
        "<presence to='romeo@localhost' type='subscribe' id='n'/>",
    );
    let answer = received(&nurse);
    assert_eq!(
        error_condition(&answer),
        Some("resource-constraint"),
        "{answer}"
    );
    assert!(
        answer.contains("type='wait'")
            && answer.contains("already has 1 unanswered subscription requests"),
        "{answer}"
    );
    assert!(!received(&romeo).contains("nurse"));
}
