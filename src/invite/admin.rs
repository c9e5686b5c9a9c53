//! The invite commands of the admin path (`perch invite`, the admin
//! socket, and the API a "create invite" ad-hoc command can call):
//! create, list, revoke. `crate::admin::Command::Invite` carries them;
//! their wire fields and their answers are made here.

use std::time::{Duration, SystemTime};

use crate::admin_error::{AdminError, account_jid};
use crate::config::{Config, ListenerKind};
use crate::jid::{self, Jid};
use crate::store::invites::{Invite, InviteKind};
use crate::store::{Store, StoreError};

use super::{token, unix_secs, uri};

/// An invite lives this long unless `--expires` says otherwise (7 days,
/// as Snikket's).
pub const DEFAULT_EXPIRY_SECS: u64 = 7 * 86_400;
/// The most registrations one invite may allow.
pub const MAX_USES: u32 = 1_000;
/// The longest roster group name, in bytes.
pub const MAX_GROUP_BYTES: usize = 256;

/// What an invite is created with (the admin API).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateRequest {
    /// The host of the new account; needed only when the server has
    /// several and neither `for_jid` nor `inviter` names one.
    pub domain: Option<String>,
    /// The address the new account must take (`--for`).
    pub for_jid: Option<String>,
    /// The account whose contact the newcomer becomes, subscribed both
    /// ways (`--inviter`): makes a contact invite.
    pub inviter: Option<String>,
    /// The inviter's roster group the newcomer lands in (`--group`).
    pub group: Option<String>,
    pub expires_secs: u64,
    pub uses: u32,
    /// The account it registers becomes a server administrator
    /// (`--admin`); single use only.
    pub admin: bool,
}

impl Default for CreateRequest {
    fn default() -> Self {
        CreateRequest {
            domain: None,
            for_jid: None,
            inviter: None,
            group: None,
            expires_secs: DEFAULT_EXPIRY_SECS,
            uses: 1,
            admin: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InviteCommand {
    Create(CreateRequest),
    List,
    Revoke { token: String },
}

/// The invite `req` asks for, checked against the server's `hosts`, at
/// `now` (Unix seconds), with `token`.
pub fn plan(
    req: &CreateRequest,
    hosts: &[String],
    token: &str,
    now: u64,
) -> Result<Invite, AdminError> {
    if req.uses == 0 || req.uses > MAX_USES {
        return Err(AdminError::BadRequest(format!(
            "--uses {}: an invite allows 1 to {MAX_USES} registrations",
            req.uses
        )));
    }
    if req.expires_secs == 0 || req.expires_secs > uri::MAX_EXPIRY_SECS {
        return Err(AdminError::BadRequest(
            "an invite lives from 1 minute up to 366 days (--expires)".to_string(),
        ));
    }
    let for_jid = req
        .for_jid
        .as_deref()
        .map(|raw| account_jid(raw, hosts))
        .transpose()?;
    let inviter = req
        .inviter
        .as_deref()
        .map(|raw| account_jid(raw, hosts))
        .transpose()?;
    if let Some(group) = &req.group {
        if inviter.is_none() {
            return Err(AdminError::BadRequest(
                "--group names the inviter's roster group: give --inviter JID too".to_string(),
            ));
        }
        if group.trim().is_empty()
            || group.len() > MAX_GROUP_BYTES
            || group.chars().any(char::is_control)
        {
            return Err(AdminError::BadRequest(format!(
                "--group {group:?}: one line of 1 to {MAX_GROUP_BYTES} bytes"
            )));
        }
    }
    let named = |raw: &str| -> Result<String, AdminError> {
        let jid =
            Jid::parse(raw).map_err(|e| AdminError::BadJid(raw.to_string(), e.to_string()))?;
        if jid.local().is_some()
            || jid.resource().is_some()
            || !hosts.iter().any(|h| h == jid.domain())
        {
            return Err(AdminError::UnknownHost(raw.to_string()));
        }
        Ok(jid.domain().to_string())
    };
    let domain = match (&for_jid, &inviter, req.domain.as_deref()) {
        (_, _, Some(d)) => named(d)?,
        (Some(j), _, None) => j.domain().to_string(),
        (None, Some(j), None) => j.domain().to_string(),
        (None, None, None) => match hosts {
            [only] => only.clone(),
            _ => {
                return Err(AdminError::BadRequest(format!(
                    "this server has several hosts ({}): say which with --domain",
                    hosts.join(", ")
                )));
            }
        },
    };
    if let Some(j) = &for_jid {
        if j.domain() != domain {
            return Err(AdminError::BadRequest(format!(
                "--for {j} is not on {domain}"
            )));
        }
        if req.uses != 1 {
            return Err(AdminError::BadRequest(
                "--for fixes one address: it can be registered once (leave out --uses)".to_string(),
            ));
        }
    }
    if req.admin && req.uses != 1 {
        return Err(AdminError::BadRequest(
            "--admin makes one administrator: an admin invite is used once (leave out --uses)"
                .to_string(),
        ));
    }
    if let (Some(j), Some(i)) = (&for_jid, &inviter)
        && j == i
    {
        return Err(AdminError::BadRequest(format!(
            "{j} cannot be invited by itself"
        )));
    }
    Ok(Invite {
        token: token.to_string(),
        kind: if inviter.is_some() && for_jid.is_none() {
            InviteKind::Contact
        } else {
            InviteKind::Account
        },
        domain,
        creator: inviter.map(|j| j.to_string()),
        username: for_jid.and_then(|j| j.local().map(str::to_string)),
        group: req.group.clone(),
        created: now,
        expires: now.saturating_add(req.expires_secs),
        uses_left: req.uses,
        admin: req.admin,
    })
}

/// Checks a request without touching the database.
pub fn validate(cmd: &InviteCommand, hosts: &[String]) -> Result<(), AdminError> {
    match cmd {
        InviteCommand::Create(req) => plan(req, hosts, "check", 0).map(|_| ()),
        InviteCommand::List => Ok(()),
        InviteCommand::Revoke { token } => check_token(token),
    }
}

fn check_token(text: &str) -> Result<(), AdminError> {
    if token::is_well_formed(text) {
        Ok(())
    } else {
        Err(AdminError::BadRequest(format!(
            "'{text}' is not an invite token (26 letters and digits, as `perch invite list` shows them)"
        )))
    }
}

/// Creates an invite (the API for the CLI and for an ad-hoc command):
/// checks, reserves a fixed username, stores. Returns the invite.
pub async fn create(
    config: &Config,
    store: &Store,
    req: &CreateRequest,
) -> Result<Invite, AdminError> {
    let hosts: Vec<String> = config.hosts.iter().map(|h| h.domain.clone()).collect();
    create_in(&hosts, store, req).await
}

/// [`create`] for a server of `hosts` whose database is `store` (for
/// callers that have no [`Server`] at hand, such as an ad-hoc command).
pub async fn create_in(
    hosts: &[String],
    store: &Store,
    req: &CreateRequest,
) -> Result<Invite, AdminError> {
    let token = token::new_token().map_err(|e| AdminError::Remote(e.to_string()))?;
    let now = unix_secs(SystemTime::now());
    let invite = plan(req, hosts, &token, now)?;
    if let Some(jid) = invite.reserved_jid() {
        if store.accounts().exists(&jid)? {
            return Err(AdminError::Store(StoreError::AlreadyExists(format!(
                "account {jid}"
            ))));
        }
        if store.tombstones().contains(&jid)? {
            return Err(AdminError::Tombstoned(jid));
        }
    }
    if let Some(inviter) = &invite.creator
        && !store.accounts().exists(inviter)?
    {
        return Err(AdminError::Store(StoreError::NotFound(format!(
            "account {inviter} (the inviter)"
        ))));
    }
    store.invites().create(invite.clone(), now).await?;
    log::info!(
        "invite {}… created ({}{}, {} use(s), for {})",
        invite.token.get(..6).unwrap_or_default(),
        invite.kind.as_str(),
        if invite.admin { ", admin" } else { "" },
        invite.uses_left,
        invite
            .reserved_jid()
            .unwrap_or_else(|| invite.domain.clone())
    );
    Ok(invite)
}

/// The landing page's URL for `token`, if the server has an HTTP
/// listener: `[http] external_url`, else the invite's host on the first
/// `http`/`https` listener's port.
pub fn landing_url(config: &Config, domain: &str, token: &str) -> Option<String> {
    if let Some(base) = &config.http.external_url {
        return Some(format!("{base}/invite/{token}"));
    }
    let listener = config
        .listeners
        .iter()
        .find(|l| matches!(l.kind, ListenerKind::Https | ListenerKind::Http))?;
    let (scheme, default_port) = match listener.kind {
        ListenerKind::Https => ("https", 443),
        _ => ("http", 80),
    };
    let port = listener.address.port();
    Some(if port == default_port {
        format!("{scheme}://{domain}/invite/{token}")
    } else {
        format!("{scheme}://{domain}:{port}/invite/{token}")
    })
}

/// Prefixes of the answer lines of a create, which `perch invite` reads.
pub const URI_PREFIX: &str = "uri: ";
pub const URL_PREFIX: &str = "url: ";

/// The answer lines of a create: the invite, its URI, the landing page.
pub fn created_lines(config: &Config, invite: &Invite) -> Vec<String> {
    let mut lines = vec![describe(invite)];
    lines.push(format!("{URI_PREFIX}{}", uri::invite_uri(invite)));
    match landing_url(config, &invite.domain, &invite.token) {
        Some(url) => {
            lines.push(format!("{URL_PREFIX}{url}"));
            if config.http.external_url.is_none() {
                lines.push(
                    "note: set [http] external_url to the address phones reach this server's HTTP listener at (e.g. https://chat.example.org behind your proxy); until then the link above is a guess".to_string(),
                );
            }
        }
        None => lines.push(
            "note: the landing page needs an http or https [[listener]]; without one, share the xmpp: URI".to_string(),
        ),
    }
    lines
}

/// One line about `invite`, as `perch invite list` shows it.
pub fn describe(invite: &Invite) -> String {
    let expires = crate::datetime::format_utc(
        SystemTime::UNIX_EPOCH + Duration::from_secs(invite.expires),
        false,
    );
    let mut line = format!(
        "{} {}{} invite on {}",
        invite.token,
        if invite.admin { "admin " } else { "" },
        invite.kind.as_str(),
        invite.domain
    );
    if let Some(jid) = invite.reserved_jid() {
        line.push_str(&format!(" for {jid}"));
    }
    if let Some(creator) = &invite.creator {
        line.push_str(&format!(", contact of {creator}"));
        if let Some(group) = &invite.group {
            line.push_str(&format!(" (group {group:?})"));
        }
    }
    let uses = invite.uses_left;
    line.push_str(&format!(
        ", {uses} use{} left, expires {expires}",
        if uses == 1 { "" } else { "s" }
    ));
    line
}

/// Runs an invite command on the server's database (`store`).
pub async fn execute(
    config: &Config,
    store: &Store,
    cmd: &InviteCommand,
) -> Result<Vec<String>, AdminError> {
    match cmd {
        InviteCommand::Create(req) => {
            let invite = create(config, store, req).await?;
            Ok(created_lines(config, &invite))
        }
        InviteCommand::List => {
            let now = unix_secs(SystemTime::now());
            let invites = store.invites().list(now).await?;
            if invites.is_empty() {
                return Ok(vec![NO_INVITES.to_string()]);
            }
            Ok(invites.iter().map(describe).collect())
        }
        InviteCommand::Revoke { token } => {
            check_token(token)?;
            store.invites().revoke(token).await?;
            log::info!("invite {}… revoked", token.get(..6).unwrap_or_default());
            Ok(vec![format!("revoked invite {token}")])
        }
    }
}

/// What `perch invite list` shows when there is none.
pub const NO_INVITES: &str = "no invites";

/// The server's log line for an invite command: never the token or URI
/// of a new invite (the log is not the place for capabilities).
pub fn log_line(cmd: &InviteCommand, lines: &[String]) -> String {
    match cmd {
        InviteCommand::Create(_) => "invite created".to_string(),
        InviteCommand::List => format!(
            "invite list ({} listed)",
            lines.iter().filter(|l| l.as_str() != NO_INVITES).count()
        ),
        InviteCommand::Revoke { .. } => "invite revoked".to_string(),
    }
}

// ---- wire fields (`crate::admin::encode_request`) ----

const CREATE: &str = "invite-create";
const LIST: &str = "invite-list";
const REVOKE: &str = "invite-revoke";

/// Whether `name` is the first field of an invite request.
pub fn is_request(name: &str) -> bool {
    matches!(name, CREATE | LIST | REVOKE)
}

/// The request's fields, one per line of the admin protocol.
pub fn encode(cmd: &InviteCommand) -> Vec<String> {
    match cmd {
        InviteCommand::Create(req) => {
            let mut f = vec![
                CREATE.to_string(),
                format!("expires={}", req.expires_secs),
                format!("uses={}", req.uses),
            ];
            if req.admin {
                f.push("admin=yes".to_string());
            }
            for (key, value) in [
                ("domain", &req.domain),
                ("for", &req.for_jid),
                ("inviter", &req.inviter),
                ("group", &req.group),
            ] {
                if let Some(v) = value {
                    f.push(format!("{key}={v}"));
                }
            }
            f
        }
        InviteCommand::List => vec![LIST.to_string()],
        InviteCommand::Revoke { token } => vec![REVOKE.to_string(), token.clone()],
    }
}

/// The request of `fields` (the first names it).
pub fn decode(fields: &[&str]) -> Result<InviteCommand, AdminError> {
    let bad = |why: String| AdminError::Protocol(why);
    match fields.first().copied() {
        Some(LIST) if fields.len() == 1 => Ok(InviteCommand::List),
        Some(REVOKE) if fields.len() == 2 => Ok(InviteCommand::Revoke {
            token: fields[1].to_string(),
        }),
        Some(CREATE) => {
            let mut req = CreateRequest::default();
            for field in &fields[1..] {
                let (key, value) = field
                    .split_once('=')
                    .ok_or_else(|| bad(format!("invite field without '=': '{field}'")))?;
                let number = |what: &str| {
                    value
                        .parse::<u64>()
                        .map_err(|_| bad(format!("bad {what} '{value}'")))
                };
                match key {
                    "expires" => req.expires_secs = number("expiry")?,
                    "uses" => {
                        req.uses = u32::try_from(number("uses")?)
                            .map_err(|_| bad(format!("bad uses '{value}'")))?;
                    }
                    "domain" => req.domain = Some(value.to_string()),
                    "for" => req.for_jid = Some(value.to_string()),
                    "inviter" => req.inviter = Some(value.to_string()),
                    "admin" if value == "yes" => req.admin = true,
                    "group" => req.group = Some(value.to_string()),
                    _ => return Err(bad(format!("unknown invite field '{key}'"))),
                }
            }
            Ok(InviteCommand::Create(req))
        }
        _ => Err(bad(format!("malformed invite request {fields:?}"))),
    }
}

/// A username as the invite stores it (the normalized localpart), for
/// the registration paths.
pub fn localpart(raw: &str) -> Result<String, String> {
    jid::prep_local_strict(raw)
        .map(|l| l.into_owned())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(c: &Config) -> Vec<String> {
        c.hosts.iter().map(|h| h.domain.clone()).collect()
    }

    fn config(extra: &str) -> Config {
        Config::from_toml_str(
            &format!("[[host]]\ndomain = \"example.org\"\n{extra}"),
            "test",
        )
        .expect("config")
    }

    #[test]
    fn plans_each_kind() {
        let c = hosts(&config(""));
        let account = plan(&CreateRequest::default(), &c, "t", 100).expect("plan");
        assert_eq!(account.kind, InviteKind::Account);
        assert_eq!(account.domain, "example.org");
        assert_eq!(account.expires, 100 + DEFAULT_EXPIRY_SECS);
        assert_eq!((account.creator, account.username), (None, None));
        let fixed = CreateRequest {
            for_jid: Some("Juliet@example.org".into()),
            ..CreateRequest::default()
        };
        let fixed = plan(&fixed, &c, "t", 0).expect("plan");
        assert_eq!(fixed.username.as_deref(), Some("juliet"));
        assert_eq!(fixed.reserved_jid().as_deref(), Some("juliet@example.org"));
        let contact = CreateRequest {
            inviter: Some("romeo@example.org".into()),
            group: Some("Family".into()),
            uses: 3,
            ..CreateRequest::default()
        };
        let contact = plan(&contact, &c, "t", 0).expect("plan");
        assert_eq!(contact.kind, InviteKind::Contact);
        assert_eq!(contact.creator.as_deref(), Some("romeo@example.org"));
        assert_eq!(contact.uses_left, 3);
    }

    #[test]
    fn refuses_what_cannot_work() {
        let c = hosts(&config("[[host]]\ndomain = \"other.org\"\n"));
        let refused = |req: CreateRequest| plan(&req, &c, "t", 0).expect_err("refused").to_string();
        assert!(refused(CreateRequest::default()).contains("--domain"));
        assert!(
            refused(CreateRequest {
                group: Some("G".into()),
                ..CreateRequest::default()
            })
            .contains("--inviter")
        );
        assert!(
            refused(CreateRequest {
                uses: 0,
                domain: Some("example.org".into()),
                ..CreateRequest::default()
            })
            .contains("--uses")
        );
        assert!(
            refused(CreateRequest {
                for_jid: Some("a@elsewhere.net".into()),
                ..CreateRequest::default()
            })
            .contains("elsewhere.net")
        );
        assert!(
            refused(CreateRequest {
                for_jid: Some("a@example.org".into()),
                domain: Some("other.org".into()),
                ..CreateRequest::default()
            })
            .contains("not on other.org")
        );
        assert!(
            refused(CreateRequest {
                for_jid: Some("a@example.org".into()),
                uses: 2,
                ..CreateRequest::default()
            })
            .contains("once")
        );
        assert!(
            refused(CreateRequest {
                domain: Some("nowhere.org".into()),
                ..CreateRequest::default()
            })
            .contains("nowhere.org")
        );
        assert!(
            refused(CreateRequest {
                domain: Some("example.org".into()),
                admin: true,
                uses: 3,
                ..CreateRequest::default()
            })
            .contains("--admin")
        );
        assert!(validate(&InviteCommand::Revoke { token: "x".into() }, &c).is_err());
    }

    #[test]
    fn wire_round_trip() {
        let cmds = [
            InviteCommand::List,
            InviteCommand::Revoke {
                token: "abc".into(),
            },
            InviteCommand::Create(CreateRequest::default()),
            InviteCommand::Create(CreateRequest {
                domain: Some("example.org".into()),
                for_jid: Some("a@example.org".into()),
                inviter: Some("b@example.org".into()),
                group: Some("Family = us".into()),
                expires_secs: 60,
                uses: 7,
                admin: false,
            }),
            InviteCommand::Create(CreateRequest {
                admin: true,
                ..CreateRequest::default()
            }),
        ];
        for cmd in cmds {
            let fields = encode(&cmd);
            let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
            assert_eq!(decode(&refs).expect("decode"), cmd);
        }
        assert!(decode(&["invite-create", "uses=x"]).is_err());
        assert!(decode(&["invite-create", "colour=blue"]).is_err());
        assert!(decode(&["invite-create", "uses"]).is_err());
        assert!(decode(&["invite-create", "admin=maybe"]).is_err());
        assert!(decode(&["invite-list", "extra"]).is_err());
        assert!(decode(&["invite-revoke"]).is_err());
    }

    #[test]
    fn landing_urls() {
        let none = config("[[listener]]\nkind = \"c2s\"\naddress = \"127.0.0.1\"\nport = 5222\n");
        assert_eq!(landing_url(&none, "example.org", "t"), None);
        let http = config("[[listener]]\nkind = \"http\"\naddress = \"127.0.0.1\"\nport = 5280\n");
        assert_eq!(
            landing_url(&http, "example.org", "t").as_deref(),
            Some("http://example.org:5280/invite/t")
        );
        let external = config("[http]\nexternal_url = \"https://chat.example.org\"\n");
        assert_eq!(
            landing_url(&external, "example.org", "t").as_deref(),
            Some("https://chat.example.org/invite/t")
        );
    }
}
