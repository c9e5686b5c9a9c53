//! Moderation (XEP-0425, `urn:xmpp:message-moderate:1`): a moderator
//! retracts an occupant's message by the stanza id the room gave it. The
//! room tells everyone (a XEP-0424 retraction naming the moderator), and
//! the archive and the join history keep a tombstone in its place: what
//! the message said is gone from the disk, not only hidden.

use crate::env::Env as Host;
use crate::jid::Jid;
use crate::stanza::{self, Condition, StanzaError};
use crate::store::MucWrite;
use crate::store::archive::{self, Kind, TOMBSTONE};
use crate::xml::{Element, NS_CLIENT};

use super::NS_OCCUPANT_ID;
use super::roles::Role;
use super::room::{self, Room, Sink, bounded_reason};

pub const NS_MODERATE: &str = "urn:xmpp:message-moderate:1";
pub const NS_RETRACT: &str = "urn:xmpp:message-retract:1";

/// The message to retract: its key in the archive, and what it was.
struct Target {
    stamp: u64,
    original: Element,
}

/// A moderator's request: the stanza id of the message, and why.
struct Request {
    id: String,
    reason: Option<String>,
}

fn parse(iq: &Element) -> Result<Request, StanzaError> {
    let moderate = iq
        .get_child("moderate", NS_MODERATE)
        .filter(|_| iq.attr("type") == Some("set"))
        .ok_or_else(|| StanzaError::new(Condition::BadRequest))?;
    if moderate.get_child("retract", NS_RETRACT).is_none() {
        return Err(StanzaError::new(Condition::FeatureNotImplemented)
            .with_text("retraction is the only moderation action"));
    }
    let id = moderate
        .attr("id")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| StanzaError::new(Condition::BadRequest).with_text("which message? (id)"))?;
    let reason = moderate
        .get_child("reason", NS_MODERATE)
        .and_then(|r| bounded_reason(r.text()));
    Ok(Request {
        id: id.to_string(),
        reason,
    })
}

/// An iq to the room `jid` (in memory) in the moderation namespace.
pub(super) fn handle(service: &super::Service, env: &Host, iq: &Element, jid: &Jid) {
    if let Err(error) = moderate(service, env, iq, jid)
        && let Some(reply) = stanza::error_reply(iq, &error)
    {
        super::dispatch::deliver(env, reply);
    }
}

fn moderate(
    service: &super::Service,
    env: &Host,
    iq: &Element,
    jid: &Jid,
) -> Result<(), StanzaError> {
    let request = parse(iq)?;
    let from = iq
        .attr("from")
        .and_then(|f| Jid::parse(f).ok())
        .ok_or_else(|| StanzaError::new(Condition::BadRequest))?;
    let not_found = || {
        StanzaError::new(Condition::ItemNotFound).with_text("no message of this room has that id")
    };
    let stamp = env
        .archive
        .ids
        .stamp(jid.as_str(), &request.id)
        .ok_or_else(not_found)?;
    let record = archive::get(env.store, Kind::Room, jid.as_str(), stamp)
        .map_err(|e| {
            log::error!("room {jid}: reading its archive: {e}");
            StanzaError::new(Condition::InternalServerError)
        })?
        .ok_or_else(not_found)?;
    let target = Target {
        stamp,
        original: crate::archive::page::parse_stored(&record.xml).ok_or_else(not_found)?,
    };
    service.with_room_dispatch(env, jid, |room, room_env, sink| {
        room.moderate(room_env, iq, &from, &request, target, sink)
    })?
}

impl Room {
    fn moderate(
        &mut self,
        env: &room::Env,
        iq: &Element,
        from: &Jid,
        request: &Request,
        target: Target,
        sink: &mut dyn Sink,
    ) -> Result<(), StanzaError> {
        let Target { stamp, original } = target;
        let Some(moderator) = self
            .by_real
            .get(from)
            .and_then(|nick| self.occupants.get(nick))
            .filter(|o| o.role == Role::Moderator)
        else {
            return Err(StanzaError::new(Condition::Forbidden)
                .with_text("only moderators may retract others' messages"));
        };
        let moderated = Element::new("moderated", NS_MODERATE)
            .with_attr("by", self.occupant_jid(&moderator.nick))
            .with_child(
                Element::new("occupant-id", NS_OCCUPANT_ID)
                    .with_attr("id", moderator.occupant_id.as_str()),
            );
        let moderated = || moderated.clone();
        let reason = || {
            request
                .reason
                .as_ref()
                .map(|r| Element::new("reason", NS_RETRACT).with_text(r.as_str()))
        };
        // The tombstone: who sent what and when stays; what it said goes.
        let mut tombstone = Element::new("message", NS_CLIENT);
        tombstone.attrs = original.attrs.clone();
        for child in original.children() {
            if child.is("occupant-id", NS_OCCUPANT_ID)
                || child.is("origin-id", crate::stanza::NS_SID)
            {
                tombstone.push_child(child.clone());
            }
        }
        let mut retracted = Element::new("retracted", NS_RETRACT)
            .with_attr("stamp", crate::datetime::format_utc(env.now, false))
            .with_child(moderated());
        if let Some(r) = reason() {
            retracted.push_child(r);
        }
        tombstone.push_child(retracted);
        sink.store(MucWrite::ArchiveReplace {
            room: self.jid.to_string(),
            stamp,
            flags: TOMBSTONE,
            xml: tombstone.to_bytes(NS_CLIENT),
        });
        // The join history shows it with its stanza id, as it showed the
        // message (the archive keeps it without, like every message).
        crate::archive::policy::stamp_id(&mut tombstone, self.jid.as_str(), &request.id);
        self.history.replace(stamp, tombstone);
        // Everyone is told, and so is the archive (a client catching up
        // learns of it there).
        let mut retract = Element::new("retract", NS_RETRACT)
            .with_attr("id", request.id.as_str())
            .with_child(moderated());
        if let Some(r) = reason() {
            retract.push_child(r);
        }
        let notice = Element::new("message", NS_CLIENT)
            .with_attr("type", "groupchat")
            .with_attr("from", self.jid.as_str())
            .with_attr("id", (env.new_id)())
            .with_child(retract);
        self.reflect(env, notice, "", true, sink);
        sink.reply(stanza::iq_result(iq));
        Ok(())
    }
}
