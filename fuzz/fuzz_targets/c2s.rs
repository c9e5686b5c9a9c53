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
//! JID as `from`; `bound_jid` is only ever what a bind result gave, for
//! the account SASL authenticated; registration happens only before
//! authentication; and every byte written is XML a client can parse.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use perch::jid::Jid;
use perch::sasl::{
    ChannelBinding, CredentialLookup, Credentials, Mechanism, SaslFailure, SaslSession, ScramHash,
    ScramKeys, Step,
};
use perch::stanza::{Condition, StanzaError};
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
    /// The JID the last successful bind result gave.
    granted: Option<Jid>,
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
        }
        self.client_reads(&out);
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
    }

    /// One event from the framer, as the connection hands it over.
    fn on_event(&mut self, event: FrameEvent) {
        let (mut out, mut actions) = (Vec::new(), Vec::new());
        match event {
            FrameEvent::StreamOpen(header) => {
                self.stream
                    .on_header(&header, &Hosts, &mut out, &mut actions)
            }
            FrameEvent::Element(el) => self.stream.on_element(el, &Hosts, &mut out, &mut actions),
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
        self.stream.bind_result(Ok(jid), "b", &mut out);
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
        stream: C2sStream::new(policy, secure, cb),
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
