use super::*;
use crate::xml::{Framer, Limits};

struct TestEnv;

impl ComponentEnv for TestEnv {
    fn secret_for(&self, domain: &str) -> Option<&str> {
        (domain == "irc.localhost").then_some("s3cr3t-s3cr3t")
    }
    fn new_stream_id(&self) -> String {
        "sid1".into()
    }
    fn is_connected(&self, _: &str) -> bool {
        false
    }
}

/// Feeds `input` to a fresh stream; returns what it wrote and did.
fn run(input: &str) -> (String, Vec<ComponentAction>) {
    let mut framer = Framer::new(Limits::default());
    let mut stream = ComponentStream::new();
    let (mut out, mut actions) = (Vec::new(), Vec::new());
    framer.push(input.as_bytes());
    while let Ok(Some(event)) = framer.next_event() {
        stream.on_event(&TestEnv, event, &mut out, &mut actions);
        if stream.is_closed() {
            break;
        }
    }
    (String::from_utf8(out).unwrap(), actions)
}

const HEADER: &str = "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='irc.localhost'>";

fn handshake() -> String {
    format!(
        "<handshake>{}</handshake>",
        expected_handshake("sid1", "s3cr3t-s3cr3t")
    )
}

#[test]
fn the_handshake_is_lower_case_hex_sha1_of_id_and_secret() {
    // XEP-0114 §3's stream id; the digest computed independently
    // (Python's hashlib) for the secret "secret".
    assert_eq!(
        expected_handshake("3BF96D32", "secret"),
        "b09ea9b3b7f586be8a08d0a3dd7466f110aeb136"
    );
}

#[test]
fn handshake_then_stanzas_in_the_client_namespace() {
    let (out, actions) = run(&format!(
        "{HEADER}{}<message from='alice@irc.localhost' to='bob@localhost'><body>hi</body></message>",
        handshake()
    ));
    assert!(out.contains("from='irc.localhost' id='sid1'>"), "{out}");
    assert!(out.ends_with("<handshake/>"), "{out}");
    assert!(
        matches!(&actions[0], ComponentAction::Authenticated { domain } if domain == "irc.localhost")
    );
    let ComponentAction::Route { stanza, to } = &actions[1] else {
        panic!("{actions:?}");
    };
    assert_eq!(to.to_string(), "bob@localhost");
    assert_eq!(stanza.ns, NS_CLIENT);
    assert!(stanza.get_child("body", NS_CLIENT).is_some());
}

#[test]
fn a_wrong_secret_is_not_authorized() {
    let (out, actions) = run(&format!("{HEADER}<handshake>0000</handshake>"));
    assert!(out.contains("<not-authorized "), "{out}");
    assert!(out.contains("does not match the secret"), "{out}");
    assert!(matches!(actions.last(), Some(ComponentAction::Close)));
}

#[test]
fn an_unknown_domain_is_host_unknown() {
    let (out, _) = run(&HEADER.replace("irc.localhost", "other.localhost"));
    assert!(out.contains("<host-unknown "), "{out}");
    assert!(
        out.contains("no [[component]] is configured for other.localhost"),
        "{out}"
    );
}

#[test]
fn the_namespace_must_be_the_component_one() {
    let (out, _) = run(&HEADER.replace("jabber:component:accept", "jabber:client"));
    assert!(out.contains("<invalid-namespace "), "{out}");
}

#[test]
fn stanzas_before_the_handshake_are_refused() {
    let (out, _) = run(&format!("{HEADER}<message to='a@localhost'/>"));
    assert!(out.contains("<not-authorized "), "{out}");
}

#[test]
fn a_from_outside_the_domain_is_invalid_from() {
    let (out, actions) = run(&format!(
        "{HEADER}{}<message from='alice@localhost' to='bob@localhost'/>",
        handshake()
    ));
    assert!(out.contains("<invalid-from "), "{out}");
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, ComponentAction::Route { .. }))
    );
}

#[test]
fn a_stanza_without_to_is_improper_addressing() {
    let (out, _) = run(&format!(
        "{HEADER}{}<message from='irc.localhost'/>",
        handshake()
    ));
    assert!(out.contains("<improper-addressing "), "{out}");
}

#[test]
fn other_elements_are_unsupported() {
    let (out, _) = run(&format!("{HEADER}{}<foo xmlns='urn:x'/>", handshake()));
    assert!(out.contains("<unsupported-stanza-type "), "{out}");
}
