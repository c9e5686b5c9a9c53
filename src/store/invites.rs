//! Invitations (XEP-0401, XEP-0445, XEP-0379): one record per token, from
//! `perch invite` (or, later, an ad-hoc command) until its last use, its
//! revocation or its expiry. The layout is documented in `schema.rs`.
//!
//! A registration with a token is one transaction: the account is created
//! and a use of the token taken together, so a crash cannot leave an
//! account without its use counted or a use counted without its account,
//! and two registrations racing for the last use cannot both succeed.
//!
//! Expired and used-up records are never valid; they are removed when the
//! last use is taken, when invites are listed and when a new one is
//! created (a small table: at most [`MAX_INVITES`] records).
//!
//! Files from before invites existed lack the table: reads find nothing
//! there, and the first write creates it.

use redb::{ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::keys::{self, Def};
use super::schema::INVITES;
use super::{Store, StoreError, WriteOp};
use crate::sasl::Credentials;

/// Invites kept at once (all hosts together); creating more is refused
/// until some are used, revoked or expire. The table is scanned whole
/// when a username is checked for a reservation, so it stays small.
pub const MAX_INVITES: u64 = 10_000;

/// What a token lets its holder do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InviteKind {
    /// Register an account (`xmpp:DOMAIN?register;preauth=TOKEN`, or with
    /// the username fixed `xmpp:USER@DOMAIN?register;preauth=TOKEN`).
    Account,
    /// Become a contact of the creator, registering an account first if
    /// needed (`xmpp:CREATOR?roster;preauth=TOKEN;ibr=y`).
    Contact,
}

impl InviteKind {
    fn code(self) -> u8 {
        match self {
            InviteKind::Account => 1,
            InviteKind::Contact => 2,
        }
    }

    fn from_code(code: u8) -> Option<InviteKind> {
        match code {
            1 => Some(InviteKind::Account),
            2 => Some(InviteKind::Contact),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InviteKind::Account => "account",
            InviteKind::Contact => "contact",
        }
    }
}

/// One invitation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invite {
    /// The secret that is the capability (`crate::invite::token`).
    pub token: String,
    pub kind: InviteKind,
    /// The host the new account is registered on.
    pub domain: String,
    /// The account that invited (bare JID): the new account and it become
    /// contacts, subscribed both ways. Always set for
    /// [`InviteKind::Contact`]; `None` for an administrator's account
    /// invitation without a contact.
    pub creator: Option<String>,
    /// The username (localpart, normalized) the new account must take; it
    /// is reserved while the invite lives.
    pub username: Option<String>,
    /// The creator's roster group the new contact lands in.
    pub group: Option<String>,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds after which the token is no longer accepted.
    pub expires: u64,
    /// Registrations (or subscriptions) the token still allows.
    pub uses_left: u32,
    /// The account it registers becomes a server administrator (`perch
    /// invite --admin`), recorded in `granted_admins` in the same write.
    pub admin: bool,
}

/// Version 2 added the flags byte (bit 0: admin); version 1 records read
/// as invitations without flags.
const RECORD_VERSION: u8 = 2;
const FLAG_ADMIN: u8 = 1;

impl Invite {
    /// Whether the token may still be used at `now`.
    pub fn is_valid(&self, now: u64) -> bool {
        self.uses_left > 0 && now < self.expires
    }

    /// The bare JID the username is reserved as, if one is fixed.
    pub fn reserved_jid(&self) -> Option<String> {
        self.username
            .as_ref()
            .map(|user| format!("{user}@{}", self.domain))
    }

    /// The stored value (layout in `schema.rs`).
    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::with_capacity(64 + self.domain.len());
        out.push(RECORD_VERSION);
        out.push(self.kind.code());
        out.extend_from_slice(&self.created.to_be_bytes());
        out.extend_from_slice(&self.expires.to_be_bytes());
        out.extend_from_slice(&self.uses_left.to_be_bytes());
        out.push(if self.admin { FLAG_ADMIN } else { 0 });
        for (what, text) in [
            ("domain", self.domain.as_str()),
            ("creator", self.creator.as_deref().unwrap_or_default()),
            ("username", self.username.as_deref().unwrap_or_default()),
            ("group", self.group.as_deref().unwrap_or_default()),
        ] {
            let len = u16::try_from(text.len()).map_err(|_| {
                StoreError::LimitExceeded(format!("an invite {what} of {} bytes", text.len()))
            })?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        Ok(out)
    }

    /// The record stored as `bytes` under `token`; anything but a whole
    /// record of a known version is `Corrupt`.
    pub fn decode(token: &str, bytes: &[u8]) -> Result<Invite, StoreError> {
        let fail = |detail: &str| keys::corrupt(INVITES, format!("invite {token}: {detail}"));
        let (&version, rest) = bytes.split_first().ok_or_else(|| fail("empty"))?;
        if !(1..=RECORD_VERSION).contains(&version) {
            return Err(fail(&format!(
                "version {version} (this Perch reads {RECORD_VERSION})"
            )));
        }
        let (&kind, mut rest) = rest.split_first().ok_or_else(|| fail("kind missing"))?;
        let kind = InviteKind::from_code(kind).ok_or_else(|| fail(&format!("kind {kind}")))?;
        let mut number = |field: &str| -> Result<u64, StoreError> {
            let (n, after) = rest
                .split_first_chunk::<8>()
                .ok_or_else(|| fail(&format!("{field} missing")))?;
            rest = after;
            Ok(u64::from_be_bytes(*n))
        };
        let created = number("creation time")?;
        let expires = number("expiry")?;
        let (uses, after) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| fail("uses missing"))?;
        let uses_left = u32::from_be_bytes(*uses);
        rest = after;
        let mut flags = 0;
        if version >= 2 {
            let (&byte, after) = rest.split_first().ok_or_else(|| fail("flags missing"))?;
            if byte & !FLAG_ADMIN != 0 {
                return Err(fail(&format!("unknown flags {byte:#04x}")));
            }
            flags = byte;
            rest = after;
        }
        let mut text = |field: &str| -> Result<Option<String>, StoreError> {
            let (len, after) = rest
                .split_first_chunk::<2>()
                .ok_or_else(|| fail(&format!("{field} missing")))?;
            let len = usize::from(u16::from_be_bytes(*len));
            let value = after
                .get(..len)
                .ok_or_else(|| fail(&format!("{field} cut short")))?;
            rest = after.get(len..).unwrap_or_default();
            let value = String::from_utf8(value.to_vec())
                .map_err(|_| fail(&format!("{field} is not UTF-8")))?;
            Ok((!value.is_empty()).then_some(value))
        };
        let domain = text("domain")?.ok_or_else(|| fail("no domain"))?;
        let creator = text("creator")?;
        let username = text("username")?;
        let group = text("group")?;
        if !rest.is_empty() {
            return Err(fail(&format!("{} bytes after the end", rest.len())));
        }
        if kind == InviteKind::Contact && creator.is_none() {
            return Err(fail("a contact invite without its creator"));
        }
        Ok(Invite {
            token: token.to_string(),
            kind,
            domain,
            creator,
            username,
            group,
            created,
            expires,
            uses_left,
            admin: flags & FLAG_ADMIN != 0,
        })
    }
}

type ReadTable = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

/// `def` in a read transaction; `None` in a file from before it existed.
fn open_read(txn: &redb::ReadTransaction, def: Def) -> Result<Option<ReadTable>, StoreError> {
    match txn.open_table(def) {
        Ok(table) => Ok(Some(table)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn read_all(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
) -> Result<Vec<Invite>, StoreError> {
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (key, value) = entry?;
        let token = keys::read_str(INVITES, key.value())?;
        out.push(Invite::decode(token, value.value())?);
    }
    Ok(out)
}

/// The valid invite of `username@domain` other than `except`, if any.
fn reservation_in(
    invites: &[Invite],
    bare_jid: &str,
    now: u64,
    except: Option<&str>,
) -> Option<String> {
    invites
        .iter()
        .filter(|i| i.is_valid(now) && Some(i.token.as_str()) != except)
        .find(|i| i.reserved_jid().as_deref() == Some(bare_jid))
        .map(|i| i.token.clone())
}

/// Removes the records that can no longer be used; returns how many.
fn sweep_in(
    table: &mut redb::Table<'_, &'static [u8], &'static [u8]>,
    now: u64,
) -> Result<usize, StoreError> {
    let doomed: Vec<String> = read_all(table)?
        .into_iter()
        .filter(|i| !i.is_valid(now))
        .map(|i| i.token)
        .collect();
    for token in &doomed {
        table.remove(keys::single(token))?;
    }
    Ok(doomed.len())
}

/// Why a registration with a token was not made.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// No such token, or it was used up or revoked meanwhile.
    Invalid,
    /// The token fixes another username.
    WrongUsername { fixed: String },
    /// The address is taken (an account, a deleted account's tombstone,
    /// or another invite's reservation); the token keeps its use.
    Taken,
}

impl Refused {
    /// The refusal a [`register_op`] failed with, if it was one.
    pub fn from_error(e: &StoreError) -> Option<Refused> {
        match e {
            StoreError::AlreadyExists(_) => Some(Refused::Taken),
            StoreError::NotFound(_) => Some(Refused::Invalid),
            StoreError::LimitExceeded(why) => Some(Refused::WrongUsername {
                fixed: why.rsplit(' ').next().unwrap_or_default().to_string(),
            }),
            _ => None,
        }
    }
}

/// Takes one use of `token` inside `txn` (removing the record at the
/// last), and returns the invite as it was. Expiry is not checked here:
/// XEP-0445 checks it once, when the token is presented; callers that
/// present it now check it themselves with [`Invite::is_valid`].
fn take_use_in(txn: &WriteTransaction, token: &str) -> Result<Option<Invite>, StoreError> {
    let mut table = txn.open_table(INVITES)?;
    let invite = match table.get(keys::single(token))? {
        Some(v) => Invite::decode(token, v.value())?,
        None => return Ok(None),
    };
    if invite.uses_left == 0 {
        return Ok(None);
    }
    if invite.uses_left == 1 {
        table.remove(keys::single(token))?;
    } else {
        let mut fewer = invite.clone();
        fewer.uses_left -= 1;
        table.insert(keys::single(token), fewer.encode()?.as_slice())?;
    }
    Ok(Some(invite))
}

/// Invitations in the store.
pub struct Invites<'a> {
    store: &'a Store,
}

impl<'a> Invites<'a> {
    pub(super) fn new(store: &'a Store) -> Self {
        Invites { store }
    }

    /// Stores a new invite. Refused when [`MAX_INVITES`] valid ones exist,
    /// when the token exists, and when the username it fixes is reserved
    /// by another valid invite. Records no longer valid go meanwhile.
    pub async fn create(&self, invite: Invite, now: u64) -> Result<(), StoreError> {
        let value = invite.encode()?;
        let token = invite.token.clone();
        let reserved = invite.reserved_jid();
        self.store
            .write(Box::new(move |txn| {
                let mut table = txn.open_table(INVITES)?;
                sweep_in(&mut table, now)?;
                if table.len()? >= MAX_INVITES {
                    return Err(StoreError::LimitExceeded(format!(
                        "there are {MAX_INVITES} open invites already, the most kept; revoke some (perch invite list, perch invite revoke TOKEN)"
                    )));
                }
                if table.get(keys::single(&token))?.is_some() {
                    return Err(StoreError::AlreadyExists(format!("invite {token}")));
                }
                if let Some(jid) = &reserved {
                    let all = read_all(&table)?;
                    if let Some(other) = reservation_in(&all, jid, now, None) {
                        return Err(StoreError::AlreadyExists(format!(
                            "an invite for {jid} (token {other})"
                        )));
                    }
                }
                table.insert(keys::single(&token), value.as_slice())?;
                Ok(())
            }))
            .await
    }

    /// The invite of `token` if it can be used at `now`.
    pub fn lookup(&self, token: &str, now: u64) -> Result<Option<Invite>, StoreError> {
        Ok(self.get(token)?.filter(|i| i.is_valid(now)))
    }

    /// The invite of `token` as stored, valid or not.
    pub fn get(&self, token: &str) -> Result<Option<Invite>, StoreError> {
        self.store.read(|txn| {
            let Some(table) = open_read(txn, INVITES)? else {
                return Ok(None);
            };
            table
                .get(keys::single(token))?
                .map(|v| Invite::decode(token, v.value()))
                .transpose()
        })
    }

    /// Every valid invite, oldest first, after removing the others.
    pub async fn list(&self, now: u64) -> Result<Vec<Invite>, StoreError> {
        self.store
            .write(Box::new(move |txn| {
                let mut table = txn.open_table(INVITES)?;
                sweep_in(&mut table, now).map(|_| ())
            }))
            .await?;
        let mut all = self.store.read(|txn| match open_read(txn, INVITES)? {
            Some(table) => read_all(&table),
            None => Ok(Vec::new()),
        })?;
        all.sort_by(|a, b| (a.created, &a.token).cmp(&(b.created, &b.token)));
        Ok(all)
    }

    /// Removes the invite of `token`; `NotFound` if there is none.
    pub async fn revoke(&self, token: &str) -> Result<(), StoreError> {
        let token = token.to_string();
        self.store
            .write(Box::new(move |txn| {
                let mut table = txn.open_table(INVITES)?;
                if table.remove(keys::single(&token))?.is_none() {
                    return Err(StoreError::NotFound(format!("invite {token}")));
                }
                Ok(())
            }))
            .await
    }

    /// The token of a valid invite that reserves `bare_jid` at `now`,
    /// other than `except`.
    pub fn reserved_by(
        &self,
        bare_jid: &str,
        now: u64,
        except: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        self.store.read(|txn| {
            let Some(table) = open_read(txn, INVITES)? else {
                return Ok(None);
            };
            Ok(reservation_in(&read_all(&table)?, bare_jid, now, except))
        })
    }
}

/// One use of `token` for a subscription (XEP-0379): `NotFound` if the
/// token has no use left. For [`crate::env::Env::persist`].
pub fn take_use_op(token: &str) -> WriteOp {
    let token = token.to_string();
    Box::new(move |txn| match take_use_in(txn, &token)? {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound(format!("invite {token}"))),
    })
}

/// Creates the account `bare_jid` with `credentials` and takes one use of
/// `token`, in one transaction (for [`Store::write`]). Nothing is written
/// when it is refused; the refusals come back as `StoreError`s that
/// [`StoreError::is_refusal`] accepts, and [`Refused::from_error`] reads.
pub fn register_op(token: &str, bare_jid: &str, credentials: &Credentials, now: u64) -> WriteOp {
    let (token, bare_jid, credentials) =
        (token.to_string(), bare_jid.to_string(), credentials.clone());
    Box::new(
        move |txn| match register_in(txn, &token, &bare_jid, &credentials, now)? {
            Ok(_) => Ok(()),
            Err(Refused::Taken) => Err(StoreError::AlreadyExists(format!("account {bare_jid}"))),
            Err(Refused::Invalid) => Err(StoreError::NotFound(format!("invite {token}"))),
            Err(Refused::WrongUsername { fixed }) => Err(StoreError::LimitExceeded(format!(
                "this invitation is for the username {fixed}"
            ))),
        },
    )
}

fn register_in(
    txn: &WriteTransaction,
    token: &str,
    bare_jid: &str,
    credentials: &Credentials,
    now: u64,
) -> Result<Result<Invite, Refused>, StoreError> {
    let invite = {
        let table = txn.open_table(INVITES)?;
        let found = table.get(keys::single(token))?;
        match found {
            Some(v) => Invite::decode(token, v.value())?,
            None => return Ok(Err(Refused::Invalid)),
        }
    };
    if invite.uses_left == 0 {
        return Ok(Err(Refused::Invalid));
    }
    match invite.reserved_jid() {
        Some(fixed) if fixed != bare_jid => {
            let fixed = invite.username.clone().unwrap_or_default();
            return Ok(Err(Refused::WrongUsername { fixed }));
        }
        Some(_) => {}
        None => {
            let all = read_all(&txn.open_table(INVITES)?)?;
            if reservation_in(&all, bare_jid, now, Some(token)).is_some() {
                return Ok(Err(Refused::Taken));
            }
        }
    }
    match super::accounts::create_in(txn, bare_jid, credentials) {
        Ok(()) => {}
        Err(StoreError::AlreadyExists(_) | StoreError::Tombstoned(_)) => {
            return Ok(Err(Refused::Taken));
        }
        Err(e) => return Err(e),
    }
    match take_use_in(txn, token)? {
        Some(invite) => {
            if invite.admin {
                super::granted_admins::grant_in(txn, bare_jid)?;
            }
            Ok(Ok(invite))
        }
        None => Ok(Err(Refused::Invalid)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite(token: &str, username: Option<&str>, uses: u32, expires: u64) -> Invite {
        Invite {
            token: token.to_string(),
            kind: InviteKind::Account,
            domain: "example.org".into(),
            creator: None,
            username: username.map(str::to_string),
            group: None,
            created: 10,
            expires,
            uses_left: uses,
            admin: false,
        }
    }

    fn store(tag: &str) -> (crate::testing::TempDir, Store) {
        let dir = crate::testing::TempDir::new(tag);
        let store = Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
        (dir, store)
    }

    fn credentials() -> Credentials {
        Credentials::derive("pw", crate::sasl::MIN_ITERATIONS).expect("derive")
    }

    #[test]
    fn records_round_trip_and_damage_is_corrupt() {
        let mut i = invite("t1", Some("juliet"), 3, 99);
        i.kind = InviteKind::Contact;
        i.creator = Some("romeo@example.org".into());
        i.group = Some("Family".into());
        let bytes = i.encode().expect("encode");
        assert_eq!(Invite::decode("t1", &bytes).expect("decode"), i);
        for cut in 0..bytes.len() {
            assert!(Invite::decode("t1", &bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Invite::decode("t1", &longer).is_err());
        let mut alien = bytes.clone();
        alien[1] = 9;
        assert!(matches!(
            Invite::decode("t1", &alien),
            Err(StoreError::Corrupt(_))
        ));
        let mut flagged = bytes.clone();
        flagged[1 + 1 + 8 + 8 + 4] = 0x80;
        assert!(Invite::decode("t1", &flagged).is_err(), "unknown flag");
        i.admin = true;
        let admin = i.encode().expect("encode");
        assert_eq!(Invite::decode("t1", &admin).expect("decode"), i);
    }

    /// Records written before the flags byte (version 1) still read.
    #[test]
    fn version_1_records_read_without_flags() {
        let i = invite("t1", None, 2, 99);
        let mut v1 = i.encode().expect("encode");
        v1[0] = 1;
        v1.remove(1 + 1 + 8 + 8 + 4);
        assert_eq!(Invite::decode("t1", &v1).expect("decode"), i);
    }

    #[test]
    fn an_admin_invitation_makes_an_administrator() {
        let (_dir, store) = store("invites-admin");
        smol::block_on(async {
            let mut admin = invite("boss", None, 1, 100);
            admin.admin = true;
            store.invites().create(admin, 10).await.expect("create");
            store
                .invites()
                .create(invite("plain", None, 1, 100), 10)
                .await
                .expect("create");
            let creds = credentials();
            store
                .write(register_op("plain", "ann@example.org", &creds, 20))
                .await
                .expect("register");
            store
                .write(register_op("boss", "bea@example.org", &creds, 20))
                .await
                .expect("register");
            let granted: Vec<String> = store
                .granted_admins()
                .list()
                .expect("list")
                .into_iter()
                .map(|(jid, _)| jid)
                .collect();
            assert_eq!(granted, vec!["bea@example.org".to_string()]);
        });
    }

    #[test]
    fn create_lookup_list_revoke() {
        let (_dir, store) = store("invites-crud");
        smol::block_on(async {
            let invites = store.invites();
            assert_eq!(invites.lookup("nope", 0).expect("read"), None);
            invites
                .create(invite("t1", Some("juliet"), 1, 100), 10)
                .await
                .expect("create");
            invites
                .create(invite("t2", None, 2, 50), 10)
                .await
                .expect("create");
            // The same username cannot be reserved twice, nor a token reused.
            assert!(matches!(
                invites
                    .create(invite("t3", Some("juliet"), 1, 100), 10)
                    .await,
                Err(StoreError::AlreadyExists(_))
            ));
            assert!(matches!(
                invites.create(invite("t1", None, 1, 100), 10).await,
                Err(StoreError::AlreadyExists(_))
            ));
            assert!(invites.lookup("t1", 99).expect("read").is_some());
            assert_eq!(invites.lookup("t1", 100).expect("read"), None, "expired");
            assert_eq!(
                invites
                    .reserved_by("juliet@example.org", 20, None)
                    .expect("read"),
                Some("t1".into())
            );
            assert_eq!(
                invites
                    .reserved_by("juliet@example.org", 20, Some("t1"))
                    .expect("read"),
                None
            );
            let listed: Vec<String> = invites
                .list(60)
                .await
                .expect("list")
                .into_iter()
                .map(|i| i.token)
                .collect();
            assert_eq!(listed, vec!["t1".to_string()], "t2 expired and was removed");
            assert_eq!(invites.get("t2").expect("read"), None);
            invites.revoke("t1").await.expect("revoke");
            assert!(matches!(
                invites.revoke("t1").await,
                Err(StoreError::NotFound(_))
            ));
            assert!(invites.list(60).await.expect("list").is_empty());
        });
    }

    #[test]
    fn registration_takes_a_use_atomically() {
        let (_dir, store) = store("invites-register");
        smol::block_on(async {
            store
                .invites()
                .create(invite("multi", None, 2, 100), 10)
                .await
                .expect("create");
            store
                .invites()
                .create(invite("fixed", Some("juliet"), 1, 100), 10)
                .await
                .expect("create");
            let creds = credentials();
            // The fixed username of another invite is not for this one.
            let e = store
                .write(register_op("multi", "juliet@example.org", &creds, 20))
                .await
                .expect_err("reserved");
            assert_eq!(Refused::from_error(&e), Some(Refused::Taken));
            let e = store
                .write(register_op("fixed", "romeo@example.org", &creds, 20))
                .await
                .expect_err("wrong name");
            assert_eq!(
                Refused::from_error(&e),
                Some(Refused::WrongUsername {
                    fixed: "juliet".into()
                })
            );
            store
                .write(register_op("multi", "a@example.org", &creds, 20))
                .await
                .expect("first use");
            assert_eq!(
                store
                    .invites()
                    .get("multi")
                    .expect("read")
                    .map(|i| i.uses_left),
                Some(1)
            );
            // A taken name leaves the token as it was.
            let e = store
                .write(register_op("multi", "a@example.org", &creds, 20))
                .await
                .expect_err("taken");
            assert_eq!(Refused::from_error(&e), Some(Refused::Taken));
            assert_eq!(
                store
                    .invites()
                    .get("multi")
                    .expect("read")
                    .map(|i| i.uses_left),
                Some(1)
            );
            store
                .write(register_op("multi", "b@example.org", &creds, 20))
                .await
                .expect("last use");
            assert_eq!(store.invites().get("multi").expect("read"), None);
            let e = store
                .write(register_op("multi", "c@example.org", &creds, 20))
                .await
                .expect_err("used up");
            assert_eq!(Refused::from_error(&e), Some(Refused::Invalid));
            assert!(!store.accounts().exists("c@example.org").expect("read"));
            store
                .write(register_op("fixed", "juliet@example.org", &creds, 20))
                .await
                .expect("fixed name");
            assert!(store.accounts().exists("juliet@example.org").expect("read"));
            // A contact token's use for a subscription.
            store
                .invites()
                .create(invite("sub", None, 1, 100), 10)
                .await
                .expect("create");
            store.write(take_use_op("sub")).await.expect("use");
            assert!(matches!(
                store.write(take_use_op("sub")).await,
                Err(StoreError::NotFound(_))
            ));
        });
    }

    #[test]
    fn older_files_without_the_table_read_empty() {
        let (_dir, store) = store("invites-old");
        store
            .write_now(Box::new(|txn| {
                txn.delete_table(INVITES)?;
                Ok(())
            }))
            .expect("drop table");
        assert_eq!(store.invites().get("x").expect("read"), None);
        assert_eq!(
            store.invites().reserved_by("a@b", 0, None).expect("read"),
            None
        );
    }
}
