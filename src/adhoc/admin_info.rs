//! XEP-0133 commands that report: the online users (list and number) and
//! the number of registered users of the host.

use std::collections::BTreeSet;

use crate::forms::{Field, FieldType, Form};

use super::admin_form;
use super::command::{Access, AdhocCommand, BadPayload, CommandEnv, Note, Step};

pub const ONLINE_USERS_LIST: &str = "http://jabber.org/protocol/admin#get-online-users-list";
pub const ONLINE_USERS_NUM: &str = "http://jabber.org/protocol/admin#get-online-users-num";
pub const REGISTERED_USERS_NUM: &str = "http://jabber.org/protocol/admin#get-registered-users-num";

/// The most addresses one answer lists, whatever `max_items` says: the
/// answer is one stanza.
pub const MAX_LISTED: usize = 1000;

/// The `max_items` choices of §4.16 (and "none": up to [`MAX_LISTED`]).
const MAX_ITEMS_CHOICES: &[&str] = &["25", "50", "75", "100", "150", "200", "none"];

/// The online accounts' bare JIDs, sorted, each once.
fn online_accounts(env: &dyn CommandEnv) -> BTreeSet<String> {
    env.online_resources()
        .iter()
        .map(|jid| jid.bare_str().to_string())
        .collect()
}

/// §4.16.
pub struct OnlineUsersList;

impl AdhocCommand for OnlineUsersList {
    fn node(&self) -> &'static str {
        ONLINE_USERS_LIST
    }
    fn name(&self) -> &'static str {
        "List the online users"
    }
    fn access(&self) -> Access {
        Access::Admins
    }
    fn step(&self, submitted: &[Form], env: &dyn CommandEnv) -> Result<Step, BadPayload> {
        let Some(form) = submitted.first() else {
            let mut max = Field::new("max_items", FieldType::ListSingle)
                .with_label("Maximum number of items to show")
                .with_value("100");
            for choice in MAX_ITEMS_CHOICES {
                max = max.with_option(choice, choice);
            }
            let form = admin_form::ask(
                "Listing the online users",
                "How many users should the list show at most?",
            )
            .with_field(max);
            return Ok(Step::Ask { form, last: true });
        };
        admin_form::check_type(form)?;
        let limit = match form.value("max_items").map(str::trim) {
            None | Some("") | Some("none") => MAX_LISTED,
            Some(n) => n
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| BadPayload(format!("max_items '{n}' is not a number")))?
                .min(MAX_LISTED),
        };
        let online = online_accounts(env);
        let total = online.len();
        let listed: Vec<String> = online.into_iter().take(limit).collect();
        let mut notes = Vec::new();
        if listed.len() < total {
            notes.push(Note::info(format!(
                "Showing {} of {total} online users.",
                listed.len()
            )));
        }
        let result = admin_form::result().with_field(
            Field::new("onlineuserjids", FieldType::JidMulti)
                .with_label("The list of all online users")
                .with_values(listed),
        );
        Ok(Step::Done {
            notes,
            form: Some(result),
        })
    }
}

/// §4.15.
pub struct OnlineUsersNum;

impl AdhocCommand for OnlineUsersNum {
    fn node(&self) -> &'static str {
        ONLINE_USERS_NUM
    }
    fn name(&self) -> &'static str {
        "Count the online users"
    }
    fn access(&self) -> Access {
        Access::Admins
    }
    fn step(&self, _: &[Form], env: &dyn CommandEnv) -> Result<Step, BadPayload> {
        let result = admin_form::result().with_field(
            Field::new("onlineusersnum", FieldType::TextSingle)
                .with_label("The number of online users")
                .with_value(online_accounts(env).len().to_string()),
        );
        Ok(Step::Done {
            notes: Vec::new(),
            form: Some(result),
        })
    }
}

/// §4.11.
pub struct RegisteredUsersNum;

impl AdhocCommand for RegisteredUsersNum {
    fn node(&self) -> &'static str {
        REGISTERED_USERS_NUM
    }
    fn name(&self) -> &'static str {
        "Count the registered users"
    }
    fn access(&self) -> Access {
        Access::Admins
    }
    fn step(&self, _: &[Form], env: &dyn CommandEnv) -> Result<Step, BadPayload> {
        let count = match env.registered_count() {
            Ok(n) => n,
            Err(why) => return Ok(Step::note(Note::error(why))),
        };
        let result = admin_form::result().with_field(
            Field::new("registeredusersnum", FieldType::TextSingle)
                .with_label("The number of registered users")
                .with_value(count.to_string()),
        );
        Ok(Step::Done {
            notes: Vec::new(),
            form: Some(result),
        })
    }
}
