//! Account administration shared by the CLI and the admin socket, so that
//! `perch user …` behaves the same whether or not the server is running.

use std::fmt;

use crate::jid::Jid;
use crate::sasl::{Credentials, DEFAULT_ITERATIONS};
use crate::store::{Store, StoreError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    UserAdd {
        jid: String,
        password: String,
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
    /// A consistent copy of the database into the file that travels with
    /// the request over the admin socket (SCM_RIGHTS), so the server writes
    /// where the caller may write, not where the server may.
    Backup,
}

#[derive(Debug)]
pub enum AdminError {
    BadJid(String, String),
    UnknownHost(String),
    BadPassword(&'static str),
    Store(StoreError),
    Protocol(String),
    /// The running server refused the request; its message as it gave it.
    Remote(String),
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminError::BadJid(jid, why) => {
                write!(f, "'{jid}' is not a valid account address: {why}")
            }
            AdminError::UnknownHost(host) => write!(
                f,
                "'{host}' is not a host of this server; add it as a [[host]] in the config"
            ),
            AdminError::BadPassword(why) => write!(f, "unusable password: {why}"),
            AdminError::Store(e) => write!(f, "{e}"),
            AdminError::Protocol(why) => write!(f, "admin socket: {why}"),
            AdminError::Remote(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for AdminError {}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        AdminError::Store(e)
    }
}

/// Parses `user@host` into a normalized bare JID of one of `hosts`.
pub fn account_jid(raw: &str, hosts: &[String]) -> Result<Jid, AdminError> {
    let jid = Jid::parse(raw).map_err(|e| AdminError::BadJid(raw.to_string(), e.to_string()))?;
    if jid.local().is_none() || jid.resource().is_some() {
        return Err(AdminError::BadJid(
            raw.to_string(),
            "expected user@host, without a /resource".to_string(),
        ));
    }
    if !hosts.iter().any(|h| h == jid.domain()) {
        return Err(AdminError::UnknownHost(jid.domain().to_string()));
    }
    Ok(jid)
}

pub fn check_password(password: &str) -> Result<(), AdminError> {
    if password.is_empty() {
        return Err(AdminError::BadPassword("it is empty"));
    }
    if password.len() > 1024 {
        return Err(AdminError::BadPassword("longer than 1024 bytes"));
    }
    if password.contains(['\n', '\r', '\0']) {
        return Err(AdminError::BadPassword("it contains a line break or NUL"));
    }
    Ok(())
}

/// Runs `cmd` against `store`; returns the lines to show the user.
pub async fn execute(
    store: &Store,
    hosts: &[String],
    cmd: &Command,
) -> Result<Vec<String>, AdminError> {
    match cmd {
        Command::UserAdd { jid, password } => {
            let jid = account_jid(jid, hosts)?;
            let creds = derive(password).await?;
            store.accounts().create(jid.as_str(), &creds).await?;
            Ok(vec![format!("created {jid}")])
        }
        Command::UserPasswd { jid, password } => {
            let jid = account_jid(jid, hosts)?;
            let creds = derive(password).await?;
            store
                .accounts()
                .set_credentials(jid.as_str(), &creds)
                .await?;
            Ok(vec![format!("changed the password of {jid}")])
        }
        Command::UserDel { jid } => {
            let jid = account_jid(jid, hosts)?;
            store.accounts().delete(jid.as_str()).await?;
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
        Command::Backup => Err(AdminError::Protocol(
            "a backup needs its target file passed along".to_string(),
        )),
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
//   user-add / jid / password | user-del / jid | user-passwd / jid / password
//   | user-list [/ domain] | backup (with the target file's descriptor)
// The answer is `ok` or `error: …` on the first line, then result lines,
// then the server closes the connection.

pub fn encode_request(cmd: &Command) -> String {
    let fields: Vec<&str> = match cmd {
        Command::UserAdd { jid, password } => vec!["user-add", jid, password],
        Command::UserDel { jid } => vec!["user-del", jid],
        Command::UserPasswd { jid, password } => vec!["user-passwd", jid, password],
        Command::UserList { domain } => match domain {
            Some(d) => vec!["user-list", d],
            None => vec!["user-list"],
        },
        Command::Backup => vec!["backup"],
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
        }),
        Some("user-del") => Ok(Command::UserDel { jid: field(1)? }),
        Some("user-passwd") => Ok(Command::UserPasswd {
            jid: field(1)?,
            password: field(2)?,
        }),
        Some("user-list") => Ok(Command::UserList {
            domain: fields.get(1).map(|s| s.to_string()),
        }),
        Some("backup") => Ok(Command::Backup),
        Some(other) => Err(AdminError::Protocol(format!("unknown command '{other}'"))),
        None => Err(AdminError::Protocol("empty request".to_string())),
    }
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
            Command::Backup,
        ];
        for cmd in cmds {
            assert_eq!(decode_request(&encode_request(&cmd)).expect("decode"), cmd);
        }
        assert!(decode_request("rm-rf\n\n").is_err());
        assert!(decode_request("user-add\na@b\n\n").is_err());
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
    }

    #[test]
    fn execute_against_store() {
        let dir = crate::testing::TempDir::new("admin");
        let store = Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
        let hosts = vec!["example.com".to_string()];
        smol::block_on(async {
            let add = Command::UserAdd {
                jid: "Romeo@example.com".into(),
                password: "secret".into(),
            };
            execute(&store, &hosts, &add).await.expect("add");
            assert!(matches!(
                execute(&store, &hosts, &add).await,
                Err(AdminError::Store(StoreError::AlreadyExists(_)))
            ));
            let list = execute(&store, &hosts, &Command::UserList { domain: None })
                .await
                .expect("list");
            assert_eq!(list, vec!["romeo@example.com".to_string()]);
            execute(
                &store,
                &hosts,
                &Command::UserDel {
                    jid: "romeo@example.com".into(),
                },
            )
            .await
            .expect("del");
            assert!(store.accounts().list(None).expect("list").is_empty());
        });
    }
}
