//! Stanza-level rules shared by every host: the stanza error vocabulary of
//! RFC 6120 §8.3, error replies, and validation of what a client sends.

use std::fmt;

use crate::jid::Jid;
use crate::xml::{Element, NS_CLIENT};

// Payload namespaces that layers below the IM and MUC handlers (the
// stream's client state indication, stanza checks) look into; the
// handlers re-export them.
/// XEP-0203 delayed delivery.
pub const NS_DELAY: &str = "urn:xmpp:delay";
/// XEP-0280 message carbons.
pub const NS_CARBONS: &str = "urn:xmpp:carbons:2";
/// XEP-0297 stanza forwarding.
pub const NS_FORWARD: &str = "urn:xmpp:forward:0";
/// XEP-0313 message archive management.
pub const NS_MAM: &str = "urn:xmpp:mam:2";
/// XEP-0359 unique and stable stanza ids.
pub const NS_SID: &str = "urn:xmpp:sid:0";
/// XEP-0045 multi-user chat, the user namespace.
pub const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
/// XEP-0249 direct room invitations.
pub const NS_CONFERENCE: &str = "jabber:x:conference";

pub const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    Auth,
    Cancel,
    Continue,
    Modify,
    Wait,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::Auth => "auth",
            ErrorType::Cancel => "cancel",
            ErrorType::Continue => "continue",
            ErrorType::Modify => "modify",
            ErrorType::Wait => "wait",
        }
    }
}

/// The defined conditions of RFC 6120 §8.3.3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    BadRequest,
    Conflict,
    FeatureNotImplemented,
    Forbidden,
    Gone,
    InternalServerError,
    ItemNotFound,
    JidMalformed,
    NotAcceptable,
    NotAllowed,
    NotAuthorized,
    PolicyViolation,
    RecipientUnavailable,
    Redirect,
    RegistrationRequired,
    RemoteServerNotFound,
    RemoteServerTimeout,
    ResourceConstraint,
    ServiceUnavailable,
    SubscriptionRequired,
    UndefinedCondition,
    UnexpectedRequest,
}

impl Condition {
    pub fn name(self) -> &'static str {
        use Condition::*;
        match self {
            BadRequest => "bad-request",
            Conflict => "conflict",
            FeatureNotImplemented => "feature-not-implemented",
            Forbidden => "forbidden",
            Gone => "gone",
            InternalServerError => "internal-server-error",
            ItemNotFound => "item-not-found",
            JidMalformed => "jid-malformed",
            NotAcceptable => "not-acceptable",
            NotAllowed => "not-allowed",
            NotAuthorized => "not-authorized",
            PolicyViolation => "policy-violation",
            RecipientUnavailable => "recipient-unavailable",
            Redirect => "redirect",
            RegistrationRequired => "registration-required",
            RemoteServerNotFound => "remote-server-not-found",
            RemoteServerTimeout => "remote-server-timeout",
            ResourceConstraint => "resource-constraint",
            ServiceUnavailable => "service-unavailable",
            SubscriptionRequired => "subscription-required",
            UndefinedCondition => "undefined-condition",
            UnexpectedRequest => "unexpected-request",
        }
    }

    /// The error type RFC 6120 §8.3.3 gives as usual for the condition.
    pub fn default_type(self) -> ErrorType {
        use Condition::*;
        match self {
            BadRequest | JidMalformed | NotAcceptable | PolicyViolation | Redirect => {
                ErrorType::Modify
            }
            Forbidden | NotAuthorized | RegistrationRequired | SubscriptionRequired => {
                ErrorType::Auth
            }
            RecipientUnavailable | RemoteServerTimeout | ResourceConstraint
            | InternalServerError | UnexpectedRequest => ErrorType::Wait,
            Conflict
            | FeatureNotImplemented
            | Gone
            | ItemNotFound
            | NotAllowed
            | RemoteServerNotFound
            | ServiceUnavailable
            | UndefinedCondition => ErrorType::Cancel,
        }
    }
}

/// A stanza error ready to be attached to a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StanzaError {
    pub condition: Condition,
    pub kind: ErrorType,
    pub text: Option<String>,
    pub by: Option<String>,
    /// An application-specific condition (RFC 6120 §8.3.4) after the
    /// defined one, e.g. XEP-0060's `<precondition-not-met/>`.
    pub app: Option<AppCondition>,
}

/// An application-specific error condition: its element name, namespace
/// and, for XEP-0060's `<unsupported/>`, the feature it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppCondition {
    pub name: &'static str,
    pub ns: &'static str,
    pub feature: Option<&'static str>,
}

impl StanzaError {
    pub fn new(condition: Condition) -> Self {
        StanzaError {
            condition,
            kind: condition.default_type(),
            text: None,
            by: None,
            app: None,
        }
    }

    pub fn with_app(mut self, app: AppCondition) -> Self {
        self.app = Some(app);
        self
    }

    pub fn with_type(mut self, kind: ErrorType) -> Self {
        self.kind = kind;
        self
    }

    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    pub fn with_by(mut self, by: impl Into<String>) -> Self {
        self.by = Some(by.into());
        self
    }

    pub fn to_element(&self) -> Element {
        let mut error = Element::new("error", NS_CLIENT).with_attr("type", self.kind.as_str());
        if let Some(by) = &self.by {
            error.set_attr("by", by);
        }
        error.push_child(Element::new(self.condition.name(), NS_STANZAS));
        if let Some(text) = &self.text {
            error.push_child(Element::new("text", NS_STANZAS).with_text(text.as_str()));
        }
        if let Some(app) = &self.app {
            let mut el = Element::new(app.name, app.ns);
            if let Some(feature) = app.feature {
                el.set_attr("feature", feature);
            }
            error.push_child(el);
        }
        error
    }
}

impl fmt::Display for StanzaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.condition.name())?;
        if let Some(t) = &self.text {
            write!(f, " ({t})")?;
        }
        Ok(())
    }
}

impl From<Condition> for StanzaError {
    fn from(c: Condition) -> Self {
        StanzaError::new(c)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Message,
    Presence,
    Iq,
}

impl Kind {
    pub fn of(el: &Element) -> Option<Kind> {
        if el.ns != NS_CLIENT && el.ns != crate::xml::NS_SERVER {
            return None;
        }
        match el.name.as_ref() {
            "message" => Some(Kind::Message),
            "presence" => Some(Kind::Presence),
            "iq" => Some(Kind::Iq),
            _ => None,
        }
    }
}

pub fn is_error(el: &Element) -> bool {
    el.attr("type") == Some("error")
}

/// Builds the error bounced back for `stanza`, or `None` when the stanza is
/// itself an error (errors are never answered with errors, RFC 6120 §8.3.1).
/// `from`/`to` are swapped; the original payload travels back for messages
/// and presences so the sender can tell which one failed.
pub fn error_reply(stanza: &Element, error: &StanzaError) -> Option<Element> {
    if is_error(stanza) {
        return None;
    }
    let mut reply = Element::new(stanza.name.clone(), stanza.ns.clone());
    if let Some(id) = stanza.attr("id") {
        reply.set_attr("id", id);
    }
    if let Some(to) = stanza.attr("from") {
        reply.set_attr("to", to);
    }
    if let Some(from) = stanza.attr("to") {
        reply.set_attr("from", from);
    }
    reply.set_attr("type", "error");
    if stanza.name != "iq" {
        for child in stanza.children() {
            reply.push_child(child.clone());
        }
    }
    reply.push_child(error.to_element());
    Some(reply)
}

/// An empty `type='result'` answer to an iq.
pub fn iq_result(iq: &Element) -> Element {
    let mut reply = Element::new("iq", iq.ns.clone()).with_attr("type", "result");
    if let Some(id) = iq.attr("id") {
        reply.set_attr("id", id);
    }
    if let Some(to) = iq.attr("from") {
        reply.set_attr("to", to);
    }
    if let Some(from) = iq.attr("to") {
        reply.set_attr("from", from);
    }
    reply
}

/// What is wrong with a stanza a client sent, decided before routing.
#[derive(Debug, PartialEq, Eq)]
pub enum Invalid {
    /// Answer with this stanza error.
    Reply(StanzaError),
    /// Drop silently: e.g. an error about an error.
    Drop,
}

/// Checks a client stanza against RFC 6120 §8 and stamps its `from`
/// (RFC 6120 §8.1.2.1: the server, not the client, says who sent it).
/// Returns the parsed `to`, if any.
pub fn check_client_stanza(
    stanza: &mut Element,
    kind: Kind,
    sender: &Jid,
) -> Result<Option<Jid>, Invalid> {
    stanza.set_attr("from", sender.as_str());
    let to = match stanza.attr("to") {
        None => None,
        Some(raw) => match Jid::parse(raw) {
            Ok(j) => {
                if j.as_str() != raw {
                    stanza.set_attr("to", j.as_str());
                }
                Some(j)
            }
            Err(e) => {
                return Err(invalid_reply(
                    stanza,
                    StanzaError::new(Condition::JidMalformed).with_text(e.to_string()),
                ));
            }
        },
    };
    let ty = stanza.attr("type");
    match kind {
        Kind::Iq => {
            if stanza.attr("id").is_none_or(str::is_empty) {
                return Err(invalid_reply(
                    stanza,
                    StanzaError::new(Condition::BadRequest).with_text("iq without id"),
                ));
            }
            match ty {
                Some("get") | Some("set") => {
                    if stanza.children().count() != 1 {
                        return Err(invalid_reply(
                            stanza,
                            StanzaError::new(Condition::BadRequest)
                                .with_text("an iq get or set carries exactly one payload"),
                        ));
                    }
                }
                Some("result") | Some("error") => {}
                _ => {
                    return Err(invalid_reply(
                        stanza,
                        StanzaError::new(Condition::BadRequest).with_text("invalid iq type"),
                    ));
                }
            }
        }
        Kind::Message => match ty {
            None | Some("normal") | Some("chat") | Some("groupchat") | Some("headline")
            | Some("error") => {
                // Only this server stamps in its own name (XEP-0203): a
                // client's stamp claiming to be the server's would pass
                // for a message out of offline storage.
                let server = sender.domain();
                stanza.remove_children_where(|c| {
                    c.is("delay", NS_DELAY) && c.attr("from") == Some(server)
                });
            }
            Some(_) => {
                return Err(invalid_reply(
                    stanza,
                    StanzaError::new(Condition::BadRequest).with_text("invalid message type"),
                ));
            }
        },
        Kind::Presence => match ty {
            None | Some("unavailable") | Some("subscribe") | Some("subscribed")
            | Some("unsubscribe") | Some("unsubscribed") | Some("probe") | Some("error") => {}
            Some(_) => {
                return Err(invalid_reply(
                    stanza,
                    StanzaError::new(Condition::BadRequest).with_text("invalid presence type"),
                ));
            }
        },
    }
    Ok(to)
}

fn invalid_reply(stanza: &Element, error: StanzaError) -> Invalid {
    if is_error(stanza) {
        Invalid::Drop
    } else {
        Invalid::Reply(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender() -> Jid {
        Jid::parse("romeo@example.com/orchard").expect("jid")
    }

    #[test]
    fn from_is_overwritten() {
        let mut m = Element::parse(
            "<message xmlns='jabber:client' from='juliet@example.com/x' to='nurse@example.com'/>",
        )
        .expect("parse");
        let to = check_client_stanza(&mut m, Kind::Message, &sender()).expect("valid");
        assert_eq!(m.attr("from"), Some("romeo@example.com/orchard"));
        assert_eq!(
            to.map(|j| j.to_string()),
            Some("nurse@example.com".to_string())
        );
    }

    #[test]
    fn a_clients_stamp_in_the_servers_name_is_removed() {
        let mut m = Element::parse(
            "<message xmlns='jabber:client' to='nurse@example.com'><body>hi</body>\
             <delay xmlns='urn:xmpp:delay' from='example.com' stamp='2020-01-01T00:00:00Z'>Offline Storage</delay>\
             <delay xmlns='urn:xmpp:delay' from='romeo@example.com/orchard' stamp='2020-01-01T00:00:00Z'/></message>",
        )
        .expect("parse");
        check_client_stanza(&mut m, Kind::Message, &sender()).expect("valid");
        let stamps: Vec<_> = m
            .children()
            .filter(|c| c.is("delay", NS_DELAY))
            .map(|c| c.attr("from"))
            .collect();
        assert_eq!(stamps, [Some("romeo@example.com/orchard")]);
    }

    #[test]
    fn to_is_normalized() {
        let mut m = Element::parse("<message xmlns='jabber:client' to='Nurse@Example.COM'/>")
            .expect("parse");
        check_client_stanza(&mut m, Kind::Message, &sender()).expect("valid");
        assert_eq!(m.attr("to"), Some("nurse@example.com"));
    }

    #[test]
    fn malformed_to_is_jid_malformed() {
        let mut m = Element::parse("<message xmlns='jabber:client' to='a@b@c'/>").expect("parse");
        match check_client_stanza(&mut m, Kind::Message, &sender()) {
            Err(Invalid::Reply(e)) => assert_eq!(e.condition, Condition::JidMalformed),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn iq_rules() {
        let cases = [
            (
                "<iq xmlns='jabber:client' type='get'><ping xmlns='urn:xmpp:ping'/></iq>",
                false,
            ),
            ("<iq xmlns='jabber:client' id='1' type='get'/>", false),
            (
                "<iq xmlns='jabber:client' id='1' type='set'><a xmlns='x'/><b xmlns='x'/></iq>",
                false,
            ),
            (
                "<iq xmlns='jabber:client' id='1' type='fetch'><a xmlns='x'/></iq>",
                false,
            ),
            (
                "<iq xmlns='jabber:client' id='1' type='get'><a xmlns='x'/></iq>",
                true,
            ),
            ("<iq xmlns='jabber:client' id='1' type='result'/>", true),
        ];
        for (xml, ok) in cases {
            let mut iq = Element::parse(xml).expect("parse");
            let result = check_client_stanza(&mut iq, Kind::Iq, &sender());
            assert_eq!(result.is_ok(), ok, "{xml}");
            if let Err(Invalid::Reply(e)) = result {
                assert_eq!(e.condition, Condition::BadRequest);
            }
        }
    }

    #[test]
    fn error_reply_swaps_addresses_and_never_answers_errors() {
        let iq = Element::parse(
            "<iq xmlns='jabber:client' id='7' type='get' from='a@b/c' to='b'><q xmlns='x'/></iq>",
        )
        .expect("parse");
        let reply =
            error_reply(&iq, &StanzaError::new(Condition::ServiceUnavailable)).expect("reply");
        assert_eq!(reply.attr("to"), Some("a@b/c"));
        assert_eq!(reply.attr("from"), Some("b"));
        assert_eq!(reply.attr("id"), Some("7"));
        assert_eq!(reply.attr("type"), Some("error"));
        let err = reply.get_child("error", NS_CLIENT).expect("error child");
        assert_eq!(err.attr("type"), Some("cancel"));
        assert!(err.get_child("service-unavailable", NS_STANZAS).is_some());
        let bounced = error_reply(&reply, &StanzaError::new(Condition::BadRequest));
        assert!(bounced.is_none());
    }
}
