//! Ad-hoc commands (XEP-0050) on each user host's own domain, and the
//! server administration commands of XEP-0133 among them.
//!
//! - `engine.rs`: the execution rules (actions, sessions and their
//!   limits, the errors of §4.6), sans-I/O;
//! - `command.rs`: what a command is ([`AdhocCommand`]) and what it may do
//!   ([`CommandEnv`]);
//! - `admin_accounts.rs`, `admin_info.rs`, `admin_announce.rs`: the
//!   XEP-0133 commands; `admin_form.rs`: the forms they share;
//! - `invites.rs`: invitations (XEP-0401, XEP-0379) made from a client;
//! - `motd.rs`: the message of the day at login, and announcements.
//!
//! The glue is `im::commands`: discovery, the iqs, and [`CommandEnv`] on
//! the running server (this folder does not depend on `im`). The
//! operator's side (`perch announce`, `perch motd`, `perch user
//! disable`) is `admin_notices.rs`.
//!
//! # Adding a command
//!
//! Write a type implementing [`AdhocCommand`] (its node, its name, who may
//! run it with [`Access`], and `step`: from the forms submitted so far to
//! the next form, the result, or slow [`Work`]), and add it to
//! [`COMMANDS`]. Discovery lists it to those who may run it, and the engine
//! runs its sessions. If it needs something the server has that
//! [`CommandEnv`] does not offer yet, add a method there and implement it
//! in `im/commands.rs` (and in the tests' environment, `engine_tests.rs`,
//! and the fuzz target's).
//!
//! # Limits
//!
//! Sessions live in memory (a restart ends them): at most
//! [`engine::MAX_SESSIONS_PER_ACCOUNT`] per account (a new one ends the
//! oldest), [`engine::MAX_SESSIONS`] in all, each ending after
//! [`engine::SESSION_IDLE_LIFETIME`] without a request. A request names at
//! most [`admin_form::MAX_ACCOUNTS_PER_REQUEST`] accounts.

pub mod admin_accounts;
pub mod admin_announce;
pub mod admin_form;
pub mod admin_info;
pub mod command;
pub mod engine;
pub mod invites;
pub mod motd;

pub use command::{Access, AdhocCommand, BadPayload, CommandEnv, NS_COMMANDS, Note, Step, Work};

/// Every command, in the order discovery lists them.
pub static COMMANDS: &[&dyn AdhocCommand] = &[
    &admin_accounts::AddUser,
    &admin_accounts::DeleteUser,
    &admin_accounts::DisableUser,
    &admin_accounts::ReenableUser,
    &admin_accounts::ChangePassword,
    &admin_info::OnlineUsersList,
    &admin_info::OnlineUsersNum,
    &admin_info::RegisteredUsersNum,
    &admin_announce::Announce,
    &admin_announce::SetMotd,
    &admin_announce::EditMotd,
    &admin_announce::DeleteMotd,
    &invites::CreateAccountInvite,
    &invites::ContactInvite,
];

/// The server's ad-hoc state: the command sessions.
#[derive(Default)]
pub struct Adhoc {
    pub engine: engine::Engine,
}
