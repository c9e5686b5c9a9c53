//! What an ad-hoc command is to the engine: a node, a name, who may run
//! it, and a function from the forms submitted so far to the next step.
//! Commands do their work through a [`CommandEnv`], which the server
//! implements over its store and sessions (`im::commands`) and tests
//! implement in memory.

use std::fmt;

use crate::forms::Form;
use crate::jid::Jid;

/// The XEP-0050 namespace, also the disco node listing the commands.
pub const NS_COMMANDS: &str = "http://jabber.org/protocol/commands";
/// The `FORM_TYPE` of every XEP-0133 form.
pub const NS_ADMIN: &str = "http://jabber.org/protocol/admin";

/// Who may see and run a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The accounts listed in `admins` (config).
    Admins,
    /// Every account of the host the command is addressed to.
    LocalUsers,
}

/// A `<note/>` (XEP-0050 §3.4) shown with a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub kind: NoteKind,
    pub text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteKind {
    Info,
    Warn,
    Error,
}

impl NoteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoteKind::Info => "info",
            NoteKind::Warn => "warn",
            NoteKind::Error => "error",
        }
    }
}

impl Note {
    pub fn info(text: impl Into<String>) -> Note {
        Note {
            kind: NoteKind::Info,
            text: text.into(),
        }
    }

    pub fn error(text: impl Into<String>) -> Note {
        Note {
            kind: NoteKind::Error,
            text: text.into(),
        }
    }
}

/// What a command does next.
#[derive(Debug)]
pub enum Step {
    /// Asks the requester to fill in `form`; `last` says whether submitting
    /// it ends the command (`complete`) or leads to another stage (`next`).
    Ask { form: Form, last: bool },
    /// The command is over: what to tell, and a result form if any.
    Done {
        notes: Vec<Note>,
        form: Option<Form>,
    },
    /// The command is over once `work`, which must not run on the event
    /// loop (a password hash), is done.
    Work(Work),
}

impl Step {
    /// Done with one note.
    pub fn note(note: Note) -> Step {
        Step::Done {
            notes: vec![note],
            form: None,
        }
    }
}

/// Work a command hands to its caller because it cannot be done on the
/// spot: setting a password costs PBKDF2 runs; an invite is stored before
/// its link is given out, and is made by the invitation code, which this
/// folder does not depend on.
#[derive(Debug, PartialEq, Eq)]
pub enum Work {
    CreateAccount {
        jid: Jid,
        password: String,
    },
    SetPassword {
        jid: Jid,
        password: String,
    },
    /// An invite on the command's host; with `contact`, the newcomer
    /// becomes the requester's contact.
    CreateInvite {
        contact: bool,
    },
}

impl Work {
    /// The note once the work succeeded.
    pub fn done_note(&self) -> Note {
        match self {
            Work::CreateAccount { jid, .. } => Note::info(format!("Created {jid}.")),
            Work::SetPassword { jid, .. } => Note::info(format!("Changed the password of {jid}.")),
            Work::CreateInvite { .. } => Note::info(
                "Share the link (or its QR code on the web page) with the person you invite; it works once.",
            ),
        }
    }
}

/// A submitted form the command cannot take; the session stays open so
/// that the requester can correct it (XEP-0050 `bad-payload`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadPayload(pub String);

impl fmt::Display for BadPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What commands may ask and do. Failures are one line for a note.
pub trait CommandEnv {
    /// The host the command was sent to.
    fn domain(&self) -> &str;
    fn account_exists(&self, jid: &Jid) -> bool;
    fn is_disabled(&self, jid: &Jid) -> bool;
    /// The full JIDs of the bound sessions of the host's accounts.
    fn online_resources(&self) -> Vec<Jid>;
    fn registered_count(&self) -> Result<usize, String>;
    /// Deletes an account and everything stored for it; its sessions end.
    fn delete_account(&self, jid: &Jid) -> Result<(), String>;
    /// Disables (its sessions end, it cannot log in) or re-enables one.
    fn set_disabled(&self, jid: &Jid, disabled: bool) -> Result<(), String>;
    /// Sends `text` to every online resource of the host; returns how many.
    fn announce(&self, text: &str) -> usize;
    fn motd(&self) -> Option<String>;
    /// Sets (`Some`) or removes (`None`) the host's message of the day.
    fn set_motd(&self, text: Option<&str>) -> Result<(), String>;
}

/// One ad-hoc command. To add one, implement this and list it in
/// [`super::COMMANDS`].
pub trait AdhocCommand: Sync {
    /// Its node (unique on the host).
    fn node(&self) -> &'static str;
    /// Its name in the list of commands.
    fn name(&self) -> &'static str;
    fn access(&self) -> Access;
    /// The next step after the forms `submitted` so far (none at the
    /// start), each the answer to the form of the step before.
    fn step(&self, submitted: &[Form], env: &dyn CommandEnv) -> Result<Step, BadPayload>;
}
