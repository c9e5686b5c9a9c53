//! Invitations created from a client (XEP-0401 account invites and
//! XEP-0379 contact invites, run as XEP-0050 commands under the node
//! names Prosody's invite commands use, which Conversations and Gajim
//! know): an administrator on a phone invites a relative without a
//! terminal. The result form carries the `xmpp:` URI and the landing
//! page's URL, as `perch invite` prints them.
//!
//! Both are for administrators: an invite creates an account, and who
//! gets one on a family server is the administrator's call.

use super::command::{Access, AdhocCommand, BadPayload, CommandEnv, Step, Work};
use crate::forms::Form;

/// An invite that creates one account (XEP-0401).
pub const CREATE_ACCOUNT: &str = "urn:xmpp:invite#create-account";
/// An invite that creates one account whose owner becomes the
/// requester's contact, subscribed both ways (XEP-0379, XEP-0445).
pub const INVITE_CONTACT: &str = "urn:xmpp:invite#invite";

pub struct CreateAccountInvite;

impl AdhocCommand for CreateAccountInvite {
    fn node(&self) -> &'static str {
        CREATE_ACCOUNT
    }
    fn name(&self) -> &'static str {
        "Create an account invitation"
    }
    fn access(&self) -> Access {
        Access::Admins
    }
    fn step(&self, _submitted: &[Form], _env: &dyn CommandEnv) -> Result<Step, BadPayload> {
        // Nothing to ask: one use, the default lifetime, like `perch invite`.
        Ok(Step::Work(Work::CreateInvite { contact: false }))
    }
}

pub struct ContactInvite;

impl AdhocCommand for ContactInvite {
    fn node(&self) -> &'static str {
        INVITE_CONTACT
    }
    fn name(&self) -> &'static str {
        "Invite someone to join and become your contact"
    }
    fn access(&self) -> Access {
        Access::Admins
    }
    fn step(&self, _submitted: &[Form], _env: &dyn CommandEnv) -> Result<Step, BadPayload> {
        Ok(Step::Work(Work::CreateInvite { contact: true }))
    }
}
