//! Ad-hoc commands (XEP-0050) and the server administration commands
//! (XEP-0133) end to end: who sees and may run them, accounts added,
//! changed, disabled and deleted from a client, online users, announcements
//! and the message of the day; and slixmpp's xep_0050 plugin running them.

mod common;

use std::time::{Duration, Instant};

use common::interop::{can_run, debug, judge, python_missing};
use common::process::{Captured, capture_within};
use common::{Client, Sasl, authenticate, error_condition, login};
use perch::testing::{TestOptions, TestServer};
use perch::xml::Element;

const NS_COMMANDS: &str = "http://jabber.org/protocol/commands";
const NS_ITEMS: &str = "http://jabber.org/protocol/disco#items";
const NS_INFO: &str = "http://jabber.org/protocol/disco#info";
const NS_SM: &str = "urn:xmpp:sm:3";
const ADMIN: (&str, &str) = ("admin", "admin-password");
const BOB: (&str, &str) = ("bob", "bob-password");

fn node(name: &str) -> String {
    format!("http://jabber.org/protocol/admin#{name}")
}

fn server() -> TestServer {
    TestServer::start(TestOptions {
        accounts: vec![
            ("admin@localhost".into(), ADMIN.1.into()),
            ("bob@localhost".into(), BOB.1.into()),
        ],
        ..TestOptions::default()
    })
    .expect("server")
}

/// Sends an iq and returns its answer (other stanzas are kept for later).
fn ask(client: &mut Client, id: &str, payload: &str) -> Element {
    client.send(&format!(
        "<iq type='set' id='{id}' to='localhost'>{payload}</iq>"
    ));
    let wanted = id.to_string();
    client.element_matching(&format!("the answer to {id}"), move |el| {
        el.name == "iq" && el.attr("id") == Some(wanted.as_str())
    })
}

fn get(client: &mut Client, id: &str, payload: &str) -> Element {
    client.send(&format!(
        "<iq type='get' id='{id}' to='localhost'>{payload}</iq>"
    ));
    let wanted = id.to_string();
    client.element_matching(&format!("the answer to {id}"), move |el| {
        el.name == "iq" && el.attr("id") == Some(wanted.as_str())
    })
}

/// A submitted XEP-0133 form with `fields` (a field may repeat its var
/// for several values).
fn form(fields: &[(&str, &str)]) -> String {
    let mut x = String::from(
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>\
         <value>http://jabber.org/protocol/admin</value></field>",
    );
    for (var, value) in fields {
        x.push_str(&format!(
            "<field var='{var}'><value>{value}</value></field>"
        ));
    }
    x.push_str("</x>");
    x
}

/// Runs `name` in two steps (execute, then the filled-in form); returns
/// the final `<command/>`.
fn run(client: &mut Client, name: &str, fields: &[(&str, &str)]) -> Element {
    let node = node(name);
    let first = ask(
        client,
        &format!("{name}-1"),
        &format!("<command xmlns='{NS_COMMANDS}' node='{node}' action='execute'/>"),
    );
    assert_eq!(first.attr("type"), Some("result"), "{first}");
    let command = first.get_child("command", NS_COMMANDS).expect("command");
    assert_eq!(command.attr("status"), Some("executing"), "{first}");
    assert!(command.get_child("x", "jabber:x:data").is_some(), "{first}");
    let session = command.attr("sessionid").expect("sessionid").to_string();
    let done = ask(
        client,
        &format!("{name}-2"),
        &format!(
            "<command xmlns='{NS_COMMANDS}' node='{node}' sessionid='{session}' action='complete'>{}</command>",
            form(fields)
        ),
    );
    assert_eq!(done.attr("type"), Some("result"), "{done}");
    let command = done
        .get_child("command", NS_COMMANDS)
        .expect("command")
        .clone();
    assert_eq!(command.attr("status"), Some("completed"), "{done}");
    command
}

/// Runs a command that completes at once (no form).
fn run_at_once(client: &mut Client, name: &str) -> Element {
    let node = node(name);
    let done = ask(
        client,
        &format!("{name}-now"),
        &format!("<command xmlns='{NS_COMMANDS}' node='{node}'/>"),
    );
    let command = done
        .get_child("command", NS_COMMANDS)
        .unwrap_or_else(|| panic!("no command in {done}"))
        .clone();
    assert_eq!(command.attr("status"), Some("completed"), "{done}");
    command
}

fn notes(command: &Element) -> Vec<String> {
    command
        .children()
        .filter(|c| c.name == "note")
        .map(|n| format!("{}: {}", n.attr("type").unwrap_or("?"), n.text()))
        .collect()
}

fn field_values(command: &Element, var: &str) -> Vec<String> {
    command
        .get_child("x", "jabber:x:data")
        .and_then(|x| x.children().find(|f| f.attr("var") == Some(var)))
        .map(|f| {
            f.children()
                .filter(|v| v.name == "value")
                .map(Element::text)
                .collect()
        })
        .unwrap_or_default()
}

fn command_nodes(client: &mut Client) -> Vec<String> {
    let items = get(
        client,
        "items",
        &format!("<query xmlns='{NS_ITEMS}' node='{NS_COMMANDS}'/>"),
    );
    assert_eq!(items.attr("type"), Some("result"), "{items}");
    items
        .get_child("query", NS_ITEMS)
        .expect("query")
        .children()
        .filter_map(|i| i.attr("node").map(str::to_string))
        .collect()
}

fn login_outcome(server: &TestServer, account: (&str, &str)) -> Result<(), String> {
    authenticate(server.c2s_addr(), account).map(drop)
}

#[test]
fn a_user_sees_no_admin_commands_and_may_not_run_them() {
    let server = server();
    let mut bob = login(&server, BOB, Some("pc"));
    let info = get(&mut bob, "info", &format!("<query xmlns='{NS_INFO}'/>"));
    let announced = info
        .get_child("query", NS_INFO)
        .is_some_and(|q| q.children().any(|f| f.attr("var") == Some(NS_COMMANDS)));
    assert!(announced, "the server announces ad-hoc commands: {info}");
    assert_eq!(command_nodes(&mut bob), Vec::<String>::new());
    let refused = ask(
        &mut bob,
        "sneak",
        &format!(
            "<command xmlns='{NS_COMMANDS}' node='{}' action='execute'/>",
            node("add-user")
        ),
    );
    assert_eq!(refused.attr("type"), Some("error"), "{refused}");
    assert_eq!(error_condition(&refused), "forbidden");
    let hidden = get(
        &mut bob,
        "node-info",
        &format!("<query xmlns='{NS_INFO}' node='{}'/>", node("add-user")),
    );
    assert_eq!(error_condition(&hidden), "item-not-found", "{hidden}");
    let unknown = ask(
        &mut bob,
        "unknown",
        &format!("<command xmlns='{NS_COMMANDS}' node='urn:no-such-command'/>"),
    );
    assert_eq!(error_condition(&unknown), "item-not-found", "{unknown}");
}

#[test]
fn an_admin_manages_accounts() {
    let server = server();
    let mut admin = login(&server, ADMIN, Some("desk"));
    let nodes = command_nodes(&mut admin);
    for name in [
        "add-user",
        "delete-user",
        "disable-user",
        "reenable-user",
        "change-user-password",
        "get-online-users-list",
        "announce",
        "set-motd",
    ] {
        assert!(nodes.contains(&node(name)), "{name} missing in {nodes:?}");
    }
    let info = get(
        &mut admin,
        "node-info",
        &format!("<query xmlns='{NS_INFO}' node='{}'/>", node("add-user")),
    );
    assert!(info.to_string().contains("command-node"), "{info}");

    // Add a user, who then logs in.
    let added = run(
        &mut admin,
        "add-user",
        &[
            ("accountjid", "carol@localhost"),
            ("password", "carol-pw-1"),
            ("password-verify", "carol-pw-1"),
        ],
    );
    assert_eq!(notes(&added), vec!["info: Created carol@localhost."]);
    let again = run(
        &mut admin,
        "add-user",
        &[("accountjid", "carol@localhost"), ("password", "x")],
    );
    assert_eq!(
        notes(&again),
        vec!["error: carol@localhost exists already."]
    );
    let mut carol = login(&server, ("carol", "carol-pw-1"), Some("phone"));

    // Change her password: the old one stops working.
    let changed = run(
        &mut admin,
        "change-user-password",
        &[
            ("accountjid", "carol@localhost"),
            ("password", "carol-pw-2"),
        ],
    );
    assert_eq!(
        notes(&changed),
        vec!["info: Changed the password of carol@localhost."]
    );
    assert!(login_outcome(&server, ("carol", "carol-pw-1")).is_err());
    login_outcome(&server, ("carol", "carol-pw-2")).expect("the new password works");

    // Disable her: her session ends, and she cannot log in.
    let disabled = run(
        &mut admin,
        "disable-user",
        &[("accountjids", "carol@localhost")],
    );
    assert_eq!(notes(&disabled), vec!["info: Disabled carol@localhost."]);
    carol.expect_stream_error("not-authorized");
    let mut client = Client::connect(server.c2s_addr());
    client.open();
    match client.auth_plain("carol", "carol-pw-2") {
        Sasl::Failure { condition, .. } => assert_eq!(condition, "account-disabled"),
        other => panic!("a disabled account logged in: {other:?}"),
    }

    // Re-enable her.
    let enabled = run(
        &mut admin,
        "reenable-user",
        &[("accountjids", "carol@localhost")],
    );
    assert_eq!(notes(&enabled), vec!["info: Re-enabled carol@localhost."]);
    let mut carol = login(&server, ("carol", "carol-pw-2"), Some("phone"));

    // Delete her: the session ends, the account is gone.
    let deleted = run(
        &mut admin,
        "delete-user",
        &[("accountjids", "carol@localhost")],
    );
    assert_eq!(notes(&deleted), vec!["info: Deleted carol@localhost."]);
    carol.expect_stream_error("not-authorized");
    assert!(login_outcome(&server, ("carol", "carol-pw-2")).is_err());
    let count = run_at_once(&mut admin, "get-registered-users-num");
    assert_eq!(field_values(&count, "registeredusersnum"), vec!["2"]);
}

#[test]
fn online_users_and_an_announcement() {
    let server = server();
    let mut admin = login(&server, ADMIN, Some("desk"));
    let mut bob = login(&server, BOB, Some("pc"));
    let _bob_phone = login(&server, BOB, Some("phone"));
    let list = run(&mut admin, "get-online-users-list", &[("max_items", "100")]);
    assert_eq!(
        field_values(&list, "onlineuserjids"),
        vec!["admin@localhost", "bob@localhost"]
    );
    let count = run_at_once(&mut admin, "get-online-users-num");
    assert_eq!(field_values(&count, "onlineusersnum"), vec!["2"]);
    let announced = run(
        &mut admin,
        "announce",
        &[("announcement", "The server restarts at noon")],
    );
    assert_eq!(notes(&announced), vec!["info: Sent to 3 online resources."]);
    let message = bob.element_matching("the announcement", |el| el.name == "message");
    assert_eq!(message.attr("from"), Some("localhost"), "{message}");
    assert_eq!(message.attr("type"), Some("headline"), "{message}");
    assert!(
        message.to_string().contains("The server restarts at noon"),
        "{message}"
    );
}

/// Logs in as bob with resumable stream management, sends initial
/// presence and reads until the pong after it; returns the client, the
/// resumption id, the stanzas read (for `h`) and the messages among them.
fn bob_with_sm(server: &TestServer, resource: &str) -> (Client, String, u32, Vec<Element>) {
    let mut bob = login(server, BOB, Some(resource));
    bob.send(&format!("<enable xmlns='{NS_SM}' resume='true'/>"));
    let enabled = bob.element();
    assert!(enabled.is("enabled", NS_SM), "{enabled}");
    let id = enabled.attr("id").expect("resumable").to_string();
    bob.send("<presence/>");
    let (count, messages) = until_pong(&mut bob, "after-presence");
    (bob, id, count, messages)
}

/// Pings and reads until the answer; returns the stanzas read and the
/// messages among them.
fn until_pong(client: &mut Client, id: &str) -> (u32, Vec<Element>) {
    client.send(&format!(
        "<iq type='get' id='{id}'><ping xmlns='urn:xmpp:ping'/></iq>"
    ));
    let deadline = Instant::now() + perch::testing::scaled(Duration::from_secs(10));
    let mut count = 0;
    let mut messages = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "no pong {id}");
        let el = client.element();
        if el.ns == NS_SM {
            continue;
        }
        count += 1;
        if el.name == "message" {
            messages.push(el);
        } else if el.name == "iq" && el.attr("id") == Some(id) {
            return (count, messages);
        }
    }
}

fn is_motd(message: &Element, text: &str) -> bool {
    message.attr("from") == Some("localhost") && message.to_string().contains(text)
}

#[test]
fn the_message_of_the_day_comes_once_per_login() {
    let server = server();
    let mut admin = login(&server, ADMIN, Some("desk"));
    let set = run(&mut admin, "set-motd", &[("motd", "Welcome to Perch")]);
    assert_eq!(notes(&set), vec!["info: The message of the day is set."]);

    let (mut bob, id, count, messages) = bob_with_sm(&server, "phone");
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(is_motd(&messages[0], "Welcome to Perch"), "{}", messages[0]);
    // Presence again in the same session: no second copy.
    bob.send("<presence type='unavailable'/><presence/>");
    let (more, messages) = until_pong(&mut bob, "again");
    assert!(messages.is_empty(), "{messages:?}");
    // The connection dies; the resumed session gets no new copy.
    bob.cut();
    let mut resumed = authenticate(server.c2s_addr(), BOB).expect("login");
    resumed.restart();
    resumed.send(&format!(
        "<resume xmlns='{NS_SM}' previd='{id}' h='{}'/>",
        count + more
    ));
    let answer = resumed.element();
    assert!(answer.is("resumed", NS_SM), "{answer}");
    let (_, messages) = until_pong(&mut resumed, "resumed");
    assert!(
        messages.is_empty(),
        "a resumption is no login: {messages:?}"
    );

    // A new login gets it again; once deleted, nobody does.
    let (_, _, _, messages) = bob_with_sm(&server, "laptop");
    assert_eq!(messages.len(), 1, "{messages:?}");
    let edit = ask(
        &mut admin,
        "edit",
        &format!(
            "<command xmlns='{NS_COMMANDS}' node='{}'/>",
            node("edit-motd")
        ),
    );
    let command = edit.get_child("command", NS_COMMANDS).expect("command");
    assert_eq!(
        field_values(command, "motd"),
        vec!["Welcome to Perch"],
        "{edit}"
    );
    let deleted = run_at_once(&mut admin, "delete-motd");
    assert_eq!(
        notes(&deleted),
        vec!["info: The message of the day is deleted."]
    );
    let (_, _, _, messages) = bob_with_sm(&server, "tablet");
    assert!(messages.is_empty(), "{messages:?}");
}

#[test]
fn session_errors_over_the_wire() {
    let server = server();
    let mut admin = login(&server, ADMIN, Some("desk"));
    let node = node("announce");
    let first = ask(
        &mut admin,
        "start",
        &format!("<command xmlns='{NS_COMMANDS}' node='{node}'/>"),
    );
    let session = first
        .get_child("command", NS_COMMANDS)
        .and_then(|c| c.attr("sessionid"))
        .expect("session")
        .to_string();
    let bad = ask(
        &mut admin,
        "bad",
        &format!(
            "<command xmlns='{NS_COMMANDS}' node='{node}' sessionid='{session}' action='fly'/>"
        ),
    );
    assert_eq!(error_condition(&bad), "bad-request", "{bad}");
    assert!(bad.to_string().contains("malformed-action"), "{bad}");
    let canceled = ask(
        &mut admin,
        "cancel",
        &format!(
            "<command xmlns='{NS_COMMANDS}' node='{node}' sessionid='{session}' action='cancel'/>"
        ),
    );
    let status = canceled
        .get_child("command", NS_COMMANDS)
        .and_then(|c| c.attr("status"));
    assert_eq!(status, Some("canceled"), "{canceled}");
    let expired = ask(
        &mut admin,
        "after",
        &format!(
            "<command xmlns='{NS_COMMANDS}' node='{node}' sessionid='{session}' action='complete'>{}</command>",
            form(&[("announcement", "late")])
        ),
    );
    assert_eq!(error_condition(&expired), "not-allowed", "{expired}");
    assert!(expired.to_string().contains("session-expired"), "{expired}");
    let unknown = ask(
        &mut admin,
        "unknown",
        &format!(
            "<command xmlns='{NS_COMMANDS}' node='{node}' sessionid='made-up' action='complete'/>"
        ),
    );
    assert!(unknown.to_string().contains("bad-sessionid"), "{unknown}");
}

const SLIXMPP_CHECKS: [&str; 3] = ["login", "add_user", "online_users_list"];

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "runs the host's python3 client against the server"
)]
fn interop_slixmpp_adhoc() {
    if !can_run(
        "interop_slixmpp_adhoc",
        python_missing("slixmpp"),
        "python3 -m pip install slixmpp",
    ) {
        return;
    }
    let server = server();
    let c2s = server.c2s_addr();
    let script =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/slixmpp_adhoc.py");
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(&script)
        .arg(c2s.ip().to_string())
        .arg(c2s.port().to_string())
        .args(["admin@localhost", ADMIN.1])
        .args(debug().then_some("--debug"));
    let limit = perch::testing::scaled(Duration::from_secs(90));
    let Captured {
        status,
        stdout: out,
        stderr: err,
    } = capture_within(&mut cmd, None, limit);
    println!("--- slixmpp_adhoc.py ---\n{out}");
    if !err.is_empty() {
        println!("--- stderr ---\n{err}");
    }
    let status = status.expect("the script finished in time");
    let verdict = judge(&out, &SLIXMPP_CHECKS, &[]);
    assert!(
        verdict.failed.is_empty() && verdict.silent.is_empty() && status.success(),
        "slixmpp_adhoc.py failed ({status}): {verdict:?}"
    );
    // What the script created is there for a client of ours too.
    login_outcome(&server, ("dave", "dave-password")).expect("the new account logs in");
}
