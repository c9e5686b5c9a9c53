//! What a stream-managed client cannot make the server hold: a client
//! that does not acknowledge what it was asked to has its stream ended
//! once more than four times `[c2s] resume_queue_max` stanzas are overdue,
//! and what it never acknowledged is stored offline, once. A burst is not
//! overdue before it was asked for.

use super::*;

#[test]
fn a_client_that_never_acknowledges_is_cut_off_and_loses_nothing() {
    // resume_queue_max = 10: at most 40 overdue while connected.
    let server = server_with("resume_queue_max = 10\n");
    let (mut alice, _id) = sm_login(&server, ALICE, "phone", true);
    let mut bob = login(&server, BOB, Some("pc"));
    send_messages(&mut bob, "alice@localhost/phone", "n", 60);
    bob.ping("sent");
    // The burst came whole, then the server asked for an ack.
    let mut read = 0;
    loop {
        let el = alice.element();
        if el.is("r", NS_SM) && read == 60 {
            break;
        }
        if body(&el).is_some() {
            read += 1;
        }
    }
    // She never answers; the next stanza finds 60 overdue.
    send_messages(&mut bob, "alice@localhost/phone", "n60-", 1);
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
    assert_eq!(read, 61, "the stream ended after {read} stanzas");
    // Everything she did not acknowledge (all of it) goes to her other
    // device: from offline storage, or live if that one came first.
    let mut alice = login(&server, ALICE, Some("laptop"));
    alice.send("<presence/>");
    let mut got = Vec::new();
    while got.len() < 61 {
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
    let mut want: Vec<String> = (0..60).map(|i| format!("n{i}")).collect();
    want.push("n60-0".into());
    assert_eq!(got, want);
}
