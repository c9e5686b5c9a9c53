//! DNS look-ups for federation: SRV records (RFC 2782, RFC 6120 §3.2,
//! XEP-0368) and host addresses, from the single-threaded event loop.
//!
//! The system resolver (`getaddrinfo`) blocks and knows nothing of SRV, so
//! Perch asks the configured name servers itself, the way a stub resolver
//! does: UDP first, TCP when the answer is truncated, a few seconds per
//! attempt, the next server on failure. Nothing here recurses: the servers
//! in `/etc/resolv.conf` (or `[s2s] dns_server`) must be recursive.
//!
//! - [`config`]: `/etc/resolv.conf` and `/etc/hosts`, parsed by pure functions.
//! - [`message`]: building queries and checking answers (via `simple-dns`),
//!   sans-I/O.
//! - [`cache`]: answers kept for their TTL, a pure structure over `Instant`.
//! - [`transport`]: one exchange with one server over UDP or TCP, bounded.
//! - [`resolver`]: [`Resolver`], which ties them together.
//! - [`targets`]: where to connect for a domain: [`s2s_targets`],
//!   [`c2s_targets`] and the RFC 2782 ordering [`order_srv`].
//!
//! Limits (all fixed): answers over 64 KiB are refused (TCP's length prefix
//! cannot say more), at most [`MAX_RECORDS`] records are used from one
//! answer, at most [`MAX_CNAME_HOPS`] CNAMEs are followed, and the cache
//! holds at most [`cache::CAPACITY`] answers.

pub mod cache;
pub mod config;
pub mod message;
pub mod resolver;
pub mod targets;
pub mod transport;

use std::fmt;
use std::io;

pub use config::{Hosts, ResolvConf};
pub use resolver::Resolver;
pub use targets::{Target, c2s_targets, order_srv, s2s_targets};

/// At most this many records of one answer are used; the rest are ignored.
pub const MAX_RECORDS: usize = 64;

/// At most this many CNAMEs are followed for one name.
pub const MAX_CNAME_HOPS: usize = 8;

/// One SRV record (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// The host name, without a trailing dot; `"."` for the root, which
    /// means "decidedly not available" when it is the only record.
    pub target: String,
}

impl Srv {
    /// Whether this record says the service is not offered (target ".").
    pub fn is_unavailable(&self) -> bool {
        self.target == "."
    }
}

impl AsRef<Srv> for Srv {
    fn as_ref(&self) -> &Srv {
        self
    }
}

/// The record types Perch asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordType {
    A,
    Aaaa,
    Srv,
}

impl RecordType {
    /// The type's number on the wire (RFC 1035, RFC 3596, RFC 2782).
    pub fn code(self) -> u16 {
        match self {
            RecordType::A => 1,
            RecordType::Aaaa => 28,
            RecordType::Srv => 33,
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Srv => "SRV",
        })
    }
}

/// Why a look-up failed. Each names the query (name and record type, e.g.
/// `_xmpp-server._tcp.example.org SRV`) so that a log line stands alone.
/// A name that does not exist, or has no records of the type, is not an
/// error: the look-up returns an empty list.
#[derive(Debug)]
pub enum DnsError {
    /// No server answered within the timeout, after every attempt.
    Timeout { name: String },
    /// The servers answered with an error code (RFC 1035 §4.1.1 RCODE:
    /// 1 FORMERR, 2 SERVFAIL, 4 NOTIMP, 5 REFUSED, …).
    ServerFailure { name: String, rcode: u16 },
    /// The name cannot be asked for, or the answer broke the protocol or
    /// a limit.
    Malformed { name: String, why: String },
    /// A socket could not be opened, or sending or receiving failed.
    Io { name: String, source: io::Error },
}

impl DnsError {
    /// The query that failed.
    pub fn name(&self) -> &str {
        match self {
            DnsError::Timeout { name }
            | DnsError::ServerFailure { name, .. }
            | DnsError::Malformed { name, .. }
            | DnsError::Io { name, .. } => name,
        }
    }
}

/// RFC 1035 §4.1.1 and RFC 6895 names of the response codes seen in
/// practice.
fn rcode_name(rcode: u16) -> &'static str {
    match rcode {
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => "error",
    }
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsError::Timeout { name } => {
                write!(f, "DNS query for {name}: no answer from any server in time")
            }
            DnsError::ServerFailure { name, rcode } => write!(
                f,
                "DNS query for {name}: the server answered {} (RCODE {rcode})",
                rcode_name(*rcode)
            ),
            DnsError::Malformed { name, why } => write!(f, "DNS query for {name}: {why}"),
            DnsError::Io { name, source } => write!(f, "DNS query for {name}: {source}"),
        }
    }
}

impl std::error::Error for DnsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DnsError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_query() {
        let err = DnsError::ServerFailure {
            name: "_xmpp-server._tcp.example.org SRV".into(),
            rcode: 2,
        };
        assert_eq!(
            err.to_string(),
            "DNS query for _xmpp-server._tcp.example.org SRV: the server answered SERVFAIL (RCODE 2)"
        );
        assert_eq!(err.name(), "_xmpp-server._tcp.example.org SRV");
        let err = DnsError::Timeout {
            name: "example.org A".into(),
        };
        assert!(err.to_string().contains("example.org A"));
    }
}
