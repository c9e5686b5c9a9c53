//! The harness of the CLI tests: configuration files and the helpers
//! they share from `tests/common` (running the binary with bounded waits,
//! a `perch run` child, the XMPP test client).

use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::common::process::*;
pub use crate::common::{authenticate, login_at};
use perch::testing::TempDir;

/// How long a test waits for `perch run` to log what it was asked to do.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The mode bits of `path`.
pub fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

// ---------------------------------------------------------------------------
// Configuration files.

/// A TOML basic string holding `path`.
pub fn toml_path(path: &Path) -> String {
    let s = path.to_str().expect("UTF-8 temp path");
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One host "localhost", one plaintext c2s listener on 127.0.0.1:`port`
/// allowing PLAIN (so the test can log in with std sockets), data in
/// `data_dir`.
pub fn server_config(data_dir: &Path, port: u16) -> String {
    format!(
        r#"data_dir = {}
log_level = "info"

[[host]]
domain = "localhost"

[[listener]]
kind = "c2s"
address = "127.0.0.1"
port = {port}

[c2s]
require_encryption = false
allow_plaintext_auth = true
"#,
        toml_path(data_dir)
    )
}

pub fn write_file(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path.to_path_buf()
}

/// Writes `server_config(<dir>/data, 0)` to `<dir>/perch.toml`.
pub fn standard_config(dir: &TempDir) -> PathBuf {
    write_file(
        &dir.path().join("perch.toml"),
        &server_config(&dir.path().join("data"), 0),
    )
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let probe = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding a probe socket");
    probe.local_addr().expect("probe address").port()
}
