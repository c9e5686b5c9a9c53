//! A database file whose creation a power cut interrupted. redb creates a
//! file by sizing it, writing and syncing a header without its magic
//! number, and only then writing the magic number: until that last write
//! reaches the disk the file holds no data at all, yet redb refuses to
//! open it ("not a redb database"). Without this, a Raspberry Pi that
//! loses power during Perch's very first start would never start again
//! until someone deleted the file by hand.

use std::io::Read;
use std::path::Path;

/// redb's magic number is the first 9 bytes of an initialised file.
const MAGIC_LEN: usize = 9;

/// A half-created file is the size redb gives a new database (about
/// 1 MiB); anything much bigger held data once and is never discarded.
const MAX_DISCARDED_BYTES: u64 = 4 << 20;

/// Whether storage of `len` bytes starting with `head` is a database
/// whose creation never finished: not empty, no magic number (all zero
/// where it would be), and not bigger than a new database.
pub(super) fn is_interrupted_creation(len: u64, head: &[u8]) -> bool {
    len > 0
        && len <= MAX_DISCARDED_BYTES
        && head.len() >= MAGIC_LEN.min(len as usize)
        && head.iter().take(MAGIC_LEN).all(|&b| b == 0)
}

/// If the file at `path` is an interrupted creation, moves it aside (to
/// `<name>.unfinished-<unix time>`, kept in case it held something after
/// all) so that redb creates the database anew, and says so. Any error
/// leaves the file where it is.
pub(super) fn discard_file_if_interrupted(path: &Path) -> bool {
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let Ok(len) = file.metadata().map(|m| m.len()) else {
        return false;
    };
    let mut head = vec![0u8; MAGIC_LEN.min(len as usize)];
    if file.read_exact(&mut head).is_err() || !is_interrupted_creation(len, &head) {
        return false;
    }
    drop(file);
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".unfinished-{seconds}"));
    match std::fs::rename(path, &aside) {
        Ok(()) => {
            log::warn!(
                "{} was not a finished database (an interrupted first start? a power cut?); it was moved to {} and a new database is created",
                path.display(),
                Path::new(&aside).display()
            );
            true
        }
        Err(e) => {
            log::error!(
                "{}: cannot move the unfinished database file aside: {e}",
                path.display()
            );
            false
        }
    }
}

/// [`discard_file_if_interrupted`] for a storage backend (tests), which is
/// emptied: there is nowhere to move it.
pub(super) fn discard_backend_if_interrupted(backend: &dyn redb::StorageBackend) -> bool {
    let Ok(len) = backend.len() else {
        return false;
    };
    let mut head = vec![0u8; MAGIC_LEN.min(len as usize)];
    if backend.read(0, &mut head).is_err() || !is_interrupted_creation(len, &head) {
        return false;
    }
    backend
        .set_len(0)
        .and_then(|()| backend.sync_data())
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_small_files_without_a_magic_number_are_unfinished() {
        assert!(is_interrupted_creation(1 << 20, &[0; 9]));
        assert!(
            !is_interrupted_creation(0, &[]),
            "empty: redb creates it anyway"
        );
        assert!(!is_interrupted_creation(
            1 << 20,
            b"redb\x1a\x0a\xa9\x0d\x0a"
        ));
        assert!(
            !is_interrupted_creation(1 << 20, b"SQLite fo"),
            "someone else's file"
        );
        assert!(
            !is_interrupted_creation(64 << 20, &[0; 9]),
            "too big to be new"
        );
    }

    #[test]
    fn a_file_left_by_an_interrupted_creation_is_moved_aside_and_created_anew() {
        let dir = crate::testing::TempDir::new("interrupted-creation");
        let path = dir.path().join("db.redb");
        std::fs::write(&path, vec![0u8; 1 << 20]).unwrap();
        let store = super::super::Store::open(&path, 1 << 20).expect("opens anew");
        drop(store);
        super::super::Store::open(&path, 1 << 20).expect("and again");
        let kept: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("db.redb.unfinished-"))
            .collect();
        assert_eq!(kept.len(), 1, "the old file is kept: {kept:?}");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_left_alone() {
        let dir = crate::testing::TempDir::new("not-a-database");
        let path = dir.path().join("db.redb");
        std::fs::write(&path, b"some other program's data").unwrap();
        assert!(super::super::Store::open(&path, 1 << 20).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"some other program's data");
    }
}
