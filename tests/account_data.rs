//! Account features end to end over real connections: what a client
//! stores survives a restart, and in-band registration (XEP-0077) works
//! before login, which the scansion scripts cannot play.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use perch::testing::{TestOptions, TestServer};
use perch::xml::{Element, FrameEvent, Framer, Limits};

const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";

/// A bare-bones synchronous client over plaintext c2s.
struct Raw {
    tcp: TcpStream,
    framer: Framer,
}

impl Raw {
    /// Connects and opens the stream; returns the client and the features.
    fn open(addr: SocketAddr) -> (Raw, Element) {
        let tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(perch::testing::scaled(Duration::from_secs(10))))
            .expect("timeout");
        let mut raw = Raw {
            tcp,
            framer: Framer::new(Limits {
                max_stanza_bytes: 1 << 20,
                max_depth: 64,
            }),
        };
        let features = raw.restart();
        (raw, features)
    }

    fn restart(&mut self) -> Element {
        self.framer.reset();
        self.send("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>");
        self.next()
    }

    fn send(&mut self, xml: &str) {
        self.tcp.write_all(xml.as_bytes()).expect("write");
    }

    /// The next top-level element (the stream header is skipped).
    fn next(&mut self) -> Element {
        loop {
            match self.framer.next_event().expect("well-formed") {
                Some(FrameEvent::Element(el)) => return el,
                Some(FrameEvent::StreamOpen(_)) => continue,
                Some(FrameEvent::StreamClose) => panic!("the server closed the stream"),
                None => {}
            }
            let mut buf = [0u8; 4096];
            let n = self.tcp.read(&mut buf).expect("read");
            assert!(n > 0, "connection closed");
            self.framer.push(&buf[..n]);
        }
    }

    fn iq(&mut self, xml: &str) -> Element {
        self.send(xml);
        self.next()
    }

    /// SASL PLAIN; true on success.
    fn auth(&mut self, user: &str, password: &str) -> bool {
        let creds = format!("\0{user}\0{password}");
        self.send(&format!(
            "<auth xmlns='{SASL}' mechanism='PLAIN'>{}</auth>",
            perch::sasl::base64::encode(creds.as_bytes())
        ));
        self.next().name == "success"
    }

    /// Logs in and binds; panics if that fails.
    fn login(addr: SocketAddr, user: &str, password: &str) -> Raw {
        let (mut raw, _) = Raw::open(addr);
        assert!(raw.auth(user, password), "login as {user} failed");
        raw.restart();
        let bound = raw.iq(&format!(
            "<iq type='set' id='bind'><bind xmlns='{BIND}'/></iq>"
        ));
        assert_eq!(bound.attr("type"), Some("result"), "{bound}");
        raw
    }
}

fn condition(reply: &Element) -> String {
    reply
        .children()
        .find(|c| c.name == "error")
        .and_then(|e| {
            e.children()
                .find(|c| c.ns == "urn:ietf:params:xml:ns:xmpp-stanzas" && c.name != "text")
        })
        .map(|c| c.name.to_string())
        .unwrap_or_else(|| format!("no error in {reply}"))
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
    let mut c = Raw::login(server.c2s_addr(), "romeo", "password");
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
    let mut c = Raw::login(server.c2s_addr(), "romeo", "password");
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
    let presence = c.next();
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
    })
    .expect("server");
    let addr = server.c2s_addr();
    let (mut c, features) = Raw::open(addr);
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
    assert!(c.auth("bill", "Calliope"));
    drop(c);

    // Password change, then the old password no longer works.
    let mut bill = Raw::login(addr, "bill", "Calliope");
    let changed = bill.iq("<iq type='set' id='c1'><query xmlns='jabber:iq:register'>\
                           <username>bill</username><password>Thalia</password></query></iq>");
    assert_eq!(changed.attr("type"), Some("result"), "{changed}");
    let (mut old, _) = Raw::open(addr);
    assert!(!old.auth("bill", "Calliope"));
    drop(old);
    let _still = Raw::login(addr, "bill", "Thalia");

    // Removal: result, stream error; the name is then gone for good.
    bill.send("<iq type='set' id='bye'><query xmlns='jabber:iq:register'><remove/></query></iq>");
    let result = bill.next();
    assert_eq!(result.attr("type"), Some("result"), "{result}");
    let stream_error = bill.next();
    assert_eq!(stream_error.name, "error", "{stream_error}");
    assert!(stream_error.children().any(|c| c.name == "not-authorized"));
    let (mut c, _) = Raw::open(addr);
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
    let (mut c, features) = Raw::open(server.c2s_addr());
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
    let (mut c, _) = Raw::open(server.c2s_addr());
    let first = c.iq("<iq type='set' id='r1'><query xmlns='jabber:iq:register'>\
                      <username>one</username><password>x</password></query></iq>");
    assert_eq!(first.attr("type"), Some("result"), "{first}");
    let (mut c, _) = Raw::open(server.c2s_addr());
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
    let mut c = Raw::login(server.c2s_addr(), "romeo", "password");
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
    let stream_error = c.next();
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
