//! The I/O edge: listeners, TLS, one task per connection, the admin socket.

pub mod admin;
pub mod bosh;
pub mod component;
pub mod connection;
pub mod framing;
pub mod hibernation;
pub mod http_conn;
pub mod http_server;
pub mod link_io;
pub mod listener;
pub mod s2s_in;
pub mod s2s_out;
pub mod s2s_tls;
pub mod tls;
pub mod transport;
pub mod websocket;
