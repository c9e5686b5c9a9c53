//! The scansion runner: plays Prosody-style `.scs` conversation scripts
//! (see `shared/scansion/FORMAT.md`) against Perch's in-process test server.
//!
//! Scripts come from two folders:
//! - `tests/scansion/*.scs`, the project's own: every one must pass;
//! - the shared corpus `../shared/scansion/*.scs` (or `$PERCH_SHARED_SCANSION`):
//!   those named in `tests/scansion/shared-must-pass.txt` must pass; the
//!   others are features still to build and only counted, except that one
//!   that passes but is not listed is reported so that it gets listed.
//!
//! Environment:
//! - `PERCH_SCANSION_FILTER=text`: run only scripts whose file name contains
//!   it, and print the full failure report of every failing one (not only of
//!   the required ones);
//! - `PERCH_SCANSION_JOBS=n`: scripts played at once (default 4);
//! - `PERCH_SHARED_SCANSION=dir`: where the shared corpus is;
//! - `PERCH_TEST_TIME_SCALE=n`: multiplies the waits below (see
//!   `perch::testing::scaled`; set under qemu by `cross/perch-cross`).
//!
//! Playing rules that FORMAT.md leaves open:
//! - a `receives` step discards non-matching stanzas until one matches,
//!   for at most 5 s (and the client's connect and login exchanges wait 5 s
//!   each);
//! - `X receives: nothing` passes if no stanza is queued for X and none
//!   arrives within 1 s (stanzas left over from earlier steps count);
//! - a send waits 100 ms when the previous action was another client's.
//!
//! Captures (Perch extensions): `{scansion:capture:NAME}` as the whole text
//! of an expected element captures (or compares) that text, and in a
//! `sends` block it is replaced by the captured value.
//!
//! Server configuration per script (a Perch extension, invisible to other
//! runners because the lines are comments): every line
//! `# perch-config: <TOML line>` is appended, in order, to the suite's
//! config for that script only, e.g. `# perch-config: [registration]` then
//! `# perch-config: allow = true`. `script::parse_script` collects them.

pub mod client;
pub mod matcher;
pub mod play;
pub mod script;
pub mod tree;

use std::collections::{BTreeSet, VecDeque};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use play::{Failure, PlayOptions};

/// Where a script comes from; each suite may need its own server config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    Project,
    Shared,
}

impl Suite {
    fn label(self) -> &'static str {
        match self {
            Suite::Project => "project",
            Suite::Shared => "shared",
        }
    }

    /// TOML appended to the test server's config for this suite's scripts.
    ///
    /// The shared corpus assumes Prosody's test setup (README.md there):
    /// MUC on `conference.localhost`, pubsub on `pubsub.localhost`,
    /// `admin@localhost` as an admin, the XEP-0157 contact addresses... The
    /// settings for those go here once the server has them.
    fn extra_config(self) -> String {
        match self {
            Suite::Project => String::new(),
            Suite::Shared => SHARED_CONFIG.to_string(),
        }
    }
}

/// What the shared corpus expects of Prosody's test configuration
/// (`shared/scansion/README.md`): contact addresses for
/// `server_contact_info.scs`, external services for `extdisco.scs`, file
/// upload limits for `http_upload.scs`.
const SHARED_CONFIG: &str = r#"
[upload]
max_file_bytes = 10000000
allowed_types = ["text/plain", "image/*"]

[contact]
abuse = ["mailto:abuse@localhost", "xmpp:abuse@localhost"]
admin = ["mailto:admin@localhost", "xmpp:admin@localhost"]
feedback = ["http://localhost/feedback.html", "mailto:feedback@localhost", "xmpp:feedback@localhost"]
sales = ["xmpp:sales@localhost"]
security = ["xmpp:security@localhost"]
status = ["gopher://status.localhost"]
support = ["https://localhost/support.html", "xmpp:support@localhost"]

[[external_service]]
type = "stun"
host = "default.example"
port = 9876
transport = "udp"

[[external_service]]
type = "turn"
host = "default.example"
port = 9876
transport = "udp"
secret = "<secret>"

[[external_service]]
type = "turn"
host = "default.example"
port = 9876
transport = "udp"
secret = "foo"

[[external_service]]
type = "ftp"
host = "default.example"
port = 2121
transport = "tcp"
username = "john"
password = "password"

[[external_service]]
type = "ftp"
host = "ftp.example.com"
port = 21
transport = "tcp"
username = "john"
password = "password"
"#;

/// The folder of the project's own scripts and of `shared-must-pass.txt`.
pub fn project_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("scansion")
}

/// The shared corpus, if there is one: `$PERCH_SHARED_SCANSION` when set
/// (then it must exist), else `../shared/scansion` beside the repository.
pub fn shared_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PERCH_SHARED_SCANSION").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("shared")
        .join("scansion");
    dir.is_dir().then_some(dir)
}

/// The `*.scs` files of a folder, sorted by name.
pub fn scs_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "scs") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Parses `shared-must-pass.txt`: one file name per line, `#` starts a
/// comment, blank lines are ignored.
pub fn parse_must_pass(text: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let name = line.split('#').next().unwrap_or("").trim();
        if name.is_empty() {
            continue;
        }
        if name.contains(['/', '\\']) || !name.ends_with(".scs") {
            return Err(format!(
                "line {}: expected a file name like basic.scs, found {name:?}",
                i + 1
            ));
        }
        if names.iter().any(|n| n == name) {
            return Err(format!("line {}: {name} is listed twice", i + 1));
        }
        names.push(name.to_string());
    }
    Ok(names)
}

struct Job {
    suite: Suite,
    name: String,
    path: PathBuf,
}

struct Outcome {
    suite: Suite,
    name: String,
    result: Result<(), Failure>,
}

/// Writes straight to the process's stderr, so that progress and the
/// report show even though the test harness captures `print!` output.
fn say(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
}

fn env_jobs() -> usize {
    std::env::var("PERCH_SCANSION_JOBS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(4)
}

/// Runs every selected script; `Err` holds the reason the test fails.
pub fn run_suites() -> Result<(), String> {
    let filter = std::env::var("PERCH_SCANSION_FILTER").unwrap_or_default();
    let selected = |name: &str| filter.is_empty() || name.contains(filter.as_str());
    let mut problems: Vec<String> = Vec::new();
    let mut jobs: Vec<Job> = Vec::new();

    let project = project_dir();
    match scs_files(&project) {
        Ok(files) => jobs.extend(files.into_iter().map(|path| Job {
            suite: Suite::Project,
            name: file_name(&path),
            path,
        })),
        Err(e) => problems.push(format!("cannot list {}: {e}", project.display())),
    }

    let must_pass_path = project.join("shared-must-pass.txt");
    let must_pass: Vec<String> = match std::fs::read_to_string(&must_pass_path) {
        Ok(text) => parse_must_pass(&text).unwrap_or_else(|e| {
            problems.push(format!("{}: {e}", must_pass_path.display()));
            Vec::new()
        }),
        Err(e) => {
            problems.push(format!("cannot read {}: {e}", must_pass_path.display()));
            Vec::new()
        }
    };

    let shared = shared_dir();
    let mut shared_names: BTreeSet<String> = BTreeSet::new();
    match &shared {
        Some(dir) => match scs_files(dir) {
            Ok(files) => {
                for path in files {
                    let name = file_name(&path);
                    shared_names.insert(name.clone());
                    jobs.push(Job {
                        suite: Suite::Shared,
                        name,
                        path,
                    });
                }
                for name in &must_pass {
                    if !shared_names.contains(name) {
                        problems.push(format!(
                            "{name} is listed in shared-must-pass.txt but is not in {}",
                            dir.display()
                        ));
                    }
                }
            }
            Err(e) => problems.push(format!(
                "cannot list the shared scripts in {}: {e}",
                dir.display()
            )),
        },
        None => {
            say("scansion: no shared script folder (../shared/scansion): shared scripts skipped")
        }
    }

    jobs.retain(|j| selected(&j.name));
    let started = Instant::now();
    let outcomes = run_jobs(jobs, env_jobs());
    let listed = |name: &str| must_pass.iter().any(|n| n == name);

    let mut passed = 0usize;
    let mut failed: Vec<&Outcome> = Vec::new();
    let mut unlisted_passing: Vec<&str> = Vec::new();
    let mut pending: Vec<(&str, &Failure)> = Vec::new();
    for o in &outcomes {
        let required = o.suite == Suite::Project || listed(&o.name);
        match &o.result {
            Ok(()) => {
                passed += 1;
                if !required {
                    unlisted_passing.push(&o.name);
                }
            }
            Err(_) if required => failed.push(o),
            Err(f) => pending.push((&o.name, f)),
        }
    }

    say("");
    for o in &failed {
        if let Err(f) = &o.result {
            say(&format!(
                "scansion: FAILED {}/{}: {}\n",
                o.suite.label(),
                o.name,
                f.details
            ));
        }
    }
    if !pending.is_empty() {
        say(&format!(
            "scansion: {} shared scripts not in shared-must-pass.txt do not pass yet:",
            pending.len()
        ));
        for (name, f) in &pending {
            // With a filter the developer is looking at these scripts: give
            // them the whole report.
            let text = if filter.is_empty() {
                &f.summary
            } else {
                &f.details
            };
            say(&format!("  {name}: {text}"));
        }
    }
    if !unlisted_passing.is_empty() {
        say(&format!(
            "scansion: passes but not in shared-must-pass.txt: add it: {}",
            unlisted_passing.join(", ")
        ));
    }
    for p in &problems {
        say(&format!("scansion: error: {p}"));
    }
    say(&format!(
        "scansion: {} not-yet-required shared scripts failing, {:.1} s",
        pending.len(),
        started.elapsed().as_secs_f32()
    ));
    say(&format!(
        "scansion: {passed} passed, {} failed",
        failed.len()
    ));

    if failed.is_empty() && problems.is_empty() {
        return Ok(());
    }
    let mut message = String::new();
    if !failed.is_empty() {
        let names: Vec<String> = failed
            .iter()
            .map(|o| format!("{}/{}", o.suite.label(), o.name))
            .collect();
        message.push_str(&format!(
            "{} required scansion scripts failed (details above): {}",
            failed.len(),
            names.join(", ")
        ));
    }
    for p in &problems {
        if !message.is_empty() {
            message.push('\n');
        }
        message.push_str(p);
    }
    Err(message)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Plays the jobs on `workers` threads, printing one line per script.
fn run_jobs(jobs: Vec<Job>, workers: usize) -> Vec<Outcome> {
    let queue = Mutex::new(jobs.into_iter().collect::<VecDeque<Job>>());
    let outcomes = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let job = match queue.lock() {
                        Ok(mut q) => q.pop_front(),
                        Err(_) => None,
                    };
                    let Some(job) = job else { break };
                    let outcome = run_job(job);
                    if let Ok(mut all) = outcomes.lock() {
                        all.push(outcome);
                    }
                }
            });
        }
    });
    let mut outcomes = outcomes.into_inner().unwrap_or_else(|e| e.into_inner());
    outcomes.sort_by(|a, b| (a.suite.label(), &a.name).cmp(&(b.suite.label(), &b.name)));
    outcomes
}

fn run_job(job: Job) -> Outcome {
    let start = Instant::now();
    let opts = PlayOptions {
        extra_config: job.suite.extra_config(),
        ..PlayOptions::default()
    };
    let result = match std::fs::read_to_string(&job.path) {
        Err(e) => Err(Failure {
            summary: format!("cannot read {}: {e}", job.path.display()),
            details: format!("cannot read {}: {e}", job.path.display()),
        }),
        Ok(text) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            play::play_script(&text, &opts)
        }))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic".to_string());
            let summary = format!("the runner panicked: {what}");
            Err(Failure {
                details: summary.clone(),
                summary,
            })
        }),
    };
    let elapsed: Duration = start.elapsed();
    say(&format!(
        "scansion: {}/{} ... {} ({:.1} s)",
        job.suite.label(),
        job.name,
        match &result {
            Ok(()) => "ok".to_string(),
            Err(f) => format!("fails: {}", f.summary),
        },
        elapsed.as_secs_f32()
    ));
    Outcome {
        suite: job.suite,
        name: job.name,
        result,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_must_pass;

    #[test]
    fn must_pass_list_format() {
        let names = parse_must_pass("# header\nbasic.scs\n\n  muc_register.scs  # seed\n")
            .expect("valid list");
        assert_eq!(names, vec!["basic.scs", "muc_register.scs"]);
        assert!(parse_must_pass("basic.scs\nbasic.scs\n").is_err());
        assert!(parse_must_pass("basic\n").is_err());
        assert!(parse_must_pass("dir/basic.scs\n").is_err());
    }
}
