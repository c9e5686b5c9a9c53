use super::*;

const LIMIT: u32 = 256;

fn form(xml: &str) -> Form {
    Form::parse(&Element::parse(xml).expect("xml")).expect("form")
}

/// A node_config submission with the given fields.
fn submit(fields: &str) -> Form {
    form(&format!(
        "<x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE' type='hidden'><value>{NS_NODE_CONFIG}</value></field>\
         {fields}</x>"
    ))
}

/// Publish options as pubsub_preconditions.scs sends them: no type.
fn options(fields: &str) -> Form {
    form(&format!(
        "<x xmlns='jabber:x:data'>\
         <field var='FORM_TYPE' type='hidden'><value>{NS_PUBLISH_OPTIONS}</value></field>\
         {fields}</x>"
    ))
}

fn field(var: &str, value: &str) -> String {
    format!("<field var='{var}'><value>{value}</value></field>")
}

fn not_acceptable_text(r: Result<(), ConfigError>) -> String {
    match r {
        Err(ConfigError::NotAcceptable(t)) => t,
        other => panic!("expected not-acceptable, got {other:?}"),
    }
}

/// The scansion matching rule (FORMAT.md §4) made strict: the same name,
/// namespace, attributes, text and number of children, children matched in
/// any order.
fn same_tree(expected: &Element, got: &Element) -> bool {
    let mut e_attrs = expected.attrs.clone();
    let mut g_attrs = got.attrs.clone();
    e_attrs.sort();
    g_attrs.sort();
    if !expected.is(&got.name, &got.ns)
        || e_attrs != g_attrs
        || expected.text().trim() != got.text().trim()
    {
        return false;
    }
    let mut left: Vec<&Element> = got.children().collect();
    if left.len() != expected.children().count() {
        return false;
    }
    for e in expected.children() {
        match left.iter().position(|g| same_tree(e, g)) {
            Some(i) => {
                left.remove(i);
            }
            None => return false,
        }
    }
    true
}

/// The form of pubsub_config.scs, as the script expects it.
const SCRIPT_FORM: &str = r#"<x xmlns="jabber:x:data" type="form">
  <field var="FORM_TYPE" type="hidden"><value>http://jabber.org/protocol/pubsub#node_config</value></field>
  <field var="pubsub#title" label="Title" type="text-single"/>
  <field var="pubsub#description" label="Description" type="text-single"/>
  <field var="pubsub#type" label="The type of node data, usually specified by the namespace of the payload (if any)" type="text-single"/>
  <field var="pubsub#max_items" label="Max # of items to persist" type="text-single">
    <validate xmlns="http://jabber.org/protocol/xdata-validate" datatype="pubsub:integer-or-max"><range min="1" max="256"/></validate>
    <value>1</value>
  </field>
  <field var="pubsub#persist_items" label="Persist items to storage" type="boolean"><value>1</value></field>
  <field var="pubsub#access_model" label="Specify the subscriber model" type="list-single">
    <option label="authorize"><value>authorize</value></option>
    <option label="open"><value>open</value></option>
    <option label="presence"><value>presence</value></option>
    <option label="roster"><value>roster</value></option>
    <option label="whitelist"><value>whitelist</value></option>
    <value>presence</value>
  </field>
  <field type="list-multi" var="pubsub#roster_groups_allowed" label="Roster groups allowed to subscribe"/>
  <field var="pubsub#publish_model" label="Specify the publisher model" type="list-single">
    <option label="publishers"><value>publishers</value></option>
    <option label="subscribers"><value>subscribers</value></option>
    <option label="open"><value>open</value></option>
    <value>publishers</value>
  </field>
  <field type='list-single' var='pubsub#send_last_published_item'>
    <option label='never'><value>never</value></option>
    <option label='on_sub'><value>on_sub</value></option>
    <option label='on_sub_and_presence'><value>on_sub_and_presence</value></option>
    <value>on_sub_and_presence</value>
  </field>
  <field var="pubsub#deliver_notifications" label="Whether to deliver event notifications" type="boolean"><value>1</value></field>
  <field var="pubsub#deliver_payloads" label="Whether to deliver payloads with event notifications" type="boolean"><value>1</value></field>
  <field var="pubsub#notification_type" label="Specify the delivery style for notifications" type="list-single">
    <option label="Messages of type normal"><value>normal</value></option>
    <option label="Messages of type headline"><value>headline</value></option>
    <value>headline</value>
  </field>
  <field var="pubsub#notify_delete" label="Whether to notify subscribers when the node is deleted" type="boolean"><value>1</value></field>
  <field var="pubsub#notify_retract" label="Whether to notify subscribers when items are removed from the node" type="boolean"><value>1</value></field>
  <field label="Specify whose JID to include as the publisher of items" var="pubsub#itemreply" type="list-single">
    <option label="Include the node owner's JID"><value>owner</value></option>
    <option label="Include the item publisher's JID"><value>publisher</value></option>
    <option label="Don't include any JID with items"><value>none</value></option>
    <value>none</value>
  </field>
</x>"#;

#[test]
fn the_pep_form_is_the_one_the_scripts_expect() {
    let expected = Element::parse(SCRIPT_FORM).expect("xml");
    let got = NodeConfig::pep_default().to_form(LIMIT);
    assert!(same_tree(&expected, &got), "{got:#?}");
}

#[test]
fn form_fields_come_in_order_with_their_labels_and_types() {
    let got = NodeConfig::service_default().to_form(LIMIT);
    let fields: Vec<(Option<&str>, Option<&str>, Option<&str>)> = got
        .children()
        .map(|f| (f.attr("var"), f.attr("type"), f.attr("label")))
        .collect();
    let expected = Element::parse(SCRIPT_FORM).expect("xml");
    let wanted: Vec<(Option<&str>, Option<&str>, Option<&str>)> = expected
        .children()
        .map(|f| (f.attr("var"), f.attr("type"), f.attr("label")))
        .collect();
    assert_eq!(fields, wanted);
    assert_eq!(fields.len(), 16);
    let parsed = Form::parse(&got).expect("form");
    assert_eq!(parsed.kind, FormType::Form);
    assert_eq!(parsed.form_type(), Some(NS_NODE_CONFIG));
    assert_eq!(parsed.value(MAX_ITEMS), Some("20"));
    assert_eq!(parsed.value(ACCESS_MODEL), Some("open"));
    assert_eq!(parsed.value(SEND_LAST), Some("never"));
    // The <validate/> comes before the value, as in XEP-0122's examples.
    let max = got
        .children()
        .find(|f| f.attr("var") == Some(MAX_ITEMS))
        .expect("max_items");
    let names: Vec<&str> = max.children().map(|c| c.name.as_ref()).collect();
    assert_eq!(names, ["validate", "value"]);
}

#[test]
fn form_values_follow_the_config() {
    let mut c = NodeConfig::pep_default();
    c.title = "Tunes".into();
    c.description = "What I listen to".into();
    c.node_type = "http://jabber.org/protocol/tune".into();
    c.max_items = MaxItems::Max;
    c.persist_items = false;
    c.roster_groups_allowed = vec!["Friends".into(), "Family".into()];
    c.notification_type = NotificationType::Normal;
    c.itemreply = ItemReply::Publisher;
    let f = Form::parse(&c.to_form(10)).expect("form");
    assert_eq!(f.value(TITLE), Some("Tunes"));
    assert_eq!(f.value(DESCRIPTION), Some("What I listen to"));
    assert_eq!(f.value(TYPE), Some("http://jabber.org/protocol/tune"));
    assert_eq!(f.value(MAX_ITEMS), Some("max"));
    assert_eq!(f.value(PERSIST_ITEMS), Some("0"));
    assert_eq!(
        f.field(ROSTER_GROUPS).map(|g| g.values.clone()),
        Some(vec!["Friends".to_string(), "Family".to_string()])
    );
    assert_eq!(f.value(NOTIFICATION_TYPE), Some("normal"));
    assert_eq!(f.value(ITEMREPLY), Some("publisher"));
    let range = c
        .to_form(10)
        .children()
        .find(|f| f.attr("var") == Some(MAX_ITEMS))
        .and_then(|f| f.get_child("validate", NS_XDATA_VALIDATE))
        .and_then(|v| v.get_child("range", NS_XDATA_VALIDATE))
        .map(|r| {
            (
                r.attr("min").map(str::to_string),
                r.attr("max").map(str::to_string),
            )
        });
    assert_eq!(range, Some((Some("1".into()), Some("10".into()))));
    // A count stored under a higher limit is shown as the current limit.
    c.max_items = MaxItems::Count(50);
    let f = Form::parse(&c.to_form(10)).expect("form");
    assert_eq!(f.value(MAX_ITEMS), Some("10"));
}

#[test]
fn defaults() {
    let pep = NodeConfig::pep_default();
    assert_eq!(pep.max_items, MaxItems::Count(1));
    assert!(pep.persist_items && pep.deliver_notifications && pep.deliver_payloads);
    assert!(pep.notify_delete && pep.notify_retract);
    assert_eq!(pep.access_model, AccessModel::Presence);
    assert_eq!(pep.publish_model, PublishModel::Publishers);
    assert_eq!(
        pep.send_last_published_item,
        SendLastPublished::OnSubAndPresence
    );
    assert_eq!(pep.notification_type, NotificationType::Headline);
    assert_eq!(pep.itemreply, ItemReply::None);
    let service = NodeConfig::service_default();
    assert_eq!(
        service,
        NodeConfig {
            max_items: MaxItems::Count(20),
            access_model: AccessModel::Open,
            send_last_published_item: SendLastPublished::Never,
            ..pep
        }
    );
}

#[test]
fn max_items_resolves_against_the_limit() {
    let mut c = NodeConfig::pep_default();
    assert_eq!(c.max_items(LIMIT), 1);
    c.max_items = MaxItems::Count(300);
    assert_eq!(c.max_items(LIMIT), 256);
    c.max_items = MaxItems::Max;
    assert_eq!(c.max_items(LIMIT), 256);
    assert_eq!(c.max_items(7), 7);
}

#[test]
fn the_echoed_form_is_accepted_and_round_trips() {
    let mut source = NodeConfig::service_default();
    source.title = "Title".into();
    source.max_items = MaxItems::Max;
    source.access_model = AccessModel::Roster;
    source.roster_groups_allowed = vec!["A".into(), "B".into()];
    source.publish_model = PublishModel::Open;
    source.deliver_payloads = false;
    source.notify_retract = false;
    source.itemreply = ItemReply::Owner;
    // What a client sends back: the form as received, type changed.
    let mut echoed = Form::parse(&source.to_form(LIMIT)).expect("form");
    echoed.kind = FormType::Submit;
    let mut target = NodeConfig::pep_default();
    target.apply(&echoed, LIMIT).expect("apply");
    assert_eq!(target, source);
    // And the literal form of the script, validate children and all.
    let mut c = NodeConfig::service_default();
    c.apply(&form(SCRIPT_FORM), LIMIT).expect("apply");
    assert_eq!(c, NodeConfig::pep_default());
}

#[test]
fn the_scripts_submissions_are_accepted() {
    // pubsub_config.scs, abridged to the fields that change something.
    let mut c = NodeConfig::pep_default();
    c.apply(
        &submit(
            "<field var='pubsub#title' type='text-single' label='Title'><value>Nice tunes</value></field>\
             <field var='pubsub#description' type='text-single' label='Description'/>\
             <field var='pubsub#max_items' type='text-single' label='Max # of items to persist'>\
             <validate xmlns='http://jabber.org/protocol/xdata-validate' datatype='pubsub:integer-or-max'>\
             <range min='1' max='256'/></validate><value>1</value></field>\
             <field type='list-multi' var='pubsub#roster_groups_allowed' label='Roster groups allowed to subscribe'/>\
             <field type='list-single' var='pubsub#send_last_published_item'><value>never</value></field>",
        ),
        LIMIT,
    )
    .expect("apply");
    assert_eq!(c.title, "Nice tunes");
    assert_eq!(c.description, "");
    assert_eq!(c.send_last_published_item, SendLastPublished::Never);
    // pubsub_preconditions.scs: itemreply submitted as a boolean.
    c.itemreply = ItemReply::Owner;
    c.apply(
        &submit("<field var='pubsub#itemreply' type='boolean'><value>none</value></field>"),
        LIMIT,
    )
    .expect("apply");
    assert_eq!(c.itemreply, ItemReply::None);
}

#[test]
fn a_partial_form_changes_only_its_fields() {
    let mut c = NodeConfig::pep_default();
    c.apply(&submit(&field(TITLE, "Only this")), LIMIT)
        .expect("apply");
    assert_eq!(
        c,
        NodeConfig {
            title: "Only this".into(),
            ..NodeConfig::pep_default()
        }
    );
    // Without FORM_TYPE, too.
    c.apply(
        &form(&format!(
            "<x xmlns='jabber:x:data' type='submit'>{}</x>",
            field(ACCESS_MODEL, "open")
        )),
        LIMIT,
    )
    .expect("apply");
    assert_eq!(c.access_model, AccessModel::Open);
    assert_eq!(c.title, "Only this");
    // An empty text field clears the value; a fixed field is ignored.
    c.apply(
        &submit("<field var='pubsub#title'/><field type='fixed'><value>Note</value></field>"),
        LIMIT,
    )
    .expect("apply");
    assert_eq!(c.title, "");
}

#[test]
fn every_field_value_is_read() {
    let mut c = NodeConfig::pep_default();
    let fields = [
        field(DESCRIPTION, "d"),
        field(TYPE, "urn:t"),
        field(MAX_ITEMS, " 42 "),
        field(PERSIST_ITEMS, "false"),
        field(ACCESS_MODEL, "whitelist"),
        "<field var='pubsub#roster_groups_allowed'><value>X</value><value></value>\
         <value>Y</value><value>X</value></field>"
            .to_string(),
        field(PUBLISH_MODEL, "subscribers"),
        field(SEND_LAST, "on_sub"),
        field(DELIVER_NOTIFICATIONS, "0"),
        field(DELIVER_PAYLOADS, "false"),
        field(NOTIFICATION_TYPE, "normal"),
        field(NOTIFY_DELETE, "0"),
        field(NOTIFY_RETRACT, "false"),
        field(ITEMREPLY, "publisher"),
    ]
    .concat();
    c.apply(&submit(&fields), LIMIT).expect("apply");
    assert_eq!(
        c,
        NodeConfig {
            title: String::new(),
            description: "d".into(),
            node_type: "urn:t".into(),
            max_items: MaxItems::Count(42),
            persist_items: false,
            access_model: AccessModel::Whitelist,
            roster_groups_allowed: vec!["X".into(), "Y".into()],
            publish_model: PublishModel::Subscribers,
            send_last_published_item: SendLastPublished::OnSub,
            deliver_notifications: false,
            deliver_payloads: false,
            notification_type: NotificationType::Normal,
            notify_delete: false,
            notify_retract: false,
            itemreply: ItemReply::Publisher,
        }
    );
    c.apply(
        &submit(&[field(PERSIST_ITEMS, "true"), field(NOTIFY_DELETE, "1")].concat()),
        LIMIT,
    )
    .expect("apply");
    assert!(c.persist_items && c.notify_delete);
    c.apply(&submit(&field(MAX_ITEMS, "max")), LIMIT)
        .expect("apply");
    assert_eq!(c.max_items, MaxItems::Max);
    c.apply(&submit(&field(MAX_ITEMS, "256")), LIMIT)
        .expect("apply");
    assert_eq!(c.max_items, MaxItems::Count(256));
}

#[test]
fn bad_forms_are_refused_and_change_nothing() {
    let cases: &[(&str, &str)] = &[
        (
            &field(MAX_ITEMS, "0"),
            "pubsub#max_items must be an integer from 1 to 256 or max",
        ),
        (&field(MAX_ITEMS, "-1"), "pubsub#max_items"),
        (&field(MAX_ITEMS, "+5"), "pubsub#max_items"),
        (&field(MAX_ITEMS, "ten"), "pubsub#max_items"),
        (&field(MAX_ITEMS, "257"), "from 1 to 256"),
        (
            &field(MAX_ITEMS, "99999999999999999999"),
            "pubsub#max_items",
        ),
        (&field(MAX_ITEMS, ""), "pubsub#max_items"),
        (
            "<field var='pubsub#max_items'/>",
            "pubsub#max_items needs a value",
        ),
        (
            &field(PERSIST_ITEMS, "yes"),
            "pubsub#persist_items must be a boolean",
        ),
        (
            "<field var='pubsub#notify_delete'/>",
            "pubsub#notify_delete",
        ),
        (
            &field(ACCESS_MODEL, "everyone"),
            "pubsub#access_model must be one of authorize, open",
        ),
        (&field(PUBLISH_MODEL, "owners"), "pubsub#publish_model"),
        (
            &field(SEND_LAST, "always"),
            "pubsub#send_last_published_item",
        ),
        (
            &field(NOTIFICATION_TYPE, "chat"),
            "pubsub#notification_type",
        ),
        (&field(ITEMREPLY, "1"), "pubsub#itemreply"),
        (
            "<field var='pubsub#title'><value>a</value><value>b</value></field>",
            "pubsub#title takes a single value",
        ),
        (
            &field("pubsub#children", "x"),
            "Unknown field: pubsub#children",
        ),
        (
            &field("muc#roomconfig_roomname", "x"),
            "Unknown field: muc#roomconfig_roomname",
        ),
        (
            "<field type='text-single'><value>x</value></field>",
            "without a var",
        ),
    ];
    for (fields, text) in cases {
        let mut c = NodeConfig::pep_default();
        // A valid field first: a refused form must not apply it.
        let form = submit(&format!("{}{fields}", field(TYPE, "changed")));
        let got = not_acceptable_text(c.apply(&form, LIMIT));
        assert!(got.contains(text), "{fields}: {got}");
        assert_eq!(c, NodeConfig::pep_default(), "{fields}");
    }
    let long = "x".repeat(MAX_TEXT_CHARS + 1);
    let mut c = NodeConfig::pep_default();
    assert!(
        not_acceptable_text(c.apply(&submit(&field(DESCRIPTION, &long)), LIMIT)).contains("longer")
    );
    let long_group = "g".repeat(MAX_NAME_BYTES + 1);
    assert!(
        not_acceptable_text(c.apply(&submit(&field(ROSTER_GROUPS, &long_group)), LIMIT))
            .contains("roster group")
    );
    let many = (0..=MAX_ROSTER_GROUPS)
        .map(|i| format!("<value>g{i}</value>"))
        .collect::<String>();
    let many = format!("<field var='pubsub#roster_groups_allowed'>{many}</field>");
    assert!(not_acceptable_text(c.apply(&submit(&many), LIMIT)).contains("groups"));
    assert_eq!(c, NodeConfig::pep_default());
}

#[test]
fn a_wrong_form_type_is_refused() {
    let mut c = NodeConfig::pep_default();
    for ft in [
        "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>",
        "<field var='FORM_TYPE'/>",
        "<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>",
    ] {
        let f = form(&format!(
            "<x xmlns='jabber:x:data' type='submit'>{ft}{}</x>",
            field(TITLE, "t")
        ));
        let text = not_acceptable_text(c.apply(&f, LIMIT));
        assert!(text.contains("FORM_TYPE"), "{text}");
    }
    assert_eq!(c, NodeConfig::pep_default());
}

#[test]
fn publish_options_configure_a_new_node() {
    let f = options(&[field(ACCESS_MODEL, "open"), field(MAX_ITEMS, "max")].concat());
    assert_eq!(f.kind, FormType::Submit);
    let c =
        NodeConfig::from_publish_options(NodeConfig::pep_default(), &f, LIMIT).expect("options");
    assert_eq!(
        c,
        NodeConfig {
            access_model: AccessModel::Open,
            max_items: MaxItems::Max,
            ..NodeConfig::pep_default()
        }
    );
    let with_type = form(&format!(
        "<x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE' type='hidden'><value>{NS_PUBLISH_OPTIONS}</value></field>{}</x>",
        field(PERSIST_ITEMS, "false")
    ));
    let c = NodeConfig::from_publish_options(NodeConfig::service_default(), &with_type, LIMIT)
        .expect("options");
    assert!(!c.persist_items);
}

#[test]
fn bad_publish_options_are_not_acceptable() {
    let base = NodeConfig::pep_default;
    let missing = form(&format!(
        "<x xmlns='jabber:x:data'>{}</x>",
        field(TITLE, "t")
    ));
    let node_config = submit(&field(TITLE, "t"));
    for (f, text) in [
        (
            &missing,
            "FORM_TYPE must be http://jabber.org/protocol/pubsub#publish-options",
        ),
        (&node_config, "FORM_TYPE"),
        (
            &options(&field("pubsub#bogus", "1")),
            "Unknown field: pubsub#bogus",
        ),
        (&options(&field(MAX_ITEMS, "0")), "pubsub#max_items"),
        (
            &options(&field(ACCESS_MODEL, "nobody")),
            "pubsub#access_model",
        ),
    ] {
        let got = not_acceptable_text(NodeConfig::from_publish_options(base(), f, LIMIT).map(drop));
        assert!(got.contains(text), "{got}");
        let got = not_acceptable_text(base().check_preconditions(f, LIMIT));
        assert!(got.contains(text), "{got}");
    }
}

#[test]
fn preconditions_compare_by_meaning() {
    let mut c = NodeConfig::pep_default();
    c.roster_groups_allowed = vec!["A".into(), "B".into()];
    let ok = |fields: &str| c.check_preconditions(&options(fields), LIMIT);
    assert_eq!(ok(""), Ok(()));
    assert_eq!(ok(&field(ACCESS_MODEL, "presence")), Ok(()));
    assert_eq!(ok(&field(PERSIST_ITEMS, "true")), Ok(()));
    assert_eq!(ok(&field(PERSIST_ITEMS, "1")), Ok(()));
    assert_eq!(ok(&field(MAX_ITEMS, "1")), Ok(()));
    assert_eq!(ok(&field(MAX_ITEMS, "01")), Ok(()));
    assert_eq!(ok(&field(ITEMREPLY, "none")), Ok(()));
    assert_eq!(ok("<field var='pubsub#title'/>"), Ok(()));
    assert_eq!(
        ok(
            "<field var='pubsub#roster_groups_allowed'><value>B</value><value>A</value><value>A</value></field>"
        ),
        Ok(())
    );
    let mismatch = |fields: &str, name: &str| {
        assert_eq!(
            ok(fields),
            Err(ConfigError::PreconditionNotMet(format!(
                "Field does not match: {name}"
            ))),
            "{fields}"
        );
    };
    mismatch(&field(ACCESS_MODEL, "whitelist"), "access_model");
    mismatch(&field(PERSIST_ITEMS, "false"), "persist_items");
    mismatch(&field(MAX_ITEMS, "max"), "max_items");
    mismatch(&field(MAX_ITEMS, "2"), "max_items");
    mismatch(&field(TITLE, "t"), "title");
    mismatch(&field(ROSTER_GROUPS, "A"), "roster_groups_allowed");
    // The first mismatch is named.
    mismatch(
        &[field(PUBLISH_MODEL, "open"), field(ACCESS_MODEL, "open")].concat(),
        "publish_model",
    );
    // An unknown field is refused even after a mismatch.
    assert!(matches!(
        ok(&[field(ACCESS_MODEL, "open"), field("pubsub#x", "1")].concat()),
        Err(ConfigError::NotAcceptable(_))
    ));
    let c = NodeConfig {
        max_items: MaxItems::Max,
        ..c.clone()
    };
    assert_eq!(
        c.check_preconditions(&options(&field(MAX_ITEMS, "max")), LIMIT),
        Ok(())
    );
    assert_eq!(
        c.check_preconditions(&options(&field(MAX_ITEMS, "256")), LIMIT),
        Err(ConfigError::PreconditionNotMet(
            "Field does not match: max_items".into()
        ))
    );
    // The whole default configuration, echoed as options, matches itself.
    let mut all = Form::parse(&c.to_form(LIMIT)).expect("form");
    for f in &mut all.fields {
        if f.var.as_deref() == Some("FORM_TYPE") {
            f.values = vec![NS_PUBLISH_OPTIONS.to_string()];
        }
    }
    assert_eq!(c.check_preconditions(&all, LIMIT), Ok(()));
}

#[test]
fn errors_carry_their_text() {
    let err = ConfigError::PreconditionNotMet("Field does not match: access_model".into());
    assert_eq!(err.text(), "Field does not match: access_model");
    assert_eq!(err.to_string(), "Field does not match: access_model");
    assert_eq!(ConfigError::NotAcceptable("bad".into()).text(), "bad");
}

#[test]
fn long_values_are_cut_in_error_texts() {
    let mut c = NodeConfig::pep_default();
    let text = not_acceptable_text(c.apply(&submit(&field(ACCESS_MODEL, &"é".repeat(500))), LIMIT));
    assert!(text.len() < 300, "{text}");
    assert!(text.ends_with('…'));
}

#[test]
fn enum_values_parse_back_and_codes_are_distinct() {
    fn check<T: Choice + PartialEq + fmt::Debug>(code: fn(T) -> u8, from: fn(u8) -> Option<T>) {
        let mut codes = Vec::new();
        for &v in T::ALL {
            assert_eq!(T::parse(v.as_str()), Some(v));
            assert_eq!(from(code(v)), Some(v));
            assert!(!codes.contains(&code(v)));
            codes.push(code(v));
        }
        assert_eq!(T::parse("bogus"), None);
        assert_eq!(from(200), None);
    }
    check(AccessModel::code, AccessModel::from_code);
    check(PublishModel::code, PublishModel::from_code);
    check(SendLastPublished::code, SendLastPublished::from_code);
    check(NotificationType::code, NotificationType::from_code);
    check(ItemReply::code, ItemReply::from_code);
}

/// Configurations covering every value of every field.
fn variety() -> Vec<NodeConfig> {
    let mut out = vec![NodeConfig::pep_default(), NodeConfig::service_default()];
    let mut c = NodeConfig::pep_default();
    c.title = "Titre ünïcode 🎵".into();
    c.description = "d".repeat(300);
    c.node_type = "urn:xmpp:microblog:0".into();
    c.roster_groups_allowed = vec!["Friends".into(), String::new(), "Ünï".into()];
    out.push(c.clone());
    for max in [
        MaxItems::Max,
        MaxItems::Count(0),
        MaxItems::Count(127),
        MaxItems::Count(128),
        MaxItems::Count(u32::MAX),
    ] {
        out.push(NodeConfig {
            max_items: max,
            ..c.clone()
        });
    }
    for &v in AccessModel::ALL {
        out.push(NodeConfig {
            access_model: v,
            ..c.clone()
        });
    }
    for &v in PublishModel::ALL {
        out.push(NodeConfig {
            publish_model: v,
            ..c.clone()
        });
    }
    for &v in SendLastPublished::ALL {
        out.push(NodeConfig {
            send_last_published_item: v,
            ..c.clone()
        });
    }
    for &v in NotificationType::ALL {
        out.push(NodeConfig {
            notification_type: v,
            ..c.clone()
        });
    }
    for &v in ItemReply::ALL {
        out.push(NodeConfig {
            itemreply: v,
            ..c.clone()
        });
    }
    for bit in 0..5 {
        let on = |b: u8| bit == b;
        out.push(NodeConfig {
            persist_items: on(0),
            deliver_notifications: on(1),
            deliver_payloads: on(2),
            notify_delete: on(3),
            notify_retract: on(4),
            ..c.clone()
        });
    }
    out
}

#[test]
fn encode_decode_round_trips() {
    for c in variety() {
        let bytes = c.encode();
        assert_eq!(bytes.first(), Some(&VERSION));
        assert_eq!(NodeConfig::decode(&bytes), Ok(c.clone()));
    }
    // Compact: the PEP default fits in a few bytes.
    assert_eq!(NodeConfig::pep_default().encode().len(), 12);
}

#[test]
fn truncated_or_extended_records_are_refused() {
    for c in variety() {
        let bytes = c.encode();
        for len in 0..bytes.len() {
            assert!(
                NodeConfig::decode(bytes.get(..len).unwrap_or_default()).is_err(),
                "{len}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(NodeConfig::decode(&longer).is_err());
    }
}

#[test]
fn malformed_records_are_refused() {
    let good = NodeConfig::pep_default().encode();
    // version, 3 empty strings, max_items, flags, 5 enums, group count.
    assert_eq!(good, [1, 0, 0, 0, 2, 31, 2, 0, 2, 1, 2, 0]);
    let with = |i: usize, b: u8| {
        let mut v = good.clone();
        if let Some(slot) = v.get_mut(i) {
            *slot = b;
        }
        NodeConfig::decode(&v)
    };
    assert!(with(0, 2).is_err(), "version");
    assert!(with(0, 0).is_err(), "version");
    assert!(with(5, 32).is_err(), "flags");
    assert!(with(6, 5).is_err(), "access_model");
    assert!(with(7, 3).is_err(), "publish_model");
    assert!(with(8, 3).is_err(), "send_last");
    assert!(with(9, 2).is_err(), "notification_type");
    assert!(with(10, 3).is_err(), "itemreply");
    assert!(with(11, 1).is_err(), "group count without groups");
    assert!(with(1, 1).is_err(), "title length beyond the end");
    for bad in [
        // Invalid UTF-8 in the title.
        vec![1, 1, 0xff, 0, 0, 2, 31, 2, 0, 2, 1, 2, 0],
        // A string length of 2^63.
        vec![
            1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
        ],
        // A varint longer than 64 bits.
        vec![
            1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ],
        vec![
            1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
        ],
        // max_items above u32.
        vec![
            1, 0, 0, 0, 0x81, 0x80, 0x80, 0x80, 0x10, 31, 2, 0, 2, 1, 2, 0,
        ],
        // A huge group count.
        vec![
            1, 0, 0, 0, 2, 31, 2, 0, 2, 1, 2, 0xff, 0xff, 0xff, 0xff, 0x0f,
        ],
    ] {
        assert!(NodeConfig::decode(&bad).is_err(), "{bad:?}");
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A fixed xorshift sequence: reproducible noise.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let len = (next() % 40) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if let Some(first) = bytes.first_mut() {
            // Mostly the right version, to get past the first check.
            if next() % 4 != 0 {
                *first = VERSION;
            }
        }
        if let Ok(c) = NodeConfig::decode(&bytes) {
            assert_eq!(NodeConfig::decode(&c.encode()), Ok(c));
        }
    }
    // Every single-byte change of a real record.
    let good = variety().swap_remove(2).encode();
    for i in 0..good.len() {
        for b in 0..=255u8 {
            let mut v = good.clone();
            if let Some(slot) = v.get_mut(i) {
                *slot = b;
            }
            let _ = NodeConfig::decode(&v);
        }
    }
}
