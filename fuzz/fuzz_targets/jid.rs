//! JID parsing and normalization: never panics, and normalizing is
//! idempotent (a parsed JID's string parses to the same JID).
#![no_main]

use libfuzzer_sys::fuzz_target;
use perch::jid::Jid;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(jid) = Jid::parse(text) else {
        return;
    };
    let again = Jid::parse(jid.as_str()).expect("a normalized JID parses");
    assert_eq!(again, jid);
    let bare = jid.to_bare();
    assert_eq!(
        Jid::parse(bare.as_str()).expect("its bare JID parses"),
        bare
    );
});
