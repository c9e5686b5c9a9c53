//! Process signals as async events: SIGTERM/SIGINT stop the server, SIGHUP
//! asks it to re-read its configuration and certificates.

use async_signal::Signal;
use futures_lite::StreamExt;

pub struct Signals {
    inner: async_signal::Signals,
}

/// What a signal asks the server to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// SIGTERM (systemd's stop) or SIGINT (Ctrl-C).
    Stop,
    /// SIGHUP (`systemctl reload`, or a certificate renewal hook).
    Reload,
}

impl Signals {
    pub fn new() -> std::io::Result<Signals> {
        Ok(Signals {
            inner: async_signal::Signals::new([Signal::Term, Signal::Int, Signal::Hup])?,
        })
    }

    /// The next request. If signal handling itself breaks, this never
    /// completes (the server keeps running; SIGKILL still stops it).
    pub async fn next(&mut self) -> Request {
        while let Some(signal) = self.inner.next().await {
            match signal {
                Ok(Signal::Term) | Ok(Signal::Int) => return Request::Stop,
                Ok(Signal::Hup) => return Request::Reload,
                Ok(_) => {}
                Err(e) => {
                    log::warn!("signal handling failed: {e}");
                    break;
                }
            }
        }
        futures_lite::future::pending::<Request>().await
    }

    /// Completes when SIGTERM or SIGINT arrives, ignoring SIGHUP.
    pub async fn wait_terminate(mut self) {
        while self.next().await != Request::Stop {}
    }
}
