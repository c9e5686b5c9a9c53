//! Push requests (XEP-0357 `<enable/>`/`<disable/>`) from arbitrary XML:
//! parsing never panics, what is accepted stays within the documented
//! limits, and the publish options it keeps parse again as the same form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use perch::forms::Form;
use perch::push::command::{self, Command, MAX_NODE_BYTES, MAX_OPTIONS_BYTES};
use perch::push::trigger;
use perch::xml::Element;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let Ok(el) = Element::parse(text) else {
        return;
    };
    // The same bytes as a message: deciding about a notification never
    // panics either, whatever nickname the room gave.
    let _ = trigger::reason(&el, Some("nick"));
    let iq_type = if selector & 1 == 0 { "set" } else { "get" };
    match command::parse(iq_type, &el) {
        Ok(Command::Enable { node, options, .. }) => {
            assert!(!node.is_empty() && node.len() <= MAX_NODE_BYTES);
            if let Some(options) = options {
                assert!(options.to_bytes("").len() <= MAX_OPTIONS_BYTES);
                let form = Form::parse(&options).expect("kept options parse");
                assert_eq!(form.to_element(), options);
            }
        }
        Ok(Command::Disable { node, .. }) => {
            assert!(node.is_none_or(|n| !n.is_empty() && n.len() <= MAX_NODE_BYTES));
        }
        Err(e) => {
            let _ = e.to_stanza_error();
        }
    }
});
