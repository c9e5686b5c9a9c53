//! Matching a received stanza against an expected element (FORMAT.md §4).

use std::collections::HashMap;

use super::tree::XElem;

/// `{scansion:capture:NAME}` values, kept for the whole script.
pub type Captures = HashMap<String, String>;

const ANY: &str = "{scansion:any}";
const CAPTURE_PREFIX: &str = "{scansion:capture:";
/// How many element comparisons the fallback backtracking search may make
/// for one set of children before giving up.
const SEARCH_BUDGET: usize = 100_000;

/// Whether `received` matches `expected`; on success new captures are
/// added to `captures`, on failure `captures` is unchanged and the error
/// says what differed.
pub fn matches(expected: &XElem, received: &XElem, captures: &mut Captures) -> Result<(), String> {
    let mut work = captures.clone();
    let mut budget = SEARCH_BUDGET;
    match_elem(expected, received, false, &mut work, &mut budget)?;
    *captures = work;
    Ok(())
}

/// A one-line description of an element without its children.
pub fn describe(e: &XElem) -> String {
    let mut s = format!("<{}", e.name);
    if e.ns != super::tree::CLIENT_NS {
        s.push_str(&format!(" xmlns='{}'", e.ns));
    }
    for (k, v) in &e.attrs {
        s.push_str(&format!(" {k}='{v}'"));
    }
    s.push('>');
    s
}

/// The recursive comparison. May leave `caps` modified when it fails:
/// callers that go on after a failure restore their own snapshot.
fn match_elem(
    e: &XElem,
    r: &XElem,
    inherited_strict: bool,
    caps: &mut Captures,
    budget: &mut usize,
) -> Result<(), String> {
    *budget = budget.saturating_sub(1);
    let strict = e.strict.unwrap_or(inherited_strict);
    let here = || describe(e);

    if e.name != r.name || e.ns != r.ns {
        return Err(format!("expected {}, got {}", here(), describe(r)));
    }

    for (k, v) in &e.attrs {
        let Some(got) = r.attr(k) else {
            return Err(format!("{}: missing attribute {k}", here()));
        };
        if v == ANY {
            continue;
        }
        if let Some(name) = v
            .strip_prefix(CAPTURE_PREFIX)
            .and_then(|s| s.strip_suffix('}'))
        {
            match caps.get(name) {
                Some(known) if known != got => {
                    return Err(format!(
                        "{}: attribute {k}='{got}' differs from capture {name}='{known}'",
                        here()
                    ));
                }
                Some(_) => {}
                None => {
                    caps.insert(name.to_string(), got.to_string());
                }
            }
            continue;
        }
        if v != got {
            return Err(format!("{}: has {k}='{got}'", here()));
        }
    }
    if strict {
        for (k, _) in &r.attrs {
            let is_decl = k == "xmlns" || k.starts_with("xmlns:");
            if !is_decl && e.attr(k).is_none() {
                return Err(format!("{}: unexpected attribute {k} (strict)", here()));
            }
        }
    }

    let want = e.text();
    let got = r.text();
    let text_capture = want
        .trim()
        .strip_prefix(CAPTURE_PREFIX)
        .and_then(|s| s.strip_suffix('}'))
        .map(str::to_string);
    if let Some(name) = text_capture {
        let got = got.trim().to_string();
        match caps.get(&name) {
            Some(known) if *known != got => {
                return Err(format!(
                    "{}: text {got:?} differs from capture {name}='{known}'",
                    here()
                ));
            }
            Some(_) => {}
            None => {
                caps.insert(name, got);
            }
        }
    } else if (strict || !want.trim().is_empty()) && want.trim() != got.trim() {
        return Err(format!(
            "{}: has text {:?}, expected {:?}",
            here(),
            got.trim(),
            want.trim()
        ));
    }

    let ec: Vec<&XElem> = e.children().collect();
    let rc: Vec<&XElem> = r.children().collect();
    if strict && ec.len() != rc.len() {
        return Err(format!(
            "{}: {} child elements, strict expects {}",
            here(),
            rc.len(),
            ec.len()
        ));
    }
    match_children(&ec, &rc, strict, caps, budget).map_err(|why| format!("in {}: {why}", here()))
}

/// Finds an assignment of every expected child to a distinct received child
/// (order does not matter). Pairs are first tested one by one; a perfect
/// bipartite matching over those pairs is then looked for with augmenting
/// paths, and checked again in order with the real captures. Only if
/// captures make that assignment fail does a backtracking search over the
/// compatible pairs run.
fn match_children(
    ec: &[&XElem],
    rc: &[&XElem],
    strict: bool,
    caps: &mut Captures,
    budget: &mut usize,
) -> Result<(), String> {
    if ec.is_empty() {
        return Ok(());
    }
    let mut candidates: Vec<Vec<usize>> = Vec::with_capacity(ec.len());
    for e in ec {
        let mut ok = Vec::new();
        // Why the received children of the same name did not match.
        let mut reasons: Vec<String> = Vec::new();
        for (j, r) in rc.iter().enumerate() {
            let mut trial = caps.clone();
            match match_elem(e, r, strict, &mut trial, budget) {
                Ok(()) => ok.push(j),
                Err(why) => {
                    if r.name == e.name && r.ns == e.ns {
                        reasons.push(why);
                    }
                }
            }
        }
        if ok.is_empty() {
            return Err(match reasons.as_slice() {
                [] => format!("no child {} was received", describe(e)),
                [why] => format!("no received child matches {}: {why}", describe(e)),
                many => format!(
                    "no received child matches {} ({} <{}> children received, none matching)",
                    describe(e),
                    many.len(),
                    e.name
                ),
            });
        }
        candidates.push(ok);
    }

    let Some(assignment) = perfect_matching(&candidates, rc.len()) else {
        return Err(format!(
            "the {} expected children cannot each match a distinct received child",
            ec.len()
        ));
    };
    let snapshot = caps.clone();
    let verified = ec
        .iter()
        .zip(&assignment)
        .all(|(e, &j)| match_elem(e, rc[j], strict, caps, budget).is_ok());
    if verified {
        return Ok(());
    }
    *caps = snapshot;

    // Captures tie the children together: search the compatible pairs,
    // most constrained expected child first.
    let mut order: Vec<usize> = (0..ec.len()).collect();
    order.sort_by_key(|&i| candidates[i].len());
    let mut used = vec![false; rc.len()];
    if search(
        &order,
        0,
        ec,
        rc,
        &candidates,
        strict,
        &mut used,
        caps,
        budget,
    ) {
        Ok(())
    } else if *budget == 0 {
        Err("gave up matching children: too many combinations".to_string())
    } else {
        Err("captured values are inconsistent across the expected children".to_string())
    }
}

#[allow(clippy::too_many_arguments)]
fn search(
    order: &[usize],
    k: usize,
    ec: &[&XElem],
    rc: &[&XElem],
    candidates: &[Vec<usize>],
    strict: bool,
    used: &mut [bool],
    caps: &mut Captures,
    budget: &mut usize,
) -> bool {
    let Some(&i) = order.get(k) else {
        return true;
    };
    for &j in &candidates[i] {
        if used[j] || *budget == 0 {
            continue;
        }
        let snapshot = caps.clone();
        if match_elem(ec[i], rc[j], strict, caps, budget).is_ok() {
            used[j] = true;
            if search(order, k + 1, ec, rc, candidates, strict, used, caps, budget) {
                return true;
            }
            used[j] = false;
        }
        *caps = snapshot;
    }
    false
}

/// Kuhn's augmenting-path algorithm: for each left vertex `i` with
/// neighbours `adj[i]` (right vertices below `right`), a distinct right
/// vertex, or `None` if no matching covers every left vertex.
fn perfect_matching(adj: &[Vec<usize>], right: usize) -> Option<Vec<usize>> {
    fn augment(
        i: usize,
        adj: &[Vec<usize>],
        seen: &mut [bool],
        owner: &mut [Option<usize>],
    ) -> bool {
        for &j in &adj[i] {
            if seen[j] {
                continue;
            }
            seen[j] = true;
            if owner[j].is_none_or(|other| augment(other, adj, seen, owner)) {
                owner[j] = Some(i);
                return true;
            }
        }
        false
    }
    let mut owner: Vec<Option<usize>> = vec![None; right];
    for i in 0..adj.len() {
        let mut seen = vec![false; right];
        if !augment(i, adj, &mut seen, &mut owner) {
            return None;
        }
    }
    let mut assignment = vec![0; adj.len()];
    for (j, o) in owner.iter().enumerate() {
        if let Some(i) = o {
            assignment[*i] = j;
        }
    }
    Some(assignment)
}

#[cfg(test)]
mod tests {
    use super::super::script::parse_block;
    use super::*;

    fn expected(xml: &str) -> XElem {
        let mut v = parse_block(xml, 1).expect("expected XML parses");
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    /// Received stanzas are parsed the same way but keep their whitespace,
    /// as a server's would not be indented anyway.
    fn received(xml: &str) -> XElem {
        let wrapped = format!("<r xmlns='jabber:client'>{xml}</r>");
        let doc = roxmltree::Document::parse(&wrapped).expect("received XML parses");
        let node = doc
            .root_element()
            .children()
            .find(|n| n.is_element())
            .expect("one element");
        XElem::from_roxml(node).expect("converts")
    }

    fn check(e: &str, r: &str) -> Result<(), String> {
        matches(&expected(e), &received(r), &mut Captures::new())
    }

    #[test]
    fn names_namespaces_and_attributes() {
        assert!(check("<presence/>", "<presence from='a' id='x'/>").is_ok());
        assert!(check("<presence/>", "<message/>").is_err());
        assert!(check("<presence/>", "<presence xmlns='jabber:server'/>").is_err());
        assert!(check("<iq type='result'/>", "<iq type='error'/>").is_err());
        assert!(check("<iq type='result'/>", "<iq/>").is_err());
        assert!(check("<m xml:lang='en'/>", "<m xml:lang='en'/>").is_ok());
        assert!(check("<m xml:lang='en'/>", "<m xml:lang='de'/>").is_err());
        assert!(check("<m/>", "<m xml:lang='de'/>").is_ok());
    }

    #[test]
    fn text_is_trimmed_and_optional() {
        assert!(check("<m><body>\n\t\tHi  \n</body></m>", "<m><body>Hi</body></m>").is_ok());
        assert!(check("<m><body>Hi</body></m>", "<m><body>Ho</body></m>").is_err());
        assert!(check("<m><body/></m>", "<m><body>anything</body></m>").is_ok());
        assert!(check("<m>x<body/></m>", "<m><body/></m>").is_err());
    }

    #[test]
    fn namespaces_are_inherited_from_parents() {
        let e = "<iq><query xmlns='urn:q'><item/></query></iq>";
        assert!(check(e, "<iq><query xmlns='urn:q'><item/></query></iq>").is_ok());
        assert!(
            check(
                e,
                "<iq><query xmlns='urn:q'><item xmlns='urn:other'/></query></iq>"
            )
            .is_err()
        );
        assert!(
            check(
                e,
                "<iq><query xmlns='urn:q'><item xmlns='jabber:client'/></query></iq>"
            )
            .is_err()
        );
    }

    #[test]
    fn any_value() {
        let e = "<m><delay xmlns='urn:xmpp:delay' stamp='{scansion:any}'/></m>";
        assert!(check(e, "<m><delay xmlns='urn:xmpp:delay' stamp='2020'/></m>").is_ok());
        assert!(check(e, "<m><delay xmlns='urn:xmpp:delay'/></m>").is_err());
    }

    #[test]
    fn captures_record_then_compare_and_roll_back() {
        let mut caps = Captures::new();
        let first =
            expected("<iq><s id='{scansion:capture:first}' t='{scansion:capture:t}'/></iq>");
        // A failing match records nothing.
        assert!(matches(&first, &received("<iq><s id='1'/></iq>"), &mut caps).is_err());
        assert!(caps.is_empty());
        matches(&first, &received("<iq><s id='1' t='9'/></iq>"), &mut caps).expect("records");
        assert_eq!(caps.get("first").map(String::as_str), Some("1"));
        let later = expected("<m><r id='{scansion:capture:first}'/></m>");
        assert!(matches(&later, &received("<m><r id='1'/></m>"), &mut caps).is_ok());
        let err = matches(&later, &received("<m><r id='2'/></m>"), &mut caps).expect_err("differs");
        assert!(err.contains("capture first"), "{err}");
        // The same capture used by two attributes of one stanza.
        let mut caps = Captures::new();
        let twice = expected("<m a='{scansion:capture:x}' b='{scansion:capture:x}'/>");
        assert!(matches(&twice, &received("<m a='1' b='2'/>"), &mut caps).is_err());
        assert!(caps.is_empty());
        assert!(matches(&twice, &received("<m a='1' b='1'/>"), &mut caps).is_ok());
    }

    #[test]
    fn children_are_unordered_and_extra_ones_ignored() {
        let e = "<x><status code='201'/><item role='moderator'/><status code='110'/></x>";
        assert!(check(e, "<x><status code='110'/><item role='moderator' jid='a'/><extra/><status code='201'/></x>").is_ok());
        assert!(check(e, "<x><status code='110'/><item role='moderator'/></x>").is_err());
    }

    #[test]
    fn each_expected_child_needs_a_distinct_received_child() {
        // Two expected <status/> cannot both match one received <status/>.
        assert!(check("<x><status/><status/></x>", "<x><status code='1'/></x>").is_err());
        assert!(
            check(
                "<x><status/><status/></x>",
                "<x><status code='1'/><status code='2'/></x>"
            )
            .is_ok()
        );
    }

    #[test]
    fn distinct_matching_needs_backtracking() {
        // The lax first child also matches the only received child the
        // second one can take: a greedy first-fit assignment fails.
        let e = "<x><f/><f var='a'/></x>";
        assert!(check(e, "<x><f var='a'/><f var='b'/></x>").is_ok());
        assert!(check(e, "<x><f var='b'/><f var='c'/></x>").is_err());
        // With captures: the capture taken from the first child decides
        // which received child the second must be.
        let e = "<x><a v='{scansion:capture:c}'/><b v='{scansion:capture:c}'/></x>";
        assert!(check(e, "<x><a v='1'/><a v='2'/><b v='2'/></x>").is_ok());
        assert!(check(e, "<x><a v='1'/><b v='2'/></x>").is_err());
    }

    #[test]
    fn many_similar_children_do_not_explode() {
        let mut want = String::from("<q>");
        let mut got = String::from("<q>");
        for i in 0..40 {
            want.push_str("<feature/>");
            got.push_str(&format!("<feature var='{i}'/>"));
        }
        want.push_str("<feature/></q>");
        got.push_str("</q>");
        let start = std::time::Instant::now();
        assert!(check(&want, &got).is_err(), "41 expected, 40 received");
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn strict_mode() {
        // No extra attributes, same number of children, equal (even empty) text.
        let e = "<x scansion:strict='true'><item jid='a' affiliation='none'/></x>";
        assert!(check(e, "<x><item jid='a' affiliation='none'/></x>").is_ok());
        assert!(check(e, "<x><item jid='a' affiliation='none' role='none'/></x>").is_err());
        assert!(check(e, "<x><item jid='a' affiliation='none'/><status/></x>").is_err());
        assert!(check(e, "<x extra='1'><item jid='a' affiliation='none'/></x>").is_err());
        assert!(check(e, "<x>text<item jid='a' affiliation='none'/></x>").is_err());
        assert!(check("<q scansion:strict='true'/>", "<q><identity/></q>").is_err());
        assert!(check("<q scansion:strict='true'/>", "<q/>").is_ok());
        // Strict applies below the marked element only.
        assert!(
            check(
                "<iq><q scansion:strict='true'/></iq>",
                "<iq a='1'><q/><other/></iq>"
            )
            .is_ok()
        );
    }

    #[test]
    fn strict_false_cancels_inherited_strict() {
        let e =
            "<q scansion:strict='true'><name>Perch</name><version scansion:strict='false'/></q>";
        assert!(check(e, "<q><name>Perch</name><version>1.0</version></q>").is_ok());
        assert!(check(e, "<q><name>Perch</name><version>1.0</version><os/></q>").is_err());
        assert!(check(e, "<q><name>Perch </name><version/></q>").is_ok());
        // Descendants of the strict=false element are lax as well.
        let e = "<q scansion:strict='true'><v scansion:strict='false'><a/></v></q>";
        assert!(check(e, "<q><v x='1'><a y='2'/><b/></v></q>").is_ok());
    }

    #[test]
    fn error_messages_say_where() {
        let err = check(
            "<presence><x xmlns='urn:x'><item role='moderator'/></x></presence>",
            "<presence><x xmlns='urn:x'><item role='participant'/></x></presence>",
        )
        .expect_err("role differs");
        assert!(err.contains("has role='participant'"), "{err}");
        assert!(err.contains("<x xmlns='urn:x'>"), "{err}");
    }
}
