use super::*;
use crate::store::account_exists::create_accounts_for_test;
use crate::store::schema;
use crate::testing::TempDir;

const ME: &str = "me@x";

fn open(dir: &TempDir) -> Store {
    let store = Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
    create_accounts_for_test(&store, &[ME, "other@x", "me@xy"]);
    store
}

fn record(stamp: u64, index: &str, body: &str) -> ArchiveRecord {
    ArchiveRecord {
        stamp,
        flags: 0,
        index: index.to_string(),
        extra: String::new(),
        xml: format!("<message><body>{body}</body></message>").into_bytes(),
    }
}

/// Messages 1..=n for `owner`; stamps 10, 20, ..., peers alternating a@p, b@p.
fn fill(store: &Store, kind: Kind, owner: &str, n: u64) -> Vec<ArchiveRecord> {
    let records: Vec<ArchiveRecord> = (1..=n)
        .map(|i| {
            record(
                i * 10,
                if i % 2 == 1 { "a@p" } else { "b@p" },
                &i.to_string(),
            )
        })
        .collect();
    for r in &records {
        store
            .write_now(append_op(kind, owner, r.clone()))
            .expect("append");
    }
    records
}

fn stamps(records: &[ArchiveRecord]) -> Vec<u64> {
    records.iter().map(|r| r.stamp).collect()
}

fn all() -> Scan<'static> {
    Scan {
        lo: 0,
        hi: u64::MAX,
        with: None,
        descending: false,
        limit: 100,
    }
}

fn run(store: &Store, kind: Kind, owner: &str, scan: Scan<'_>) -> (Vec<u64>, bool) {
    let (records, more) = super::scan(store, kind, owner, &scan, &|_| true).expect("scan");
    (stamps(&records), more)
}

/// The totals recomputed from the messages themselves.
fn recount(store: &Store, kind: Kind, owner: &str) -> Stats {
    let (records, _) = super::scan(
        store,
        kind,
        owner,
        &Scan {
            limit: usize::MAX,
            ..all()
        },
        &|_| true,
    )
    .expect("scan");
    Stats {
        count: records.len() as u64,
        bytes: records
            .iter()
            .map(|r| r.encode().expect("encode").len() as u64)
            .sum(),
        first: records.first().map_or(0, |r| r.stamp),
        last: records.last().map_or(0, |r| r.stamp),
    }
}

fn assert_exact(store: &Store, kind: Kind, owner: &str) {
    assert_eq!(
        stats(store, kind, owner).expect("stats"),
        recount(store, kind, owner),
        "totals of {owner}"
    );
}

/// The with-index entries of `owner` under `with`.
fn index_stamps(store: &Store, kind: Kind, owner: &str, with: &str) -> Vec<u64> {
    let t = kind.tables();
    store
        .read(|txn| {
            let table = txn.open_table(t.with)?;
            let range = keys::pair_numbered_between(t.with, owner, with, 0, u64::MAX)?;
            let mut out = Vec::new();
            for entry in table.range(range.bounds())? {
                out.push(keys::pair_number(t.with, owner, with, entry?.0.value())?);
            }
            Ok(out)
        })
        .expect("index")
}

#[test]
fn records_round_trip() {
    let r = ArchiveRecord {
        stamp: 7,
        flags: OUTGOING | TOMBSTONE | 0x80,
        index: "nïck".into(),
        extra: "real@jid/res".into(),
        xml: b"<message/>".to_vec(),
    };
    let value = r.encode().expect("encode");
    assert_eq!(value[..3], [0x83, 0, 5]);
    assert_eq!(
        ArchiveRecord::decode(Kind::Room, 7, &value).expect("decode"),
        r
    );
    let empty = ArchiveRecord {
        stamp: 0,
        flags: 0,
        index: String::new(),
        extra: String::new(),
        xml: Vec::new(),
    };
    let value = empty.encode().expect("encode");
    assert_eq!(value, [0, 0, 0, 0, 0]);
    assert_eq!(
        ArchiveRecord::decode(Kind::User, 0, &value).expect("decode"),
        empty
    );
}

#[test]
fn damaged_values_are_corrupt_naming_the_table() {
    let good = record(5, "a@p", "hi").encode().expect("encode");
    let mut bad_utf8 = good.clone();
    bad_utf8[3] = 0xff;
    let mut long_index = good.clone();
    long_index[1] = 0xff;
    let damaged: [&[u8]; 6] = [
        &[],
        &[0],
        &[0, 0],
        &[0, 0, 1],
        &[0, 0, 0, 0],
        &[0, 0, 0, 0, 3, b'a'],
    ];
    for value in damaged
        .iter()
        .copied()
        .chain([&bad_utf8[..], &long_index[..]])
    {
        for (kind, name) in [
            (Kind::User, "archive_user_messages"),
            (Kind::Room, "archive_room_messages"),
        ] {
            match ArchiveRecord::decode(kind, 5, value) {
                Err(StoreError::Corrupt(m)) => assert!(m.contains(name), "{m}"),
                other => panic!("{value:?}: expected Corrupt, got {other:?}"),
            }
        }
    }
    assert!(Stats::decode(ARCHIVE_USER_STATS, "o", &[0; 31]).is_err());
    assert!(Stats::decode(ARCHIVE_USER_STATS, "o", &[0; 33]).is_err());
}

#[test]
fn oversized_fields_are_refused() {
    let mut r = record(1, &"n".repeat(MAX_FIELD_BYTES), "x");
    assert!(r.encode().is_ok());
    r.index.push('n');
    assert!(matches!(r.encode(), Err(StoreError::LimitExceeded(_))));
    let dir = TempDir::new("archive-oversized");
    let store = open(&dir);
    let refused = store.write_now(append_op(Kind::User, ME, r));
    assert!(refused.is_err_and(|e| e.is_refusal()));
    assert_eq!(
        stats(&store, Kind::User, ME).expect("stats"),
        Stats::default()
    );
}

#[test]
fn append_and_scan_both_directions() {
    let dir = TempDir::new("archive-scan");
    let store = open(&dir);
    let written = fill(&store, Kind::User, ME, 7);
    fill(&store, Kind::User, "me@xy", 2);
    fill(&store, Kind::User, "other@x", 3);
    // Dropped: no such account.
    store
        .write_now(append_op(Kind::User, "gone@x", record(1, "a@p", "lost")))
        .expect("dropped");
    assert_eq!(
        stats(&store, Kind::User, "gone@x").expect("stats"),
        Stats::default()
    );

    let (records, more) = super::scan(&store, Kind::User, ME, &all(), &|_| true).expect("scan");
    assert_eq!(records, written);
    assert!(!more);

    let page = |lo, hi, descending, limit| {
        run(
            &store,
            Kind::User,
            ME,
            Scan {
                lo,
                hi,
                with: None,
                descending,
                limit,
            },
        )
    };
    assert_eq!(page(0, u64::MAX, false, 3), (vec![10, 20, 30], true));
    assert_eq!(page(0, u64::MAX, true, 3), (vec![70, 60, 50], true));
    assert_eq!(page(31, u64::MAX, false, 3), (vec![40, 50, 60], true));
    assert_eq!(page(41, u64::MAX, false, 3), (vec![50, 60, 70], false));
    assert_eq!(page(0, 39, true, 3), (vec![30, 20, 10], false));
    assert_eq!(page(0, 49, true, 3), (vec![40, 30, 20], true));
    assert_eq!(page(20, 40, false, 10), (vec![20, 30, 40], false));
    assert_eq!(page(20, 40, true, 10), (vec![40, 30, 20], false));
    assert_eq!(page(0, u64::MAX, false, 0), (vec![], true));
    assert_eq!(page(71, u64::MAX, false, 0), (vec![], false));
    assert_eq!(page(40, 30, false, 10), (vec![], false));
    assert_eq!(page(u64::MAX, u64::MAX, true, 10), (vec![], false));

    // Other archives and kinds stay apart.
    assert_eq!(run(&store, Kind::User, "me@xy", all()).0, vec![10, 20]);
    assert_eq!(run(&store, Kind::Room, ME, all()).0, Vec::<u64>::new());

    assert_eq!(
        get(&store, Kind::User, ME, 30).expect("get"),
        Some(written[2].clone())
    );
    assert_eq!(get(&store, Kind::User, ME, 31).expect("get"), None);
    assert_eq!(get(&store, Kind::Room, ME, 30).expect("get"), None);
    assert_eq!(
        stats(&store, Kind::User, ME).expect("stats"),
        Stats {
            count: 7,
            bytes: written
                .iter()
                .map(|r| r.encode().expect("len").len() as u64)
                .sum(),
            first: 10,
            last: 70,
        }
    );
    assert_exact(&store, Kind::User, "me@xy");
    assert_eq!(
        stamps(&newest(&store, Kind::User, ME, 3).expect("newest")),
        [50, 60, 70]
    );
    assert_eq!(newest(&store, Kind::User, ME, 30).expect("newest"), written);
    assert!(
        newest(&store, Kind::User, ME, 0)
            .expect("newest")
            .is_empty()
    );
}

#[test]
fn with_index_scans() {
    let dir = TempDir::new("archive-with");
    let store = open(&dir);
    fill(&store, Kind::User, ME, 7);
    let with = |with, lo, hi, descending, limit| {
        run(
            &store,
            Kind::User,
            ME,
            Scan {
                lo,
                hi,
                with: Some(with),
                descending,
                limit,
            },
        )
    };
    assert_eq!(
        with("a@p", 0, u64::MAX, false, 10),
        (vec![10, 30, 50, 70], false)
    );
    assert_eq!(
        with("b@p", 0, u64::MAX, false, 10),
        (vec![20, 40, 60], false)
    );
    assert_eq!(with("a@p", 0, u64::MAX, true, 2), (vec![70, 50], true));
    assert_eq!(with("a@p", 0, 49, true, 2), (vec![30, 10], false));
    assert_eq!(with("a@p", 11, 69, false, 1), (vec![30], true));
    assert_eq!(with("a@p", 31, 50, false, 1), (vec![50], false));
    // A prefix of a key is another key.
    assert_eq!(with("a@", 0, u64::MAX, false, 10), (vec![], false));
    assert_eq!(with("a@pp", 0, u64::MAX, false, 10), (vec![], false));
    assert_eq!(with("c@p", 0, u64::MAX, false, 10), (vec![], false));
}

#[test]
fn keep_filters_and_more_means_a_kept_record() {
    let dir = TempDir::new("archive-keep");
    let store = open(&dir);
    fill(&store, Kind::User, ME, 7);
    let odd = |r: &ArchiveRecord| {
        r.xml
            .windows(3)
            .any(|w| [&b">1<"[..], b">3<", b">5<"].contains(&w))
    };
    let (records, more) =
        super::scan(&store, Kind::User, ME, &Scan { limit: 2, ..all() }, &odd).expect("scan");
    assert_eq!((stamps(&records), more), (vec![10, 30], true));
    // 50 is the last kept one: 60 and 70 are not, so nothing more.
    let (records, more) = super::scan(
        &store,
        Kind::User,
        ME,
        &Scan {
            lo: 31,
            limit: 1,
            ..all()
        },
        &odd,
    )
    .expect("scan");
    assert_eq!((stamps(&records), more), (vec![50], false));
    let (records, more) = super::scan(
        &store,
        Kind::User,
        ME,
        &Scan {
            with: Some("a@p"),
            descending: true,
            limit: 1,
            ..all()
        },
        &odd,
    )
    .expect("scan");
    assert_eq!((stamps(&records), more), (vec![50], true));
}

#[test]
fn counts_with_and_without_cap() {
    let dir = TempDir::new("archive-count");
    let store = open(&dir);
    fill(&store, Kind::User, ME, 7);
    let count =
        |lo, hi, with, cap| super::count(&store, Kind::User, ME, lo, hi, with, cap).expect("count");
    assert_eq!(count(0, u64::MAX, None, 100), Some(7));
    assert_eq!(count(10, 70, None, 7), Some(7));
    // The whole archive's count comes from its totals: free, so never
    // withheld.
    assert_eq!(count(0, u64::MAX, None, 6), Some(7));
    assert_eq!(count(11, u64::MAX, None, 100), Some(6));
    assert_eq!(count(11, 69, None, 100), Some(5));
    assert_eq!(count(11, 69, None, 5), Some(5));
    assert_eq!(count(11, 69, None, 4), None);
    assert_eq!(count(0, u64::MAX, Some("a@p"), 100), Some(4));
    assert_eq!(count(0, u64::MAX, Some("a@p"), 3), None);
    assert_eq!(count(0, 40, Some("b@p"), 100), Some(2));
    assert_eq!(count(0, u64::MAX, Some("z@p"), 0), Some(0));
    assert_eq!(count(50, 40, None, 0), Some(0));
    assert_eq!(
        super::count(&store, Kind::User, "other@x", 0, 9, None, 0).expect("count"),
        Some(0)
    );
}

#[test]
fn replace_keeps_index_and_extra() {
    let dir = TempDir::new("archive-replace");
    let store = open(&dir);
    fill(&store, Kind::User, ME, 3);
    store
        .write_now(replace_op(
            Kind::User,
            ME,
            20,
            TOMBSTONE,
            b"<message><retracted/></message>".to_vec(),
        ))
        .expect("replace");
    let got = get(&store, Kind::User, ME, 20)
        .expect("get")
        .expect("present");
    assert_eq!(got.flags, TOMBSTONE);
    assert_eq!(got.index, "b@p");
    assert_eq!(got.xml, b"<message><retracted/></message>");
    assert_eq!(index_stamps(&store, Kind::User, ME, "b@p"), [20]);
    assert_exact(&store, Kind::User, ME);
    // A shorter stanza; then a missing message: nothing happens.
    store
        .write_now(replace_op(Kind::User, ME, 20, TOMBSTONE, b"<m/>".to_vec()))
        .expect("replace");
    assert_exact(&store, Kind::User, ME);
    let before = stats(&store, Kind::User, ME).expect("stats");
    store
        .write_now(replace_op(Kind::User, ME, 25, TOMBSTONE, b"<m/>".to_vec()))
        .expect("missing");
    store
        .write_now(replace_op(
            Kind::User,
            "other@x",
            20,
            TOMBSTONE,
            b"<m/>".to_vec(),
        ))
        .expect("missing");
    assert_eq!(stats(&store, Kind::User, ME).expect("stats"), before);
    assert_eq!(get(&store, Kind::User, ME, 25).expect("get"), None);
}

#[test]
fn appending_a_used_stamp_replaces_the_record() {
    let dir = TempDir::new("archive-again");
    let store = open(&dir);
    fill(&store, Kind::User, ME, 3);
    store
        .write_now(append_op(
            Kind::User,
            ME,
            record(20, "c@p", "again, longer"),
        ))
        .expect("append");
    assert_eq!(
        index_stamps(&store, Kind::User, ME, "b@p"),
        Vec::<u64>::new()
    );
    assert_eq!(index_stamps(&store, Kind::User, ME, "c@p"), [20]);
    assert_eq!(stats(&store, Kind::User, ME).expect("stats").count, 3);
    assert_exact(&store, Kind::User, ME);
    // Out of order stamps keep first/last right.
    store
        .write_now(append_op(Kind::User, ME, record(5, "a@p", "early")))
        .expect("append");
    assert_exact(&store, Kind::User, ME);
}

#[test]
fn delete_before_in_batches() {
    let dir = TempDir::new("archive-expiry");
    let store = open(&dir);
    fill(&store, Kind::User, ME, 7);
    fill(&store, Kind::User, "me@xy", 7);
    store
        .write_now(delete_before_op(Kind::User, ME, 45, 2))
        .expect("delete");
    assert_eq!(run(&store, Kind::User, ME, all()).0, [30, 40, 50, 60, 70]);
    assert_eq!(index_stamps(&store, Kind::User, ME, "a@p"), [30, 50, 70]);
    assert_exact(&store, Kind::User, ME);
    let left = |store: &Store| stats(store, Kind::User, ME).expect("stats").first < 45;
    assert!(left(&store));
    store
        .write_now(delete_before_op(Kind::User, ME, 45, 2))
        .expect("delete");
    assert!(!left(&store));
    assert_eq!(stats(&store, Kind::User, ME).expect("stats").first, 50);
    assert_eq!(index_stamps(&store, Kind::User, ME, "b@p"), [60]);
    // Nothing more below the stamp; nothing at all below 0.
    let txn = store.db().begin_write().expect("txn");
    assert_eq!(
        delete_before(&txn, Kind::User, ME, 45, 10).expect("delete"),
        0
    );
    assert_eq!(
        delete_before(&txn, Kind::User, ME, 0, 10).expect("delete"),
        0
    );
    assert_eq!(
        delete_before(&txn, Kind::User, ME, 65, 10).expect("delete"),
        2
    );
    txn.commit().expect("commit");
    assert_eq!(stats(&store, Kind::User, ME).expect("stats").first, 70);
    assert_exact(&store, Kind::User, ME);
    store
        .write_now(delete_before_op(Kind::User, ME, u64::MAX, 100))
        .expect("delete");
    assert_eq!(
        stats(&store, Kind::User, ME).expect("stats"),
        Stats::default()
    );
    assert_eq!(all_stats(&store, Kind::User).expect("all").len(), 1);
    assert!(index_stamps(&store, Kind::User, ME, "a@p").is_empty());
    // Another account's archive was not touched.
    assert_eq!(stats(&store, Kind::User, "me@xy").expect("stats").count, 7);
}

#[test]
fn trim_to_bytes_drops_the_oldest() {
    let dir = TempDir::new("archive-trim");
    let store = open(&dir);
    fill(&store, Kind::Room, "room@muc", 9);
    let size = record(10, "a@p", "1").encode().expect("len").len() as u64;
    let full = stats(&store, Kind::Room, "room@muc").expect("stats");
    assert_eq!(full.bytes, 9 * size);
    store
        .write_now(trim_to_bytes_op(Kind::Room, "room@muc", full.bytes, 10))
        .expect("within");
    assert_eq!(stats(&store, Kind::Room, "room@muc").expect("stats"), full);
    store
        .write_now(trim_to_bytes_op(Kind::Room, "room@muc", 5 * size, 2))
        .expect("trim");
    assert_eq!(
        run(&store, Kind::Room, "room@muc", all()).0,
        [30, 40, 50, 60, 70, 80, 90]
    );
    store
        .write_now(trim_to_bytes_op(Kind::Room, "room@muc", 5 * size - 1, 100))
        .expect("trim");
    assert_eq!(
        run(&store, Kind::Room, "room@muc", all()).0,
        [60, 70, 80, 90]
    );
    assert_exact(&store, Kind::Room, "room@muc");
    store
        .write_now(trim_to_bytes_op(Kind::Room, "room@muc", 0, 100))
        .expect("trim");
    assert_eq!(
        stats(&store, Kind::Room, "room@muc").expect("stats"),
        Stats::default()
    );
}

#[test]
fn purge_and_account_deletion() {
    let dir = TempDir::new("archive-purge");
    let store = open(&dir);
    fill(&store, Kind::User, ME, 5);
    fill(&store, Kind::User, "me@xy", 2);
    fill(&store, Kind::Room, ME, 2);
    store
        .write_now(put_prefs_op(ME, b"prefs".to_vec()))
        .expect("prefs");
    store
        .write_now(Box::new(|txn| purge(txn, Kind::User, ME)))
        .expect("purge");
    assert_eq!(
        stats(&store, Kind::User, ME).expect("stats"),
        Stats::default()
    );
    assert!(run(&store, Kind::User, ME, all()).0.is_empty());
    assert!(index_stamps(&store, Kind::User, ME, "a@p").is_empty());
    assert_eq!(prefs(&store, ME).expect("prefs"), Some(b"prefs".to_vec()));
    assert_eq!(stats(&store, Kind::Room, ME).expect("stats").count, 2);
    assert_exact(&store, Kind::User, "me@xy");

    fill(&store, Kind::User, ME, 3);
    store
        .write_now(Box::new(|txn| {
            crate::store::account_data::remove_all(txn, ME)
        }))
        .expect("remove");
    assert_eq!(
        stats(&store, Kind::User, ME).expect("stats"),
        Stats::default()
    );
    assert!(index_stamps(&store, Kind::User, ME, "b@p").is_empty());
    assert_eq!(prefs(&store, ME).expect("prefs"), None);
    assert_eq!(
        all_stats(&store, Kind::User)
            .expect("all")
            .into_iter()
            .map(|(owner, s)| (owner, s.count))
            .collect::<Vec<_>>(),
        [("me@xy".to_string(), 2)]
    );
}

#[test]
fn prefs_round_trip() {
    let dir = TempDir::new("archive-prefs");
    let store = open(&dir);
    assert_eq!(prefs(&store, ME).expect("prefs"), None);
    store
        .write_now(put_prefs_op(ME, b"one".to_vec()))
        .expect("put");
    store
        .write_now(put_prefs_op(ME, b"two".to_vec()))
        .expect("put");
    store
        .write_now(put_prefs_op("gone@x", b"lost".to_vec()))
        .expect("dropped");
    assert_eq!(prefs(&store, ME).expect("prefs"), Some(b"two".to_vec()));
    assert_eq!(prefs(&store, "gone@x").expect("prefs"), None);
}

#[test]
fn room_archive_through_muc_writes() {
    use crate::store::{MucWrite, muc_write_op};
    let dir = TempDir::new("archive-muc");
    let store = open(&dir);
    let room = "room@muc";
    let mut writes: Vec<MucWrite> = (1..=5)
        .map(|i| MucWrite::Archive {
            room: room.to_string(),
            record: ArchiveRecord {
                extra: format!("real{i}@x"),
                ..record(i * 10, "nick", "m")
            },
        })
        .collect();
    writes.push(MucWrite::Archive {
        room: "other@muc".into(),
        record: record(10, "nick", "m"),
    });
    store.write_now(muc_write_op(writes)).expect("archive");
    store
        .write_now(muc_write_op(vec![
            MucWrite::ArchiveReplace {
                room: room.into(),
                stamp: 30,
                flags: TOMBSTONE,
                xml: b"<moderated/>".to_vec(),
            },
            MucWrite::ArchiveReplace {
                room: room.into(),
                stamp: 35,
                flags: TOMBSTONE,
                xml: b"<moderated/>".to_vec(),
            },
            MucWrite::ArchiveTrim {
                room: room.into(),
                before: 20,
            },
        ]))
        .expect("replace and trim");
    let got = get(&store, Kind::Room, room, 30)
        .expect("get")
        .expect("present");
    assert_eq!(
        (got.flags, got.extra.as_str(), got.xml.as_slice()),
        (TOMBSTONE, "real3@x", &b"<moderated/>"[..])
    );
    assert_eq!(
        stamps(&newest(&store, Kind::Room, room, 10).expect("newest")),
        [20, 30, 40, 50]
    );
    assert_exact(&store, Kind::Room, room);
    assert_eq!(
        index_stamps(&store, Kind::Room, room, "nick"),
        [20, 30, 40, 50]
    );

    store
        .write_now(muc_write_op(vec![MucWrite::DeleteRoom {
            room: room.into(),
        }]))
        .expect("delete");
    assert_eq!(
        stats(&store, Kind::Room, room).expect("stats"),
        Stats::default()
    );
    assert!(index_stamps(&store, Kind::Room, room, "nick").is_empty());
    assert_eq!(
        stats(&store, Kind::Room, "other@muc").expect("stats").count,
        1
    );
}

#[test]
fn a_file_without_the_tables_reads_as_empty() {
    let dir = TempDir::new("archive-old-file");
    let store = open(&dir);
    store
        .write_now(Box::new(|txn| {
            for def in [
                schema::ARCHIVE_USER_MESSAGES,
                schema::ARCHIVE_USER_WITH,
                schema::ARCHIVE_USER_STATS,
                schema::ARCHIVE_ROOM_MESSAGES,
                schema::ARCHIVE_ROOM_WITH,
                schema::ARCHIVE_ROOM_STATS,
                schema::ARCHIVE_PREFS,
            ] {
                txn.delete_table(def)?;
            }
            Ok(())
        }))
        .expect("make it old");
    for kind in [Kind::User, Kind::Room] {
        assert_eq!(run(&store, kind, ME, all()), (vec![], false));
        let with = Scan {
            with: Some("a@p"),
            ..all()
        };
        assert_eq!(run(&store, kind, ME, with), (vec![], false));
        assert_eq!(get(&store, kind, ME, 1).expect("get"), None);
        assert_eq!(stats(&store, kind, ME).expect("stats"), Stats::default());
        assert!(all_stats(&store, kind).expect("all").is_empty());
        assert_eq!(
            super::count(&store, kind, ME, 0, u64::MAX, None, 5).expect("count"),
            Some(0)
        );
        assert_eq!(
            super::count(&store, kind, ME, 1, 5, None, 5).expect("count"),
            Some(0)
        );
        assert_eq!(
            super::count(&store, kind, ME, 0, 5, Some("a@p"), 5).expect("count"),
            Some(0)
        );
        assert!(newest(&store, kind, ME, 5).expect("newest").is_empty());
    }
    assert_eq!(prefs(&store, ME).expect("prefs"), None);
    // Writes and deletions create the tables.
    store
        .write_now(Box::new(|txn| {
            crate::store::account_data::remove_all(txn, ME)
        }))
        .expect("account deletion");
    create_accounts_for_test(&store, &[ME]);
    fill(&store, Kind::User, ME, 2);
    assert_eq!(stats(&store, Kind::User, ME).expect("stats").count, 2);
}

#[test]
fn a_message_missing_under_its_index_entry_is_corrupt() {
    let dir = TempDir::new("archive-dangling");
    let store = open(&dir);
    fill(&store, Kind::User, ME, 2);
    store
        .write_now(Box::new(|txn| {
            let key = keys::numbered(ARCHIVE_USER_MESSAGES, ME, 10)?;
            txn.open_table(ARCHIVE_USER_MESSAGES)?
                .remove(key.as_slice())?;
            Ok(())
        }))
        .expect("damage");
    let scan = Scan {
        with: Some("a@p"),
        ..all()
    };
    match super::scan(&store, Kind::User, ME, &scan, &|_| true) {
        Err(StoreError::Corrupt(m)) => assert!(m.contains("archive_user_with"), "{m}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// For information, not a test: how long a page takes in a big archive.
/// `cargo test --lib store::archive::tests::page_time -- --ignored --nocapture`
#[test]
#[ignore]
fn page_time_in_a_big_archive() {
    use std::time::Instant;
    let dir = TempDir::new("archive-big");
    let store = Store::open(&dir.path().join("db.redb"), 64 << 20).expect("open");
    let start = Instant::now();
    store
        .write_now(Box::new(|txn| {
            for i in 0..200_000u64 {
                let peer = format!("peer{}@example.com", i % 50);
                let r = record(
                    1_700_000_000_000_000 + i,
                    &peer,
                    &format!("message number {i}"),
                );
                append(txn, Kind::User, ME, &r)?;
            }
            Ok(())
        }))
        .expect("fill");
    println!("filled 200000 records in {:?}", start.elapsed());
    let time = |what: &str, scan: Scan<'_>| {
        let start = Instant::now();
        let (records, more) = super::scan(&store, Kind::User, ME, &scan, &|_| true).expect("scan");
        println!(
            "{what}: {} records, more {more}, {:?}",
            records.len(),
            start.elapsed()
        );
    };
    let page = Scan { limit: 50, ..all() };
    time("first page of 50", page);
    time(
        "last page of 50",
        Scan {
            descending: true,
            ..page
        },
    );
    time(
        "page of 50 in the middle",
        Scan {
            lo: 1_700_000_000_100_000,
            ..page
        },
    );
    time(
        "last page of 50 with one peer",
        Scan {
            with: Some("peer7@example.com"),
            descending: true,
            ..page
        },
    );
    let start = Instant::now();
    let n = super::count(&store, Kind::User, ME, 0, u64::MAX, None, u64::MAX).expect("count");
    println!("count of everything (totals): {n:?}, {:?}", start.elapsed());
    let start = Instant::now();
    let n = super::count(
        &store,
        Kind::User,
        ME,
        1_700_000_000_000_001,
        u64::MAX,
        None,
        u64::MAX,
    )
    .expect("count");
    println!(
        "count of all but the oldest (keys): {n:?}, {:?}",
        start.elapsed()
    );
    let start = Instant::now();
    let n = super::count(
        &store,
        Kind::User,
        ME,
        0,
        u64::MAX,
        Some("peer7@example.com"),
        250,
    )
    .expect("count");
    println!("count with one peer, cap 250: {n:?}, {:?}", start.elapsed());
}
