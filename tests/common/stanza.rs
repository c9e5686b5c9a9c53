//! What answers should look like: checks shared by the tests.

use perch::xml::Element;

use super::ns::{NS_CLIENT, NS_STANZAS};

/// Checks that `reply` is the error answer to a stanza (RFC 6120 §8.3):
/// same kind, `type='error'`, same id, one defined condition of the given
/// error type.
pub fn assert_stanza_error(
    reply: &Element,
    name: &str,
    id: Option<&str>,
    condition: &str,
    error_type: &str,
) {
    assert!(
        reply.is(name, NS_CLIENT),
        "expected an error <{name}/>, got {reply}"
    );
    assert_eq!(reply.attr("type"), Some("error"), "{reply}");
    assert_eq!(reply.attr("id"), id, "{reply}");
    let error = reply
        .get_child("error", NS_CLIENT)
        .unwrap_or_else(|| panic!("no <error/> child: {reply}"));
    assert_eq!(error.attr("type"), Some(error_type), "{reply}");
    let conditions: Vec<&str> = error
        .children()
        .filter(|c| c.ns == NS_STANZAS && c.name != "text")
        .map(|c| c.name.as_ref())
        .collect();
    assert_eq!(conditions, [condition], "{reply}");
}

pub fn assert_result(reply: &Element, id: &str) {
    assert!(reply.is("iq", NS_CLIENT), "expected an iq, got {reply}");
    assert_eq!(reply.attr("type"), Some("result"), "{reply}");
    assert_eq!(reply.attr("id"), Some(id), "{reply}");
}

/// The defined condition of a stanza error (the first child of its
/// `<error/>` in the stanzas namespace other than `<text/>`), or a
/// description of what came instead, for `assert_eq!`.
pub fn error_condition(reply: &Element) -> String {
    reply
        .children()
        .find(|c| c.name == "error")
        .and_then(|e| {
            e.children()
                .find(|c| c.ns == NS_STANZAS && c.name != "text")
        })
        .map(|c| c.name.to_string())
        .unwrap_or_else(|| format!("no error in {reply}"))
}
