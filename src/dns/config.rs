//! The system's resolver configuration: `/etc/resolv.conf` (which servers,
//! how long to wait, how often to try) and `/etc/hosts` (names answered
//! before any server is asked).
//!
//! Both parsers are pure functions over the file's text and never fail:
//! like the C library, they skip what they do not understand, so one odd
//! line (a `search` list, a zone index, a typo) cannot stop federation.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

/// Where the C library reads its configuration.
pub const RESOLV_CONF_PATH: &str = "/etc/resolv.conf";
pub const HOSTS_PATH: &str = "/etc/hosts";

/// glibc's `MAXNS`: later `nameserver` lines are ignored, as glibc does.
pub const MAX_SERVERS: usize = 3;
/// glibc's default per-attempt timeout (`RES_TIMEOUT` is 5 s; Perch waits
/// less: a federation peer whose DNS takes longer is retried later anyway).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Rounds over all servers (glibc's `RES_DFLRETRY`).
pub const DEFAULT_ATTEMPTS: u32 = 2;
/// glibc's caps on `options timeout:` and `attempts:`.
const MAX_TIMEOUT_SECS: u64 = 30;
const MAX_ATTEMPTS: u32 = 5;
/// A hosts file line naming more than this many names is cut there
/// (glibc's parser has a similar cap), so a huge file costs bounded memory
/// per line.
const MAX_NAMES_PER_LINE: usize = 35;

/// What `/etc/resolv.conf` says about where and how to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    /// At most [`MAX_SERVERS`], in the file's order; never empty.
    pub servers: Vec<SocketAddr>,
    /// How long to wait for one answer from one server.
    pub timeout: Duration,
    /// How many rounds over all servers.
    pub attempts: u32,
}

impl Default for ResolvConf {
    /// The C library's behaviour without a file: a server on this machine.
    fn default() -> Self {
        ResolvConf {
            servers: vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53)],
            timeout: DEFAULT_TIMEOUT,
            attempts: DEFAULT_ATTEMPTS,
        }
    }
}

impl ResolvConf {
    /// Parses the text of a `resolv.conf(5)` file. `nameserver` lines give
    /// the servers (port 53); from `options`, only `timeout:N` and
    /// `attempts:N` matter here (`ndots` and `search` are for short names,
    /// and federation only looks up fully qualified ones).
    pub fn parse(text: &str) -> ResolvConf {
        let mut conf = ResolvConf {
            servers: Vec::new(),
            ..ResolvConf::default()
        };
        for line in text.lines() {
            // resolv.conf(5): comment lines start with ';' or '#'; glibc
            // also ends a line at a later '#', so do the same.
            let line = line.split(['#', ';']).next().unwrap_or_default();
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    let Some(addr) = words.next().and_then(parse_server) else {
                        continue;
                    };
                    if conf.servers.len() < MAX_SERVERS {
                        conf.servers.push(addr);
                    }
                }
                Some("options") => {
                    for option in words {
                        if let Some(value) = option.strip_prefix("timeout:") {
                            if let Ok(secs) = value.parse::<u64>() {
                                conf.timeout = Duration::from_secs(secs.clamp(1, MAX_TIMEOUT_SECS));
                            }
                        } else if let Some(value) = option.strip_prefix("attempts:")
                            && let Ok(attempts) = value.parse::<u32>()
                        {
                            conf.attempts = attempts.clamp(1, MAX_ATTEMPTS);
                        }
                    }
                }
                _ => {}
            }
        }
        if conf.servers.is_empty() {
            conf.servers = ResolvConf::default().servers;
        }
        conf
    }
}

/// A `nameserver` address: IPv4, or IPv6 with an optional numeric zone
/// index (`fe80::1%2`). A named zone (`%eth0`) would need the interface
/// table and is skipped.
fn parse_server(text: &str) -> Option<SocketAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, 53));
    }
    let (ip, zone) = text.split_once('%')?;
    let ip = ip.parse::<Ipv6Addr>().ok()?;
    let scope = zone.parse::<u32>().ok()?;
    Some(SocketAddr::V6(SocketAddrV6::new(ip, 53, 0, scope)))
}

/// Host names and their addresses from a `hosts(5)` file. Names are kept in
/// lower case without a trailing dot; a name on several lines gets every
/// address, in the file's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hosts {
    names: HashMap<String, Vec<IpAddr>>,
}

impl Hosts {
    /// Parses the text of a `hosts(5)` file: an address, then its names,
    /// `#` to the end of the line is a comment. Lines whose address does not
    /// parse (or has a zone index) are skipped.
    pub fn parse(text: &str) -> Hosts {
        let mut names: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default();
            let mut words = line.split_whitespace();
            let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) else {
                continue;
            };
            for name in words.take(MAX_NAMES_PER_LINE) {
                let name = normalize(name);
                if name.is_empty() {
                    continue;
                }
                let ips = names.entry(name).or_default();
                if !ips.contains(&ip) {
                    ips.push(ip);
                }
            }
        }
        Hosts { names }
    }

    /// The addresses for `name` (any case, trailing dot or not); empty if
    /// the file does not name it.
    pub fn lookup(&self, name: &str) -> &[IpAddr] {
        self.names
            .get(&normalize(name))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Lower case, without the trailing dot of an absolute name.
pub(crate) fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), 53)
    }

    #[test]
    fn resolv_conf_servers_in_order_at_most_three() {
        let conf = ResolvConf::parse(
            "# generated by NetworkManager\n\
             search lan example.org\n\
             nameserver 192.168.1.1\n\
             nameserver 2001:db8::53\n\
             nameserver\t10.0.0.1   # trailing comment\n\
             nameserver 10.0.0.2\n",
        );
        assert_eq!(
            conf.servers,
            vec![
                v4(192, 168, 1, 1),
                "[2001:db8::53]:53".parse().unwrap(),
                v4(10, 0, 0, 1),
            ]
        );
        assert_eq!(conf.timeout, DEFAULT_TIMEOUT);
        assert_eq!(conf.attempts, DEFAULT_ATTEMPTS);
    }

    #[test]
    fn resolv_conf_without_servers_means_localhost() {
        for text in [
            "",
            "search example.org\n",
            "nameserver\n",
            "nameserver bogus\n",
        ] {
            assert_eq!(ResolvConf::parse(text), ResolvConf::default(), "{text:?}");
        }
        assert_eq!(ResolvConf::default().servers, vec![v4(127, 0, 0, 1)]);
    }

    #[test]
    fn resolv_conf_options() {
        let conf = ResolvConf::parse(
            "nameserver 127.0.0.53\noptions edns0 trust-ad ndots:2 timeout:3 attempts:4 rotate\n",
        );
        assert_eq!(conf.timeout, Duration::from_secs(3));
        assert_eq!(conf.attempts, 4);
        // Out-of-range and junk values: clamped like glibc, or ignored.
        let conf = ResolvConf::parse("options timeout:0 attempts:99\noptions timeout:x\n");
        assert_eq!(conf.timeout, Duration::from_secs(1));
        assert_eq!(conf.attempts, MAX_ATTEMPTS);
        let conf = ResolvConf::parse("options timeout:9999 attempts:-1 attempts:\n");
        assert_eq!(conf.timeout, Duration::from_secs(MAX_TIMEOUT_SECS));
        assert_eq!(conf.attempts, DEFAULT_ATTEMPTS);
    }

    #[test]
    fn resolv_conf_junk_and_zones() {
        let conf = ResolvConf::parse(
            "nameserver fe80::1%eth0\n\
             ; comment\n\
             nameserver fe80::1%2\n\
             \u{0}\u{7f}garbage ÿ\n\
             nameserver 1.2.3.4:5353\n\
             nameserver 9.9.9.9 extra words\n\
             NAMESERVER 8.8.8.8\n",
        );
        assert_eq!(
            conf.servers,
            vec![
                SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 53, 0, 2)),
                v4(9, 9, 9, 9),
            ]
        );
    }

    #[test]
    fn hosts_lookup() {
        let hosts = Hosts::parse(
            "127.0.0.1\tlocalhost\n\
             ::1     localhost ip6-localhost ip6-loopback\n\
             # 10.0.0.9 commented.example\n\
             192.0.2.7 Peer.Example.ORG. peer   # the peer\n\
             192.0.2.8 peer.example.org\n\
             192.0.2.7 peer.example.org\n\
             fe80::1%eth0 zoned.example\n\
             not-an-ip junk.example\n\
             \n\
             10.1.1.1\n",
        );
        assert_eq!(
            hosts.lookup("localhost"),
            &[
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert_eq!(
            hosts.lookup("PEER.example.org."),
            &[
                "192.0.2.7".parse::<IpAddr>().unwrap(),
                "192.0.2.8".parse().unwrap()
            ]
        );
        assert_eq!(hosts.lookup("peer").len(), 1);
        assert!(hosts.lookup("commented.example").is_empty());
        assert!(hosts.lookup("zoned.example").is_empty());
        assert!(hosts.lookup("junk.example").is_empty());
        assert!(hosts.lookup("").is_empty());
        assert!(Hosts::parse("").is_empty());
    }

    #[test]
    fn hosts_caps_names_per_line() {
        let mut line = String::from("192.0.2.1");
        for i in 0..100 {
            line.push_str(&format!(" n{i}"));
        }
        let hosts = Hosts::parse(&line);
        assert_eq!(hosts.lookup("n0").len(), 1);
        assert_eq!(
            hosts.lookup(&format!("n{}", MAX_NAMES_PER_LINE - 1)).len(),
            1
        );
        assert!(hosts.lookup(&format!("n{MAX_NAMES_PER_LINE}")).is_empty());
    }
}
