//! XEP-0313 queries as a client sends them, and what came back: the
//! `<result/>` messages (counted, their ids and delay stamps noted, and
//! whether each matches the `with` asked for) and the iq result with its
//! `<fin/>` and RSM `<count/>`.

use std::time::Duration;

use crate::conn::{ClientError, Conn, timeout};
use crate::ctx::now_ns;
use crate::xml::{self, Frame};

use super::stamp;

pub const NS_MAM: &str = "urn:xmpp:mam:2";
const NS_RSM: &str = "http://jabber.org/protocol/rsm";

/// What a query asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    /// The `with` field: a bare JID (an account's archive) or a room
    /// occupant's JID (a room's).
    pub with: Option<String>,
    /// The `start` field, microseconds since the epoch.
    pub start: Option<u64>,
    /// RSM `<after>`: the page after this result id.
    pub after: Option<String>,
    /// RSM `<before/>` (empty): the last page, the newest messages.
    pub last_page: bool,
    /// RSM `<max>`; 0 asks for the count alone.
    pub max: usize,
}

/// The iq of a query with id `id` and queryid `qid` to `to` (a room), or
/// to the account's own archive when `to` is `None`.
pub fn iq(id: &str, qid: &str, to: Option<&str>, p: &Params) -> String {
    let to = to
        .map(|t| format!(" to='{}'", xml::escape(t)))
        .unwrap_or_default();
    let mut fields = String::new();
    if let Some(with) = &p.with {
        fields.push_str(&format!(
            "<field var='with'><value>{}</value></field>",
            xml::escape(with)
        ));
    }
    if let Some(start) = p.start {
        fields.push_str(&format!(
            "<field var='start'><value>{}</value></field>",
            stamp::format(start)
        ));
    }
    let form = if fields.is_empty() {
        String::new()
    } else {
        format!(
            "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>\
             <value>{NS_MAM}</value></field>{fields}</x>"
        )
    };
    let mut set = format!("<max>{}</max>", p.max);
    if let Some(after) = &p.after {
        set.push_str(&format!("<after>{}</after>", xml::escape(after)));
    }
    if p.last_page {
        set.push_str("<before/>");
    }
    format!(
        "<iq type='set' id='{id}'{to}><query xmlns='{NS_MAM}' queryid='{qid}'>{form}\
         <set xmlns='{NS_RSM}'>{set}</set></query></iq>"
    )
}

/// What came back for one query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    pub results: u64,
    /// Results whose forwarded message matches the `with` asked for.
    pub matched: u64,
    pub first_id: Option<String>,
    pub last_id: Option<String>,
    pub first_stamp: Option<u64>,
    pub last_stamp: Option<u64>,
    /// RSM `<count/>` of the `<fin/>`, when the server gave one.
    pub count: Option<u64>,
    pub complete: bool,
    /// Bytes of the result messages and the iq result.
    pub bytes: u64,
    /// From sending the iq to reading its result.
    pub latency_ns: u64,
    /// The server's error, when the iq failed.
    pub error: Option<String>,
}

/// Does the forwarded message's `from` (or, for an outgoing one, its
/// `to`) name `with`: the same JID, or a full JID of that bare JID?
fn names(jid: &[u8], with: &str) -> bool {
    let with = with.as_bytes();
    jid.eq_ignore_ascii_case(with)
        || (jid.len() > with.len()
            && jid[..with.len()].eq_ignore_ascii_case(with)
            && jid[with.len()] == b'/')
}

/// Notes one `<message><result/></message>` in `a`.
fn note_result(el: &[u8], qid: &str, with: Option<&str>, a: &mut Answer) -> bool {
    let Some(at) = xml::find_seq(b"<result", el, 0) else {
        return false;
    };
    let result = &el[at..];
    if xml::start_tag_attr(result, "queryid") != Some(qid.as_bytes()) {
        return false;
    }
    a.results += 1;
    a.bytes += el.len() as u64;
    let id = xml::start_tag_attr(result, "id").map(|v| String::from_utf8_lossy(v).into_owned());
    let stamp = xml::find_seq(b"<delay", el, at)
        .and_then(|d| xml::start_tag_attr(&el[d..], "stamp"))
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(stamp::parse);
    if a.first_id.is_none() {
        a.first_id = id.clone();
        a.first_stamp = stamp;
    }
    a.last_id = id;
    a.last_stamp = stamp;
    if let Some(with) = with
        && let Some(m) = xml::find_seq(b"<message", el, at)
    {
        let inner = &el[m..];
        let hit = ["from", "to"]
            .iter()
            .any(|k| xml::start_tag_attr(inner, k).is_some_and(|j| names(j, with)));
        if hit {
            a.matched += 1;
        }
    }
    true
}

/// Reads the number in `<name>…</name>` within `el`.
fn number_in(el: &[u8], name: &str) -> Option<u64> {
    let open = format!("<{name}>");
    let at = xml::find_seq(open.as_bytes(), el, 0)? + open.len();
    let end = xml::find_byte(b'<', el, at)?;
    std::str::from_utf8(&el[at..end]).ok()?.trim().parse().ok()
}

/// Sends the query and reads until its iq result (or error), at most
/// `step` of silence at a time.
pub async fn ask(
    conn: &mut Conn,
    seq: u64,
    to: Option<&str>,
    p: &Params,
    step: Duration,
) -> Result<Answer, ClientError> {
    let id = format!("mam{seq}");
    let qid = format!("q{seq}");
    let mut a = Answer::default();
    let with = p.with.as_deref();
    let t0 = now_ns();
    conn.send(iq(&id, &qid, to, p).as_bytes()).await?;
    loop {
        while let Some(frame) = conn.next_frame()? {
            match frame {
                Frame::Element(s, e) => {
                    let el = conn.bytes(s, e);
                    match xml::local_name(el) {
                        b"message" => {
                            note_result(el, &qid, with, &mut a);
                        }
                        b"iq" if xml::start_tag_attr(el, "id") == Some(id.as_bytes()) => {
                            a.latency_ns = now_ns() - t0;
                            a.bytes += el.len() as u64;
                            if xml::start_tag_attr(el, "type") != Some(b"result") {
                                a.error =
                                    Some(String::from_utf8_lossy(el).chars().take(300).collect());
                                return Ok(a);
                            }
                            a.count = number_in(el, "count");
                            a.complete = xml::find_seq(b"<fin", el, 0).is_some_and(|f| {
                                matches!(
                                    xml::start_tag_attr(&el[f..], "complete"),
                                    Some(b"true") | Some(b"1")
                                )
                            });
                            return Ok(a);
                        }
                        _ => {}
                    }
                }
                Frame::End => return Err(ClientError::Closed("archive query")),
                Frame::Header(..) => {}
            }
        }
        timeout(step, "archive query", conn.fill()).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_queries_and_reads_answers() {
        let q = iq(
            "mam1",
            "q1",
            Some("room@muc.localhost"),
            &Params {
                with: Some("load2@localhost".into()),
                start: Some(0),
                after: Some("abc".into()),
                last_page: true,
                max: 50,
            },
        );
        assert!(q.contains("to='room@muc.localhost'"), "{q}");
        assert!(q.contains("<field var='with'><value>load2@localhost</value></field>"));
        assert!(q.contains("<value>1970-01-01T00:00:00.000000Z</value>"));
        assert!(q.contains("<max>50</max><after>abc</after><before/>"));
        let plain = iq("mam2", "q2", None, &Params::default());
        assert!(
            !plain.contains("to=") && !plain.contains("jabber:x:data"),
            "{plain}"
        );

        let el = b"<message to='load1@localhost/mam'><result xmlns='urn:xmpp:mam:2' queryid='q1' id='X1'>\
                   <forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2026-12-06T09:30:00Z'/>\
                   <message from='load2@localhost/mam' to='load1@localhost' type='chat'><body>hi</body></message>\
                   </forwarded></result></message>";
        let mut a = Answer::default();
        assert!(note_result(el, "q1", Some("load2@localhost"), &mut a));
        assert!(!note_result(el, "q9", None, &mut a));
        assert_eq!((a.results, a.matched), (1, 1));
        assert_eq!(a.first_id.as_deref(), Some("X1"));
        assert_eq!(a.first_stamp, Some(1_796_549_400_000_000));
        let mut b = Answer::default();
        note_result(el, "q1", Some("load22@localhost"), &mut b);
        assert_eq!(b.matched, 0);
        assert!(names(b"room@muc/s1", "room@muc/s1") && !names(b"room@muc/s10", "room@muc/s1"));
        assert_eq!(
            number_in(
                b"<iq><fin xmlns='urn:xmpp:mam:2'><set><count>1234</count></set></fin></iq>",
                "count"
            ),
            Some(1234)
        );
    }
}
