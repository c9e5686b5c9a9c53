//! `perch upload list` and `perch upload purge` with and without a running
//! server. Upload records are written straight into the database (and
//! their files into `data/upload/`) while no server holds it.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use perch::store::Store;
use perch::store::upload::{FileRecord, Limits, insert_slot_op};
use perch::testing::TempDir;

use crate::harness::*;

const DAY: u64 = 86_400;

/// `perch upload ARGS --config CONFIG` in the config's directory.
fn upload(config: &Path, args: &[&str]) -> Output {
    let mut all = vec!["upload"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--config", config.to_str().expect("UTF-8 temp path")]);
    cli(
        config.parent().expect("config file has a directory"),
        &all,
        None,
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn id(n: u8) -> String {
    format!("{n:032x}")
}

/// Stores uploaded files `(id, owner, age in days, name)` of 5 bytes each,
/// with their records, while no server holds the database. Each is half a
/// day younger than its age, so listings taken seconds apart (before and
/// after a server starts) show the same whole days: `age - 1`.
fn seed(data: &Path, files: &[(&str, &str, u64, &str)]) {
    let store = Store::open(&data.join(perch::config::DB_FILE), 1 << 20).expect("open");
    let unlimited = Limits {
        daily_quota: u64::MAX,
        max_total: u64::MAX,
        pending_secs: 600,
        max_slots_per_day: usize::MAX,
    };
    let dir = data.join("upload");
    std::fs::create_dir_all(&dir).expect("upload folder");
    for &(id, owner, age_days, name) in files {
        let created = now() - age_days * DAY + DAY / 2;
        let record = FileRecord {
            owner: owner.to_string(),
            name: name.to_string(),
            size: 5,
            content_type: Some("text/plain".to_string()),
            created,
            stored: Some(created),
        };
        store
            .write_now(insert_slot_op(id, record, unlimited))
            .expect("record");
        std::fs::write(dir.join(id), b"hello").expect("file");
    }
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn upload_list_and_purge() {
    let dir = TempDir::new("cli-upload");
    let config = standard_config(&dir);
    let data = dir.path().join("data");
    upload(&config, &["list"])
        .expect_code(1)
        .expect_stderr("start the server first (perch run)");

    let top = cli(dir.path(), &["--help"], None);
    assert!(
        top.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("upload")),
        "perch --help should list the upload command; {}",
        top.describe()
    );
    cli(dir.path(), &["upload", "purge", "--help"], None)
        .expect_code(0)
        .expect_stdout("--older-than")
        .expect_stdout("--owner");
    upload(&config, &["purge", "--older-than", "x"]).expect_code(2);

    create_database(&data);
    for jid in ["alice@localhost", "bob@localhost"] {
        user(
            &config,
            &["add", jid, "--password-stdin"],
            Some("password1\n"),
        )
        .expect_code(0);
    }
    upload(&config, &["list"])
        .expect_code(0)
        .expect_stdout("no uploaded files\n");
    seed(
        &data,
        &[
            (&id(1), "alice@localhost", 10, "old.txt"),
            (&id(2), "alice@localhost", 2, "new.txt"),
            (&id(3), "bob@localhost", 10, "bob's.txt"),
        ],
    );
    let out = upload(&config, &["list", "--owner", "Alice@localhost"]);
    out.expect_code(0)
        .expect_stdout(&format!(
            "{} alice@localhost 5 text/plain 9d old.txt\n",
            id(1)
        ))
        .expect_stdout(&format!(
            "{} alice@localhost 5 text/plain 1d new.txt\n",
            id(2)
        ))
        .expect_stdout("2 files, 10 bytes\n");
    upload(&config, &["list", "--owner", "alice"]).expect_code(2);
    // Nothing says which files: refused, nothing removed.
    upload(&config, &["purge"])
        .expect_code(2)
        .expect_stderr("--older-than DAYS (0: every file) and/or --owner JID");
    upload(
        &config,
        &["purge", "--owner", "alice@localhost", "--older-than", "5"],
    )
    .expect_code(0)
    .expect_stdout("removed 1 files (5 bytes)\n");
    assert!(!data.join("upload").join(id(1)).exists());
    assert!(data.join("upload").join(id(2)).exists());

    // The same through a running server.
    let offline = upload(&config, &["list"]);
    offline.expect_code(0).expect_stdout("2 files, 10 bytes\n");
    let server = Server::start(&config);
    let online = upload(&config, &["list"]);
    assert_eq!(online.stdout, offline.stdout);
    assert!(
        server.wait_for_log("admin: upload list: 2 files, 10 bytes", IO_TIMEOUT),
        "{}",
        server.log()
    );
    upload(&config, &["purge", "--older-than", "0"])
        .expect_code(0)
        .expect_stdout("removed 2 files (10 bytes)\n");
    assert!(!data.join("upload").join(id(2)).exists());
    assert!(!data.join("upload").join(id(3)).exists());
    upload(&config, &["list"])
        .expect_code(0)
        .expect_stdout("no uploaded files\n");
}
