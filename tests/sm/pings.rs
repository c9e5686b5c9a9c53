//! The server's pings of silent clients: an XEP-0199 ping without stream
//! management, `<r/>` with it; a client that answers stays, one that does
//! not is taken as lost (and, resumable, may resume).

use std::time::Instant;

use super::*;

const IDLE: Duration = Duration::from_secs(10);
const TIMEOUT: Duration = Duration::from_secs(5);

/// Reads what `client` was sent, waiting at most until `deadline`, without
/// consuming anything: returns whether the connection ended.
fn closed_by(client: &mut Client, deadline: Instant) -> bool {
    client.closed_within(deadline.saturating_duration_since(Instant::now()))
}

#[test]
fn silent_clients_are_pinged_and_those_that_never_answer_are_lost() {
    let server =
        server_with("ping_idle_secs = 10\nping_timeout_secs = 5\nresume_timeout_secs = 60\n");
    // Two that answer, two that never do; none says a word otherwise.
    let mut plain = login(&server, ALICE, Some("plain"));
    let plain_ready = Instant::now();
    let (mut managed, _) = sm_login(&server, ALICE, "managed", false);
    let (mut mute, mute_id) = sm_login(&server, ALICE, "mute", true);
    let mute_ready = Instant::now();
    let mut mute_plain = login(&server, BOB, Some("mute"));
    let mute_plain_ready = Instant::now();

    // Nothing during the idle time...
    assert!(
        !closed_by(&mut plain, plain_ready + IDLE - Duration::from_secs(1)),
        "closed early"
    );
    assert!(
        plain.unparsed().trim().is_empty(),
        "sent before the idle time was over: {}",
        plain.unparsed()
    );
    // ... then an XEP-0199 ping for the client without stream management,
    let ping = plain.element();
    assert!(
        plain_ready.elapsed() >= IDLE - Duration::from_millis(500),
        "pinged after {:?}",
        plain_ready.elapsed()
    );
    assert!(ping.is("iq", NS_CLIENT), "{ping}");
    assert_eq!(ping.attr("type"), Some("get"), "{ping}");
    assert!(ping.get_child("ping", NS_PING).is_some(), "{ping}");
    assert!(ping.attr("from").is_none_or(|f| f == "localhost"), "{ping}");
    let id = ping.attr("id").expect("the ping has an id");
    plain.send(&format!("<iq type='result' id='{id}'/>"));
    // ... and <r/> for the one with it.
    let r = managed.element();
    assert!(r.is("r", NS_SM), "expected <r/>, got {r}");
    managed.send(&format!("<a xmlns='{NS_SM}' h='0'/>"));
    let r = mute.element();
    assert!(r.is("r", NS_SM), "expected <r/>, got {r}");
    let ping = mute_plain.element();
    assert!(ping.get_child("ping", NS_PING).is_some(), "{ping}");

    // The two that do not answer are lost after the ping's timeout.
    let margin = scaled(Duration::from_secs(3));
    for (client, ready, who) in [
        (&mut mute, mute_ready, "the stream-managed client"),
        (&mut mute_plain, mute_plain_ready, "the plain client"),
    ] {
        assert!(
            closed_by(client, ready + IDLE + TIMEOUT + margin),
            "{who} was not taken as lost"
        );
        let after = ready.elapsed();
        assert!(
            after >= IDLE + TIMEOUT - Duration::from_secs(1),
            "{who} was taken as lost after {after:?}"
        );
    }
    // The resumable one waits for its client...
    let (mut resumed, answer) = resume_as(&server, ALICE, &mute_id.expect("resumable"), 0);
    assert!(answer.is("resumed", NS_SM), "{answer}");
    assert_eq!(answer.attr("h"), Some("0"), "{answer}");
    let pong = resumed.ping("resumed");
    assert_eq!(pong.attr("to"), Some("alice@localhost/mute"), "{pong}");
    // ... the other is gone.
    plain.send(&format!(
        "<iq type='get' id='gone' to='bob@localhost/mute'><ping xmlns='{NS_PING}'/></iq>"
    ));
    let reply = plain.element();
    assert_stanza_error(&reply, "iq", Some("gone"), "service-unavailable", "cancel");
    // Those that answered are still here, and the answer to the ping
    // drew no error.
    assert!(until_pong(&mut plain, "plain").is_empty());
    managed.send(&format!("<r xmlns='{NS_SM}'/>"));
    let a = managed.element();
    assert!(a.is("a", NS_SM), "expected <a/>, got {a}");
    assert_eq!(a.attr("h"), Some("0"), "{a}");
}
