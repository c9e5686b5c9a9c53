use super::*;

/// A session joined to one room.
struct Joined;

impl CsiEnv for Joined {
    fn nick_in(&self, room: &str) -> Option<String> {
        (room == "room@muc.example").then(|| "Juliet".to_owned())
    }
}

fn batch_of(stanzas: &[&str]) -> Batch {
    let mut batch = Batch::default();
    for s in stanzas {
        batch.push(s.as_bytes());
    }
    batch
}

fn strings(batch: &Batch) -> Vec<String> {
    batch
        .stanzas()
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

fn inactive() -> CsiState {
    let mut csi = CsiState::default();
    csi.set_inactive();
    csi
}

/// Filters `stanzas` as one batch, returning what is written.
fn pass(csi: &mut CsiState, stanzas: &[&str]) -> Vec<String> {
    let mut batch = batch_of(stanzas);
    csi.filter(&mut batch, &Joined);
    strings(&batch)
}

fn kind(stanza: &str) -> Importance {
    classify(stanza.as_bytes(), &Joined)
}

const AVAILABLE_1: &str = "<presence from='romeo@example.net/a'><show>away</show></presence>";
const AVAILABLE_2: &str = "<presence from='romeo@example.net/a'><show>xa</show></presence>";
const NURSE: &str = "<presence from='nurse@example.com/b'/>";
const GONE: &str = "<presence from='romeo@example.net/a' type='unavailable'/>";
const CHAT: &str = "<message from='romeo@example.net/a' type='chat'><body>hi</body></message>";
const COMPOSING: &str = "<message from='romeo@example.net/a' type='chat'>\
     <composing xmlns='http://jabber.org/protocol/chatstates'/></message>";
const PAUSED: &str = "<message from='romeo@example.net/a' type='chat'>\
     <paused xmlns='http://jabber.org/protocol/chatstates'/></message>";

#[test]
fn presence_updates_are_held_collapsed_and_flushed_before_a_message() {
    let mut csi = inactive();
    assert!(pass(&mut csi, &[AVAILABLE_1, NURSE]).is_empty());
    let mut batch = batch_of(&[AVAILABLE_2]);
    assert_eq!(csi.filter(&mut batch, &Joined), 1, "the first one is gone");
    assert!(batch.is_empty());
    assert_eq!(csi.held_len(), 2);
    // The replacement took its place at the end: order of arrival.
    assert_eq!(pass(&mut csi, &[CHAT]), [NURSE, AVAILABLE_2, CHAT]);
    assert_eq!(csi.held_len(), 0);
    assert!(csi.is_inactive());
}

#[test]
fn superseded_presences_in_what_is_written_are_dropped() {
    let mut csi = inactive();
    assert!(pass(&mut csi, &[AVAILABLE_1]).is_empty());
    let mut batch = batch_of(&[NURSE, GONE, CHAT, AVAILABLE_2, COMPOSING]);
    assert_eq!(csi.filter(&mut batch, &Joined), 1);
    assert_eq!(strings(&batch), [NURSE, GONE, CHAT]);
    // After the last urgent stanza: held, not dropped.
    assert_eq!(csi.held_len(), 2);
    assert_eq!(strings(&csi.take_held()), [AVAILABLE_2, COMPOSING]);
}

#[test]
fn chat_states_are_held() {
    let mut csi = inactive();
    assert_eq!(kind(COMPOSING), Importance::Hold);
    assert!(pass(&mut csi, &[COMPOSING, PAUSED]).is_empty());
    assert_eq!(csi.held_len(), 2, "chat states do not collapse");
    // A batch ending in chatter keeps it; what came before goes.
    assert_eq!(
        pass(&mut csi, &[CHAT, COMPOSING]),
        [COMPOSING, PAUSED, CHAT]
    );
    assert_eq!(csi.held_len(), 1);
}

#[test]
fn an_iq_flushes() {
    let mut csi = inactive();
    assert!(pass(&mut csi, &[AVAILABLE_1, COMPOSING]).is_empty());
    let pong = "<iq type='result' id='p1' to='juliet@example.com/c'/>";
    assert_eq!(pass(&mut csi, &[pong]), [AVAILABLE_1, COMPOSING, pong]);
    assert_eq!(
        kind("<iq type='set' id='r'><query xmlns='jabber:iq:roster'/></iq>"),
        Importance::Urgent
    );
}

#[test]
fn a_muc_mention_flushes_and_other_room_chatter_does_not() {
    let chatter = "<message from='room@muc.example/Romeo' type='groupchat'>\
                   <body>hello everyone</body></message>";
    let mention = "<message from='room@muc.example/Romeo' type='groupchat'>\
                   <body>hey JULIET: look</body></message>";
    let elsewhere = "<message from='other@muc.example/Romeo' type='groupchat'>\
                     <body>Juliet!</body></message>";
    let subject = "<message from='room@muc.example' type='groupchat'>\
                   <subject>Juliet</subject></message>";
    assert_eq!(kind(chatter), Importance::Hold);
    assert_eq!(kind(elsewhere), Importance::Hold, "not joined there");
    // A subject ends a join the client waits for.
    assert_eq!(kind(subject), Importance::Urgent);
    assert_eq!(kind(mention), Importance::Urgent);
    let mut csi = inactive();
    assert!(pass(&mut csi, &[chatter, elsewhere]).is_empty());
    assert_eq!(pass(&mut csi, &[mention]), [chatter, elsewhere, mention]);
}

#[test]
fn a_word_containing_the_nick_is_not_a_mention() {
    assert!(!mentions("Juliette is here", "Juliet"));
    assert!(!mentions("mrjuliet", "Juliet"));
    assert!(!mentions("juliet_2 said", "Juliet"));
    assert!(mentions("juliet", "Juliet"));
    assert!(mentions("@Juliet, hi", "juliet"));
    assert!(mentions("Julietta and Juliet", "Juliet"));
    assert!(mentions("ping Dr. Who!", "dr. who"));
    // Overlapping candidates: the second one is the whole word.
    assert!(mentions("xx x x", "x x"));
    assert!(!mentions("anything", ""));
    let inside = "<message from='room@muc.example/Romeo' type='groupchat'>\
                  <body>Juliette?</body></message>";
    assert_eq!(kind(inside), Importance::Hold);
}

#[test]
fn set_active_releases_in_order() {
    let mut csi = inactive();
    assert!(pass(&mut csi, &[AVAILABLE_1, COMPOSING, NURSE]).is_empty());
    let mut batch = batch_of(&[CHAT]);
    csi.set_active(&mut batch);
    assert!(!csi.is_inactive());
    assert_eq!(strings(&batch), [AVAILABLE_1, COMPOSING, NURSE, CHAT]);
    assert_eq!(csi.held_len(), 0);
    // Active again: everything passes untouched.
    assert_eq!(pass(&mut csi, &[COMPOSING]), [COMPOSING]);
}

#[test]
fn max_held_flushes_everything() {
    let mut csi = CsiState::new(2);
    csi.set_inactive();
    assert!(pass(&mut csi, &[COMPOSING, PAUSED]).is_empty());
    // A third would be one too many: all of it goes, in order.
    assert_eq!(
        pass(&mut csi, &[AVAILABLE_1, AVAILABLE_2]),
        [COMPOSING, PAUSED, AVAILABLE_2]
    );
    assert_eq!(csi.held_len(), 0);
    // Collapsing ones count once.
    assert!(pass(&mut csi, &[AVAILABLE_1, AVAILABLE_2, NURSE]).is_empty());
    assert_eq!(csi.held_len(), 2);
    // The tail after an urgent stanza counts too.
    assert_eq!(
        pass(&mut csi, &[CHAT, COMPOSING, PAUSED, COMPOSING]),
        [AVAILABLE_2, NURSE, CHAT, COMPOSING, PAUSED, COMPOSING]
    );
    assert_eq!(csi.held_len(), 0);
}

#[test]
fn unparseable_bytes_are_urgent() {
    for bytes in [
        &b"<message><body>"[..],
        b"\xff\xfe",
        b"",
        b"text",
        b"<presence/><presence/>",
        b"</csi><csi>",
        b"<message xmlns='urn:other'/>",
        b"<nonza/>",
    ] {
        assert_eq!(classify(bytes, &Joined), Importance::Urgent, "{bytes:?}");
    }
    let mut csi = inactive();
    assert!(pass(&mut csi, &[COMPOSING]).is_empty());
    assert_eq!(pass(&mut csi, &["<broken"]), [COMPOSING, "<broken"]);
}

#[test]
fn active_and_empty_leaves_the_batch_alone() {
    let mut csi = CsiState::default();
    let mut batch = batch_of(&[COMPOSING, AVAILABLE_1]);
    let before = batch.bytes().as_ptr();
    assert_eq!(csi.filter(&mut batch, &Joined), 0);
    assert_eq!(batch.bytes().as_ptr(), before, "not copied");
    assert_eq!(strings(&batch), [COMPOSING, AVAILABLE_1]);
    assert_eq!(csi.held.capacity(), 0);
    // An inactive session with nothing held writes the batch up to its
    // last urgent stanza in place.
    csi.set_inactive();
    batch.push(CHAT.as_bytes());
    batch.push(PAUSED.as_bytes());
    let before = batch.bytes().as_ptr();
    assert_eq!(csi.filter(&mut batch, &Joined), 0);
    assert_eq!(batch.bytes().as_ptr(), before, "not copied");
    assert_eq!(strings(&batch), [COMPOSING, AVAILABLE_1, CHAT]);
    assert_eq!(csi.held_len(), 1);
}

#[test]
fn an_encrypted_message_without_body_is_urgent() {
    for payload in [
        "<encrypted xmlns='eu.siacs.conversations.axolotl'/>",
        "<encrypted xmlns='urn:xmpp:omemo:2'/>",
        "<x xmlns='jabber:x:encrypted'>abc</x>",
        "<openpgp xmlns='urn:xmpp:openpgp:0'>abc</openpgp>",
    ] {
        let message =
            format!("<message from='romeo@example.net/a' type='chat'>{payload}</message>");
        assert_eq!(kind(&message), Importance::Urgent, "{payload}");
    }
}

#[test]
fn a_carbon_wrapped_message_with_body_is_urgent() {
    let carbon = |which: &str, inner: &str| {
        format!(
            "<message from='juliet@example.com' type='chat'>\
             <{which} xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>\
             {inner}</forwarded></{which}></message>"
        )
    };
    let inner_chat = "<message xmlns='jabber:client' from='romeo@example.net/a' \
                      type='chat'><body>hi</body></message>";
    let inner_state = "<message xmlns='jabber:client' from='romeo@example.net/a' \
                       type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/>\
                       </message>";
    assert_eq!(kind(&carbon("received", inner_chat)), Importance::Urgent);
    assert_eq!(kind(&carbon("sent", inner_chat)), Importance::Urgent);
    assert_eq!(kind(&carbon("sent", inner_state)), Importance::Hold);
    let forwarded = format!(
        "<message from='room@muc.example'><forwarded xmlns='urn:xmpp:forward:0'>\
         {inner_chat}</forwarded></message>"
    );
    assert_eq!(kind(&forwarded), Importance::Urgent);
}

#[test]
fn subscription_requests_are_urgent() {
    for kind_ in [
        "subscribe",
        "subscribed",
        "unsubscribe",
        "unsubscribed",
        "error",
    ] {
        let presence = format!("<presence from='romeo@example.net' type='{kind_}'/>");
        assert_eq!(kind(&presence), Importance::Urgent, "{kind_}");
    }
    assert_eq!(
        kind(GONE),
        Importance::Collapse("romeo@example.net/a".to_owned())
    );
    assert_eq!(
        kind("<presence/>"),
        Importance::Hold,
        "no key without a from"
    );
}

#[test]
fn other_urgent_and_held_messages() {
    for urgent in [
        "<message type='error' from='a@b'><error type='cancel'/></message>",
        "<message from='a@b/c'><propose xmlns='urn:xmpp:jingle-message:0' id='x'/></message>",
        "<message from='room@muc.example'><x xmlns='http://jabber.org/protocol/muc#user'>\
         <invite from='romeo@example.net'/></x></message>",
        "<message from='romeo@example.net/a'><x xmlns='jabber:x:conference' \
         jid='room@muc.example'/></message>",
        "<message from='a@b/c'><body/></message>",
    ] {
        assert_eq!(kind(urgent), Importance::Urgent, "{urgent}");
    }
    for held in [
        "<message from='news@b' type='headline'><body>news</body></message>",
        "<message from='a@b/c'><received xmlns='urn:xmpp:receipts' id='1'/></message>",
        "<message from='a@b/c'><displayed xmlns='urn:xmpp:chat-markers:0' id='1'/></message>",
        "<message from='a@b'><event xmlns='http://jabber.org/protocol/pubsub#event'/></message>",
        "<message from='room@muc.example'><x xmlns='http://jabber.org/protocol/muc#user'>\
         <status code='104'/></x></message>",
    ] {
        assert_eq!(kind(held), Importance::Hold, "{held}");
    }
}

#[test]
fn take_held_empties_and_frees() {
    let mut csi = inactive();
    assert!(pass(&mut csi, &[AVAILABLE_1, COMPOSING]).is_empty());
    assert_eq!(strings(&csi.take_held()), [AVAILABLE_1, COMPOSING]);
    assert_eq!(csi.held_len(), 0);
    assert_eq!(csi.held.capacity(), 0);
    assert!(csi.take_held().is_empty());
}

#[test]
fn a_room_subject_and_self_presence_complete_a_join_at_once() {
    let env = Joined;
    let subject =
        b"<message type='groupchat' from='room@muc.example/x'><subject>Hi</subject></message>";
    assert_eq!(classify(subject, &env), Importance::Urgent);
    let own = b"<presence from='room@muc.example/Juliet'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/><status code='110'/></x></presence>";
    assert_eq!(classify(own, &env), Importance::Urgent);
    let other = b"<presence from='room@muc.example/romeo'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/></x></presence>";
    assert_eq!(
        classify(other, &env),
        Importance::Collapse("room@muc.example/romeo".into())
    );
}

#[test]
fn big_held_stanzas_are_sent_past_the_byte_limit() {
    let mut csi = inactive();
    let big = format!(
        "<message from='a@b/c'><x xmlns='urn:example'>{}</x></message>",
        "x".repeat(100 << 10)
    );
    assert!(pass(&mut csi, &[&big, &big]).is_empty(), "200 KiB are held");
    let out = pass(&mut csi, &[&big]);
    assert_eq!(out.len(), 3, "past 256 KiB everything goes, in order");
    assert_eq!(csi.held_len(), 0);
}
