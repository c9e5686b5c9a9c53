//! SASL (PLAIN, SCRAM-SHA-1/-256 with and without -PLUS) fed arbitrary
//! client messages: never panics, whatever the step.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use perch::sasl::{
    ChannelBinding, CredentialLookup, Credentials, Mechanism, SaslSession, ScramHash, ScramKeys,
};

struct OneUser;

/// Derived once: key derivation is slow on purpose.
fn credentials() -> &'static Credentials {
    static CREDS: OnceLock<Credentials> = OnceLock::new();
    CREDS.get_or_init(|| Credentials::derive("pencil", 4096).expect("derive"))
}

impl CredentialLookup for OneUser {
    fn scram_keys(&self, username: &str, hash: ScramHash) -> Option<ScramKeys> {
        if username != "user" {
            return None;
        }
        credentials().keys(hash).cloned()
    }

    fn check_plain(&self, username: &str, password: &str) -> bool {
        username == "user" && credentials().verify_password(password)
    }

    fn domain(&self) -> Option<&str> {
        Some("localhost")
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let mechanism = Mechanism::ALL[usize::from(choice) % Mechanism::ALL.len()];
    let binding = (choice & 0x80 != 0).then(|| ChannelBinding::tls_exporter(vec![7; 32]));
    let mut session = SaslSession::start(mechanism, binding, choice & 0x40 != 0);
    // Client messages separated by 0xff (no valid UTF-8 has it).
    for message in rest.split(|&b| b == 0xff).take(4) {
        let _ = session.step(message, &OneUser);
    }
});
