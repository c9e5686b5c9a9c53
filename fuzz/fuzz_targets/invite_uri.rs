//! Invitation URIs, tokens and expiry texts from arbitrary input: none of
//! the parsers panics, a token they accept is well formed, and an expiry
//! they accept is within its bounds and is written back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use perch::invite::{token, uri};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(parsed) = uri::parse_uri(text) {
        assert!(!parsed.jid.is_empty());
        assert!(!parsed.action.is_empty());
        if let Some(t) = parsed.preauth.as_deref() {
            let _ = token::is_well_formed(t);
        }
    }
    if token::is_well_formed(text) {
        assert_eq!(text.len(), token::TOKEN_CHARS);
    }
    if let Ok(secs) = uri::parse_expiry(text) {
        assert!(secs > 0 && secs <= uri::MAX_EXPIRY_SECS);
        assert_eq!(uri::parse_expiry(&uri::format_expiry(secs)), Ok(secs));
    }
    let _ = uri::percent_decode(text);
});
