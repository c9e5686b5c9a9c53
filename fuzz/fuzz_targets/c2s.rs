//! The c2s stream state machine driven like a connection drives it: client
//! bytes through the framer, and each returned action answered the way the
//! edge would (a TLS handshake, a SASL step's result, a bind, an in-band
//! registration), the answers chosen by the input.
//!
//! Input: a policy byte, a count `k` and `k` decision bytes (answers to the
//! actions, in order; 0 once they run out, the edge's usual answer), then
//! the client's bytes, cut at each 0 byte into reads. A restart (after
//! STARTTLS or SASL) drops what is left of the read, as the edge does.
//!
//! Properties: it never panics; a closed stream has said so with
//! `Action::Close`, stays closed and writes nothing more; nothing is
//! routed before a bind result bound a resource, and then only with that
//! JID as `from`; `bound_jid` is only ever what a bind (or resume) result
//! gave, for the account SASL authenticated; registration happens only
//! before authentication; and every byte written is XML a client can
//! parse.
//!
//! Stream management (XEP-0198) and client state indication (XEP-0352):
//! `SmEnable` only once bound, at most once per stream, turning `handled()`
//! from `None` to `Some(0)`; `SmResume` only when authenticated and not
//! bound (answered as resumed, binding the stream to a full JID of the
//! account with the session's `h`, or not); `SmAck` and `SmRequest` only
//! with stream management on; `Csi` only when bound; and `handled()` is
//! exactly the count of `jabber:client` message, presence and iq elements
//! received while bound since it was enabled (or since the resumed count),
//! modulo 2^32.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use perch::jid::Jid;
use perch::sasl::{
    ChannelBinding, CredentialLookup, Credentials, Mechanism, SaslFailure, SaslSession, ScramHash,
    ScramKeys, Step,
};
use perch::stanza::{Condition, StanzaError};
use perch::stream::sasl2::{FastVerified, Sasl2Action};
use perch::stream::sm::{self, NS_SM, TooHigh};
use perch::stream::{Action, C2sStream, Env, Policy, SaslJob, StreamCondition, StreamError};
use perch::xml::{Element, FrameEvent, Framer, Limits, NS_CLIENT, StreamHeader};

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

struct Hosts;

impl Env for Hosts {
    fn is_local_host(&self, domain: &str) -> bool {
        domain == "localhost" || domain == "example.com"
    }
    fn new_stream_id(&self) -> String {
        "s1".to_string()
    }
}

/// One account, juliet with password "password", as in the scansion
/// scripts the seeds come from.
struct OneUser;

/// Derived once: key derivation is slow on purpose.
fn credentials() -> &'static Credentials {
    static CREDS: OnceLock<Credentials> = OnceLock::new();
    CREDS.get_or_init(|| Credentials::derive("password", 4096).expect("derive"))
}

impl CredentialLookup for OneUser {
    fn scram_keys(&self, username: &str, hash: ScramHash) -> Option<ScramKeys> {
        (username == "juliet")
            .then(|| credentials().keys(hash).cloned())
            .flatten()
    }

    fn check_plain(&self, username: &str, password: &str) -> bool {
        username == "juliet" && credentials().verify_password(password)
    }

    fn domain(&self) -> Option<&str> {
        Some("localhost")
    }
}

const FAILURES: [SaslFailure; 11] = [
    SaslFailure::NotAuthorized,
    SaslFailure::MalformedRequest,
    SaslFailure::InvalidAuthzid,
    SaslFailure::InvalidMechanism,
    SaslFailure::EncryptionRequired,
    SaslFailure::IncorrectEncoding,
    SaslFailure::Aborted,
    SaslFailure::TemporaryAuthFailure,
    SaslFailure::AccountDisabled,
    SaslFailure::CredentialsExpired,
    SaslFailure::MechanismTooWeak,
];

/// Usernames a SASL success may carry besides juliet: unprepared, empty,
/// not a localpart at all.
const ODD_USERNAMES: [&str; 7] = ["", "Juliet", "a@b", "a/b", "\u{0}x", " sp", "ǅ"];

/// Resources a resumed session may have been bound to.
const RESUMED_RESOURCES: [&str; 4] = ["balcony", "orchard", "x'<&>\"y", "\u{1F339}"];

/// The `h` a resumed session reports, by a decision's upper bits: the
/// counts near the 2^32 wrap are the interesting ones.
fn resumed_h(d: u8, client_h: u32) -> u32 {
    match (d >> 2) % 8 {
        0 => 0,
        1 => client_h,
        2 => u32::MAX,
        3 => u32::MAX - 1,
        4 => u32::MAX - u32::from(d >> 5),
        5 => 1 << 31,
        6 => client_h.wrapping_add(1),
        _ => u32::from(d),
    }
}

/// The answers to the actions, in order.
struct Decisions<'a> {
    bytes: &'a [u8],
    next: usize,
}

impl Decisions<'_> {
    fn take(&mut self) -> u8 {
        let d = self.bytes.get(self.next).copied().unwrap_or(0);
        self.next += 1;
        d
    }
}

struct Run<'a> {
    stream: C2sStream,
    framer: Framer,
    /// The client's parser of what the server wrote since its last restart.
    client_view: Framer,
    decisions: Decisions<'a>,
    /// `Action::Close` was returned.
    close_seen: bool,
    /// The connection is gone (a failed TLS handshake): nothing more runs.
    gone: bool,
    /// The account the last accepted SASL success named.
    account: Option<Jid>,
    /// The JID the last successful bind (or resume) result gave.
    granted: Option<Jid>,
    /// What `handled()` must be: `None` until `SmEnable` or a resume, then
    /// the count of stanzas received since, modulo 2^32.
    handled: Option<u32>,
    /// `SmEnable` was returned on this stream.
    sm_enabled: bool,
}

fn client_limits() -> Limits {
    Limits {
        max_stanza_bytes: 1 << 20,
        max_depth: 128,
    }
}

impl Run<'_> {
    /// Checks one call's output and carries out its actions, as the edge's
    /// `perform` does (actions may lead to more actions).
    fn after(&mut self, out: Vec<u8>, actions: Vec<Action>) {
        if self.close_seen {
            assert!(
                out.is_empty() && actions.is_empty(),
                "a closed stream wrote {:?} or asked for {} actions",
                String::from_utf8_lossy(&out),
                actions.len()
            );
        }
        self.client_reads(&out);
        let mut pending = actions;
        while !pending.is_empty() && !self.gone {
            let mut more = Vec::new();
            for action in pending {
                self.perform(action, &mut more);
            }
            pending = more;
        }
        self.check();
    }

    /// The client parses what the server wrote: it must be XML.
    fn client_reads(&mut self, out: &[u8]) {
        self.client_view.push(out);
        loop {
            match self.client_view.next_event() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => panic!(
                    "the server wrote what a client cannot parse ({e:?}): {:?}",
                    String::from_utf8_lossy(out)
                ),
            }
        }
    }

    fn perform(&mut self, action: Action, more: &mut Vec<Action>) {
        let mut out = Vec::new();
        match action {
            Action::StartTls => {
                let d = self.decisions.take();
                if d % 4 == 3 {
                    // The handshake failed: the edge drops the connection.
                    self.gone = true;
                    return;
                }
                self.framer.reset();
                self.client_view = Framer::new(client_limits());
                let cb = (d & 1 == 0).then(|| ChannelBinding::tls_exporter(vec![7; 32]));
                self.stream.tls_established(cb);
            }
            Action::Restart => {
                self.framer.reset();
                self.client_view = Framer::new(client_limits());
            }
            Action::Sasl(job) => self.answer_sasl(job, &mut out, more),
            Action::Register { iq, .. } => {
                assert!(
                    !self.stream.is_authenticated(),
                    "in-band registration after authentication"
                );
                let d = self.decisions.take();
                let reply = (d & 1 == 0).then(|| {
                    Element::new("iq", NS_CLIENT)
                        .with_attr("type", "result")
                        .with_attr("id", iq.attr("id").unwrap_or_default())
                });
                self.stream
                    .register_result(reply.as_ref(), d & 2 != 0, &mut out);
            }
            Action::Bind {
                account,
                resource,
                iq_id,
            } => {
                assert_eq!(
                    Some(&account),
                    self.account.as_ref(),
                    "a bind for an account SASL did not authenticate"
                );
                let d = self.decisions.take();
                let result = match d % 4 {
                    0 | 1 => account
                        .with_resource(resource.as_deref().unwrap_or("generated"))
                        .map_err(|_| StanzaError::new(Condition::BadRequest)),
                    2 => Err(StanzaError::new(Condition::Conflict)),
                    _ => Err(StanzaError::new(Condition::ResourceConstraint)),
                };
                if let Ok(full) = &result {
                    self.granted = Some(full.clone());
                }
                self.stream.bind_result(result, &iq_id, &mut out);
            }
            Action::Route { stanza, .. } => {
                let bound = self.stream.bound_jid();
                assert!(
                    bound.is_some() && bound == self.granted.as_ref(),
                    "routed before a resource was bound: {stanza}"
                );
                assert_eq!(
                    stanza.attr("from"),
                    bound.map(Jid::as_str),
                    "routed without the bound JID as from"
                );
            }
            Action::Close => self.close_seen = true,
            Action::SmEnable { resume, max } => {
                assert!(
                    self.stream.bound_jid().is_some(),
                    "stream management enabled before a bind"
                );
                assert!(
                    !self.sm_enabled && self.handled.is_none(),
                    "stream management enabled twice on one stream"
                );
                assert_eq!(
                    self.stream.handled(),
                    Some(0),
                    "stream management enabled without handled() = Some(0)"
                );
                self.sm_enabled = true;
                self.handled = Some(0);
                // What the edge writes: `<enabled/>`, with an id if it
                // allows resumption.
                let d = self.decisions.take();
                let id = (resume && d & 1 == 0).then_some("sm-1");
                let max = u64::from(max.unwrap_or(300)).min(u64::from(d));
                sm::write_enabled(&mut out, id, max);
            }
            Action::SmResume { previd, h } => {
                assert!(
                    self.stream.is_authenticated() && self.account.is_some(),
                    "a resume before authentication"
                );
                assert!(
                    self.stream.bound_jid().is_none(),
                    "a resume on a bound stream"
                );
                assert_eq!(
                    self.stream.account(),
                    self.account.as_ref(),
                    "account() is not what SASL authenticated"
                );
                let d = self.decisions.take();
                match d % 4 {
                    1 | 2 => {
                        let account = self.account.clone().expect("checked above");
                        let resource = RESUMED_RESOURCES[usize::from(d >> 5) % 4];
                        let full = account.with_resource(resource).expect("a valid resource");
                        let handled = resumed_h(d, h);
                        sm::write_resumed(&mut out, &previd, handled);
                        self.granted = Some(full.clone());
                        self.handled = Some(handled);
                        self.stream.resume_result(Some((full.clone(), handled)));
                        assert_eq!(
                            self.stream.bound_jid(),
                            Some(&full),
                            "a resumed stream is not bound to the session's JID"
                        );
                    }
                    3 => {
                        // The client acknowledged more than the session
                        // sent: the edge refuses and ends the stream.
                        self.stream.resume_result(None);
                        let too_high = TooHigh {
                            h,
                            sent: h.wrapping_sub(u32::from(d >> 2) + 1),
                        };
                        self.stream
                            .fail(too_high.stream_error(), &Hosts, &mut out, more);
                    }
                    _ => {
                        sm::write_failed(&mut out, "item-not-found", (d & 4 != 0).then_some(h));
                        self.stream.resume_result(None);
                        assert!(
                            self.stream.bound_jid().is_none(),
                            "bound after a failed resume"
                        );
                    }
                }
            }
            Action::SmAck(h) => {
                assert!(
                    self.stream.handled().is_some(),
                    "an ack with stream management off"
                );
                if self.decisions.take() % 4 == 3 {
                    let too_high = TooHigh {
                        h,
                        sent: h.wrapping_sub(1),
                    };
                    self.stream
                        .fail(too_high.stream_error(), &Hosts, &mut out, more);
                }
            }
            Action::SmRequest => {
                let h = self.stream.handled();
                assert!(h.is_some(), "an ack request with stream management off");
                sm::write_ack(&mut out, h.unwrap_or_default());
            }
            Action::Csi { .. } => assert!(
                self.stream.bound_jid().is_some(),
                "client state indication before a bind"
            ),
            Action::Sasl2(step) => self.answer_sasl2(*step, &mut out, more),
        }
        self.client_reads(&out);
    }

    /// SASL2's (XEP-0388) edge work: a FAST token check answered yes or
    /// no, and a success completed bound (Bind 2 or a resumption, with or
    /// without stream management) or not.
    fn answer_sasl2(&mut self, step: Sasl2Action, out: &mut Vec<u8>, more: &mut Vec<Action>) {
        let d = self.decisions.take();
        match step {
            Sasl2Action::Fast(job) => {
                let domain = self.stream.domain().unwrap_or_default().to_string();
                let expected = Jid::new(Some(&job.response.authcid), &domain, None).ok();
                let result = if d & 1 == 0 {
                    Err(SaslFailure::NotAuthorized)
                } else {
                    Ok(FastVerified {
                        username: job.response.authcid,
                        responder: vec![d],
                        record: Default::default(),
                        changed: false,
                    })
                };
                let before = self.stream.is_authenticated();
                self.stream.sasl2_fast_result(result, &Hosts, out, more);
                if !before && self.stream.is_authenticated() {
                    assert!(expected.is_some(), "authenticated without a valid account");
                    self.account = expected;
                }
            }
            Sasl2Action::Complete(done) => {
                assert!(
                    self.stream.account() == Some(&done.account),
                    "SASL2 completed for another account than authenticated"
                );
                let bound = (d & 1 == 0)
                    .then(|| done.account.with_resource("fuzz").ok())
                    .flatten();
                let handled = (d & 2 == 0 && bound.is_some()).then_some(0);
                if bound.is_some() {
                    self.granted = bound.clone();
                }
                self.handled = handled;
                self.stream.sasl2_completed(bound, handled, out);
            }
        }
    }

    /// A SASL step's result as the edge could report it: the real step
    /// against one account, or a success, failure, challenge or throttle
    /// refusal made up here.
    fn answer_sasl(&mut self, job: SaslJob, out: &mut Vec<u8>, more: &mut Vec<Action>) {
        let d = self.decisions.take();
        let mut session = job.session;
        let step = match d % 8 {
            1 => Step::Success {
                username: "juliet".to_string(),
                additional_data: Vec::new(),
            },
            2 => Step::Success {
                username: ODD_USERNAMES[usize::from(d >> 3) % ODD_USERNAMES.len()].to_string(),
                additional_data: Vec::new(),
            },
            3 => Step::Failure(FAILURES[usize::from(d >> 3) % FAILURES.len()]),
            4 => Step::Challenge(vec![d; usize::from(d >> 3)]),
            5 => {
                self.stream
                    .sasl_refused(u64::from(d >> 3), &Hosts, out, more);
                return;
            }
            7 => Step::Success {
                username: "romeo".to_string(),
                additional_data: b"v=<&'\">\0".to_vec(),
            },
            _ => session.step(&job.input, &OneUser),
        };
        let username = match &step {
            Step::Success { username, .. } => Some(username.clone()),
            _ => None,
        };
        let before = self.stream.is_authenticated();
        self.stream.sasl_result(session, step, &Hosts, out, more);
        if !before && self.stream.is_authenticated() {
            // The account is the SASL username at the stream's domain.
            let domain = self.stream.domain().unwrap_or_default();
            let account = username.and_then(|u| Jid::new(Some(&u), domain, None).ok());
            assert!(account.is_some(), "authenticated without a valid account");
            self.account = account;
        }
    }

    fn check(&self) {
        if self.stream.is_closed() {
            assert!(self.close_seen, "the stream closed without Action::Close");
        }
        if self.close_seen {
            assert!(self.stream.is_closed(), "the stream reopened after closing");
        }
        if let Some(bound) = self.stream.bound_jid() {
            assert_eq!(
                Some(bound),
                self.granted.as_ref(),
                "bound to a JID no bind result gave"
            );
            assert!(
                self.stream.is_authenticated(),
                "bound but not authenticated"
            );
        }
        if self.stream.is_authenticated() {
            assert_eq!(
                self.stream.account(),
                self.account.as_ref(),
                "account() is not what SASL authenticated"
            );
        }
        assert_eq!(
            self.stream.handled(),
            self.handled,
            "handled() is not the count of stanzas received since enable"
        );
    }

    /// One event from the framer, as the connection hands it over.
    fn on_event(&mut self, event: FrameEvent) {
        let (mut out, mut actions) = (Vec::new(), Vec::new());
        match event {
            FrameEvent::StreamOpen(header) => {
                self.stream
                    .on_header(&header, &Hosts, &mut out, &mut actions)
            }
            FrameEvent::Element(el) => {
                // A stanza counts once stream management is on, whatever
                // becomes of it (routed, answered, bounced or dropped).
                let stanza =
                    el.ns == NS_CLIENT && matches!(&*el.name, "message" | "presence" | "iq");
                let counted = stanza && self.stream.bound_jid().is_some();
                let enable = el.is("enable", NS_SM);
                self.stream.on_element(el, &Hosts, &mut out, &mut actions);
                if counted && let Some(h) = &mut self.handled {
                    *h = h.wrapping_add(1);
                }
                let enabled = actions.iter().any(|a| matches!(a, Action::SmEnable { .. }));
                assert!(
                    !enabled || enable,
                    "stream management enabled by something other than <enable/>"
                );
            }
            FrameEvent::StreamClose => self.stream.on_stream_close(&mut out, &mut actions),
        }
        self.after(out, actions);
    }

    fn feed(&mut self, read: &[u8]) {
        self.framer.push(read);
        // The edge reads no further once the stream is closing.
        while !self.close_seen && !self.gone {
            match self.framer.next_event() {
                Ok(Some(event)) => self.on_event(event),
                Ok(None) => break,
                Err(e) => {
                    let (mut out, mut actions) = (Vec::new(), Vec::new());
                    self.stream
                        .fail(StreamError::from(&e), &Hosts, &mut out, &mut actions);
                    self.after(out, actions);
                    break;
                }
            }
        }
    }

    /// Everything the edge could still call on a closed stream: each must
    /// change nothing and write nothing.
    fn poke_closed(&mut self) {
        let header = header();
        let elements = [
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldABwYXNzd29yZA==</auth>",
            "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
            "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
            "<message to='romeo@localhost'><body>hi</body></message>",
            "<enable xmlns='urn:xmpp:sm:3' resume='true'/>",
            "<resume xmlns='urn:xmpp:sm:3' previd='sm-1' h='0'/>",
            "<r xmlns='urn:xmpp:sm:3'/>",
            "<a xmlns='urn:xmpp:sm:3' h='1'/>",
            "<inactive xmlns='urn:xmpp:csi:0'/>",
        ];
        let (mut out, mut actions) = (Vec::new(), Vec::new());
        self.stream
            .on_header(&header, &Hosts, &mut out, &mut actions);
        for xml in elements {
            let el = Element::parse(xml).expect("probe element");
            self.stream.on_element(el, &Hosts, &mut out, &mut actions);
        }
        let session = SaslSession::start(Mechanism::Plain, None, false);
        let success = Step::Success {
            username: "juliet".to_string(),
            additional_data: Vec::new(),
        };
        self.stream
            .sasl_result(session, success, &Hosts, &mut out, &mut actions);
        self.stream.sasl_refused(1, &Hosts, &mut out, &mut actions);
        let jid = Jid::parse("juliet@localhost/r").expect("jid");
        self.stream.bind_result(Ok(jid.clone()), "b", &mut out);
        self.stream.resume_result(Some((jid, 7)));
        self.stream.resume_result(None);
        let reply = Element::new("iq", NS_CLIENT).with_attr("type", "result");
        self.stream.register_result(Some(&reply), true, &mut out);
        self.stream.fail(
            StreamError::new(StreamCondition::PolicyViolation),
            &Hosts,
            &mut out,
            &mut actions,
        );
        self.stream.on_stream_close(&mut out, &mut actions);
        self.after(out, actions);
    }
}

/// The stream header of the seeds, as the framer reports it.
fn header() -> StreamHeader {
    let mut framer = Framer::new(Limits::default());
    framer.push(HEADER.as_bytes());
    match framer.next_event() {
        Ok(Some(FrameEvent::StreamOpen(h))) => h,
        other => panic!("the header does not parse: {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let [bits, count, rest @ ..] = data else {
        return;
    };
    let k = usize::from(count % 32).min(rest.len());
    let (decisions, client) = rest.split_at(k);
    let policy = Policy {
        starttls_available: bits & 1 != 0,
        require_encryption: bits & 2 != 0,
        allow_plaintext_auth: bits & 4 != 0,
        registration: bits & 8 != 0,
        max_auth_failures: u32::from(bits >> 6) + 1,
    };
    let secure = bits & 16 != 0;
    let cb = (bits & 32 != 0).then(|| ChannelBinding::tls_exporter(vec![1; 32]));
    let mut run = Run {
        stream: C2sStream::new(policy, secure, cb).with_fast(true),
        framer: Framer::new(Limits {
            max_stanza_bytes: 16 * 1024,
            max_depth: 16,
        }),
        client_view: Framer::new(client_limits()),
        decisions: Decisions {
            bytes: decisions,
            next: 0,
        },
        close_seen: false,
        gone: false,
        account: None,
        granted: None,
        handled: None,
        sm_enabled: false,
    };
    for read in client.split(|&b| b == 0) {
        if run.close_seen || run.gone {
            break;
        }
        run.feed(read);
    }
    if run.close_seen && !run.gone {
        run.poke_closed();
    }
});
