//! Bind 2 (XEP-0386): resource binding requested inside a SASL2
//! `<authenticate/>`, with carbons, client state and stream management
//! switched on in the same step. The request's parsing, the resource it
//! gets and the elements the server writes; the binding itself is the
//! connection's (`net::connection_sasl2`).

use ring::digest;

use crate::xml::{Element, escape_attr_into};

use super::NS_CSI;
use super::sm::{self, NS_SM};

pub const NS_BIND2: &str = "urn:xmpp:bind:0";
/// Message Carbons (XEP-0280): its `<enable/>` may be inline.
pub const NS_CARBONS: &str = "urn:xmpp:carbons:2";

/// Longest `<tag/>` kept: it names the client software ("Conversations"),
/// not a sentence.
pub const MAX_TAG_BYTES: usize = 64;
/// Hex digits of the stable part of a resource: 32 bits tell one
/// account's few devices apart.
const STABLE_ID_HEX: usize = 8;

/// What a client asked for in `<bind xmlns='urn:xmpp:bind:0'/>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BindRequest {
    /// The client's tag, already a valid resource part.
    pub tag: Option<String>,
    /// `<enable xmlns='urn:xmpp:carbons:2'/>`.
    pub carbons: bool,
    /// `<active/>` (true) or `<inactive/>` (false) of XEP-0352.
    pub active: Option<bool>,
    /// `<enable xmlns='urn:xmpp:sm:3'/>`: resumable, preferred maximum.
    pub sm_enable: Option<(bool, Option<u32>)>,
}

/// Reads a Bind 2 request; the error is the text of the SASL2 failure
/// (`malformed-request`): a bad tag, a feature not offered, a duplicate.
pub fn parse(bind: &Element) -> Result<BindRequest, String> {
    let mut request = BindRequest::default();
    let mut seen_tag = false;
    for child in bind.children() {
        let duplicate = match (child.name.as_ref(), child.ns.as_ref()) {
            ("tag", NS_BIND2) => {
                let tag = child.text();
                let tag = tag.trim();
                if tag.len() > MAX_TAG_BYTES {
                    return Err(format!(
                        "the Bind 2 <tag/> is longer than {MAX_TAG_BYTES} bytes"
                    ));
                }
                if !tag.is_empty() {
                    let prepared = crate::jid::prep_resource_strict(tag)
                        .map_err(|e| format!("the Bind 2 <tag/> is not a valid resource: {e}"))?;
                    request.tag = Some(prepared.into_owned());
                }
                std::mem::replace(&mut seen_tag, true)
            }
            ("enable", NS_CARBONS) => std::mem::replace(&mut request.carbons, true),
            ("active" | "inactive", NS_CSI) => request
                .active
                .replace(child.name.as_ref() == "active")
                .is_some(),
            ("enable", NS_SM) => match sm::parse(child) {
                Ok(sm::Command::Enable { resume, max }) => {
                    request.sm_enable.replace((resume, max)).is_some()
                }
                _ => return Err("unreadable <enable xmlns='urn:xmpp:sm:3'/>".to_string()),
            },
            (name, ns) => {
                return Err(format!(
                    "<{name} xmlns='{ns}'/> is not a Bind 2 feature this server offers"
                ));
            }
        };
        if duplicate {
            return Err(format!(
                "<{}/> appears twice in Bind 2's <bind/>",
                child.name
            ));
        }
    }
    Ok(request)
}

/// The resource for a Bind 2 request, as the XEP recommends: the client's
/// tag, '/', and an id. With a user-agent id the id is stable (the same
/// client gets the same resource, and its new session replaces its old
/// one) without revealing the user-agent id: the first hex digits of
/// SHA-256(account, user-agent id). Without one, `fresh` makes it up.
pub fn resource(
    tag: Option<&str>,
    account: &str,
    user_agent: Option<&str>,
    fresh: impl FnOnce() -> String,
) -> String {
    let id = match user_agent {
        Some(ua) => {
            let mut ctx = digest::Context::new(&digest::SHA256);
            ctx.update(account.as_bytes());
            ctx.update(&[0]);
            ctx.update(ua.as_bytes());
            let hash = ctx.finish();
            hash.as_ref()
                .iter()
                .take(STABLE_ID_HEX / 2)
                .map(|b| format!("{b:02x}"))
                .collect()
        }
        None => fresh(),
    };
    match tag {
        Some(tag) => format!("{tag}/{id}"),
        None => id,
    }
}

/// The Bind 2 entry of the SASL2 `<inline/>` feature list, with the
/// features it can switch on.
pub fn write_feature(out: &mut Vec<u8>) {
    out.extend_from_slice(b"<bind xmlns='");
    out.extend_from_slice(NS_BIND2.as_bytes());
    out.extend_from_slice(b"'><inline>");
    for var in [NS_CARBONS, NS_CSI, NS_SM] {
        out.extend_from_slice(b"<feature var='");
        escape_attr_into(var, out);
        out.extend_from_slice(b"'/>");
    }
    out.extend_from_slice(b"</inline></bind>");
}

/// `<bound/>` around the results of the inline features (stream
/// management's `<enabled/>` or `<failed/>`, already serialized).
pub fn write_bound(out: &mut Vec<u8>, results: &[u8]) {
    out.extend_from_slice(b"<bound xmlns='");
    out.extend_from_slice(NS_BIND2.as_bytes());
    if results.is_empty() {
        out.extend_from_slice(b"'/>");
        return;
    }
    out.extend_from_slice(b"'>");
    out.extend_from_slice(results);
    out.extend_from_slice(b"</bound>");
}

#[cfg(test)]
#[path = "bind2_tests.rs"]
mod tests;
