//! The stanzas of the crash loop's writes and checks, and reading their
//! answers: roster (RFC 6121), vCard (XEP-0054), private XML (XEP-0049),
//! MUC owner and admin (XEP-0045) and offline messages.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::conn::{ClientError, Conn, timeout};
use crate::xml;

pub const NS_ROSTER: &str = "jabber:iq:roster";
pub const NS_VCARD: &str = "vcard-temp";
pub const NS_PRIVATE: &str = "jabber:iq:private";
pub const NS_MUC: &str = "http://jabber.org/protocol/muc";
pub const NS_MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
pub const NS_MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
const NS_DATA: &str = "jabber:x:data";
const ROOMCONFIG: &str = "http://jabber.org/protocol/muc#roomconfig";
const ROOMNAME: &str = "muc#roomconfig_roomname";

/// The namespace of private XML slot `n` (each slot is one element).
pub fn private_ns(slot: u32) -> String {
    format!("perch-load:crash:{slot}")
}

pub fn roster_set(id: &str, contact: &str, remove: bool) -> String {
    let extra = if remove { " subscription='remove'" } else { "" };
    format!(
        "<iq type='set' id='{id}'><query xmlns='{NS_ROSTER}'><item jid='{}'{extra}/></query></iq>",
        xml::escape(contact)
    )
}

pub fn vcard_set(id: &str, nickname: &str) -> String {
    format!(
        "<iq type='set' id='{id}'><vCard xmlns='{NS_VCARD}'><NICKNAME>{}</NICKNAME></vCard></iq>",
        xml::escape(nickname)
    )
}

pub fn private_set(id: &str, slot: u32, text: &str) -> String {
    format!(
        "<iq type='set' id='{id}'><query xmlns='{NS_PRIVATE}'><slot xmlns='{}'>{}</slot></query></iq>",
        private_ns(slot),
        xml::escape(text)
    )
}

pub fn join(room: &str, nick: &str) -> String {
    format!(
        "<presence to='{}/{}'><x xmlns='{NS_MUC}'><history maxstanzas='0'/></x></presence>",
        xml::escape(room),
        xml::escape(nick)
    )
}

/// A room configuration form: the name, and with `persistent` the flag
/// that keeps the room when its last occupant leaves (and across restarts).
pub fn room_config_set(id: &str, room: &str, name: &str, persistent: bool) -> String {
    let keep = if persistent {
        "<field var='muc#roomconfig_persistentroom'><value>1</value></field>"
    } else {
        ""
    };
    format!(
        "<iq type='set' id='{id}' to='{}'><query xmlns='{NS_MUC_OWNER}'>\
         <x xmlns='{NS_DATA}' type='submit'>\
         <field var='FORM_TYPE'><value>{ROOMCONFIG}</value></field>{keep}\
         <field var='{ROOMNAME}'><value>{}</value></field></x></query></iq>",
        xml::escape(room),
        xml::escape(name)
    )
}

pub fn affiliation_set(id: &str, room: &str, member: &str, affiliation: &str) -> String {
    format!(
        "<iq type='set' id='{id}' to='{}'><query xmlns='{NS_MUC_ADMIN}'>\
         <item affiliation='{affiliation}' jid='{}'/></query></iq>",
        xml::escape(room),
        xml::escape(member)
    )
}

pub fn roster_get(id: &str) -> String {
    format!("<iq type='get' id='{id}'><query xmlns='{NS_ROSTER}'/></iq>")
}

pub fn vcard_get(id: &str) -> String {
    format!("<iq type='get' id='{id}'><vCard xmlns='{NS_VCARD}'/></iq>")
}

pub fn private_get(id: &str, slot: u32) -> String {
    format!(
        "<iq type='get' id='{id}'><query xmlns='{NS_PRIVATE}'><slot xmlns='{}'/></query></iq>",
        private_ns(slot)
    )
}

pub fn room_config_get(id: &str, room: &str) -> String {
    format!(
        "<iq type='get' id='{id}' to='{}'><query xmlns='{NS_MUC_OWNER}'/></iq>",
        xml::escape(room)
    )
}

pub fn members_get(id: &str, room: &str) -> String {
    format!(
        "<iq type='get' id='{id}' to='{}'><query xmlns='{NS_MUC_ADMIN}'><item affiliation='member'/></query></iq>",
        xml::escape(room)
    )
}

pub fn ping(id: &str, domain: &str) -> String {
    format!(
        "<iq type='get' id='{id}' to='{}'><ping xmlns='urn:xmpp:ping'/></iq>",
        xml::escape(domain)
    )
}

pub fn chat(to: &str, id: &str, body: &str) -> String {
    format!(
        "<message type='chat' to='{}' id='{id}'><body>{}</body></message>",
        xml::escape(to),
        xml::escape(body)
    )
}

pub fn is_result(iq: &[u8]) -> bool {
    xml::start_tag_attr(iq, "type") == Some(b"result")
}

/// The iq answering `id`, within `limit`.
pub async fn answer(conn: &mut Conn, id: &str, limit: Duration) -> Result<Vec<u8>, ClientError> {
    timeout(limit, "iq result", conn.await_iq(id)).await
}

/// Waits for our own presence in `room` (status 110); `Ok(false)` if the
/// room answered with an error.
pub async fn await_self_presence(
    conn: &mut Conn,
    room: &str,
    nick: &str,
    limit: Duration,
) -> Result<bool, ClientError> {
    timeout(limit, "room join", async {
        loop {
            let el = conn.next_element().await?;
            if xml::local_name(&el) != b"presence" {
                continue;
            }
            let from = xml::start_tag_attr(&el, "from").unwrap_or_default();
            let from = String::from_utf8_lossy(from);
            let (bare, resource) = from.split_once('/').unwrap_or((&from, ""));
            if !bare.eq_ignore_ascii_case(room) {
                continue;
            }
            if xml::start_tag_attr(&el, "type") == Some(b"error") {
                return Ok(false);
            }
            let own = xml::find_seq(b"code='110'", &el, 0).is_some()
                || xml::find_seq(b"code=\"110\"", &el, 0).is_some();
            if own && resource == nick {
                return Ok(true);
            }
        }
    })
    .await
}

/// Bare JIDs of the items of a roster result.
pub fn roster_items(iq: &[u8]) -> Result<BTreeSet<String>, ClientError> {
    Ok(xml::with_parsed(iq, |n| {
        n.descendants()
            .filter(|c| {
                c.tag_name().name() == "item" && c.tag_name().namespace() == Some(NS_ROSTER)
            })
            .filter_map(|c| c.attribute("jid").map(str::to_lowercase))
            .collect()
    })?)
}

/// The text of the first element named `name` in namespace `ns` anywhere
/// in a result; `None` for an error, or when it is absent or empty.
pub fn text_of(iq: &[u8], name: &str, ns: &str) -> Result<Option<String>, ClientError> {
    if !is_result(iq) {
        return Ok(None);
    }
    Ok(xml::with_parsed(iq, |n| {
        n.descendants()
            .find(|c| c.tag_name().name() == name && c.tag_name().namespace() == Some(ns))
            .and_then(|c| c.text())
            .map(str::to_string)
            .filter(|t| !t.is_empty())
    })?)
}

/// A room's name from its configuration form; `None` when the room
/// answered with an error (it does not exist).
pub fn room_name(iq: &[u8]) -> Result<Option<String>, ClientError> {
    if !is_result(iq) {
        return Ok(None);
    }
    Ok(xml::with_parsed(iq, |n| {
        n.descendants()
            .find(|c| c.tag_name().name() == "field" && c.attribute("var") == Some(ROOMNAME))
            .and_then(|f| f.children().find(|v| v.tag_name().name() == "value"))
            .map(|v| v.text().unwrap_or("").to_string())
    })?
    .or(Some(String::new())))
}

/// The member JIDs of a member-list result (empty for an error).
pub fn members(iq: &[u8]) -> Result<BTreeSet<String>, ClientError> {
    if !is_result(iq) {
        return Ok(BTreeSet::new());
    }
    Ok(xml::with_parsed(iq, |n| {
        n.descendants()
            .filter(|c| {
                c.tag_name().name() == "item" && c.attribute("affiliation") == Some("member")
            })
            .filter_map(|c| c.attribute("jid").map(str::to_lowercase))
            .collect()
    })?)
}

/// The error condition of an iq error, for reports.
pub fn error_condition(iq: &[u8]) -> String {
    xml::with_parsed(iq, |n| {
        n.descendants()
            .find(|c| c.tag_name().name() == "error")
            .and_then(|e| e.children().find(|c| c.is_element()))
            .map(|c| c.tag_name().name().to_string())
    })
    .ok()
    .flatten()
    .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read() {
        let roster = b"<iq type='result' id='r'><query xmlns='jabber:iq:roster'>\
            <item jid='A@localhost' subscription='none'/><item jid='b@localhost'/></query></iq>";
        let items = roster_items(roster).expect("parses");
        assert!(items.contains("a@localhost") && items.contains("b@localhost"));
        let vcard = b"<iq type='result' id='v'><vCard xmlns='vcard-temp'><NICKNAME>t7</NICKNAME></vCard></iq>";
        assert_eq!(
            text_of(vcard, "NICKNAME", NS_VCARD)
                .expect("parses")
                .as_deref(),
            Some("t7")
        );
        let empty = b"<iq type='result' id='v'><vCard xmlns='vcard-temp'/></iq>";
        assert_eq!(text_of(empty, "NICKNAME", NS_VCARD).expect("parses"), None);
        let error = b"<iq type='error' id='v'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>";
        assert_eq!(text_of(error, "NICKNAME", NS_VCARD).expect("parses"), None);
        assert_eq!(room_name(error).expect("parses"), None);
        assert_eq!(error_condition(error), "item-not-found");
        let form = b"<iq type='result' id='c'><query xmlns='http://jabber.org/protocol/muc#owner'>\
            <x xmlns='jabber:x:data' type='form'><field var='muc#roomconfig_roomname' type='text-single'>\
            <value>t9</value></field></x></query></iq>";
        assert_eq!(room_name(form).expect("parses").as_deref(), Some("t9"));
        let list = b"<iq type='result' id='m'><query xmlns='http://jabber.org/protocol/muc#admin'>\
            <item affiliation='member' jid='m1@localhost'/><item affiliation='owner' jid='o@localhost'/></query></iq>";
        let m = members(list).expect("parses");
        assert_eq!(m.len(), 1);
        assert!(m.contains("m1@localhost"));
        let set = room_config_set("i", "r@conference.localhost", "n<1>", true);
        assert!(set.contains("persistentroom") && set.contains("n&lt;1&gt;"));
        assert!(!room_config_set("i", "r@c", "n", false).contains("persistentroom"));
    }
}
