//! The SASL2 profile (XEP-0388) without I/O: the `<authentication/>`
//! stream feature, the client's `<authenticate/>` with everything it may
//! carry inline (a user agent, Bind 2, a stream management resumption,
//! FAST token requests and logins), and the server's replies. The stream's
//! side of the exchange is `c2s_sasl2.rs`; the connection's (binding,
//! resuming, tokens) is `net::connection_sasl2`.

use crate::jid::Jid;
use crate::sasl::base64;
use crate::sasl::fast::{HtMechanism, HtResponse, TokenRecord};
use crate::sasl::{Mechanism, SaslFailure};
use crate::xml::{Element, escape_attr_into, escape_text_into};

use super::bind2::{self, BindRequest, NS_BIND2};
use super::sm::{self, NS_SM};
use super::{NS_CSI, NS_PRE_APPROVAL, NS_ROSTERVER};

pub const NS_SASL2: &str = "urn:xmpp:sasl:2";
/// FAST (XEP-0484).
pub const NS_FAST: &str = "urn:xmpp:fast:0";

/// Longest `<software/>` or `<device/>` text accepted: a name, not a file.
pub const MAX_USER_AGENT_TEXT: usize = 256;

/// A client's `<authenticate/>`, read but not yet checked against what
/// the stream offers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Authenticate {
    pub mechanism: String,
    /// Decoded `<initial-response/>`; `None` when absent.
    pub initial_response: Option<Vec<u8>>,
    pub user_agent: Option<UserAgent>,
    pub inline: Inline,
}

/// `<user-agent/>`: who is connecting. Only the id is used (Bind 2's
/// stable resource, FAST's token slot); the texts are for the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserAgent {
    /// A UUID, in lower case.
    pub id: Option<String>,
    pub software: Option<String>,
    pub device: Option<String>,
}

/// What the client wants done once it is authenticated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inline {
    pub bind: Option<BindRequest>,
    /// XEP-0198 `<resume previd h/>`.
    pub resume: Option<(String, u32)>,
    /// FAST `<request-token mechanism/>`: the mechanism's name.
    pub request_token: Option<String>,
    /// FAST `<fast/>`: this login uses a token.
    pub fast: Option<FastUse>,
}

/// The attributes of FAST's `<fast/>`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FastUse {
    /// The replay counter (XEP-0484 §3.3).
    pub count: Option<u32>,
    /// Invalidate the token once it logged in.
    pub invalidate: bool,
}

/// Why an `<authenticate/>` is refused before any credential is looked
/// at: the SASL condition and the `<text/>` saying what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub failure: SaslFailure,
    pub text: String,
}

fn malformed(text: impl Into<String>) -> Refused {
    Refused {
        failure: SaslFailure::MalformedRequest,
        text: text.into(),
    }
}

/// Reads `<authenticate xmlns='urn:xmpp:sasl:2'/>`. Every child must be
/// one the server offers, once: anything else is refused, so a client
/// never believes a feature was switched on when it was not.
pub fn parse_authenticate(el: &Element) -> Result<Authenticate, Refused> {
    let mechanism = el
        .attr("mechanism")
        .filter(|m| !m.is_empty() && m.len() <= 20)
        .ok_or_else(|| malformed("<authenticate/> needs a 'mechanism' (a SASL mechanism name)"))?;
    let mut auth = Authenticate {
        mechanism: mechanism.to_string(),
        ..Authenticate::default()
    };
    for child in el.children() {
        let duplicate = match (child.name.as_ref(), child.ns.as_ref()) {
            ("initial-response", NS_SASL2) => {
                let data = decode_payload(child)?;
                auth.initial_response.replace(data).is_some()
            }
            ("user-agent", NS_SASL2) => auth.user_agent.replace(user_agent(child)?).is_some(),
            ("bind", NS_BIND2) => {
                let request = bind2::parse(child).map_err(malformed)?;
                auth.inline.bind.replace(request).is_some()
            }
            ("resume", NS_SM) => match sm::parse(child) {
                Ok(sm::Command::Resume { previd, h }) => {
                    auth.inline.resume.replace((previd, h)).is_some()
                }
                _ => return Err(malformed("<resume/> needs 'previd' and a numeric 'h'")),
            },
            ("request-token", NS_FAST) => {
                let mechanism = child
                    .attr("mechanism")
                    .ok_or_else(|| malformed("<request-token/> needs a 'mechanism'"))?;
                auth.inline
                    .request_token
                    .replace(mechanism.to_string())
                    .is_some()
            }
            ("fast", NS_FAST) => auth.inline.fast.replace(fast_use(child)?).is_some(),
            (name, ns) => {
                return Err(malformed(format!(
                    "<{name} xmlns='{ns}'/> was not offered inline in <authenticate/>"
                )));
            }
        };
        if duplicate {
            return Err(malformed(format!(
                "<{}/> appears twice in <authenticate/>",
                child.name
            )));
        }
    }
    Ok(auth)
}

/// The base64 content of `<initial-response/>` or `<response/>`; empty
/// content is empty data (SASL2 has no "=").
pub fn decode_payload(el: &Element) -> Result<Vec<u8>, Refused> {
    let text = el.text();
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    base64::decode(text).map_err(|_| Refused {
        failure: SaslFailure::IncorrectEncoding,
        text: format!("<{}/> is not base64", el.name),
    })
}

fn user_agent(el: &Element) -> Result<UserAgent, Refused> {
    let id =
        match el.attr("id") {
            None => None,
            Some(id) => Some(uuid(id).ok_or_else(|| {
                malformed("the <user-agent/> 'id' must be a UUID (XEP-0388 §2.3)")
            })?),
        };
    let text = |name: &str| -> Result<Option<String>, Refused> {
        match el.get_child(name, NS_SASL2).map(|c| c.text()) {
            Some(t) if t.len() > MAX_USER_AGENT_TEXT => Err(malformed(format!(
                "<{name}/> of <user-agent/> is longer than {MAX_USER_AGENT_TEXT} bytes"
            ))),
            other => Ok(other),
        }
    };
    Ok(UserAgent {
        id,
        software: text("software")?,
        device: text("device")?,
    })
}

/// `id` as a lower-case UUID (8-4-4-4-12 hex digits), if it is one.
pub fn uuid(id: &str) -> Option<String> {
    let bytes = id.as_bytes();
    let well_formed = bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    well_formed.then(|| id.to_ascii_lowercase())
}

fn fast_use(el: &Element) -> Result<FastUse, Refused> {
    let count = match el.attr("count") {
        None => None,
        Some(c) => Some(
            c.trim()
                .parse::<u32>()
                .ok()
                .filter(|c| *c > 0)
                .ok_or_else(|| malformed("FAST 'count' must be a positive number"))?,
        ),
    };
    Ok(FastUse {
        count,
        invalidate: matches!(el.attr("invalidate"), Some("1") | Some("true")),
    })
}

/// A FAST login to check against the token store (the connection does,
/// through the login throttle).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FastJob {
    pub mechanism: HtMechanism,
    pub response: HtResponse,
    /// The connection's channel binding data (empty for `-NONE`).
    pub cb_data: Vec<u8>,
    pub count: Option<u32>,
    pub domain: String,
    pub user_agent: String,
}

/// A FAST login that passed: its responder message and the client's
/// token record as it must be stored now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FastVerified {
    /// The prepared localpart.
    pub username: String,
    pub responder: Vec<u8>,
    pub record: TokenRecord,
    /// The record changed (a new token was used, a count seen): it must
    /// be stored before the next login reads it.
    pub changed: bool,
}

/// An authentication that succeeded, with what the client asked for
/// inline: the connection carries it out and writes `<success/>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    pub account: Jid,
    /// For `<additional-data/>` (SCRAM's server-final, HT's responder).
    pub additional_data: Vec<u8>,
    pub user_agent: Option<String>,
    pub inline: Inline,
    /// The requested token's mechanism, checked against the offer.
    pub request_token: Option<HtMechanism>,
    /// Set when the login used a FAST token.
    pub fast: Option<FastVerified>,
}

/// What the SASL2 exchange needs the connection for.
#[derive(Debug)]
pub enum Sasl2Action {
    /// Check a FAST token; answer with `C2sStream::sasl2_fast_result`.
    Fast(FastJob),
    /// Carry out the inline requests of a successful authentication and
    /// write `<success/>`; then call `C2sStream::sasl2_completed`.
    Complete(Box<Completion>),
}

/// Writes the `<authentication/>` feature: the SASL mechanisms, and what
/// can be done inline (Bind 2, a resumption, FAST with its mechanisms).
pub fn write_feature(out: &mut Vec<u8>, mechanisms: &[Mechanism], fast: &[HtMechanism]) {
    out.extend_from_slice(b"<authentication xmlns='");
    out.extend_from_slice(NS_SASL2.as_bytes());
    out.extend_from_slice(b"'>");
    for m in mechanisms {
        write_mechanism(out, m.name());
    }
    out.extend_from_slice(b"<inline>");
    bind2::write_feature(out);
    out.extend_from_slice(b"<sm xmlns='");
    out.extend_from_slice(NS_SM.as_bytes());
    out.extend_from_slice(b"'/>");
    if !fast.is_empty() {
        out.extend_from_slice(b"<fast xmlns='");
        out.extend_from_slice(NS_FAST.as_bytes());
        out.extend_from_slice(b"'>");
        for m in fast {
            write_mechanism(out, m.name());
        }
        out.extend_from_slice(b"</fast>");
    }
    out.extend_from_slice(b"</inline></authentication>");
}

fn write_mechanism(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b"<mechanism>");
    escape_text_into(name, out);
    out.extend_from_slice(b"</mechanism>");
}

/// `<challenge/>` with `data` in base64.
pub fn write_challenge(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(b"<challenge xmlns='");
    out.extend_from_slice(NS_SASL2.as_bytes());
    out.extend_from_slice(b"'>");
    base64::encode_into(data, out);
    out.extend_from_slice(b"</challenge>");
}

/// What goes into `<success/>`.
pub struct Success<'a> {
    pub additional_data: &'a [u8],
    /// The bare JID, or the full JID once a resource is bound.
    pub authorization_identifier: &'a str,
    /// FAST `<token/>`: the token and its expiry (XEP-0082).
    pub token: Option<(&'a str, &'a str)>,
    /// Further results, serialized (`<resumed/>`, `<failed/>`, `<bound/>`).
    pub results: &'a [u8],
}

pub fn write_success(out: &mut Vec<u8>, success: &Success<'_>) {
    out.extend_from_slice(b"<success xmlns='");
    out.extend_from_slice(NS_SASL2.as_bytes());
    out.extend_from_slice(b"'>");
    if !success.additional_data.is_empty() {
        out.extend_from_slice(b"<additional-data>");
        base64::encode_into(success.additional_data, out);
        out.extend_from_slice(b"</additional-data>");
    }
    out.extend_from_slice(b"<authorization-identifier>");
    escape_text_into(success.authorization_identifier, out);
    out.extend_from_slice(b"</authorization-identifier>");
    if let Some((token, expiry)) = success.token {
        out.extend_from_slice(b"<token xmlns='");
        out.extend_from_slice(NS_FAST.as_bytes());
        out.extend_from_slice(b"' expiry='");
        escape_attr_into(expiry, out);
        out.extend_from_slice(b"' token='");
        escape_attr_into(token, out);
        out.extend_from_slice(b"'/>");
    }
    out.extend_from_slice(success.results);
    out.extend_from_slice(b"</success>");
}

/// The features of a stream bound during SASL2 (after `<success/>`, no
/// restart): no `<bind/>`, and `<sm/>` only while it is not enabled.
pub fn write_bound_features(out: &mut Vec<u8>, sm_enabled: bool) {
    out.extend_from_slice(b"<stream:features>");
    for (name, ns) in [
        ("ver", NS_ROSTERVER),
        ("sub", NS_PRE_APPROVAL),
        ("csi", NS_CSI),
    ]
    .into_iter()
    .chain((!sm_enabled).then_some(("sm", NS_SM)))
    {
        out.extend_from_slice(b"<");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b" xmlns='");
        out.extend_from_slice(ns.as_bytes());
        out.extend_from_slice(b"'/>");
    }
    out.extend_from_slice(b"</stream:features>");
}

#[cfg(test)]
#[path = "sasl2_tests.rs"]
mod tests;
