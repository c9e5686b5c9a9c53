//! Retention (`[archive] expires`, `room_expires`) and size caps
//! (`max_mib_per_account`, `max_mib_per_room`): old messages removed in the
//! background, a small batch per write, so the traffic's writes never wait
//! behind a big deletion and the event loop never stalls.
//!
//! [`plan`] decides from each archive's totals (one row per archive, no
//! scan) what to remove; [`run`] carries it out through the group
//! committer, one batch at a time, reading the totals again after each.

use std::rc::Rc;
use std::time::{Duration, SystemTime};

use crate::config::ArchiveConfig;
use crate::server::Server;
use crate::store::StoreError;
use crate::store::archive::{self, Kind, Stats};

use super::ids;

/// Messages removed per write.
pub const BATCH: usize = 500;

/// What one archive needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub kind: Kind,
    pub owner: String,
    /// Remove messages stamped before this.
    pub expire_before: Option<u64>,
    /// Remove the oldest while the archive takes more bytes than this.
    pub max_bytes: Option<u64>,
}

/// The limits of one kind of archive.
fn limits(config: &ArchiveConfig, kind: Kind) -> (Option<Duration>, u64) {
    match kind {
        Kind::User => (config.expires, config.max_bytes_per_account),
        Kind::Room => (config.room_expires, config.max_bytes_per_room),
    }
}

/// The jobs for archives of `kind` whose totals are `all`, at `now`.
pub fn plan(
    config: &ArchiveConfig,
    kind: Kind,
    all: &[(String, Stats)],
    now: SystemTime,
) -> Vec<Job> {
    let (expires, max_bytes) = limits(config, kind);
    let cutoff = expires.and_then(|e| now.checked_sub(e)).map(ids::micros);
    all.iter()
        .filter_map(|(owner, stats)| {
            let expire_before = cutoff.filter(|&c| stats.count > 0 && stats.first < c);
            let over = stats.bytes > max_bytes;
            (expire_before.is_some() || over).then(|| Job {
                kind,
                owner: owner.clone(),
                expire_before,
                max_bytes: over.then_some(max_bytes),
            })
        })
        .collect()
}

/// What a pass removed (or, with `dry_run`, would remove).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Removed {
    pub archives: usize,
    pub messages: u64,
}

/// Runs a cleanup every `cleanup_interval` while the server runs.
pub async fn run(server: Rc<Server>) {
    loop {
        smol::Timer::after(server.config().archive.cleanup_interval).await;
        match pass(&server).await {
            Ok(r) if r.messages > 0 => log::info!(
                "archive cleanup: {} old messages removed from {} archives",
                r.messages,
                r.archives
            ),
            Ok(_) => {}
            Err(e) => log::error!("archive cleanup: {e}"),
        }
    }
}

/// One pass over every archive.
pub async fn pass(server: &Server) -> Result<Removed, StoreError> {
    let each = pass_each(server).await?;
    Ok(Removed {
        archives: each.len(),
        messages: each.iter().map(|(_, n)| n).sum(),
    })
}

/// One pass over every archive (accounts, then rooms), saying what each
/// archive that needed it lost (`perch archive expire`).
pub async fn pass_each(server: &Server) -> Result<Vec<(Job, u64)>, StoreError> {
    let store = server.store();
    let config = &server.config().archive;
    let mut removed = Vec::new();
    for kind in [Kind::User, Kind::Room] {
        let all = archive::all_stats(store, kind)?;
        for job in plan(config, kind, &all, SystemTime::now()) {
            let before = archive::stats(store, kind, &job.owner)?.count;
            carry_out(server, &job).await?;
            let after = archive::stats(store, kind, &job.owner)?.count;
            removed.push((job, before.saturating_sub(after)));
        }
    }
    Ok(removed)
}

/// Removes what `job` says, one batch per write, until done.
async fn carry_out(server: &Server, job: &Job) -> Result<(), StoreError> {
    let store = server.store();
    if let Some(before) = job.expire_before {
        loop {
            let op = archive::delete_before_op(job.kind, &job.owner, before, BATCH);
            store.submit(op).wait().await?;
            let stats = archive::stats(store, job.kind, &job.owner)?;
            if stats.count == 0 || stats.first >= before {
                break;
            }
        }
    }
    if let Some(max) = job.max_bytes {
        loop {
            let op = archive::trim_to_bytes_op(job.kind, &job.owner, max, BATCH);
            store.submit(op).wait().await?;
            if archive::stats(store, job.kind, &job.owner)?.bytes <= max {
                break;
            }
        }
    }
    Ok(())
}

/// What a pass would remove now, without removing anything: per archive
/// that needs it, how many messages [`run`] would remove at `now`
/// (accounts, then rooms). Blocks until done: for callers off the event
/// loop; `perch archive expire --dry-run` uses [`preview_yielding`].
pub fn preview(
    store: &crate::store::Store,
    config: &ArchiveConfig,
    now: SystemTime,
) -> Result<Vec<(Job, u64)>, StoreError> {
    // Nothing in it waits for anything but its own yields.
    futures_lite::future::block_on(preview_yielding(store, config, now))
}

/// [`preview`], letting other tasks run between batches of messages read
/// (an archive past expiry may hold years of them).
pub async fn preview_yielding(
    store: &crate::store::Store,
    config: &ArchiveConfig,
    now: SystemTime,
) -> Result<Vec<(Job, u64)>, StoreError> {
    let mut out = Vec::new();
    for kind in [Kind::User, Kind::Room] {
        let all = archive::all_stats(store, kind)?;
        for job in plan(config, kind, &all, now) {
            let bytes = all
                .iter()
                .find(|(owner, _)| *owner == job.owner)
                .map_or(0, |(_, stats)| stats.bytes);
            let doomed = doomed(store, &job, bytes).await?;
            out.push((job, doomed));
        }
    }
    Ok(out)
}

/// How many messages carrying out `job` on an archive of `bytes` removes:
/// the oldest first, while they are past expiry or the archive is still
/// over its cap (expired ones are the oldest, so the two removals take
/// one run of messages from the oldest on, as [`carry_out`] does). The
/// messages are read in batches, up to the first that stays: exact, where
/// the totals alone would only give an estimate for a cap. Other tasks run
/// between batches, as between the writes of a pass.
async fn doomed(store: &crate::store::Store, job: &Job, bytes: u64) -> Result<u64, StoreError> {
    let mut doomed = 0;
    let mut left = bytes;
    let mut lo = 0;
    loop {
        let scan = archive::Scan {
            lo,
            hi: u64::MAX,
            with: None,
            descending: false,
            limit: BATCH,
        };
        let (records, more) = archive::scan(store, job.kind, &job.owner, &scan, &|_| true)?;
        for record in &records {
            let expired = job
                .expire_before
                .is_some_and(|before| record.stamp < before);
            let over = job.max_bytes.is_some_and(|max| left > max);
            if !expired && !over {
                return Ok(doomed);
            }
            doomed += 1;
            // The totals count values as stored, which is as encoded.
            left = left.saturating_sub(record.encode()?.len() as u64);
        }
        match records.last().and_then(|r| r.stamp.checked_add(1)) {
            Some(next) if more => lo = next,
            _ => return Ok(doomed),
        }
        futures_lite::future::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    const DAY: u64 = 86_400;

    fn stats(count: u64, bytes: u64, first_day: u64) -> Stats {
        Stats {
            count,
            bytes,
            first: first_day * DAY * 1_000_000,
            last: (first_day + 1) * DAY * 1_000_000,
        }
    }

    #[test]
    fn plans_expiry_and_caps_from_totals() {
        let config = ArchiveConfig {
            expires: Some(Duration::from_secs(30 * DAY)),
            room_expires: None,
            max_bytes_per_account: 1_000,
            max_bytes_per_room: 10,
            ..ArchiveConfig::default()
        };
        let now = UNIX_EPOCH + Duration::from_secs(100 * DAY);
        let all = vec![
            ("old@x".to_string(), stats(5, 100, 10)),
            ("fresh@x".to_string(), stats(5, 100, 90)),
            ("big@x".to_string(), stats(50, 5_000, 95)),
            ("empty@x".to_string(), Stats::default()),
        ];
        let jobs = plan(&config, Kind::User, &all, now);
        let cutoff = 70 * DAY * 1_000_000;
        assert_eq!(
            jobs,
            vec![
                Job {
                    kind: Kind::User,
                    owner: "old@x".into(),
                    expire_before: Some(cutoff),
                    max_bytes: None
                },
                Job {
                    kind: Kind::User,
                    owner: "big@x".into(),
                    expire_before: None,
                    max_bytes: Some(1_000)
                },
            ]
        );
        // Rooms here never expire, but have a smaller cap.
        let jobs = plan(&config, Kind::Room, &all, now);
        assert_eq!(jobs.len(), 3);
        assert!(jobs.iter().all(|j| j.expire_before.is_none()));
    }

    fn record(stamp: u64, body_len: usize) -> archive::ArchiveRecord {
        archive::ArchiveRecord {
            stamp,
            flags: 0,
            index: "juliet@localhost".into(),
            extra: String::new(),
            xml: format!("<message><body>{}</body></message>", "x".repeat(body_len)).into_bytes(),
        }
    }

    #[test]
    fn a_pass_removes_expired_messages_in_batches_and_trims_to_the_cap() {
        let world = crate::testing::world::World::new(
            &["romeo@localhost", "juliet@localhost"],
            "[archive]\nexpires = \"30d\"\nmax_mib_per_account = 1\n",
        );
        let store = world.server.store();
        let now = ids::micros(SystemTime::now());
        let day = DAY * 1_000_000;
        // Romeo: 1 200 messages older than 30 days (more than two batches)
        // and 10 recent ones; Juliet: recent, but 3 MiB of them.
        let mut records: Vec<(&str, archive::ArchiveRecord)> = Vec::new();
        for n in 0..1_200u64 {
            records.push(("romeo@localhost", record(now - 40 * day + n, 10)));
        }
        for n in 0..10u64 {
            records.push(("romeo@localhost", record(now - day + n, 10)));
        }
        for n in 0..300u64 {
            records.push(("juliet@localhost", record(now - day + n, 10_000)));
        }
        let records: Vec<(String, archive::ArchiveRecord)> = records
            .into_iter()
            .map(|(o, r)| (o.to_string(), r))
            .collect();
        store
            .write_now(Box::new(move |txn| {
                for (owner, r) in &records {
                    archive::append(txn, Kind::User, owner, r)?;
                }
                Ok(())
            }))
            .expect("append");
        let preview =
            preview(store, &world.server.config().archive, SystemTime::now()).expect("preview");
        let romeo = preview
            .iter()
            .find(|(j, _)| j.owner == "romeo@localhost")
            .expect("romeo");
        assert_eq!(romeo.1, 1_200);
        assert_eq!(
            archive::stats(store, Kind::User, "romeo@localhost")
                .expect("stats")
                .count,
            1_210,
            "a preview removes nothing"
        );
        let removed = world.block_on(pass(&world.server)).expect("pass");
        assert_eq!(removed.archives, 2);
        let romeo = archive::stats(store, Kind::User, "romeo@localhost").expect("stats");
        assert_eq!(romeo.count, 10);
        assert!(romeo.first >= now - day);
        let juliet = archive::stats(store, Kind::User, "juliet@localhost").expect("stats");
        assert!(juliet.bytes <= 1 << 20, "{juliet:?}");
        assert!(juliet.count > 50, "only the oldest go: {juliet:?}");
        assert_eq!(removed.messages, 1_200 + (300 - juliet.count));
        // A second pass has nothing to do.
        assert_eq!(
            world.block_on(pass(&world.server)).expect("pass"),
            Removed::default()
        );
    }
}
