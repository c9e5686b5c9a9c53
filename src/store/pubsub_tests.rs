use super::*;
use crate::store::account_exists::create_accounts_for_test;
use crate::store::{delete_account_op, schema};
use crate::testing::TempDir;

const PEP: &str = "juliet@example.org";
const PS: &str = "pubsub.example.org";

fn open(dir: &TempDir) -> Store {
    Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open")
}

fn record(tag: &str) -> NodeRecord {
    NodeRecord {
        config: tag.as_bytes().to_vec(),
        affiliations: vec![(PEP.to_string(), Affiliation::Owner)],
        subscriptions: Vec::new(),
    }
}

fn item(id: &str, stamp: u64) -> StoredItem {
    StoredItem {
        id: id.to_string(),
        stamp,
        publisher: format!("{PEP}/balcony"),
        payload: format!("<entry xmlns='urn:test'>{id}@{stamp}</entry>"),
    }
}

fn publish(store: &Store, service: &str, node: &str, it: StoredItem, max_items: usize) {
    store
        .write_now(publish_op(
            service,
            node,
            it,
            max_items,
            Some((record("auto"), 100)),
        ))
        .expect("publish");
}

/// The ids of the node's items, oldest first.
fn ids(store: &Store, service: &str, node: &str) -> Vec<String> {
    store
        .pubsub()
        .items(service, node)
        .expect("items")
        .into_iter()
        .map(|i| i.id)
        .collect()
}

#[test]
fn records_round_trip() {
    let full = NodeRecord {
        config: vec![0, 1, 2, 255, 0x80],
        affiliations: vec![
            ("a@x".into(), Affiliation::Owner),
            ("b@x".into(), Affiliation::Publisher),
            ("c@x".into(), Affiliation::PublishOnly),
            ("d@x".into(), Affiliation::Member),
            ("é@x".into(), Affiliation::None),
            ("f@x".into(), Affiliation::Outcast),
        ],
        subscriptions: vec![
            Subscription {
                jid: "a@x/r".into(),
                subid: "s1".into(),
            },
            Subscription {
                jid: "b@x".into(),
                subid: String::new(),
            },
        ],
    };
    let empty = NodeRecord {
        config: Vec::new(),
        affiliations: Vec::new(),
        subscriptions: Vec::new(),
    };
    let long = NodeRecord {
        config: vec![7; 100_000],
        affiliations: vec![("x".repeat(300), Affiliation::Member)],
        subscriptions: Vec::new(),
    };
    for r in [full, empty, long] {
        assert_eq!(NodeRecord::decode(&r.encode()).expect("decode"), r);
    }
}

#[test]
fn damaged_records_are_corrupt() {
    let good = NodeRecord {
        config: b"cfg".to_vec(),
        affiliations: vec![("a@x".into(), Affiliation::Member)],
        subscriptions: vec![Subscription {
            jid: "a@x".into(),
            subid: "1".into(),
        }],
    }
    .encode();
    let mut cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![2],
        vec![0],
        vec![RECORD_VERSION],
        // A count of 2^62 entries with nothing behind it.
        vec![
            RECORD_VERSION,
            0,
            0x80,
            0x80,
            0x80,
            0x80,
            0x80,
            0x80,
            0x80,
            0x80,
            0x40,
        ],
        // A length longer than any u64.
        vec![
            RECORD_VERSION,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0xff,
            0x7f,
        ],
        // An affiliation code that does not exist.
        vec![RECORD_VERSION, 0, 1, 1, b'a', 9, 0],
        // A JID that is not UTF-8.
        vec![RECORD_VERSION, 0, 1, 1, 0xff, 1, 0],
    ];
    let mut trailing = good.clone();
    trailing.push(0);
    cases.push(trailing);
    for cut in 0..good.len() {
        cases.push(good[..cut].to_vec());
    }
    for bytes in cases {
        match NodeRecord::decode(&bytes) {
            Err(StoreError::Corrupt(m)) => assert!(m.contains("pubsub_nodes"), "{m}"),
            other => panic!("{bytes:?} gave {other:?}"),
        }
    }
    // Anything at all decodes or is refused, never panics.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for len in 0..2000usize {
        let bytes: Vec<u8> = (0..len % 40)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let _ = NodeRecord::decode(&bytes);
    }
}

#[test]
fn a_damaged_item_is_corrupt_naming_it() {
    let dir = TempDir::new("pubsub-bad-item");
    let store = open(&dir);
    publish(&store, PS, "n", item("good", 1), 10);
    store
        .write_now(Box::new(|txn| {
            let key = item_key(PS, "n", "bad")?;
            txn.open_table(PUBSUB_ITEMS)?
                .insert(key.as_slice(), [0u8, 0, 0].as_slice())?;
            Ok(())
        }))
        .expect("damage");
    for result in [
        store.pubsub().items(PS, "n").map(drop),
        store.pubsub().item(PS, "n", "bad").map(drop),
        store.pubsub().last_item(PS, "n").map(drop),
    ] {
        match result {
            Err(StoreError::Corrupt(m)) => assert!(m.contains("pubsub_items"), "{m}"),
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
    assert_eq!(
        store
            .pubsub()
            .item(PS, "n", "good")
            .expect("good")
            .map(|i| i.stamp),
        Some(1)
    );
}

#[test]
fn create_conflict_and_max_nodes() {
    let dir = TempDir::new("pubsub-create");
    let store = open(&dir);
    let ps = store.pubsub();
    assert_eq!(ps.node(PS, "a").expect("node"), None);
    assert_eq!(ps.node_count(PS).expect("count"), 0);
    store
        .write_now(create_node_op(PS, "a", record("1"), 2))
        .expect("create");
    assert_eq!(ps.node(PS, "a").expect("node"), Some(record("1")));
    assert!(matches!(
        store.write_now(create_node_op(PS, "a", record("2"), 2)),
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(ps.node(PS, "a").expect("node"), Some(record("1")));
    store
        .write_now(create_node_op(PS, "b", record("b"), 2))
        .expect("second");
    assert!(matches!(
        store.write_now(create_node_op(PS, "c", record("c"), 2)),
        Err(StoreError::LimitExceeded(_))
    ));
    // An existing node is a conflict whatever the limit.
    assert!(matches!(
        store.write_now(create_node_op(PS, "a", record("c"), 0)),
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(ps.node_count(PS).expect("count"), 2);
    // The limit is per service.
    store
        .write_now(create_node_op(PEP, "c", record("c"), 1))
        .expect("other service");
    assert_eq!(
        ps.nodes(PS).expect("nodes"),
        vec![
            ("a".to_string(), record("1")),
            ("b".to_string(), record("b"))
        ]
    );
    for bad in [String::new(), "n".repeat(MAX_NAME_BYTES + 1)] {
        assert!(matches!(
            store.write_now(create_node_op(PEP, &bad, record("x"), 10)),
            Err(StoreError::LimitExceeded(_))
        ));
    }
    store
        .write_now(create_node_op(
            PEP,
            &"n".repeat(MAX_NAME_BYTES),
            record("x"),
            10,
        ))
        .expect("longest name");

    store
        .write_now(put_node_op(PS, "a", record("new")))
        .expect("put");
    assert_eq!(ps.node(PS, "a").expect("node"), Some(record("new")));
    assert!(matches!(
        store.write_now(put_node_op(PS, "zz", record("new"))),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(ps.node(PS, "zz").expect("node"), None);
}

#[test]
fn publish_creates_the_node_only_when_asked() {
    let dir = TempDir::new("pubsub-publish-create");
    let store = open(&dir);
    assert!(matches!(
        store.write_now(publish_op(PEP, "urn:x", item("1", 1), 1, None)),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.pubsub().node(PEP, "urn:x").expect("node"), None);
    assert!(ids(&store, PEP, "urn:x").is_empty());

    store
        .write_now(publish_op(
            PEP,
            "urn:x",
            item("1", 1),
            1,
            Some((record("made"), 5)),
        ))
        .expect("publish creating");
    assert_eq!(
        store.pubsub().node(PEP, "urn:x").expect("node"),
        Some(record("made"))
    );
    assert_eq!(
        store.pubsub().item(PEP, "urn:x", "1").expect("item"),
        Some(item("1", 1))
    );
    // An existing node keeps its record.
    store
        .write_now(publish_op(
            PEP,
            "urn:x",
            item("2", 2),
            1,
            Some((record("other"), 5)),
        ))
        .expect("publish");
    assert_eq!(
        store.pubsub().node(PEP, "urn:x").expect("node"),
        Some(record("made"))
    );
    // Creating through a publish obeys the node limit.
    assert!(matches!(
        store.write_now(publish_op(
            PEP,
            "urn:y",
            item("1", 3),
            1,
            Some((record("y"), 1)),
        )),
        Err(StoreError::LimitExceeded(_))
    ));
    assert_eq!(store.pubsub().node(PEP, "urn:y").expect("node"), None);
    assert!(ids(&store, PEP, "urn:y").is_empty());
    for bad in [String::new(), "i".repeat(MAX_NAME_BYTES + 1)] {
        assert!(matches!(
            store.write_now(publish_op(PEP, "urn:x", item(&bad, 9), 5, None)),
            Err(StoreError::LimitExceeded(_))
        ));
    }
}

#[test]
fn republishing_an_id_makes_it_the_newest() {
    let dir = TempDir::new("pubsub-replace");
    let store = open(&dir);
    for (id, stamp) in [("a", 1), ("b", 2), ("c", 3)] {
        publish(&store, PS, "n", item(id, stamp), 10);
    }
    assert_eq!(ids(&store, PS, "n"), ["a", "b", "c"]);
    let mut again = item("a", 4);
    again.payload = "<entry xmlns='urn:test'>second</entry>".into();
    publish(&store, PS, "n", again.clone(), 10);
    assert_eq!(ids(&store, PS, "n"), ["b", "c", "a"]);
    assert_eq!(
        store.pubsub().last_item(PS, "n").expect("last"),
        Some(again.clone())
    );
    assert_eq!(
        store.pubsub().item(PS, "n", "a").expect("item"),
        Some(again)
    );
    // Order is by stamp, not by id.
    publish(&store, PS, "n", item("0", 5), 10);
    assert_eq!(ids(&store, PS, "n"), ["b", "c", "a", "0"]);
    assert_eq!(
        store
            .pubsub()
            .last_item(PS, "n")
            .expect("last")
            .map(|i| i.id),
        Some("0".to_string())
    );
}

#[test]
fn max_items_keeps_the_newest() {
    let dir = TempDir::new("pubsub-max-items");
    let store = open(&dir);
    for i in 1..=5u64 {
        publish(&store, PS, "n", item(&format!("i{i}"), i * 10), 3);
    }
    assert_eq!(ids(&store, PS, "n"), ["i3", "i4", "i5"]);
    // The common PEP case: one item.
    for i in 1..=4u64 {
        publish(&store, PEP, "avatar", item(&format!("v{i}"), i), 1);
    }
    assert_eq!(ids(&store, PEP, "avatar"), ["v4"]);
    publish(&store, PEP, "avatar", item("v4", 9), 1);
    assert_eq!(
        store.pubsub().items(PEP, "avatar").expect("items"),
        vec![item("v4", 9)]
    );
}

#[test]
fn max_items_zero_stores_nothing() {
    let dir = TempDir::new("pubsub-max-zero");
    let store = open(&dir);
    publish(&store, PS, "transient", item("1", 1), 0);
    assert!(
        store
            .pubsub()
            .node(PS, "transient")
            .expect("node")
            .is_some()
    );
    assert!(ids(&store, PS, "transient").is_empty());
    assert_eq!(
        store.pubsub().last_item(PS, "transient").expect("last"),
        None
    );
    // Items kept under a former configuration go too.
    publish(&store, PS, "n", item("1", 1), 5);
    publish(&store, PS, "n", item("2", 2), 0);
    assert!(ids(&store, PS, "n").is_empty());
}

#[test]
fn retract_purge_and_trim() {
    let dir = TempDir::new("pubsub-retract");
    let store = open(&dir);
    for i in 1..=6u64 {
        publish(&store, PS, "n", item(&i.to_string(), i), 10);
    }
    store
        .write_now(retract_op(
            PS,
            "n",
            vec!["2".into(), "missing".into(), "5".into()],
        ))
        .expect("retract");
    assert_eq!(ids(&store, PS, "n"), ["1", "3", "4", "6"]);
    assert!(matches!(
        store.write_now(retract_op(PS, "n", vec!["1".into(), "a\0b".into()])),
        Err(StoreError::InvalidKey { .. })
    ));
    // All or nothing: the valid id of that write is still there.
    assert_eq!(ids(&store, PS, "n"), ["1", "3", "4", "6"]);

    store.write_now(trim_op(PS, "n", 2)).expect("trim");
    assert_eq!(ids(&store, PS, "n"), ["4", "6"]);
    store.write_now(trim_op(PS, "n", 5)).expect("trim above");
    assert_eq!(ids(&store, PS, "n"), ["4", "6"]);

    publish(&store, PS, "m", item("x", 1), 10);
    store.write_now(purge_op(PS, "n")).expect("purge");
    assert!(ids(&store, PS, "n").is_empty());
    assert!(store.pubsub().node(PS, "n").expect("node").is_some());
    assert_eq!(ids(&store, PS, "m"), ["x"]);
    store.write_now(trim_op(PS, "m", 0)).expect("trim to none");
    assert!(ids(&store, PS, "m").is_empty());
}

#[test]
fn delete_removes_node_and_items() {
    let dir = TempDir::new("pubsub-delete");
    let store = open(&dir);
    publish(&store, PS, "n", item("1", 1), 10);
    publish(&store, PS, "n", item("2", 2), 10);
    publish(&store, PS, "keep", item("1", 3), 10);
    store.write_now(delete_node_op(PS, "n")).expect("delete");
    assert_eq!(store.pubsub().node(PS, "n").expect("node"), None);
    assert!(ids(&store, PS, "n").is_empty());
    assert_eq!(store.pubsub().item(PS, "n", "1").expect("item"), None);
    assert!(matches!(
        store.write_now(delete_node_op(PS, "n")),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(ids(&store, PS, "keep"), ["1"]);
    // A node created again under the name starts empty.
    store
        .write_now(create_node_op(PS, "n", record("again"), 10))
        .expect("recreate");
    assert!(ids(&store, PS, "n").is_empty());
}

#[test]
fn prefixes_do_not_mix() {
    let dir = TempDir::new("pubsub-prefix");
    let store = open(&dir);
    publish(&store, "a@x", "a", item("1", 1), 10);
    publish(&store, "a@x", "ab", item("2", 2), 10);
    publish(&store, "a@x", "a\u{1}", item("3", 3), 10);
    publish(&store, "a@xy", "a", item("4", 4), 10);
    let ps = store.pubsub();
    assert_eq!(ids(&store, "a@x", "a"), ["1"]);
    assert_eq!(ids(&store, "a@x", "ab"), ["2"]);
    assert_eq!(ids(&store, "a@x", "a\u{1}"), ["3"]);
    assert_eq!(ids(&store, "a@xy", "a"), ["4"]);
    assert_eq!(ps.last_item("a@x", "a").expect("last"), Some(item("1", 1)));
    assert_eq!(ps.node_count("a@x").expect("count"), 3);
    assert_eq!(ps.node_count("a@xy").expect("count"), 1);
    assert_eq!(
        ps.nodes("a@x")
            .expect("nodes")
            .into_iter()
            .map(|(n, _)| n)
            .collect::<Vec<_>>(),
        ["a", "a\u{1}", "ab"]
    );

    // Trimming, purging and deleting "a" leave "ab" and "a@xy" alone.
    publish(&store, "a@x", "a", item("5", 5), 1);
    assert_eq!(ids(&store, "a@x", "a"), ["5"]);
    store.write_now(purge_op("a@x", "a")).expect("purge");
    store.write_now(delete_node_op("a@x", "a")).expect("delete");
    assert_eq!(ids(&store, "a@x", "ab"), ["2"]);
    assert_eq!(ids(&store, "a@x", "a\u{1}"), ["3"]);
    assert_eq!(ids(&store, "a@xy", "a"), ["4"]);

    store
        .write_now(Box::new(|txn| remove_service(txn, "a@x")))
        .expect("remove service");
    assert_eq!(ps.node_count("a@x").expect("count"), 0);
    assert!(ids(&store, "a@x", "ab").is_empty());
    assert_eq!(ids(&store, "a@xy", "a"), ["4"]);
    assert!(ps.node("a@xy", "a").expect("node").is_some());
}

#[test]
fn account_deletion_removes_its_pep_service_only() {
    let dir = TempDir::new("pubsub-account");
    let store = open(&dir);
    create_accounts_for_test(&store, &[PEP, "juliet@example.orgy"]);
    publish(&store, PEP, "urn:xmpp:avatar:data", item("1", 1), 1);
    publish(&store, PEP, "storage:bookmarks", item("2", 2), 1);
    publish(&store, "juliet@example.orgy", "n", item("3", 3), 1);
    publish(&store, PS, "juliet@example.org", item("4", 4), 1);
    store
        .write_now(delete_account_op(PEP))
        .expect("delete account");
    assert_eq!(store.pubsub().node_count(PEP).expect("count"), 0);
    assert!(ids(&store, PEP, "urn:xmpp:avatar:data").is_empty());
    assert!(ids(&store, PEP, "storage:bookmarks").is_empty());
    assert_eq!(ids(&store, "juliet@example.orgy", "n"), ["3"]);
    assert_eq!(ids(&store, PS, "juliet@example.org"), ["4"]);
}

#[test]
fn export_and_import_round_trip() {
    let dir = TempDir::new("pubsub-export");
    let store = open(&dir);
    publish(&store, PEP, "b", item("x", 5), 10);
    publish(&store, PEP, "b", item("w", 6), 10);
    publish(&store, PEP, "a", item("only", 1), 10);
    store
        .write_now(create_node_op(PEP, "empty", record("e"), 10))
        .expect("create");
    publish(&store, "other@example.org", "a", item("no", 1), 10);
    let exported = store.read(|txn| all_in(txn, PEP)).expect("export");
    assert_eq!(
        exported
            .iter()
            .map(|(n, _, items)| (n.as_str(), items.iter().map(|i| i.id.as_str()).collect()))
            .collect::<Vec<(&str, Vec<&str>)>>(),
        [
            ("a", vec!["only"]),
            ("b", vec!["x", "w"]),
            ("empty", vec![])
        ]
    );

    let dir2 = TempDir::new("pubsub-import");
    let target = open(&dir2);
    // Imported nodes replace what is there, items included.
    publish(&target, PEP, "b", item("stale", 1), 10);
    for (node, rec, items) in exported.clone() {
        target
            .write_now(import_node_op(PEP, &node, rec, items))
            .expect("import");
    }
    assert_eq!(
        target.read(|txn| all_in(txn, PEP)).expect("again"),
        exported
    );
    assert!(target.read(|txn| all_in(txn, PS)).expect("none").is_empty());
    assert!(matches!(
        target.write_now(import_node_op(PEP, "", record("x"), Vec::new())),
        Err(StoreError::LimitExceeded(_))
    ));
    assert!(matches!(
        target.write_now(import_node_op(PEP, "n", record("x"), vec![item("", 1)])),
        Err(StoreError::LimitExceeded(_))
    ));
    assert_eq!(target.pubsub().node(PEP, "n").expect("node"), None);
}

#[test]
fn a_nul_in_a_key_part_is_refused() {
    let dir = TempDir::new("pubsub-nul");
    let store = open(&dir);
    let invalid = |r: Result<(), StoreError>| matches!(r, Err(StoreError::InvalidKey { .. }));
    assert!(invalid(store.write_now(create_node_op(
        "a\0b",
        "n",
        record("x"),
        10
    ))));
    assert!(invalid(store.write_now(create_node_op(
        PS,
        "n\0",
        record("x"),
        10
    ))));
    assert!(invalid(store.write_now(publish_op(
        PS,
        "n",
        item("i\0d", 1),
        10,
        Some((record("x"), 10))
    ))));
    assert!(invalid(store.write_now(import_node_op(
        PS,
        "n",
        record("x"),
        vec![item("\0", 1)]
    ))));
    assert!(invalid(store.write_now(delete_node_op(PS, "\0"))));
    let ps = store.pubsub();
    assert!(matches!(
        ps.node(PS, "a\0"),
        Err(StoreError::InvalidKey { .. })
    ));
    assert!(matches!(
        ps.items(PS, "a\0"),
        Err(StoreError::InvalidKey { .. })
    ));
    assert!(matches!(
        ps.item(PS, "a", "\0"),
        Err(StoreError::InvalidKey { ref table, .. }) if table == "pubsub_items"
    ));
    assert!(matches!(
        ps.node_count("\0"),
        Err(StoreError::InvalidKey { .. })
    ));
    assert_eq!(ps.node_count(PS).expect("count"), 0);
}

#[test]
fn a_file_without_the_tables_reads_as_empty() {
    let dir = TempDir::new("pubsub-old-file");
    let store = open(&dir);
    create_accounts_for_test(&store, &[PEP]);
    store
        .write_now(Box::new(|txn| {
            txn.delete_table(schema::PUBSUB_NODES)?;
            txn.delete_table(schema::PUBSUB_ITEMS)?;
            Ok(())
        }))
        .expect("make it old");
    let ps = store.pubsub();
    assert_eq!(ps.node(PEP, "n").expect("node"), None);
    assert!(ps.nodes(PEP).expect("nodes").is_empty());
    assert!(ps.items(PEP, "n").expect("items").is_empty());
    assert_eq!(ps.item(PEP, "n", "1").expect("item"), None);
    assert_eq!(ps.last_item(PEP, "n").expect("last"), None);
    assert_eq!(ps.node_count(PEP).expect("count"), 0);
    assert!(store.read(|txn| all_in(txn, PEP)).expect("all").is_empty());
    // The first write creates them; so does an account deletion.
    publish(&store, PEP, "n", item("1", 1), 1);
    assert_eq!(ids(&store, PEP, "n"), ["1"]);
    store
        .write_now(Box::new(|txn| {
            txn.delete_table(schema::PUBSUB_NODES)?;
            txn.delete_table(schema::PUBSUB_ITEMS)?;
            Ok(())
        }))
        .expect("make it old again");
    store
        .write_now(delete_account_op(PEP))
        .expect("delete account");
}
