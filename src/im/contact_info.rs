//! XEP-0157 contact addresses: the `[contact]` configuration as the
//! `http://jabber.org/network/serverinfo` form (XEP-0128 extended info)
//! in the server's disco#info; and XEP-0455's `urn:xmpp:sos:0` form with
//! the addresses of the server's outage status file.

use crate::config::ContactAddresses;
use crate::forms::{Field, FieldType, Form, FormType};
use crate::xml::Element;

pub const FORM_TYPE_SERVERINFO: &str = "http://jabber.org/network/serverinfo";
pub const FORM_TYPE_SOS: &str = "urn:xmpp:sos:0";

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

/// The XEP-0455 form, or `None` when no status address is configured.
pub fn outage_status_form(contact: &ContactAddresses) -> Option<Element> {
    if contact.outage_status.is_empty() {
        return None;
    }
    let form = Form::new(FormType::Result)
        .with_field(Field::form_type(FORM_TYPE_SOS))
        .with_field(
            Field::new("external-status-addresses", FieldType::ListMulti)
                .with_values(contact.outage_status.iter().cloned()),
        );
    Some(form.to_element())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outage_status_form_when_configured() {
        assert_eq!(outage_status_form(&ContactAddresses::default()), None);
        let contact = ContactAddresses {
            outage_status: vec!["https://status.example.org/perch.json".into()],
            ..ContactAddresses::default()
        };
        assert_eq!(form(&contact), None, "not a serverinfo address");
        let x = outage_status_form(&contact).expect("form");
        assert_eq!(
            x.to_string(),
            "<x xmlns='jabber:x:data' type='result'>\
             <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:sos:0</value></field>\
             <field var='external-status-addresses' type='list-multi'><value>https://status.example.org/perch.json</value></field></x>"
        );
    }

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
