//! `perch backup FILE`: a consistent copy of the database in a new file.
//!
//! The file is created by the command, as the user who runs it and where
//! that user may write. With a server running, its descriptor travels over
//! the admin socket and the server writes the snapshot into it (the server
//! holds the database lock, and under systemd it could not open the path
//! itself). Without a server, the command opens the database directly. The
//! copy goes to a temporary name first and is renamed over FILE only when
//! complete, so FILE is always either the old or the new backup.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::admin::{AdminError, Command};
use crate::config::Config;
use crate::store::{Store, StoreError};

#[derive(Debug)]
pub enum BackupError {
    Io(PathBuf, std::io::Error),
    Server(AdminError),
    Store(StoreError),
}

impl fmt::Display for BackupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackupError::Io(path, e) => write!(f, "{}: {e}", path.display()),
            BackupError::Server(e) => write!(f, "the running server: {e}"),
            BackupError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for BackupError {}

/// Writes a backup of the database `config` names into `target` and
/// returns a one-line summary.
pub fn write(config: &Config, target: &Path) -> Result<String, BackupError> {
    let temporary = temporary_path(target);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        // Accounts' SCRAM keys are in there: owner only.
        .mode(0o600)
        .open(&temporary)
        .map_err(|e| BackupError::Io(temporary.clone(), e))?;
    let result = fill(config, file).and_then(|summary| {
        std::fs::rename(&temporary, target).map_err(|e| BackupError::Io(target.to_owned(), e))?;
        sync_directory_of(target);
        Ok(summary)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

fn fill(config: &Config, file: File) -> Result<String, BackupError> {
    match crate::net::admin::request_with_file(&config.data_dir, &Command::Backup, Some(&file)) {
        Ok(Some(lines)) => return Ok(lines.join("; ")),
        Ok(None) => {}
        Err(e) => return Err(BackupError::Server(e)),
    }
    let store = open_existing(config).map_err(BackupError::Store)?;
    let summary = smol::block_on(store.backup_into(file)).map_err(BackupError::Store)?;
    Ok(format!(
        "backed up {} records in {} tables",
        summary.records, summary.tables
    ))
}

/// Opens the database of `config` without a server, refusing to create one.
pub fn open_existing(config: &Config) -> Result<Store, StoreError> {
    let path = config.data_dir.join(crate::config::DB_FILE);
    if !path.exists() {
        return Err(StoreError::NotFound(format!("database {}", path.display())));
    }
    Store::open(&path, config.storage.cache_bytes())
}

/// `dir/.name.tmp-PID` next to `target`, on the same file system so the
/// final rename is atomic.
fn temporary_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "perch-backup".to_string());
    target.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Makes the rename durable; a failure only weakens that guarantee.
fn sync_directory_of(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    fn config_for(dir: &Path) -> Config {
        Config::from_toml_str(&format!("data_dir = {:?}\n", dir.join("data")), "test")
            .expect("config")
    }

    #[test]
    fn offline_backup_replaces_the_target_atomically() {
        let dir = TempDir::new("backup-cli");
        let config = config_for(dir.path());
        let target = dir.path().join("perch-backup.redb");
        assert!(matches!(
            write(&config, &target),
            Err(BackupError::Store(StoreError::NotFound(_)))
        ));
        assert!(!target.exists());
        drop(Store::open(&config.data_dir.join(crate::config::DB_FILE), 1 << 20).expect("create"));
        let summary = write(&config, &target).expect("backup");
        assert!(summary.starts_with("backed up "), "{summary}");
        // Again over the old one: replaced, and no temporary file left.
        write(&config, &target).expect("second backup");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        Store::open(&target, 1 << 20).expect("the backup opens");
    }
}
