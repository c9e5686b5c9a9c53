//! XEP-0077 in-band registration: creating an account from a client that
//! has not logged in (only when `[registration] allow = true`), and, for
//! logged-in users, changing the password and deleting the account.
//!
//! Deleting removes everything stored for the account and leaves a
//! tombstone: the address can never be registered again.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::env::Env;
use crate::forms::{Field, FieldType, Form, FormType, NS_DATA};
use crate::jid::{self, Jid};
use crate::sasl::{Credentials, DEFAULT_ITERATIONS};
use crate::stanza::{Condition, StanzaError};
use crate::store::{self, StoreError};
use crate::xml::Element;

use super::reply;

pub const NS_REGISTER: &str = "jabber:iq:register";
/// The stream feature announcing registration (XEP-0077 §8).
pub const NS_REGISTER_FEATURE: &str = "http://jabber.org/features/iq-register";
const FORM_CHANGE_PASSWORD: &str = "jabber:iq:register:changepassword";

/// What a `set` asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Submitted {
    /// `<remove/>`: delete the account.
    Remove,
    /// Username and password, from the legacy fields or the data form.
    Fields {
        username: Option<String>,
        password: Option<String>,
        old_password: Option<String>,
    },
}

/// Reads the `<query xmlns='jabber:iq:register'>` of a set.
pub fn parse_submission(query: &Element) -> Result<Submitted, StanzaError> {
    let children: Vec<&Element> = query.children().collect();
    if children.iter().any(|c| c.is("remove", NS_REGISTER)) {
        if children.len() != 1 {
            // §3.2: <remove/> must come alone.
            return Err(bad_request("<remove/> must be the only child of <query/>"));
        }
        return Ok(Submitted::Remove);
    }
    let text_of = |name: &str| {
        query
            .get_child(name, NS_REGISTER)
            .map(|e| e.text().trim().to_string())
    };
    let legacy = [text_of("username"), text_of("password")];
    match query.get_child("x", NS_DATA) {
        Some(x) => {
            if legacy.iter().any(Option::is_some) {
                // §4: a client MUST NOT submit both.
                return Err(bad_request(
                    "submit either the data form or the fields, not both",
                ));
            }
            let form = Form::parse(x).map_err(|e| bad_request(&e.to_string()))?;
            match form.form_type() {
                Some(NS_REGISTER) | Some(FORM_CHANGE_PASSWORD) => {}
                other => {
                    return Err(bad_request(&format!(
                        "unexpected FORM_TYPE {}",
                        other.unwrap_or("(none)")
                    )));
                }
            }
            let value = |var: &str| form.value(var).map(|v| v.trim().to_string());
            Ok(Submitted::Fields {
                username: value("username"),
                password: form.value("password").map(str::to_string),
                old_password: form.value("old_password").map(str::to_string),
            })
        }
        None => {
            let [username, _] = legacy;
            Ok(Submitted::Fields {
                username,
                // Passwords are taken as typed: spaces may be part of them.
                password: query.get_child("password", NS_REGISTER).map(Element::text),
                old_password: None,
            })
        }
    }
}

fn bad_request(text: &str) -> StanzaError {
    StanzaError::new(Condition::BadRequest).with_text(text)
}

fn not_acceptable(text: &str) -> StanzaError {
    StanzaError::new(Condition::NotAcceptable).with_text(text)
}

/// The password rules every way of setting one shares.
pub fn check_password(password: &str) -> Result<(), StanzaError> {
    crate::sasl::password_problem(password).map_or(Ok(()), |why| {
        Err(not_acceptable(&format!("unusable password: {why}")))
    })
}

/// The fields an unregistered client must fill in (§3.1), both as the
/// legacy elements and as a data form.
pub fn registration_fields() -> Element {
    let instructions = "Choose a username and password for your new account.";
    Element::new("query", NS_REGISTER)
        .with_child(Element::new("instructions", NS_REGISTER).with_text(instructions))
        .with_child(Element::new("username", NS_REGISTER))
        .with_child(Element::new("password", NS_REGISTER))
        .with_child(
            Form::new(FormType::Form)
                .with_title("Account registration")
                .with_instructions(instructions)
                .with_field(Field::form_type(NS_REGISTER))
                .with_field(
                    Field::new("username", FieldType::TextSingle)
                        .with_label("Username")
                        .required(),
                )
                .with_field(
                    Field::new("password", FieldType::TextPrivate)
                        .with_label("Password")
                        .required(),
                )
                .to_element(),
        )
}

/// What a logged-in user gets for a get: they are registered (§3.1).
pub fn registered_info(account: &Jid) -> Element {
    Element::new("query", NS_REGISTER)
        .with_child(Element::new("instructions", NS_REGISTER).with_text(
            "You are registered. Send a new password to change it, or <remove/> to delete your account.",
        ))
        .with_child(Element::new("registered", NS_REGISTER))
        .with_child(Element::new("username", NS_REGISTER).with_text(account.local().unwrap_or_default()))
        .with_child(Element::new("password", NS_REGISTER))
}

// ---- unregistered clients (before authentication) ----

/// Registrations per client address: after one succeeds, the address
/// waits `[registration] min_interval_secs` before the next.
#[derive(Default)]
pub struct Throttle {
    last: RefCell<HashMap<IpAddr, Instant>>,
    /// Wrong invitation tokens per address (XEP-0445).
    pub tokens: crate::invite::throttle::TokenGuesses,
}

impl Throttle {
    /// Takes the address's slot, or says how long it must still wait.
    pub fn reserve(&self, ip: IpAddr, interval: Duration, now: Instant) -> Result<(), Duration> {
        let mut last = self.last.borrow_mut();
        if last.len() > 10_000 {
            last.retain(|_, at| now.duration_since(*at) < interval);
        }
        if let Some(at) = last.get(&ip) {
            let waited = now.duration_since(*at);
            if waited < interval {
                return Err(interval - waited);
            }
        }
        last.insert(ip, now);
        Ok(())
    }

    /// Gives the slot back after a registration that did not happen.
    pub fn release(&self, ip: IpAddr) {
        self.last.borrow_mut().remove(&ip);
    }
}

/// A registration iq (a get or a set) from a client that has not
/// authenticated on a stream to `domain`. Returns the reply and whether an
/// account was created.
pub async fn before_login(
    env: &Env<'_>,
    registrations: &Throttle,
    iq: &Element,
    domain: &str,
    ip: IpAddr,
) -> (Option<Element>, bool) {
    let outcome = match iq.attr("type") {
        Some("get") => Ok(Some(registration_fields())),
        _ => create_account(env, registrations, iq, domain, ip)
            .await
            .map(|()| None),
    };
    let created = iq.attr("type") == Some("set") && outcome.is_ok();
    let reply = reply::reply_for(iq, outcome).map(|mut reply| {
        // Nobody is bound yet: the reply goes back on this stream as is.
        reply.remove_attr("to");
        reply
    });
    (reply, created)
}

/// Whether a valid invite reserves `account` (open registration must not
/// take it: XEP-0401 §6).
pub fn is_reserved(env: &Env<'_>, account: &Jid) -> bool {
    let now = env
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match env.store.invites().reserved_by(account.as_str(), now, None) {
        Ok(found) => found.is_some(),
        Err(e) => {
            log::error!("invite: reading reservations: {e}");
            // Refusing is the safe side: the address may be someone's.
            true
        }
    }
}

async fn create_account(
    env: &Env<'_>,
    registrations: &Throttle,
    iq: &Element,
    domain: &str,
    ip: IpAddr,
) -> Result<(), StanzaError> {
    let query = iq
        .first_child()
        .ok_or_else(|| bad_request("missing <query/>"))?;
    let (username, password) = match parse_submission(query)? {
        Submitted::Remove => {
            // §3.2: an unregistered entity has nothing to remove.
            return Err(StanzaError::new(Condition::RegistrationRequired));
        }
        Submitted::Fields {
            username, password, ..
        } => (username, password),
    };
    let username = username
        .filter(|u| !u.is_empty())
        .ok_or_else(|| not_acceptable("a username is required"))?;
    let password = password
        .filter(|p| !p.is_empty())
        .ok_or_else(|| not_acceptable("a password is required"))?;
    check_password(&password)?;
    let local = jid::prep_local_strict(&username).map_err(|e| {
        StanzaError::new(Condition::JidMalformed)
            .with_text(format!("'{username}' cannot be a username: {e}"))
    })?;
    let account = Jid::new(Some(&local), domain, None)
        .map_err(|e| StanzaError::new(Condition::JidMalformed).with_text(e.to_string()))?;
    // Cheap checks first: hashing a password costs real CPU time.
    if env.account_exists(&account) {
        return Err(StanzaError::new(Condition::Conflict).with_text(format!("{account} is taken")));
    }
    if env
        .store
        .tombstones()
        .contains(account.as_str())
        .unwrap_or(false)
    {
        return Err(tombstoned(&account));
    }
    if is_reserved(env, &account) {
        return Err(StanzaError::new(Condition::Conflict).with_text(format!("{account} is taken")));
    }
    let interval = Duration::from_secs(u64::from(env.config.registration.min_interval_secs));
    if let Err(wait) = registrations.reserve(ip, interval, env.clock()) {
        return Err(
            StanzaError::new(Condition::ResourceConstraint).with_text(format!(
                "an account was registered from your address a moment ago; try again in {} seconds",
                wait.as_secs().max(1)
            )),
        );
    }
    let result = async {
        let credentials = derive(password).await?;
        match env
            .store
            .accounts()
            .create(account.as_str(), &credentials)
            .await
        {
            Ok(()) => Ok(()),
            Err(StoreError::AlreadyExists(_)) => {
                Err(StanzaError::new(Condition::Conflict).with_text(format!("{account} is taken")))
            }
            Err(StoreError::Tombstoned(_)) => Err(tombstoned(&account)),
            Err(e) => {
                log::error!("registering {account}: {e}");
                Err(StanzaError::new(Condition::InternalServerError))
            }
        }
    }
    .await;
    match &result {
        Ok(()) => log::info!("{account} registered in-band from {ip}"),
        Err(_) => registrations.release(ip),
    }
    result
}

fn tombstoned(account: &Jid) -> StanzaError {
    StanzaError::new(Condition::Conflict).with_text(format!(
        "{account} belonged to a deleted account and cannot be registered again"
    ))
}

async fn derive(password: String) -> Result<Credentials, StanzaError> {
    // Two PBKDF2 runs: not on the event loop.
    crate::password_work::run(move || Credentials::derive(&password, DEFAULT_ITERATIONS))
        .await
        .map_err(|_| {
            not_acceptable("the password contains characters that cannot be used (SASLprep)")
        })
}

// ---- logged-in users ----

/// A `jabber:iq:register` iq from a logged-in user about `account`, sent
/// to the account's bare JID (or with no `to`) or to its server.
pub fn from_user(env: &Env, iq: Element, account: &Jid) {
    let owner = reply::requester(&iq).is_some_and(|r| r.bare_str() == account.bare_str());
    if !owner {
        return reply::answer(env, &iq, Err(StanzaError::new(Condition::Forbidden)));
    }
    let Some(query) = iq.first_child().filter(|q| q.is("query", NS_REGISTER)) else {
        return reply::answer(
            env,
            &iq,
            Err(bad_request("expected <query xmlns='jabber:iq:register'/>")),
        );
    };
    match iq.attr("type") {
        Some("get") => reply::answer(env, &iq, Ok(Some(registered_info(account)))),
        Some("set") => match parse_submission(query) {
            Ok(Submitted::Remove) => remove_account(env, iq, account),
            Ok(Submitted::Fields {
                username,
                password,
                old_password,
            }) => match check_password_change(account, username.as_deref(), password) {
                Ok(password) => change_password(env, iq, account, password, old_password),
                Err(e) => reply::answer(env, &iq, Err(e)),
            },
            Err(e) => reply::answer(env, &iq, Err(e)),
        },
        _ => {}
    }
}

/// §3.3: the username, if given, must be the account's own; an empty
/// password never replaces the current one.
pub fn check_password_change(
    account: &Jid,
    username: Option<&str>,
    password: Option<String>,
) -> Result<String, StanzaError> {
    if let Some(username) = username.filter(|u| !u.is_empty()) {
        let same = jid::prep_local(username)
            .is_ok_and(|prepped| Some(prepped.as_ref()) == account.local());
        if !same {
            return Err(bad_request("the username is not the one of this account"));
        }
    }
    let password = password
        .filter(|p| !p.is_empty())
        .ok_or_else(|| bad_request("the new password is missing; the old one stays"))?;
    check_password(&password)?;
    Ok(password)
}

fn change_password(
    env: &Env,
    iq: Element,
    account: &Jid,
    password: String,
    old_password: Option<String>,
) {
    let current = match old_password {
        Some(_) => match env.store.accounts().credentials(account.as_str()) {
            Ok(current) => current,
            Err(e) => {
                log::error!("reading the credentials of {account}: {e}");
                return reply::answer(
                    env,
                    &iq,
                    Err(StanzaError::new(Condition::InternalServerError)),
                );
            }
        },
        None => None,
    };
    // Checking the old password and hashing the new one cost PBKDF2 runs:
    // off the event loop, and the client's next stanza waits for them.
    let hashing = async move {
        if let Some(old) = old_password {
            let ok = match current {
                Some(c) => crate::password_work::run(move || c.verify_password(&old)).await,
                None => false,
            };
            if !ok {
                return Err(StanzaError::new(Condition::NotAuthorized)
                    .with_text("the old password is wrong"));
            }
        }
        derive(password).await
    };
    let account = account.clone();
    env.after_async(hashing, move |env, credentials| {
        let outcome = credentials.map(|credentials| {
            env.persist(store::set_credentials_op(account.as_str(), &credentials));
            log::info!("{account} changed its password in-band");
            None
        });
        reply::answer(env, &iq, outcome);
    });
}

fn remove_account(env: &Env, iq: Element, account: &Jid) {
    match super::account_removal::remove(env, account, "this account was deleted") {
        Ok(()) => {
            log::info!("{account} deleted itself in-band");
            // Straight to the session: routing must not depend on whether
            // the deletion has reached the disk yet. §3.2: the result
            // first, then a not-authorized stream error on every session
            // of the account (`remove` does that once this is out).
            let requester = reply::requester(&iq);
            if let (Some(result), Some(to)) = (reply::reply_for(&iq, Ok(None)), requester) {
                env.send_to_session(&to, &result);
            }
        }
        Err(e) => {
            log::error!("deleting {account}: {e}");
            reply::answer(
                env,
                &iq,
                Err(StanzaError::new(Condition::InternalServerError)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(s: &str) -> Element {
        Element::parse(s).expect("parse")
    }

    #[test]
    fn legacy_fields_and_forms() {
        let legacy = el(
            "<query xmlns='jabber:iq:register'><username>bill</username><password> Calliope </password></query>",
        );
        assert_eq!(
            parse_submission(&legacy),
            Ok(Submitted::Fields {
                username: Some("bill".into()),
                password: Some(" Calliope ".into()),
                old_password: None
            })
        );
        let form = el(
            "<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>\
            <field var='FORM_TYPE'><value>jabber:iq:register</value></field>\
            <field var='username'><value>bill</value></field>\
            <field var='password'><value>pw</value></field></x></query>",
        );
        assert_eq!(
            parse_submission(&form),
            Ok(Submitted::Fields {
                username: Some("bill".into()),
                password: Some("pw".into()),
                old_password: None
            })
        );
        let both = el("<query xmlns='jabber:iq:register'><username>b</username>\
            <x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>jabber:iq:register</value></field></x></query>");
        assert_eq!(
            parse_submission(&both).map_err(|e| e.condition),
            Err(Condition::BadRequest)
        );
        let alien = el(
            "<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>\
            <field var='FORM_TYPE'><value>urn:other</value></field></x></query>",
        );
        assert_eq!(
            parse_submission(&alien).map_err(|e| e.condition),
            Err(Condition::BadRequest)
        );
    }

    #[test]
    fn remove_must_be_alone() {
        let remove = el("<query xmlns='jabber:iq:register'><remove/></query>");
        assert_eq!(parse_submission(&remove), Ok(Submitted::Remove));
        let extra = el("<query xmlns='jabber:iq:register'><remove/><username>x</username></query>");
        assert_eq!(
            parse_submission(&extra).map_err(|e| e.condition),
            Err(Condition::BadRequest)
        );
    }

    #[test]
    fn password_change_rules() {
        let romeo = Jid::parse("romeo@example.com").expect("jid");
        assert_eq!(
            check_password_change(&romeo, Some("Romeo"), Some("new".into())),
            Ok("new".into())
        );
        assert_eq!(
            check_password_change(&romeo, None, Some("new".into())),
            Ok("new".into())
        );
        assert_eq!(
            check_password_change(&romeo, Some("juliet"), Some("new".into()))
                .map_err(|e| e.condition),
            Err(Condition::BadRequest)
        );
        assert_eq!(
            check_password_change(&romeo, None, Some(String::new())).map_err(|e| e.condition),
            Err(Condition::BadRequest)
        );
        assert_eq!(
            check_password_change(&romeo, None, None).map_err(|e| e.condition),
            Err(Condition::BadRequest)
        );
        assert_eq!(
            check_password_change(&romeo, None, Some("a\nb".into())).map_err(|e| e.condition),
            Err(Condition::NotAcceptable)
        );
    }

    #[test]
    fn throttle_per_address() {
        let t = Throttle::default();
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let other: IpAddr = "192.0.2.2".parse().expect("ip");
        let start = Instant::now();
        let interval = Duration::from_secs(300);
        assert!(t.reserve(ip, interval, start).is_ok());
        assert!(t.reserve(other, interval, start).is_ok());
        let wait = t
            .reserve(ip, interval, start + Duration::from_secs(100))
            .expect_err("throttled");
        assert_eq!(wait, Duration::from_secs(200));
        assert!(t.reserve(ip, interval, start + interval).is_ok());
        t.release(ip);
        assert!(t.reserve(ip, interval, start + interval).is_ok());
        assert!(t.reserve(ip, Duration::ZERO, start + interval).is_ok());
    }

    #[test]
    fn forms_offer_both_shapes() {
        let fields = registration_fields();
        assert!(fields.get_child("username", NS_REGISTER).is_some());
        assert!(fields.get_child("password", NS_REGISTER).is_some());
        let x = fields.get_child("x", NS_DATA).expect("form");
        assert_eq!(x.attr("type"), Some("form"));
        let info = registered_info(&Jid::parse("romeo@example.com").expect("jid"));
        assert!(info.get_child("registered", NS_REGISTER).is_some());
        assert_eq!(
            info.get_child("username", NS_REGISTER).map(Element::text),
            Some("romeo".into())
        );
    }
}
