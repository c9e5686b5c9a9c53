//! The notification itself (XEP-0357 §7): a pubsub publish to the app
//! server's node, from the account's bare JID, whose item holds a
//! `<notification/>` with the `urn:xmpp:push:summary` form, and the
//! publish options the client registered.

use crate::forms::{Field, FieldType, Form, FormType};
use crate::xml::Element;

use super::NS_PUSH;
use super::trigger::Summary;

pub const NS_PUBSUB: &str = "http://jabber.org/protocol/pubsub";
pub const NS_SUMMARY: &str = "urn:xmpp:push:summary";

/// What one publish carries.
pub struct Notification<'a> {
    /// The account's bare JID.
    pub from: &'a str,
    /// The app server's JID.
    pub to: &'a str,
    pub id: &'a str,
    pub node: &'a str,
    /// Messages this notification stands for (more than one when
    /// notifications were coalesced).
    pub message_count: u32,
    pub summary: &'a Summary,
    pub options: Option<&'a Element>,
}

impl Notification<'_> {
    /// The `<iq type='set'>` to send.
    pub fn to_iq(&self) -> Element {
        let mut form = Form::new(FormType::Submit)
            .with_field(Field::form_type(NS_SUMMARY))
            .with_field(
                Field::new("message-count", FieldType::TextSingle)
                    .with_value(self.message_count.to_string()),
            );
        if let Some(sender) = &self.summary.sender {
            form.push(
                Field::new("last-message-sender", FieldType::JidSingle).with_value(sender.as_str()),
            );
        }
        if let Some(body) = &self.summary.body {
            form.push(
                Field::new("last-message-body", FieldType::TextSingle).with_value(body.as_str()),
            );
        }
        let item = Element::new("item", NS_PUBSUB)
            .with_child(Element::new("notification", NS_PUSH).with_child(form.to_element()));
        let mut pubsub = Element::new("pubsub", NS_PUBSUB).with_child(
            Element::new("publish", NS_PUBSUB)
                .with_attr("node", self.node)
                .with_child(item),
        );
        if let Some(options) = self.options {
            pubsub
                .push_child(Element::new("publish-options", NS_PUBSUB).with_child(options.clone()));
        }
        crate::router::new_stanza("iq")
            .with_attr("type", "set")
            .with_attr("from", self.from)
            .with_attr("to", self.to)
            .with_attr("id", self.id)
            .with_child(pubsub)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forms::NS_DATA;

    fn summary_form(iq: &Element) -> Form {
        let x = iq
            .get_child("pubsub", NS_PUBSUB)
            .and_then(|p| p.get_child("publish", NS_PUBSUB))
            .and_then(|p| p.get_child("item", NS_PUBSUB))
            .and_then(|i| i.get_child("notification", NS_PUSH))
            .and_then(|n| n.get_child("x", NS_DATA))
            .expect("a summary form");
        Form::parse(x).expect("form")
    }

    #[test]
    fn a_private_notification_has_only_the_count() {
        let summary = Summary::default();
        let iq = Notification {
            from: "romeo@montague.lit",
            to: "push-5.client.example",
            id: "push-1",
            node: "yxs32uqsflafdk3iuqo",
            message_count: 3,
            summary: &summary,
            options: None,
        }
        .to_iq();
        assert_eq!(iq.attr("type"), Some("set"));
        assert_eq!(iq.attr("from"), Some("romeo@montague.lit"));
        assert_eq!(iq.attr("to"), Some("push-5.client.example"));
        let publish = iq
            .get_child("pubsub", NS_PUBSUB)
            .and_then(|p| p.get_child("publish", NS_PUBSUB))
            .expect("publish");
        assert_eq!(publish.attr("node"), Some("yxs32uqsflafdk3iuqo"));
        let form = summary_form(&iq);
        assert_eq!(form.form_type(), Some(NS_SUMMARY));
        assert_eq!(form.value("message-count"), Some("3"));
        assert_eq!(form.field("last-message-sender"), None);
        assert_eq!(form.field("last-message-body"), None);
        assert!(
            iq.get_child("pubsub", NS_PUBSUB)
                .and_then(|p| p.get_child("publish-options", NS_PUBSUB))
                .is_none()
        );
    }

    #[test]
    fn sender_body_and_options_when_given() {
        let summary = Summary {
            sender: Some("juliet@capulet.lit/balcony".into()),
            body: Some("Wherefore art thou, Romeo?".into()),
        };
        let options = Element::parse(
            "<x xmlns='jabber:x:data' type='submit'><field var='secret'><value>s3</value></field></x>",
        )
        .expect("xml");
        let iq = Notification {
            from: "romeo@montague.lit",
            to: "push.example",
            id: "push-2",
            node: "n",
            message_count: 1,
            summary: &summary,
            options: Some(&options),
        }
        .to_iq();
        let form = summary_form(&iq);
        assert_eq!(
            form.value("last-message-sender"),
            Some("juliet@capulet.lit/balcony")
        );
        assert_eq!(
            form.value("last-message-body"),
            Some("Wherefore art thou, Romeo?")
        );
        let sent_options = iq
            .get_child("pubsub", NS_PUBSUB)
            .and_then(|p| p.get_child("publish-options", NS_PUBSUB))
            .and_then(|o| o.get_child("x", NS_DATA))
            .expect("publish options");
        assert_eq!(
            Form::parse(sent_options).expect("form").value("secret"),
            Some("s3")
        );
    }
}
