//! Uploaded files on disk (the edge): `{dir}/{id}` once complete,
//! `{dir}/{id}.part` while being received. The client's file name is
//! never used on disk. Every file operation runs on the blocking pool
//! (`smol::fs`, `smol::unblock`), never on the event loop.
//!
//! A body is copied in chunks of [`CHUNK`], never held whole in memory;
//! the file is synced, then renamed into place and the directory synced,
//! so a crash leaves either no file or a complete one (and a `.part` the
//! sweep removes).

use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// Bytes read from the body and written to the file at a time.
pub const CHUNK: usize = 64 * 1024;

/// A file read or written on the blocking pool through a pipe of two
/// chunks. (`smol::fs::File` pipes up to 8 MiB ahead: that much memory
/// per transfer, on a machine that may have 512 MiB in all.)
pub type DiskFile = smol::Unblock<std::fs::File>;

/// Opens `path` for reading as a [`DiskFile`].
pub async fn open(path: PathBuf) -> io::Result<DiskFile> {
    let file = smol::unblock(move || std::fs::File::open(path)).await?;
    Ok(smol::Unblock::with_capacity(2 * CHUNK, file))
}

/// The suffix of a file being received.
const PART: &str = ".part";

/// The complete file `id`.
pub fn file_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(id)
}

/// The file `id` while it is being received.
pub fn part_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}{PART}"))
}

/// Why a body could not be stored.
#[derive(Debug)]
pub enum ReceiveError {
    /// Reading the body failed or it ended early: the client went away or
    /// was too slow (the listener's timeouts). Nobody is left to answer.
    Body(io::Error),
    /// Writing the file failed (a full disk, permissions): the server's
    /// fault.
    Disk(io::Error),
}

impl std::fmt::Display for ReceiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReceiveError::Body(e) => write!(f, "reading the body: {e}"),
            ReceiveError::Disk(e) => write!(f, "writing the file: {e}"),
        }
    }
}

/// Creates `dir` (owner-only, like the rest of the data directory) if it
/// does not exist.
pub async fn ensure_dir(dir: &Path) -> io::Result<()> {
    let dir = dir.to_path_buf();
    smol::unblock(move || {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
    })
    .await
}

/// Receives exactly `size` bytes of `body` into file `id` of `dir`: into
/// `{id}.part`, synced, then renamed to `{id}`. On any failure the
/// `.part` file is removed and no `{id}` exists.
pub async fn receive(
    dir: &Path,
    id: &str,
    size: u64,
    body: &mut (dyn AsyncRead + Unpin),
) -> Result<(), ReceiveError> {
    ensure_dir(dir).await.map_err(ReceiveError::Disk)?;
    let part = part_path(dir, id);
    let result = write_part(&part, size, body).await;
    let result = match result {
        Ok(()) => finish(dir, &part, &file_path(dir, id))
            .await
            .map_err(ReceiveError::Disk),
        Err(e) => Err(e),
    };
    if result.is_err() {
        let _ = remove_quietly(part).await;
    }
    result
}

/// Copies the body into `part` and syncs it.
async fn write_part(
    part: &Path,
    size: u64,
    body: &mut (dyn AsyncRead + Unpin),
) -> Result<(), ReceiveError> {
    let path = part.to_path_buf();
    let file = smol::unblock(move || {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
    })
    .await
    .map_err(ReceiveError::Disk)?;
    let mut file = smol::Unblock::with_capacity(2 * CHUNK, file);
    let mut buf = vec![0u8; CHUNK];
    let mut left = size;
    while left > 0 {
        let want = usize::try_from(left).map_or(CHUNK, |l| l.min(CHUNK));
        let chunk = buf.get_mut(..want).unwrap_or_default();
        let n = body.read(chunk).await.map_err(ReceiveError::Body)?;
        if n == 0 {
            return Err(ReceiveError::Body(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the body ended {left} bytes early"),
            )));
        }
        let data = chunk.get(..n).unwrap_or_default();
        file.write_all(data).await.map_err(ReceiveError::Disk)?;
        left = left.saturating_sub(n as u64);
    }
    file.flush().await.map_err(ReceiveError::Disk)?;
    file.with_mut(|f| f.sync_all())
        .await
        .map_err(ReceiveError::Disk)?;
    Ok(())
}

/// Renames the synced `part` to `complete` and syncs the directory, so the
/// new name survives a power cut.
async fn finish(dir: &Path, part: &Path, complete: &Path) -> io::Result<()> {
    let (dir, part, complete) = (
        dir.to_path_buf(),
        part.to_path_buf(),
        complete.to_path_buf(),
    );
    smol::unblock(move || {
        std::fs::rename(&part, &complete)?;
        std::fs::File::open(&dir)?.sync_all()
    })
    .await
}

/// Removes `path`; a file already gone is no error.
async fn remove_quietly(path: PathBuf) -> io::Result<()> {
    smol::unblock(move || match std::fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    })
    .await
}

/// Removes the files of `ids` (complete and partial) from `dir`; returns
/// how many files were removed. A file already gone is no error; other
/// failures are logged and the rest are still removed.
pub async fn remove(dir: &Path, ids: Vec<String>) -> usize {
    let dir = dir.to_path_buf();
    smol::unblock(move || {
        let mut removed = 0;
        for id in &ids {
            for path in [file_path(&dir, id), part_path(&dir, id)] {
                match std::fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => log::warn!("upload: cannot remove {}: {e}", path.display()),
                }
            }
        }
        removed
    })
    .await
}

/// A file of the upload folder: its id, and whether it is a `.part`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    pub partial: bool,
}

/// The files of `dir` named like uploads (`{id}` or `{id}.part`, `id` of
/// [`super::token::is_id`]'s shape); others are left alone. A missing
/// folder has none.
pub async fn list(dir: &Path) -> io::Result<Vec<Listed>> {
    let dir = dir.to_path_buf();
    smol::unblock(move || {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for entry in entries {
            let name = entry?.file_name();
            let Some(name) = name.to_str() else { continue };
            let (id, partial) = match name.strip_suffix(PART) {
                Some(id) => (id, true),
                None => (name, false),
            };
            if super::token::is_id(id) {
                out.push(Listed {
                    id: id.to_string(),
                    partial,
                });
            }
        }
        Ok(out)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    /// A body that yields `data` in pieces of `step` bytes, then fails or
    /// ends.
    struct Body {
        data: Vec<u8>,
        at: usize,
        step: usize,
        fail_at_end: bool,
    }

    impl AsyncRead for Body {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<io::Result<usize>> {
            let left = self.data.len() - self.at;
            if left == 0 && self.fail_at_end {
                return std::task::Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "too slow",
                )));
            }
            let n = left.min(self.step).min(buf.len());
            let at = self.at;
            buf[..n].copy_from_slice(&self.data[at..at + n]);
            self.at += n;
            std::task::Poll::Ready(Ok(n))
        }
    }

    fn body(data: &[u8], step: usize, fail_at_end: bool) -> Body {
        Body {
            data: data.to_vec(),
            at: 0,
            step,
            fail_at_end,
        }
    }

    #[test]
    fn a_body_becomes_the_file() {
        let tmp = TempDir::new("upload-files");
        let dir = tmp.path().join("upload");
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        smol::block_on(async {
            let mut b = body(&data, 7_000, false);
            receive(&dir, ID, data.len() as u64, &mut b)
                .await
                .expect("receive");
        });
        assert_eq!(std::fs::read(file_path(&dir, ID)).expect("read"), data);
        assert!(!part_path(&dir, ID).exists());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dir).expect("dir").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let mode = std::fs::metadata(file_path(&dir, ID))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0);
        let listed = smol::block_on(list(&dir)).expect("list");
        assert_eq!(
            listed,
            vec![Listed {
                id: ID.into(),
                partial: false
            }]
        );
        assert_eq!(smol::block_on(remove(&dir, vec![ID.into()])), 1);
        assert!(smol::block_on(list(&dir)).expect("list").is_empty());
    }

    #[test]
    fn an_interrupted_body_leaves_nothing() {
        let tmp = TempDir::new("upload-files-cut");
        let dir = tmp.path().join("upload");
        smol::block_on(async {
            let mut short = body(b"abc", 2, false);
            let err = receive(&dir, ID, 10, &mut short).await.expect_err("short");
            assert!(matches!(err, ReceiveError::Body(_)), "{err}");
            let mut failing = body(b"abc", 2, true);
            let err = receive(&dir, ID, 10, &mut failing)
                .await
                .expect_err("failing");
            assert!(matches!(err, ReceiveError::Body(_)), "{err}");
        });
        assert!(!file_path(&dir, ID).exists());
        assert!(!part_path(&dir, ID).exists());
    }

    #[test]
    fn listing_ignores_other_files() {
        let tmp = TempDir::new("upload-files-list");
        let dir = tmp.path().to_path_buf();
        for name in [
            format!("{ID}.part"),
            "README".to_string(),
            "0123.part".to_string(),
        ] {
            std::fs::write(dir.join(name), b"x").expect("write");
        }
        let listed = smol::block_on(list(&dir)).expect("list");
        assert_eq!(
            listed,
            vec![Listed {
                id: ID.into(),
                partial: true
            }]
        );
        assert!(
            smol::block_on(list(&dir.join("missing")))
                .expect("missing")
                .is_empty()
        );
    }
}
