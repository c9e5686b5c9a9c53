//! Owner-only access to the data directory.
//!
//! The database holds every account's SCRAM keys, rosters and offline
//! messages, and `tls/` holds private keys: no other local user may read
//! them. Perch sets the umask to 0077 when it starts, so everything it
//! creates is owner-only; [`find_exposed`] finds what an older version or
//! an administrator left readable, `perch run` fixes it ([`fix`]) and
//! `perch check` reports it. [`write_atomically`] writes key and
//! certificate files so that they are never readable by others nor left
//! half-written.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The permission bits of group and others.
const NOT_OWNER: u32 = 0o077;
/// How deep the walk goes: the data directory has at most two levels
/// (`tls/`, `certs/`); the limit only stops a pathological tree.
const MAX_DEPTH: usize = 8;

/// Makes every file and directory this process creates from now on
/// owner-only (files 0600, directories 0700).
pub fn restrict_umask() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(NOT_OWNER));
}

/// A file or directory in the data directory that others may access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposed {
    pub path: PathBuf,
    /// The permission bits found (`0o644`, …).
    pub mode: u32,
    pub is_dir: bool,
}

impl Exposed {
    /// The mode it should have: the owner's bits only (0644 -> 0600,
    /// 0755 -> 0700).
    pub fn wanted(&self) -> u32 {
        self.mode & !NOT_OWNER & 0o777
    }
}

impl fmt::Display for Exposed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} has mode {:04o}, so other local users can {} it (wanted: {:04o})",
            if self.is_dir { "directory" } else { "file" },
            self.path.display(),
            self.mode,
            if self.is_dir { "list" } else { "read" },
            self.wanted()
        )
    }
}

/// `data_dir` itself and every directory and regular file under it that
/// group or others may access. Symbolic links are not followed (below the
/// top) and sockets are left alone (the admin socket sets its own mode).
/// A missing `data_dir` has nothing exposed.
pub fn find_exposed(data_dir: &Path) -> std::io::Result<Vec<Exposed>> {
    let mut found = Vec::new();
    let meta = match std::fs::metadata(data_dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    visit(data_dir, &meta, 0, &mut found)?;
    Ok(found)
}

fn visit(
    path: &Path,
    meta: &std::fs::Metadata,
    depth: usize,
    found: &mut Vec<Exposed>,
) -> std::io::Result<()> {
    let kind = meta.file_type();
    if !kind.is_dir() && !kind.is_file() {
        return Ok(());
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & NOT_OWNER != 0 {
        found.push(Exposed {
            path: path.to_path_buf(),
            mode,
            is_dir: kind.is_dir(),
        });
    }
    if kind.is_dir() && depth < MAX_DEPTH {
        let mut entries: Vec<_> = std::fs::read_dir(path)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let meta = std::fs::symlink_metadata(entry.path())?;
            visit(&entry.path(), &meta, depth + 1, found)?;
        }
    }
    Ok(())
}

/// Makes everything [`find_exposed`] finds owner-only, logging each change
/// (an administrator should know that modes changed under them) and each
/// failure (a file owned by someone else cannot be changed; Perch still
/// runs).
pub fn fix(data_dir: &Path) {
    let exposed = match find_exposed(data_dir) {
        Ok(e) => e,
        Err(e) => {
            log::warn!(
                "cannot check the permissions in {}: {e}",
                data_dir.display()
            );
            return;
        }
    };
    for item in exposed {
        let wanted = item.wanted();
        match std::fs::set_permissions(&item.path, std::fs::Permissions::from_mode(wanted)) {
            Ok(()) => log::info!(
                "{} was readable by other local users (mode {:04o}); changed it to {wanted:04o}",
                item.path.display(),
                item.mode
            ),
            Err(e) => log::warn!("{item}; changing it failed: {e}"),
        }
    }
}

/// Writes `contents` to `path` with permission bits `mode` through a
/// temporary file beside it, synced and renamed into place: a crash never
/// leaves a truncated file behind, and a key is never readable by others
/// even for a moment.
pub fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    use std::fs::{self, OpenOptions};
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    match fs::remove_file(&tmp) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
        _ => {}
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    fn set(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
    }

    #[test]
    fn finds_and_fixes_what_others_can_read() {
        let dir = TempDir::new("modes");
        let data = dir.path().join("data");
        assert_eq!(find_exposed(&data).expect("missing is fine"), Vec::new());
        std::fs::create_dir_all(data.join("tls")).expect("mkdir");
        std::fs::write(data.join("perch.redb"), b"db").expect("write");
        std::fs::write(data.join("tls/localhost.key"), b"key").expect("write");
        std::fs::write(data.join("tls/localhost.crt"), b"crt").expect("write");
        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, b"not ours").expect("write");
        set(&outside, 0o644);
        std::os::unix::fs::symlink(&outside, data.join("link")).expect("symlink");
        set(&data, 0o755);
        set(&data.join("tls"), 0o700);
        set(&data.join("perch.redb"), 0o644);
        set(&data.join("tls/localhost.key"), 0o600);
        set(&data.join("tls/localhost.crt"), 0o640);

        let found = find_exposed(&data).expect("walk");
        let paths: Vec<_> = found.iter().map(|e| e.path.clone()).collect();
        assert_eq!(
            paths,
            vec![
                data.clone(),
                data.join("perch.redb"),
                data.join("tls/localhost.crt")
            ]
        );
        assert_eq!(found[0].wanted(), 0o700);
        assert_eq!(found[1].wanted(), 0o600);
        assert!(found[1].to_string().contains("mode 0644"), "{}", found[1]);

        fix(&data);
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("perch.redb")), 0o600);
        assert_eq!(mode(&data.join("tls/localhost.crt")), 0o600);
        assert_eq!(find_exposed(&data).expect("walk"), Vec::new());
        // The link's target was not touched.
        assert_eq!(mode(&outside), 0o644);
    }
}
