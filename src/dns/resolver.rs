//! The stub resolver: asks the configured servers in turn, follows CNAMEs
//! and keeps answers in the cache.
//!
//! Single-threaded like the rest of the server: it lives in an `Rc`, and
//! its cache sits in a `RefCell` that is never borrowed across an `await`,
//! so concurrent look-ups from different tasks are fine. Two tasks asking
//! the same question at once both go to the network; federation asks
//! rarely enough that merging them is not worth the code.

use std::cell::RefCell;
use std::fs;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use futures_lite::future;
use ring::rand::SystemRandom;

use super::cache::{Cache, Cached};
use super::config::{HOSTS_PATH, Hosts, RESOLV_CONF_PATH, ResolvConf};
use super::message::{Query, Record, Reply};
use super::transport;
use super::{DnsError, MAX_CNAME_HOPS, RecordType, Srv};

/// Asks name servers for SRV and address records, with a cache.
#[derive(Debug)]
pub struct Resolver {
    conf: ResolvConf,
    hosts: Hosts,
    cache: RefCell<Cache>,
    random: SystemRandom,
}

impl Resolver {
    /// The system's configuration: `/etc/resolv.conf` and `/etc/hosts`.
    /// A file that cannot be read is logged and replaced by its defaults
    /// (a server on 127.0.0.1; no host names).
    pub fn system() -> Resolver {
        let conf = match fs::read_to_string(RESOLV_CONF_PATH) {
            Ok(text) => ResolvConf::parse(&text),
            Err(e) => {
                let conf = ResolvConf::default();
                log::warn!(
                    "cannot read {RESOLV_CONF_PATH} ({e}); DNS queries go to {:?}",
                    conf.servers
                );
                conf
            }
        };
        let hosts = match fs::read_to_string(HOSTS_PATH) {
            Ok(text) => Hosts::parse(&text),
            Err(e) => {
                log::warn!("cannot read {HOSTS_PATH} ({e}); only DNS will answer");
                Hosts::default()
            }
        };
        log::debug!("DNS servers: {:?}", conf.servers);
        Resolver::new(conf, hosts)
    }

    /// Asks only `servers` (port included), with the default timeouts and
    /// no hosts file: for `[s2s] dns_server` and tests. An empty list means
    /// 127.0.0.1:53.
    pub fn with_servers(servers: Vec<SocketAddr>) -> Resolver {
        let mut conf = ResolvConf::default();
        if !servers.is_empty() {
            conf.servers = servers;
        }
        Resolver::new(conf, Hosts::default())
    }

    pub fn new(conf: ResolvConf, hosts: Hosts) -> Resolver {
        Resolver {
            conf,
            hosts,
            cache: RefCell::new(Cache::default()),
            random: SystemRandom::new(),
        }
    }

    /// Waits `timeout` for each answer, over `attempts` rounds of all
    /// servers (at least 1).
    pub fn with_timeouts(mut self, timeout: Duration, attempts: u32) -> Resolver {
        self.conf.timeout = timeout;
        self.conf.attempts = attempts.max(1);
        self
    }

    /// The servers asked, in order.
    pub fn servers(&self) -> &[SocketAddr] {
        &self.conf.servers
    }

    /// The SRV records of `name` (e.g. `_xmpp-server._tcp.example.org`), as
    /// received; empty if the name does not exist or has none. Ordering them
    /// is [`super::order_srv`]'s job.
    pub async fn srv(&self, name: &str) -> Result<Vec<Srv>, DnsError> {
        let records = self.lookup(name, RecordType::Srv).await?;
        Ok(records
            .into_iter()
            .filter_map(|record| match record {
                Record::Srv(srv) => Some(srv),
                _ => None,
            })
            .collect())
    }

    /// The addresses of `host`: the host itself if it is an IP address
    /// (brackets allowed), else those of the hosts file (system
    /// configuration only), else the AAAA and then the A records. Empty if
    /// the name has none; an error only if both look-ups failed.
    pub async fn ips(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        let literal = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = literal.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let listed = self.hosts.lookup(host);
        if !listed.is_empty() {
            return Ok(listed.to_vec());
        }
        let (v6, v4) = future::zip(
            self.lookup(host, RecordType::Aaaa),
            self.lookup(host, RecordType::A),
        )
        .await;
        let ips = |records: Vec<Record>| {
            records.into_iter().filter_map(|record| match record {
                Record::A(ip) => Some(IpAddr::V4(ip)),
                Record::Aaaa(ip) => Some(IpAddr::V6(ip)),
                Record::Srv(_) => None,
            })
        };
        match (v6, v4) {
            (Ok(v6), Ok(v4)) => Ok(ips(v6).chain(ips(v4)).collect()),
            (Ok(found), Err(e)) | (Err(e), Ok(found)) => {
                log::debug!("{e}; using the other address family");
                Ok(ips(found).collect())
            }
            (Err(_), Err(e)) => Err(e),
        }
    }

    /// The records of type `qtype` for `name`, from the cache or the
    /// servers, following CNAMEs.
    async fn lookup(&self, name: &str, qtype: RecordType) -> Result<Vec<Record>, DnsError> {
        // Checks the name once, before any network traffic.
        let first = Query::new(0, name, qtype)?;
        let mut current = first.name;
        // Names asked for on the way: each gets the final answer cached.
        let mut asked: Vec<String> = Vec::new();
        let mut hops_left = MAX_CNAME_HOPS;
        let mut ttl = u32::MAX;
        loop {
            let cached = self.cache.borrow_mut().get(&current, qtype, Instant::now());
            if let Some(cached) = cached {
                let records = match cached {
                    Cached::Records(records) => records,
                    Cached::Negative => Vec::new(),
                };
                if !asked.is_empty() {
                    self.remember(&asked, qtype, &records, ttl);
                }
                return Ok(records);
            }
            asked.push(current.clone());
            match self.ask(&current, qtype).await? {
                Reply::Records {
                    records,
                    ttl: records_ttl,
                } => {
                    self.remember(&asked, qtype, &records, ttl.min(records_ttl));
                    return Ok(records);
                }
                Reply::Negative => {
                    self.remember(&asked, qtype, &[], ttl);
                    return Ok(Vec::new());
                }
                Reply::Alias {
                    target,
                    hops,
                    ttl: alias_ttl,
                } => {
                    if hops > hops_left {
                        return Err(DnsError::Malformed {
                            name: format!("{name} {qtype}"),
                            why: format!("more than {MAX_CNAME_HOPS} CNAMEs (a loop?)"),
                        });
                    }
                    hops_left -= hops;
                    ttl = ttl.min(alias_ttl);
                    current = target;
                }
                // `ask` turns these into errors or a TCP retry.
                Reply::Truncated | Reply::ServerFailure { .. } => {
                    return Err(DnsError::Malformed {
                        name: format!("{current} {qtype}"),
                        why: "unexpected answer".into(),
                    });
                }
            }
        }
    }

    /// Caches the answer for every name of a CNAME chain.
    fn remember(&self, names: &[String], qtype: RecordType, records: &[Record], ttl: u32) {
        let now = Instant::now();
        let mut cache = self.cache.borrow_mut();
        for name in names {
            if records.is_empty() {
                cache.put_negative(name, qtype, now);
            } else {
                cache.put_records(name, qtype, records.to_vec(), ttl, now);
            }
        }
    }

    /// Asks the servers in turn, `attempts` rounds, until one gives an
    /// answer (records, an alias or "none"). A server failure, a timeout or
    /// a broken answer moves on to the next server; if all fail, the most
    /// telling error is returned (a server's error code before a timeout).
    async fn ask(&self, name: &str, qtype: RecordType) -> Result<Reply, DnsError> {
        let mut failure: Option<DnsError> = None;
        for _ in 0..self.conf.attempts {
            for &server in &self.conf.servers {
                // A fresh id for every datagram: a late answer to an
                // earlier attempt is then recognised as not ours.
                let query = Query::new(self.random_id(name, qtype)?, name, qtype)?;
                let error = match transport::exchange(server, &query, self.conf.timeout).await {
                    Ok(Reply::ServerFailure { rcode }) => DnsError::ServerFailure {
                        name: query.label(),
                        rcode,
                    },
                    Ok(reply) => return Ok(reply),
                    Err(e) => e,
                };
                log::debug!("DNS server {server}: {error}");
                if !matches!(failure, Some(DnsError::ServerFailure { .. }))
                    || matches!(error, DnsError::ServerFailure { .. })
                {
                    failure = Some(error);
                }
            }
        }
        Err(failure.unwrap_or_else(|| DnsError::Timeout {
            name: format!("{name} {qtype}"),
        }))
    }

    fn random_id(&self, name: &str, qtype: RecordType) -> Result<u16, DnsError> {
        ring::rand::generate::<[u8; 2]>(&self.random)
            .map(|bytes| u16::from_be_bytes(bytes.expose()))
            .map_err(|_| DnsError::Io {
                name: format!("{name} {qtype}"),
                source: io::Error::other("the system's random number generator failed"),
            })
    }

    /// Forgets every cached answer (after a network change, say).
    pub fn clear_cache(&self) {
        *self.cache.borrow_mut() = Cache::default();
    }
}
