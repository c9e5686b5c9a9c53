//! Room tests, continued: configuration, destruction, messages and what
//! follows them (the recorder and helpers of `tests.rs`).

use super::*;

// ---- configuration ----

/// `Room::affiliation` needs an Env only for the server-admin check.
pub(super) fn test_env_stub() -> Env<'static> {
    static SETTINGS: std::sync::OnceLock<MucConfig> = std::sync::OnceLock::new();
    static KEY: std::sync::OnceLock<ring::hmac::Key> = std::sync::OnceLock::new();
    fn no_admin(_: &Jid) -> bool {
        false
    }
    fn no_id() -> String {
        String::new()
    }
    Env {
        now: UNIX_EPOCH,
        clock: Instant::now(),
        settings: SETTINGS.get_or_init(MucConfig::default),
        is_server_admin: &no_admin,
        occupant_key: KEY.get_or_init(|| ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"k")),
        new_id: &no_id,
        archive: Box::leak(Box::new(crate::archive::ids::ArchiveIds::new(b"k", 0))),
    }
}

#[test]
fn only_owners_configure_and_server_admins_are_owners() {
    let mut w = World::new();
    w.admin(
        "owner@example/desk",
        "<item affiliation='member' jid='juliet@example'/>",
    );
    let r = w.configure(
        "juliet@example/balcony",
        &field("muc#roomconfig_roomname", "Mine"),
    );
    assert_eq!(
        r.error_to("juliet@example/balcony").as_deref(),
        Some("forbidden")
    );
    let r = w.iq(
        "juliet@example/balcony",
        ROOM,
        "get",
        &format!("<query xmlns='{NS_MUC_OWNER}'/>"),
    );
    assert_eq!(
        r.error_to("juliet@example/balcony").as_deref(),
        Some("forbidden")
    );
    let r = w.configure(
        "root@example/console",
        &field("muc#roomconfig_roomname", "Admin's"),
    );
    assert!(result_of(&r, "root@example/console"));
    assert_eq!(w.room.config.name, "Admin's");
    // Bad values change nothing.
    let r = w.configure(
        "owner@example/desk",
        &field("muc#roomconfig_maxusers", "many"),
    );
    assert_eq!(
        r.error_to("owner@example/desk").as_deref(),
        Some("bad-request")
    );
    assert_eq!(w.room.config.max_users, 0);
}

#[test]
fn configuration_changes_are_announced_and_persisted() {
    let mut w = World::new();
    w.join("juliet@example/balcony", "juliet");
    let r = w.configure(
        "owner@example/desk",
        &[
            field("muc#roomconfig_persistentroom", "1"),
            field("muc#roomconfig_roomname", "Garden"),
        ]
        .concat(),
    );
    assert_eq!(codes(r.only("juliet@example/balcony")), vec![104]);
    assert!(matches!(r.writes.first(), Some(MucWrite::PutRoom { .. })));
    assert!(
        r.writes.iter().any(
            |op| matches!(op, MucWrite::PutAffiliation { user, .. } if user == "owner@example")
        )
    );
    // Stanzas that depend on the writes come after them.
    assert_eq!(r.first_after_write, Some(0));
    // A subject change in a persistent room is stored too.
    let r = w.stanza(&format!(
        "<message xmlns='jabber:client' type='groupchat' from='owner@example/desk' to='{ROOM}'><subject>Plans</subject></message>"
    ));
    assert!(matches!(r.writes.as_slice(), [MucWrite::PutRoom { .. }]));
    assert_eq!(
        w.room.subject.as_ref().map(|s| s.text.as_str()),
        Some("Plans")
    );
    // Becoming temporary deletes the stored room.
    let r = w.configure(
        "owner@example/desk",
        &field("muc#roomconfig_persistentroom", "0"),
    );
    assert!(matches!(r.writes.as_slice(), [MucWrite::DeleteRoom { .. }]));
}

#[test]
fn destroying_with_reason_and_alternate_venue() {
    let mut w = World::new();
    w.join("juliet@example/balcony", "juliet");
    let r = w.iq(
        "juliet@example/balcony",
        ROOM,
        "set",
        &format!("<query xmlns='{NS_MUC_OWNER}'><destroy/></query>"),
    );
    assert_eq!(
        r.error_to("juliet@example/balcony").as_deref(),
        Some("forbidden")
    );
    let r = w.iq(
        "owner@example/desk",
        ROOM,
        "set",
        &format!(
            "<query xmlns='{NS_MUC_OWNER}'><destroy jid='garden@muc.example'><reason>Moving</reason><password>pw</password></destroy></query>"
        ),
    );
    let p = r.only("juliet@example/balcony");
    let destroy = p
        .get_child("x", NS_MUC_USER)
        .and_then(|x| x.get_child("destroy", NS_MUC_USER))
        .expect("destroy");
    assert_eq!(destroy.attr("jid"), Some("garden@muc.example"));
    assert_eq!(
        destroy
            .get_child("reason", NS_MUC_USER)
            .map(|r| r.text())
            .as_deref(),
        Some("Moving")
    );
    assert!(r.to("owner@example/desk").iter().any(|e| e.name == "iq"));
    assert!(w.room.destroyed && w.room.is_empty());
}

// ---- messages ----

#[test]
fn subjects_and_groupchat_permissions() {
    let mut w = World::new();
    w.join("juliet@example/balcony", "juliet");
    let subject = |w: &mut World, from: &str| {
        w.stanza(&format!(
            "<message xmlns='jabber:client' type='groupchat' from='{from}' to='{ROOM}'><subject>New</subject></message>"
        ))
    };
    let r = subject(&mut w, "juliet@example/balcony");
    assert_eq!(
        r.error_to("juliet@example/balcony").as_deref(),
        Some("forbidden")
    );
    w.configure(
        "owner@example/desk",
        &field("muc#roomconfig_changesubject", "1"),
    );
    let r = subject(&mut w, "juliet@example/balcony");
    assert!(r.error_to("juliet@example/balcony").is_none());
    assert_eq!(r.to("owner@example/desk").len(), 1);
    // Subject and body: a message, not a subject change (§8.1).
    w.stanza(&format!(
        "<message xmlns='jabber:client' type='groupchat' from='juliet@example/balcony' to='{ROOM}'><subject>Other</subject><body>hi</body></message>"
    ));
    assert_eq!(
        w.room.subject.as_ref().map(|s| s.text.as_str()),
        Some("New")
    );
    // Non-occupants cannot talk; groupchat to an occupant is refused.
    let r = w.groupchat("romeo@example/garden", "let me in");
    assert_eq!(
        r.error_to("romeo@example/garden").as_deref(),
        Some("not-acceptable")
    );
    let r = w.stanza(&format!(
        "<message xmlns='jabber:client' type='groupchat' from='juliet@example/balcony' to='{ROOM}/owner'><body>x</body></message>"
    ));
    assert_eq!(
        r.error_to("juliet@example/balcony").as_deref(),
        Some("bad-request")
    );
}

#[test]
fn groupchat_is_reflected_with_id_and_occupant_id() {
    let mut w = World::new();
    w.join("juliet@example/balcony", "juliet");
    let r = w.stanza(&format!(
        "<message xmlns='jabber:client' type='groupchat' id='m1' from='juliet@example/balcony' to='{ROOM}'>\
         <body>hi</body><occupant-id xmlns='{NS_OCCUPANT_ID}' id='forged'/></message>"
    ));
    let to_owner = r.only("owner@example/desk");
    assert_eq!(to_owner.attr("from"), Some(&*format!("{ROOM}/juliet")));
    assert_eq!(to_owner.attr("id"), Some("m1"));
    let ids: Vec<&str> = to_owner
        .children()
        .filter(|c| c.ns == NS_OCCUPANT_ID)
        .filter_map(|c| c.attr("id"))
        .collect();
    assert_eq!(ids.len(), 1);
    assert_ne!(ids[0], "forged");
    assert_eq!(
        r.to("juliet@example/balcony").len(),
        1,
        "reflected to the sender too"
    );
    // Stable: the same user gets the same id in presence.
    let juliet = w
        .room
        .occupants()
        .find(|o| o.nick == "juliet")
        .expect("juliet");
    assert_eq!(juliet.occupant_id, ids[0]);
}

#[test]
fn private_messages_follow_the_room_policy() {
    let mut w = World::new();
    w.join("juliet@example/balcony", "juliet");
    let pm = |w: &mut World| {
        w.stanza(&format!(
            "<message xmlns='jabber:client' type='chat' from='juliet@example/balcony' to='{ROOM}/owner'><body>psst</body></message>"
        ))
    };
    let r = pm(&mut w);
    let m = r.only("owner@example/desk");
    assert_eq!(m.attr("from"), Some(&*format!("{ROOM}/juliet")));
    assert!(m.get_child("x", NS_MUC_USER).is_some());
    w.configure(
        "owner@example/desk",
        &field("muc#roomconfig_allowpm", "moderators"),
    );
    let r = pm(&mut w);
    assert_eq!(
        r.error_to("juliet@example/balcony").as_deref(),
        Some("forbidden")
    );
    let r = w.stanza(&format!(
        "<message xmlns='jabber:client' type='chat' from='owner@example/desk' to='{ROOM}/nobody'><body>?</body></message>"
    ));
    assert_eq!(
        r.error_to("owner@example/desk").as_deref(),
        Some("item-not-found")
    );
}

#[test]
fn history_requests() {
    let mut w = World::new();
    for i in 0..5 {
        w.groupchat("owner@example/desk", &format!("m{i}"));
    }
    let bodies = |r: &Recorder, to: &str| -> Vec<String> {
        r.to(to)
            .iter()
            .filter(|e| e.name == "message")
            .filter_map(|e| e.get_child("body", NS_CLIENT).map(|b| b.text()))
            .collect()
    };
    let r = w.join_with(
        "juliet@example/balcony",
        "juliet",
        "<history maxstanzas='2'/>",
    );
    assert_eq!(bodies(&r, "juliet@example/balcony"), ["m3", "m4"]);
    let r = w.join_with("romeo@example/garden", "romeo", "<history maxchars='0'/>");
    assert!(bodies(&r, "romeo@example/garden").is_empty());
    let r = w.join_with(
        "nurse@example/kitchen",
        "nurse",
        "<history since='2100-01-01T00:00:00Z'/>",
    );
    assert!(bodies(&r, "nurse@example/kitchen").is_empty());
    let r = w.join_with("friar@example/cell", "friar", "<history seconds='60'/>");
    assert_eq!(bodies(&r, "friar@example/cell").len(), 5);
}

#[test]
fn invitations_and_declines() {
    let mut w = World::new();
    let r = w.stanza(&format!(
        "<message xmlns='jabber:client' id='i1' from='owner@example/desk' to='{ROOM}'>\
         <x xmlns='{NS_MUC_USER}'><invite to='juliet@example'><reason>Come</reason></invite></x></message>"
    ));
    let m = r.only("juliet@example");
    let invite = m
        .get_child("x", NS_MUC_USER)
        .and_then(|x| x.get_child("invite", NS_MUC_USER))
        .expect("invite");
    assert_eq!(invite.attr("from"), Some(&*format!("{ROOM}/owner")));
    assert_eq!(
        m.get_child("x", crate::muc::NS_CONFERENCE)
            .and_then(|x| x.attr("jid")),
        Some(ROOM)
    );
    assert_eq!(m.attr("id"), Some("i1"));
    let r = w.stanza(&format!(
        "<message xmlns='jabber:client' from='juliet@example/balcony' to='{ROOM}'>\
         <x xmlns='{NS_MUC_USER}'><decline to='{ROOM}/owner'><reason>Busy</reason></decline></x></message>"
    ));
    let d = r.only("owner@example/desk");
    let decline = d
        .get_child("x", NS_MUC_USER)
        .and_then(|x| x.get_child("decline", NS_MUC_USER))
        .expect("decline");
    assert_eq!(decline.attr("from"), Some("juliet@example"));
    // Members-only: a participant without privileges may not invite.
    w.configure(
        "owner@example/desk",
        &field("muc#roomconfig_membersonly", "1"),
    );
    w.admin(
        "owner@example/desk",
        "<item affiliation='member' jid='romeo@example'/>",
    );
    w.join("romeo@example/garden", "romeo");
    let r = w.stanza(&format!(
        "<message xmlns='jabber:client' from='romeo@example/garden' to='{ROOM}'>\
         <x xmlns='{NS_MUC_USER}'><invite to='nurse@example'/></x></message>"
    ));
    assert_eq!(
        r.error_to("romeo@example/garden").as_deref(),
        Some("forbidden")
    );
}

#[test]
fn flooding_is_slowed() {
    let mut w = World::new();
    w.join("juliet@example/balcony", "juliet");
    let burst = w.settings.message_burst;
    for i in 0..burst {
        let r = w.groupchat("juliet@example/balcony", &format!("{i}"));
        assert!(r.error_to("juliet@example/balcony").is_none());
    }
    let r = w.groupchat("juliet@example/balcony", "one too many");
    assert_eq!(
        r.error_to("juliet@example/balcony").as_deref(),
        Some("policy-violation")
    );
    assert!(r.to("owner@example/desk").is_empty(), "not reflected");
    // Others are not affected.
    let r = w.groupchat("owner@example/desk", "still fine");
    assert!(r.error_to("owner@example/desk").is_none());
    // Time heals.
    w.clock += Duration::from_secs(5);
    let r = w.groupchat("juliet@example/balcony", "later");
    assert!(r.error_to("juliet@example/balcony").is_none());
}

// ---- registration, disco, iqs ----

#[test]
fn registration_and_reserved_nick_discovery() {
    let mut w = World::new();
    let get = format!("<query xmlns='{NS_REGISTER}'/>");
    let r = w.iq("juliet@example/balcony", ROOM, "get", &get);
    assert_eq!(
        r.error_to("juliet@example/balcony").as_deref(),
        Some("registration-required")
    );
    w.admin(
        "owner@example/desk",
        "<item affiliation='member' jid='juliet@example'/>",
    );
    let r = w.iq("juliet@example/balcony", ROOM, "get", &get);
    assert!(result_of(&r, "juliet@example/balcony"));
    let submit = |nick: &str| {
        format!(
            "<query xmlns='{NS_REGISTER}'><x xmlns='jabber:x:data' type='submit'>{}{}</x></query>",
            field("FORM_TYPE", crate::muc::NS_MUC_REGISTER),
            field("muc#register_roomnick", nick)
        )
    };
    let r = w.iq("juliet@example/balcony", ROOM, "set", &submit("owner"));
    assert_eq!(
        r.error_to("juliet@example/balcony").as_deref(),
        Some("conflict")
    );
    let r = w.iq(
        "juliet@example/balcony",
        ROOM,
        "set",
        "<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'/></query>",
    );
    assert_eq!(
        r.error_to("juliet@example/balcony").as_deref(),
        Some("bad-request")
    );
    let r = w.iq("juliet@example/balcony", ROOM, "set", &submit("jules"));
    assert!(result_of(&r, "juliet@example/balcony"));
    let r = w.iq(
        "juliet@example/balcony",
        ROOM,
        "get",
        "<query xmlns='http://jabber.org/protocol/disco#info' node='x-roomuser-item'/>",
    );
    let q = r
        .only("juliet@example/balcony")
        .first_child()
        .expect("query");
    assert_eq!(q.first_child().and_then(|i| i.attr("name")), Some("jules"));
    let r = w.iq("juliet@example/balcony", ROOM, "get", &get);
    let q = r
        .only("juliet@example/balcony")
        .first_child()
        .expect("query");
    assert!(q.get_child("registered", NS_REGISTER).is_some());
    // Deregistering makes Juliet unaffiliated again.
    let r = w.iq(
        "juliet@example/balcony",
        ROOM,
        "set",
        &format!("<query xmlns='{NS_REGISTER}'><remove/></query>"),
    );
    assert!(result_of(&r, "juliet@example/balcony"));
    let notice = r.only("owner@example/desk");
    assert_eq!(item(notice).attr("affiliation"), Some("none"));
}

#[test]
fn disco_of_the_room() {
    let mut w = World::new();
    w.configure(
        "owner@example/desk",
        &[
            field("muc#roomconfig_membersonly", "1"),
            field("muc#roomconfig_roomdesc", "About"),
        ]
        .concat(),
    );
    let r = w.iq(
        "romeo@example/garden",
        ROOM,
        "get",
        "<query xmlns='http://jabber.org/protocol/disco#info'/>",
    );
    let q = r.only("romeo@example/garden").first_child().expect("query");
    let features: Vec<&str> = q
        .children()
        .filter(|c| c.name == "feature")
        .filter_map(|c| c.attr("var"))
        .collect();
    for f in [
        "http://jabber.org/protocol/muc",
        "muc_membersonly",
        "muc_semianonymous",
        "muc_temporary",
        "muc_unsecured",
        "urn:xmpp:occupant-id:0",
    ] {
        assert!(features.contains(&f), "{f} in {features:?}");
    }
    let form = crate::forms::Form::find_in(q)
        .expect("form")
        .expect("valid");
    assert_eq!(form.value("muc#roominfo_occupants"), Some("1"));
    assert_eq!(form.value("muc#roominfo_description"), Some("About"));
    // Occupants are private in a members-only room.
    let r = w.iq(
        "romeo@example/garden",
        ROOM,
        "get",
        "<query xmlns='http://jabber.org/protocol/disco#items'/>",
    );
    let q = r.only("romeo@example/garden").first_child().expect("query");
    assert_eq!(q.children().count(), 0);
    let r = w.iq(
        "owner@example/desk",
        ROOM,
        "get",
        "<query xmlns='http://jabber.org/protocol/disco#items'/>",
    );
    let q = r.only("owner@example/desk").first_child().expect("query");
    assert_eq!(q.children().count(), 1);
}

#[test]
fn self_ping_and_private_iqs() {
    let mut w = World::new();
    w.join("juliet@example/balcony", "juliet");
    let ping = "<ping xmlns='urn:xmpp:ping'/>";
    let r = w.iq(
        "juliet@example/balcony",
        &format!("{ROOM}/juliet"),
        "get",
        ping,
    );
    assert!(result_of(&r, "juliet@example/balcony"));
    let r = w.iq(
        "romeo@example/garden",
        &format!("{ROOM}/juliet"),
        "get",
        ping,
    );
    assert_eq!(
        r.error_to("romeo@example/garden").as_deref(),
        Some("not-acceptable")
    );
    let r = w.iq(
        "romeo@example/garden",
        &format!("{ROOM}/juliet"),
        "get",
        "<query xmlns='http://jabber.org/protocol/disco#info'/>",
    );
    assert_eq!(
        r.error_to("romeo@example/garden").as_deref(),
        Some("bad-request")
    );
    // Juliet's version request to the owner is relayed without JIDs...
    let r = w.iq(
        "juliet@example/balcony",
        &format!("{ROOM}/owner"),
        "get",
        "<query xmlns='jabber:iq:version'/>",
    );
    let relayed = r.only("owner@example/desk");
    assert_eq!(relayed.attr("from"), Some(&*format!("{ROOM}/juliet")));
    let id = relayed.attr("id").expect("id").to_string();
    assert_ne!(id, "q1");
    // ... and so is the answer.
    let r = w.stanza(&format!(
        "<iq xmlns='jabber:client' type='result' id='{id}' from='owner@example/desk' to='{ROOM}/juliet'/>"
    ));
    let answer = r.only("juliet@example/balcony");
    assert_eq!(answer.attr("id"), Some("q1"));
    assert_eq!(answer.attr("from"), Some(&*format!("{ROOM}/owner")));
}

#[test]
fn probes_are_answered_for_occupants_only() {
    let mut w = World::new();
    w.join("juliet@example/balcony", "juliet");
    let probe = |w: &mut World, from: &str, nick: &str| {
        w.stanza(&format!(
            "<presence xmlns='jabber:client' type='probe' from='{from}' to='{ROOM}/{nick}'/>"
        ))
    };
    let r = probe(&mut w, "romeo@example/garden", "juliet");
    assert_eq!(
        r.error_to("romeo@example/garden").as_deref(),
        Some("not-acceptable")
    );
    let r = probe(&mut w, "owner@example/desk", "juliet");
    let p = r.only("owner@example/desk");
    assert_eq!(item(p).attr("jid"), Some("juliet@example/balcony"));
    assert!(!codes(p).contains(&110));
}

#[test]
fn oversized_presence_is_refused() {
    let mut w = World::new();
    let big = "x".repeat(crate::muc::presence::MAX_PRESENCE_BYTES + 1);
    let r = w.stanza(&format!(
        "<presence xmlns='jabber:client' from='juliet@example/balcony' to='{ROOM}/juliet'><x xmlns='{NS_MUC}'/><status>{big}</status></presence>"
    ));
    assert_eq!(
        r.error_to("juliet@example/balcony").as_deref(),
        Some("policy-violation")
    );
    assert_eq!(w.room.occupant_count(), 1);
}

#[test]
fn presence_without_x_from_a_non_occupant_is_an_explicit_kick_then_clients_share_a_nick() {
    let mut w = World::new();
    // §7.2.19: no <x xmlns='…muc'/> from a non-occupant is a client that
    // lost track of the room (not a groupchat 1.0 join): 110, 307, 333.
    let r = w.stanza(&format!(
        "<presence xmlns='jabber:client' from='juliet@example/balcony' to='{ROOM}/juliet'><show>away</show></presence>"
    ));
    let kick = r.only("juliet@example/balcony");
    assert_eq!(kick.attr("type"), Some("unavailable"));
    assert_eq!(codes(kick), vec![110, 307, 333]);
    assert_eq!(w.room.occupant_count(), 1);
    w.join("juliet@example/balcony", "juliet");
    // Her phone joins under the same nick: one occupant, two clients.
    w.join("juliet@example/phone", "juliet");
    assert_eq!(w.room.occupant_count(), 2);
    // Groupchat reaches both clients.
    let r = w.groupchat("owner@example/desk", "to both");
    assert_eq!(r.to("juliet@example/balcony").len(), 1);
    assert_eq!(r.to("juliet@example/phone").len(), 1);
    // One client leaves: the occupant stays; the others see no departure.
    let r = w.leave("juliet@example/phone", "juliet");
    assert_eq!(
        r.only("juliet@example/phone").attr("type"),
        Some("unavailable")
    );
    assert_ne!(
        r.only("owner@example/desk").attr("type"),
        Some("unavailable")
    );
    assert_eq!(w.room.occupant_count(), 2);
    let r = w.leave("juliet@example/balcony", "juliet");
    assert_eq!(
        r.only("owner@example/desk").attr("type"),
        Some("unavailable")
    );
    assert_eq!(w.room.occupant_count(), 1);
}

// ---- one nickname, several clients (§7.2.1, §7.2.9) ----

/// The full JIDs in a presence's items, in order.
fn item_jids(p: &Element) -> Vec<String> {
    p.get_child("x", NS_MUC_USER)
        .map(|x| {
            x.children()
                .filter(|c| c.name == "item")
                .map(|c| c.attr("jid").unwrap_or("-").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The presence of `nick` that `to` received last.
fn presence_of<'r>(r: &'r Recorder, to: &str, nick: &str) -> &'r Element {
    let from = format!("{ROOM}/{nick}");
    r.to(to)
        .into_iter()
        .rev()
        .find(|p| p.name == "presence" && p.attr("from") == Some(from.as_str()))
        .unwrap_or_else(|| panic!("no presence of {nick} to {to}: {}", dump(&r.to(to))))
}

/// The owner (a moderator, who sees real JIDs), Romeo (a participant,
/// who does not in a semi-anonymous room), and Juliet on two clients.
fn juliet_on_two_clients() -> (World, Recorder) {
    let mut w = World::new();
    w.join("romeo@example/garden", "romeo");
    w.join("juliet@example/balcony", "juliet");
    let r = w.join("juliet@example/phone", "juliet");
    (w, r)
}

#[test]
fn a_second_client_in_the_same_nick_is_one_occupant_with_two_items() {
    let (w, r) = juliet_on_two_clients();
    assert_eq!(w.room.occupant_count(), 3);
    // Those who may see real JIDs: one item per client, the newest (the
    // one whose presence is shown) first.
    assert_eq!(
        item_jids(presence_of(&r, "owner@example/desk", "juliet")),
        ["juliet@example/phone", "juliet@example/balcony"]
    );
    // The others: one item, no JID.
    assert_eq!(
        item_jids(presence_of(&r, "romeo@example/garden", "juliet")),
        ["-"]
    );
    // Each of her clients sees itself (110) with both of its JIDs.
    for client in ["juliet@example/phone", "juliet@example/balcony"] {
        let own = presence_of(&r, client, "juliet");
        assert!(codes(own).contains(&110), "{own}");
        assert_eq!(item_jids(own).len(), 2, "{own}");
    }
}

#[test]
fn presence_from_either_client_updates_the_one_occupant() {
    let (mut w, _) = juliet_on_two_clients();
    let r = w.stanza(&format!(
        "<presence xmlns='jabber:client' from='juliet@example/balcony' to='{ROOM}/juliet'><show>away</show></presence>"
    ));
    let seen = presence_of(&r, "owner@example/desk", "juliet");
    assert_eq!(
        seen.get_child("show", NS_CLIENT).map(|s| s.text()),
        Some("away".into())
    );
    // The client that spoke last is the one shown, and listed first.
    assert_eq!(
        item_jids(seen),
        ["juliet@example/balcony", "juliet@example/phone"]
    );
    assert_eq!(w.room.occupant_count(), 3);
}

#[test]
fn one_client_leaving_leaves_the_occupant_with_the_other() {
    let (mut w, _) = juliet_on_two_clients();
    let r = w.leave("juliet@example/phone", "juliet");
    // The leaving client alone is told it left.
    let gone = r.only("juliet@example/phone");
    assert_eq!(gone.attr("type"), Some("unavailable"));
    assert_eq!(item_jids(gone), ["juliet@example/phone"]);
    // The others see her stay, with the remaining client only.
    let stays = presence_of(&r, "owner@example/desk", "juliet");
    assert_eq!(stays.attr("type"), None);
    assert_eq!(item_jids(stays), ["juliet@example/balcony"]);
    assert_ne!(
        presence_of(&r, "romeo@example/garden", "juliet").attr("type"),
        Some("unavailable")
    );
    // Messages to the room now reach the remaining client only.
    let r = w.groupchat("owner@example/desk", "still here?");
    assert_eq!(r.to("juliet@example/balcony").len(), 1);
    assert!(r.to("juliet@example/phone").is_empty());
    // The last client leaving is the occupant leaving.
    let r = w.leave("juliet@example/balcony", "juliet");
    assert_eq!(
        presence_of(&r, "romeo@example/garden", "juliet").attr("type"),
        Some("unavailable")
    );
    assert_eq!(w.room.occupant_count(), 2);
}

#[test]
fn an_error_from_one_client_removes_that_client_only() {
    let (mut w, _) = juliet_on_two_clients();
    // §17 / "333": her phone's server says the phone is gone.
    let r = w.stanza(&format!(
        "<presence xmlns='jabber:client' type='error' from='juliet@example/phone' to='{ROOM}/juliet'><error type='cancel'><remote-server-not-found xmlns='{NS_STANZAS}'/></error></presence>"
    ));
    assert_eq!(w.room.occupant_count(), 3);
    assert_eq!(
        item_jids(presence_of(&r, "owner@example/desk", "juliet")),
        ["juliet@example/balcony"]
    );
}

#[test]
fn private_messages_to_the_nick_reach_every_client() {
    let (mut w, _) = juliet_on_two_clients();
    let r = w.stanza(&format!(
        "<message xmlns='jabber:client' type='chat' from='romeo@example/garden' to='{ROOM}/juliet'><body>psst</body></message>"
    ));
    assert_eq!(r.to("juliet@example/balcony").len(), 1);
    assert_eq!(r.to("juliet@example/phone").len(), 1);
}

#[test]
fn a_nick_change_from_one_of_two_clients_is_refused() {
    let (mut w, _) = juliet_on_two_clients();
    let r = w.join("juliet@example/phone", "jules");
    assert_eq!(
        r.error_to("juliet@example/phone").as_deref(),
        Some("not-acceptable")
    );
    assert_eq!(w.room.occupant_count(), 3);
}

#[test]
fn a_ban_removes_every_client_of_the_occupant() {
    let (mut w, _) = juliet_on_two_clients();
    let r = w.admin(
        "owner@example/desk",
        "<item affiliation='outcast' jid='juliet@example'><reason>Enough</reason></item>",
    );
    for client in ["juliet@example/phone", "juliet@example/balcony"] {
        let out = presence_of(&r, client, "juliet");
        assert_eq!(out.attr("type"), Some("unavailable"), "{out}");
        assert!(
            codes(out).contains(&301) && codes(out).contains(&110),
            "{out}"
        );
    }
    let seen = presence_of(&r, "romeo@example/garden", "juliet");
    assert_eq!(seen.attr("type"), Some("unavailable"));
    assert!(codes(seen).contains(&301));
    assert_eq!(w.room.occupant_count(), 2);
}

#[test]
fn in_a_non_anonymous_room_everyone_sees_every_client() {
    let mut w = World::new();
    w.configure(
        "owner@example/desk",
        "<field var='muc#roomconfig_whois'><value>anyone</value></field>",
    );
    w.join("romeo@example/garden", "romeo");
    w.join("juliet@example/balcony", "juliet");
    let r = w.join("juliet@example/phone", "juliet");
    assert_eq!(
        item_jids(presence_of(&r, "romeo@example/garden", "juliet")),
        ["juliet@example/phone", "juliet@example/balcony"]
    );
}

// ---- details where Prosody and the XEP's examples agree ----

#[test]
fn a_delay_stamp_claiming_to_be_the_rooms_is_stripped() {
    let mut w = World::new();
    w.join("juliet@example/balcony", "juliet");
    let r = w.stanza(&format!(
        "<message xmlns='jabber:client' type='groupchat' from='juliet@example/balcony' to='{ROOM}'><body>old news</body><delay xmlns='urn:xmpp:delay' from='{ROOM}' stamp='2001-01-01T00:00:00Z'/><delay xmlns='urn:xmpp:delay' from='example' stamp='2001-01-01T00:00:00Z'/></message>"
    ));
    let live = r.only("owner@example/desk");
    let delays: Vec<&Element> = live
        .children()
        .filter(|c| c.is("delay", "urn:xmpp:delay"))
        .collect();
    assert_eq!(delays.len(), 1, "{live}");
    assert_eq!(delays[0].attr("from"), Some("example"));
}

#[test]
fn a_nick_of_only_spaces_is_not_allowed() {
    let mut w = World::new();
    let r = w.join("juliet@example/balcony", "   ");
    assert_eq!(
        r.error_to("juliet@example/balcony").as_deref(),
        Some("not-allowed")
    );
    assert_eq!(w.room.occupant_count(), 1);
}

#[test]
fn bodyless_messages_asked_to_be_stored_are_kept_in_history() {
    let mut w = World::new();
    w.join("juliet@example/balcony", "juliet");
    w.stanza(&format!(
        "<message xmlns='jabber:client' type='groupchat' from='juliet@example/balcony' to='{ROOM}'><reactions xmlns='urn:xmpp:reactions:0' id='m1'><reaction>👍</reaction></reactions><store xmlns='urn:xmpp:hints'/></message>"
    ));
    w.stanza(&format!(
        "<message xmlns='jabber:client' type='groupchat' from='juliet@example/balcony' to='{ROOM}'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"
    ));
    let r = w.join("romeo@example/garden", "romeo");
    let history: Vec<&Element> = r
        .to("romeo@example/garden")
        .into_iter()
        .filter(|m| m.name == "message" && m.get_child("subject", NS_CLIENT).is_none())
        .collect();
    assert_eq!(history.len(), 1, "{}", dump(&history));
    assert!(
        history[0]
            .get_child("reactions", "urn:xmpp:reactions:0")
            .is_some()
    );
}

#[test]
fn pep_and_vcard4_questions_to_an_occupant_go_to_its_account() {
    let mut w = World::new();
    w.join("juliet@example/balcony", "juliet");
    w.join("romeo@example/garden", "romeo");
    let r = w.iq(
        "romeo@example/garden",
        &format!("{ROOM}/juliet"),
        "get",
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:avatar:metadata'/></pubsub>",
    );
    assert_eq!(
        r.to("juliet@example").len(),
        1,
        "{}",
        dump(&r.out.iter().collect::<Vec<_>>())
    );
    let r = w.iq(
        "romeo@example/garden",
        &format!("{ROOM}/juliet"),
        "get",
        "<ping xmlns='urn:xmpp:ping'/>",
    );
    assert_eq!(r.to("juliet@example/balcony").len(), 1);
}

#[test]
fn a_join_under_another_nick_renames_and_resends_the_room() {
    let mut w = World::new();
    w.join("juliet@example/balcony", "juliet");
    let r = w.join("juliet@example/balcony", "jules");
    let mine = r.to("juliet@example/balcony");
    assert!(
        mine.iter().any(|p| codes(p).contains(&303)),
        "{}",
        dump(&mine)
    );
    // The owner's presence comes again: the client is in sync.
    assert!(
        mine.iter()
            .any(|p| p.attr("from") == Some(&format!("{ROOM}/owner"))),
        "{}",
        dump(&mine)
    );
}

#[test]
fn a_new_moderator_learns_the_real_jids_and_a_former_one_forgets_them() {
    let mut w = World::new();
    w.join("juliet@example/balcony", "juliet");
    w.join("romeo@example/garden", "romeo");
    let r = w.admin(
        "owner@example/desk",
        "<item nick='romeo' role='moderator'/>",
    );
    let juliet = presence_of(&r, "romeo@example/garden", "juliet");
    assert_eq!(item_jids(juliet), ["juliet@example/balcony"]);
    let r = w.admin(
        "owner@example/desk",
        "<item nick='romeo' role='participant'/>",
    );
    let juliet = presence_of(&r, "romeo@example/garden", "juliet");
    assert_eq!(item_jids(juliet), ["-"]);
}

#[test]
fn an_occupants_presence_update_without_x_is_no_kick() {
    // (A missing room and §7.2.19: in service_tests.)
    let mut w = World::new();
    w.join("juliet@example/balcony", "juliet");
    let r = w.stanza(&format!(
        "<presence xmlns='jabber:client' from='juliet@example/balcony' to='{ROOM}/juliet'><show>dnd</show></presence>"
    ));
    assert!(
        r.to("juliet@example/balcony")
            .iter()
            .all(|p| p.attr("type").is_none())
    );
}
