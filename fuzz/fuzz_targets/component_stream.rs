//! The accepting side of an external component's stream (XEP-0114),
//! `ComponentStream`, driven the way `net::component` drives it: the
//! component's bytes through the framer, each read's events handed over
//! until the stream closes, with the edge's `fail` (a handshake timeout)
//! between reads as the input says.
//!
//! Two components are configured, `irc.example.org` and
//! `pubsub.example.org`, each with its own secret. The fuzzer cannot
//! compute SHA-1, so the driver can answer our header itself with a
//! handshake made by `expected_handshake`: with the right secret, with
//! the other component's secret, or with the right one in upper case and
//! padded with white space (which XEP-0114 implementations accept).
//!
//! Input: a policy byte (bit 0: the domain is already connected
//! elsewhere; bits 1-2: the handshake the driver sends right after our
//! header: none, right, wrong secret, right but upper case), a count `k`
//! and `k` decision bytes (between reads: 3 in the low bits fails the
//! stream as the handshake timeout does), then the component's bytes, cut
//! at each 0 byte into reads.
//!
//! Properties: nothing panics; every byte written parses as XML stream
//! content; `Authenticated` at most once, for the domain the header named
//! (in lower case) and only if the handshake was the lower-case hex SHA-1
//! of our stream id and that domain's secret (in any case, white space
//! around it ignored) and the domain was not connected already; and such a
//! handshake always authenticates. `Route` only after `Authenticated`, for
//! a message, presence or iq with a `from` at the component's domain, in
//! `jabber:client` throughout, its `to` the parsed `to` attribute. A
//! closed stream has said so with one `Close`, the last action of its
//! call, and writes and does nothing more.
#![no_main]

use std::cell::Cell;

use libfuzzer_sys::fuzz_target;
use perch::jid::Jid;
use perch::stream::component::{
    ComponentAction, ComponentEnv, ComponentStream, NS_COMPONENT, expected_handshake,
};
use perch::stream::{StreamCondition, StreamError};
use perch::xml::{Element, FrameEvent, Framer, Limits, NS_CLIENT, StreamHeader};

/// A handshake and some stanzas; more only slows runs.
const MAX_INPUT: usize = 16 * 1024;

const COMPONENTS: [(&str, &str); 2] = [
    ("irc.example.org", "s3cr3t-s3cr3t"),
    ("pubsub.example.org", "another secret"),
];

struct World {
    connected: bool,
    ids: Cell<u32>,
}

impl ComponentEnv for World {
    fn secret_for(&self, domain: &str) -> Option<&str> {
        COMPONENTS
            .iter()
            .find(|(d, _)| *d == domain)
            .map(|(_, s)| *s)
    }
    fn new_stream_id(&self) -> String {
        self.ids.set(self.ids.get() + 1);
        format!("c{}", self.ids.get())
    }
    fn is_connected(&self, _domain: &str) -> bool {
        self.connected
    }
}

/// Whether `el` or a descendant is in `ns`.
fn any_in(el: &Element, ns: &str) -> bool {
    el.ns == ns || el.children().any(|c| any_in(c, ns))
}

struct Run<'a> {
    stream: ComponentStream,
    world: World,
    framer: Framer,
    /// The component's parser of what we write.
    view: Framer,
    decisions: &'a [u8],
    /// Which handshake the driver sends after our header (policy bits 1-2).
    handshake: u8,
    /// Our header: the domain it answers for and the stream id.
    header: Option<(String, String)>,
    /// The domain `Authenticated` named.
    domain: Option<String>,
    closed: bool,
}

impl Run<'_> {
    /// Checks one call's output and actions; `handshake` is the text of a
    /// `<handshake/>` handed over in this call.
    fn seen(&mut self, out: &[u8], actions: &[ComponentAction], handshake: Option<&str>) {
        if self.closed {
            assert!(
                out.is_empty() && actions.is_empty(),
                "a closed stream wrote {:?} or asked for {actions:?}",
                String::from_utf8_lossy(out)
            );
            return;
        }
        self.view.push(out);
        loop {
            match self.view.next_event() {
                Ok(Some(FrameEvent::StreamOpen(h))) => self.on_our_header(&h),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => panic!(
                    "the component cannot parse what we wrote ({e:?}): {:?}",
                    String::from_utf8_lossy(out)
                ),
            }
        }
        for (i, action) in actions.iter().enumerate() {
            match action {
                ComponentAction::Authenticated { domain } => {
                    assert!(self.domain.is_none(), "Authenticated twice");
                    let Some((header_domain, id)) = &self.header else {
                        panic!("authenticated before our header");
                    };
                    assert_eq!(domain, header_domain, "authenticated another domain");
                    assert!(!self.world.connected, "a second connection for {domain}");
                    let secret = self.world.secret_for(domain).expect("a configured domain");
                    let given = handshake.expect("authenticated by something else");
                    assert_eq!(
                        given.trim().to_ascii_lowercase(),
                        expected_handshake(id, secret),
                        "authenticated by a wrong handshake"
                    );
                    self.domain = Some(domain.clone());
                }
                ComponentAction::Route { stanza, to } => {
                    let Some(domain) = &self.domain else {
                        panic!("routed before the handshake: {stanza:?}");
                    };
                    assert!(
                        matches!(&*stanza.name, "message" | "presence" | "iq"),
                        "routed <{}/>",
                        stanza.name
                    );
                    let from = stanza.attr("from").map(Jid::parse);
                    let Some(Ok(from)) = from else {
                        panic!("routed without a valid from: {stanza:?}");
                    };
                    assert_eq!(from.domain(), domain, "a from outside the component");
                    assert_eq!(stanza.attr("from"), Some(from.as_str()));
                    assert_eq!(stanza.attr("to").map(Jid::parse), Some(Ok(to.clone())));
                    assert_eq!(stanza.ns, NS_CLIENT, "routed outside jabber:client");
                    assert!(!any_in(stanza, NS_COMPONENT), "{NS_COMPONENT} left");
                }
                ComponentAction::Close => {
                    assert_eq!(i + 1, actions.len(), "actions after Close");
                    self.closed = true;
                }
            }
        }
        // The right handshake, for a domain not connected, always works.
        if let (Some(given), Some((domain, id)), None) = (handshake, &self.header, &self.domain)
            && let Some(secret) = self.world.secret_for(domain)
            && given.trim().to_ascii_lowercase() == expected_handshake(id, secret)
            && !self.world.connected
        {
            panic!("the right handshake for {domain} did not authenticate");
        }
        assert_eq!(self.stream.is_closed(), self.closed, "closed without Close");
        if !self.closed {
            assert_eq!(self.stream.domain(), self.domain.as_deref());
        }
    }

    fn on_our_header(&mut self, header: &StreamHeader) {
        assert!(self.header.is_none(), "our header twice");
        assert_eq!(header.default_ns, NS_COMPONENT);
        // A header written only to carry a stream error names no domain.
        if let (Some(domain), Some(id)) = (&header.from, &header.id) {
            assert!(
                self.world.secret_for(domain).is_some(),
                "answered for {domain}"
            );
            self.header = Some((domain.clone(), id.clone()));
        }
    }

    fn event(&mut self, event: FrameEvent) {
        let handshake = match &event {
            FrameEvent::Element(el)
                if el.is("handshake", NS_COMPONENT) && self.domain.is_none() =>
            {
                Some(el.text())
            }
            _ => None,
        };
        let had_header = self.header.is_some();
        let (mut out, mut actions) = (Vec::new(), Vec::new());
        self.stream
            .on_event(&self.world, event, &mut out, &mut actions);
        self.seen(&out, &actions, handshake.as_deref());
        if !had_header && !self.closed && self.handshake != 0 {
            self.send_handshake();
        }
    }

    /// The driver's own handshake, right after our header.
    fn send_handshake(&mut self) {
        let Some((domain, id)) = self.header.clone() else {
            return;
        };
        let secret = self.world.secret_for(&domain).unwrap_or_default();
        let text = match self.handshake {
            1 => expected_handshake(&id, secret),
            2 => {
                let wrong = COMPONENTS
                    .iter()
                    .map(|(_, s)| *s)
                    .find(|s| *s != secret)
                    .unwrap_or("wrong");
                expected_handshake(&id, wrong)
            }
            _ => format!(
                " \n{}\t",
                expected_handshake(&id, secret).to_ascii_uppercase()
            ),
        };
        let el = Element::new("handshake", NS_COMPONENT).with_text(text);
        self.event(FrameEvent::Element(el));
    }

    /// One read, as `net::component` handles it.
    fn feed(&mut self, read: &[u8]) {
        self.framer.push(read);
        while !self.closed {
            match self.framer.next_event() {
                Ok(Some(event)) => self.event(event),
                Ok(None) => break,
                Err(e) => {
                    let (mut out, mut actions) = (Vec::new(), Vec::new());
                    self.stream
                        .fail(StreamError::from(&e), &mut out, &mut actions);
                    self.seen(&out, &actions, None);
                    break;
                }
            }
        }
    }

    fn between_reads(&mut self) {
        let (&d, rest) = self.decisions.split_first().unwrap_or((&0, &[]));
        self.decisions = rest;
        if d % 4 == 3 {
            let (mut out, mut actions) = (Vec::new(), Vec::new());
            let error = StreamError::with_text(StreamCondition::ConnectionTimeout, "no handshake");
            self.stream.fail(error, &mut out, &mut actions);
            self.seen(&out, &actions, None);
        }
    }

    /// What the edge could still call on a closed stream (it stops reading
    /// once closed, so no events arrive after the close).
    fn poke_closed(&mut self) {
        let (mut out, mut actions) = (Vec::new(), Vec::new());
        let error = StreamError::new(StreamCondition::SystemShutdown);
        self.stream.fail(error, &mut out, &mut actions);
        let header = StreamHeader {
            to: Some(COMPONENTS[0].0.to_string()),
            from: None,
            id: None,
            version: None,
            lang: None,
            default_ns: NS_COMPONENT.to_string(),
            stream_prefix: "stream".to_string(),
        };
        self.stream.on_event(
            &self.world,
            FrameEvent::StreamOpen(header),
            &mut out,
            &mut actions,
        );
        let message = Element::new("message", NS_COMPONENT)
            .with_attr("from", "a@irc.example.org")
            .with_attr("to", "b@example.org");
        self.stream.on_event(
            &self.world,
            FrameEvent::Element(message),
            &mut out,
            &mut actions,
        );
        self.seen(&out, &actions, None);
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    let [bits, count, rest @ ..] = data else {
        return;
    };
    let k = usize::from(count % 32).min(rest.len());
    let (decisions, component) = rest.split_at(k);
    let limits = Limits {
        max_stanza_bytes: 16 * 1024,
        max_depth: 16,
    };
    let mut run = Run {
        stream: ComponentStream::new(),
        world: World {
            connected: bits & 1 != 0,
            ids: Cell::new(0),
        },
        framer: Framer::new(limits),
        view: Framer::new(Limits {
            max_stanza_bytes: 1 << 20,
            max_depth: 128,
        }),
        decisions,
        handshake: (bits >> 1) % 4,
        header: None,
        domain: None,
        closed: false,
    };
    for read in component.split(|&b| b == 0) {
        run.feed(read);
        if run.closed {
            break;
        }
        run.between_reads();
        if run.closed {
            break;
        }
    }
    if run.closed {
        run.poke_closed();
    }
});
