//! Unit tests of `prefs.rs`; the elements are those of XEP-0441's
//! examples where there is one.

use super::*;

fn el(xml: &str) -> Element {
    Element::parse(xml).expect("xml")
}

fn prefs(xml: &str) -> Result<Prefs, StanzaError> {
    Prefs::parse(&el(xml))
}

fn refused(xml: &str) -> (Condition, String) {
    match prefs(xml) {
        Ok(p) => panic!("{xml} accepted as {p:?}"),
        Err(e) => (e.condition, e.text.unwrap_or_default()),
    }
}

fn set(jids: &[&str]) -> BTreeSet<String> {
    jids.iter().map(|j| j.to_string()).collect()
}

#[test]
fn the_xep_examples() {
    let p = prefs(
        "<prefs xmlns='urn:xmpp:mam:2' default='roster'>\
         <always><jid>romeo@montague.lit</jid></always>\
         <never><jid>montague@montague.lit</jid></never></prefs>",
    )
    .expect("prefs");
    assert_eq!(
        p,
        Prefs {
            default: DefaultPolicy::Roster,
            always: set(&["romeo@montague.lit"]),
            never: set(&["montague@montague.lit"]),
        }
    );
    // The answer is the example's answer.
    assert_eq!(
        p.to_element(),
        el("<prefs xmlns='urn:xmpp:mam:2' default='roster'>\
            <always><jid>romeo@montague.lit</jid></always>\
            <never><jid>montague@montague.lit</jid></never></prefs>")
    );
    // Empty lists are still written (§2.1).
    assert_eq!(
        Prefs::with_default(DefaultPolicy::Roster).to_element(),
        el("<prefs xmlns='urn:xmpp:mam:2' default='roster'><always/><never/></prefs>")
    );
}

#[test]
fn defaults_and_missing_lists() {
    for (name, policy) in DefaultPolicy::ALL {
        let p = prefs(&format!("<prefs xmlns='urn:xmpp:mam:2' default='{name}'/>")).expect(name);
        assert_eq!(p, Prefs::with_default(policy));
    }
    for bad in ["sometimes", "", "Always"] {
        let (c, t) = refused(&format!("<prefs xmlns='urn:xmpp:mam:2' default='{bad}'/>"));
        assert_eq!(c, Condition::BadRequest, "{bad}");
        assert!(t.contains("always, never or roster"), "{t}");
    }
    let (c, t) = refused("<prefs xmlns='urn:xmpp:mam:2'><always/><never/></prefs>");
    assert_eq!(c, Condition::BadRequest);
    assert!(t.contains("no 'default'"), "{t}");
    assert_eq!(
        refused("<prefs xmlns='urn:xmpp:mam:1' default='always'/>").0,
        Condition::BadRequest
    );
    assert_eq!(
        refused("<query xmlns='urn:xmpp:mam:2' default='always'/>").0,
        Condition::BadRequest
    );
}

#[test]
fn jids_are_normalized_bare_and_merged() {
    let p = prefs(
        "<prefs xmlns='urn:xmpp:mam:2' default='never'>\
         <always><jid> Romeo@Montague.lit/orchard\n</jid><jid>romeo@montague.lit</jid>\
         <jid>capulet.lit</jid><item>ignored</item><jid xmlns='urn:other'>@@</jid></always>\
         <always><jid>nurse@capulet.lit</jid></always></prefs>",
    )
    .expect("prefs");
    assert_eq!(
        p.always,
        set(&["capulet.lit", "nurse@capulet.lit", "romeo@montague.lit"])
    );
    assert!(p.never.is_empty());
}

#[test]
fn bad_jids_are_malformed() {
    for bad in ["", "a@b@c", "@b", "juliet@", "a b@c"] {
        for list in ["always", "never"] {
            let (c, t) = refused(&format!(
                "<prefs xmlns='urn:xmpp:mam:2' default='always'><{list}><jid>{bad}</jid></{list}></prefs>"
            ));
            assert_eq!(c, Condition::JidMalformed, "{bad:?}");
            assert!(t.contains(&format!("<{list}/>")), "{t}");
        }
    }
}

#[test]
fn a_jid_in_both_lists_is_refused() {
    let (c, t) = refused(
        "<prefs xmlns='urn:xmpp:mam:2' default='always'>\
         <always><jid>romeo@montague.lit/a</jid></always>\
         <never><jid>Romeo@montague.lit</jid></never></prefs>",
    );
    assert_eq!(c, Condition::BadRequest);
    assert!(t.contains("romeo@montague.lit is in both"), "{t}");
}

#[test]
fn list_limits() {
    let jids = |n: usize| -> String {
        (0..n)
            .map(|i| format!("<jid>u{i}@example.org</jid>"))
            .collect::<String>()
    };
    for list in ["always", "never"] {
        let p = prefs(&format!(
            "<prefs xmlns='urn:xmpp:mam:2' default='always'><{list}>{}</{list}></prefs>",
            jids(MAX_JIDS)
        ))
        .expect("at the limit");
        assert_eq!(p.always.len() + p.never.len(), MAX_JIDS);
        assert_eq!(Prefs::decode(&p.encode()), Ok(p));
        let (c, t) = refused(&format!(
            "<prefs xmlns='urn:xmpp:mam:2' default='always'><{list}>{}</{list}></prefs>",
            jids(MAX_JIDS + 1)
        ));
        assert_eq!(c, Condition::PolicyViolation);
        assert!(
            t.contains(&format!("more than 1000 JIDs in <{list}/>")),
            "{t}"
        );
    }
    // Duplicates and split lists count as sent: the bound is on the work.
    let (c, _) = refused(&format!(
        "<prefs xmlns='urn:xmpp:mam:2' default='always'><never>{0}</never><never>{0}<jid>x@y</jid></never></prefs>",
        jids(MAX_JIDS / 2)
    ));
    assert_eq!(c, Condition::PolicyViolation);
}

#[test]
fn who_is_archived() {
    let mut p = Prefs::with_default(DefaultPolicy::Roster);
    p.always.insert("romeo@montague.lit".into());
    p.never.insert("tybalt@capulet.lit".into());
    for (peer, in_roster, archived) in [
        ("romeo@montague.lit", false, true),
        ("romeo@montague.lit", true, true),
        ("tybalt@capulet.lit", true, false),
        ("tybalt@capulet.lit", false, false),
        ("nurse@capulet.lit", true, true),
        ("nurse@capulet.lit", false, false),
    ] {
        assert_eq!(p.archives(peer, in_roster), archived, "{peer} {in_roster}");
    }
    p.default = DefaultPolicy::Always;
    assert!(p.archives("nurse@capulet.lit", false));
    assert!(!p.archives("tybalt@capulet.lit", true));
    p.default = DefaultPolicy::Never;
    assert!(!p.archives("nurse@capulet.lit", true));
    assert!(p.archives("romeo@montague.lit", false));
    // Built by hand with a JID in both lists: not archived.
    p.always.insert("tybalt@capulet.lit".into());
    assert!(!p.archives("tybalt@capulet.lit", true));
}

#[test]
fn encoding_round_trips() {
    let mut p = Prefs::with_default(DefaultPolicy::Never);
    assert_eq!(p.encode(), [FORMAT, 2, 0, 0, 0, 0]);
    assert_eq!(Prefs::decode(&p.encode()), Ok(p.clone()));
    p.always = set(&["a@b", "b", "ü@x.example"]);
    p.never = set(&["c@d"]);
    for default in [
        DefaultPolicy::Always,
        DefaultPolicy::Roster,
        DefaultPolicy::Never,
    ] {
        p.default = default;
        let bytes = p.encode();
        assert_eq!(Prefs::decode(&bytes), Ok(p.clone()));
    }
    let bytes = p.encode();
    assert_eq!(
        &bytes[..9],
        [FORMAT, 2, 0, 3, 0, 3, b'a', b'@', b'b'],
        "{bytes:?}"
    );
}

#[test]
fn damaged_bytes_are_refused() {
    let mut p = Prefs::with_default(DefaultPolicy::Roster);
    p.always = set(&["a@b", "c@d"]);
    p.never = set(&["e@f"]);
    let good = p.encode();
    // Every truncation, and every single-byte change, is refused or reads
    // as a valid value that encodes back to the same bytes.
    for n in 0..good.len() {
        assert!(Prefs::decode(&good[..n]).is_err(), "truncated to {n}");
    }
    for i in 0..good.len() {
        for b in [0u8, 1, 2, 3, 0x7f, 0x80, 0xff, b'@', b'A', b'/'] {
            let mut bad = good.clone();
            bad[i] = b;
            if let Ok(back) = Prefs::decode(&bad) {
                assert_eq!(back.encode(), bad, "byte {i} = {b}");
            }
        }
    }
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![], "truncated"),
        (vec![2, 0, 0, 0, 0, 0], "format"),
        (vec![FORMAT, 3, 0, 0, 0, 0], "default"),
        (vec![FORMAT, 0, 0, 0, 0, 0, 0], "after"),
        (vec![FORMAT, 0, 0x03, 0xe9, 0, 0], "1001"),
        (vec![FORMAT, 0, 0, 1, 0, 2, 0xc3, 0x28, 0, 0], "UTF-8"),
        (
            vec![FORMAT, 0, 0, 1, 0, 3, b'A', b'@', b'b', 0, 0],
            "normalized",
        ),
        (
            vec![FORMAT, 0, 0, 1, 0, 3, b'a', b'/', b'b', 0, 0],
            "normalized",
        ),
        (vec![FORMAT, 0, 0, 1, 0, 0, 0, 0], "normalized"),
        (
            vec![FORMAT, 0, 0, 2, 0, 1, b'b', 0, 1, b'a', 0, 0],
            "out of order",
        ),
        (
            vec![FORMAT, 0, 0, 2, 0, 1, b'a', 0, 1, b'a', 0, 0],
            "out of order",
        ),
        (vec![FORMAT, 0, 0, 1, 0, 1, b'a', 0, 1, 0, 1, b'a'], "both"),
        (vec![FORMAT, 0, 0, 1, 0xff, 0xff, b'a'], "truncated"),
    ];
    for (bytes, why) in cases {
        match Prefs::decode(&bytes) {
            Ok(p) => panic!("{bytes:?} decoded as {p:?}"),
            Err(e) => assert!(e.contains(why), "{bytes:?}: {e}"),
        }
    }
}
