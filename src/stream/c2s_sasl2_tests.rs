//! The c2s stream's SASL2 flow without a server: the exchange in the SASL2
//! namespace, what reaches the connection, and the state afterwards.

use super::super::Policy;
use super::*;
use crate::sasl::fast::parse_response;
use crate::xml::{FrameEvent, Framer, Limits};

struct TestEnv;

impl Env for TestEnv {
    fn is_local_host(&self, domain: &str) -> bool {
        domain == "example.com"
    }
    fn new_stream_id(&self) -> String {
        "s1".to_string()
    }
}

struct Harness {
    stream: C2sStream,
    framer: Framer,
}

impl Harness {
    /// A plaintext stream where the (test) policy allows logins, FAST on.
    fn new() -> Harness {
        let policy = Policy {
            starttls_available: false,
            require_encryption: false,
            allow_plaintext_auth: true,
            max_auth_failures: 3,
            registration: false,
        };
        let mut h = Harness {
            stream: C2sStream::new(policy, false, None).with_fast(true),
            framer: Framer::new(Limits::default()),
        };
        let (features, _) = h.feed("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>");
        assert!(
            features.contains("<authentication xmlns='urn:xmpp:sasl:2'>"),
            "{features}"
        );
        h
    }

    fn feed(&mut self, xml: &str) -> (String, Vec<Action>) {
        self.framer.push(xml.as_bytes());
        let (mut out, mut actions) = (Vec::new(), Vec::new());
        while let Ok(Some(event)) = self.framer.next_event() {
            match event {
                FrameEvent::StreamOpen(h) => {
                    self.stream.on_header(&h, &TestEnv, &mut out, &mut actions)
                }
                FrameEvent::Element(el) => {
                    self.stream.on_element(el, &TestEnv, &mut out, &mut actions)
                }
                FrameEvent::StreamClose => self.stream.on_stream_close(&mut out, &mut actions),
            }
        }
        (String::from_utf8(out).expect("UTF-8"), actions)
    }

    /// Answers a SASL job with `step`, as the connection would.
    fn answer(&mut self, actions: Vec<Action>, step: Step) -> (String, Vec<Action>) {
        let Some(Action::Sasl(job)) = actions.into_iter().next() else {
            panic!("expected a SASL job");
        };
        let (mut out, mut more) = (Vec::new(), Vec::new());
        self.stream
            .sasl_result(job.session, step, &TestEnv, &mut out, &mut more);
        (String::from_utf8(out).expect("UTF-8"), more)
    }
}

const UA: &str = "<user-agent id='d4565fa7-4d72-4749-b3d3-740edbf87770'/>";

#[test]
fn a_challenge_a_response_and_a_completion_without_restart() {
    let mut h = Harness::new();
    let (out, actions) = h.feed(&format!(
        "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-1'>{UA}<bind xmlns='urn:xmpp:bind:0'><tag>t</tag></bind></authenticate>"
    ));
    assert_eq!(out, "");
    let (out, actions) = h.answer(actions, Step::Challenge(b"r=x".to_vec()));
    assert_eq!(out, "<challenge xmlns='urn:xmpp:sasl:2'>cj14</challenge>");
    assert!(actions.is_empty());
    // A SASL1 response is not one in a SASL2 exchange: the stream ends.
    let mut wrong = Harness::new();
    let (_, actions) =
        wrong.feed("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-1'/>");
    wrong.answer(actions, Step::Challenge(Vec::new()));
    let (out, actions) = wrong.feed("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    assert!(out.contains("policy-violation"), "{out}");
    assert!(matches!(actions.as_slice(), [Action::Close]));

    let (_, actions) = h.feed("<response xmlns='urn:xmpp:sasl:2'>Yz1iaXdz</response>");
    let (out, actions) = h.answer(
        actions,
        Step::Success {
            username: "juliet".into(),
            additional_data: b"v=abc".to_vec(),
        },
    );
    assert_eq!(out, "", "<success/> is the connection's to write");
    let done = match actions.into_iter().next() {
        Some(Action::Sasl2(step)) => match *step {
            Sasl2Action::Complete(done) => done,
            other => panic!("expected a completion, got {other:?}"),
        },
        _ => panic!("expected a SASL2 action"),
    };
    assert_eq!(done.account.as_str(), "juliet@example.com");
    assert_eq!(done.additional_data, b"v=abc");
    assert_eq!(
        done.user_agent.as_deref(),
        Some("d4565fa7-4d72-4749-b3d3-740edbf87770")
    );
    assert_eq!(done.inline.bind.and_then(|b| b.tag).as_deref(), Some("t"));
    assert!(h.stream.is_authenticated());
    // Bound by the connection: no restart, the stream is bound at once.
    let full = Jid::parse("juliet@example.com/t/1").expect("jid");
    let mut out = Vec::new();
    h.stream
        .sasl2_completed(Some(full.clone()), Some(0), &mut out);
    assert_eq!(h.stream.bound_jid(), Some(&full));
    assert_eq!(h.stream.handled(), Some(0));
    // A second <authenticate/> is a stream error (XEP-0388 §7.8).
    let (out, _) = h.feed("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'/>");
    assert!(out.contains("policy-violation"), "{out}");
}

#[test]
fn fast_logins_go_to_the_connection_and_failures_are_sasl2s() {
    let mut h = Harness::new();
    let mut msg = b"juliet\0".to_vec();
    msg.extend_from_slice(&[1u8; 32]);
    let (_, actions) = h.feed(&format!(
        "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'><initial-response>{}</initial-response>{UA}<fast xmlns='urn:xmpp:fast:0' count='4'/></authenticate>",
        crate::sasl::base64::encode(&msg)
    ));
    let job = match actions.into_iter().next() {
        Some(Action::Sasl2(step)) => match *step {
            Sasl2Action::Fast(job) => job,
            other => panic!("expected a FAST check, got {other:?}"),
        },
        _ => panic!("expected a SASL2 action"),
    };
    assert_eq!(Some(job.response.clone()), parse_response(&msg));
    assert_eq!(job.count, Some(4));
    assert!(job.cb_data.is_empty());
    let mut out = Vec::new();
    let mut more = Vec::new();
    h.stream.sasl2_fast_result(
        Err(SaslFailure::NotAuthorized),
        &TestEnv,
        &mut out,
        &mut more,
    );
    let out = String::from_utf8(out).expect("UTF-8");
    assert_eq!(
        out,
        "<failure xmlns='urn:xmpp:sasl:2'><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></failure>"
    );
    assert!(!h.stream.is_authenticated());
    // Without a user-agent id there is no token slot to check.
    let (out, actions) = h.feed(&format!(
        "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'><initial-response>{}</initial-response></authenticate>",
        crate::sasl::base64::encode(&msg)
    ));
    assert!(actions.is_empty());
    assert!(
        out.contains("<malformed-request") && out.contains("user-agent"),
        "{out}"
    );
}
