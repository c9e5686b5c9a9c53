//! The client executor of the commands that run outside a scenario's
//! `Ctx` (`hibernate`, `reconnect`, `push`): one `smol::Executor` driven by the calling
//! thread and `threads - 1` helpers, for as long as `body` runs.

use std::future::Future;
use std::sync::Arc;

use smol::Executor;

/// Runs `body` on a fresh executor with `threads` OS threads.
pub fn run_on<T, Fut>(
    threads: usize,
    body: impl FnOnce(Arc<Executor<'static>>) -> Fut,
) -> Result<T, String>
where
    Fut: Future<Output = Result<T, String>>,
{
    let ex = Arc::new(Executor::new());
    let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
    let mut helpers = Vec::new();
    for i in 1..threads.max(1) {
        let (ex, stop) = (ex.clone(), stop_rx.clone());
        helpers.push(
            std::thread::Builder::new()
                .name(format!("perch-load-{i}"))
                .spawn(move || smol::block_on(ex.run(stop.recv())))
                .map_err(|e| format!("starting a client thread: {e}"))?,
        );
    }
    let result = smol::block_on(ex.run(body(ex.clone())));
    drop(stop_tx);
    for h in helpers {
        let _ = h.join();
    }
    result
}
