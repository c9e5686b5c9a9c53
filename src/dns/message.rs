//! DNS messages: building a query and judging what came back, sans-I/O.
//!
//! The wire format itself is `simple-dns`'s job; this module decides what an
//! answer means for a stub resolver. Anything that arrives on the query's
//! socket is hostile until proven otherwise: an answer must carry the
//! query's id and repeat its question, or it is ignored as
//! [`Rejected::NotOurs`] (a spoofing attempt or a late answer to an earlier
//! query) and the caller keeps waiting. Cheap checks on the raw header come
//! before the full parse, so junk costs little.
//!
//! Within an answer, CNAMEs are followed from the name asked for
//! ([`MAX_CNAME_HOPS`] at most); only records of the type asked for, under
//! the name the chain ends at, are used ([`MAX_RECORDS`] at most). Records
//! for other names (additional data a server volunteers) are never used: a
//! server may only speak for what was asked.

use std::net::{Ipv4Addr, Ipv6Addr};

use simple_dns::rdata::RData;
use simple_dns::{CLASS, Name, Packet, PacketFlag, QCLASS, QTYPE, Question, TYPE};

use super::{DnsError, MAX_CNAME_HOPS, MAX_RECORDS, RecordType, Srv};

/// The largest answer accepted, in bytes: all that TCP's two-byte length
/// prefix can announce, and more than any UDP answer to a query without
/// EDNS may be.
pub const MAX_MESSAGE_BYTES: usize = 65_535;

/// Longest name in text form (RFC 1035 §2.3.4: 255 octets on the wire).
const MAX_NAME_CHARS: usize = 253;
const MAX_LABEL_CHARS: usize = 63;
const HEADER_BYTES: usize = 12;
/// Smallest possible question: the root name, type and class.
const MIN_QUESTION_BYTES: usize = 1 + 4;
/// Smallest possible record: the root name, type, class, TTL, length.
const MIN_RECORD_BYTES: usize = 1 + 10;
/// RFC 1035 §4.1.1 response codes used here.
const RCODE_NO_ERROR: u16 = 0;
const RCODE_NAME_ERROR: u16 = 3;

/// One question to one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The message id: random, so that an off-path attacker must guess it.
    pub id: u16,
    /// A host name: letters, digits, `-` and `_` in dot-separated labels,
    /// lower case, no trailing dot.
    pub name: String,
    pub qtype: RecordType,
}

/// A record of a type Perch asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Srv(Srv),
}

/// What a server's answer to a [`Query`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Records of the type asked for (after any CNAMEs), with the smallest
    /// TTL of the records and CNAMEs used, in seconds.
    Records { records: Vec<Record>, ttl: u32 },
    /// A chain of `hops` CNAMEs led to `target`, but the answer holds no
    /// records for it: ask again for `target` (with fewer hops left).
    Alias {
        target: String,
        hops: usize,
        ttl: u32,
    },
    /// The name does not exist (NXDOMAIN) or has no records of the type.
    Negative,
    /// The answer did not fit in a datagram (TC): ask again over TCP.
    Truncated,
    /// The server could not answer (SERVFAIL, REFUSED, …).
    ServerFailure { rcode: u16 },
}

/// Why an answer was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    /// It does not answer this query (wrong id or question, not a response,
    /// not DNS at all): ignore it and wait on.
    NotOurs(&'static str),
    /// It answers this query but breaks the protocol or a limit.
    Malformed(String),
}

impl Query {
    /// A query for `name`, which must be a host name (an IDN in its ASCII
    /// form); a trailing dot and upper case are fine.
    pub fn new(id: u16, name: &str, qtype: RecordType) -> Result<Query, DnsError> {
        let name = name.strip_suffix('.').unwrap_or(name);
        if let Err(why) = check_host_name(name) {
            return Err(DnsError::Malformed {
                name: format!("{name} {qtype}"),
                why: why.to_owned(),
            });
        }
        Ok(Query {
            id,
            name: name.to_ascii_lowercase(),
            qtype,
        })
    }

    /// How errors and logs name this query, e.g. `example.org AAAA`.
    pub fn label(&self) -> String {
        format!("{} {}", self.name, self.qtype)
    }

    /// The query in wire format: one question, recursion desired, no EDNS
    /// (every server understands that; bigger answers come over TCP).
    pub fn to_bytes(&self) -> Result<Vec<u8>, DnsError> {
        let malformed = |why: String| DnsError::Malformed {
            name: self.label(),
            why,
        };
        let qname = Name::new(&self.name).map_err(|e| malformed(format!("bad name: {e}")))?;
        let mut packet = Packet::new_query(self.id);
        packet.set_flags(PacketFlag::RECURSION_DESIRED);
        packet.questions.push(Question::new(
            qname,
            QTYPE::TYPE(TYPE::from(self.qtype.code())),
            QCLASS::CLASS(CLASS::IN),
            false,
        ));
        packet
            .build_bytes_vec()
            .map_err(|e| malformed(format!("cannot encode the query: {e}")))
    }

    /// Judges `bytes`, received in answer to this query.
    pub fn read_reply(&self, bytes: &[u8]) -> Result<Reply, Rejected> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(Rejected::Malformed(format!(
                "answer of {} bytes is over the limit of {MAX_MESSAGE_BYTES}",
                bytes.len()
            )));
        }
        let Some(header) = bytes.get(..HEADER_BYTES) else {
            return Err(Rejected::NotOurs("shorter than a DNS header"));
        };
        let word = |i: usize| u16::from_be_bytes([header[i], header[i + 1]]);
        let flags = word(2);
        let [questions, answers, authorities, additionals] = [word(4), word(6), word(8), word(10)];
        if word(0) != self.id {
            return Err(Rejected::NotOurs("wrong message id"));
        }
        if flags & PacketFlag::RESPONSE.bits() == 0 {
            return Err(Rejected::NotOurs("not a response"));
        }
        // Opcode (bits 11–14) must be QUERY, as sent.
        if flags & 0x7800 != 0 {
            return Err(Rejected::NotOurs("not an answer to a standard query"));
        }
        let rcode = flags & 0x000f;
        // A server that rejects the query outright may leave out the
        // question. Taking that on the id alone is safe: an error is never
        // cached and only sends the resolver to its next server.
        if questions == 0 && rcode != RCODE_NO_ERROR && rcode != RCODE_NAME_ERROR {
            return Ok(Reply::ServerFailure { rcode });
        }
        self.check_question(bytes, questions)?;
        if flags & PacketFlag::TRUNCATION.bits() != 0 {
            // The rest may be cut anywhere; TCP brings all of it.
            return Ok(Reply::Truncated);
        }
        match rcode {
            RCODE_NO_ERROR => {}
            RCODE_NAME_ERROR => return Ok(Reply::Negative),
            rcode => return Ok(Reply::ServerFailure { rcode }),
        }
        // Each record takes at least 11 bytes, so counts that promise more
        // than the message holds are a lie; checking first also bounds what
        // the parser allocates for them.
        let records = usize::from(answers) + usize::from(authorities) + usize::from(additionals);
        if HEADER_BYTES + MIN_QUESTION_BYTES + records * MIN_RECORD_BYTES > bytes.len() {
            return Err(Rejected::Malformed(format!(
                "header announces {records} records, more than {} bytes can hold",
                bytes.len()
            )));
        }
        let packet = Packet::parse(bytes)
            .map_err(|e| Rejected::Malformed(format!("cannot parse the answer: {e}")))?;
        self.follow(&packet)
    }

    /// The answer must repeat the question exactly once: same name (in any
    /// case), type and class.
    fn check_question(&self, bytes: &[u8], questions: u16) -> Result<(), Rejected> {
        if questions != 1 {
            return Err(Rejected::NotOurs("not exactly one question"));
        }
        // Parse the header and the question alone (every later count set to
        // zero): in a truncated answer, what follows may be cut short.
        let end = bytes.len().min(HEADER_BYTES + MAX_NAME_CHARS + 2 + 4);
        let mut head = bytes.get(..end).unwrap_or_default().to_vec();
        if let Some(counts) = head.get_mut(6..HEADER_BYTES) {
            counts.fill(0);
        }
        let packet =
            Packet::parse(&head).map_err(|_| Rejected::NotOurs("question does not parse"))?;
        let Some(question) = packet.questions.first() else {
            return Err(Rejected::NotOurs("no question"));
        };
        if u16::from(question.qtype) != self.qtype.code()
            || question.qclass != QCLASS::CLASS(CLASS::IN)
            || !same_name(&question.qname, &self.name)
        {
            return Err(Rejected::NotOurs("answers another question"));
        }
        Ok(())
    }

    /// Follows CNAMEs from the name asked for and collects the records of
    /// the type asked for under the name the chain ends at.
    fn follow(&self, packet: &Packet<'_>) -> Result<Reply, Rejected> {
        let mut current = self.name.clone();
        let mut ttl = u32::MAX;
        let mut hops = 0;
        loop {
            let mut records = Vec::new();
            for rr in &packet.answers {
                if rr.class != CLASS::IN || !same_name(&rr.name, &current) {
                    continue;
                }
                let record = match (&rr.rdata, self.qtype) {
                    (RData::A(a), RecordType::A) => Record::A(Ipv4Addr::from(a.address)),
                    (RData::AAAA(aaaa), RecordType::Aaaa) => {
                        Record::Aaaa(Ipv6Addr::from(aaaa.address))
                    }
                    (RData::SRV(srv), RecordType::Srv) => match srv_target(&srv.target) {
                        Some(target) => Record::Srv(Srv {
                            priority: srv.priority,
                            weight: srv.weight,
                            port: srv.port,
                            target,
                        }),
                        // A target that is no host name cannot be reached;
                        // the other records may still be good.
                        None => continue,
                    },
                    _ => continue,
                };
                if records.len() == MAX_RECORDS {
                    break;
                }
                ttl = ttl.min(rr.ttl);
                records.push(record);
            }
            if !records.is_empty() {
                return Ok(Reply::Records { records, ttl });
            }
            let alias = packet.answers.iter().find_map(|rr| match &rr.rdata {
                RData::CNAME(cname) if rr.class == CLASS::IN && same_name(&rr.name, &current) => {
                    Some((&cname.0, rr.ttl))
                }
                _ => None,
            });
            let Some((target, cname_ttl)) = alias else {
                return Ok(if hops == 0 {
                    Reply::Negative
                } else {
                    Reply::Alias {
                        target: current,
                        hops,
                        ttl,
                    }
                });
            };
            hops += 1;
            if hops > MAX_CNAME_HOPS {
                return Err(Rejected::Malformed(format!(
                    "more than {MAX_CNAME_HOPS} CNAMEs (a loop?)"
                )));
            }
            current = host_name(target).ok_or_else(|| {
                Rejected::Malformed(format!("CNAME of {current} is not a host name"))
            })?;
            ttl = ttl.min(cname_ttl);
        }
    }
}

/// Whether `name` is a host name Perch will ask about: ASCII letters,
/// digits, `-` and `_` (service labels such as `_tcp`), labels of 1 to 63
/// characters, 253 characters at most, no trailing dot.
pub fn check_host_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty name");
    }
    if name.len() > MAX_NAME_CHARS {
        return Err("name longer than 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("empty label");
        }
        if label.len() > MAX_LABEL_CHARS {
            return Err("label longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("not an ASCII host name (an IDN must be given in its xn-- form)");
        }
    }
    Ok(())
}

/// Compares a name from a message with a host name (lower case, no
/// trailing dot), label by label, ignoring ASCII case as DNS does.
fn same_name(name: &Name<'_>, host: &str) -> bool {
    let labels = name.get_labels();
    labels.len() == host.split('.').count()
        && labels
            .iter()
            .zip(host.split('.'))
            .all(|(label, part)| label.as_ref().eq_ignore_ascii_case(part.as_bytes()))
}

/// A name from a message as a host name (lower case), or `None` if it is
/// the root or has characters no host name has.
fn host_name(name: &Name<'_>) -> Option<String> {
    let labels = name.get_labels();
    if labels.is_empty() {
        return None;
    }
    let mut text = String::new();
    for (i, label) in labels.iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        text.push_str(std::str::from_utf8(label.as_ref()).ok()?);
    }
    check_host_name(&text).ok()?;
    text.make_ascii_lowercase();
    Some(text)
}

/// An SRV target: a host name, or `"."` for the root (service not offered).
fn srv_target(name: &Name<'_>) -> Option<String> {
    if name.get_labels().is_empty() {
        Some(".".to_owned())
    } else {
        host_name(name)
    }
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
