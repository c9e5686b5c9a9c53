//! The DNS part of `perch check`: whether clients and other servers can
//! find each host (SRV records for c2s and s2s, RFC 6120 §3.2 and
//! XEP-0368, or the A/AAAA fallback), and the exact records to add when
//! they are missing, built from the configured listeners.

use std::time::Duration;

use crate::config::{Config, ListenerKind};
use crate::dns::{Resolver, Srv};

/// Hosts no public DNS answers for: checking them only makes noise.
fn is_private_name(domain: &str) -> bool {
    domain == "localhost"
        || [
            ".localhost",
            ".local",
            ".test",
            ".internal",
            ".lan",
            ".home.arpa",
        ]
        .iter()
        .any(|suffix| domain.ends_with(suffix))
}

/// The port of the first listener of `kind` that other machines can
/// reach (not on loopback), if any.
fn public_port(config: &Config, kind: ListenerKind) -> Option<u16> {
    config
        .listeners
        .iter()
        .find(|l| l.kind == kind && !l.address.ip().is_loopback())
        .map(|l| l.address.port())
}

/// What each SRV name should hold: (service, port of the listener).
fn wanted(config: &Config) -> Vec<(&'static str, Option<u16>)> {
    vec![
        ("_xmpp-client._tcp", public_port(config, ListenerKind::C2s)),
        (
            "_xmpps-client._tcp",
            public_port(config, ListenerKind::C2sTls),
        ),
        ("_xmpp-server._tcp", public_port(config, ListenerKind::S2s)),
        (
            "_xmpps-server._tcp",
            public_port(config, ListenerKind::S2sTls),
        ),
    ]
}

/// What the DNS check found: lines for stdout, warnings for stderr.
#[derive(Debug, Default)]
pub struct Findings {
    pub lines: Vec<String>,
    pub warnings: Vec<String>,
}

/// The DNS findings for every public host, when some listener is on a
/// public address. Bounded: each query gives up after two seconds.
pub fn check(config: &Config) -> Findings {
    let mut report = Findings::default();
    let hosts: Vec<&str> = config
        .hosts
        .iter()
        .map(|h| h.domain.as_str())
        .filter(|d| !is_private_name(d))
        .collect();
    // A server listening on loopback only is not meant to be found: no
    // lookups (and no network traffic) for it.
    let public = config
        .listeners
        .iter()
        .any(|l| !l.address.ip().is_loopback());
    if hosts.is_empty() || !public {
        return report;
    }
    if config.s2s.enabled
        && public_port(config, ListenerKind::S2s).is_none()
        && public_port(config, ListenerKind::S2sTls).is_none()
    {
        report.warnings.push(
            "s2s: no s2s listener on a public address: other servers cannot reach this one (their users' messages to yours fail); add [[listener]] kind = \"s2s\" address = \"::\""
                .to_string(),
        );
    }
    let resolver = match config.s2s.dns_server {
        Some(server) => Resolver::with_servers(vec![server]),
        None => Resolver::system(),
    }
    .with_timeouts(Duration::from_secs(2), 1);
    smol::block_on(async {
        for host in hosts {
            check_host(config, &resolver, host, &mut report).await;
        }
    });
    report
}

async fn check_host(config: &Config, resolver: &Resolver, host: &str, report: &mut Findings) {
    let mut missing = Vec::new();
    for (service, port) in wanted(config) {
        let name = format!("{service}.{host}");
        match resolver.srv(&name).await {
            Ok(records) if !records.is_empty() => {
                let shown: Vec<String> = records.iter().map(describe).collect();
                report
                    .lines
                    .push(format!("dns {name}: {}", shown.join(", ")));
            }
            Ok(_) => {
                if let Some(port) = port {
                    missing.push(format!("{name}. 3600 IN SRV 0 5 {port} {host}."));
                }
            }
            Err(e) => report.warnings.push(format!("dns: {e}")),
        }
    }
    match resolver.ips(host).await {
        Ok(ips) if !ips.is_empty() => {
            let shown: Vec<String> = ips.iter().map(|ip| ip.to_string()).collect();
            report
                .lines
                .push(format!("dns {host}: {}", shown.join(", ")));
        }
        Ok(_) => report.warnings.push(format!(
            "dns: {host} has no A or AAAA record: add one with this machine's public address"
        )),
        Err(e) => report.warnings.push(format!("dns: {e}")),
    }
    if !missing.is_empty() {
        report.warnings.push(format!(
            "dns: clients and servers find {host} more reliably with these records (add them at your DNS provider):\n  {}",
            missing.join("\n  ")
        ));
    }
    // Remote users reach the chat rooms over federation: the service's
    // own name must resolve.
    if let Some(muc) = config.host(host).and_then(|h| h.muc.as_deref())
        && !is_private_name(muc)
    {
        let srv = resolver
            .srv(&format!("_xmpp-server._tcp.{muc}"))
            .await
            .unwrap_or_default();
        let ips = resolver.ips(muc).await.unwrap_or_default();
        if srv.is_empty() && ips.is_empty() {
            let port = public_port(config, ListenerKind::S2s).unwrap_or(5269);
            report.warnings.push(format!(
                "dns: {muc} does not resolve, so users of other servers cannot join its rooms; add\n  _xmpp-server._tcp.{muc}. 3600 IN SRV 0 5 {port} {host}.\n  or a CNAME from {muc} to {host}"
            ));
        }
    }
}

fn describe(srv: &Srv) -> String {
    format!(
        "{} port {} (priority {}, weight {})",
        srv.target, srv.port, srv.priority, srv.weight
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_and_local_names_are_not_looked_up() {
        for private in [
            "localhost",
            "chat.localhost",
            "a.test",
            "box.local",
            "pi.home.arpa",
        ] {
            assert!(is_private_name(private), "{private}");
        }
        assert!(!is_private_name("example.org"));
    }

    #[test]
    fn the_records_to_add_follow_the_listeners() {
        let config = Config::from_toml_str(
            "[[host]]\ndomain = \"example.org\"\n[[listener]]\nkind = \"c2s\"\naddress = \"::\"\n[[listener]]\nkind = \"s2s\"\naddress = \"::\"\nport = 5270\n[[listener]]\nkind = \"http\"\n",
            "test",
        )
        .unwrap();
        let wanted = wanted(&config);
        assert_eq!(wanted[0], ("_xmpp-client._tcp", Some(5222)));
        assert_eq!(wanted[1], ("_xmpps-client._tcp", None));
        assert_eq!(wanted[2], ("_xmpp-server._tcp", Some(5270)));
    }
}
