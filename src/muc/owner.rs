//! `muc#owner` (XEP-0045 §10): the configuration form, instant and
//! reserved rooms, later reconfiguration with its notifications (§10.2.1),
//! and destroying a room (§10.9).

use crate::forms::{Form, FormType};
use crate::jid::Jid;
use crate::stanza::{self, Condition, StanzaError};
use crate::store::MucWrite;
use crate::xml::Element;

use super::NS_MUC_OWNER;
use super::admin::NickChange;
use super::config::{self, ConfigError};
use super::roles::Affiliation;
use super::room::{Actor, Change, Env, Room, Sink, bounded_reason, status};

impl Room {
    pub(super) fn owner_iq(&mut self, env: &Env, iq: &Element, from: &Jid, sink: &mut dyn Sink) {
        if self.affiliation(env, &from.to_bare()) != Affiliation::Owner {
            return self.error(iq, Condition::Forbidden, sink);
        }
        let Some(query) = iq.first_child() else {
            return self.error(iq, Condition::BadRequest, sink);
        };
        if iq.attr("type") == Some("get") {
            if query.children().next().is_some() {
                return self.error(iq, Condition::BadRequest, sink);
            }
            let owners = self.owners();
            let admins = self.with_affiliation(Affiliation::Admin);
            let form = self
                .config
                .to_form(&self.jid, &env.bounds(), &owners, &admins);
            let answer = Element::new("query", NS_MUC_OWNER).with_child(form.to_element());
            return sink.emit(stanza::iq_result(iq).with_child(answer));
        }
        if let Some(destroy) = query.get_child("destroy", NS_MUC_OWNER) {
            let alternate = match destroy.attr("jid").map(Jid::parse) {
                None => None,
                Some(Ok(jid)) => Some(jid),
                Some(Err(_)) => return self.error(iq, Condition::JidMalformed, sink),
            };
            let reason = destroy
                .get_child("reason", NS_MUC_OWNER)
                .and_then(|r| bounded_reason(r.text()));
            let password = destroy
                .get_child("password", NS_MUC_OWNER)
                .map(|p| p.text());
            self.destroy(
                env,
                reason.as_deref(),
                alternate.as_ref(),
                password.as_deref(),
                sink,
            );
            return sink.reply(stanza::iq_result(iq));
        }
        let form = match Form::find_in(query) {
            Some(Ok(form)) => form,
            Some(Err(e)) => {
                return self.error_with(
                    iq,
                    StanzaError::new(Condition::BadRequest).with_text(e.to_string()),
                    sink,
                );
            }
            None => return self.error(iq, Condition::BadRequest, sink),
        };
        match form.kind {
            FormType::Cancel => {
                // §10.1.3: cancelling the initial configuration destroys
                // the room; a later cancellation changes nothing.
                if self.locked {
                    self.destroy(env, None, None, None, sink);
                }
                sink.reply(stanza::iq_result(iq));
            }
            FormType::Submit => match self.configure(env, &form, iq, from, sink) {
                Ok(()) => {}
                Err(e) => self.error_with(
                    iq,
                    StanzaError::new(match e {
                        ConfigError::NoOwner => Condition::Conflict,
                        ConfigError::TooManyAffiliations(_) => Condition::ResourceConstraint,
                        _ => Condition::BadRequest,
                    })
                    .with_text(e.to_string()),
                    sink,
                ),
            },
            FormType::Form | FormType::Result => self.error(iq, Condition::BadRequest, sink),
        }
    }

    /// Applies a submitted configuration form, or changes nothing if any
    /// of it is invalid. The owner's iq result comes first, then what the
    /// change causes: affiliation changes, removals from a room turned
    /// members-only, and the status notices to the occupants (§10.2.1),
    /// the first configuration of a new room included.
    fn configure(
        &mut self,
        env: &Env,
        form: &Form,
        iq: &Element,
        from: &Jid,
        sink: &mut dyn Sink,
    ) -> Result<(), ConfigError> {
        let submission = config::apply_submission(&self.config, form, &env.bounds())?;
        let actor_bare = from.to_bare();
        // The owner and admin fields are complete lists; turn them into
        // changes, checked before anything is applied.
        let mut changes: Vec<(Jid, Affiliation)> = Vec::new();
        if let Some(owners) = &submission.owners {
            for old in self.owners() {
                if !owners.contains(old) {
                    changes.push((old.clone(), Affiliation::None));
                }
            }
            for new in owners {
                if self.stored_affiliation(new) != Affiliation::Owner {
                    changes.push((new.clone(), Affiliation::Owner));
                }
            }
        }
        if let Some(admins) = &submission.admins {
            for old in self.with_affiliation(Affiliation::Admin) {
                if !admins.contains(old) && !changes.iter().any(|(j, _)| j == old) {
                    changes.push((old.clone(), Affiliation::None));
                }
            }
            for new in admins {
                let owner_now = submission.owners.as_ref().is_some_and(|o| o.contains(new))
                    || (submission.owners.is_none()
                        && self.stored_affiliation(new) == Affiliation::Owner);
                if !owner_now && self.stored_affiliation(new) != Affiliation::Admin {
                    changes.retain(|(j, _)| j != new);
                    changes.push((new.clone(), Affiliation::Admin));
                }
            }
        }
        let added = changes
            .iter()
            .filter(|(j, a)| {
                *a != Affiliation::None && self.stored_affiliation(j) == Affiliation::None
            })
            .count();
        if self.affiliations.len() + added > env.settings.max_affiliations {
            return Err(ConfigError::TooManyAffiliations(
                env.settings.max_affiliations,
            ));
        }
        let owners_left = self
            .owners()
            .into_iter()
            .filter(|o| {
                !changes
                    .iter()
                    .any(|(j, a)| j == *o && *a != Affiliation::Owner)
            })
            .count()
            + changes
                .iter()
                .filter(|(_, a)| *a == Affiliation::Owner)
                .count();
        if owners_left == 0 && !(env.is_server_admin)(&actor_bare) {
            return Err(ConfigError::NoOwner);
        }

        let old = std::mem::replace(&mut self.config, submission.config);
        self.locked = false;
        match (old.persistent, self.config.persistent) {
            (false, true) => {
                self.save_everything(sink);
            }
            (true, false) => sink.store(MucWrite::DeleteRoom {
                room: self.jid.to_string(),
            }),
            (true, true) => self.save_room(sink),
            (false, false) => {}
        }
        self.history.trim(
            self.config.history_length as usize,
            super::room::MAX_HISTORY_BYTES,
        );
        sink.reply(stanza::iq_result(iq));
        let actor = Actor {
            nick: self.by_real.get(from).cloned(),
            jid: from.clone(),
        };
        for (jid, affiliation) in changes {
            self.set_affiliation(
                env,
                &jid,
                affiliation,
                NickChange::Keep,
                None,
                Some(&actor),
                sink,
            );
        }
        // §10.2: a room turned members-only loses its non-members (322).
        if self.config.members_only && !old.members_only {
            let outsiders: Vec<String> = self
                .occupants
                .values()
                .filter(|o| self.affiliation(env, &o.bare) < Affiliation::Member)
                .map(|o| o.nick.clone())
                .collect();
            for nick in outsiders {
                self.remove_occupant(
                    env,
                    &nick,
                    Change {
                        codes: &[322],
                        ..Change::default()
                    },
                    sink,
                );
            }
        }
        let codes = config::change_codes(&old, &self.config);
        if !codes.is_empty() {
            let mut x = Element::new("x", super::NS_MUC_USER);
            for code in codes {
                x.push_child(status(code));
            }
            self.room_message(x, false, sink);
        }
        Ok(())
    }

    /// §10.9: everyone is removed with the reason and alternate venue, and
    /// the room ceases to exist (also on disk).
    pub fn destroy(
        &mut self,
        env: &Env,
        reason: Option<&str>,
        alternate: Option<&Jid>,
        password: Option<&str>,
        sink: &mut dyn Sink,
    ) {
        if self.config.persistent {
            sink.store(MucWrite::DeleteRoom {
                room: self.jid.to_string(),
            });
        }
        let mut destroy = Element::new("destroy", super::NS_MUC_USER);
        if let Some(jid) = alternate {
            destroy.set_attr("jid", jid.as_str());
        }
        if let Some(reason) = reason {
            destroy.push_child(Element::new("reason", super::NS_MUC_USER).with_text(reason));
        }
        if let Some(password) = password {
            destroy.push_child(Element::new("password", super::NS_MUC_USER).with_text(password));
        }
        let nicks: Vec<String> = self.occupants.keys().cloned().collect();
        for nick in nicks {
            self.remove_occupant(
                env,
                &nick,
                Change {
                    destroy: Some(&destroy),
                    only_self: true,
                    ..Change::default()
                },
                sink,
            );
        }
        self.destroyed = true;
    }
}
