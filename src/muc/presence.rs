//! Presence in a room (XEP-0045 §7.2 entering, §7.6 nickname changes, §7.7
//! availability, §7.14 exiting, presence probes, and §17 removal of an
//! occupant whose client answered with an error).

use crate::jid::{self, Jid};
use crate::stanza::{Condition, ErrorType, NS_STANZAS, StanzaError};
use crate::xml::{Element, NS_CLIENT};

use super::history::{self, Request};
use super::occupant::{Occupant, Session};
use super::roles::{self, Affiliation, Role};
use super::room::{Change, Room, Sink};
use super::{NS_MUC, NS_MUC_USER, NS_OCCUPANT_ID};

/// Largest presence payload (show, status, extensions) an occupant may
/// have the room keep and relay.
pub const MAX_PRESENCE_BYTES: usize = 8 * 1024;

impl Room {
    pub(super) fn on_presence(
        &mut self,
        env: &super::room::Env,
        stanza: Element,
        from: &Jid,
        to: &Jid,
        sink: &mut dyn Sink,
    ) {
        match stanza.attr("type") {
            None => self.on_available(env, stanza, from, to, sink),
            Some("unavailable") => self.on_unavailable(env, &stanza, from, sink),
            Some("error") => self.on_error_from_client(env, &stanza, from, sink),
            Some("probe") => self.on_probe(env, &stanza, from, to, sink),
            // Subscription requests to a room mean nothing (§17.2.1).
            Some(_) => {}
        }
    }

    fn on_available(
        &mut self,
        env: &super::room::Env,
        stanza: Element,
        from: &Jid,
        to: &Jid,
        sink: &mut dyn Sink,
    ) {
        // The room keeps every occupant's presence and sends it to each
        // newcomer: a bounded size keeps that from being a lever.
        let size: usize = reflected_payload(&stanza)
            .iter()
            .map(|c| c.to_bytes(NS_CLIENT).len())
            .sum();
        if size > MAX_PRESENCE_BYTES {
            return self.error_with(
                &stanza,
                StanzaError::new(Condition::PolicyViolation).with_text(format!(
                    "presence in a room is limited to {MAX_PRESENCE_BYTES} bytes"
                )),
                sink,
            );
        }
        let current = self.by_real.get(from).cloned();
        let requested = to.resource().map(str::to_string);
        match (current, requested) {
            (Some(current), None) => self.presence_update(env, &stanza, from, &current, sink),
            (Some(current), Some(nick)) if nick == current => {
                if stanza.get_child("x", NS_MUC).is_some() {
                    self.resync(env, &stanza, from, &current, sink);
                } else {
                    self.presence_update(env, &stanza, from, &current, sink);
                }
            }
            (Some(current), Some(nick)) => {
                self.change_nick(env, &stanza, from, &current, &nick, sink);
                // A join (with <x/>) under another nick is a client that
                // lost track of the room: once renamed, it gets the room's
                // state again (§7.2.1, as Prosody does).
                if stanza.get_child("x", NS_MUC).is_some()
                    && self.by_real.get(from).is_some_and(|n| *n == nick)
                {
                    self.send_room_state(env, &stanza, from, &nick, sink);
                }
            }
            // §7.2.1: no nickname, no entry.
            (None, None) => self.error(&stanza, Condition::JidMalformed, sink),
            // §7.2.19: presence without <x/> from a non-occupant is a
            // client that lost track of the room, not a join.
            (None, Some(nick)) if stanza.get_child("x", NS_MUC).is_none() => {
                sink.emit(not_in_room(&self.occupant_jid(&nick), from));
            }
            (None, Some(nick)) => self.join(env, &stanza, from, &nick, sink),
        }
    }

    /// §7.2: a user enters the room.
    fn join(
        &mut self,
        env: &super::room::Env,
        stanza: &Element,
        from: &Jid,
        nick: &str,
        sink: &mut dyn Sink,
    ) {
        if let Err(error) = check_nick(nick) {
            return self.error_with(stanza, error, sink);
        }
        let bare = from.to_bare();
        let affiliation = self.affiliation(env, &bare);
        if self.locked && affiliation != Affiliation::Owner {
            return self.error(stanza, Condition::ItemNotFound, sink);
        }
        if let Err(condition) = roles::may_enter(affiliation, self.config.members_only) {
            return self.error(stanza, condition, sink);
        }
        if let Some(password) = &self.config.password
            && affiliation < Affiliation::Admin
        {
            let given = stanza
                .get_child("x", NS_MUC)
                .and_then(|x| x.get_child("password", NS_MUC))
                .map(|p| p.text());
            if given.as_deref() != Some(password.as_str()) {
                return self.error(stanza, Condition::NotAuthorized, sink);
            }
        }
        let same_user = self.occupants.get(nick).map(|o| o.bare == bare);
        if same_user == Some(false) || self.reserved_by(nick).is_some_and(|owner| *owner != bare) {
            return self.error(stanza, Condition::Conflict, sink);
        }
        if same_user.is_none() && !self.has_room_for(env, affiliation) {
            return self.error_with(
                stanza,
                StanzaError::new(Condition::ServiceUnavailable)
                    .with_type(ErrorType::Wait)
                    .with_text("the room is full"),
                sink,
            );
        }
        let Some(role) =
            roles::initial_role(affiliation, self.config.moderated, self.config.members_only)
        else {
            return self.error(stanza, Condition::Forbidden, sink);
        };
        let session = Session {
            jid: from.clone(),
            presence: reflected_payload(stanza),
        };
        self.by_real.insert(from.clone(), nick.to_string());
        match self.occupants.get_mut(nick) {
            // §7.2.9: another client of the same user joins under its nick.
            Some(occ) => occ.sessions.push(session),
            None => {
                let id = self.occupant_id(env, &bare);
                let occ = Occupant::new(
                    nick.to_string(),
                    session,
                    role,
                    id,
                    env.clock,
                    env.settings.message_burst,
                );
                self.occupants.insert(nick.to_string(), occ);
            }
        }
        self.send_room_state(env, stanza, from, nick, sink);
    }

    /// The room can take one more occupant; admins and owners may go a
    /// little beyond the limit (§7.2.10) so the room cannot be stuffed
    /// against them.
    pub(super) fn has_room_for(&self, env: &super::room::Env, affiliation: Affiliation) -> bool {
        let limit = self.config.occupant_limit(&env.bounds());
        let count = self.occupants.len();
        if affiliation >= Affiliation::Admin {
            count < limit + limit / 10 + 1
        } else {
            count < limit
        }
    }

    /// After `nick`'s role changed from `before`: if that changed whether
    /// it may see real JIDs (a new moderator in a semi-anonymous room, or
    /// one who lost the role), its clients get everyone else's presence
    /// again, with or without JIDs (§7.2.4; as Prosody does).
    pub(super) fn refresh_view(
        &self,
        env: &super::room::Env,
        nick: &str,
        before: Role,
        sink: &mut dyn Sink,
    ) {
        let Some(occ) = self.occupants.get(nick) else {
            return;
        };
        let sees = self.sees_jids(occ);
        let saw = self.config.non_anonymous() || before == Role::Moderator;
        if sees == saw {
            return;
        }
        for other in self.occupants.values().filter(|o| o.nick != nick) {
            if !self.config.broadcast.includes(other.role) {
                continue;
            }
            let p = self.presence_of(env, other, &Change::default(), false, sees, None);
            for client in occ.session_jids() {
                let mut copy = p.clone();
                copy.set_attr("to", client.as_str());
                sink.emit(copy);
            }
        }
    }

    /// What a joining (or resynchronising) client gets, in the order of
    /// §7.1: the others' presence, its own, the history, the subject; the
    /// others learn of it in between.
    fn send_room_state(
        &mut self,
        env: &super::room::Env,
        stanza: &Element,
        from: &Jid,
        nick: &str,
        sink: &mut dyn Sink,
    ) {
        let Some(occ) = self.occupants.get(nick) else {
            return;
        };
        let sees = self.sees_jids(occ);
        for other in self.occupants.values().filter(|o| o.nick != nick) {
            if !self.config.broadcast.includes(other.role) {
                continue;
            }
            let mut p = self.presence_of(env, other, &Change::default(), false, sees, None);
            p.set_attr("to", from.as_str());
            sink.emit(p);
        }
        if self.config.broadcast.offline_members {
            self.send_offline_members(env, from, sees, sink);
        }
        let mut codes: Vec<u16> = Vec::new();
        if self.just_created {
            codes.push(201);
        }
        if self.config.non_anonymous() {
            codes.push(100);
        }
        if self.config.archived() {
            codes.push(170);
        }
        // The others (and the user's other clients in the same nick) see
        // the new presence; the joining client gets its own self-presence.
        self.announce(
            env,
            occ,
            &Change {
                skip_session: Some(from),
                ..Change::default()
            },
            sink,
        );
        let own = Change {
            self_codes: &codes,
            ..Change::default()
        };
        let mut p = self.presence_of(env, occ, &own, true, sees, Some(from));
        p.set_attr("to", from.as_str());
        if let Some(id) = stanza.attr("id") {
            p.set_attr("id", id);
        }
        sink.emit(p);
        self.just_created = false;
        let request = Request::from_join(stanza.get_child("x", NS_MUC));
        for entry in self
            .history
            .select(&request, env.now, self.config.history_length as usize)
        {
            let mut m = entry.stanza.clone();
            m.set_attr("to", from.as_str());
            m.push_child(history::delay(self.jid.as_str(), entry.stamp));
            sink.emit(m);
        }
        sink.emit(self.subject_message(from));
    }

    /// §7.2.15: the subject, from whoever set it, or empty.
    pub(super) fn subject_message(&self, to: &Jid) -> Element {
        let mut m = Element::new("message", NS_CLIENT)
            .with_attr("type", "groupchat")
            .with_attr("to", to.as_str());
        match &self.subject {
            Some(s) => {
                let from = if s.nick.is_empty() {
                    self.jid.to_string()
                } else {
                    self.occupant_jid(&s.nick)
                };
                m.set_attr("from", from);
                m.push_child(Element::new("subject", NS_CLIENT).with_text(s.text.as_str()));
                m.push_child(history::delay(self.jid.as_str(), s.stamp));
            }
            None => {
                m.set_attr("from", self.jid.as_str());
                m.push_child(Element::new("subject", NS_CLIENT));
            }
        }
        m
    }

    /// With `none` among the roles to broadcast: members with a reserved
    /// nickname who are not here, shown as unavailable.
    fn send_offline_members(
        &self,
        env: &super::room::Env,
        to: &Jid,
        sees_jids: bool,
        sink: &mut dyn Sink,
    ) {
        let mut offline: Vec<(&Jid, &str)> = self
            .affiliations
            .iter()
            .filter_map(|(jid, r)| r.nick.as_deref().map(|n| (jid, n)))
            .filter(|(jid, nick)| {
                !self.occupants.contains_key(*nick)
                    && !self.occupants.values().any(|o| o.bare == **jid)
            })
            .collect();
        offline.sort();
        for (jid, nick) in offline {
            let mut p = self.offline_presence(env, jid, nick, sees_jids);
            p.set_attr("to", to.as_str());
            sink.emit(p);
        }
    }

    /// An affiliated user with a reserved nickname who is not in the room.
    fn offline_presence(
        &self,
        env: &super::room::Env,
        bare: &Jid,
        nick: &str,
        sees_jids: bool,
    ) -> Element {
        let mut item = Element::new("item", NS_MUC_USER)
            .with_attr("affiliation", self.affiliation(env, bare).as_str())
            .with_attr("role", Role::None.as_str())
            .with_attr("nick", nick);
        if sees_jids {
            item.set_attr("jid", bare.as_str());
        }
        Element::new("presence", NS_CLIENT)
            .with_attr("from", self.occupant_jid(nick))
            .with_attr("type", "unavailable")
            .with_child(Element::new("x", NS_MUC_USER).with_child(item))
            .with_child(
                Element::new("occupant-id", NS_OCCUPANT_ID)
                    .with_attr("id", self.occupant_id(env, bare)),
            )
    }

    /// §7.2.1 (last paragraph): a join from a client already in the room
    /// under that nick is a request to resynchronise.
    fn resync(
        &mut self,
        env: &super::room::Env,
        stanza: &Element,
        from: &Jid,
        nick: &str,
        sink: &mut dyn Sink,
    ) {
        let payload = reflected_payload(stanza);
        if let Some(occ) = self.occupants.get_mut(nick)
            && let Some(s) = occ.sessions.iter_mut().find(|s| s.jid == *from)
        {
            s.presence = payload;
        }
        self.send_room_state(env, stanza, from, nick, sink);
    }

    /// §7.7: new availability, shown to everyone.
    fn presence_update(
        &mut self,
        env: &super::room::Env,
        stanza: &Element,
        from: &Jid,
        nick: &str,
        sink: &mut dyn Sink,
    ) {
        if !self.take_token(env, nick) {
            return self.too_fast(stanza, sink);
        }
        let payload = reflected_payload(stanza);
        let Some(occ) = self.occupants.get_mut(nick) else {
            return;
        };
        // The updated client becomes the one whose presence is shown.
        if let Some(pos) = occ.sessions.iter().position(|s| s.jid == *from) {
            let mut s = occ.sessions.remove(pos);
            s.presence = payload;
            occ.sessions.push(s);
        }
        if let Some(occ) = self.occupants.get(nick) {
            self.announce(env, occ, &Change::default(), sink);
        }
    }

    /// §7.6: a nickname change, announced as leaving the old nick (303,
    /// with the new one) and arriving under the new.
    fn change_nick(
        &mut self,
        env: &super::room::Env,
        stanza: &Element,
        from: &Jid,
        old: &str,
        new: &str,
        sink: &mut dyn Sink,
    ) {
        if let Err(error) = check_nick(new) {
            return self.error_with(stanza, error, sink);
        }
        let Some(occ) = self.occupants.get(old) else {
            return;
        };
        if occ.sessions.len() > 1 {
            return self.error_with(
                stanza,
                super::room::muc_error(Condition::NotAcceptable)
                    .with_text("several clients share this nickname; leave with the others first"),
                sink,
            );
        }
        let bare = occ.bare.clone();
        if self.occupants.contains_key(new)
            || self.reserved_by(new).is_some_and(|owner| *owner != bare)
        {
            return self.error(stanza, Condition::Conflict, sink);
        }
        if !self.take_token(env, old) {
            return self.too_fast(stanza, sink);
        }
        let Some(mut occ) = self.occupants.remove(old) else {
            return;
        };
        let leaving = Change {
            unavailable: true,
            codes: &[303],
            new_nick: Some(new),
            ..Change::default()
        };
        self.announce(env, &occ, &leaving, sink);
        occ.nick = new.to_string();
        if let Some(s) = occ.sessions.iter_mut().find(|s| s.jid == *from) {
            s.presence = reflected_payload(stanza);
        }
        self.by_real.insert(from.clone(), new.to_string());
        self.occupants.insert(new.to_string(), occ);
        if let Some(occ) = self.occupants.get(new) {
            self.announce(env, occ, &Change::default(), sink);
        }
    }

    /// §7.14: a client leaves (or its server says it went offline). A
    /// room ignores unavailable presence from non-occupants (§17.2.5).
    fn on_unavailable(
        &mut self,
        env: &super::room::Env,
        stanza: &Element,
        from: &Jid,
        sink: &mut dyn Sink,
    ) {
        let Some(nick) = self.by_real.get(from).cloned() else {
            return;
        };
        let payload = reflected_payload(stanza);
        self.remove_session(env, &nick, from, &payload, &[], sink);
    }

    /// Removes one client of an occupant; the occupant leaves with its
    /// last client.
    fn remove_session(
        &mut self,
        env: &super::room::Env,
        nick: &str,
        from: &Jid,
        payload: &[Element],
        codes: &[u16],
        sink: &mut dyn Sink,
    ) {
        let Some(occ) = self.occupants.get_mut(nick) else {
            return;
        };
        if occ.sessions.len() <= 1 {
            self.remove_occupant(
                env,
                nick,
                Change {
                    payload: Some(payload),
                    codes,
                    ..Change::default()
                },
                sink,
            );
            return;
        }
        let Some(pos) = occ.sessions.iter().position(|s| s.jid == *from) else {
            return;
        };
        let gone = occ.sessions.remove(pos);
        self.by_real.remove(from);
        let Some(occ) = self.occupants.get(nick) else {
            return;
        };
        let mut alone = occ.clone();
        alone.sessions = vec![gone];
        let leaving = Change {
            unavailable: true,
            role: Some(Role::None),
            payload: Some(payload),
            codes,
            only_self: true,
            ..Change::default()
        };
        self.announce(env, &alone, &leaving, sink);
        self.announce(env, occ, &Change::default(), sink);
    }

    /// §17 (issue 978 in Prosody's tracker): an error from an occupant's
    /// client means it is gone; it is removed with status 333 and the
    /// error as its status text.
    fn on_error_from_client(
        &mut self,
        env: &super::room::Env,
        stanza: &Element,
        from: &Jid,
        sink: &mut dyn Sink,
    ) {
        if self.by_real.contains_key(from) {
            self.remove_for_error(env, stanza, from, sink);
        }
    }

    pub(super) fn remove_for_error(
        &mut self,
        env: &super::room::Env,
        stanza: &Element,
        from: &Jid,
        sink: &mut dyn Sink,
    ) {
        let Some(nick) = self.by_real.get(from).cloned() else {
            return;
        };
        // The error's own text only where real JIDs are public: it may
        // name the client's server or device (as Prosody does).
        let text = kick_text(stanza, self.config.non_anonymous());
        let payload = [Element::new("status", NS_CLIENT).with_text(text)];
        self.remove_session(env, &nick, from, &payload, &[333], sink);
    }

    /// Prosody issue 1535: a probe from an occupant is answered with the
    /// probed occupant's current presence (or, for an absent member with a
    /// reserved nick, an unavailable one); non-occupants learn nothing.
    fn on_probe(
        &mut self,
        env: &super::room::Env,
        stanza: &Element,
        from: &Jid,
        to: &Jid,
        sink: &mut dyn Sink,
    ) {
        let Some(prober) = self.occupant_of(from) else {
            return self.error(stanza, Condition::NotAcceptable, sink);
        };
        let Some(nick) = to.resource() else {
            return;
        };
        let sees = self.sees_jids(prober);
        let mut answer = if let Some(occ) = self.occupants.get(nick) {
            self.presence_of(env, occ, &Change::default(), false, sees, None)
        } else if let Some(owner) = self.reserved_by(nick) {
            self.offline_presence(env, owner, nick, sees)
        } else {
            return self.error(stanza, Condition::ItemNotFound, sink);
        };
        answer.set_attr("to", from.as_str());
        sink.emit(answer);
    }

    /// Takes one token from an occupant's rate limit.
    pub(super) fn take_token(&mut self, env: &super::room::Env, nick: &str) -> bool {
        let rate = env.rate_per_second();
        let burst = env.settings.message_burst;
        match self.occupants.get_mut(nick) {
            Some(occ) => occ.rate.take(env.clock, rate, burst),
            None => true,
        }
    }

    pub(super) fn too_fast(&self, stanza: &Element, sink: &mut dyn Sink) {
        self.error_with(
            stanza,
            StanzaError::new(Condition::PolicyViolation)
                .with_type(ErrorType::Wait)
                .with_text("you are sending too fast; wait a moment"),
            sink,
        );
    }
}

/// Nicknames are resourceparts and must pass strict resourceprep (no
/// unassigned code points, so a nick cannot change meaning when Unicode
/// grows).
/// A nick of nothing but spaces would make an invisible occupant, hard to
/// address or to kick from a client: refused as Prosody does.
pub(super) fn check_nick(nick: &str) -> Result<(), StanzaError> {
    match jid::prep_resource_strict(nick) {
        Ok(prepped) if prepped == nick => {}
        _ => {
            return Err(StanzaError::new(Condition::JidMalformed)
                .with_text("Nickname must pass strict validation"));
        }
    }
    if nick.chars().all(char::is_whitespace) {
        return Err(StanzaError::new(Condition::NotAllowed)
            .with_text("a nickname needs a visible character"));
    }
    Ok(())
}

/// §7.2.19: the explicit kick for presence without `<x/>` from someone
/// who is not in the room (110, 307, 333), from `occupant` to `to`.
pub(super) fn not_in_room(occupant: &str, to: &Jid) -> Element {
    let item = Element::new("item", NS_MUC_USER)
        .with_attr("affiliation", "none")
        .with_attr("role", "none")
        .with_child(Element::new("reason", NS_MUC_USER).with_text("You are not in the room."));
    let mut x = Element::new("x", NS_MUC_USER).with_child(item);
    for code in [110, 307, 333] {
        x.push_child(super::room::status(code));
    }
    Element::new("presence", NS_CLIENT)
        .with_attr("from", occupant)
        .with_attr("to", to.as_str())
        .with_attr("type", "unavailable")
        .with_child(x)
}

/// The children of a client's presence that the room passes on (§17.2.6):
/// everything but MUC payloads, which only the room generates, and
/// occupant ids, which only the room assigns.
pub(super) fn reflected_payload(stanza: &Element) -> Vec<Element> {
    stanza
        .children()
        .filter(|c| !(c.is("x", NS_MUC) || c.is("x", NS_MUC_USER) || c.ns == NS_OCCUPANT_ID))
        .cloned()
        .collect()
}

/// "Kicked: service unavailable: Test error" from an error stanza (the
/// last part, the error's text, only `with_text`).
fn kick_text(stanza: &Element, with_text: bool) -> String {
    let mut text = String::from("Kicked");
    if let Some(error) = stanza.get_child("error", NS_CLIENT) {
        if let Some(condition) = error
            .children()
            .find(|c| c.ns == NS_STANZAS && c.name != "text")
        {
            text.push_str(": ");
            text.push_str(&condition.name.replace('-', " "));
        }
        if let Some(t) = error.get_child("text", NS_STANZAS).filter(|_| with_text) {
            let t = t.text();
            if !t.is_empty() {
                text.push_str(": ");
                text.extend(t.chars().take(super::room::MAX_REASON_CHARS));
            }
        }
    }
    text
}
