//! Message archive queries (XEP-0313), their result sets (XEP-0059) and
//! archiving preferences, from arbitrary XML: parsing never panics; a
//! parsed query and page stay within their bounds; the answer's elements
//! built from them serialize and parse back the same; preferences read
//! back the same from their XML and from their stored bytes; and stored
//! bytes that decode at all encode back to themselves (one encoding per
//! value).
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use perch::archive::prefs::{MAX_JIDS, Prefs};
use perch::archive::rsm::{self, MAX_ID_BYTES, PageRequest, Position, ResultSet};
use perch::archive::{NS_RSM, query};
use perch::xml::{Element, NS_CLIENT};

const DEFAULT: usize = 50;
const CAP: usize = 250;

fn reparsed(el: &Element) -> Element {
    Element::parse(&el.to_string()).expect("a built element parses")
}

fn check_page(page: &PageRequest) {
    assert!(page.max <= CAP);
    match &page.position {
        Position::First | Position::Before(None) => {}
        Position::After(id) => assert!(!id.is_empty() && id.len() <= MAX_ID_BYTES),
        Position::Before(Some(id)) => assert!(!id.is_empty() && id.len() <= MAX_ID_BYTES),
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(prefs) = Prefs::decode(data) {
        assert_eq!(prefs.encode(), data);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(el) = Element::parse(text) else {
        return;
    };

    for set in [Some(&el), el.get_child("set", NS_RSM)] {
        if let Ok(page) = rsm::parse(set, DEFAULT, CAP) {
            check_page(&page);
        }
    }

    if let Ok(q) = query::parse(&el, DEFAULT, CAP) {
        check_page(&q.page);
        assert!(
            q.query_id
                .as_ref()
                .is_none_or(|id| id.len() <= query::MAX_QUERY_ID_BYTES)
        );
        assert!(q.ids.len() <= CAP);
        for (i, id) in q.ids.iter().enumerate() {
            assert!(!id.is_empty() && id.len() <= MAX_ID_BYTES);
            assert!(!q.ids[..i].contains(id), "duplicate id");
        }
        for id in [&q.after_id, &q.before_id].into_iter().flatten() {
            assert!(!id.is_empty() && id.len() <= MAX_ID_BYTES);
        }
        let set = ResultSet {
            first: q.after_id.clone().or_else(|| q.ids.first().cloned()),
            last: q.before_id.clone().or_else(|| q.ids.last().cloned()),
            count: Some(q.page.max as u64),
        };
        let fin = query::fin(q.flip_page, &set);
        assert_eq!(reparsed(&fin), fin);
        let message = Element::new("message", NS_CLIENT).with_child(
            Element::new("body", NS_CLIENT).with_text(q.query_id.clone().unwrap_or_default()),
        );
        let stamp = q.start.unwrap_or(UNIX_EPOCH) + Duration::from_millis(1);
        let id = q.ids.first().map_or("x", String::as_str);
        let result = query::result_wrapper(q.query_id.as_deref(), id, stamp, message);
        assert_eq!(reparsed(&result), result);
    }

    if let Ok(prefs) = Prefs::parse(&el) {
        assert!(prefs.always.len() <= MAX_JIDS && prefs.never.len() <= MAX_JIDS);
        assert!(prefs.always.is_disjoint(&prefs.never));
        assert_eq!(Prefs::decode(&prefs.encode()), Ok(prefs.clone()));
        let xml = prefs.to_element();
        assert_eq!(Prefs::parse(&reparsed(&xml)), Ok(prefs.clone()));
        for jid in &prefs.always {
            assert!(prefs.archives(jid, false));
        }
        for jid in &prefs.never {
            assert!(!prefs.archives(jid, true));
        }
    }
});
