//! `perch import PATH`: users from XEP-0227 files into the database.
//!
//! Everything is read and checked first; then one transaction stores all
//! users, so an import either happens completely or not at all (a failure
//! while writing leaves the database as it was). A user is skipped, with a
//! reason, when its host is not configured, when the account exists
//! already (nothing is overwritten), or when it has no usable credentials.
//! Data no family imports is counted and reported.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use redb::ReadableDatabase;

use crate::jid::Jid;
use crate::store::Store;
use crate::store::accounts::credentials_in;
use crate::xml::Element;

use super::files;
use super::{FAMILIES, ImportWrite, PortableError};

/// What an import did and did not do.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// Bare JIDs of the users stored.
    pub imported: Vec<String>,
    /// One line per user not stored, with the reason.
    pub skipped: Vec<String>,
    /// Elements under `<user/>` that no family imports, with their count.
    pub not_imported: BTreeMap<String, usize>,
    /// Other remarks: files passed over, one family's data dropped, …
    pub notices: Vec<String>,
}

impl ImportReport {
    /// The report for the operator, one line each.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!("imported {} users", self.imported.len())];
        out.extend(self.skipped.iter().map(|s| format!("skipped {s}")));
        for (what, count) in &self.not_imported {
            out.push(format!("not imported (no importer yet): {count} × {what}"));
        }
        out.extend(self.notices.iter().cloned());
        out
    }
}

/// Imports the users found at `path` (see `files::load`) whose host is one
/// of `hosts`.
pub fn import(store: &Store, path: &Path, hosts: &[String]) -> Result<ImportReport, PortableError> {
    let loaded = files::load(path)?;
    let mut report = ImportReport {
        notices: loaded.notices,
        ..ImportReport::default()
    };
    let mut unknown_hosts: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let mut writes: Vec<ImportWrite> = Vec::new();
    let snapshot = store.db().begin_read()?;
    for entry in loaded.users {
        let source = entry.source.display();
        let Some(name) = entry.element.attr("name") else {
            report
                .skipped
                .push(format!("a <user/> without name in {source}"));
            continue;
        };
        let jid = match Jid::new(Some(name), &entry.host, None) {
            Ok(j) => j,
            Err(e) => {
                report
                    .skipped
                    .push(format!("{name}@{}: not a valid JID ({e})", entry.host));
                continue;
            }
        };
        if !hosts.iter().any(|h| h == jid.domain()) {
            *unknown_hosts.entry(jid.domain().to_string()).or_default() += 1;
            continue;
        }
        if !seen.insert(jid.as_str().to_string()) {
            report
                .skipped
                .push(format!("{jid}: appears twice (the second, in {source})"));
            continue;
        }
        if credentials_in(&snapshot, jid.as_str())?.is_some() {
            report
                .skipped
                .push(format!("{jid}: the account exists already (not changed)"));
            continue;
        }
        match import_user(&jid, &entry.element, &mut report) {
            Some(user_writes) => {
                writes.extend(user_writes);
                report.imported.push(jid.as_str().to_string());
            }
            None => continue,
        }
    }
    drop(snapshot);
    for (host, count) in unknown_hosts {
        report.skipped.push(format!(
            "{count} users of {host}: not a [[host]] in the configuration"
        ));
    }
    let txn = store.db().begin_write()?;
    for write in writes {
        write(&txn)?;
    }
    txn.commit()?;
    Ok(report)
}

/// Every family's writes for one user; `None` (with the reason in
/// `report`) when a required family fails.
fn import_user(
    jid: &Jid,
    element: &Element,
    report: &mut ImportReport,
) -> Option<Vec<ImportWrite>> {
    let mut writes = Vec::new();
    for family in FAMILIES {
        match family.import_user(jid, element, &mut report.notices) {
            Ok(Some(write)) => writes.push(write),
            Ok(None) => {}
            Err(e) if family.required() => {
                report.skipped.push(e.to_string());
                return None;
            }
            Err(e) => report
                .notices
                .push(format!("{jid}: {} not imported: {e}", family.name())),
        }
    }
    for child in element.children() {
        if !FAMILIES.iter().any(|f| f.claims(child)) {
            let what = if child.ns.is_empty() {
                format!("<{}/>", child.name)
            } else {
                format!("<{} xmlns='{}'/>", child.name, child.ns)
            };
            *report.not_imported.entry(what).or_default() += 1;
        }
    }
    Some(writes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::portable::export;
    use crate::sasl::{Credentials, DEFAULT_ITERATIONS, ScramHash};
    use crate::testing::TempDir;

    fn store(dir: &TempDir, name: &str) -> Store {
        Store::open(&dir.path().join(name), 1 << 20).expect("open")
    }

    fn hosts() -> Vec<String> {
        vec!["capulet.lit".to_string(), "montague.lit".to_string()]
    }

    #[test]
    fn round_trip_keeps_credentials_exactly() {
        let dir = TempDir::new("portable-rt");
        let source = store(&dir, "a.redb");
        let mut originals = Vec::new();
        for (jid, pw) in [
            ("juliet@capulet.lit", "balcony"),
            ("nurse@capulet.lit", "secret"),
            ("romeo@montague.lit", "rose"),
        ] {
            let c = Credentials::derive(pw, DEFAULT_ITERATIONS).expect("derive");
            smol::block_on(source.accounts().create(jid, &c)).expect("create");
            originals.push((jid, c));
        }
        let out = dir.path().join("export");
        let summary = export(&source, &out).expect("export");
        assert_eq!(
            summary,
            crate::portable::ExportSummary { hosts: 2, users: 3 }
        );
        let mut names: Vec<String> = std::fs::read_dir(&out)
            .expect("list")
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "juliet@capulet.lit.xml",
                "nurse@capulet.lit.xml",
                "romeo@montague.lit.xml"
            ]
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(out.join("juliet@capulet.lit.xml"))
                .expect("meta")
                .permissions(),
        );
        assert_eq!(mode & 0o077, 0, "export files are owner-only");
        // Exporting into a directory with files is refused.
        assert!(matches!(
            export(&source, &out),
            Err(PortableError::NotEmpty(_))
        ));

        let target = store(&dir, "b.redb");
        let report = import(&target, &out, &hosts()).expect("import");
        assert_eq!(report.imported.len(), 3, "{:?}", report.lines());
        assert!(report.skipped.is_empty() && report.not_imported.is_empty());
        for (jid, c) in &originals {
            let got = target
                .accounts()
                .credentials(jid)
                .expect("read")
                .expect("imported");
            assert_eq!(&got, c, "{jid}: salts and keys survive the trip");
        }

        // A second import changes nothing and says why.
        let again = import(&target, &out, &hosts()).expect("import");
        assert!(again.imported.is_empty());
        assert_eq!(again.skipped.len(), 3);
        assert!(again.skipped[0].contains("exists already"));

        // And the copy exports to the same files.
        let out2 = dir.path().join("export2");
        export(&target, &out2).expect("export again");
        for f in &names {
            assert_eq!(
                std::fs::read(out.join(f)).expect("a"),
                std::fs::read(out2.join(f)).expect("b"),
                "{f}"
            );
        }
    }

    #[test]
    fn round_trip_keeps_every_family() {
        use crate::im::roster::{Change, Roster, RosterItem, Subscription};
        use crate::xml::NS_CLIENT;
        let dir = TempDir::new("portable-rt-families");
        let source = store(&dir, "a.redb");
        let jid = |s: &str| Jid::parse(s).expect("jid");
        let el = |s: &str| Element::parse(s).expect("xml");
        let juliet = jid("juliet@capulet.lit");
        for who in ["juliet@capulet.lit", "romeo@montague.lit"] {
            let c = Credentials::derive("pw", DEFAULT_ITERATIONS).expect("derive");
            smol::block_on(source.accounts().create(who, &c)).expect("create");
        }

        let mut nurse = RosterItem::new(jid("nurse@capulet.lit"));
        nurse.name = Some("Nurse & co".into());
        nurse.groups = vec!["Servants".into(), "Capulets".into()];
        nurse.subscription = Subscription::Both;
        nurse.version = 3;
        let mut romeo = RosterItem::new(jid("romeo@montague.lit"));
        romeo.subscription = Subscription::To;
        romeo.ask = true;
        romeo.approved = true;
        romeo.version = 4;
        let request = Element::new("presence", NS_CLIENT)
            .with_attr("type", "subscribe")
            .with_child(Element::new("status", NS_CLIENT).with_text("let me in"));
        let tybalt = jid("tybalt@capulet.lit");
        let roster = Roster::from_parts(
            4,
            0,
            vec![nurse.clone(), romeo.clone()],
            Vec::new(),
            vec![(tybalt.clone(), request.clone())],
        );
        let changes = vec![
            Change::Item(nurse.clone()),
            Change::Item(romeo.clone()),
            Change::PendingIn {
                jid: tybalt.clone(),
                request: Some(request),
            },
        ];
        source
            .write_now(crate::store::roster::write_op(&juliet, &roster, &changes))
            .expect("roster");

        let vcard = el("<vCard xmlns='vcard-temp'><FN>Juliet</FN>\
             <PHOTO><TYPE>image/png</TYPE><BINVAL>aGVs\nbG8=</BINVAL></PHOTO></vCard>");
        let hash = crate::im::vcard::photo_hash(&vcard).expect("photo");
        assert!(hash.is_some());
        smol::block_on(
            source
                .vcards()
                .set(juliet.as_str(), Some(&vcard), hash.clone()),
        )
        .expect("vcard");

        let prefs = el("<prefs xmlns='exodus:prefs'><nick>J</nick></prefs>");
        let notes = el("<storage xmlns='storage:rosternotes'><note jid='a@b'>x</note></storage>");
        smol::block_on(source.private_xml().set(
            juliet.as_str(),
            vec![
                ("exodus:prefs".into(), vec![prefs.clone(), prefs.clone()]),
                ("storage:rosternotes".into(), vec![notes.clone()]),
            ],
            10_000,
        ))
        .expect("private");

        let messages: Vec<Element> = ["one", "two"]
            .iter()
            .map(|body| {
                Element::new("message", NS_CLIENT)
                    .with_attr("from", "romeo@montague.lit/orchard")
                    .with_attr("to", "juliet@capulet.lit")
                    .with_attr("type", "chat")
                    .with_child(Element::new("body", NS_CLIENT).with_text(*body))
                    .with_child(
                        Element::new("delay", crate::im::delay::NS_DELAY)
                            .with_attr("from", "capulet.lit")
                            .with_attr("stamp", "2026-11-21T10:00:00Z")
                            .with_text("Offline Storage"),
                    )
            })
            .collect();
        for (seq, m) in (1u64..).zip(&messages) {
            source
                .write_now(crate::store::offline::append_op(
                    juliet.as_str(),
                    seq,
                    m.to_bytes(""),
                ))
                .expect("offline");
        }

        let out = dir.path().join("export");
        export(&source, &out).expect("export");
        let target = store(&dir, "b.redb");
        let report = import(&target, &out, &hosts()).expect("import");
        assert_eq!(report.imported.len(), 2, "{:?}", report.lines());
        assert!(
            report.not_imported.is_empty() && report.notices.is_empty(),
            "{:?}",
            report.lines()
        );
        let out2 = dir.path().join("export2");
        export(&target, &out2).expect("export again");
        for f in ["juliet@capulet.lit.xml", "romeo@montague.lit.xml"] {
            let a = std::fs::read_to_string(out.join(f)).expect("a");
            assert_eq!(a, std::fs::read_to_string(out2.join(f)).expect("b"), "{f}");
        }
        let juliet_file =
            std::fs::read_to_string(out.join("juliet@capulet.lit.xml")).expect("read");
        for part in [
            "<query xmlns='jabber:iq:roster'>",
            "<vCard xmlns='vcard-temp'>",
            "<query xmlns='jabber:iq:private'>",
            "<offline-messages>",
            "type='subscribe'",
        ] {
            assert!(
                juliet_file.contains(part) || juliet_file.contains(&part.replace('\'', "\"")),
                "{part} in {juliet_file}"
            );
        }

        // Spot checks through the store API.
        let got = crate::store::roster::load(&target, &juliet).expect("roster");
        let got_nurse = got.item(&nurse.jid).expect("nurse");
        assert_eq!(got_nurse.name, nurse.name);
        assert_eq!(got_nurse.groups, nurse.groups);
        assert_eq!(got_nurse.subscription, Subscription::Both);
        let got_romeo = got.item(&romeo.jid).expect("romeo");
        assert!(got_romeo.ask && got_romeo.approved);
        assert_eq!(got_romeo.subscription, Subscription::To);
        let pending: Vec<_> = got.pending_in().collect();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].0, &tybalt);
        assert_eq!(
            pending[0]
                .1
                .get_child("status", NS_CLIENT)
                .map(|s| s.text()),
            Some("let me in".to_string())
        );
        assert_eq!(
            target.vcards().get(juliet.as_str()).expect("vcard"),
            Some(vcard)
        );
        assert_eq!(
            target.vcards().photo_hash(juliet.as_str()).expect("hash"),
            hash
        );
        let px = target.private_xml();
        assert_eq!(
            px.get(juliet.as_str(), "exodus:prefs").expect("get"),
            vec![prefs.clone(), prefs]
        );
        assert_eq!(
            px.get(juliet.as_str(), "storage:rosternotes").expect("get"),
            vec![notes]
        );
        let stored: Vec<Element> = crate::store::offline::read_after(&target, juliet.as_str(), 0)
            .expect("offline")
            .into_iter()
            .map(|(_, b)| Element::parse(std::str::from_utf8(&b).expect("utf8")).expect("xml"))
            .collect();
        assert_eq!(stored, messages);
        // Romeo has none of it.
        assert!(
            crate::store::roster::load(&target, &jid("romeo@montague.lit"))
                .expect("roster")
                .is_empty()
        );
    }

    #[test]
    fn foreign_offline_messages_get_a_stamp() {
        let dir = TempDir::new("portable-offline-stamp");
        let input = dir.path().join("in");
        write(
            &input,
            "romeo@montague.lit.xml",
            "<server-data xmlns='urn:xmpp:pie:0'><host jid='montague.lit'>\
             <user name='romeo' password='rose'><offline-messages>\
             <message xmlns='jabber:client' from='juliet@capulet.lit' to='romeo@montague.lit'>\
             <body>hi</body></message></offline-messages>\
             <query xmlns='jabber:iq:private'><x/></query></user></host></server-data>",
        );
        let target = store(&dir, "t.redb");
        let report = import(&target, &input, &hosts()).expect("import");
        assert_eq!(report.imported.len(), 1, "{:?}", report.lines());
        // Private XML without a namespace of its own is refused, alone.
        assert!(
            report.notices.iter().any(|n| n.contains("private XML")),
            "{:?}",
            report.lines()
        );
        let stored =
            crate::store::offline::read_after(&target, "romeo@montague.lit", 0).expect("offline");
        assert_eq!(stored.len(), 1);
        let message =
            Element::parse(std::str::from_utf8(&stored[0].1).expect("utf8")).expect("xml");
        assert!(
            message
                .get_child("delay", crate::im::delay::NS_DELAY)
                .is_some()
        );
    }

    fn write(dir: &Path, name: &str, text: &str) {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, text).expect("write");
    }

    #[test]
    fn one_file_per_user_with_other_data() {
        // One <server-data/> file per user, as Prosody writes them, with a
        // SCRAM-SHA-1-only account, a PEP node and data Perch has no
        // importer for yet.
        let dir = TempDir::new("portable-prosody");
        let input = dir.path().join("in");
        let c = Credentials::derive("balcony", 10_000).expect("derive");
        let sha1 = crate::portable::accounts::scram_element(c.keys(ScramHash::Sha1).expect("sha1"));
        write(
            &input,
            "capulet.lit/juliet.xml",
            &format!(
                "<?xml version='1.0' encoding='UTF-8'?>\n<!-- exported -->\n\
                 <server-data xmlns='urn:xmpp:pie:0'><host jid='capulet.lit'>\
                 <user name='Juliet'>{sha1}\
                 <query xmlns='jabber:iq:roster'><item jid='romeo@montague.lit'/></query>\
                 <vCard xmlns='vcard-temp'><FN>Juliet</FN></vCard>\
                 <query xmlns='jabber:iq:last' seconds='1'/>\
                 <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>\
                 <configure node='http://jabber.org/protocol/nick'/></pubsub>\
                 <pubsub xmlns='http://jabber.org/protocol/pubsub'>\
                 <items node='http://jabber.org/protocol/nick'><item id='current'>\
                 <nick xmlns='http://jabber.org/protocol/nick'>Jules</nick></item></items>\
                 </pubsub>\
                 </user></host></server-data>"
            ),
        );
        write(
            &input,
            "capulet.lit/tybalt.xml",
            "<server-data xmlns='urn:xmpp:pie:0'><host jid='capulet.lit'>\
             <user name='tybalt' password='sword'/></host>\
             <host jid='verona.lit'><user name='prince' password='x'/></host></server-data>",
        );
        write(&input, "notes.xml", "<notes/>");
        let target = store(&dir, "t.redb");
        let report = import(&target, &input, &hosts()).expect("import");
        assert_eq!(
            report.imported,
            vec![
                "juliet@capulet.lit".to_string(),
                "tybalt@capulet.lit".to_string()
            ]
        );
        assert_eq!(report.not_imported.len(), 1, "{:?}", report.lines());
        assert!(report.skipped.iter().any(|s| s.contains("verona.lit")));
        assert!(report.notices.iter().any(|n| n.contains("notes.xml")));
        let juliet = target
            .accounts()
            .credentials("juliet@capulet.lit")
            .expect("read")
            .expect("imported");
        assert!(juliet.keys(ScramHash::Sha256).is_none());
        assert!(juliet.verify_password("balcony"));
        let juliet_jid = Jid::parse("juliet@capulet.lit").expect("jid");
        let roster = crate::store::roster::load(&target, &juliet_jid).expect("roster");
        assert_eq!(roster.len(), 1);
        assert!(
            target
                .vcards()
                .get("juliet@capulet.lit")
                .expect("vcard")
                .is_some()
        );
        let nick = target
            .pubsub()
            .item(
                "juliet@capulet.lit",
                "http://jabber.org/protocol/nick",
                "current",
            )
            .expect("read")
            .expect("imported");
        assert_eq!(
            nick.payload,
            "<nick xmlns='http://jabber.org/protocol/nick'>Jules</nick>"
        );
        let tybalt = target
            .accounts()
            .credentials("tybalt@capulet.lit")
            .expect("read")
            .expect("imported");
        assert!(tybalt.verify_password("sword"));
        assert!(tybalt.keys(ScramHash::Sha256).is_some());
    }

    #[test]
    fn includes_stay_inside_the_directory() {
        let dir = TempDir::new("portable-escape");
        let input = dir.path().join("in");
        write(
            dir.path(),
            "outside.xml",
            "<host xmlns='urn:xmpp:pie:0' jid='capulet.lit'/>",
        );
        write(
            &input,
            "server-data.xml",
            "<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'>\
             <xi:include href='../outside.xml'/></server-data>",
        );
        let target = store(&dir, "t.redb");
        match import(&target, &input, &hosts()) {
            Err(PortableError::Format(_, why)) => assert!(why.contains("outside"), "{why}"),
            other => panic!("expected a refusal, got {:?}", other.map(|r| r.lines())),
        }
        for href in ["/etc/passwd", "http://example.com/x.xml"] {
            write(
                &input,
                "server-data.xml",
                &format!(
                    "<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'>\
                     <xi:include href='{href}'/></server-data>"
                ),
            );
            assert!(import(&target, &input, &hosts()).is_err(), "{href}");
        }
    }

    #[test]
    fn hostile_documents_are_refused() {
        let dir = TempDir::new("portable-hostile");
        let input = dir.path().join("in");
        write(
            &input,
            "a.xml",
            "<!DOCTYPE x [<!ENTITY a 'aaaa'>]><server-data xmlns='urn:xmpp:pie:0'/>",
        );
        let target = store(&dir, "t.redb");
        assert!(matches!(
            import(&target, &input, &hosts()),
            Err(PortableError::Xml(..))
        ));
        // Nothing at all was written.
        assert_eq!(target.accounts().count().expect("count"), 0);
    }

    #[test]
    fn a_single_file_with_includes() {
        let dir = TempDir::new("portable-single");
        let input = dir.path().join("in");
        write(
            &input,
            "main.xml",
            "<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'>\
             <xi:include href='h%20one.xml'/></server-data>",
        );
        write(
            &input,
            "h one.xml",
            "<host xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude' jid='montague.lit'>\
             <xi:include href='u/romeo.xml'/></host>",
        );
        write(
            &input,
            "u/romeo.xml",
            "<user xmlns='urn:xmpp:pie:0' name='romeo' password='rose'/>",
        );
        let target = store(&dir, "t.redb");
        let report = import(&target, &input.join("main.xml"), &hosts()).expect("import");
        assert_eq!(report.imported, vec!["romeo@montague.lit".to_string()]);
        // The same tree as a directory: the host and user files are known
        // to be included and are not imported twice.
        let target2 = store(&dir, "t2.redb");
        let report = import(&target2, &input, &hosts()).expect("import");
        assert_eq!(report.imported, vec!["romeo@montague.lit".to_string()]);
        assert!(report.skipped.is_empty(), "{:?}", report.lines());
    }
}
