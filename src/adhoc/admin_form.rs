//! The shapes XEP-0133 forms share: the `FORM_TYPE`, account addresses in
//! fields, and reading what the requester filled in.

use crate::forms::{Field, FieldType, Form, FormType};
use crate::jid::Jid;

use super::command::{BadPayload, NS_ADMIN};

/// Accounts one request may name (delete, disable, re-enable): a bound on
/// the work one stanza can cause.
pub const MAX_ACCOUNTS_PER_REQUEST: usize = 100;

/// A form to fill in, with the XEP-0133 `FORM_TYPE`.
pub fn ask(title: &str, instructions: &str) -> Form {
    Form::new(FormType::Form)
        .with_title(title)
        .with_instructions(instructions)
        .with_field(Field::form_type(NS_ADMIN))
}

/// A result form, with the XEP-0133 `FORM_TYPE`.
pub fn result() -> Form {
    Form::new(FormType::Result).with_field(Field::form_type(NS_ADMIN))
}

/// A required field.
pub fn field(var: &str, kind: FieldType, label: &str) -> Field {
    Field::new(var, kind).with_label(label).required()
}

/// The submitted form must be XEP-0133's (or name no type at all, as some
/// clients do).
pub fn check_type(form: &Form) -> Result<(), BadPayload> {
    match form.form_type() {
        None | Some(NS_ADMIN) => Ok(()),
        Some(other) => Err(BadPayload(format!(
            "the form is of type '{other}', not '{NS_ADMIN}'"
        ))),
    }
}

/// The single value of `var`, trimmed; an error naming `label` if it is
/// missing or empty.
pub fn required<'a>(form: &'a Form, var: &str, label: &str) -> Result<&'a str, BadPayload> {
    form.value(var)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| BadPayload(format!("{label} is required")))
}

/// The value of `var` as typed (passwords keep their spaces).
pub fn required_raw<'a>(form: &'a Form, var: &str, label: &str) -> Result<&'a str, BadPayload> {
    form.value(var)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| BadPayload(format!("{label} is required")))
}

/// `raw` as the bare JID of an account of `domain`.
pub fn account(raw: &str, domain: &str) -> Result<Jid, BadPayload> {
    let jid = Jid::parse(raw.trim())
        .map_err(|e| BadPayload(format!("'{raw}' is not an address: {e}")))?;
    if jid.local().is_none() || jid.resource().is_some() {
        return Err(BadPayload(format!(
            "'{raw}' is not an account address (user@{domain})"
        )));
    }
    if jid.domain() != domain {
        return Err(BadPayload(format!(
            "'{raw}' is not an account of {domain}; send the command to its own host"
        )));
    }
    Ok(jid)
}

/// Every value of the jid-multi field `var` as accounts of `domain`, at
/// least one, at most [`MAX_ACCOUNTS_PER_REQUEST`].
pub fn accounts(form: &Form, var: &str, domain: &str) -> Result<Vec<Jid>, BadPayload> {
    let values: Vec<&String> = form
        .field(var)
        .map(|f| f.values.iter().filter(|v| !v.trim().is_empty()).collect())
        .unwrap_or_default();
    if values.is_empty() {
        return Err(BadPayload("name at least one account".to_string()));
    }
    if values.len() > MAX_ACCOUNTS_PER_REQUEST {
        return Err(BadPayload(format!(
            "at most {MAX_ACCOUNTS_PER_REQUEST} accounts per request"
        )));
    }
    let mut out: Vec<Jid> = Vec::with_capacity(values.len());
    for raw in values {
        let jid = account(raw, domain)?;
        if !out.contains(&jid) {
            out.push(jid);
        }
    }
    Ok(out)
}

/// A text-multi field's lines as one text (XEP-0004: one value per line).
pub fn multiline(form: &Form, var: &str) -> String {
    form.field(var)
        .map(|f| f.values.join("\n"))
        .unwrap_or_default()
        .trim()
        .to_string()
}
