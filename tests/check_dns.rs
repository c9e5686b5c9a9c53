//! `perch check`'s DNS report against a DNS server of the test's own on
//! loopback (`[s2s] dns_server`): records found are listed, missing ones
//! come with the exact records to add, built from the listeners.

#[path = "common/dns_server.rs"]
mod dns_server;

use std::net::Ipv4Addr;

use dns_server::{DnsServer, Zone};
use perch::config::Config;

fn config(dns: std::net::SocketAddr) -> Config {
    Config::from_toml_str(
        &format!(
            "[[host]]\ndomain = \"example.org\"\n\
             [[listener]]\nkind = \"c2s\"\naddress = \"::\"\n\
             [[listener]]\nkind = \"c2s-tls\"\naddress = \"::\"\n\
             [[listener]]\nkind = \"s2s\"\naddress = \"::\"\n\
             [s2s]\ndns_server = \"{dns}\"\n"
        ),
        "test",
    )
    .expect("a valid configuration")
}

#[test]
fn found_records_are_listed_and_missing_ones_spelled_out() {
    let dns = DnsServer::start(
        Zone::new()
            .srv("_xmpp-client._tcp.example.org", 0, 5, 5222, "example.org")
            .a("example.org", Ipv4Addr::new(192, 0, 2, 7)),
    );
    let report = perch::check::check(&config(dns.addr()));
    let lines = report.lines.join("\n");
    let warnings = report.warnings.join("\n");
    assert!(
        lines.contains("dns _xmpp-client._tcp.example.org: example.org port 5222"),
        "{lines}"
    );
    assert!(lines.contains("dns example.org: 192.0.2.7"), "{lines}");
    assert!(
        warnings.contains("_xmpps-client._tcp.example.org. 3600 IN SRV 0 5 5223 example.org."),
        "{warnings}"
    );
    assert!(
        warnings.contains("_xmpp-server._tcp.example.org. 3600 IN SRV 0 5 5269 example.org."),
        "{warnings}"
    );
    assert!(
        warnings.contains("conference.example.org does not resolve"),
        "{warnings}"
    );
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

#[test]
fn a_complete_zone_gets_no_dns_warning() {
    let dns = DnsServer::start(
        Zone::new()
            .srv("_xmpp-client._tcp.example.org", 0, 5, 5222, "example.org")
            .srv("_xmpps-client._tcp.example.org", 0, 5, 5223, "example.org")
            .srv("_xmpp-server._tcp.example.org", 0, 5, 5269, "example.org")
            .a("example.org", Ipv4Addr::new(192, 0, 2, 7))
            .cname("conference.example.org", "example.org"),
    );
    let report = perch::check::check(&config(dns.addr()));
    let dns_warnings: Vec<&String> = report
        .warnings
        .iter()
        .filter(|w| w.starts_with("dns"))
        .collect();
    assert!(dns_warnings.is_empty(), "{dns_warnings:?}");
}
