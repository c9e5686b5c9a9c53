//! The federation resolver (`perch::dns`) against a real DNS server on
//! loopback: SRV and address look-ups, CNAMEs, the TCP retry after a
//! truncated answer, timeouts, fail-over, forged answers, the cache, and
//! the XMPP target lists built from it all.

#[path = "common/dns_server.rs"]
mod dns_server;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
use std::time::{Duration, Instant};

use dns_server::{DnsServer, Mode, Zone};
use perch::dns::{DnsError, Resolver, Srv, Target, c2s_targets, s2s_targets};

/// Short timeouts: every test that waits for one stays well under a second.
fn resolver_of(servers: &[&DnsServer]) -> Resolver {
    Resolver::with_servers(servers.iter().map(|s| s.addr()).collect())
        .with_timeouts(Duration::from_millis(300), 2)
}

fn v4(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn zone() -> Zone {
    Zone::new()
        .srv(
            "_xmpp-server._tcp.example.org",
            10,
            1,
            5269,
            "xmpp1.example.org",
        )
        .srv(
            "_xmpp-server._tcp.example.org",
            20,
            1,
            15269,
            "xmpp2.example.org",
        )
        .a("xmpp1.example.org", Ipv4Addr::new(192, 0, 2, 1))
        .a("xmpp1.example.org", Ipv4Addr::new(192, 0, 2, 2))
        .aaaa(
            "xmpp1.example.org",
            "2001:db8::1".parse::<Ipv6Addr>().unwrap(),
        )
        .cname("alias.example.org", "middle.example.org")
        .cname("middle.example.org", "xmpp1.example.org")
        .a("v4only.example.org", Ipv4Addr::new(192, 0, 2, 4))
}

#[test]
fn srv_records() {
    let server = DnsServer::start(zone());
    let resolver = resolver_of(&[&server]);
    smol::block_on(async {
        let mut records = resolver
            .srv("_xmpp-server._tcp.Example.Org.")
            .await
            .unwrap();
        records.sort_by_key(|r| r.priority);
        assert_eq!(
            records,
            vec![
                Srv {
                    priority: 10,
                    weight: 1,
                    port: 5269,
                    target: "xmpp1.example.org".into(),
                },
                Srv {
                    priority: 20,
                    weight: 1,
                    port: 15269,
                    target: "xmpp2.example.org".into(),
                },
            ]
        );
        // No such name, and a name without SRV records: empty, no error.
        assert_eq!(
            resolver
                .srv("_xmpp-server._tcp.nowhere.example")
                .await
                .unwrap(),
            vec![]
        );
        assert_eq!(resolver.srv("xmpp1.example.org").await.unwrap(), vec![]);
    });
}

#[test]
fn addresses_and_cnames() {
    let server = DnsServer::start(zone());
    let resolver = resolver_of(&[&server]);
    smol::block_on(async {
        let expected = vec![v4("2001:db8::1"), v4("192.0.2.1"), v4("192.0.2.2")];
        assert_eq!(resolver.ips("xmpp1.example.org").await.unwrap(), expected);
        // Two CNAMEs lead to the same host.
        assert_eq!(resolver.ips("alias.example.org").await.unwrap(), expected);
        assert_eq!(
            resolver.ips("v4only.example.org").await.unwrap(),
            vec![v4("192.0.2.4")]
        );
        assert!(resolver.ips("nowhere.example").await.unwrap().is_empty());
        // Literals are not looked up.
        let before = server.udp_queries();
        assert_eq!(
            resolver.ips("192.0.2.77").await.unwrap(),
            vec![v4("192.0.2.77")]
        );
        assert_eq!(resolver.ips("[::1]").await.unwrap(), vec![v4("::1")]);
        assert_eq!(server.udp_queries(), before);
        // Names that cannot be asked for fail before any traffic.
        let err = resolver.ips("bad name.example").await.unwrap_err();
        assert!(matches!(err, DnsError::Malformed { .. }), "{err}");
        assert_eq!(server.udp_queries(), before);
    });
}

#[test]
fn truncated_answers_are_asked_again_over_tcp() {
    let server = DnsServer::start(zone());
    server.set_mode(Mode::TruncateUdp);
    let resolver = resolver_of(&[&server]);
    smol::block_on(async {
        let records = resolver.srv("_xmpp-server._tcp.example.org").await.unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(
            resolver.ips("alias.example.org").await.unwrap().len(),
            3,
            "CNAMEs over TCP too"
        );
    });
    assert_eq!(server.udp_queries(), 3);
    assert_eq!(server.tcp_queries(), 3);
}

#[test]
fn silent_server_times_out() {
    let server = DnsServer::start(zone());
    server.set_mode(Mode::Silent);
    let resolver = resolver_of(&[&server]);
    let started = Instant::now();
    let err = smol::block_on(resolver.srv("_xmpp-server._tcp.example.org")).unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, DnsError::Timeout { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "DNS query for _xmpp-server._tcp.example.org SRV: no answer from any server in time"
    );
    // Two attempts of 300 ms.
    assert_eq!(server.udp_queries(), 2);
    assert!(elapsed >= Duration::from_millis(550), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[test]
fn next_server_when_one_fails() {
    let silent = DnsServer::start(zone());
    silent.set_mode(Mode::Silent);
    let failing = DnsServer::start(zone());
    failing.set_mode(Mode::ServFail);
    let good = DnsServer::start(zone());
    let resolver = resolver_of(&[&silent, &failing, &good]);
    let ips = smol::block_on(resolver.ips("v4only.example.org")).unwrap();
    assert_eq!(ips, vec![v4("192.0.2.4")]);
    assert!(silent.udp_queries() >= 1);
    assert!(failing.udp_queries() >= 1);

    // All failing: the server's error code is the more telling error.
    let resolver = resolver_of(&[&silent, &failing]);
    let err = smol::block_on(resolver.srv("_xmpp-server._tcp.example.org")).unwrap_err();
    assert!(
        matches!(err, DnsError::ServerFailure { rcode: 2, .. }),
        "{err}"
    );
}

#[test]
fn unreachable_server_fails_without_hanging() {
    // A port nobody listens on: the kernel answers "port unreachable".
    let port = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap();
    let resolver = Resolver::with_servers(vec![port]).with_timeouts(Duration::from_secs(5), 1);
    let started = Instant::now();
    let err = smol::block_on(resolver.srv("_xmpp-server._tcp.example.org")).unwrap_err();
    assert!(matches!(err, DnsError::Io { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[test]
fn forged_answers_are_ignored() {
    let server = DnsServer::start(zone());
    server.set_mode(Mode::SpoofFirst);
    let resolver = resolver_of(&[&server]);
    smol::block_on(async {
        assert_eq!(
            resolver.ips("v4only.example.org").await.unwrap(),
            vec![v4("192.0.2.4")]
        );
        let records = resolver.srv("_xmpp-server._tcp.example.org").await.unwrap();
        assert_eq!(records.len(), 2);
        assert!(records.iter().all(|r| r.target != "evil.example"));
    });
}

#[test]
fn answers_are_cached() {
    let server = DnsServer::start(zone());
    let resolver = resolver_of(&[&server]);
    smol::block_on(async {
        let first = resolver.ips("alias.example.org").await.unwrap();
        assert!(
            resolver
                .srv("_xmpp-server._tcp.gone.example")
                .await
                .unwrap()
                .is_empty()
        );
        let asked = server.udp_queries();
        // The zone changes, but the answers (and "no such name") are kept.
        server.set_zone(
            Zone::new()
                .a("alias.example.org", Ipv4Addr::new(203, 0, 113, 1))
                .srv("_xmpp-server._tcp.gone.example", 0, 0, 5269, "back.example"),
        );
        assert_eq!(resolver.ips("alias.example.org").await.unwrap(), first);
        assert!(
            resolver
                .srv("_xmpp-server._tcp.gone.example")
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(server.udp_queries(), asked);
        resolver.clear_cache();
        assert_eq!(
            resolver.ips("alias.example.org").await.unwrap(),
            vec![v4("203.0.113.1")]
        );
    });
}

#[test]
fn s2s_targets_merge_both_kinds() {
    let server = DnsServer::start(
        Zone::new()
            .srv(
                "_xmpps-server._tcp.example.org",
                5,
                0,
                5270,
                "tls.example.org",
            )
            .srv(
                "_xmpp-server._tcp.example.org",
                10,
                0,
                5269,
                "plain.example.org",
            )
            .srv(
                "_xmpps-client._tcp.example.org",
                0,
                0,
                5223,
                "c.example.org",
            )
            .srv("_xmpps-server._tcp.closed.example", 0, 0, 0, ".")
            .srv("_xmpp-server._tcp.closed.example", 0, 0, 0, ".")
            .srv("_xmpps-server._tcp.half.example", 0, 0, 0, ".")
            .a("half.example", Ipv4Addr::new(192, 0, 2, 9)),
    );
    let resolver = resolver_of(&[&server]);
    smol::block_on(async {
        assert_eq!(
            s2s_targets(&resolver, "example.org").await,
            vec![
                Target {
                    host: "tls.example.org".into(),
                    port: 5270,
                    direct_tls: true,
                },
                Target {
                    host: "plain.example.org".into(),
                    port: 5269,
                    direct_tls: false,
                },
            ]
        );
        assert_eq!(
            c2s_targets(&resolver, "example.org").await,
            vec![Target {
                host: "c.example.org".into(),
                port: 5223,
                direct_tls: true,
            }]
        );
        // No records: the domain itself on the default port.
        assert_eq!(
            s2s_targets(&resolver, "nothing.example").await,
            vec![Target {
                host: "nothing.example".into(),
                port: 5269,
                direct_tls: false,
            }]
        );
        assert_eq!(
            c2s_targets(&resolver, "Nothing.Example.").await,
            vec![Target {
                host: "nothing.example".into(),
                port: 5222,
                direct_tls: false,
            }]
        );
        // "." for both: no federation, no fallback.
        assert_eq!(s2s_targets(&resolver, "closed.example").await, vec![]);
        // "." for direct TLS only: STARTTLS on the default port remains.
        assert_eq!(
            s2s_targets(&resolver, "half.example").await,
            vec![Target {
                host: "half.example".into(),
                port: 5269,
                direct_tls: false,
            }]
        );
    });
}

#[test]
fn s2s_targets_fall_back_when_dns_fails() {
    let server = DnsServer::start(zone());
    server.set_mode(Mode::ServFail);
    let resolver = resolver_of(&[&server]);
    let targets = smol::block_on(s2s_targets(&resolver, "example.org"));
    assert_eq!(
        targets,
        vec![Target {
            host: "example.org".into(),
            port: 5269,
            direct_tls: false,
        }]
    );
    // An address as the domain asks nothing.
    let before = server.udp_queries();
    let targets = smol::block_on(s2s_targets(&resolver, "192.0.2.5"));
    assert_eq!(targets[0].host, "192.0.2.5");
    assert_eq!(server.udp_queries(), before);
}

#[test]
fn many_concurrent_lookups() {
    let server = DnsServer::start(zone());
    let resolver = std::rc::Rc::new(resolver_of(&[&server]));
    let executor = smol::LocalExecutor::new();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let resolver = resolver.clone();
            executor.spawn(async move {
                let name = if i % 2 == 0 {
                    "xmpp1.example.org"
                } else {
                    "alias.example.org"
                };
                resolver.ips(name).await.unwrap().len()
            })
        })
        .collect();
    let counts = smol::block_on(executor.run(async {
        let mut counts = Vec::new();
        for task in tasks {
            counts.push(task.await);
        }
        counts
    }));
    assert!(counts.iter().all(|&n| n == 3), "{counts:?}");
}
