//! An occupant of a room: one nickname, one real user (bare JID), and one
//! or more of that user's clients joined under the nickname (§7.2.9:
//! several resources may share a nick).

use std::time::Instant;

use crate::jid::Jid;
use crate::xml::Element;

use super::rate::TokenBucket;
use super::roles::Role;

/// One client of the occupant.
#[derive(Clone, Debug)]
pub struct Session {
    /// The client's real full JID.
    pub jid: Jid,
    /// The client's last presence as the room reflects it: `show`,
    /// `status`, `priority` and extensions, without MUC payloads.
    pub presence: Vec<Element>,
}

#[derive(Clone, Debug)]
pub struct Occupant {
    pub nick: String,
    pub bare: Jid,
    /// Never empty while the occupant is in the room; the last one is the
    /// most recent, whose presence the room shows.
    pub sessions: Vec<Session>,
    pub role: Role,
    /// XEP-0421: stable per (room, user), opaque.
    pub occupant_id: String,
    pub rate: TokenBucket,
}

impl Occupant {
    pub fn new(
        nick: String,
        session: Session,
        role: Role,
        occupant_id: String,
        now: Instant,
        burst: u32,
    ) -> Occupant {
        Occupant {
            nick,
            bare: session.jid.to_bare(),
            sessions: vec![session],
            role,
            occupant_id,
            rate: TokenBucket::new(now, burst),
        }
    }

    /// The session whose presence and JID represent the occupant.
    pub fn primary(&self) -> Option<&Session> {
        self.sessions.last()
    }

    pub fn session(&self, jid: &Jid) -> Option<&Session> {
        self.sessions.iter().find(|s| s.jid == *jid)
    }

    pub fn session_jids(&self) -> impl Iterator<Item = &Jid> {
        self.sessions.iter().map(|s| &s.jid)
    }
}
