//! Identifiers the server makes up (stanza ids, resources): random, from
//! OS randomness drawn in blocks.

use std::cell::RefCell;
use std::time::Instant;

/// Hands out random ids.
pub struct Ids {
    rng: ring::rand::SystemRandom,
    /// Random bytes drawn from the OS in blocks (see `random_bytes`).
    pool: RefCell<RandomPool>,
    created: Instant,
}

impl Default for Ids {
    fn default() -> Self {
        Ids {
            rng: ring::rand::SystemRandom::new(),
            pool: RefCell::new(RandomPool::default()),
            created: Instant::now(),
        }
    }
}

impl Ids {
    /// Bytes from the OS random generator, each handed out once. A login
    /// needs several ids, and a system call apiece is a measurable part of
    /// its cost, so they are drawn in blocks.
    pub fn random_bytes<const N: usize>(&self) -> [u8; N] {
        let mut out = [0u8; N];
        let drawn = self.pool.borrow_mut().take(&self.rng, &mut out);
        if !drawn {
            // The OS RNG does not fail on Linux once booted; if it ever did,
            // a time-derived value still keeps ids unique (not secret).
            let nanos = self.created.elapsed().as_nanos().to_le_bytes();
            for (i, b) in out.iter_mut().enumerate() {
                *b = nanos[i % nanos.len()] ^ (i as u8);
            }
        }
        out
    }

    /// A fresh id for a stanza or a resource.
    pub fn new_id(&self) -> String {
        hex(&self.random_bytes::<9>())
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Bytes per draw from the OS for `Ids::random_bytes`.
const RANDOM_POOL_BYTES: usize = 256;

/// A block of OS randomness; bytes are wiped as they are handed out, so
/// none is ever given twice.
struct RandomPool {
    bytes: [u8; RANDOM_POOL_BYTES],
    /// Bytes before this index were handed out already.
    used: usize,
}

impl Default for RandomPool {
    fn default() -> Self {
        RandomPool {
            bytes: [0; RANDOM_POOL_BYTES],
            used: RANDOM_POOL_BYTES,
        }
    }
}

impl RandomPool {
    /// Fills `out`; false if the OS generator failed.
    fn take(&mut self, rng: &ring::rand::SystemRandom, out: &mut [u8]) -> bool {
        if out.len() > RANDOM_POOL_BYTES {
            return ring::rand::SecureRandom::fill(rng, out).is_ok();
        }
        if RANDOM_POOL_BYTES - self.used < out.len() {
            if ring::rand::SecureRandom::fill(rng, &mut self.bytes).is_err() {
                return false;
            }
            self.used = 0;
        }
        let Some(fresh) = self.bytes.get_mut(self.used..self.used + out.len()) else {
            return false;
        };
        out.copy_from_slice(fresh);
        fresh.fill(0);
        self.used += out.len();
        true
    }
}

#[cfg(test)]
mod random_pool_tests {
    use super::*;

    #[test]
    fn hands_out_each_byte_once_and_refills() {
        let rng = ring::rand::SystemRandom::new();
        let mut pool = RandomPool::default();
        let mut seen = Vec::new();
        for _ in 0..100 {
            let mut id = [0u8; 9];
            assert!(pool.take(&rng, &mut id));
            seen.push(id);
        }
        // 900 bytes: the pool was refilled several times, and 9 random
        // bytes repeating would be a bug, not chance.
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), seen.len());
        let mut big = [0u8; RANDOM_POOL_BYTES + 1];
        assert!(pool.take(&rng, &mut big));
        assert!(big.iter().any(|&b| b != 0));
    }
}
