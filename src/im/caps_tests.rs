use super::*;

const CAPS: &str = "http://jabber.org/protocol/caps";
const INFO: &str = "http://jabber.org/protocol/disco#info";
const ITEMS: &str = "http://jabber.org/protocol/disco#items";

fn parse(xml: &str) -> Element {
    match Element::parse(xml) {
        Ok(e) => e,
        Err(e) => panic!("{e}: {xml}"),
    }
}

/// A disco#info query with these children (XML, in the disco#info
/// namespace unless they declare another).
fn query(children: &[&str]) -> Element {
    parse(&format!(
        "<query xmlns='{INFO}' xmlns:xml='http://www.w3.org/XML/1998/namespace'>{}</query>",
        children.concat()
    ))
}

fn identity(category: &str, kind: &str, name: &str) -> String {
    format!("<identity category='{category}' type='{kind}' name='{name}'/>")
}

fn feature(var: &str) -> String {
    format!("<feature var='{var}'/>")
}

/// Every order of `items` (Heap's algorithm).
fn permutations(items: &[String]) -> Vec<Vec<String>> {
    fn heap(k: usize, items: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if k <= 1 {
            out.push(items.clone());
            return;
        }
        for i in 0..k - 1 {
            heap(k - 1, items, out);
            if k.is_multiple_of(2) {
                items.swap(i, k - 1);
            } else {
                items.swap(0, k - 1);
            }
        }
        heap(k - 1, items, out);
    }
    let mut items = items.to_vec();
    let mut out = Vec::new();
    heap(items.len(), &mut items, &mut out);
    out
}

fn sha1(children: &[String]) -> Result<String, InvalidInfo> {
    let refs: Vec<&str> = children.iter().map(String::as_str).collect();
    ver_of(&query(&refs), CapsHash::Sha1)
}

/// Every order of `children` hashes to `ver` with SHA-1.
fn assert_ver_any_order(children: &[String], ver: &str) {
    let orders = permutations(children);
    let expected: usize = (1..=children.len()).product();
    assert_eq!(orders.len(), expected);
    for order in orders {
        assert_eq!(sha1(&order).as_deref(), Ok(ver), "{order:?}");
    }
}

#[test]
fn simple_generation_example() {
    // XEP-0115 §5.2.
    let children = [
        identity("client", "pc", "Exodus 0.9.1"),
        feature(INFO),
        feature(ITEMS),
        feature("http://jabber.org/protocol/muc"),
        feature(CAPS),
    ];
    let refs: Vec<&str> = children.iter().map(String::as_str).collect();
    assert_eq!(
        verification_string(&query(&refs)).as_deref(),
        Ok("client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<\
            http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<\
            http://jabber.org/protocol/muc<")
    );
    assert_ver_any_order(&children, "QgayPKawpkPSDYmwT/WM94uAlu0=");
}

const COMPLEX_FORM: &str = "<x xmlns='jabber:x:data' type='result'>\
    <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>\
    <field var='ip_version' type='text-multi'><value>ipv6</value><value>ipv4</value></field>\
    <field var='software'><value>Psi</value></field>\
    <field var='os_version'><value>10.5.1</value></field>\
    <field var='os'><value>Mac</value></field>\
    <field var='software_version'><value>0.11</value></field>\
    </x>";

#[test]
fn complex_generation_example() {
    // XEP-0115 §5.3, with the form's fields and values shuffled.
    let children = [
        "<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>".to_string(),
        "<identity xml:lang='el' category='client' name='\u{3a8} 0.11' type='pc'/>".to_string(),
        feature(CAPS),
        feature(INFO),
        feature(ITEMS),
        feature("http://jabber.org/protocol/muc"),
        COMPLEX_FORM.to_string(),
    ];
    let refs: Vec<&str> = children.iter().map(String::as_str).collect();
    assert_eq!(
        verification_string(&query(&refs)).as_deref(),
        Ok("client/pc/el/\u{3a8} 0.11<client/pc/en/Psi 0.11<\
            http://jabber.org/protocol/caps<http://jabber.org/protocol/disco#info<\
            http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<\
            urn:xmpp:dataforms:softwareinfo<\
            ip_version<ipv4<ipv6<os<Mac<os_version<10.5.1<software<Psi<software_version<0.11<")
    );
    let mut reversed = children.to_vec();
    reversed.reverse();
    for order in [children.to_vec(), reversed] {
        assert_eq!(
            sha1(&order).as_deref(),
            Ok("q07IKJEyjvHSyhy//CH0CxmKi8w="),
            "{order:?}"
        );
    }
}

#[test]
fn real_world_clients_verify() {
    let cases: [(Vec<String>, &str); 4] = [
        (
            vec![
                identity("client", "pc", "Verse"),
                feature(CAPS),
                feature(INFO),
                feature(ITEMS),
            ],
            "PDH7CGVPRERS2WUqBD18PHGEzaY=",
        ),
        (
            vec![
                identity("client", "pc", "Verse"),
                feature(CAPS),
                feature(INFO),
                feature(ITEMS),
                feature("http://jabber.org/protocol/mood+notify"),
                feature("http://jabber.org/protocol/tune+notify"),
            ],
            "IfQwbaaDB4LEP5tkGArEaB/3Y+s=",
        ),
        (
            vec![
                identity("client", "console", "clix"),
                feature(CAPS),
                feature(INFO),
                feature(ITEMS),
                feature("http://jabber.org/protocol/nick+notify"),
            ],
            "jC32N+FhQoLrZ7nNQtZK3aqR0Fk=",
        ),
        (
            vec![
                identity("client", "bot", "scansion"),
                feature(INFO),
                feature("urn:xmpp:bookmarks:1+notify"),
            ],
            "CPuQARM1gCTq2f6/ZjHUzWL2QHg=",
        ),
    ];
    for (children, ver) in &cases {
        assert_ver_any_order(children, ver);
        let refs: Vec<&str> = children.iter().map(String::as_str).collect();
        let q = query(&refs);
        let claim = CapsClaim {
            node: "https://example.org/client".into(),
            ver: (*ver).to_string(),
            hash: CapsHash::Sha1,
        };
        assert!(verifies(&q, &claim), "{ver}");
        let wrong = CapsClaim {
            ver: "QgayPKawpkPSDYmwT/WM94uAlu0=".into(),
            ..claim.clone()
        };
        assert!(!verifies(&q, &wrong), "{ver}");
        let other_hash = CapsClaim {
            hash: CapsHash::Sha256,
            ..claim
        };
        assert!(!verifies(&q, &other_hash), "{ver}");
    }
}

#[test]
fn other_hash_functions() {
    let q = query(&[&identity("client", "pc", "x"), &feature(INFO)]);
    for (hash, len) in [
        (CapsHash::Sha1, 28),
        (CapsHash::Sha256, 44),
        (CapsHash::Sha512, 88),
    ] {
        assert_eq!(CapsHash::from_name(hash.name()), Some(hash));
        let ver = ver_of(&q, hash).unwrap_or_default();
        assert_eq!(ver.len(), len, "{hash:?}");
        let claim = CapsClaim {
            node: "n".into(),
            ver,
            hash,
        };
        assert!(verifies(&q, &claim), "{hash:?}");
    }
    assert_eq!(CapsHash::from_name("SHA-256"), Some(CapsHash::Sha256));
    assert_eq!(CapsHash::from_name("md5"), None);
    assert_eq!(CapsHash::from_name("sha1"), None);
}

fn presence(c: &str) -> Element {
    parse(&format!("<presence xmlns='jabber:client'>{c}</presence>"))
}

#[test]
fn claims() {
    let p = presence(&format!(
        "<c xmlns='{CAPS}' hash='sha-1' node='http://code.google.com/p/exodus' \
         ver='QgayPKawpkPSDYmwT/WM94uAlu0='/>"
    ));
    let claim = claim_of(&p);
    assert_eq!(
        claim,
        Some(CapsClaim {
            node: "http://code.google.com/p/exodus".into(),
            ver: "QgayPKawpkPSDYmwT/WM94uAlu0=".into(),
            hash: CapsHash::Sha1,
        })
    );
    assert_eq!(
        claim.map(|c| c.disco_node()).as_deref(),
        Some("http://code.google.com/p/exodus#QgayPKawpkPSDYmwT/WM94uAlu0=")
    );
    let long = "a".repeat(MAX_CLAIM_LEN + 1);
    let max = "a".repeat(MAX_CLAIM_LEN);
    assert!(
        claim_of(&presence(&format!(
            "<c xmlns='{CAPS}' hash='sha-1' node='{max}' ver='{max}'/>"
        )))
        .is_some()
    );
    for c in [
        // Legacy caps: no hash.
        format!("<c xmlns='{CAPS}' node='http://psi-im.org/caps' ver='0.9.1' ext='cs'/>"),
        // A hash function not supported.
        format!("<c xmlns='{CAPS}' hash='md5' node='n' ver='v'/>"),
        format!("<c xmlns='{CAPS}' hash='sha-1' node='n'/>"),
        format!("<c xmlns='{CAPS}' hash='sha-1' ver='v'/>"),
        format!("<c xmlns='{CAPS}' hash='sha-1' node='n' ver=''/>"),
        format!("<c xmlns='{CAPS}' hash='sha-1' node='' ver='v'/>"),
        format!("<c xmlns='{CAPS}' hash='sha-1' node='n' ver='{long}'/>"),
        format!("<c xmlns='{CAPS}' hash='sha-1' node='{long}' ver='v'/>"),
        "<c xmlns='urn:other' hash='sha-1' node='n' ver='v'/>".to_string(),
        String::new(),
    ] {
        assert_eq!(claim_of(&presence(&c)), None, "{c}");
    }
}

#[test]
fn ill_formed_answers_are_refused() {
    let id = identity("client", "pc", "x");
    let cases: [(Vec<String>, InvalidInfo); 7] = [
        (
            vec![id.clone(), id.clone(), feature(INFO)],
            InvalidInfo::DuplicateIdentity("client/pc//x".into()),
        ),
        (
            vec![id.clone(), feature(INFO), feature(CAPS), feature(INFO)],
            InvalidInfo::DuplicateFeature(INFO.into()),
        ),
        (
            vec![
                id.clone(),
                "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'>\
                 <value>urn:a</value></field></x>"
                    .into(),
                "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'>\
                 <value>urn:a</value></field><field var='b'/></x>"
                    .into(),
            ],
            InvalidInfo::DuplicateFormType("urn:a".into()),
        ),
        (
            vec![
                "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'>\
                 <value>urn:a</value><value>urn:b</value></field></x>"
                    .into(),
            ],
            InvalidInfo::ConflictingFormType,
        ),
        (
            vec![
                "<x xmlns='jabber:x:data' type='result'><field var='a'/><field var='a'/></x>"
                    .into(),
            ],
            InvalidInfo::BadForm(FormError::DuplicateVar("a".into())),
        ),
        (
            vec!["<identity type='pc'/>".into()],
            InvalidInfo::BadIdentity,
        ),
        (
            vec![id.clone(), "<feature/>".into()],
            InvalidInfo::BadFeature,
        ),
    ];
    for (children, err) in cases {
        assert_eq!(sha1(&children), Err(err.clone()), "{children:?}");
        let refs: Vec<&str> = children.iter().map(String::as_str).collect();
        let claim = CapsClaim {
            node: "n".into(),
            ver: "v".into(),
            hash: CapsHash::Sha1,
        };
        assert!(!verifies(&query(&refs), &claim));
        assert!(!err.to_string().is_empty());
    }
    assert_eq!(
        ver_of(&parse(&format!("<query xmlns='{ITEMS}'/>")), CapsHash::Sha1),
        Err(InvalidInfo::NotDiscoInfo)
    );
}

#[test]
fn tolerated_variations() {
    // Same category/type/lang with different names is not a duplicate;
    // the name breaks the tie. Repeating one FORM_TYPE value is allowed.
    let q = query(&[
        &identity("client", "pc", "b"),
        &identity("client", "pc", "a"),
        "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'>\
         <value>urn:a</value><value>urn:a</value></field>\
         <field type='fixed'><value>no var</value></field>\
         <field var='v'><value>2</value><value>1</value></field></x>",
        "<unknown xmlns='urn:other'/>",
        "<feature xmlns='urn:other' var='not-a-feature'/>",
    ]);
    assert_eq!(
        verification_string(&q).as_deref(),
        Ok("client/pc//a<client/pc//b<urn:a<v<1<2<")
    );
}

#[test]
fn forms_without_hidden_form_type_are_ignored() {
    let base = [identity("client", "pc", "x"), feature(INFO)];
    let expected = sha1(&base);
    assert!(expected.is_ok());
    for form in [
        "<x xmlns='jabber:x:data' type='result'><field var='os'><value>Mac</value></field></x>",
        "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE'>\
         <value>urn:a</value></field></x>",
        "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='text-single'>\
         <value>urn:a</value></field></x>",
        "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'/></x>",
    ] {
        let mut children = base.to_vec();
        children.push(form.to_string());
        assert_eq!(sha1(&children), expected, "{form}");
    }
}

#[test]
fn sorting_is_by_octets_and_identities_by_fields() {
    // By the joined string, "a-b/x" would come before "a/x" ('-' < '/');
    // §5.1 sorts by category first. Upper case sorts before lower case.
    let q = query(&[
        &identity("a-b", "x", ""),
        &identity("a", "x", ""),
        "<identity category='a' type='x' xml:lang='en'/>",
        &feature("b"),
        &feature("B"),
        &feature("\u{e9}"),
        &feature("z"),
    ]);
    assert_eq!(
        verification_string(&q).as_deref(),
        Ok("a/x//<a/x/en/<a-b/x//<B<b<z<\u{e9}<")
    );
}

#[test]
fn size_limit() {
    let mut children = vec![identity("client", "pc", "x")];
    children.extend((1..MAX_INFO_ENTRIES).map(|i| feature(&format!("urn:f:{i}"))));
    assert!(sha1(&children).is_ok());
    children.push(feature("urn:one-more"));
    assert_eq!(sha1(&children), Err(InvalidInfo::TooLarge));

    // Form fields and values count too.
    let values: String = (0..MAX_INFO_ENTRIES)
        .map(|i| format!("<value>{i}</value>"))
        .collect();
    let form = format!(
        "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'>\
         <value>urn:a</value></field><field var='v'>{values}</field></x>"
    );
    assert_eq!(sha1(&[form]), Err(InvalidInfo::TooLarge));
}

#[test]
fn features() {
    let q = query(&[
        &identity("client", "pc", "x"),
        &feature(INFO),
        &feature("urn:xmpp:bookmarks:1+notify"),
        &feature("http://jabber.org/protocol/tune+notify"),
        &feature("http://jabber.org/protocol/tune"),
        &feature(INFO),
        "<feature xmlns='urn:other' var='urn:other+notify'/>",
        "<feature/>",
    ]);
    let f = Features::from_info(&q);
    assert_eq!(f.len(), 4);
    assert!(!f.is_empty());
    assert_eq!(
        f.iter().collect::<Vec<_>>(),
        [
            INFO,
            "http://jabber.org/protocol/tune",
            "http://jabber.org/protocol/tune+notify",
            "urn:xmpp:bookmarks:1+notify",
        ]
    );
    assert!(f.has(INFO));
    assert!(f.has("http://jabber.org/protocol/tune"));
    assert!(!f.has("http://jabber.org/protocol"));
    assert!(!f.has("urn:other+notify"));
    assert!(f.wants_notify("http://jabber.org/protocol/tune"));
    assert!(f.wants_notify("urn:xmpp:bookmarks:1"));
    assert!(!f.wants_notify("urn:xmpp:bookmarks"));
    assert!(!f.wants_notify("urn:xmpp:bookmarks:1+"));
    assert!(!f.wants_notify("urn:xmpp:bookmarks:1+notify"));
    assert!(!f.wants_notify("http://jabber.org/protocol/mood"));
    assert!(!f.wants_notify(""));
    assert!(!f.wants_notify("urn:other"));

    let empty = Features::default();
    assert!(empty.is_empty());
    assert!(!empty.has(""));
    assert!(!empty.wants_notify("x"));
    assert_eq!(
        Features::from_vars(["b", "a", "b"]),
        Features::from_vars(["a", "b"])
    );

    // Every feature of a large set is found, and nothing between them.
    let vars: Vec<String> = (0..300).map(|i| format!("urn:n:{i}+notify")).collect();
    let big = Features::from_vars(vars.iter().map(String::as_str));
    assert_eq!(big.len(), 300);
    for i in 0..300 {
        assert!(big.wants_notify(&format!("urn:n:{i}")), "{i}");
        assert!(big.has(&format!("urn:n:{i}+notify")), "{i}");
        assert!(!big.wants_notify(&format!("urn:n:{i}x")), "{i}");
    }
}

fn features_of(var: &str) -> Rc<Features> {
    Rc::new(Features::from_vars([var]))
}

#[test]
fn cache_is_bounded() {
    let cache = CapsCache::new(16);
    assert!(cache.is_empty());
    assert_eq!(cache.capacity(), 16);
    for i in 0..160 {
        cache.insert(format!("ver{i}"), features_of(&format!("f{i}")));
        assert!(cache.len() <= 16, "{i}");
    }
    assert_eq!(cache.len(), 16);
    // The newest ones are there, the oldest gone.
    assert!(cache.get("ver159").is_some_and(|f| f.has("f159")));
    assert!(cache.get("ver144").is_some());
    assert!(cache.get("ver143").is_none());
    assert!(cache.get("ver0").is_none());
}

#[test]
fn cache_evicts_least_recently_used() {
    let cache = CapsCache::new(3);
    let shared = features_of("popular");
    cache.insert("popular".into(), Rc::clone(&shared));
    for i in 0..30 {
        // Read between inserts, as every presence of a popular client is.
        assert!(
            cache
                .get("popular")
                .is_some_and(|f| Rc::ptr_eq(&f, &shared)),
            "{i}"
        );
        cache.insert(format!("random{i}"), features_of("x"));
        assert_eq!(cache.len(), 3.min(i + 2));
    }
    assert!(cache.get("random29").is_some());
    assert!(cache.get("random28").is_some());
    assert!(cache.get("random27").is_none());

    // Re-inserting a ver replaces it and does not grow the cache.
    cache.insert("popular".into(), features_of("new"));
    assert_eq!(cache.len(), 3);
    assert!(cache.get("popular").is_some_and(|f| f.has("new")));
}

#[test]
fn zero_capacity_caches_nothing() {
    let cache = CapsCache::new(0);
    cache.insert("v".into(), features_of("f"));
    assert!(cache.is_empty());
    assert!(cache.get("v").is_none());
}
