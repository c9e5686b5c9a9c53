//! Messages in a room (XEP-0045 §7.4 groupchat, §7.5 private messages,
//! §8.1 subject, §7.8.2 mediated invitations and declines, §7.13 voice
//! requests and §8.6 their approval) and iqs between occupants (§18.3,
//! XEP-0410 self-ping).

use crate::forms::{Field, FieldType, Form, FormType, parse_bool};
use crate::jid::Jid;
use crate::stanza::{self, Condition, NS_STANZAS, StanzaError};
use crate::store::MucWrite;
use crate::store::archive::ArchiveRecord;
use crate::xml::{Element, NS_CLIENT, Node};

use super::record::Subject;
use super::roles::{self, Affiliation, Role};
use super::room::{Actor, Change, Env, MAX_SUBJECT_CHARS, Room, Sink, bounded_reason};
use super::{
    NS_CONFERENCE, NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC_REQUEST, NS_MUC_USER, NS_OCCUPANT_ID,
    NS_PING, NS_VCARD,
};

/// Invitations one message may carry.
const MAX_INVITES: usize = 10;

/// XEP-0045 §17 (ghost users) and RFC 6121 §8.5.3.2.1: errors that say
/// the stanza could not be delivered to the occupant's client.
const DELIVERY_FAILURES: &[&str] = &[
    "gone",
    "item-not-found",
    "recipient-unavailable",
    "redirect",
    "remote-server-not-found",
    "remote-server-timeout",
    "service-unavailable",
];

impl Room {
    pub(super) fn on_message(
        &mut self,
        env: &Env,
        stanza: Element,
        from: &Jid,
        to: &Jid,
        sink: &mut dyn Sink,
    ) {
        let ty = stanza.attr("type").unwrap_or("normal").to_string();
        if ty == "error" {
            return self.on_message_error(env, &stanza, from, to, sink);
        }
        if self.hidden_from(env, from) {
            return self.error(&stanza, Condition::ItemNotFound, sink);
        }
        match (to.resource(), ty.as_str()) {
            (Some(_), "groupchat") => self.error(&stanza, Condition::BadRequest, sink),
            (Some(nick), _) => {
                let nick = nick.to_string();
                self.private_message(env, stanza, from, &nick, sink)
            }
            (None, "groupchat") => self.groupchat(env, stanza, from, sink),
            (None, _) => self.message_to_room(env, &stanza, from, sink),
        }
    }

    /// §7.4 and §8.1.
    fn groupchat(&mut self, env: &Env, mut stanza: Element, from: &Jid, sink: &mut dyn Sink) {
        let Some(nick) = self.by_real.get(from).cloned() else {
            return self.error(&stanza, Condition::NotAcceptable, sink);
        };
        let Some(role) = self.occupants.get(&nick).map(|o| o.role) else {
            return;
        };
        let subject = stanza.get_child("subject", NS_CLIENT).map(Element::text);
        let is_subject_change = subject.is_some()
            && stanza.get_child("body", NS_CLIENT).is_none()
            && stanza.get_child("thread", NS_CLIENT).is_none();
        let allowed = if is_subject_change {
            roles::may_change_subject(role, self.config.occupants_may_change_subject)
        } else {
            roles::may_send_groupchat(role, self.config.moderated)
        };
        if !allowed {
            return self.error(&stanza, Condition::Forbidden, sink);
        }
        if !self.take_token(env, &nick) {
            return self.too_fast(&stanza, sink);
        }
        if is_subject_change
            && subject
                .as_ref()
                .is_some_and(|s| s.chars().count() > MAX_SUBJECT_CHARS)
        {
            return self.error_with(
                &stanza,
                super::room::muc_error(Condition::NotAcceptable).with_text(format!(
                    "subjects are limited to {MAX_SUBJECT_CHARS} characters"
                )),
                sink,
            );
        }
        stanza.remove_attr("to");
        stanza.set_attr("from", self.occupant_jid(&nick));
        self.strip_forged_delay(&mut stanza);
        // What the room says about an occupant (a real JID, a role) is the
        // room's to say: one the sender put in would be reflected and
        // archived as if the room had (XEP-0313 §8.4).
        stanza.remove_children_where(|c| c.is("x", NS_MUC_USER));
        // Only the room names its messages (XEP-0359 §3.1).
        crate::archive::policy::strip_ids_by(&mut stanza, &self.jid);
        if stanza.attr("id").is_none() {
            stanza.set_attr("id", (env.new_id)());
        }
        self.stamp_occupant_id(&mut stanza, &nick);
        if is_subject_change {
            let text = subject.unwrap_or_default();
            self.subject = Some(Subject {
                text,
                nick: nick.clone(),
                stamp: env.now,
            });
            self.save_room(sink);
            // A room that logs archives its subject changes too (XEP-0313
            // §6.1.2); joining occupants get the subject apart from the
            // history.
            if self.config.archived() {
                return self.reflect(env, stanza, &nick, false, sink);
            }
        } else if crate::archive::policy::has_archivable_content(&stanza) {
            return self.reflect(env, stanza, &nick, true, sink);
        }
        sink.broadcast(&stanza, &self.all_sessions());
    }

    /// Sends a message from `nick` to every occupant and, with `history`,
    /// keeps it in the history. A stored room writes it into its archive
    /// with a stanza id (XEP-0359): the reflection waits for the write, so
    /// no occupant sees a message a power cut could take back, and the join
    /// history is on disk. It is serialized once, to be written, measured
    /// for the history's limits and sent; the history takes the stanza
    /// itself.
    pub(super) fn reflect(
        &mut self,
        env: &Env,
        mut stanza: Element,
        nick: &str,
        history: bool,
        sink: &mut dyn Sink,
    ) {
        let room = self.jid.to_string();
        let key = if self.config.persistent {
            let key = env.archive.next_stamp(env.now);
            let real = self
                .occupants
                .get(nick)
                .map(|o| o.bare.to_string())
                .unwrap_or_default();
            // Stored without its stanza id, which the key gives back (a
            // fifth of a short message's size on disk).
            sink.store(MucWrite::Archive {
                room: room.clone(),
                record: ArchiveRecord {
                    stamp: key,
                    flags: 0,
                    index: nick.to_string(),
                    extra: real,
                    xml: stanza.to_bytes(NS_CLIENT),
                },
            });
            crate::archive::policy::stamp_id(&mut stanza, &room, &env.archive.id(&room, key));
            key
        } else {
            0
        };
        let prepared = stanza.prepare_with_to(NS_CLIENT);
        sink.broadcast_prepared(&stanza, &prepared, &self.all_sessions());
        if !history {
            return;
        }
        self.history.push_sized(
            stanza,
            prepared.len_without_to(),
            env.now,
            key,
            self.config.history_length as usize,
            super::room::MAX_HISTORY_BYTES,
        );
        if key != 0 && !self.config.logging {
            // Not archived: the disk keeps the join history only.
            let before = self.history.oldest_key().unwrap_or(key.saturating_add(1));
            sink.store(MucWrite::ArchiveTrim { room, before });
        }
    }

    /// A delay stamp that claims to come from the room is the room's to
    /// add (on history): one a client put in would backdate its message
    /// or pass a live message off as history. Prosody strips them too.
    fn strip_forged_delay(&self, stanza: &mut Element) {
        let room = self.jid.as_str();
        stanza.children.retain(|node| match node {
            Node::Element(c) => {
                let delay = c.is("delay", "urn:xmpp:delay") || c.is("x", "jabber:x:delay");
                !(delay && c.attr("from") == Some(room))
            }
            Node::Text(_) => true,
        });
    }

    /// XEP-0421: the sender's occupant id, replacing any the client put in.
    fn stamp_occupant_id(&self, stanza: &mut Element, nick: &str) {
        while stanza.remove_child("occupant-id", NS_OCCUPANT_ID).is_some() {}
        if let Some(occ) = self.occupants.get(nick) {
            stanza.push_child(
                Element::new("occupant-id", NS_OCCUPANT_ID)
                    .with_attr("id", occ.occupant_id.as_str()),
            );
        }
    }

    /// §7.5: a private message to one occupant, from the sender's
    /// occupant JID.
    fn private_message(
        &mut self,
        env: &Env,
        mut stanza: Element,
        from: &Jid,
        to_nick: &str,
        sink: &mut dyn Sink,
    ) {
        let Some(nick) = self.by_real.get(from).cloned() else {
            return self.error(&stanza, Condition::NotAcceptable, sink);
        };
        let Some(role) = self.occupants.get(&nick).map(|o| o.role) else {
            return;
        };
        if !self.occupants.contains_key(to_nick) {
            return self.error(&stanza, Condition::ItemNotFound, sink);
        }
        if !roles::may_send_private(role, self.config.allow_pm) {
            return self.error(&stanza, Condition::Forbidden, sink);
        }
        if !self.take_token(env, &nick) {
            return self.too_fast(&stanza, sink);
        }
        stanza.set_attr("from", self.occupant_jid(&nick));
        if stanza.get_child("x", NS_MUC_USER).is_none() {
            stanza.push_child(Element::new("x", NS_MUC_USER));
        }
        self.stamp_occupant_id(&mut stanza, &nick);
        if let Some(target) = self.occupants.get(to_nick) {
            let to: Vec<&Jid> = target.session_jids().collect();
            stanza.remove_attr("to");
            sink.broadcast(&stanza, &to);
        }
    }

    /// Errors coming back from occupants' clients: a delivery failure
    /// means the client is gone (§17, "ghost users"); an error answering a
    /// private message goes back to the occupant who sent it.
    fn on_message_error(
        &mut self,
        env: &Env,
        stanza: &Element,
        from: &Jid,
        to: &Jid,
        sink: &mut dyn Sink,
    ) {
        if !self.by_real.contains_key(from) {
            return;
        }
        let condition = stanza
            .get_child("error", NS_CLIENT)
            .and_then(|e| {
                e.children()
                    .find(|c| c.ns == NS_STANZAS && c.name != "text")
            })
            .map(|c| c.name.clone());
        if condition.is_some_and(|c| DELIVERY_FAILURES.contains(&c.as_ref())) {
            return self.remove_for_error(env, stanza, from, sink);
        }
        let (Some(sender), Some(target)) = (self.by_real.get(from), to.resource()) else {
            return;
        };
        let Some(occ) = self.occupants.get(target) else {
            return;
        };
        let mut relayed = stanza.clone();
        relayed.set_attr("from", self.occupant_jid(sender));
        relayed.remove_attr("to");
        let to: Vec<&Jid> = occ.session_jids().collect();
        sink.broadcast(&relayed, &to);
    }

    /// Messages to the room that are not groupchat: invitations, declines
    /// and voice requests.
    fn message_to_room(&mut self, env: &Env, stanza: &Element, from: &Jid, sink: &mut dyn Sink) {
        if let Some(x) = stanza.get_child("x", NS_MUC_USER) {
            let invites: Vec<&Element> = x
                .children()
                .filter(|c| c.is("invite", NS_MUC_USER))
                .collect();
            let declines: Vec<&Element> = x
                .children()
                .filter(|c| c.is("decline", NS_MUC_USER))
                .collect();
            if !invites.is_empty() {
                return self.invite(env, stanza, &invites, from, sink);
            }
            if !declines.is_empty() {
                return self.decline(stanza, &declines, from, sink);
            }
        }
        if let Some(form) = Form::find_in(stanza) {
            return match form {
                Ok(form) if form.form_type() == Some(NS_MUC_REQUEST) => {
                    self.voice_request(env, stanza, &form, from, sink)
                }
                _ => self.error(stanza, Condition::BadRequest, sink),
            };
        }
        self.error_with(
            stanza,
            StanzaError::new(Condition::BadRequest)
                .with_text("messages to the room are of type groupchat"),
            sink,
        );
    }

    /// §7.8.2: the room relays an invitation, adding who sent it, the
    /// password, and an XEP-0249 payload for clients that only read that.
    fn invite(
        &mut self,
        env: &Env,
        stanza: &Element,
        invites: &[&Element],
        from: &Jid,
        sink: &mut dyn Sink,
    ) {
        let bare = from.to_bare();
        let affiliation = self.affiliation(env, &bare);
        let nick = self.by_real.get(from).cloned();
        let role = nick
            .as_ref()
            .and_then(|n| self.occupants.get(n))
            .map_or(Role::None, |o| o.role);
        if !roles::may_invite(
            role,
            affiliation,
            self.config.members_only,
            self.config.members_may_invite,
        ) {
            return self.error(stanza, Condition::Forbidden, sink);
        }
        if invites.len() > MAX_INVITES {
            return self.error_with(
                stanza,
                StanzaError::new(Condition::PolicyViolation)
                    .with_text(format!("at most {MAX_INVITES} invitations at once")),
                sink,
            );
        }
        let mut invitees = Vec::with_capacity(invites.len());
        for invite in invites {
            match invite.attr("to").map(Jid::parse) {
                Some(Ok(jid)) => invitees.push((jid, *invite)),
                _ => return self.error(stanza, Condition::JidMalformed, sink),
            }
        }
        if let Some(n) = &nick
            && !self.take_token(env, n)
        {
            return self.too_fast(stanza, sink);
        }
        // In a non-anonymous room the invitee may learn who invites; in a
        // semi-anonymous one only the nickname.
        let inviter = match &nick {
            Some(n) if !self.config.non_anonymous() => self.occupant_jid(n),
            _ => bare.to_string(),
        };
        for (invitee, invite) in invitees {
            let reason = invite
                .get_child("reason", NS_MUC_USER)
                .and_then(|r| bounded_reason(r.text()));
            // §9.5: invitations into a members-only room make members.
            if self.config.members_only
                && self.stored_affiliation(&invitee.to_bare()) == Affiliation::None
                && self.affiliations.len() < env.settings.max_affiliations
            {
                let actor = Actor {
                    nick: nick.clone(),
                    jid: from.clone(),
                };
                self.set_affiliation(
                    env,
                    &invitee.to_bare(),
                    Affiliation::Member,
                    super::admin::NickChange::Keep,
                    None,
                    Some(&actor),
                    sink,
                );
            }
            let mut inv = Element::new("invite", NS_MUC_USER).with_attr("from", inviter.as_str());
            inv.push_child(
                Element::new("reason", NS_MUC_USER).with_text(reason.clone().unwrap_or_default()),
            );
            if let Some(c) = invite.get_child("continue", NS_MUC_USER) {
                inv.push_child(c.clone());
            }
            let mut x = Element::new("x", NS_MUC_USER).with_child(inv);
            if let Some(pw) = &self.config.password {
                x.push_child(Element::new("password", NS_MUC_USER).with_text(pw.as_str()));
            }
            let mut body = format!("{inviter} invited you to the room {}", self.jid);
            if let Some(r) = &reason {
                body.push_str(&format!(" ({r})"));
            }
            let mut direct = Element::new("x", NS_CONFERENCE).with_attr("jid", self.jid.as_str());
            if let Some(pw) = &self.config.password {
                direct.set_attr("password", pw.as_str());
            }
            if let Some(r) = &reason {
                direct.set_attr("reason", r.as_str());
            }
            let mut msg = Element::new("message", NS_CLIENT)
                .with_attr("from", self.jid.as_str())
                .with_attr("to", invitee.as_str())
                .with_child(x)
                .with_child(Element::new("body", NS_CLIENT).with_text(body))
                .with_child(direct);
            if let Some(id) = stanza.attr("id") {
                msg.set_attr("id", id);
            }
            sink.emit(msg);
        }
    }

    /// §7.8.2: the invitee declines; the room tells the inviter.
    fn decline(
        &mut self,
        stanza: &Element,
        declines: &[&Element],
        from: &Jid,
        sink: &mut dyn Sink,
    ) {
        for decline in declines.iter().take(MAX_INVITES) {
            let Some(Ok(to)) = decline.attr("to").map(Jid::parse) else {
                return self.error(stanza, Condition::JidMalformed, sink);
            };
            let mut d =
                Element::new("decline", NS_MUC_USER).with_attr("from", from.to_bare().as_str());
            if let Some(reason) = decline
                .get_child("reason", NS_MUC_USER)
                .and_then(|r| bounded_reason(r.text()))
            {
                d.push_child(Element::new("reason", NS_MUC_USER).with_text(reason));
            }
            let mut msg = Element::new("message", NS_CLIENT)
                .with_attr("from", self.jid.as_str())
                .with_child(Element::new("x", NS_MUC_USER).with_child(d));
            if let Some(id) = stanza.attr("id") {
                msg.set_attr("id", id);
            }
            // The invitation may have named the inviter by occupant JID.
            let targets: Vec<&Jid> = match to.resource() {
                Some(nick) if to.to_bare() == self.jid => match self.occupants.get(nick) {
                    Some(occ) => occ.session_jids().collect(),
                    None => continue,
                },
                _ => vec![&to],
            };
            sink.broadcast(&msg, &targets);
        }
    }

    /// §7.13 and §8.6: a visitor asks for voice; the moderators get an
    /// approval form; a moderator's submitted form grants it.
    fn voice_request(
        &mut self,
        env: &Env,
        stanza: &Element,
        form: &Form,
        from: &Jid,
        sink: &mut dyn Sink,
    ) {
        let Some(nick) = self.by_real.get(from).cloned() else {
            return self.error(stanza, Condition::NotAcceptable, sink);
        };
        let Some(occ) = self.occupants.get(&nick) else {
            return;
        };
        if let Some(allow) = form.value("muc#request_allow") {
            // A moderator answers a request.
            let Some(allow) = parse_bool(allow) else {
                return self.error(stanza, Condition::BadRequest, sink);
            };
            if occ.role != Role::Moderator {
                return self.error(stanza, Condition::Forbidden, sink);
            }
            if !allow {
                return;
            }
            let Some(target) = form.value("muc#roomnick").map(str::to_string) else {
                return self.error(stanza, Condition::BadRequest, sink);
            };
            let actor = Actor {
                nick: Some(nick.clone()),
                jid: from.clone(),
            };
            let actor_affiliation = self.affiliation(env, &from.to_bare());
            let Some(t) = self.occupants.get(&target) else {
                return self.error(stanza, Condition::ItemNotFound, sink);
            };
            if t.role != Role::Visitor {
                return;
            }
            let target_affiliation = self.affiliation(env, &t.bare);
            if let Err(c) = roles::check_role_change(
                Role::Moderator,
                actor_affiliation,
                t.role,
                target_affiliation,
                Role::Participant,
            ) {
                return self.error(stanza, c, sink);
            }
            self.set_role(env, &target, Role::Participant, Some(&actor), None, sink);
            return;
        }
        if form.value("muc#role") != Some(Role::Participant.as_str()) {
            return self.error(stanza, Condition::BadRequest, sink);
        }
        if occ.role != Role::Visitor {
            // Already has voice: nothing to ask for.
            return;
        }
        if !self.take_token(env, &nick) {
            return self.too_fast(stanza, sink);
        }
        let Some(occ) = self.occupants.get(&nick) else {
            return;
        };
        let approval = Form::new(FormType::Form)
            .with_title("Voice request")
            .with_instructions("To grant voice to this occupant, check the box and submit.")
            .with_field(Field::form_type(NS_MUC_REQUEST))
            .with_field(
                Field::new("muc#role", FieldType::ListSingle)
                    .with_label("Requested role")
                    .with_value(Role::Participant.as_str()),
            )
            .with_field(
                Field::new("muc#jid", FieldType::JidSingle)
                    .with_label("User ID")
                    .with_value(from.as_str()),
            )
            .with_field(
                Field::new("muc#roomnick", FieldType::TextSingle)
                    .with_label("Room nickname")
                    .with_value(occ.nick.as_str()),
            )
            .with_field(
                Field::new("muc#request_allow", FieldType::Boolean)
                    .with_label("Grant voice to this person?")
                    .with_bool(false),
            );
        let msg = Element::new("message", NS_CLIENT)
            .with_attr("from", self.jid.as_str())
            .with_attr("id", (env.new_id)())
            .with_child(approval.to_element());
        let moderators: Vec<&Jid> = self
            .occupants
            .values()
            .filter(|o| o.role == Role::Moderator)
            .flat_map(|o| o.session_jids())
            .collect();
        if !moderators.is_empty() {
            sink.broadcast(&msg, &moderators);
        }
    }

    /// An iq to an occupant JID: a self-ping is answered by the room
    /// (XEP-0410 §3.3); vCard requests go to the user's account; other
    /// requests are relayed to the occupant's client and the answer back,
    /// without revealing either real JID (§18.3).
    pub(super) fn iq_to_occupant(
        &mut self,
        env: &Env,
        mut iq: Element,
        from: &Jid,
        nick: &str,
        sink: &mut dyn Sink,
    ) {
        let ty = iq.attr("type").unwrap_or_default().to_string();
        if ty == "result" || ty == "error" {
            return self.relay_iq_answer(iq, from, sink);
        }
        let Some(sender) = self.by_real.get(from).cloned() else {
            let payload_ns = iq.first_child().map(|p| p.ns.clone()).unwrap_or_default();
            // §6.6: non-occupants may not disco occupants.
            let condition = if payload_ns == NS_DISCO_INFO || payload_ns == NS_DISCO_ITEMS {
                Condition::BadRequest
            } else {
                Condition::NotAcceptable
            };
            return self.error(&iq, condition, sink);
        };
        let is_ping = iq.first_child().is_some_and(|p| p.is("ping", NS_PING));
        if sender == nick && is_ping {
            return sink.emit(stanza::iq_result(&iq));
        }
        let Some(target) = self.occupants.get(nick) else {
            return self.error(&iq, Condition::ItemNotFound, sink);
        };
        // Questions for the user's account (vCards, PEP: avatars, vCard4)
        // go to its bare JID, as Prosody does; the rest to the client.
        let for_account = iq.first_child().is_some_and(|p| {
            p.ns == NS_VCARD
                || p.ns == "http://jabber.org/protocol/pubsub"
                || p.ns == "urn:ietf:params:xml:ns:vcard-4.0"
        });
        let replier = if for_account {
            target.bare.clone()
        } else {
            match target.primary() {
                Some(s) => s.jid.clone(),
                None => return self.error(&iq, Condition::ItemNotFound, sink),
            }
        };
        let origin_id = iq.attr("id").unwrap_or_default().to_string();
        let id = (env.new_id)();
        self.remember_iq_route(
            id.clone(),
            from.clone(),
            origin_id,
            replier.clone(),
            nick.to_string(),
        );
        iq.set_attr("id", id);
        iq.set_attr("from", self.occupant_jid(&sender));
        iq.set_attr("to", replier.as_str());
        sink.emit(iq);
    }

    fn relay_iq_answer(&mut self, mut iq: Element, from: &Jid, sink: &mut dyn Sink) {
        let Some(id) = iq.attr("id").map(str::to_string) else {
            return;
        };
        let Some((origin, origin_id, target_nick)) = self.take_iq_route(&id, from) else {
            return;
        };
        iq.set_attr("id", origin_id);
        iq.set_attr("from", self.occupant_jid(&target_nick));
        iq.set_attr("to", origin.as_str());
        sink.emit(iq);
    }

    /// Changes an occupant's role and announces it (§8.2–§8.4, §9.6,
    /// §9.7); role `none` is a kick (307).
    pub(super) fn set_role(
        &mut self,
        env: &Env,
        nick: &str,
        role: Role,
        actor: Option<&Actor>,
        reason: Option<&str>,
        sink: &mut dyn Sink,
    ) {
        if role == Role::None {
            self.remove_occupant(
                env,
                nick,
                Change {
                    codes: &[307],
                    actor,
                    reason,
                    ..Change::default()
                },
                sink,
            );
            return;
        }
        let Some(occ) = self.occupants.get_mut(nick) else {
            return;
        };
        let old = occ.role;
        occ.role = role;
        let broadcast = self.config.broadcast;
        let visible = broadcast.includes(old) || broadcast.includes(role);
        if let Some(occ) = self.occupants.get(nick) {
            self.announce(
                env,
                occ,
                &Change {
                    actor,
                    reason,
                    visible: Some(visible),
                    ..Change::default()
                },
                sink,
            );
            self.refresh_view(env, nick, old, sink);
        }
    }
}
