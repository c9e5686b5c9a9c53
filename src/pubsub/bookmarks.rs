//! Bookmarks in both their forms: one PEP item per room (XEP-0402) and the
//! single `<storage xmlns='storage:bookmarks'>` of XEP-0048, which legacy
//! clients keep in private XML storage (XEP-0049) or in one PEP item. The
//! PEP service converts between them (XEP-0411, XEP-0402 §5.3) so that old
//! and new clients of one account see the same rooms.
//!
//! Pure conversions: no store, no notifications. A [`Bookmark`] compares
//! equal whichever form it was read from, so the caller can tell which
//! items a legacy write really changed (XEP-0402 §5.3.2: no notification
//! for unchanged items).
//!
//! Extensions: XEP-0402 keeps client-private metadata in `<extensions/>`;
//! legacy clients put theirs directly inside `<conference/>` (e.g. a
//! client's own "minimize" flag). Both are mapped onto each other, so
//! metadata survives a trip through the other form.

use std::collections::HashMap;

use crate::jid::Jid;
use crate::xml::{Element, Node};

/// The XEP-0402 PEP node, and the namespace of its `<conference/>` payloads.
pub const NS_BOOKMARKS: &str = "urn:xmpp:bookmarks:1";
/// Disco feature of a server that keeps XEP-0402 and private-XML bookmarks
/// in step (XEP-0402 §5.3).
pub const NS_BOOKMARKS_COMPAT: &str = "urn:xmpp:bookmarks:1#compat";
/// XEP-0048: the PEP node, and the namespace of `<storage/>` both there and
/// in private XML storage.
pub const NS_LEGACY: &str = "storage:bookmarks";

/// A conference whose JID, name, nick or password is longer than this (in
/// bytes) is skipped: no real room needs more, and everything read here is
/// copied into other stores and notifications.
pub const MAX_STRING_BYTES: usize = 1024;

/// At most this many `<conference/>` elements are read from one legacy
/// storage; the rest are ignored. Each becomes a PEP item, so this bounds
/// what one private-XML write can make the PEP service do.
pub const MAX_BOOKMARKS: usize = 1000;

/// One bookmarked room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bookmark {
    /// The room's bare JID, normalized (the XEP-0402 item id).
    pub room: String,
    /// The name the user gave the bookmark.
    pub name: Option<String>,
    /// Whether clients join the room at login.
    pub autojoin: bool,
    /// The user's nick in the room; never empty.
    pub nick: Option<String>,
    /// The room password; never empty.
    pub password: Option<String>,
    /// `<extensions xmlns='urn:xmpp:bookmarks:1'>` holding the element
    /// children clients must preserve; `None` rather than an empty one, and
    /// only element children (no whitespace text), so that equal bookmarks
    /// compare equal whatever form and formatting they came from.
    pub extensions: Option<Element>,
}

/// The conferences of a legacy `<storage xmlns='storage:bookmarks'>`, in
/// document order. Conferences whose `jid` is not a valid bare JID, or
/// whose strings exceed [`MAX_STRING_BYTES`], are skipped; of several
/// conferences for one room the last wins (at the position of the first).
/// Only the first [`MAX_BOOKMARKS`] conferences are read. Child elements
/// of a conference in other namespaces become its extensions.
pub fn from_legacy(storage: &Element) -> Vec<Bookmark> {
    let mut out: Vec<Bookmark> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let conferences = storage
        .children()
        .filter(|c| c.is("conference", NS_LEGACY))
        .take(MAX_BOOKMARKS);
    for conf in conferences {
        let Some(bookmark) = legacy_conference(conf) else {
            continue;
        };
        match index.get(&bookmark.room).and_then(|&i| out.get_mut(i)) {
            Some(slot) => *slot = bookmark,
            None => {
                index.insert(bookmark.room.clone(), out.len());
                out.push(bookmark);
            }
        }
    }
    out
}

/// A `<storage xmlns='storage:bookmarks'>` with one
/// `<conference jid name autojoin>` (with `<nick/>`, `<password/>` and the
/// extension elements) per bookmark, followed by `keep`: the
/// non-conference children (e.g. `<url/>`) of the storage being replaced,
/// see [`legacy_extras`]. Conferences in `keep` are dropped, since the
/// bookmarks replace them.
pub fn to_legacy(bookmarks: &[Bookmark], keep: &[Element]) -> Element {
    let mut storage = Element::new("storage", NS_LEGACY);
    for b in bookmarks {
        let mut conf = Element::new("conference", NS_LEGACY).with_attr("jid", b.room.as_str());
        if let Some(name) = &b.name {
            conf.set_attr("name", name.as_str());
        }
        if b.autojoin {
            // As in the XEP-0048 examples; absent means false.
            conf.set_attr("autojoin", "true");
        }
        push_strings(&mut conf, b, NS_LEGACY);
        if let Some(ext) = &b.extensions {
            // Elements in either bookmarks namespace would be read back as
            // bookmark fields (or not at all), so they stay out.
            for e in ext
                .children()
                .filter(|e| e.ns != NS_LEGACY && e.ns != NS_BOOKMARKS)
            {
                conf.push_child(e.clone());
            }
        }
        storage.push_child(conf);
    }
    for e in keep.iter().filter(|e| !e.is("conference", NS_LEGACY)) {
        storage.push_child(e.clone());
    }
    storage
}

/// The payload of the XEP-0402 item for `b` (whose id is `b.room`):
/// `<conference xmlns='urn:xmpp:bookmarks:1' name autojoin>` with
/// `<nick/>`, `<password/>` and `<extensions/>` when present. `autojoin`
/// is written `true` when set and left out when not, as in the XEP's
/// examples.
pub fn to_item_payload(b: &Bookmark) -> Element {
    let mut conf = Element::new("conference", NS_BOOKMARKS);
    if let Some(name) = &b.name {
        conf.set_attr("name", name.as_str());
    }
    if b.autojoin {
        conf.set_attr("autojoin", "true");
    }
    push_strings(&mut conf, b, NS_BOOKMARKS);
    if let Some(ext) = &b.extensions {
        conf.push_child(extensions_of(ext.children()));
    }
    conf
}

/// The bookmark in a XEP-0402 item; `None` if `id` is not a valid bare JID,
/// if `payload` is not a `<conference/>` in [`NS_BOOKMARKS`], or if a
/// string exceeds [`MAX_STRING_BYTES`]. The room is the normalized form of
/// `id`, which may differ from `id` itself.
pub fn from_item(id: &str, payload: &Element) -> Option<Bookmark> {
    if !payload.is("conference", NS_BOOKMARKS) {
        return None;
    }
    let mut b = conference(id, payload, NS_BOOKMARKS)?;
    b.extensions = payload
        .get_child("extensions", NS_BOOKMARKS)
        .and_then(|ext| nonempty_extensions(ext.children()));
    Some(b)
}

/// The children of a legacy storage other than its conferences (e.g.
/// `<url/>` bookmarks), to pass to [`to_legacy`] as `keep`.
pub fn legacy_extras(storage: &Element) -> Vec<Element> {
    storage
        .children()
        .filter(|c| !c.is("conference", NS_LEGACY))
        .cloned()
        .collect()
}

fn legacy_conference(conf: &Element) -> Option<Bookmark> {
    let mut b = conference(conf.attr("jid")?, conf, NS_LEGACY)?;
    // Foreign elements are a legacy client's private metadata; an
    // `<extensions/>` of XEP-0402 found here is unwrapped, so nesting never
    // grows.
    let mut foreign = Vec::new();
    for c in conf.children() {
        if c.is("extensions", NS_BOOKMARKS) {
            foreign.extend(c.children());
        } else if c.ns != NS_LEGACY {
            foreign.push(c);
        }
    }
    b.extensions = nonempty_extensions(foreign.into_iter());
    Some(b)
}

/// The fields common to both forms; `ns` is that of `<nick/>` and
/// `<password/>`. Extensions are left to the caller.
fn conference(jid: &str, conf: &Element, ns: &str) -> Option<Bookmark> {
    if jid.len() > MAX_STRING_BYTES {
        return None;
    }
    let room = Jid::parse(jid).ok().filter(Jid::is_bare)?;
    let name = conf.attr("name").map(str::to_string);
    let nick = child_text(conf, "nick", ns);
    let password = child_text(conf, "password", ns);
    let too_long = [&name, &nick, &password]
        .into_iter()
        .flatten()
        .any(|s| s.len() > MAX_STRING_BYTES);
    if too_long {
        return None;
    }
    Some(Bookmark {
        room: room.as_str().to_string(),
        name,
        autojoin: conf.attr("autojoin").is_some_and(xs_true),
        nick,
        password,
        extensions: None,
    })
}

/// An `xs:boolean` that is true (both XEPs use that type); anything else,
/// including an invalid value, is the default, false.
fn xs_true(v: &str) -> bool {
    matches!(v.trim(), "true" | "1")
}

/// The text of the first `name` child; an empty one is no value (an empty
/// nick or password cannot be used to join).
fn child_text(conf: &Element, name: &str, ns: &str) -> Option<String> {
    conf.get_child(name, ns)
        .map(Element::text)
        .filter(|t| !t.is_empty())
}

fn push_strings(conf: &mut Element, b: &Bookmark, ns: &'static str) {
    if let Some(nick) = &b.nick {
        conf.push_child(Element::new("nick", ns).with_text(nick.as_str()));
    }
    if let Some(password) = &b.password {
        conf.push_child(Element::new("password", ns).with_text(password.as_str()));
    }
}

fn extensions_of<'a>(children: impl Iterator<Item = &'a Element>) -> Element {
    let mut ext = Element::new("extensions", NS_BOOKMARKS);
    ext.children = children.cloned().map(Node::Element).collect();
    ext
}

fn nonempty_extensions<'a>(children: impl Iterator<Item = &'a Element>) -> Option<Element> {
    Some(extensions_of(children)).filter(|e| !e.children.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(s: &str) -> Element {
        match Element::parse(s) {
            Ok(e) => e,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    const LEGACY: &str = "<storage xmlns='storage:bookmarks'>\
        <conference name='Council of Oberon' autojoin='true' jid='Council@Conference.Underhill.org'>\
          <nick>Puck</nick><password>fairy</password>\
        </conference>\
        <url name='Works' url='http://the-tech.mit.edu/Shakespeare/'/>\
        <conference jid='orchard@conference.shakespeare.lit' autojoin='0'/>\
        <conference jid='theplay@conference.shakespeare.lit' name='The Play' autojoin='1'>\
          <nick>JC</nick>\
          <minimize xmlns='xmpp:example/bookmarks'>true</minimize>\
        </conference>\
      </storage>";

    #[test]
    fn legacy_fields_are_read() {
        let bookmarks = from_legacy(&el(LEGACY));
        assert_eq!(bookmarks.len(), 3);
        assert_eq!(
            bookmarks[0],
            Bookmark {
                room: "council@conference.underhill.org".into(),
                name: Some("Council of Oberon".into()),
                autojoin: true,
                nick: Some("Puck".into()),
                password: Some("fairy".into()),
                extensions: None,
            }
        );
        assert_eq!(
            bookmarks[1],
            Bookmark {
                room: "orchard@conference.shakespeare.lit".into(),
                name: None,
                autojoin: false,
                nick: None,
                password: None,
                extensions: None,
            }
        );
        assert!(bookmarks[2].autojoin);
        assert_eq!(
            bookmarks[2].extensions.as_ref().map(|e| e.to_string()),
            Some(
                "<extensions xmlns='urn:xmpp:bookmarks:1'>\
                 <minimize xmlns='xmpp:example/bookmarks'>true</minimize></extensions>"
                    .to_string()
            )
        );
    }

    #[test]
    fn legacy_to_items_to_legacy_round_trip() {
        let storage = el(LEGACY);
        let bookmarks = from_legacy(&storage);
        // Through the items, as the PEP service stores them.
        let items: Vec<(String, Element)> = bookmarks
            .iter()
            .map(|b| (b.room.clone(), to_item_payload(b)))
            .collect();
        let back: Vec<Bookmark> = items
            .iter()
            .filter_map(|(id, payload)| from_item(id, payload))
            .collect();
        assert_eq!(back, bookmarks);
        let legacy = to_legacy(&back, &legacy_extras(&storage));
        assert_eq!(from_legacy(&legacy), bookmarks);
        assert_eq!(
            legacy_extras(&legacy),
            vec![el(
                "<url xmlns='storage:bookmarks' name='Works' url='http://the-tech.mit.edu/Shakespeare/'/>"
            )]
        );
        assert_eq!(
            legacy.to_string(),
            "<storage xmlns='storage:bookmarks'>\
             <conference jid='council@conference.underhill.org' name='Council of Oberon' autojoin='true'>\
             <nick>Puck</nick><password>fairy</password></conference>\
             <conference jid='orchard@conference.shakespeare.lit'/>\
             <conference jid='theplay@conference.shakespeare.lit' name='The Play' autojoin='true'>\
             <nick>JC</nick><minimize xmlns='xmpp:example/bookmarks'>true</minimize></conference>\
             <url name='Works' url='http://the-tech.mit.edu/Shakespeare/'/></storage>"
        );
    }

    #[test]
    fn item_payload_follows_xep_0402() {
        let b = Bookmark {
            room: "orchard@conference.shakespeare.lit".into(),
            name: Some("The Orchard".into()),
            autojoin: true,
            nick: Some("JC".into()),
            password: None,
            extensions: Some(
                Element::new("extensions", NS_BOOKMARKS).with_child(
                    Element::new("state", "http://myclient.example/bookmark/state")
                        .with_attr("minimized", "true"),
                ),
            ),
        };
        let payload = to_item_payload(&b);
        assert_eq!(
            payload.to_string(),
            "<conference xmlns='urn:xmpp:bookmarks:1' name='The Orchard' autojoin='true'>\
             <nick>JC</nick><extensions>\
             <state xmlns='http://myclient.example/bookmark/state' minimized='true'/>\
             </extensions></conference>"
        );
        assert_eq!(from_item(&b.room, &payload), Some(b.clone()));
        // Items keep their extensions through the legacy form too.
        assert_eq!(
            from_legacy(&to_legacy(std::slice::from_ref(&b), &[])),
            vec![b.clone()]
        );
        let plain = Bookmark {
            autojoin: false,
            extensions: None,
            ..b
        };
        assert_eq!(
            to_item_payload(&plain).to_string(),
            "<conference xmlns='urn:xmpp:bookmarks:1' name='The Orchard'><nick>JC</nick></conference>"
        );
    }

    #[test]
    fn items_are_parsed_leniently_and_normalized() {
        let payload = el(
            "<conference xmlns='urn:xmpp:bookmarks:1' name='X' autojoin=' 1 ' foo='bar'>\n\
                            <nick></nick>\n\
                            <extensions>\n  <a xmlns='urn:a'/>\n</extensions>\n\
                          </conference>",
        );
        let b = from_item("Room@Example.COM", &payload);
        assert_eq!(
            b,
            Some(Bookmark {
                room: "room@example.com".into(),
                name: Some("X".into()),
                autojoin: true,
                nick: None,
                password: None,
                extensions: Some(
                    Element::new("extensions", NS_BOOKMARKS).with_child(Element::new("a", "urn:a"))
                ),
            })
        );
        // Unknown attributes are not carried over.
        let out = b.map(|b| to_item_payload(&b));
        assert_eq!(out.and_then(|p| p.attr("foo").map(str::to_string)), None);
        let empty_ext =
            el("<conference xmlns='urn:xmpp:bookmarks:1'><extensions> </extensions></conference>");
        assert_eq!(
            from_item("a@b", &empty_ext).map(|b| b.extensions),
            Some(None)
        );
        assert_eq!(
            from_item(
                "a@b",
                &el("<conference xmlns='urn:xmpp:bookmarks:1' autojoin='yes'/>")
            )
            .map(|b| b.autojoin),
            Some(false)
        );
    }

    #[test]
    fn invalid_items_are_refused() {
        let ok = el("<conference xmlns='urn:xmpp:bookmarks:1'/>");
        assert!(from_item("room@muc.example", &ok).is_some());
        for id in [
            "",
            "room@muc.example/nick",
            "@muc.example",
            "a@b@c",
            "room@",
        ] {
            assert_eq!(from_item(id, &ok), None, "{id}");
        }
        for payload in [
            "<conference xmlns='storage:bookmarks'/>",
            "<storage xmlns='urn:xmpp:bookmarks:1'/>",
        ] {
            assert_eq!(
                from_item("room@muc.example", &el(payload)),
                None,
                "{payload}"
            );
        }
        let long = "n".repeat(MAX_STRING_BYTES + 1);
        let payload = Element::new("conference", NS_BOOKMARKS)
            .with_child(Element::new("nick", NS_BOOKMARKS).with_text(long.as_str()));
        assert_eq!(from_item("room@muc.example", &payload), None);
    }

    #[test]
    fn invalid_legacy_conferences_are_skipped() {
        let long = "x".repeat(MAX_STRING_BYTES + 1);
        let storage = el(&format!(
            "<storage xmlns='storage:bookmarks'>\
               <conference name='no jid'/>\
               <conference jid=''/>\
               <conference jid='room@muc.example/resource'/>\
               <conference jid='a@b@c'/>\
               <conference jid='bad user@x'/>\
               <conference jid='long@muc.example' name='{long}'/>\
               <conference jid='room@muc.example' name='first'/>\
               <conference xmlns='urn:other' jid='other@muc.example'/>\
               <conference jid='Room@MUC.example' name='second'/>\
               <conference jid='next@muc.example'/>\
             </storage>"
        ));
        let bookmarks = from_legacy(&storage);
        let rooms: Vec<(&str, Option<&str>)> = bookmarks
            .iter()
            .map(|b| (b.room.as_str(), b.name.as_deref()))
            .collect();
        assert_eq!(
            rooms,
            vec![
                ("room@muc.example", Some("second")),
                ("next@muc.example", None)
            ]
        );
        // The foreign conference is not ours to drop.
        assert_eq!(legacy_extras(&storage).len(), 1);
    }

    #[test]
    fn legacy_reading_is_bounded() {
        let mut storage = Element::new("storage", NS_LEGACY);
        for i in 0..MAX_BOOKMARKS + 5 {
            storage.push_child(
                Element::new("conference", NS_LEGACY).with_attr("jid", format!("r{i}@muc.example")),
            );
        }
        assert_eq!(from_legacy(&storage).len(), MAX_BOOKMARKS);
    }

    #[test]
    fn legacy_write_drops_stale_conferences_from_keep() {
        let keep = [
            el("<conference xmlns='storage:bookmarks' jid='old@muc.example'/>"),
            el("<url xmlns='storage:bookmarks' url='https://example.org/'/>"),
        ];
        let storage = to_legacy(&[], &keep);
        assert_eq!(
            storage.to_string(),
            "<storage xmlns='storage:bookmarks'><url url='https://example.org/'/></storage>"
        );
    }
}
