//! A tiny authoritative DNS server for tests: a static zone of SRV, A, AAAA
//! and CNAME records, served over UDP and TCP on one ephemeral port of
//! 127.0.0.1, from threads of its own (plain std sockets, so any executor
//! or none can talk to it).
//!
//! ```ignore
//! let server = DnsServer::start(
//!     Zone::new()
//!         .srv("_xmpp-server._tcp.example.org", 0, 0, 5269, "xmpp.example.org")
//!         .a("xmpp.example.org", Ipv4Addr::LOCALHOST),
//! );
//! let resolver = perch::dns::Resolver::with_servers(vec![server.addr()]);
//! ```
//!
//! [`Mode`] makes it misbehave: truncate every UDP answer (so the client
//! must retry over TCP), stay silent (timeouts), answer SERVFAIL, or send
//! forged answers before the real one. Answers follow CNAMEs within the
//! zone the way a recursive server does; a name with no records at all is
//! NXDOMAIN. The threads stop when the server is dropped.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use simple_dns::rdata::{A, AAAA, CNAME, RData, SRV};
use simple_dns::{CLASS, Name, Packet, PacketFlag, RCODE, ResourceRecord};

/// How the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Answers from the zone.
    Normal,
    /// UDP answers carry the TC bit and no records; TCP answers are whole.
    TruncateUdp,
    /// Counts queries and never answers.
    Silent,
    /// Answers SERVFAIL to everything.
    ServFail,
    /// Over UDP, first sends an answer with the wrong id and one to another
    /// question (both claiming 6.6.6.6 and a bogus SRV), then the real one.
    SpoofFirst,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Data {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(String),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
}

impl Data {
    fn type_code(&self) -> u16 {
        match self {
            Data::A(_) => 1,
            Data::Cname(_) => 5,
            Data::Aaaa(_) => 28,
            Data::Srv { .. } => 33,
        }
    }
}

/// The records the server holds. Names are matched without regard to case
/// or a trailing dot.
#[derive(Debug, Clone)]
pub struct Zone {
    records: Vec<(String, Data)>,
    ttl: u32,
}

impl Default for Zone {
    fn default() -> Self {
        Zone::new()
    }
}

impl Zone {
    /// An empty zone whose records have a TTL of 300 s.
    pub fn new() -> Zone {
        Zone {
            records: Vec::new(),
            ttl: 300,
        }
    }

    pub fn srv(self, name: &str, priority: u16, weight: u16, port: u16, target: &str) -> Zone {
        self.with(
            name,
            Data::Srv {
                priority,
                weight,
                port,
                target: target.to_owned(),
            },
        )
    }

    pub fn a(self, name: &str, ip: Ipv4Addr) -> Zone {
        self.with(name, Data::A(ip))
    }

    pub fn aaaa(self, name: &str, ip: Ipv6Addr) -> Zone {
        self.with(name, Data::Aaaa(ip))
    }

    pub fn cname(self, name: &str, target: &str) -> Zone {
        self.with(name, Data::Cname(target.to_owned()))
    }

    /// The TTL of every record, in seconds.
    pub fn ttl(mut self, secs: u32) -> Zone {
        self.ttl = secs;
        self
    }

    fn with(mut self, name: &str, data: Data) -> Zone {
        self.records.push((key(name), data));
        self
    }

    fn has_name(&self, name: &str) -> bool {
        self.records.iter().any(|(n, _)| n == name)
    }

    fn find(&self, name: &str, type_code: u16) -> impl Iterator<Item = &Data> {
        self.records
            .iter()
            .filter(move |(n, d)| n == name && d.type_code() == type_code)
            .map(|(_, d)| d)
    }
}

fn key(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

struct Shared {
    zone: Mutex<Zone>,
    mode: Mutex<Mode>,
    udp_queries: AtomicUsize,
    tcp_queries: AtomicUsize,
    stop: AtomicBool,
}

/// A running server; dropping it stops it.
pub struct DnsServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl DnsServer {
    /// Serves `zone` over UDP and TCP on a free port of 127.0.0.1.
    pub fn start(zone: Zone) -> DnsServer {
        let (udp, tcp) = bind_pair();
        let addr = udp.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            zone: Mutex::new(zone),
            mode: Mutex::new(Mode::Normal),
            udp_queries: AtomicUsize::new(0),
            tcp_queries: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let udp_shared = shared.clone();
        let tcp_shared = shared.clone();
        let threads = vec![
            thread::Builder::new()
                .name("dns-udp".into())
                .spawn(move || serve_udp(udp, &udp_shared))
                .expect("spawn"),
            thread::Builder::new()
                .name("dns-tcp".into())
                .spawn(move || serve_tcp(tcp, &tcp_shared))
                .expect("spawn"),
        ];
        DnsServer {
            addr,
            shared,
            threads,
        }
    }

    /// The address of both the UDP and the TCP service.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().expect("mode") = mode;
    }

    /// Serves `zone` from now on.
    pub fn set_zone(&self, zone: Zone) {
        *self.shared.zone.lock().expect("zone") = zone;
    }

    /// Queries received over UDP so far (answered or not).
    pub fn udp_queries(&self) -> usize {
        self.shared.udp_queries.load(Ordering::SeqCst)
    }

    /// Queries received over TCP so far.
    pub fn tcp_queries(&self) -> usize {
        self.shared.tcp_queries.load(Ordering::SeqCst)
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake both blocked threads.
        if let Ok(socket) = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)) {
            let _ = socket.send_to(b"", self.addr);
        }
        let _ = TcpStream::connect(self.addr);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A UDP socket and a TCP listener on the same free port.
fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..50 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind UDP");
        let addr = udp.local_addr().expect("local address");
        if let Ok(tcp) = TcpListener::bind(addr) {
            return (udp, tcp);
        }
    }
    panic!("no port free for both UDP and TCP");
}

fn serve_udp(socket: UdpSocket, shared: &Shared) {
    let mut buffer = [0u8; 4096];
    while !shared.stop.load(Ordering::SeqCst) {
        let Ok((len, from)) = socket.recv_from(&mut buffer) else {
            continue;
        };
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let query = &buffer[..len];
        if Packet::parse(query).is_err() {
            continue;
        }
        shared.udp_queries.fetch_add(1, Ordering::SeqCst);
        let mode = *shared.mode.lock().expect("mode");
        let zone = shared.zone.lock().expect("zone").clone();
        if mode == Mode::SpoofFirst {
            for forged in forgeries(query) {
                let _ = socket.send_to(&forged, from);
            }
        }
        if let Some(answer) = respond(query, &zone, mode, true) {
            let _ = socket.send_to(&answer, from);
        }
    }
}

fn serve_tcp(listener: TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let shared = shared.clone();
        // One thread per connection: the resolver may ask for A and AAAA
        // at once.
        thread::spawn(move || serve_tcp_connection(stream, &shared));
    }
}

fn serve_tcp_connection(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    loop {
        let mut prefix = [0u8; 2];
        if stream.read_exact(&mut prefix).is_err() {
            return;
        }
        let mut query = vec![0; usize::from(u16::from_be_bytes(prefix))];
        if stream.read_exact(&mut query).is_err() {
            return;
        }
        shared.tcp_queries.fetch_add(1, Ordering::SeqCst);
        let mode = *shared.mode.lock().expect("mode");
        let zone = shared.zone.lock().expect("zone").clone();
        let Some(answer) = respond(&query, &zone, mode, false) else {
            continue;
        };
        let Ok(len) = u16::try_from(answer.len()) else {
            return;
        };
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(&answer);
        if stream.write_all(&framed).is_err() {
            return;
        }
    }
}

/// The answer to `query`, if the mode gives one.
fn respond(query: &[u8], zone: &Zone, mode: Mode, udp: bool) -> Option<Vec<u8>> {
    let query = Packet::parse(query).ok()?;
    let question = query.questions.first()?.clone();
    if mode == Mode::Silent {
        return None;
    }
    let mut reply = Packet::new_reply(query.id());
    reply.set_flags(PacketFlag::AUTHORITATIVE_ANSWER);
    if query.has_flags(PacketFlag::RECURSION_DESIRED) {
        reply.set_flags(PacketFlag::RECURSION_DESIRED | PacketFlag::RECURSION_AVAILABLE);
    }
    reply.questions.push(question.clone());
    if mode == Mode::ServFail {
        *reply.rcode_mut() = RCODE::ServerFailure;
        return reply.build_bytes_vec().ok();
    }
    let type_code = u16::from(question.qtype);
    let mut name = key(&question.qname.to_string());
    if !zone.has_name(&name) {
        *reply.rcode_mut() = RCODE::NameError;
    }
    // Owned names for the records, kept alive until the reply is built.
    let mut answers: Vec<(String, Data)> = Vec::new();
    for _ in 0..16 {
        let found: Vec<Data> = zone.find(&name, type_code).cloned().collect();
        if !found.is_empty() {
            answers.extend(found.into_iter().map(|d| (name.clone(), d)));
            break;
        }
        let Some(Data::Cname(target)) = zone.find(&name, 5).next().cloned() else {
            break;
        };
        answers.push((name.clone(), Data::Cname(target.clone())));
        name = key(&target);
    }
    if mode == Mode::TruncateUdp && udp {
        reply.set_flags(PacketFlag::TRUNCATION);
        return reply.build_bytes_vec().ok();
    }
    for (owner, data) in &answers {
        reply.answers.push(record(owner, data, zone.ttl)?);
    }
    reply.build_bytes_vec_compressed().ok()
}

fn record<'a>(owner: &'a str, data: &'a Data, ttl: u32) -> Option<ResourceRecord<'a>> {
    let rdata = match data {
        Data::A(ip) => RData::A(A {
            address: u32::from(*ip),
        }),
        Data::Aaaa(ip) => RData::AAAA(AAAA {
            address: u128::from(*ip),
        }),
        Data::Cname(target) => RData::CNAME(CNAME(Name::new(target).ok()?)),
        Data::Srv {
            priority,
            weight,
            port,
            target,
        } => RData::SRV(SRV {
            priority: *priority,
            weight: *weight,
            port: *port,
            target: Name::new(target).ok()?,
        }),
    };
    Some(ResourceRecord::new(
        Name::new(owner).ok()?,
        CLASS::IN,
        ttl,
        rdata,
    ))
}

/// Two forged answers to `query`: one with a wrong id, one with the right
/// id that answers another question; both carry bogus records.
fn forgeries(query: &[u8]) -> Vec<Vec<u8>> {
    let Ok(query) = Packet::parse(query) else {
        return Vec::new();
    };
    let Some(question) = query.questions.first() else {
        return Vec::new();
    };
    let evil_name = "evil.example";
    let forge = |id: u16, question: simple_dns::Question<'_>| -> Option<Vec<u8>> {
        let mut forged = Packet::new_reply(id);
        forged.set_flags(PacketFlag::RECURSION_DESIRED | PacketFlag::RECURSION_AVAILABLE);
        let owner = question.qname.clone();
        forged.questions.push(question);
        forged.answers.push(ResourceRecord::new(
            owner.clone(),
            CLASS::IN,
            3600,
            RData::A(A {
                address: u32::from(Ipv4Addr::new(6, 6, 6, 6)),
            }),
        ));
        forged.answers.push(ResourceRecord::new(
            owner,
            CLASS::IN,
            3600,
            RData::SRV(SRV {
                priority: 0,
                weight: 0,
                port: 6666,
                target: Name::new(evil_name).ok()?,
            }),
        ));
        forged.build_bytes_vec().ok()
    };
    let mut other = question.clone();
    other.qname = Name::new(evil_name).expect("name");
    [
        forge(query.id().wrapping_add(1), question.clone()),
        forge(query.id(), other),
    ]
    .into_iter()
    .flatten()
    .collect()
}
