//! Invitations end to end against an in-process server: invites made
//! through the admin socket (as `perch invite` makes them while the
//! server runs), registration with a token over c2s (XEP-0445), the
//! mutual subscription after a contact invite (XEP-0379/0401), and the
//! landing page's GET and POST on the HTTP listener.

mod common;

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use common::http::{HttpResponse, http_get, http_request};
use common::{Client, NS_CLIENT, NS_STREAM, error_condition, login};
use perch::admin::Command;
use perch::admin_notices::NoticeCommand;
use perch::invite::admin::{CreateRequest, InviteCommand};
use perch::testing::{TestOptions, TestServer};
use perch::xml::Element;

const NS_REGISTER: &str = "jabber:iq:register";
const NS_ROSTER: &str = "jabber:iq:roster";

fn server() -> TestServer {
    TestServer::start(TestOptions {
        accounts: vec![
            ("romeo@localhost".into(), "password".into()),
            ("juliet@localhost".into(), "password".into()),
        ],
        ..TestOptions::default()
    })
    .expect("the test server should start")
}

fn admin(server: &TestServer, cmd: InviteCommand) -> Result<Vec<String>, String> {
    let dir = server.data_dir().expect("data directory");
    perch::net::admin::request(dir, &Command::Invite(cmd))
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "no server on the admin socket".to_string())
}

/// Creates an invite and returns its token (the first word of the answer).
fn invite(server: &TestServer, req: CreateRequest) -> String {
    let lines = admin(server, InviteCommand::Create(req)).expect("invite created");
    let token = lines[0].split(' ').next().expect("token").to_string();
    assert_eq!(token.len(), perch::invite::token::TOKEN_CHARS, "{lines:?}");
    token
}

fn listed(server: &TestServer) -> Vec<String> {
    admin(server, InviteCommand::List).expect("list")
}

/// A fresh stream, not logged in; returns the client and the features.
fn fresh(server: &TestServer) -> (Client, Element) {
    let mut client = Client::connect(server.c2s_addr());
    let features = client.open();
    (client, features)
}

fn preauth(client: &mut Client, id: &str, token: &str) -> Element {
    client.iq(&format!(
        "<iq type='set' id='{id}' to='localhost'><preauth xmlns='urn:xmpp:pars:0' token='{token}'/></iq>"
    ))
}

fn register(client: &mut Client, id: &str, user: &str, password: &str) -> Element {
    client.iq(&format!(
        "<iq type='set' id='{id}'><query xmlns='{NS_REGISTER}'><username>{user}</username><password>{password}</password></query></iq>"
    ))
}

fn is_result(el: &Element) -> bool {
    el.is("iq", NS_CLIENT) && el.attr("type") == Some("result")
}

#[test]
fn registration_with_a_token_and_only_with_one() {
    let server = server();
    let token = invite(&server, CreateRequest::default());
    let (mut client, features) = fresh(&server);
    assert!(features.is("features", NS_STREAM));
    for ns in ["urn:xmpp:ibr-token:0", "urn:xmpp:invite"] {
        assert!(
            features.get_child("register", ns).is_some(),
            "{ns}: {features}"
        );
    }
    // Registration is closed without a token...
    assert!(
        features
            .get_child("register", "http://jabber.org/features/iq-register")
            .is_none()
    );
    let refused = register(&mut client, "r0", "newbie", "s3cret-pw");
    assert_eq!(
        error_condition(&refused),
        "service-unavailable",
        "{refused}"
    );
    // ...and a wrong token opens nothing.
    let wrong = preauth(&mut client, "p0", &"a".repeat(26));
    assert_eq!(error_condition(&wrong), "item-not-found", "{wrong}");
    assert!(wrong.to_string().contains("invalid or expired"), "{wrong}");
    let malformed = preauth(&mut client, "p1", "x&lt;y");
    assert_eq!(error_condition(&malformed), "item-not-found", "{malformed}");
    let still = register(&mut client, "r1", "newbie", "s3cret-pw");
    assert_eq!(error_condition(&still), "service-unavailable", "{still}");
    // The right token does.
    let ok = preauth(&mut client, "p2", &token);
    assert!(is_result(&ok), "{ok}");
    let fields = client.iq(&format!(
        "<iq type='get' id='g1'><query xmlns='{NS_REGISTER}'/></iq>"
    ));
    assert!(is_result(&fields), "{fields}");
    let created = register(&mut client, "r2", "newbie", "s3cret-pw");
    assert!(is_result(&created), "{created}");
    drop(client);
    // The account works, and the single-use token is gone.
    let mut newbie = login(&server, ("newbie", "s3cret-pw"), Some("phone"));
    assert!(is_result(&newbie.ping("ping1")));
    let (mut again, _) = fresh(&server);
    let used = preauth(&mut again, "p3", &token);
    assert_eq!(error_condition(&used), "item-not-found", "{used}");
    assert_eq!(listed(&server), vec!["no invites".to_string()]);
}

#[test]
fn a_taken_username_keeps_the_token_and_a_fixed_one_is_enforced() {
    let server = server();
    let token = invite(&server, CreateRequest::default());
    let (mut client, _) = fresh(&server);
    assert!(is_result(&preauth(&mut client, "p1", &token)));
    let taken = register(&mut client, "r1", "juliet", "s3cret-pw");
    assert_eq!(error_condition(&taken), "conflict", "{taken}");
    assert_eq!(listed(&server).len(), 1, "the token keeps its use");
    assert!(is_result(&register(
        &mut client,
        "r2",
        "benvolio",
        "s3cret-pw"
    )));
    assert_eq!(listed(&server), vec!["no invites".to_string()]);

    let fixed = invite(
        &server,
        CreateRequest {
            for_jid: Some("grandma@localhost".into()),
            ..CreateRequest::default()
        },
    );
    // Another invite cannot take the reserved name.
    let other = invite(&server, CreateRequest::default());
    let (mut thief, _) = fresh(&server);
    assert!(is_result(&preauth(&mut thief, "p1", &other)));
    let stolen = register(&mut thief, "r1", "grandma", "s3cret-pw");
    assert_eq!(error_condition(&stolen), "conflict", "{stolen}");
    let (mut client, _) = fresh(&server);
    assert!(is_result(&preauth(&mut client, "p1", &fixed)));
    let fields = client.iq(&format!(
        "<iq type='get' id='g1'><query xmlns='{NS_REGISTER}'/></iq>"
    ));
    let username = fields
        .get_child("query", NS_REGISTER)
        .and_then(|q| q.get_child("username", NS_REGISTER))
        .map(Element::text);
    assert_eq!(username.as_deref(), Some("grandma"), "{fields}");
    let wrong = register(&mut client, "r1", "grandpa", "s3cret-pw");
    assert_eq!(error_condition(&wrong), "not-acceptable", "{wrong}");
    assert!(is_result(&register(
        &mut client,
        "r2",
        "grandma",
        "s3cret-pw"
    )));
    login(&server, ("grandma", "s3cret-pw"), None);
}

#[test]
fn revoked_and_expired_tokens_are_refused() {
    let server = server();
    let token = invite(&server, CreateRequest::default());
    let revoked = admin(
        &server,
        InviteCommand::Revoke {
            token: token.clone(),
        },
    )
    .expect("revoke");
    assert_eq!(revoked, vec![format!("revoked invite {token}")]);
    let (mut client, _) = fresh(&server);
    assert_eq!(
        error_condition(&preauth(&mut client, "p1", &token)),
        "item-not-found"
    );
    assert!(admin(&server, InviteCommand::Revoke { token }).is_err());

    // An invite that expired while the server was stopped.
    let expired = "expiredexpiredexpiredexpir".to_string();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let record = perch::store::invites::Invite {
        token: expired.clone(),
        kind: perch::store::invites::InviteKind::Account,
        domain: "localhost".into(),
        creator: None,
        username: None,
        group: None,
        created: now - 3_600,
        expires: now - 60,
        uses_left: 1,
        admin: false,
    };
    let server = server
        .restart_after(TestOptions::default(), |dir| {
            let store = perch::store::Store::open(&dir.join(perch::config::DB_FILE), 1 << 20)
                .expect("open");
            smol::block_on(store.invites().create(record, now - 3_600)).expect("store");
        })
        .expect("restart");
    let (mut client, _) = fresh(&server);
    assert_eq!(
        error_condition(&preauth(&mut client, "p1", &expired)),
        "item-not-found"
    );
}

#[test]
fn wrong_tokens_are_throttled_per_address() {
    let server = server();
    let token = invite(&server, CreateRequest::default());
    let (mut client, _) = fresh(&server);
    let mut throttled = None;
    for i in 0..20 {
        let answer = preauth(&mut client, &format!("p{i}"), &"b".repeat(26));
        if error_condition(&answer) == "resource-constraint" {
            throttled = Some(i);
            break;
        }
        assert_eq!(error_condition(&answer), "item-not-found", "{answer}");
    }
    let at = throttled.expect("wrong tokens are throttled");
    assert!(
        at <= perch::invite::throttle::FREE_FAILURES as usize + 1,
        "after {at}"
    );
    // While throttled, even the right token is not looked at.
    let refused = preauth(&mut client, "p-right", &token);
    assert_eq!(
        error_condition(&refused),
        "resource-constraint",
        "{refused}"
    );
}

/// The roster item `client` holds for `contact`.
fn roster_item(client: &mut Client, id: &str, contact: &str) -> Option<Element> {
    let answer = client.iq(&format!(
        "<iq type='get' id='{id}'><query xmlns='{NS_ROSTER}'/></iq>"
    ));
    let answer = if answer.attr("id") == Some(id) {
        answer
    } else {
        client.element_matching("roster result", |e| e.attr("id") == Some(id))
    };
    answer
        .get_child("query", NS_ROSTER)?
        .children()
        .find(|i| i.attr("jid") == Some(contact))
        .cloned()
}

#[test]
fn a_contact_invite_subscribes_both_ways_with_a_roster_push() {
    let server = server();
    let token = invite(
        &server,
        CreateRequest {
            inviter: Some("romeo@localhost".into()),
            group: Some("Family".into()),
            ..CreateRequest::default()
        },
    );
    let mut romeo = login(&server, ("romeo", "password"), Some("laptop"));
    roster_item(&mut romeo, "roster0", "nobody@localhost");
    let (mut client, _) = fresh(&server);
    assert!(is_result(&preauth(&mut client, "p1", &token)));
    assert!(is_result(&register(
        &mut client,
        "r1",
        "mercutio",
        "s3cret-pw"
    )));
    // Romeo's online client hears of his new contact.
    let push = romeo.element_matching("a roster push", |e| {
        e.attr("type") == Some("set") && e.get_child("query", NS_ROSTER).is_some()
    });
    let item = push
        .get_child("query", NS_ROSTER)
        .and_then(|q| {
            q.children()
                .find(|i| i.attr("jid") == Some("mercutio@localhost"))
        })
        .cloned()
        .unwrap_or_else(|| panic!("a push for mercutio: {push}"));
    assert_eq!(item.attr("subscription"), Some("both"), "{item}");
    assert_eq!(
        item.get_child("group", NS_ROSTER)
            .map(Element::text)
            .as_deref(),
        Some("Family")
    );
    let mut mercutio = login(&server, ("mercutio", "s3cret-pw"), Some("phone"));
    let item = roster_item(&mut mercutio, "roster1", "romeo@localhost").expect("romeo listed");
    assert_eq!(item.attr("subscription"), Some("both"), "{item}");
}

#[test]
fn an_existing_user_subscribes_with_a_contact_token() {
    let server = server();
    let token = invite(
        &server,
        CreateRequest {
            inviter: Some("romeo@localhost".into()),
            ..CreateRequest::default()
        },
    );
    let mut romeo = login(&server, ("romeo", "password"), Some("laptop"));
    romeo.send("<presence/>");
    let mut juliet = login(&server, ("juliet", "password"), Some("phone"));
    juliet.send("<presence/>");
    juliet.send(&format!(
        "<presence to='romeo@localhost' type='subscribe'><preauth xmlns='urn:xmpp:pars:0' token='{token}'/></presence>"
    ));
    // Approved at once, and asked back.
    juliet.element_matching("subscribed from romeo", |e| {
        e.is("presence", NS_CLIENT) && e.attr("type") == Some("subscribed")
    });
    juliet.element_matching("subscribe from romeo", |e| {
        e.is("presence", NS_CLIENT) && e.attr("type") == Some("subscribe")
    });
    juliet.send("<presence to='romeo@localhost' type='subscribed'/>");
    let item = roster_item(&mut juliet, "roster1", "romeo@localhost").expect("romeo listed");
    assert_eq!(item.attr("subscription"), Some("both"), "{item}");
    let item = roster_item(&mut romeo, "roster2", "juliet@localhost").expect("juliet listed");
    assert_eq!(item.attr("subscription"), Some("both"), "{item}");
    // The token was for one use.
    assert_eq!(listed(&server), vec!["no invites".to_string()]);
}

fn http_addr(server: &TestServer) -> SocketAddr {
    server.http_addr().expect("an http listener")
}

fn post_form(server: &TestServer, path: &str, body: &str) -> HttpResponse {
    let length = format!("Content-Length: {}", body.len());
    http_request(
        http_addr(server),
        "POST",
        path,
        &["Content-Type: application/x-www-form-urlencoded", &length],
        body.as_bytes(),
    )
}

#[test]
fn the_landing_page_shows_the_invite_and_registers() {
    let server = server();
    let token = invite(
        &server,
        CreateRequest {
            inviter: Some("romeo@localhost".into()),
            ..CreateRequest::default()
        },
    );
    let path = format!("/invite/{token}");
    let page = http_get(http_addr(&server), &path);
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("romeo@localhost has invited you"), "{html}");
    assert!(html.contains(&format!(
        "href='xmpp:romeo@localhost?roster;preauth={token};ibr=y'"
    )));
    assert!(html.contains("<svg"));
    assert!(html.contains("Conversations") && html.contains("Monal") && html.contains("Gajim"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert!(
        page.header("content-security-policy")
            .is_some_and(|c| c.contains("default-src 'none'"))
    );

    let unknown = http_get(http_addr(&server), &format!("/invite/{}", "c".repeat(26)));
    assert_eq!(unknown.status, 404);
    assert!(unknown.text().contains("invalid or expired"));
    assert_eq!(
        http_get(http_addr(&server), "/invite/%3Cscript%3E").status,
        404
    );

    let differ = post_form(
        &server,
        &path,
        "username=tybalt&password=s3cret-pw&password2=other",
    );
    assert_eq!(differ.status, 400, "{}", differ.text());
    assert!(
        differ.text().contains("passwords differ"),
        "{}",
        differ.text()
    );
    assert!(differ.text().contains("value='tybalt'"));
    let taken = post_form(
        &server,
        &path,
        "username=juliet&password=s3cret-pw&password2=s3cret-pw",
    );
    assert_eq!(taken.status, 409, "{}", taken.text());
    let big = format!("username={}", "x".repeat(5000));
    assert_eq!(post_form(&server, &path, &big).status, 413);
    let created = post_form(
        &server,
        &path,
        "username=Tybalt&password=s3cret+pw&password2=s3cret+pw",
    );
    assert_eq!(created.status, 201, "{}", created.text());
    assert!(created.text().contains("tybalt@localhost"));
    // Used: the page says so, and the account works with its contact.
    assert_eq!(http_get(http_addr(&server), &path).status, 404);
    // Guessing tokens through the page is throttled like on a stream.
    let statuses: Vec<u16> = (0..8)
        .map(|_| http_get(http_addr(&server), &format!("/invite/{}", "d".repeat(26))).status)
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    let mut tybalt = login(&server, ("tybalt", "s3cret pw"), None);
    let item = roster_item(&mut tybalt, "roster1", "romeo@localhost").expect("romeo listed");
    assert_eq!(item.attr("subscription"), Some("both"), "{item}");
}

/// An administrator's client runs the invite command (XEP-0050): the
/// result form holds the `xmpp:` URI, whose token registers a newcomer
/// who becomes the administrator's contact; a user may not run it.
#[test]
fn an_admin_invites_from_a_client_with_an_adhoc_command() {
    const NS_COMMANDS: &str = "http://jabber.org/protocol/commands";
    let server = TestServer::start(TestOptions {
        accounts: vec![
            ("admin@localhost".into(), "admin-pw".into()),
            ("romeo@localhost".into(), "password".into()),
        ],
        ..TestOptions::default()
    })
    .expect("the test server should start");
    let execute = |client: &mut Client, id: &str, node: &str| {
        client.iq(&format!(
            "<iq type='set' id='{id}' to='localhost'><command xmlns='{NS_COMMANDS}' node='{node}' action='execute'/></iq>"
        ))
    };
    let mut romeo = login(&server, ("romeo", "password"), Some("laptop"));
    let refused = execute(&mut romeo, "c0", "urn:xmpp:invite#invite");
    assert_eq!(error_condition(&refused), "forbidden", "{refused}");

    let mut admin = login(&server, ("admin", "admin-pw"), Some("phone"));
    let field = |command: &Element, var: &str| {
        command
            .get_child("x", "jabber:x:data")
            .and_then(|x| x.children().find(|f| f.attr("var") == Some(var)))
            .and_then(|f| f.children().find(|v| v.name == "value"))
            .map(Element::text)
    };
    for (id, node) in [
        ("c1", "urn:xmpp:invite#create-account"),
        ("c2", "urn:xmpp:invite#invite"),
    ] {
        let answer = execute(&mut admin, id, node);
        assert!(is_result(&answer), "{answer}");
        let command = answer.get_child("command", NS_COMMANDS).expect("command");
        assert_eq!(command.attr("status"), Some("completed"), "{answer}");
        let uri = field(command, "uri").unwrap_or_else(|| panic!("no uri in {answer}"));
        assert!(field(command, "expire").is_some(), "{answer}");
        let token = uri.rsplit("preauth=").next().unwrap_or_default();
        let token = token.split(';').next().unwrap_or_default().to_string();
        if node.ends_with("#create-account") {
            assert_eq!(uri, format!("xmpp:localhost?register;preauth={token}"));
            continue;
        }
        assert_eq!(
            uri,
            format!("xmpp:admin@localhost?roster;preauth={token};ibr=y")
        );
        let (mut client, _) = fresh(&server);
        assert!(is_result(&preauth(&mut client, "p1", &token)));
        assert!(is_result(&register(
            &mut client,
            "r1",
            "nurse",
            "s3cret-pw"
        )));
        let mut nurse = login(&server, ("nurse", "s3cret-pw"), Some("phone"));
        let item = roster_item(&mut nurse, "roster1", "admin@localhost").expect("admin listed");
        assert_eq!(item.attr("subscription"), Some("both"), "{item}");
    }
    // Both invites are listed as `perch invite list` shows them; the used
    // one is gone.
    assert_eq!(listed(&server).len(), 1, "{:?}", listed(&server));
}

/// `perch invite --admin`: the account the invitation registers is a
/// server administrator (the ad-hoc invite commands answer it), after a
/// restart too, until `perch user admin JID --revoke`.
#[test]
fn an_admin_invitation_registers_an_administrator_until_revoked() {
    const NS_COMMANDS: &str = "http://jabber.org/protocol/commands";
    let execute = |client: &mut Client, id: &str| {
        client.iq(&format!(
            "<iq type='set' id='{id}' to='localhost'><command xmlns='{NS_COMMANDS}' node='urn:xmpp:invite#create-account' action='execute'/></iq>"
        ))
    };
    let server = server();
    let plain = invite(&server, CreateRequest::default());
    let boss = invite(
        &server,
        CreateRequest {
            admin: true,
            ..CreateRequest::default()
        },
    );
    let lines = listed(&server);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{boss} admin account invite"))),
        "{lines:?}"
    );
    for (token, user) in [(&plain, "clerk"), (&boss, "boss")] {
        let (mut client, _) = fresh(&server);
        assert!(is_result(&preauth(&mut client, "p1", token)));
        assert!(is_result(&register(&mut client, "r1", user, "s3cret-pw")));
    }
    let mut clerk = login(&server, ("clerk", "s3cret-pw"), Some("phone"));
    let refused = execute(&mut clerk, "c1");
    assert_eq!(error_condition(&refused), "forbidden", "{refused}");
    let mut boss_client = login(&server, ("boss", "s3cret-pw"), Some("phone"));
    let answer = execute(&mut boss_client, "c2");
    assert!(is_result(&answer), "{answer}");
    drop((clerk, boss_client));

    // Granted administrators are read back at start.
    let server = server.restart(TestOptions::default()).expect("restart");
    let mut boss_client = login(&server, ("boss", "s3cret-pw"), Some("phone"));
    assert!(is_result(&execute(&mut boss_client, "c3")));
    let notice = |cmd: NoticeCommand| {
        perch::net::admin::request(server.data_dir().expect("dir"), &Command::Notice(cmd))
            .expect("admin socket")
            .expect("a running server")
    };
    let admins = notice(NoticeCommand::AdminList);
    assert!(
        admins
            .iter()
            .any(|l| l.starts_with("boss@localhost (granted ")),
        "{admins:?}"
    );
    notice(NoticeCommand::UserAdmin {
        jid: "boss@localhost".into(),
        admin: false,
    });
    let refused = execute(&mut boss_client, "c4");
    assert_eq!(error_condition(&refused), "forbidden", "{refused}");
}
