//! One writer of the crash loop: logged in as its own account, it makes
//! one write after another, each entered in the ledger before it is sent
//! and settled when the server answers, until the kill cuts its connection.
//!
//! A write is acknowledged by its iq result. Messages to an offline
//! recipient have no result of their own: a burst of them is followed by
//! a ping, and the ping's result acknowledges every message before it
//! (Perch answers a client's stanzas in order and releases nothing before
//! the writes it depends on are on disk; a message it refuses comes back
//! as an error before the ping's result).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::conn::{ClientError, Conn, timeout};
use crate::rng::Rng;
use crate::xml;

use super::ledger::{Key, Kind, Ledger};
use super::protocol as p;

/// Account and entity names of one run.
#[derive(Debug, Clone)]
pub struct Names {
    pub prefix: String,
    pub domain: String,
    pub muc_domain: String,
    /// Marks this run's message ids.
    pub run_tag: u32,
}

impl Names {
    pub fn writer(&self, i: usize) -> String {
        format!("{}w{}", self.prefix, i + 1)
    }

    pub fn recipient(&self, i: usize) -> String {
        format!("{}r{}", self.prefix, i + 1)
    }

    pub fn bare(&self, localpart: &str) -> String {
        format!("{localpart}@{}", self.domain)
    }

    /// Message ids carry the run's tag, so a message of another run is
    /// never taken for one of ours.
    pub fn message_id(&self, cycle: u32, writer: usize, n: u32, j: u64) -> String {
        format!("{:08x}-{cycle}-{writer}-{n}-{j}", self.run_tag)
    }

    /// The message id in a delivered message's body, if it is one of ours.
    pub fn message_in_body<'a>(&self, body: &'a str) -> Option<&'a str> {
        let id = body.strip_prefix("crash ")?;
        id.starts_with(&format!("{:08x}-", self.run_tag))
            .then_some(id)
    }
}

/// How much state a writer keeps, so checks stay short over many kills.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Rooms one writer creates per cycle (rooms are never destroyed, so
    /// every check reads back all of them).
    pub rooms_per_cycle: u32,
    /// Members (over all of a writer's rooms) and roster items one writer
    /// keeps: past this, it only removes.
    pub members: usize,
    pub roster_items: usize,
    pub private_slots: u32,
}

/// What every writer of a cycle shares.
#[derive(Clone)]
pub struct Shared {
    pub names: Arc<Names>,
    pub ledger: Arc<Mutex<Ledger>>,
    /// Bound on each answer.
    pub step: Duration,
    pub caps: Caps,
    /// Set once the server is killed; writers stop at their next write.
    pub stop: Arc<AtomicBool>,
}

pub struct Writer {
    index: usize,
    cycle: u32,
    names: Arc<Names>,
    ledger: Arc<Mutex<Ledger>>,
    rng: Rng,
    step: Duration,
    caps: Caps,
    stop: Arc<AtomicBool>,
    /// Requests made, also the counter in unique names.
    n: u32,
    rooms_created: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    OfflineBurst,
    RosterAdd,
    RosterRemove,
    Vcard,
    Private,
    RoomCreate,
    RoomConfig,
    MemberAdd,
    MemberRemove,
}

impl Writer {
    pub fn new(index: usize, cycle: u32, shared: &Shared, rng: Rng) -> Writer {
        Writer {
            index,
            cycle,
            names: shared.names.clone(),
            ledger: shared.ledger.clone(),
            rng,
            step: shared.step,
            caps: shared.caps,
            stop: shared.stop.clone(),
            n: 0,
            rooms_created: 0,
        }
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        // A writer that panicked holding the lock left counts, not a
        // broken invariant: keep going with them.
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes until the connection breaks (the kill) or `stop` is set;
    /// returns how many requests it made.
    pub async fn run(mut self, mut conn: Conn) -> u32 {
        while !self.stop.load(Ordering::Relaxed) {
            let action = self.choose();
            if self.act(&mut conn, action).await.is_err() {
                break;
            }
        }
        self.n
    }

    fn rooms(&self) -> Vec<String> {
        let owner = self.index;
        self.ledger()
            .keys_of(owner, |k| matches!(k, Key::Room { .. }))
            .into_iter()
            .filter(|(_, v)| v.is_some())
            .filter_map(|(k, _)| match k {
                Key::Room { room, .. } => Some(room),
                _ => None,
            })
            .collect()
    }

    fn present<F: Fn(&Key) -> bool>(&self, pred: F) -> Vec<Key> {
        self.ledger()
            .keys_of(self.index, pred)
            .into_iter()
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| k)
            .collect()
    }

    fn choose(&mut self) -> Action {
        let rooms = self.rooms().len();
        let roster = self.present(|k| matches!(k, Key::RosterItem { .. })).len();
        let members = self.present(|k| matches!(k, Key::Member { .. })).len();
        let mut options: Vec<(u64, Action)> = vec![
            (3, Action::OfflineBurst),
            (1, Action::Vcard),
            (1, Action::Private),
        ];
        if roster < self.caps.roster_items {
            options.push((2, Action::RosterAdd));
        }
        if roster > 0 {
            options.push((1, Action::RosterRemove));
        }
        if self.rooms_created < self.caps.rooms_per_cycle {
            options.push((1, Action::RoomCreate));
        }
        if rooms > 0 {
            options.push((1, Action::RoomConfig));
            if members < self.caps.members {
                options.push((2, Action::MemberAdd));
            }
        }
        if members > 0 {
            options.push((1, Action::MemberRemove));
        }
        let total: u64 = options.iter().map(|o| o.0).sum();
        let mut pick = self.rng.below(total);
        for (weight, action) in &options {
            if pick < *weight {
                return *action;
            }
            pick -= weight;
        }
        Action::OfflineBurst
    }

    /// A name unique to this run: writer, cycle and a counter.
    fn unique(&self, what: &str) -> String {
        format!(
            "{}{what}{}x{}x{}",
            self.names.prefix, self.index, self.cycle, self.n
        )
    }

    async fn act(&mut self, conn: &mut Conn, action: Action) -> Result<(), ClientError> {
        self.n += 1;
        let iq_id = format!("w{}", self.n);
        let owner = self.index;
        let token = self.unique("v");
        match action {
            Action::OfflineBurst => self.offline_burst(conn).await,
            Action::RosterAdd => {
                let contact = self.names.bare(&self.unique("c"));
                let text = p::roster_set(&iq_id, &contact, false);
                let key = Key::RosterItem { owner, contact };
                self.set(
                    conn,
                    Kind::RosterAdd,
                    key,
                    Some("present".into()),
                    &iq_id,
                    text,
                )
                .await
            }
            Action::RosterRemove => {
                let items = self.present(|k| matches!(k, Key::RosterItem { .. }));
                let Some(Key::RosterItem { contact, .. }) =
                    items.get(self.rng.index(items.len())).cloned()
                else {
                    return Ok(());
                };
                let text = p::roster_set(&iq_id, &contact, true);
                let key = Key::RosterItem { owner, contact };
                self.set(conn, Kind::RosterRemove, key, None, &iq_id, text)
                    .await
            }
            Action::Vcard => {
                let text = p::vcard_set(&iq_id, &token);
                self.set(
                    conn,
                    Kind::Vcard,
                    Key::Vcard { owner },
                    Some(token),
                    &iq_id,
                    text,
                )
                .await
            }
            Action::Private => {
                let slot = self.rng.below(u64::from(self.caps.private_slots.max(1))) as u32;
                let text = p::private_set(&iq_id, slot, &token);
                let key = Key::Private { owner, slot };
                self.set(conn, Kind::PrivateXml, key, Some(token), &iq_id, text)
                    .await
            }
            Action::RoomCreate => {
                self.rooms_created += 1;
                let room = format!("{}@{}", self.unique("room"), self.names.muc_domain);
                let nick = format!("w{}", self.index + 1);
                conn.send(p::join(&room, &nick).as_bytes()).await?;
                if !p::await_self_presence(conn, &room, &nick, self.step).await? {
                    return Ok(());
                }
                let text = p::room_config_set(&iq_id, &room, &token, true);
                let key = Key::Room { owner, room };
                self.set(conn, Kind::RoomCreate, key, Some(token), &iq_id, text)
                    .await
            }
            Action::RoomConfig => {
                let rooms = self.rooms();
                let Some(room) = rooms.get(self.rng.index(rooms.len())).cloned() else {
                    return Ok(());
                };
                let text = p::room_config_set(&iq_id, &room, &token, false);
                let key = Key::Room { owner, room };
                self.set(conn, Kind::RoomConfig, key, Some(token), &iq_id, text)
                    .await
            }
            Action::MemberAdd => {
                let rooms = self.rooms();
                let Some(room) = rooms.get(self.rng.index(rooms.len())).cloned() else {
                    return Ok(());
                };
                let member = self.names.bare(&self.unique("m"));
                let text = p::affiliation_set(&iq_id, &room, &member, "member");
                let key = Key::Member {
                    owner,
                    room,
                    member,
                };
                self.set(
                    conn,
                    Kind::MemberAdd,
                    key,
                    Some("member".into()),
                    &iq_id,
                    text,
                )
                .await
            }
            Action::MemberRemove => {
                let rooms = self.rooms();
                let members =
                    self.present(|k| matches!(k, Key::Member { room, .. } if rooms.contains(room)));
                let Some(key) = members.get(self.rng.index(members.len())).cloned() else {
                    return Ok(());
                };
                let Key::Member { room, member, .. } = &key else {
                    return Ok(());
                };
                let text = p::affiliation_set(&iq_id, room, member, "none");
                self.set(conn, Kind::MemberRemove, key.clone(), None, &iq_id, text)
                    .await
            }
        }
    }

    /// One iq write: entered, sent, settled by its answer.
    async fn set(
        &mut self,
        conn: &mut Conn,
        kind: Kind,
        key: Key,
        value: Option<String>,
        iq_id: &str,
        stanza: String,
    ) -> Result<(), ClientError> {
        let id = self.ledger().begin(kind, key, value);
        conn.send(stanza.as_bytes()).await?;
        let answer = p::answer(conn, iq_id, self.step).await?;
        self.ledger().settle(id, p::is_result(&answer));
        Ok(())
    }

    /// 1 to 8 chat messages to this writer's recipient (never online
    /// during the load), then a ping.
    async fn offline_burst(&mut self, conn: &mut Conn) -> Result<(), ClientError> {
        let count = 1 + self.rng.below(8);
        let to = self.names.bare(&self.names.recipient(self.index));
        let ping_id = format!("w{}", self.n);
        let mut out = String::new();
        let mut pending: HashMap<String, u64> = HashMap::new();
        for j in 0..count {
            let mid = self.names.message_id(self.cycle, self.index, self.n, j);
            let id = self.ledger().begin_message(self.index, &mid);
            out.push_str(&p::chat(&to, &mid, &format!("crash {mid}")));
            pending.insert(mid, id);
        }
        out.push_str(&p::ping(&ping_id, &self.names.domain));
        conn.send(out.as_bytes()).await?;
        let answered = timeout(self.step, "ping after messages", async {
            loop {
                let el = conn.next_element().await?;
                let name = xml::local_name(&el);
                if name == b"message" && xml::start_tag_attr(&el, "type") == Some(b"error") {
                    let mid = xml::start_tag_attr(&el, "id")
                        .map(|b| String::from_utf8_lossy(b).into_owned());
                    if let Some(id) = mid.and_then(|m| pending.remove(&m)) {
                        self.ledger().settle(id, false);
                    }
                } else if name == b"iq"
                    && xml::start_tag_attr(&el, "id") == Some(ping_id.as_bytes())
                {
                    return Ok(p::is_result(&el));
                }
            }
        })
        .await?;
        if answered {
            let mut ledger = self.ledger();
            for (_, id) in pending {
                ledger.settle(id, true);
            }
        }
        Ok(())
    }
}
