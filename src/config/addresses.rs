//! Domain names and IP addresses as the config accepts them, wherever they
//! are written.

use std::net::IpAddr;

/// Accepts IP literals, including bracketed IPv6 as people copy it from URLs.
pub(super) fn parse_ip(text: &str) -> Option<IpAddr> {
    let unbracketed = text
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(text);
    unbracketed.parse().ok()
}

/// Checks a domain name's shape and lower-cases it. Full IDNA/nameprep
/// normalization belongs to the JID code; this catches the typos that would
/// otherwise surface as confusing runtime failures.
pub(super) fn check_domain(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(
            "is not a valid domain name (it contains whitespace or control characters)".to_owned(),
        );
    }
    if let Some(bad) = name
        .chars()
        .find(|c| matches!(c, '@' | '/' | '\\' | '"' | '\'' | '<' | '>' | '&'))
    {
        return Err(format!("is not a valid domain name (it contains {bad:?})"));
    }
    if name.contains(':') {
        return Err(
            "is not a valid domain name (ports belong in [[listener]], not in domains)".to_owned(),
        );
    }
    if name.len() > 253 {
        return Err("is not a valid domain name (longer than 253 bytes)".to_owned());
    }
    if name.split('.').any(str::is_empty) {
        return Err(
            "is not a valid domain name (empty label: check for leading, trailing or doubled dots)"
                .to_owned(),
        );
    }
    if name.split('.').any(|label| label.len() > 63) {
        return Err("is not a valid domain name (a label is longer than 63 bytes)".to_owned());
    }
    Ok(name.to_lowercase())
}

/// `ADDRESS` or `ADDRESS:PORT` (IPv6 in brackets when a port follows), with
/// `default_port` when none is given.
pub(super) fn parse_socket_addr(text: &str, default_port: u16) -> Option<std::net::SocketAddr> {
    if let Ok(addr) = text.parse::<std::net::SocketAddr>() {
        return Some(addr);
    }
    parse_ip(text).map(|ip| std::net::SocketAddr::new(ip, default_port))
}
