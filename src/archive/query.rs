//! XEP-0313 queries: the `<query xmlns='urn:xmpp:mam:2'/>` a client sends
//! (its data form, RSM `<set/>` and `<flip-page/>`), the form that
//! describes it, and the elements of the answer (`<result/>` messages and
//! the final `<fin/>`). Section numbers are those of XEP-0313 1.1.3.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::datetime::{format_utc, parse_utc};
use crate::forms::{Field, FieldType, Form, FormType};
use crate::jid::Jid;
use crate::stanza::{Condition, NS_DELAY, NS_FORWARD, StanzaError};
use crate::xml::Element;

use super::rsm;
use super::{NS_MAM, NS_RSM};

/// The longest `queryid` accepted: it is copied into every result.
pub const MAX_QUERY_ID_BYTES: usize = 256;

/// XEP-0122 data form validation, for the open list of `ids`.
const NS_XDATA_VALIDATE: &str = "http://jabber.org/protocol/xdata-validate";

/// A parsed query. Every filter narrows the result: a message is sent only
/// if it matches all of them (§4.1: "filters are used to request a subset
/// of the archived messages"), and the RSM page is cut from what matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// Copied into every `<result/>` (§4.2).
    pub query_id: Option<String>,
    /// §4.1.1: a bare JID matches the peer's bare JID, a full JID the
    /// peer's full JID; the account's own JID matches only messages it
    /// sent to itself; in a room archive, the sender.
    pub with: Option<Jid>,
    /// §4.1.2: messages stamped at or after `start` and at or before
    /// `end`. A `start` later than `end` is no error: nothing matches. A
    /// well-formed date before 1970 reads as the epoch (before every
    /// message).
    pub start: Option<SystemTime>,
    pub end: Option<SystemTime>,
    /// §4.1.3 (`#extended`): messages strictly after / before these ids.
    /// Unlike RSM's `<before/>`, `before-id` does not page backwards: the
    /// page is still the oldest matching messages unless the `<set/>` asks
    /// for the last page (§9).
    pub after_id: Option<String>,
    pub before_id: Option<String>,
    /// §4.1.3 (`#extended`): only these messages (empty: no such filter),
    /// without duplicates, in the order given; at most the page cap. They
    /// are still sent in chronological order and still filtered by the
    /// other fields. Each must exist in the archive, or the query fails
    /// with item-not-found (§4.1.3), even one the other filters exclude.
    pub ids: Vec<String>,
    /// The RSM page. An id in `<after/>`/`<before/>` that is not in the
    /// archive is item-not-found (§4.3.2), as are those of `after_id`,
    /// `before_id` and `ids` (§4.1.3).
    pub page: rsm::PageRequest,
    /// §4.3.4 (`#extended`): send the page's results newest first.
    /// "Flipping a page does not affect what results are returned in
    /// response to the query. It only affects the order in which they are
    /// transmitted": the page is chosen exactly as without the flag, and
    /// only the `<result/>` messages go out in reverse. The XEP says
    /// nothing of `<first/>` and `<last/>` in the `<fin/>`; since the page
    /// is the same, they stay the same as without the flag: `<first/>` is
    /// the id of the page's oldest message (sent last when flipped) and
    /// `<last/>` that of its newest, so a client pages further back with
    /// `<before>first</before>` whether it flips or not.
    pub flip_page: bool,
}

/// Reads a `<query xmlns='urn:xmpp:mam:2'/>` of an iq `set`. `default_max`
/// is the page size when the client gives none; `cap` bounds the page size
/// and the number of `ids`.
pub fn parse(query: &Element, default_max: usize, cap: usize) -> Result<Query, StanzaError> {
    if !query.is("query", NS_MAM) {
        return Err(bad_request("not a urn:xmpp:mam:2 query"));
    }
    // §6.1.3: 'node' is for pubsub archives (XEP-0442), which this server
    // does not have; ignoring it would answer with the wrong archive.
    if query.attr("node").is_some() {
        return Err(StanzaError::new(Condition::FeatureNotImplemented)
            .with_text("pubsub node archives (XEP-0442) are not supported"));
    }
    let query_id = match query.attr("queryid") {
        Some(id) if id.len() > MAX_QUERY_ID_BYTES => {
            return Err(bad_request(format!(
                "queryid is longer than {MAX_QUERY_ID_BYTES} bytes"
            )));
        }
        id => id.map(str::to_string),
    };
    let mut q = Query {
        query_id,
        with: None,
        start: None,
        end: None,
        after_id: None,
        before_id: None,
        ids: Vec::new(),
        page: rsm::parse(query.get_child("set", NS_RSM), default_max, cap)?,
        flip_page: query.get_child("flip-page", NS_MAM).is_some(),
    };
    if let Some(form) = Form::find_in(query) {
        let form = form.map_err(|e| bad_request(format!("the query form: {e}")))?;
        read_form(&mut q, &form, cap)?;
    }
    Ok(q)
}

fn read_form(q: &mut Query, form: &Form, cap: usize) -> Result<(), StanzaError> {
    if form.kind != FormType::Submit {
        return Err(bad_request(format!(
            "the query form is of type '{}', not 'submit'",
            form.kind.as_str()
        )));
    }
    // §4.1: "The hidden FORM_TYPE field MUST be set to this protocol's
    // namespace".
    match form.form_type() {
        Some(NS_MAM) => {}
        Some(_) => return Err(bad_request("the form's FORM_TYPE is not urn:xmpp:mam:2")),
        None => return Err(bad_request("the query form has no FORM_TYPE")),
    }
    for field in &form.fields {
        // Only 'fixed' fields go without a var; they carry no filter.
        let Some(var) = field.var.as_deref() else {
            continue;
        };
        match var {
            "FORM_TYPE" => {}
            "with" => {
                q.with = single(field)?
                    .map(|v| {
                        Jid::parse(v.trim_matches(is_xml_space)).map_err(|e| {
                            StanzaError::new(Condition::JidMalformed)
                                .with_text(format!("the 'with' field: {e}"))
                        })
                    })
                    .transpose()?;
            }
            "start" => q.start = single(field)?.map(|v| time("start", v)).transpose()?,
            "end" => q.end = single(field)?.map(|v| time("end", v)).transpose()?,
            "after-id" => q.after_id = single(field)?.map(|v| id("after-id", v)).transpose()?,
            "before-id" => q.before_id = single(field)?.map(|v| id("before-id", v)).transpose()?,
            "ids" => q.ids = ids(field, cap)?,
            // §4.1.5: "If a client includes a form field that the server
            // does not recognise, the server MUST respond with a
            // 'feature-not-implemented' error." That includes
            // 'include-groupchat' (§4.1.4), which we do not advertise.
            other => {
                return Err(StanzaError::new(Condition::FeatureNotImplemented)
                    .with_text(format!("the field '{}' is not supported", shown(other))));
            }
        }
    }
    Ok(())
}

/// The value of a single-valued field; `None` when it has no value or an
/// empty one: a client that fills in the form it fetched (§4.1.5) sends
/// the fields it left blank, which filter nothing.
fn single(field: &Field) -> Result<Option<&str>, StanzaError> {
    if field.values.len() > 1 {
        return Err(bad_request(format!(
            "the field '{}' has more than one value",
            shown(field.var.as_deref().unwrap_or(""))
        )));
    }
    Ok(field.value().filter(|v| !v.is_empty()))
}

/// A XEP-0082 DateTime (§4.1.2).
fn time(field: &str, value: &str) -> Result<SystemTime, StanzaError> {
    let value = value.trim_matches(is_xml_space);
    if let Some(t) = parse_utc(value) {
        return Ok(t);
    }
    // parse_utc refuses instants before 1970; a well-formed one (a client
    // asking for "everything since 1900") is before every stored message.
    let year = value
        .get(..4)
        .filter(|y| y.bytes().all(|b| b.is_ascii_digit()));
    if let (Some(year), Some(rest)) = (year, value.get(4..))
        && year < "1970"
        && parse_utc(&format!("2000{rest}")).is_some()
    {
        return Ok(UNIX_EPOCH);
    }
    Err(bad_request(format!(
        "the '{field}' field is not a XEP-0082 date-time such as 2010-06-07T00:00:00Z"
    )))
}

/// An archive id from the form, opaque: kept as sent.
fn id(field: &str, value: &str) -> Result<String, StanzaError> {
    rsm::checked_id(&format!("the '{field}' field"), value.to_string())
}

/// The `ids` field: non-empty values, duplicates dropped, at most `cap`.
/// Neither XEP-0313 nor XEP-0059 names an error for too many: bad-request.
fn ids(field: &Field, cap: usize) -> Result<Vec<String>, StanzaError> {
    let mut out: Vec<String> = Vec::new();
    for value in field.values.iter().filter(|v| !v.is_empty()) {
        let value = id("ids", value)?;
        if !out.contains(&value) {
            if out.len() >= cap {
                return Err(bad_request(format!(
                    "the 'ids' field has more than {cap} ids"
                )));
            }
            out.push(value);
        }
    }
    Ok(out)
}

/// Text quoted from a client in an error, kept short.
fn shown(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn bad_request(text: impl Into<String>) -> StanzaError {
    StanzaError::new(Condition::BadRequest).with_text(text)
}

/// The payload of the answer to `<iq type='get'><query
/// xmlns='urn:xmpp:mam:2'/></iq>` (§4.1.5): the query with the form of
/// the fields this server supports, with the types of §4.1.5's example.
/// No field is marked required (§4.1: servers MUST NOT), and `ids` carries
/// the XEP-0122 `<validate/>` with `<open/>` the XEP requires instead of a
/// list of options.
pub fn form() -> Element {
    let mut x = Form::new(FormType::Form)
        .with_field(Field::form_type(NS_MAM))
        .with_field(Field::new("with", FieldType::JidSingle))
        .with_field(Field::new("start", FieldType::TextSingle))
        .with_field(Field::new("end", FieldType::TextSingle))
        .with_field(Field::new("before-id", FieldType::TextSingle))
        .with_field(Field::new("after-id", FieldType::TextSingle))
        .to_element();
    let validate = Element::new("validate", NS_XDATA_VALIDATE)
        .with_attr("datatype", "xs:string")
        .with_child(Element::new("open", NS_XDATA_VALIDATE));
    x.push_child(
        Field::new("ids", FieldType::ListMulti)
            .to_element()
            .with_child(validate),
    );
    Element::new("query", NS_MAM).with_child(x)
}

/// The `<fin/>` of the iq result that ends a query (§4, §4.3.2):
/// `complete='true'` only when this page reaches the end of the result
/// set (omitted otherwise, as the XEP allows); no `stable` attribute (the
/// archive's results are stable).
pub fn fin(complete: bool, set: &rsm::ResultSet) -> Element {
    let mut fin = Element::new("fin", NS_MAM);
    if complete {
        fin.set_attr("complete", "true");
    }
    fin.with_child(set.to_element())
}

/// One result (§4.2): `<result queryid? id><forwarded><delay
/// stamp/>message</forwarded></result>`, for the caller to put in a
/// `<message to='…'>` addressed to the querying resource. The stamp is
/// given to the second: XEP-0082 allows fractions, but clients that resume
/// from a stamp then ask for a little too much, never too little.
pub fn result_wrapper(
    query_id: Option<&str>,
    id: &str,
    stamp: SystemTime,
    message: Element,
) -> Element {
    let mut result = Element::new("result", NS_MAM);
    if let Some(query_id) = query_id {
        result.set_attr("queryid", query_id);
    }
    result.set_attr("id", id);
    let delay = Element::new("delay", NS_DELAY).with_attr("stamp", format_utc(stamp, false));
    result.with_child(
        Element::new("forwarded", NS_FORWARD)
            .with_child(delay)
            .with_child(message),
    )
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
