//! Registration with an invitation token (XEP-0445, XEP-0401): the
//! pre-authentication iq that presents a token on a stream, the
//! registration iq that follows it (`invite::stream` has added the
//! accepted token to it), and the landing page's form, which presents the
//! token and registers in one request. In-band registration stays closed
//! to everyone without a token (`[registration] allow`).
//!
//! The rules, and why:
//! - A wrong token (unknown, malformed, expired, used up, revoked) is
//!   `item-not-found` when presented (XEP-0445 §4), and counts against the
//!   client's address (`invite::throttle`); a token that vanished between
//!   its check and the registration is `not-authorized`.
//! - A token is used only by a registration that succeeds: a taken
//!   username is `conflict` and leaves the token as it was (§4: "MUST NOT
//!   be considered used until the actual registration has succeeded").
//! - Expiry is checked when the token is presented, not again later on
//!   the same stream (§4).
//! - A username fixed by the invite (`perch invite --for`) is the only one
//!   it registers; other invites and open registration cannot take it
//!   while the invite lives (XEP-0401 §6).

use std::net::IpAddr;
use std::time::SystemTime;

use crate::env::Env;
use crate::im::register::{NS_REGISTER, Submitted, Throttle, check_password, parse_submission};
use crate::im::reply;
use crate::jid::{self, Jid};
use crate::sasl::{Credentials, DEFAULT_ITERATIONS};
use crate::stanza::{Condition, StanzaError};
use crate::store::invites::{Invite, Refused, register_op};
use crate::xml::Element;

use super::stream::{carried_token, is_preauth};
use super::{token, unix_secs};

/// What XEP-0445 §4 answers a token that cannot be used.
pub const INVALID_TOKEN_TEXT: &str = "The provided token is invalid or expired";

/// Whether a pre-login iq is this module's: a token presented, or a
/// registration that carries an accepted one.
pub fn concerns(iq: &Element) -> bool {
    is_preauth(iq) || carried_token(iq).is_some()
}

/// The answer to a pre-login iq that [`concerns`] this module (the same
/// shape as `im::register::before_login`): the reply, and whether an
/// account was created.
pub async fn before_login(
    env: &Env<'_>,
    throttle: &Throttle,
    iq: &Element,
    domain: &str,
    ip: IpAddr,
) -> (Option<Element>, bool) {
    let outcome = if is_preauth(iq) {
        let token = carried_token(iq).unwrap_or_default();
        check_token(env, throttle, token, Some(domain), ip).map(|_| None)
    } else {
        registration_iq(env, iq, domain, ip).await
    };
    let created = outcome.as_ref().is_ok_and(Option::is_none)
        && !is_preauth(iq)
        && iq.attr("type") == Some("set");
    let reply = reply::reply_for(iq, outcome).map(|mut reply| {
        // Nobody is bound yet: the reply goes back on this stream as is.
        reply.remove_attr("to");
        reply
    });
    (reply, created)
}

fn invalid_token() -> StanzaError {
    StanzaError::new(Condition::ItemNotFound).with_text(INVALID_TOKEN_TEXT)
}

fn too_many_guesses(wait: std::time::Duration) -> StanzaError {
    StanzaError::new(Condition::ResourceConstraint).with_text(format!(
        "too many wrong invitation tokens from your address; try again in {} seconds",
        wait.as_secs().max(1)
    ))
}

/// The invite of `token` if it can register an account (on `domain`, if
/// given) now;
/// a wrong token counts against `ip`, and nothing is looked up while the
/// address must wait.
pub fn check_token(
    env: &Env<'_>,
    throttle: &Throttle,
    token: &str,
    domain: Option<&str>,
    ip: IpAddr,
) -> Result<Invite, StanzaError> {
    let clock = env.clock();
    throttle.tokens.admit(ip, clock).map_err(too_many_guesses)?;
    let found = if token::is_well_formed(token) {
        let now = unix_secs(env.now());
        env.store.invites().lookup(token, now).map_err(|e| {
            log::error!("invite: reading a token: {e}");
            StanzaError::new(Condition::InternalServerError)
        })?
    } else {
        None
    };
    match found.filter(|i| domain.is_none_or(|d| i.domain == d)) {
        Some(invite) => Ok(invite),
        None => {
            throttle.tokens.failed(ip, clock);
            log::info!("invite: a wrong token from {ip}");
            Err(invalid_token())
        }
    }
}

/// A `jabber:iq:register` get or set on a stream whose token was accepted.
async fn registration_iq(
    env: &Env<'_>,
    iq: &Element,
    domain: &str,
    ip: IpAddr,
) -> Result<Option<Element>, StanzaError> {
    let token = carried_token(iq).unwrap_or_default();
    let query = iq
        .first_child()
        .filter(|q| q.is("query", NS_REGISTER))
        .ok_or_else(|| StanzaError::new(Condition::BadRequest).with_text("missing <query/>"))?;
    let invite = env
        .store
        .invites()
        .get(token)
        .ok()
        .flatten()
        .filter(|i| i.uses_left > 0)
        .ok_or_else(|| {
            StanzaError::new(Condition::NotAuthorized)
                .with_text("the invitation was used up or revoked meanwhile")
        })?;
    if iq.attr("type") == Some("get") {
        return Ok(Some(fields_for(&invite)));
    }
    let (username, password) = match parse_submission(query)? {
        Submitted::Remove => return Err(StanzaError::new(Condition::RegistrationRequired)),
        Submitted::Fields {
            username, password, ..
        } => (username, password),
    };
    register_account(env, &invite, username.as_deref(), password, ip, domain).await?;
    Ok(None)
}

/// The registration fields, with the username filled in when the invite
/// fixes it.
fn fields_for(invite: &Invite) -> Element {
    let mut fields = crate::im::register::registration_fields();
    if let Some(user) = &invite.username
        && let Some(field) = fields.get_child_mut("username", NS_REGISTER)
    {
        field.push_text(user.as_str());
    }
    fields
}

/// Creates the account `username@domain` with `password` by `invite`
/// (taking one of its uses in the same transaction), then makes it and
/// the inviter contacts. Shared by the stream and the landing page.
pub async fn register_account(
    env: &Env<'_>,
    invite: &Invite,
    username: Option<&str>,
    password: Option<String>,
    ip: IpAddr,
    domain: &str,
) -> Result<Jid, StanzaError> {
    let not_acceptable = |text: String| StanzaError::new(Condition::NotAcceptable).with_text(text);
    if invite.domain != domain {
        return Err(invalid_token());
    }
    let username = match (username.filter(|u| !u.trim().is_empty()), &invite.username) {
        (None, Some(fixed)) => fixed.clone(),
        (None, None) => return Err(not_acceptable("a username is required".into())),
        (Some(given), _) => jid::prep_local_strict(given.trim())
            .map(|l| l.into_owned())
            .map_err(|e| {
                StanzaError::new(Condition::JidMalformed)
                    .with_text(format!("'{given}' cannot be a username: {e}"))
            })?,
    };
    if let Some(fixed) = &invite.username
        && *fixed != username
    {
        return Err(not_acceptable(format!(
            "this invitation is for the username {fixed}"
        )));
    }
    let password = password
        .filter(|p| !p.is_empty())
        .ok_or_else(|| not_acceptable("a password is required".into()))?;
    check_password(&password)?;
    let account = Jid::new(Some(&username), domain, None)
        .map_err(|e| StanzaError::new(Condition::JidMalformed).with_text(e.to_string()))?;
    let taken = || StanzaError::new(Condition::Conflict).with_text(format!("{account} is taken"));
    // Cheap checks first: hashing a password costs real CPU time.
    let now = unix_secs(SystemTime::now());
    let reserved = env
        .store
        .invites()
        .reserved_by(account.as_str(), now, Some(&invite.token))
        .unwrap_or(None)
        .is_some();
    let tombstoned = env
        .store
        .tombstones()
        .contains(account.as_str())
        .unwrap_or(false);
    if env.account_exists(&account) || tombstoned || (reserved && invite.username.is_none()) {
        return Err(taken());
    }
    let credentials =
        crate::password_work::run(move || Credentials::derive(&password, DEFAULT_ITERATIONS))
            .await
            .map_err(|_| {
                not_acceptable(
                    "the password contains characters that cannot be used (SASLprep)".into(),
                )
            })?;
    let op = register_op(&invite.token, account.as_str(), &credentials, now);
    if let Err(e) = env.store.write(op).await {
        return Err(match Refused::from_error(&e) {
            Some(Refused::Taken) => taken(),
            Some(Refused::Invalid) => StanzaError::new(Condition::NotAuthorized)
                .with_text("the invitation was used up or revoked meanwhile"),
            Some(Refused::WrongUsername { fixed }) => {
                not_acceptable(format!("this invitation is for the username {fixed}"))
            }
            None => {
                log::error!("registering {account} with an invitation: {e}");
                StanzaError::new(Condition::InternalServerError)
            }
        });
    }
    log::info!("{account} registered with an invitation from {ip}");
    if invite.admin {
        env.admins.set_granted(&account, true);
        log::info!("{account} is a server administrator (admin invitation)");
    }
    if let Some(inviter) = invite.creator.as_deref().and_then(|c| Jid::parse(c).ok())
        && let Err(e) =
            super::contacts::befriend(env, &inviter, &account, invite.group.as_deref()).await
    {
        log::error!("invite: subscribing {inviter} and {account}: {e}");
    }
    Ok(account)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_iqs_are_ours() {
        let preauth = Element::parse(
            "<iq xmlns='jabber:client' type='set' id='a'><preauth xmlns='urn:xmpp:pars:0' token='t'/></iq>",
        )
        .expect("parse");
        assert!(concerns(&preauth));
        let plain = Element::parse(
            "<iq xmlns='jabber:client' type='set' id='a'><query xmlns='jabber:iq:register'/></iq>",
        )
        .expect("parse");
        assert!(!concerns(&plain));
        let carried = Element::parse(
            "<iq xmlns='jabber:client' type='get' id='a'><query xmlns='jabber:iq:register'/><preauth xmlns='urn:xmpp:pars:0' token='t'/></iq>",
        )
        .expect("parse");
        assert!(concerns(&carried));
        let invite = Invite {
            token: "t".into(),
            kind: crate::store::invites::InviteKind::Account,
            domain: "example.org".into(),
            creator: None,
            username: Some("juliet".into()),
            group: None,
            created: 0,
            expires: 1,
            uses_left: 1,
            admin: false,
        };
        let fields = fields_for(&invite);
        assert_eq!(
            fields.get_child("username", NS_REGISTER).map(Element::text),
            Some("juliet".into())
        );
    }
}
