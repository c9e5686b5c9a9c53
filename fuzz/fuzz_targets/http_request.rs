//! HTTP/1.1 request heads from arbitrary bytes (the listener's first
//! contact with the network): parsing never panics, a parsed head never
//! claims more bytes than it was given, a head is refused once it passes
//! the limit, and decoding a path segment never yields a separator.
#![no_main]

use libfuzzer_sys::fuzz_target;
use perch::http::request::{decode_segment, parse_head};

const LIMIT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    match parse_head(data, LIMIT) {
        Ok(Some((head, len))) => {
            assert!(len <= data.len() && len <= LIMIT);
            for segment in head.path.split('/') {
                if let Some(decoded) = decode_segment(segment) {
                    assert!(!decoded.contains(['/', '\\', '\0']));
                }
            }
            let _ = perch::http::upgrade::check(&head, &[]);
        }
        Ok(None) => assert!(data.len() < LIMIT),
        Err(_) => {}
    }
});
