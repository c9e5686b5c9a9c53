//! Who the client is when a reverse proxy stands between: its address and
//! whether it used TLS, believed only from the proxies `[http]
//! trusted_proxies` names.

use std::net::{IpAddr, SocketAddr};

use crate::config::HttpConfig;

use super::request::RequestHead;

/// The client as far as the request shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    pub ip: IpAddr,
    /// The request came through a trusted proxy that said so.
    pub proxied: bool,
    /// The client used `https` (to us or to the proxy): the scheme of the
    /// URLs it is given.
    pub https: bool,
    /// Nothing between the client and this server was in the clear: TLS
    /// to us, TLS to a trusted proxy (it says `https`), or loopback
    /// without a proxy (nothing crossed a network).
    pub secure: bool,
}

/// The client behind `peer` (the TCP peer) for `head`. `tls` says whether
/// the connection to us is TLS.
pub fn client(head: &RequestHead, peer: SocketAddr, tls: bool, config: &HttpConfig) -> Client {
    let direct = Client {
        ip: peer.ip(),
        proxied: false,
        https: tls,
        secure: tls || peer.ip().is_loopback(),
    };
    if !config.is_trusted_proxy(peer.ip()) {
        return direct;
    }
    let Some((ip, proto)) = forwarded(head).or_else(|| x_forwarded(head)) else {
        return direct;
    };
    let proto = proto.or_else(|| head.header("x-forwarded-proto").map(str::to_string));
    let https = tls || proto.is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    Client {
        ip,
        proxied: true,
        https,
        secure: https,
    }
}

/// RFC 7239 `Forwarded: for=…;proto=…`: the last element is what the
/// nearest proxy (the trusted one) saw.
fn forwarded(head: &RequestHead) -> Option<(IpAddr, Option<String>)> {
    let value = head.headers_named("forwarded").last()?;
    let element = value.rsplit(',').next()?;
    let mut ip = None;
    let mut proto = None;
    for pair in element.split(';') {
        let Some((name, value)) = pair.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        match name.trim().to_ascii_lowercase().as_str() {
            "for" => ip = parse_node(value),
            "proto" => proto = Some(value.to_string()),
            _ => {}
        }
    }
    Some((ip?, proto))
}

/// `X-Forwarded-For: client, proxy1, …`: the last address was added by
/// the trusted proxy.
fn x_forwarded(head: &RequestHead) -> Option<(IpAddr, Option<String>)> {
    let value = head.headers_named("x-forwarded-for").last()?;
    let ip = parse_node(value.rsplit(',').next()?.trim())?;
    Some((ip, None))
}

/// `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]:4711` or `2001:db8::1`.
fn parse_node(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    text.rsplit_once(':')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::parse_head;

    fn head(extra: &str) -> RequestHead {
        let text = format!("GET / HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
        parse_head(text.as_bytes(), 16384).unwrap().unwrap().0
    }

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 40000)
    }

    #[test]
    fn only_trusted_proxies_are_believed() {
        let config = HttpConfig::default();
        let h = head("X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n");
        let via_proxy = client(&h, peer("127.0.0.1"), false, &config);
        assert_eq!(via_proxy.ip, "203.0.113.7".parse::<IpAddr>().unwrap());
        assert!(via_proxy.proxied && via_proxy.secure);
        let spoofed = client(&h, peer("198.51.100.2"), false, &config);
        assert_eq!(spoofed.ip, "198.51.100.2".parse::<IpAddr>().unwrap());
        assert!(!spoofed.proxied && !spoofed.secure);
    }

    #[test]
    fn forwarded_header_and_plain_proxying() {
        let config = HttpConfig::default();
        let h = head(
            "Forwarded: for=192.0.2.60;proto=http, for=\"[2001:db8::1]:4711\";proto=https\r\n",
        );
        let c = client(&h, peer("::1"), false, &config);
        assert_eq!(c.ip, "2001:db8::1".parse::<IpAddr>().unwrap());
        assert!(c.secure);
        // A proxy that forwards without saying https: in the clear.
        let h = head("X-Forwarded-For: 10.0.0.1, 203.0.113.9\r\n");
        let c = client(&h, peer("127.0.0.1"), false, &config);
        assert_eq!(c.ip, "203.0.113.9".parse::<IpAddr>().unwrap());
        assert!(!c.secure);
        // Loopback without a proxy: nothing crossed a network.
        assert!(client(&head(""), peer("127.0.0.1"), false, &config).secure);
        assert!(!client(&head(""), peer("192.0.2.1"), false, &config).secure);
        assert!(client(&head(""), peer("192.0.2.1"), true, &config).secure);
    }
}
