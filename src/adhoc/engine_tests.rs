//! The engine without a server: actions, sessions, errors and limits,
//! with a two-stage test command and the XEP-0133 commands over an
//! environment in memory.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::*;
use crate::adhoc::admin_accounts::{ADD_USER, AddUser, DISABLE_USER, DisableUser};
use crate::adhoc::admin_announce::{Announce, DELETE_MOTD, DeleteMotd, EDIT_MOTD, EditMotd};
use crate::adhoc::admin_info::{ONLINE_USERS_LIST, OnlineUsersList};
use crate::adhoc::command::BadPayload;
use crate::forms::{Field, FieldType};

/// Two stages: a colour (`next`), then a size (`complete`).
struct Paint;

const PAINT: &str = "urn:test:paint";

impl AdhocCommand for Paint {
    fn node(&self) -> &'static str {
        PAINT
    }
    fn name(&self) -> &'static str {
        "Paint"
    }
    fn access(&self) -> Access {
        Access::LocalUsers
    }
    fn step(&self, submitted: &[Form], _: &dyn CommandEnv) -> Result<Step, BadPayload> {
        match submitted {
            [] => Ok(Step::Ask {
                form: Form::new(FormType::Form)
                    .with_field(Field::new("colour", FieldType::TextSingle)),
                last: false,
            }),
            [colour] => {
                if colour.value("colour").is_none() {
                    return Err(BadPayload("choose a colour".into()));
                }
                Ok(Step::Ask {
                    form: Form::new(FormType::Form)
                        .with_field(Field::new("size", FieldType::TextSingle)),
                    last: true,
                })
            }
            [colour, size, ..] => Ok(Step::note(Note::info(format!(
                "{} {}",
                size.value("size").unwrap_or("?"),
                colour.value("colour").unwrap_or("?")
            )))),
        }
    }
}

#[derive(Default)]
struct World {
    accounts: RefCell<BTreeSet<String>>,
    disabled: RefCell<BTreeSet<String>>,
    online: Vec<Jid>,
    motd: RefCell<Option<String>>,
    announced: RefCell<Vec<String>>,
}

impl CommandEnv for World {
    fn domain(&self) -> &str {
        "example.org"
    }
    fn account_exists(&self, jid: &Jid) -> bool {
        self.accounts.borrow().contains(jid.as_str())
    }
    fn is_disabled(&self, jid: &Jid) -> bool {
        self.disabled.borrow().contains(jid.as_str())
    }
    fn online_resources(&self) -> Vec<Jid> {
        self.online.clone()
    }
    fn registered_count(&self) -> Result<usize, String> {
        Ok(self.accounts.borrow().len())
    }
    fn delete_account(&self, jid: &Jid) -> Result<(), String> {
        self.accounts.borrow_mut().remove(jid.as_str());
        Ok(())
    }
    fn set_disabled(&self, jid: &Jid, disabled: bool) -> Result<(), String> {
        if disabled {
            self.disabled.borrow_mut().insert(jid.to_string());
        } else {
            self.disabled.borrow_mut().remove(jid.as_str());
        }
        Ok(())
    }
    fn announce(&self, text: &str) -> usize {
        self.announced.borrow_mut().push(text.to_string());
        self.online.len()
    }
    fn motd(&self) -> Option<String> {
        self.motd.borrow().clone()
    }
    fn set_motd(&self, text: Option<&str>) -> Result<(), String> {
        *self.motd.borrow_mut() = text.map(str::to_string);
        Ok(())
    }
}

const COMMANDS: &[&dyn AdhocCommand] = &[
    &Paint,
    &AddUser,
    &DisableUser,
    &OnlineUsersList,
    &Announce,
    &EditMotd,
    &DeleteMotd,
];

fn jid(s: &str) -> Jid {
    Jid::parse(s).expect("jid")
}

struct Harness {
    engine: Engine,
    world: World,
    now: Instant,
    who: Jid,
    admin: bool,
}

impl Harness {
    fn new(admin: bool) -> Harness {
        Harness {
            engine: Engine::default(),
            world: World::default(),
            now: Instant::now(),
            who: jid("root@example.org/laptop"),
            admin,
        }
    }

    fn send(&self, xml: &str) -> Result<Element, StanzaError> {
        let el = Element::parse(xml).expect("xml");
        let request = parse_request(&el, None)?;
        let requester = Requester {
            jid: &self.who,
            admin: self.admin,
        };
        match self
            .engine
            .handle(COMMANDS, &requester, request, &self.world, self.now)
        {
            Outcome::Answer(a) => a,
            Outcome::Work { work, .. } => panic!("unexpected work {work:?}"),
        }
    }

    fn work(&self, xml: &str) -> Work {
        let el = Element::parse(xml).expect("xml");
        let request = parse_request(&el, None).expect("request");
        let requester = Requester {
            jid: &self.who,
            admin: self.admin,
        };
        match self
            .engine
            .handle(COMMANDS, &requester, request, &self.world, self.now)
        {
            Outcome::Work { work, .. } => work,
            Outcome::Answer(a) => panic!("expected work, got {a:?}"),
        }
    }
}

fn cmd(node: &str, attrs: &str, body: &str) -> String {
    format!("<command xmlns='{NS_COMMANDS}' node='{node}' {attrs}>{body}</command>")
}

fn form(fields: &[(&str, &str)]) -> String {
    let mut out = String::from("<x xmlns='jabber:x:data' type='submit'>");
    for (var, value) in fields {
        out.push_str(&format!(
            "<field var='{var}'><value>{value}</value></field>"
        ));
    }
    out.push_str("</x>");
    out
}

fn session_of(answer: &Element) -> String {
    answer.attr("sessionid").expect("sessionid").to_string()
}

fn app_condition(e: &StanzaError) -> Option<&'static str> {
    e.app.map(|a| a.name)
}

fn notes(answer: &Element) -> Vec<String> {
    answer
        .children()
        .filter(|c| c.name == "note")
        .map(|n| format!("{}: {}", n.attr("type").unwrap_or("?"), n.text()))
        .collect()
}

fn actions(answer: &Element) -> (Option<String>, Vec<String>) {
    let actions = answer.get_child("actions", NS_COMMANDS).expect("actions");
    (
        actions.attr("execute").map(str::to_string),
        actions.children().map(|c| c.name.to_string()).collect(),
    )
}

#[test]
fn stages_next_prev_complete() {
    let h = Harness::new(false);
    let first = h.send(&cmd(PAINT, "action='execute'", "")).expect("start");
    assert_eq!(first.attr("status"), Some("executing"));
    assert_eq!(first.attr("xml:lang"), Some("en"));
    assert_eq!(
        actions(&first),
        (Some("next".into()), vec!["next".to_string()])
    );
    let id = session_of(&first);
    // `complete` is refused while more stages follow.
    let early = h
        .send(&cmd(
            PAINT,
            &format!("sessionid='{id}' action='complete'"),
            &form(&[("colour", "red")]),
        ))
        .expect_err("complete too early");
    assert_eq!(app_condition(&early), Some("bad-action"));
    let second = h
        .send(&cmd(
            PAINT,
            &format!("sessionid='{id}' action='next'"),
            &form(&[("colour", "red")]),
        ))
        .expect("next");
    assert_eq!(
        actions(&second),
        (
            Some("complete".into()),
            vec!["prev".to_string(), "complete".to_string()]
        )
    );
    // Back to the first stage, then forward with another colour.
    let back = h
        .send(&cmd(PAINT, &format!("sessionid='{id}' action='prev'"), ""))
        .expect("prev");
    assert_eq!(actions(&back), (Some("next".into()), vec!["next".into()]));
    let prev_again = h
        .send(&cmd(PAINT, &format!("sessionid='{id}' action='prev'"), ""))
        .expect_err("nothing before the first stage");
    assert_eq!(app_condition(&prev_again), Some("bad-action"));
    h.send(&cmd(
        PAINT,
        &format!("sessionid='{id}'"),
        &form(&[("colour", "blue")]),
    ))
    .expect("execute means next here");
    let next_at_end = h
        .send(&cmd(
            PAINT,
            &format!("sessionid='{id}' action='next'"),
            &form(&[("size", "big")]),
        ))
        .expect_err("next on the last stage");
    assert_eq!(app_condition(&next_at_end), Some("bad-action"));
    let done = h
        .send(&cmd(
            PAINT,
            &format!("sessionid='{id}' action='complete'"),
            &form(&[("size", "big")]),
        ))
        .expect("complete");
    assert_eq!(done.attr("status"), Some("completed"));
    assert_eq!(notes(&done), vec!["info: big blue".to_string()]);
    assert_eq!(h.engine.open_sessions(), 0);
    // The session is over now.
    let after = h
        .send(&cmd(
            PAINT,
            &format!("sessionid='{id}' action='complete'"),
            &form(&[("size", "big")]),
        ))
        .expect_err("expired");
    assert_eq!(app_condition(&after), Some("session-expired"));
    assert_eq!(after.condition, Condition::NotAllowed);
}

#[test]
fn cancel_and_bad_requests() {
    let h = Harness::new(false);
    let id = session_of(&h.send(&cmd(PAINT, "", "")).expect("start"));
    let canceled = h
        .send(&cmd(
            PAINT,
            &format!("sessionid='{id}' action='cancel'"),
            "",
        ))
        .expect("cancel");
    assert_eq!(canceled.attr("status"), Some("canceled"));
    assert_eq!(h.engine.open_sessions(), 0);

    let id = session_of(&h.send(&cmd(PAINT, "", "")).expect("start"));
    let unknown = h
        .send(&cmd(PAINT, &format!("sessionid='{id}' action='jump'"), ""))
        .expect_err("unknown action");
    assert_eq!(app_condition(&unknown), Some("malformed-action"));
    assert_eq!(unknown.condition, Condition::BadRequest);
    let missing_form = h
        .send(&cmd(PAINT, &format!("sessionid='{id}' action='next'"), ""))
        .expect_err("no form");
    assert_eq!(app_condition(&missing_form), Some("bad-payload"));
    // A form the command cannot take keeps the session at its stage.
    let empty = h
        .send(&cmd(
            PAINT,
            &format!("sessionid='{id}' action='next'"),
            &form(&[]),
        ))
        .expect_err("no colour");
    assert_eq!(app_condition(&empty), Some("bad-payload"));
    let result_form = h
        .send(&cmd(
            PAINT,
            &format!("sessionid='{id}'"),
            "<x xmlns='jabber:x:data' type='result'/>",
        ))
        .expect_err("a result is no answer");
    assert_eq!(app_condition(&result_form), Some("bad-payload"));
    let retried = h
        .send(&cmd(
            PAINT,
            &format!("sessionid='{id}' action='next'"),
            &form(&[("colour", "green")]),
        ))
        .expect("corrected");
    assert_eq!(retried.attr("status"), Some("executing"));
    let bogus = h
        .send(&cmd(PAINT, "sessionid='nope' action='next'", &form(&[])))
        .expect_err("unknown session");
    assert_eq!(app_condition(&bogus), Some("bad-sessionid"));
    let not_started = h
        .send(&cmd(PAINT, "action='next'", &form(&[])))
        .expect_err("next without a session");
    assert_eq!(app_condition(&not_started), Some("bad-action"));
    let locale = h
        .send(&cmd(PAINT, "xml:lang='not a tag!'", ""))
        .expect_err("bad locale");
    assert_eq!(app_condition(&locale), Some("bad-locale"));
    // Any well-formed language is answered, in English.
    let french = h.send(&cmd(PAINT, "xml:lang='fr-CA'", "")).expect("fr");
    assert_eq!(french.attr("xml:lang"), Some("en"));
    let missing = h.send(&cmd("urn:nothing", "", "")).expect_err("no node");
    assert_eq!(missing.condition, Condition::ItemNotFound);
}

#[test]
fn sessions_belong_to_their_owner_and_expire() {
    let mut h = Harness::new(false);
    let id = session_of(&h.send(&cmd(PAINT, "", "")).expect("start"));
    let owner = h.who.clone();
    h.who = jid("mallory@example.org/x");
    let stolen = h
        .send(&cmd(
            PAINT,
            &format!("sessionid='{id}'"),
            &form(&[("colour", "red")]),
        ))
        .expect_err("not theirs");
    assert_eq!(app_condition(&stolen), Some("bad-sessionid"));
    h.who = owner;
    h.now += SESSION_IDLE_LIFETIME + Duration::from_secs(1);
    let late = h
        .send(&cmd(
            PAINT,
            &format!("sessionid='{id}'"),
            &form(&[("colour", "red")]),
        ))
        .expect_err("idle too long");
    assert_eq!(app_condition(&late), Some("session-expired"));
    assert_eq!(h.engine.open_sessions(), 0);
}

#[test]
fn per_account_limit_ends_the_oldest() {
    let mut h = Harness::new(false);
    let start = h.now;
    let mut ids = Vec::new();
    for i in 0..MAX_SESSIONS_PER_ACCOUNT {
        h.now = start + Duration::from_secs(i as u64);
        // Another resource of the same account counts too.
        h.who = jid(&format!("root@example.org/r{i}"));
        ids.push(session_of(&h.send(&cmd(PAINT, "", "")).expect("start")));
    }
    assert_eq!(h.engine.open_sessions(), MAX_SESSIONS_PER_ACCOUNT);
    h.now = start + Duration::from_secs(100);
    h.send(&cmd(PAINT, "", "")).expect("one more");
    assert_eq!(h.engine.open_sessions(), MAX_SESSIONS_PER_ACCOUNT);
    h.who = jid("root@example.org/r0");
    let oldest = h
        .send(&cmd(
            PAINT,
            &format!("sessionid='{}'", ids[0]),
            &form(&[("colour", "red")]),
        ))
        .expect_err("ended");
    assert_eq!(app_condition(&oldest), Some("session-expired"));
    // Another account is not affected.
    h.who = jid("other@example.org/r");
    h.send(&cmd(PAINT, "", "")).expect("other account");
    assert_eq!(h.engine.open_sessions(), MAX_SESSIONS_PER_ACCOUNT + 1);
}

#[test]
fn admin_commands_are_forbidden_to_others() {
    let h = Harness::new(false);
    let refused = h.send(&cmd(ADD_USER, "", "")).expect_err("not admin");
    assert_eq!(refused.condition, Condition::Forbidden);
    assert_eq!(h.engine.open_sessions(), 0);
}

#[test]
fn add_user_checks_then_hands_out_work() {
    let h = Harness::new(true);
    h.world
        .accounts
        .borrow_mut()
        .insert("taken@example.org".into());
    let first = h.send(&cmd(ADD_USER, "", "")).expect("form");
    let x = first.get_child("x", "jabber:x:data").expect("form");
    assert!(x.children().any(|f| f.attr("var") == Some("accountjid")));
    let id = session_of(&first);
    let differ = h
        .send(&cmd(
            ADD_USER,
            &format!("sessionid='{id}' action='complete'"),
            &form(&[
                ("accountjid", "new@example.org"),
                ("password", "one"),
                ("password-verify", "two"),
            ]),
        ))
        .expect_err("passwords differ");
    assert_eq!(app_condition(&differ), Some("bad-payload"));
    let elsewhere = h
        .send(&cmd(
            ADD_USER,
            &format!("sessionid='{id}'"),
            &form(&[("accountjid", "new@example.net"), ("password", "pw")]),
        ))
        .expect_err("another host");
    assert_eq!(app_condition(&elsewhere), Some("bad-payload"));
    let work = h.work(&cmd(
        ADD_USER,
        &format!("sessionid='{id}'"),
        &form(&[
            ("FORM_TYPE", "http://jabber.org/protocol/admin"),
            ("accountjid", "New@example.org"),
            ("password", "secret pw"),
            ("password-verify", "secret pw"),
        ]),
    ));
    assert_eq!(
        work,
        Work::CreateAccount {
            jid: jid("new@example.org"),
            password: "secret pw".into()
        }
    );
    let done = finish_work(ADD_USER, &id, &work, Ok(None));
    assert_eq!(
        notes(&done),
        vec!["info: Created new@example.org.".to_string()]
    );
    let failed = finish_work(ADD_USER, &id, &work, Err("disk full".into()));
    assert_eq!(notes(&failed), vec!["error: disk full".to_string()]);
    // A form sent with the first request answers the first stage.
    let taken = h
        .send(&cmd(
            ADD_USER,
            "",
            &form(&[("accountjid", "taken@example.org"), ("password", "pw")]),
        ))
        .expect("answered at once");
    assert_eq!(
        notes(&taken),
        vec!["error: taken@example.org exists already.".to_string()]
    );
    assert_eq!(h.engine.open_sessions(), 0);
}

#[test]
fn disable_lists_and_limits() {
    let h = Harness::new(true);
    h.world.accounts.borrow_mut().insert("a@example.org".into());
    let done = h
        .send(&cmd(
            DISABLE_USER,
            "",
            "<x xmlns='jabber:x:data' type='submit'><field var='accountjids'>\
             <value>a@example.org</value><value>ghost@example.org</value></field></x>",
        ))
        .expect("done");
    assert_eq!(
        notes(&done),
        vec![
            "info: Disabled a@example.org.".to_string(),
            "error: There is no account ghost@example.org.".to_string()
        ]
    );
    assert!(h.world.is_disabled(&jid("a@example.org")));
    let many: String = (0..=crate::adhoc::admin_form::MAX_ACCOUNTS_PER_REQUEST)
        .map(|i| format!("<value>u{i}@example.org</value>"))
        .collect();
    let too_many = h
        .send(&cmd(
            DISABLE_USER,
            "",
            &format!(
                "<x xmlns='jabber:x:data' type='submit'><field var='accountjids'>{many}</field></x>"
            ),
        ))
        .expect_err("too many");
    assert_eq!(app_condition(&too_many), Some("bad-payload"));
}

#[test]
fn online_list_motd_and_announce() {
    let mut h = Harness::new(true);
    h.world.online = vec![
        jid("b@example.org/phone"),
        jid("a@example.org/laptop"),
        jid("a@example.org/phone"),
    ];
    let list = h
        .send(&cmd(ONLINE_USERS_LIST, "", &form(&[("max_items", "1")])))
        .expect("list");
    let values: Vec<String> = list
        .get_child("x", "jabber:x:data")
        .and_then(|x| {
            x.children()
                .find(|f| f.attr("var") == Some("onlineuserjids"))
        })
        .map(|f| f.children().map(Element::text).collect())
        .expect("field");
    assert_eq!(values, vec!["a@example.org".to_string()]);
    assert_eq!(
        notes(&list),
        vec!["info: Showing 1 of 2 online users.".to_string()]
    );

    *h.world.motd.borrow_mut() = Some("line one\nline two".into());
    let edit = h.send(&cmd(EDIT_MOTD, "", "")).expect("edit form");
    let motd_values: Vec<String> = edit
        .get_child("x", "jabber:x:data")
        .and_then(|x| x.children().find(|f| f.attr("var") == Some("motd")))
        .map(|f| {
            f.children()
                .filter(|c| c.name == "value")
                .map(Element::text)
                .collect()
        })
        .expect("motd field");
    assert_eq!(motd_values, vec!["line one", "line two"]);
    let id = session_of(&edit);
    h.send(&cmd(
        EDIT_MOTD,
        &format!("sessionid='{id}'"),
        &form(&[("motd", "Welcome")]),
    ))
    .expect("set");
    assert_eq!(h.world.motd().as_deref(), Some("Welcome"));
    let deleted = h.send(&cmd(DELETE_MOTD, "", "")).expect("delete");
    assert_eq!(
        notes(&deleted),
        vec!["info: The message of the day is deleted.".to_string()]
    );
    assert_eq!(h.world.motd(), None);

    let announced = h
        .send(&cmd(
            crate::adhoc::admin_announce::ANNOUNCE,
            "",
            &form(&[("announcement", "Reboot at noon")]),
        ))
        .expect("announce");
    assert_eq!(
        notes(&announced),
        vec!["info: Sent to 3 online resources.".to_string()]
    );
    assert_eq!(*h.world.announced.borrow(), vec!["Reboot at noon"]);
    let empty = h
        .send(&cmd(
            crate::adhoc::admin_announce::ANNOUNCE,
            "",
            &form(&[("announcement", "  ")]),
        ))
        .expect_err("empty");
    assert_eq!(app_condition(&empty), Some("bad-payload"));
}

#[test]
fn hostile_requests_are_errors() {
    for xml in [
        "<command xmlns='http://jabber.org/protocol/commands'/>",
        "<command xmlns='http://jabber.org/protocol/commands' node=''/>",
        "<other xmlns='http://jabber.org/protocol/commands' node='x'/>",
        "<command xmlns='http://jabber.org/protocol/commands' node='x'>\
         <x xmlns='jabber:x:data' type='bogus'/></command>",
    ] {
        let el = Element::parse(xml).expect("xml");
        assert!(parse_request(&el, None).is_err(), "{xml}");
    }
    assert!(is_language_tag("en"));
    assert!(is_language_tag("zh-Hant-TW"));
    assert!(!is_language_tag(""));
    assert!(!is_language_tag("en-"));
    assert!(!is_language_tag("toolongtag"));
}
