//! Client State Indication (XEP-0352): while a client says it is inactive
//! (a phone in a pocket), stanzas it does not need at once are held back
//! and sent later together, so its radio wakes up less often. Sans-I/O:
//! the connection drains the session's outbox into a [`Batch`], hands it to
//! [`CsiState::filter`] and writes what is left.
//!
//! The XEP leaves the policy to the server. Ours is what Prosody's
//! `mod_csi_simple` and Conversations' expectations amount to: anything the
//! user would want a notification for, or that answers something the
//! client is waiting for, goes at once and takes everything held before it
//! along (so the order the client sees never changes); the rest waits.
//!
//! ## What is urgent
//!
//! [`classify`] looks at one stanza; the first row that matches decides.
//!
//! | stanza | importance | why |
//! | --- | --- | --- |
//! | not parseable, not a `jabber:client` message/presence/iq | Urgent | never hold what we cannot read |
//! | `iq` (any type) | Urgent | the client (or a peer) is waiting for it |
//! | presence `subscribe`/`subscribed`/`unsubscribe`/`unsubscribed` | Urgent | asks the user, or answers the user |
//! | presence `error` | Urgent | answers something the client did |
//! | presence from a room about the user's own occupant (status 110) | Urgent | answers a join, nick change or exit |
//! | presence, no type or `unavailable`, with a `from` | Collapse(`from`) | only the latest availability of a resource matters |
//! | any other presence | Hold | |
//! | message `error` | Urgent | answers something the client did |
//! | message `headline` | Hold | ephemeral by definition |
//! | message encrypted (OMEMO `encrypted` in `eu.siacs.conversations.axolotl` or `urn:xmpp:omemo:2`, `x` in `jabber:x:encrypted`, `openpgp` in `urn:xmpp:openpgp:0`) | Urgent | we cannot tell what it says, so it may well be a message the user must see; in a group chat too (only private, members-only rooms are encrypted, where every message notifies) |
//! | message with a child in `urn:xmpp:jingle-message:0` (XEP-0353) | Urgent | a call is ringing, or stopped ringing |
//! | message with `x`+`invite` in `http://jabber.org/protocol/muc#user`, or `x` in `jabber:x:conference` | Urgent | a room invitation asks the user |
//! | message with `sent`/`received` in `urn:xmpp:carbons:2`, or a direct `forwarded` in `urn:xmpp:forward:0`, whose inner message is urgent by this table | Urgent | the wrapped message is what the user sees |
//! | message `groupchat` with a `subject` | Urgent | ends a join the client waits for |
//! | message `groupchat` with a `body` that mentions the user's nick in that room | Urgent | a mention notifies |
//! | any other message `groupchat` (chatter) | Hold | rooms do not notify otherwise |
//! | message with a `body` | Urgent | a message for the user |
//! | anything else (chat states, receipts, chat markers, pubsub events) | Hold | |
//!
//! A mention is the nick, compared case-insensitively, standing as a whole
//! word in a body: neither side of it touches a letter, digit or `_`.
//!
//! ## Releasing
//!
//! When a batch holds an urgent stanza, everything held plus the batch up
//! to its last urgent stanza is written, in order; the rest of the batch is
//! held. A held presence is replaced by a later one with the same key, and
//! a presence superseded within what is written is dropped: the client
//! only ever needed the latest. When more than `max_held` stanzas would be
//! held, everything is written instead, so a quiet client cannot make the
//! server hold unbounded memory for it.

use std::collections::{HashSet, VecDeque};

use crate::outbox::Batch;
use crate::stanza::{NS_CARBONS, NS_CONFERENCE, NS_FORWARD, NS_MUC_USER};
use crate::xml::{Element, NS_CLIENT, Node};

/// How many stanzas an inactive session holds before it flushes them all.
pub const DEFAULT_MAX_HELD: usize = 100;

/// How many bytes of stanzas an inactive session holds before it flushes
/// them all (a stranger can make each of them 256 KiB).
pub const MAX_HELD_BYTES: usize = 256 << 10;

/// XEP-0353 Jingle Message Initiation: a call ringing.
pub const NS_JINGLE_MESSAGE: &str = "urn:xmpp:jingle-message:0";

/// Where each encryption scheme puts its payload: any of these makes a
/// message urgent.
const ENCRYPTED: &[(&str, &str)] = &[
    ("encrypted", "eu.siacs.conversations.axolotl"),
    ("encrypted", "urn:xmpp:omemo:2"),
    ("x", "jabber:x:encrypted"),
    ("openpgp", "urn:xmpp:openpgp:0"),
];

/// Forwarded messages inside forwarded messages are unwrapped this deep at
/// most; nothing legitimate nests further, and it bounds the recursion.
const MAX_FORWARD_DEPTH: usize = 3;

/// What the session knows that classification needs.
pub trait CsiEnv {
    /// The user's nick in `room` (a bare JID), if the session is joined.
    fn nick_in(&self, room: &str) -> Option<String>;
}

/// How soon a stanza must reach an inactive client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Importance {
    /// Written now, with everything held before it.
    Urgent,
    /// Held until something urgent comes (or the client becomes active).
    Hold,
    /// Held, and replaced by a later stanza with the same key.
    Collapse(String),
}

/// How soon `stanza` (one serialized stanza with `jabber:client` as the
/// default namespace, as the outbox holds it) must reach an inactive
/// client: see the table in the module docs.
pub fn classify(stanza: &[u8], env: &dyn CsiEnv) -> Importance {
    match parse_stanza(stanza) {
        Some(el) => classify_element(&el, env),
        None => Importance::Urgent,
    }
}

/// The stanza as an element, parsed in the default namespace the outbox
/// leaves implied; `None` if it is anything but exactly one element.
fn parse_stanza(stanza: &[u8]) -> Option<Element> {
    const OPEN: &str = "<csi xmlns='jabber:client'>";
    const CLOSE: &str = "</csi>";
    let text = std::str::from_utf8(stanza).ok()?;
    let mut wrapped = String::with_capacity(OPEN.len() + text.len() + CLOSE.len());
    wrapped.push_str(OPEN);
    wrapped.push_str(text);
    wrapped.push_str(CLOSE);
    let mut root = Element::parse(&wrapped).ok()?;
    // Bytes that close the wrapper early and open another would not parse
    // (two roots), but text or several elements would: none is a stanza.
    if root.children.len() != 1 {
        return None;
    }
    match root.children.pop() {
        Some(Node::Element(el)) => Some(el),
        _ => None,
    }
}

fn classify_element(el: &Element, env: &dyn CsiEnv) -> Importance {
    if el.ns != NS_CLIENT {
        return Importance::Urgent;
    }
    match el.name.as_ref() {
        "iq" => Importance::Urgent,
        "presence" => classify_presence(el),
        "message" => {
            if message_is_urgent(el, env, 0) {
                Importance::Urgent
            } else {
                Importance::Hold
            }
        }
        _ => Importance::Urgent,
    }
}

fn classify_presence(el: &Element) -> Importance {
    match el.attr("type") {
        Some("subscribe" | "subscribed" | "unsubscribe" | "unsubscribed" | "error") => {
            Importance::Urgent
        }
        // A room's presence about the user's own occupant (status 110):
        // the answer to a join, nick change or exit the client waits for.
        None | Some("unavailable") if is_self_presence(el) => Importance::Urgent,
        None | Some("unavailable") => match el.attr("from") {
            Some(from) => Importance::Collapse(from.to_owned()),
            // Nothing to tell whose it is, so nothing may replace it.
            None => Importance::Hold,
        },
        Some(_) => Importance::Hold,
    }
}

fn is_self_presence(el: &Element) -> bool {
    el.get_child("x", NS_MUC_USER).is_some_and(|x| {
        x.children()
            .any(|c| c.is("status", NS_MUC_USER) && c.attr("code") == Some("110"))
    })
}

fn message_is_urgent(el: &Element, env: &dyn CsiEnv, depth: usize) -> bool {
    let kind = el.attr("type");
    if kind == Some("error") {
        return true;
    }
    if kind == Some("headline") {
        return false;
    }
    let has = |name: &str, ns: &str| el.get_child(name, ns).is_some();
    if ENCRYPTED.iter().any(|(name, ns)| has(name, ns)) {
        return true;
    }
    if el.children().any(|c| c.ns == NS_JINGLE_MESSAGE) {
        return true;
    }
    let mediated = el
        .get_child("x", NS_MUC_USER)
        .is_some_and(|x| x.get_child("invite", NS_MUC_USER).is_some());
    if mediated || has("x", NS_CONFERENCE) {
        return true;
    }
    if depth < MAX_FORWARD_DEPTH
        && forwarded(el).any(|inner| message_is_urgent(inner, env, depth + 1))
    {
        return true;
    }
    let bodies = || el.children().filter(|c| c.is("body", NS_CLIENT));
    if kind == Some("groupchat") {
        // The subject ends a join (XEP-0045 §7.2.15): a client rejoining
        // its rooms while inactive must not wait for it.
        if has("subject", NS_CLIENT) {
            return true;
        }
        let Some(nick) = el.attr("from").and_then(|from| env.nick_in(bare(from))) else {
            return false;
        };
        return bodies().any(|body| mentions(&body.text(), &nick));
    }
    bodies().next().is_some()
}

/// The messages `el` carries: a carbon copy's, or a direct forward's.
fn forwarded(el: &Element) -> impl Iterator<Item = &Element> {
    el.children()
        .filter(|c| c.ns == NS_CARBONS && (c.name == "sent" || c.name == "received"))
        .filter_map(|carbon| carbon.get_child("forwarded", NS_FORWARD))
        .chain(el.children().filter(|c| c.is("forwarded", NS_FORWARD)))
        .filter_map(|fwd| fwd.get_child("message", NS_CLIENT))
}

/// The bare part of a JID string: a bare JID holds no `/`, a resource may.
fn bare(jid: &str) -> &str {
    jid.split_once('/').map_or(jid, |(bare, _)| bare)
}

/// Whether `nick` stands in `body` as a whole word, ignoring case.
fn mentions(body: &str, nick: &str) -> bool {
    let nick = nick.to_lowercase();
    let Some(first) = nick.chars().next() else {
        return false;
    };
    let body = body.to_lowercase();
    let mut from = 0;
    while let Some(found) = body.get(from..).and_then(|rest| rest.find(&nick)) {
        let start = from + found;
        let end = start + nick.len();
        let before = body.get(..start).and_then(|s| s.chars().next_back());
        let after = body.get(end..).and_then(|s| s.chars().next());
        if !before.is_some_and(is_word) && !after.is_some_and(is_word) {
            return true;
        }
        // Matches may overlap when the nick holds a non-word character, so
        // the next search starts one character on, not after this match.
        from = start + first.len_utf8();
    }
    false
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// One held stanza.
#[derive(Debug)]
struct Held {
    stanza: Box<[u8]>,
    /// Set for a presence that a later one from the same JID replaces.
    key: Option<Box<str>>,
}

/// A session's Client State Indication: whether the client is inactive,
/// and what is held for it meanwhile.
#[derive(Debug)]
pub struct CsiState {
    inactive: bool,
    /// In arrival order. Emptied with its buffer freed whenever everything
    /// is released, so an active session costs no heap memory.
    held: VecDeque<Held>,
    max_held: usize,
}

impl Default for CsiState {
    fn default() -> Self {
        CsiState::new(DEFAULT_MAX_HELD)
    }
}

impl CsiState {
    /// An active session's state (XEP-0352 §3: every stream starts active,
    /// a resumed one too). More than `max_held` held stanzas flush them all;
    /// 0 turns holding off.
    pub fn new(max_held: usize) -> Self {
        CsiState {
            inactive: false,
            held: VecDeque::new(),
            max_held,
        }
    }

    pub fn is_inactive(&self) -> bool {
        self.inactive
    }

    /// The client sent `<inactive/>`: hold from the next batch on.
    pub fn set_inactive(&mut self) {
        self.inactive = true;
    }

    /// The client sent `<active/>`: everything held goes out in front of
    /// `batch`, before whatever the connection writes next (XEP-0352 §5:
    /// before the answer to anything the client sent after `<active/>`).
    pub fn set_active(&mut self, batch: &mut Batch) {
        self.inactive = false;
        self.release_before(batch);
    }

    /// The client is active again; what was held goes out, first, with
    /// the next batch `filter` sees (for a connection that is between
    /// writes, or a stream resuming the session).
    pub fn wake(&mut self) {
        self.inactive = false;
    }

    /// Bytes held now.
    pub fn held_bytes(&self) -> usize {
        self.held.iter().map(|h| h.stanza.len()).sum()
    }

    /// Stanzas held now.
    pub fn held_len(&self) -> usize {
        self.held.len()
    }

    /// Everything held, in order, leaving nothing: for a session that ends
    /// or is saved for resumption.
    pub fn take_held(&mut self) -> Batch {
        let mut out = Batch::default();
        for held in std::mem::take(&mut self.held) {
            out.push(&held.stanza);
        }
        out
    }

    /// Leaves in `batch` what the connection writes now and holds the rest.
    /// Returns how many stanzas were dropped for good (presences superseded
    /// by a later one from the same JID), so whoever counts what the client
    /// receives (stream management) can tell. Call it on the batch as
    /// drained, before anything that is not a stanza is appended to it: it
    /// keeps or rebuilds the batch from its entries alone.
    pub fn filter(&mut self, batch: &mut Batch, env: &dyn CsiEnv) -> usize {
        if !self.inactive {
            // Only if `set_active` was not given the batch: nothing is
            // left behind.
            self.release_before(batch);
            return 0;
        }
        if batch.is_empty() {
            return 0;
        }
        let kinds: Vec<Importance> = batch.stanzas().map(|s| classify(s, env)).collect();
        let dropped = match kinds.iter().rposition(|k| *k == Importance::Urgent) {
            Some(last) => self.flush_through(batch, &kinds, last + 1),
            None => self.hold_all(batch, kinds),
        };
        // Big stanzas that can wait (a sender may make them 256 KiB each)
        // are not worth holding: past the byte limit everything goes, after
        // what is being written already.
        if self.held.iter().map(|h| h.stanza.len()).sum::<usize>() > MAX_HELD_BYTES {
            for held in std::mem::take(&mut self.held) {
                batch.push(&held.stanza);
            }
        }
        dropped
    }

    /// Nothing in `batch` is urgent: all of it joins what is held.
    fn hold_all(&mut self, batch: &mut Batch, kinds: Vec<Importance>) -> usize {
        let mut dropped = 0;
        for (stanza, kind) in batch.stanzas().zip(kinds) {
            let key = match kind {
                Importance::Collapse(key) => {
                    if let Some(at) = self
                        .held
                        .iter()
                        .position(|h| h.key.as_deref() == Some(&key))
                    {
                        self.held.remove(at);
                        dropped += 1;
                    }
                    Some(key.into_boxed_str())
                }
                _ => None,
            };
            self.held.push_back(Held {
                stanza: stanza.into(),
                key,
            });
        }
        batch.clear();
        if self.held.len() > self.max_held {
            // Each held key is unique already: nothing more to drop.
            self.release_before(batch);
        }
        dropped
    }

    /// Writes everything held and `batch`'s first `split` stanzas (the
    /// last of them urgent), holding the rest of `batch`, or writes it all
    /// if the rest is more than may be held.
    fn flush_through(&mut self, batch: &mut Batch, kinds: &[Importance], split: usize) -> usize {
        let old = std::mem::take(&mut self.held);
        let stanzas: Vec<&[u8]> = batch.stanzas().collect();
        let key = |i: usize| match kinds.get(i) {
            Some(Importance::Collapse(key)) => Some(key.as_str()),
            _ => None,
        };
        let tail_keys: Vec<Option<&str>> = (split..stanzas.len()).map(key).collect();
        let tail_gone = superseded(&tail_keys);
        let tail_dropped = tail_gone.iter().filter(|&&gone| gone).count();
        let kept = tail_keys.len() - tail_dropped;
        let (end, mut dropped) = if kept > self.max_held {
            (stanzas.len(), 0)
        } else {
            (split, tail_dropped)
        };
        let released_keys: Vec<Option<&str>> = old
            .iter()
            .map(|h| h.key.as_deref())
            .chain((0..end).map(key))
            .collect();
        let gone = superseded(&released_keys);
        let released_dropped = gone.iter().filter(|&&g| g).count();
        dropped += released_dropped;
        if end == split {
            for (i, stanza) in stanzas.iter().enumerate().skip(split) {
                if tail_gone.get(i - split) != Some(&true) {
                    self.held.push_back(Held {
                        stanza: (*stanza).into(),
                        key: key(i).map(Into::into),
                    });
                }
            }
        }
        if old.is_empty() && released_dropped == 0 {
            // What is written is a prefix of the batch as it stands.
            drop(stanzas);
            batch.truncate(end);
            return dropped;
        }
        let mut out = Batch::default();
        let released = old
            .iter()
            .map(|h| &*h.stanza)
            .chain(stanzas.iter().take(end).copied());
        for (stanza, gone) in released.zip(gone) {
            if !gone {
                out.push(stanza);
            }
        }
        drop(stanzas);
        std::mem::swap(batch, &mut out);
        dropped
    }

    /// Puts everything held in front of `batch`'s stanzas.
    fn release_before(&mut self, batch: &mut Batch) {
        if self.held.is_empty() {
            return;
        }
        let mut out = self.take_held();
        for stanza in batch.stanzas() {
            out.push(stanza);
        }
        std::mem::swap(batch, &mut out);
    }
}

/// For each entry, whether a later entry has the same key (so it may be
/// dropped, the later one standing for it).
fn superseded(keys: &[Option<&str>]) -> Vec<bool> {
    let mut seen = HashSet::new();
    let mut gone = vec![false; keys.len()];
    for (slot, key) in gone.iter_mut().zip(keys).rev() {
        if let Some(key) = key {
            *slot = !seen.insert(*key);
        }
    }
    gone
}

#[cfg(test)]
#[path = "csi_tests.rs"]
mod tests;
