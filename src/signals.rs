//! Process signals as async events: SIGTERM/SIGINT stop the server.

use async_signal::Signal;
use futures_lite::StreamExt;

pub struct Signals {
    inner: async_signal::Signals,
}

impl Signals {
    pub fn new() -> std::io::Result<Signals> {
        Ok(Signals {
            inner: async_signal::Signals::new([Signal::Term, Signal::Int])?,
        })
    }

    /// Completes when SIGTERM or SIGINT arrives.
    pub async fn wait_terminate(mut self) {
        while let Some(signal) = self.inner.next().await {
            match signal {
                Ok(Signal::Term) | Ok(Signal::Int) => return,
                Ok(_) => {}
                Err(e) => {
                    log::warn!("signal handling failed: {e}");
                    futures_lite::future::pending::<()>().await;
                }
            }
        }
    }
}
