//! The I/O edge: listeners, TLS, one task per connection, the admin socket.

pub mod admin;
pub mod connection;
pub mod hibernation;
pub mod listener;
pub mod tls;
pub mod transport;
