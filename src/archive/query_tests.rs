//! Unit tests of `query.rs`; the queries are those of XEP-0313's examples
//! where there is one.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;
use crate::archive::rsm::{PageRequest, Position, ResultSet};
use crate::forms::NS_DATA;

const DEFAULT: usize = 50;
const CAP: usize = 250;

fn el(xml: &str) -> Element {
    Element::parse(xml).expect("xml")
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn query(xml: &str) -> Result<Query, StanzaError> {
    parse(&el(xml), DEFAULT, CAP)
}

/// A query whose form has FORM_TYPE and then `fields`, and then `rest`
/// (an RSM set, flip-page) after the form.
fn with_form(fields: &str, rest: &str) -> String {
    format!(
        "<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>\
         {fields}</x>{rest}</query>"
    )
}

fn form_query(fields: &str) -> Result<Query, StanzaError> {
    query(&with_form(fields, ""))
}

fn refused(xml: &str) -> (Condition, String) {
    match query(xml) {
        Ok(q) => panic!("{xml} accepted as {q:?}"),
        Err(e) => (e.condition, e.text.unwrap_or_default()),
    }
}

fn first_page(max: usize) -> PageRequest {
    PageRequest {
        max,
        position: Position::First,
    }
}

fn empty() -> Query {
    Query {
        query_id: None,
        with: None,
        start: None,
        end: None,
        after_id: None,
        before_id: None,
        ids: Vec::new(),
        page: first_page(DEFAULT),
        flip_page: false,
    }
}

#[test]
fn a_bare_query_asks_for_everything() {
    assert_eq!(
        query("<query xmlns='urn:xmpp:mam:2' queryid='f27'/>"),
        Ok(Query {
            query_id: Some("f27".into()),
            ..empty()
        })
    );
    assert_eq!(query("<query xmlns='urn:xmpp:mam:2'/>"), Ok(empty()));
}

#[test]
fn filtering_by_jid() {
    let q = form_query("<field var='with'><value>juliet@capulet.lit</value></field>").expect("q");
    assert_eq!(q.with.as_ref().map(Jid::as_str), Some("juliet@capulet.lit"));
    // Normalized, and a full JID stays full.
    let q = form_query(
        "<field var='with' type='jid-single'><value> Juliet@Capulet.lit/balcony\n</value></field>",
    )
    .expect("q");
    assert_eq!(
        q.with.as_ref().map(Jid::as_str),
        Some("juliet@capulet.lit/balcony")
    );
    for bad in [
        "a@b@c",
        "@capulet.lit",
        "juliet@",
        "juliet@capulet.lit/",
        " ",
    ] {
        let (c, t) = refused(&with_form(
            &format!("<field var='with'><value>{bad}</value></field>"),
            "",
        ));
        assert_eq!(c, Condition::JidMalformed, "{bad:?}");
        assert!(t.contains("'with'"), "{t}");
    }
}

#[test]
fn filtering_by_time() {
    let q = form_query(
        "<field var='start'><value>2010-06-07T00:00:00Z</value></field>\
         <field var='end'><value>2010-07-07T13:23:54Z</value></field>",
    )
    .expect("q");
    assert_eq!(q.start, Some(at(1_275_868_800)));
    assert_eq!(q.end, Some(at(1_278_509_034)));
    let q =
        form_query("<field var='start'><value>2010-08-07T00:00:00Z</value></field>").expect("q");
    assert_eq!(q.start, Some(at(1_281_139_200)));
    assert_eq!(q.end, None);
    // Offsets and fractions (XEP-0082).
    let q = form_query("<field var='end'><value>2010-08-07T02:00:00.250+02:00</value></field>")
        .expect("q");
    assert_eq!(q.end, Some(at(1_281_139_200) + Duration::from_millis(250)));
}

#[test]
fn start_after_end_is_no_error() {
    let q = form_query(
        "<field var='start'><value>2020-01-01T00:00:00Z</value></field>\
         <field var='end'><value>2010-01-01T00:00:00Z</value></field>",
    )
    .expect("q");
    assert!(q.start > q.end);
}

#[test]
fn dates_before_1970_are_the_epoch() {
    let q = form_query(
        "<field var='start'><value>1900-01-01T00:00:00Z</value></field>\
         <field var='end'><value>1969-12-31T23:59:59+01:00</value></field>",
    )
    .expect("q");
    assert_eq!(q.start, Some(UNIX_EPOCH));
    assert_eq!(q.end, Some(UNIX_EPOCH));
    // Malformed ones are still malformed.
    let (c, _) = refused(&with_form(
        "<field var='start'><value>1900-13-01T00:00:00Z</value></field>",
        "",
    ));
    assert_eq!(c, Condition::BadRequest);
}

#[test]
fn bad_dates_are_bad_requests() {
    for field in ["start", "end"] {
        for bad in [
            "yesterday",
            "2010-06-07",
            "2010-06-07T00:00:00",
            "2010-06-07 00:00:00Z",
            "2010-06-07T25:00:00Z",
            "1x00-01-01T00:00:00Z",
            "é",
        ] {
            let (c, t) = refused(&with_form(
                &format!("<field var='{field}'><value>{bad}</value></field>"),
                "",
            ));
            assert_eq!(c, Condition::BadRequest, "{field} {bad}");
            assert!(t.contains(&format!("'{field}'")), "{t}");
        }
    }
}

#[test]
fn limiting_by_id() {
    let q =
        form_query("<field var='after-id'><value>09af3-cc343-b409f</value></field>").expect("q");
    assert_eq!(q.after_id.as_deref(), Some("09af3-cc343-b409f"));
    let q = form_query(
        "<field var='after-id'><value>28482-98726-73623</value></field>\
         <field var='before-id'><value>09af3-cc343-b409f</value></field>",
    )
    .expect("q");
    assert_eq!(q.after_id.as_deref(), Some("28482-98726-73623"));
    assert_eq!(q.before_id.as_deref(), Some("09af3-cc343-b409f"));
    let q = form_query("<field var='ids'><value>28482-98726-73623</value></field>").expect("q");
    assert_eq!(q.ids, ["28482-98726-73623"]);
    // ids combine with other filters (all apply).
    let q = form_query(
        "<field var='ids'><value>a</value><value>b</value><value>a</value><value></value></field>\
         <field var='with'><value>romeo@montague.lit</value></field>",
    )
    .expect("q");
    assert_eq!(q.ids, ["a", "b"]);
    assert!(q.with.is_some());
}

#[test]
fn id_bounds() {
    let ok = "x".repeat(rsm::MAX_ID_BYTES);
    let long = "x".repeat(rsm::MAX_ID_BYTES + 1);
    for field in ["after-id", "before-id", "ids"] {
        let q = form_query(&format!("<field var='{field}'><value>{ok}</value></field>"));
        assert!(q.is_ok(), "{field}");
        let (c, t) = refused(&with_form(
            &format!("<field var='{field}'><value>{long}</value></field>"),
            "",
        ));
        assert_eq!(c, Condition::BadRequest, "{field}");
        assert!(t.contains("longer than 256 bytes"), "{t}");
    }
    let values = |n: usize| -> String {
        (0..n)
            .map(|i| format!("<value>id{i}</value>"))
            .collect::<String>()
    };
    let q = form_query(&format!("<field var='ids'>{}</field>", values(CAP))).expect("cap ids");
    assert_eq!(q.ids.len(), CAP);
    let (c, t) = refused(&with_form(
        &format!("<field var='ids'>{}</field>", values(CAP + 1)),
        "",
    ));
    assert_eq!(c, Condition::BadRequest);
    assert!(t.contains("more than 250 ids"), "{t}");
    // Beyond the forms limit (1024 values) the form itself is refused.
    let (c, _) = refused(&with_form(
        &format!("<field var='ids'>{}</field>", values(2000)),
        "",
    ));
    assert_eq!(c, Condition::BadRequest);
}

#[test]
fn query_id_bounds() {
    let ok = "q".repeat(MAX_QUERY_ID_BYTES);
    let q = query(&format!("<query xmlns='urn:xmpp:mam:2' queryid='{ok}'/>")).expect("q");
    assert_eq!(q.query_id, Some(ok));
    let long = "q".repeat(MAX_QUERY_ID_BYTES + 1);
    let (c, t) = refused(&format!("<query xmlns='urn:xmpp:mam:2' queryid='{long}'/>"));
    assert_eq!(c, Condition::BadRequest);
    assert!(t.contains("queryid"), "{t}");
}

#[test]
fn blank_fields_filter_nothing() {
    let q = form_query(
        "<field var='with' type='jid-single'/>\
         <field var='start' type='text-single'><value/></field>\
         <field var='end'/><field var='before-id'/><field var='after-id'><value></value></field>\
         <field var='ids' type='list-multi'/>",
    )
    .expect("q");
    assert_eq!(q, empty());
}

#[test]
fn several_values_in_a_single_field() {
    for field in ["with", "start", "end", "after-id", "before-id"] {
        let (c, t) = refused(&with_form(
            &format!("<field var='{field}'><value>a</value><value>b</value></field>"),
            "",
        ));
        assert_eq!(c, Condition::BadRequest, "{field}");
        assert!(t.contains("more than one value"), "{t}");
    }
}

#[test]
fn unknown_fields_are_not_implemented() {
    // §4.1.5's example of discovered fields, which this server lacks.
    let (c, t) = refused(&with_form(
        "<field type='text-single' var='{http://example.com/}free-text-search'>\
         <value>Where arth thou, my Juliet?</value></field>",
        "",
    ));
    assert_eq!(c, Condition::FeatureNotImplemented);
    assert!(t.contains("free-text-search"), "{t}");
    // §4.1.4: not advertised, so rejected.
    let (c, t) = refused(&with_form(
        "<field var='include-groupchat'><value>true</value></field>",
        "",
    ));
    assert_eq!(c, Condition::FeatureNotImplemented);
    assert!(t.contains("include-groupchat"), "{t}");
    // The quoted name is kept short.
    let long = "é".repeat(500);
    let (_, t) = refused(&with_form(&format!("<field var='{long}'/>"), ""));
    assert!(t.len() < 200, "{t}");
    // A field without a var (a 'fixed' one) is no filter.
    assert_eq!(
        form_query("<field type='fixed'><value>note</value></field>"),
        Ok(empty())
    );
}

#[test]
fn the_form_must_be_a_mam_submission() {
    for (form, why) in [
        (
            "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:1</value></field></x>",
            "FORM_TYPE",
        ),
        (
            "<x xmlns='jabber:x:data' type='submit'><field var='with'><value>a@b</value></field></x>",
            "no FORM_TYPE",
        ),
        (
            "<x xmlns='jabber:x:data' type='form'><field var='FORM_TYPE'><value>urn:xmpp:mam:2</value></field></x>",
            "'form'",
        ),
        ("<x xmlns='jabber:x:data' type='cancel'/>", "'cancel'"),
        (
            "<x xmlns='jabber:x:data' type='nonsense'/>",
            "the query form",
        ),
        (
            "<x xmlns='jabber:x:data'><field var='FORM_TYPE'/><field var='FORM_TYPE'/></x>",
            "appears twice",
        ),
    ] {
        let (c, t) = refused(&format!("<query xmlns='urn:xmpp:mam:2'>{form}</query>"));
        assert_eq!(c, Condition::BadRequest, "{form}");
        assert!(t.contains(why), "{form}: {t}");
    }
    // A form without a type is a submission (forms.rs).
    let q = query(
        "<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data'>\
         <field var='FORM_TYPE'><value>urn:xmpp:mam:2</value></field>\
         <field var='end'><value>1970-01-01T00:00:10Z</value></field></x></query>",
    )
    .expect("q");
    assert_eq!(q.end, Some(at(10)));
}

#[test]
fn not_a_query() {
    for xml in [
        "<query xmlns='urn:xmpp:mam:1'/>",
        "<prefs xmlns='urn:xmpp:mam:2'/>",
    ] {
        assert_eq!(refused(xml).0, Condition::BadRequest, "{xml}");
    }
    let (c, t) = refused("<query xmlns='urn:xmpp:mam:2' node='princely_musings'/>");
    assert_eq!(c, Condition::FeatureNotImplemented);
    assert!(t.contains("XEP-0442"), "{t}");
}

#[test]
fn paging() {
    // §4.3.1
    let q = query(&with_form(
        "<field var='start'><value>2010-08-07T00:00:00Z</value></field>",
        "<set xmlns='http://jabber.org/protocol/rsm'><max>10</max></set>",
    ))
    .expect("q");
    assert_eq!(q.page, first_page(10));
    // §4.3.2
    let q = query(&with_form(
        "",
        "<set xmlns='http://jabber.org/protocol/rsm'><max>10</max><after>09af3-cc343-b409f</after></set>",
    ))
    .expect("q");
    assert_eq!(
        q.page,
        PageRequest {
            max: 10,
            position: Position::After("09af3-cc343-b409f".into())
        }
    );
    // §4.3.3
    let q = query(&with_form(
        "",
        "<set xmlns='http://jabber.org/protocol/rsm'><max>10</max><before/></set>",
    ))
    .expect("q");
    assert_eq!(q.page.position, Position::Before(None));
    // §4.3.4
    let q = query(&with_form(
        "",
        "<set xmlns='http://jabber.org/protocol/rsm'><max>10</max><after>09af3-cc343-b409f</after></set><flip-page/>",
    ))
    .expect("q");
    assert!(q.flip_page);
    assert!(
        !query("<query xmlns='urn:xmpp:mam:2'><flip-page xmlns='urn:other'/></query>")
            .expect("q")
            .flip_page
    );
    // The cap, and the set without a form.
    let q = query(
        "<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>100000</max></set></query>",
    )
    .expect("q");
    assert_eq!(q.page, first_page(CAP));
    assert_eq!(
        parse(&el("<query xmlns='urn:xmpp:mam:2'/>"), 10, 5).map(|q| q.page),
        Ok(first_page(5))
    );
}

#[test]
fn rsm_errors_are_the_query_errors() {
    let rsm = |inner: &str| {
        format!(
            "<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'>{inner}</set></query>"
        )
    };
    assert_eq!(
        refused(&rsm("<after>a</after><before>b</before>")).0,
        Condition::BadRequest
    );
    assert_eq!(refused(&rsm("<max>-1</max>")).0, Condition::BadRequest);
    assert_eq!(
        refused(&rsm("<index>3</index>")).0,
        Condition::FeatureNotImplemented
    );
}

#[test]
fn the_query_form() {
    let q = form();
    assert!(q.is("query", NS_MAM));
    let x = q.get_child("x", NS_DATA).expect("form");
    let parsed = Form::parse(x).expect("parses");
    assert_eq!(parsed.kind, FormType::Form);
    assert_eq!(parsed.form_type(), Some(NS_MAM));
    let fields: Vec<_> = parsed
        .fields
        .iter()
        .map(|f| {
            (
                f.var.as_deref().unwrap_or(""),
                f.kind.map(FieldType::as_str),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            ("FORM_TYPE", Some("hidden")),
            ("with", Some("jid-single")),
            ("start", Some("text-single")),
            ("end", Some("text-single")),
            ("before-id", Some("text-single")),
            ("after-id", Some("text-single")),
            ("ids", Some("list-multi")),
        ]
    );
    assert!(
        parsed
            .fields
            .iter()
            .all(|f| !f.required && f.options.is_empty())
    );
    let ids = x
        .children()
        .find(|f| f.attr("var") == Some("ids"))
        .expect("ids");
    let validate = ids
        .get_child("validate", NS_XDATA_VALIDATE)
        .expect("validate");
    assert_eq!(validate.attr("datatype"), Some("xs:string"));
    assert!(validate.get_child("open", NS_XDATA_VALIDATE).is_some());
    // What a client sends back after filling it in is accepted.
    let mut filled = parsed;
    filled.kind = FormType::Submit;
    for f in &mut filled.fields {
        match f.var.as_deref() {
            Some("with") => f.values = vec!["romeo@montague.lit".into()],
            Some("start") => f.values = vec!["2010-08-07T00:00:00Z".into()],
            _ => {}
        }
    }
    let q = parse(
        &Element::new("query", NS_MAM).with_child(filled.to_element()),
        DEFAULT,
        CAP,
    )
    .expect("filled form");
    assert_eq!(q.with.as_ref().map(Jid::as_str), Some("romeo@montague.lit"));
    assert_eq!(q.start, Some(at(1_281_139_200)));
}

#[test]
fn fin_elements() {
    let set = ResultSet {
        first: Some("23452-4534-1".into()),
        last: Some("390-2342-22".into()),
        count: Some(16),
    };
    assert_eq!(
        fin(true, &set),
        el(
            "<fin xmlns='urn:xmpp:mam:2' complete='true'><set xmlns='http://jabber.org/protocol/rsm'>\
            <first>23452-4534-1</first><last>390-2342-22</last><count>16</count></set></fin>"
        )
    );
    let partial = fin(false, &set);
    assert_eq!(partial.attr("complete"), None);
    assert_eq!(partial.get_child("set", NS_RSM), Some(&set.to_element()));
    // §4: an empty result still ends with a fin and its set.
    assert_eq!(
        fin(true, &ResultSet::default()),
        el(
            "<fin xmlns='urn:xmpp:mam:2' complete='true'><set xmlns='http://jabber.org/protocol/rsm'/></fin>"
        )
    );
}

#[test]
fn result_elements() {
    let message = el(
        "<message xmlns='jabber:client' from='witch@shakespeare.lit' to='macbeth@shakespeare.lit'>\
                      <body>Hail to thee</body></message>",
    );
    let stamp = at(1_278_803_305) + Duration::from_millis(999);
    assert_eq!(
        result_wrapper(Some("f27"), "28482-98726-73623", stamp, message.clone()),
        el(
            "<result xmlns='urn:xmpp:mam:2' queryid='f27' id='28482-98726-73623'>\
            <forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2010-07-10T23:08:25Z'/>\
            <message xmlns='jabber:client' from='witch@shakespeare.lit' to='macbeth@shakespeare.lit'>\
            <body>Hail to thee</body></message></forwarded></result>"
        )
    );
    let r = result_wrapper(None, "x", stamp, message);
    assert_eq!(r.attr("queryid"), None);
    assert_eq!(r.attrs.len(), 1);
}
