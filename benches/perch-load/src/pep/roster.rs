//! `pep`'s set-up (not timed): every account gets its contacts with
//! subscription both. Each client, online with plain presence, fetches its
//! roster, asks each contact whose presence it does not yet receive
//! (`<presence type='subscribe'/>`, all at once) and approves every request
//! it gets, until it has heard `subscribed` from each of them; a contact
//! that asks at the same time is approved, so both directions come about.
//! Roster items of accounts that are not its contacts (an earlier run's)
//! are removed. Then each fetches its roster again and counts the
//! contacts it has with subscription both, and anyone else subscribed to
//! its presence.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::conn::{ClientError, Conn, timeout};
use crate::xml::{self, Frame};

use super::client::answer_presence;

pub const NS_ROSTER: &str = "jabber:iq:roster";

/// Contacts by subscription, from a roster result: (jid, subscription).
pub fn items(el: &[u8]) -> Vec<(String, String)> {
    xml::with_parsed(el, |n| {
        n.descendants()
            .filter(|c| {
                c.tag_name().name() == "item" && c.tag_name().namespace() == Some(NS_ROSTER)
            })
            .filter_map(|c| {
                Some((
                    c.attribute("jid")?.to_ascii_lowercase(),
                    c.attribute("subscription").unwrap_or("none").to_string(),
                ))
            })
            .collect()
    })
    .unwrap_or_default()
}

/// Asks for the roster and waits for it, approving requests meanwhile.
async fn fetch(conn: &mut Conn, id: &str, approved: &AtomicU64) -> Result<Vec<u8>, ClientError> {
    conn.send(format!("<iq type='get' id='{id}'><query xmlns='{NS_ROSTER}'/></iq>").as_bytes())
        .await?;
    loop {
        let el = conn.next_element().await?;
        match xml::local_name(&el) {
            b"iq" if xml::start_tag_attr(&el, "id") == Some(id.as_bytes()) => {
                if xml::start_tag_attr(&el, "type") != Some(b"result") {
                    return Err(ClientError::Refused(
                        "roster",
                        String::from_utf8_lossy(&el).chars().take(300).collect(),
                    ));
                }
                return Ok(el);
            }
            b"presence" => {
                let mut out = Vec::new();
                if answer_presence(&el, &mut out) == Some("subscribe") {
                    approved.fetch_add(1, Ordering::Relaxed);
                }
                if !out.is_empty() {
                    conn.send(&out).await?;
                }
            }
            _ => {}
        }
    }
}

/// What the clients of the set-up count together.
#[derive(Default)]
pub struct Tally {
    /// Subscriptions asked for, and confirmed by a `subscribed`.
    pub asked: AtomicU64,
    pub confirmed: AtomicU64,
    pub approved: AtomicU64,
    /// Roster items of accounts that are not contacts, removed.
    pub removed: AtomicU64,
    /// Clients that have sent all their requests (the rest still fetch).
    pub started: AtomicU64,
}

/// One client's part: fetch, ask, approve, until `done` closes.
pub async fn subscribe(
    mut conn: Conn,
    contacts: Vec<String>,
    tally: Arc<Tally>,
    step: std::time::Duration,
    done: smol::channel::Receiver<()>,
) -> (Option<Conn>, Result<(), ClientError>) {
    let result: Result<(), ClientError> = async {
        let roster = timeout(step, "roster", fetch(&mut conn, "r1", &tally.approved)).await?;
        let listed = items(&roster);
        let receiving: HashSet<String> = listed
            .iter()
            .filter(|(_, sub)| sub == "to" || sub == "both")
            .map(|(jid, _)| jid.clone())
            .collect();
        let mut waiting: HashSet<Vec<u8>> = HashSet::new();
        let mut out = Vec::new();
        // Anyone else (an earlier run's contacts) is removed: only the
        // ring's contacts may get notifications.
        let wanted: HashSet<String> = contacts.iter().map(|c| c.to_ascii_lowercase()).collect();
        for (i, (jid, _)) in listed
            .iter()
            .filter(|(j, _)| !wanted.contains(j))
            .enumerate()
        {
            out.extend_from_slice(
                format!(
                    "<iq type='set' id='rm{i}'><query xmlns='{NS_ROSTER}'>\
                     <item jid='{}' subscription='remove'/></query></iq>",
                    xml::escape(jid)
                )
                .as_bytes(),
            );
            tally.removed.fetch_add(1, Ordering::Relaxed);
        }
        for c in contacts
            .iter()
            .filter(|c| !receiving.contains(&c.to_ascii_lowercase()))
        {
            out.extend_from_slice(
                format!("<presence type='subscribe' to='{}'/>", xml::escape(c)).as_bytes(),
            );
            waiting.insert(c.to_ascii_lowercase().into_bytes());
        }
        tally
            .asked
            .fetch_add(waiting.len() as u64, Ordering::Relaxed);
        tally.started.fetch_add(1, Ordering::Relaxed);
        loop {
            while let Some(frame) = conn.next_frame()? {
                let (a, b) = match frame {
                    Frame::Element(a, b) => (a, b),
                    Frame::End => return Err(ClientError::Closed("roster set-up")),
                    Frame::Header(..) => continue,
                };
                let el = conn.bytes(a, b);
                match xml::local_name(el) {
                    b"presence" => match answer_presence(el, &mut out) {
                        Some("subscribe") => {
                            tally.approved.fetch_add(1, Ordering::Relaxed);
                        }
                        Some("subscribed") => {
                            let from = xml::start_tag_attr(el, "from")
                                .unwrap_or_default()
                                .to_ascii_lowercase();
                            // The bare JID, should a server add a resource.
                            let bare = from.split(|&b| b == b'/').next().unwrap_or_default();
                            if waiting.remove(bare) {
                                tally.confirmed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        _ => {}
                    },
                    b"iq" => {
                        // Roster pushes: acknowledged.
                        let ty = xml::start_tag_attr(el, "type");
                        if ty == Some(b"set") || ty == Some(b"get") {
                            let id = xml::start_tag_attr(el, "id").unwrap_or_default();
                            out.extend_from_slice(b"<iq type='result' id='");
                            out.extend_from_slice(id);
                            out.extend_from_slice(b"'/>");
                        }
                    }
                    _ => {}
                }
            }
            if !out.is_empty() {
                conn.send(&out).await?;
                out.clear();
            }
            if !conn.fill_or_stop(&done).await? {
                return Ok(());
            }
        }
    }
    .await;
    match result {
        Ok(()) => (Some(conn), Ok(())),
        Err(e) => (None, Err(e)),
    }
}

/// The contacts among `contacts` the roster has with subscription both,
/// and the others it has with subscription from or both (who would get
/// notifications too).
pub async fn count_both(
    conn: &mut Conn,
    contacts: &[String],
    step: std::time::Duration,
) -> Result<(usize, usize), ClientError> {
    let unused = AtomicU64::new(0);
    let roster = timeout(step, "roster", fetch(conn, "r2", &unused)).await?;
    let wanted: HashSet<String> = contacts.iter().map(|c| c.to_ascii_lowercase()).collect();
    let listed = items(&roster);
    let both = listed
        .iter()
        .filter(|(jid, sub)| sub == "both" && wanted.contains(jid))
        .count();
    let others = listed
        .iter()
        .filter(|(jid, sub)| (sub == "both" || sub == "from") && !wanted.contains(jid))
        .count();
    Ok((both, others))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roster_items_by_subscription() {
        let el = b"<iq type='result' id='r1'><query xmlns='jabber:iq:roster' ver='3'>\
            <item jid='Load2@localhost' subscription='both'/>\
            <item jid='load3@localhost' subscription='to' ask='subscribe'><group>x</group></item>\
            <item jid='load4@localhost'/></query></iq>";
        assert_eq!(
            items(el),
            vec![
                ("load2@localhost".to_string(), "both".to_string()),
                ("load3@localhost".to_string(), "to".to_string()),
                ("load4@localhost".to_string(), "none".to_string()),
            ]
        );
    }
}
