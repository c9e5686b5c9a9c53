//! Power cuts at hundreds of points of a real server's writes: the server
//! runs on a simulated disk ([`PowerCut`]) while clients change rosters,
//! vCards, private XML, rooms' configuration and affiliations and leave
//! messages for an offline user. At the chosen disk operation the power
//! goes; the disk keeps what was synced (and, by mode, some of what was
//! not). Then the test checks that the file passes redb's integrity
//! check, that a server starts on it, and, through clients of that new
//! server, that everything a client was told is stored is there, and that
//! every value found is one a client sent (nothing half-written).
//!
//! `PERCH_POWER_CUTS` sets the number of cut points (default 360, about
//! two per disk operation of the run; 30 under qemu, where
//! `PERCH_TEST_TIME_SCALE` is set); `PERCH_POWER_CUT_AT` replays one.

mod common;

use std::collections::BTreeMap;

use common::*;
use std::time::Duration;

use perch::testing::{CutMode, PowerCut, TestOptions, TestServer, scaled};
use perch::xml::Element;

const ALICE: (&str, &str) = ("alice", "alice-password");
const BOB: (&str, &str) = ("bob", "bob-password");
const ROOM: &str = "club@conference.localhost";
const NS_MUC: &str = "http://jabber.org/protocol/muc";
const NS_MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
const NS_MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
const NS_NOTE: &str = "urn:example:perch-power-loss";
const ROUNDS: u32 = 2;
const MESSAGES_PER_ROUND: u32 = 3;

/// What the clients asked to store, in order, and which of the requests
/// were answered with success. A key's later value replaces its earlier.
#[derive(Default, Debug)]
struct Ledger {
    accounts_acknowledged: bool,
    /// Key (e.g. "vcard") → every value sent, with whether it was acknowledged.
    values: BTreeMap<&'static str, Vec<(String, bool)>>,
    /// Offline messages to Bob, in the order sent.
    messages: Vec<(String, bool)>,
}

impl Ledger {
    fn sent(&mut self, key: &'static str, value: String) {
        self.values.entry(key).or_default().push((value, false));
    }

    fn acknowledged(&mut self, key: &'static str) {
        if let Some(last) = self.values.get_mut(key).and_then(|v| v.last_mut()) {
            last.1 = true;
        }
    }

    /// Checks a value found after the cut: one that was sent, no older
    /// than the last acknowledged one; nothing only if nothing was
    /// acknowledged.
    fn check(&self, key: &str, found: Option<String>) -> Result<(), String> {
        let sent = self.values.get(key).map(Vec::as_slice).unwrap_or(&[]);
        let last_acknowledged = sent.iter().rposition(|(_, ack)| *ack);
        match (found, last_acknowledged) {
            (None, None) => Ok(()),
            (None, Some(i)) => Err(format!(
                "{key}: {:?} was acknowledged but is gone",
                sent[i].0
            )),
            (Some(value), last) => match sent.iter().position(|(v, _)| *v == value) {
                Some(i) if last.is_none_or(|last| i >= last) => Ok(()),
                Some(_) => Err(format!(
                    "{key}: found the older {value:?}, but {:?} was acknowledged",
                    sent[last.unwrap_or(0)].0
                )),
                None => Err(format!("{key}: found {value:?}, which no client sent")),
            },
        }
    }
}

fn iq(client: &mut Client, id: &str, xml: &str) -> Result<Element, String> {
    client.try_send(xml)?;
    client.try_iq_result(id)
}

/// The clients' work, until it is done or the server fails them (the
/// power is gone). Every success is written down in `ledger` as soon as
/// the client sees it.
fn workload(server: &TestServer, ledger: &mut Ledger) -> Result<(), String> {
    let mut alice = Client::try_connect(server.c2s_addr())?;
    alice.try_login("localhost", ALICE, Some("home"))?;
    for round in 1..=ROUNDS {
        let name = format!("Bob {round}");
        ledger.sent("roster", name.clone());
        iq(
            &mut alice,
            &format!("roster-{round}"),
            &format!(
                "<iq type='set' id='roster-{round}'><query xmlns='{NS_ROSTER}'>\
                 <item jid='bob@localhost' name='{name}'><group>Club</group></item></query></iq>"
            ),
        )?;
        ledger.acknowledged("roster");

        let full_name = format!("Alice {round}");
        ledger.sent("vcard", full_name.clone());
        iq(
            &mut alice,
            &format!("vcard-{round}"),
            &format!(
                "<iq type='set' id='vcard-{round}'><vCard xmlns='vcard-temp'>\
                 <FN>{full_name}</FN></vCard></iq>"
            ),
        )?;
        ledger.acknowledged("vcard");

        let note = format!("note {round}");
        ledger.sent("private", note.clone());
        iq(
            &mut alice,
            &format!("private-{round}"),
            &format!(
                "<iq type='set' id='private-{round}'><query xmlns='jabber:iq:private'>\
                 <note xmlns='{NS_NOTE}'>{note}</note></query></iq>"
            ),
        )?;
        ledger.acknowledged("private");

        // A message's acknowledgement is the answer to the next iq: the
        // server answers it only once the messages before it are stored.
        let first = ledger.messages.len();
        for n in 1..=MESSAGES_PER_ROUND {
            let id = format!("m-{round}-{n}");
            ledger.messages.push((id.clone(), false));
            alice.try_send(&format!(
                "<message to='bob@localhost' type='chat' id='{id}'><body>{id}</body></message>"
            ))?;
        }
        iq(
            &mut alice,
            &format!("after-messages-{round}"),
            &format!(
                "<iq type='get' id='after-messages-{round}' to='localhost'><ping xmlns='{NS_PING}'/></iq>"
            ),
        )?;
        for message in &mut ledger.messages[first..] {
            message.1 = true;
        }

        if round == 1 {
            alice.try_send(&format!(
                "<presence to='{ROOM}/alice'><x xmlns='{NS_MUC}'/></presence>"
            ))?;
            alice.try_element("the room's presence")?;
        }
        let room_name = format!("Club {round}");
        ledger.sent("room name", room_name.clone());
        iq(
            &mut alice,
            &format!("config-{round}"),
            &format!(
                "<iq type='set' id='config-{round}' to='{ROOM}'><query xmlns='{NS_MUC_OWNER}'>\
                 <x xmlns='jabber:x:data' type='submit'>\
                 <field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>\
                 <field var='muc#roomconfig_persistentroom'><value>1</value></field>\
                 <field var='muc#roomconfig_roomname'><value>{room_name}</value></field>\
                 </x></query></iq>"
            ),
        )?;
        ledger.acknowledged("room name");

        let affiliation = if round == 1 { "member" } else { "admin" };
        ledger.sent("bob's affiliation", affiliation.to_string());
        iq(
            &mut alice,
            &format!("affiliation-{round}"),
            &format!(
                "<iq type='set' id='affiliation-{round}' to='{ROOM}'><query xmlns='{NS_MUC_ADMIN}'>\
                 <item affiliation='{affiliation}' jid='bob@localhost'/></query></iq>"
            ),
        )?;
        ledger.acknowledged("bob's affiliation");
    }
    Ok(())
}

/// Reads back, through clients of a server started on what the cut left,
/// everything the ledger says, and checks it.
fn verify(server: &TestServer, ledger: &Ledger) -> Result<(), String> {
    let mut alice = Client::try_connect(server.c2s_addr())?;
    if let Err(e) = alice.try_login("localhost", ALICE, Some("check")) {
        if ledger.accounts_acknowledged {
            return Err(format!("alice was created but cannot log in: {e}"));
        }
        // The accounts were never acknowledged: nothing else was either.
        return Ok(());
    }

    let roster = iq(
        &mut alice,
        "roster",
        &format!("<iq type='get' id='roster'><query xmlns='{NS_ROSTER}'/></iq>"),
    )?;
    let item = roster.get_child("query", NS_ROSTER).and_then(|q| {
        q.children()
            .find(|i| i.attr("jid") == Some("bob@localhost"))
    });
    if let Some(item) = item {
        let groups: Vec<String> = item.children().map(Element::text).collect();
        if groups != ["Club"] {
            return Err(format!("the roster item is half-written: {item}"));
        }
    }
    ledger.check(
        "roster",
        item.and_then(|i| i.attr("name")).map(str::to_string),
    )?;

    let vcard = iq(
        &mut alice,
        "vcard",
        "<iq type='get' id='vcard'><vCard xmlns='vcard-temp'/></iq>",
    )?;
    let full_name = vcard
        .get_child("vCard", "vcard-temp")
        .and_then(|v| v.get_child("FN", "vcard-temp"))
        .map(Element::text);
    ledger.check("vcard", full_name)?;

    let private = iq(
        &mut alice,
        "private",
        &format!(
            "<iq type='get' id='private'><query xmlns='jabber:iq:private'>\
             <note xmlns='{NS_NOTE}'/></query></iq>"
        ),
    )?;
    let note = private
        .get_child("query", "jabber:iq:private")
        .and_then(|q| q.get_child("note", NS_NOTE))
        .map(Element::text)
        .filter(|t| !t.is_empty());
    ledger.check("private", note)?;

    alice.try_send(&format!(
        "<iq type='get' id='room' to='{ROOM}'><query xmlns='{NS_DISCO_INFO}'/></iq>"
    ))?;
    let room = alice.try_element("the room's disco#info")?;
    let room_name = match room.attr("type") {
        Some("result") => room
            .get_child("query", NS_DISCO_INFO)
            .and_then(|q| q.get_child("identity", NS_DISCO_INFO))
            .and_then(|i| i.attr("name"))
            .map(str::to_string),
        _ if error_condition(&room) == "item-not-found" => None,
        _ => return Err(format!("the room's disco#info failed: {room}")),
    };
    ledger.check("room name", room_name.clone())?;
    if room_name.is_some() {
        let mut found = None;
        for affiliation in ["member", "admin"] {
            let list = iq(
                &mut alice,
                affiliation,
                &format!(
                    "<iq type='get' id='{affiliation}' to='{ROOM}'><query xmlns='{NS_MUC_ADMIN}'>\
                     <item affiliation='{affiliation}'/></query></iq>"
                ),
            )?;
            let listed = list
                .get_child("query", NS_MUC_ADMIN)
                .is_some_and(|q| q.children().any(|i| i.attr("jid") == Some("bob@localhost")));
            if listed {
                if found.is_some() {
                    return Err("bob is both member and admin".to_string());
                }
                found = Some(affiliation.to_string());
            }
        }
        ledger.check("bob's affiliation", found)?;
    } else if ledger
        .values
        .get("bob's affiliation")
        .is_some_and(|v| v.iter().any(|(_, a)| *a))
    {
        return Err("bob's affiliation was acknowledged but the room is gone".to_string());
    }

    let mut bob = Client::try_connect(server.c2s_addr())?;
    if let Err(e) = bob.try_login("localhost", BOB, Some("check")) {
        if ledger.accounts_acknowledged {
            return Err(format!("bob was created but cannot log in: {e}"));
        }
        return Ok(());
    }
    bob.try_send("<presence/>")?;
    bob.try_send(&format!(
        "<iq type='get' id='drained' to='localhost'><ping xmlns='{NS_PING}'/></iq>"
    ))?;
    let mut delivered = Vec::new();
    loop {
        let el = bob.try_element("offline messages")?;
        if el.is("iq", NS_CLIENT) && el.attr("id") == Some("drained") {
            break;
        }
        if el.is("message", NS_CLIENT) {
            delivered.push(el.attr("id").unwrap_or_default().to_string());
        }
    }
    let mut next = 0;
    for id in &delivered {
        match ledger.messages[next..]
            .iter()
            .position(|(sent, _)| sent == id)
        {
            Some(skip) => {
                if let Some((lost, _)) = ledger.messages[next..next + skip].iter().find(|m| m.1) {
                    return Err(format!(
                        "acknowledged message {lost} is missing: {delivered:?}"
                    ));
                }
                next += skip + 1;
            }
            None => {
                return Err(format!(
                    "message {id} arrived twice, out of order or unsent: {delivered:?}"
                ));
            }
        }
    }
    if let Some((lost, _)) = ledger.messages[next..].iter().find(|m| m.1) {
        return Err(format!(
            "acknowledged message {lost} is missing: {delivered:?}"
        ));
    }
    Ok(())
}

fn options(disk: PowerCut, accounts: bool) -> TestOptions {
    let accounts = if accounts {
        vec![
            ("alice@localhost".to_string(), ALICE.1.to_string()),
            ("bob@localhost".to_string(), BOB.1.to_string()),
        ]
    } else {
        Vec::new()
    };
    TestOptions {
        accounts,
        disk: Some(disk),
        ..TestOptions::default()
    }
}

/// One run: the workload on a disk whose power goes at `cut_at`, then the
/// checks on what it left. `Err` says what broke.
fn cut_once(cut_at: Option<u64>, mode: CutMode, seed: u64) -> Result<u64, String> {
    let disk = PowerCut::new(cut_at, mode, seed);
    let mut ledger = Ledger::default();
    if let Ok(server) = TestServer::start(options(disk.clone(), true)) {
        ledger.accounts_acknowledged = true;
        let outcome = workload(&server, &mut ledger);
        if let Err(e) = outcome
            && !disk.is_cut()
        {
            // Only the cut may stop the clients: anything else would
            // silently shorten what the run checks.
            return Err(format!("the workload failed with the power on: {e}"));
        }
        // A server whose disk failed stops by itself (to be restarted
        // and repair the file) rather than refuse every later change.
        let failed_write = disk.is_cut();
        if failed_write && !server.stops_by_itself_within(scaled(Duration::from_secs(5))) {
            return Err("the server kept running after a write failed on its disk".to_string());
        }
        // The image is taken before the server stops: its shutdown
        // writes come after the cut.
        let _ = disk.image_after_cut();
        server.stop();
    }
    let operations = disk.operations();
    let image = disk.image_after_cut();

    // Perch opens it first, as `perch run` would (it may have to finish
    // an interrupted creation); then redb checks every page.
    let disk = PowerCut::restored(image);
    let store = perch::store::Store::open_with_backend(
        disk.clone(),
        std::path::Path::new("power-cut.redb"),
        1 << 20,
    )
    .map_err(|e| format!("Perch cannot open the database: {e}"))?;
    drop(store);
    let mut db = redb::Builder::new()
        .create_with_backend(disk.clone())
        .map_err(|e| format!("the database does not open: {e}"))?;
    match db.check_integrity() {
        Ok(true) => {}
        Ok(false) => return Err("redb's integrity check had to repair the file".to_string()),
        Err(e) => return Err(format!("redb's integrity check failed: {e}")),
    }
    drop(db);

    let server = TestServer::start(options(disk, false))
        .map_err(|e| format!("no server starts on what the cut left: {e}"))?;
    let checked = verify(&server, &ledger);
    server.stop();
    checked.map(|()| operations)
}

fn cut_points() -> u64 {
    let emulated = scaled(Duration::from_secs(1)) > Duration::from_secs(1);
    std::env::var("PERCH_POWER_CUTS")
        .ok()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(if emulated { 30 } else { 360 })
}

#[test]
fn acknowledged_writes_survive_power_cuts_at_any_point() {
    // PERCH_POWER_CUT_AT=OPERATION,MODE,SEED replays one failure's cut
    // (operation indexes drift a little from run to run with the timing
    // of group commits).
    if let Ok(spec) = std::env::var("PERCH_POWER_CUT_AT") {
        let parts: Vec<&str> = spec.split(',').map(str::trim).collect();
        let (Some(at), Some(mode), Some(seed)) = (
            parts.first().and_then(|p| p.parse().ok()),
            parts.get(1).and_then(|m| match *m {
                "LoseUnsynced" => Some(CutMode::LoseUnsynced),
                "KeepPrefix" => Some(CutMode::KeepPrefix),
                "KeepSectors" => Some(CutMode::KeepSectors),
                _ => None,
            }),
            parts.get(2).and_then(|p| p.parse().ok()),
        ) else {
            panic!(
                "PERCH_POWER_CUT_AT={spec}: expected OPERATION,MODE,SEED, e.g. 57,KeepSectors,35"
            );
        };
        if let Err(e) = cut_once(Some(at), mode, seed) {
            panic!("cut at operation {at} ({mode:?}, seed {seed}): {e}");
        }
        return;
    }
    // With the power on, the workload completes and everything is there;
    // its count of disk operations spaces the cut points.
    let total = cut_once(None, CutMode::LoseUnsynced, 0).expect("no cut");
    let points = cut_points();
    let modes = [
        CutMode::LoseUnsynced,
        CutMode::KeepPrefix,
        CutMode::KeepSectors,
    ];
    let mut failures = Vec::new();
    for i in 0..points {
        // Spread over the whole run, a little past its end (shutdown).
        let cut_at = i * (total + total / 10) / points;
        let mode = modes[(i % 3) as usize];
        if let Err(e) = cut_once(Some(cut_at), mode, i) {
            failures.push(format!(
                "cut at operation {cut_at} ({mode:?}, seed {i}): {e}"
            ));
        }
    }
    eprintln!(
        "power cuts: {points} points over {total} disk operations; {} failed",
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
