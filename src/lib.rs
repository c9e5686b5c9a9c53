//! Perch: a small, fast XMPP server (RFC 6120/6121) for a Raspberry Pi or a
//! home router. The binary is `src/main.rs`; this library holds everything
//! else so that tests can run the server in-process.

pub mod admin;
pub mod admission;
pub mod archive;
pub mod backup;
pub mod check;
pub mod config;
pub mod datetime;
pub mod durable;
pub mod env;
pub mod fasthash;
pub mod file_modes;
pub mod forms;
pub mod http;
pub mod ids;
pub mod im;
pub mod jid;
pub mod log_limit;
pub mod logger;
pub mod login_throttle;
pub mod memory;
pub mod muc;
pub mod net;
pub mod outbox;
pub mod password_work;
pub mod portable;
pub mod pubsub;
pub mod reload;
pub mod resumption;
pub mod router;
pub mod run;
pub mod sasl;
pub mod saved_sessions;
pub mod sd_notify;
pub mod section;
pub mod server;
pub mod session;
pub mod sessions;
pub mod signals;
pub mod stanza;
pub mod store;
pub mod stream;
pub mod terminal;
pub mod testing;
pub mod xml;
