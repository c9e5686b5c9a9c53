//! Tests of the outgoing s2s stream: against an `S2sIn` through the
//! harness of `s2s_in_tests.rs` (two and three servers), then alone with
//! scripted answers from a peer.

use super::*;
use crate::stanza::Condition;
use crate::stream::dialback::DialbackSecret;
use crate::stream::s2s_in::tests::{
    A_SECRET, B_SECRET, InTestEnv, Link, MESSAGE, OutTestEnv, a_to_b, out_env, routed,
};
use crate::stream::s2s_in::{InAction, S2sIn};
use crate::xml::{Framer, Limits};

/// Two links the other way round: b.example asks a.example, the
/// authoritative server, over its own outgoing link — sent while that link
/// is itself still waiting for its dialback answer.
#[test]
fn dialback_through_the_authoritative_server() {
    for (a_secret_at_authoritative, expect_valid) in [(A_SECRET, true), ([9; 32], false)] {
        let mut a_to_b = a_to_b(false);
        a_to_b.start();
        let (originating, receiving, stream_id, key) = a_to_b.take_verify_request();

        let mut b_to_a = Link::new(
            "b.example",
            "a.example",
            out_env(B_SECRET, false),
            InTestEnv::new(&["a.example"], a_secret_at_authoritative),
        );
        b_to_a.start();
        let mut actions = Vec::new();
        b_to_a.out.request_verify(
            &receiving,
            &originating,
            &stream_id,
            &key,
            &mut b_to_a.to_in,
            &mut actions,
        );
        assert!(actions.is_empty());
        b_to_a.pump();
        let expected_type = if expect_valid { "valid" } else { "invalid" };
        assert!(
            b_to_a.out_received.ends_with(&format!(
                "<db:verify from='a.example' to='b.example' id='{stream_id}' type='{expected_type}'/>"
            )),
            "{}",
            b_to_a.out_received
        );
        let valid = match b_to_a.take_out_actions().as_slice() {
            [
                OutAction::VerifyResult {
                    receiving: r,
                    originating: o,
                    stream_id: s,
                    valid,
                },
            ] if *r == receiving && *o == originating && *s == stream_id => *valid,
            other => panic!("{other:?}"),
        };
        assert_eq!(valid, Some(expect_valid));
        // b_to_a's own dialback is still waiting: verification did not
        // need an authenticated link.
        assert!(!b_to_a.out.is_ready());

        let mut actions = Vec::new();
        a_to_b.inc.dialback_verified(
            &a_to_b.in_env,
            &originating,
            &receiving,
            valid,
            &mut a_to_b.to_out,
            &mut actions,
        );
        a_to_b.in_actions.extend(actions);
        a_to_b.pump();
        let out_actions = a_to_b.take_out_actions();
        if expect_valid {
            assert!(matches!(out_actions.as_slice(), [OutAction::Ready]));
        } else {
            // §2.2.1: `invalid`, then the stream closes.
            assert!(
                a_to_b.out_received.contains(
                    "<db:result from='b.example' to='a.example' type='invalid'/>\
                     <stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                ),
                "{}",
                a_to_b.out_received
            );
            assert!(matches!(
                out_actions.as_slice(),
                [
                    OutAction::Failed {
                        condition: OutFailure::NotAuthorized,
                        ..
                    },
                    OutAction::Close
                ]
            ));
            assert_eq!(
                OutFailure::NotAuthorized.bounce_condition(),
                Condition::InternalServerError
            );
            assert!(a_to_b.inc.is_closed());
        }
    }
}

#[test]
fn sasl_external_path() {
    let mut link = a_to_b(true);
    link.start();
    assert!(
        link.in_received.contains(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>YS5leGFtcGxl</auth>"
        ),
        "{}",
        link.in_received
    );
    assert!(
        link.out_received
            .contains("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
    );
    // The restarted stream has nothing left to negotiate.
    assert!(
        link.out_received.ends_with("<stream:features/>"),
        "{}",
        link.out_received
    );
    assert!(matches!(
        link.take_out_actions().as_slice(),
        [OutAction::Ready]
    ));
    assert_eq!(link.out.method(), Some(AuthMethod::SaslExternal));
    assert!(matches!(
        link.take_in_actions().as_slice(),
        [InAction::Authenticated { peer, local, method: AuthMethod::SaslExternal }]
            if peer == "a.example" && local == "b.example"
    ));
    assert_eq!(link.inc.peer(), Some("a.example"));

    // SASL authenticates a.example for every local host.
    link.send_stanza(MESSAGE);
    link.send_stanza(
        "<presence xmlns='jabber:server' from='juliet@a.example' to='room@chat.b.example/j'/>",
    );
    assert_eq!(routed(&link.take_in_actions()).len(), 2);

    // No piggybacking with SASL: another link is needed.
    let mut actions = Vec::new();
    link.out.authenticate_also(
        &link.out_env,
        "chat.a.example",
        &mut link.to_in,
        &mut actions,
    );
    assert!(matches!(
        actions.as_slice(),
        [OutAction::NotAuthenticated { local, condition: OutFailure::SingleDomainLink, .. }]
            if local == "chat.a.example"
    ));

    // Stanzas from a domain the certificate does not cover are refused.
    link.send_stanza("<message xmlns='jabber:server' from='x@evil.example' to='romeo@b.example'/>");
    assert!(
        link.out_received.contains("<invalid-from "),
        "{}",
        link.out_received
    );
}

#[test]
fn sasl_not_offered_means_dialback() {
    // Our certificate looks fine to us, but the peer does not agree.
    let mut link = a_to_b(true);
    link.in_env.certified = vec![];
    link.start();
    // EXTERNAL was not offered, so it is not tried; dialback is.
    assert!(!link.in_received.contains("<auth "));
    let (originating, ..) = link.take_verify_request();
    assert_eq!(originating, "a.example");
}

#[test]
fn piggybacked_second_domain() {
    let mut link = a_to_b(false);
    link.start();
    // Asked before the link is ready: sent once it is.
    let mut actions = Vec::new();
    link.out.authenticate_also(
        &link.out_env,
        "chat.a.example",
        &mut link.to_in,
        &mut actions,
    );
    assert!(actions.is_empty());
    link.verify_with(&DialbackSecret::new(A_SECRET));
    assert!(matches!(
        link.take_out_actions().as_slice(),
        [OutAction::Ready]
    ));
    // The second key went out as soon as the link was ready.
    let (originating, receiving, stream_id, key) = link.take_verify_request();
    assert_eq!(
        (originating.as_str(), receiving.as_str()),
        ("chat.a.example", "b.example")
    );
    assert!(DialbackSecret::new(A_SECRET).verify(&receiving, &originating, &stream_id, &key));
    link.answer_verify(&originating, &receiving, Some(true));
    assert!(matches!(
        link.take_out_actions().as_slice(),
        [OutAction::Authenticated { local }] if local == "chat.a.example"
    ));
    assert_eq!(
        link.out.authenticated_locals().collect::<Vec<_>>(),
        ["chat.a.example"]
    );
    assert_eq!(link.inc.authenticated_pairs().len(), 2);
    link.take_in_actions();
    link.send_stanza(
        "<message xmlns='jabber:server' from='room@chat.a.example/nick' to='romeo@b.example'/>",
    );
    assert_eq!(routed(&link.take_in_actions()).len(), 1);

    // A third domain the peer cannot verify: a dialback error for it
    // alone, the link goes on.
    link.out.authenticate_also(
        &link.out_env,
        "pubsub.a.example",
        &mut link.to_in,
        &mut actions,
    );
    link.pump();
    let (originating, receiving, ..) = link.take_verify_request();
    link.answer_verify(&originating, &receiving, None);
    assert!(
        link.out_received.ends_with(
            "<db:result from='b.example' to='pubsub.a.example' type='error'><error type='cancel'>\
             <remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>could not reach the authoritative \
             server of 'pubsub.a.example'</text></error></db:result>"
        ),
        "{}",
        link.out_received
    );
    assert!(matches!(
        link.take_out_actions().as_slice(),
        [OutAction::NotAuthenticated { local, condition: OutFailure::DialbackError, .. }]
            if local == "pubsub.a.example"
    ));
    assert!(link.out.is_ready() && !link.inc.is_closed());
}

/// The outgoing side alone: a.example → b.example, fed the peer's XML.
struct Outgoing {
    out: S2sOut,
    env: OutTestEnv,
    framer: Framer,
}

const PEER_HEADER: &str = "<stream:stream xmlns='jabber:server' \
     xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' \
     id='p1' from='b.example' to='a.example' version='1.0'>";

const DIALBACK_FEATURES: &str = "<stream:features><dialback xmlns='urn:xmpp:features:dialback'>\
     <errors/></dialback></stream:features>";

impl Outgoing {
    fn new(require_encryption: bool) -> (Self, String) {
        let mut outgoing = Outgoing {
            out: S2sOut::new("a.example", "b.example", false, require_encryption),
            env: out_env(A_SECRET, false),
            framer: Framer::new(Limits::default()),
        };
        let mut bytes = Vec::new();
        outgoing.out.start(&mut bytes);
        (outgoing, String::from_utf8(bytes).expect("utf8"))
    }

    fn feed(&mut self, xml: &str) -> (String, Vec<OutAction>) {
        self.framer.push(xml.as_bytes());
        let mut bytes = Vec::new();
        let mut actions = Vec::new();
        while let Ok(Some(event)) = self.framer.next_event() {
            self.out
                .on_event(&self.env, event, &mut bytes, &mut actions);
        }
        (String::from_utf8(bytes).expect("utf8"), actions)
    }

    /// Header and dialback-only features: our key is out.
    fn awaiting_dialback() -> Self {
        let (mut outgoing, _) = Outgoing::new(false);
        outgoing.feed(PEER_HEADER);
        let (text, actions) = outgoing.feed(DIALBACK_FEATURES);
        let key = DialbackSecret::new(A_SECRET).key("b.example", "a.example", "p1");
        assert_eq!(
            text,
            format!("<db:result from='a.example' to='b.example'>{key}</db:result>")
        );
        assert!(actions.is_empty());
        outgoing
    }
}

fn failed(actions: &[OutAction]) -> Option<(OutFailure, &str)> {
    match actions {
        [.., OutAction::Failed { condition, text }, OutAction::Close] => {
            Some((*condition, text.as_str()))
        }
        _ => None,
    }
}

#[test]
fn writes_the_header() {
    let (_, header) = Outgoing::new(false);
    assert_eq!(
        header,
        "<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
         xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' \
         from='a.example' to='b.example' version='1.0'>"
    );
}

#[test]
fn dialback_answers() {
    let mut outgoing = Outgoing::awaiting_dialback();
    // Answers for other pairs, or from another domain, are not ours.
    for unsolicited in [
        "<db:result from='b.example' to='x.example' type='valid'/>",
        "<db:result from='x.example' to='a.example' type='valid'/>",
        "<db:result from='b.example' to='a.example'>key</db:result>",
    ] {
        let (text, actions) = outgoing.feed(unsolicited);
        assert!(text.is_empty() && actions.is_empty(), "{unsolicited}");
    }
    let (_, actions) = outgoing.feed("<db:result from='b.example' to='a.example' type='valid'/>");
    assert!(matches!(actions.as_slice(), [OutAction::Ready]));
    assert_eq!(outgoing.out.method(), Some(AuthMethod::Dialback));
    // Stanzas on an outgoing link are ignored (no XEP-0288).
    let (text, actions) = outgoing.feed("<message from='romeo@b.example' to='juliet@a.example'/>");
    assert!(text.is_empty() && actions.is_empty());

    let mut outgoing = Outgoing::awaiting_dialback();
    let (text, actions) = outgoing.feed(
        "<db:result from='b.example' to='a.example' type='error'><error type='cancel'>\
         <remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>",
    );
    assert_eq!(text, "</stream:stream>");
    assert_eq!(
        failed(&actions),
        Some((
            OutFailure::DialbackError,
            "dialback error remote-server-not-found"
        ))
    );
    assert_eq!(
        OutFailure::DialbackError.bounce_condition(),
        Condition::RemoteServerTimeout
    );
}

#[test]
fn encryption_required_but_not_offered() {
    let (mut outgoing, _) = Outgoing::new(true);
    outgoing.feed(PEER_HEADER);
    let (text, actions) = outgoing.feed(DIALBACK_FEATURES);
    assert!(
        text.starts_with(
            "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        ),
        "{text}"
    );
    assert!(text.ends_with("</stream:error></stream:stream>"));
    assert!(matches!(
        failed(&actions),
        Some((OutFailure::Encryption, _))
    ));

    // Against a real receiving server without a certificate.
    let mut link = a_to_b(false);
    link.out = S2sOut::new("a.example", "b.example", false, true);
    link.inc = S2sIn::new(false, false);
    link.start();
    assert!(matches!(
        failed(&link.take_out_actions()),
        Some((OutFailure::Encryption, _))
    ));
}

#[test]
fn peer_refuses_starttls() {
    let (mut outgoing, _) = Outgoing::new(false);
    outgoing.feed(PEER_HEADER);
    let (text, _) = outgoing.feed(
        "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>",
    );
    assert_eq!(text, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    let (_, actions) = outgoing.feed("<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert!(matches!(
        failed(&actions),
        Some((OutFailure::Encryption, _))
    ));
}

#[test]
fn no_authentication_method() {
    let (mut outgoing, _) = Outgoing::new(false);
    outgoing.feed(PEER_HEADER);
    let (_, actions) = outgoing.feed("<stream:features/>");
    assert!(matches!(
        failed(&actions),
        Some((OutFailure::NoAuthentication, _))
    ));
}

#[test]
fn bad_answers_from_the_peer() {
    let (mut outgoing, _) = Outgoing::new(false);
    let (text, actions) = outgoing.feed(&PEER_HEADER.replace("'jabber:server'", "'jabber:client'"));
    assert!(
        text.starts_with(
            "<stream:error><invalid-namespace xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        ),
        "{text}"
    );
    assert!(matches!(failed(&actions), Some((OutFailure::Aborted, _))));

    let mut outgoing = Outgoing::awaiting_dialback();
    let (text, actions) = outgoing.feed("<bogus xmlns='urn:x'/>");
    assert!(text.contains("<unsupported-stanza-type "), "{text}");
    assert!(matches!(failed(&actions), Some((OutFailure::Aborted, _))));

    let mut outgoing = Outgoing::awaiting_dialback();
    let (text, actions) = outgoing.feed(
        "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>no such host</text></stream:error>",
    );
    assert_eq!(text, "</stream:stream>");
    assert_eq!(
        failed(&actions),
        Some((
            OutFailure::Closed,
            "stream error host-unknown: no such host"
        ))
    );
}

#[test]
fn legacy_peer_gets_dialback_at_once() {
    let (mut outgoing, _) = Outgoing::new(false);
    let (text, _) = outgoing.feed(&PEER_HEADER.replace(" version='1.0'", ""));
    assert!(
        text.starts_with("<db:result from='a.example' to='b.example'>"),
        "{text}"
    );
    let (mut outgoing, _) = Outgoing::new(true);
    let (_, actions) = outgoing.feed(&PEER_HEADER.replace(" version='1.0'", ""));
    assert!(matches!(
        failed(&actions),
        Some((OutFailure::Encryption, _))
    ));
}

#[test]
fn sasl_failure_without_dialback() {
    let (mut outgoing, _) = Outgoing::new(false);
    outgoing.out = S2sOut::new("a.example", "b.example", true, false);
    outgoing.out.start(&mut Vec::new());
    outgoing.env = out_env(A_SECRET, true);
    outgoing.feed(PEER_HEADER);
    let (text, _) = outgoing.feed(
        "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
         <mechanism>EXTERNAL</mechanism></mechanisms></stream:features>",
    );
    assert!(text.starts_with("<auth "), "{text}");
    let (_, actions) = outgoing
        .feed("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>");
    assert!(matches!(
        failed(&actions),
        Some((OutFailure::NotAuthorized, _))
    ));

    // With dialback offered too, a SASL failure falls back to it.
    let (mut outgoing, _) = Outgoing::new(false);
    outgoing.out = S2sOut::new("a.example", "b.example", true, false);
    outgoing.out.start(&mut Vec::new());
    outgoing.env = out_env(A_SECRET, true);
    outgoing.feed(PEER_HEADER);
    let (text, _) = outgoing.feed(
        "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
         <mechanism>EXTERNAL</mechanism></mechanisms>\
         <dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>",
    );
    assert!(text.starts_with("<auth "), "{text}");
    let (text, actions) = outgoing
        .feed("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>");
    assert!(actions.is_empty());
    assert!(
        text.starts_with("<db:result from='a.example' to='b.example'>"),
        "{text}"
    );
}

#[test]
fn verify_requests_wait_for_tls_and_fail_with_the_link() {
    let (mut outgoing, _) = Outgoing::new(false);
    let mut bytes = Vec::new();
    let mut actions = Vec::new();
    outgoing.out.request_verify(
        "a.example",
        "b.example",
        "s9",
        "key9",
        &mut bytes,
        &mut actions,
    );
    assert!(bytes.is_empty() && actions.is_empty());
    outgoing.feed(PEER_HEADER);
    let (text, _) = outgoing.feed(
        "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\
         <dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>",
    );
    assert!(!text.contains("db:verify"), "{text}");
    let (_, actions) = outgoing.feed("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert!(matches!(actions.as_slice(), [OutAction::StartTls]));
    outgoing.framer.reset();
    outgoing.out.tls_established(&mut bytes);
    outgoing.feed(&PEER_HEADER.replace("p1", "p2"));
    let (text, _) = outgoing.feed(DIALBACK_FEATURES);
    assert!(
        text.ends_with("<db:verify from='a.example' to='b.example' id='s9'>key9</db:verify>"),
        "{text}"
    );
    // An answer for another id is not this request's.
    let (_, actions) =
        outgoing.feed("<db:verify from='b.example' to='a.example' id='s8' type='valid'/>");
    assert!(actions.is_empty());
    // The link ends before the answer: the request failed (XEP-0220 §2.1.2).
    let (_, actions) = outgoing.feed("</stream:stream>");
    assert!(matches!(
        actions.as_slice(),
        [
            OutAction::Failed { condition: OutFailure::Closed, .. },
            OutAction::VerifyResult { valid: None, stream_id, .. },
            OutAction::Close
        ] if stream_id == "s9"
    ));
    // A closed link answers at once.
    let mut actions = Vec::new();
    outgoing.out.request_verify(
        "a.example",
        "b.example",
        "s10",
        "k",
        &mut bytes,
        &mut actions,
    );
    assert!(matches!(
        actions.as_slice(),
        [OutAction::VerifyResult { valid: None, .. }]
    ));
}
