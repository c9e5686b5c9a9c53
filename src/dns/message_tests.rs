//! Tests of query building and answer checking, with answers built by
//! `simple-dns` (and then damaged by hand where a test needs it).

use std::net::{Ipv4Addr, Ipv6Addr};

use simple_dns::rdata::{A, AAAA, CNAME, RData, SRV};
use simple_dns::{CLASS, Name, Packet, PacketFlag, QCLASS, QTYPE, Question, RCODE, ResourceRecord};

use super::*;

const ID: u16 = 0x4a1f;

fn query(name: &str, qtype: RecordType) -> Query {
    Query::new(ID, name, qtype).unwrap()
}

/// An answer to `q` (id, flags and question copied) with `records`.
fn answer(q: &Query, records: Vec<ResourceRecord<'static>>) -> Vec<u8> {
    answer_with(q, RCODE::NoError, records, |_| {})
}

fn answer_with(
    q: &Query,
    rcode: RCODE,
    records: Vec<ResourceRecord<'static>>,
    edit: impl FnOnce(&mut Packet<'static>),
) -> Vec<u8> {
    let mut packet = Packet::new_reply(q.id);
    packet.set_flags(PacketFlag::RECURSION_DESIRED | PacketFlag::RECURSION_AVAILABLE);
    *packet.rcode_mut() = rcode;
    packet.questions.push(Question::new(
        Name::new_unchecked(&q.name).into_owned(),
        QTYPE::TYPE(TYPE::from(q.qtype.code())),
        QCLASS::CLASS(CLASS::IN),
        false,
    ));
    packet.answers = records;
    edit(&mut packet);
    packet.build_bytes_vec_compressed().unwrap()
}

fn rr(name: &str, ttl: u32, rdata: RData<'static>) -> ResourceRecord<'static> {
    ResourceRecord::new(Name::new(name).unwrap().into_owned(), CLASS::IN, ttl, rdata)
}

fn a(name: &str, ttl: u32, ip: [u8; 4]) -> ResourceRecord<'static> {
    rr(
        name,
        ttl,
        RData::A(A {
            address: u32::from(Ipv4Addr::from(ip)),
        }),
    )
}

fn cname(name: &str, ttl: u32, target: &str) -> ResourceRecord<'static> {
    rr(
        name,
        ttl,
        RData::CNAME(CNAME(Name::new(target).unwrap().into_owned())),
    )
}

fn srv(name: &str, priority: u16, weight: u16, port: u16, target: &str) -> ResourceRecord<'static> {
    rr(
        name,
        300,
        RData::SRV(SRV {
            priority,
            weight,
            port,
            target: Name::new(target).unwrap().into_owned(),
        }),
    )
}

fn srv_record(priority: u16, weight: u16, port: u16, target: &str) -> Record {
    Record::Srv(Srv {
        priority,
        weight,
        port,
        target: target.into(),
    })
}

#[test]
fn query_bytes() {
    let q = query("_xmpp-server._tcp.Example.ORG.", RecordType::Srv);
    assert_eq!(q.name, "_xmpp-server._tcp.example.org");
    assert_eq!(q.label(), "_xmpp-server._tcp.example.org SRV");
    let bytes = q.to_bytes().unwrap();
    let parsed = Packet::parse(&bytes).unwrap();
    assert_eq!(parsed.id(), ID);
    assert!(parsed.has_flags(PacketFlag::RECURSION_DESIRED));
    assert!(!parsed.has_flags(PacketFlag::RESPONSE));
    assert!(parsed.opt().is_none());
    assert_eq!(parsed.questions.len(), 1);
    assert_eq!(
        parsed.questions[0].qname.to_string(),
        "_xmpp-server._tcp.example.org"
    );
    assert_eq!(u16::from(parsed.questions[0].qtype), 33);
}

#[test]
fn query_names_checked() {
    for bad in [
        "",
        ".",
        "a..b",
        ".a",
        "exa mple.org",
        "ex\\.ample.org",
        "bücher.example",
        "a/b",
        &"a".repeat(64),
        &["abc"; 64].join("."),
    ] {
        let err = Query::new(ID, bad, RecordType::A).unwrap_err();
        assert!(matches!(err, DnsError::Malformed { .. }), "{bad:?}");
    }
    for good in [
        "localhost",
        "xn--bcher-kva.example",
        "_xmpps-client._tcp.a-b.example.",
        &"a".repeat(63),
    ] {
        assert!(Query::new(ID, good, RecordType::A).is_ok(), "{good:?}");
    }
}

#[test]
fn srv_answer() {
    let q = query("_xmpp-server._tcp.example.org", RecordType::Srv);
    let bytes = answer(
        &q,
        vec![
            srv(
                "_xmpp-server._tcp.example.org",
                10,
                5,
                5269,
                "xmpp1.example.org",
            ),
            srv(
                "_XMPP-server._tcp.EXAMPLE.org",
                20,
                0,
                5270,
                "XMPP2.example.org.",
            ),
        ],
    );
    assert_eq!(
        q.read_reply(&bytes),
        Ok(Reply::Records {
            records: vec![
                srv_record(10, 5, 5269, "xmpp1.example.org"),
                srv_record(20, 0, 5270, "xmpp2.example.org"),
            ],
            ttl: 300,
        })
    );
}

#[test]
fn srv_root_target_and_bad_targets() {
    let q = query("_xmpps-server._tcp.example.org", RecordType::Srv);
    let bytes = answer(
        &q,
        vec![srv("_xmpps-server._tcp.example.org", 0, 0, 0, ".")],
    );
    assert_eq!(
        q.read_reply(&bytes),
        Ok(Reply::Records {
            records: vec![srv_record(0, 0, 0, ".")],
            ttl: 300,
        })
    );
    let bytes = answer(
        &q,
        vec![
            srv(
                "_xmpps-server._tcp.example.org",
                0,
                0,
                5223,
                "bad\\032name.example",
            ),
            srv("_xmpps-server._tcp.example.org", 1, 0, 5223, "good.example"),
        ],
    );
    assert_eq!(
        q.read_reply(&bytes),
        Ok(Reply::Records {
            records: vec![srv_record(1, 0, 5223, "good.example")],
            ttl: 300,
        })
    );
}

#[test]
fn address_answers_ignore_other_names_and_types() {
    let q = query("host.example", RecordType::A);
    let bytes = answer(
        &q,
        vec![
            a("other.example", 50, [10, 0, 0, 1]),
            a("host.example", 120, [192, 0, 2, 1]),
            rr(
                "host.example",
                10,
                RData::AAAA(AAAA {
                    address: u128::from(Ipv6Addr::LOCALHOST),
                }),
            ),
            a("HOST.example", 90, [192, 0, 2, 2]),
        ],
    );
    assert_eq!(
        q.read_reply(&bytes),
        Ok(Reply::Records {
            records: vec![
                Record::A(Ipv4Addr::new(192, 0, 2, 1)),
                Record::A(Ipv4Addr::new(192, 0, 2, 2)),
            ],
            ttl: 90,
        })
    );
    let q6 = query("host.example", RecordType::Aaaa);
    let bytes = answer(
        &q6,
        vec![rr(
            "host.example",
            10,
            RData::AAAA(AAAA {
                address: u128::from(Ipv6Addr::LOCALHOST),
            }),
        )],
    );
    assert_eq!(
        q6.read_reply(&bytes),
        Ok(Reply::Records {
            records: vec![Record::Aaaa(Ipv6Addr::LOCALHOST)],
            ttl: 10,
        })
    );
}

#[test]
fn at_most_max_records() {
    let q = query("many.example", RecordType::A);
    let records = (0..200u32)
        .map(|i| a("many.example", 60, (0x0a00_0000 + i).to_be_bytes()))
        .collect();
    let Ok(Reply::Records { records, .. }) = q.read_reply(&answer(&q, records)) else {
        panic!("expected records");
    };
    assert_eq!(records.len(), MAX_RECORDS);
    assert_eq!(records[0], Record::A(Ipv4Addr::new(10, 0, 0, 0)));
}

#[test]
fn negative_answers() {
    let q = query("nowhere.example", RecordType::Srv);
    let nxdomain = answer_with(&q, RCODE::NameError, vec![], |_| {});
    assert_eq!(q.read_reply(&nxdomain), Ok(Reply::Negative));
    let nodata = answer(&q, vec![a("nowhere.example", 60, [1, 2, 3, 4])]);
    assert_eq!(q.read_reply(&nodata), Ok(Reply::Negative));
}

#[test]
fn server_failures() {
    let q = query("broken.example", RecordType::A);
    let servfail = answer_with(&q, RCODE::ServerFailure, vec![], |_| {});
    assert_eq!(
        q.read_reply(&servfail),
        Ok(Reply::ServerFailure { rcode: 2 })
    );
    // REFUSED without the question is still taken (it only moves on).
    let refused = answer_with(&q, RCODE::Refused, vec![], |p| p.questions.clear());
    assert_eq!(
        q.read_reply(&refused),
        Ok(Reply::ServerFailure { rcode: 5 })
    );
    // …but a success or NXDOMAIN must repeat the question.
    let bare = answer_with(&q, RCODE::NameError, vec![], |p| p.questions.clear());
    assert!(matches!(q.read_reply(&bare), Err(Rejected::NotOurs(_))));
}

#[test]
fn cname_chains() {
    let q = query("alias.example", RecordType::A);
    let bytes = answer(
        &q,
        vec![
            cname("alias.example", 300, "middle.example"),
            cname("Middle.example", 100, "real.example"),
            a("real.example", 200, [192, 0, 2, 9]),
            a("alias.example.evil", 200, [6, 6, 6, 6]),
        ],
    );
    assert_eq!(
        q.read_reply(&bytes),
        Ok(Reply::Records {
            records: vec![Record::A(Ipv4Addr::new(192, 0, 2, 9))],
            ttl: 100,
        })
    );
    // The chain ends without records: the caller asks for the end.
    let bytes = answer(&q, vec![cname("alias.example", 300, "elsewhere.example")]);
    assert_eq!(
        q.read_reply(&bytes),
        Ok(Reply::Alias {
            target: "elsewhere.example".into(),
            hops: 1,
            ttl: 300,
        })
    );
    // A CNAME to something that is no host name.
    let bytes = answer(&q, vec![cname("alias.example", 300, "bad\\032name")]);
    assert!(matches!(q.read_reply(&bytes), Err(Rejected::Malformed(_))));
}

#[test]
fn cname_hops_limited() {
    let chain = |hops: usize| {
        let q = query("n0.example", RecordType::A);
        let mut records: Vec<_> = (0..hops)
            .map(|i| cname(&format!("n{i}.example"), 60, &format!("n{}.example", i + 1)))
            .collect();
        records.push(a(&format!("n{hops}.example"), 60, [192, 0, 2, 1]));
        q.read_reply(&answer(&q, records))
    };
    assert!(matches!(chain(MAX_CNAME_HOPS), Ok(Reply::Records { .. })));
    assert!(matches!(
        chain(MAX_CNAME_HOPS + 1),
        Err(Rejected::Malformed(_))
    ));
    let q = query("loop.example", RecordType::A);
    let looping = answer(
        &q,
        vec![
            cname("loop.example", 60, "pool.example"),
            cname("pool.example", 60, "loop.example"),
        ],
    );
    assert!(matches!(
        q.read_reply(&looping),
        Err(Rejected::Malformed(_))
    ));
}

#[test]
fn wrong_id_or_question_is_not_ours() {
    let q = query("host.example", RecordType::A);
    let good = answer(&q, vec![a("host.example", 60, [192, 0, 2, 1])]);
    assert!(matches!(q.read_reply(&good), Ok(Reply::Records { .. })));

    let other_id = Query {
        id: ID ^ 1,
        ..q.clone()
    };
    assert_eq!(
        other_id.read_reply(&good),
        Err(Rejected::NotOurs("wrong message id"))
    );
    for other in [
        query("other.example", RecordType::A),
        query("host.example.evil", RecordType::A),
        query("host.example", RecordType::Aaaa),
    ] {
        let spoof = answer(&other, vec![a("host.example", 60, [6, 6, 6, 6])]);
        assert_eq!(
            q.read_reply(&spoof),
            Err(Rejected::NotOurs("answers another question")),
            "{other:?}"
        );
    }
    // Two questions, no question, a query instead of a response.
    let two = answer_with(&q, RCODE::NoError, vec![], |p| {
        p.questions.push(p.questions[0].clone())
    });
    assert!(matches!(q.read_reply(&two), Err(Rejected::NotOurs(_))));
    let none = answer_with(&q, RCODE::NoError, vec![], |p| p.questions.clear());
    assert!(matches!(q.read_reply(&none), Err(Rejected::NotOurs(_))));
    let echoed = q.to_bytes().unwrap();
    assert_eq!(
        q.read_reply(&echoed),
        Err(Rejected::NotOurs("not a response"))
    );
    // The answer may write the name in any case (0x20 randomization).
    let upper = answer(
        &query("HOST.EXAMPLE", RecordType::A),
        vec![a("host.example", 60, [192, 0, 2, 1])],
    );
    let mut upper = upper;
    // Query::new lower-cased the name; put capitals back on the wire.
    upper[13..17].copy_from_slice(b"HOST");
    assert!(matches!(q.read_reply(&upper), Ok(Reply::Records { .. })));
}

#[test]
fn truncated_answers() {
    let q = query("big.example", RecordType::Srv);
    let records = (0..40)
        .map(|i| srv("big.example", i, 1, 5269, &format!("host{i}.big.example")))
        .collect();
    let mut bytes = answer_with(&q, RCODE::NoError, records, |p| {
        p.set_flags(PacketFlag::TRUNCATION)
    });
    // Cut in the middle of a record, counts left as they were.
    bytes.truncate(200);
    assert_eq!(q.read_reply(&bytes), Ok(Reply::Truncated));
    // Truncated to the question alone.
    let head = answer_with(&q, RCODE::NoError, vec![], |p| {
        p.set_flags(PacketFlag::TRUNCATION)
    });
    assert_eq!(q.read_reply(&head), Ok(Reply::Truncated));
    // A truncated answer must still repeat the question.
    let other = query("small.example", RecordType::Srv);
    let spoof = answer_with(&other, RCODE::NoError, vec![], |p| {
        p.set_flags(PacketFlag::TRUNCATION)
    });
    assert!(matches!(q.read_reply(&spoof), Err(Rejected::NotOurs(_))));
}

#[test]
fn oversized_short_and_lying_answers() {
    let q = query("host.example", RecordType::A);
    let mut huge = answer(&q, vec![a("host.example", 60, [192, 0, 2, 1])]);
    huge.resize(MAX_MESSAGE_BYTES + 1, 0);
    assert!(matches!(q.read_reply(&huge), Err(Rejected::Malformed(_))));
    // Trailing bytes within the limit are tolerated.
    huge.truncate(MAX_MESSAGE_BYTES);
    assert!(matches!(q.read_reply(&huge), Ok(Reply::Records { .. })));

    assert!(matches!(q.read_reply(&[]), Err(Rejected::NotOurs(_))));
    assert!(matches!(
        q.read_reply(&[0x4a, 0x1f, 0x80]),
        Err(Rejected::NotOurs(_))
    ));

    // The header promises 65 535 answers.
    let mut lying = answer(&q, vec![a("host.example", 60, [192, 0, 2, 1])]);
    lying[6] = 0xff;
    lying[7] = 0xff;
    assert!(matches!(q.read_reply(&lying), Err(Rejected::Malformed(_))));
    // One answer announced, none there.
    let mut short = answer(&q, vec![]);
    short[7] = 1;
    short.extend_from_slice(&[0; 11]);
    assert!(matches!(q.read_reply(&short), Err(Rejected::Malformed(_))));
}

#[test]
fn every_prefix_and_byte_flip_is_handled() {
    let q = query("alias.example", RecordType::A);
    let bytes = answer(
        &q,
        vec![
            cname("alias.example", 300, "real.example"),
            a("real.example", 200, [192, 0, 2, 9]),
        ],
    );
    for end in 0..bytes.len() {
        // Must not panic; most prefixes are malformed.
        let _ = q.read_reply(&bytes[..end]);
    }
    for i in 0..bytes.len() {
        for flip in [0x01, 0x40, 0x80, 0xff] {
            let mut damaged = bytes.clone();
            damaged[i] ^= flip;
            let _ = q.read_reply(&damaged);
        }
    }
}
