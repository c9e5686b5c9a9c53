//! Resumable sessions across a restart: saved when the server stops
//! (SIGTERM), restored as waiting for resumption at the next start, so a
//! phone that resumes within its timeout gets its session back with
//! nothing lost, as if the server had never gone away. No other XMPP
//! server does this; XEP-0198 allows it (the session's state is the
//! server's business).
//!
//! A saved session is one XML element, in the `saved_sessions` table under
//! its resumption id:
//!
//! ```xml
//! <session xmlns='urn:perch:saved-session:0' jid='full JID'
//!          handled='h from the client' sent='stanzas sent, mod 2^32'
//!          timeout='seconds' expires='Unix seconds' priority='0'
//!          roster='1' blocklist='1' carbons='1' inactive='1'
//!          since='Unix seconds of its presence'>
//!   <available><presence …/></available>      its presence, if available
//!   <directed jid='…'/>…                       directed presence sent
//!   <caps node ver hash><feature var/>…</caps>  its verified capabilities
//!   <room jid='…' nick='…'><presence …/></room>…  persistent rooms it is in
//!   <unacked><message …/>…</unacked>           sent, not acknowledged
//!   <queued>…</queued>                          held back or not yet sent
//! </session>
//! ```
//!
//! A saved session's record stays until the session is resumed or ends,
//! so a power cut after the start restores it again rather than lose what
//! it holds. After a crash of a running server nothing was saved: the
//! client gets `item-not-found`, and what a crash loses is only what was in
//! flight to online clients; everything a client was told is stored
//! (offline messages, rooms, rosters) is in the database already, and
//! offline messages stay there until a stream-managed client acknowledges
//! them.

use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use smol::LocalExecutor;

use crate::im::undelivered::parse_serialized;
use crate::jid::Jid;
use crate::muc::Occupancy;
use crate::net::hibernation::Hibernating;
use crate::server::Server;
use crate::session::{Batch, Session};
use crate::stream::sm::{OfflinePending, StreamManagement, Unacked};
use crate::xml::{Element, NS_CLIENT};

const NS_SAVED: &str = "urn:perch:saved-session:0";

/// Writes every resumable session to the database (the server is stopping
/// and its connections are gone). Returns how many were saved.
pub async fn save_all(server: &Server) -> usize {
    let now = Instant::now();
    let wall = SystemTime::now();
    let mut records = Vec::new();
    for session in server.resumption().all() {
        if let Some((id, el)) = saved(server, &session, now, wall) {
            records.push((id, String::from_utf8_lossy(&el.to_bytes("")).into_owned()));
        }
    }
    let count = records.len();
    if count == 0 {
        return 0;
    }
    match server
        .store()
        .write(crate::store::saved_sessions::save_all_op(records))
        .await
    {
        Ok(()) => count,
        Err(e) => {
            log::error!("could not save {count} resumable sessions for the restart: {e}");
            0
        }
    }
}

/// One session as its saved element.
fn saved(
    server: &Server,
    session: &Session,
    now: Instant,
    wall: SystemTime,
) -> Option<(String, Element)> {
    let mut sm = session.sm.borrow_mut();
    let sm = sm.as_mut()?;
    let id = sm.id.as_deref()?.to_string();
    // Connected sessions have the whole timeout ahead of them; waiting
    // ones keep what was left of theirs.
    let left = match sm.waiting_until {
        Some(until) => until.saturating_duration_since(now),
        None => sm.resume_timeout,
    };
    let expires = wall + left;
    let mut el = Element::new("session", NS_SAVED)
        .with_attr("jid", session.jid.as_str())
        .with_attr("handled", sm.handled.to_string())
        .with_attr("sent", sm.unacked.sent_count().to_string())
        .with_attr("timeout", sm.resume_timeout.as_secs().to_string())
        .with_attr("expires", unix(expires).to_string())
        .with_attr("priority", session.priority.get().to_string());
    let im = &session.im;
    for (name, on) in [
        ("roster", im.roster_interested.get()),
        ("blocklist", im.blocklist_interested.get()),
        ("carbons", im.carbons.get()),
        ("inactive", session.csi.borrow().is_inactive()),
    ] {
        if on {
            el.set_attr(name, "1");
        }
    }
    if let Some(since) = im.presence_since.get() {
        el.set_attr("since", unix(since).to_string());
    }
    if let Some(presence) = session.presence.borrow().as_ref() {
        el.push_child(Element::new("available", NS_SAVED).with_child(presence.clone()));
    }
    for to in session.directed.borrow().iter() {
        el.push_child(Element::new("directed", NS_SAVED).with_attr("jid", to.as_str()));
    }
    if let Some(caps) = saved_caps(session) {
        el.push_child(caps);
    }
    // Temporary rooms do not survive the restart, but the client is told
    // it left them (see `restore`).
    for room in server.muc().occupancies_of(&session.jid) {
        let mut saved = Element::new("room", NS_SAVED)
            .with_attr("jid", room.room.as_str())
            .with_attr("nick", room.nick.as_str())
            .with_child(room.presence);
        if !room.persistent {
            saved.set_attr("temporary", "1");
        }
        el.push_child(saved);
    }
    for p in &sm.offline_pending {
        el.push_child(
            Element::new("offline", NS_SAVED)
                .with_attr("threshold", p.threshold.to_string())
                .with_attr("after", p.after.to_string())
                .with_attr("through", p.through.to_string())
                .with_attr("count", p.count.to_string())
                .with_attr("bytes", p.bytes.to_string()),
        );
    }
    let mut unacked = Element::new("unacked", NS_SAVED);
    for stanza in sm.unacked.stanzas() {
        if let Some(s) = parse_serialized(&stanza) {
            unacked.push_child(s);
        }
    }
    el.push_child(unacked);
    let mut queued = Element::new("queued", NS_SAVED);
    let held = session.csi.borrow_mut().take_held();
    let mut pending = Batch::default();
    session.outbox.take_everything(&mut pending);
    for stanza in held.stanzas().chain(pending.stanzas()) {
        if let Some(s) = parse_serialized(stanza) {
            queued.push_child(s);
        }
    }
    el.push_child(queued);
    Some((id, el))
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Restores the sessions saved at the last stop, each waiting for its
/// client to resume it (or ending at once, its messages going to offline
/// storage, if its time ran out while the server was down). Runs before
/// the listeners accept anyone, so nobody takes a restored resource or
/// nick first.
pub async fn restore_all(server: &Rc<Server>, ex: &Rc<LocalExecutor<'static>>) {
    let saved = match server.store().saved_sessions() {
        Ok(saved) => saved,
        Err(e) => {
            log::error!("could not read the sessions saved at the last stop: {e}");
            return;
        }
    };
    if saved.is_empty() {
        return;
    }
    let mut restored = 0;
    for (id, xml) in &saved {
        match restore(server, id, xml) {
            Ok((session, until)) => {
                restored += 1;
                // Counted like any waiting session (they were within the
                // limit when they were saved).
                server.count_waiting();
                let waiting = Hibernating::until(server.clone(), session, until);
                ex.spawn(waiting.wait()).detach();
            }
            Err(why) => {
                log::warn!("a session saved at the last stop is not restored: {why}");
                let _ = server
                    .store()
                    .submit(crate::store::saved_sessions::delete_op(id));
            }
        }
    }
    log::info!(
        "{restored} of {} sessions saved at the last stop wait for their clients to resume",
        saved.len()
    );
}

/// The session's verified capabilities (XEP-0115), so that PEP keeps
/// sending it what it asked for after the restart without asking again:
/// `<caps node ver hash><feature var/>…</caps>`.
fn saved_caps(session: &Session) -> Option<Element> {
    let caps = session.im.caps.borrow();
    let caps = caps.as_ref()?;
    let features = caps.features.as_ref()?;
    let mut el = Element::new("caps", NS_SAVED)
        .with_attr("node", caps.claim.node.as_str())
        .with_attr("ver", caps.claim.ver.as_str())
        .with_attr("hash", caps.claim.hash.name());
    for var in features.iter() {
        el.push_child(Element::new("feature", NS_SAVED).with_attr("var", var));
    }
    Some(el)
}

fn restored_caps(el: &Element) -> Option<crate::im::session::SessionCaps> {
    use crate::im::caps::{CapsClaim, CapsHash, Features};
    let claim = CapsClaim {
        node: el.attr("node")?.to_string(),
        ver: el.attr("ver")?.to_string(),
        hash: CapsHash::from_name(el.attr("hash")?)?,
    };
    let features = Features::from_vars(
        el.children()
            .filter(|f| f.is("feature", NS_SAVED))
            .filter_map(|f| f.attr("var")),
    );
    Some(crate::im::session::SessionCaps {
        claim,
        features: Some(std::rc::Rc::new(features)),
        asked_by: Vec::new(),
    })
}

/// Recreates one saved session; returns it and when its wait ends.
fn restore(server: &Rc<Server>, id: &str, xml: &str) -> Result<(Rc<Session>, Instant), String> {
    let el = Element::parse(xml).map_err(|e| format!("unreadable ({e})"))?;
    let attr = |name: &str| el.attr(name).unwrap_or_default();
    let number = |name: &str| attr(name).parse::<u64>().unwrap_or(0);
    let full = Jid::parse(attr("jid")).map_err(|e| format!("bad JID: {e}"))?;
    let account = full.to_bare();
    if !server.is_local_host(full.domain()) {
        return Err(format!("{full}: the host is not served any more"));
    }
    match server.store().accounts().exists(account.as_str()) {
        Ok(true) => {}
        Ok(false) => return Err(format!("{full}: the account is gone")),
        Err(e) => return Err(format!("{full}: {e}")),
    }
    let session = server
        .bind(&account, full.resource(), crate::outbox::Outbox::new())
        .map_err(|e| format!("{full}: {e:?}"))?;
    let now = SystemTime::now();
    // At most the session's own timeout: a clock set back while the
    // server was down does not stretch the wait.
    let left = UNIX_EPOCH
        .checked_add(Duration::from_secs(number("expires")))
        .and_then(|expires| expires.duration_since(now).ok())
        .unwrap_or_default()
        .min(Duration::from_secs(number("timeout")));
    let children = |name: &'static str| {
        el.children()
            .filter(move |c| c.is(name, NS_SAVED))
            .flat_map(|c| c.children())
    };
    *session.presence.borrow_mut() = el
        .get_child("available", NS_SAVED)
        .and_then(|a| a.children().next().cloned());
    session
        .priority
        .set(attr("priority").parse::<i8>().unwrap_or(0));
    let im = &session.im;
    *im.caps.borrow_mut() = el.get_child("caps", NS_SAVED).and_then(restored_caps);
    im.roster_interested.set(attr("roster") == "1");
    im.blocklist_interested.set(attr("blocklist") == "1");
    im.carbons.set(attr("carbons") == "1");
    if el.attr("since").is_some() {
        im.presence_since
            .set(UNIX_EPOCH.checked_add(Duration::from_secs(number("since"))));
    }
    {
        let mut directed = session.directed.borrow_mut();
        for d in el.children().filter(|c| c.is("directed", NS_SAVED)) {
            if let Some(jid) = d.attr("jid").and_then(|j| Jid::parse(j).ok()) {
                directed.push(jid);
            }
        }
    }
    let serialized = |s: &Element| {
        let mut buf = Vec::new();
        s.write_to(&mut buf, NS_CLIENT);
        buf
    };
    let handled = u32::try_from(number("handled")).unwrap_or(0);
    let sent = u32::try_from(number("sent")).unwrap_or(0);
    let timeout = Duration::from_secs(number("timeout"));
    let mut sm = StreamManagement::new(Some(id.into()), timeout);
    sm.saved = true;
    sm.handled = handled;
    sm.unacked = Unacked::restore(sent, children("unacked").map(serialized));
    // Offline messages it was given and had not acknowledged are still
    // stored: they stay its own (a new login does not get them too).
    for o in el.children().filter(|c| c.is("offline", NS_SAVED)) {
        let n = |name: &str| {
            o.attr(name)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let pending = OfflinePending {
            threshold: u32::try_from(n("threshold")).unwrap_or(0),
            after: n("after"),
            through: n("through"),
            count: usize::try_from(n("count")).unwrap_or(0),
            bytes: usize::try_from(n("bytes")).unwrap_or(0),
        };
        if let Ok(state) = server.env().account(&account) {
            let mut queue = state.offline.borrow_mut();
            queue.delivered_through = queue.delivered_through.max(pending.through);
            queue.count = queue.count.saturating_sub(pending.count);
            queue.bytes = queue.bytes.saturating_sub(pending.bytes);
        }
        sm.offline_pending.push(pending);
    }
    *session.sm.borrow_mut() = Some(sm);
    *session.csi.borrow_mut() =
        crate::stream::csi::CsiState::new(server.config().c2s.csi_max_held as usize);
    if attr("inactive") == "1" {
        session.csi.borrow_mut().set_inactive();
    }
    for stanza in children("queued") {
        session.outbox.send(stanza);
    }
    let env = server.env();
    for room in el.children().filter(|c| c.is("room", NS_SAVED)) {
        let occupancy = room
            .attr("jid")
            .and_then(|j| Jid::parse(j).ok())
            .map(|jid| Occupancy {
                room: jid,
                nick: room.attr("nick").unwrap_or_default().to_string(),
                presence: room
                    .children()
                    .next()
                    .cloned()
                    .unwrap_or_else(|| Element::new("presence", NS_CLIENT)),
                persistent: true,
            });
        let Some(occupancy) = occupancy else {
            continue;
        };
        let temporary = room.attr("temporary") == Some("1");
        if temporary || !server.muc().restore_occupant(&env, &full, &occupancy) {
            log::info!(
                "{full} is not back in {}: the room is gone or would not take it now",
                occupancy.room
            );
            removed_from_room(&session, &occupancy);
        }
    }
    server.resumption().register(id, session.clone());
    Ok((session, Instant::now() + left))
}

/// Tells a restored session's client that it is no longer in a room (the
/// room is gone, or would not take it back): the self-presence of a
/// removal because the service shut down (XEP-0045 status 332), so it
/// rejoins rather than wait for a room that is silent.
fn removed_from_room(session: &Session, occupancy: &Occupancy) {
    let Ok(occupant) = occupancy.room.with_resource(&occupancy.nick) else {
        return;
    };
    session.directed.borrow_mut().retain(|j| *j != occupant);
    let mut x = Element::new("x", crate::muc::NS_MUC_USER).with_child(
        Element::new("item", crate::muc::NS_MUC_USER)
            .with_attr("affiliation", "none")
            .with_attr("role", "none"),
    );
    for code in ["110", "332"] {
        x.push_child(Element::new("status", crate::muc::NS_MUC_USER).with_attr("code", code));
    }
    let presence = Element::new("presence", NS_CLIENT)
        .with_attr("from", occupant.as_str())
        .with_attr("to", session.jid.as_str())
        .with_attr("type", "unavailable")
        .with_child(x);
    session.outbox.send(&presence);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_round_trip() {
        let t = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(unix(t), 1_800_000_000);
        assert_eq!(unix(UNIX_EPOCH - Duration::from_secs(5)), 0);
    }

    #[test]
    fn capabilities_come_back_verified() {
        let el = Element::new("caps", NS_SAVED)
            .with_attr("node", "https://client.example")
            .with_attr("ver", "gp5XnGgrfe+M+Gdhd73yGmTUAc8=")
            .with_attr("hash", "sha-1")
            .with_child(
                Element::new("feature", NS_SAVED)
                    .with_attr("var", "http://jabber.org/protocol/tune+notify"),
            );
        let caps = restored_caps(&el).expect("restored");
        assert_eq!(caps.claim.ver, "gp5XnGgrfe+M+Gdhd73yGmTUAc8=");
        let features = caps.features.expect("features");
        assert!(features.wants_notify("http://jabber.org/protocol/tune"));
        assert!(!features.wants_notify("http://jabber.org/protocol/mood"));
        let unknown_hash = el.clone().with_attr("hash", "md4");
        assert!(restored_caps(&unknown_hash).is_none());
    }
}
