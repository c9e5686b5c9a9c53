//! The accepting side of an external component's stream (XEP-0114): the
//! header naming the component's domain, the SHA-1 handshake over the
//! stream id and the shared secret, then stanzas the component sends for
//! its domain.
//!
//! Sans-I/O like the c2s machine: framer events in, bytes and actions out;
//! `net::component` does the socket and the routing.

use crate::jid::Jid;
use crate::xml::{Element, FrameEvent, NS_CLIENT, StreamHeader};

use super::error::{StreamCondition, StreamError};

pub const NS_COMPONENT: &str = "jabber:component:accept";

/// What the state machine asks of the rest of the server.
pub trait ComponentEnv {
    /// The secret configured for `domain`, if a component may serve it.
    fn secret_for(&self, domain: &str) -> Option<&str>;
    fn new_stream_id(&self) -> String;
    /// Another connection already serves `domain`.
    fn is_connected(&self, domain: &str) -> bool;
}

#[derive(Debug)]
pub enum ComponentAction {
    /// The handshake succeeded: the component now answers for `domain`.
    Authenticated { domain: String },
    /// A stanza from the component, in `jabber:client`, with a `from` at
    /// its domain.
    Route { stanza: Element, to: Jid },
    /// The closing bytes are in `out`: flush, then close.
    Close,
}

enum Phase {
    AwaitHeader,
    /// Header answered; the handshake is due.
    AwaitHandshake {
        domain: String,
        stream_id: String,
    },
    Authenticated {
        domain: String,
    },
    Closed,
}

pub struct ComponentStream {
    phase: Phase,
    header_sent: bool,
}

impl Default for ComponentStream {
    fn default() -> Self {
        ComponentStream {
            phase: Phase::AwaitHeader,
            header_sent: false,
        }
    }
}

impl ComponentStream {
    pub fn new() -> Self {
        Self::default()
    }

    /// The domain the component authenticated for, once it did.
    pub fn domain(&self) -> Option<&str> {
        match &self.phase {
            Phase::Authenticated { domain } => Some(domain),
            _ => None,
        }
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    pub fn on_event(
        &mut self,
        env: &dyn ComponentEnv,
        event: FrameEvent,
        out: &mut Vec<u8>,
        actions: &mut Vec<ComponentAction>,
    ) {
        match event {
            FrameEvent::StreamOpen(header) => self.on_header(env, header, out, actions),
            FrameEvent::Element(el) => self.on_element(env, el, out, actions),
            FrameEvent::StreamClose => {
                if self.is_closed() {
                    return;
                }
                if self.header_sent {
                    out.extend_from_slice(b"</stream:stream>");
                }
                self.phase = Phase::Closed;
                actions.push(ComponentAction::Close);
            }
        }
    }

    /// Ends the stream with `error`, a header first if none was sent.
    pub fn fail(
        &mut self,
        error: StreamError,
        out: &mut Vec<u8>,
        actions: &mut Vec<ComponentAction>,
    ) {
        if self.is_closed() {
            return;
        }
        if !self.header_sent {
            write_header(out, None, "");
            self.header_sent = true;
        }
        log::debug!("closing component stream: {error}");
        error.write_to(out);
        out.extend_from_slice(b"</stream:stream>");
        self.phase = Phase::Closed;
        actions.push(ComponentAction::Close);
    }

    fn on_header(
        &mut self,
        env: &dyn ComponentEnv,
        header: StreamHeader,
        out: &mut Vec<u8>,
        actions: &mut Vec<ComponentAction>,
    ) {
        if !matches!(self.phase, Phase::AwaitHeader) {
            return self.fail(
                StreamError::with_text(StreamCondition::BadFormat, "a second stream header"),
                out,
                actions,
            );
        }
        if header.default_ns != NS_COMPONENT {
            return self.fail(
                StreamError::with_text(
                    StreamCondition::InvalidNamespace,
                    format!("a component stream is in the {NS_COMPONENT} namespace"),
                ),
                out,
                actions,
            );
        }
        let domain = header.to.unwrap_or_default().to_ascii_lowercase();
        if env.secret_for(&domain).is_none() {
            let text = if domain.is_empty() {
                "the stream header names no component domain ('to')".to_string()
            } else {
                format!("no [[component]] is configured for {domain}")
            };
            return self.fail(
                StreamError::with_text(StreamCondition::HostUnknown, text),
                out,
                actions,
            );
        }
        let stream_id = env.new_stream_id();
        write_header(out, Some(&domain), &stream_id);
        self.header_sent = true;
        self.phase = Phase::AwaitHandshake { domain, stream_id };
    }

    fn on_element(
        &mut self,
        env: &dyn ComponentEnv,
        el: Element,
        out: &mut Vec<u8>,
        actions: &mut Vec<ComponentAction>,
    ) {
        match &self.phase {
            Phase::AwaitHandshake { .. } => self.on_handshake(env, el, out, actions),
            Phase::Authenticated { domain } => {
                let domain = domain.clone();
                self.on_stanza(&domain, el, out, actions)
            }
            Phase::AwaitHeader | Phase::Closed => {}
        }
    }

    fn on_handshake(
        &mut self,
        env: &dyn ComponentEnv,
        el: Element,
        out: &mut Vec<u8>,
        actions: &mut Vec<ComponentAction>,
    ) {
        let Phase::AwaitHandshake { domain, stream_id } = &self.phase else {
            return;
        };
        if !el.is("handshake", NS_COMPONENT) {
            return self.fail(
                StreamError::with_text(
                    StreamCondition::NotAuthorized,
                    "the component must send <handshake/> first",
                ),
                out,
                actions,
            );
        }
        let domain = domain.clone();
        let expected = env
            .secret_for(&domain)
            .map(|secret| expected_handshake(stream_id, secret));
        let given = el.text().trim().to_ascii_lowercase();
        let matches = expected
            .is_some_and(|expected| crate::sasl::ct_eq(expected.as_bytes(), given.as_bytes()));
        if !matches {
            log::warn!("component {domain}: wrong handshake (check its secret)");
            return self.fail(
                StreamError::with_text(
                    StreamCondition::NotAuthorized,
                    "the handshake does not match the secret configured for this domain",
                ),
                out,
                actions,
            );
        }
        if env.is_connected(&domain) {
            // XEP-0114 §3: one connection per component domain.
            return self.fail(
                StreamError::with_text(
                    StreamCondition::Conflict,
                    format!("{domain} is already connected"),
                ),
                out,
                actions,
            );
        }
        out.extend_from_slice(b"<handshake/>");
        self.phase = Phase::Authenticated {
            domain: domain.clone(),
        };
        actions.push(ComponentAction::Authenticated { domain });
    }

    fn on_stanza(
        &mut self,
        domain: &str,
        mut el: Element,
        out: &mut Vec<u8>,
        actions: &mut Vec<ComponentAction>,
    ) {
        if !matches!(&*el.name, "message" | "presence" | "iq") || el.ns != NS_COMPONENT {
            return self.fail(
                StreamError::with_text(
                    StreamCondition::UnsupportedStanzaType,
                    format!("<{}/> is not a stanza", el.name),
                ),
                out,
                actions,
            );
        }
        let from = el.attr("from").and_then(|f| Jid::parse(f).ok());
        let Some(from) = from.filter(|f| f.domain() == domain) else {
            return self.fail(
                StreamError::with_text(
                    StreamCondition::InvalidFrom,
                    format!(
                        "a stanza from this component must come from {domain} or an address at it"
                    ),
                ),
                out,
                actions,
            );
        };
        let Some(to) = el.attr("to").and_then(|t| Jid::parse(t).ok()) else {
            return self.fail(
                StreamError::with_text(
                    StreamCondition::ImproperAddressing,
                    "a stanza from a component needs a valid 'to'",
                ),
                out,
                actions,
            );
        };
        el.set_attr("from", from.to_string());
        el.move_namespace(NS_COMPONENT, NS_CLIENT);
        actions.push(ComponentAction::Route { stanza: el, to });
    }
}

fn write_header(out: &mut Vec<u8>, domain: Option<&str>, id: &str) {
    out.extend_from_slice(
        b"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'",
    );
    if let Some(domain) = domain {
        out.extend_from_slice(b" from='");
        crate::xml::escape_attr_into(domain, out);
        out.extend_from_slice(b"'");
    }
    if !id.is_empty() {
        out.extend_from_slice(b" id='");
        crate::xml::escape_attr_into(id, out);
        out.extend_from_slice(b"'");
    }
    out.extend_from_slice(b">");
}

/// XEP-0114 §3: the lower-case hex SHA-1 of the stream id followed by the
/// secret.
pub fn expected_handshake(stream_id: &str, secret: &str) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(stream_id.as_bytes());
    ctx.update(secret.as_bytes());
    ctx.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
#[path = "component_tests.rs"]
mod tests;
