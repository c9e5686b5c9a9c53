//! Persistent rooms survive a restart: configuration, subject, affiliations
//! with reserved nicknames and reasons, and the discussion history; a
//! temporary room does not. Rooms are also administered through the admin
//! socket (`perch room list`, `perch room destroy`) while the server runs.
//!
//! Each part is a scansion conversation played against the same data
//! directory, with a server restart in between.

/// The runner's clients log in with the shared test client.
mod common;
#[allow(dead_code)]
mod scansion_runner;

use perch::admin::Command;
use perch::testing::{TestOptions, TestServer};
use scansion_runner::play::{PlayOptions, play_script_at, script_setup};

const CLIENTS: &str = "# clients
[Client] Romeo
	jid: romeo@localhost
	password: password

[Client] Juliet
	jid: juliet@localhost
	password: password

[Client] Tybalt
	jid: tybalt@localhost
	password: password

-----
";

const BEFORE: &str = r#"
Romeo connects

Romeo sends:
	<presence to="keep@conference.localhost/Romeo">
		<x xmlns="http://jabber.org/protocol/muc"/>
	</presence>

Romeo receives:
	<presence from="keep@conference.localhost/Romeo">
		<x xmlns="http://jabber.org/protocol/muc#user">
			<status code="201"/>
		</x>
	</presence>

Romeo sends:
	<iq id="cfg" to="keep@conference.localhost" type="set">
		<query xmlns="http://jabber.org/protocol/muc#owner">
			<x xmlns="jabber:x:data" type="submit">
				<field var="muc#roomconfig_persistentroom"><value>1</value></field>
				<field var="muc#roomconfig_roomname"><value>The Keep</value></field>
				<field var="muc#roomconfig_whois"><value>anyone</value></field>
			</x>
		</query>
	</iq>

Romeo receives:
	<iq id="cfg" type="result"/>

Romeo sends:
	<iq id="aff" to="keep@conference.localhost" type="set">
		<query xmlns="http://jabber.org/protocol/muc#admin">
			<item affiliation="member" jid="juliet@localhost" nick="Juliet"/>
			<item affiliation="outcast" jid="tybalt@localhost"><reason>Duel</reason></item>
		</query>
	</iq>

Romeo receives:
	<iq id="aff" type="result"/>

Romeo sends:
	<message to="keep@conference.localhost" type="groupchat">
		<subject>Plans</subject>
	</message>

Romeo receives:
	<message from="keep@conference.localhost/Romeo"><subject>Plans</subject></message>

Romeo sends:
	<message to="keep@conference.localhost" type="groupchat" id="m1">
		<body>Remember me</body>
	</message>

Romeo receives:
	<message from="keep@conference.localhost/Romeo" id="m1"/>

Romeo sends:
	<presence to="fleeting@conference.localhost/Romeo">
		<x xmlns="http://jabber.org/protocol/muc"/>
	</presence>

Romeo receives:
	<presence from="fleeting@conference.localhost/Romeo"/>

Romeo sends:
	<iq id="cfg2" to="fleeting@conference.localhost" type="set">
		<query xmlns="http://jabber.org/protocol/muc#owner">
			<x xmlns="jabber:x:data" type="submit"/>
		</query>
	</iq>

Romeo receives:
	<iq id="cfg2" type="result"/>

Romeo disconnects
"#;

const AFTER: &str = r#"
Juliet connects

Juliet sends:
	<iq id="info1" to="keep@conference.localhost" type="get">
		<query xmlns="http://jabber.org/protocol/disco#info"/>
	</iq>

Juliet receives:
	<iq id="info1" type="result">
		<query xmlns="http://jabber.org/protocol/disco#info">
			<identity category="conference" type="text" name="The Keep"/>
			<feature var="muc_persistent"/>
			<feature var="muc_nonanonymous"/>
		</query>
	</iq>

Juliet sends:
	<iq id="info2" to="fleeting@conference.localhost" type="get">
		<query xmlns="http://jabber.org/protocol/disco#info"/>
	</iq>

Juliet receives:
	<iq id="info2" type="error">
		<error type="cancel">
			<item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>
		</error>
	</iq>

Juliet sends:
	<iq id="nick" to="keep@conference.localhost" type="get">
		<query xmlns="http://jabber.org/protocol/disco#info" node="x-roomuser-item"/>
	</iq>

Juliet receives:
	<iq id="nick" type="result">
		<query xmlns="http://jabber.org/protocol/disco#info" node="x-roomuser-item">
			<identity category="conference" type="text" name="Juliet"/>
		</query>
	</iq>

Juliet sends:
	<presence to="keep@conference.localhost/Juliet">
		<x xmlns="http://jabber.org/protocol/muc"/>
	</presence>

Juliet receives:
	<presence from="keep@conference.localhost/Juliet">
		<x xmlns="http://jabber.org/protocol/muc#user">
			<item affiliation="member" role="participant"/>
			<status code="100"/>
			<status code="110"/>
		</x>
	</presence>

Juliet receives:
	<message type="groupchat" from="keep@conference.localhost/Romeo" id="m1">
		<body>Remember me</body>
		<delay xmlns="urn:xmpp:delay" from="keep@conference.localhost" stamp="{scansion:any}"/>
	</message>

Juliet receives:
	<message type="groupchat" from="keep@conference.localhost/Romeo">
		<subject>Plans</subject>
	</message>

Tybalt connects

Tybalt sends:
	<presence to="keep@conference.localhost/Tybalt">
		<x xmlns="http://jabber.org/protocol/muc"/>
	</presence>

Tybalt receives:
	<presence type="error">
		<error type="auth">
			<forbidden xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>
		</error>
	</presence>

Romeo connects

Romeo sends:
	<iq id="bans" to="keep@conference.localhost" type="get">
		<query xmlns="http://jabber.org/protocol/muc#admin">
			<item affiliation="outcast"/>
		</query>
	</iq>

Romeo receives:
	<iq id="bans" type="result">
		<query xmlns="http://jabber.org/protocol/muc#admin">
			<item affiliation="outcast" jid="tybalt@localhost"><reason>Duel</reason></item>
		</query>
	</iq>

Romeo sends:
	<iq id="owners" to="keep@conference.localhost" type="get">
		<query xmlns="http://jabber.org/protocol/muc#admin">
			<item affiliation="owner"/>
		</query>
	</iq>

Romeo receives:
	<iq id="owners" type="result">
		<query xmlns="http://jabber.org/protocol/muc#admin">
			<item affiliation="owner" jid="romeo@localhost"/>
		</query>
	</iq>

Juliet disconnects

Tybalt disconnects

Romeo disconnects
"#;

const GONE: &str = r#"
Juliet connects

Juliet sends:
	<iq id="info" to="keep@conference.localhost" type="get">
		<query xmlns="http://jabber.org/protocol/disco#info"/>
	</iq>

Juliet receives:
	<iq id="info" type="error">
		<error type="cancel">
			<item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>
		</error>
	</iq>

Juliet disconnects
"#;

fn part(body: &str) -> String {
    format!("{CLIENTS}{body}")
}

fn play(server: &TestServer, body: &str) {
    if let Err(f) = play_script_at(&part(body), &PlayOptions::default(), server.c2s_addr()) {
        panic!("{}", f.details);
    }
}

fn admin(server: &TestServer, cmd: &Command) -> Vec<String> {
    let dir = server.data_dir().expect("data dir");
    match perch::net::admin::request(dir, cmd) {
        Ok(Some(lines)) => lines,
        Ok(None) => panic!("no admin socket"),
        Err(e) => panic!("admin: {e}"),
    }
}

#[test]
fn persistent_rooms_survive_restarts() {
    let accounts = match script_setup(&part(BEFORE)).map(|s| s.accounts) {
        Ok(a) => a,
        Err(f) => panic!("{}", f.details),
    };
    let server = TestServer::start(TestOptions {
        accounts,
        extra_config: String::new(),
        ..TestOptions::default()
    })
    .expect("server");
    play(&server, BEFORE);
    // Romeo's disconnection reaches the rooms a moment later: then the
    // temporary room goes away with its last occupant.
    let expected = vec![
        "keep@conference.localhost (persistent, public, 0 occupants) \"The Keep\"".to_string(),
    ];
    let deadline =
        std::time::Instant::now() + perch::testing::scaled(std::time::Duration::from_secs(5));
    let mut listed = admin(&server, &Command::RoomList);
    while listed != expected && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        listed = admin(&server, &Command::RoomList);
    }
    assert_eq!(listed, expected);

    let server = server.restart(TestOptions::default()).expect("restart");
    play(&server, AFTER);

    let done = admin(
        &server,
        &Command::RoomDestroy {
            jid: "keep@conference.localhost".into(),
            reason: Some("Closing".into()),
        },
    );
    assert_eq!(
        done,
        vec!["destroyed keep@conference.localhost".to_string()]
    );
    assert_eq!(
        admin(&server, &Command::RoomList),
        vec![perch::admin::NO_ROOMS.to_string()]
    );

    let server = server.restart(TestOptions::default()).expect("restart");
    play(&server, GONE);
    server.stop();
}
