//! The landing page's form bodies (`application/x-www-form-urlencoded`):
//! parsing never panics, keeps within its limits, and a field written
//! back encoded parses to the same field.
#![no_main]

use libfuzzer_sys::fuzz_target;
use perch::invite::form::{self, MAX_FIELDS, MAX_FORM_BYTES};

fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    match form::parse(data) {
        Ok(parsed) => {
            assert!(data.len() <= MAX_FORM_BYTES);
            assert!(parsed.fields.len() <= MAX_FIELDS);
            if let Some((name, value)) = parsed.fields.first() {
                let again = format!("{}={}", encode(name), encode(value));
                if again.len() <= MAX_FORM_BYTES {
                    let back = form::parse(again.as_bytes()).expect("an encoded field parses");
                    assert_eq!(back.fields.first(), Some(&(name.clone(), value.clone())));
                }
            }
        }
        Err(_) => {}
    }
});
