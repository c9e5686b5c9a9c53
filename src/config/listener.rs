//! `[[listener]]`: the addresses and ports the server accepts connections
//! on, and what kind of connection each expects.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::addresses::parse_ip;
use super::toml_reader::TableReader;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListenerKind {
    /// Client connections that start in plaintext and upgrade with STARTTLS.
    C2s,
    /// Client connections that start with a TLS handshake (XEP-0368).
    C2sTls,
    /// Server-to-server federation that starts in plaintext and upgrades
    /// with STARTTLS.
    S2s,
    /// Server-to-server federation that starts with a TLS handshake
    /// (XEP-0368).
    S2sTls,
    /// External components (XEP-0114); meant for loopback.
    Component,
    /// HTTP/1.1 in plaintext: WebSocket, BOSH, upload, discovery. Meant for
    /// loopback behind a reverse proxy that adds TLS.
    Http,
    /// HTTP/1.1 over TLS (the hosts' certificates).
    Https,
}

impl ListenerKind {
    const ALL: [ListenerKind; 7] = [
        ListenerKind::C2s,
        ListenerKind::C2sTls,
        ListenerKind::S2s,
        ListenerKind::S2sTls,
        ListenerKind::Component,
        ListenerKind::Http,
        ListenerKind::Https,
    ];

    /// The spelling used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            ListenerKind::C2s => "c2s",
            ListenerKind::C2sTls => "c2s-tls",
            ListenerKind::S2s => "s2s",
            ListenerKind::S2sTls => "s2s-tls",
            ListenerKind::Component => "component",
            ListenerKind::Http => "http",
            ListenerKind::Https => "https",
        }
    }

    /// For start-up and `perch check` output.
    pub fn describe(self) -> &'static str {
        match self {
            ListenerKind::C2s => "c2s (clients, STARTTLS)",
            ListenerKind::C2sTls => "c2s-tls (clients, direct TLS)",
            ListenerKind::S2s => "s2s (federation, STARTTLS)",
            ListenerKind::S2sTls => "s2s-tls (federation, direct TLS)",
            ListenerKind::Component => "component (external components, XEP-0114)",
            ListenerKind::Http => "http (WebSocket, BOSH, upload)",
            ListenerKind::Https => "https (WebSocket, BOSH, upload over TLS)",
        }
    }

    /// The IANA port for this kind, used when a listener gives none.
    pub fn default_port(self) -> u16 {
        match self {
            ListenerKind::C2s => 5222,
            ListenerKind::C2sTls => 5223,
            ListenerKind::S2s => 5269,
            // Where XEP-0368's examples and Prosody's direct-TLS s2s listen.
            ListenerKind::S2sTls => 5270,
            ListenerKind::Component => 5347,
            // Prosody's ports, which web clients' documentation assumes.
            ListenerKind::Http => 5280,
            ListenerKind::Https => 5281,
        }
    }
}

impl fmt::Display for ListenerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerConfig {
    pub kind: ListenerKind,
    /// Port 0 asks the OS for an ephemeral port (tests).
    pub address: SocketAddr,
}

/// The listeners when the file has no `[[listener]]`: clients, with
/// STARTTLS and with direct TLS, and HTTP (web clients, upload), on the
/// loopback address only.
pub(super) fn defaults() -> Vec<ListenerConfig> {
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    [ListenerKind::C2s, ListenerKind::C2sTls, ListenerKind::Http]
        .into_iter()
        .map(|kind| ListenerConfig {
            kind,
            address: SocketAddr::new(localhost, kind.default_port()),
        })
        .collect()
}

/// Reads and checks the `[[listener]]` tables, each on its own and then
/// against each other; `None` when the file has no `[[listener]]`, or none
/// that could be read (reported), so that the defaults stand.
pub(super) fn read(top: &mut TableReader<'_, '_>) -> Option<Vec<ListenerConfig>> {
    let list = top.tables("listener", read_listener)?;
    let list_span = list.span();
    let list = list.into_inner();
    if list.is_empty() {
        top.problem(list_span, "listener: at least one [[listener]] is required");
    }
    let mut listeners: Vec<ListenerConfig> = Vec::new();
    for listener in list {
        let span = listener.span();
        let listener = listener.into_inner();
        match listeners.iter().find(|other| binds_overlap(other.address, listener.address)) {
            Some(other) if other.address == listener.address => top.problem(
                span,
                format_args!("listener: {} is configured more than once", listener.address),
            ),
            Some(other) => top.problem(
                span,
                format_args!(
                    "listener: {} overlaps with {} (the same port on all addresses), so one of them cannot start",
                    listener.address, other.address
                ),
            ),
            None => listeners.push(listener),
        }
    }
    Some(listeners)
}

/// One `[[listener]]` on its own; `None` when it has a problem (reported).
fn read_listener(table: &mut TableReader<'_, '_>) -> Option<ListenerConfig> {
    let kind = table.required_string("kind");
    let address = table.string("address");
    let port = table.integer("port");
    let kind = kind?;

    let found = ListenerKind::ALL
        .into_iter()
        .find(|found| found.as_str() == kind.get_ref().as_str());
    if found.is_none() {
        let names: Vec<&str> = ListenerKind::ALL.iter().map(|kind| kind.as_str()).collect();
        table.problem(
            kind.span(),
            format_args!(
                "listener.kind: expected one of {}; found {:?}",
                names.join(", "),
                kind.get_ref()
            ),
        );
    }
    let kind = found;
    let ip = match address {
        None => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        Some(address) => {
            let ip = parse_ip(address.get_ref());
            if ip.is_none() {
                table.problem(
                    address.span(),
                    format_args!(
                        "listener.address: expected an IPv4 or IPv6 address such as 127.0.0.1, ::1, 0.0.0.0 or ::; found {:?}",
                        address.get_ref()
                    ),
                );
            }
            ip
        }
    };
    let port: Option<u16> = match (port, kind) {
        (Some(port), _) => table.in_range("port", port, 0..=65_535),
        (None, Some(kind)) => Some(kind.default_port()),
        (None, None) => None,
    };
    Some(ListenerConfig {
        kind: kind?,
        address: SocketAddr::new(ip?, port?),
    })
}

/// Whether binding both addresses would fail with "address in use" on Linux:
/// the wildcard addresses claim the port on every address of their family,
/// and `::` (dual-stack by default) on IPv4 too.
fn binds_overlap(a: SocketAddr, b: SocketAddr) -> bool {
    // Port 0: every bind gets its own ephemeral port.
    if a.port() == 0 || a.port() != b.port() {
        return false;
    }
    let covers = |wide: IpAddr, narrow: IpAddr| {
        wide == narrow || (wide.is_unspecified() && (wide.is_ipv6() || narrow.is_ipv4()))
    };
    covers(a.ip(), b.ip()) || covers(b.ip(), a.ip())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::super::tests::{parse, problems};
    use super::*;

    #[test]
    fn ipv6_listeners() {
        let text = "[[listener]]\nkind = \"c2s\"\naddress = \"::1\"\n[[listener]]\nkind = \"c2s-tls\"\naddress = \"[fe80::1]\"\nport = 5223\n";
        let config = parse(text).unwrap();
        assert_eq!(
            config.listeners[0].address,
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 5222)
        );
        assert_eq!(
            config.listeners[1].address,
            "[fe80::1]:5223".parse().unwrap()
        );
    }

    #[test]
    fn port_zero_is_ephemeral_and_may_repeat() {
        let text =
            "[[listener]]\nkind = \"c2s\"\nport = 0\n[[listener]]\nkind = \"c2s-tls\"\nport = 0\n";
        let config = parse(text).unwrap();
        assert_eq!(config.listeners.len(), 2);
        assert!(config.listeners.iter().all(|l| l.address.port() == 0));
    }

    #[test]
    fn bad_listeners() {
        let text = r#"
[[listener]]
kind = "xmpp"
[[listener]]
kind = "c2s"
address = "localhost"
[[listener]]
kind = "c2s"
port = 70000
[[listener]]
kind = "c2s-tls"
address = "0.0.0.0"
port = 5223
[[listener]]
kind = "c2s"
address = "0.0.0.0"
port = 5223
"#;
        assert_eq!(
            problems(text),
            vec![
                "perch.toml:3: listener.kind: expected one of c2s, c2s-tls, s2s, s2s-tls, component, http, https; found \"xmpp\"",
                "perch.toml:6: listener.address: expected an IPv4 or IPv6 address such as 127.0.0.1, ::1, 0.0.0.0 or ::; found \"localhost\"",
                "perch.toml:9: listener.port: must be between 0 and 65535; found 70000",
                "perch.toml:14: listener: 0.0.0.0:5223 is configured more than once",
            ]
        );
    }

    #[test]
    fn overlapping_listeners() {
        let listeners = |addresses: &[&str]| -> String {
            addresses
                .iter()
                .map(|address| format!("[[listener]]\nkind = \"c2s\"\naddress = \"{address}\"\n"))
                .collect()
        };
        // Distinct specific addresses, or wildcards of different families
        // beside specific ones of the other family, can share a port.
        assert!(parse(&listeners(&["127.0.0.1", "::1", "192.0.2.1"])).is_ok());
        assert!(parse(&listeners(&["0.0.0.0", "::1"])).is_ok());
        assert_eq!(
            problems(&listeners(&["0.0.0.0", "127.0.0.1"])),
            vec![
                "perch.toml:4: listener: 127.0.0.1:5222 overlaps with 0.0.0.0:5222 (the same port on all addresses), so one of them cannot start"
            ]
        );
        assert_eq!(
            problems(&listeners(&["127.0.0.1", "::"])),
            vec![
                "perch.toml:4: listener: [::]:5222 overlaps with 127.0.0.1:5222 (the same port on all addresses), so one of them cannot start"
            ]
        );
        assert_eq!(problems(&listeners(&["::", "::1"])).len(), 1);
    }

    #[test]
    fn listener_kind_spelling_round_trips() {
        for kind in ListenerKind::ALL {
            let config = parse(&format!("[[listener]]\nkind = \"{kind}\"\n")).unwrap();
            assert_eq!(config.listeners[0].kind, kind);
            assert_eq!(config.listeners[0].address.port(), kind.default_port());
        }
    }
}
