use super::*;

fn el(xml: &str) -> Element {
    Element::parse(xml).expect("test xml")
}

#[test]
fn commands_are_read() {
    assert_eq!(
        parse(&el(
            "<enable xmlns='urn:xmpp:sm:3' resume='true' max='600'/>"
        )),
        Ok(Command::Enable {
            resume: true,
            max: Some(600)
        })
    );
    assert_eq!(
        parse(&el("<enable xmlns='urn:xmpp:sm:3' resume='1' max='soon'/>")),
        Ok(Command::Enable {
            resume: true,
            max: None
        })
    );
    assert_eq!(
        parse(&el("<enable xmlns='urn:xmpp:sm:3'/>")),
        Ok(Command::Enable {
            resume: false,
            max: None
        })
    );
    assert_eq!(
        parse(&el(
            "<resume xmlns='urn:xmpp:sm:3' previd='x' h='4294967295'/>"
        )),
        Ok(Command::Resume {
            previd: "x".into(),
            h: u32::MAX
        })
    );
    assert_eq!(
        parse(&el("<r xmlns='urn:xmpp:sm:3'/>")),
        Ok(Command::Request)
    );
    assert_eq!(
        parse(&el("<a xmlns='urn:xmpp:sm:3' h='7'/>")),
        Ok(Command::Ack(7))
    );
}

#[test]
fn bad_counters_and_unknown_elements_are_refused() {
    for xml in [
        "<a xmlns='urn:xmpp:sm:3'/>",
        "<a xmlns='urn:xmpp:sm:3' h='-1'/>",
        "<a xmlns='urn:xmpp:sm:3' h='4294967296'/>",
        "<a xmlns='urn:xmpp:sm:3' h='lots'/>",
        "<resume xmlns='urn:xmpp:sm:3' previd='x' h='99999999999999999999'/>",
        "<resume xmlns='urn:xmpp:sm:3' h='1'/>",
        "<resume xmlns='urn:xmpp:sm:3' previd='' h='1'/>",
    ] {
        let e = parse(&el(xml)).expect_err(xml);
        assert!(matches!(e, BadCommand::BadAttribute(_)), "{xml}");
        assert_eq!(e.stream_error().condition, StreamCondition::InvalidXml);
    }
    let e = parse(&el("<enabled xmlns='urn:xmpp:sm:3'/>")).expect_err("server element");
    assert_eq!(
        e.stream_error().condition,
        StreamCondition::UnsupportedStanzaType
    );
}

#[test]
fn acks_drop_what_was_handled_in_order() {
    let mut q = Unacked::default();
    for s in ["<a1/>", "<a2/>", "<a3/>"] {
        q.sent(s.as_bytes());
    }
    assert_eq!(q.ack(1), Ok(1));
    assert_eq!(q.stanzas(), vec![b"<a2/>".to_vec(), b"<a3/>".to_vec()]);
    // A repeated or stale ack changes nothing.
    assert_eq!(q.ack(1), Ok(0));
    assert_eq!(q.ack(0), Ok(0));
    let mut all = Vec::new();
    q.write_all(&mut all);
    assert_eq!(all, b"<a2/><a3/>");
    assert_eq!(q.ack(3), Ok(2));
    assert!(q.is_empty());
    assert_eq!(q.byte_len(), 0);
    assert_eq!(q.sent_count(), 3);
}

#[test]
fn an_ack_of_more_than_was_sent_is_an_error() {
    let mut q = Unacked::default();
    q.sent(b"<m/>");
    q.sent(b"<m/>");
    let err = q.ack(10).expect_err("too high");
    assert_eq!(err, TooHigh { h: 10, sent: 2 });
    // Nothing was dropped.
    assert_eq!(q.len(), 2);
    let e = err.stream_error();
    assert_eq!(e.condition, StreamCondition::UndefinedCondition);
    let mut out = Vec::new();
    e.write_to(&mut out);
    let text = String::from_utf8(out).expect("utf-8");
    assert!(
        text.contains("<handled-count-too-high xmlns='urn:xmpp:sm:3' h='10' send-count='2'/>"),
        "{text}"
    );
    // One more than sent is too high as well.
    assert!(q.ack(3).is_err());
}

#[test]
fn counters_wrap_at_two_to_the_32() {
    let mut q = Unacked::restore(u32::MAX - 1, Vec::new());
    q.sent(b"<x1/>"); // sent = 2^32-1
    q.sent(b"<x2/>"); // sent wraps to 0
    q.sent(b"<x3/>"); // 1
    assert_eq!(q.sent_count(), 1);
    assert_eq!(q.ack(u32::MAX), Ok(1));
    assert_eq!(q.ack(0), Ok(1));
    assert_eq!(q.stanzas(), vec![b"<x3/>".to_vec()]);
    assert_eq!(q.ack(2), Err(TooHigh { h: 2, sent: 1 }));
    assert_eq!(q.ack(1), Ok(1));
    assert!(q.is_empty());
}

#[test]
fn a_restored_queue_continues_the_count() {
    let mut q = Unacked::restore(10, vec![b"<m8/>".to_vec(), b"<m9/>".to_vec()]);
    assert_eq!(q.len(), 2);
    assert_eq!(q.sent_count(), 10);
    assert_eq!(q.ack(9), Ok(1));
    assert_eq!(q.take_all(), vec![b"<m9/>".to_vec()]);
    assert!(q.is_empty());
}

#[test]
fn the_server_asks_for_acks_by_count_one_at_a_time() {
    let mut sm = StreamManagement::new(None, Duration::from_secs(300));
    assert!(!sm.should_request(5));
    for _ in 0..5 {
        sm.sent(b"<m/>");
    }
    assert!(sm.should_request(5));
    assert!(!sm.should_request(0), "0 never asks by count");
    let mut out = Vec::new();
    sm.request(&mut out);
    assert_eq!(out, b"<r xmlns='urn:xmpp:sm:3'/>");
    for _ in 0..10 {
        sm.sent(b"<m/>");
    }
    assert!(!sm.should_request(5), "one request outstanding at a time");
    assert_eq!(sm.ack(15), Ok(15));
    assert!(sm.should_request(5));
}

#[test]
fn protocol_elements_are_written() {
    let mut out = Vec::new();
    write_enabled(&mut out, Some("a'b"), 300);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "<enabled xmlns='urn:xmpp:sm:3' id='a&apos;b' resume='true' max='300'/>"
    );
    out.clear();
    write_enabled(&mut out, None, 300);
    assert_eq!(out, b"<enabled xmlns='urn:xmpp:sm:3'/>");
    out.clear();
    write_failed(&mut out, "item-not-found", Some(3));
    assert_eq!(
        String::from_utf8_lossy(&out),
        "<failed xmlns='urn:xmpp:sm:3' h='3'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"
    );
    out.clear();
    write_resumed(&mut out, "id", 4);
    assert_eq!(
        out,
        b"<resumed xmlns='urn:xmpp:sm:3' previd='id' h='4'/>".to_vec()
    );
    for xml in [
        String::from_utf8_lossy(&out).into_owned(),
        "<a xmlns='urn:xmpp:sm:3' h='1'/>".into(),
    ] {
        Element::parse(&xml).expect("well-formed");
    }
}

#[test]
fn offline_messages_are_released_once_acknowledged() {
    let mut sm = StreamManagement::new(None, Duration::from_secs(300));
    let pending = |threshold, through| OfflinePending {
        threshold,
        after: through - 1,
        through,
        count: 1,
        bytes: 10,
    };
    sm.offline_pending = vec![
        pending(u32::MAX - 1, 1),
        pending(u32::MAX, 2),
        pending(1, 3),
    ];
    assert!(sm.take_acknowledged_offline(u32::MAX - 2).is_empty());
    assert_eq!(
        sm.take_acknowledged_offline(u32::MAX - 1),
        vec![pending(u32::MAX - 1, 1)]
    );
    // Across the wrap: 2^32-1, then 0, then 1.
    assert_eq!(sm.take_acknowledged_offline(0), vec![pending(u32::MAX, 2)]);
    assert_eq!(sm.take_acknowledged_offline(1), vec![pending(1, 3)]);
    assert!(sm.offline_pending.is_empty());
}

#[test]
fn only_what_an_ack_was_asked_for_is_overdue() {
    let mut sm = StreamManagement::new(None, Duration::from_secs(300));
    for _ in 0..3 {
        sm.sent(b"<m/>");
    }
    assert_eq!(sm.overdue(), 0, "nothing asked yet");
    let mut out = Vec::new();
    sm.request(&mut out);
    for _ in 0..100 {
        sm.sent(b"<m/>");
    }
    assert_eq!(sm.overdue(), 3, "the burst after the request is not");
    assert_eq!(sm.ack(2), Ok(2));
    assert_eq!(sm.overdue(), 1);
    assert_eq!(sm.ack(50), Ok(48));
    assert_eq!(sm.overdue(), 0);
}
