//! `perch archive stats` and `perch archive expire` with and without a
//! running server. Old messages are written straight into the database
//! (`perch::store::archive::append_op`) while no server holds it; new ones
//! come from a test client through a running server.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use perch::archive::ids;
use perch::store::Store;
use perch::store::archive::{ArchiveRecord, Kind, OUTGOING, append_op};
use perch::testing::TempDir;
use rustix::process::Signal;

use crate::harness::*;

const DAY: u64 = 86_400 * 1_000_000;

/// `perch archive ARGS --config CONFIG` in the config's directory.
fn archive(config: &Path, args: &[&str]) -> Output {
    let mut all = vec!["archive"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--config", config.to_str().expect("UTF-8 temp path")]);
    cli(
        config.parent().expect("config file has a directory"),
        &all,
        None,
    )
}

/// One row of `perch archive stats`.
#[derive(Debug, PartialEq, Eq)]
struct Row {
    jid: String,
    kind: String,
    messages: u64,
    oldest: String,
    newest: String,
}

/// The archive rows of `perch archive stats` (between the header and the
/// totals), checking that the output has its shape.
fn rows(out: &Output) -> Vec<Row> {
    out.expect_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines.len() >= 3, "{}", out.describe());
    assert!(
        lines[lines.len() - 2].starts_with("total: ")
            && lines[lines.len() - 1].starts_with("database file: "),
        "{}",
        out.describe()
    );
    if lines[0] == "no archived messages" {
        assert_eq!(lines.len(), 3, "{}", out.describe());
        return Vec::new();
    }
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["ARCHIVE", "KIND", "MESSAGES", "SIZE", "OLDEST", "NEWEST"],
        "{}",
        out.describe()
    );
    lines[1..lines.len() - 2]
        .iter()
        .map(|line| {
            // The size is a number and a unit: two words.
            let words: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(words.len(), 7, "{line:?} in {}", out.describe());
            Row {
                jid: words[0].to_string(),
                kind: words[1].to_string(),
                messages: words[2].parse().expect("a count"),
                oldest: words[5].to_string(),
                newest: words[6].to_string(),
            }
        })
        .collect()
}

fn row(jid: &str, kind: &str, messages: u64, oldest: u64, newest: u64) -> Row {
    Row {
        jid: jid.to_string(),
        kind: kind.to_string(),
        messages,
        oldest: date(oldest),
        newest: date(newest),
    }
}

fn date(stamp: u64) -> String {
    perch::datetime::format_utc(ids::time_of(stamp), false)
}

/// Everything `perch archive stats` printed but the database file's size,
/// which any write may change.
fn without_file_size(out: &Output) -> String {
    out.stdout
        .lines()
        .filter(|l| !l.starts_with("database file: "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Writes messages into the archives of a database no server holds:
/// `(kind, owner, stamp, body)`; an account's are sent to bob (or by
/// bob, when bob owns them), a room's by the nick "nurse".
fn seed(data: &Path, messages: &[(Kind, &str, u64, &str)]) {
    let store = Store::open(&data.join(perch::config::DB_FILE), 1 << 20).expect("open");
    for &(kind, owner, stamp, body) in messages {
        let record = match kind {
            Kind::User => {
                let peer = if owner == "bob@localhost" {
                    "alice@localhost"
                } else {
                    "bob@localhost"
                };
                ArchiveRecord {
                    stamp,
                    flags: OUTGOING,
                    index: peer.to_string(),
                    extra: String::new(),
                    xml: format!(
                        "<message from='{owner}/phone' to='{peer}' type='chat'><body>{body}</body></message>"
                    )
                    .into_bytes(),
                }
            }
            Kind::Room => ArchiveRecord {
                stamp,
                flags: 0,
                index: "nurse".to_string(),
                extra: "nurse@localhost/desk".to_string(),
                xml: format!(
                    "<message from='{owner}/nurse' type='groupchat'><body>{body}</body></message>"
                )
                .into_bytes(),
            },
        };
        store
            .write_now(append_op(kind, owner, record))
            .expect("append");
    }
}

fn add_user(config: &Path, jid: &str) {
    user(
        config,
        &["add", jid, "--password-stdin"],
        Some("password1\n"),
    )
    .expect_code(0);
}

fn now() -> u64 {
    ids::micros(SystemTime::now())
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn archive_commands_on_an_empty_database() {
    let dir = TempDir::new("cli-archive-empty");
    let config = standard_config(&dir);
    let data = dir.path().join("data");

    // No database yet: the same refusal as every other command.
    archive(&config, &["stats"])
        .expect_code(1)
        .expect_stderr("no database at")
        .expect_stderr("start the server first (perch run)");
    assert!(!data.exists(), "nothing was created");

    let top = cli(dir.path(), &["--help"], None);
    assert!(
        top.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("archive")),
        "perch --help should list the archive command; {}",
        top.describe()
    );
    let out = cli(dir.path(), &["archive", "--help"], None);
    out.expect_code(0)
        .expect_stdout("Usage: perch archive")
        .expect_stdout("expires")
        .expect_stdout("max_mib_per_room")
        .expect_stdout("while the server runs");
    for action in ["stats", "expire"] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(action)),
            "perch archive --help should list {action}; {}",
            out.describe()
        );
    }
    cli(dir.path(), &["archive", "expire", "--help"], None)
        .expect_code(0)
        .expect_stdout("--dry-run")
        .expect_stdout("--config");
    // A usage error is exit 2, as for every command.
    archive(&config, &["stats", "--dry-run"]).expect_code(2);
    archive(&config, &["purge"]).expect_code(2);

    create_database(&data);
    let out = archive(&config, &["stats"]);
    assert_eq!(rows(&out), []);
    out.expect_stdout(
        "no archived messages\ntotal: 0 archives (0 accounts, 0 rooms), 0 messages, 0 B\n",
    )
    .expect_stdout(&format!("({})\n", data.join("perch.redb").display()));
    for args in [&["expire", "--dry-run"][..], &["expire"][..]] {
        archive(&config, args)
            .expect_code(0)
            .expect_stdout("retention: accounts keep 1y, at most 100.0 MiB each; rooms keep 1y, at most 100.0 MiB each\n")
            .expect_stdout("total: nothing to remove\n");
    }

    // The same through a running server.
    let offline = archive(&config, &["stats"]);
    let server = Server::start(&config);
    let online = archive(&config, &["stats"]);
    assert_eq!(without_file_size(&online), without_file_size(&offline));
    assert!(
        server.wait_for_log("admin: archive stats: total: 0 archives", IO_TIMEOUT),
        "{}",
        server.log()
    );
    archive(&config, &["expire", "--dry-run"])
        .expect_code(0)
        .expect_stdout("total: nothing to remove\n");
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn archive_stats_and_expire_without_server() {
    let dir = TempDir::new("cli-archive-offline");
    let config = standard_config(&dir);
    let data = dir.path().join("data");
    create_database(&data);
    add_user(&config, "alice@localhost");
    add_user(&config, "bob@localhost");
    let room = "garden@conference.localhost";
    let (now, old) = (now(), now() - 400 * DAY);
    seed(
        &data,
        &[
            (Kind::User, "alice@localhost", old, "old 1"),
            (Kind::User, "alice@localhost", old + 1, "old 2"),
            (Kind::User, "alice@localhost", old + 2, "old 3"),
            (Kind::User, "alice@localhost", now - DAY, "new 1"),
            (Kind::User, "alice@localhost", now - DAY + 1, "new 2"),
            (Kind::User, "bob@localhost", now - 2 * DAY, "bob's"),
            (Kind::Room, room, old, "room old 1"),
            (Kind::Room, room, old + 5, "room old 2"),
            (Kind::Room, room, now - DAY, "room new"),
        ],
    );

    let before = archive(&config, &["stats"]);
    assert_eq!(
        rows(&before),
        [
            row("alice@localhost", "account", 5, old, now - DAY + 1),
            row("bob@localhost", "account", 1, now - 2 * DAY, now - 2 * DAY),
            row(room, "room", 3, old, now - DAY),
        ],
        "{}",
        before.describe()
    );
    before.expect_stdout("total: 3 archives (2 accounts, 1 room), 9 messages, ");

    // A dry run says what goes, and nothing goes.
    let dry = archive(&config, &["expire", "--dry-run"]);
    dry.expect_code(0)
        .expect_stdout("alice@localhost (account): would remove 3 messages (older than ")
        .expect_stdout(&format!(
            "{room} (room): would remove 2 messages (older than "
        ))
        .expect_stdout(
            "total: would remove 5 messages from 2 archives (dry run: nothing was removed)\n",
        );
    assert!(!dry.stdout.contains("bob@localhost"), "{}", dry.describe());
    let unchanged = archive(&config, &["stats"]);
    assert_eq!(without_file_size(&unchanged), without_file_size(&before));

    let done = archive(&config, &["expire"]);
    done.expect_code(0)
        .expect_stdout("alice@localhost (account): removed 3 messages (older than ")
        .expect_stdout(&format!("{room} (room): removed 2 messages (older than "))
        .expect_stdout("total: removed 5 messages from 2 archives\n");
    let after = archive(&config, &["stats"]);
    assert_eq!(
        rows(&after),
        [
            row("alice@localhost", "account", 2, now - DAY, now - DAY + 1),
            row("bob@localhost", "account", 1, now - 2 * DAY, now - 2 * DAY),
            row(room, "room", 1, now - DAY, now - DAY),
        ],
        "{}",
        after.describe()
    );
    after.expect_stdout("total: 3 archives (2 accounts, 1 room), 4 messages, ");
    archive(&config, &["expire"])
        .expect_code(0)
        .expect_stdout("total: nothing to remove\n");

    // Retention settings of the configuration apply: with rooms kept
    // forever and accounts a day, the two-day-old message of bob goes.
    let strict = dir.path().join("strict.toml");
    write_file(
        &strict,
        &format!(
            "{}\n[archive]\nexpires = \"1d\"\nroom_expires = \"never\"\n",
            server_config(&data, 0)
        ),
    );
    archive(&strict, &["expire", "--dry-run"])
        .expect_code(0)
        .expect_stdout("retention: accounts keep 1d, at most 100.0 MiB each; rooms keep forever, at most 100.0 MiB each\n")
        .expect_stdout("bob@localhost (account): would remove 1 message (older than ")
        .expect_stdout("total: would remove 3 messages from 2 archives");
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn archive_commands_through_admin_socket() {
    let dir = TempDir::new("cli-archive-admin");
    let config = standard_config(&dir);
    let data = dir.path().join("data");
    create_database(&data);
    add_user(&config, "alice@localhost");
    add_user(&config, "bob@localhost");
    let old = now() - 400 * DAY;
    seed(
        &data,
        &[
            (Kind::User, "alice@localhost", old, "old 1"),
            (Kind::User, "alice@localhost", old + 1, "old 2"),
        ],
    );

    let mut server = Server::start(&config);
    let addr = server.c2s();
    let mut bob = login_at(addr, ("bob", "password1"), Some("desk"));
    bob.send("<presence/>");
    let mut alice = login_at(addr, ("alice", "password1"), Some("phone"));
    let sent = now();
    alice.send("<message to='bob@localhost' type='chat' id='m1'><body>Hello, Bob</body></message>");
    let got = bob.element_matching("alice's message", |e| {
        e.name == "message" && e.attr("id") == Some("m1")
    });
    assert!(got.to_string().contains("Hello, Bob"), "{got}");

    // One message in each archive, besides alice's old ones. (Both are on
    // disk before bob gets his; the wait is only a backstop.)
    let deadline = Instant::now() + IO_TIMEOUT;
    let stats = loop {
        let out = archive(&config, &["stats"]);
        let counts: Vec<u64> = rows(&out).iter().map(|r| r.messages).collect();
        if counts == [3, 1] || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let found = rows(&stats);
    assert_eq!(found.len(), 2, "{}", stats.describe());
    assert_eq!(
        (&found[0].jid, found[0].messages, &found[0].oldest),
        (&"alice@localhost".to_string(), 3, &date(old)),
        "{}",
        stats.describe()
    );
    assert_eq!(
        (&found[1].jid, found[1].messages),
        (&"bob@localhost".to_string(), 1),
        "{}",
        stats.describe()
    );
    // The new message's time, to the second (it may have ticked over).
    let newest = [date(sent), date(sent + 2_000_000)];
    assert!(
        found[1].newest >= newest[0] && found[1].newest <= newest[1],
        "{found:?} {newest:?}"
    );
    stats.expect_stdout("total: 2 archives (2 accounts, 0 rooms), 4 messages, ");

    archive(&config, &["expire", "--dry-run"])
        .expect_code(0)
        .expect_stdout("alice@localhost (account): would remove 2 messages")
        .expect_stdout("total: would remove 2 messages from 1 archive (dry run");
    assert!(
        server.wait_for_log(
            "admin: archive expire --dry-run: total: would remove 2 messages",
            IO_TIMEOUT
        ),
        "{}",
        server.log()
    );
    let unchanged = archive(&config, &["stats"]);
    assert_eq!(without_file_size(&unchanged), without_file_size(&stats));

    archive(&config, &["expire"])
        .expect_code(0)
        .expect_stdout("alice@localhost (account): removed 2 messages")
        .expect_stdout("total: removed 2 messages from 1 archive\n");
    assert!(
        server.wait_for_log(
            "admin: archive expire: total: removed 2 messages from 1 archive",
            IO_TIMEOUT
        ),
        "{}",
        server.log()
    );
    let online = archive(&config, &["stats"]);
    let counts: Vec<u64> = rows(&online).iter().map(|r| r.messages).collect();
    assert_eq!(counts, [1, 1], "{}", online.describe());

    // The server wrote it all: the database says the same without it.
    server.signal(Signal::TERM);
    server
        .wait_exit(STOP_TIMEOUT)
        .expect("perch run stops on SIGTERM");
    let offline = archive(&config, &["stats"]);
    assert_eq!(without_file_size(&offline), without_file_size(&online));
}
