//! The documentation stays true to the binary and the example
//! configuration:
//!
//! - every fenced ```sh block of README.md and docs/*.md whose first line
//!   is `# test` runs with the freshly built `perch` first on PATH, in a
//!   temporary directory holding a copy of perch.example.toml, and must
//!   exit 0;
//! - every key of perch.example.toml (commented or not) is named in
//!   docs/configuration.md under the heading of its section;
//! - every command that `perch --help` (and each command's own --help)
//!   lists, and every option each prints, is in the man page docs/perch.1;
//! - the man pages render without warnings where `man` is installed.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use perch::testing::{TempDir, scaled};
use rustix::process::{Pid, Signal, kill_process_group};

use crate::harness::*;

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// Shell snippets.

/// A ```sh block whose first line is `# test`.
struct Snippet {
    /// `file:line` of the opening fence, for failure messages.
    origin: String,
    script: String,
}

/// The Markdown files whose snippets are run: the README and docs/*.md.
fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![repo_file("README.md")];
    let docs = repo_file("docs");
    let mut in_docs: Vec<PathBuf> = std::fs::read_dir(&docs)
        .unwrap_or_else(|e| panic!("listing {}: {e}", docs.display()))
        .map(|entry| entry.expect("a docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    in_docs.sort();
    files.extend(in_docs);
    files
}

fn snippets_of(path: &Path) -> Vec<Snippet> {
    let text = read(path);
    let name = path
        .strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(path)
        .display()
        .to_string();
    let mut found = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((number, line)) = lines.next() {
        let fence = line.trim_start();
        if !fence.starts_with("```") {
            continue;
        }
        let indent = line.len() - fence.len();
        let runnable = fence == "```sh";
        let mut body = Vec::new();
        for (_, inner) in lines.by_ref() {
            if inner.trim_start().starts_with("```") {
                break;
            }
            body.push(inner.get(indent..).unwrap_or(inner.trim_start()));
        }
        if runnable && body.first().is_some_and(|first| first.trim() == "# test") {
            found.push(Snippet {
                origin: format!("{name}:{}", number + 1),
                script: body.join("\n") + "\n",
            });
        }
    }
    found
}

/// Runs `snippet` with bash (errexit, nounset, pipefail) in a new process
/// group, which is killed afterwards so a server it left in the
/// background cannot outlive the test.
fn run_snippet(snippet: &Snippet) {
    let dir = TempDir::new("docs-snippet");
    std::fs::copy(
        repo_file("perch.example.toml"),
        dir.path().join("perch.example.toml"),
    )
    .expect("copying perch.example.toml");
    let script = write_file(&dir.path().join("snippet.sh"), &snippet.script);

    let binary = Path::new(env!("CARGO_BIN_EXE_perch"));
    let bin_dir = binary.parent().expect("the binary's directory");
    let path = match std::env::var_os("PATH") {
        Some(rest) => {
            let mut joined = bin_dir.as_os_str().to_owned();
            joined.push(":");
            joined.push(rest);
            joined
        }
        None => bin_dir.as_os_str().to_owned(),
    };
    // The same environment as every CLI test (`perch()`): nothing of the
    // host's configuration lookup, a home inside the test directory.
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail"])
        .arg(&script)
        .current_dir(dir.path())
        .env("PATH", path)
        .env_remove("PERCH_CONFIG")
        .env_remove("CONFIGURATION_DIRECTORY")
        .env_remove("STATE_DIRECTORY")
        .env_remove("XDG_DATA_HOME")
        .env("HOME", home_of(dir.path()))
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{}: cannot start bash: {e}", snippet.origin));
    let stdout = drain(child.stdout.take().expect("stdout piped"));
    let stderr = drain(child.stderr.take().expect("stderr piped"));
    let limit = scaled(Duration::from_secs(60));
    let status = wait_bounded(&mut child, limit);
    if let Some(pid) = Pid::from_raw(child.id() as i32) {
        // Whatever the snippet left running (ESRCH when nothing is left).
        let _ = kill_process_group(pid, Signal::KILL);
    }
    if status.is_none() {
        let _ = child.wait();
    }
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    let report = format!(
        "--- script ---\n{}--- stdout ---\n{stdout}--- stderr ---\n{stderr}",
        snippet.script
    );
    match status {
        None => panic!(
            "{}: the `# test` snippet did not finish within {limit:?}\n{report}",
            snippet.origin
        ),
        Some(status) => assert!(
            status.success(),
            "{}: the `# test` snippet failed ({status}); fix the documentation or \
             the binary so that a reader can paste it\n{report}",
            snippet.origin
        ),
    }
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn documented_shell_snippets_run() {
    let snippets: Vec<Snippet> = markdown_files()
        .iter()
        .flat_map(|path| snippets_of(path))
        .collect();
    assert!(
        snippets.len() >= 3,
        "expected the README and docs/ to mark at least 3 ```sh blocks with `# test`, \
         found {}",
        snippets.len()
    );
    for snippet in &snippets {
        run_snippet(snippet);
    }
}

#[test]
fn snippet_extraction_takes_only_marked_sh_blocks() {
    let dir = TempDir::new("docs-extract");
    let doc = write_file(
        &dir.path().join("doc.md"),
        "text\n\n```sh\n# test\nperch --help\n```\n\n```sh\nperch run\n```\n\n\
         1. a step\n\n   ```sh\n   # test\n   perch check\n   ```\n\n```toml\n# test\n```\n",
    );
    let found = snippets_of(&doc);
    let scripts: Vec<&str> = found.iter().map(|s| s.script.as_str()).collect();
    assert_eq!(scripts, ["# test\nperch --help\n", "# test\nperch check\n"]);
    assert!(found[0].origin.ends_with("doc.md:3"), "{}", found[0].origin);
}

// ---------------------------------------------------------------------------
// perch.example.toml against docs/configuration.md.

/// The keys of each section of a commented example configuration: `key =`
/// lines, commented out or not, under the `[section]` or `[[section]]`
/// line before them ("" for the top level).
fn example_keys(example: &str) -> BTreeMap<String, Vec<String>> {
    let mut sections: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = String::new();
    sections.insert(current.clone(), Vec::new());
    for line in example.lines() {
        let line = line.trim_start_matches('#').trim();
        if line.starts_with('[') && line.ends_with(']') {
            let name = line.trim_matches(|c| c == '[' || c == ']');
            if !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.".contains(c))
            {
                current = line.to_string();
                sections.entry(current.clone()).or_default();
            }
            continue;
        }
        if let Some((key, _)) = line.split_once('=') {
            let key = key.trim();
            if !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                let keys = sections.entry(current.clone()).or_default();
                if !keys.iter().any(|k| k == key) {
                    keys.push(key.to_string());
                }
            }
        }
    }
    sections
}

/// The Markdown text under each heading (code blocks included, headings
/// inside them ignored), keyed by the heading line.
fn chunks_by_heading(markdown: &str) -> Vec<(String, String)> {
    let mut chunks = vec![(String::new(), String::new())];
    let mut in_code = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        }
        if !in_code && line.starts_with('#') {
            chunks.push((line.to_string(), String::new()));
        } else {
            let text = &mut chunks.last_mut().expect("a chunk").1;
            text.push_str(line);
            text.push('\n');
        }
    }
    chunks
}

/// Where `section`'s keys must be named: the chunk whose heading holds
/// the section's header (`[c2s]`), or "Top-level" for the top level.
fn chunk_for<'a>(chunks: &'a [(String, String)], section: &str) -> Option<&'a str> {
    chunks
        .iter()
        .find(|(heading, _)| {
            if section.is_empty() {
                heading.contains("Top-level")
            } else {
                heading.contains(section)
            }
        })
        .map(|(_, text)| text.as_str())
}

#[test]
fn configuration_doc_names_every_example_key() {
    let sections = example_keys(&read(&repo_file("perch.example.toml")));
    assert!(
        sections.len() > 15 && sections.values().map(Vec::len).sum::<usize>() > 100,
        "perch.example.toml should have its sections and keys: {sections:?}"
    );
    let chunks = chunks_by_heading(&read(&repo_file("docs/configuration.md")));
    let mut problems = Vec::new();
    for (section, keys) in &sections {
        let shown = if section.is_empty() {
            "the top level"
        } else {
            section.as_str()
        };
        let Some(text) = chunk_for(&chunks, section) else {
            problems.push(format!(
                "no heading for {shown} in docs/configuration.md (add one naming `{section}`)"
            ));
            continue;
        };
        for key in keys {
            let named = text.contains(&format!("`{key}`"))
                || text
                    .lines()
                    .any(|l| l.trim_start().starts_with(&format!("{key} =")));
            if !named {
                problems.push(format!(
                    "{shown}: key `{key}` of perch.example.toml is not named under its heading in \
                     docs/configuration.md"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn configuration_man_page_lists_every_example_section() {
    let sections = example_keys(&read(&repo_file("perch.example.toml")));
    let man = man_text(&read(&repo_file("docs/perch.toml.5")));
    let missing: Vec<&str> = sections
        .keys()
        .filter(|section| !section.is_empty() && !man.contains(section.as_str()))
        .map(String::as_str)
        .collect();
    assert!(
        missing.is_empty(),
        "sections of perch.example.toml missing from docs/perch.toml.5's SECTIONS: {missing:?}"
    );
}

#[test]
fn example_key_parser_sees_sections_and_commented_keys() {
    let sections = example_keys(
        "# Default: the first one = the only one, said in prose\n\
         log_level = \"info\"\n[c2s]\n# Default: 30\nauth_timeout_secs = 30\n\
         # [[s2s.route]]\n# domain = \"example.net\"\n",
    );
    assert_eq!(sections[""], ["log_level"]);
    assert_eq!(sections["[c2s]"], ["auth_timeout_secs"]);
    assert_eq!(sections["[[s2s.route]]"], ["domain"]);
}

// ---------------------------------------------------------------------------
// The man pages.

/// The commands and options one `--help` text lists: the names under
/// "Commands:" and the long options under "Options:".
fn help_entries(help: &str) -> (Vec<String>, Vec<String>) {
    let mut commands = Vec::new();
    let mut options = Vec::new();
    let mut part = "";
    for line in help.lines() {
        if !line.starts_with(' ') {
            part = line.trim_end_matches(':');
            continue;
        }
        // Entries start two spaces in; wrapped descriptions further.
        let Some(entry) = line.strip_prefix("  ").filter(|e| !e.starts_with(' ')) else {
            continue;
        };
        let first = entry.split_whitespace().next().unwrap_or_default();
        match part {
            "Commands" => commands.push(first.to_string()),
            "Options" => options.extend(
                entry
                    .split("  ")
                    .next()
                    .unwrap_or_default()
                    .split(", ")
                    .filter(|flag| flag.starts_with("--"))
                    .map(str::to_string),
            ),
            _ => {}
        }
    }
    (commands, options)
}

/// The man page's source with roff's escapes for `-` and the font changes
/// taken out, so names read as they are typed.
fn man_text(source: &str) -> String {
    source
        .replace("\\-", "-")
        .replace("\\fB", "")
        .replace("\\fI", "")
        .replace("\\fR", "")
        .replace("\\fP", "")
}

/// The `.SS` sections of a man page: the command words of each heading
/// (`perch user add`) and the text under it (the heading's synopsis left
/// out, so an option must be described, not only listed).
fn man_sections(text: &str) -> Vec<(String, String)> {
    let mut sections: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix(".SS ") {
            let words: Vec<&str> = heading
                .split_whitespace()
                .take_while(|w| {
                    w.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                })
                .collect();
            // The heading's synopsis is not a description: only the text
            // under it counts.
            sections.push((words.join(" "), String::new()));
        } else if line.starts_with(".SH ") {
            sections.push((String::new(), String::new()));
        } else if let Some((_, body)) = sections.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    sections
}

#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the host binary; under qemu-user the foreign binary cannot be exec'd"
)]
fn man_page_names_every_command_and_option() {
    let dir = TempDir::new("docs-man");
    let man = man_text(&read(&repo_file("docs/perch.1")));
    let sections = man_sections(&man);
    let global_options = man
        .split(".SH OPTIONS")
        .nth(1)
        .and_then(|rest| rest.split(".SH ").next())
        .expect("docs/perch.1 has an OPTIONS section");
    let mut problems = Vec::new();
    let mut commands_seen = 0;
    // Breadth-first over the command tree, from `perch --help`.
    let mut pending: Vec<Vec<String>> = vec![Vec::new()];
    while let Some(path) = pending.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = cli(dir.path(), &args, None);
        out.expect_code(0);
        let (commands, options) = help_entries(&out.stdout);
        let name = ["perch"]
            .into_iter()
            .chain(path.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        if path.is_empty() {
            assert!(
                commands.len() >= 10 && commands.iter().any(|c| c == "run"),
                "perch --help should list the commands: {}",
                out.describe()
            );
        } else {
            commands_seen += 1;
            if !man.contains(&name) {
                problems.push(format!("`{name}` is not named in docs/perch.1"));
            }
        }
        let own_section = sections.iter().find(|(words, _)| *words == name);
        for option in &options {
            let global = matches!(option.as_str(), "--help" | "--config");
            let documented = if global || path.is_empty() {
                global_options.contains(option.as_str())
            } else {
                own_section.is_some_and(|(_, body)| body.contains(option.as_str()))
            };
            if !documented {
                problems.push(format!(
                    "`{name} {option}` is not documented in docs/perch.1 (global options \
                     under OPTIONS, the others in the `.SS {name}` section)"
                ));
            }
        }
        if commands.is_empty() && own_section.is_none() {
            problems.push(format!("docs/perch.1 has no `.SS {name} …` section"));
        }
        for command in commands.into_iter().filter(|c| c != "help") {
            let mut next = path.clone();
            next.push(command);
            pending.push(next);
        }
    }
    assert!(
        commands_seen > 30,
        "expected more than 30 commands and subcommands, walked {commands_seen}"
    );
    if !global_options.contains("--version") {
        problems.push("`perch --version` is not documented under OPTIONS".into());
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn help_parser_reads_commands_and_options() {
    let help = "Usage: perch user add [--weak] <jid>\n\nCreate an account.\n\n\
                Options:\n  --password-stdin  read the password from the first line\n\
                \x20                   instead\n  -c, --config      configuration file\n\
                \x20 --help, help      display usage information\n\n\
                Commands:\n  add               Create an account; asks\n\
                \x20                   twice.\n  list              List accounts.\n";
    let (commands, options) = help_entries(help);
    assert_eq!(commands, ["add", "list"]);
    assert_eq!(options, ["--password-stdin", "--config", "--help"]);
}

/// `man --warnings -l PAGE` must print nothing on stderr; skipped, saying
/// so, where man is not installed.
#[test]
#[cfg_attr(not(target_arch = "x86_64"), ignore = "runs man(1)")]
fn man_pages_render_without_warnings() {
    if Command::new("man").arg("--version").output().is_err() {
        eprintln!("man is not installed (Debian: man-db): not checking how the man pages render");
        return;
    }
    for page in ["docs/perch.1", "docs/perch.toml.5"] {
        let out = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(repo_file(page))
            .env("MANWIDTH", "80")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running man -l {page}: {e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "man --warnings -l {page}: {}\n{stderr}",
            out.status
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("NAME") && stdout.contains("SEE ALSO"),
            "man -l {page} rendered no page:\n{stdout}"
        );
    }
}
