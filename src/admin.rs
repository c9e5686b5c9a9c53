//! Account, room, archive and upload administration shared by the CLI and
//! the admin socket, so that `perch user …`, `perch room …`, `perch archive
//! …` and `perch upload …` behave the same whether or not the server is
//! running.

use std::cell::RefCell;
use std::rc::Rc;

use crate::im::account_removal;
use crate::jid::Jid;
use crate::sasl::{Credentials, DEFAULT_ITERATIONS};
use crate::server::Server;
use crate::store::StoreError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    UserAdd {
        jid: String,
        password: String,
        /// Give out the address of a deleted account again (lifting its
        /// tombstone); see [`Command::UserCheck`].
        reuse_deleted: bool,
    },
    /// Whether [`Command::UserAdd`] (`Intent::Add`) or
    /// [`Command::UserPasswd`] (`Intent::Change`) would find the account
    /// as it needs it, asked before the password prompt so that a typo in
    /// the address is not found out after typing a password twice.
    UserCheck {
        jid: String,
        intent: Intent,
    },
    UserDel {
        jid: String,
    },
    UserPasswd {
        jid: String,
        password: String,
    },
    UserList {
        domain: Option<String>,
    },
    RoomList,
    RoomDestroy {
        jid: String,
        reason: Option<String>,
    },
    /// Every message archive's size and dates (`crate::archive::admin`).
    ArchiveStats,
    /// Removes what the retention settings no longer keep; with `dry_run`
    /// only says what that would be.
    ArchiveExpire {
        dry_run: bool,
    },
    /// A consistent copy of the database into the file that travels with
    /// the request over the admin socket (SCM_RIGHTS), so the server writes
    /// where the caller may write, not where the server may.
    Backup,
    /// Uploaded files (XEP-0363), of one account if given
    /// (`crate::upload::admin`).
    UploadList {
        owner: Option<String>,
    },
    /// Removes uploaded files (and unused slots) handed out at least this
    /// many days ago, of one account if given; at least one of the two is
    /// required.
    UploadPurge {
        older_than_days: Option<u32>,
        owner: Option<String>,
    },
    /// The federation links and connected components (`crate::s2s::admin`).
    S2sList,
    /// Invitations: create, list, revoke (`crate::invite::admin`).
    Invite(crate::invite::admin::InviteCommand),
    /// Disabled accounts, announcements and the message of the day
    /// (`crate::admin_notices`).
    Notice(crate::admin_notices::NoticeCommand),
}

/// What a [`Command::UserCheck`] checks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intent {
    /// A new account: the address is free (or, with `reuse_deleted`, only
    /// a deleted account's).
    Add { reuse_deleted: bool },
    /// An existing account.
    Change,
}

/// The shortest password `perch user add` and `perch user passwd` accept
/// without `--weak`, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;

pub use crate::admin_error::{AdminError, account_jid};

/// See [`crate::sasl::password_problem`].
pub fn check_password(password: &str) -> Result<(), AdminError> {
    crate::sasl::password_problem(password).map_or(Ok(()), |why| Err(AdminError::BadPassword(why)))
}

/// The CLI's rule for a password an administrator sets: at least
/// [`MIN_PASSWORD_CHARS`] characters unless `weak` (`--weak`) says a short
/// one is meant. Not a rule of the server: clients that change their own
/// password are not bound by it.
pub fn check_password_length(password: &str, weak: bool) -> Result<(), AdminError> {
    if !weak && password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AdminError::BadPassword(
            "shorter than 8 characters (add --weak to set it anyway)",
        ));
    }
    Ok(())
}

/// Checks a request without touching the database.
pub fn validate(cmd: &Command, hosts: &[String]) -> Result<(), AdminError> {
    match cmd {
        Command::UserAdd { jid, password, .. } | Command::UserPasswd { jid, password } => {
            account_jid(jid, hosts)?;
            check_password(password)
        }
        Command::UserDel { jid } | Command::UserCheck { jid, .. } => {
            account_jid(jid, hosts).map(|_| ())
        }
        Command::UserList { domain: Some(d) } => Jid::parse(d)
            .map(|_| ())
            .map_err(|e| AdminError::BadJid(d.clone(), e.to_string())),
        Command::UserList { domain: None }
        | Command::RoomList
        | Command::Backup
        | Command::ArchiveStats
        | Command::ArchiveExpire { .. } => Ok(()),
        Command::UploadList { owner } => upload_owner(owner.as_deref()).map(|_| ()),
        Command::UploadPurge {
            older_than_days: None,
            owner: None,
        } => Err(AdminError::BadRequest(PURGE_WHICH.to_string())),
        Command::UploadPurge { owner, .. } => upload_owner(owner.as_deref()).map(|_| ()),
        Command::S2sList => Ok(()),
        Command::Invite(c) => crate::invite::admin::validate(c, hosts),
        Command::Notice(c) => crate::admin_notices::validate(c, hosts),
        Command::RoomDestroy { jid, reason } => {
            room_jid(jid)?;
            reason.as_deref().map_or(Ok(()), check_reason)
        }
    }
}

/// Why `perch upload purge` without a filter is refused.
const PURGE_WHICH: &str =
    "say which files to remove: --older-than DAYS (0: every file) and/or --owner JID";

/// The normalized owner of `perch upload … --owner`, if given.
fn upload_owner(owner: Option<&str>) -> Result<Option<Jid>, AdminError> {
    owner
        .map(|raw| {
            crate::upload::admin::owner_jid(raw).map_err(|why| AdminError::BadJid(raw.into(), why))
        })
        .transpose()
}

/// Parses `room@muc.domain` into a normalized bare JID.
pub fn room_jid(raw: &str) -> Result<Jid, AdminError> {
    let jid = Jid::parse(raw).map_err(|e| AdminError::BadRoom(raw.to_string(), e.to_string()))?;
    if jid.local().is_none() || jid.resource().is_some() {
        return Err(AdminError::BadRoom(
            raw.to_string(),
            "expected room@muc.domain, without a /nick".to_string(),
        ));
    }
    Ok(jid)
}

/// A destroy reason travels as one line of the admin protocol.
pub fn check_reason(reason: &str) -> Result<(), AdminError> {
    if reason.contains(['\n', '\r', '\0']) || reason.chars().count() > 1024 {
        return Err(AdminError::Protocol(
            "the reason must be one line of at most 1024 characters".to_string(),
        ));
    }
    Ok(())
}

/// One line of `perch room list`; `occupants` is known only while the
/// server runs.
pub fn room_line(room: &crate::muc::RoomSummary, occupants: Option<usize>) -> String {
    let mut line = format!(
        "{} ({}, {}",
        room.jid,
        if room.persistent {
            "persistent"
        } else {
            "temporary"
        },
        if room.public { "public" } else { "hidden" }
    );
    if let Some(n) = occupants {
        line.push_str(&format!(", {n} occupant{}", if n == 1 { "" } else { "s" }));
    }
    line.push(')');
    if !room.name.is_empty() {
        line.push_str(&format!(" {:?}", room.name));
    }
    line
}

/// Runs `cmd` on `server`'s database (a running server, or one made just
/// for this command when none runs); returns the lines to show the user.
pub async fn execute(server: &Server, cmd: &Command) -> Result<Vec<String>, AdminError> {
    let hosts: Vec<String> = server
        .config()
        .hosts
        .iter()
        .map(|h| h.domain.clone())
        .collect();
    let store = &server.store();
    match cmd {
        Command::UserAdd {
            jid,
            password,
            reuse_deleted,
        } => {
            let jid = account_jid(jid, &hosts)?;
            let creds = derive(password).await?;
            if *reuse_deleted {
                if store
                    .accounts()
                    .create_over_tombstone(jid.as_str(), &creds)
                    .await?
                {
                    log::warn!(
                        "admin: {jid} belonged to a deleted account and was given out again (--reuse-deleted)"
                    );
                    return Ok(vec![format!("created {jid} (a deleted account's address)")]);
                }
            } else {
                store.accounts().create(jid.as_str(), &creds).await?;
            }
            Ok(vec![format!("created {jid}")])
        }
        Command::UserCheck { jid, intent } => {
            let jid = account_jid(jid, &hosts)?;
            let exists = store.accounts().exists(jid.as_str())?;
            match intent {
                Intent::Add { .. } if exists => Err(AdminError::Store(StoreError::AlreadyExists(
                    format!("account {jid}"),
                ))),
                Intent::Add { reuse_deleted } => {
                    match store.tombstones().deleted_at(jid.as_str())? {
                        Some(_) if !reuse_deleted => Err(AdminError::Tombstoned(jid.to_string())),
                        Some(at) => Ok(vec![format!(
                            "{jid} belonged to an account deleted on {}",
                            crate::datetime::format_utc(
                                std::time::UNIX_EPOCH + std::time::Duration::from_secs(at),
                                false
                            )
                        )]),
                        None => Ok(Vec::new()),
                    }
                }
                Intent::Change if !exists => Err(AdminError::Store(StoreError::NotFound(format!(
                    "account {jid}"
                )))),
                Intent::Change => Ok(Vec::new()),
            }
        }
        Command::UserPasswd { jid, password } => {
            let jid = account_jid(jid, &hosts)?;
            let creds = derive(password).await?;
            store
                .accounts()
                .set_credentials(jid.as_str(), &creds)
                .await?;
            Ok(vec![format!("changed the password of {jid}")])
        }
        Command::UserDel { jid } => {
            let jid = account_jid(jid, &hosts)?;
            // Contacts, sessions and the tombstone: not just the records.
            remove_account(server, &jid).await?;
            Ok(vec![format!("deleted {jid}")])
        }
        Command::UserList { domain } => {
            let domain = match domain {
                Some(d) => {
                    let normalized = Jid::parse(d)
                        .map(|j| j.domain().to_string())
                        .map_err(|e| AdminError::BadJid(d.clone(), e.to_string()))?;
                    Some(normalized)
                }
                None => None,
            };
            Ok(store.accounts().list(domain.as_deref())?)
        }
        Command::RoomList => {
            let mut lines = Vec::new();
            for (jid, bytes) in store.muc_rooms().list()? {
                match crate::muc::record::RoomRecord::decode(&bytes) {
                    Ok(r) => lines.push(room_line(
                        &crate::muc::RoomSummary {
                            jid: jid.clone(),
                            name: r.config.name,
                            persistent: r.config.persistent,
                            public: r.config.public,
                            occupants: 0,
                        },
                        None,
                    )),
                    Err(e) => lines.push(format!("{jid} (unreadable: {e})")),
                }
            }
            if lines.is_empty() {
                lines.push(NO_ROOMS.to_string());
            }
            Ok(lines)
        }
        Command::RoomDestroy { jid, reason } => {
            let jid = room_jid(jid)?;
            if let Some(r) = reason {
                check_reason(r)?;
            }
            store.muc_rooms().delete(jid.as_str()).await?;
            Ok(vec![format!("destroyed {jid}")])
        }
        Command::ArchiveStats => Ok(crate::archive::admin::stats(store, store.path())?),
        Command::S2sList => Ok(crate::s2s::admin::list(server)),
        Command::Invite(c) => {
            crate::invite::admin::execute(server.config(), server.store(), c).await
        }
        Command::Notice(c) => crate::admin_notices::execute(server, c).await,
        Command::ArchiveExpire { dry_run } => {
            Ok(crate::archive::admin::expire(server, *dry_run).await?)
        }
        Command::Backup => Err(AdminError::Protocol(
            "a backup needs its target file passed along".to_string(),
        )),
        Command::UploadList { owner } => {
            let owner = upload_owner(owner.as_deref())?;
            let owner = owner.as_ref().map(Jid::as_str);
            Ok(crate::upload::admin::list(server, owner)?)
        }
        Command::UploadPurge {
            older_than_days,
            owner,
        } => {
            if older_than_days.is_none() && owner.is_none() {
                return Err(AdminError::BadRequest(PURGE_WHICH.to_string()));
            }
            let owner = upload_owner(owner.as_deref())?;
            let owner = owner.as_ref().map(Jid::as_str);
            Ok(crate::upload::admin::purge(server, *older_than_days, owner).await?)
        }
    }
}

/// What `perch room list` shows when there is no room at all.
pub const NO_ROOMS: &str = "no rooms";

/// The server's log line for a command it ran through the admin socket,
/// given the lines it answered; `None` for a check that changes nothing.
/// Lists are logged by their size: the command is the news, not every
/// account's address.
pub fn log_line(cmd: &Command, lines: &[String]) -> Option<String> {
    let count = |what: &str| {
        let n = lines.iter().filter(|l| l.as_str() != NO_ROOMS).count();
        format!("{what} ({n} listed)")
    };
    match cmd {
        Command::UserCheck { .. } => None,
        Command::Invite(c) => Some(crate::invite::admin::log_line(c, lines)),
        Command::Notice(c) => Some(crate::admin_notices::log_line(c, lines)),
        Command::UserList { domain: None } => Some(count("user list")),
        Command::UserList { domain: Some(d) } => Some(count(&format!("user list {d}"))),
        Command::RoomList => Some(count("room list")),
        Command::S2sList => Some(format!(
            "s2s list: {}",
            lines.last().map_or("", String::as_str)
        )),
        Command::UploadList { owner } => Some(format!(
            "upload list{}: {}",
            owner
                .as_deref()
                .map(|o| format!(" --owner {o}"))
                .unwrap_or_default(),
            lines.last().map_or("", String::as_str)
        )),
        // The totals: one line per archive would flood the log.
        Command::ArchiveStats => Some(format!(
            "archive stats: {}",
            lines.iter().rev().nth(1).map_or("", String::as_str)
        )),
        Command::ArchiveExpire { dry_run } => Some(format!(
            "archive expire{}: {}",
            if *dry_run { " --dry-run" } else { "" },
            lines.last().map_or("", String::as_str)
        )),
        _ => Some(lines.join("; ")),
    }
}

async fn derive(password: &str) -> Result<Credentials, AdminError> {
    check_password(password)?;
    let password = password.to_string();
    // PBKDF2 for two hashes takes milliseconds: not on the event loop.
    smol::unblock(move || Credentials::derive(&password, DEFAULT_ITERATIONS))
        .await
        .map_err(|_| AdminError::BadPassword("it cannot be prepared (SASLprep)"))
}

// ---- wire format of the admin socket ----
//
// A request is one field per line, ended by an empty line:
//   user-add / jid / password [/ reuse-deleted] | user-del / jid
//   | user-passwd / jid / password | user-check / jid / add|reuse-deleted|change
//   | user-list [/ domain] | room-list | room-destroy / jid [/ reason]
//   | archive-stats | archive-expire [/ dry-run]
//   | backup (with the target file's descriptor)
//   | upload-list [/ owner=JID] | upload-purge [/ older-than=DAYS] [/ owner=JID]
//   | user-disable / jid | user-enable / jid
//   | announce [/ domain=D] / text=T | motd-set [/ domain=D] / text=T
//   | motd-show [/ domain=D] | motd-clear [/ domain=D]
//     (T with backslash, CR and LF escaped as \\, \r, \n)
// The answer is `ok`, `invalid: …` (the request was at fault) or
// `error: …` on the first line, then result lines,
// then the server closes the connection.

const REUSE_DELETED: &str = "reuse-deleted";
const DRY_RUN: &str = "dry-run";
const OLDER_THAN: &str = "older-than=";
const OWNER: &str = "owner=";

pub fn encode_request(cmd: &Command) -> String {
    if let Command::Invite(c) = cmd {
        return crate::invite::admin::encode(c).join("\n") + "\n\n";
    }
    if let Command::Notice(c) = cmd {
        return crate::admin_notices::encode(c).join("\n") + "\n\n";
    }
    // Owned fields of the upload commands, borrowed below.
    let (days, owner_field);
    let fields: Vec<&str> = match cmd {
        Command::UserAdd {
            jid,
            password,
            reuse_deleted,
        } => {
            let mut f = vec!["user-add", jid.as_str(), password.as_str()];
            if *reuse_deleted {
                f.push(REUSE_DELETED);
            }
            f
        }
        Command::UserCheck { jid, intent } => vec![
            "user-check",
            jid,
            match intent {
                Intent::Add {
                    reuse_deleted: false,
                } => "add",
                Intent::Add {
                    reuse_deleted: true,
                } => REUSE_DELETED,
                Intent::Change => "change",
            },
        ],
        Command::UserDel { jid } => vec!["user-del", jid],
        Command::UserPasswd { jid, password } => vec!["user-passwd", jid, password],
        Command::UserList { domain } => match domain {
            Some(d) => vec!["user-list", d],
            None => vec!["user-list"],
        },
        Command::RoomList => vec!["room-list"],
        Command::RoomDestroy { jid, reason } => match reason {
            Some(r) => vec!["room-destroy", jid, r],
            None => vec!["room-destroy", jid],
        },
        Command::ArchiveStats => vec!["archive-stats"],
        Command::ArchiveExpire { dry_run: false } => vec!["archive-expire"],
        Command::ArchiveExpire { dry_run: true } => vec!["archive-expire", DRY_RUN],
        Command::Backup => vec!["backup"],
        Command::S2sList => vec!["s2s-list"],
        Command::Invite(_) | Command::Notice(_) => Vec::new(),
        Command::UploadList { owner } | Command::UploadPurge { owner, .. } => {
            let older_than = match cmd {
                Command::UploadPurge {
                    older_than_days, ..
                } => *older_than_days,
                _ => None,
            };
            days = older_than.map(|d| format!("{OLDER_THAN}{d}"));
            owner_field = owner.as_ref().map(|o| format!("{OWNER}{o}"));
            let name = match cmd {
                Command::UploadList { .. } => "upload-list",
                _ => "upload-purge",
            };
            let mut f = vec![name];
            f.extend(days.as_deref());
            f.extend(owner_field.as_deref());
            f
        }
    };
    let mut out = fields.join("\n");
    out.push_str("\n\n");
    out
}

pub fn decode_request(text: &str) -> Result<Command, AdminError> {
    let fields: Vec<&str> = text.split('\n').take_while(|l| !l.is_empty()).collect();
    let field = |i: usize| -> Result<String, AdminError> {
        fields
            .get(i)
            .map(|s| s.to_string())
            .ok_or_else(|| AdminError::Protocol("missing field".to_string()))
    };
    match fields.first().copied() {
        Some("user-add") => Ok(Command::UserAdd {
            jid: field(1)?,
            password: field(2)?,
            reuse_deleted: match fields.get(3).copied() {
                None => false,
                Some(REUSE_DELETED) => true,
                Some(other) => {
                    return Err(AdminError::Protocol(format!(
                        "unknown user-add flag '{other}'"
                    )));
                }
            },
        }),
        Some("user-check") => Ok(Command::UserCheck {
            jid: field(1)?,
            intent: match field(2)?.as_str() {
                "add" => Intent::Add {
                    reuse_deleted: false,
                },
                REUSE_DELETED => Intent::Add {
                    reuse_deleted: true,
                },
                "change" => Intent::Change,
                other => {
                    return Err(AdminError::Protocol(format!(
                        "unknown user-check '{other}'"
                    )));
                }
            },
        }),
        Some("user-del") => Ok(Command::UserDel { jid: field(1)? }),
        Some("user-passwd") => Ok(Command::UserPasswd {
            jid: field(1)?,
            password: field(2)?,
        }),
        Some("user-list") => Ok(Command::UserList {
            domain: fields.get(1).map(|s| s.to_string()),
        }),
        Some("room-list") => Ok(Command::RoomList),
        Some("room-destroy") => Ok(Command::RoomDestroy {
            jid: field(1)?,
            reason: fields.get(2).map(|s| s.to_string()),
        }),
        Some("archive-stats") => Ok(Command::ArchiveStats),
        Some("archive-expire") => Ok(Command::ArchiveExpire {
            dry_run: match fields.get(1).copied() {
                None => false,
                Some(DRY_RUN) => true,
                Some(other) => {
                    return Err(AdminError::Protocol(format!(
                        "unknown archive-expire flag '{other}'"
                    )));
                }
            },
        }),
        Some("backup") => Ok(Command::Backup),
        Some("s2s-list") => Ok(Command::S2sList),
        Some(name) if crate::invite::admin::is_request(name) => {
            crate::invite::admin::decode(&fields).map(Command::Invite)
        }
        Some(name) if crate::admin_notices::is_request(name) => {
            crate::admin_notices::decode(&fields).map(Command::Notice)
        }
        Some(name @ ("upload-list" | "upload-purge")) => {
            let mut older_than_days = None;
            let mut owner = None;
            for field in fields.iter().skip(1) {
                if let Some(days) = field.strip_prefix(OLDER_THAN) {
                    let days = days.parse::<u32>().map_err(|_| {
                        AdminError::Protocol(format!("bad number of days '{days}'"))
                    })?;
                    older_than_days = Some(days);
                } else if let Some(jid) = field.strip_prefix(OWNER) {
                    owner = Some(jid.to_string());
                } else {
                    return Err(AdminError::Protocol(format!(
                        "unknown {name} field '{field}'"
                    )));
                }
            }
            if name == "upload-list" {
                if older_than_days.is_some() {
                    return Err(AdminError::Protocol("upload-list takes no age".to_string()));
                }
                Ok(Command::UploadList { owner })
            } else {
                Ok(Command::UploadPurge {
                    older_than_days,
                    owner,
                })
            }
        }
        Some(other) => Err(AdminError::Protocol(format!("unknown command '{other}'"))),
        None => Err(AdminError::Protocol("empty request".to_string())),
    }
}

/// Deletes `account` outside the handling of a client stanza (the admin
/// socket, the command line) and waits until it is done.
async fn remove_account(server: &Server, account: &Jid) -> Result<(), StoreError> {
    let outcome = Rc::new(RefCell::new(Ok(())));
    let slot = outcome.clone();
    let target = account.clone();
    let work = move |env: &crate::env::Env| {
        *slot.borrow_mut() = account_removal::remove(env, &target, "this account was deleted");
    };
    crate::durable::run(server, Box::new(work))
        .await
        .map_err(|e| StoreError::WriteFailed(e.reason))?;
    outcome.replace(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip() {
        let cmds = [
            Command::UserAdd {
                jid: "a@b".into(),
                password: "p w\tx".into(),
                reuse_deleted: false,
            },
            Command::UserAdd {
                jid: "a@b".into(),
                password: "pw".into(),
                reuse_deleted: true,
            },
            Command::UserCheck {
                jid: "a@b".into(),
                intent: Intent::Add {
                    reuse_deleted: false,
                },
            },
            Command::UserCheck {
                jid: "a@b".into(),
                intent: Intent::Add {
                    reuse_deleted: true,
                },
            },
            Command::UserCheck {
                jid: "a@b".into(),
                intent: Intent::Change,
            },
            Command::UserDel { jid: "a@b".into() },
            Command::UserPasswd {
                jid: "a@b".into(),
                password: "x".into(),
            },
            Command::UserList { domain: None },
            Command::UserList {
                domain: Some("b".into()),
            },
            Command::RoomList,
            Command::RoomDestroy {
                jid: "r@muc".into(),
                reason: None,
            },
            Command::RoomDestroy {
                jid: "r@muc".into(),
                reason: Some("Moving out".into()),
            },
            Command::ArchiveStats,
            Command::ArchiveExpire { dry_run: false },
            Command::ArchiveExpire { dry_run: true },
            Command::Backup,
            Command::UploadList { owner: None },
            Command::S2sList,
            Command::UploadList {
                owner: Some("a@b".into()),
            },
            Command::UploadPurge {
                older_than_days: Some(0),
                owner: None,
            },
            Command::UploadPurge {
                older_than_days: Some(30),
                owner: Some("a@b".into()),
            },
            Command::UploadPurge {
                older_than_days: None,
                owner: Some("a@b".into()),
            },
        ];
        for cmd in cmds {
            assert_eq!(decode_request(&encode_request(&cmd)).expect("decode"), cmd);
        }
        assert!(decode_request("rm-rf\n\n").is_err());
        assert!(decode_request("user-add\na@b\n\n").is_err());
        assert!(decode_request("user-add\na@b\npw\nsudo\n\n").is_err());
        assert!(decode_request("user-check\na@b\nmaybe\n\n").is_err());
        assert!(decode_request("archive-expire\nnow\n\n").is_err());
        assert!(decode_request("upload-purge\nolder-than=x\n\n").is_err());
        assert!(decode_request("upload-purge\nyes\n\n").is_err());
        assert!(decode_request("upload-list\nolder-than=1\n\n").is_err());
    }

    #[test]
    fn account_jid_rules() {
        let hosts = vec!["example.com".to_string()];
        assert_eq!(
            account_jid("Romeo@Example.com", &hosts)
                .expect("valid")
                .as_str(),
            "romeo@example.com"
        );
        assert!(matches!(
            account_jid("example.com", &hosts),
            Err(AdminError::BadJid(..))
        ));
        assert!(matches!(
            account_jid("a@example.com/r", &hosts),
            Err(AdminError::BadJid(..))
        ));
        assert!(matches!(
            account_jid("a@other.org", &hosts),
            Err(AdminError::UnknownHost(_))
        ));
        assert!(check_password("").is_err());
        assert!(check_password("two\nlines").is_err());
        assert!(check_password("fine").is_ok());
        // The CLI's minimum counts characters, not bytes.
        assert!(check_password_length("seven77", false).is_err());
        assert!(check_password_length("seven77", true).is_ok());
        assert!(check_password_length("éééééééé", false).is_ok());
        assert!(check_password_length("", true).is_ok());
    }

    #[test]
    fn execute_against_store() {
        let dir = crate::testing::TempDir::new("admin");
        let store = crate::store::Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
        let config =
            crate::config::Config::from_toml_str("[[host]]\ndomain = \"example.com\"\n", "test")
                .expect("config");
        let server = Server::new(config, store);
        smol::block_on(async {
            let add = Command::UserAdd {
                jid: "Romeo@example.com".into(),
                password: "secret".into(),
                reuse_deleted: false,
            };
            let check = |intent| Command::UserCheck {
                jid: "romeo@example.com".into(),
                intent,
            };
            let plain_add = Intent::Add {
                reuse_deleted: false,
            };
            assert_eq!(
                execute(&server, &check(plain_add)).await.expect("free"),
                Vec::<String>::new()
            );
            assert!(matches!(
                execute(&server, &check(Intent::Change)).await,
                Err(AdminError::Store(StoreError::NotFound(_)))
            ));
            execute(&server, &add).await.expect("add");
            assert!(matches!(
                execute(&server, &add).await,
                Err(AdminError::Store(StoreError::AlreadyExists(_)))
            ));
            let list = execute(&server, &Command::UserList { domain: None })
                .await
                .expect("list");
            assert_eq!(list, vec!["romeo@example.com".to_string()]);
            let del = Command::UserDel {
                jid: "romeo@example.com".into(),
            };
            execute(&server, &del).await.expect("del");
            assert!(
                server
                    .store()
                    .accounts()
                    .list(None)
                    .expect("list")
                    .is_empty()
            );
            assert!(matches!(
                execute(&server, &del).await,
                Err(AdminError::Store(StoreError::NotFound(_)))
            ));
            // A deleted account's address is never handed out again...
            let again = execute(&server, &add).await.expect_err("tombstoned");
            assert!(matches!(again, AdminError::Tombstoned(_)));
            assert!(
                again.to_string().starts_with(
                    "romeo@example.com belonged to a deleted account and cannot be registered again"
                ) && again
                    .to_string()
                    .ends_with("perch user add --reuse-deleted romeo@example.com"),
                "{again}"
            );
            assert!(matches!(
                execute(&server, &check(plain_add)).await,
                Err(AdminError::Tombstoned(_))
            ));
            // ...unless an administrator says so.
            let reuse = Intent::Add {
                reuse_deleted: true,
            };
            let said = execute(&server, &check(reuse)).await.expect("reusable");
            assert!(
                said.len() == 1
                    && said[0].starts_with("romeo@example.com belonged to an account deleted on "),
                "{said:?}"
            );
            let reused = Command::UserAdd {
                jid: "Romeo@example.com".into(),
                password: "secret".into(),
                reuse_deleted: true,
            };
            assert_eq!(
                execute(&server, &reused).await.expect("reused"),
                vec!["created romeo@example.com (a deleted account's address)".to_string()]
            );
            assert!(matches!(
                execute(&server, &check(plain_add)).await,
                Err(AdminError::Store(StoreError::AlreadyExists(_)))
            ));
            assert_eq!(
                execute(&server, &check(Intent::Change))
                    .await
                    .expect("exists"),
                Vec::<String>::new()
            );
        });
    }

    #[test]
    fn rooms_offline() {
        let dir = crate::testing::TempDir::new("admin-rooms");
        let store = crate::store::Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
        let config =
            crate::config::Config::from_toml_str("[[host]]\ndomain = \"example.com\"\n", "test")
                .expect("config");
        let server = Server::new(config, store.clone());
        let bounds = crate::muc::config::ConfigBounds {
            default_history: 20,
            max_history: 100,
            max_occupants: 100,
        };
        let mut config = crate::muc::config::RoomConfig::new(&bounds);
        config.persistent = true;
        config.name = "Garden".into();
        let record = crate::muc::record::RoomRecord {
            config,
            subject: None,
            created: std::time::SystemTime::UNIX_EPOCH,
        };
        smol::block_on(async {
            store
                .muc_rooms()
                .write(vec![crate::store::MucWrite::PutRoom {
                    room: "garden@rooms.example.com".into(),
                    value: record.encode(),
                }])
                .await
                .expect("write");
            let list = execute(&server, &Command::RoomList).await.expect("list");
            assert_eq!(
                list,
                vec!["garden@rooms.example.com (persistent, public) \"Garden\"".to_string()]
            );
            let destroy = |jid: &str, reason: Option<&str>| Command::RoomDestroy {
                jid: jid.into(),
                reason: reason.map(str::to_string),
            };
            assert!(matches!(
                execute(&server, &destroy("garden@rooms.example.com/nick", None)).await,
                Err(AdminError::BadRoom(..))
            ));
            assert!(matches!(
                execute(&server, &destroy("garden@rooms.example.com", Some("a\nb"))).await,
                Err(AdminError::Protocol(_))
            ));
            execute(&server, &destroy("Garden@rooms.example.com", Some("bye")))
                .await
                .expect("destroy");
            assert!(matches!(
                execute(&server, &destroy("garden@rooms.example.com", None)).await,
                Err(AdminError::Store(StoreError::NotFound(_)))
            ));
            let none = execute(&server, &Command::RoomList).await.expect("list");
            assert_eq!(none, vec![NO_ROOMS.to_string()]);
            assert_eq!(
                log_line(&Command::RoomList, &none).as_deref(),
                Some("room list (0 listed)")
            );
        });
    }
}
