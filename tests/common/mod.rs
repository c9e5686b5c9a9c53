//! What the integration tests and the scansion runner share: the one XMPP
//! test client ([`client`], over [`tls`]), the namespaces ([`ns`]), checks
//! of answers ([`stanza`]), running the `perch` binary ([`process`]) and
//! what the interop tests share ([`interop`]), the HTTP listener's clients: raw HTTP/1.1 ([`http`]), WebSocket
//! ([`websocket`]) and BOSH ([`bosh`]).
//! Each test binary uses part of it, hence the `allow`s (a re-export a
//! binary does not use would be a warning too).
#![allow(dead_code, unused_imports)]

pub mod bosh;
pub mod client;
pub mod http;
pub mod interop;
pub mod ns;
pub mod process;
pub mod sasl2;
pub mod stanza;
pub mod tls;
pub mod websocket;

use std::time::Duration;

pub use client::*;
pub use ns::*;
pub use stanza::*;
pub use tls::*;

/// The longest any single exchange may take before the test fails. Only
/// a failing test waits this long, so it is generous: a debug build's
/// PBKDF2 on a loaded machine must not fail a login.
pub fn timeout() -> Duration {
    perch::testing::scaled(Duration::from_secs(10))
}
