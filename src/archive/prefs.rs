//! Archiving preferences: `<prefs xmlns='urn:xmpp:mam:2'/>`. XEP-0313
//! split them out into XEP-0441 (Message Archive Management Preferences,
//! 0.2.0), whose sections are cited here; the namespace is still MAM's.
//!
//! The lists hold bare JIDs. XEP-0441 §2.3.1 also allows full JIDs (a
//! rule for one resource); this server applies every rule to the bare JID,
//! which §2.1 permits ("the server then replies with the applied
//! preferences (...) these MAY be different to the preferences sent by the
//! client"): the reply shows the client what was applied.

use std::collections::BTreeSet;

use crate::config::DefaultPolicy;
use crate::jid::Jid;
use crate::stanza::{Condition, StanzaError};
use crate::xml::Element;

use super::NS_MAM;

/// The most JIDs in each of `<always/>` and `<never/>`: every message
/// archived or routed may look them up, and they are stored per account.
pub const MAX_JIDS: usize = 1000;

/// Version byte of [`Prefs::encode`]'s format.
const FORMAT: u8 = 1;

/// An account's archiving preferences.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prefs {
    /// What happens with a peer in neither list (XEP-0441 §2.1.1).
    pub default: DefaultPolicy,
    /// Normalized bare JIDs whose messages are archived (§2.1.2).
    pub always: BTreeSet<String>,
    /// Normalized bare JIDs whose messages are not (§2.1.3). No JID is in
    /// both lists.
    pub never: BTreeSet<String>,
}

impl Prefs {
    /// Preferences with empty lists: an account that never set any.
    pub fn with_default(default: DefaultPolicy) -> Prefs {
        Prefs {
            default,
            always: BTreeSet::new(),
            never: BTreeSet::new(),
        }
    }

    /// Reads the `<prefs/>` of an iq `set`. A missing `<always/>` or
    /// `<never/>` is an empty list (§2.1.2, §2.1.3); several of either are
    /// merged rather than one silently dropped.
    pub fn parse(prefs: &Element) -> Result<Prefs, StanzaError> {
        if !prefs.is("prefs", NS_MAM) {
            return Err(bad_request("not a urn:xmpp:mam:2 prefs element"));
        }
        // §2.1.1: "The 'default' attribute ... MUST be one of the following
        // values".
        let default = match prefs.attr("default") {
            None => return Err(bad_request("<prefs/> has no 'default'")),
            Some(d) => {
                policy(d).ok_or_else(|| bad_request("'default' is not always, never or roster"))?
            }
        };
        let always = jid_list(prefs, "always")?;
        let never = jid_list(prefs, "never")?;
        // XEP-0441 does not say what a JID in both lists means: refused
        // rather than guessed.
        if let Some(jid) = always.intersection(&never).next() {
            return Err(bad_request(format!(
                "{jid} is in both <always/> and <never/>"
            )));
        }
        Ok(Prefs {
            default,
            always,
            never,
        })
    }

    /// `<prefs default='…'><always>…</always><never>…</never></prefs>`,
    /// both lists always present (§2.1: "MUST also be present (even if
    /// empty)"), JIDs in sorted order.
    pub fn to_element(&self) -> Element {
        let list = |name: &'static str, jids: &BTreeSet<String>| {
            let mut el = Element::new(name, NS_MAM);
            for jid in jids {
                el.push_child(Element::new("jid", NS_MAM).with_text(jid.as_str()));
            }
            el
        };
        Element::new("prefs", NS_MAM)
            .with_attr("default", self.default.as_str())
            .with_child(list("always", &self.always))
            .with_child(list("never", &self.never))
    }

    /// Whether messages with `peer_bare` (a normalized bare JID, as
    /// `Jid::bare_str` gives: §2.3.1 compares bare JIDs for the roster and
    /// for bare entries) are archived; `in_roster` says whether the peer is
    /// in the owner's roster. The lists win over the default (§2.1.1: the
    /// default is "for JIDs in neither of the above lists"); `never` is
    /// checked first so that a JID in both (which `parse` and `decode`
    /// refuse) would not be archived.
    pub fn archives(&self, peer_bare: &str, in_roster: bool) -> bool {
        if self.never.contains(peer_bare) {
            return false;
        }
        if self.always.contains(peer_bare) {
            return true;
        }
        match self.default {
            DefaultPolicy::Always => true,
            DefaultPolicy::Never => false,
            DefaultPolicy::Roster => in_roster,
        }
    }

    /// The stored form:
    ///
    /// ```text
    /// [1: format = 1][1: default: 0 always, 1 roster, 2 never]
    /// [2: n (BE)] n × ([2: len (BE)][len: UTF-8 JID])   always, sorted
    /// [2: n (BE)] n × ([2: len (BE)][len: UTF-8 JID])   never, sorted
    /// ```
    ///
    /// One value has one encoding, so `encode(decode(b)) == b` whenever
    /// `decode(b)` succeeds. Lists over `u16::MAX` entries or JIDs over
    /// `u16::MAX` bytes cannot occur (at most [`MAX_JIDS`], and a bare JID
    /// is at most 2047 bytes).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![FORMAT, policy_byte(self.default)];
        for list in [&self.always, &self.never] {
            push_u16(&mut out, list.len());
            for jid in list {
                push_u16(&mut out, jid.len());
                out.extend_from_slice(jid.as_bytes());
            }
        }
        out
    }

    /// Reads what [`Prefs::encode`] wrote, checking everything: the format,
    /// the lengths, that each JID is a normalized bare JID, that each list
    /// is sorted without duplicates and at most [`MAX_JIDS`] long, that no
    /// JID is in both, and that nothing follows.
    pub fn decode(bytes: &[u8]) -> Result<Prefs, String> {
        let mut r = Reader { bytes };
        if r.take(1)? != [FORMAT] {
            return Err("unknown prefs format".into());
        }
        let default = match r.take(1)? {
            [0] => DefaultPolicy::Always,
            [1] => DefaultPolicy::Roster,
            [2] => DefaultPolicy::Never,
            _ => return Err("unknown default policy".into()),
        };
        let always = r.list()?;
        let never = r.list()?;
        if !r.bytes.is_empty() {
            return Err("bytes after the prefs".into());
        }
        if always.intersection(&never).next().is_some() {
            return Err("a JID in both lists".into());
        }
        Ok(Prefs {
            default,
            always,
            never,
        })
    }
}

fn policy(s: &str) -> Option<DefaultPolicy> {
    DefaultPolicy::ALL
        .iter()
        .find(|(name, _)| *name == s)
        .map(|(_, p)| *p)
}

fn policy_byte(p: DefaultPolicy) -> u8 {
    match p {
        DefaultPolicy::Always => 0,
        DefaultPolicy::Roster => 1,
        DefaultPolicy::Never => 2,
    }
}

/// The bare JIDs of every `<jid/>` in every `<{name}/>` child.
fn jid_list(prefs: &Element, name: &str) -> Result<BTreeSet<String>, StanzaError> {
    let mut out = BTreeSet::new();
    let mut seen = 0usize;
    for list in prefs.children().filter(|c| c.is(name, NS_MAM)) {
        for item in list.children().filter(|c| c.is("jid", NS_MAM)) {
            seen += 1;
            // Counted before parsing, so a long list costs no work past
            // the limit.
            if seen > MAX_JIDS {
                return Err(StanzaError::new(Condition::PolicyViolation)
                    .with_text(format!("more than {MAX_JIDS} JIDs in <{name}/>")));
            }
            let text = item.text();
            let jid = Jid::parse(text.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n')))
                .map_err(|e| {
                    StanzaError::new(Condition::JidMalformed)
                        .with_text(format!("a JID in <{name}/>: {e}"))
                })?;
            out.insert(jid.bare_str().to_string());
        }
    }
    Ok(out)
}

/// Appends a length known to fit (see [`Prefs::encode`]); saturates
/// rather than wraps if it ever did not, which `decode` would then refuse.
fn push_u16(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u16::try_from(n).unwrap_or(u16::MAX).to_be_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.bytes.len() < n {
            return Err("truncated prefs".into());
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn u16(&mut self) -> Result<usize, String> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    fn list(&mut self) -> Result<BTreeSet<String>, String> {
        let n = self.u16()?;
        if n > MAX_JIDS {
            return Err(format!("a list of {n} JIDs"));
        }
        let mut out = BTreeSet::new();
        let mut previous: Option<&str> = None;
        for _ in 0..n {
            let len = self.u16()?;
            let jid =
                std::str::from_utf8(self.take(len)?).map_err(|_| "a JID that is not UTF-8")?;
            if previous.is_some_and(|p| p >= jid) {
                return Err("a list out of order".into());
            }
            match Jid::parse(jid) {
                Ok(parsed) if parsed.as_str() == jid && parsed.is_bare() => {}
                _ => return Err(format!("{jid:?} is not a normalized bare JID")),
            }
            out.insert(jid.to_string());
            previous = Some(jid);
        }
        Ok(out)
    }
}

fn bad_request(text: impl Into<String>) -> StanzaError {
    StanzaError::new(Condition::BadRequest).with_text(text)
}

#[cfg(test)]
#[path = "prefs_tests.rs"]
mod tests;
