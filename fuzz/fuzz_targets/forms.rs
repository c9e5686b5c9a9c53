//! Data forms (XEP-0004) from arbitrary XML: parsing never panics, and a
//! parsed form written back parses to the same form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use perch::forms::Form;
use perch::xml::Element;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(el) = Element::parse(text) else {
        return;
    };
    if let Ok(form) = Form::parse(&el) {
        let again = Form::parse(&form.to_element()).expect("a written form parses");
        assert_eq!(again.to_element(), form.to_element());
    }
});
