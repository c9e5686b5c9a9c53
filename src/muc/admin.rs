//! `muc#admin` (XEP-0045 §8 moderator and §9 admin use cases, §10.3–§10.8
//! for owners and admins): reading the role and affiliation lists, and
//! changing roles and affiliations, all or nothing, each change with the
//! error the XEP names when it is not allowed.

use std::collections::HashSet;

use crate::jid::Jid;
use crate::stanza::{self, Condition, StanzaError};
use crate::xml::Element;

use super::NS_MUC_ADMIN;
use super::presence::check_nick;
use super::record::AffiliationRecord;
use super::roles::{self, Affiliation, ListKind, Role};
use super::room::{Actor, Change, Env, Room, Sink, bounded_reason, status};

/// Items one `muc#admin` set may carry.
const MAX_ITEMS: usize = 100;

/// What an affiliation change does to the user's reserved nickname.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NickChange {
    Keep,
    Set(String),
    Clear,
}

/// One validated change, ready to apply.
enum Planned {
    Role {
        nick: String,
        role: Role,
        reason: Option<String>,
    },
    Affiliation {
        jid: Jid,
        affiliation: Affiliation,
        nick: NickChange,
        reason: Option<String>,
    },
}

impl Room {
    pub(super) fn admin_iq(&mut self, env: &Env, iq: &Element, from: &Jid, sink: &mut dyn Sink) {
        let Some(query) = iq.first_child() else {
            return self.error(iq, Condition::BadRequest, sink);
        };
        let items: Vec<&Element> = query
            .children()
            .filter(|c| c.is("item", NS_MUC_ADMIN))
            .collect();
        if iq.attr("type") == Some("get") {
            return match items.as_slice() {
                [item] => self.admin_list(env, iq, item, from, sink),
                _ => self.error(iq, Condition::BadRequest, sink),
            };
        }
        if items.is_empty() || items.len() > MAX_ITEMS {
            return self.error(iq, Condition::BadRequest, sink);
        }
        let plan = match self.plan(env, &items, from) {
            Ok(plan) => plan,
            Err(error) => return self.error_with(iq, error, sink),
        };
        let actor = Actor {
            nick: self.by_real.get(from).cloned(),
            jid: from.clone(),
        };
        for change in plan {
            match change {
                Planned::Role { nick, role, reason } => {
                    self.set_role(env, &nick, role, Some(&actor), reason.as_deref(), sink)
                }
                Planned::Affiliation {
                    jid,
                    affiliation,
                    nick,
                    reason,
                } => self.set_affiliation(env, &jid, affiliation, nick, reason, Some(&actor), sink),
            }
        }
        sink.reply(stanza::iq_result(iq));
    }

    /// §8.5, §9.2, §9.5, §9.8, §10.5, §10.8: one list.
    fn admin_list(&self, env: &Env, iq: &Element, item: &Element, from: &Jid, sink: &mut dyn Sink) {
        let list = match (item.attr("affiliation"), item.attr("role")) {
            (Some(a), None) => match Affiliation::parse(a) {
                Some(a) => ListKind::Affiliation(a),
                None => return self.error(iq, Condition::BadRequest, sink),
            },
            (None, Some(r)) => match Role::parse(r) {
                Some(r) if r != Role::None => ListKind::Role(r),
                _ => return self.error(iq, Condition::BadRequest, sink),
            },
            _ => return self.error(iq, Condition::BadRequest, sink),
        };
        let actor_role = self.occupant_of(from).map_or(Role::None, |o| o.role);
        let actor_affiliation = self.affiliation(env, &from.to_bare());
        if !roles::may_read_list(
            list,
            actor_role,
            actor_affiliation,
            self.config.non_anonymous(),
        ) {
            return self.error(iq, Condition::Forbidden, sink);
        }
        let mut query = Element::new("query", NS_MUC_ADMIN);
        match list {
            ListKind::Affiliation(Affiliation::None) => {}
            ListKind::Affiliation(a) => {
                for jid in self.with_affiliation(a) {
                    let Some(record) = self.affiliations.get(jid) else {
                        continue;
                    };
                    let mut el = Element::new("item", NS_MUC_ADMIN)
                        .with_attr("affiliation", a.as_str())
                        .with_attr("jid", jid.as_str());
                    if let Some(nick) = &record.nick {
                        el.set_attr("nick", nick.as_str());
                    }
                    if let Some(reason) = &record.reason {
                        el.push_child(
                            Element::new("reason", NS_MUC_ADMIN).with_text(reason.as_str()),
                        );
                    }
                    query.push_child(el);
                }
            }
            ListKind::Role(r) => {
                for occ in self.occupants.values().filter(|o| o.role == r) {
                    let mut el = Element::new("item", NS_MUC_ADMIN)
                        .with_attr("nick", occ.nick.as_str())
                        .with_attr("role", r.as_str())
                        .with_attr("affiliation", self.affiliation(env, &occ.bare).as_str());
                    if let Some(s) = occ.primary() {
                        el.set_attr("jid", s.jid.as_str());
                    }
                    query.push_child(el);
                }
            }
        }
        sink.emit(stanza::iq_result(iq).with_child(query));
    }

    /// Checks every item before anything changes (§9.2: a list change
    /// with one forbidden item changes nothing).
    fn plan(&self, env: &Env, items: &[&Element], from: &Jid) -> Result<Vec<Planned>, StanzaError> {
        let actor_bare = from.to_bare();
        let actor_role = self.occupant_of(from).map_or(Role::None, |o| o.role);
        let actor_affiliation = self.affiliation(env, &actor_bare);
        // Owners as they will be after each change, for the last-owner rule.
        let mut owners: HashSet<Jid> = self.owners().into_iter().cloned().collect();
        // Every item is checked against the room as it is now, which holds
        // only while no two items change the same user: otherwise one
        // could make someone an owner, a second take it back unseen (its
        // "current" affiliation being the old one) and a third remove the
        // last real owner.
        let mut changed: HashSet<Jid> = HashSet::new();
        // Likewise nicknames reserved by this request: two items may not
        // reserve one nick for two users.
        let mut reserving: HashSet<&str> = HashSet::new();
        let mut new_entries = 0usize;
        let mut plan = Vec::with_capacity(items.len());
        for item in items {
            let reason = item
                .get_child("reason", NS_MUC_ADMIN)
                .and_then(|r| bounded_reason(r.text()));
            match (item.attr("affiliation"), item.attr("role")) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(StanzaError::new(Condition::BadRequest)
                        .with_text("an item changes either a role or an affiliation"));
                }
                (None, Some(role)) => {
                    let role = Role::parse(role).ok_or(Condition::BadRequest)?;
                    let nick = match (item.attr("nick"), item.attr("jid")) {
                        (Some(nick), _) => nick.to_string(),
                        (None, Some(jid)) => {
                            let jid = Jid::parse(jid).map_err(|_| Condition::JidMalformed)?;
                            self.by_real
                                .get(&jid)
                                .cloned()
                                .ok_or(Condition::ItemNotFound)?
                        }
                        (None, None) => return Err(Condition::BadRequest.into()),
                    };
                    let target = self.occupants.get(&nick).ok_or(Condition::ItemNotFound)?;
                    let target_affiliation = self.affiliation(env, &target.bare);
                    roles::check_role_change(
                        actor_role,
                        actor_affiliation,
                        target.role,
                        target_affiliation,
                        role,
                    )?;
                    plan.push(Planned::Role { nick, role, reason });
                }
                (Some(affiliation), None) => {
                    let affiliation =
                        Affiliation::parse(affiliation).ok_or(Condition::BadRequest)?;
                    // §10.3: a full JID stands for its bare JID; clients
                    // that name only the occupant (Prosody issue 1224)
                    // mean that occupant's user.
                    let jid = match (item.attr("jid"), item.attr("nick")) {
                        (Some(jid), _) => Jid::parse(jid)
                            .map_err(|_| Condition::JidMalformed)?
                            .to_bare(),
                        (None, Some(nick)) => self
                            .occupants
                            .get(nick)
                            .map(|o| o.bare.clone())
                            .ok_or(Condition::ItemNotFound)?,
                        (None, None) => return Err(Condition::BadRequest.into()),
                    };
                    if !changed.insert(jid.clone()) {
                        return Err(StanzaError::new(Condition::BadRequest)
                            .with_text("one item per user: this request names a user twice"));
                    }
                    let current = self.stored_affiliation(&jid);
                    if current == Affiliation::Owner && affiliation != Affiliation::Owner {
                        owners.remove(&jid);
                    }
                    if affiliation == Affiliation::Owner {
                        owners.insert(jid.clone());
                    }
                    roles::check_affiliation_change(
                        actor_affiliation,
                        current,
                        affiliation,
                        jid == actor_bare,
                        owners.len(),
                    )?;
                    let nick = match item.attr("nick") {
                        _ if affiliation <= Affiliation::None => NickChange::Clear,
                        // A nick given to name the occupant (no jid) is
                        // not a reservation request.
                        Some(_) if item.attr("jid").is_none() => NickChange::Keep,
                        Some("") => NickChange::Clear,
                        Some(nick) => {
                            check_nick(nick)?;
                            if self.reserved_by(nick).is_some_and(|owner| *owner != jid)
                                || !reserving.insert(nick)
                            {
                                return Err(StanzaError::new(Condition::Conflict)
                                    .with_text("this nickname is reserved by someone else"));
                            }
                            NickChange::Set(nick.to_string())
                        }
                        None => NickChange::Keep,
                    };
                    if current == Affiliation::None && affiliation != Affiliation::None {
                        new_entries += 1;
                        if self.affiliations.len() + new_entries > env.settings.max_affiliations {
                            return Err(StanzaError::new(Condition::ResourceConstraint)
                                .with_text("this room has too many affiliated users"));
                        }
                    }
                    plan.push(Planned::Affiliation {
                        jid,
                        affiliation,
                        nick,
                        reason,
                    });
                }
            }
        }
        Ok(plan)
    }

    /// Changes a user's affiliation and carries out what follows from it:
    /// storage, removal of a banned user (301) or of a non-member from a
    /// members-only room (321), the eviction of whoever holds a newly
    /// reserved nick (307), updated presence for the user's occupants, or
    /// a notice to the room when the user is not in it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn set_affiliation(
        &mut self,
        env: &Env,
        jid: &Jid,
        affiliation: Affiliation,
        nick: NickChange,
        reason: Option<String>,
        actor: Option<&Actor>,
        sink: &mut dyn Sink,
    ) {
        let old = self.stored_affiliation(jid);
        let previous_nick = self.affiliations.get(jid).and_then(|r| r.nick.clone());
        let reserved = match (&nick, affiliation) {
            (_, Affiliation::None | Affiliation::Outcast) => None,
            (NickChange::Keep, _) => previous_nick,
            (NickChange::Set(n), _) => Some(n.clone()),
            (NickChange::Clear, _) => None,
        };
        if affiliation == Affiliation::None {
            self.affiliations.remove(jid);
        } else {
            self.affiliations.insert(
                jid.clone(),
                AffiliationRecord {
                    affiliation,
                    nick: reserved.clone(),
                    reason: reason.clone(),
                },
            );
        }
        self.save_affiliation(jid, sink);

        // Someone else in the newly reserved nickname has to go.
        if let Some(n) = &reserved
            && self.occupants.get(n).is_some_and(|o| o.bare != *jid)
        {
            self.remove_occupant(
                env,
                n,
                Change {
                    codes: &[307],
                    reason: Some("This nickname is reserved"),
                    ..Change::default()
                },
                sink,
            );
        }

        let nicks: Vec<String> = self
            .occupants
            .values()
            .filter(|o| o.bare == *jid)
            .map(|o| o.nick.clone())
            .collect();
        if nicks.is_empty() {
            // §9.1, §9.3-§9.7 (and §10.3): the room learns of the change
            // as a message: the item with its reason, and 301 for a ban.
            let mut item = Element::new("item", super::NS_MUC_USER)
                .with_attr("affiliation", affiliation.as_str())
                .with_attr("jid", jid.as_str());
            if let Some(reason) = &reason {
                item.push_child(Element::new("reason", super::NS_MUC_USER).with_text(reason));
            }
            let mut x = Element::new("x", super::NS_MUC_USER).with_child(item);
            if affiliation == Affiliation::Outcast {
                x.push_child(status(301));
            }
            self.room_message(x, true, sink);
            return;
        }
        let effective = self.affiliation(env, jid);
        for n in nicks {
            if effective == Affiliation::Outcast {
                self.remove_occupant(
                    env,
                    &n,
                    Change {
                        codes: &[301],
                        actor,
                        reason: reason.as_deref(),
                        ..Change::default()
                    },
                    sink,
                );
            } else if self.config.members_only && effective < Affiliation::Member {
                self.remove_occupant(
                    env,
                    &n,
                    Change {
                        codes: &[321],
                        actor,
                        reason: reason.as_deref(),
                        ..Change::default()
                    },
                    sink,
                );
            } else {
                let moderated = self.config.moderated;
                let Some(occ) = self.occupants.get_mut(&n) else {
                    continue;
                };
                let before = occ.role;
                occ.role = roles::role_after_affiliation_change(before, old, effective, moderated);
                let broadcast = self.config.broadcast;
                let visible = broadcast.includes(before) || broadcast.includes(occ.role);
                if let Some(occ) = self.occupants.get(&n) {
                    self.announce(
                        env,
                        occ,
                        &Change {
                            actor,
                            reason: reason.as_deref(),
                            visible: Some(visible),
                            ..Change::default()
                        },
                        sink,
                    );
                    self.refresh_view(env, &n, before, sink);
                }
            }
        }
    }
}
