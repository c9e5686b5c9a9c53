//! `perch archive stats` and `perch archive expire`: what the CLI shows of
//! the message archives, computed the same way whether the server runs
//! (the admin socket hands the request to it) or not (the CLI opens the
//! database itself): see `crate::admin`.
//!
//! Both read the running totals of every archive (one row each, no scan
//! of messages); `expire` then removes what [`cleanup`] would remove on
//! its next pass, through the same code, or with `dry_run` only counts it.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::config::ArchiveConfig;
use crate::datetime::format_utc;
use crate::server::Server;
use crate::store::archive::{self, Kind, Stats};
use crate::store::{Store, StoreError};

use super::{cleanup, ids};

/// What `perch archive stats` shows when no archive holds a message.
pub const NO_ARCHIVES: &str = "no archived messages";

/// `bytes` for people: `512 B`, `1.5 KiB`, `100.0 MiB`, … (powers of 1024).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    // 1023.96 KiB would print as "1024.0 KiB": that is the next unit.
    while value >= 1023.95 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A retention period as the configuration writes it (`1y`, `30d`, …).
fn period(d: Option<Duration>) -> String {
    const UNITS: [(u64, &str); 6] = [
        (365 * 86_400, "y"),
        (7 * 86_400, "w"),
        (86_400, "d"),
        (3_600, "h"),
        (60, "min"),
        (1, "s"),
    ];
    let Some(d) = d else {
        return "forever".to_string();
    };
    let secs = d.as_secs();
    UNITS
        .iter()
        .find(|(unit, _)| secs > 0 && secs % unit == 0)
        .map_or_else(
            || format!("{secs}s"),
            |(unit, name)| format!("{}{name}", secs / unit),
        )
}

/// The retention settings in one line, as `expire` applies them.
fn settings_line(config: &ArchiveConfig) -> String {
    format!(
        "retention: accounts keep {}, at most {} each; rooms keep {}, at most {} each",
        period(config.expires),
        human_size(config.max_bytes_per_account),
        period(config.room_expires),
        human_size(config.max_bytes_per_room),
    )
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::User => "account",
        Kind::Room => "room",
    }
}

/// `n thing` or `n things`.
fn count(n: u64, thing: &str) -> String {
    format!("{n} {thing}{}", if n == 1 { "" } else { "s" })
}

/// When a stamp was, to the second (UTC).
fn date(stamp: u64) -> String {
    format_utc(ids::time_of(stamp), false)
}

/// Rows padded so that their columns line up (the last one is not).
fn align(rows: &[Vec<String>]) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                let width = widths.get(c).copied().unwrap_or(0);
                let pad = width.saturating_sub(cell.chars().count());
                if c > 0 {
                    line.push_str("  ");
                }
                // Numbers (messages, size) are right-aligned.
                if c == 2 || c == 3 {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    if c + 1 < row.len() {
                        line.push_str(&" ".repeat(pad));
                    }
                }
            }
            line
        })
        .collect()
}

/// `perch archive stats`: one line per archive (accounts, then rooms, each
/// in address order) with its messages, size, oldest and newest message;
/// then the totals and the size of the database file `db_file`.
pub fn stats(store: &Store, db_file: &Path) -> Result<Vec<String>, StoreError> {
    let mut all: Vec<(Kind, String, Stats)> = Vec::new();
    for kind in [Kind::User, Kind::Room] {
        all.extend(
            archive::all_stats(store, kind)?
                .into_iter()
                .map(|(owner, stats)| (kind, owner, stats)),
        );
    }
    let mut lines = Vec::new();
    if all.is_empty() {
        lines.push(NO_ARCHIVES.to_string());
    } else {
        let mut rows = vec![
            ["ARCHIVE", "KIND", "MESSAGES", "SIZE", "OLDEST", "NEWEST"]
                .map(str::to_string)
                .to_vec(),
        ];
        for (kind, owner, stats) in &all {
            rows.push(vec![
                owner.clone(),
                kind_name(*kind).to_string(),
                stats.count.to_string(),
                human_size(stats.bytes),
                date(stats.first),
                date(stats.last),
            ]);
        }
        lines.extend(align(&rows));
    }
    let of = |kind: Kind| all.iter().filter(|(k, ..)| *k == kind).count() as u64;
    let messages: u64 = all.iter().map(|(.., s)| s.count).sum();
    let bytes: u64 = all.iter().map(|(.., s)| s.bytes).sum();
    lines.push(format!(
        "total: {} ({}, {}), {}, {}",
        count(all.len() as u64, "archive"),
        count(of(Kind::User), "account"),
        count(of(Kind::Room), "room"),
        count(messages, "message"),
        human_size(bytes)
    ));
    let file = match std::fs::metadata(db_file) {
        Ok(meta) => human_size(meta.len()),
        Err(e) => format!("unknown ({e})"),
    };
    lines.push(format!("database file: {file} ({})", db_file.display()));
    Ok(lines)
}

/// Why `job` removes messages, for its line.
fn reason(job: &cleanup::Job) -> String {
    let mut why = Vec::new();
    if let Some(before) = job.expire_before {
        why.push(format!("older than {}", date(before)));
    }
    if let Some(max) = job.max_bytes {
        why.push(format!("over {}", human_size(max)));
    }
    why.join(", ")
}

/// `perch archive expire [--dry-run]`: removes (or with `dry_run` only
/// counts) what the retention settings no longer keep, one line per
/// archive concerned, then the total.
pub async fn expire(server: &Server, dry_run: bool) -> Result<Vec<String>, StoreError> {
    let config = &server.config().archive;
    let jobs = if dry_run {
        cleanup::preview_yielding(server.store(), config, SystemTime::now()).await?
    } else {
        cleanup::pass_each(server).await?
    };
    Ok(expire_lines(config, &jobs, dry_run))
}

fn expire_lines(
    config: &ArchiveConfig,
    jobs: &[(cleanup::Job, u64)],
    dry_run: bool,
) -> Vec<String> {
    let mut lines = vec![settings_line(config)];
    let verb = if dry_run { "would remove" } else { "removed" };
    for (job, n) in jobs {
        lines.push(format!(
            "{} ({}): {verb} {} ({})",
            job.owner,
            kind_name(job.kind),
            count(*n, "message"),
            reason(job)
        ));
    }
    let total: u64 = jobs.iter().map(|(_, n)| n).sum();
    let archives = jobs.iter().filter(|(_, n)| *n > 0).count() as u64;
    lines.push(if total == 0 {
        "total: nothing to remove".to_string()
    } else if dry_run {
        format!(
            "total: would remove {} from {} (dry run: nothing was removed)",
            count(total, "message"),
            count(archives, "archive")
        )
    } else {
        format!(
            "total: removed {} from {}",
            count(total, "message"),
            count(archives, "archive")
        )
    });
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::archive::{ArchiveRecord, OUTGOING, append_op};

    const DAY: u64 = 86_400 * 1_000_000;

    #[test]
    fn sizes_and_periods_read_well() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1.0 KiB");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(1024 * 1024 - 1), "1.0 MiB");
        assert_eq!(human_size(100 << 20), "100.0 MiB");
        assert_eq!(human_size(u64::MAX), "16.0 EiB");
        assert_eq!(period(None), "forever");
        assert_eq!(period(Some(Duration::from_secs(365 * 86_400))), "1y");
        assert_eq!(period(Some(Duration::from_secs(30 * 86_400))), "30d");
        assert_eq!(period(Some(Duration::from_secs(14 * 86_400))), "2w");
        assert_eq!(period(Some(Duration::from_secs(90))), "90s");
    }

    #[test]
    fn columns_line_up() {
        let rows = vec![
            vec!["A".to_string(), "k".into(), "1".into(), "10 B".into()],
            vec![
                "long@x".to_string(),
                "room".into(),
                "100".into(),
                "1 B".into(),
            ],
        ];
        assert_eq!(
            align(&rows),
            ["A       k       1  10 B", "long@x  room  100   1 B"]
        );
    }

    fn record(stamp: u64, body: &str) -> ArchiveRecord {
        ArchiveRecord {
            stamp,
            flags: OUTGOING,
            index: "bob@example.com".into(),
            extra: String::new(),
            xml: format!("<message to='bob@example.com' type='chat'><body>{body}</body></message>")
                .into_bytes(),
        }
    }

    #[test]
    fn stats_and_expire_on_a_database() {
        let dir = crate::testing::TempDir::new("archive-admin");
        let path = dir.path().join("db.redb");
        let store = Store::open(&path, 1 << 20).expect("open");
        let config = crate::config::Config::from_toml_str(
            "[[host]]\ndomain = \"example.com\"\n[archive]\nexpires = \"30d\"\nroom_expires = \"never\"\n",
            "test",
        )
        .expect("config");
        let empty = stats(&store, &path).expect("stats");
        assert_eq!(empty[0], NO_ARCHIVES);
        assert_eq!(
            empty[1],
            "total: 0 archives (0 accounts, 0 rooms), 0 messages, 0 B"
        );
        assert!(empty[2].starts_with("database file: "), "{empty:?}");

        let creds = crate::sasl::Credentials::derive("pw", 4096).expect("derive");
        smol::block_on(store.accounts().create("alice@example.com", &creds)).expect("account");
        let now = ids::micros(SystemTime::now());
        let old = now - 60 * DAY;
        for (i, stamp) in [old, old + 1, now - DAY].into_iter().enumerate() {
            store
                .write_now(append_op(
                    Kind::User,
                    "alice@example.com",
                    record(stamp, &format!("m{i}")),
                ))
                .expect("append");
        }
        store
            .write_now(append_op(
                Kind::Room,
                "garden@rooms.example.com",
                record(old, "r"),
            ))
            .expect("append");
        let lines = stats(&store, &path).expect("stats");
        assert!(lines[0].starts_with("ARCHIVE"), "{lines:?}");
        assert!(
            lines[1].starts_with("alice@example.com") && lines[1].contains("account"),
            "{lines:?}"
        );
        assert!(
            lines[2].starts_with("garden@rooms.example.com"),
            "{lines:?}"
        );
        assert!(lines[3].starts_with("total: 2 archives (1 account, 1 room), 4 messages, "));

        let server = Server::new(config, store.clone());
        let dry = smol::block_on(expire(&server, true)).expect("dry run");
        assert_eq!(dry.len(), 3, "{dry:?}");
        assert!(dry[0].starts_with("retention: accounts keep 30d, at most 100.0 MiB each"));
        assert!(dry[0].contains("rooms keep forever"), "{dry:?}");
        assert!(
            dry[1].starts_with("alice@example.com (account): would remove 2 messages (older than "),
            "{dry:?}"
        );
        assert_eq!(
            dry[2],
            "total: would remove 2 messages from 1 archive (dry run: nothing was removed)"
        );
        assert_eq!(
            archive::stats(&store, Kind::User, "alice@example.com")
                .expect("stats")
                .count,
            3
        );
        let done = smol::block_on(expire(&server, false)).expect("expire");
        assert_eq!(
            done[1].replace("removed", "would remove"),
            dry[1],
            "{done:?}"
        );
        assert_eq!(done[2], "total: removed 2 messages from 1 archive");
        assert_eq!(
            archive::stats(&store, Kind::User, "alice@example.com")
                .expect("stats")
                .count,
            1
        );
        let again = smol::block_on(expire(&server, false)).expect("expire");
        assert_eq!(again[1..], ["total: nothing to remove".to_string()]);
    }

    #[test]
    fn a_dry_run_counts_what_a_cap_removes_exactly() {
        let dir = crate::testing::TempDir::new("archive-admin-cap");
        let store = Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
        let config = ArchiveConfig {
            expires: None,
            room_expires: Some(Duration::from_secs(30 * 86_400)),
            max_bytes_per_room: 1 << 20,
            ..ArchiveConfig::default()
        };
        let now = ids::micros(SystemTime::now());
        // Two expired messages, then big and small ones over the cap.
        let big = "x".repeat(300 << 10);
        let bodies = [
            "old",
            "old",
            big.as_str(),
            "small",
            big.as_str(),
            big.as_str(),
            big.as_str(),
            "new",
        ];
        for (i, body) in bodies.iter().enumerate() {
            let stamp = if i < 2 {
                now - 60 * DAY + i as u64
            } else {
                now - DAY + i as u64
            };
            store
                .write_now(append_op(
                    Kind::Room,
                    "r@rooms.example.com",
                    record(stamp, body),
                ))
                .expect("append");
        }
        let preview = cleanup::preview(&store, &config, SystemTime::now()).expect("preview");
        assert_eq!(preview.len(), 1);
        // After expiry, 4 × 300 KiB is over the 1 MiB cap: the oldest
        // big one goes, and the rest (900-odd KiB) fits.
        let full = toml_config(&config);
        let server = Server::new(full, store.clone());
        let removed = smol::block_on(cleanup::pass_each(&server)).expect("pass");
        assert_eq!(removed.len(), 1);
        assert_eq!(preview[0].1, removed[0].1, "the dry run counted exactly");
        assert_eq!(removed[0].1, 3, "two expired, then one big one");
        let left = archive::stats(&store, Kind::Room, "r@rooms.example.com").expect("stats");
        assert!(left.bytes <= 1 << 20 && left.count == 5, "{left:?}");
    }

    /// A whole configuration whose `[archive]` is `archive`.
    fn toml_config(archive: &ArchiveConfig) -> crate::config::Config {
        let mut config =
            crate::config::Config::from_toml_str("[[host]]\ndomain = \"example.com\"\n", "test")
                .expect("config");
        config.archive = *archive;
        config
    }

    #[test]
    fn expire_lines_say_nothing_to_do() {
        let lines = expire_lines(&ArchiveConfig::default(), &[], true);
        assert_eq!(
            lines,
            [
                "retention: accounts keep 1y, at most 100.0 MiB each; rooms keep 1y, at most 100.0 MiB each",
                "total: nothing to remove"
            ]
        );
    }
}
