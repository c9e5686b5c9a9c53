//! Federation between two Perch servers in this process, `a.test` and
//! `b.test`, each finding the other through a static `[[s2s.route]]`:
//! STARTTLS with the default self-signed certificates and dialback
//! (XEP-0220) both ways; messages, a presence subscription, a remote user
//! in a room; and what a stanza for an unreachable domain gets.

mod common;

use std::net::SocketAddr;

use common::*;
use perch::testing::{TestOptions, TestServer};

struct Pair {
    a: TestServer,
    b: TestServer,
}

fn server(domain: &str, s2s_port: u16, peer: &str, peer_port: u16, extra: &str) -> TestServer {
    TestServer::start(TestOptions {
        accounts: vec![
            (format!("alice@{domain}"), "pw".into()),
            (format!("bob@{domain}"), "pw".into()),
        ],
        extra_config: format!(
            "[[host]]\ndomain = \"{domain}\"\n\
             [[listener]]\nkind = \"s2s\"\naddress = \"127.0.0.1\"\nport = {s2s_port}\n\
             [s2s]\nallow_private_addresses = true\nconnect_timeout_secs = 10\n{extra}\
             [[s2s.route]]\ndomain = \"{peer}\"\naddress = \"127.0.0.1:{peer_port}\"\n\
             [[s2s.route]]\ndomain = \"conference.{peer}\"\naddress = \"127.0.0.1:{peer_port}\"\n"
        ),
        ..TestOptions::default()
    })
    .expect("server starts")
}

fn pair() -> Pair {
    let (pa, pb) = (free_port(), free_port());
    Pair {
        a: server("a.test", pa, "b.test", pb, ""),
        b: server("b.test", pb, "a.test", pa, ""),
    }
}

fn login_on(server: &TestServer, domain: &str, user: &str, resource: &str) -> Client {
    available_at(server.c2s_addr(), domain, (user, "pw"), resource)
}

fn body(el: &perch::xml::Element) -> String {
    el.get_child("body", NS_CLIENT)
        .map(|b| b.text())
        .unwrap_or_default()
}

#[test]
fn messages_cross_both_ways_over_dialback() {
    let pair = pair();
    let mut alice = login_on(&pair.a, "a.test", "alice", "phone");
    let mut bob = login_on(&pair.b, "b.test", "bob", "desk");
    alice.send("<message to='bob@b.test' type='chat' id='m1'><body>hello from a</body></message>");
    let got = bob.element_matching("alice's message", |el| el.name == "message");
    assert_eq!(got.attr("from"), Some("alice@a.test/phone"), "{got}");
    assert_eq!(body(&got), "hello from a");
    bob.send(
        "<message to='alice@a.test/phone' type='chat' id='m2'><body>hello from b</body></message>",
    );
    let got = alice.element_matching("bob's answer", |el| el.name == "message");
    assert_eq!(got.attr("from"), Some("bob@b.test/desk"), "{got}");
    assert_eq!(body(&got), "hello from b");
    // An iq to a remote entity gets its answer.
    let version =
        alice.iq("<iq type='get' to='b.test' id='v1'><query xmlns='jabber:iq:version'/></iq>");
    assert_eq!(version.attr("type"), Some("result"), "{version}");
}

#[test]
fn a_subscription_across_servers() {
    let pair = pair();
    let mut alice = login_on(&pair.a, "a.test", "alice", "phone");
    let mut bob = login_on(&pair.b, "b.test", "bob", "desk");
    // Roster pushes go to the resources that asked for the roster.
    alice.iq("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>");
    alice.send("<presence to='bob@b.test' type='subscribe'/>");
    let request = bob.element_matching("the subscription request", |el| {
        el.name == "presence" && el.attr("type") == Some("subscribe")
    });
    assert_eq!(request.attr("from"), Some("alice@a.test"));
    bob.send("<presence to='alice@a.test' type='subscribed'/>");
    // Alice's roster shows the subscription and she gets bob's presence.
    let push = alice.element_matching("the roster push", |el| {
        el.name == "iq"
            && el
                .first_child()
                .and_then(|q| q.first_child())
                .is_some_and(|item| item.attr("subscription") == Some("to"))
    });
    assert_eq!(push.attr("type"), Some("set"));
    let presence = alice.element_matching("bob's presence", |el| {
        el.name == "presence"
            && el.attr("from") == Some("bob@b.test/desk")
            && el.attr("type").is_none()
    });
    // Sent to her bare JID (RFC 6121 §3.1.6), delivered to her resource.
    assert!(
        presence
            .attr("to")
            .is_some_and(|to| to.starts_with("alice@a.test")),
        "{presence}"
    );
}

#[test]
fn a_remote_user_joins_a_room() {
    let pair = pair();
    let mut bob = login_on(&pair.b, "b.test", "bob", "desk");
    bob.send("<presence to='club@conference.b.test/bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>");
    // The room is created for bob; he accepts the default configuration.
    bob.element_matching("bob's self-presence", |el| {
        el.name == "presence" && el.attr("from") == Some("club@conference.b.test/bob")
    });
    bob.iq("<iq type='set' to='club@conference.b.test' id='c1'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>");
    let mut alice = login_on(&pair.a, "a.test", "alice", "phone");
    alice.send("<presence to='club@conference.b.test/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>");
    let own = alice.element_matching("alice's self-presence from the room", |el| {
        el.name == "presence"
            && el.attr("from") == Some("club@conference.b.test/alice")
            && el.attr("type").is_none()
    });
    assert_eq!(own.attr("to"), Some("alice@a.test/phone"), "{own}");
    bob.element_matching("alice joining", |el| {
        el.name == "presence" && el.attr("from") == Some("club@conference.b.test/alice")
    });
    alice.send("<message to='club@conference.b.test' type='groupchat' id='g1'><body>hi room</body></message>");
    let got = bob.element_matching("alice's groupchat", |el| {
        el.name == "message" && !body(el).is_empty()
    });
    assert_eq!(got.attr("from"), Some("club@conference.b.test/alice"));
    assert_eq!(body(&got), "hi room");
}

#[test]
fn an_unreachable_domain_gets_an_error() {
    let port = free_port();
    // A route to a port nobody listens on.
    let a = server("a.test", free_port(), "nowhere.test", port, "");
    let mut alice = login_on(&a, "a.test", "alice", "phone");
    alice.send("<message to='x@nowhere.test' id='lost'><body>anyone?</body></message>");
    let error = alice.element_matching("the bounce", |el| el.attr("id") == Some("lost"));
    assert_eq!(error.attr("type"), Some("error"), "{error}");
    assert!(
        alice.transcript().contains("remote-server-not-found"),
        "{}",
        alice.transcript()
    );
    let _ = SocketAddr::from(([127, 0, 0, 1], port));
}

#[test]
fn a_blocked_domain_is_refused() {
    let pair_ports = (free_port(), free_port());
    let a = server(
        "a.test",
        pair_ports.0,
        "b.test",
        pair_ports.1,
        "blocked_domains = [\"b.test\"]\n",
    );
    let mut alice = login_on(&a, "a.test", "alice", "phone");
    alice.send("<message to='bob@b.test' id='no'><body>hi</body></message>");
    let error = alice.element_matching("the refusal", |el| el.attr("id") == Some("no"));
    assert_eq!(error.attr("type"), Some("error"));
    assert!(
        alice.transcript().contains("not-allowed"),
        "{}",
        alice.transcript()
    );
}

#[test]
fn remote_conversations_are_archived_and_open_pep_nodes_readable() {
    let pair = pair();
    let mut alice = login_on(&pair.a, "a.test", "alice", "phone");
    let mut bob = login_on(&pair.b, "b.test", "bob", "desk");
    // Bob publishes an OMEMO-style open node.
    let published = bob.iq(
        "<iq type='set' id='p1'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
         <publish node='urn:example:bundle'><item id='current'><bundle xmlns='urn:example'>keys</bundle></item></publish>\
         <publish-options><x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>\
         <field var='pubsub#access_model'><value>open</value></field></x></publish-options></pubsub></iq>",
    );
    assert_eq!(published.attr("type"), Some("result"), "{published}");
    // Alice, on the other server, reads it without a subscription.
    let items = alice.iq(
        "<iq type='get' to='bob@b.test' id='i1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:example:bundle'/></pubsub></iq>",
    );
    assert_eq!(items.attr("type"), Some("result"), "{items}");
    assert!(items.to_string().contains("keys"), "{items}");

    // A message from the remote user is in the local archive.
    bob.send("<message to='alice@a.test' type='chat' id='arch'><body>keep this</body></message>");
    alice.element_matching("bob's message", |el| {
        el.name == "message" && body(el) == "keep this"
    });
    alice.send(
        "<iq type='set' id='q1'><query xmlns='urn:xmpp:mam:2' queryid='f1'>\
         <x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>\
         <field var='with'><value>bob@b.test</value></field></x></query></iq>",
    );
    let archived = alice.element_matching("the archived message", |el| {
        el.name == "message"
            && el.to_string().contains("keep this")
            && el.to_string().contains("urn:xmpp:mam:2")
    });
    assert!(
        archived.to_string().contains("bob@b.test/desk"),
        "{archived}"
    );
}

#[test]
fn a_new_session_learns_remote_contacts_presence_by_probe() {
    let pair = pair();
    let mut alice = login_on(&pair.a, "a.test", "alice", "phone");
    let mut bob = login_on(&pair.b, "b.test", "bob", "desk");
    // Mutual subscription.
    alice.send("<presence to='bob@b.test' type='subscribe'/>");
    bob.element_matching("alice's request", |el| el.attr("type") == Some("subscribe"));
    bob.send("<presence to='alice@a.test' type='subscribed'/>");
    bob.send("<presence to='alice@a.test' type='subscribe'/>");
    alice.element_matching("bob's request", |el| el.attr("type") == Some("subscribe"));
    alice.send("<presence to='bob@b.test' type='subscribed'/>");
    bob.element_matching("alice's presence", |el| {
        el.name == "presence"
            && el.attr("from") == Some("alice@a.test/phone")
            && el.attr("type").is_none()
    });
    // A second session of alice's: the server probes bob's server on its
    // initial presence and bob's presence arrives.
    let mut tablet = Client::connect(pair.a.c2s_addr());
    tablet
        .try_login("a.test", ("alice", "pw"), Some("tablet"))
        .unwrap();
    tablet.send("<presence/>");
    let seen = tablet.element_matching("bob's presence", |el| {
        el.name == "presence" && el.attr("from") == Some("bob@b.test/desk")
    });
    assert!(seen.attr("type").is_none(), "{seen}");
}

#[test]
fn direct_tls_links_xep_0368() {
    let (pa, pb) = (free_port(), free_port());
    let direct = |domain: &str, port: u16, peer: &str, peer_port: u16| {
        TestServer::start(TestOptions {
            accounts: vec![(format!("alice@{domain}"), "pw".into())],
            extra_config: format!(
                "[[host]]\ndomain = \"{domain}\"\n\
                 [[listener]]\nkind = \"s2s-tls\"\naddress = \"127.0.0.1\"\nport = {port}\n\
                 [s2s]\nallow_private_addresses = true\n\
                 [[s2s.route]]\ndomain = \"{peer}\"\naddress = \"127.0.0.1:{peer_port}\"\ndirect_tls = true\n"
            ),
            ..TestOptions::default()
        })
        .expect("server starts")
    };
    let a = direct("a.test", pa, "b.test", pb);
    let b = direct("b.test", pb, "a.test", pa);
    let mut on_a = Client::connect(a.c2s_addr());
    on_a.try_login("a.test", ("alice", "pw"), Some("r"))
        .unwrap();
    let mut on_b = Client::connect(b.c2s_addr());
    on_b.try_login("b.test", ("alice", "pw"), Some("r"))
        .unwrap();
    on_b.send("<presence/>");
    on_b.element_matching("the presence echo", |el| el.name == "presence");
    on_a.send("<message to='alice@b.test' type='chat'><body>tls first</body></message>");
    let got = on_b.element_matching("the message", |el| el.name == "message");
    assert_eq!(body(&got), "tls first");
}
