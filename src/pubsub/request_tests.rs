use super::*;
use crate::stanza::Condition;

fn parse_xml(xml: &str, set: bool) -> Result<Request, StanzaError> {
    parse(&Element::parse(xml).expect("xml"), set)
}

fn app_of(e: &StanzaError) -> Option<&'static str> {
    e.app.map(|a| a.name)
}

#[test]
fn publish_with_item_payload_and_options() {
    let r = parse_xml(
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'>\
           <publish node='n'><item id='i'><x xmlns='y'/></item></publish>\
           <publish-options><x xmlns='jabber:x:data'>\
             <field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>\
             <field var='pubsub#access_model'><value>open</value></field>\
           </x></publish-options></pubsub>",
        true,
    )
    .expect("parses");
    let Request::Publish {
        node,
        id,
        payload,
        options,
    } = r
    else {
        panic!("not a publish");
    };
    assert_eq!(node, "n");
    assert_eq!(id.as_deref(), Some("i"));
    assert_eq!(payload.expect("payload").ns, "y");
    let form = options.expect("a form without a type is read as a submit");
    assert_eq!(form.value("pubsub#access_model"), Some("open"));
}

#[test]
fn publish_errors_name_the_xep_conditions() {
    let no_node = parse_xml(
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish/></pubsub>",
        true,
    )
    .unwrap_err();
    assert_eq!(no_node.condition, Condition::BadRequest);
    assert_eq!(app_of(&no_node), Some("nodeid-required"));
    let two_payloads = parse_xml(
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'>\
           <item><a xmlns='x'/><b xmlns='x'/></item></publish></pubsub>",
        true,
    )
    .unwrap_err();
    assert_eq!(app_of(&two_payloads), Some("invalid-payload"));
    let two_items = parse_xml(
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'>\
           <item/><item/></publish></pubsub>",
        true,
    )
    .unwrap_err();
    assert_eq!(app_of(&two_items), Some("invalid-payload"));
    // A publish is a set.
    assert!(
        parse_xml(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'/></pubsub>",
            false
        )
        .is_err()
    );
}

#[test]
fn names_are_bounded_and_without_nul() {
    let long = "a".repeat(MAX_NAME_BYTES + 1);
    let xml = format!(
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='{long}'/></pubsub>"
    );
    assert_eq!(
        parse_xml(&xml, false).unwrap_err().condition,
        Condition::NotAcceptable
    );
    let empty = parse_xml(
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node=''/></pubsub>",
        false,
    );
    assert!(empty.is_err());
}

#[test]
fn items_by_max_or_ids() {
    assert_eq!(
        parse_xml(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n' max_items='2'/></pubsub>",
            false
        )
        .unwrap(),
        Request::Items {
            node: "n".into(),
            max: Some(2),
            ids: vec![]
        }
    );
    assert_eq!(
        parse_xml(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'><item id='a'/><item id='b'/></items></pubsub>",
            false
        )
        .unwrap(),
        Request::Items {
            node: "n".into(),
            max: None,
            ids: vec!["a".into(), "b".into()]
        }
    );
    for bad in ["0", "-1", "many"] {
        let xml = format!(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n' max_items='{bad}'/></pubsub>"
        );
        assert!(parse_xml(&xml, false).is_err(), "{bad}");
    }
}

#[test]
fn retract_needs_an_item_and_reads_notify() {
    let none = parse_xml(
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'><retract node='n'/></pubsub>",
        true,
    )
    .unwrap_err();
    assert_eq!(app_of(&none), Some("item-required"));
    assert_eq!(
        parse_xml(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><retract node='n' notify='1'><item id='a'/></retract></pubsub>",
            true
        )
        .unwrap(),
        Request::Retract {
            node: "n".into(),
            ids: vec!["a".into()],
            notify: Some(true)
        }
    );
}

#[test]
fn subscribe_needs_a_jid() {
    let e = parse_xml(
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='n'/></pubsub>",
        true,
    )
    .unwrap_err();
    assert_eq!(app_of(&e), Some("invalid-jid"));
}

#[test]
fn owner_requests() {
    let del = parse_xml(
        "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><delete node='n'><redirect uri='xmpp:x?;node=m'/></delete></pubsub>",
        true,
    )
    .unwrap();
    assert!(del.is_owner_request());
    assert_eq!(
        del,
        Request::Delete {
            node: "n".into(),
            redirect: Some("xmpp:x?;node=m".into())
        }
    );
    let aff = parse_xml(
        "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><affiliations node='n'>\
           <affiliation jid='a@b' affiliation='member'/></affiliations></pubsub>",
        true,
    )
    .unwrap();
    assert_eq!(
        aff,
        Request::AffiliationsSet {
            node: "n".into(),
            changes: vec![("a@b".into(), "member".into())]
        }
    );
    let no_form = parse_xml(
        "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='n'/></pubsub>",
        true,
    );
    assert!(no_form.is_err());
}

#[test]
fn create_alone_or_with_configure() {
    assert_eq!(
        parse_xml(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><create/></pubsub>",
            true
        )
        .unwrap(),
        Request::Create {
            node: None,
            config: None
        }
    );
    assert!(
        parse_xml(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='a'/><subscribe node='a' jid='x@y'/></pubsub>",
            true
        )
        .is_err()
    );
}

#[test]
fn garbage_is_refused() {
    for xml in [
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'/>",
        "<pubsub xmlns='urn:other'><items node='n'/></pubsub>",
        "<other xmlns='http://jabber.org/protocol/pubsub'/>",
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'><frobnicate/></pubsub>",
    ] {
        assert!(parse_xml(xml, true).is_err(), "{xml}");
        assert!(parse_xml(xml, false).is_err(), "{xml}");
    }
}
