/// Found by the `jid` fuzz target: U+03F9 (unassigned in Unicode 3.2)
/// became U+03A3 on the first pass and U+03C3 on the second; it is
/// refused like any unassigned code point in a domain.
#[test]
fn unassigned_code_points_in_domains_are_refused_before_mapping() {
    assert_eq!(
        Jid::parse("\u{03F9}"),
        Err(JidError::UnassignedDomainChar('\u{03F9}'))
    );
}

use super::*;

fn p(s: &str) -> Result<String, JidError> {
    Jid::parse(s).map(|j| j.to_string())
}

fn ok(s: &str) -> String {
    match Jid::parse(s) {
        Ok(j) => j.to_string(),
        Err(e) => panic!("{s:?} should be valid: {e}"),
    }
}

#[test]
fn rfc7622_valid_examples() {
    // §3.5; the comments note where stringprep differs from PRECIS.
    assert_eq!(ok("juliet@example.com"), "juliet@example.com");
    assert_eq!(ok("juliet@example.com/foo"), "juliet@example.com/foo");
    assert_eq!(
        ok("juliet@example.com/foo bar"),
        "juliet@example.com/foo bar"
    );
    assert_eq!(
        ok("juliet@example.com/foo@bar"),
        "juliet@example.com/foo@bar"
    );
    assert_eq!(ok("foo\\20bar@example.com"), "foo\\20bar@example.com");
    assert_eq!(ok("fussball@example.com"), "fussball@example.com");
    // Nodeprep case-folds ß to "ss" (PRECIS would keep it).
    assert_eq!(ok("fußball@example.com"), "fussball@example.com");
    assert_eq!(ok("π@example.com"), "π@example.com");
    assert_eq!(ok("Σ@example.com/foo"), "σ@example.com/foo");
    assert_eq!(ok("σ@example.com/foo"), "σ@example.com/foo");
    // Nodeprep also folds final sigma.
    assert_eq!(ok("ς@example.com/foo"), "σ@example.com/foo");
    assert_eq!(ok("king@example.com/♚"), "king@example.com/♚");
    assert_eq!(ok("example.com"), "example.com");
    assert_eq!(ok("example.com/foobar"), "example.com/foobar");
    assert_eq!(
        ok("a.example.com/b@example.net"),
        "a.example.com/b@example.net"
    );
}

#[test]
fn rfc7622_invalid_examples() {
    assert_eq!(
        p("juliet@@example.com"),
        Err(JidError::ForbiddenDomainChar('@'))
    );
    assert_eq!(
        p("foo bar@example.com"),
        Err(JidError::ForbiddenLocalChar(' '))
    );
    assert_eq!(
        p("juliet@test@example.com"),
        Err(JidError::ForbiddenDomainChar('@'))
    );
    assert_eq!(p("juliet@"), Err(JidError::EmptyDomain));
    assert_eq!(p("/foobar"), Err(JidError::EmptyDomain));
    assert_eq!(p("@example.com"), Err(JidError::EmptyLocal));
    assert_eq!(p("@example.com/"), Err(JidError::EmptyLocal));
    assert_eq!(p("example.com/"), Err(JidError::EmptyResource));
    assert_eq!(p(""), Err(JidError::EmptyDomain));
    // Under Nodeprep these two from §3.6 are valid (NFKC maps U+2163 to
    // "IV", and symbols are allowed), unlike under PRECIS.
    assert_eq!(ok("henry\u{2163}@example.com"), "henryiv@example.com");
    assert_eq!(ok("♚@example.com"), "♚@example.com");
}

#[test]
fn case_folding_and_accessors() {
    let j = Jid::parse("Romeo@Example.COM/Orchard").unwrap();
    assert_eq!(j.as_str(), "romeo@example.com/Orchard");
    assert_eq!(j.local(), Some("romeo"));
    assert_eq!(j.domain(), "example.com");
    assert_eq!(j.resource(), Some("Orchard"));
    assert_eq!(j.bare_str(), "romeo@example.com");
    assert!(j.is_full());
    assert!(!j.is_bare());
    let b = j.to_bare();
    assert_eq!(b.as_str(), "romeo@example.com");
    assert!(b.is_bare());
    assert_eq!(b.resource(), None);
    assert_eq!(b.local(), Some("romeo"));
    assert_eq!(j.to_domain().as_str(), "example.com");
    let d = Jid::parse("example.com").unwrap();
    assert_eq!(d.local(), None);
    assert_eq!(d.domain(), "example.com");
    assert_eq!(d.bare_str(), "example.com");
    let r = b.with_resource("Balcony").unwrap();
    assert_eq!(r.as_str(), "romeo@example.com/Balcony");
    assert_eq!(
        j.with_resource("x").unwrap().as_str(),
        "romeo@example.com/x"
    );
    assert_eq!(b.with_resource(""), Err(JidError::EmptyResource));
    let dr = Jid::parse("example.com/a/b@c").unwrap();
    assert_eq!(dr.local(), None);
    assert_eq!(dr.domain(), "example.com");
    assert_eq!(dr.resource(), Some("a/b@c"));
    assert_eq!(dr.to_bare().as_str(), "example.com");
}

#[test]
fn the_prepared_domain_shortcut_agrees_with_the_general_path() {
    let long_label = "a".repeat(64);
    let long_domain = format!("{}.x", "a.".repeat(520));
    for d in [
        "example.com",
        "a",
        "a-b.c_d.e9",
        "x.",
        "Example.com",
        "-a.com",
        "a-.com",
        "a..com",
        ".a",
        "a.b-",
        "a b",
        "é.com",
        "localhost",
        long_label.as_str(),
        long_domain.as_str(),
    ] {
        if is_prepared_ascii_domain(d) {
            let general = prep_ascii(Part::Domain, d)
                .and_then(check_domain_labels)
                .map(|c| c.into_owned());
            assert_eq!(general, Ok(d.to_owned()), "{d:?}");
        }
    }
    assert!(is_prepared_ascii_domain("conference.example.org"));
    assert!(!is_prepared_ascii_domain("Example.org"));
    assert!(!is_prepared_ascii_domain(&long_label));
}

#[test]
fn a_bare_jid_cut_from_a_full_one_is_the_bare_jid() {
    use std::collections::hash_map::DefaultHasher;
    let hash = |j: &Jid| {
        let mut h = DefaultHasher::new();
        j.hash(&mut h);
        h.finish()
    };
    let full = Jid::parse("romeo@example.com/orchard").unwrap();
    let cut = full.to_bare();
    let parsed = Jid::parse("romeo@example.com").unwrap();
    assert!(Arc::ptr_eq(&cut.shared, &full.shared), "no copy");
    assert_eq!(cut, parsed);
    assert_eq!(hash(&cut), hash(&parsed));
    assert_eq!(cut.cmp(&parsed), Ordering::Equal);
    assert!(cut < full);
    assert_eq!(format!("{cut}"), "romeo@example.com");
    assert_eq!(format!("{cut:?}"), "Jid(\"romeo@example.com\")");
    assert_eq!(cut.to_bare(), parsed);
    assert_eq!(
        cut.with_resource("hall").unwrap().as_str(),
        "romeo@example.com/hall"
    );
    let domain = Jid::parse("example.com/res").unwrap().to_bare();
    assert_eq!(domain, Jid::parse("example.com").unwrap());
    assert_eq!(domain.resource(), None);
    // Longer than the stack buffer used to join the parts.
    let long = format!("{}@example.com/{}", "a".repeat(300), "r".repeat(300));
    assert_eq!(Jid::parse(&long).unwrap().as_str(), long);
}

#[test]
fn equality_after_normalization() {
    let a: Jid = "JULIET@EXAMPLE.COM./Balcony".parse().unwrap();
    let b = Jid::new(Some("juliet"), "example.com", Some("Balcony")).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, Jid::parse("juliet@example.com/balcony").unwrap());
    let mut set = std::collections::HashSet::new();
    set.insert(a);
    assert!(set.contains(&b));
    // Fullwidth letters are NFKC-normalized and folded.
    assert_eq!(ok("ＪＵＬＩＥＴ@example.com"), "juliet@example.com");
    // Combining sequence vs precomposed.
    assert_eq!(ok("e\u{301}@example.com"), ok("\u{e9}@example.com"));
    // Soft hyphen is mapped to nothing.
    assert_eq!(ok("ju\u{AD}liet@example.com"), "juliet@example.com");
    assert_eq!(p("\u{200B}@example.com"), Err(JidError::EmptyLocal));
}

#[test]
fn lengths() {
    let l = "a".repeat(MAX_PART_LEN);
    assert!(Jid::parse(&format!("{l}@example.com")).is_ok());
    assert_eq!(p(&format!("{l}a@example.com")), Err(JidError::LocalTooLong));
    let r = "r".repeat(MAX_PART_LEN);
    assert!(Jid::parse(&format!("example.com/{r}")).is_ok());
    assert_eq!(
        p(&format!("example.com/{r}r")),
        Err(JidError::ResourceTooLong)
    );
    // Counted in bytes: 512 × 2 = 1024.
    let u = "é".repeat(512);
    assert_eq!(p(&format!("{u}@example.com")), Err(JidError::LocalTooLong));
    let label = "a".repeat(MAX_LABEL_LEN);
    assert!(Jid::parse(&format!("{label}.example")).is_ok());
    assert_eq!(
        p(&format!("{label}a.example")),
        Err(JidError::DomainLabelTooLong)
    );
    let long_domain = vec![label.as_str(); 16].join(".");
    assert_eq!(long_domain.len(), 1023);
    assert!(Jid::parse(&long_domain).is_ok());
    assert_eq!(p(&format!("a{long_domain}")), Err(JidError::DomainTooLong));
    assert_eq!(p(&format!("a.{long_domain}")), Err(JidError::DomainTooLong));
    // Longest possible JID still has offsets that fit.
    let big = Jid::parse(&format!("{l}@{long_domain}/{r}")).unwrap();
    assert_eq!(big.local(), Some(l.as_str()));
    assert_eq!(big.domain(), long_domain);
    assert_eq!(big.resource(), Some(r.as_str()));
}

#[test]
fn domains() {
    assert_eq!(ok("example.com."), "example.com");
    assert_eq!(ok("juliet@example.com./x"), "juliet@example.com/x");
    assert_eq!(p("example.com.."), Err(JidError::EmptyDomainLabel));
    assert_eq!(p("."), Err(JidError::EmptyDomain));
    assert_eq!(p(".example.com"), Err(JidError::EmptyDomainLabel));
    assert_eq!(p("a..b"), Err(JidError::EmptyDomainLabel));
    assert_eq!(p("-a.example"), Err(JidError::DomainLabelHyphen));
    assert_eq!(p("a-.example"), Err(JidError::DomainLabelHyphen));
    assert_eq!(ok("a-b_c.example"), "a-b_c.example");
    assert_eq!(p("exa mple.com"), Err(JidError::ForbiddenDomainChar(' ')));
    assert_eq!(p("exa:mple.com"), Err(JidError::ForbiddenDomainChar(':')));
    assert_eq!(
        p("example.com:5222"),
        Err(JidError::ForbiddenDomainChar(':'))
    );
    assert_eq!(ok("192.168.0.1"), "192.168.0.1");
    assert_eq!(ok("user@10.0.0.1/res"), "user@10.0.0.1/res");
    assert_eq!(ok("[::1]"), "[::1]");
    assert_eq!(ok("user@[2001:DB8:0:0::1]/r"), "user@[2001:db8::1]/r");
    assert_eq!(p("[::1"), Err(JidError::InvalidIpLiteral));
    assert_eq!(p("[1.2.3.4]"), Err(JidError::InvalidIpLiteral));
    assert_eq!(p("[fe80::1%eth0]"), Err(JidError::InvalidIpLiteral));
    assert_eq!(p("[::1]x"), Err(JidError::InvalidIpLiteral));
    assert_eq!(ok("xn--mnchen-3ya.de"), "xn--mnchen-3ya.de");
}

#[test]
fn unicode_domains() {
    assert_eq!(ok("juliet@詹姆斯.example"), "juliet@詹姆斯.example");
    assert_eq!(
        ok("JULIET@詹姆斯.EXAMPLE/Home"),
        "juliet@詹姆斯.example/Home"
    );
    assert_eq!(ok("MÜNCHEN.de"), "münchen.de");
    assert_eq!(ok("ｅｘａｍｐｌｅ．com"), "example.com");
    assert_eq!(ok("詹姆斯。example"), "詹姆斯.example");
    assert_eq!(p("a／b.example"), Err(JidError::ForbiddenDomainChar('/')));
    assert_eq!(
        p("a\u{E000}.example"),
        Err(JidError::ForbiddenDomainChar('\u{E000}'))
    );
    assert_eq!(
        p("a\u{1F916}.example"),
        Err(JidError::UnassignedDomainChar('\u{1F916}'))
    );
    assert_eq!(p("\u{5D0}b.example"), Err(JidError::DomainBidi));
}

#[test]
fn locals_and_resources() {
    for c in ['"', '&', '\'', '/', ':', '<', '>', ' ', '\t', '\u{7F}'] {
        assert_eq!(
            prep_local(&format!("a{c}b")),
            Err(JidError::ForbiddenLocalChar(c)),
            "{c:?}"
        );
    }
    assert_eq!(
        prep_local("a\u{A0}b"),
        Err(JidError::ForbiddenLocalChar('\u{A0}'))
    );
    assert_eq!(prep_local("a＠b"), Err(JidError::ForbiddenLocalChar('＠')));
    assert_eq!(
        prep_local("a!#$%*+=?^_`{|}~b").unwrap(),
        "a!#$%*+=?^_`{|}~b"
    );
    assert_eq!(
        prep_resource("a\u{0}b"),
        Err(JidError::ForbiddenResourceChar('\u{0}'))
    );
    assert_eq!(
        prep_resource("a\u{85}b"),
        Err(JidError::ForbiddenResourceChar('\u{85}'))
    );
    assert_eq!(prep_resource("Ⅳ").unwrap(), "IV");
    assert_eq!(
        prep_resource("\u{5D0}1").unwrap_err(),
        JidError::ResourceBidi
    );
    assert_eq!(prep_resource("\u{5D0}1\u{5D1}").unwrap(), "\u{5D0}1\u{5D1}");
    assert!(matches!(prep_local("juliet").unwrap(), Cow::Borrowed(_)));
    assert!(matches!(
        prep_resource("Orchard 1").unwrap(),
        Cow::Borrowed(_)
    ));
    assert!(matches!(
        prep_domain("example.com").unwrap(),
        Cow::Borrowed(_)
    ));
}

#[test]
fn strict_rejects_unassigned() {
    let robot = "\u{1F916}";
    assert_eq!(
        prep_resource_strict(robot),
        Err(JidError::UnassignedResourceChar('\u{1F916}'))
    );
    assert_eq!(
        prep_resource_strict("Bot \u{1F916}"),
        Err(JidError::UnassignedResourceChar('\u{1F916}'))
    );
    assert_eq!(
        prep_local_strict("r\u{1F916}"),
        Err(JidError::UnassignedLocalChar('\u{1F916}'))
    );
    assert_eq!(prep_resource_strict("Bot ♚").unwrap(), "Bot ♚");
    // The crate's own profile is strict too; the lenient variants are ours.
    assert!(stringprep::resourceprep(robot).is_err());
    assert_eq!(prep_resource(robot).unwrap(), robot);
    assert_eq!(
        ok("room@muc.example/Bot \u{1F916}"),
        "room@muc.example/Bot \u{1F916}"
    );
    assert_eq!(ok("R\u{1F916}@example.com"), "r\u{1F916}@example.com");
}

#[test]
fn lenient_runs_are_prepared() {
    let robot = '\u{1F916}';
    // Mapping, folding and NFKC still apply around the unassigned code point.
    assert_eq!(
        prep_local(&format!("ＡB{robot}C\u{AD}D")).unwrap(),
        format!("ab{robot}cd")
    );
    assert_eq!(
        prep_resource(&format!("Ⅳ{robot}x")).unwrap(),
        format!("IV{robot}x")
    );
    // A combining mark after the unassigned code point stays after it.
    assert_eq!(
        prep_resource(&format!("e{robot}\u{301}")).unwrap(),
        format!("e{robot}\u{301}")
    );
    // Prohibited characters are still found in any run.
    assert_eq!(
        prep_local(&format!("a{robot}b c")),
        Err(JidError::ForbiddenLocalChar(' '))
    );
    assert_eq!(
        prep_resource(&format!("\u{85}{robot}")),
        Err(JidError::ForbiddenResourceChar('\u{85}'))
    );
    // Bidi: each run alone fails, the whole string passes.
    let rtl = format!("\u{5D0}1{robot}\u{5D1}");
    assert_eq!(prep_resource(&rtl).unwrap(), rtl);
    assert_eq!(
        prep_resource(&format!("\u{5D0}{robot}a")),
        Err(JidError::ResourceBidi)
    );
    assert_eq!(
        prep_resource(&format!("\u{5D0}a{robot}\u{5D1}")),
        Err(JidError::ResourceBidi)
    );
    assert_eq!(
        prep_resource(&format!("a{robot}b")).unwrap(),
        format!("a{robot}b")
    );
    assert_eq!(
        prep_resource(&format!("\u{200B}{robot}")).unwrap(),
        robot.to_string()
    );
}

/// Reference implementation of the ASCII fast path: the stringprep crate
/// on the same input, with the same label checks.
fn slow(part: Part, s: &str) -> Result<String, JidError> {
    if s.is_empty() {
        return Err(part.empty());
    }
    let out = prep_unicode(part, s, true)?;
    let out = match part {
        Part::Domain => check_domain_labels(out)?,
        _ => check_len(part, out)?,
    };
    Ok(out.into_owned())
}

fn fast(part: Part, s: &str) -> Result<String, JidError> {
    match part {
        Part::Local => prep_local(s),
        Part::Domain => prep_domain(s),
        Part::Resource => prep_resource(s),
    }
    .map(Cow::into_owned)
}

#[test]
fn ascii_fast_path_matches_stringprep() {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let parts = [Part::Local, Part::Domain, Part::Resource];
    for b in 0u8..0x80 {
        let s = String::from(char::from(b));
        for part in parts {
            if part == Part::Domain && (b == b'.' || b == b'[') {
                continue; // handled before preparation
            }
            assert_eq!(fast(part, &s), slow(part, &s), "{part:?} {s:?}");
        }
    }
    let alphabet = b"aZ09-_.@/ \"&'<>:\t\x7f!~Xx";
    for _ in 0..20_000 {
        let len = 1 + (next() % 12) as usize;
        let s: String = (0..len)
            .map(|_| char::from(alphabet[(next() % alphabet.len() as u64) as usize]))
            .collect();
        for part in parts {
            if part == Part::Domain && (s.ends_with('.') || s.starts_with('[')) {
                continue;
            }
            assert_eq!(fast(part, &s), slow(part, &s), "{part:?} {s:?}");
        }
    }
}

#[test]
fn error_messages() {
    assert_eq!(
        JidError::ForbiddenLocalChar(' ').to_string(),
        "the localpart contains the forbidden character ' ' (U+0020)"
    );
    assert_eq!(
        JidError::ForbiddenResourceChar('\u{0}').to_string(),
        "the resourcepart contains the forbidden character '\\0' (U+0000)"
    );
    assert!(JidError::LocalTooLong.to_string().contains("1023"));
}

#[test]
fn compact() {
    assert!(std::mem::size_of::<Jid>() <= 24);
}
