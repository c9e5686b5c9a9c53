use super::*;
use crate::sasl::SaslFailure;
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

fn policy(require_encryption: bool, allow_plaintext_auth: bool) -> Policy {
    Policy {
        starttls_available: true,
        require_encryption,
        allow_plaintext_auth,
        max_auth_failures: 3,
        registration: false,
    }
}

/// Drives the state machine with client XML and returns what it wrote
/// (as text) and the actions it asked for.
struct Harness {
    stream: C2sStream,
    framer: Framer,
}

impl Harness {
    fn new(policy: Policy) -> Self {
        Harness {
            stream: C2sStream::new(policy, false, None),
            framer: Framer::new(Limits::default()),
        }
    }

    fn feed(&mut self, xml: &str) -> (String, Vec<Action>) {
        self.framer.push(xml.as_bytes());
        let mut out = Vec::new();
        let mut actions = Vec::new();
        loop {
            match self.framer.next_event() {
                Ok(Some(FrameEvent::StreamOpen(h))) => {
                    self.stream.on_header(&h, &TestEnv, &mut out, &mut actions)
                }
                Ok(Some(FrameEvent::Element(el))) => {
                    self.stream.on_element(el, &TestEnv, &mut out, &mut actions)
                }
                Ok(Some(FrameEvent::StreamClose)) => {
                    self.stream.on_stream_close(&mut out, &mut actions)
                }
                Ok(None) => break,
                Err(e) => {
                    self.stream
                        .fail(StreamError::from(&e), &TestEnv, &mut out, &mut actions);
                    break;
                }
            }
        }
        for a in &actions {
            if matches!(a, Action::Restart) {
                self.framer.reset();
            }
        }
        (String::from_utf8(out).expect("utf8"), actions)
    }

    fn open(&mut self) -> (String, Vec<Action>) {
        self.feed("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>")
    }

    /// Authenticates by pretending a SASL step succeeded.
    fn authenticate(&mut self) {
        let (_, actions) = self.feed("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldABwYXNz</auth>");
        let job = match actions.into_iter().next() {
            Some(Action::Sasl(job)) => job,
            _ => panic!("expected a SASL job"),
        };
        let mut out = Vec::new();
        let mut actions = Vec::new();
        self.stream.sasl_result(
            job.session,
            Step::Success {
                username: "juliet".to_string(),
                additional_data: Vec::new(),
            },
            &TestEnv,
            &mut out,
            &mut actions,
        );
        let text = String::from_utf8(out).expect("utf8");
        assert!(
            text.contains("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'"),
            "{text}"
        );
        assert!(matches!(actions.as_slice(), [Action::Restart]));
        self.framer.reset();
    }

    fn bind(&mut self) -> Jid {
        let (text, _) = self.open();
        assert!(
            text.contains("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"),
            "{text}"
        );
        // RFC 6121 §2.6.1 and §3.4.1: roster versioning and pre-approval.
        assert!(
            text.contains("<ver xmlns='urn:xmpp:features:rosterver'/>"),
            "{text}"
        );
        assert!(
            text.contains("<sub xmlns='urn:xmpp:features:pre-approval'/>"),
            "{text}"
        );
        let (_, actions) = self.feed("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>balcony</resource></bind></iq>");
        let (account, resource) = match actions.into_iter().next() {
            Some(Action::Bind {
                account,
                resource,
                iq_id,
            }) => {
                assert_eq!(iq_id, "b1");
                (account, resource)
            }
            _ => panic!("expected a bind action"),
        };
        assert_eq!(account.as_str(), "juliet@example.com");
        let full = account
            .with_resource(resource.as_deref().unwrap_or("x"))
            .expect("jid");
        let mut out = Vec::new();
        self.stream.bind_result(Ok(full.clone()), "b1", &mut out);
        let text = String::from_utf8(out).expect("utf8");
        assert!(
            text.contains("<jid>juliet@example.com/balcony</jid>"),
            "{text}"
        );
        full
    }
}

#[test]
fn unknown_host_gets_header_then_host_unknown() {
    let mut h = Harness::new(policy(true, false));
    let (text, actions) = h.feed("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='elsewhere.org' version='1.0'>");
    assert!(
        text.starts_with("<?xml version='1.0'?><stream:stream"),
        "{text}"
    );
    assert!(
        text.contains("<host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"),
        "{text}"
    );
    assert!(text.ends_with("</stream:stream>"));
    assert!(matches!(actions.as_slice(), [Action::Close]));
}

#[test]
fn missing_to_and_old_version_are_refused() {
    let mut h = Harness::new(policy(true, false));
    let (text, _) = h.feed("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>");
    assert!(text.contains("host-unknown"), "{text}");
    let mut h = Harness::new(policy(true, false));
    let (text, _) = h.feed("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com'>");
    assert!(text.contains("unsupported-version"), "{text}");
    let mut h = Harness::new(policy(true, false));
    let (text, _) = h.feed("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>");
    assert!(text.contains("invalid-namespace"), "{text}");
}

#[test]
fn encryption_required_offers_only_starttls() {
    let mut h = Harness::new(policy(true, false));
    let (text, _) = h.open();
    assert!(text.contains("from='example.com'"), "{text}");
    assert!(
        text.contains("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"),
        "{text}"
    );
    assert!(!text.contains("mechanisms"), "{text}");
    let (text, actions) =
        h.feed("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>");
    assert!(text.contains("<encryption-required/>"), "{text}");
    assert!(actions.is_empty());
}

#[test]
fn starttls_then_plus_mechanisms() {
    let mut h = Harness::new(policy(true, false));
    h.open();
    let (text, actions) = h.feed("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert_eq!(text, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    assert!(matches!(actions.as_slice(), [Action::StartTls]));
    h.framer.reset();
    h.stream.tls_established(Some(ChannelBinding {
        kind: "tls-exporter",
        data: vec![7; 32],
    }));
    let (text, _) = h.open();
    for m in [
        "SCRAM-SHA-256-PLUS",
        "SCRAM-SHA-1-PLUS",
        "SCRAM-SHA-256",
        "SCRAM-SHA-1",
        "PLAIN",
    ] {
        assert!(
            text.contains(&format!("<mechanism>{m}</mechanism>")),
            "{m} missing: {text}"
        );
    }
    assert!(
        text.contains("<channel-binding type='tls-exporter'/>"),
        "{text}"
    );
    assert!(!text.contains("starttls"), "{text}");
}

#[test]
fn plaintext_plain_only_when_allowed() {
    let mut h = Harness::new(policy(false, false));
    let (text, _) = h.open();
    assert!(
        text.contains("<mechanism>SCRAM-SHA-1</mechanism>"),
        "{text}"
    );
    assert!(!text.contains("<mechanism>PLAIN</mechanism>"), "{text}");
    let (text, _) =
        h.feed("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>");
    assert!(text.contains("<invalid-mechanism/>"), "{text}");
    let mut h = Harness::new(policy(false, true));
    let (text, _) = h.open();
    assert!(text.contains("<mechanism>PLAIN</mechanism>"), "{text}");
}

#[test]
fn stanza_before_auth_is_not_authorized() {
    let mut h = Harness::new(policy(false, true));
    h.open();
    let (text, actions) = h.feed("<message to='romeo@example.com'><body>hi</body></message>");
    assert!(
        text.contains("<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"),
        "{text}"
    );
    assert!(matches!(actions.as_slice(), [Action::Close]));
}

#[test]
fn bad_base64_and_repeated_failures() {
    let mut h = Harness::new(policy(false, true));
    h.open();
    let (text, _) =
        h.feed("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>!!!</auth>");
    assert!(text.contains("<incorrect-encoding/>"), "{text}");
    for _ in 0..2 {
        let (_, actions) = h.feed(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>",
        );
        let Some(Action::Sasl(job)) = actions.into_iter().next() else {
            panic!("expected a job");
        };
        let mut out = Vec::new();
        let mut actions = Vec::new();
        h.stream.sasl_result(
            job.session,
            Step::Failure(SaslFailure::NotAuthorized),
            &TestEnv,
            &mut out,
            &mut actions,
        );
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.contains("<not-authorized/>"), "{text}");
    }
    assert!(h.stream.is_closed(), "third failure closes the stream");
}

#[test]
fn full_login_routes_stanzas_with_stamped_from() {
    let mut h = Harness::new(policy(false, true));
    h.open();
    h.authenticate();
    let full = h.bind();
    let (text, _) = h
        .feed("<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
    assert!(
        text.contains("type='result'") && text.contains("id='s1'"),
        "{text}"
    );
    let (text, actions) = h.feed(
        "<message from='mallory@example.com' to='Romeo@Example.com'><body>hi</body></message>",
    );
    assert!(text.is_empty(), "{text}");
    match actions.as_slice() {
        [Action::Route { stanza, to }] => {
            assert_eq!(stanza.attr("from"), Some(full.as_str()));
            assert_eq!(to.as_ref().map(Jid::as_str), Some("romeo@example.com"));
        }
        _ => panic!("expected one route action"),
    }
    let (text, actions) = h.feed("<iq type='get' id='x'/>");
    assert!(
        text.contains("<bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"),
        "{text}"
    );
    assert!(actions.is_empty());
    let (text, actions) = h.feed("<enable xmlns='urn:example:not-a-feature'/>");
    assert!(text.contains("unsupported-stanza-type"), "{text}");
    assert!(matches!(actions.as_slice(), [Action::Close]));
}

#[test]
fn client_close_is_answered() {
    let mut h = Harness::new(policy(false, true));
    h.open();
    let (text, actions) = h.feed("</stream:stream>");
    assert_eq!(text, "</stream:stream>");
    assert!(matches!(actions.as_slice(), [Action::Close]));
}

#[test]
fn registration_offered_only_when_allowed_and_safe() {
    let registering = |require_encryption, plaintext, registration| Policy {
        registration,
        ..policy(require_encryption, plaintext)
    };
    let feature = "<register xmlns='http://jabber.org/features/iq-register'/>";
    let (text, _) = Harness::new(registering(false, true, true)).open();
    assert!(text.contains(feature), "{text}");
    // Off by configuration, or the password would travel in the clear.
    let (text, _) = Harness::new(registering(false, true, false)).open();
    assert!(!text.contains(feature), "{text}");
    let (text, _) = Harness::new(registering(true, false, true)).open();
    assert!(!text.contains(feature), "{text}");

    let mut h = Harness::new(registering(false, true, false));
    h.open();
    let (text, actions) = h.feed("<iq type='get' id='r1'><query xmlns='jabber:iq:register'/></iq>");
    assert!(actions.is_empty());
    assert!(text.contains("<service-unavailable "), "{text}");
    assert!(text.contains("id='r1'"), "{text}");
}

#[test]
fn registration_goes_to_the_connection_once() {
    let mut h = Harness::new(Policy {
        registration: true,
        ..policy(false, true)
    });
    h.open();
    let (text, _) = h.feed("<iq type='set'><query xmlns='jabber:iq:register'/></iq>");
    assert!(text.contains("<bad-request "), "{text}");
    let set = "<iq type='set' id='r2'><query xmlns='jabber:iq:register'><username>bill</username><password>pw</password></query></iq>";
    let (_, actions) = h.feed(set);
    match actions.as_slice() {
        [Action::Register { iq, domain }] => {
            assert_eq!(domain, "example.com");
            assert_eq!(iq.attr("id"), Some("r2"));
        }
        _ => panic!("expected a registration action"),
    }
    let reply = Element::new("iq", NS_CLIENT)
        .with_attr("type", "result")
        .with_attr("id", "r2");
    let mut out = Vec::new();
    h.stream.register_result(Some(&reply), true, &mut out);
    assert_eq!(
        String::from_utf8(out).expect("utf8"),
        "<iq type='result' id='r2'/>"
    );
    let (text, actions) = h.feed(set);
    assert!(actions.is_empty());
    assert!(text.contains("<not-acceptable "), "{text}");
    // Logging in with the new account still works.
    h.authenticate();
}

/// The feature lists as the element serializer writes them: what
/// `write_features` writes directly must be exactly this.
fn reference_features(stream: &mut C2sStream, out: &mut Vec<u8>) {
    let mut features = Element::new("features", crate::xml::NS_STREAM);
    if stream.account.is_some() {
        features.push_child(Element::new("bind", NS_BIND));
        features.push_child(
            Element::new("session", NS_SESSION).with_child(Element::new("optional", NS_SESSION)),
        );
        features.push_child(Element::new("ver", NS_ROSTERVER));
        features.push_child(Element::new("sub", NS_PRE_APPROVAL));
        features.push_child(Element::new("sm", NS_SM));
        features.push_child(Element::new("csi", NS_CSI));
    } else {
        if !stream.secure && stream.policy.starttls_available {
            let mut starttls = Element::new("starttls", NS_TLS);
            if stream.policy.require_encryption {
                starttls.push_child(Element::new("required", NS_TLS));
            }
            features.push_child(starttls);
        }
        if stream.registration_offered() {
            features.push_child(Element::new("register", NS_REGISTER_FEATURE));
        }
        if stream.token_registration_offered() {
            features.push_child(Element::new("register", crate::invite::NS_IBR_TOKEN));
            features.push_child(Element::new("register", crate::invite::NS_INVITE_FEATURE));
        }
        stream.choose_mechanisms();
        if stream.sasl_offered() {
            let mut mechanisms = Element::new("mechanisms", NS_SASL);
            for m in &stream.offered {
                mechanisms.push_child(Element::new("mechanism", NS_SASL).with_text(m.name()));
            }
            features.push_child(mechanisms);
            features.push_child(stream.reference_sasl2_feature());
            if stream.channel_binding.is_some() {
                features.push_child(Element::new("sasl-channel-binding", NS_SASL_CB).with_child(
                    Element::new("channel-binding", NS_SASL_CB).with_attr("type", "tls-exporter"),
                ));
            }
        }
    }
    // Written under the stream's own prefix: a client parses
    // `<stream:features>` more reliably than a re-declared default ns.
    out.extend_from_slice(b"<stream:features>");
    for child in features.children() {
        child.write_to(out, NS_CLIENT);
    }
    out.extend_from_slice(b"</stream:features>");
}

#[test]
fn features_are_the_serialized_elements() {
    let cb = || ChannelBinding {
        kind: "tls-exporter",
        data: vec![1, 2, 3],
    };
    for bits in 0..64u32 {
        let bit = |i: u32| bits & (1 << i) != 0;
        let policy = Policy {
            starttls_available: bit(0),
            require_encryption: bit(1),
            allow_plaintext_auth: bit(2),
            max_auth_failures: 3,
            registration: bit(3),
        };
        for bound in [false, true] {
            let make = || {
                let mut s = C2sStream::new(policy.clone(), bit(4), bit(5).then(cb));
                if bound {
                    s.account = Some(Jid::parse("a@example.com").expect("jid"));
                }
                s
            };
            let (mut direct, mut reference) = (make(), make());
            let (mut got, mut want) = (Vec::new(), Vec::new());
            direct.write_features(&mut got);
            reference_features(&mut reference, &mut want);
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "bits {bits:06b}, bound {bound}"
            );
            assert_eq!(direct.offered, reference.offered);
        }
    }
}

#[test]
fn login_replies_are_the_serialized_elements() {
    for data in [&b""[..], b"v=abc", b"\x00\xff<&>"] {
        for name in ["challenge", "success"] {
            let mut el = Element::new(name, NS_SASL);
            if !data.is_empty() {
                el.push_text(sasl::base64::encode(data));
            }
            let mut got = Vec::new();
            write_sasl_element(&mut got, name, data);
            assert_eq!(got, el.to_bytes(NS_CLIENT), "{name}");
        }
    }
    for id in ["b1", "a'b\"c<&>", ""] {
        let full = Jid::parse("a@example.com/r&<>").expect("jid");
        let reply = Element::new("iq", NS_CLIENT)
            .with_attr("type", "result")
            .with_attr("id", id)
            .with_child(
                Element::new("bind", NS_BIND)
                    .with_child(Element::new("jid", NS_BIND).with_text(full.as_str())),
            );
        let mut got = Vec::new();
        write_bind_result(&mut got, id, &full);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&reply.to_bytes(NS_CLIENT))
        );
    }
}

const SM: &str = "urn:xmpp:sm:3";

#[test]
fn stream_management_elements_in_each_phase() {
    let mut h = Harness::new(policy(false, true));
    h.open();
    // Before authentication: refused, the login goes on.
    let (text, actions) = h.feed(&format!("<enable xmlns='{SM}'/>"));
    assert!(text.contains("<unexpected-request"), "{text}");
    assert!(actions.is_empty() && !h.stream.is_closed());
    let (text, _) = h.feed(&format!("<resume xmlns='{SM}' previd='x' h='0'/>"));
    assert!(text.contains("<unexpected-request"), "{text}");
    h.authenticate();
    let (features, _) = h.open();
    assert!(
        features.contains("<sm xmlns='urn:xmpp:sm:3'/>"),
        "{features}"
    );
    assert!(
        features.contains("<csi xmlns='urn:xmpp:csi:0'/>"),
        "{features}"
    );
    // After authentication, before bind: enable is refused, resume asked.
    let (text, _) = h.feed(&format!("<enable xmlns='{SM}'/>"));
    assert!(text.contains("<unexpected-request"), "{text}");
    let (_, actions) = h.feed(&format!("<resume xmlns='{SM}' previd='abc' h='7'/>"));
    match actions.as_slice() {
        [Action::SmResume { previd, h }] => assert_eq!((previd.as_str(), *h), ("abc", 7)),
        _ => panic!("expected a resume action"),
    }
    // Not found: the client may bind instead.
    h.stream.resume_result(None);
    let (_, actions) = h.feed("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>balcony</resource></bind></iq>");
    assert!(matches!(actions.as_slice(), [Action::Bind { .. }]));
    let full = Jid::parse("juliet@example.com/balcony").expect("jid");
    let mut out = Vec::new();
    h.stream.bind_result(Ok(full), "b1", &mut out);
    assert!(h.stream.bound_jid().is_some());
    assert_eq!(h.stream.handled(), None);
    let (_, actions) = h.feed(&format!("<r xmlns='{SM}'/>"));
    assert!(
        h.stream.is_closed(),
        "an <r/> before enable ends the stream"
    );
    assert!(actions.iter().any(|a| matches!(a, Action::Close)));
}

#[test]
fn enabled_streams_count_every_stanza_once() {
    let mut h = Harness::new(policy(false, true));
    h.open();
    h.authenticate();
    h.bind();
    let (_, actions) = h.feed(&format!("<enable xmlns='{SM}' resume='true' max='60'/>"));
    assert!(matches!(
        actions.as_slice(),
        [Action::SmEnable {
            resume: true,
            max: Some(60)
        }]
    ));
    assert_eq!(h.stream.handled(), Some(0));
    // Twice: refused, the first stays.
    let (text, actions) = h.feed(&format!("<enable xmlns='{SM}'/>"));
    assert!(
        text.contains("<unexpected-request") && actions.is_empty(),
        "{text}"
    );
    h.feed("<message to='romeo@example.com'><body>1</body></message>");
    h.feed("<presence/>");
    // Bounced (no id) still counts: the client need not resend it.
    h.feed("<iq type='get'/>");
    // Nonzas do not.
    h.feed(&format!("<a xmlns='{SM}' h='0'/>"));
    h.feed("<inactive xmlns='urn:xmpp:csi:0'/>");
    assert_eq!(h.stream.handled(), Some(3));
    let (_, actions) = h.feed(&format!("<r xmlns='{SM}'/>"));
    assert!(matches!(actions.as_slice(), [Action::SmRequest]));
    let (_, actions) = h.feed("<active xmlns='urn:xmpp:csi:0'/>");
    assert!(matches!(actions.as_slice(), [Action::Csi { active: true }]));
    let (_, actions) = h.feed(&format!("<a xmlns='{SM}' h='lots'/>"));
    assert!(h.stream.is_closed(), "an unreadable h ends the stream");
    assert!(actions.iter().any(|a| matches!(a, Action::Close)));
}

#[test]
fn a_resumed_stream_is_bound_with_the_sessions_count() {
    let mut h = Harness::new(policy(false, true));
    h.open();
    h.authenticate();
    h.open();
    h.feed(&format!("<resume xmlns='{SM}' previd='abc' h='0'/>"));
    let full = Jid::parse("juliet@example.com/balcony").expect("jid");
    h.stream.resume_result(Some((full.clone(), u32::MAX)));
    assert_eq!(h.stream.bound_jid(), Some(&full));
    h.feed("<presence/>");
    assert_eq!(h.stream.handled(), Some(0), "the count wraps");
}
