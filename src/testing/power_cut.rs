//! A redb storage backend that can lose power, for tests of the promise
//! "what a client was told is stored is on disk, and a cut never corrupts
//! the file".
//!
//! It keeps two images: what reads see (every write so far, the page
//! cache) and what the medium surely holds (the image at the last
//! `sync_data`). At the chosen operation the power goes: that operation
//! and every later write or sync fails, as they would for a process whose
//! disk vanished, and the medium is frozen as the last synced image plus
//! some of the writes made since, chosen by a [`CutMode`]. A disk may keep
//! any of its unsynced writes, in any order, torn at sector boundaries;
//! the modes cover the ends of that range.

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

/// A disk writes whole sectors or nothing (power-loss atomicity of one
/// sector is what journaling file systems and redb assume).
const SECTOR: u64 = 512;

/// Which of the writes made since the last sync survive a cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutMode {
    /// None of them: what the issue's model calls "discarding what was
    /// not synced".
    LoseUnsynced,
    /// The first few, in order (a disk that writes in order).
    KeepPrefix,
    /// Any sectors of them (a disk that reorders and tears writes).
    KeepSectors,
}

/// One change to the medium since the last sync.
enum Change {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

struct State {
    /// What reads see: every write so far.
    current: Vec<u8>,
    /// What the medium held at the last sync.
    synced: Vec<u8>,
    unsynced: Vec<Change>,
    /// Write, length and sync operations so far.
    operations: u64,
    cut_at: Option<u64>,
    mode: CutMode,
    /// What the medium held when the power went.
    after_cut: Option<Vec<u8>>,
    random: u64,
}

/// The backend; clones share the same medium, so a test keeps one to
/// look at after handing another to the database.
#[derive(Clone)]
pub struct PowerCut {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for PowerCut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("PowerCut")
            .field("len", &state.current.len())
            .field("operations", &state.operations)
            .field("cut_at", &state.cut_at)
            .finish()
    }
}

impl PowerCut {
    /// An empty medium whose power goes at operation `cut_at` (counted
    /// from 0; `None`: never), keeping what `mode` says; `seed` picks the
    /// surviving writes.
    pub fn new(cut_at: Option<u64>, mode: CutMode, seed: u64) -> PowerCut {
        PowerCut::with_image(Vec::new(), cut_at, mode, seed)
    }

    /// A medium holding `image` (what an earlier cut left), with power.
    pub fn restored(image: Vec<u8>) -> PowerCut {
        PowerCut::with_image(image, None, CutMode::LoseUnsynced, 1)
    }

    fn with_image(image: Vec<u8>, cut_at: Option<u64>, mode: CutMode, seed: u64) -> PowerCut {
        PowerCut {
            state: Arc::new(Mutex::new(State {
                current: image.clone(),
                synced: image,
                unsynced: Vec::new(),
                operations: 0,
                cut_at,
                mode,
                after_cut: None,
                random: seed,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not hide the medium from the test.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Write, length and sync operations so far (to choose cut points).
    pub fn operations(&self) -> u64 {
        self.lock().operations
    }

    /// Whether the power went.
    pub fn is_cut(&self) -> bool {
        self.lock().after_cut.is_some()
    }

    /// What the medium holds after the power goes: the image at the cut,
    /// or, if the power has not gone yet, it goes now.
    pub fn image_after_cut(&self) -> Vec<u8> {
        let mut state = self.lock();
        if state.after_cut.is_none() {
            state.cut();
        }
        state.after_cut.clone().unwrap_or_default()
    }
}

impl State {
    /// Counts an operation that changes the medium; `Err` once the power
    /// is gone (the operation that meets the cut fails too).
    fn powered(&mut self) -> io::Result<()> {
        if self.after_cut.is_none() && self.cut_at == Some(self.operations) {
            self.cut();
        }
        self.operations += 1;
        if self.after_cut.is_some() {
            return Err(io::Error::other("simulated power cut"));
        }
        Ok(())
    }

    fn cut(&mut self) {
        let mut image = self.synced.clone();
        let changes = std::mem::take(&mut self.unsynced);
        let kept = match self.mode {
            CutMode::LoseUnsynced => 0,
            CutMode::KeepPrefix => (self.next_random() % (changes.len() as u64 + 1)) as usize,
            CutMode::KeepSectors => changes.len(),
        };
        for change in changes.into_iter().take(kept) {
            match change {
                Change::SetLen(len) => {
                    if self.mode != CutMode::KeepSectors || self.next_random().is_multiple_of(2) {
                        image.resize(len as usize, 0);
                    }
                }
                Change::Write { offset, data } => {
                    let mut at = offset;
                    let end = offset + data.len() as u64;
                    while at < end {
                        let piece_end = ((at / SECTOR + 1) * SECTOR).min(end);
                        if self.mode != CutMode::KeepSectors || self.next_random().is_multiple_of(2)
                        {
                            let from = (at - offset) as usize;
                            let to = (piece_end - offset) as usize;
                            write_into(&mut image, at, &data[from..to]);
                        }
                        at = piece_end;
                    }
                }
            }
        }
        self.after_cut = Some(image);
    }

    /// splitmix64: every seed, even a small one, gives well-mixed bits.
    fn next_random(&mut self) -> u64 {
        self.random = self.random.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.random;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Writes `data` at `offset`, growing `image` if it ends before (a file
/// grows when written past its end).
fn write_into(image: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let start = offset as usize;
    let end = start + data.len();
    if image.len() < end {
        image.resize(end, 0);
    }
    image[start..end].copy_from_slice(data);
}

fn out_of_range() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "read past the end of the medium",
    )
}

impl redb::StorageBackend for PowerCut {
    fn len(&self) -> Result<u64, io::Error> {
        Ok(self.lock().current.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        let state = self.lock();
        let start = usize::try_from(offset).map_err(|_| out_of_range())?;
        let end = start.checked_add(out.len()).ok_or_else(out_of_range)?;
        let bytes = state.current.get(start..end).ok_or_else(out_of_range)?;
        out.copy_from_slice(bytes);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        let mut state = self.lock();
        state.powered()?;
        let size = usize::try_from(len).map_err(|_| out_of_range())?;
        state.current.resize(size, 0);
        state.unsynced.push(Change::SetLen(len));
        Ok(())
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        let mut state = self.lock();
        state.powered()?;
        state.synced = state.current.clone();
        state.unsynced.clear();
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let mut state = self.lock();
        state.powered()?;
        let start = usize::try_from(offset).map_err(|_| out_of_range())?;
        let end = start.checked_add(data.len()).ok_or_else(out_of_range)?;
        if end > state.current.len() {
            return Err(out_of_range());
        }
        state.current[start..end].copy_from_slice(data);
        state.unsynced.push(Change::Write {
            offset,
            data: data.to_vec(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::StorageBackend;

    fn written(mode: CutMode, cut_at: u64) -> Vec<u8> {
        let medium = PowerCut::new(Some(cut_at), mode, 7);
        medium.set_len(2048).unwrap(); // 0
        medium.write(0, &[1; 1024]).unwrap(); // 1
        medium.sync_data().unwrap(); // 2
        let _ = medium.write(1024, &[2; 1024]); // 3
        let _ = medium.write(0, &[3; 1024]); // 4
        medium.image_after_cut()
    }

    #[test]
    fn synced_writes_survive_and_unsynced_ones_are_lost() {
        let image = written(CutMode::LoseUnsynced, 5);
        assert_eq!(image.len(), 2048);
        assert!(image[..1024].iter().all(|&b| b == 1));
        assert!(image[1024..].iter().all(|&b| b == 0));
    }

    #[test]
    fn the_operation_at_the_cut_and_later_ones_fail() {
        let medium = PowerCut::new(Some(1), CutMode::LoseUnsynced, 7);
        medium.set_len(512).unwrap();
        assert!(medium.write(0, &[1; 512]).is_err());
        assert!(medium.sync_data().is_err());
        assert!(medium.is_cut());
        // Reads still see the page cache of the dying process.
        let mut out = [0u8; 4];
        medium.read(0, &mut out).unwrap();
        assert_eq!(
            medium.image_after_cut(),
            Vec::<u8>::new(),
            "nothing was synced"
        );
    }

    #[test]
    fn a_prefix_keeps_writes_in_order() {
        for seed in 0..20 {
            let medium = PowerCut::new(Some(5), CutMode::KeepPrefix, seed);
            medium.set_len(1024).unwrap();
            medium.sync_data().unwrap();
            medium.write(0, &[1; 512]).unwrap();
            medium.write(512, &[2; 512]).unwrap();
            medium.write(0, &[3; 512]).unwrap();
            let image = medium.image_after_cut();
            // The third write never survives without the first two.
            if image[0] == 3 {
                assert_eq!(image[512], 2);
            }
            if image[512] == 2 {
                assert_ne!(image[0], 0);
            }
        }
    }

    #[test]
    fn sectors_survive_independently() {
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..40 {
            let medium = PowerCut::new(Some(3), CutMode::KeepSectors, seed);
            medium.set_len(1024).unwrap();
            medium.sync_data().unwrap();
            medium.write(0, &[9; 1024]).unwrap();
            let image = medium.image_after_cut();
            seen.insert((image[0], image[512]));
        }
        // Both halves of one write are seen kept alone.
        assert!(seen.contains(&(9, 0)) && seen.contains(&(0, 9)), "{seen:?}");
    }

    #[test]
    fn a_restored_medium_holds_the_image() {
        let medium = PowerCut::restored(vec![5; 100]);
        let mut out = [0u8; 100];
        medium.read(0, &mut out).unwrap();
        assert_eq!(out, [5; 100]);
        assert!(!medium.is_cut());
    }
}
