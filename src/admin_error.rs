//! What an administration request can fail with (`crate::admin`), apart
//! from the requests themselves so that the code serving them (accounts,
//! invitations) can use it without depending on the admin socket's
//! dispatch, and so on the whole server.

use std::fmt;

use crate::jid::Jid;
use crate::store::StoreError;

#[derive(Debug)]
pub enum AdminError {
    BadJid(String, String),
    UnknownHost(String),
    BadPassword(&'static str),
    BadRoom(String, String),
    /// The address belonged to a deleted account (the store's tombstone),
    /// with the way to give it out anyway.
    Tombstoned(String),
    Store(StoreError),
    Protocol(String),
    /// The running server failed the request; its message as it gave it.
    Remote(String),
    /// The running server refused the request as invalid (bad address,
    /// unknown host, unusable password).
    RemoteInvalid(String),
    /// The request is incomplete or contradictory (what to give instead).
    BadRequest(String),
}

impl AdminError {
    /// Whether the request itself was at fault (as opposed to the server).
    pub fn is_invalid_request(&self) -> bool {
        matches!(
            self,
            AdminError::BadJid(..)
                | AdminError::BadRoom(..)
                | AdminError::UnknownHost(_)
                | AdminError::BadPassword(_)
                | AdminError::RemoteInvalid(_)
                | AdminError::BadRequest(_)
        )
    }
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
            AdminError::BadRoom(jid, why) => write!(f, "'{jid}' is not a room address: {why}"),
            AdminError::Tombstoned(jid) => write!(
                f,
                "{jid} belonged to a deleted account and cannot be registered again (its contacts would take the newcomer for the old owner); to give it out anyway: perch user add --reuse-deleted {jid}"
            ),
            AdminError::Store(e) => write!(f, "{e}"),
            AdminError::Protocol(why) => write!(f, "admin socket: {why}"),
            AdminError::Remote(msg) | AdminError::RemoteInvalid(msg) => f.write_str(msg),
            AdminError::BadRequest(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for AdminError {}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Tombstoned(jid) => AdminError::Tombstoned(jid),
            e => AdminError::Store(e),
        }
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
