//! How a persistent room is stored: compact hand-written binary, one
//! version byte first so a later layout can be told apart.
//!
//! Primitives: `u8`; `u32`/`u64` little-endian; a string is a `u32` byte
//! length then UTF-8; an optional string is a `u8` flag (0/1) then the
//! string when present.
//!
//! Room record (table `muc_rooms`, key: room bare JID), version 1:
//! ```text
//! u8 version = 1
//! str name, str description, str language
//! opt-str password
//! u8 flags: 1 persistent, 2 public, 4 members-only, 8 moderated,
//!           16 occupants may change subject, 32 members may invite,
//!           64 logging
//! u8 whois: 0 moderators, 1 anyone
//! u8 allow-pm: 0 none, 1 moderators, 2 participants, 3 anyone
//! u8 presence broadcast: 1 moderator, 2 participant, 4 visitor, 8 offline
//! u32 max users (0: no room limit)
//! u32 history length
//! opt subject: u8 flag, then str text, str setter nick ("" = the room),
//!              u64 milliseconds since 1970
//! u64 created, milliseconds since 1970
//! ```
//!
//! Affiliation record (table `muc_affiliations`, key: (room, user bare
//! JID)), version 1: `u8 version = 1, u8 affiliation (roles::Affiliation
//! code), opt-str reserved nick, opt-str reason`.
//!
//! History (table `muc_history`, key: room), version 1: `u8 version = 1,
//! u32 count`, then per message `u64 milliseconds since 1970, str stanza`
//! (the reflected message as XML, without `to`).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::config::{Broadcast, RoomConfig, Whois};
use super::roles::{Affiliation, PmPolicy};

const VERSION: u8 = 1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    pub text: String,
    /// Nickname of the occupant who set it; empty when the room did.
    pub nick: String,
    pub stamp: SystemTime,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomRecord {
    pub config: RoomConfig,
    pub subject: Option<Subject>,
    pub created: SystemTime,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AffiliationRecord {
    pub affiliation: Affiliation,
    pub nick: Option<String>,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    pub stamp: SystemTime,
    pub xml: String,
}

struct Writer(Vec<u8>);

impl Writer {
    fn new() -> Writer {
        Writer(vec![VERSION])
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(s.as_bytes());
    }
    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
            None => self.u8(0),
        }
    }
    fn time(&mut self, t: SystemTime) {
        let ms = t
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        self.u64(ms);
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], what: &'static str) -> Result<Reader<'a>, DecodeError> {
        let mut r = Reader { bytes, what };
        match r.u8()? {
            VERSION => Ok(r),
            v => Err(DecodeError(format!("{what}: unknown layout version {v}"))),
        }
    }
    fn short(&self) -> DecodeError {
        DecodeError(format!("{}: truncated", self.what))
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let (head, tail) = self.bytes.split_at_checked(n).ok_or_else(|| self.short())?;
        self.bytes = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b: [u8; 4] = self.take(4)?.try_into().map_err(|_| self.short())?;
        Ok(u32::from_le_bytes(b))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b: [u8; 8] = self.take(8)?.try_into().map_err(|_| self.short())?;
        Ok(u64::from_le_bytes(b))
    }
    fn str(&mut self) -> Result<String, DecodeError> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| DecodeError(format!("{}: invalid UTF-8", self.what)))
    }
    fn opt_str(&mut self) -> Result<Option<String>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            _ => self.str().map(Some),
        }
    }
    fn time(&mut self) -> Result<SystemTime, DecodeError> {
        Ok(UNIX_EPOCH + Duration::from_millis(self.u64()?))
    }
    fn finish(self) -> Result<(), DecodeError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(DecodeError(format!("{}: trailing bytes", self.what)))
        }
    }
}

const PERSISTENT: u8 = 1;
const PUBLIC: u8 = 2;
const MEMBERS_ONLY: u8 = 4;
const MODERATED: u8 = 8;
const CHANGE_SUBJECT: u8 = 16;
const MEMBERS_INVITE: u8 = 32;
const LOGGING: u8 = 64;

impl RoomRecord {
    pub fn encode(&self) -> Vec<u8> {
        let c = &self.config;
        let mut w = Writer::new();
        w.str(&c.name);
        w.str(&c.description);
        w.str(&c.language);
        w.opt_str(c.password.as_deref());
        let mut flags = 0;
        for (on, bit) in [
            (c.persistent, PERSISTENT),
            (c.public, PUBLIC),
            (c.members_only, MEMBERS_ONLY),
            (c.moderated, MODERATED),
            (c.occupants_may_change_subject, CHANGE_SUBJECT),
            (c.members_may_invite, MEMBERS_INVITE),
            (c.logging, LOGGING),
        ] {
            if on {
                flags |= bit;
            }
        }
        w.u8(flags);
        w.u8(match c.whois {
            Whois::Moderators => 0,
            Whois::Anyone => 1,
        });
        w.u8(c.allow_pm.code());
        w.u8(c.broadcast.bits());
        w.u32(c.max_users);
        w.u32(c.history_length);
        match &self.subject {
            Some(s) => {
                w.u8(1);
                w.str(&s.text);
                w.str(&s.nick);
                w.time(s.stamp);
            }
            None => w.u8(0),
        }
        w.time(self.created);
        w.0
    }

    pub fn decode(bytes: &[u8]) -> Result<RoomRecord, DecodeError> {
        let mut r = Reader::new(bytes, "room record")?;
        let name = r.str()?;
        let description = r.str()?;
        let language = r.str()?;
        let password = r.opt_str()?;
        let flags = r.u8()?;
        let whois = match r.u8()? {
            0 => Whois::Moderators,
            1 => Whois::Anyone,
            v => return Err(DecodeError(format!("room record: whois {v}"))),
        };
        let allow_pm = PmPolicy::from_code(r.u8()?)
            .ok_or_else(|| DecodeError("room record: private message policy".into()))?;
        let broadcast = Broadcast::from_bits(r.u8()?);
        let max_users = r.u32()?;
        let history_length = r.u32()?;
        let subject = match r.u8()? {
            0 => None,
            _ => Some(Subject {
                text: r.str()?,
                nick: r.str()?,
                stamp: r.time()?,
            }),
        };
        let created = r.time()?;
        r.finish()?;
        Ok(RoomRecord {
            config: RoomConfig {
                name,
                description,
                language,
                persistent: flags & PERSISTENT != 0,
                public: flags & PUBLIC != 0,
                members_only: flags & MEMBERS_ONLY != 0,
                moderated: flags & MODERATED != 0,
                password,
                whois,
                max_users,
                occupants_may_change_subject: flags & CHANGE_SUBJECT != 0,
                members_may_invite: flags & MEMBERS_INVITE != 0,
                allow_pm,
                history_length,
                broadcast,
                logging: flags & LOGGING != 0,
            },
            subject,
            created,
        })
    }
}

impl AffiliationRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(self.affiliation.code());
        w.opt_str(self.nick.as_deref());
        w.opt_str(self.reason.as_deref());
        w.0
    }

    pub fn decode(bytes: &[u8]) -> Result<AffiliationRecord, DecodeError> {
        let mut r = Reader::new(bytes, "affiliation record")?;
        let affiliation = Affiliation::from_code(r.u8()?)
            .ok_or_else(|| DecodeError("affiliation record: unknown affiliation".into()))?;
        let nick = r.opt_str()?;
        let reason = r.opt_str()?;
        r.finish()?;
        Ok(AffiliationRecord {
            affiliation,
            nick,
            reason,
        })
    }
}

pub fn encode_history(messages: &[StoredMessage]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(u32::try_from(messages.len()).unwrap_or(u32::MAX));
    for m in messages {
        w.time(m.stamp);
        w.str(&m.xml);
    }
    w.0
}

pub fn decode_history(bytes: &[u8]) -> Result<Vec<StoredMessage>, DecodeError> {
    let mut r = Reader::new(bytes, "history")?;
    let count = r.u32()?;
    // Each entry takes at least 12 bytes; a count that cannot fit is corrupt
    // (and must not size an allocation).
    if count as usize > bytes.len() / 12 {
        return Err(DecodeError("history: impossible message count".into()));
    }
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let stamp = r.time()?;
        let xml = r.str()?;
        out.push(StoredMessage { stamp, xml });
    }
    r.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::muc::config::ConfigBounds;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn room_round_trip() {
        let bounds = ConfigBounds {
            default_history: 20,
            max_history: 50,
            max_occupants: 100,
        };
        let mut config = RoomConfig::new(&bounds);
        let plain = RoomRecord {
            config: config.clone(),
            subject: None,
            created: at(5),
        };
        assert_eq!(RoomRecord::decode(&plain.encode()), Ok(plain));
        config.name = "Garden ☃".into();
        config.password = Some("pw".into());
        config.members_only = true;
        config.logging = true;
        config.whois = Whois::Anyone;
        config.allow_pm = PmPolicy::Moderators;
        config.broadcast.offline_members = true;
        config.max_users = 42;
        let full = RoomRecord {
            config,
            subject: Some(Subject {
                text: "Hi".into(),
                nick: "romeo".into(),
                stamp: at(1_700_000_000_123),
            }),
            created: at(1),
        };
        let bytes = full.encode();
        assert_eq!(RoomRecord::decode(&bytes), Ok(full));
        for cut in 0..bytes.len() {
            assert!(RoomRecord::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(RoomRecord::decode(&longer).is_err());
        let mut future = bytes;
        future[0] = 9;
        assert!(RoomRecord::decode(&future).is_err());
    }

    #[test]
    fn affiliation_and_history_round_trip() {
        let a = AffiliationRecord {
            affiliation: Affiliation::Outcast,
            nick: None,
            reason: Some("spam".into()),
        };
        assert_eq!(AffiliationRecord::decode(&a.encode()), Ok(a));
        assert!(AffiliationRecord::decode(&[1, 9, 0, 0]).is_err());
        let h = vec![
            StoredMessage {
                stamp: at(1),
                xml: "<message/>".into(),
            },
            StoredMessage {
                stamp: at(2),
                xml: "<message><body>é</body></message>".into(),
            },
        ];
        assert_eq!(decode_history(&encode_history(&h)), Ok(h));
        assert!(decode_history(&[1, 255, 255, 255, 255]).is_err());
    }
}
