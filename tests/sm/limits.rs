//! What a stream-managed client cannot make the server hold: a client
//! that never acknowledges anything has its stream ended once it holds
//! four times `[c2s] resume_queue_max` stanzas unacknowledged, and what
//! it never acknowledged is stored offline, once.

use super::*;

#[test]
fn a_client_that_never_acknowledges_is_cut_off_and_loses_nothing() {
    // resume_queue_max = 10: at most 40 unacknowledged while connected.
    let server = server_with("resume_queue_max = 10\nack_request_stanzas = 0\n");
    let (mut alice, _id) = sm_login(&server, ALICE, "phone", true);
    let mut bob = login(&server, BOB, Some("pc"));
    send_messages(&mut bob, "alice@localhost/phone", "n", 60);
    bob.ping("sent");
    let mut read = 0;
    let error = loop {
        let el = alice.element();
        if el.is("error", NS_STREAM) {
            break el;
        }
        if body(&el).is_some() {
            read += 1;
        }
    };
    assert!(
        error
            .get_child("policy-violation", NS_STREAM_ERRORS)
            .is_some(),
        "{error}"
    );
    // The limit is checked per write: a burst taken at once may pass it.
    assert!(read > 40, "the stream ended after {read} stanzas");
    // Everything she did not acknowledge (all of it) goes to her other
    // device: from offline storage, or live if that one came first.
    let mut alice = login(&server, ALICE, Some("laptop"));
    alice.send("<presence/>");
    let mut got = Vec::new();
    while got.len() < 60 {
        got.extend(body(&alice.element()));
    }
    alice.send("<iq type='get' id='end'><ping xmlns='urn:xmpp:ping'/></iq>");
    loop {
        let el = alice.element();
        if el.name == "iq" && el.attr("id") == Some("end") {
            break;
        }
        got.extend(body(&el));
    }
    let want: Vec<String> = (0..60).map(|i| format!("n{i}")).collect();
    assert_eq!(got, want);
}
