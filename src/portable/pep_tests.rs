use super::*;
use crate::portable::{NS_PIE, export, import};
use crate::pubsub::config::{
    AccessModel, ItemReply, NotificationType, PublishModel, SendLastPublished,
};
use crate::sasl::Credentials;
use crate::store::Store;
use crate::store::pubsub::{create_node_op, publish_op};
use crate::testing::TempDir;

const JULIET: &str = "juliet@capulet.lit";

fn open(dir: &TempDir, name: &str) -> Store {
    Store::open(&dir.path().join(name), 1 << 20).expect("open")
}

fn add_accounts(store: &Store, jids: &[&str]) {
    for jid in jids {
        let c = Credentials::derive("pw", 4096).expect("derive");
        smol::block_on(store.accounts().create(jid, &c)).expect("create");
    }
}

/// A payload as the service stores a published one.
fn payload(xml: &str) -> String {
    let element = Element::parse(xml).expect("xml");
    String::from_utf8_lossy(&element.to_bytes("")).into_owned()
}

fn read(fragment: &str, limits: Limits) -> Result<Vec<PepNode>, String> {
    let user = Jid::parse(JULIET).expect("jid");
    let element =
        Element::parse(&format!("<user xmlns='{NS_PIE}'>{fragment}</user>")).expect("test xml");
    let mut notices = Vec::new();
    read_nodes(&user, &element, limits, 1_000_000, &mut notices).map_err(|e| e.to_string())
}

fn owner(inner: &str) -> String {
    format!("<pubsub xmlns='{NS_PUBSUB_OWNER}'>{inner}</pubsub>")
}

fn data(inner: &str) -> String {
    format!("<pubsub xmlns='{NS_PUBSUB}'>{inner}</pubsub>")
}

fn sorted_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    names
}

/// Export, import into a fresh database, export again: the same
/// bytes; and the nodes are the same in the store, but for the stamps
/// of their items, which are new and in the same order.
#[test]
fn round_trip_keeps_every_node() {
    let dir = TempDir::new("portable-pep-rt");
    let source = open(&dir, "a.redb");
    add_accounts(&source, &[JULIET, "romeo@montague.lit"]);

    let mut diary = NodeConfig::pep_default();
    diary.access_model = AccessModel::Open;
    diary.max_items = MaxItems::Max;
    diary.title = "Juliet's <diary> & notes".into();
    diary.node_type = "http://www.w3.org/2005/Atom".into();
    diary.publish_model = PublishModel::Subscribers;

    let mut bookmarks = NodeConfig::pep_default();
    bookmarks.access_model = AccessModel::Whitelist;
    bookmarks.max_items = MaxItems::Count(5);
    bookmarks.send_last_published_item = SendLastPublished::Never;
    bookmarks.notify_retract = false;

    let mut notes = NodeConfig::pep_default();
    notes.access_model = AccessModel::Roster;
    notes.roster_groups_allowed = vec!["Capulets".into(), "Friends & co".into()];
    notes.description = "For the Nurse".into();
    notes.itemreply = ItemReply::Publisher;
    notes.notification_type = NotificationType::Normal;
    notes.deliver_payloads = false;

    let juliet_owns = vec![(JULIET.to_string(), Affiliation::Owner)];
    let nodes = [
        (
            "urn:xmpp:microblog:0",
            NodeRecord {
                config: diary.encode(),
                affiliations: juliet_owns.clone(),
                subscriptions: Vec::new(),
            },
            vec![
                (
                    "first",
                    payload(
                        "<entry xmlns='http://www.w3.org/2005/Atom'>\
                         <title type='text'>Hi &amp; bye</title></entry>",
                    ),
                ),
                // A notification without payload.
                ("second", String::new()),
            ],
        ),
        (
            "urn:xmpp:bookmarks:1",
            NodeRecord {
                config: bookmarks.encode(),
                affiliations: juliet_owns.clone(),
                subscriptions: Vec::new(),
            },
            ["hall", "orchard", "tomb"]
                .iter()
                .map(|room| {
                    (
                        *room,
                        payload(&format!(
                            "<conference xmlns='urn:xmpp:bookmarks:1' name='The {room}' \
                             autojoin='true'><nick>Juliet</nick></conference>"
                        )),
                    )
                })
                .collect(),
        ),
        (
            "storage:notes & 'drafts'",
            NodeRecord {
                config: notes.encode(),
                affiliations: vec![
                    (JULIET.to_string(), Affiliation::Owner),
                    ("nurse@capulet.lit".to_string(), Affiliation::Member),
                ],
                subscriptions: vec![Subscription {
                    jid: "romeo@montague.lit/orchard".into(),
                    subid: "sub-1".into(),
                }],
            },
            vec![(
                "current",
                payload(
                    "<note xmlns='urn:example:notes' xml:lang='en'>Meet at \
                     <place xmlns='urn:example:places'>the cell</place></note>",
                ),
            )],
        ),
    ];
    let mut stamp = 1_700_000_000_000_000u64;
    for (name, record, items) in &nodes {
        source
            .write_now(create_node_op(JULIET, name, record.clone(), 100))
            .expect("create");
        for (id, payload) in items {
            stamp += 1_000;
            let item = StoredItem {
                id: id.to_string(),
                stamp,
                publisher: JULIET.to_string(),
                payload: payload.clone(),
            };
            source
                .write_now(publish_op(JULIET, name, item, 10, None))
                .expect("publish");
        }
    }

    let out = dir.path().join("export");
    export(&source, &out).expect("export");
    let file = std::fs::read_to_string(out.join("juliet@capulet.lit.xml")).expect("read");
    for part in [
        "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>",
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'>",
        "<configure node='urn:xmpp:bookmarks:1'>",
        "<x xmlns='jabber:x:data' type='submit'>",
        "<value>http://jabber.org/protocol/pubsub#node_config</value>",
        "<field var='pubsub#access_model' type='list-single'><value>whitelist</value></field>",
        "<field var='pubsub#max_items' type='text-single'><value>max</value></field>",
        "affiliation='member'",
        "subscription='subscribed' subid='sub-1'",
        "<item id='tomb' publisher='juliet@capulet.lit'><conference",
    ] {
        let doubled = part.replace('\'', "\"");
        assert!(
            file.contains(part) || file.contains(&doubled),
            "{part} in {file}"
        );
    }
    assert!(!file.contains("label="), "a submitted form: {file}");
    let romeo = std::fs::read_to_string(out.join("romeo@montague.lit.xml")).expect("read");
    assert!(!romeo.contains("pubsub"), "no nodes, no element: {romeo}");

    let target = open(&dir, "b.redb");
    let hosts = ["capulet.lit".to_string(), "montague.lit".to_string()];
    let before = micros(SystemTime::now());
    let report = import(&target, &out, &hosts).expect("import");
    assert_eq!(report.imported.len(), 2, "{:?}", report.lines());
    assert!(
        report.notices.is_empty() && report.not_imported.is_empty(),
        "{:?}",
        report.lines()
    );

    let out2 = dir.path().join("export2");
    export(&target, &out2).expect("export again");
    let names = sorted_files(&out);
    assert_eq!(names, sorted_files(&out2));
    for f in &names {
        assert_eq!(
            std::fs::read(out.join(f)).expect("a"),
            std::fs::read(out2.join(f)).expect("b"),
            "{f}"
        );
    }

    // The store holds the same nodes: records exactly, items but for
    // their stamps, which are new, increasing, and no later than now.
    let (a, b) = (source.pubsub(), target.pubsub());
    assert_eq!(
        a.nodes(JULIET).expect("nodes"),
        b.nodes(JULIET).expect("nodes")
    );
    assert_eq!(b.node_count(JULIET).expect("count"), 3);
    let after = micros(SystemTime::now());
    for (name, _, items) in &nodes {
        let (old, new) = (
            a.items(JULIET, name).expect("items"),
            b.items(JULIET, name).expect("items"),
        );
        assert_eq!(new.len(), items.len(), "{name}");
        let strip = |v: &[StoredItem]| -> Vec<(String, String, String)> {
            v.iter()
                .map(|i| (i.id.clone(), i.publisher.clone(), i.payload.clone()))
                .collect()
        };
        assert_eq!(strip(&old), strip(&new), "{name}");
        assert!(
            new.windows(2).all(|w| w[0].stamp < w[1].stamp),
            "{name}: {new:?}"
        );
        assert!(
            new.iter()
                .all(|i| (before - 1_000..=after).contains(&i.stamp)),
            "{name}: {new:?}"
        );
    }
    let last = b
        .last_item(JULIET, "urn:xmpp:bookmarks:1")
        .expect("last")
        .expect("an item");
    assert_eq!(last.id, "tomb");
    assert!(b.nodes("romeo@montague.lit").expect("nodes").is_empty());
}

/// The export of XEP-0227's "Personal Eventing Protocol" example, as
/// it stands there (forms of type `form` naming one option each, no
/// publishers, no owner affiliation), given a password so that the
/// account imports; and a form naming options Perch does not have.
#[test]
fn the_xep_example_imports() {
    let dir = TempDir::new("portable-pep-xep");
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).expect("mkdir");
    let xep = "<?xml version='1.0' encoding='UTF-8'?>
<server-data xmlns='urn:xmpp:pie:0'>
  <host jid='capulet.com'>
<user name='romeo' password='rose'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
    <configure node='urn:xmpp:bookmarks:1'>
      <x xmlns='jabber:x:data' type='form'>
        <field var='FORM_TYPE' type='hidden'>
          <value>http://jabber.org/protocol/pubsub#node_config</value>
        </field>
        <field var='pubsub#access_model'>
          <value>whitelist</value>
        </field>
      </x>
    </configure>
    <affiliations node='urn:xmpp:bookmarks:1'>
      <affiliation jid='mercutio@example.net' affiliation='member'/>
    </affiliations>
    <subscriptions node='urn:xmpp:bookmarks:1'>
      <subscription jid='mercutio@example.net' subscription='subscribed' subid='123-abc'/>
    </subscriptions>
    <configure node='http://jabber.org/protocol/nick'>
      <x xmlns='jabber:x:data' type='form'>
        <field var='FORM_TYPE' type='hidden'>
          <value>http://jabber.org/protocol/pubsub#node_config</value>
        </field>
        <field var='pubsub#access_model'>
          <value>open</value>
        </field>
      </x>
    </configure>
  </pubsub>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <items node='urn:xmpp:bookmarks:1'>
      <item id='theplay@conference.shakespeare.lit'>
        <conference xmlns='urn:xmpp:bookmarks:1'
                  name='The Play&apos;s the Thing'
                  autojoin='true'>
          <nick>Romeo</nick>
        </conference>
      </item>
      <item id='orchard@conference.shakespeare.lit'>
        <conference xmlns='urn:xmpp:bookmarks:1'
                  name='The Orchard'
                  autojoin='1'>
          <nick>Romeo</nick>
        </conference>
      </item>
    </items>
    <items node='http://jabber.org/protocol/nick'>
      <item id='current'>
        <nick xmlns='http://jabber.org/protocol/nick'>Romy</nick>
      </item>
    </items>
  </pubsub>
</user>
  </host>
</server-data>
";
    std::fs::write(input.join("romeo@capulet.com.xml"), xep).expect("write");
    // Another server's whole form: every option, some unknown here.
    std::fs::write(
        input.join("mercutio@capulet.com.xml"),
        "<server-data xmlns='urn:xmpp:pie:0'><host jid='capulet.com'>\
         <user name='mercutio' password='queen-mab'>\
         <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>\
         <configure node='urn:xmpp:avatar:metadata'>\
         <x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#node_config</value></field>\
         <field var='pubsub#title'><value>Avatar</value></field>\
         <field var='pubsub#max_items'><value>1</value></field>\
         <field var='pubsub#persist_items'><value>true</value></field>\
         <field var='pubsub#access_model'><value>presence</value></field>\
         <field var='pubsub#notify_sub'><value>0</value></field>\
         <field var='pubsub#purge_offline'><value>false</value></field>\
         </x></configure></pubsub></user></host></server-data>",
    )
    .expect("write");
    let target = open(&dir, "t.redb");
    let hosts = ["capulet.com".to_string()];
    let report = import(&target, &input, &hosts).expect("import");
    assert_eq!(
        report.imported,
        ["mercutio@capulet.com", "romeo@capulet.com"],
        "{:?}",
        report.lines()
    );
    assert!(report.not_imported.is_empty(), "{:?}", report.lines());
    assert_eq!(
        report.notices,
        [
            "mercutio@capulet.com: PEP node configuration options not known here, \
          ignored: pubsub#notify_sub, pubsub#purge_offline"
        ],
    );

    let romeo = "romeo@capulet.com";
    let pubsub = target.pubsub();
    let nodes = pubsub.nodes(romeo).expect("nodes");
    let names: Vec<&str> = nodes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["http://jabber.org/protocol/nick", "urn:xmpp:bookmarks:1"]
    );
    let config = |i: usize| NodeConfig::decode(&nodes[i].1.config).expect("config");
    let nick = config(0);
    assert_eq!(nick.access_model, AccessModel::Open);
    assert_eq!(nick.max_items, MaxItems::Count(1));
    let bookmarks = config(1);
    assert_eq!(bookmarks.access_model, AccessModel::Whitelist);
    // Two bookmarks and no max_items in the form: all are kept, now
    // and at the next publication.
    assert_eq!(bookmarks.max_items, MaxItems::Max);
    assert_eq!(
        nodes[1].1.affiliations,
        [
            (romeo.to_string(), Affiliation::Owner),
            ("mercutio@example.net".to_string(), Affiliation::Member)
        ]
    );
    assert_eq!(
        nodes[1].1.subscriptions,
        [Subscription {
            jid: "mercutio@example.net".into(),
            subid: "123-abc".into()
        }]
    );
    let items = pubsub.items(romeo, "urn:xmpp:bookmarks:1").expect("items");
    let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "theplay@conference.shakespeare.lit",
            "orchard@conference.shakespeare.lit"
        ]
    );
    assert!(items.iter().all(|i| i.publisher == romeo));
    let first = Element::parse(&items[0].payload).expect("payload");
    assert!(first.is("conference", "urn:xmpp:bookmarks:1"));
    assert_eq!(first.attr("name"), Some("The Play's the Thing"));
    let nick_item = pubsub
        .item(romeo, "http://jabber.org/protocol/nick", "current")
        .expect("item")
        .expect("stored");
    assert_eq!(
        nick_item.payload,
        "<nick xmlns='http://jabber.org/protocol/nick'>Romy</nick>"
    );
    let avatar = pubsub
        .node("mercutio@capulet.com", "urn:xmpp:avatar:metadata")
        .expect("node")
        .expect("stored");
    let avatar = NodeConfig::decode(&avatar.config).expect("config");
    assert_eq!(avatar.title, "Avatar");
    assert_eq!(avatar.access_model, AccessModel::Presence);

    // What this server exports of it imports to the same again.
    let out = dir.path().join("out");
    export(&target, &out).expect("export");
    let again = open(&dir, "again.redb");
    let report = import(&again, &out, &hosts).expect("import");
    assert!(report.notices.is_empty(), "{:?}", report.lines());
    let out2 = dir.path().join("out2");
    export(&again, &out2).expect("export");
    for f in sorted_files(&out) {
        assert_eq!(
            std::fs::read(out.join(&f)).expect("a"),
            std::fs::read(out2.join(&f)).expect("b"),
            "{f}"
        );
    }
}

#[test]
fn malformed_input_is_refused_naming_the_node() {
    let limits = Limits { nodes: 2, items: 2 };
    let configure = |node: &str| format!("<configure node='{node}'/>");
    let long = "n".repeat(MAX_NAME_BYTES + 1);
    let cases: Vec<(String, &str)> = vec![
        (
            data("<items node='n'/>"),
            "juliet@capulet.lit: PEP node \"n\": items but no <configure/>",
        ),
        (owner("<configure/>"), "a <configure/> without node"),
        (owner(&configure("")), "a node name of 0 bytes"),
        (owner(&configure(&long)), "a node name of 1025 bytes"),
        (
            owner(&format!("{}{}", configure("n"), configure("n"))),
            "PEP node \"n\": configured twice",
        ),
        (
            owner(&format!(
                "{}{}{}",
                configure("a"),
                configure("b"),
                configure("c")
            )),
            "more than 2 nodes",
        ),
        (
            owner(
                "<configure node='n'><x xmlns='jabber:x:data' type='submit'>\
                 <field var='pubsub#access_model'><value>everyone</value></field>\
                 </x></configure>",
            ),
            "PEP node \"n\": configuration: pubsub#access_model must be one of",
        ),
        (
            owner(
                "<configure node='n'><x xmlns='jabber:x:data' type='submit'>\
                 <field var='FORM_TYPE'><value>urn:example</value></field>\
                 </x></configure>",
            ),
            "PEP node \"n\": configuration: FORM_TYPE must be",
        ),
        (
            owner("<configure node='n'><x xmlns='jabber:x:data' type='bogus'/></configure>"),
            "PEP node \"n\": configuration form: unknown form type",
        ),
        (
            owner(&format!(
                "{}<affiliations node='n'><affiliation jid='a@b' affiliation='king'/>\
                 </affiliations>",
                configure("n")
            )),
            "PEP node \"n\": affiliation \"king\" of a@b",
        ),
        (
            owner(&format!(
                "{}<affiliations node='n'><affiliation jid='@' affiliation='member'/>\
                 </affiliations>",
                configure("n")
            )),
            "PEP node \"n\": affiliation of \"@\"",
        ),
        (
            owner(&format!(
                "{}<affiliations node='n'><affiliation jid='a@b/x' affiliation='member'/>\
                 <affiliation jid='a@b' affiliation='outcast'/></affiliations>",
                configure("n")
            )),
            "a@b is affiliated twice",
        ),
        (
            owner("<affiliations node='n'/>"),
            "PEP node \"n\": <affiliations/> but no <configure/>",
        ),
        (
            owner(&format!(
                "{}<subscriptions node='n'><subscription jid='a@b' subid='1'/>\
                 <subscription jid='a@b' subid='2'/></subscriptions>",
                configure("n")
            )),
            "PEP node \"n\": a@b is subscribed twice",
        ),
        (
            format!(
                "{}{}",
                owner(&configure("n")),
                data("<items node='n'><item>x</item></items>")
            ),
            "PEP node \"n\": an <item/> without id",
        ),
        (
            format!(
                "{}{}",
                owner(&configure("n")),
                data(&format!("<items node='n'><item id='{long}'/></items>"))
            ),
            "PEP node \"n\": an item id of 1025 bytes",
        ),
        (
            format!(
                "{}{}",
                owner(&configure("n")),
                data("<items node='n'><item id=''/></items>")
            ),
            "an item id of 0 bytes",
        ),
        (
            format!(
                "{}{}",
                owner(&configure("n")),
                data("<items node='n'><item id='a'/><item id='a'/></items>")
            ),
            "PEP node \"n\": item \"a\" appears twice",
        ),
        (
            format!(
                "{}{}",
                owner(&configure("n")),
                data("<items node='n'><item id='a'><x xmlns='y'/><z xmlns='y'/></item></items>")
            ),
            "item \"a\": more than one payload",
        ),
        (
            format!(
                "{}{}",
                owner(&configure("n")),
                data("<items node='n'><item id='a'>loose <x xmlns='y'/></item></items>")
            ),
            "item \"a\": text beside the payload",
        ),
        (
            format!(
                "{}{}",
                owner(&configure("n")),
                data("<items node='n'><item id='a' publisher='@'/></items>")
            ),
            "item \"a\": publisher \"@\"",
        ),
        (
            format!(
                "{}{}",
                owner(&configure("n")),
                data("<items node='n'><retract id='a'/></items>")
            ),
            "PEP node \"n\": <retract/> among the items",
        ),
        (
            format!(
                "{}{}",
                owner(&configure("n")),
                data("<items node='n'><item id='a'/><item id='b'/><item id='c'/></items>")
            ),
            "PEP node \"n\": more than 2 items",
        ),
        (
            format!(
                "{}{}",
                owner(&configure("n")),
                data("<items node='n'/><items node='n'/>")
            ),
            "PEP node \"n\": two <items/>",
        ),
    ];
    for (fragment, expected) in cases {
        match read(&fragment, limits) {
            Ok(nodes) => panic!("{fragment} was accepted: {nodes:?}"),
            Err(e) => {
                assert!(e.starts_with("juliet@capulet.lit: PEP"), "{e}");
                assert!(e.contains(expected), "{fragment}: {e}");
            }
        }
    }
    // At the limits, all is well.
    let ok = format!(
        "{}{}",
        owner(&format!("{}{}", configure("a"), configure("b"))),
        data("<items node='a'><item id='1'/><item id='2'/></items>")
    );
    let nodes = read(&ok, limits).expect("within limits");
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0].items.len(), 2);
    // Stamps end at the import's time, in file order.
    let stamps: Vec<u64> = nodes[0].items.iter().map(|i| i.stamp).collect();
    assert_eq!(stamps, [999_999, 1_000_000]);
    assert!(nodes[0].items.iter().all(|i| i.publisher == JULIET));
}

#[test]
fn pending_subscriptions_and_unknown_elements_are_told() {
    let user = Jid::parse(JULIET).expect("jid");
    let element = Element::parse(&format!(
        "<user xmlns='{NS_PIE}'>{}{}</user>",
        owner(
            "<configure node='n'/><default/>\
             <subscriptions node='n'>\
             <subscription jid='a@b' subscription='pending' subid='1'/>\
             <subscription jid='c@d' subscription='none'/>\
             <subscription jid='e@f/g'/></subscriptions>"
        ),
        data("<publish node='n'/>")
    ))
    .expect("xml");
    let mut notices = Vec::new();
    let nodes = read_nodes(&user, &element, Limits::defaults(), 5, &mut notices).expect("usable");
    assert_eq!(nodes.len(), 1);
    let subs = &nodes[0].record.subscriptions;
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].jid, "e@f/g");
    assert!(!subs[0].subid.is_empty(), "a new subid");
    assert_eq!(
        nodes[0].record.affiliations,
        [(JULIET.to_string(), Affiliation::Owner)]
    );
    assert_eq!(
        NodeConfig::decode(&nodes[0].record.config).expect("config"),
        NodeConfig::pep_default()
    );
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert!(
        notices[0].contains("<default xmlns='http://jabber.org/protocol/pubsub#owner'/>")
            && notices[0].contains("<publish xmlns='http://jabber.org/protocol/pubsub'/>"),
        "{notices:?}"
    );
    assert!(
        notices[1].contains("1 subscription awaiting approval"),
        "{notices:?}"
    );
}

/// A user whose PEP data is refused is imported with the rest of its
/// data, and the report says why its nodes are not.
#[test]
fn refused_pep_data_leaves_the_account() {
    let dir = TempDir::new("portable-pep-refused");
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).expect("mkdir");
    std::fs::write(
        input.join("juliet.xml"),
        format!(
            "<server-data xmlns='urn:xmpp:pie:0'><host jid='capulet.lit'>\
             <user name='juliet' password='balcony'>\
             <vCard xmlns='vcard-temp'><FN>Juliet</FN></vCard>{}{}</user></host></server-data>",
            owner("<configure node='good'/><configure node='bad'/>"),
            data("<items node='bad'><item id='x'><a xmlns='b'/><c xmlns='d'/></item></items>")
        ),
    )
    .expect("write");
    let target = open(&dir, "t.redb");
    let report = import(&target, &input, &["capulet.lit".to_string()]).expect("import");
    assert_eq!(report.imported, [JULIET], "{:?}", report.lines());
    assert_eq!(
        report.notices,
        [
            "juliet@capulet.lit: PEP not imported: juliet@capulet.lit: PEP node \"bad\": \
          item \"x\": more than one payload"
        ]
    );
    assert!(target.vcards().get(JULIET).expect("vcard").is_some());
    assert_eq!(target.pubsub().node_count(JULIET).expect("count"), 0);
}

#[test]
fn the_exported_form_reads_back_to_the_same_configuration() {
    let mut config = NodeConfig::pep_default();
    config.max_items = MaxItems::Count(100_000);
    config.roster_groups_allowed = vec!["a".into(), "b".into()];
    config.title = "t".into();
    let form = config_form(&config);
    assert_eq!(form.attr("type"), Some("submit"));
    assert!(
        form.children()
            .all(|f| f.attr("label").is_none() && f.get_child("option", NS_DATA).is_none()),
        "{form:?}"
    );
    let configure = Element::new("configure", NS_PUBSUB_OWNER).with_child(form);
    let mut ignored = BTreeSet::new();
    let (back, named) = read_config(&configure, &known_options(), &mut ignored).expect("read");
    assert!(named && ignored.is_empty());
    // A count above any limit is kept as it is.
    assert_eq!(back, config);
}
