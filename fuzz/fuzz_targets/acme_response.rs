//! ACME responses (`perch::acme`): the bytes a CA sends, first as a whole
//! HTTP response (`wire::parse_response`), then its body and the input
//! itself through every JSON document parser, and finally as a series of
//! responses driving one issuance.
//!
//! Properties: nothing panics; a parsed response's body is bounded; parsed
//! challenge tokens are base64url; an issuance fed any responses ends
//! (`Issued` or `Failed`) or asks for another request, and never sends a
//! POST without a body.
#![no_main]

use std::rc::Rc;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use perch::acme::jws::{AccountKey, is_base64url};
use perch::acme::messages;
use perch::acme::order::{Issuance, Settings, Step};
use perch::acme::wire::{self, Method, Response};

fn documents(body: &[u8]) {
    let _ = messages::parse_problem(body);
    let _ = messages::parse_directory(body);
    let _ = messages::parse_order(body);
    if let Ok(authz) = messages::parse_authorization(body) {
        if let Some(challenge) = authz.http01 {
            assert!(is_base64url(&challenge.token));
        }
    }
    if let Ok(challenge) = messages::parse_challenge(body) {
        assert!(is_base64url(&challenge.token));
    }
}

fn key_pkcs8() -> &'static [u8] {
    static KEY: OnceLock<Vec<u8>> = OnceLock::new();
    KEY.get_or_init(|| AccountKey::generate().expect("key").pkcs8().to_vec())
}

/// Splits the input at 0xff bytes: each piece is one response's body,
/// its first byte choosing the status and headers.
fn issuance(data: &[u8]) {
    let key = Rc::new(AccountKey::from_pkcs8(key_pkcs8()).expect("key"));
    let settings = Settings {
        directory: "https://ca.test/dir".to_owned(),
        email: None,
        poll_interval: Duration::from_secs(1),
        max_polls: 3,
    };
    let mut issuance = Issuance::new(
        key,
        vec![
            "example.org".to_owned(),
            "conference.example.org".to_owned(),
        ],
        settings,
    );
    let mut step = issuance.start();
    for piece in data.split(|&b| b == 0xff).take(64) {
        let Step::Send(request) = step else {
            return;
        };
        if request.method == Method::Post {
            assert!(request.body.is_some(), "a POST without a JWS");
        }
        let (&selector, body) = piece.split_first().unwrap_or((&0, &[]));
        let response = Response {
            status: [200, 201, 400, 429, 500][usize::from(selector % 5)],
            location: (selector & 8 != 0).then(|| "https://ca.test/x/1".to_owned()),
            replay_nonce: (selector & 16 != 0).then(|| format!("n{selector}")),
            retry_after: (selector & 32 != 0).then(|| Duration::from_secs(u64::from(selector))),
            body: body.to_vec(),
        };
        step = issuance.on_response(response);
    }
}

fuzz_target!(|data: &[u8]| {
    for head_only in [false, true] {
        if let Ok(Some(response)) = wire::parse_response(data, head_only) {
            assert!(response.body.len() <= data.len());
            documents(&response.body);
        }
    }
    documents(data);
    issuance(data);
});
