//! `perch upload list` and `perch upload purge`, run by the server (through
//! the admin socket) or on the database file when none runs
//! (`crate::admin`).

use std::time::SystemTime;

use crate::jid::Jid;
use crate::server::Server;
use crate::store::StoreError;
use crate::store::upload::FileRecord;

use super::slot::DEFAULT_TYPE;
use super::{dir, expiry, unix_secs};

/// What `perch upload list` shows when there is nothing.
pub const NO_FILES: &str = "no uploaded files";

/// The bare JID `raw` names, normalized, for `--owner`.
pub fn owner_jid(raw: &str) -> Result<Jid, String> {
    let jid = Jid::parse(raw).map_err(|e| format!("'{raw}' is not a valid address: {e}"))?;
    if jid.local().is_none() || jid.resource().is_some() {
        return Err(format!(
            "'{raw}' is not an account address: expected user@host, without a /resource"
        ));
    }
    Ok(jid)
}

/// How long ago `then` was, roughly: `45s`, `12m`, `5h`, `3d`.
pub fn age(now: u64, then: u64) -> String {
    let secs = now.saturating_sub(then);
    match secs {
        0..60 => format!("{secs}s"),
        60..3_600 => format!("{}m", secs / 60),
        3_600..86_400 => format!("{}h", secs / 3_600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// One line of `perch upload list`: id, owner, size, type, age, name, and
/// whether it is a slot not uploaded to yet.
pub fn line(id: &str, record: &FileRecord, now: u64) -> String {
    let mut line = format!(
        "{id} {} {} {} {} {}",
        record.owner,
        record.size,
        record
            .content_type
            .as_deref()
            .map_or(DEFAULT_TYPE, super::slot::essence_of),
        age(now, record.stored.unwrap_or(record.created)),
        record.name
    );
    if record.stored.is_none() {
        line.push_str(" (not uploaded yet)");
    }
    line
}

/// The lines of `perch upload list [--owner JID]`, oldest first, then the
/// totals.
pub fn list(server: &Server, owner: Option<&str>) -> Result<Vec<String>, StoreError> {
    let uploads = server.store().uploads();
    let mut records = match owner {
        Some(owner) => uploads.of_owner(owner)?,
        None => uploads.all()?,
    };
    if records.is_empty() {
        return Ok(vec![NO_FILES.to_string()]);
    }
    records.sort_by(|(a_id, a), (b_id, b)| (a.created, a_id).cmp(&(b.created, b_id)));
    let now = unix_secs(SystemTime::now());
    let mut lines: Vec<String> = records.iter().map(|(id, r)| line(id, r, now)).collect();
    let bytes = records
        .iter()
        .fold(0u64, |sum, (_, r)| sum.saturating_add(r.size));
    lines.push(format!("{} files, {bytes} bytes", records.len()));
    Ok(lines)
}

/// `perch upload purge`: removes the files (and slots) handed out at least
/// `older_than_days` days ago, of `owner` only if given; uploads under way
/// are left alone.
pub async fn purge(
    server: &Server,
    older_than_days: Option<u32>,
    owner: Option<&str>,
) -> Result<Vec<String>, StoreError> {
    let uploads = server.store().uploads();
    let records = match owner {
        Some(owner) => uploads.of_owner(owner)?,
        None => uploads.all()?,
    };
    let now = unix_secs(SystemTime::now());
    let cutoff = older_than_days.map(|days| now.saturating_sub(u64::from(days) * 86_400));
    let mut bytes = 0u64;
    let mut doomed = Vec::new();
    for (id, record) in records {
        let old_enough = cutoff.is_none_or(|cutoff| record.created <= cutoff);
        let busy = server.upload().is_some_and(|u| u.is_active(&id));
        if old_enough && !busy {
            bytes = bytes.saturating_add(record.size);
            doomed.push(id);
        }
    }
    let count = doomed.len();
    expiry::remove(server, &dir(server.config()), doomed).await?;
    Ok(vec![format!("removed {count} files ({bytes} bytes)")])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::store::Store;
    use crate::store::upload::{Limits, insert_slot_op};
    use crate::testing::TempDir;

    #[test]
    fn ages() {
        assert_eq!(age(100, 100), "0s");
        assert_eq!(age(100, 200), "0s");
        assert_eq!(age(159, 100), "59s");
        assert_eq!(age(3_700, 100), "1h");
        assert_eq!(age(7_200, 3_600), "1h");
        assert_eq!(age(1_000, 400), "10m");
        assert_eq!(age(86_400 * 3 + 5, 0), "3d");
    }

    #[test]
    fn owners() {
        assert_eq!(
            owner_jid("Romeo@Localhost").map(|j| j.to_string()),
            Ok("romeo@localhost".to_string())
        );
        assert!(owner_jid("localhost").is_err());
        assert!(owner_jid("a@b/c").is_err());
        assert!(owner_jid("@@").is_err());
    }

    #[test]
    fn list_and_purge() {
        let dir = TempDir::new("upload-admin");
        let config = Config::defaults_with_state_dir(Some(dir.path().to_path_buf()));
        let store = Store::open(&dir.path().join("perch.redb"), 1 << 20).expect("open");
        let (romeo, juliet) = ("romeo@localhost", "juliet@localhost");
        crate::store::create_accounts_for_test(&store, &[romeo, juliet]);
        let server = Server::new(config, store);
        assert_eq!(list(&server, None).expect("list"), [NO_FILES]);
        let now = unix_secs(SystemTime::now());
        let unlimited = Limits {
            daily_quota: u64::MAX,
            max_total: u64::MAX,
            pending_secs: 600,
            max_slots_per_day: usize::MAX,
        };
        let ids: Vec<String> = (1..=3u8).map(|n| format!("{n:032x}")).collect();
        for (id, owner, age_days) in [
            (&ids[0], romeo, 10),
            (&ids[1], romeo, 1),
            (&ids[2], juliet, 10),
        ] {
            let created = now - age_days * 86_400;
            let record = FileRecord {
                owner: owner.into(),
                name: "a b.txt".into(),
                size: 5,
                content_type: Some("text/plain".into()),
                created,
                stored: Some(created + 1),
            };
            server
                .store()
                .write_now(insert_slot_op(id, record, unlimited))
                .expect("slot");
            std::fs::create_dir_all(super::dir(server.config())).expect("dir");
            std::fs::write(super::dir(server.config()).join(id), b"hello").expect("file");
        }
        let lines = list(&server, Some(romeo)).expect("list");
        assert_eq!(
            lines,
            [
                format!("{} romeo@localhost 5 text/plain 9d a b.txt", ids[0]),
                format!("{} romeo@localhost 5 text/plain 23h a b.txt", ids[1]),
                "2 files, 10 bytes".to_string(),
            ]
        );
        let purged = smol::block_on(purge(&server, Some(5), Some(romeo))).expect("purge");
        assert_eq!(purged, ["removed 1 files (5 bytes)"]);
        assert!(!super::dir(server.config()).join(&ids[0]).exists());
        assert!(super::dir(server.config()).join(&ids[2]).exists());
        let purged = smol::block_on(purge(&server, Some(0), None)).expect("purge all");
        assert_eq!(purged, ["removed 2 files (10 bytes)"]);
        assert_eq!(list(&server, None).expect("list"), [NO_FILES]);
    }
}
