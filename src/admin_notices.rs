//! The operator's side of what the XEP-0133 commands do: `perch user
//! disable|enable`, `perch announce` and `perch motd set|show|clear`, and
//! the administrators granted beside the configured ones (`perch user
//! admin`), as
//! [`crate::admin::Command::Notice`] requests that run through a running
//! server's admin socket or, where that makes sense, on the database.
//! Beside `admin.rs`, which holds the other requests of the admin socket.

use crate::admin_error::{AdminError, account_jid};
use crate::jid::Jid;
use crate::server::Server;
use crate::store::StoreError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoticeCommand {
    /// Disables an account: it may not log in, its sessions end.
    UserDisable {
        jid: String,
    },
    UserEnable {
        jid: String,
    },
    /// Makes an account a server administrator (`admin: true`) or no
    /// longer one; configured administrators stay (the file decides).
    UserAdmin {
        jid: String,
        admin: bool,
    },
    /// The administrators: configured and granted.
    AdminList,
    /// A message from the host to everyone online on it (every host
    /// without `domain`). Only a running server has anyone online.
    Announce {
        domain: Option<String>,
        text: String,
    },
    MotdSet {
        domain: Option<String>,
        text: String,
    },
    MotdShow {
        domain: Option<String>,
    },
    MotdClear {
        domain: Option<String>,
    },
}

/// Longest text `perch announce` and `perch motd set` take, in bytes (the
/// limit of the message of the day; announcements share it).
pub const MAX_TEXT_BYTES: usize = crate::store::server_notices::MAX_MOTD_BYTES;

const NAMES: &[&str] = &[
    "user-disable",
    "user-enable",
    "user-admin",
    "user-unadmin",
    "admin-list",
    "announce",
    "motd-set",
    "motd-show",
    "motd-clear",
];
const DOMAIN: &str = "domain=";
const TEXT: &str = "text=";

/// Whether `name` is the first field of one of these requests.
pub fn is_request(name: &str) -> bool {
    NAMES.contains(&name)
}

/// The hosts a request concerns: `domain` (which must be a host), or all.
fn hosts_of(domain: Option<&str>, hosts: &[String]) -> Result<Vec<String>, AdminError> {
    match domain {
        None => Ok(hosts.to_vec()),
        Some(raw) => {
            let domain = Jid::parse(raw)
                .ok()
                .filter(|j| j.local().is_none() && j.resource().is_none())
                .map(|j| j.domain().to_string())
                .ok_or_else(|| {
                    AdminError::BadRequest(format!("'{raw}' is not a domain (e.g. example.org)"))
                })?;
            if !hosts.contains(&domain) {
                return Err(AdminError::UnknownHost(domain));
            }
            Ok(vec![domain])
        }
    }
}

fn check_text(text: &str) -> Result<(), AdminError> {
    if text.trim().is_empty() {
        return Err(AdminError::BadRequest("the text is empty".to_string()));
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(AdminError::BadRequest(format!(
            "the text is {} bytes long; at most {MAX_TEXT_BYTES} are allowed",
            text.len()
        )));
    }
    if text.contains('\0') {
        return Err(AdminError::BadRequest(
            "the text contains a NUL character".to_string(),
        ));
    }
    Ok(())
}

/// Checks a request without touching the database.
pub fn validate(cmd: &NoticeCommand, hosts: &[String]) -> Result<(), AdminError> {
    match cmd {
        NoticeCommand::UserDisable { jid }
        | NoticeCommand::UserEnable { jid }
        | NoticeCommand::UserAdmin { jid, .. } => account_jid(jid, hosts).map(drop),
        NoticeCommand::AdminList => Ok(()),
        NoticeCommand::Announce { domain, text } | NoticeCommand::MotdSet { domain, text } => {
            hosts_of(domain.as_deref(), hosts)?;
            check_text(text)
        }
        NoticeCommand::MotdShow { domain } | NoticeCommand::MotdClear { domain } => {
            hosts_of(domain.as_deref(), hosts).map(drop)
        }
    }
}

/// Runs `cmd` on `server` (running, or made for this command).
pub async fn execute(server: &Server, cmd: &NoticeCommand) -> Result<Vec<String>, AdminError> {
    let hosts: Vec<String> = server
        .config()
        .hosts
        .iter()
        .map(|h| h.domain.clone())
        .collect();
    validate(cmd, &hosts)?;
    let notices = server.store().server_notices();
    match cmd {
        NoticeCommand::UserDisable { jid } | NoticeCommand::UserEnable { jid } => {
            let disable = matches!(cmd, NoticeCommand::UserDisable { .. });
            let jid = account_jid(jid, &hosts)?;
            if !server.store().accounts().exists(jid.as_str())? {
                return Err(StoreError::NotFound(format!("account {jid}")).into());
            }
            let target = jid.clone();
            let work = move |env: &crate::env::Env| {
                crate::im::account_disabling::set_disabled(env, &target, disable);
            };
            crate::durable::run(server, Box::new(work))
                .await
                .map_err(|e| AdminError::Store(StoreError::WriteFailed(e.reason)))?;
            Ok(vec![if disable {
                format!("disabled {jid}")
            } else {
                format!("re-enabled {jid}")
            }])
        }
        NoticeCommand::UserAdmin { jid, admin } => {
            let jid = account_jid(jid, &hosts)?;
            let admins = server.admins();
            if !*admin && admins.is_configured(&jid) {
                return Err(AdminError::BadRequest(format!(
                    "{jid} is an administrator by the configuration: remove it from admins = [...] and reload"
                )));
            }
            let granted = server.store().granted_admins();
            let was = granted.list()?.iter().any(|(a, _)| a == jid.as_str());
            granted.set(jid.as_str(), *admin).await?;
            admins.set_granted(&jid, *admin);
            Ok(vec![match (*admin, was) {
                (true, false) => format!("{jid} is now a server administrator"),
                (true, true) => format!("{jid} was a server administrator already"),
                (false, true) => format!("{jid} is no longer a server administrator"),
                (false, false) => format!("{jid} was not a granted administrator"),
            }])
        }
        NoticeCommand::AdminList => {
            let mut lines: Vec<String> = server
                .admins()
                .configured()
                .into_iter()
                .map(|a| format!("{a} (configuration)"))
                .collect();
            for (jid, since) in server.store().granted_admins().list()? {
                let since = crate::datetime::format_utc(
                    std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(since),
                    false,
                );
                lines.push(format!("{jid} (granted {since})"));
            }
            if lines.is_empty() {
                lines.push(
                    "no administrators (admins = [...] in the configuration, or perch invite --admin)"
                        .to_string(),
                );
            }
            Ok(lines)
        }
        NoticeCommand::Announce { domain, text } => {
            let mut lines = Vec::new();
            for host in hosts_of(domain.as_deref(), &hosts)? {
                let reached = std::rc::Rc::new(std::cell::Cell::new(0));
                let (count, text, domain) = (reached.clone(), text.clone(), host.clone());
                let work = move |env: &crate::env::Env| {
                    count.set(crate::adhoc::motd::announce(env, &domain, &text));
                };
                crate::durable::run(server, Box::new(work))
                    .await
                    .map_err(|e| AdminError::Remote(e.reason))?;
                let n = reached.get();
                lines.push(format!(
                    "{host}: announced to {n} online resource{}",
                    if n == 1 { "" } else { "s" }
                ));
            }
            Ok(lines)
        }
        NoticeCommand::MotdSet { domain, text } => {
            let mut lines = Vec::new();
            for host in hosts_of(domain.as_deref(), &hosts)? {
                notices.set_motd(&host, Some(text)).await?;
                lines.push(format!("{host}: message of the day set"));
            }
            Ok(lines)
        }
        NoticeCommand::MotdShow { domain } => {
            let mut lines = Vec::new();
            for host in hosts_of(domain.as_deref(), &hosts)? {
                match notices.motd(&host)? {
                    Some(text) => {
                        lines.push(format!("{host}:"));
                        lines.extend(text.lines().map(|l| format!("  {l}")));
                    }
                    None => lines.push(format!("{host}: no message of the day")),
                }
            }
            Ok(lines)
        }
        NoticeCommand::MotdClear { domain } => {
            let mut lines = Vec::new();
            for host in hosts_of(domain.as_deref(), &hosts)? {
                notices.set_motd(&host, None).await?;
                lines.push(format!("{host}: message of the day cleared"));
            }
            Ok(lines)
        }
    }
}

/// The server's log line for `cmd` (the message of the day is not
/// repeated: the command is the news).
pub fn log_line(cmd: &NoticeCommand, lines: &[String]) -> String {
    match cmd {
        NoticeCommand::MotdShow { .. } => "motd show".to_string(),
        _ => lines.join("; "),
    }
}

/// Text on the admin socket's one-field-per-line wire: backslash and line
/// breaks escaped.
fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

fn unescape(field: &str) -> Result<String, AdminError> {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            _ => {
                return Err(AdminError::Protocol(
                    "bad escape in a text field".to_string(),
                ));
            }
        }
    }
    Ok(out)
}

/// The request's fields (see `admin.rs` for the wire format).
pub fn encode(cmd: &NoticeCommand) -> Vec<String> {
    let domain_field = |d: &Option<String>| d.as_ref().map(|d| format!("{DOMAIN}{d}"));
    let text_field = |t: &str| format!("{TEXT}{}", escape(t));
    let mut fields = Vec::new();
    match cmd {
        NoticeCommand::UserDisable { jid } => fields.extend(["user-disable".into(), jid.clone()]),
        NoticeCommand::UserEnable { jid } => fields.extend(["user-enable".into(), jid.clone()]),
        NoticeCommand::UserAdmin { jid, admin } => {
            let name = if *admin { "user-admin" } else { "user-unadmin" };
            fields.extend([name.into(), jid.clone()]);
        }
        NoticeCommand::AdminList => fields.push("admin-list".into()),
        NoticeCommand::Announce { domain, text } => {
            fields.push("announce".into());
            fields.extend(domain_field(domain));
            fields.push(text_field(text));
        }
        NoticeCommand::MotdSet { domain, text } => {
            fields.push("motd-set".into());
            fields.extend(domain_field(domain));
            fields.push(text_field(text));
        }
        NoticeCommand::MotdShow { domain } => {
            fields.push("motd-show".into());
            fields.extend(domain_field(domain));
        }
        NoticeCommand::MotdClear { domain } => {
            fields.push("motd-clear".into());
            fields.extend(domain_field(domain));
        }
    }
    fields
}

/// Reads the fields [`encode`] wrote.
pub fn decode(fields: &[&str]) -> Result<NoticeCommand, AdminError> {
    let name = fields.first().copied().unwrap_or_default();
    let mut domain = None;
    let mut text = None;
    let mut jid = None;
    for field in fields.iter().skip(1) {
        if let Some(d) = field.strip_prefix(DOMAIN) {
            domain = Some(d.to_string());
        } else if let Some(t) = field.strip_prefix(TEXT) {
            text = Some(unescape(t)?);
        } else if jid.is_none() && name.starts_with("user-") {
            jid = Some(field.to_string());
        } else {
            return Err(AdminError::Protocol(format!(
                "unknown {name} field '{field}'"
            )));
        }
    }
    let missing = |what: &str| AdminError::Protocol(format!("{name}: missing {what}"));
    Ok(match name {
        "user-disable" => NoticeCommand::UserDisable {
            jid: jid.ok_or_else(|| missing("the account"))?,
        },
        "user-enable" => NoticeCommand::UserEnable {
            jid: jid.ok_or_else(|| missing("the account"))?,
        },
        "user-admin" | "user-unadmin" => NoticeCommand::UserAdmin {
            jid: jid.ok_or_else(|| missing("the account"))?,
            admin: name == "user-admin",
        },
        "admin-list" => NoticeCommand::AdminList,
        "announce" => NoticeCommand::Announce {
            domain,
            text: text.ok_or_else(|| missing("the text"))?,
        },
        "motd-set" => NoticeCommand::MotdSet {
            domain,
            text: text.ok_or_else(|| missing("the text"))?,
        },
        "motd-show" => NoticeCommand::MotdShow { domain },
        "motd-clear" => NoticeCommand::MotdClear { domain },
        other => return Err(AdminError::Protocol(format!("unknown command '{other}'"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_round_trip() {
        let cmds = [
            NoticeCommand::UserDisable {
                jid: "a@example.org".into(),
            },
            NoticeCommand::UserEnable {
                jid: "a@example.org".into(),
            },
            NoticeCommand::UserAdmin {
                jid: "a@example.org".into(),
                admin: true,
            },
            NoticeCommand::UserAdmin {
                jid: "a@example.org".into(),
                admin: false,
            },
            NoticeCommand::AdminList,
            NoticeCommand::Announce {
                domain: None,
                text: "two\nlines with a \\ and\r\n".into(),
            },
            NoticeCommand::Announce {
                domain: Some("example.org".into()),
                text: "x".into(),
            },
            NoticeCommand::MotdSet {
                domain: Some("example.org".into()),
                text: "Welcome".into(),
            },
            NoticeCommand::MotdShow { domain: None },
            NoticeCommand::MotdClear {
                domain: Some("example.org".into()),
            },
        ];
        for cmd in cmds {
            let fields = encode(&cmd);
            assert!(fields.iter().all(|f| !f.contains('\n')), "{fields:?}");
            let borrowed: Vec<&str> = fields.iter().map(String::as_str).collect();
            assert_eq!(decode(&borrowed).expect("decode"), cmd);
        }
        assert!(decode(&["announce"]).is_err());
        assert!(decode(&["announce", "text=bad\\q"]).is_err());
        assert!(decode(&["motd-show", "sudo"]).is_err());
        assert!(decode(&["user-disable"]).is_err());
        assert!(decode(&["user-admin"]).is_err());
        assert!(decode(&["admin-list", "x@example.org"]).is_err());
    }

    #[test]
    fn validation() {
        let hosts = vec!["example.org".to_string()];
        let announce = |domain: Option<&str>, text: &str| NoticeCommand::Announce {
            domain: domain.map(str::to_string),
            text: text.to_string(),
        };
        assert!(validate(&announce(None, "hi"), &hosts).is_ok());
        assert!(validate(&announce(Some("Example.org"), "hi"), &hosts).is_ok());
        assert!(matches!(
            validate(&announce(Some("other.org"), "hi"), &hosts),
            Err(AdminError::UnknownHost(_))
        ));
        assert!(matches!(
            validate(&announce(Some("a@example.org"), "hi"), &hosts),
            Err(AdminError::BadRequest(_))
        ));
        assert!(validate(&announce(None, "  "), &hosts).is_err());
        assert!(validate(&announce(None, &"x".repeat(MAX_TEXT_BYTES + 1)), &hosts).is_err());
        assert!(
            validate(
                &NoticeCommand::UserDisable {
                    jid: "a@other.org".into()
                },
                &hosts
            )
            .is_err()
        );
    }

    #[test]
    fn motd_and_disable_on_the_database() {
        let dir = crate::testing::TempDir::new("notices");
        let store = crate::store::Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
        let config =
            crate::config::Config::from_toml_str("[[host]]\ndomain = \"example.org\"\n", "test")
                .expect("config");
        let server = Server::new(config, store.clone());
        smol::block_on(async {
            let set = NoticeCommand::MotdSet {
                domain: None,
                text: "Hello\nall".into(),
            };
            assert_eq!(
                execute(&server, &set).await.expect("set"),
                vec!["example.org: message of the day set"]
            );
            let show = NoticeCommand::MotdShow { domain: None };
            assert_eq!(
                execute(&server, &show).await.expect("show"),
                vec!["example.org:", "  Hello", "  all"]
            );
            execute(&server, &NoticeCommand::MotdClear { domain: None })
                .await
                .expect("clear");
            assert_eq!(
                execute(&server, &show).await.expect("show"),
                vec!["example.org: no message of the day"]
            );
            let disable = NoticeCommand::UserDisable {
                jid: "romeo@example.org".into(),
            };
            assert!(matches!(
                execute(&server, &disable).await,
                Err(AdminError::Store(StoreError::NotFound(_)))
            ));
            let creds = crate::sasl::Credentials::derive("pw", 4096).expect("derive");
            store
                .accounts()
                .create("romeo@example.org", &creds)
                .await
                .expect("create");
            execute(&server, &disable).await.expect("disable");
            assert!(
                store
                    .server_notices()
                    .is_disabled("romeo@example.org")
                    .expect("read")
            );
            let enable = NoticeCommand::UserEnable {
                jid: "Romeo@example.org".into(),
            };
            execute(&server, &enable).await.expect("enable");
            assert!(
                !store
                    .server_notices()
                    .is_disabled("romeo@example.org")
                    .expect("read")
            );

            let romeo = crate::jid::Jid::parse("romeo@example.org").expect("jid");
            let grant = NoticeCommand::UserAdmin {
                jid: "romeo@example.org".into(),
                admin: true,
            };
            assert_eq!(
                execute(&server, &grant).await.expect("grant"),
                vec!["romeo@example.org is now a server administrator"]
            );
            assert!(server.admins().contains(&romeo));
            let listed = execute(&server, &NoticeCommand::AdminList)
                .await
                .expect("list");
            assert_eq!(listed.len(), 1);
            assert!(
                listed[0].starts_with("romeo@example.org (granted "),
                "{listed:?}"
            );
            let revoke = NoticeCommand::UserAdmin {
                jid: "romeo@example.org".into(),
                admin: false,
            };
            execute(&server, &revoke).await.expect("revoke");
            assert!(!server.admins().contains(&romeo));
            assert!(store.granted_admins().list().expect("list").is_empty());
            let ghost = NoticeCommand::UserAdmin {
                jid: "ghost@example.org".into(),
                admin: true,
            };
            assert!(matches!(
                execute(&server, &ghost).await,
                Err(AdminError::Store(StoreError::NotFound(_)))
            ));
        });
    }
}
