//! Sessions put back into their rooms after a restart: what is saved of
//! them, and a restore that nobody notices but that leaves the room as if
//! the session had never left.
//!
//! A restart is played by having every occupant leave: the persistent room
//! then leaves memory and only the disk knows it, as after a restart.

use std::rc::Rc;

use crate::jid::Jid;
use crate::session::Session;

use super::Occupancy;
use super::service_tests::{Harness, ROOM, configure, drain, join, make_persistent};

fn room() -> Jid {
    Jid::parse(ROOM).expect("room jid")
}

fn leave(h: &Harness, who: &Session, room: &str, nick: &str) {
    h.send(
        who,
        &format!("<presence xmlns='jabber:client' type='unavailable' to='{room}/{nick}'/>"),
    );
}

fn join_away(h: &Harness, who: &Session, room: &str, nick: &str) {
    h.send(
        who,
        &format!(
            "<presence xmlns='jabber:client' to='{room}/{nick}'><show>away</show><status>reading</status>\
             <x xmlns='http://jabber.org/protocol/muc'/></presence>"
        ),
    );
}

/// The presence `out` holds from `nick` in the room, if any.
fn presence_from<'a>(out: &'a str, nick: &str) -> Option<&'a str> {
    let from = format!("from='{ROOM}/{nick}'");
    out.split("<presence")
        .skip(1)
        .find(|p| p.split('>').next().is_some_and(|head| head.contains(&from)))
}

struct Restarted {
    h: Harness,
    romeo: Rc<Session>,
    juliet: Rc<Session>,
    romeo_in: Occupancy,
    juliet_in: Occupancy,
}

/// Romeo owns the persistent room, Juliet is in it (away); their rooms
/// are saved, then the room is only on disk.
fn restarted() -> Restarted {
    let h = Harness::new();
    let romeo = h.client("romeo@localhost/a");
    let juliet = h.client("juliet@localhost/b");
    join(&h, &romeo, "Romeo");
    make_persistent(&h, &romeo);
    h.settle();
    join_away(&h, &juliet, ROOM, "Juliet");
    h.settle();
    let mut saved = h.server.muc().occupancies_of(&romeo.jid);
    let romeo_in = saved.pop().expect("romeo is in the room");
    let mut saved = h.server.muc().occupancies_of(&juliet.jid);
    let juliet_in = saved.pop().expect("juliet is in the room");
    leave(&h, &juliet, ROOM, "Juliet");
    leave(&h, &romeo, ROOM, "Romeo");
    h.settle();
    assert_eq!(h.server.muc().loaded_rooms(), 0, "the room is only on disk");
    drain(&romeo);
    drain(&juliet);
    Restarted {
        h,
        romeo,
        juliet,
        romeo_in,
        juliet_in,
    }
}

#[test]
fn occupancies_of_lists_the_rooms_of_a_session_with_nick_and_presence() {
    let h = Harness::new();
    let romeo = h.client("romeo@localhost/a");
    let other_client = h.client("romeo@localhost/other");
    join(&h, &romeo, "Romeo");
    make_persistent(&h, &romeo);
    h.settle();
    let temporary = "balcony@conference.localhost";
    join_away(&h, &romeo, temporary, "R");
    h.send(
        &romeo,
        &format!(
            "<iq xmlns='jabber:client' type='set' id='c' to='{temporary}'><query xmlns='http://jabber.org/protocol/muc#owner'>\
             <x xmlns='jabber:x:data' type='submit'/></query></iq>"
        ),
    );
    h.settle();

    let rooms = h.server.muc().occupancies_of(&romeo.jid);
    assert_eq!(rooms.len(), 2, "{rooms:?}");
    assert_eq!(rooms[0].room.as_str(), temporary);
    assert_eq!(rooms[0].nick, "R");
    assert!(!rooms[0].persistent);
    let shown = rooms[0].presence.to_string();
    assert!(
        shown.contains("<show>away</show>") && shown.contains("<status>reading</status>"),
        "{shown}"
    );
    assert!(!shown.contains("muc"), "no MUC payload: {shown}");
    assert_eq!(rooms[1].room.as_str(), ROOM);
    assert_eq!(rooms[1].nick, "Romeo");
    assert!(rooms[1].persistent);
    assert!(!rooms[1].presence.to_string().contains("<show>"));

    // Another client of the same user is not in those rooms.
    assert!(h.server.muc().occupancies_of(&other_client.jid).is_empty());
}

#[test]
fn a_restored_occupant_is_back_silently_and_present_for_everyone() {
    let r = restarted();
    let muc = r.h.server.muc();
    let env = r.h.server.env();
    assert!(muc.restore_occupant(&env, &r.romeo.jid, &r.romeo_in));
    assert!(muc.restore_occupant(&env, &r.juliet.jid, &r.juliet_in));
    assert_eq!(muc.loaded_rooms(), 1);
    r.h.settle();
    assert_eq!(drain(&r.romeo), "", "nothing to the other occupant");
    assert_eq!(drain(&r.juliet), "", "nothing to the restored one");
    // Restoring again changes nothing.
    assert!(muc.restore_occupant(&env, &r.juliet.jid, &r.juliet_in));
    assert_eq!(muc.occupancies_of(&r.juliet.jid), vec![r.juliet_in.clone()]);
    assert_eq!(drain(&r.romeo), "");

    let nurse = r.h.client("nurse@localhost/c");
    join(&r.h, &nurse, "Nurse");
    r.h.settle();
    let out = drain(&nurse);
    let juliet = presence_from(&out, "Juliet").expect("juliet listed");
    assert!(juliet.contains("<show>away</show>"), "{juliet}");
    assert!(
        juliet.contains("affiliation='none'") && juliet.contains("role='participant'"),
        "{juliet}"
    );
    let romeo = presence_from(&out, "Romeo").expect("romeo listed");
    assert!(
        romeo.contains("affiliation='owner'") && romeo.contains("role='moderator'"),
        "{romeo}"
    );
    assert!(!out.contains("code='201'"), "an existing room: {out}");
    assert!(
        presence_from(&drain(&r.juliet), "Nurse").is_some(),
        "the restored occupant sees the newcomer"
    );

    r.h.send(
        &nurse,
        &format!("<message xmlns='jabber:client' type='groupchat' id='m1' to='{ROOM}'><body>my lady</body></message>"),
    );
    r.h.settle();
    let out = drain(&r.juliet);
    assert!(
        out.contains("<body>my lady</body>") && out.contains(&format!("from='{ROOM}/Nurse'")),
        "{out}"
    );
    assert!(drain(&r.romeo).contains("<body>my lady</body>"));

    // And the occupant leaves as any other.
    leave(&r.h, &r.juliet, ROOM, "Juliet");
    r.h.settle();
    let out = drain(&nurse);
    let gone = presence_from(&out, "Juliet").expect("juliet leaves");
    assert!(gone.contains("type='unavailable'"), "{gone}");
}

#[test]
fn the_role_is_the_one_a_join_gets_now() {
    let r = restarted();
    // Moderated while everyone was away.
    configure(
        &r.h,
        &r.romeo,
        "<field var='muc#roomconfig_moderatedroom'><value>1</value></field>",
    );
    r.h.settle();
    drain(&r.romeo);
    let muc = r.h.server.muc();
    let env = r.h.server.env();
    assert!(muc.restore_occupant(&env, &r.juliet.jid, &r.juliet_in));
    let nurse = r.h.client("nurse@localhost/c");
    join(&r.h, &nurse, "Nurse");
    r.h.settle();
    let out = drain(&nurse);
    let juliet = presence_from(&out, "Juliet").expect("juliet listed");
    assert!(juliet.contains("role='visitor'"), "{juliet}");
}

#[test]
fn a_user_banned_since_is_not_restored() {
    let r = restarted();
    let muc = r.h.server.muc();
    let env = r.h.server.env();
    assert!(muc.restore_occupant(&env, &r.romeo.jid, &r.romeo_in));
    r.h.send(
        &r.romeo,
        &format!(
            "<iq xmlns='jabber:client' type='set' id='ban' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#admin'>\
             <item affiliation='outcast' jid='juliet@localhost'/></query></iq>"
        ),
    );
    r.h.settle();
    assert!(drain(&r.romeo).contains("id='ban'"));
    assert!(!muc.restore_occupant(&env, &r.juliet.jid, &r.juliet_in));
    r.h.settle();
    assert_eq!(drain(&r.romeo), "");
    assert_eq!(drain(&r.juliet), "");
    assert_eq!(muc.nick_in(&room(), &r.juliet.jid), None);
    assert!(muc.occupancies_of(&r.juliet.jid).is_empty());
}

#[test]
fn a_refused_restore_does_not_keep_the_room_in_memory() {
    let r = restarted();
    // Members only, from outside the room: the room is on disk again.
    configure(
        &r.h,
        &r.romeo,
        "<field var='muc#roomconfig_membersonly'><value>1</value></field>",
    );
    r.h.settle();
    assert_eq!(r.h.server.muc().loaded_rooms(), 0);
    let muc = r.h.server.muc();
    let env = r.h.server.env();
    assert!(!muc.restore_occupant(&env, &r.juliet.jid, &r.juliet_in));
    assert_eq!(muc.loaded_rooms(), 0);
    // The owner is still welcome.
    assert!(muc.restore_occupant(&env, &r.romeo.jid, &r.romeo_in));
    assert_eq!(muc.loaded_rooms(), 1);
}

#[test]
fn a_nick_taken_since_is_not_restored() {
    let r = restarted();
    let impostor = r.h.client("tybalt@localhost/x");
    join(&r.h, &impostor, "Juliet");
    r.h.settle();
    let before = drain(&impostor);
    assert!(before.contains("code='110'"), "{before}");
    let muc = r.h.server.muc();
    let env = r.h.server.env();
    assert!(!muc.restore_occupant(&env, &r.juliet.jid, &r.juliet_in));
    r.h.settle();
    assert_eq!(drain(&impostor), "");
    assert_eq!(muc.nick_in(&room(), &r.juliet.jid), None);
    assert_eq!(
        muc.nick_in(&room(), &impostor.jid).as_deref(),
        Some("Juliet")
    );
}

#[test]
fn a_full_room_takes_no_restored_occupant() {
    let r = restarted();
    configure(
        &r.h,
        &r.romeo,
        "<field var='muc#roomconfig_maxusers'><value>1</value></field>",
    );
    r.h.settle();
    let muc = r.h.server.muc();
    let env = r.h.server.env();
    assert!(muc.restore_occupant(&env, &r.romeo.jid, &r.romeo_in));
    assert!(!muc.restore_occupant(&env, &r.juliet.jid, &r.juliet_in));
    assert_eq!(muc.nick_in(&room(), &r.juliet.jid), None);
}

#[test]
fn a_destroyed_or_temporary_room_takes_no_restored_occupant() {
    let r = restarted();
    let muc = r.h.server.muc();
    let env = r.h.server.env();
    muc.destroy(&env, ROOM, None).expect("destroyed");
    r.h.settle();
    assert!(!muc.restore_occupant(&env, &r.romeo.jid, &r.romeo_in));
    assert_eq!(muc.loaded_rooms(), 0);

    // A temporary room, still in memory with someone else in it.
    let temporary = "balcony@conference.localhost";
    let nurse = r.h.client("nurse@localhost/c");
    for who in [&r.juliet, &nurse] {
        join_under_local_part(&r.h, who, temporary);
    }
    configure_room(&r.h, &r.juliet, temporary);
    r.h.settle();
    let juliet_in = muc
        .occupancies_of(&r.juliet.jid)
        .pop()
        .expect("juliet is in the room");
    assert!(!juliet_in.persistent);
    leave(&r.h, &r.juliet, temporary, "juliet");
    r.h.settle();
    drain(&nurse);
    assert!(!muc.restore_occupant(&env, &r.juliet.jid, &juliet_in));
    assert_eq!(drain(&nurse), "");
}

fn join_under_local_part(h: &Harness, who: &Session, room: &str) {
    let nick = who.jid.local().unwrap_or_default();
    h.send(
        who,
        &format!("<presence xmlns='jabber:client' to='{room}/{nick}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"),
    );
}

fn configure_room(h: &Harness, who: &Session, room: &str) {
    h.send(
        who,
        &format!(
            "<iq xmlns='jabber:client' type='set' id='c' to='{room}'><query xmlns='http://jabber.org/protocol/muc#owner'>\
             <x xmlns='jabber:x:data' type='submit'/></query></iq>"
        ),
    );
}

#[test]
fn nick_in_finds_the_nick_of_a_session_and_none_elsewhere() {
    let h = Harness::new();
    let romeo = h.client("romeo@localhost/a");
    let other_client = h.client("romeo@localhost/other");
    join(&h, &romeo, "Romeo");
    configure(&h, &romeo, "");
    h.settle();
    let muc = h.server.muc();
    assert_eq!(muc.nick_in(&room(), &romeo.jid).as_deref(), Some("Romeo"));
    assert_eq!(muc.nick_in(&room(), &other_client.jid), None);
    let elsewhere = Jid::parse("elsewhere@conference.localhost").expect("jid");
    assert_eq!(muc.nick_in(&elsewhere, &romeo.jid), None);
}
