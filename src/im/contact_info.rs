//! XEP-0157 contact addresses: the `[contact]` configuration as the
//! `http://jabber.org/network/serverinfo` form (XEP-0128 extended info)
//! in the server's disco#info.

use crate::config::ContactAddresses;
use crate::forms::{Field, FieldType, Form, FormType};
use crate::xml::Element;

pub const FORM_TYPE_SERVERINFO: &str = "http://jabber.org/network/serverinfo";

/// The form, or `None` when no address is configured. Kinds without an
/// address are left out (XEP-0157 lets a server omit them).
pub fn form(contact: &ContactAddresses) -> Option<Element> {
    if contact.is_empty() {
        return None;
    }
    let mut form = Form::new(FormType::Result).with_field(Field::form_type(FORM_TYPE_SERVERINFO));
    for (kind, addresses) in contact.by_kind() {
        if addresses.is_empty() {
            continue;
        }
        form.push(
            Field::new(&format!("{kind}-addresses"), FieldType::ListMulti)
                .with_values(addresses.iter().cloned()),
        );
    }
    Some(form.to_element())
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
             <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/network/serverinfo</value></field>\
             <field var='abuse-addresses' type='list-multi'><value>mailto:abuse@example.org</value><value>xmpp:abuse@example.org</value></field>\
             <field var='status-addresses' type='list-multi'><value>https://status.example.org/</value></field></x>"
        );
    }
}
