//! Service discovery of a room (XEP-0045 §6.4, §6.5, §7.12): its identity,
//! the features that describe its type, the `muc#roominfo` form, its
//! occupants, and the `x-roomuser-item` node with a user's reserved nick.

use crate::forms::{Field, FieldType, Form, FormType};
use crate::jid::Jid;
use crate::stanza::{self, Condition};
use crate::xml::Element;

use super::room::{Room, Sink};
use super::{
    NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC, NS_MUC_REQUEST, NS_MUC_ROOMINFO, NS_OCCUPANT_ID,
    NS_REGISTER, NS_SELF_PING, NS_STABLE_ID,
};

pub const NODE_ROOMUSER: &str = "x-roomuser-item";
const NODE_TRAFFIC: &str = "http://jabber.org/protocol/muc#traffic";

pub fn identity(name: &str) -> Element {
    Element::new("identity", NS_DISCO_INFO)
        .with_attr("category", "conference")
        .with_attr("type", "text")
        .with_attr("name", name)
}

pub fn feature(var: &str) -> Element {
    Element::new("feature", NS_DISCO_INFO).with_attr("var", var)
}

impl Room {
    pub(super) fn disco_info(&self, iq: &Element, from: &Jid, sink: &mut dyn Sink) {
        let node = iq.first_child().and_then(|q| q.attr("node"));
        let answer = match node {
            None => self.info(),
            Some(NODE_ROOMUSER) => {
                // §7.12: the user's reserved nick, or an empty answer.
                let mut q = Element::new("query", NS_DISCO_INFO).with_attr("node", NODE_ROOMUSER);
                if let Some(nick) = self
                    .affiliations
                    .get(&from.to_bare())
                    .and_then(|r| r.nick.as_deref())
                {
                    q.push_child(identity(nick));
                }
                q
            }
            // §16.1.1: the room passes every namespace through.
            Some(NODE_TRAFFIC) => return self.error(iq, Condition::ServiceUnavailable, sink),
            Some(_) => return self.error(iq, Condition::ItemNotFound, sink),
        };
        sink.emit(stanza::iq_result(iq).with_child(answer));
    }

    fn info(&self) -> Element {
        let c = &self.config;
        let name = if c.name.is_empty() {
            self.jid.local().unwrap_or_default()
        } else {
            c.name.as_str()
        };
        let mut q = Element::new("query", NS_DISCO_INFO).with_child(identity(name));
        for var in [
            NS_MUC,
            NS_STABLE_ID,
            NS_SELF_PING,
            NS_OCCUPANT_ID,
            NS_DISCO_INFO,
            NS_DISCO_ITEMS,
            NS_REGISTER,
            NS_MUC_REQUEST,
            if c.public { "muc_public" } else { "muc_hidden" },
            if c.persistent {
                "muc_persistent"
            } else {
                "muc_temporary"
            },
            if c.members_only {
                "muc_membersonly"
            } else {
                "muc_open"
            },
            if c.moderated {
                "muc_moderated"
            } else {
                "muc_unmoderated"
            },
            if c.non_anonymous() {
                "muc_nonanonymous"
            } else {
                "muc_semianonymous"
            },
            if c.password.is_some() {
                "muc_passwordprotected"
            } else {
                "muc_unsecured"
            },
        ] {
            q.push_child(feature(var));
        }
        // Stored rooms give their messages stanza ids, which moderators
        // name to retract one (XEP-0359, XEP-0425); those that log answer
        // archive queries (XEP-0313).
        if c.persistent {
            q.push_child(feature(crate::stanza::NS_SID));
            q.push_child(feature(super::moderation::NS_MODERATE));
        }
        if c.archived() {
            q.push_child(feature(crate::stanza::NS_MAM));
            q.push_child(feature(crate::archive::NS_MAM_EXTENDED));
        }
        let subject = self
            .subject
            .as_ref()
            .map(|s| s.text.clone())
            .unwrap_or_default();
        let form = Form::new(FormType::Result)
            .with_field(Field::form_type(NS_MUC_ROOMINFO))
            .with_field(
                Field::new("muc#roomconfig_roomname", FieldType::TextSingle)
                    .with_label("Title")
                    .with_value(c.name.as_str()),
            )
            .with_field(
                Field::new("muc#roominfo_description", FieldType::TextSingle)
                    .with_label("Description")
                    .with_value(c.description.as_str()),
            )
            .with_field(
                Field::new("muc#roominfo_subject", FieldType::TextSingle)
                    .with_label("Subject")
                    .with_value(subject),
            )
            .with_field(
                Field::new("muc#roominfo_occupants", FieldType::TextSingle)
                    .with_label("Number of occupants")
                    .with_value(self.occupant_count().to_string()),
            )
            .with_field(
                Field::new("muc#roominfo_lang", FieldType::TextSingle)
                    .with_label("Language of discussion")
                    .with_value(c.language.as_str()),
            )
            .with_field(
                Field::new("muc#roomconfig_changesubject", FieldType::Boolean)
                    .with_label("Occupants may change the subject")
                    .with_bool(c.occupants_may_change_subject),
            )
            .with_field(
                Field::new("muc#roomconfig_allowinvites", FieldType::Boolean)
                    .with_label("Members may invite others")
                    .with_bool(c.members_may_invite),
            )
            .with_field(
                Field::new("muc#roomconfig_allowpm", FieldType::ListSingle)
                    .with_label("Who may send private messages")
                    .with_value(c.allow_pm.as_str()),
            )
            .with_field(
                Field::new("muc#maxhistoryfetch", FieldType::TextSingle)
                    .with_label("Messages of history sent on joining")
                    .with_value(c.history_length.to_string()),
            )
            .with_field(
                Field::new("muc#roomconfig_enablelogging", FieldType::Boolean)
                    .with_label("Discussions are logged")
                    .with_bool(c.logging),
            );
        q.push_child(form.to_element());
        q
    }

    /// §6.5: occupants are listed to occupants, and to anyone for a public
    /// room that is open to all; otherwise the list is private (empty).
    pub(super) fn disco_items(&self, iq: &Element, from: &Jid, sink: &mut dyn Sink) {
        if iq.first_child().and_then(|q| q.attr("node")).is_some() {
            return self.error(iq, Condition::ItemNotFound, sink);
        }
        let c = &self.config;
        let open = c.public && !c.members_only && c.password.is_none();
        let mut q = Element::new("query", NS_DISCO_ITEMS);
        if open || self.by_real.contains_key(from) {
            for nick in self.occupants.keys() {
                q.push_child(
                    Element::new("item", NS_DISCO_ITEMS).with_attr("jid", self.occupant_jid(nick)),
                );
            }
        }
        sink.emit(stanza::iq_result(iq).with_child(q));
    }
}
