//! `[s2s]`: federation with other XMPP servers (RFC 6120 server-to-server
//! streams): how peers must protect and prove themselves, which domains
//! may federate, the limits a remote server works within, and how remote
//! domains are found (DNS, or a static map for tests and private networks).

use std::net::SocketAddr;
use std::path::PathBuf;

use super::addresses::parse_socket_addr;
use super::toml_reader::TableReader;

/// A remote domain reached at a fixed address instead of through DNS
/// (`[[s2s.route]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticRoute {
    pub domain: String,
    pub address: SocketAddr,
    /// The address expects TLS at once (XEP-0368) rather than STARTTLS.
    pub direct_tls: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S2sConfig {
    /// Federation at all: off, every remote domain is out of reach.
    pub enabled: bool,
    /// Streams must be encrypted (STARTTLS or direct TLS) both ways.
    pub require_encryption: bool,
    /// Remote domains allowed to federate without encryption (legacy peers).
    pub insecure_domains: Vec<String>,
    /// Peers must present a certificate valid for their domain (no
    /// dialback); Prosody's `s2s_secure_auth`.
    pub secure_auth: bool,
    /// Domains that must present a valid certificate whatever `secure_auth`.
    pub secure_domains: Vec<String>,
    /// Domains allowed dialback even with `secure_auth`.
    pub insecure_auth_domains: Vec<String>,
    /// Domains that may not federate with this server at all.
    pub blocked_domains: Vec<String>,
    /// When not empty, the only domains that may federate.
    pub allowed_domains: Vec<String>,
    /// A link without traffic for this long is closed (30..=86400 s).
    pub idle_timeout_secs: u32,
    /// Longest time to connect and authenticate an outgoing link (1..=300 s).
    pub connect_timeout_secs: u32,
    /// Links in both directions together (1..=100000).
    pub max_links: u32,
    /// Stanzas held for a remote domain while its link comes up (1..=100000).
    pub max_pending_stanzas: u32,
    /// Bytes per second a remote domain's incoming links may send on
    /// average; faster input is read more slowly (1024..=1073741824).
    pub rate_bytes_per_sec: u32,
    /// Remote domains may resolve to loopback, private and link-local
    /// addresses (tests, a home network of servers).
    pub allow_private_addresses: bool,
    /// A DNS server to ask instead of the system's (`/etc/resolv.conf`).
    pub dns_server: Option<SocketAddr>,
    /// Extra certificate authorities (PEM) trusted for peers' certificates,
    /// besides the system's.
    pub ca_file: Option<PathBuf>,
    pub routes: Vec<StaticRoute>,
}

impl Default for S2sConfig {
    fn default() -> Self {
        S2sConfig {
            enabled: true,
            require_encryption: true,
            insecure_domains: Vec::new(),
            secure_auth: false,
            secure_domains: Vec::new(),
            insecure_auth_domains: Vec::new(),
            blocked_domains: Vec::new(),
            allowed_domains: Vec::new(),
            idle_timeout_secs: 600,
            connect_timeout_secs: 20,
            max_links: 1000,
            max_pending_stanzas: 500,
            rate_bytes_per_sec: 256 * 1024,
            allow_private_addresses: false,
            dns_server: None,
            ca_file: None,
            routes: Vec::new(),
        }
    }
}

impl S2sConfig {
    pub(super) fn read(table: &mut TableReader<'_, '_>) -> S2sConfig {
        let d = S2sConfig::default();
        let domains = |table: &mut TableReader<'_, '_>, key: &'static str| {
            table
                .strings(key)
                .map(|list| {
                    list.into_iter()
                        .filter_map(|s| {
                            let span = s.span();
                            let domain = s.into_inner().to_ascii_lowercase();
                            if domain.is_empty() || domain.contains(['@', '/', ' ']) {
                                table.problem(
                                    span,
                                    format_args!("s2s.{key}: {domain:?} is not a domain name"),
                                );
                                return None;
                            }
                            Some(domain)
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let insecure_domains = domains(table, "insecure_domains");
        let secure_domains = domains(table, "secure_domains");
        let insecure_auth_domains = domains(table, "insecure_auth_domains");
        let blocked_domains = domains(table, "blocked_domains");
        let allowed_domains = domains(table, "allowed_domains");
        let flag = |table: &mut TableReader<'_, '_>, key, default| {
            table.boolean(key).map_or(default, |b| b.into_inner())
        };
        let dns_server = table.string("dns_server").and_then(|text| {
            let parsed = parse_socket_addr(text.get_ref(), 53);
            if parsed.is_none() {
                table.problem(
                    text.span(),
                    format_args!(
                        "s2s.dns_server: expected an address such as 127.0.0.1, 127.0.0.1:5353 or [::1]:53; found {:?}",
                        text.get_ref()
                    ),
                );
            }
            parsed
        });
        S2sConfig {
            enabled: flag(table, "enabled", d.enabled),
            require_encryption: flag(table, "require_encryption", d.require_encryption),
            insecure_domains,
            secure_auth: flag(table, "secure_auth", d.secure_auth),
            secure_domains,
            insecure_auth_domains,
            blocked_domains,
            allowed_domains,
            idle_timeout_secs: table.optional_integer(
                "idle_timeout_secs",
                30..=86_400,
                d.idle_timeout_secs,
            ),
            connect_timeout_secs: table.optional_integer(
                "connect_timeout_secs",
                1..=300,
                d.connect_timeout_secs,
            ),
            max_links: table.optional_integer("max_links", 1..=100_000, d.max_links),
            max_pending_stanzas: table.optional_integer(
                "max_pending_stanzas",
                1..=100_000,
                d.max_pending_stanzas,
            ),
            rate_bytes_per_sec: table.optional_integer(
                "rate_bytes_per_sec",
                1024..=1_073_741_824,
                d.rate_bytes_per_sec,
            ),
            allow_private_addresses: flag(
                table,
                "allow_private_addresses",
                d.allow_private_addresses,
            ),
            dns_server,
            ca_file: table
                .string("ca_file")
                .map(|p| PathBuf::from(p.into_inner())),
            routes: table
                .tables("route", read_route)
                .map(|list| {
                    list.into_inner()
                        .into_iter()
                        .map(|r| r.into_inner())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    fn listed(list: &[String], domain: &str) -> bool {
        list.iter().any(|d| d.eq_ignore_ascii_case(domain))
    }

    /// Whether `domain` may federate with this server.
    pub fn is_refused(&self, domain: &str) -> bool {
        Self::listed(&self.blocked_domains, domain)
            || (!self.allowed_domains.is_empty() && !Self::listed(&self.allowed_domains, domain))
    }

    /// Whether streams with `domain` must be encrypted.
    pub fn requires_encryption(&self, domain: Option<&str>) -> bool {
        self.require_encryption && !domain.is_some_and(|d| Self::listed(&self.insecure_domains, d))
    }

    /// Whether `domain` must prove itself with a valid certificate.
    pub fn requires_valid_certificate(&self, domain: &str) -> bool {
        Self::listed(&self.secure_domains, domain)
            || (self.secure_auth && !Self::listed(&self.insecure_auth_domains, domain))
    }

    /// The static route for `domain`, if any.
    pub fn route(&self, domain: &str) -> Option<&StaticRoute> {
        self.routes
            .iter()
            .find(|r| r.domain.eq_ignore_ascii_case(domain))
    }
}

fn read_route(table: &mut TableReader<'_, '_>) -> Option<StaticRoute> {
    let domain = table.required_string("domain");
    let address = table.required_string("address");
    let direct_tls = table.boolean("direct_tls").is_some_and(|b| b.into_inner());
    let domain = domain?.into_inner().to_ascii_lowercase();
    let address_text = address?;
    let default_port = if direct_tls { 5270 } else { 5269 };
    let Some(address) = parse_socket_addr(address_text.get_ref(), default_port) else {
        table.problem(
            address_text.span(),
            format_args!(
                "s2s.route.address: expected an IP address with an optional port, such as 192.0.2.7:5269 or [2001:db8::7]; found {:?}",
                address_text.get_ref()
            ),
        );
        return None;
    };
    Some(StaticRoute {
        domain,
        address,
        direct_tls,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{parse, problems};

    #[test]
    fn defaults_federate_with_encryption_and_dialback() {
        let config = parse("[s2s]\n").unwrap();
        assert!(config.s2s.enabled);
        assert!(config.s2s.requires_encryption(Some("example.net")));
        assert!(!config.s2s.requires_valid_certificate("example.net"));
        assert!(!config.s2s.is_refused("example.net"));
    }

    #[test]
    fn policies_per_domain() {
        let config = parse(
            "[s2s]\nsecure_auth = true\ninsecure_auth_domains = [\"old.example\"]\ninsecure_domains = [\"Legacy.Example\"]\nblocked_domains = [\"spam.example\"]\n\
             [[s2s.route]]\ndomain = \"b.test\"\naddress = \"127.0.0.2:5270\"\ndirect_tls = true\n\
             [[s2s.route]]\ndomain = \"c.test\"\naddress = \"127.0.0.3\"\n",
        )
        .unwrap();
        let s2s = &config.s2s;
        assert!(s2s.requires_valid_certificate("example.net"));
        assert!(!s2s.requires_valid_certificate("old.example"));
        assert!(!s2s.requires_encryption(Some("legacy.example")));
        assert!(s2s.is_refused("spam.example"));
        let b = s2s.route("B.test").unwrap();
        assert_eq!(b.address.to_string(), "127.0.0.2:5270");
        assert!(b.direct_tls);
        assert_eq!(s2s.route("c.test").unwrap().address.port(), 5269);
    }

    #[test]
    fn an_allow_list_refuses_everyone_else() {
        let config = parse("[s2s]\nallowed_domains = [\"friend.example\"]\n").unwrap();
        assert!(!config.s2s.is_refused("friend.example"));
        assert!(config.s2s.is_refused("stranger.example"));
    }

    #[test]
    fn bad_values_are_named() {
        let found = problems(
            "[s2s]\ndns_server = \"resolver\"\nblocked_domains = [\"a@b\"]\nidle_timeout_secs = 1\n[[s2s.route]]\ndomain = \"x.test\"\naddress = \"nowhere\"\n",
        )
        .join("\n");
        assert!(found.contains("s2s.dns_server"), "{found}");
        assert!(found.contains("s2s.blocked_domains"), "{found}");
        assert!(found.contains("s2s.idle_timeout_secs"), "{found}");
        assert!(found.contains("s2s.route.address"), "{found}");
    }
}
