//! The service around the rooms, with a real server and store: rooms
//! leaving memory, output held back until its writes are committed, rooms
//! coming back from disk, and broadcasts written into local outboxes.

use std::rc::Rc;

use crate::config::Config;
use crate::jid::Jid;
use crate::server::Server;
use crate::session::{Outbox, Session};
use crate::store::Store;
use crate::testing::TempDir;
use crate::xml::Element;

pub(super) struct Harness {
    pub(super) server: Rc<Server>,
    ex: &'static smol::LocalExecutor<'static>,
    _dir: TempDir,
}

impl Harness {
    pub(super) fn new() -> Harness {
        Harness::with_config("")
    }

    fn with_config(extra: &str) -> Harness {
        let dir = TempDir::new("muc-service");
        let config = Config::from_toml_str(
            &format!(
                "data_dir = \"{}\"\nadmins = [\"root@localhost\"]\n{extra}",
                dir.path().display()
            ),
            "test",
        )
        .expect("config");
        let mut store = Store::open(&dir.path().join("perch.redb"), 1 << 20).expect("store");
        let ex: &'static smol::LocalExecutor<'static> =
            Box::leak(Box::new(smol::LocalExecutor::new()));
        store.start_committer(ex);
        Harness {
            server: Server::new(config, store),
            ex,
            _dir: dir,
        }
    }

    pub(super) fn client(&self, full: &str) -> Rc<Session> {
        let jid = Jid::parse(full).expect("jid");
        let resource = jid.resource().map(str::to_string);
        self.server
            .bind(&jid.to_bare(), resource.as_deref(), Outbox::new())
            .expect("bind")
    }

    /// Sends a stanza as a client would (one section, as a connection
    /// hands it over), without waiting for the writes it causes.
    pub(super) fn send(&self, from: &Session, xml: &str) {
        let mut stanza = Element::parse(xml).unwrap_or_else(|e| panic!("{xml}: {e}"));
        stanza.set_attr("from", from.jid.as_str());
        let to = Jid::parse(stanza.attr("to").unwrap_or_default()).expect("to");
        let rooms = self.server.muc().clone();
        crate::durable::section_without_waiting(&self.server, &from.outbox, move |env| {
            super::handle(&rooms, env, stanza, &to)
        });
    }

    /// Lets every queued write complete, releasing what waited for it.
    pub(super) fn settle(&self) {
        smol::block_on(self.ex.run(self.server.muc().flush(&self.server.env())));
    }
}

pub(super) fn drain(session: &Session) -> String {
    let mut batch = crate::outbox::Batch::default();
    session.outbox.drain(&mut batch);
    String::from_utf8(batch.bytes().to_vec()).expect("utf-8")
}

pub(super) const ROOM: &str = "room@conference.localhost";

pub(super) fn join(h: &Harness, who: &Session, nick: &str) {
    h.send(
        who,
        &format!("<presence xmlns='jabber:client' to='{ROOM}/{nick}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"),
    );
}

pub(super) fn configure(h: &Harness, who: &Session, fields: &str) {
    h.send(
        who,
        &format!(
            "<iq xmlns='jabber:client' type='set' id='cfg' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#owner'>\
             <x xmlns='jabber:x:data' type='submit'>{fields}</x></query></iq>"
        ),
    );
}

#[test]
fn temporary_rooms_leave_memory_with_their_last_occupant() {
    let h = Harness::new();
    let romeo = h.client("romeo@localhost/a");
    join(&h, &romeo, "Romeo");
    assert_eq!(h.server.muc().loaded_rooms(), 1);
    configure(&h, &romeo, "");
    h.send(
        &romeo,
        &format!("<presence xmlns='jabber:client' type='unavailable' to='{ROOM}/Romeo'/>"),
    );
    h.settle();
    assert_eq!(h.server.muc().loaded_rooms(), 0);
    assert!(
        h.server
            .muc()
            .summaries(&h.server.env())
            .expect("list")
            .is_empty()
    );
}

#[test]
fn answers_wait_for_the_commit_and_rooms_come_back_from_disk() {
    let h = Harness::new();
    let romeo = h.client("romeo@localhost/a");
    join(&h, &romeo, "Romeo");
    drain(&romeo);
    configure(
        &h,
        &romeo,
        "<field var='muc#roomconfig_persistentroom'><value>1</value></field>",
    );
    // Nothing yet: the result reports a change that is not on disk.
    assert_eq!(drain(&romeo), "");
    // Traffic of the same room queues behind it, in order.
    h.send(
        &romeo,
        &format!("<message xmlns='jabber:client' type='groupchat' id='m1' to='{ROOM}'><body>kept</body></message>"),
    );
    assert_eq!(drain(&romeo), "");
    h.settle();
    let out = drain(&romeo);
    let result = out.find("id='cfg'").expect("result delivered");
    let message = out.find("id='m1'").expect("message delivered");
    assert!(result < message, "{out}");
    assert!(h.server.store().muc_rooms().exists(ROOM).expect("read"));

    h.send(
        &romeo,
        &format!("<presence xmlns='jabber:client' type='unavailable' to='{ROOM}/Romeo'/>"),
    );
    h.settle();
    assert_eq!(
        h.server.muc().loaded_rooms(),
        0,
        "an empty persistent room leaves memory"
    );

    let juliet = h.client("juliet@localhost/b");
    join(&h, &juliet, "Juliet");
    assert_eq!(h.server.muc().loaded_rooms(), 1);
    let out = drain(&juliet);
    assert!(
        out.contains("<body>kept</body>"),
        "history came back: {out}"
    );
    assert!(!out.contains("code='201'"), "an existing room: {out}");
}

#[test]
fn one_serialization_many_outboxes() {
    let h = Harness::new();
    let owner = h.client("owner@localhost/o");
    join(&h, &owner, "owner");
    configure(&h, &owner, "");
    let guests: Vec<Rc<Session>> = (0..20)
        .map(|i| {
            let s = h.client(&format!("guest{i}@localhost/r"));
            join(&h, &s, &format!("guest{i}"));
            s
        })
        .collect();
    h.settle();
    for g in &guests {
        drain(g);
    }
    drain(&owner);
    h.send(
        &owner,
        &format!("<message xmlns='jabber:client' type='groupchat' id='b1' to='{ROOM}'><body>to all</body></message>"),
    );
    let expected_tail = drain(&owner)
        .split_once("id='b1'")
        .map(|(_, tail)| tail.to_string())
        .expect("owner copy");
    for g in &guests {
        let copy = drain(g);
        assert!(
            copy.starts_with(&format!("<message to='{}'", g.jid)),
            "{copy}"
        );
        assert!(copy.ends_with(&expected_tail), "{copy}");
    }
}

#[test]
fn several_muc_domains_and_room_creation_limits() {
    let h = Harness::with_config(
        "[[host]]\ndomain = \"localhost\"\n\n[[host]]\ndomain = \"example.net\"\nmuc = \"rooms.example.net\"\n\n[muc]\nmax_rooms_per_user = 2\n",
    );
    let romeo = h.client("romeo@localhost/a");
    for room in ["one@conference.localhost", "two@rooms.example.net"] {
        h.send(
            &romeo,
            &format!("<presence xmlns='jabber:client' to='{room}/Romeo'><x xmlns='http://jabber.org/protocol/muc'/></presence>"),
        );
        h.send(
            &romeo,
            &format!(
                "<iq xmlns='jabber:client' type='set' id='c' to='{room}'><query xmlns='http://jabber.org/protocol/muc#owner'>\
                 <x xmlns='jabber:x:data' type='submit'/></query></iq>"
            ),
        );
    }
    h.settle();
    drain(&romeo);
    // Each service lists its own rooms.
    h.send(
        &romeo,
        "<iq xmlns='jabber:client' type='get' id='items' to='rooms.example.net'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>",
    );
    h.settle();
    let out = drain(&romeo);
    assert!(
        out.contains("two@rooms.example.net") && !out.contains("one@conference"),
        "{out}"
    );
    // A third temporary room is one too many for Romeo...
    h.send(
        &romeo,
        "<presence xmlns='jabber:client' to='three@conference.localhost/Romeo'><x xmlns='http://jabber.org/protocol/muc'/></presence>",
    );
    let out = drain(&romeo);
    assert!(out.contains("resource-constraint"), "{out}");
    // The text names the limit.
    assert!(out.contains("you may own at most 2 rooms"), "{out}");
    assert_eq!(h.server.muc().loaded_rooms(), 2);
    // ... not for a server admin.
    let root = h.client("root@localhost/console");
    h.send(
        &root,
        "<presence xmlns='jabber:client' to='three@conference.localhost/root'><x xmlns='http://jabber.org/protocol/muc'/></presence>",
    );
    assert!(drain(&root).contains("code='201'"));
}

#[test]
fn room_creation_can_be_restricted() {
    let h = Harness::with_config("[muc]\nroom_creation = \"admins\"\n");
    let romeo = h.client("romeo@localhost/a");
    join(&h, &romeo, "Romeo");
    let out = drain(&romeo);
    assert!(
        out.contains("type='error'") && out.contains("<not-allowed"),
        "{out}"
    );
    assert_eq!(h.server.muc().loaded_rooms(), 0);
    let root = h.client("root@localhost/console");
    join(&h, &root, "root");
    assert!(drain(&root).contains("code='201'"));
    // Once it exists, others may enter.
    configure(&h, &root, "");
    h.settle();
    join(&h, &romeo, "Romeo");
    assert!(drain(&romeo).contains("code='110'"));
}

#[test]
fn a_stored_rooms_messages_are_on_disk_before_anyone_sees_them() {
    use crate::store::archive::{self, Kind};
    let h = Harness::new();
    let romeo = h.client("romeo@localhost/a");
    join(&h, &romeo, "Romeo");
    configure(
        &h,
        &romeo,
        "<field var='muc#roomconfig_persistentroom'><value>1</value></field>",
    );
    h.settle();
    drain(&romeo);
    h.send(
        &romeo,
        &format!("<message xmlns='jabber:client' type='groupchat' id='m1' to='{ROOM}'>\
                  <body>first</body><stanza-id xmlns='urn:xmpp:sid:0' by='{ROOM}' id='forged'/></message>"),
    );
    assert_eq!(drain(&romeo), "", "the reflection waits for the write");
    h.settle();
    let out = drain(&romeo);
    let stats = archive::stats(h.server.store(), Kind::Room, ROOM).expect("stats");
    assert_eq!(stats.count, 1);
    let id = h.server.env().archive.ids.id(ROOM, stats.last);
    assert!(
        out.contains(&format!("by='{ROOM}'")) && out.contains(&id) && !out.contains("forged"),
        "{out}"
    );
    let record = archive::get(h.server.store(), Kind::Room, ROOM, stats.last)
        .expect("read")
        .expect("archived");
    assert_eq!(record.index, "Romeo");
    assert_eq!(record.extra, "romeo@localhost");
    assert!(String::from_utf8_lossy(&record.xml).contains("first"));
    // Nothing is saved whole any more: the archive is the history.
    assert_eq!(h.server.muc().save_changed_history(&h.server.env()), 0);
}

#[test]
fn a_history_saved_whole_by_an_older_perch_is_read_once_then_removed() {
    let h = Harness::new();
    let romeo = h.client("romeo@localhost/a");
    join(&h, &romeo, "Romeo");
    configure(
        &h,
        &romeo,
        "<field var='muc#roomconfig_persistentroom'><value>1</value></field>",
    );
    h.settle();
    h.send(
        &romeo,
        &format!("<presence xmlns='jabber:client' type='unavailable' to='{ROOM}/Romeo'/>"),
    );
    h.settle();
    assert_eq!(h.server.muc().loaded_rooms(), 0);
    let old = super::record::encode_history(&[super::record::StoredMessage {
        stamp: std::time::SystemTime::now(),
        xml: format!(
            "<message xmlns='jabber:client' type='groupchat' from='{ROOM}/Old'><body>from before</body></message>"
        ),
    }]);
    let write = crate::store::MucWrite::PutHistory {
        room: ROOM.to_string(),
        value: old,
    };
    h.server
        .store()
        .write_now(crate::store::muc_write_op(vec![write]))
        .expect("write");
    let juliet = h.client("juliet@localhost/b");
    join(&h, &juliet, "Juliet");
    h.settle();
    assert!(drain(&juliet).contains("from before"));
    assert_eq!(h.server.muc().save_changed_history(&h.server.env()), 1);
    h.settle();
    let stored = h.server.store().muc_rooms().load(ROOM).expect("read");
    assert!(stored.and_then(|r| r.history).is_none(), "removed");
}

#[test]
fn temporary_rooms_have_no_history_saved() {
    let h = Harness::new();
    let romeo = h.client("romeo@localhost/a");
    join(&h, &romeo, "Romeo");
    configure(&h, &romeo, "");
    h.settle();
    h.send(
        &romeo,
        &format!("<message xmlns='jabber:client' type='groupchat' id='m1' to='{ROOM}'><body>gone</body></message>"),
    );
    assert_eq!(h.server.muc().save_changed_history(&h.server.env()), 0);
    h.settle();
    assert!(!h.server.store().muc_rooms().exists(ROOM).expect("read"));
}

#[test]
fn presence_without_x_to_a_missing_room_creates_no_room() {
    let h = Harness::new();
    let romeo = h.client("romeo@localhost/a");
    h.send(
        &romeo,
        &format!("<presence xmlns='jabber:client' to='{ROOM}/Romeo'><show>away</show></presence>"),
    );
    h.settle();
    assert_eq!(h.server.muc().loaded_rooms(), 0);
    let out = drain(&romeo);
    assert!(
        out.contains("type='unavailable'") && out.contains("code='333'"),
        "{out}"
    );
}

#[test]
fn the_service_room_limit_is_named_when_reached() {
    let h = Harness::with_config("[muc]\nmax_rooms = 1\n");
    let romeo = h.client("romeo@localhost/a");
    h.send(
        &romeo,
        "<presence xmlns='jabber:client' to='one@conference.localhost/Romeo'><x xmlns='http://jabber.org/protocol/muc'/></presence>",
    );
    assert!(drain(&romeo).contains("code='201'"));
    let juliet = h.client("juliet@localhost/a");
    h.send(
        &juliet,
        "<presence xmlns='jabber:client' to='two@conference.localhost/Juliet'><x xmlns='http://jabber.org/protocol/muc'/></presence>",
    );
    let out = drain(&juliet);
    assert!(
        out.contains("resource-constraint") && out.contains("its limit of 1 rooms"),
        "{out}"
    );
    assert_eq!(h.server.muc().loaded_rooms(), 1);
}

pub(super) fn make_persistent(h: &Harness, who: &Session) {
    configure(
        h,
        who,
        "<field var='muc#roomconfig_persistentroom'><value>1</value></field>\
         <field var='muc#roomconfig_roomname'><value>Kept</value></field>",
    );
}

fn destroy(h: &Harness, owner: &Session) {
    h.send(
        owner,
        &format!(
            "<iq xmlns='jabber:client' type='set' id='destroy' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#owner'>\
             <destroy/></query></iq>"
        ),
    );
}

fn stored_name(h: &Harness) -> Option<String> {
    let stored = h.server.store().muc_rooms().load(ROOM).expect("read")?;
    let record = super::record::RoomRecord::decode(&stored.record).expect("decodes");
    Some(record.config.name)
}

#[test]
fn a_room_whose_write_failed_is_written_again_whole_at_once() {
    let h = Harness::new();
    let romeo = h.client("romeo@localhost/a");
    join(&h, &romeo, "Romeo");
    h.settle();
    h.server.store().fail_next_writes(1);
    make_persistent(&h, &romeo);
    h.settle();
    // Romeo was told nothing: his stream ends (internal-server-error).
    assert!(!drain(&romeo).contains("type='result'"));
    // The room, as in memory, is on disk: the configuration and its owner.
    assert_eq!(stored_name(&h).as_deref(), Some("Kept"));
    let stored = h
        .server
        .store()
        .muc_rooms()
        .load(ROOM)
        .expect("read")
        .expect("stored");
    let users: Vec<&str> = stored
        .affiliations
        .iter()
        .map(|(u, _)| u.as_str())
        .collect();
    assert_eq!(users, ["romeo@localhost"]);
}

#[test]
fn a_rewrite_that_fails_is_tried_again_at_the_next_event_not_in_a_loop() {
    let h = Harness::new();
    let romeo = h.client("romeo@localhost/a");
    join(&h, &romeo, "Romeo");
    h.settle();
    h.server.store().fail_next_writes(2);
    make_persistent(&h, &romeo);
    h.settle();
    assert_eq!(stored_name(&h), None, "the write and its rewrite failed");
    let juliet = h.client("juliet@localhost/a");
    join(&h, &juliet, "Juliet");
    h.settle();
    assert_eq!(stored_name(&h).as_deref(), Some("Kept"));
}

#[test]
fn an_empty_room_whose_write_failed_stays_in_memory_until_written_again() {
    let h = Harness::new();
    let romeo = h.client("romeo@localhost/a");
    join(&h, &romeo, "Romeo");
    h.settle();
    // The write and its rewrite fail, then the rewrite at the leave below
    // and the one tried at once after it.
    h.server.store().fail_next_writes(4);
    make_persistent(&h, &romeo);
    h.settle();
    h.send(
        &romeo,
        &format!("<presence xmlns='jabber:client' type='unavailable' to='{ROOM}/Romeo'/>"),
    );
    h.settle();
    assert_eq!(
        h.server.muc().loaded_rooms(),
        1,
        "memory holds the only copy"
    );
    assert_eq!(stored_name(&h), None);

    // The periodic save writes it; then it may leave memory.
    h.server.muc().save_changed_history(&h.server.env());
    h.settle();
    assert_eq!(stored_name(&h).as_deref(), Some("Kept"));
    assert_eq!(h.server.muc().loaded_rooms(), 0);
}

#[test]
fn a_destroyed_room_whose_removal_failed_is_removed_again_and_not_reloaded() {
    let h = Harness::new();
    let romeo = h.client("romeo@localhost/a");
    join(&h, &romeo, "Romeo");
    make_persistent(&h, &romeo);
    h.settle();
    assert_eq!(stored_name(&h).as_deref(), Some("Kept"));
    h.server.store().fail_next_writes(2);
    destroy(&h, &romeo);
    h.settle();
    assert!(
        stored_name(&h).is_some(),
        "the removal and its rewrite failed"
    );

    // A join makes a new room: the destroyed one is not loaded again.
    let juliet = h.client("juliet@localhost/a");
    join(&h, &juliet, "Juliet");
    h.settle();
    assert!(drain(&juliet).contains("code='201'"), "a new room");
    // Its first write replaces the old room on disk.
    assert_eq!(stored_name(&h), None);
    configure(
        &h,
        &juliet,
        "<field var='muc#roomconfig_persistentroom'><value>1</value></field>\
         <field var='muc#roomconfig_roomname'><value>New</value></field>",
    );
    h.settle();
    assert_eq!(stored_name(&h).as_deref(), Some("New"));
    let stored = h
        .server
        .store()
        .muc_rooms()
        .load(ROOM)
        .expect("read")
        .expect("stored");
    let users: Vec<&str> = stored
        .affiliations
        .iter()
        .map(|(u, _)| u.as_str())
        .collect();
    assert_eq!(users, ["juliet@localhost"], "nothing of the old room");
}

#[test]
fn a_destroyed_room_whose_removal_failed_is_removed_at_once() {
    let h = Harness::new();
    let romeo = h.client("romeo@localhost/a");
    join(&h, &romeo, "Romeo");
    make_persistent(&h, &romeo);
    h.settle();
    h.server.store().fail_next_writes(1);
    destroy(&h, &romeo);
    h.settle();
    assert_eq!(stored_name(&h), None);
}

#[test]
fn stored_rooms_count_towards_the_rooms_one_user_may_own() {
    let h = Harness::with_config("[muc]\nmax_rooms_per_user = 2\n");
    let romeo = h.client("romeo@localhost/a");
    for room in ["one", "two"] {
        let jid = format!("{room}@conference.localhost");
        h.send(
            &romeo,
            &format!("<presence xmlns='jabber:client' to='{jid}/Romeo'><x xmlns='http://jabber.org/protocol/muc'/></presence>"),
        );
        h.send(
            &romeo,
            &format!(
                "<iq xmlns='jabber:client' type='set' id='c' to='{jid}'><query xmlns='http://jabber.org/protocol/muc#owner'>\
                 <x xmlns='jabber:x:data' type='submit'>\
                 <field var='muc#roomconfig_persistentroom'><value>1</value></field></x></query></iq>"
            ),
        );
        // Leaves: the stored room leaves memory.
        h.send(
            &romeo,
            &format!("<presence xmlns='jabber:client' type='unavailable' to='{jid}/Romeo'/>"),
        );
    }
    h.settle();
    assert_eq!(h.server.muc().loaded_rooms(), 0, "only on disk now");
    drain(&romeo);
    h.send(
        &romeo,
        "<presence xmlns='jabber:client' to='three@conference.localhost/Romeo'><x xmlns='http://jabber.org/protocol/muc'/></presence>",
    );
    let out = drain(&romeo);
    assert!(out.contains("resource-constraint"), "{out}");
    assert!(out.contains("you may own at most 2 rooms"), "{out}");
    // Rooms others own do not count: Juliet may still create one.
    let juliet = h.client("juliet@localhost/a");
    h.send(
        &juliet,
        "<presence xmlns='jabber:client' to='three@conference.localhost/Juliet'><x xmlns='http://jabber.org/protocol/muc'/></presence>",
    );
    assert!(drain(&juliet).contains("code='201'"));
}
