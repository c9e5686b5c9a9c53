//! Stanzas to the MUC domain itself: service discovery (XEP-0045 §6.1–§6.3:
//! the service and its public rooms) and the administrators' ad-hoc
//! command (XEP-0050) that destroys rooms.

use crate::env::Env;
use crate::forms::{Field, FieldType, Form, FormType};
use crate::jid::Jid;
use crate::stanza::{self, Condition, Kind, StanzaError};
use crate::xml::Element;

use super::Service;
use super::disco::{feature, identity};
use super::{NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC, NS_OCCUPANT_ID, NS_PING, NS_STABLE_ID};

pub const NS_COMMANDS: &str = "http://jabber.org/protocol/commands";
/// The node of the room-destroying command; the name is the one clients
/// and Prosody's tests already use for it.
pub const DESTROY_NODE: &str = "http://prosody.im/protocol/muc#destroy";

pub fn handle(service: &Service, env: &Env, stanza: Element, from: &Jid, to: &Jid) {
    match Kind::of(&stanza) {
        Some(Kind::Iq) => iq(service, env, &stanza, from, to),
        Some(Kind::Message) => super::bounce(
            env,
            &stanza,
            StanzaError::new(Condition::ServiceUnavailable).with_by(to.domain()),
        ),
        // Presence to the service itself means nothing.
        Some(Kind::Presence) | None => {}
    }
}

fn iq(service: &Service, env: &Env, iq: &Element, from: &Jid, to: &Jid) {
    let ty = iq.attr("type").unwrap_or_default();
    if ty != "get" && ty != "set" {
        return;
    }
    let answer = if to.resource().is_some() {
        Err(StanzaError::new(Condition::ServiceUnavailable))
    } else {
        answer(service, env, iq, from, to, ty == "get")
    };
    let reply = match answer {
        Ok(Some(payload)) => Some(stanza::iq_result(iq).with_child(payload)),
        Ok(None) => Some(stanza::iq_result(iq)),
        Err(e) => stanza::error_reply(iq, &e),
    };
    if let Some(reply) = reply {
        // A command's answer reports changes that must be on disk first.
        service.deliver_after_writes(env, reply);
    }
}

fn answer(
    service: &Service,
    env: &Env,
    iq: &Element,
    from: &Jid,
    to: &Jid,
    get: bool,
) -> Result<Option<Element>, StanzaError> {
    let Some(payload) = iq.first_child() else {
        return Err(Condition::BadRequest.into());
    };
    let admin = service.is_server_admin(from);
    let node = payload.attr("node");
    match (payload.ns.as_ref(), payload.name.as_ref(), get) {
        (NS_DISCO_INFO, "query", true) => info(node, admin).map(Some),
        (NS_DISCO_ITEMS, "query", true) => items(service, env, to, node, admin).map(Some),
        (NS_PING, "ping", true) => Ok(None),
        (NS_COMMANDS, "command", false) => {
            if !admin {
                return Err(Condition::Forbidden.into());
            }
            command(service, env, payload).map(Some)
        }
        (NS_DISCO_INFO | NS_DISCO_ITEMS | NS_PING | NS_COMMANDS, _, _) => {
            Err(Condition::BadRequest.into())
        }
        _ => Err(Condition::ServiceUnavailable.into()),
    }
}

fn info(node: Option<&str>, admin: bool) -> Result<Element, StanzaError> {
    match node {
        None => {
            let mut q = Element::new("query", NS_DISCO_INFO).with_child(identity("Chatrooms"));
            for var in [
                NS_MUC,
                NS_STABLE_ID,
                NS_OCCUPANT_ID,
                NS_DISCO_INFO,
                NS_DISCO_ITEMS,
                NS_PING,
                NS_COMMANDS,
            ] {
                q.push_child(feature(var));
            }
            Ok(q)
        }
        Some(DESTROY_NODE) if admin => Ok(Element::new("query", NS_DISCO_INFO)
            .with_attr("node", DESTROY_NODE)
            .with_child(
                Element::new("identity", NS_DISCO_INFO)
                    .with_attr("category", "automation")
                    .with_attr("type", "command-node")
                    .with_attr("name", "Destroy rooms"),
            )
            .with_child(feature(NS_COMMANDS))
            .with_child(feature(crate::forms::NS_DATA))),
        Some(NS_COMMANDS) => Ok(Element::new("query", NS_DISCO_INFO)
            .with_attr("node", NS_COMMANDS)
            .with_child(
                Element::new("identity", NS_DISCO_INFO)
                    .with_attr("category", "automation")
                    .with_attr("type", "command-list"),
            )),
        Some(_) => Err(Condition::ItemNotFound.into()),
    }
}

/// The public rooms of this MUC domain (§6.3), or the commands.
fn items(
    service: &Service,
    env: &Env,
    to: &Jid,
    node: Option<&str>,
    admin: bool,
) -> Result<Element, StanzaError> {
    let mut q = Element::new("query", NS_DISCO_ITEMS);
    match node {
        None => {
            let rooms = service.summaries(env).map_err(|e| {
                log::error!("listing rooms: {e}");
                StanzaError::new(Condition::InternalServerError)
            })?;
            let suffix = format!("@{}", to.domain());
            for room in rooms
                .iter()
                .filter(|r| r.public && r.jid.ends_with(&suffix))
            {
                let mut item =
                    Element::new("item", NS_DISCO_ITEMS).with_attr("jid", room.jid.as_str());
                let name = if room.name.is_empty() {
                    room.jid.split('@').next().unwrap_or_default()
                } else {
                    room.name.as_str()
                };
                item.set_attr("name", name);
                q.push_child(item);
            }
        }
        Some(NS_COMMANDS) => {
            q.set_attr("node", NS_COMMANDS);
            if admin {
                q.push_child(
                    Element::new("item", NS_DISCO_ITEMS)
                        .with_attr("jid", to.as_str())
                        .with_attr("node", DESTROY_NODE)
                        .with_attr("name", "Destroy rooms"),
                );
            }
        }
        Some(_) => return Err(Condition::ItemNotFound.into()),
    }
    Ok(q)
}

/// XEP-0050: "Destroy rooms", in one step when the form comes with the
/// request, or in two (form, then submission).
fn command(service: &Service, env: &Env, payload: &Element) -> Result<Element, StanzaError> {
    if payload.attr("node") != Some(DESTROY_NODE) {
        return Err(Condition::ItemNotFound.into());
    }
    let session = payload
        .attr("sessionid")
        .map(str::to_string)
        .unwrap_or_else(|| env.new_id());
    let reply = |status: &str| {
        Element::new("command", NS_COMMANDS)
            .with_attr("node", DESTROY_NODE)
            .with_attr("sessionid", session.as_str())
            .with_attr("status", status)
    };
    if payload.attr("action") == Some("cancel") {
        return Ok(reply("canceled"));
    }
    let form = match Form::find_in(payload) {
        None => {
            let mut rooms = Field::new("rooms", FieldType::ListMulti)
                .with_label("Rooms to destroy")
                .required();
            let list = service.summaries(env).map_err(|e| {
                log::error!("listing rooms: {e}");
                StanzaError::new(Condition::InternalServerError)
            })?;
            for room in list {
                rooms = rooms.with_option(&room.jid, &room.jid);
            }
            let form = Form::new(FormType::Form)
                .with_title("Destroy rooms")
                .with_instructions("Select the rooms to destroy.")
                .with_field(rooms);
            return Ok(reply("executing")
                .with_child(
                    Element::new("actions", NS_COMMANDS)
                        .with_attr("execute", "complete")
                        .with_child(Element::new("complete", NS_COMMANDS)),
                )
                .with_child(form.to_element()));
        }
        Some(Ok(form)) => form,
        Some(Err(e)) => {
            return Err(StanzaError::new(Condition::BadRequest).with_text(e.to_string()));
        }
    };
    let requested: Vec<String> = form
        .field("rooms")
        .map(|f| f.values.clone())
        .unwrap_or_default();
    if requested.is_empty() {
        return Err(StanzaError::new(Condition::BadRequest).with_text("no room selected"));
    }
    let mut destroyed = Vec::new();
    let mut failed = Vec::new();
    for room in requested.iter().take(crate::forms::MAX_VALUES_PER_FIELD) {
        match service.destroy(env, room.trim(), None) {
            Ok(()) => destroyed.push(room.trim().to_string()),
            Err(e) => failed.push(e.to_string()),
        }
    }
    let mut out = reply("completed");
    if !destroyed.is_empty() {
        out.push_child(
            Element::new("note", NS_COMMANDS)
                .with_attr("type", "info")
                .with_text(format!(
                    "The following rooms were destroyed:\n{}",
                    destroyed.join("\n")
                )),
        );
    }
    if !failed.is_empty() {
        out.push_child(
            Element::new("note", NS_COMMANDS)
                .with_attr("type", "error")
                .with_text(failed.join("\n")),
        );
    }
    Ok(out)
}
