//! A query run against one archive (XEP-0313 §4), and its answer: one
//! `<message><result/></message>` per archived message, then the iq result
//! with `<fin/>` and its result set (XEP-0059).
//!
//! Every query is one range scan of the archive's table (or of its index
//! by correspondent), whatever its filters: the ids of XEP-0359 name their
//! message's key (see `ids.rs`), and the key is the stamp, so `start`,
//! `end`, `after-id`, `before-id` and the result set's `after` and `before`
//! all narrow the same range.

use crate::env::Env;
use crate::jid::Jid;
use crate::stanza::{Condition, StanzaError};
use crate::store::archive::{self, ArchiveRecord, Kind, OUTGOING, Scan};
use crate::xml::{Element, NS_CLIENT};

use super::query::Query;
use super::rsm::{Position, ResultSet};
use super::{NS_MAM, ids};

/// Results of a narrowed query counted for `<count/>` before giving up on
/// it (it is optional, XEP-0059 §2.6): counting is a scan of keys, and at
/// 2 000 it cost more than the page itself (1.5 ms at a million
/// messages). A whole archive's count is free (its totals).
const COUNT_CAP: u64 = 250;

/// The archive a query reads, and how its results are shown.
pub struct Target<'a> {
    pub kind: Kind,
    /// The archive's owner: the account's or the room's bare JID.
    pub owner: &'a Jid,
    /// Rooms: whether the requester may see senders' real JIDs.
    pub show_real_jids: bool,
}

/// The messages of one page, oldest first, and what the `<fin/>` says.
pub struct Page {
    pub records: Vec<ArchiveRecord>,
    pub complete: bool,
    pub count: Option<u64>,
}

/// Answers the iq `iq` (a `<query/>` parsed as `query`) from `target`'s
/// archive, or says why not. Returns whether the requester now has every
/// message archived so far: the query was not narrowed (by correspondent,
/// end or ids) and its page reached the newest message.
pub fn answer(
    env: &Env,
    iq: &Element,
    query: &Query,
    target: &Target,
) -> Result<bool, StanzaError> {
    let requester = iq
        .attr("from")
        .and_then(|f| Jid::parse(f).ok())
        .ok_or_else(|| StanzaError::new(Condition::BadRequest))?;
    let page = run(env, query, target)?;
    let owner = target.owner.as_str();
    let mut results: Vec<(&ArchiveRecord, String)> = page
        .records
        .iter()
        .map(|r| (r, env.archive.ids.id(owner, r.stamp)))
        .collect();
    // `<first/>` and `<last/>` stay the oldest and the newest of the page
    // (see `Query::flip_page`), whatever order the results go out in.
    let set = ResultSet {
        first: results.first().map(|(_, id)| id.clone()),
        last: results.last().map(|(_, id)| id.clone()),
        count: page.count,
    };
    if query.flip_page {
        results.reverse();
    }
    for (record, id) in &results {
        let Some(message) = stored_message(record, target, id) else {
            continue;
        };
        let result = super::query::result_wrapper(
            query.query_id.as_deref(),
            id.as_str(),
            ids::time_of(record.stamp),
            message,
        );
        let mut wrapper = Element::new("message", NS_CLIENT).with_attr("to", requester.as_str());
        if target.kind == Kind::Room {
            wrapper.set_attr("from", owner);
        }
        send(env, wrapper.with_child(result), &requester);
    }
    let mut reply = crate::stanza::iq_result(iq);
    reply.push_child(super::query::fin(page.complete, &set));
    send(env, reply, &requester);
    let forward = matches!(query.page.position, Position::First | Position::After(_));
    let whole = query.with.is_none()
        && query.end.is_none()
        && query.before_id.is_none()
        && query.ids.is_empty();
    Ok(whole && forward && page.complete && query.page.max > 0)
}

/// Finds the page `query` asks for.
pub fn run(env: &Env, query: &Query, target: &Target) -> Result<Page, StanzaError> {
    let owner = target.owner.as_str();
    let stamp_of = |id: &str| {
        env.archive.ids.stamp(owner, id).ok_or_else(|| {
            StanzaError::new(Condition::ItemNotFound).with_text(format!("no message with id {id}"))
        })
    };
    let failed = |e: crate::store::StoreError| {
        log::error!("reading the archive of {owner}: {e}");
        StanzaError::new(Condition::InternalServerError)
    };
    if !query.ids.is_empty() {
        let mut records = Vec::with_capacity(query.ids.len());
        for id in &query.ids {
            let stamp = stamp_of(id)?;
            match archive::get(env.store, target.kind, owner, stamp).map_err(failed)? {
                Some(record) => records.push(record),
                None => {
                    return Err(StanzaError::new(Condition::ItemNotFound)
                        .with_text(format!("no message with id {id}")));
                }
            }
        }
        records.sort_by_key(|r| r.stamp);
        records.dedup_by_key(|r| r.stamp);
        let count = records.len() as u64;
        return Ok(Page {
            records,
            complete: true,
            count: Some(count),
        });
    }
    // The whole result set: what `<count/>` counts.
    let mut lo = query.start.map_or(0, ids::micros);
    let mut hi = query.end.map_or(u64::MAX, ids::micros);
    if let Some(id) = &query.after_id {
        lo = lo.max(stamp_of(id)?.saturating_add(1));
    }
    if let Some(id) = &query.before_id {
        match stamp_of(id)?.checked_sub(1) {
            Some(h) => hi = hi.min(h),
            None => return Ok(empty()),
        }
    }
    let with = match correspondent(query.with.as_ref(), target) {
        Correspondent::Anyone => None,
        Correspondent::Index(index, full) => Some((index, full)),
        Correspondent::Nobody => return Ok(empty()),
    };
    if lo > hi {
        return Ok(empty());
    }
    let index = with.as_ref().map(|(i, _)| i.as_str());
    let full = with.as_ref().and_then(|(_, f)| f.clone());
    let count = match &full {
        // Counting a full JID's messages reads every message.
        Some(_) => None,
        None => archive::count(env.store, target.kind, owner, lo, hi, index, COUNT_CAP)
            .map_err(failed)?,
    };
    // The page within it.
    let (mut page_lo, mut page_hi, descending) = (lo, hi, false);
    let descending = match &query.page.position {
        Position::First => descending,
        Position::After(id) => {
            page_lo = page_lo.max(stamp_of(id)?.saturating_add(1));
            false
        }
        Position::Before(None) => true,
        Position::Before(Some(id)) => {
            match stamp_of(id)?.checked_sub(1) {
                Some(h) => page_hi = page_hi.min(h),
                None => {
                    return Ok(Page { count, ..empty() });
                }
            }
            true
        }
    };
    if query.page.max == 0 || page_lo > page_hi {
        return Ok(Page {
            records: Vec::new(),
            complete: count == Some(0) || page_lo > page_hi,
            count,
        });
    }
    let scan = Scan {
        lo: page_lo,
        hi: page_hi,
        with: index,
        descending,
        limit: query.page.max,
    };
    let keep = |record: &ArchiveRecord| {
        full.as_ref()
            .is_none_or(|full| peer_of(record).is_some_and(|p| p == *full))
    };
    let (mut records, more) =
        archive::scan(env.store, target.kind, owner, &scan, &keep).map_err(failed)?;
    if descending {
        records.reverse();
    }
    Ok(Page {
        records,
        complete: !more,
        count,
    })
}

fn empty() -> Page {
    Page {
        records: Vec::new(),
        complete: true,
        count: Some(0),
    }
}

/// What a query's `with` selects in an archive.
enum Correspondent {
    Anyone,
    /// The index key, and the full JID to match if one was given.
    Index(String, Option<Jid>),
    /// Nobody in this archive can match.
    Nobody,
}

fn correspondent(with: Option<&Jid>, target: &Target) -> Correspondent {
    let Some(with) = with else {
        return Correspondent::Anyone;
    };
    match target.kind {
        // An account's archive is indexed by the correspondent's bare JID.
        Kind::User => Correspondent::Index(
            with.to_bare().as_str().to_string(),
            with.resource().is_some().then(|| with.clone()),
        ),
        // A room's by the sender's nick: `with` is an occupant JID.
        Kind::Room => {
            if with.to_bare() != *target.owner {
                Correspondent::Nobody
            } else {
                match with.resource() {
                    Some(nick) => Correspondent::Index(nick.to_string(), None),
                    None => Correspondent::Anyone,
                }
            }
        }
    }
}

/// The full JID an account's archived message was exchanged with.
fn peer_of(record: &ArchiveRecord) -> Option<Jid> {
    let stanza = parse_stored(&record.xml)?;
    let attr = if record.flags & OUTGOING != 0 {
        "to"
    } else {
        "from"
    };
    stanza.attr(attr).and_then(|j| Jid::parse(j).ok())
}

/// The archived stanza as a result shows it: a room's message as it was
/// reflected, with the stanza id the room gave it (stored without: `id`).
fn stored_message(record: &ArchiveRecord, target: &Target, id: &str) -> Option<Element> {
    let mut message = parse_stored(&record.xml)?;
    if target.kind == Kind::Room {
        super::policy::stamp_id(&mut message, target.owner.as_str(), id);
    }
    if target.kind == Kind::Room && target.show_real_jids && !record.extra.is_empty() {
        message.push_child(
            Element::new("x", crate::stanza::NS_MUC_USER).with_child(
                Element::new("item", crate::stanza::NS_MUC_USER)
                    .with_attr("jid", record.extra.as_str()),
            ),
        );
    }
    Some(message)
}

/// Parses an archived stanza (stored as written on a client stream, without
/// its `jabber:client` declaration). A damaged one is skipped, and logged.
pub fn parse_stored(xml: &[u8]) -> Option<Element> {
    let text = std::str::from_utf8(xml).ok()?;
    let wrapped = format!("<m xmlns='{NS_CLIENT}'>{text}</m>");
    match Element::parse(&wrapped) {
        Ok(mut outer) => outer.children.drain(..).find_map(|n| match n {
            crate::xml::Node::Element(e) => Some(e),
            crate::xml::Node::Text(_) => None,
        }),
        Err(e) => {
            log::warn!("skipping an archived message that does not parse: {e}");
            None
        }
    }
}

/// Sends a result to the requester: straight into a local session's queue
/// (it is an answer, not a message to route, carbon or archive).
fn send(env: &Env, stanza: Element, to: &Jid) {
    if !env.send_to_session(to, &stanza) {
        env.deliver(stanza, to);
    }
}

/// The `NS_MAM` payloads this module answers, for dispatchers.
pub fn is_mam(payload: &Element) -> bool {
    payload.ns == NS_MAM
}
