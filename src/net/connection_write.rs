//! Writes that give up on a peer that stopped reading: each write must
//! make progress within `[c2s] write_timeout_secs`.

use std::future::Future;
use std::time::Duration;

use futures_lite::{AsyncWriteExt, future};
use smol::Timer;

use super::Transport;

/// `io`, failed with `TimedOut` if it does not finish within `stall`.
pub(crate) async fn within<T>(
    stall: Duration,
    io: impl Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    future::or(io, async {
        Timer::after(stall).await;
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "no write progress for {} s ([c2s] write_timeout_secs)",
                stall.as_secs()
            ),
        ))
    })
    .await
}

/// Writes all of `bytes`, failing once a single write makes no progress
/// for `stall`: a slow link that keeps taking bytes is fine, a peer that
/// stopped reading is not. (The timer is only set up when a write has to
/// wait.)
pub(crate) async fn write_progressing(
    transport: &mut Transport,
    mut bytes: &[u8],
    stall: Duration,
) -> std::io::Result<()> {
    while !bytes.is_empty() {
        let n = within(stall, transport.write(bytes)).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        bytes = bytes.get(n..).unwrap_or_default();
    }
    Ok(())
}
