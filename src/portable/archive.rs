//! The message archive family: an account's XEP-0313 archive, as
//! XEP-0227's "Message Archive" section writes it: one `<archive
//! xmlns='urn:xmpp:pie:0#mam'/>` child of `<user/>` holding the messages
//! from the oldest to the newest, each as a MAM result:
//!
//! ```xml
//! <archive xmlns='urn:xmpp:pie:0#mam'>
//!   <result xmlns='urn:xmpp:mam:2' id='AAYp…'>
//!     <forwarded xmlns='urn:xmpp:forward:0'>
//!       <delay xmlns='urn:xmpp:delay' stamp='2026-11-21T10:00:00.123456Z'/>
//!       <message xmlns='jabber:client' from='…' to='…' type='chat'>…</message>
//!     </forwarded>
//!   </result>
//! </archive>
//! ```
//!
//! Export writes every message of the account's archive with the id
//! clients know it by and its stamp to the microsecond (so a round trip
//! keeps the order of messages within one second). Rooms' archives are not
//! exported: XEP-0227 has no place for rooms.
//!
//! Import appends the messages to the new account's archive under the
//! stamps of their `<delay/>`s (any fraction of a second is kept to the
//! microsecond). The ids change: an id is derived from this server's
//! secret and the stamp (`crate::archive::ids`), so the importing server
//! gives every message an id of its own, and stanza ids claiming to be the
//! account's are removed from the messages. Stamps must be unique in an
//! archive: a stamp already taken moves to 1 µs after the newest one taken
//! (for results in chronological order, as the XEP requires, that is 1 µs
//! after the message before it); a stamp later than the import is brought
//! back to the time of the import, so that no imported message pushes the
//! archive's clock into the future. Whether the account sent a message
//! (and who it was exchanged with, what the archive's index and `with`
//! queries use) comes from its addresses: the account's own `from` (or no
//! `from` and someone else's `to`) means it sent it to `to`, anything
//! else that it received it from `from`. A result that is not usable (not
//! a MAM result, no `<forwarded/>` message, no valid stamp, no
//! correspondent) is passed over and counted in the report; the others are
//! imported.
//!
//! Like offline messages and private XML, an imported archive is bounded
//! by the import's own limits (the size of each file, the depth of its
//! elements), not by per-account ones: the operator moves what the old
//! server kept. The retention settings apply to it afterwards like to any
//! archive: `perch archive expire --dry-run` shows what the next cleanup
//! removes (messages older than `[archive] expires`, the oldest beyond
//! `max_mib_per_account`).

use std::collections::BTreeSet;
use std::time::SystemTime;

use crate::archive::ids::{self, ArchiveIds};
use crate::archive::page::parse_stored;
use crate::archive::{NS_FORWARD, NS_MAM, policy};
use crate::datetime::{format_utc, parse_utc};
use crate::im::delay::NS_DELAY;
use crate::jid::Jid;
use crate::store::StoreError;
use crate::store::archive::{self, ArchiveRecord, Kind, OUTGOING, Scan};
use crate::xml::{Element, NS_CLIENT};

use super::{Family, ImportWrite, PortableError, Source};

/// The namespace of XEP-0227's `<archive/>`.
pub const NS_PIE_MAM: &str = "urn:xmpp:pie:0#mam";

/// Messages read from the store at once on export.
const EXPORT_PAGE: usize = 1_000;

pub struct ArchiveFamily;

/// A stamp as XEP-0082 writes it, with the fraction of a second to the
/// microsecond when there is one.
pub fn stamp_text(stamp: u64) -> String {
    let whole = format_utc(ids::time_of(stamp), false);
    match stamp % 1_000_000 {
        0 => whole,
        micros => format!("{}.{micros:06}Z", whole.trim_end_matches('Z')),
    }
}

/// The stamp (microseconds since the epoch) a XEP-0082 DateTime names,
/// with its fraction of a second to the microsecond (further digits are
/// dropped); `None` for anything else or a time before 1970.
pub fn parse_stamp(text: &str) -> Option<u64> {
    // `CCYY-MM-DDThh:mm:ss` is 19 ASCII characters; what follows is an
    // optional fraction, then the zone.
    let head = text.get(..19)?;
    let rest = text.get(19..)?;
    let (micros, zone) = match rest.strip_prefix('.') {
        Some(fraction) => {
            let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            let micros = fraction
                .bytes()
                .take(digits)
                .chain(std::iter::repeat(b'0'))
                .take(6)
                .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
            (micros, fraction.get(digits..)?)
        }
        None => (0, rest),
    };
    let whole = parse_utc(&format!("{head}{zone}"))?;
    ids::micros(whole).checked_add(micros)
}

/// The bare JID in an address attribute of `message`, if it is one.
fn bare_attr(message: &Element, name: &str) -> Option<Jid> {
    message
        .attr(name)
        .and_then(|a| Jid::parse(a).ok())
        .map(|j| j.to_bare())
}

/// The record one result of a file stands for (its stamp as written: it is
/// settled once all are read), or why it cannot be imported.
fn record_of(user: &Jid, result: &Element) -> Result<ArchiveRecord, String> {
    if !result.is("result", NS_MAM) {
        return Err(format!("<{}/> is not a MAM <result/>", result.name));
    }
    let forwarded = result
        .get_child("forwarded", NS_FORWARD)
        .ok_or("no <forwarded/>")?;
    let stamp = forwarded
        .get_child("delay", NS_DELAY)
        .and_then(|d| d.attr("stamp"))
        .ok_or("no <delay/> stamp")?;
    let stamp = parse_stamp(stamp).ok_or_else(|| format!("stamp {stamp:?} is not a date"))?;
    let message = forwarded
        .get_child("message", NS_CLIENT)
        .ok_or("no <message xmlns='jabber:client'/>")?;
    let from = bare_attr(message, "from");
    let to = bare_attr(message, "to");
    let outgoing = match (&from, &to) {
        (Some(from), _) => from == user,
        (None, Some(to)) => to != user,
        (None, None) => false,
    };
    let peer = if outgoing { to } else { from }.ok_or("no correspondent in from or to")?;
    let mut message = message.clone();
    // The ids this account gave are no longer valid here; new ones are
    // derived from the stamps.
    policy::strip_ids_by(&mut message, user);
    Ok(ArchiveRecord {
        stamp,
        flags: if outgoing { OUTGOING } else { 0 },
        index: peer.as_str().to_string(),
        extra: String::new(),
        xml: message.to_bytes(NS_CLIENT),
    })
}

/// Settles the stamps of `records` (in file order): unique, and none
/// after `now`. Returns how many were brought back from the future.
fn settle_stamps(records: &mut [ArchiveRecord], now: u64) -> usize {
    let mut taken = BTreeSet::new();
    let mut newest = 0u64;
    let mut from_future = 0;
    for record in records {
        if record.stamp > now {
            record.stamp = now;
            from_future += 1;
        }
        if taken.contains(&record.stamp) {
            // Nothing is taken after the newest. (No overflow: stamps
            // stop near the import's time.)
            record.stamp = newest.saturating_add(1);
        }
        taken.insert(record.stamp);
        newest = newest.max(record.stamp);
    }
    from_future
}

impl Family for ArchiveFamily {
    fn name(&self) -> &'static str {
        "message archive"
    }

    fn export_user(
        &self,
        source: &Source<'_>,
        user: &Jid,
        element: &mut Element,
    ) -> Result<(), PortableError> {
        let store = source.store;
        let owner = user.as_str();
        if archive::stats(store, Kind::User, owner)?.count == 0 {
            return Ok(());
        }
        let ids = ArchiveIds::new(&store.secret("archive-ids")?, 0);
        let mut wrapper = Element::new("archive", NS_PIE_MAM);
        let mut lo = 0;
        loop {
            let scan = Scan {
                lo,
                hi: u64::MAX,
                with: None,
                descending: false,
                limit: EXPORT_PAGE,
            };
            let (records, more) = archive::scan(store, Kind::User, owner, &scan, &|_| true)?;
            for record in &records {
                let message = parse_stored(&record.xml).ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "the archived message of {owner} stamped {} is not XML",
                        record.stamp
                    ))
                })?;
                let delay =
                    Element::new("delay", NS_DELAY).with_attr("stamp", stamp_text(record.stamp));
                let result = Element::new("result", NS_MAM)
                    .with_attr("id", ids.id(owner, record.stamp))
                    .with_child(
                        Element::new("forwarded", NS_FORWARD)
                            .with_child(delay)
                            .with_child(message),
                    );
                // One result per line, indented under <user/>'s children.
                wrapper.push_text("\n        ");
                wrapper.push_child(result);
            }
            match records.last().and_then(|r| r.stamp.checked_add(1)) {
                Some(next) if more => lo = next,
                _ => break,
            }
        }
        wrapper.push_text("\n      ");
        element.push_child(wrapper);
        Ok(())
    }

    fn claims(&self, child: &Element) -> bool {
        child.is("archive", NS_PIE_MAM)
    }

    fn import_user(
        &self,
        user: &Jid,
        element: &Element,
        notices: &mut Vec<String>,
    ) -> Result<Option<ImportWrite>, PortableError> {
        let mut records = Vec::new();
        let mut unusable = 0usize;
        let mut first_problem = None;
        for wrapper in element.children().filter(|c| self.claims(c)) {
            for result in wrapper.children() {
                match record_of(user, result) {
                    Ok(record) => records.push(record),
                    Err(why) => {
                        unusable += 1;
                        first_problem.get_or_insert_with(|| match result.attr("id") {
                            Some(id) => format!("result {id:?}: {why}"),
                            None => why,
                        });
                    }
                }
            }
        }
        if let Some(first) = first_problem {
            notices.push(format!(
                "{user}: {unusable} archived message{} not imported (the first: {first})",
                if unusable == 1 { "" } else { "s" }
            ));
        }
        let from_future = settle_stamps(&mut records, ids::micros(SystemTime::now()));
        if from_future > 0 {
            notices.push(format!(
                "{user}: {from_future} archived message{} stamped later than now, stored as of now",
                if from_future == 1 { "" } else { "s" }
            ));
        }
        if records.is_empty() {
            return Ok(None);
        }
        let owner = user.as_str().to_string();
        Ok(Some(Box::new(move |txn| {
            for record in &records {
                archive::append(txn, Kind::User, &owner, record)?;
            }
            Ok(())
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Jid {
        Jid::parse("juliet@capulet.lit").expect("jid")
    }

    fn result(stamp: &str, from: &str, to: &str) -> Element {
        Element::parse(&format!(
            "<result xmlns='urn:xmpp:mam:2' id='x'><forwarded xmlns='urn:xmpp:forward:0'>\
             <delay xmlns='urn:xmpp:delay' stamp='{stamp}'/>\
             <message xmlns='jabber:client' {from} {to} type='chat'><body>hi</body>\
             <stanza-id xmlns='urn:xmpp:sid:0' by='juliet@capulet.lit' id='old'/>\
             <stanza-id xmlns='urn:xmpp:sid:0' by='room@muc.lit' id='theirs'/>\
             </message></forwarded></result>"
        ))
        .expect("xml")
    }

    #[test]
    fn stamps_keep_microseconds() {
        for stamp in [0, 1, 999_999, 1_700_000_000_000_000, 1_700_000_000_123_456] {
            assert_eq!(parse_stamp(&stamp_text(stamp)), Some(stamp), "{stamp}");
        }
        assert_eq!(stamp_text(1_700_000_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(
            stamp_text(1_700_000_000_000_050),
            "2023-11-14T22:13:20.000050Z"
        );
        let base = 1_700_000_000_000_000;
        assert_eq!(parse_stamp("2023-11-14T22:13:20.5Z"), Some(base + 500_000));
        assert_eq!(
            parse_stamp("2023-11-14T22:13:20.123456789Z"),
            Some(base + 123_456)
        );
        assert_eq!(
            parse_stamp("2023-11-14T23:13:20.25+01:00"),
            Some(base + 250_000)
        );
        for bad in [
            "",
            "2023-11-14",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20.5",
            "2023-11-14T22:13:20Zjunk",
            "1969-12-31T23:59:59Z",
            "2023-11-14T22:13:2é",
        ] {
            assert_eq!(parse_stamp(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn direction_and_correspondent_come_from_the_addresses() {
        let juliet = user();
        let sent = record_of(
            &juliet,
            &result(
                "2023-11-14T22:13:20Z",
                "from='juliet@capulet.lit/balcony'",
                "to='romeo@montague.lit/orchard'",
            ),
        )
        .expect("usable");
        assert_eq!(sent.flags, OUTGOING);
        assert_eq!(sent.index, "romeo@montague.lit");
        let xml = String::from_utf8(sent.xml).expect("utf8");
        assert!(!xml.contains("'old'") && !xml.contains("\"old\""), "{xml}");
        assert!(xml.contains("theirs"), "{xml}");
        let received = record_of(
            &juliet,
            &result(
                "2023-11-14T22:13:20Z",
                "from='Romeo@montague.lit/orchard'",
                "to='juliet@capulet.lit'",
            ),
        )
        .expect("usable");
        assert_eq!(
            (received.flags, received.index.as_str()),
            (0, "romeo@montague.lit")
        );
        // Without from, the account sent it.
        let bare = record_of(
            &juliet,
            &result("2023-11-14T22:13:20Z", "", "to='nurse@capulet.lit'"),
        )
        .expect("usable");
        assert_eq!(
            (bare.flags, bare.index.as_str()),
            (OUTGOING, "nurse@capulet.lit")
        );
        for (stamp, from, to) in [
            ("yesterday", "from='a@b'", "to='juliet@capulet.lit'"),
            ("2023-11-14T22:13:20Z", "", ""),
            ("2023-11-14T22:13:20Z", "from='juliet@capulet.lit'", ""),
        ] {
            assert!(record_of(&juliet, &result(stamp, from, to)).is_err());
        }
        let not_mam = Element::parse("<result xmlns='urn:xmpp:mam:1'/>").expect("xml");
        assert!(record_of(&juliet, &not_mam).is_err());
    }

    #[test]
    fn colliding_and_future_stamps_are_settled() {
        let record = |stamp| ArchiveRecord {
            stamp,
            flags: 0,
            index: "a@b".into(),
            extra: String::new(),
            xml: Vec::new(),
        };
        let mut records: Vec<ArchiveRecord> = [10, 10, 10, 11, 5, 10, 99, 500]
            .into_iter()
            .map(record)
            .collect();
        assert_eq!(settle_stamps(&mut records, 100), 1);
        let stamps: Vec<u64> = records.iter().map(|r| r.stamp).collect();
        assert_eq!(stamps, [10, 11, 12, 13, 5, 14, 99, 100]);
    }

    #[test]
    fn unusable_results_are_counted_and_the_rest_imported() {
        let juliet = user();
        let mut archive = Element::new("archive", NS_PIE_MAM);
        archive.push_child(result(
            "2023-11-14T22:13:20Z",
            "from='romeo@montague.lit'",
            "to='juliet@capulet.lit'",
        ));
        archive.push_child(result("never", "from='romeo@montague.lit'", ""));
        archive.push_child(Element::new("junk", "urn:example"));
        let user_element = Element::new("user", super::super::NS_PIE).with_child(archive);
        let mut notices = Vec::new();
        let write = ArchiveFamily
            .import_user(&juliet, &user_element, &mut notices)
            .expect("imported");
        assert!(write.is_some());
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert!(
            notices[0].starts_with(
                "juliet@capulet.lit: 2 archived messages not imported (the first: result \"x\": stamp \"never\""
            ),
            "{notices:?}"
        );
    }

    /// Export, then import into a fresh database: every message, in order,
    /// with its stamp to the microsecond, direction and correspondent;
    /// under new ids; rooms' archives stay behind.
    #[test]
    fn round_trip_keeps_every_message() {
        use crate::portable::{export, import};
        use crate::store::Store;
        let dir = crate::testing::TempDir::new("portable-archive-rt");
        let source = Store::open(&dir.path().join("a.redb"), 1 << 20).expect("open");
        for who in ["juliet@capulet.lit", "romeo@montague.lit"] {
            let c = crate::sasl::Credentials::derive("pw", 4096).expect("derive");
            smol::block_on(source.accounts().create(who, &c)).expect("create");
        }
        let second = 1_700_000_000_000_000u64;
        // Two messages in one second, one a microsecond later, one on the
        // second: the order needs the microseconds.
        let messages = [
            (second + 250_000, true, "romeo@montague.lit", "I sent this"),
            (second + 250_001, false, "romeo@montague.lit", "Romeo wrote"),
            (second + 900_000, false, "nurse@capulet.lit", "Madam!"),
            (
                second + 5_000_000,
                true,
                "nurse@capulet.lit",
                "Anon & <soon>",
            ),
        ];
        for &(stamp, outgoing, peer, body) in &messages {
            let (from, to) = if outgoing {
                ("juliet@capulet.lit/balcony", peer)
            } else {
                (peer, "juliet@capulet.lit")
            };
            let message = Element::new("message", NS_CLIENT)
                .with_attr("from", from)
                .with_attr("to", to)
                .with_attr("type", "chat")
                .with_child(Element::new("body", NS_CLIENT).with_text(body));
            let record = ArchiveRecord {
                stamp,
                flags: if outgoing { OUTGOING } else { 0 },
                index: peer.to_string(),
                extra: String::new(),
                xml: message.to_bytes(NS_CLIENT),
            };
            source
                .write_now(archive::append_op(Kind::User, "juliet@capulet.lit", record))
                .expect("append");
        }
        let room = ArchiveRecord {
            stamp: second,
            flags: 0,
            index: "nick".into(),
            extra: String::new(),
            xml: b"<message type='groupchat'><body>room talk</body></message>".to_vec(),
        };
        source
            .write_now(archive::append_op(
                Kind::Room,
                "hall@rooms.capulet.lit",
                room,
            ))
            .expect("room");

        let out = dir.path().join("export");
        export(&source, &out).expect("export");
        let file = std::fs::read_to_string(out.join("juliet@capulet.lit.xml")).expect("read");
        assert!(file.contains("urn:xmpp:pie:0#mam"), "{file}");
        assert!(file.contains("2023-11-14T22:13:20.250001Z"), "{file}");
        assert!(file.contains("2023-11-14T22:13:25Z"), "{file}");
        assert!(!file.contains("room talk"), "rooms are not exported");
        let romeo = std::fs::read_to_string(out.join("romeo@montague.lit.xml")).expect("read");
        assert!(
            !romeo.contains("archive"),
            "no archive, no element: {romeo}"
        );

        let target = Store::open(&dir.path().join("b.redb"), 1 << 20).expect("open");
        let hosts = ["capulet.lit".to_string(), "montague.lit".to_string()];
        let report = import(&target, &out, &hosts).expect("import");
        assert_eq!(report.imported.len(), 2, "{:?}", report.lines());
        assert!(
            report.notices.is_empty() && report.not_imported.is_empty(),
            "{:?}",
            report.lines()
        );
        let all = |store: &Store| {
            let scan = Scan {
                lo: 0,
                hi: u64::MAX,
                with: None,
                descending: false,
                limit: 100,
            };
            archive::scan(store, Kind::User, "juliet@capulet.lit", &scan, &|_| true)
                .expect("scan")
                .0
        };
        let (before, after) = (all(&source), all(&target));
        assert_eq!(after.len(), messages.len());
        for (a, b) in before.iter().zip(&after) {
            assert_eq!(
                (a.stamp, a.flags, &a.index, &a.extra),
                (b.stamp, b.flags, &b.index, &b.extra)
            );
            assert_eq!(parse_stored(&a.xml), parse_stored(&b.xml));
        }
        let stats =
            |store: &Store| archive::stats(store, Kind::User, "juliet@capulet.lit").expect("stats");
        assert_eq!(stats(&source), stats(&target), "the totals add up");
        // The index by correspondent works on what was imported.
        let with_nurse = Scan {
            lo: 0,
            hi: u64::MAX,
            with: Some("nurse@capulet.lit"),
            descending: false,
            limit: 10,
        };
        let (nurse, _) = archive::scan(
            &target,
            Kind::User,
            "juliet@capulet.lit",
            &with_nurse,
            &|_| true,
        )
        .expect("scan");
        assert_eq!(nurse.len(), 2);
        assert_eq!(
            archive::stats(&target, Kind::Room, "hall@rooms.capulet.lit")
                .expect("stats")
                .count,
            0
        );
        // The ids are the importing server's.
        let out2 = dir.path().join("export2");
        export(&target, &out2).expect("export again");
        let again = std::fs::read_to_string(out2.join("juliet@capulet.lit.xml")).expect("read");
        let ids_of = |text: &str| -> Vec<String> {
            let doc =
                Element::parse(text.trim_start_matches("<?xml version='1.0' encoding='UTF-8'?>\n"))
                    .expect("xml");
            let user = doc
                .first_child()
                .and_then(|host| host.first_child())
                .expect("user");
            user.get_child("archive", NS_PIE_MAM)
                .expect("archive")
                .children()
                .map(|r| r.attr("id").unwrap_or_default().to_string())
                .collect()
        };
        let (ids1, ids2) = (ids_of(&file), ids_of(&again));
        assert_eq!(ids1.len(), 4);
        assert!(
            ids1.iter().zip(&ids2).all(|(a, b)| a != b),
            "{ids1:?} {ids2:?}"
        );
    }

    /// The example of XEP-0227's "Message Archive", as Prosody writes it:
    /// stamps to the second, the account's side in `to` or `from`.
    #[test]
    fn the_xep_example_imports() {
        use crate::portable::import;
        use crate::store::Store;
        let dir = crate::testing::TempDir::new("portable-archive-xep");
        let input = dir.path().join("in");
        std::fs::create_dir_all(&input).expect("mkdir");
        let result = |id: &str, stamp: &str, from: &str, to: &str, body: &str| {
            format!(
                "<result xmlns='urn:xmpp:mam:2' id='{id}'><forwarded xmlns='urn:xmpp:forward:0'>\
                 <delay xmlns='urn:xmpp:delay' stamp='{stamp}'/>\
                 <message xmlns='jabber:client' to='{to}' from='{from}' type='chat'>\
                 <body>{body}</body></message></forwarded></result>"
            )
        };
        std::fs::write(
            input.join("juliet@capulet.lit.xml"),
            format!(
                "<?xml version='1.0' encoding='UTF-8'?>\n<server-data xmlns='urn:xmpp:pie:0'>\
                 <host jid='capulet.lit'><user name='juliet' password='balcony'>\
                 <archive xmlns='urn:xmpp:pie:0#mam'>{}{}{}</archive></user></host></server-data>",
                result(
                    "28482-98726-73623",
                    "2010-07-10T23:08:25Z",
                    "romeo@montague.lit/orchard",
                    "juliet@capulet.lit/balcony",
                    "Call me but love"
                ),
                result(
                    "5d398-28273-f7382",
                    "2010-07-10T23:08:25Z",
                    "juliet@capulet.lit/balcony",
                    "romeo@montague.lit/orchard",
                    "What man art thou"
                ),
                result(
                    "7f2c1-00000-00000",
                    "2010-07-10T23:09:32Z",
                    "juliet@capulet.lit/balcony",
                    "romeo@montague.lit/orchard",
                    "Art thou not Romeo?"
                ),
            ),
        )
        .expect("write");
        let target = Store::open(&dir.path().join("t.redb"), 1 << 20).expect("open");
        let report = import(&target, &input, &["capulet.lit".to_string()]).expect("import");
        assert_eq!(
            report.imported,
            ["juliet@capulet.lit"],
            "{:?}",
            report.lines()
        );
        let (records, _) = archive::scan(
            &target,
            Kind::User,
            "juliet@capulet.lit",
            &Scan {
                lo: 0,
                hi: u64::MAX,
                with: Some("romeo@montague.lit"),
                descending: false,
                limit: 10,
            },
            &|_| true,
        )
        .expect("scan");
        let t = parse_stamp("2010-07-10T23:08:25Z").expect("stamp");
        let got: Vec<(u64, u8)> = records.iter().map(|r| (r.stamp, r.flags)).collect();
        assert_eq!(
            got,
            [
                (t, 0),
                (t + 1, OUTGOING),
                (
                    parse_stamp("2010-07-10T23:09:32Z").expect("stamp"),
                    OUTGOING
                )
            ]
        );
    }
}
