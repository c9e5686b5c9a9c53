//! XEP-0133 account commands: add, delete, disable, re-enable, and change
//! the password of accounts of the host the command is sent to.

use crate::forms::{FieldType, Form};
use crate::jid::Jid;

use super::admin_form::{self, field};
use super::command::{Access, AdhocCommand, BadPayload, CommandEnv, Note, Step, Work};

pub const ADD_USER: &str = "http://jabber.org/protocol/admin#add-user";
pub const DELETE_USER: &str = "http://jabber.org/protocol/admin#delete-user";
pub const DISABLE_USER: &str = "http://jabber.org/protocol/admin#disable-user";
pub const REENABLE_USER: &str = "http://jabber.org/protocol/admin#reenable-user";
pub const CHANGE_PASSWORD: &str = "http://jabber.org/protocol/admin#change-user-password";

fn password_rules(password: &str) -> Result<(), BadPayload> {
    match crate::sasl::password_problem(password) {
        Some(why) => Err(BadPayload(format!("unusable password: {why}"))),
        None => Ok(()),
    }
}

/// §4.1.
pub struct AddUser;

impl AdhocCommand for AddUser {
    fn node(&self) -> &'static str {
        ADD_USER
    }
    fn name(&self) -> &'static str {
        "Add a user"
    }
    fn access(&self) -> Access {
        Access::Admins
    }
    fn step(&self, submitted: &[Form], env: &dyn CommandEnv) -> Result<Step, BadPayload> {
        let Some(form) = submitted.first() else {
            let form = admin_form::ask("Adding a user", "Choose the address and password.")
                .with_field(field("accountjid", FieldType::JidSingle, "The address"))
                .with_field(field("password", FieldType::TextPrivate, "The password"))
                .with_field(field(
                    "password-verify",
                    FieldType::TextPrivate,
                    "The password again",
                ));
            return Ok(Step::Ask { form, last: true });
        };
        admin_form::check_type(form)?;
        let jid = admin_form::account(
            admin_form::required(form, "accountjid", "the address")?,
            env.domain(),
        )?;
        let password = admin_form::required_raw(form, "password", "the password")?;
        if let Some(again) = form.value("password-verify")
            && again != password
        {
            return Err(BadPayload("the two passwords differ".to_string()));
        }
        password_rules(password)?;
        if env.account_exists(&jid) {
            return Ok(Step::note(Note::error(format!("{jid} exists already."))));
        }
        Ok(Step::Work(Work::CreateAccount {
            jid,
            password: password.to_string(),
        }))
    }
}

/// §4.7.
pub struct ChangePassword;

impl AdhocCommand for ChangePassword {
    fn node(&self) -> &'static str {
        CHANGE_PASSWORD
    }
    fn name(&self) -> &'static str {
        "Change a user's password"
    }
    fn access(&self) -> Access {
        Access::Admins
    }
    fn step(&self, submitted: &[Form], env: &dyn CommandEnv) -> Result<Step, BadPayload> {
        let Some(form) = submitted.first() else {
            let form = admin_form::ask(
                "Changing a user's password",
                "Name the account and its new password.",
            )
            .with_field(field("accountjid", FieldType::JidSingle, "The address"))
            .with_field(field(
                "password",
                FieldType::TextPrivate,
                "The new password",
            ));
            return Ok(Step::Ask { form, last: true });
        };
        admin_form::check_type(form)?;
        let jid = admin_form::account(
            admin_form::required(form, "accountjid", "the address")?,
            env.domain(),
        )?;
        let password = admin_form::required_raw(form, "password", "the new password")?;
        password_rules(password)?;
        if !env.account_exists(&jid) {
            return Ok(Step::note(Note::error(format!(
                "There is no account {jid}."
            ))));
        }
        Ok(Step::Work(Work::SetPassword {
            jid,
            password: password.to_string(),
        }))
    }
}

/// What a command does to each account it names.
#[derive(Clone, Copy)]
enum Change {
    Delete,
    Disable,
    Reenable,
}

impl Change {
    fn apply(self, env: &dyn CommandEnv, jid: &Jid) -> Result<(), String> {
        match self {
            Change::Delete => env.delete_account(jid),
            Change::Disable => env.set_disabled(jid, true),
            Change::Reenable => env.set_disabled(jid, false),
        }
    }

    fn done(self) -> &'static str {
        match self {
            Change::Delete => "Deleted",
            Change::Disable => "Disabled",
            Change::Reenable => "Re-enabled",
        }
    }
}

/// Asks for accounts, then applies `change` to each; one note for those
/// done and one per failure.
fn for_accounts(
    change: Change,
    title: &str,
    submitted: &[Form],
    env: &dyn CommandEnv,
) -> Result<Step, BadPayload> {
    let Some(form) = submitted.first() else {
        let form = admin_form::ask(title, "Name the accounts, one per line.").with_field(field(
            "accountjids",
            FieldType::JidMulti,
            "The addresses",
        ));
        return Ok(Step::Ask { form, last: true });
    };
    admin_form::check_type(form)?;
    let jids = admin_form::accounts(form, "accountjids", env.domain())?;
    let mut done = Vec::new();
    let mut notes = Vec::new();
    for jid in &jids {
        if !env.account_exists(jid) {
            notes.push(Note::error(format!("There is no account {jid}.")));
            continue;
        }
        match change.apply(env, jid) {
            Ok(()) => done.push(jid.to_string()),
            Err(why) => notes.push(Note::error(format!("{jid}: {why}"))),
        }
    }
    if !done.is_empty() {
        notes.insert(
            0,
            Note::info(format!("{} {}.", change.done(), done.join(", "))),
        );
    }
    Ok(Step::Done { notes, form: None })
}

/// §4.2.
pub struct DeleteUser;

impl AdhocCommand for DeleteUser {
    fn node(&self) -> &'static str {
        DELETE_USER
    }
    fn name(&self) -> &'static str {
        "Delete users"
    }
    fn access(&self) -> Access {
        Access::Admins
    }
    fn step(&self, submitted: &[Form], env: &dyn CommandEnv) -> Result<Step, BadPayload> {
        for_accounts(Change::Delete, "Deleting users", submitted, env)
    }
}

/// §4.3.
pub struct DisableUser;

impl AdhocCommand for DisableUser {
    fn node(&self) -> &'static str {
        DISABLE_USER
    }
    fn name(&self) -> &'static str {
        "Disable users"
    }
    fn access(&self) -> Access {
        Access::Admins
    }
    fn step(&self, submitted: &[Form], env: &dyn CommandEnv) -> Result<Step, BadPayload> {
        for_accounts(Change::Disable, "Disabling users", submitted, env)
    }
}

/// §4.4.
pub struct ReenableUser;

impl AdhocCommand for ReenableUser {
    fn node(&self) -> &'static str {
        REENABLE_USER
    }
    fn name(&self) -> &'static str {
        "Re-enable users"
    }
    fn access(&self) -> Access {
        Access::Admins
    }
    fn step(&self, submitted: &[Form], env: &dyn CommandEnv) -> Result<Step, BadPayload> {
        for_accounts(Change::Reenable, "Re-enabling users", submitted, env)
    }
}
