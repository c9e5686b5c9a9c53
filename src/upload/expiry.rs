//! The upload sweep, once at start-up and then every hour: removes files
//! older than `[upload] expire_days`, slots never used within twice
//! `slot_lifetime_secs` (with their `.part` files), and files no record
//! names any more (their account was deleted: a transaction cannot delete
//! files, so account deletion removes only the records). Records go first,
//! durably, then the files, on the blocking pool; uploads under way are
//! left alone.

use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use crate::config::UploadConfig;
use crate::server::Server;
use crate::store::StoreError;
use crate::store::upload::{self, FileRecord};

use super::{Upload, files, unix_secs};

/// How often the sweep runs.
pub const INTERVAL: Duration = Duration::from_secs(3600);

/// Records removed per write, so one sweep never holds a long
/// transaction.
const BATCH: usize = 500;

/// Sweeps now and then every [`INTERVAL`] while the server runs (spawned
/// at start-up; does nothing when no host offers uploads).
pub async fn run(server: Rc<Server>) {
    if server.upload().is_none() {
        return;
    }
    loop {
        match sweep(&server).await {
            Ok(swept) if swept != Swept::default() => log::info!(
                "upload sweep: {} expired files, {} unused slots, {} files without a record removed",
                swept.expired,
                swept.abandoned,
                swept.orphans
            ),
            Ok(_) => {}
            Err(e) => log::error!("upload sweep: {e}"),
        }
        smol::Timer::after(INTERVAL).await;
    }
}

/// What one sweep removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Stored files past `expire_days`.
    pub expired: usize,
    /// Slots never used.
    pub abandoned: usize,
    /// Files on disk without a record.
    pub orphans: usize,
}

/// Whether `record` is done with at `now`: expired, or a slot abandoned.
/// `None`: it stays.
fn verdict(record: &FileRecord, config: &UploadConfig, now: u64) -> Option<Verdict> {
    match record.stored {
        Some(stored) => config
            .expire_secs()
            .filter(|&secs| stored.saturating_add(secs) <= now)
            .map(|_| Verdict::Expired),
        None => {
            let pending = super::service::limits(config).pending_secs;
            (!record.takes_room(now, pending)).then_some(Verdict::Abandoned)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Expired,
    Abandoned,
}

/// One sweep (see the module's notes).
pub async fn sweep(server: &Server) -> Result<Swept, StoreError> {
    let Some(upload) = server.upload() else {
        return Ok(Swept::default());
    };
    let config = &server.config().upload;
    let now = unix_secs(SystemTime::now());
    let mut swept = Swept::default();
    let mut doomed = Vec::new();
    for (id, record) in server.store().uploads().all()? {
        if upload.is_active(&id) {
            continue;
        }
        match verdict(&record, config, now) {
            Some(Verdict::Expired) => swept.expired += 1,
            Some(Verdict::Abandoned) => swept.abandoned += 1,
            None => continue,
        }
        doomed.push(id);
    }
    remove(server, upload.dir(), doomed).await?;
    swept.orphans = remove_orphans(server, upload).await?;
    Ok(swept)
}

/// Removes the records of `ids` durably, a batch per write, then their
/// files.
pub(super) async fn remove(
    server: &Server,
    dir: &Path,
    ids: Vec<String>,
) -> Result<(), StoreError> {
    for batch in ids.chunks(BATCH) {
        server
            .store()
            .write(upload::remove_op(batch.to_vec()))
            .await?;
        files::remove(dir, batch.to_vec()).await;
    }
    Ok(())
}

/// Removes the files no record names, except those of uploads under way.
/// A record is always written before its file, so a file without one
/// belongs to nobody.
async fn remove_orphans(server: &Server, upload: &Upload) -> Result<usize, StoreError> {
    let listed = match files::list(upload.dir()).await {
        Ok(listed) => listed,
        Err(e) => {
            log::warn!("upload sweep: cannot list {}: {e}", upload.dir().display());
            return Ok(0);
        }
    };
    let uploads = server.store().uploads();
    let mut orphans = Vec::new();
    for file in listed {
        if upload.is_active(&file.id) || orphans.contains(&file.id) {
            continue;
        }
        if uploads.get(&file.id)?.is_none() {
            orphans.push(file.id);
        }
    }
    if orphans.is_empty() {
        return Ok(0);
    }
    Ok(files::remove(upload.dir(), orphans).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::store::Store;
    use crate::testing::TempDir;

    const OWNER: &str = "romeo@localhost";

    fn id(n: u8) -> String {
        format!("{n:032x}")
    }

    fn record(created: u64, stored: Option<u64>) -> FileRecord {
        FileRecord {
            owner: OWNER.into(),
            name: "a.txt".into(),
            size: 1,
            content_type: None,
            created,
            stored,
        }
    }

    #[test]
    fn verdicts() {
        let config = UploadConfig {
            expire_days: 1,
            slot_lifetime_secs: 300,
            ..UploadConfig::default()
        };
        let now = 1_000_000;
        assert_eq!(
            verdict(&record(0, Some(now - 86_400)), &config, now),
            Some(Verdict::Expired)
        );
        assert_eq!(verdict(&record(0, Some(now - 86_399)), &config, now), None);
        assert_eq!(
            verdict(&record(now - 600, None), &config, now),
            Some(Verdict::Abandoned)
        );
        assert_eq!(verdict(&record(now - 599, None), &config, now), None);
        let forever = UploadConfig {
            expire_days: 0,
            ..config
        };
        assert_eq!(verdict(&record(0, Some(1)), &forever, now), None);
    }

    #[test]
    fn a_sweep_removes_what_is_done_with() {
        let dir = TempDir::new("upload-sweep");
        let mut config = Config::defaults_with_state_dir(Some(dir.path().to_path_buf()));
        config.upload.expire_days = 1;
        let store = Store::open(&dir.path().join("perch.redb"), 1 << 20).expect("open");
        crate::store::create_accounts_for_test(&store, &[OWNER]);
        let server = Server::new(config, store);
        let upload = server.upload().expect("upload").clone();
        let now = unix_secs(SystemTime::now());
        let unlimited = upload::Limits {
            daily_quota: u64::MAX,
            max_total: u64::MAX,
            pending_secs: 600,
            max_slots_per_day: usize::MAX,
        };
        let records = [
            (id(1), record(now - 2 * 86_400, Some(now - 2 * 86_400))),
            (id(2), record(now - 10, Some(now - 5))),
            (id(3), record(now - 3_600, None)),
            (id(4), record(now - 10, None)),
            (id(5), record(now - 3_600, None)),
        ];
        for (i, r) in &records {
            server
                .store()
                .write_now(upload::insert_slot_op(i, r.clone(), unlimited))
                .expect("slot");
        }
        std::fs::create_dir_all(upload.dir()).expect("dir");
        for name in [
            id(1),
            id(2),
            format!("{}.part", id(3)),
            id(9),
            format!("{}.part", id(8)),
            format!("{}.part", id(5)),
        ] {
            std::fs::write(upload.dir().join(name), b"x").expect("file");
        }
        // An upload under way into slot 5 is left alone.
        let active = upload.begin_put(&id(5)).expect("active");
        let swept = smol::block_on(sweep(&server)).expect("sweep");
        assert_eq!(
            swept,
            Swept {
                expired: 1,
                abandoned: 1,
                orphans: 2
            }
        );
        let left: Vec<String> = server
            .store()
            .uploads()
            .all()
            .expect("all")
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        assert_eq!(left, [id(2), id(4), id(5)]);
        let mut on_disk: Vec<String> = std::fs::read_dir(upload.dir())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        assert_eq!(on_disk, [id(2), format!("{}.part", id(5))]);
        // Once no longer under way, slot 5 is an abandoned one.
        drop(active);
        assert_eq!(
            smol::block_on(sweep(&server)).expect("again"),
            Swept {
                expired: 0,
                abandoned: 1,
                orphans: 0
            }
        );
        assert!(!files::part_path(upload.dir(), &id(5)).exists());
    }
}
