//! Pubsub requests (XEP-0060), node configurations, entity capabilities
//! (XEP-0115) and the bookmark and avatar conversions, from arbitrary
//! bytes: parsing never panics; parsed names stay within their bounds;
//! stored node records and configurations read back as they were written;
//! a configuration that accepted a form keeps within the item limit and
//! renders a form that parses; conversions are bounded and round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use perch::forms::Form;
use perch::im::caps;
use perch::pubsub::config::NodeConfig;
use perch::pubsub::request::{self, MAX_IDS, MAX_NAME_BYTES, Request};
use perch::pubsub::{avatar, bookmarks};
use perch::store::pubsub::NodeRecord;
use perch::xml::Element;

const LIMIT: u32 = 256;

fn name_ok(name: &str) {
    assert!(!name.is_empty() && name.len() <= MAX_NAME_BYTES && !name.contains('\0'));
}

fn check_request(r: &Request) {
    match r {
        Request::Publish { node, id, .. } => {
            name_ok(node);
            id.as_deref().map(name_ok);
        }
        Request::Retract { node, ids, .. } | Request::Items { node, ids, .. } => {
            name_ok(node);
            assert!(ids.len() <= MAX_IDS);
            ids.iter().for_each(|i| name_ok(i));
        }
        Request::Create { node, .. } => {
            node.as_deref().map(name_ok);
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = NodeRecord::decode(data) {
        assert_eq!(NodeRecord::decode(&record.encode()).ok(), Some(record));
    }
    if let Ok(config) = NodeConfig::decode(data) {
        assert_eq!(NodeConfig::decode(&config.encode()).ok(), Some(config));
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(el) = Element::parse(text) else {
        return;
    };
    for set in [false, true] {
        if let Ok(r) = request::parse(&el, set) {
            check_request(&r);
        }
    }
    if let Ok(form) = Form::parse(&el) {
        for base in [NodeConfig::pep_default(), NodeConfig::service_default()] {
            let mut config = base.clone();
            if config.apply(&form, LIMIT).is_ok() {
                assert!(config.max_items(LIMIT) <= LIMIT as usize);
                let rendered = config.to_form(LIMIT);
                assert!(Element::parse(&rendered.to_string()).is_ok());
                assert_eq!(
                    NodeConfig::decode(&config.encode()).ok(),
                    Some(config.clone())
                );
            } else {
                assert_eq!(config, base, "a refused form changed nothing");
            }
            if let Ok(created) = NodeConfig::from_publish_options(base.clone(), &form, LIMIT) {
                assert!(created.max_items(LIMIT) <= LIMIT as usize);
                // The options a node was created with are its preconditions.
                assert!(created.check_preconditions(&form, LIMIT).is_ok());
            }
        }
    }
    if let Some(claim) = caps::claim_of(&el) {
        assert!(claim.node.len() <= caps::MAX_CLAIM_LEN && claim.ver.len() <= caps::MAX_CLAIM_LEN);
    }
    if let Ok(s) = caps::verification_string(&el) {
        let features = caps::Features::from_info(&el);
        assert!(features.len() <= caps::MAX_INFO_ENTRIES);
        assert!(!s.is_empty() || features.is_empty());
    }
    let marks = bookmarks::from_legacy(&el);
    assert!(marks.len() <= bookmarks::MAX_BOOKMARKS);
    let legacy = bookmarks::to_legacy(&marks, &bookmarks::legacy_extras(&el));
    assert_eq!(bookmarks::from_legacy(&legacy), marks);
    for b in &marks {
        let payload = bookmarks::to_item_payload(b);
        assert_eq!(bookmarks::from_item(&b.room, &payload).as_ref(), Some(b));
    }
    let _ = avatar::from_vcard(&el);
    if let Ok(Some(info)) = avatar::metadata_info(&el) {
        let _ = avatar::from_data(&el, &info);
    }
});
