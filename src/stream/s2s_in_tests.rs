//! Tests of the incoming s2s stream: an `S2sIn` and an `S2sOut` driven
//! against each other through their bytes and the real framer (TLS is
//! simulated: both sides call `tls_established`), then the incoming side
//! alone with hostile input.

use std::cell::Cell;

use super::*;
use crate::stream::dialback::DialbackSecret;
use crate::stream::s2s_out::{OutAction, OutEnv, S2sOut};
use crate::xml::{Framer, Limits};

pub(in crate::stream) const A_SECRET: [u8; 32] = [1; 32];
pub(in crate::stream) const B_SECRET: [u8; 32] = [2; 32];

/// One server's view of its peers and policy, for its incoming streams.
pub(in crate::stream) struct InTestEnv {
    pub(in crate::stream) locals: Vec<&'static str>,
    pub(in crate::stream) secret: DialbackSecret,
    pub(in crate::stream) require_encryption: bool,
    pub(in crate::stream) require_certificate: bool,
    pub(in crate::stream) refused: Vec<&'static str>,
    /// Domains the (simulated) TLS client certificate is valid for.
    pub(in crate::stream) certified: Vec<&'static str>,
    pub(in crate::stream) ids: Cell<u32>,
}

impl InTestEnv {
    pub(in crate::stream) fn new(locals: &[&'static str], secret: [u8; 32]) -> Self {
        InTestEnv {
            locals: locals.to_vec(),
            secret: DialbackSecret::new(secret),
            require_encryption: false,
            require_certificate: false,
            refused: Vec::new(),
            certified: Vec::new(),
            ids: Cell::new(0),
        }
    }
}

impl InEnv for InTestEnv {
    fn is_local_host(&self, domain: &str) -> bool {
        self.locals.contains(&domain)
    }
    fn new_stream_id(&self) -> String {
        self.ids.set(self.ids.get() + 1);
        format!("in-{}", self.ids.get())
    }
    fn dialback_key(&self, receiving: &str, originating: &str, stream_id: &str) -> String {
        self.secret.key(receiving, originating, stream_id)
    }
    fn requires_encryption(&self, _peer: Option<&str>) -> bool {
        self.require_encryption
    }
    fn requires_valid_certificate(&self, _peer: &str) -> bool {
        self.require_certificate
    }
    fn is_refused(&self, peer: &str) -> bool {
        self.refused.contains(&peer)
    }
    fn certificate_valid_for(&self, peer: &str) -> bool {
        self.certified.contains(&peer)
    }
}

pub(in crate::stream) struct OutTestEnv {
    pub(in crate::stream) secret: DialbackSecret,
    pub(in crate::stream) sasl: bool,
}

impl OutEnv for OutTestEnv {
    fn dialback_key(&self, receiving: &str, originating: &str, stream_id: &str) -> String {
        self.secret.key(receiving, originating, stream_id)
    }
    fn may_use_sasl_external(&self) -> bool {
        self.sasl
    }
}

pub(in crate::stream) fn out_env(secret: [u8; 32], sasl: bool) -> OutTestEnv {
    OutTestEnv {
        secret: DialbackSecret::new(secret),
        sasl,
    }
}

/// A connection from an `S2sOut` (the initiating server) to an `S2sIn`
/// (the receiving server), pumped until neither side has bytes to read.
pub(in crate::stream) struct Link {
    pub(in crate::stream) out: S2sOut,
    pub(in crate::stream) inc: S2sIn,
    pub(in crate::stream) out_env: OutTestEnv,
    pub(in crate::stream) in_env: InTestEnv,
    pub(in crate::stream) out_framer: Framer,
    pub(in crate::stream) in_framer: Framer,
    pub(in crate::stream) to_in: Vec<u8>,
    pub(in crate::stream) to_out: Vec<u8>,
    /// Everything each side received, as text.
    pub(in crate::stream) in_received: String,
    pub(in crate::stream) out_received: String,
    pub(in crate::stream) out_actions: Vec<OutAction>,
    pub(in crate::stream) in_actions: Vec<InAction>,
}

impl Link {
    pub(in crate::stream) fn new(
        from: &str,
        to: &str,
        out_env: OutTestEnv,
        in_env: InTestEnv,
    ) -> Self {
        Link {
            out: S2sOut::new(from, to, false, false),
            inc: S2sIn::new(false, true),
            out_env,
            in_env,
            out_framer: Framer::new(Limits::default()),
            in_framer: Framer::new(Limits::default()),
            to_in: Vec::new(),
            to_out: Vec::new(),
            in_received: String::new(),
            out_received: String::new(),
            out_actions: Vec::new(),
            in_actions: Vec::new(),
        }
    }

    pub(in crate::stream) fn start(&mut self) {
        self.out.start(&mut self.to_in);
        self.pump();
    }

    pub(in crate::stream) fn pump(&mut self) {
        loop {
            let progressed = !self.to_in.is_empty() || !self.to_out.is_empty();
            self.deliver_to_in();
            self.deliver_to_out();
            if !progressed {
                break;
            }
        }
    }

    pub(in crate::stream) fn deliver_to_in(&mut self) {
        let bytes = std::mem::take(&mut self.to_in);
        if bytes.is_empty() {
            return;
        }
        self.in_received.push_str(&String::from_utf8_lossy(&bytes));
        self.in_framer.push(&bytes);
        loop {
            let mut actions = Vec::new();
            match self.in_framer.next_event() {
                Ok(Some(event)) => {
                    self.inc
                        .on_event(&self.in_env, event, &mut self.to_out, &mut actions)
                }
                Ok(None) => break,
                Err(e) => {
                    let error = StreamError::from(&e);
                    self.inc
                        .fail(&self.in_env, error, &mut self.to_out, &mut actions);
                }
            }
            for action in actions {
                match action {
                    InAction::StartTls => {
                        self.inc.tls_established();
                        self.in_framer.reset();
                    }
                    InAction::Restart => self.in_framer.reset(),
                    other => self.in_actions.push(other),
                }
            }
            if self.inc.is_closed() {
                break;
            }
        }
    }

    pub(in crate::stream) fn deliver_to_out(&mut self) {
        let bytes = std::mem::take(&mut self.to_out);
        if bytes.is_empty() {
            return;
        }
        self.out_received.push_str(&String::from_utf8_lossy(&bytes));
        self.out_framer.push(&bytes);
        loop {
            let mut actions = Vec::new();
            match self.out_framer.next_event() {
                Ok(Some(event)) => {
                    self.out
                        .on_event(&self.out_env, event, &mut self.to_in, &mut actions)
                }
                Ok(None) => break,
                Err(e) => {
                    let error = StreamError::from(&e);
                    self.out.fail(error, &mut self.to_in, &mut actions);
                }
            }
            for action in actions {
                match action {
                    OutAction::StartTls => {
                        self.out_framer.reset();
                        self.out.tls_established(&mut self.to_in);
                    }
                    OutAction::Restart => self.out_framer.reset(),
                    other => self.out_actions.push(other),
                }
            }
            if self.out.is_closed() {
                break;
            }
        }
    }

    /// What the connection task does with a stanza for the link: frame it
    /// for `jabber:server`.
    pub(in crate::stream) fn send_stanza(&mut self, xml: &str) {
        let el = Element::parse(xml).expect("stanza");
        el.write_to(&mut self.to_in, NS_SERVER);
        self.pump();
    }

    pub(in crate::stream) fn take_in_actions(&mut self) -> Vec<InAction> {
        std::mem::take(&mut self.in_actions)
    }

    pub(in crate::stream) fn take_out_actions(&mut self) -> Vec<OutAction> {
        std::mem::take(&mut self.out_actions)
    }

    /// Removes the one pending `VerifyDialback` from the actions.
    pub(in crate::stream) fn take_verify_request(&mut self) -> (String, String, String, String) {
        let requests: Vec<usize> = (0..self.in_actions.len())
            .filter(|&i| matches!(self.in_actions[i], InAction::VerifyDialback { .. }))
            .collect();
        assert_eq!(requests.len(), 1, "{:?}", self.in_actions);
        match self.in_actions.remove(requests[0]) {
            InAction::VerifyDialback {
                originating,
                receiving,
                stream_id,
                key,
            } => (originating, receiving, stream_id, key),
            other => panic!("{other:?}"),
        }
    }

    /// Answers the pending request as the originating server's
    /// authoritative server would, knowing `secret`.
    pub(in crate::stream) fn verify_with(&mut self, secret: &DialbackSecret) {
        let (originating, receiving, stream_id, key) = self.take_verify_request();
        let valid = secret.verify(&receiving, &originating, &stream_id, &key);
        self.answer_verify(&originating, &receiving, Some(valid));
    }

    pub(in crate::stream) fn answer_verify(
        &mut self,
        originating: &str,
        receiving: &str,
        valid: Option<bool>,
    ) {
        let mut actions = Vec::new();
        self.inc.dialback_verified(
            &self.in_env,
            originating,
            receiving,
            valid,
            &mut self.to_out,
            &mut actions,
        );
        self.in_actions.extend(actions);
        self.pump();
    }
}

/// a.example connects to b.example.
pub(in crate::stream) fn a_to_b(sasl: bool) -> Link {
    let mut in_env = InTestEnv::new(&["b.example", "chat.b.example"], B_SECRET);
    if sasl {
        in_env.certified = vec!["a.example"];
    }
    Link::new("a.example", "b.example", out_env(A_SECRET, sasl), in_env)
}

pub(in crate::stream) fn routed(actions: &[InAction]) -> Vec<(&Element, &Jid, &Jid)> {
    actions
        .iter()
        .filter_map(|a| match a {
            InAction::Route { stanza, from, to } => Some((stanza, from, to)),
            _ => None,
        })
        .collect()
}

pub(in crate::stream) const MESSAGE: &str = "<message xmlns='jabber:server' from='Juliet@a.example/balcony' \
     to='romeo@b.example' type='chat'><body>hi</body>\
     <x xmlns='urn:example'><y/></x></message>";

#[test]
fn dialback_happy_path() {
    let mut link = a_to_b(false);
    link.start();
    // STARTTLS was offered and taken on both sides.
    assert!(link.inc.is_secure() && link.out.is_secure());
    assert!(
        link.out_received
            .contains("<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>"),
        "{}",
        link.out_received
    );
    assert!(!link.out_received.contains("EXTERNAL"));
    let a = DialbackSecret::new(A_SECRET);
    link.verify_with(&a);
    assert!(matches!(
        link.take_out_actions().as_slice(),
        [OutAction::Ready]
    ));
    assert!(link.out.is_ready());
    assert!(matches!(
        link.take_in_actions().as_slice(),
        [InAction::Authenticated { peer, local, method: AuthMethod::Dialback }]
            if peer == "a.example" && local == "b.example"
    ));
    assert!(
        link.out_received
            .ends_with("<db:result from='b.example' to='a.example' type='valid'/>"),
        "{}",
        link.out_received
    );
    assert_eq!(
        link.inc.authenticated_pairs(),
        &[("a.example".to_string(), "b.example".to_string())]
    );

    link.send_stanza(MESSAGE);
    let actions = link.take_in_actions();
    let routes = routed(&actions);
    let [(stanza, from, to)] = routes.as_slice() else {
        panic!("{actions:?}");
    };
    assert_eq!(from.as_str(), "juliet@a.example/balcony");
    assert_eq!(to.as_str(), "romeo@b.example");
    assert_eq!(stanza.ns, NS_CLIENT);
    assert_eq!(stanza.attr("from"), Some("juliet@a.example/balcony"));
    assert!(stanza.get_child("body", NS_CLIENT).is_some());
    let x = stanza.get_child("x", "urn:example").expect("payload kept");
    assert!(x.get_child("y", "urn:example").is_some());

    // Dialback authenticates the exact pair: not a.example → chat.b.example.
    link.send_stanza(
        "<message xmlns='jabber:server' from='juliet@a.example' to='room@chat.b.example'/>",
    );
    assert!(link.inc.is_closed());
    assert!(
        link.out_received
            .contains("<invalid-from xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"),
        "{}",
        link.out_received
    );
}

/// The incoming side alone, fed raw XML.
struct Incoming {
    inc: S2sIn,
    env: InTestEnv,
    framer: Framer,
}

const HEADER: &str = "<stream:stream xmlns='jabber:server' \
     xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' \
     from='a.example' to='b.example' version='1.0'>";

const OUR_HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:server' \
     xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' \
     id='in-1' from='b.example' to='a.example' version='1.0'>";

fn stream_error(condition: &str) -> String {
    format!("<stream:error><{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>")
}

impl Incoming {
    fn new(env: InTestEnv) -> Self {
        Incoming {
            inc: S2sIn::new(false, true),
            env,
            framer: Framer::new(Limits::default()),
        }
    }

    fn b() -> Self {
        Incoming::new(InTestEnv::new(&["b.example"], B_SECRET))
    }

    fn feed(&mut self, xml: &str) -> (String, Vec<InAction>) {
        self.framer.push(xml.as_bytes());
        let mut out = Vec::new();
        let mut actions = Vec::new();
        while let Ok(Some(event)) = self.framer.next_event() {
            self.inc.on_event(&self.env, event, &mut out, &mut actions);
            if actions.iter().any(|a| matches!(a, InAction::Restart)) {
                self.framer.reset();
            }
        }
        (String::from_utf8(out).expect("utf8"), actions)
    }

    /// Opens the stream and authenticates a.example → b.example.
    fn authenticated() -> Self {
        let mut incoming = Incoming::b();
        incoming.feed(HEADER);
        let (_, actions) =
            incoming.feed("<db:result from='a.example' to='b.example'>k</db:result>");
        assert!(matches!(
            actions.as_slice(),
            [InAction::VerifyDialback { .. }]
        ));
        let mut out = Vec::new();
        let mut actions = Vec::new();
        incoming.inc.dialback_verified(
            &incoming.env,
            "a.example",
            "b.example",
            Some(true),
            &mut out,
            &mut actions,
        );
        assert!(matches!(
            actions.as_slice(),
            [InAction::Authenticated { .. }]
        ));
        incoming
    }
}

/// The stream is closed with `condition` and `text`, after our header.
fn assert_closed_with(
    incoming: &Incoming,
    (text, actions): &(String, Vec<InAction>),
    condition: &str,
) {
    assert!(text.contains(&stream_error(condition)), "{text}");
    assert!(text.ends_with("</stream:error></stream:stream>"), "{text}");
    assert!(
        matches!(actions.last(), Some(InAction::Close)),
        "{actions:?}"
    );
    assert!(incoming.inc.is_closed());
}

#[test]
fn answers_the_header_with_features() {
    let mut incoming = Incoming::b();
    let (text, actions) = incoming.feed(HEADER);
    assert!(actions.is_empty());
    assert_eq!(
        text,
        format!(
            "{OUR_HEADER}<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\
             <dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>"
        )
    );
    let (text, actions) = incoming.feed("</stream:stream>");
    assert_eq!(text, "</stream:stream>");
    assert!(matches!(actions.as_slice(), [InAction::Close]));
}

#[test]
fn wrong_namespace() {
    let mut incoming = Incoming::b();
    let result = incoming.feed(&HEADER.replace("'jabber:server'", "'jabber:client'"));
    assert_eq!(
        result.0,
        format!(
            "{OUR_HEADER}{}<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>the default \
             namespace of a server stream is jabber:server</text></stream:error></stream:stream>",
            stream_error("invalid-namespace")
        )
        .replace(" from='b.example' to='a.example'", "")
    );
    assert_closed_with(&incoming, &result, "invalid-namespace");
}

#[test]
fn unknown_to_host() {
    let mut incoming = Incoming::b();
    let result = incoming.feed(&HEADER.replace("to='b.example'", "to='c.example'"));
    assert_closed_with(&incoming, &result, "host-unknown");
    assert!(result.0.contains("does not serve 'c.example'"));
}

#[test]
fn refused_peer() {
    let mut env = InTestEnv::new(&["b.example"], B_SECRET);
    env.refused = vec!["a.example"];
    let mut incoming = Incoming::new(env);
    let result = incoming.feed(HEADER);
    assert_closed_with(&incoming, &result, "policy-violation");
    assert!(result.0.contains("does not federate with 'a.example'"));

    // A refused sender domain multiplexed on another peer's stream gets a
    // dialback error, not a stream error.
    let mut env = InTestEnv::new(&["b.example"], B_SECRET);
    env.refused = vec!["evil.example"];
    let mut incoming = Incoming::new(env);
    incoming.feed(HEADER);
    let (text, actions) =
        incoming.feed("<db:result from='evil.example' to='b.example'>k</db:result>");
    assert!(actions.is_empty());
    assert!(
        text.starts_with(
            "<db:result from='b.example' to='evil.example' type='error'><error type='auth'>\
             <forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
        ),
        "{text}"
    );
    assert!(!incoming.inc.is_closed());
}

#[test]
fn encryption_required_but_not_offered() {
    let mut env = InTestEnv::new(&["b.example"], B_SECRET);
    env.require_encryption = true;
    let mut incoming = Incoming::new(env);
    incoming.inc = S2sIn::new(false, false);
    let result = incoming.feed(HEADER);
    assert_closed_with(&incoming, &result, "policy-violation");

    // Offered and required, but skipped.
    let mut env = InTestEnv::new(&["b.example"], B_SECRET);
    env.require_encryption = true;
    let mut incoming = Incoming::new(env);
    let (text, _) = incoming.feed(HEADER);
    assert!(
        text.contains("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>")
    );
    assert!(!text.contains("urn:xmpp:features:dialback"), "{text}");
    let result = incoming.feed("<db:result from='a.example' to='b.example'>k</db:result>");
    assert_closed_with(&incoming, &result, "policy-violation");
}

#[test]
fn no_version_means_dialback_only() {
    let legacy = HEADER.replace(" version='1.0'", "");
    let mut incoming = Incoming::b();
    let (text, _) = incoming.feed(&legacy);
    assert_eq!(text, OUR_HEADER.replace(" version='1.0'>", ">"));
    let (_, actions) = incoming.feed("<db:result from='a.example' to='b.example'>k</db:result>");
    assert!(
        matches!(actions.as_slice(), [InAction::VerifyDialback { stream_id, .. }] if stream_id == "in-1")
    );
    // No features, so no STARTTLS either.
    let (text, _) = incoming.feed("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert!(text.starts_with("<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"));

    let mut env = InTestEnv::new(&["b.example"], B_SECRET);
    env.require_encryption = true;
    let mut incoming = Incoming::new(env);
    let result = incoming.feed(&legacy);
    assert_closed_with(&incoming, &result, "policy-violation");
}

#[test]
fn stanza_before_authentication() {
    let mut incoming = Incoming::b();
    incoming.feed(HEADER);
    let result = incoming.feed("<message from='juliet@a.example' to='romeo@b.example'/>");
    assert_closed_with(&incoming, &result, "not-authorized");
}

#[test]
fn stanza_addressing() {
    let cases = [
        (
            "<message from='x@evil.example' to='romeo@b.example'/>",
            "invalid-from",
        ),
        (
            "<message from='juliet@a.example' to='romeo@c.example'/>",
            "host-unknown",
        ),
        ("<message to='romeo@b.example'/>", "improper-addressing"),
        (
            "<iq from='juliet@a.example' to='' type='get' id='1'/>",
            "improper-addressing",
        ),
        (
            "<message from='juliet@a.example' to='@b.example'/>",
            "improper-addressing",
        ),
        (
            "<message xmlns='jabber:client' from='juliet@a.example' to='romeo@b.example'/>",
            "invalid-namespace",
        ),
        (
            "<foo from='juliet@a.example' to='romeo@b.example'/>",
            "unsupported-stanza-type",
        ),
        (
            "<db:unknown from='a.example' to='b.example'/>",
            "bad-format",
        ),
        ("<db:result to='b.example'>k</db:result>", "bad-format"),
    ];
    for (xml, condition) in cases {
        let mut incoming = Incoming::authenticated();
        let result = incoming.feed(xml);
        assert_closed_with(&incoming, &result, condition);
    }
    // A normalized copy is routed, `jabber:client` throughout.
    let mut incoming = Incoming::authenticated();
    let (_, actions) = incoming.feed(
        "<iq from='Juliet@A.example/x' to='b.example' type='get' id='1'><query xmlns='urn:q'/></iq>",
    );
    let routes = routed(&actions);
    let [(stanza, from, to)] = routes.as_slice() else {
        panic!("{actions:?}");
    };
    assert_eq!(
        (from.as_str(), to.as_str()),
        ("juliet@a.example/x", "b.example")
    );
    assert_eq!(
        stanza.to_string(),
        "<iq xmlns='jabber:client' from='juliet@a.example/x' to='b.example' type='get' id='1'>\
         <query xmlns='urn:q'/></iq>"
    );
}

#[test]
fn db_result_for_a_host_not_served_here() {
    let mut incoming = Incoming::b();
    incoming.feed(HEADER);
    let (text, actions) = incoming.feed("<db:result from='a.example' to='c.example'>k</db:result>");
    assert!(actions.is_empty());
    assert_eq!(
        text,
        "<db:result from='c.example' to='a.example' type='error'><error type='cancel'>\
         <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>"
    );
    assert!(!incoming.inc.is_closed());
}

#[test]
fn db_result_key_check_failing() {
    // First pair: `invalid`, then the stream closes (XEP-0220 §2.2.1).
    let mut incoming = Incoming::b();
    incoming.feed(HEADER);
    incoming.feed("<db:result from='a.example' to='b.example'>bad</db:result>");
    let mut out = Vec::new();
    let mut actions = Vec::new();
    let env = &incoming.env;
    incoming.inc.dialback_verified(
        env,
        "a.example",
        "b.example",
        Some(false),
        &mut out,
        &mut actions,
    );
    let text = String::from_utf8(out).expect("utf8");
    assert!(
        text.starts_with(&format!(
            "<db:result from='b.example' to='a.example' type='invalid'/>{}",
            stream_error("not-authorized")
        )),
        "{text}"
    );
    assert!(matches!(actions.as_slice(), [InAction::Close]));

    // With a pair already authenticated: `forbidden` for this one only.
    let mut incoming = Incoming::authenticated();
    incoming.feed("<db:result from='chat.a.example' to='b.example'>bad</db:result>");
    let mut out = Vec::new();
    let mut actions = Vec::new();
    let env = &incoming.env;
    incoming.inc.dialback_verified(
        env,
        "chat.a.example",
        "b.example",
        Some(false),
        &mut out,
        &mut actions,
    );
    let text = String::from_utf8(out).expect("utf8");
    assert!(
        text.contains("<forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"),
        "{text}"
    );
    assert!(actions.is_empty() && !incoming.inc.is_closed());
    // An answer nobody asked for is dropped.
    let mut out = Vec::new();
    incoming.inc.dialback_verified(
        env,
        "x.example",
        "b.example",
        Some(true),
        &mut out,
        &mut actions,
    );
    assert!(out.is_empty() && actions.is_empty());
}

#[test]
fn dialback_requests_are_bounded_and_deduplicated() {
    let mut incoming = Incoming::b();
    incoming.feed(HEADER);
    let (_, actions) = incoming.feed("<db:result from='a.example' to='b.example'>k</db:result>");
    assert_eq!(actions.len(), 1);
    let (text, actions) = incoming.feed("<db:result from='a.example' to='b.example'>k</db:result>");
    assert!(text.is_empty() && actions.is_empty());
    for i in 1..MAX_PENDING_DIALBACK {
        let (_, actions) = incoming.feed(&format!(
            "<db:result from='s{i}.a.example' to='b.example'>k</db:result>"
        ));
        assert_eq!(actions.len(), 1);
    }
    let (text, actions) =
        incoming.feed("<db:result from='one-too-many.example' to='b.example'>k</db:result>");
    assert!(actions.is_empty());
    assert!(text.contains("<resource-constraint "), "{text}");
}

#[test]
fn certificate_required_for_dialback() {
    let mut env = InTestEnv::new(&["b.example"], B_SECRET);
    env.require_certificate = true;
    let mut incoming = Incoming::new(env);
    let (text, _) = incoming.feed(HEADER);
    assert!(!text.contains("urn:xmpp:features:dialback"), "{text}");
    let (text, actions) = incoming.feed("<db:result from='a.example' to='b.example'>k</db:result>");
    assert!(actions.is_empty());
    assert!(
        text.contains("type='error'><error type='auth'><not-authorized "),
        "{text}"
    );
}

#[test]
fn verify_requests_are_answered_unauthenticated() {
    let mut incoming = Incoming::b();
    incoming.feed(HEADER);
    let key = DialbackSecret::new(B_SECRET).key("a.example", "b.example", "s1");
    let (text, _) = incoming.feed(&format!(
        "<db:verify from='a.example' to='b.example' id='s1'> {key} </db:verify>"
    ));
    assert_eq!(
        text,
        "<db:verify from='b.example' to='a.example' id='s1' type='valid'/>"
    );
    let (text, _) = incoming.feed(&format!(
        "<db:verify from='a.example' to='b.example' id='s2'>{key}</db:verify>"
    ));
    assert_eq!(
        text,
        "<db:verify from='b.example' to='a.example' id='s2' type='invalid'/>"
    );
    let (text, _) = incoming.feed(&format!(
        "<db:verify from='a.example' to='c.example' id='s1'>{key}</db:verify>"
    ));
    assert_eq!(
        text,
        "<db:verify from='c.example' to='a.example' id='s1' type='error'><error type='cancel'>\
         <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:verify>"
    );
    // Answers are not taken on an incoming stream (unsolicited dialback).
    let (text, actions) =
        incoming.feed("<db:result from='a.example' to='b.example' type='valid'/>");
    assert!(text.is_empty() && actions.is_empty());
    let result = incoming.feed("<message from='juliet@a.example' to='romeo@b.example'/>");
    assert_closed_with(&incoming, &result, "not-authorized");
}

#[test]
fn sasl_external_checks() {
    let mut env = InTestEnv::new(&["b.example"], B_SECRET);
    env.certified = vec!["a.example"];
    let mut incoming = Incoming::new(env);
    incoming.inc = S2sIn::new(true, false);
    let (text, _) = incoming.feed(HEADER);
    assert!(text.contains("<mechanism>EXTERNAL</mechanism>"), "{text}");
    let auth = |payload: &str| {
        format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>{payload}</auth>"
        )
    };
    let failure = |condition: &str| {
        format!("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><{condition}/></failure>")
    };
    // base64("b.example"): not the header's domain.
    assert_eq!(
        incoming.feed(&auth("Yi5leGFtcGxl")).0,
        failure("invalid-authzid")
    );
    assert_eq!(incoming.feed(&auth("!!")).0, failure("incorrect-encoding"));
    // The third failure closes the stream.
    let result = incoming
        .feed("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AA==</auth>");
    assert!(
        result.0.starts_with(&failure("invalid-mechanism")),
        "{}",
        result.0
    );
    assert_closed_with(&incoming, &result, "policy-violation");

    // `=` stands for the header's domain; base64 of it is the same.
    for payload in ["=", "YS5leGFtcGxl"] {
        let mut env = InTestEnv::new(&["b.example"], B_SECRET);
        env.certified = vec!["a.example"];
        let mut incoming = Incoming::new(env);
        incoming.inc = S2sIn::new(true, false);
        incoming.feed(HEADER);
        let (text, actions) = incoming.feed(&auth(payload));
        assert_eq!(text, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
        assert!(matches!(
            actions.as_slice(),
            [
                InAction::Restart,
                InAction::Authenticated {
                    method: AuthMethod::SaslExternal,
                    ..
                }
            ]
        ));
        let (text, _) = incoming.feed(HEADER);
        assert!(text.ends_with("<stream:features/>"), "{text}");
        let (_, actions) = incoming.feed("<message from='juliet@a.example' to='romeo@b.example'/>");
        assert_eq!(routed(&actions).len(), 1);
    }

    // The restarted stream must come from the authenticated domain.
    let mut env = InTestEnv::new(&["b.example"], B_SECRET);
    env.certified = vec!["a.example"];
    let mut incoming = Incoming::new(env);
    incoming.inc = S2sIn::new(true, false);
    incoming.feed(HEADER);
    incoming.feed(&auth("="));
    let result = incoming.feed(&HEADER.replace("from='a.example'", "from='c.example'"));
    assert_closed_with(&incoming, &result, "invalid-from");
}

#[test]
fn starttls_only_once() {
    let mut incoming = Incoming::b();
    incoming.feed(HEADER);
    let (text, actions) = incoming.feed("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert_eq!(text, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert!(matches!(actions.as_slice(), [InAction::StartTls]));
    incoming.inc.tls_established();
    incoming.framer.reset();
    let (text, _) = incoming.feed(HEADER);
    assert!(!text.contains("starttls"), "{text}");
    let (text, actions) = incoming.feed("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert_eq!(
        text,
        "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>"
    );
    assert!(matches!(actions.as_slice(), [InAction::Close]));

    let mut incoming = Incoming::authenticated();
    let result = incoming.feed("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert_closed_with(&incoming, &result, "policy-violation");
}
