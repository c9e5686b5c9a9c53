//! The fate of a dead session's undelivered stanzas, against an in-process
//! server with bound sessions and no sockets: each test ends a session with
//! some stanzas and reads what the other sessions' outboxes and the offline
//! store received.

use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{parse_serialized, session_ending};
use crate::session::{Outbox, Session};
use crate::testing::world::{World, received};
use crate::xml::Element;

/// When the sessions below lost their connection.
const FAILED_STAMP: &str = "stamp='2023-11-14T22:13:20Z'";

fn failed_at() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// The undelivered stanzas' world: juliet and romeo.
fn world(extra: &str) -> World {
    World::new(&["juliet@localhost", "romeo@localhost"], extra)
}

/// Ends `session` with `stanzas` undelivered, as the stream would.
fn end(w: &World, session: &Rc<Session>, stanzas: &[&str]) {
    let stanzas = stanzas.iter().map(|s| parse(s)).collect();
    session_ending(&w.server.env(), session, stanzas, failed_at(), false);
    w.server.unbind(session);
}

/// A stanza in the client namespace, as a session's queue holds it.
fn parse(xml: &str) -> Element {
    parse_serialized(xml.as_bytes()).expect("stanza")
}

const CHAT: &str = "<message from='romeo@localhost/garden' to='juliet@localhost/phone' \
                    type='chat' id='m1'><body>hi</body></message>";

#[test]
fn a_chat_message_for_a_lone_session_is_stored_offline_with_the_failure_time() {
    let w = world("");
    let romeo = w.session("romeo@localhost/garden", Some(0));
    let phone = w.session("juliet@localhost/phone", Some(0));
    end(&w, &phone, &[CHAT]);
    let stored = w.offline("juliet@localhost");
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(stored[0].contains("id='m1'"), "{stored:?}");
    assert!(stored[0].contains(FAILED_STAMP), "{stored:?}");
    assert_eq!(received(&romeo), "");
    assert_eq!(received(&phone), "");

    // The next resource to come online gets it, still with the stamp.
    let laptop = w.session("juliet@localhost/laptop", Some(0));
    crate::im::offline::deliver_stored(&w.server.env(), &laptop);
    let got = received(&laptop);
    assert!(got.contains("id='m1'"), "{got}");
    assert!(got.contains(FAILED_STAMP), "{got}");

    // That session was the only one to get it out of storage: if it dies
    // too, a sibling with carbons (which had no copy) gets it.
    let tablet = w.session("juliet@localhost/tablet", Some(0));
    tablet.im.carbons.set(true);
    end(&w, &laptop, &[got.as_str()]);
    let got = received(&tablet);
    assert!(got.contains("id='m1'"), "{got}");
    assert!(got.contains(FAILED_STAMP), "{got}");
}

#[test]
fn another_available_session_gets_the_message_with_the_failure_time() {
    let w = world("");
    let _romeo = w.session("romeo@localhost/garden", Some(0));
    let phone = w.session("juliet@localhost/phone", Some(0));
    let laptop = w.session("juliet@localhost/laptop", Some(0));
    let away = w.session("juliet@localhost/bot", Some(-1));
    end(&w, &phone, &[CHAT]);
    let got = received(&laptop);
    assert!(got.contains("id='m1'"), "{got}");
    assert!(got.contains(FAILED_STAMP), "{got}");
    assert!(got.contains("from='localhost'"), "{got}");
    assert_eq!(received(&away), "");
    assert_eq!(received(&phone), "");
    assert!(w.offline("juliet@localhost").is_empty());
}

#[test]
fn a_message_that_is_already_stamped_keeps_its_stamp_alone() {
    let w = world("");
    let phone = w.session("juliet@localhost/phone", Some(0));
    let laptop = w.session("juliet@localhost/laptop", Some(0));
    end(
        &w,
        &phone,
        &[
            "<message from='romeo@localhost/garden' to='juliet@localhost/phone' type='chat' \
           id='m2'><body>hi</body><delay xmlns='urn:xmpp:delay' from='elsewhere.example' \
           stamp='2020-01-01T00:00:00Z'/></message>",
        ],
    );
    let got = received(&laptop);
    assert!(got.contains("id='m2'"), "{got}");
    assert_eq!(got.matches("<delay").count(), 1, "{got}");
    assert!(!got.contains(FAILED_STAMP), "{got}");
}

#[test]
fn nothing_is_redelivered_to_a_session_that_had_a_carbon() {
    let w = world("");
    let romeo = w.session("romeo@localhost/garden", Some(0));
    let phone = w.session("juliet@localhost/phone", Some(0));
    let laptop = w.session("juliet@localhost/laptop", Some(0));
    laptop.im.carbons.set(true);
    end(&w, &phone, &[CHAT]);
    assert_eq!(received(&laptop), "");
    assert!(w.offline("juliet@localhost").is_empty());
    assert_eq!(received(&romeo), "");
}

#[test]
fn a_message_to_the_bare_jid_is_not_redelivered_to_resources_that_had_it() {
    // RFC 6121 §8.5.2.1.1: it went to every resource of the top priority.
    let w = world("");
    let phone = w.session("juliet@localhost/phone", Some(1));
    let laptop = w.session("juliet@localhost/laptop", Some(1));
    end(
        &w,
        &phone,
        &[
            "<message from='romeo@localhost/garden' to='juliet@localhost' type='chat' \
           id='m3'><body>hi</body></message>",
        ],
    );
    assert_eq!(received(&laptop), "");
    assert!(w.offline("juliet@localhost").is_empty());

    // A lower-priority resource did not get it: it does now.
    let phone = w.session("juliet@localhost/phone", Some(5));
    end(
        &w,
        &phone,
        &[
            "<message from='romeo@localhost/garden' to='juliet@localhost' type='chat' \
           id='m4'><body>hi</body></message>",
        ],
    );
    assert!(received(&laptop).contains("id='m4'"));
}

#[test]
fn a_message_out_of_offline_storage_was_this_sessions_alone() {
    // Delivered from storage to one resource: neither the bare JID it is
    // addressed to nor a sibling's carbons mean the others have it.
    let w = world("");
    let phone = w.session("juliet@localhost/phone", Some(0));
    let laptop = w.session("juliet@localhost/laptop", Some(0));
    laptop.im.carbons.set(true);
    end(
        &w,
        &phone,
        &[
            "<message from='romeo@localhost/garden' to='juliet@localhost' type='chat' \
           id='m5'><body>hi</body><delay xmlns='urn:xmpp:delay' from='localhost' \
           stamp='2020-01-01T00:00:00Z'>Offline Storage</delay></message>",
        ],
    );
    let got = received(&laptop);
    assert!(got.contains("id='m5'"), "{got}");
    assert_eq!(got.matches("<delay").count(), 1, "{got}");
}

#[test]
fn an_iq_request_gets_service_unavailable() {
    let w = world("");
    let romeo = w.session("romeo@localhost/garden", Some(0));
    let phone = w.session("juliet@localhost/phone", Some(0));
    end(
        &w,
        &phone,
        &[
            "<iq from='romeo@localhost/garden' to='juliet@localhost/phone' type='get' \
             id='q1'><ping xmlns='urn:xmpp:ping'/></iq>",
            "<iq from='romeo@localhost/garden' to='juliet@localhost/phone' type='result' \
             id='q2'/>",
        ],
    );
    let got = received(&romeo);
    assert!(got.contains("id='q1'"), "{got}");
    assert!(got.contains("type='error'"), "{got}");
    assert!(got.contains("service-unavailable"), "{got}");
    assert!(got.contains("from='juliet@localhost/phone'"), "{got}");
    assert!(!got.contains("id='q2'"), "{got}");
}

#[test]
fn the_servers_own_requests_and_the_sessions_own_are_not_answered() {
    let w = world("");
    let phone = w.session("juliet@localhost/phone", Some(0));
    let laptop = w.session("juliet@localhost/laptop", Some(0));
    end(
        &w,
        &phone,
        &[
            "<iq from='localhost' to='juliet@localhost/phone' type='get' id='p1'>\
             <ping xmlns='urn:xmpp:ping'/></iq>",
            "<iq to='juliet@localhost/phone' type='set' id='p2'>\
             <query xmlns='jabber:iq:roster'/></iq>",
            "<iq from='juliet@localhost/phone' to='juliet@localhost/phone' type='get' \
             id='p3'><ping xmlns='urn:xmpp:ping'/></iq>",
        ],
    );
    assert_eq!(received(&laptop), "");
    assert_eq!(received(&phone), "");
}

#[test]
fn groupchat_headlines_errors_presence_and_chat_states_are_dropped() {
    let w = world("");
    let romeo = w.session("romeo@localhost/garden", Some(0));
    let phone = w.session("juliet@localhost/phone", Some(0));
    let laptop = w.session("juliet@localhost/laptop", Some(0));
    end(
        &w,
        &phone,
        &[
            "<message from='room@conference.localhost/romeo' to='juliet@localhost/phone' \
             type='groupchat' id='g1'><body>hi</body></message>",
            "<message from='localhost' to='juliet@localhost/phone' type='headline' \
             id='h1'><body>news</body></message>",
            "<message from='romeo@localhost/garden' to='juliet@localhost/phone' \
             type='error' id='e1'><body>x</body></message>",
            "<presence from='romeo@localhost/garden' to='juliet@localhost/phone'/>",
            "<presence from='romeo@localhost' to='juliet@localhost' type='subscribe'/>",
            "<message from='romeo@localhost/garden' to='juliet@localhost/phone' type='chat' \
             id='s1'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
        ],
    );
    assert_eq!(received(&laptop), "");
    assert_eq!(received(&romeo), "");
    assert!(w.offline("juliet@localhost").is_empty());
}

#[test]
fn carbons_and_archive_results_are_dropped() {
    let w = world("");
    let phone = w.session("juliet@localhost/phone", Some(0));
    phone.im.carbons.set(true);
    end(
        &w,
        &phone,
        &[
            "<message from='juliet@localhost' to='juliet@localhost/phone' type='chat' \
             id='c1'><received xmlns='urn:xmpp:carbons:2'><forwarded \
             xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' \
             from='romeo@localhost/garden' to='juliet@localhost/laptop' type='chat'>\
             <body>hi</body></message></forwarded></received></message>",
            "<message from='juliet@localhost' to='juliet@localhost/phone' id='r1'>\
             <result xmlns='urn:xmpp:mam:2' queryid='q' id='1'><forwarded \
             xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' \
             from='romeo@localhost/garden' type='chat'><body>old</body></message>\
             </forwarded></result></message>",
        ],
    );
    assert!(w.offline("juliet@localhost").is_empty());
}

#[test]
fn a_message_that_does_not_fit_offline_storage_is_bounced() {
    let w = world("[im]\noffline_max_messages = 0\n");
    let romeo = w.session("romeo@localhost/garden", Some(0));
    let phone = w.session("juliet@localhost/phone", Some(0));
    end(&w, &phone, &[CHAT]);
    let got = received(&romeo);
    assert!(
        got.contains("id='m1'") && got.contains("type='error'"),
        "{got}"
    );
}

#[test]
fn queue_entries_parse_back() {
    let original = Element::parse(
        "<message xmlns='jabber:client' to='a@b/c' type='chat' xml:lang='en'><body>x &amp; y\
         </body><x xmlns='urn:x'><y/></x></message>",
    )
    .expect("parse");
    let outbox = Outbox::new();
    outbox.send(&original);
    let mut batch = crate::outbox::Batch::default();
    outbox.drain(&mut batch);
    let entry = batch.stanzas().next().expect("an entry");
    assert_eq!(parse_serialized(entry), Some(original));

    for garbage in [
        &b""[..],
        b"hello",
        b"<message",
        b"<a/><b/>",
        b"<a/>tail",
        b"</stream:stream><stream:stream>",
        b"<a/>\xff",
        b"<!-- x --><a/>",
    ] {
        assert_eq!(parse_serialized(garbage), None, "{garbage:?}");
    }
}
