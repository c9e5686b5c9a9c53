//! `[http]`: the HTTP listeners' settings: the public address they are
//! reached at, the reverse proxies trusted to say who the client is,
//! WebSocket origins, BOSH timing and the request limits.

use std::net::IpAddr;

use toml::Spanned;

use super::addresses::parse_ip;
use super::listener::{ListenerConfig, ListenerKind};
use super::toml_reader::TableReader;

/// An address range a reverse proxy connects from (`10.0.0.0/8`, `::1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    pub base: IpAddr,
    pub prefix: u8,
}

impl IpRange {
    /// `text` as `ADDRESS` or `ADDRESS/PREFIX`; `None` if it is neither.
    pub fn parse(text: &str) -> Option<IpRange> {
        let (address, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().ok()?)),
            None => (text, None),
        };
        let base = parse_ip(address)?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(IpRange { base, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let (a, b, bits) = match (self.base, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                (u128::from(a.to_bits()), u128::from(b.to_bits()), 32)
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => (a.to_bits(), b.to_bits(), 128),
            _ => return false,
        };
        let prefix = u32::from(self.prefix);
        if prefix == 0 {
            return true;
        }
        let shift = bits - prefix;
        (a >> shift) == (b >> shift)
    }
}

/// BOSH timing (XEP-0124): what the server grants whatever a client asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoshConfig {
    /// Longest time a request is held waiting for data (10..=120 s).
    pub max_wait_secs: u32,
    /// Time without a request after which a session ends (10..=600 s).
    pub inactivity_secs: u32,
    /// Longest pause a client may ask for (10..=3600 s).
    pub max_pause_secs: u32,
}

impl Default for BoshConfig {
    fn default() -> Self {
        BoshConfig {
            max_wait_secs: 60,
            inactivity_secs: 60,
            max_pause_secs: 120,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// The URL the HTTP listener is reached at from outside, without a
    /// trailing slash (`https://chat.example.org`, or with a path prefix
    /// behind a proxy): the upload and discovery URLs are built from it.
    pub external_url: Option<String>,
    /// Peers whose `Forwarded`/`X-Forwarded-For`/`X-Forwarded-Proto` are
    /// believed: the client's address and scheme come from them.
    pub trusted_proxies: Vec<IpRange>,
    /// `Origin`s a WebSocket may come from; empty: any. XMPP logs in
    /// within the stream (no cookies), so another site's page gains
    /// nothing a script of its own could not do.
    pub websocket_origins: Vec<String>,
    /// Longest time a request head or body may take to arrive, and a
    /// response write may stall (5..=3600 s).
    pub request_timeout_secs: u32,
    /// An idle keep-alive connection is closed after this (1..=3600 s).
    pub keepalive_secs: u32,
    /// Largest request head (1024..=65536 bytes).
    pub max_head_bytes: usize,
    pub bosh: BoshConfig,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            external_url: None,
            trusted_proxies: ["127.0.0.1", "::1"]
                .iter()
                .filter_map(|t| IpRange::parse(t))
                .collect(),
            websocket_origins: Vec::new(),
            request_timeout_secs: 30,
            keepalive_secs: 60,
            max_head_bytes: 16 * 1024,
            bosh: BoshConfig::default(),
        }
    }
}

impl HttpConfig {
    pub(super) fn read(table: &mut TableReader<'_, '_>) -> HttpConfig {
        let defaults = HttpConfig::default();
        let external_url = table
            .string("external_url")
            .and_then(|url| check_url(table, url));
        let trusted_proxies = table
            .strings("trusted_proxies")
            .map(|list| ranges(table, list))
            .unwrap_or(defaults.trusted_proxies);
        let websocket_origins = table
            .strings("websocket_origins")
            .map(|list| list.into_iter().map(Spanned::into_inner).collect())
            .unwrap_or_default();
        let request_timeout_secs = table.optional_integer(
            "request_timeout_secs",
            5..=3600,
            defaults.request_timeout_secs,
        );
        let keepalive_secs =
            table.optional_integer("keepalive_secs", 1..=3600, defaults.keepalive_secs);
        let max_head_bytes =
            table.optional_integer("max_head_bytes", 1024..=65_536, defaults.max_head_bytes);
        let bosh = BoshConfig {
            max_wait_secs: table.optional_integer(
                "bosh_max_wait_secs",
                10..=120,
                defaults.bosh.max_wait_secs,
            ),
            inactivity_secs: table.optional_integer(
                "bosh_inactivity_secs",
                10..=600,
                defaults.bosh.inactivity_secs,
            ),
            max_pause_secs: table.optional_integer(
                "bosh_max_pause_secs",
                10..=3600,
                defaults.bosh.max_pause_secs,
            ),
        };
        HttpConfig {
            external_url,
            trusted_proxies,
            websocket_origins,
            request_timeout_secs,
            keepalive_secs,
            max_head_bytes,
            bosh,
        }
    }

    /// The public base URL for `domain`: `external_url`, else the first
    /// https listener, else the first http one, named by the domain (what
    /// a client can resolve). `None` without an HTTP listener.
    pub fn base_url(&self, listeners: &[ListenerConfig], domain: &str) -> Option<String> {
        if let Some(url) = &self.external_url {
            return Some(url.clone());
        }
        let listener = listeners
            .iter()
            .find(|l| l.kind == ListenerKind::Https)
            .or_else(|| listeners.iter().find(|l| l.kind == ListenerKind::Http))?;
        let scheme = if listener.kind == ListenerKind::Https {
            "https"
        } else {
            "http"
        };
        Some(format!("{scheme}://{domain}:{}", listener.address.port()))
    }

    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|r| r.contains(ip))
    }
}

fn check_url(table: &mut TableReader<'_, '_>, url: Spanned<String>) -> Option<String> {
    let span = url.span();
    let text = url.into_inner();
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"));
    let ok = rest.is_some_and(|rest| {
        let host = rest.split('/').next().unwrap_or_default();
        !host.is_empty() && !rest.contains(['?', '#', ' ']) && !rest.chars().any(char::is_control)
    });
    if !ok {
        table.problem(
            span,
            format_args!(
                "http.external_url: expected a URL such as \"https://chat.example.org\" (http or https, no query); found {text:?}"
            ),
        );
        return None;
    }
    Some(text.trim_end_matches('/').to_string())
}

fn ranges(table: &mut TableReader<'_, '_>, list: Vec<Spanned<String>>) -> Vec<IpRange> {
    let mut out = Vec::new();
    for item in list {
        let span = item.span();
        match IpRange::parse(item.get_ref()) {
            Some(range) => out.push(range),
            None => table.problem(
                span,
                format_args!(
                    "http.trusted_proxies: expected an address or a range such as \"127.0.0.1\", \"10.0.0.0/8\" or \"::1\"; found {:?}",
                    item.get_ref()
                ),
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::{parse, problems};
    use super::*;

    #[test]
    fn defaults_trust_loopback_only() {
        let config = parse("").unwrap();
        assert!(config.http.is_trusted_proxy("127.0.0.1".parse().unwrap()));
        assert!(config.http.is_trusted_proxy("::1".parse().unwrap()));
        assert!(!config.http.is_trusted_proxy("192.168.1.5".parse().unwrap()));
        assert_eq!(config.http.external_url, None);
        assert_eq!(
            config
                .http
                .base_url(&config.listeners, "localhost")
                .as_deref(),
            Some("http://localhost:5280")
        );
    }

    #[test]
    fn ranges_and_mapped_addresses() {
        let r = IpRange::parse("10.0.0.0/8").unwrap();
        assert!(r.contains("10.1.2.3".parse().unwrap()));
        assert!(r.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!r.contains("11.0.0.1".parse().unwrap()));
        let r = IpRange::parse("fd00::/8").unwrap();
        assert!(r.contains("fd12::1".parse().unwrap()));
        assert!(
            IpRange::parse("0.0.0.0/0")
                .unwrap()
                .contains("1.2.3.4".parse().unwrap())
        );
        assert_eq!(IpRange::parse("10.0.0.0/33"), None);
        assert_eq!(IpRange::parse("example.org"), None);
    }

    #[test]
    fn external_url_and_its_problems() {
        let config = parse("[http]\nexternal_url = \"https://chat.example.org/xmpp/\"\n").unwrap();
        assert_eq!(
            config
                .http
                .base_url(&config.listeners, "example.org")
                .as_deref(),
            Some("https://chat.example.org/xmpp")
        );
        let found = problems("[http]\nexternal_url = \"chat.example.org\"\n");
        assert!(found[0].contains("http.external_url"), "{found:?}");
        let found = problems("[http]\ntrusted_proxies = [\"10.0.0.0/99\"]\n");
        assert!(found[0].contains("http.trusted_proxies"), "{found:?}");
        let found = problems("[http]\nbosh_max_wait_secs = 1\n");
        assert!(found[0].contains("bosh_max_wait_secs"), "{found:?}");
    }

    #[test]
    fn https_listener_comes_first() {
        let config = parse(
            "[[listener]]\nkind = \"http\"\n[[listener]]\nkind = \"https\"\naddress = \"::\"\n",
        )
        .unwrap();
        assert_eq!(
            config
                .http
                .base_url(&config.listeners, "example.org")
                .as_deref(),
            Some("https://example.org:5281")
        );
    }
}
