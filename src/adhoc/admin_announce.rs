//! XEP-0133 commands that talk to the users: an announcement to everyone
//! online, and the message of the day (set, edit, delete) that each user
//! gets at login (`motd.rs`).

use crate::forms::{FieldType, Form};

use super::admin_form::{self, field};
use super::command::{Access, AdhocCommand, BadPayload, CommandEnv, Note, Step};

pub const ANNOUNCE: &str = "http://jabber.org/protocol/admin#announce";
pub const SET_MOTD: &str = "http://jabber.org/protocol/admin#set-motd";
pub const EDIT_MOTD: &str = "http://jabber.org/protocol/admin#edit-motd";
pub const DELETE_MOTD: &str = "http://jabber.org/protocol/admin#delete-motd";

/// Longest announcement, in bytes: it is copied to every online resource.
pub const MAX_ANNOUNCEMENT_BYTES: usize = 4096;

fn checked_text(form: &Form, var: &str, what: &str, max: usize) -> Result<String, BadPayload> {
    admin_form::check_type(form)?;
    let text = admin_form::multiline(form, var);
    if text.is_empty() {
        return Err(BadPayload(format!("the {what} is empty")));
    }
    if text.len() > max {
        return Err(BadPayload(format!(
            "the {what} is {} bytes long; at most {max} are allowed",
            text.len()
        )));
    }
    Ok(text)
}

/// §4.23.
pub struct Announce;

impl AdhocCommand for Announce {
    fn node(&self) -> &'static str {
        ANNOUNCE
    }
    fn name(&self) -> &'static str {
        "Send an announcement to all online users"
    }
    fn access(&self) -> Access {
        Access::Admins
    }
    fn step(&self, submitted: &[Form], env: &dyn CommandEnv) -> Result<Step, BadPayload> {
        let Some(form) = submitted.first() else {
            let form = admin_form::ask(
                "Making an announcement",
                "Everyone online on this host gets this message now.",
            )
            .with_field(field(
                "announcement",
                FieldType::TextMulti,
                "The announcement",
            ));
            return Ok(Step::Ask { form, last: true });
        };
        let text = checked_text(form, "announcement", "announcement", MAX_ANNOUNCEMENT_BYTES)?;
        let reached = env.announce(&text);
        Ok(Step::note(Note::info(format!(
            "Sent to {reached} online resource{}.",
            if reached == 1 { "" } else { "s" }
        ))))
    }
}

/// The form of set-motd and edit-motd, holding `current` if there is one.
fn motd_form(title: &str, current: Option<String>) -> Form {
    let mut motd = field("motd", FieldType::TextMulti, "The message of the day");
    if let Some(text) = current {
        motd = motd.with_values(text.lines().map(str::to_string).collect::<Vec<_>>());
    }
    admin_form::ask(
        title,
        "Each user gets this message once when they log in, until it is deleted.",
    )
    .with_field(motd)
}

fn store_motd(submitted: &Form, env: &dyn CommandEnv) -> Result<Step, BadPayload> {
    let text = checked_text(
        submitted,
        "motd",
        "message of the day",
        crate::store::server_notices::MAX_MOTD_BYTES,
    )?;
    Ok(Step::note(match env.set_motd(Some(&text)) {
        Ok(()) => Note::info("The message of the day is set."),
        Err(why) => Note::error(why),
    }))
}

/// §4.24.
pub struct SetMotd;

impl AdhocCommand for SetMotd {
    fn node(&self) -> &'static str {
        SET_MOTD
    }
    fn name(&self) -> &'static str {
        "Set the message of the day"
    }
    fn access(&self) -> Access {
        Access::Admins
    }
    fn step(&self, submitted: &[Form], env: &dyn CommandEnv) -> Result<Step, BadPayload> {
        match submitted.first() {
            None => Ok(Step::Ask {
                form: motd_form("Setting the message of the day", None),
                last: true,
            }),
            Some(form) => store_motd(form, env),
        }
    }
}

/// §4.25.
pub struct EditMotd;

impl AdhocCommand for EditMotd {
    fn node(&self) -> &'static str {
        EDIT_MOTD
    }
    fn name(&self) -> &'static str {
        "Edit the message of the day"
    }
    fn access(&self) -> Access {
        Access::Admins
    }
    fn step(&self, submitted: &[Form], env: &dyn CommandEnv) -> Result<Step, BadPayload> {
        match submitted.first() {
            None => Ok(Step::Ask {
                form: motd_form("Editing the message of the day", env.motd()),
                last: true,
            }),
            Some(form) => store_motd(form, env),
        }
    }
}

/// §4.26: no form; it happens at once.
pub struct DeleteMotd;

impl AdhocCommand for DeleteMotd {
    fn node(&self) -> &'static str {
        DELETE_MOTD
    }
    fn name(&self) -> &'static str {
        "Delete the message of the day"
    }
    fn access(&self) -> Access {
        Access::Admins
    }
    fn step(&self, _: &[Form], env: &dyn CommandEnv) -> Result<Step, BadPayload> {
        let had = env.motd().is_some();
        Ok(Step::note(match env.set_motd(None) {
            Ok(()) if had => Note::info("The message of the day is deleted."),
            Ok(()) => Note::info("There was no message of the day."),
            Err(why) => Note::error(why),
        }))
    }
}
