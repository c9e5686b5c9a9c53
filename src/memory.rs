//! Giving memory back after a wave of connections left.
//!
//! Connections come in waves (a router reboots, a load test, a network
//! blip): thousands log in, then leave. Without help the process keeps the
//! peak: hash maps keep their largest capacity, and glibc's malloc keeps
//! freed pages that are not at the top of its heap. Both are released here
//! when the number of live connections has fallen to half of its last high
//! point, so a steady server never pays for it and a wave costs a handful
//! of releases (one per halving).

/// A release frees at least this many connections' worth of memory, so a
/// small server going from 4 clients to 2 does not trim each time.
const MIN_RELEASED: usize = 64;

/// Decides when the connections that left are worth a release.
#[derive(Debug, Default)]
pub struct ReleasePolicy {
    /// Most live connections since the last release.
    high_water: usize,
}

impl ReleasePolicy {
    /// A connection was admitted; `live` counts it.
    pub fn admitted(&mut self, live: usize) {
        self.high_water = self.high_water.max(live);
    }

    /// A connection ended; `live` no longer counts it. True when memory
    /// should be released now (the high point then restarts from `live`).
    pub fn released(&mut self, live: usize) -> bool {
        let gone = self.high_water.saturating_sub(live);
        if gone >= MIN_RELEASED && live.saturating_mul(2) <= self.high_water {
            self.high_water = live;
            true
        } else {
            false
        }
    }
}

/// Shrinks a collection whose capacity is far above what it holds, keeping
/// room to grow by half again. Lookups in a mostly empty hash table touch
/// more cache lines, and its memory is otherwise never returned.
pub trait ShrinkIdle {
    fn shrink_idle(&mut self);
}

/// Below this capacity a collection is left as it is.
const SHRINK_MIN_CAPACITY: usize = 64;

fn should_shrink(len: usize, capacity: usize) -> bool {
    capacity > SHRINK_MIN_CAPACITY && len.saturating_mul(4) < capacity
}

impl<K: Eq + std::hash::Hash, V, S: std::hash::BuildHasher> ShrinkIdle
    for std::collections::HashMap<K, V, S>
{
    fn shrink_idle(&mut self) {
        if should_shrink(self.len(), self.capacity()) {
            self.shrink_to(self.len() + self.len() / 2);
        }
    }
}

impl<T> ShrinkIdle for Vec<T> {
    fn shrink_idle(&mut self) {
        if should_shrink(self.len(), self.capacity()) {
            self.shrink_to(self.len() + self.len() / 2);
        }
    }
}

/// Hands free heap pages back to the operating system. glibc keeps freed
/// memory below the top of its heaps forever unless asked; musl's
/// allocator (the static builds) returns it by itself.
pub fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: malloc_trim only walks the allocator's own free lists;
        // it takes no pointers and is safe to call at any time.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// Makes the async runtime forget the timers of connections that ended.
///
/// async-io applies a cancelled timer's removal only when its reactor next
/// wakes up, and a removal (unlike an insertion) does not wake it. After a
/// wave left, an idle server kept up to a thousand cancelled timers, the
/// tree nodes holding them and the task allocations their wakers pin, until
/// the oldest one's deadline (minutes): 0.9 MiB resident after 2 000 TLS
/// clients left. Registering a timer wakes the reactor, which applies every
/// queued removal; dropping it queues its own, applied when the reactor
/// wakes for its deadline a millisecond later.
pub fn apply_cancelled_timers() {
    use std::future::Future;
    let mut timer = smol::Timer::after(std::time::Duration::from_millis(1));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    // Polling registers it; it cannot be ready yet and nothing waits for it.
    let _ = std::pin::Pin::new(&mut timer).poll(&mut cx);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_server_never_releases() {
        let mut p = ReleasePolicy::default();
        for live in 1..=100 {
            p.admitted(live);
        }
        // Clients come and go around 100.
        for _ in 0..1000 {
            assert!(!p.released(99));
            p.admitted(100);
        }
    }

    #[test]
    fn wave_releases_once_per_halving() {
        let mut p = ReleasePolicy::default();
        for live in 1..=5000 {
            p.admitted(live);
        }
        let releases: Vec<usize> = (0..5000).rev().filter(|&live| p.released(live)).collect();
        assert_eq!(releases, vec![2500, 1250, 625, 312, 156, 78, 14]);
    }

    #[test]
    fn small_server_does_not_trim_for_a_few_clients() {
        let mut p = ReleasePolicy::default();
        for live in 1..=40 {
            p.admitted(live);
        }
        assert!((0..40).rev().all(|live| !p.released(live)));
    }

    #[test]
    fn new_wave_after_release_counts_from_its_own_peak() {
        let mut p = ReleasePolicy::default();
        p.admitted(1000);
        assert!(p.released(400));
        // The high point restarted at 400: 300 live is not yet half.
        assert!(!p.released(300));
        assert!(p.released(200));
        p.admitted(3000);
        assert!(!p.released(1600));
        assert!(p.released(1500));
    }

    #[test]
    fn shrinks_only_far_below_capacity() {
        let mut m: std::collections::HashMap<u32, u32> = (0..10_000).map(|i| (i, i)).collect();
        m.retain(|k, _| *k < 5_000);
        let before = m.capacity();
        m.shrink_idle();
        assert_eq!(m.capacity(), before, "half full stays");
        m.retain(|k, _| *k < 100);
        m.shrink_idle();
        assert!(m.capacity() < 400, "capacity {}", m.capacity());
        assert!(m.capacity() >= 150);
        assert_eq!(m.len(), 100);

        let mut v: Vec<u8> = Vec::with_capacity(32);
        v.shrink_idle();
        assert_eq!(v.capacity(), 32, "small ones are left alone");
        let mut v: Vec<u8> = Vec::with_capacity(4096);
        v.push(1);
        v.shrink_idle();
        assert!(v.capacity() < 64);
    }

    #[test]
    fn release_free_heap_is_callable() {
        let big: Vec<Vec<u8>> = (0..100).map(|_| vec![1u8; 64 << 10]).collect();
        drop(big);
        release_free_heap();
    }
}
