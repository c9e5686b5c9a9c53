//! XEP-0092 software version. The OS is left out on purpose, as Prosody
//! does by default: it tells an attacker more than it tells a user.

use crate::xml::Element;

use super::NS_VERSION;

pub fn answer() -> Element {
    Element::new("query", NS_VERSION)
        .with_child(Element::new("name", NS_VERSION).with_text("Perch"))
        .with_child(Element::new("version", NS_VERSION).with_text(env!("CARGO_PKG_VERSION")))
}
