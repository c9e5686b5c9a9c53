//! Account features end to end over real connections: what a client
//! stores survives a restart, and in-band registration (XEP-0077) works
//! before login, which the scansion scripts cannot play.

mod common;

use std::net::SocketAddr;

use common::{Client, Sasl, error_condition as condition, login_at};
use perch::testing::{TestOptions, TestServer};
use perch::xml::Element;

/// A plaintext client whose stream is open; returns it with the features.
fn open(addr: SocketAddr) -> (Client, Element) {
    let mut client = Client::connect(addr);
    let features = client.open();
    (client, features)
}

/// SASL PLAIN; true on success.
fn auth(client: &mut Client, user: &str, password: &str) -> bool {
    matches!(client.auth_plain(user, password), Sasl::Success(_))
}

/// Logs in and binds a resource the server picks; panics if that fails.
fn login(addr: SocketAddr, user: &str, password: &str) -> Client {
    login_at(addr, (user, password), None)
}

fn romeo() -> TestOptions {
    TestOptions {
        accounts: vec![("romeo@localhost".into(), "password".into())],
        ..TestOptions::default()
    }
}

#[test]
fn vcard_and_private_xml_survive_a_restart() {
    let server = TestServer::start(romeo()).expect("server");
    let mut c = login(server.c2s_addr(), "romeo", "password");
    let set = c.iq(
        "<iq type='set' id='v'><vCard xmlns='vcard-temp'><FN>Romeo</FN>\
                    <PHOTO><BINVAL>aGVsbG8gYXZhdGFy</BINVAL></PHOTO></vCard></iq>",
    );
    assert_eq!(set.attr("type"), Some("result"), "{set}");
    let set = c.iq("<iq type='set' id='p'><query xmlns='jabber:iq:private'>\
                    <storage xmlns='storage:bookmarks'><conference jid='r@conference.localhost'/></storage>\
                    </query></iq>");
    assert_eq!(set.attr("type"), Some("result"), "{set}");
    drop(c);

    let server = server.restart(TestOptions::default()).expect("restart");
    let mut c = login(server.c2s_addr(), "romeo", "password");
    let vcard = c.iq("<iq type='get' id='v2'><vCard xmlns='vcard-temp'/></iq>");
    let fn_text = vcard
        .get_child("vCard", "vcard-temp")
        .and_then(|v| v.get_child("FN", "vcard-temp"))
        .map(Element::text);
    assert_eq!(fn_text.as_deref(), Some("Romeo"), "{vcard}");
    let private = c.iq("<iq type='get' id='p2'><query xmlns='jabber:iq:private'>\
                        <storage xmlns='storage:bookmarks'/></query></iq>");
    let conference = private
        .get_child("query", "jabber:iq:private")
        .and_then(|q| q.get_child("storage", "storage:bookmarks"))
        .and_then(|s| s.get_child("conference", "storage:bookmarks"));
    assert_eq!(
        conference.and_then(|c| c.attr("jid")),
        Some("r@conference.localhost"),
        "{private}"
    );
    // The avatar hash came back too: it is on the presence echo.
    c.send("<presence/>");
    let presence = c.element();
    let photo = presence
        .get_child("x", "vcard-temp:x:update")
        .and_then(|x| x.get_child("photo", "vcard-temp:x:update"))
        .map(Element::text);
    assert_eq!(
        photo.as_deref(),
        Some("8e274696f2bd20516c2f743207065763a6dfe75e"),
        "{presence}"
    );
    server.stop();
}

const OPEN_REGISTRATION: &str = "[registration]\nallow = true\nmin_interval_secs = 0\n";

#[test]
fn in_band_registration_before_login() {
    let server = TestServer::start(TestOptions {
        accounts: vec![("romeo@localhost".into(), "password".into())],
        extra_config: OPEN_REGISTRATION.into(),
        ..TestOptions::default()
    })
    .expect("server");
    let addr = server.c2s_addr();
    let (mut c, features) = open(addr);
    assert!(
        features
            .get_child("register", "http://jabber.org/features/iq-register")
            .is_some(),
        "{features}"
    );
    let form = c.iq("<iq type='get' id='r1'><query xmlns='jabber:iq:register'/></iq>");
    let query = form
        .get_child("query", "jabber:iq:register")
        .expect("fields");
    assert!(query.get_child("username", "jabber:iq:register").is_some());
    assert!(query.get_child("x", "jabber:x:data").is_some());

    // XEP-0077 §3.1: an empty password is not acceptable; nothing is created.
    let empty = c.iq("<iq type='set' id='r2'><query xmlns='jabber:iq:register'>\
                      <username>bill</username><password/></query></iq>");
    assert_eq!(condition(&empty), "not-acceptable");
    let taken = c.iq("<iq type='set' id='r3'><query xmlns='jabber:iq:register'>\
                      <username>Romeo</username><password>x</password></query></iq>");
    assert_eq!(condition(&taken), "conflict");
    let bad = c.iq("<iq type='set' id='r4'><query xmlns='jabber:iq:register'>\
                    <username>a@b</username><password>x</password></query></iq>");
    assert_eq!(condition(&bad), "jid-malformed");

    let ok = c.iq("<iq type='set' id='r5'><query xmlns='jabber:iq:register'>\
                   <x xmlns='jabber:x:data' type='submit'>\
                   <field var='FORM_TYPE'><value>jabber:iq:register</value></field>\
                   <field var='username'><value>Bill</value></field>\
                   <field var='password'><value>Calliope</value></field></x></query></iq>");
    assert_eq!(ok.attr("type"), Some("result"), "{ok}");
    // One account per connection.
    let again = c.iq("<iq type='set' id='r6'><query xmlns='jabber:iq:register'>\
                      <username>bill2</username><password>x</password></query></iq>");
    assert_eq!(condition(&again), "not-acceptable");
    // The new account logs in on the same stream.
    assert!(auth(&mut c, "bill", "Calliope"));
    drop(c);

    // Password change, then the old password no longer works.
    let mut bill = login(addr, "bill", "Calliope");
    let changed = bill.iq("<iq type='set' id='c1'><query xmlns='jabber:iq:register'>\
                           <username>bill</username><password>Thalia</password></query></iq>");
    assert_eq!(changed.attr("type"), Some("result"), "{changed}");
    let (mut old, _) = open(addr);
    assert!(!auth(&mut old, "bill", "Calliope"));
    drop(old);
    let _still = login(addr, "bill", "Thalia");

    // Removal: result, stream error; the name is then gone for good.
    bill.send("<iq type='set' id='bye'><query xmlns='jabber:iq:register'><remove/></query></iq>");
    let result = bill.element();
    assert_eq!(result.attr("type"), Some("result"), "{result}");
    let stream_error = bill.element();
    assert_eq!(stream_error.name, "error", "{stream_error}");
    assert!(stream_error.children().any(|c| c.name == "not-authorized"));
    let (mut c, _) = open(addr);
    let reuse = c.iq("<iq type='set' id='r7'><query xmlns='jabber:iq:register'>\
                      <username>bill</username><password>x</password></query></iq>");
    assert_eq!(condition(&reuse), "conflict");
    let text = reuse
        .get_child("error", "jabber:client")
        .and_then(|e| e.get_child("text", "urn:ietf:params:xml:ns:xmpp-stanzas"))
        .map(Element::text)
        .unwrap_or_default();
    assert!(text.contains("deleted account"), "{reuse}");
    server.stop();
}

#[test]
fn registration_is_off_by_default_and_throttled_when_on() {
    let server = TestServer::start(TestOptions::default()).expect("server");
    let (mut c, features) = open(server.c2s_addr());
    assert!(
        features
            .get_child("register", "http://jabber.org/features/iq-register")
            .is_none(),
        "{features}"
    );
    let refused = c.iq("<iq type='get' id='r1'><query xmlns='jabber:iq:register'/></iq>");
    assert_eq!(condition(&refused), "service-unavailable");
    server.stop();

    let server = TestServer::start(TestOptions {
        extra_config: "[registration]\nallow = true\n".into(),
        ..TestOptions::default()
    })
    .expect("server");
    let (mut c, _) = open(server.c2s_addr());
    let first = c.iq("<iq type='set' id='r1'><query xmlns='jabber:iq:register'>\
                      <username>one</username><password>x</password></query></iq>");
    assert_eq!(first.attr("type"), Some("result"), "{first}");
    let (mut c, _) = open(server.c2s_addr());
    let second = c.iq("<iq type='set' id='r2'><query xmlns='jabber:iq:register'>\
                       <username>two</username><password>x</password></query></iq>");
    assert_eq!(condition(&second), "resource-constraint");
    server.stop();
}

#[test]
fn operator_deletion_disconnects_and_leaves_a_tombstone() {
    use perch::admin::Command;
    let server = TestServer::start(romeo()).expect("server");
    let data_dir = server.data_dir().expect("data dir").to_path_buf();
    let mut c = login(server.c2s_addr(), "romeo", "password");
    let set = c.iq("<iq type='set' id='v'><vCard xmlns='vcard-temp'><FN>Romeo</FN></vCard></iq>");
    assert_eq!(set.attr("type"), Some("result"), "{set}");

    let deleted = perch::net::admin::request(
        &data_dir,
        &Command::UserDel {
            jid: "romeo@localhost".into(),
        },
    )
    .expect("delete")
    .expect("the server answered");
    assert_eq!(deleted, vec!["deleted romeo@localhost".to_string()]);
    let stream_error = c.element();
    assert!(
        stream_error.children().any(|e| e.name == "not-authorized"),
        "{stream_error}"
    );

    let again = perch::net::admin::request(
        &data_dir,
        &Command::UserAdd {
            jid: "romeo@localhost".into(),
            password: "password".into(),
            reuse_deleted: false,
        },
    )
    .expect_err("tombstoned");
    assert!(
        again.to_string().starts_with(
            "romeo@localhost belonged to a deleted account and cannot be registered again"
        ),
        "{again}"
    );
    server.stop();
}
