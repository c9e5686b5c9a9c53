//! Ad-hoc commands (XEP-0050, the XEP-0133 administration among them) on
//! a user host's own domain, as `host.rs` and `disco.rs` reach them: the
//! command list and nodes in service discovery, the `<command/>` iqs
//! answered through `adhoc::engine`, and the commands' environment
//! ([`CommandEnv`]) on the running server: its store, its sessions and
//! the account operations the CLI uses too. Thin: the rules are in
//! `crate::adhoc`.

use crate::adhoc::command::{AdhocCommand, CommandEnv, NS_COMMANDS, Work};
use crate::adhoc::engine::{self, Outcome, Requester};
use crate::env::Env;
use crate::forms::{Field, FieldType, Form, FormType};
use crate::jid::Jid;
use crate::stanza::{Condition, StanzaError};
use crate::store::{StoreError, server_notices};
use crate::xml::Element;

use super::account_removal;
use super::{NS_DISCO_INFO, NS_DISCO_ITEMS};

/// [`CommandEnv`] for commands sent to the host `domain`.
struct ServerEnv<'a, 'e> {
    env: &'a Env<'e>,
    domain: &'a str,
}

/// Whether `jid`'s account administers the server (configured or
/// granted).
pub fn is_admin(env: &Env, jid: &Jid) -> bool {
    env.admins.contains(jid)
}

/// The sender of `iq` as a requester of commands on `domain`: admins from
/// anywhere on this server, other users only on their own host.
fn requester(env: &Env, iq: &Element) -> Option<(Jid, bool)> {
    let from = iq.attr("from").and_then(|f| Jid::parse(f).ok())?;
    from.local()?;
    let admin = is_admin(env, &from);
    Some((from, admin))
}

/// The commands `jid` may run on `domain`.
fn visible<'c>(env: &Env, domain: &str, jid: Option<&Jid>) -> Vec<&'c dyn AdhocCommand> {
    let Some(jid) = jid else {
        return Vec::new();
    };
    let requester = Requester {
        jid,
        admin: is_admin(env, jid),
    };
    let own_host = jid.domain() == domain;
    crate::adhoc::COMMANDS
        .iter()
        .copied()
        .filter(|c| (requester.admin || own_host) && requester.may_run(*c))
        .collect()
}

/// disco#items of the commands node (XEP-0050 §2.2): what the asker may
/// run; nothing for those who may run nothing.
pub fn items(env: &Env, domain: &str, asker: Option<&Jid>) -> Element {
    let mut query = Element::new("query", NS_DISCO_ITEMS).with_attr("node", NS_COMMANDS);
    for command in visible(env, domain, asker) {
        query.push_child(
            Element::new("item", NS_DISCO_ITEMS)
                .with_attr("jid", domain)
                .with_attr("node", command.node())
                .with_attr("name", command.name()),
        );
    }
    query
}

/// disco#info of `node` if it is the commands node or a command the asker
/// may run (§2.3); `None` for other nodes.
pub fn info(
    env: &Env,
    domain: &str,
    asker: Option<&Jid>,
    node: &str,
) -> Option<Result<Element, StanzaError>> {
    if node == NS_COMMANDS {
        return Some(Ok(Element::new("query", NS_DISCO_INFO)
            .with_attr("node", NS_COMMANDS)
            .with_child(identity("command-list", "Commands"))));
    }
    let command = crate::adhoc::COMMANDS.iter().find(|c| c.node() == node)?;
    if !visible(env, domain, asker)
        .iter()
        .any(|c| c.node() == command.node())
    {
        // Not listed for this asker: as if it did not exist (§4.6 allows
        // forbidden, but the node's existence is nobody else's business).
        return Some(Err(StanzaError::new(Condition::ItemNotFound)));
    }
    Some(Ok(Element::new("query", NS_DISCO_INFO)
        .with_attr("node", node)
        .with_child(identity("command-node", command.name()))
        .with_child(super::disco::feature(NS_COMMANDS))
        .with_child(super::disco::feature(crate::forms::NS_DATA))))
}

fn identity(kind: &str, name: &str) -> Element {
    Element::new("identity", NS_DISCO_INFO)
        .with_attr("category", "automation")
        .with_attr("type", kind)
        .with_attr("name", name)
}

/// Handles a `<command/>` iq to the host `to`, answering it.
pub fn execute(env: &Env, iq: Element, to: &Jid) {
    let outcome = run(env, &iq, to);
    match outcome {
        Outcome::Answer(answer) => super::reply::answer(env, &iq, answer.map(Some)),
        Outcome::Work {
            work,
            node,
            session,
        } => {
            let (jid, password, creating) = match &work {
                Work::CreateInvite { contact } => {
                    return create_invite(env, iq, to, *contact, node, session);
                }
                Work::CreateAccount { jid, password } => (jid.clone(), password.clone(), true),
                Work::SetPassword { jid, password } => (jid.clone(), password.clone(), false),
            };
            let store = env.store.clone();
            let job = async move { set_password(&store, &jid, password, creating).await };
            env.after_async(job, move |env, outcome| {
                if outcome.is_ok() {
                    let done = work.done_note().text;
                    log::info!("{done} by an administrator (ad-hoc command)");
                }
                let outcome = outcome.map(|()| None);
                let element = engine::finish_work(&node, &session, &work, outcome);
                super::reply::answer(env, &iq, Ok(Some(element)));
            });
        }
    }
}

fn run(env: &Env, iq: &Element, to: &Jid) -> Outcome {
    if iq.attr("type") != Some("set") {
        return Outcome::Answer(Err(StanzaError::new(Condition::BadRequest)
            .with_text("commands are executed with an iq of type 'set'")));
    }
    let Some((from, admin)) = requester(env, iq) else {
        return Outcome::Answer(Err(StanzaError::new(Condition::Forbidden)
            .with_text("commands are for the accounts of this server")));
    };
    if !admin && from.domain() != to.domain() {
        return Outcome::Answer(Err(StanzaError::new(Condition::Forbidden)
            .with_text("commands are for the accounts of this host")));
    }
    let Some(payload) = iq.first_child() else {
        return Outcome::Answer(Err(StanzaError::new(Condition::BadRequest)));
    };
    let request = match engine::parse_request(payload, iq.attr("xml:lang")) {
        Ok(r) => r,
        Err(e) => return Outcome::Answer(Err(e)),
    };
    let requester = Requester { jid: &from, admin };
    let server_env = ServerEnv {
        env,
        domain: to.domain(),
    };
    env.adhoc.engine.handle(
        crate::adhoc::COMMANDS,
        &requester,
        request,
        &server_env,
        env.clock(),
    )
}

/// Creates an invite on the host `to` (with the requester as the inviter
/// for a contact invite), stored before the answer gives out its link:
/// the result form holds the `xmpp:` URI, the landing page's URL if
/// there is an HTTP listener, and the expiry, as `perch invite` prints
/// them.
fn create_invite(env: &Env, iq: Element, to: &Jid, contact: bool, node: String, session: String) {
    let requester = iq
        .attr("from")
        .and_then(|f| Jid::parse(f).ok())
        .map(|j| j.to_bare().as_str().to_string());
    let request = crate::invite::admin::CreateRequest {
        domain: Some(to.domain().to_string()),
        inviter: if contact { requester.clone() } else { None },
        ..Default::default()
    };
    let hosts: Vec<String> = env.config.hosts.iter().map(|h| h.domain.clone()).collect();
    let store = env.store.clone();
    let job = async move {
        crate::invite::admin::create_in(&hosts, &store, &request)
            .await
            .map_err(|e| e.to_string())
    };
    env.after_async(job, move |env, created| {
        let work = Work::CreateInvite { contact };
        let outcome = created.map(|invite| {
            log::info!(
                "invite created by {} (ad-hoc command)",
                requester.as_deref().unwrap_or("?")
            );
            Some(invite_result(env, &invite))
        });
        let element = engine::finish_work(&node, &session, &work, outcome);
        super::reply::answer(env, &iq, Ok(Some(element)));
    });
}

/// The result form of an invite command: `uri`, `landing-url` (when
/// there is an HTTP listener) and `expire` (XEP-0082 date and time).
fn invite_result(env: &Env, invite: &crate::store::invites::Invite) -> Form {
    let mut form = Form::new(FormType::Result).with_title("Invitation created");
    form = form.with_field(
        Field::new("uri", FieldType::TextSingle)
            .with_label("Invitation link (xmpp: URI)")
            .with_values(vec![crate::invite::uri::invite_uri(invite)]),
    );
    if let Some(url) = crate::invite::admin::landing_url(env.config, &invite.domain, &invite.token)
    {
        form = form.with_field(
            Field::new("landing-url", FieldType::TextSingle)
                .with_label("Web page with the QR code and sign-up form")
                .with_values(vec![url]),
        );
    }
    let expires = std::time::UNIX_EPOCH + std::time::Duration::from_secs(invite.expires);
    form.with_field(
        Field::new("expire", FieldType::TextSingle)
            .with_label("Valid until")
            .with_values(vec![crate::datetime::format_utc(expires, false)]),
    )
}

/// Sets `jid`'s password (creating the account first if `creating`): the
/// key derivation off the event loop, the write awaited.
async fn set_password(
    store: &crate::store::Store,
    jid: &Jid,
    password: String,
    creating: bool,
) -> Result<(), String> {
    let derived = crate::password_work::run(move || {
        crate::sasl::Credentials::derive(&password, crate::sasl::DEFAULT_ITERATIONS)
    })
    .await
    .map_err(|_| "The password contains characters that cannot be used (SASLprep).".to_string())?;
    let written = if creating {
        store.accounts().create(jid.as_str(), &derived).await
    } else {
        store
            .accounts()
            .set_credentials(jid.as_str(), &derived)
            .await
    };
    match written {
        Ok(()) => Ok(()),
        Err(StoreError::AlreadyExists(_)) => Err(format!("{jid} exists already.")),
        Err(StoreError::NotFound(_)) => Err(format!("There is no account {jid}.")),
        Err(StoreError::Tombstoned(_)) => Err(format!(
            "{jid} belonged to a deleted account and cannot be registered again."
        )),
        Err(e) => {
            log::error!("{jid}: {e}");
            Err("The change could not be stored.".to_string())
        }
    }
}

impl CommandEnv for ServerEnv<'_, '_> {
    fn domain(&self) -> &str {
        self.domain
    }

    fn account_exists(&self, jid: &Jid) -> bool {
        self.env.account_exists(jid)
    }

    fn is_disabled(&self, jid: &Jid) -> bool {
        self.env
            .store
            .server_notices()
            .is_disabled(jid.as_str())
            .unwrap_or_else(|e| {
                log::error!("reading whether {jid} is disabled: {e}");
                false
            })
    }

    fn online_resources(&self) -> Vec<Jid> {
        self.env
            .sessions
            .all()
            .iter()
            .filter(|s| s.jid.domain() == self.domain)
            .map(|s| s.jid.clone())
            .collect()
    }

    fn registered_count(&self) -> Result<usize, String> {
        self.env
            .store
            .accounts()
            .list(Some(self.domain))
            .map(|accounts| accounts.len())
            .map_err(|e| {
                log::error!("counting the accounts of {}: {e}", self.domain);
                "The accounts could not be read.".to_string()
            })
    }

    fn delete_account(&self, jid: &Jid) -> Result<(), String> {
        account_removal::remove(
            self.env,
            jid,
            "this account was deleted by an administrator",
        )
        .map_err(|e| {
            log::error!("deleting {jid}: {e}");
            e.to_string()
        })?;
        log::info!("{jid} deleted by an administrator (ad-hoc command)");
        Ok(())
    }

    fn set_disabled(&self, jid: &Jid, disabled: bool) -> Result<(), String> {
        super::account_disabling::set_disabled(self.env, jid, disabled);
        log::info!(
            "{jid} {} by an administrator (ad-hoc command)",
            if disabled { "disabled" } else { "re-enabled" }
        );
        Ok(())
    }

    fn announce(&self, text: &str) -> usize {
        let reached = crate::adhoc::motd::announce(self.env, self.domain, text);
        log::info!(
            "announcement to {reached} resources of {} (ad-hoc command)",
            self.domain
        );
        reached
    }

    fn motd(&self) -> Option<String> {
        self.env
            .store
            .server_notices()
            .motd(self.domain)
            .unwrap_or_else(|e| {
                log::error!("reading the message of the day of {}: {e}", self.domain);
                None
            })
    }

    fn set_motd(&self, text: Option<&str>) -> Result<(), String> {
        let op = server_notices::set_motd_op(self.domain, text).map_err(|e| e.to_string())?;
        self.env.persist(op);
        log::info!(
            "message of the day of {} {} (ad-hoc command)",
            self.domain,
            if text.is_some() { "set" } else { "deleted" }
        );
        Ok(())
    }
}
