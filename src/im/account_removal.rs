//! Deleting an account on a running server, whoever asks (the user with
//! XEP-0077 `<remove/>`, the operator with `perch user del`): one place,
//! so that everything that must happen when an account goes happens.

use crate::jid::Jid;
use crate::server::Server;
use crate::store::StoreError;
use crate::stream::{StreamCondition, StreamError};

/// Deletes the account with all its data and leaves a tombstone (one
/// transaction). Its sessions stay up so the caller can answer first;
/// then call [`disconnect_all`].
///
/// What else must happen when an account goes belongs here, e.g. telling
/// the contacts in its roster that their subscriptions ended (XEP-0077
/// §3.2, RFC 6121 §3.3): read what is needed before the delete, notify
/// after it.
pub async fn remove(server: &Server, account: &Jid) -> Result<(), StoreError> {
    server.store.accounts().delete(account.as_str()).await
}

/// Ends every session of `account` with a `not-authorized` stream error,
/// after whatever is already queued for them (XEP-0077 §3.2).
pub fn disconnect_all(server: &Server, account: &Jid, why: &str) {
    for session in server.sessions_of(account) {
        session
            .outbox
            .close_with(StreamError::with_text(StreamCondition::NotAuthorized, why));
    }
}
