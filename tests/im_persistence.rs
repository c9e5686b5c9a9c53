//! Instant-messaging state survives a restart: the server is stopped between
//! the two halves of a conversation and started again on the same data
//! directory. Rosters (names, groups, subscription states, the version),
//! pending subscription requests with their content, offline messages in
//! order and the blocklist must all be there afterwards.

mod common;

use common::{Client, NS_BLOCKING, NS_DELAY, NS_ROSTER, login};
use perch::testing::{TestOptions, TestServer};
use perch::xml::Element;

fn connect(server: &TestServer, user: &str, resource: &str) -> Client {
    login(server, (user, "password"), Some(resource))
}

/// The first stanza satisfying `wanted`, skipping others (as scansion does).
fn expect(client: &mut Client, what: &str, wanted: impl Fn(&Element) -> bool) -> Element {
    client.element_matching(what, wanted)
}

fn iq_result(client: &mut Client, id: &str) -> Element {
    let id = id.to_string();
    expect(client, &format!("result {id}"), move |s| {
        s.name == "iq" && s.attr("id") == Some(id.as_str()) && s.attr("type") == Some("result")
    })
}

fn roster(client: &mut Client, id: &str) -> Element {
    client.send(&format!(
        "<iq type='get' id='{id}'><query xmlns='{NS_ROSTER}'/></iq>"
    ));
    let result = iq_result(client, id);
    match result.get_child("query", NS_ROSTER) {
        Some(query) => query.clone(),
        None => panic!("roster result without a query: {result}"),
    }
}

fn item<'a>(query: &'a Element, jid: &str) -> &'a Element {
    match query.children().find(|i| i.attr("jid") == Some(jid)) {
        Some(item) => item,
        None => panic!("no roster item {jid} in {query}"),
    }
}

fn presence(client: &mut Client) {
    client.send("<presence/>");
    let own = client.jid.clone();
    expect(client, "own presence", move |s| {
        s.name == "presence" && s.attr("from") == Some(own.as_str())
    });
}

#[test]
fn roster_subscriptions_requests_offline_messages_and_blocklist_survive_a_restart() {
    let accounts = ["romeo", "juliet", "nurse"]
        .iter()
        .map(|u| (format!("{u}@localhost"), "password".to_string()))
        .collect();
    let server = match TestServer::start(TestOptions {
        accounts,
        extra_config: String::new(),
        ..TestOptions::default()
    }) {
        Ok(server) => server,
        Err(e) => panic!("test server: {e}"),
    };

    // --- First half ---------------------------------------------------
    let mut romeo = connect(&server, "romeo", "garden");
    let mut nurse = connect(&server, "nurse", "chamber");
    roster(&mut romeo, "r0");
    presence(&mut romeo);
    presence(&mut nurse);

    // A named item in a group.
    romeo.send(
        "<iq type='set' id='r1'><query xmlns='jabber:iq:roster'>\
         <item jid='benvolio@localhost' name='Cousin'><group>Montagues</group></item>\
         </query></iq>",
    );
    iq_result(&mut romeo, "r1");

    // A subscription the nurse approves: Romeo 'to', the nurse 'from'.
    romeo.send("<presence to='nurse@localhost' type='subscribe'/>");
    expect(&mut nurse, "Romeo's request", |s| {
        s.name == "presence" && s.attr("type") == Some("subscribe")
    });
    nurse.send("<presence to='romeo@localhost' type='subscribed'/>");
    expect(&mut romeo, "the approval", |s| {
        s.name == "presence" && s.attr("type") == Some("subscribed")
    });

    // A request Juliet, who is offline, has not answered.
    romeo.send(
        "<presence to='juliet@localhost' type='subscribe' id='ask'>\
         <status>Wilt thou be gone?</status></presence>",
    );
    expect(&mut romeo, "the pending roster item", |s| {
        s.name == "iq"
            && s.get_child("query", NS_ROSTER)
                .and_then(|q| q.get_child("item", NS_ROSTER))
                .is_some_and(|i| {
                    i.attr("jid") == Some("juliet@localhost") && i.attr("ask") == Some("subscribe")
                })
    });

    // Two offline messages for Juliet.
    for (id, body) in [("m1", "It was the nightingale"), ("m2", "and not the lark")] {
        romeo.send(&format!(
            "<message to='juliet@localhost' type='chat' id='{id}'><body>{body}</body></message>"
        ));
    }

    // A blocked JID.
    romeo.send("<iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'><item jid='tybalt@localhost'/></block></iq>",
    );
    iq_result(&mut romeo, "b1");

    let before = roster(&mut romeo, "r2");
    let version_before = before.attr("ver").map(str::to_string);
    assert!(version_before.is_some(), "roster without a version");

    romeo.disconnect();
    nurse.disconnect();
    let server = match server.restart(TestOptions::default()) {
        Ok(server) => server,
        Err(e) => panic!("restart: {e}"),
    };

    // --- Second half --------------------------------------------------
    let mut romeo = connect(&server, "romeo", "garden");
    let after = roster(&mut romeo, "r3");
    assert_eq!(
        after.attr("ver").map(str::to_string),
        version_before,
        "roster version"
    );
    let benvolio = item(&after, "benvolio@localhost");
    assert_eq!(benvolio.attr("name"), Some("Cousin"));
    assert_eq!(benvolio.attr("subscription"), Some("none"));
    assert_eq!(
        benvolio.get_child("group", NS_ROSTER).map(|g| g.text()),
        Some("Montagues".to_string())
    );
    assert_eq!(
        item(&after, "nurse@localhost").attr("subscription"),
        Some("to")
    );
    let juliet_item = item(&after, "juliet@localhost");
    assert_eq!(juliet_item.attr("subscription"), Some("none"));
    assert_eq!(juliet_item.attr("ask"), Some("subscribe"));

    // The cached version is still current: nothing to send.
    if let Some(ver) = &version_before {
        romeo.send(&format!(
            "<iq type='get' id='r4'><query xmlns='{NS_ROSTER}' ver='{ver}'/></iq>"
        ));
        let result = iq_result(&mut romeo, "r4");
        assert!(
            result.get_child("query", NS_ROSTER).is_none(),
            "expected an empty result"
        );
    }

    romeo.send("<iq type='get' id='b2'><blocklist xmlns='urn:xmpp:blocking'/></iq>");
    let blocklist = iq_result(&mut romeo, "b2");
    let blocked: Vec<&str> = blocklist
        .get_child("blocklist", NS_BLOCKING)
        .map(|l| l.children().filter_map(|i| i.attr("jid")).collect())
        .unwrap_or_default();
    assert_eq!(blocked, vec!["tybalt@localhost"]);

    let mut nurse = connect(&server, "nurse", "chamber");
    let nurse_roster = roster(&mut nurse, "n1");
    assert_eq!(
        item(&nurse_roster, "romeo@localhost").attr("subscription"),
        Some("from")
    );

    // Juliet comes online: the whole request, then the messages in order.
    let mut juliet = connect(&server, "juliet", "balcony");
    juliet.send("<presence/>");
    let request = expect(&mut juliet, "Romeo's request", |s| {
        s.name == "presence" && s.attr("type") == Some("subscribe")
    });
    assert_eq!(request.attr("from"), Some("romeo@localhost"));
    assert_eq!(request.attr("id"), Some("ask"));
    assert_eq!(
        request
            .get_child("status", "jabber:client")
            .map(|s| s.text()),
        Some("Wilt thou be gone?".to_string())
    );
    let is_message = |s: &Element| s.name == "message";
    let first = expect(&mut juliet, "the first offline message", is_message);
    let second = expect(&mut juliet, "the second offline message", is_message);
    assert_eq!(first.attr("id"), Some("m1"));
    assert_eq!(second.attr("id"), Some("m2"));
    for message in [&first, &second] {
        let delay = message.get_child("delay", NS_DELAY);
        assert_eq!(delay.and_then(|d| d.attr("from")), Some("localhost"));
        assert!(delay.and_then(|d| d.attr("stamp")).is_some());
    }

    juliet.disconnect();
    nurse.disconnect();
    romeo.disconnect();
    server.stop();
}

/// Deleting an account with no server running goes the same way as on a
/// running one: its contacts' subscriptions end in their rosters too.
#[test]
fn offline_deletion_ends_the_contacts_subscriptions() {
    let accounts = ["romeo", "juliet", "nurse"]
        .iter()
        .map(|u| (format!("{u}@localhost"), "password".to_string()))
        .collect();
    let server = match TestServer::start(TestOptions {
        accounts,
        extra_config: String::new(),
        ..TestOptions::default()
    }) {
        Ok(server) => server,
        Err(e) => panic!("test server: {e}"),
    };
    let mut romeo = connect(&server, "romeo", "garden");
    let mut juliet = connect(&server, "juliet", "balcony");
    let mut nurse = connect(&server, "nurse", "chamber");
    presence(&mut romeo);
    presence(&mut juliet);
    // Romeo subscribed to Juliet; the nurse asked and got no answer.
    romeo.send("<presence to='juliet@localhost' type='subscribe'/>");
    expect(&mut juliet, "Romeo's request", |s| {
        s.name == "presence" && s.attr("from") == Some("romeo@localhost")
    });
    juliet.send("<presence to='romeo@localhost' type='subscribed'/>");
    expect(&mut romeo, "the approval", |s| {
        s.name == "presence" && s.attr("type") == Some("subscribed")
    });
    nurse.send("<presence to='juliet@localhost' type='subscribe'/>");
    expect(&mut juliet, "the nurse's request", |s| {
        s.name == "presence" && s.attr("from") == Some("nurse@localhost")
    });
    assert_eq!(
        item(&roster(&mut romeo, "r1"), "juliet@localhost").attr("subscription"),
        Some("to")
    );
    romeo.disconnect();
    juliet.disconnect();
    nurse.disconnect();

    let delete_juliet = |data_dir: &std::path::Path| {
        let store = perch::store::Store::open(&data_dir.join(perch::config::DB_FILE), 1 << 20)
            .unwrap_or_else(|e| panic!("opening the database: {e}"));
        let config = perch::config::Config::from_toml_str("", "defaults")
            .unwrap_or_else(|e| panic!("configuration: {e}"));
        let offline = perch::server::Server::new(config, store);
        let deleted = smol::block_on(perch::admin::execute(
            &offline,
            &perch::admin::Command::UserDel {
                jid: "juliet@localhost".into(),
            },
        ));
        match deleted {
            Ok(lines) => assert_eq!(lines, vec!["deleted juliet@localhost".to_string()]),
            Err(e) => panic!("deleting juliet: {e}"),
        }
        let juliet = perch::jid::Jid::parse("juliet@localhost").expect("jid");
        let left = perch::store::roster::load(offline.store(), &juliet)
            .unwrap_or_else(|e| panic!("reading her roster: {e}"));
        assert!(left.is_empty() && left.pending_in_count() == 0);
    };
    let server = match server.restart_after(TestOptions::default(), delete_juliet) {
        Ok(server) => server,
        Err(e) => panic!("restart: {e}"),
    };

    let mut romeo = connect(&server, "romeo", "garden");
    let juliet_item = roster(&mut romeo, "r2");
    let juliet_item = item(&juliet_item, "juliet@localhost");
    assert_eq!(juliet_item.attr("subscription"), Some("none"));
    let mut nurse = connect(&server, "nurse", "chamber");
    let nurse_roster = roster(&mut nurse, "n1");
    let request = item(&nurse_roster, "juliet@localhost");
    assert_eq!(request.attr("subscription"), Some("none"));
    assert_eq!(request.attr("ask"), None, "the request was refused");
    romeo.disconnect();
    nurse.disconnect();
    server.stop();
}
