use super::*;

/// A 72-byte token of 'a's: long enough that HMAC keys itself with its
/// SHA-256, as every issued token is.
fn long_token() -> String {
    "a".repeat(72)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// The expected values were computed outside this code, with Python's
// standard library (`hmac.new(b'a' * 72, b'Initiator', hashlib.sha256)`,
// likewise "Responder" and "Initiator" followed by the bytes 0..32) and
// checked with `openssl dgst -sha256 -hmac`.
const INITIATOR: &str = "6318273d01cb19d97598a3979ee7be2e12195fb1b98bf9e9bace7e6d0aab91a3";
const RESPONDER: &str = "5dc7eadd7570156bbc2aad199597dae39cb858beef8ad5800bae8541c275245f";
const INITIATOR_WITH_CB: &str = "9d87c3be1bdd277419bcbd31f6a1baae9c7c4338320e069f0ced742d06a671ca";

#[test]
fn ht_hmacs_from_the_stored_key_match_an_independent_computation() {
    let key = token_key(&long_token());
    assert_eq!(
        hex(&key),
        "d66304b6180365e47c858f6c84d3da065caf4b3350c9f45277a1af82e3dbb055"
    );
    assert_eq!(hex(&ht_hmac(&key, b"Initiator", b"")), INITIATOR);
    assert_eq!(hex(&ht_hmac(&key, b"Responder", b"")), RESPONDER);
    let cb: Vec<u8> = (0u8..32).collect();
    assert_eq!(hex(&ht_hmac(&key, b"Initiator", &cb)), INITIATOR_WITH_CB);
}

#[test]
fn issued_tokens_are_long_enough_to_be_stored_hashed() {
    let token = new_token().expect("random");
    assert!(token.len() > HMAC_BLOCK, "{token}");
    assert_ne!(new_token(), Some(token));
}

fn proof(token: &str, cb: &[u8]) -> Vec<u8> {
    // The client's side, keyed with the token itself.
    let key = hmac::Key::new(hmac::HMAC_SHA256, token.as_bytes());
    let mut msg = b"Initiator".to_vec();
    msg.extend_from_slice(cb);
    hmac::sign(&key, &msg).as_ref().to_vec()
}

fn attempt(token: &str) -> FastAttempt {
    FastAttempt {
        mechanism: HtMechanism::Sha256None,
        proof: proof(token, b""),
        cb_data: Vec::new(),
        count: None,
    }
}

#[test]
fn parses_the_ht_message() {
    let mut msg = b"alice\0".to_vec();
    msg.extend_from_slice(&[7u8; 32]);
    assert_eq!(
        parse_response(&msg),
        Some(HtResponse {
            authcid: "alice".into(),
            proof: vec![7u8; 32]
        })
    );
    assert_eq!(parse_response(b"alice"), None);
    assert_eq!(parse_response(b"\0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), None);
    assert_eq!(parse_response(b"alice\0short"), None);
    assert_eq!(
        parse_response(b"\xff\0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        None
    );
}

#[test]
fn rotation_keeps_the_old_token_until_the_new_one_is_used() {
    let (a, b) = ("A".repeat(72), "B".repeat(72));
    let mut record = TokenRecord::default();
    record.issue(token_key(&a), HtMechanism::Sha256None, 1000);
    // First use of A: it moves to `current`.
    let first = record.verify(&attempt(&a), 10).expect("A logs in");
    assert_eq!(first.slot, Slot::New);
    assert_eq!(hex(&first.responder), {
        let key = hmac::Key::new(hmac::HMAC_SHA256, a.as_bytes());
        hex(hmac::sign(&key, b"Responder").as_ref())
    });
    // B is issued: A still works (the client may not have received B).
    record.issue(token_key(&b), HtMechanism::Sha256None, 2000);
    assert_eq!(
        record.verify(&attempt(&a), 20).map(|v| v.slot),
        Ok(Slot::Current)
    );
    // B is used: from now on A is refused.
    assert_eq!(
        record.verify(&attempt(&b), 30).map(|v| v.slot),
        Ok(Slot::New)
    );
    assert_eq!(record.verify(&attempt(&a), 40), Err(Refusal::Mismatch));
    assert_eq!(
        record.verify(&attempt(&b), 40).map(|v| v.slot),
        Ok(Slot::Current)
    );
}

#[test]
fn expiry_mechanism_count_and_channel_binding_are_checked() {
    let a = "A".repeat(72);
    let mut record = TokenRecord::default();
    record.issue(token_key(&a), HtMechanism::Sha256Expr, 100);
    let cb = vec![9u8; 32];
    let good = FastAttempt {
        mechanism: HtMechanism::Sha256Expr,
        proof: proof(&a, &cb),
        cb_data: cb.clone(),
        count: Some(1),
    };
    // Another connection's channel binding data: a different proof.
    let elsewhere = FastAttempt {
        cb_data: vec![8u8; 32],
        ..good.clone()
    };
    assert_eq!(record.verify(&elsewhere, 1), Err(Refusal::Mismatch));
    let downgraded = FastAttempt {
        mechanism: HtMechanism::Sha256None,
        ..good.clone()
    };
    assert_eq!(record.verify(&downgraded, 1), Err(Refusal::WrongMechanism));
    assert!(record.verify(&good, 1).is_ok());
    // The same count again is a replay; a higher one is fine.
    assert_eq!(record.verify(&good, 2), Err(Refusal::Replayed));
    let next = FastAttempt {
        count: Some(2),
        ..good.clone()
    };
    assert!(record.verify(&next, 2).is_ok());
    assert_eq!(record.verify(&good, 100), Err(Refusal::Expired));
    assert_eq!(
        Refusal::Expired.failure(),
        crate::sasl::SaslFailure::CredentialsExpired
    );
    assert_eq!(
        Refusal::Mismatch.failure(),
        crate::sasl::SaslFailure::NotAuthorized
    );
    assert!(record.prune(100));
    assert_eq!(
        TokenRecord::default().verify(&good, 0),
        Err(Refusal::NoToken)
    );
}

#[test]
fn rotation_is_due_in_the_second_half_of_the_lifetime() {
    let mut record = TokenRecord::default();
    record.issue(token_key(&long_token()), HtMechanism::Sha256None, 1000);
    assert!(
        !record.rotation_due(0, 1000),
        "not used yet: nothing to rotate"
    );
    record.current = record.new.take();
    assert!(!record.rotation_due(400, 1000));
    assert!(record.rotation_due(600, 1000));
}

#[test]
fn records_round_trip_and_garbage_is_refused() {
    let mut record = TokenRecord::default();
    assert_eq!(TokenRecord::decode(&record.encode()), Some(record.clone()));
    record.issue([3u8; 32], HtMechanism::Sha256Expr, 77);
    assert_eq!(TokenRecord::decode(&record.encode()), Some(record.clone()));
    record.current = record.new.clone();
    record.issue([4u8; 32], HtMechanism::Sha256None, u64::MAX);
    let bytes = record.encode();
    assert_eq!(TokenRecord::decode(&bytes), Some(record.clone()));
    assert_eq!(record.expires(), u64::MAX);
    for cut in 0..bytes.len() {
        assert_eq!(TokenRecord::decode(&bytes[..cut]), None, "cut at {cut}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(TokenRecord::decode(&longer), None);
    let mut bad_mech = bytes;
    bad_mech[2] = 9;
    assert_eq!(TokenRecord::decode(&bad_mech), None);
}
