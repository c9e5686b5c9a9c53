//! The checks after a restart: each writer reads back everything it wrote
//! (roster, vCard, private XML slots, its rooms' names and member lists),
//! all questions in one write and the answers in order; each recipient
//! logs in, sends initial presence and collects its offline messages.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::conn::{ClientError, Conn, Login, Target};
use crate::sasl::Mechanism;
use crate::xml;

use super::ledger::{Key, Ledger};
use super::protocol as p;
use super::writer::Names;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Question {
    Roster,
    Vcard,
    Private(u32),
    RoomName(String),
    Members(String),
}

fn lock(ledger: &Mutex<Ledger>) -> std::sync::MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads back writer `owner`'s keys on its connection and settles them in
/// the ledger. Returns how many keys were checked.
pub async fn writer(
    conn: &mut Conn,
    owner: usize,
    ledger: &Mutex<Ledger>,
    step: Duration,
) -> Result<usize, ClientError> {
    let keys: Vec<Key> = lock(ledger)
        .keys()
        .into_iter()
        .filter(|k| k.owner() == owner)
        .collect();
    let questions: BTreeSet<Question> = keys
        .iter()
        .map(|k| match k {
            Key::RosterItem { .. } => Question::Roster,
            Key::Vcard { .. } => Question::Vcard,
            Key::Private { slot, .. } => Question::Private(*slot),
            Key::Room { room, .. } => Question::RoomName(room.clone()),
            Key::Member { room, .. } => Question::Members(room.clone()),
        })
        .collect();
    let questions: Vec<Question> = questions.into_iter().collect();
    let mut out = String::new();
    for (i, q) in questions.iter().enumerate() {
        let id = format!("q{i}");
        out.push_str(&match q {
            Question::Roster => p::roster_get(&id),
            Question::Vcard => p::vcard_get(&id),
            Question::Private(slot) => p::private_get(&id, *slot),
            Question::RoomName(room) => p::room_config_get(&id, room),
            Question::Members(room) => p::members_get(&id, room),
        });
    }
    if !out.is_empty() {
        conn.send(out.as_bytes()).await?;
    }
    let mut roster = BTreeSet::new();
    let mut vcard = None;
    let mut private = BTreeMap::new();
    let mut room_names = BTreeMap::new();
    let mut members = BTreeMap::new();
    for (i, q) in questions.iter().enumerate() {
        let answer = p::answer(conn, &format!("q{i}"), step).await?;
        match q {
            Question::Roster => roster = p::roster_items(&answer)?,
            Question::Vcard => vcard = p::text_of(&answer, "NICKNAME", p::NS_VCARD)?,
            Question::Private(slot) => {
                let ns = p::private_ns(*slot);
                private.insert(*slot, p::text_of(&answer, "slot", &ns)?);
            }
            Question::RoomName(room) => {
                room_names.insert(room.clone(), p::room_name(&answer)?);
            }
            Question::Members(room) => {
                members.insert(room.clone(), p::members(&answer)?);
            }
        }
    }
    let mut ledger = lock(ledger);
    for key in &keys {
        let observed = match key {
            Key::RosterItem { contact, .. } => roster
                .contains(&contact.to_lowercase())
                .then(|| "present".to_string()),
            Key::Vcard { .. } => vcard.clone(),
            Key::Private { slot, .. } => private.get(slot).cloned().flatten(),
            Key::Room { room, .. } => room_names.get(room).cloned().flatten(),
            Key::Member { room, member, .. } => members
                .get(room)
                .is_some_and(|m| m.contains(&member.to_lowercase()))
                .then(|| "member".to_string()),
        };
        ledger.check(key, observed);
    }
    Ok(keys.len())
}

/// Logs recipient `index` in, sends initial presence and collects this
/// run's offline messages until a ping after the presence is answered and
/// every acknowledged message is in (or nothing more came for a while);
/// settles them in the ledger. Returns how many were delivered.
pub async fn recipient(
    target: &Target,
    names: &Names,
    index: usize,
    password: &str,
    ledger: &Mutex<Ledger>,
) -> Result<usize, ClientError> {
    let user = names.recipient(index);
    let login = Login {
        user: &user,
        password,
        mechanism: Mechanism::ScramSha256,
        resource: "check",
        presence: false,
        sm: false,
    };
    let mut conn = Conn::login(target, &login).await?;
    let expected = lock(ledger).acked_messages(index);
    conn.send(format!("<presence/>{}", p::ping("chk", &names.domain)).as_bytes())
        .await?;
    let mut delivered = BTreeSet::new();
    let mut pinged = false;
    let mut last_news = Instant::now();
    // Stored messages come before the ping's result; a short grace after
    // it only in case a server delivers them later.
    let grace = Duration::from_millis(500);
    loop {
        let done = pinged && expected.iter().all(|id| delivered.contains(id));
        let quiet = last_news.elapsed();
        if done || (pinged && quiet > grace) || quiet > target.step_timeout {
            break;
        }
        let limit = if pinged {
            grace.saturating_sub(quiet)
        } else {
            target.step_timeout.saturating_sub(quiet)
        };
        let el = match crate::conn::timeout(limit, "offline delivery", conn.next_element()).await {
            Ok(el) => el,
            Err(ClientError::Timeout(_)) => continue,
            Err(e) => return Err(e),
        };
        last_news = Instant::now();
        match xml::local_name(&el) {
            b"iq" if xml::start_tag_attr(&el, "id") == Some(b"chk") => pinged = true,
            b"message" if xml::start_tag_attr(&el, "type") != Some(b"error") => {
                let body = xml::with_parsed(&el, |n| {
                    n.children()
                        .find(|c| c.tag_name().name() == "body")
                        .and_then(|b| b.text())
                        .map(str::to_string)
                })?;
                if let Some(id) = body.as_deref().and_then(|b| names.message_in_body(b)) {
                    delivered.insert(id.to_string());
                }
            }
            _ => {}
        }
    }
    if !pinged {
        return Err(ClientError::Timeout("ping after initial presence"));
    }
    // Unavailable before the load starts: a message the server routes to
    // a session that is still closing is delivered to it, not stored, and
    // would look lost. The ping's result says the server has seen it.
    conn.send(
        format!(
            "<presence type='unavailable'/>{}",
            p::ping("bye", &names.domain)
        )
        .as_bytes(),
    )
    .await?;
    p::answer(&mut conn, "bye", target.step_timeout).await?;
    conn.close().await;
    let n = delivered.len();
    lock(ledger).check_messages(index, &delivered);
    Ok(n)
}
