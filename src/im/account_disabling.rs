//! Disabling an account, whoever asks: an administrator's XEP-0133
//! `disable-user` command or `perch user disable`. The account stays with
//! everything stored for it, but may not log in (the login answers
//! `account-disabled`, `net::connection_login`), and its sessions end with
//! a `not-authorized` stream error once the flag is on disk.

use crate::env::Env;
use crate::jid::Jid;
use crate::store::server_notices;

/// The stream error text of the sessions of a disabled account.
pub const DISABLED_TEXT: &str = "this account was disabled by an administrator";

/// Disables (ending its sessions once that is on disk) or re-enables
/// `account`, inside a section.
pub fn set_disabled(env: &Env, account: &Jid, disabled: bool) {
    env.persist(server_notices::set_disabled_op(account.as_str(), disabled));
    if disabled {
        let account = account.clone();
        env.after_durable(Box::new(move |env| {
            super::account_removal::disconnect_all(env, &account, DISABLED_TEXT);
        }));
    }
}
