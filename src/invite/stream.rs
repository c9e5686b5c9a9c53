//! What a c2s stream remembers of an invitation token (XEP-0445 §4): the
//! client presents it in `<iq type='set'><preauth xmlns='urn:xmpp:pars:0'
//! token='…'/></iq>` before registering; once the server accepted it, the
//! stream may register one account although registration is closed, and
//! the registration iq carries the token along to `invite::register`
//! (the stream itself never looks at the database). Expiry is checked
//! once, when the token is presented, as the XEP asks.

use crate::xml::{Element, NS_CLIENT};

use super::NS_PARS;

/// The token state of one stream.
#[derive(Debug, Default)]
pub struct StreamPreauth {
    /// A `<preauth/>` iq sent for checking: its id and token.
    pending: Option<(String, String)>,
    /// The token the server accepted.
    accepted: Option<String>,
}

/// Whether `iq` presents a token (XEP-0445's pre-authentication iq: a
/// set whose payload is `<preauth/>`, not a registration carrying one).
pub fn is_preauth(iq: &Element) -> bool {
    iq.is("iq", NS_CLIENT)
        && iq.attr("type") == Some("set")
        && iq.first_child().is_some_and(|c| c.is("preauth", NS_PARS))
}

/// The token `<preauth/>` element a registration iq carries, if any.
pub fn carried_token(iq: &Element) -> Option<&str> {
    iq.get_child("preauth", NS_PARS)?.attr("token")
}

impl StreamPreauth {
    /// Whether the stream may go on with `iq` although registration is
    /// closed: it presents a token, or registers after one was accepted.
    pub fn allows(&self, iq: &Element) -> bool {
        is_preauth(iq) || self.accepted.is_some()
    }

    /// Called with every pre-login registration iq on its way out of the
    /// stream: remembers a presented token until its answer, and adds an
    /// accepted token to a registration.
    pub fn outgoing(&mut self, iq: &mut Element) {
        if is_preauth(iq) {
            let token = carried_token(iq).unwrap_or_default().to_string();
            let id = iq.attr("id").unwrap_or_default().to_string();
            self.pending = Some((id, token));
        } else if let Some(token) = &self.accepted {
            iq.remove_children_where(|c| c.is("preauth", NS_PARS));
            iq.push_child(Element::new("preauth", NS_PARS).with_attr("token", token.as_str()));
        }
    }

    /// Called with the answer to a pre-login iq: a result to a presented
    /// token accepts it; an error forgets it.
    pub fn answered(&mut self, reply: Option<&Element>) {
        let Some(reply) = reply else {
            return;
        };
        let Some((_, token)) = self
            .pending
            .take_if(|(id, _)| reply.attr("id") == Some(id.as_str()))
        else {
            return;
        };
        if reply.attr("type") == Some("result") {
            self.accepted = Some(token);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(s: &str) -> Element {
        Element::parse(s).expect("parse")
    }

    #[test]
    fn token_accepted_then_carried() {
        let mut state = StreamPreauth::default();
        let register = el(
            "<iq xmlns='jabber:client' type='set' id='r1'><query xmlns='jabber:iq:register'/></iq>",
        );
        assert!(!state.allows(&register));
        let mut preauth = el(
            "<iq xmlns='jabber:client' type='set' id='p1'><preauth xmlns='urn:xmpp:pars:0' token='tok'/></iq>",
        );
        assert!(state.allows(&preauth));
        state.outgoing(&mut preauth);
        // An answer to another iq changes nothing.
        state.answered(Some(&el(
            "<iq xmlns='jabber:client' type='result' id='other'/>",
        )));
        assert!(!state.allows(&register));
        state.answered(Some(&el(
            "<iq xmlns='jabber:client' type='result' id='p1'/>",
        )));
        assert!(state.allows(&register));
        let mut sent = register.clone();
        state.outgoing(&mut sent);
        assert_eq!(carried_token(&sent), Some("tok"));
        // A client cannot smuggle in a token of its own.
        let mut forged = el(
            "<iq xmlns='jabber:client' type='set' id='r2'><query xmlns='jabber:iq:register'/><preauth xmlns='urn:xmpp:pars:0' token='mine'/></iq>",
        );
        let mut fresh = StreamPreauth {
            accepted: Some("tok".into()),
            ..StreamPreauth::default()
        };
        fresh.outgoing(&mut forged);
        assert_eq!(carried_token(&forged), Some("tok"));
        assert!(fresh.pending.is_none());
    }

    #[test]
    fn refused_token_is_forgotten() {
        let mut state = StreamPreauth::default();
        let mut preauth = el(
            "<iq xmlns='jabber:client' type='set' id='p1'><preauth xmlns='urn:xmpp:pars:0' token='bad'/></iq>",
        );
        state.outgoing(&mut preauth);
        state.answered(Some(&el(
            "<iq xmlns='jabber:client' type='error' id='p1'/>",
        )));
        let register = el(
            "<iq xmlns='jabber:client' type='set' id='r1'><query xmlns='jabber:iq:register'/></iq>",
        );
        assert!(!state.allows(&register));
        assert!(state.pending.is_none());
    }
}
