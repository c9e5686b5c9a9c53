//! The configuration reader fed arbitrary text: a problem is reported,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use perch::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Config::from_toml_str(text, "fuzz.toml");
});
