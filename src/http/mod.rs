//! The HTTP side: one HTTP/1.1 listener kind (`http`, `https`) serving
//! XMPP over WebSocket (RFC 7395) and BOSH (XEP-0206), discovery
//! (XEP-0156), file upload (XEP-0363) and a status page.
//!
//! Parsing and the rules are functions over a parsed [`RequestHead`];
//! sockets, TLS and timers are in `serve.rs`.

pub mod acme_challenge;
pub mod invite_page;
pub mod pages;
pub mod proxy;
pub mod request;
pub mod response;
pub mod upgrade;

pub use request::{BodyLength, HeadError, Method, RequestHead};
pub use response::Response;
