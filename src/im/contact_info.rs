//! XEP-0157 contact addresses: the `[contact]` configuration as the
//! `http://jabber.org/network/serverinfo` form (XEP-0128 extended info)
//! in the server's disco#info.

use crate::config::ContactAddresses;
use crate::forms::{FieldType, FormBuilder};
use crate::xml::Element;

pub const FORM_TYPE_SERVERINFO: &str = "http://jabber.org/network/serverinfo";

/// The form, or `None` when no address is configured. Kinds without an
/// address are left out (XEP-0157 lets a server omit them).
pub fn form(contact: &ContactAddresses) -> Option<Element> {
    if contact.is_empty() {
        return None;
    }
    let mut form = FormBuilder::new("result", FORM_TYPE_SERVERINFO);
    for (kind, addresses) in contact.by_kind() {
        if addresses.is_empty() {
            continue;
        }
        let values: Vec<&str> = addresses.iter().map(String::as_str).collect();
        form = form.field(
            &format!("{kind}-addresses"),
            FieldType::ListMulti,
            None,
            &values,
            false,
        );
    }
    Some(form.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_configured_kinds_appear() {
        assert_eq!(form(&ContactAddresses::default()), None);
        let contact = ContactAddresses {
            abuse: vec![
                "mailto:abuse@example.org".into(),
                "xmpp:abuse@example.org".into(),
            ],
            status: vec!["https://status.example.org/".into()],
            ..ContactAddresses::default()
        };
        let x = form(&contact).expect("form");
        assert_eq!(
            x.to_string(),
            "<x xmlns='jabber:x:data' type='result'>\
             <field type='hidden' var='FORM_TYPE'><value>http://jabber.org/network/serverinfo</value></field>\
             <field type='list-multi' var='abuse-addresses'><value>mailto:abuse@example.org</value><value>xmpp:abuse@example.org</value></field>\
             <field type='list-multi' var='status-addresses'><value>https://status.example.org/</value></field></x>"
        );
    }
}
