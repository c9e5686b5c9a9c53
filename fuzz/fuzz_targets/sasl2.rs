//! What a client sends in SASL2 (XEP-0388) and what FAST (XEP-0484) reads:
//! `<authenticate/>` with its inline requests (Bind 2, a resumption, FAST),
//! an HT initial response, and a stored token record.
//!
//! Input: a selector byte, then the data. Selector bit 0 clear: the data
//! is XML, read as an element and given to `parse_authenticate` (and to
//! Bind 2's parser, for a `<bind/>`); set: the data is an HT message and a
//! token record.
//!
//! Properties: nothing panics; an accepted request keeps its promises (a
//! user-agent id is a lower-case UUID, a Bind 2 tag is at most
//! `MAX_TAG_BYTES` and a valid resource, a FAST count is positive), and a
//! refusal says why; an HT message is accepted only with a 32-byte proof
//! after a non-empty UTF-8 authcid; a token record that decodes encodes
//! back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use perch::sasl::fast::{TokenRecord, parse_response};
use perch::stream::bind2::{self, MAX_TAG_BYTES, NS_BIND2};
use perch::stream::sasl2::{NS_SASL2, parse_authenticate, uuid};
use perch::xml::Element;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    if selector & 1 == 0 {
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        let Ok(el) = Element::parse(text) else {
            return;
        };
        if el.is("bind", NS_BIND2) {
            if let Ok(request) = bind2::parse(&el) {
                check_tag(request.tag.as_deref());
            }
        }
        if !el.is("authenticate", NS_SASL2) {
            return;
        }
        match parse_authenticate(&el) {
            Err(refused) => assert!(!refused.text.is_empty(), "a refusal says why"),
            Ok(auth) => {
                assert!(!auth.mechanism.is_empty() && auth.mechanism.len() <= 20);
                if let Some(id) = auth.user_agent.and_then(|ua| ua.id) {
                    assert_eq!(uuid(&id).as_deref(), Some(id.as_str()), "{id}");
                    assert_eq!(id, id.to_ascii_lowercase());
                }
                check_tag(auth.inline.bind.and_then(|b| b.tag).as_deref());
                if let Some(count) = auth.inline.fast.and_then(|f| f.count) {
                    assert!(count > 0);
                }
            }
        }
    } else {
        if let Some(response) = parse_response(rest) {
            assert_eq!(response.proof.len(), 32);
            assert!(!response.authcid.is_empty() && !response.authcid.contains('\0'));
        }
        if let Some(record) = TokenRecord::decode(rest) {
            assert_eq!(record.encode(), rest, "decode then encode is the identity");
        }
    }
});

fn check_tag(tag: Option<&str>) {
    if let Some(tag) = tag {
        assert!(!tag.is_empty() && tag.len() <= MAX_TAG_BYTES, "{tag:?}");
        assert!(perch::jid::prep_resource_strict(tag).is_ok(), "{tag:?}");
    }
}
