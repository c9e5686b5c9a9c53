//! XEP-0059 result set management as message archive queries use it
//! (XEP-0313 §4.3): the page a query asks for, and the `<set/>` that
//! describes the page sent back.
//!
//! Paging by index (XEP-0059 §2.6) is refused: an archive page is one range
//! scan from an id's stamp, and finding the n-th message would mean
//! counting from the start of the archive.

use crate::stanza::{Condition, StanzaError};
use crate::xml::Element;

use super::NS_RSM;

/// The longest id accepted in `<after/>` or `<before/>` (and in the query
/// form's id fields). Archive ids are 24 characters; anything much longer
/// names no message, and the bound keeps what one query holds small.
pub const MAX_ID_BYTES: usize = 256;

/// Characters accepted in `<max/>`: any 19-digit number fits in a `u64`,
/// and no sensible page size needs more.
const MAX_DIGITS: usize = 19;

/// Where the requested page lies in the result set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Position {
    /// The start of the result set (neither `<after/>` nor `<before/>`).
    First,
    /// The items right after this id (XEP-0059 §2.2).
    After(String),
    /// The items right before this id (§2.3); `None`, an empty
    /// `<before/>`, asks for the last page (§2.5). Either way the page is
    /// still sent oldest first (XEP-0313 §4.3.3).
    Before(Option<String>),
}

/// The page a query asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// The most items to send, already capped; 0 asks for the count
    /// alone (XEP-0059 §2.7).
    pub max: usize,
    pub position: Position,
}

/// Reads the `<set xmlns='http://jabber.org/protocol/rsm'/>` of a query
/// (`None` when there is none: the first page of `default_max` items).
/// A `max` above `cap` is lowered to it, not refused (XEP-0313 §4.3.1: the
/// server may limit what it sends and say so in the `<set/>` it returns).
pub fn parse(
    set: Option<&Element>,
    default_max: usize,
    cap: usize,
) -> Result<PageRequest, StanzaError> {
    let default = PageRequest {
        max: default_max.min(cap),
        position: Position::First,
    };
    let Some(set) = set else {
        return Ok(default);
    };
    if !set.is("set", NS_RSM) {
        return Err(bad_request("expected a <set/> in the RSM namespace"));
    }
    let (mut max, mut after, mut before) = (None, None, None);
    for child in set.children().filter(|c| c.ns == NS_RSM) {
        let slot = match child.name.as_ref() {
            "max" => &mut max,
            "after" => &mut after,
            "before" => &mut before,
            // XEP-0059 §2.6 lets a server answer feature-not-implemented;
            // an index of 0 is refused too, since the answer would have to
            // echo it in <first index='0'/>, which we never send.
            "index" => {
                return Err(StanzaError::new(Condition::FeatureNotImplemented)
                    .with_text("paging by <index/> is not supported: use <after/> or <before/>"));
            }
            // <first/>, <last/> and <count/> describe an answer; in a
            // request they mean nothing.
            _ => continue,
        };
        if slot.replace(child).is_some() {
            return Err(bad_request(format!("more than one <{}/>", child.name)));
        }
    }
    let max = match max {
        Some(el) => parse_max(&el.text())?.min(cap),
        None => default.max,
    };
    let position = match (after, before) {
        (Some(_), Some(_)) => {
            // XEP-0313 §4.3.2: RSM leaves the two together undefined;
            // before-id and after-id in the form express a range.
            return Err(bad_request(
                "<after/> and <before/> together: use the after-id and before-id fields for a range",
            ));
        }
        (Some(after), None) => {
            let id = after.text();
            if id.is_empty() {
                return Err(bad_request("<after/> is empty"));
            }
            Position::After(checked_id("<after/>", id)?)
        }
        (None, Some(before)) => {
            let id = before.text();
            if id.trim_matches(is_xml_space).is_empty() {
                Position::Before(None)
            } else {
                Position::Before(Some(checked_id("<before/>", id)?))
            }
        }
        (None, None) => Position::First,
    };
    Ok(PageRequest { max, position })
}

/// `<max/>`: a non-negative xs:int, as text. Values too large for `usize`
/// saturate (and are capped by the caller anyway).
fn parse_max(text: &str) -> Result<usize, StanzaError> {
    let t = text.trim_matches(is_xml_space);
    let (negative, digits) = match (t.strip_prefix('-'), t.strip_prefix('+')) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        (None, None) => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_request("<max/> is not a non-negative integer"));
    }
    // "-0" is xs:int zero.
    if negative && digits.bytes().any(|b| b != b'0') {
        return Err(bad_request("<max/> is negative"));
    }
    if digits.len() > MAX_DIGITS {
        return Err(bad_request(format!(
            "<max/> has more than {MAX_DIGITS} digits"
        )));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| bad_request("<max/> is not a non-negative integer"))?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// An id as the client gave it (ids are opaque: nothing is trimmed),
/// refused when longer than [`MAX_ID_BYTES`].
pub(super) fn checked_id(what: &str, id: String) -> Result<String, StanzaError> {
    if id.len() > MAX_ID_BYTES {
        return Err(bad_request(format!(
            "{what} is longer than {MAX_ID_BYTES} bytes"
        )));
    }
    Ok(id)
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn bad_request(text: impl Into<String>) -> StanzaError {
    StanzaError::new(Condition::BadRequest).with_text(text)
}

/// The `<set/>` describing a page sent (XEP-0059 §2.2).
///
/// `first` and `last` are the ids of the oldest and newest item of the
/// page (the same id for a page of one) and both absent for an empty page;
/// `count` is the size of the whole result set when known. `<first/>`
/// carries no `index`: XEP-0313 §4.3.2 makes it optional and finding it
/// would mean counting from the start of the archive.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResultSet {
    pub first: Option<String>,
    pub last: Option<String>,
    pub count: Option<u64>,
}

impl ResultSet {
    /// `<set><first/><last/><count/></set>` in the order of XEP-0059's
    /// examples, each part only when present.
    pub fn to_element(&self) -> Element {
        let mut set = Element::new("set", NS_RSM);
        if let Some(first) = &self.first {
            set.push_child(Element::new("first", NS_RSM).with_text(first.as_str()));
        }
        if let Some(last) = &self.last {
            set.push_child(Element::new("last", NS_RSM).with_text(last.as_str()));
        }
        if let Some(count) = self.count {
            set.push_child(Element::new("count", NS_RSM).with_text(count.to_string()));
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: usize = 50;
    const CAP: usize = 250;

    fn el(xml: &str) -> Element {
        Element::parse(xml).expect("xml")
    }

    fn set(inner: &str) -> Element {
        el(&format!(
            "<set xmlns='http://jabber.org/protocol/rsm'>{inner}</set>"
        ))
    }

    fn page(inner: &str) -> Result<PageRequest, StanzaError> {
        parse(Some(&set(inner)), DEFAULT, CAP)
    }

    fn refused(inner: &str) -> (Condition, String) {
        match page(inner) {
            Ok(p) => panic!("{inner} accepted as {p:?}"),
            Err(e) => (e.condition, e.text.unwrap_or_default()),
        }
    }

    #[test]
    fn no_set_is_the_first_default_page() {
        assert_eq!(
            parse(None, DEFAULT, CAP),
            Ok(PageRequest {
                max: DEFAULT,
                position: Position::First
            })
        );
        // A default above the cap is capped too.
        assert_eq!(parse(None, 500, CAP).map(|p| p.max), Ok(CAP));
        assert_eq!(page("").map(|p| p.max), Ok(DEFAULT));
    }

    #[test]
    fn max_values() {
        for (text, max) in [
            ("10", 10),
            ("0", 0),
            (" 7\n", 7),
            ("+3", 3),
            ("-0", 0),
            ("0010", 10),
            ("250", 250),
            ("251", CAP),
            ("1000000", CAP),
            ("9999999999999999999", CAP),
        ] {
            assert_eq!(
                page(&format!("<max>{text}</max>")).map(|p| p.max),
                Ok(max),
                "{text:?}"
            );
        }
    }

    #[test]
    fn bad_max_values_say_why() {
        for (text, why) in [
            ("-1", "negative"),
            ("-12", "negative"),
            ("-99999999999999999999", "negative"),
            ("", "not a non-negative integer"),
            ("ten", "not a non-negative integer"),
            ("1.5", "not a non-negative integer"),
            ("1e3", "not a non-negative integer"),
            ("-", "not a non-negative integer"),
            ("+", "not a non-negative integer"),
            ("0x10", "not a non-negative integer"),
            ("99999999999999999999", "more than 19 digits"),
        ] {
            let (condition, text) = refused(&format!("<max>{text}</max>"));
            assert_eq!(condition, Condition::BadRequest);
            assert!(text.contains(why), "{text}");
        }
        let long = "1".repeat(10_000);
        let (condition, text) = refused(&format!("<max>{long}</max>"));
        assert_eq!(condition, Condition::BadRequest);
        assert!(text.contains("digits"), "{text}");
    }

    #[test]
    fn positions() {
        assert_eq!(
            page("<max>10</max><after>09af3-cc343-b409f</after>"),
            Ok(PageRequest {
                max: 10,
                position: Position::After("09af3-cc343-b409f".into())
            })
        );
        assert_eq!(
            page("<before>peter@pixyland.org</before>").map(|p| p.position),
            Ok(Position::Before(Some("peter@pixyland.org".into())))
        );
        // XEP-0059 §2.5, XEP-0313 §4.3.3: an empty <before/> is the last
        // page.
        for empty in ["<before/>", "<before></before>", "<before> \n </before>"] {
            assert_eq!(
                page(&format!("<max>10</max>{empty}")),
                Ok(PageRequest {
                    max: 10,
                    position: Position::Before(None)
                }),
                "{empty}"
            );
        }
        // Count only (XEP-0059 §2.7), from the end.
        assert_eq!(
            page("<max>0</max><before/>"),
            Ok(PageRequest {
                max: 0,
                position: Position::Before(None)
            })
        );
        // Ids are opaque: kept as sent.
        assert_eq!(
            page("<after> a b </after>").map(|p| p.position),
            Ok(Position::After(" a b ".into()))
        );
    }

    #[test]
    fn answer_parts_and_foreign_children_are_ignored() {
        assert_eq!(
            page(
                "<first>x</first><last>y</last><count>3</count><max xmlns='urn:other'>-1</max><max>5</max>"
            ),
            Ok(PageRequest {
                max: 5,
                position: Position::First
            })
        );
    }

    #[test]
    fn bad_positions() {
        let (c, t) = refused("<after>a</after><before>b</before>");
        assert_eq!(c, Condition::BadRequest);
        assert!(t.contains("together"), "{t}");
        let (c, t) = refused("<after>a</after><before/>");
        assert_eq!(c, Condition::BadRequest);
        assert!(t.contains("together"), "{t}");
        let (c, t) = refused("<after/>");
        assert_eq!(c, Condition::BadRequest);
        assert!(t.contains("empty"), "{t}");
        let long = "x".repeat(MAX_ID_BYTES + 1);
        for inner in [
            format!("<after>{long}</after>"),
            format!("<before>{long}</before>"),
        ] {
            let (c, t) = refused(&inner);
            assert_eq!(c, Condition::BadRequest);
            assert!(t.contains("longer than 256 bytes"), "{t}");
        }
        let exact = "x".repeat(MAX_ID_BYTES);
        assert_eq!(
            page(&format!("<after>{exact}</after>")).map(|p| p.position),
            Ok(Position::After(exact))
        );
    }

    #[test]
    fn duplicates_are_refused() {
        for inner in [
            "<max>1</max><max>2</max>",
            "<after>a</after><after>b</after>",
            "<before/><before/>",
        ] {
            let (c, t) = refused(inner);
            assert_eq!(c, Condition::BadRequest, "{inner}");
            assert!(t.contains("more than one"), "{t}");
        }
    }

    #[test]
    fn index_is_not_implemented() {
        for inner in ["<max>10</max><index>371</index>", "<index>0</index>"] {
            let (c, t) = refused(inner);
            assert_eq!(c, Condition::FeatureNotImplemented);
            assert!(t.contains("index"), "{t}");
        }
    }

    #[test]
    fn a_set_in_another_namespace_is_refused() {
        let other = el("<set xmlns='urn:other'><max>1</max></set>");
        assert_eq!(
            parse(Some(&other), DEFAULT, CAP).map_err(|e| e.condition),
            Err(Condition::BadRequest)
        );
    }

    #[test]
    fn result_sets() {
        let full = ResultSet {
            first: Some("28482-98726-73623".into()),
            last: Some("09af3-cc343-b409f".into()),
            count: Some(20),
        };
        assert_eq!(
            full.to_element(),
            set("<first>28482-98726-73623</first><last>09af3-cc343-b409f</last><count>20</count>")
        );
        // An empty page: only the count (XEP-0059 §2.2, §2.7).
        let empty = ResultSet {
            count: Some(790),
            ..ResultSet::default()
        };
        assert_eq!(empty.to_element(), set("<count>790</count>"));
        assert_eq!(ResultSet::default().to_element(), set(""));
        let unknown_count = ResultSet {
            first: Some("a".into()),
            last: Some("a".into()),
            count: None,
        };
        assert_eq!(
            unknown_count.to_element(),
            set("<first>a</first><last>a</last>")
        );
        assert!(
            full.to_element()
                .get_child("first", NS_RSM)
                .is_some_and(|f| f.attr("index").is_none())
        );
    }
}
