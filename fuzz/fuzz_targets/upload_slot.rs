//! XEP-0363 slot requests from arbitrary XML: parsing never panics, and an
//! accepted request has a file name without separators or control
//! characters and a positive size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use perch::xml::Element;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(el) = Element::parse(text) else {
        return;
    };
    if let Ok(request) = perch::upload::slot::parse(&el) {
        assert!(!request.name.is_empty());
        assert!(!request.name.contains(['/', '\\', '\0']));
        assert!(!request.name.chars().any(char::is_control));
        assert!(request.size > 0);
    }
});
