//! Registering with a room (XEP-0045 §7.10, XEP-0077): reserving a
//! nickname and, for an unaffiliated user where the service allows it,
//! becoming a member; `<remove/>` gives both up again.

use crate::forms::{Field, FieldType, Form, FormType};
use crate::jid::Jid;
use crate::stanza::{self, Condition, StanzaError};
use crate::xml::Element;

use super::admin::NickChange;
use super::presence::check_nick;
use super::roles::Affiliation;
use super::room::{Env, Room, Sink};
use super::{NS_MUC_REGISTER, NS_REGISTER};

const NICK_FIELD: &str = "muc#register_roomnick";

impl Room {
    pub(super) fn register_iq(&mut self, env: &Env, iq: &Element, from: &Jid, sink: &mut dyn Sink) {
        let bare = from.to_bare();
        let affiliation = self.affiliation(env, &bare);
        let Some(query) = iq.first_child() else {
            return self.error(iq, Condition::BadRequest, sink);
        };
        if query.get_child("remove", NS_REGISTER).is_some() && iq.attr("type") == Some("set") {
            return self.deregister(env, iq, &bare, sink);
        }
        if let Err(condition) = self.may_register(env, affiliation) {
            return self.error(iq, condition, sink);
        }
        let reserved = self.affiliations.get(&bare).and_then(|r| r.nick.clone());
        if iq.attr("type") == Some("get") {
            let mut answer = Element::new("query", NS_REGISTER);
            if let Some(nick) = &reserved {
                answer.push_child(Element::new("registered", NS_REGISTER));
                answer.push_child(Element::new("username", NS_REGISTER).with_text(nick.as_str()));
            }
            let mut field = Field::new(NICK_FIELD, FieldType::TextSingle)
                .with_label("Nickname")
                .required();
            if let Some(nick) = reserved {
                field = field.with_value(nick);
            }
            let form = Form::new(FormType::Form)
                .with_field(Field::form_type(NS_MUC_REGISTER))
                .with_field(field);
            answer.push_child(form.to_element());
            return sink.emit(stanza::iq_result(iq).with_child(answer));
        }
        let form = match Form::find_in(query) {
            Some(Ok(form)) => form,
            _ => return self.error(iq, Condition::BadRequest, sink),
        };
        match form.kind {
            FormType::Cancel => return sink.emit(stanza::iq_result(iq)),
            FormType::Submit => {}
            FormType::Form | FormType::Result => {
                return self.error(iq, Condition::BadRequest, sink);
            }
        }
        if form.form_type().is_some_and(|t| t != NS_MUC_REGISTER) {
            return self.error(iq, Condition::BadRequest, sink);
        }
        let Some(nick) = form
            .value(NICK_FIELD)
            .map(str::trim)
            .filter(|n| !n.is_empty())
        else {
            return self.error_with(
                iq,
                StanzaError::new(Condition::BadRequest).with_text("a nickname is required"),
                sink,
            );
        };
        if let Err(error) = check_nick(nick) {
            return self.error_with(iq, error, sink);
        }
        // §7.10: the nickname must not be anyone else's.
        let taken = self.reserved_by(nick).is_some_and(|owner| *owner != bare)
            || self.occupants.get(nick).is_some_and(|o| o.bare != bare);
        if taken {
            return self.error(iq, Condition::Conflict, sink);
        }
        if affiliation == Affiliation::None
            && self.affiliations.len() >= env.settings.max_affiliations
        {
            return self.error(iq, Condition::ResourceConstraint, sink);
        }
        let stored = self.stored_affiliation(&bare);
        let new = stored.max(Affiliation::Member);
        self.set_affiliation(
            env,
            &bare,
            new,
            NickChange::Set(nick.to_string()),
            None,
            None,
            sink,
        );
        sink.reply(stanza::iq_result(iq));
    }

    /// §5.2.1 "Register with Open Room": outcasts never; unaffiliated users
    /// only where the service allows it (otherwise membership comes from
    /// an admin); members and above may (re)reserve their nickname.
    fn may_register(&self, env: &Env, affiliation: Affiliation) -> Result<(), Condition> {
        match affiliation {
            Affiliation::Outcast => Err(Condition::Forbidden),
            Affiliation::None if !env.settings.unaffiliated_registration => {
                Err(Condition::RegistrationRequired)
            }
            Affiliation::None if self.config.members_only => Err(Condition::RegistrationRequired),
            _ => Ok(()),
        }
    }

    /// XEP-0077 `<remove/>`: a member becomes unaffiliated (and leaves a
    /// members-only room, 321); admins and owners only give up their
    /// reserved nickname.
    fn deregister(&mut self, env: &Env, iq: &Element, bare: &Jid, sink: &mut dyn Sink) {
        let Some(record) = self.affiliations.get(bare) else {
            return self.error(iq, Condition::ItemNotFound, sink);
        };
        match record.affiliation {
            Affiliation::Outcast => return self.error(iq, Condition::Forbidden, sink),
            Affiliation::Member | Affiliation::None => {
                self.set_affiliation(
                    env,
                    bare,
                    Affiliation::None,
                    NickChange::Clear,
                    None,
                    None,
                    sink,
                );
            }
            a @ (Affiliation::Admin | Affiliation::Owner) => {
                self.set_affiliation(env, bare, a, NickChange::Clear, None, None, sink);
            }
        }
        sink.reply(stanza::iq_result(iq));
    }
}
