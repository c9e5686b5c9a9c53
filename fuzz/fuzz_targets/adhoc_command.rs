//! Ad-hoc command requests (XEP-0050) from arbitrary XML: a sequence of
//! `<command/>` elements (separated by NUL bytes) run through the engine
//! with every command, as an administrator, never panics, and every answer
//! is a `<command/>` or a stanza error.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use perch::adhoc::engine::{Engine, Outcome, Requester, parse_request};
use perch::adhoc::{COMMANDS, CommandEnv, NS_COMMANDS};
use perch::jid::Jid;
use perch::xml::Element;

/// Commands run against nothing: every account exists, nobody is online.
struct Nothing;

impl CommandEnv for Nothing {
    fn domain(&self) -> &str {
        "example.org"
    }
    fn account_exists(&self, _: &Jid) -> bool {
        true
    }
    fn is_disabled(&self, _: &Jid) -> bool {
        false
    }
    fn online_resources(&self) -> Vec<Jid> {
        Vec::new()
    }
    fn registered_count(&self) -> Result<usize, String> {
        Ok(1)
    }
    fn delete_account(&self, _: &Jid) -> Result<(), String> {
        Ok(())
    }
    fn set_disabled(&self, _: &Jid, _: bool) -> Result<(), String> {
        Ok(())
    }
    fn announce(&self, _: &str) -> usize {
        0
    }
    fn motd(&self) -> Option<String> {
        Some("motd".into())
    }
    fn set_motd(&self, _: Option<&str>) -> Result<(), String> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let engine = Engine::default();
    let Ok(admin) = Jid::parse("root@example.org/desk") else {
        return;
    };
    let requester = Requester {
        jid: &admin,
        admin: true,
    };
    let start = Instant::now();
    for (i, part) in text.split('\0').take(16).enumerate() {
        let Ok(el) = Element::parse(part) else {
            continue;
        };
        let Ok(request) = parse_request(&el, None) else {
            continue;
        };
        let now = start + Duration::from_secs(60 * i as u64);
        match engine.handle(COMMANDS, &requester, request, &Nothing, now) {
            Outcome::Answer(Ok(answer)) => assert!(answer.is("command", NS_COMMANDS)),
            Outcome::Answer(Err(_)) | Outcome::Work { .. } => {}
        }
    }
});
