//! What a client asks of push (XEP-0357 §5, §6): `<enable/>` an app server
//! (its JID, a node, and optional publish options such as the app
//! server's secret) or `<disable/>` one (every node of it, or one). Parsed
//! from the iq's payload without touching anything else; every way a
//! request can be wrong is a [`BadRequest`] that names it.

use std::fmt;

use crate::forms::{Form, FormType, NS_DATA};
use crate::jid::Jid;
use crate::stanza::{Condition, StanzaError};
use crate::xml::Element;

use super::NS_PUSH;

/// The FORM_TYPE of the publish options (XEP-0060 §7.1.5).
pub const NS_PUBLISH_OPTIONS: &str = "http://jabber.org/protocol/pubsub#publish-options";

/// Longest node name kept (bytes): app servers use ids of a few dozen.
pub const MAX_NODE_BYTES: usize = 1024;
/// Largest publish-options form kept, serialized (bytes): a secret and a
/// few settings fit many times over; each registration is stored and sent
/// with every notification.
pub const MAX_OPTIONS_BYTES: usize = 4096;

/// A push request from the account's owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Publish notifications to `node` at `app`, with these options.
    Enable {
        app: Jid,
        node: String,
        /// The submitted form, normalized (only `jabber:x:data` content).
        options: Option<Element>,
    },
    /// Stop publishing to `app`: to `node` only, or to all its nodes.
    Disable { app: Jid, node: Option<String> },
}

/// Why a push request cannot be acted on (each is `bad-request`, with
/// this text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadRequest {
    /// Neither `<enable/>` nor `<disable/>`.
    UnknownElement(String),
    MissingJid,
    BadJid(String),
    MissingNode,
    NodeTooLong,
    /// The publish options are not a submitted data form.
    BadOptions(String),
    OptionsTooLarge,
    /// An iq get: push only takes sets.
    NotASet,
}

impl fmt::Display for BadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadRequest::UnknownElement(name) => {
                write!(f, "<{name}/> is not a push request (enable or disable)")
            }
            BadRequest::MissingJid => {
                f.write_str("the 'jid' attribute (the app server) is required")
            }
            BadRequest::BadJid(jid) => write!(f, "the 'jid' attribute {jid:?} is not a JID"),
            BadRequest::MissingNode => f.write_str("<enable/> needs a non-empty 'node' attribute"),
            BadRequest::NodeTooLong => write!(f, "the node is longer than {MAX_NODE_BYTES} bytes"),
            BadRequest::BadOptions(why) => write!(f, "the publish options: {why}"),
            BadRequest::OptionsTooLarge => {
                write!(f, "the publish options exceed {MAX_OPTIONS_BYTES} bytes")
            }
            BadRequest::NotASet => f.write_str("push requests are iq sets"),
        }
    }
}

impl std::error::Error for BadRequest {}

impl BadRequest {
    pub fn to_stanza_error(&self) -> StanzaError {
        StanzaError::new(Condition::BadRequest).with_text(self.to_string())
    }
}

/// Whether `payload` (an iq's child) is a push request at all.
pub fn is_push(payload: &Element) -> bool {
    payload.ns == NS_PUSH
}

/// Reads the push request `payload` of an iq of type `iq_type`.
pub fn parse(iq_type: &str, payload: &Element) -> Result<Command, BadRequest> {
    let enable = match &*payload.name {
        "enable" => true,
        "disable" => false,
        other => return Err(BadRequest::UnknownElement(other.to_string())),
    };
    if iq_type != "set" {
        return Err(BadRequest::NotASet);
    }
    let jid = payload.attr("jid").ok_or(BadRequest::MissingJid)?;
    let app = Jid::parse(jid).map_err(|_| BadRequest::BadJid(jid.to_string()))?;
    let node = match payload.attr("node") {
        Some(node) if node.len() > MAX_NODE_BYTES => return Err(BadRequest::NodeTooLong),
        Some("") => None,
        other => other.map(str::to_string),
    };
    if !enable {
        return Ok(Command::Disable { app, node });
    }
    let node = node.ok_or(BadRequest::MissingNode)?;
    let options = match payload.get_child("x", NS_DATA) {
        None => None,
        Some(x) => Some(options(x)?),
    };
    Ok(Command::Enable { app, node, options })
}

/// The publish options as they will be stored and sent: a submitted form
/// of FORM_TYPE publish-options, rebuilt from what was understood.
fn options(x: &Element) -> Result<Element, BadRequest> {
    let form = Form::parse(x).map_err(|e| BadRequest::BadOptions(e.to_string()))?;
    if form.kind != FormType::Submit {
        return Err(BadRequest::BadOptions(format!(
            "the form's type is {:?}, not \"submit\"",
            form.kind.as_str()
        )));
    }
    if form.form_type() != Some(NS_PUBLISH_OPTIONS) {
        return Err(BadRequest::BadOptions(format!(
            "FORM_TYPE must be {NS_PUBLISH_OPTIONS}"
        )));
    }
    let element = form.to_element();
    if element.to_bytes("").len() > MAX_OPTIONS_BYTES {
        return Err(BadRequest::OptionsTooLarge);
    }
    Ok(element)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_xml(iq_type: &str, xml: &str) -> Result<Command, BadRequest> {
        parse(iq_type, &Element::parse(xml).expect("xml"))
    }

    const OPTIONS: &str = "<x xmlns='jabber:x:data' type='submit'>\
        <field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>\
        <field var='secret'><value>eruio234vzxc2kla-91</value></field></x>";

    #[test]
    fn enable_with_options() {
        let xml = format!(
            "<enable xmlns='urn:xmpp:push:0' jid='push-5.client.example' node='yxs32uqsflafdk3iuqo'>{OPTIONS}</enable>"
        );
        let Ok(Command::Enable { app, node, options }) = parse_xml("set", &xml) else {
            panic!("not an enable");
        };
        assert_eq!(app.as_str(), "push-5.client.example");
        assert_eq!(node, "yxs32uqsflafdk3iuqo");
        let form = Form::parse(&options.expect("options")).expect("form");
        assert_eq!(form.value("secret"), Some("eruio234vzxc2kla-91"));
    }

    #[test]
    fn enable_without_options_and_disable_with_or_without_node() {
        assert_eq!(
            parse_xml(
                "set",
                "<enable xmlns='urn:xmpp:push:0' jid='push.example' node='n'/>"
            ),
            Ok(Command::Enable {
                app: Jid::parse("push.example").expect("jid"),
                node: "n".into(),
                options: None
            })
        );
        assert_eq!(
            parse_xml(
                "set",
                "<disable xmlns='urn:xmpp:push:0' jid='push.example'/>"
            ),
            Ok(Command::Disable {
                app: Jid::parse("push.example").expect("jid"),
                node: None
            })
        );
        assert_eq!(
            parse_xml(
                "set",
                "<disable xmlns='urn:xmpp:push:0' jid='push.example' node='n'/>"
            ),
            Ok(Command::Disable {
                app: Jid::parse("push.example").expect("jid"),
                node: Some("n".into())
            })
        );
    }

    #[test]
    fn malformed_requests_are_named() {
        let cases = [
            (
                "set",
                "<enable xmlns='urn:xmpp:push:0' node='n'/>",
                BadRequest::MissingJid,
            ),
            (
                "set",
                "<enable xmlns='urn:xmpp:push:0' jid='push.example'/>",
                BadRequest::MissingNode,
            ),
            (
                "set",
                "<enable xmlns='urn:xmpp:push:0' jid='push.example' node=''/>",
                BadRequest::MissingNode,
            ),
            (
                "set",
                "<enable xmlns='urn:xmpp:push:0' jid='a@@b' node='n'/>",
                BadRequest::BadJid("a@@b".into()),
            ),
            (
                "get",
                "<enable xmlns='urn:xmpp:push:0' jid='push.example' node='n'/>",
                BadRequest::NotASet,
            ),
            (
                "set",
                "<toggle xmlns='urn:xmpp:push:0' jid='push.example'/>",
                BadRequest::UnknownElement("toggle".into()),
            ),
        ];
        for (ty, xml, want) in cases {
            assert_eq!(parse_xml(ty, xml), Err(want), "{xml}");
        }
        let long = format!(
            "<enable xmlns='urn:xmpp:push:0' jid='push.example' node='{}'/>",
            "n".repeat(MAX_NODE_BYTES + 1)
        );
        assert_eq!(parse_xml("set", &long), Err(BadRequest::NodeTooLong));
    }

    #[test]
    fn publish_options_must_be_a_submitted_publish_options_form() {
        let enable = |x: &str| {
            parse_xml(
                "set",
                &format!(
                    "<enable xmlns='urn:xmpp:push:0' jid='push.example' node='n'>{x}</enable>"
                ),
            )
        };
        for bad in [
            "<x xmlns='jabber:x:data' type='form'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field></x>",
            "<x xmlns='jabber:x:data' type='submit'><field var='secret'><value>s</value></field></x>",
            "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:other</value></field></x>",
            "<x xmlns='jabber:x:data' type='nonsense'/>",
        ] {
            assert!(
                matches!(enable(bad), Err(BadRequest::BadOptions(_))),
                "{bad}"
            );
        }
        let huge = format!(
            "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>{NS_PUBLISH_OPTIONS}</value></field><field var='secret'><value>{}</value></field></x>",
            "s".repeat(MAX_OPTIONS_BYTES)
        );
        assert_eq!(enable(&huge), Err(BadRequest::OptionsTooLarge));
    }

    #[test]
    fn errors_are_bad_request_with_the_reason() {
        let e = BadRequest::MissingNode.to_stanza_error();
        assert_eq!(e.condition, Condition::BadRequest);
        assert_eq!(
            e.text.as_deref(),
            Some("<enable/> needs a non-empty 'node' attribute")
        );
    }
}
