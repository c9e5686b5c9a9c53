//! Password hashing (PBKDF2) off the event loop, a few at a time.
//!
//! A PLAIN login, a registration and a password change each cost one or two
//! PBKDF2 runs, milliseconds of CPU. On smol's blocking pool without a
//! bound, a burst of PLAIN logins grows the pool to hundreds of threads,
//! each keeping a stack and a malloc arena after the burst is over, and
//! lets one client address fill every core. At most as many run at once as
//! the machine has cores (up to 4); the others wait their turn without
//! blocking the loop.

use std::sync::LazyLock;

use smol::lock::Semaphore;

static PERMITS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(limit()));

fn limit() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4))
}

/// Runs `work` on the blocking pool once one of the permits is free.
pub async fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    run_with(&PERMITS, work).await
}

async fn run_with<T: Send + 'static>(
    permits: &Semaphore,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    let _permit = permits.acquire().await;
    smol::unblock(work).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[test]
    fn no_more_than_the_limit_run_at_once() {
        let permits = Semaphore::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let jobs: Vec<_> = (0..8)
            .map(|i| {
                let (running, most) = (running.clone(), most.clone());
                run_with(&permits, move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                    i
                })
            })
            .collect();
        let done: Vec<usize> = smol::block_on(async {
            let mut out = Vec::new();
            let ex = smol::LocalExecutor::new();
            let handles: Vec<_> = jobs.into_iter().map(|t| ex.spawn(t)).collect();
            ex.run(async {
                for h in handles {
                    out.push(h.await);
                }
            })
            .await;
            out
        });
        assert_eq!(done, (0..8).collect::<Vec<_>>());
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn the_limit_follows_the_cores() {
        assert!((1..=4).contains(&limit()));
    }
}
