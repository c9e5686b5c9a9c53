//! Resumption: the burst cut in the middle, a connection still open, and
//! what may not resume.

use super::*;

/// Reads elements until `count` message bodies with `prefix` arrived,
/// answering nothing; returns the bodies in order and the number of
/// stanzas read (what the client would put in `h`).
fn read_bodies(client: &mut Client, prefix: &str, count: usize) -> (Vec<String>, u32) {
    let mut bodies = Vec::new();
    let mut stanzas = 0u32;
    while bodies.len() < count {
        let el = client.element();
        if el.ns == NS_SM {
            continue;
        }
        stanzas += 1;
        if let Some(b) = body(&el).filter(|b| b.starts_with(prefix)) {
            bodies.push(b);
        }
    }
    (bodies, stanzas)
}

#[test]
fn a_burst_cut_in_the_middle_arrives_exactly_once_in_order() {
    // The whole burst may wait for her (the default is 500 stanzas).
    let server = server_with("resume_queue_max = 2000\n");
    let (mut alice, id) = sm_login(&server, ALICE, "phone", true);
    let id = id.expect("resumable");
    let mut bob = login(&server, BOB, Some("pc"));
    send_messages(&mut bob, "alice@localhost/phone", "m", 1000);
    // Alice reads part of it, then her connection dies without a word.
    let (mut got, h) = read_bodies(&mut alice, "m", 300);
    alice.cut();
    let (mut alice, answer) = resume_as(&server, ALICE, &id, h);
    assert!(answer.is("resumed", NS_SM), "{answer}");
    assert_eq!(answer.attr("previd"), Some(id.as_str()));
    let (rest, _) = read_bodies(&mut alice, "m", 700);
    got.extend(rest);
    let want: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
    assert_eq!(got, want);
    // Nothing more: a ping is answered next.
    let pong = alice.ping("after");
    assert_eq!(pong.attr("type"), Some("result"));
}
