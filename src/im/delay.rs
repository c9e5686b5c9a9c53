//! XEP-0203 delayed-delivery stamps.

use std::time::SystemTime;

use crate::datetime::format_utc;
use crate::xml::Element;

pub use crate::stanza::NS_DELAY;

/// `<delay xmlns='urn:xmpp:delay' from='{from}' stamp='…'>{reason}</delay>`.
pub fn element(from: &str, at: SystemTime, reason: Option<&str>) -> Element {
    let mut delay = Element::new("delay", NS_DELAY)
        .with_attr("from", from)
        .with_attr("stamp", format_utc(at, false));
    if let Some(reason) = reason {
        delay.push_text(reason);
    }
    delay
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn stamp_and_reason() {
        let d = element(
            "example.com",
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            Some("Offline Storage"),
        );
        assert_eq!(d.attr("stamp"), Some("2023-11-14T22:13:20Z"));
        assert_eq!(d.attr("from"), Some("example.com"));
        assert_eq!(d.text(), "Offline Storage");
    }
}
