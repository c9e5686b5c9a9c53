use super::*;
use crate::store::account_exists::create_accounts_for_test;
use crate::store::delete_account_op;
use crate::testing::TempDir;

const ROMEO: &str = "romeo@example.org";
const JULIET: &str = "juliet@example.org";
const NOW: u64 = 1_800_000_000;

fn open(dir: &TempDir) -> Store {
    let store = Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
    create_accounts_for_test(&store, &[ROMEO, JULIET]);
    store
}

fn record(owner: &str, size: u64, created: u64) -> FileRecord {
    FileRecord {
        owner: owner.to_string(),
        name: "très cool.jpg".to_string(),
        size,
        content_type: Some("image/jpeg".to_string()),
        created,
        stored: None,
    }
}

const LIMITS: Limits = Limits {
    daily_quota: 1000,
    max_total: 2500,
    pending_secs: 600,
    max_slots_per_day: usize::MAX,
};

fn insert(store: &Store, id: &str, r: FileRecord) -> Result<(), StoreError> {
    store.write_now(insert_slot_op(id, r, LIMITS))
}

/// Set-up: a slot inserted whatever the limits say at its creation time.
fn given(store: &Store, id: &str, r: FileRecord) {
    let unlimited = Limits {
        daily_quota: u64::MAX,
        max_total: u64::MAX,
        ..LIMITS
    };
    store
        .write_now(insert_slot_op(id, r, unlimited))
        .expect("set-up slot");
}

#[test]
fn records_round_trip() {
    let mut r = record(ROMEO, 23_456, NOW);
    for stored in [None, Some(NOW + 5)] {
        for content_type in [None, Some("text/plain; charset=utf-8".to_string())] {
            r.stored = stored;
            r.content_type = content_type;
            let bytes = r.encode().expect("encode");
            assert_eq!(FileRecord::decode("id", &bytes).expect("decode"), r);
        }
    }
}

/// A damaged value is an error naming the table, never a panic: every
/// truncation, a bad version and trailing bytes.
#[test]
fn damaged_records_are_corrupt() {
    let bytes = record(ROMEO, 1, NOW).encode().expect("encode");
    for len in 0..bytes.len() {
        let err = FileRecord::decode("x", &bytes[..len]).expect_err("truncated");
        assert!(
            matches!(&err, StoreError::Corrupt(m) if m.contains("upload_files")),
            "{err}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(FileRecord::decode("x", &longer).is_err());
    let mut version = bytes.clone();
    version[0] = 2;
    assert!(FileRecord::decode("x", &version).is_err());
    let mut not_utf8 = bytes;
    let last = not_utf8.len() - 1;
    not_utf8[last] = 0xff;
    assert!(FileRecord::decode("x", &not_utf8).is_err());
}

#[test]
fn slots_are_stored_listed_and_marked() {
    let dir = TempDir::new("upload-store");
    let store = open(&dir);
    let uploads = store.uploads();
    assert_eq!(uploads.get("a").expect("get"), None);
    assert!(uploads.all().expect("all").is_empty());
    insert(&store, "a", record(ROMEO, 10, NOW)).expect("insert a");
    insert(&store, "b", record(JULIET, 20, NOW)).expect("insert b");
    insert(&store, "c", record(ROMEO, 30, NOW)).expect("insert c");
    assert!(matches!(
        insert(&store, "a", record(ROMEO, 1, NOW)),
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(uploads.get("a").expect("get"), Some(record(ROMEO, 10, NOW)));
    let ids =
        |list: Vec<(String, FileRecord)>| list.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
    assert_eq!(ids(uploads.all().expect("all")), ["a", "b", "c"]);
    assert_eq!(ids(uploads.of_owner(ROMEO).expect("romeo")), ["a", "c"]);
    assert_eq!(ids(uploads.of_owner(JULIET).expect("juliet")), ["b"]);
    assert!(
        uploads
            .of_owner("nobody@example.org")
            .expect("none")
            .is_empty()
    );

    store.write_now(mark_stored_op("a", NOW + 3)).expect("mark");
    assert_eq!(
        uploads.get("a").expect("get").and_then(|r| r.stored),
        Some(NOW + 3)
    );
    assert!(matches!(
        store.write_now(mark_stored_op("a", NOW + 4)),
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(matches!(
        store.write_now(mark_stored_op("zz", NOW)),
        Err(StoreError::NotFound(_))
    ));

    store
        .write_now(remove_op(vec!["a".into(), "missing".into()]))
        .expect("remove");
    assert_eq!(uploads.get("a").expect("get"), None);
    assert_eq!(ids(uploads.of_owner(ROMEO).expect("romeo")), ["c"]);
}

#[test]
fn only_accounts_get_slots() {
    let dir = TempDir::new("upload-account");
    let store = open(&dir);
    assert!(matches!(
        insert(&store, "a", record("ghost@example.org", 1, NOW)),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn the_daily_quota_counts_the_last_24_hours() {
    let dir = TempDir::new("upload-quota");
    let store = open(&dir);
    let uploads = store.uploads();
    // Yesterday's upload no longer counts; today's stored ones and the
    // pending slot still usable do; an abandoned slot does not.
    let mut old = record(ROMEO, 900, NOW - DAY_SECS);
    old.stored = Some(NOW - DAY_SECS + 1);
    given(&store, "old", old);
    let mut first = record(ROMEO, 300, NOW - 7_200);
    first.stored = Some(NOW - 7_000);
    given(&store, "first", first);
    given(&store, "abandoned", record(ROMEO, 500, NOW - 3_600));
    given(&store, "pending", record(ROMEO, 400, NOW - 60));
    assert_eq!(
        uploads
            .owner_bytes_since(ROMEO, NOW - DAY_SECS, NOW, LIMITS.pending_secs)
            .expect("bytes"),
        700
    );
    assert_eq!(
        uploads.check_room(ROMEO, 300, NOW, &LIMITS).expect("room"),
        Ok(())
    );
    // 301 more would pass the quota until the first upload leaves the
    // window; 701 more until the pending one does too.
    assert_eq!(
        uploads.check_room(ROMEO, 301, NOW, &LIMITS).expect("room"),
        Err(Refusal::Quota {
            retry_at: NOW - 7_200 + DAY_SECS
        })
    );
    assert_eq!(
        uploads.check_room(ROMEO, 701, NOW, &LIMITS).expect("room"),
        Err(Refusal::Quota {
            retry_at: NOW - 60 + DAY_SECS
        })
    );
    // More than the quota itself: only a new day helps.
    assert_eq!(
        uploads.check_room(ROMEO, 1001, NOW, &LIMITS).expect("room"),
        Err(Refusal::Quota {
            retry_at: NOW + DAY_SECS
        })
    );
    // Another account has its own quota (and the total has room for
    // 900 more: 2500 less 1600).
    assert_eq!(
        uploads.check_room(JULIET, 900, NOW, &LIMITS).expect("room"),
        Ok(())
    );
    // The insert checks inside its write.
    let err = insert(&store, "more", record(ROMEO, 301, NOW)).expect_err("over quota");
    assert!(
        matches!(&err, StoreError::LimitExceeded(m) if m == "Daily upload quota reached"),
        "{err}"
    );
    insert(&store, "more", record(ROMEO, 300, NOW)).expect("within quota");
}

#[test]
fn the_total_counts_every_file_and_usable_slot() {
    let dir = TempDir::new("upload-total");
    let store = open(&dir);
    let uploads = store.uploads();
    let mut stored = record(JULIET, 1000, NOW - 2 * DAY_SECS);
    stored.stored = Some(NOW - 2 * DAY_SECS);
    given(&store, "j1", stored);
    given(&store, "j2", record(JULIET, 1000, NOW - DAY_SECS - 1));
    given(&store, "r1", record(ROMEO, 1000, NOW - 10));
    assert_eq!(
        uploads
            .total_bytes(NOW, LIMITS.pending_secs)
            .expect("total"),
        2000
    );
    assert_eq!(
        uploads.check_room(ROMEO, 1, NOW, &LIMITS).expect("room"),
        Err(Refusal::Quota {
            retry_at: NOW - 10 + DAY_SECS
        })
    );
    assert_eq!(
        uploads.check_room(JULIET, 500, NOW, &LIMITS).expect("room"),
        Ok(())
    );
    assert_eq!(
        uploads.check_room(JULIET, 501, NOW, &LIMITS).expect("room"),
        Err(Refusal::Full)
    );
    let err = insert(&store, "j3", record(JULIET, 501, NOW)).expect_err("full");
    assert!(
        matches!(&err, StoreError::LimitExceeded(m) if m == "The server's upload storage is full"),
        "{err}"
    );
}

#[test]
fn an_empty_database_only_counts_the_new_slot() {
    let dir = TempDir::new("upload-empty");
    let store = open(&dir);
    let uploads = store.uploads();
    assert_eq!(
        uploads.check_room(ROMEO, 1000, NOW, &LIMITS).expect("room"),
        Ok(())
    );
    assert!(matches!(
        uploads.check_room(ROMEO, 1001, NOW, &LIMITS).expect("room"),
        Err(Refusal::Quota { .. })
    ));
    let wide = Limits {
        daily_quota: 5000,
        ..LIMITS
    };
    assert_eq!(
        uploads.check_room(ROMEO, 2501, NOW, &wide).expect("room"),
        Err(Refusal::Full)
    );
    assert_eq!(uploads.total_bytes(NOW, 1).expect("total"), 0);
}

#[test]
fn deleting_an_account_removes_its_records() {
    let dir = TempDir::new("upload-delete");
    let store = open(&dir);
    insert(&store, "a", record(ROMEO, 10, NOW)).expect("a");
    insert(&store, "b", record(JULIET, 10, NOW)).expect("b");
    store.write_now(delete_account_op(ROMEO)).expect("delete");
    let uploads = store.uploads();
    assert_eq!(uploads.get("a").expect("get"), None);
    assert!(uploads.of_owner(ROMEO).expect("romeo").is_empty());
    assert!(uploads.get("b").expect("get").is_some());
}

#[test]
fn the_number_of_slots_a_day_is_limited_too() {
    let dir = TempDir::new("upload-slot-count");
    let store = open(&dir);
    let limits = Limits {
        max_slots_per_day: 3,
        ..LIMITS
    };
    // Abandoned or not, every slot of the last 24 hours counts.
    given(&store, "old", record(ROMEO, 1, NOW - DAY_SECS));
    given(&store, "a", record(ROMEO, 1, NOW - 5_000));
    given(&store, "b", record(ROMEO, 1, NOW - 4_000));
    let uploads = store.uploads();
    assert_eq!(
        uploads.check_room(ROMEO, 1, NOW, &limits).expect("room"),
        Ok(())
    );
    store
        .write_now(insert_slot_op("c", record(ROMEO, 1, NOW), limits))
        .expect("the third");
    assert_eq!(
        uploads.check_room(ROMEO, 1, NOW, &limits).expect("room"),
        Err(Refusal::Quota {
            retry_at: NOW - 5_000 + DAY_SECS
        })
    );
    assert!(matches!(
        store.write_now(insert_slot_op("d", record(ROMEO, 1, NOW), limits)),
        Err(StoreError::LimitExceeded(_))
    ));
    assert_eq!(
        uploads.check_room(JULIET, 1, NOW, &limits).expect("room"),
        Ok(())
    );
}
