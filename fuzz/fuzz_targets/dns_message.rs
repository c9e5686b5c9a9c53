//! DNS for federation: answers judged by `Query::read_reply`, the system
//! files read by `ResolvConf::parse` and `Hosts::parse`, and the RFC 2782
//! ordering of `order_srv` and `plan`.
//!
//! Input: a mode byte, then the rest, read several ways at once:
//! - as the answer to a fixed query (id 0xbeef, for `xmpp.example.org` A or
//!   AAAA, or `_xmpp-server._tcp.example.org` SRV, as the mode's low bits
//!   say) and to a query derived from the answer itself (its id and the
//!   name in its question), so that mutations get past the id check;
//! - as text: a `resolv.conf`, a `hosts` file, a name for `Query::new`;
//! - as SRV records: a count of `_xmpps-` records and one of `_xmpp-`
//!   records, six bytes per record (priority, weight, port, an index into
//!   a few targets including "."), then the random numbers `order_srv`
//!   draws, two bytes each. SRV records read from an accepted answer are
//!   planned too.
//!
//! Properties: nothing panics. An accepted answer carries the query's id,
//! is a response to a standard query, and repeats the question (the same
//! name in any case, type and class) exactly once, except that a server
//! error may leave the question out; its verdict agrees with the header
//! (TC for `Truncated`, the RCODE for `Negative` and `ServerFailure`).
//! Records are of the type asked for, at most `MAX_RECORDS` and no more
//! than the answer section holds; SRV targets are "." or lower-case host
//! names; an alias is a lower-case host name other than the one asked for,
//! after 1 to `MAX_CNAME_HOPS` CNAMEs, and can be asked for in turn. An
//! answer over 64 KiB is refused. A query Perch accepts encodes, and reads
//! back (marked as a response) as a negative answer.
//!
//! `ResolvConf`: one to `MAX_SERVERS` servers on port 53, the timeout and
//! attempts within glibc's caps, and a `nameserver` line put first comes
//! first, pushing the others back. `Hosts`: every name of a line with an
//! address (up to the per-line cap) looks up to that address, in any case,
//! with or without the trailing dot, with no address twice.
//!
//! `order_srv`: a permutation of its input, priorities non-decreasing, one
//! random draw per record bounded by the weight left in its priority, a
//! record of weight 0 picked only by a draw of 0 (so those keep the order
//! received). `plan`: exactly the usable records (not ".", not port 0),
//! each once, by best priority; with none, the fallback to the domain,
//! unless the `_xmpp-` name alone says ".".
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use perch::dns::config::{Hosts, MAX_SERVERS, ResolvConf};
use perch::dns::message::{MAX_MESSAGE_BYTES, Query, Record, Rejected, Reply, check_host_name};
use perch::dns::targets::{Target, order_srv, plan};
use perch::dns::{MAX_CNAME_HOPS, MAX_RECORDS, RecordType, Srv};

/// Answers over UDP are a few hundred bytes, over TCP rarely more than a
/// few KiB; the 64 KiB limit is checked by padding (see `mode`).
const MAX_INPUT: usize = 16 * 1024;

const FIXED_ID: u16 = 0xbeef;
const HEADER_BYTES: usize = 12;
/// RFC 1035 §4.1.1 header bits.
const QR: u16 = 0x8000;
const OPCODE: u16 = 0x7800;
const TC: u16 = 0x0200;
const RD: u16 = 0x0100;
const RCODE: u16 = 0x000f;
/// glibc's caps on `options timeout:` and `attempts:` (private in
/// `dns::config`).
const MAX_TIMEOUT_SECS: u64 = 30;
const MAX_ATTEMPTS: u32 = 5;
/// Names per hosts line that are kept (private in `dns::config`).
const MAX_NAMES_PER_LINE: usize = 35;
/// Lines of a hosts file checked name by name, to keep runs fast.
const HOSTS_LINES_CHECKED: usize = 16;

/// SRV targets the record view picks from: "." (not offered), host names,
/// one of them twice under different records to exercise deduplication.
const TARGETS: [&str; 4] = [".", "xmpp.example.org", "xmpp2.example.org", "example.org"];
const DOMAIN: &str = "example.org";
const FALLBACK_PORT: u16 = 5269;

fn qtype(mode: u8) -> RecordType {
    match mode % 4 {
        0 => RecordType::A,
        1 => RecordType::Aaaa,
        _ => RecordType::Srv,
    }
}

fn fixed_query(qtype: RecordType) -> Query {
    let name = match qtype {
        RecordType::Srv => "_xmpp-server._tcp.example.org",
        _ => "xmpp.example.org",
    };
    Query::new(FIXED_ID, name, qtype).expect("a valid fixed query")
}

/// The question of a message as the wire has it, read without simple-dns:
/// labels, type, class. `None` if malformed, or if a compression pointer
/// leads into the header: the parser under test reads the question with
/// the counts zeroed, so such a name has no meaning to compare.
fn wire_question(msg: &[u8]) -> Option<(Vec<&[u8]>, u16, u16)> {
    let mut labels = Vec::new();
    let mut pos = HEADER_BYTES;
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *msg.get(pos)?;
        if len == 0 {
            end.get_or_insert(pos + 1);
            break;
        }
        if len & 0xc0 == 0xc0 {
            let target = usize::from(len & 0x3f) << 8 | usize::from(*msg.get(pos + 1)?);
            end.get_or_insert(pos + 2);
            jumps += 1;
            // Backward only, as the parser requires; bounded all the same.
            if target < HEADER_BYTES || target >= pos || jumps > 64 {
                return None;
            }
            pos = target;
            continue;
        }
        if len > 63 {
            return None;
        }
        let len = usize::from(len);
        labels.push(msg.get(pos + 1..pos + 1 + len)?);
        pos += 1 + len;
    }
    let end = end?;
    let word = |i: usize| Some(u16::from_be_bytes([*msg.get(i)?, *msg.get(i + 1)?]));
    Some((labels, word(end)?, word(end + 2)?))
}

fn same_labels(labels: &[&[u8]], name: &str) -> bool {
    labels.len() == name.split('.').count()
        && labels
            .iter()
            .zip(name.split('.'))
            .all(|(label, part)| label.eq_ignore_ascii_case(part.as_bytes()))
}

fn is_lower_host_name(name: &str) -> bool {
    check_host_name(name).is_ok() && !name.bytes().any(|b| b.is_ascii_uppercase())
}

/// The properties of an accepted answer; see the module docs.
fn check_reply(query: &Query, msg: &[u8], result: &Result<Reply, Rejected>) {
    if msg.len() > MAX_MESSAGE_BYTES {
        assert!(
            matches!(result, Err(Rejected::Malformed(_))),
            "an answer of {} bytes was not refused: {result:?}",
            msg.len()
        );
        return;
    }
    let Ok(reply) = result else {
        return;
    };
    assert!(
        msg.len() >= HEADER_BYTES,
        "accepted a message without header"
    );
    let word = |i: usize| u16::from_be_bytes([msg[i], msg[i + 1]]);
    assert_eq!(word(0), query.id, "accepted an answer with another id");
    let flags = word(2);
    assert!(flags & QR != 0, "accepted a message that is not a response");
    assert_eq!(flags & OPCODE, 0, "accepted an answer to another opcode");
    let rcode = flags & RCODE;
    let truncated = flags & TC != 0;
    let (questions, answers) = (word(4), word(6));
    if let Reply::ServerFailure { rcode: said } = reply {
        assert_eq!(*said, rcode, "a server failure with another RCODE");
        assert!(rcode != 0 && rcode != 3, "RCODE {rcode} taken as a failure");
        if questions == 0 {
            // Taken on the id alone, and never cached.
            return;
        }
    }
    assert_eq!(
        questions, 1,
        "accepted an answer with {questions} questions"
    );
    if let Some((labels, qtype, qclass)) = wire_question(msg) {
        assert!(
            same_labels(&labels, &query.name),
            "accepted an answer to another name than {}: {labels:?}",
            query.name
        );
        assert_eq!(
            qtype,
            query.qtype.code(),
            "accepted an answer to another type"
        );
        // The top bit is mDNS's unicast-response flag, which the parser
        // strips: class 0x8001 passes as IN (harmless: the id and name
        // must still match).
        assert_eq!(qclass & 0x7fff, 1, "accepted an answer to another class");
    }
    if !matches!(reply, Reply::Truncated) {
        assert!(!truncated, "a truncated answer read as complete: {reply:?}");
    }
    match reply {
        Reply::Truncated => assert!(truncated, "Truncated without the TC bit"),
        Reply::ServerFailure { .. } => {}
        Reply::Negative => assert!(rcode == 0 || rcode == 3, "Negative with RCODE {rcode}"),
        Reply::Records { records, .. } => {
            assert_eq!(rcode, 0, "records from an answer with RCODE {rcode}");
            assert!(!records.is_empty(), "Records without records");
            assert!(records.len() <= MAX_RECORDS, "{} records", records.len());
            assert!(
                records.len() <= usize::from(answers),
                "more records than the answer section holds"
            );
            for record in records {
                match (record, query.qtype) {
                    (Record::A(_), RecordType::A) | (Record::Aaaa(_), RecordType::Aaaa) => {}
                    (Record::Srv(srv), RecordType::Srv) => assert!(
                        srv.target == "." || is_lower_host_name(&srv.target),
                        "SRV target {:?} is no host name",
                        srv.target
                    ),
                    (record, qtype) => panic!("{record:?} in answer to a {qtype} query"),
                }
            }
        }
        Reply::Alias { target, hops, .. } => {
            assert_eq!(rcode, 0, "an alias from an answer with RCODE {rcode}");
            assert!(
                (1..=MAX_CNAME_HOPS).contains(hops),
                "an alias after {hops} CNAMEs"
            );
            assert!(
                *hops <= usize::from(answers),
                "more CNAMEs than the answer section holds"
            );
            assert!(
                is_lower_host_name(target),
                "alias {target:?} is no host name"
            );
            assert_ne!(*target, query.name, "an alias back to the name asked for");
            // The resolver asks again for the target.
            let again = Query::new(query.id, target, query.qtype).expect("the alias is askable");
            assert_eq!(again.name, *target);
        }
    }
}

/// A query Perch accepts encodes as one question with recursion desired,
/// and that message, marked as a response, is an empty answer to it.
fn check_query(query: &Query) {
    assert!(
        is_lower_host_name(&query.name),
        "query for {:?}",
        query.name
    );
    let mut bytes = query.to_bytes().expect("an accepted name encodes");
    let (labels, qtype, qclass) = wire_question(&bytes).expect("the query's question reads");
    assert!(same_labels(&labels, &query.name));
    assert_eq!((qtype, qclass), (query.qtype.code(), 1));
    let word = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
    assert_eq!(word(0), query.id);
    assert_eq!(word(2), RD, "flags of a query");
    assert_eq!([word(4), word(6), word(8), word(10)], [1, 0, 0, 0]);
    assert!(matches!(
        query.read_reply(&bytes),
        Err(Rejected::NotOurs(_))
    ));
    bytes[2] |= 0x80;
    assert_eq!(query.read_reply(&bytes), Ok(Reply::Negative));
}

fn check_answer(mode: u8, msg: &[u8]) -> Vec<Srv> {
    let qtype = qtype(mode);
    let mut srv = Vec::new();
    let fixed = fixed_query(qtype);
    let mut queries = vec![fixed];
    // The query the answer claims to answer, if Perch would ask it.
    if let (Some(id), Some((labels, _, _))) = (msg.get(..2), wire_question(msg)) {
        let text: Vec<String> = labels
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        let text = text.join(".");
        if let Ok(q) = Query::new(u16::from_be_bytes([id[0], id[1]]), &text, qtype) {
            // A label may itself hold a dot, so the joined text can end in
            // one, which names the same host to Query::new.
            let asked = text.strip_suffix('.').unwrap_or(&text);
            assert_eq!(q.name, asked.to_ascii_lowercase());
            queries.push(q);
        }
    }
    for query in &queries {
        let result = query.read_reply(msg);
        check_reply(query, msg, &result);
        if let Ok(Reply::Records { records, .. }) = result {
            srv.extend(records.into_iter().filter_map(|r| match r {
                Record::Srv(s) => Some(s),
                _ => None,
            }));
        }
    }
    if mode & 4 != 0 {
        // The same bytes padded past the limit: refused before anything.
        let mut big = msg.to_vec();
        big.resize(MAX_MESSAGE_BYTES + 1, 0);
        for query in &queries {
            check_reply(query, &big, &query.read_reply(&big));
        }
    }
    for query in &queries {
        check_query(query);
    }
    srv
}

fn check_resolv_conf(text: &str) {
    let conf = ResolvConf::parse(text);
    assert!(
        (1..=MAX_SERVERS).contains(&conf.servers.len()),
        "{} servers",
        conf.servers.len()
    );
    assert!(conf.servers.iter().all(|s| s.port() == 53), "a port not 53");
    assert!(
        (1..=MAX_TIMEOUT_SECS).contains(&conf.timeout.as_secs())
            && conf.timeout.subsec_nanos() == 0,
        "timeout {:?}",
        conf.timeout
    );
    assert!(
        (1..=MAX_ATTEMPTS).contains(&conf.attempts),
        "attempts {}",
        conf.attempts
    );
    // Lines are independent: one more server first comes first.
    let first = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 53)), 53);
    let prefixed = ResolvConf::parse(&format!("nameserver 192.0.2.53\n{text}"));
    assert_eq!(prefixed.servers[0], first);
    assert!(
        conf.servers.starts_with(&prefixed.servers[1..]),
        "{:?} then {:?}",
        prefixed.servers,
        conf.servers
    );
    assert_eq!(
        (prefixed.timeout, prefixed.attempts),
        (conf.timeout, conf.attempts)
    );
    assert!(conf.timeout >= Duration::from_secs(1));
}

fn check_hosts(text: &str) {
    let hosts = Hosts::parse(text);
    let lines = text.lines().count();
    for line in text.lines().take(HOSTS_LINES_CHECKED) {
        let line = line.split('#').next().unwrap_or_default();
        let mut words = line.split_whitespace();
        let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) else {
            continue;
        };
        for name in words.take(MAX_NAMES_PER_LINE) {
            let addresses = hosts.lookup(name);
            if name.strip_suffix('.').unwrap_or(name).is_empty() {
                assert!(addresses.is_empty(), "addresses for {name:?}");
                continue;
            }
            assert!(addresses.contains(&ip), "{name} lost {ip}");
            assert!(addresses.len() <= lines, "more addresses than lines");
            for (i, a) in addresses.iter().enumerate() {
                assert!(!addresses[..i].contains(a), "{a} twice for {name}");
            }
            assert_eq!(hosts.lookup(&name.to_ascii_uppercase()), addresses);
            if !name.ends_with('.') {
                assert_eq!(hosts.lookup(&format!("{name}.")), addresses);
            }
        }
    }
}

/// The random numbers `order_srv` draws, from the input; each call is
/// recorded. Values may exceed the bound by one, which must be clamped.
struct Draws<'a> {
    bytes: &'a [u8],
    calls: Vec<(u64, u64)>,
}

impl Draws<'_> {
    fn draw(&mut self, bound: u64) -> u64 {
        let pick = match self.bytes {
            [a, b, rest @ ..] => {
                self.bytes = rest;
                u64::from(u16::from_be_bytes([*a, *b])) % (bound + 2)
            }
            _ => 0,
        };
        self.calls.push((bound, pick));
        pick
    }
}

/// SRV records from the input (see the module docs): the `_xmpps-` ones,
/// the `_xmpp-` ones, and what is left for the draws.
fn srv_view(bytes: &[u8]) -> (Vec<Srv>, Vec<Srv>, &[u8]) {
    let [n_direct, n_starttls, rest @ ..] = bytes else {
        return (Vec::new(), Vec::new(), &[]);
    };
    let (n_direct, n_starttls) = (usize::from(n_direct % 16), usize::from(n_starttls % 16));
    let mut chunks = rest.chunks_exact(6);
    let mut records = |n: usize| -> Vec<Srv> {
        chunks
            .by_ref()
            .take(n)
            .map(|c| Srv {
                priority: u16::from(c[0]),
                weight: u16::from_be_bytes([c[1], c[2]]),
                port: u16::from_be_bytes([c[3], c[4]]),
                target: TARGETS[usize::from(c[5]) % TARGETS.len()].to_string(),
            })
            .collect()
    };
    let direct = records(n_direct);
    let starttls = records(n_starttls);
    let used = 6 * (direct.len() + starttls.len());
    (direct, starttls, &rest[used..])
}

/// A record and where it was in the input.
struct Tagged(usize, Srv);

impl AsRef<Srv> for Tagged {
    fn as_ref(&self) -> &Srv {
        &self.1
    }
}

fn check_order(records: &[Srv], draws: &[u8]) {
    let tagged = records
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, s)| Tagged(i, s))
        .collect();
    let mut draws = Draws {
        bytes: draws,
        calls: Vec::new(),
    };
    let ordered = order_srv(tagged, &mut |bound| draws.draw(bound));
    let calls = draws.calls;
    let mut seen: Vec<usize> = ordered.iter().map(|t| t.0).collect();
    seen.sort_unstable();
    assert!(
        seen.iter().copied().eq(0..records.len()),
        "not a permutation: {seen:?}"
    );
    assert_eq!(calls.len(), records.len(), "not one draw per record");
    for (i, Tagged(_, srv)) in ordered.iter().enumerate() {
        if let Some(Tagged(_, next)) = ordered.get(i + 1) {
            assert!(srv.priority <= next.priority, "priorities out of order");
        }
        let left: u64 = ordered[i..]
            .iter()
            .filter(|t| t.1.priority == srv.priority)
            .map(|t| u64::from(t.1.weight))
            .sum();
        let (bound, pick) = calls[i];
        assert_eq!(bound, left, "a draw not bounded by the weight left");
        if pick.min(bound) > 0 {
            assert!(srv.weight > 0, "a record of weight 0 picked by {pick}");
        }
    }
    // Weight 0 records of one priority come out in the order received.
    for (i, a) in ordered.iter().enumerate() {
        for b in &ordered[i + 1..] {
            if a.1.weight == 0 && b.1.weight == 0 && a.1.priority == b.1.priority {
                assert!(a.0 < b.0, "records of weight 0 reordered");
            }
        }
    }
}

fn check_plan(direct: &[Srv], starttls: &[Srv], draws: &[u8]) {
    let mut d = Draws {
        bytes: draws,
        calls: Vec::new(),
    };
    let targets = plan(
        DOMAIN,
        FALLBACK_PORT,
        direct.to_vec(),
        starttls.to_vec(),
        &mut |bound| d.draw(bound),
    );
    let candidates: Vec<(Target, u16)> = direct
        .iter()
        .map(|s| (s, true))
        .chain(starttls.iter().map(|s| (s, false)))
        .filter(|(s, _)| !s.is_unavailable() && s.port != 0)
        .map(|(s, direct_tls)| {
            let target = Target {
                host: s.target.clone(),
                port: s.port,
                direct_tls,
            };
            (target, s.priority)
        })
        .collect();
    if candidates.is_empty() {
        if starttls.len() == 1 && starttls[0].is_unavailable() {
            assert!(
                targets.is_empty(),
                "a domain that said '.' planned: {targets:?}"
            );
        } else {
            let fallback = Target {
                host: DOMAIN.to_string(),
                port: FALLBACK_PORT,
                direct_tls: false,
            };
            assert_eq!(targets, vec![fallback]);
        }
        return;
    }
    for (i, t) in targets.iter().enumerate() {
        assert!(!targets[..i].contains(t), "{t:?} planned twice");
        assert!(
            candidates.iter().any(|(c, _)| c == t),
            "{t:?} is no usable record"
        );
    }
    for (c, _) in &candidates {
        assert!(targets.contains(c), "{c:?} left out");
    }
    let best = |t: &Target| {
        candidates
            .iter()
            .filter(|(c, _)| c == t)
            .map(|(_, p)| *p)
            .min()
    };
    for pair in targets.windows(2) {
        assert!(
            best(&pair[0]) <= best(&pair[1]),
            "targets out of priority order"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    let [mode, rest @ ..] = data else {
        return;
    };
    let from_answer = check_answer(*mode, rest);
    let text = String::from_utf8_lossy(rest);
    check_resolv_conf(&text);
    check_hosts(&text);
    if let Ok(query) = Query::new(1, text.trim(), qtype(*mode)) {
        check_query(&query);
    }
    let (direct, starttls, draws) = srv_view(rest);
    let all: Vec<Srv> = direct.iter().chain(&starttls).cloned().collect();
    check_order(&all, draws);
    check_plan(&direct, &starttls, draws);
    if !from_answer.is_empty() {
        check_plan(&[], &from_answer, draws);
        check_order(&from_answer, draws);
    }
});
