//! A fast keyed hash for the tables looked up on every stanza (sessions by
//! bare JID, account states, rooms, occupants by real JID).
//!
//! The standard library's SipHash-1-3 costs a few hundred instructions per
//! JID, several times per routed message, and more than that per MUC
//! delivery. This hash folds 8 bytes per 64×64→128-bit multiply, as
//! foldhash and aHash's fallback do, with keys drawn per table from the
//! standard library's random source. It is not a cryptographic hash, but
//! an attacker cannot compute collisions offline without the keys, and
//! the keys of these tables are addresses of accounts and rooms that
//! exist (creating them is rate-limited), not arbitrary client input.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};

/// A `HashMap` using [`FastHash`].
pub type FastMap<K, V> = HashMap<K, V, FastHash>;

/// Creates [`FastHasher`]s with keys chosen at random once per table.
#[derive(Clone, Debug)]
pub struct FastHash {
    key: u64,
    mul: u64,
}

impl Default for FastHash {
    fn default() -> FastHash {
        // `RandomState` keys are random per process and differ per call.
        let random = |n: u64| {
            let mut h = RandomState::new().build_hasher();
            h.write_u64(n);
            h.finish()
        };
        FastHash {
            key: random(1),
            // Odd, so multiplying by it loses no bits.
            mul: random(2) | 1,
        }
    }
}

impl BuildHasher for FastHash {
    type Hasher = FastHasher;

    fn build_hasher(&self) -> FastHasher {
        FastHasher {
            acc: self.key,
            mul: self.mul,
        }
    }
}

pub struct FastHasher {
    acc: u64,
    mul: u64,
}

/// The high and low halves of the full product, folded together: every
/// input bit affects many output bits.
fn fold_mul(x: u64, y: u64) -> u64 {
    let full = u128::from(x) * u128::from(y);
    (full as u64) ^ ((full >> 64) as u64)
}

impl FastHasher {
    fn mix(&mut self, word: u64) {
        self.acc = fold_mul(self.acc ^ word, self.mul);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            if let Some(dst) = word.get_mut(..rest.len()) {
                dst.copy_from_slice(rest);
            }
            // The length keeps "a" and "a\0" apart.
            self.mix(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    fn finish(&self) -> u64 {
        fold_mul(self.acc, self.mul ^ 0x9E37_79B9_7F4A_7C15)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(build: &FastHash, s: &str) -> u64 {
        build.hash_one(s)
    }

    #[test]
    fn equal_keys_hash_equal_and_tables_differ() {
        let a = FastHash::default();
        assert_eq!(hash(&a, "romeo@example.net"), hash(&a, "romeo@example.net"));
        assert_ne!(hash(&a, "romeo@example.net"), hash(&a, "romeo@example.ne"));
        assert_ne!(hash(&a, "a"), hash(&a, "a\0"));
        assert_ne!(hash(&a, ""), hash(&a, "\0"));
        let b = FastHash::default();
        assert_ne!(hash(&a, "romeo@example.net"), hash(&b, "romeo@example.net"));
    }

    #[test]
    fn similar_keys_spread_over_buckets() {
        let build = FastHash::default();
        let mut buckets = [0u32; 64];
        for i in 0..6400 {
            let h = hash(&build, &format!("load{i}@localhost"));
            if let Some(b) = buckets.get_mut((h >> 58) as usize) {
                *b += 1;
            }
        }
        // 100 expected per bucket; a poor mix leaves some empty.
        assert!(
            buckets.iter().all(|&n| (50..200).contains(&n)),
            "{buckets:?}"
        );
    }

    #[test]
    fn works_as_a_map() {
        let mut m: FastMap<Box<str>, u32> = FastMap::default();
        m.insert("a@b".into(), 1);
        m.insert("c@d".into(), 2);
        assert_eq!(m.get("a@b"), Some(&1));
        assert_eq!(m.get("c@d"), Some(&2));
        assert_eq!(m.get("e@f"), None);
    }
}
