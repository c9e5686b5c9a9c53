//! The XEP-0050 execution rules over a set of commands: reading a
//! `<command/>` request, its action and session, the sessions' limits, and
//! the `<command/>` answer or the error §4.6 names. No I/O: the caller
//! passes the clock and the environment, and runs any [`Work`] handed
//! back.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::forms::{Form, FormType};
use crate::jid::Jid;
use crate::stanza::{AppCondition, Condition, ErrorType, StanzaError};
use crate::xml::Element;

use super::command::{Access, AdhocCommand, CommandEnv, NS_COMMANDS, Note, Step, Work};

/// Sessions one account may have open at once; opening one more ends its
/// oldest (which then answers `session-expired`).
pub const MAX_SESSIONS_PER_ACCOUNT: usize = 5;
/// Sessions open at once on the whole server; at the limit a new one is
/// refused with `resource-constraint`.
pub const MAX_SESSIONS: usize = 1000;
/// How long a session waits for its next request.
pub const SESSION_IDLE_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// Ended sessions remembered, to answer `session-expired` rather than
/// `bad-sessionid` for them.
const REMEMBERED_ENDED: usize = 256;
/// The language of every text the commands show.
const LANG: &str = "en";

/// What the requester asks for (the `action` attribute).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Execute,
    Next,
    Prev,
    Complete,
    Cancel,
}

impl Action {
    fn parse(raw: Option<&str>) -> Result<Action, StanzaError> {
        Ok(match raw {
            None | Some("execute") => Action::Execute,
            Some("next") => Action::Next,
            Some("prev") => Action::Prev,
            Some("complete") => Action::Complete,
            Some("cancel") => Action::Cancel,
            Some(other) => {
                return Err(command_error(
                    Condition::BadRequest,
                    "malformed-action",
                    format!("unknown action '{other}'"),
                ));
            }
        })
    }
}

/// A parsed `<command/>` request.
#[derive(Debug)]
pub struct Request {
    pub node: String,
    pub session: Option<String>,
    pub action: Action,
    /// The submitted form, if the request carries one.
    pub form: Option<Form>,
}

/// Reads a `<command xmlns='http://jabber.org/protocol/commands'/>`;
/// `lang` is its `xml:lang` or the iq's.
pub fn parse_request(command: &Element, lang: Option<&str>) -> Result<Request, StanzaError> {
    if !command.is("command", NS_COMMANDS) {
        return Err(StanzaError::new(Condition::BadRequest).with_text("expected <command/>"));
    }
    let node = command
        .attr("node")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| StanzaError::new(Condition::BadRequest).with_text("the node is missing"))?;
    let lang = command.attr("xml:lang").or(lang);
    if let Some(lang) = lang
        && !is_language_tag(lang)
    {
        return Err(command_error(
            Condition::BadRequest,
            "bad-locale",
            format!("'{lang}' is not a language tag"),
        ));
    }
    let action = Action::parse(command.attr("action"))?;
    let form = match Form::find_in(command) {
        None => None,
        Some(Ok(form)) => Some(form),
        Some(Err(e)) => return Err(bad_payload(&e.to_string())),
    };
    Ok(Request {
        node: node.to_string(),
        session: command
            .attr("sessionid")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        action,
        form,
    })
}

/// RFC 5646 in its simple shape: letters, then subtags of letters and
/// digits, each 1 to 8 long. Any such tag is served in English.
fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let first_ok = parts
        .next()
        .is_some_and(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphabetic()));
    first_ok
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// `<bad-request/>` with a XEP-0050 condition.
fn command_error(condition: Condition, app: &'static str, text: String) -> StanzaError {
    StanzaError::new(condition)
        .with_type(ErrorType::Modify)
        .with_app(AppCondition {
            name: app,
            ns: NS_COMMANDS,
            feature: None,
        })
        .with_text(text)
}

fn bad_payload(text: &str) -> StanzaError {
    command_error(Condition::BadRequest, "bad-payload", text.to_string())
}

fn bad_action(text: &str) -> StanzaError {
    command_error(Condition::BadRequest, "bad-action", text.to_string())
}

fn bad_sessionid() -> StanzaError {
    command_error(
        Condition::BadRequest,
        "bad-sessionid",
        "no such session".to_string(),
    )
}

fn session_expired() -> StanzaError {
    command_error(
        Condition::NotAllowed,
        "session-expired",
        "the session is over (completed, canceled or timed out)".to_string(),
    )
    .with_type(ErrorType::Cancel)
}

/// What the engine answers.
#[derive(Debug)]
pub enum Outcome {
    /// The `<command/>` payload of the result, or the error.
    Answer(Result<Element, StanzaError>),
    /// Run `work`, then answer with [`finish_work`].
    Work {
        work: Work,
        node: String,
        session: String,
    },
}

/// One command being executed.
struct Session {
    /// The full JID that started it: only it may continue.
    owner: Jid,
    node: &'static str,
    /// The forms submitted so far, one per stage passed.
    submitted: Vec<Form>,
    /// Whether the form now shown is the last stage's.
    last: bool,
    last_active: Instant,
}

/// The sessions of every command, with their limits.
#[derive(Default)]
pub struct Engine {
    sessions: RefCell<HashMap<String, Session>>,
    ended: RefCell<VecDeque<String>>,
    counter: Cell<u64>,
}

/// Who asks: their full JID and whether they are an administrator.
pub struct Requester<'a> {
    pub jid: &'a Jid,
    pub admin: bool,
}

impl Requester<'_> {
    pub fn may_run(&self, command: &dyn AdhocCommand) -> bool {
        match command.access() {
            Access::Admins => self.admin,
            Access::LocalUsers => true,
        }
    }
}

impl Engine {
    pub fn open_sessions(&self) -> usize {
        self.sessions.borrow().len()
    }

    /// Handles one request against `commands`.
    pub fn handle(
        &self,
        commands: &[&dyn AdhocCommand],
        requester: &Requester,
        request: Request,
        env: &dyn CommandEnv,
        now: Instant,
    ) -> Outcome {
        self.expire(now);
        let Some(command) = commands.iter().copied().find(|c| c.node() == request.node) else {
            return Outcome::Answer(Err(StanzaError::new(Condition::ItemNotFound)
                .with_text(format!("no command '{}' here", request.node))));
        };
        if !requester.may_run(command) {
            return Outcome::Answer(Err(StanzaError::new(Condition::Forbidden)
                .with_text("this command is for the server's administrators")));
        }
        match request.session.clone() {
            None => self.start(command, requester.jid, request, env, now),
            Some(id) => self.continue_session(command, requester.jid, &id, request, env, now),
        }
    }

    fn start(
        &self,
        command: &dyn AdhocCommand,
        owner: &Jid,
        request: Request,
        env: &dyn CommandEnv,
        now: Instant,
    ) -> Outcome {
        if request.action != Action::Execute {
            return Outcome::Answer(Err(bad_action(
                "a command starts with 'execute'; other actions need a sessionid",
            )));
        }
        // A form sent along with the first request answers the first stage.
        let submitted: Vec<Form> = request.form.into_iter().collect();
        if let Some(form) = submitted.first()
            && let Err(e) = check_submission(form)
        {
            return Outcome::Answer(Err(e));
        }
        let id = self.new_session_id();
        if submitted
            .first()
            .is_some_and(|f| f.kind == FormType::Cancel)
        {
            self.remember_ended(&id);
            return Outcome::Answer(Ok(command_element(command.node(), &id, "canceled")));
        }
        let step = match command.step(&submitted, env) {
            Ok(step) => step,
            Err(e) => return Outcome::Answer(Err(bad_payload(&e.0))),
        };
        if matches!(step, Step::Ask { .. }) {
            if let Err(e) = self.make_room(owner) {
                return Outcome::Answer(Err(e));
            }
            self.sessions.borrow_mut().insert(
                id.clone(),
                Session {
                    owner: owner.clone(),
                    node: command.node(),
                    submitted,
                    last: false,
                    last_active: now,
                },
            );
        } else {
            self.remember_ended(&id);
        }
        self.answer_step(command.node(), &id, step)
    }

    fn continue_session(
        &self,
        command: &dyn AdhocCommand,
        owner: &Jid,
        id: &str,
        request: Request,
        env: &dyn CommandEnv,
        now: Instant,
    ) -> Outcome {
        let mut sessions = self.sessions.borrow_mut();
        let Some(session) = sessions.get_mut(id) else {
            let ended = self.ended.borrow().iter().any(|e| e == id);
            return Outcome::Answer(Err(if ended {
                session_expired()
            } else {
                bad_sessionid()
            }));
        };
        if session.owner != *owner || session.node != command.node() {
            return Outcome::Answer(Err(bad_sessionid()));
        }
        session.last_active = now;
        let action = match request.action {
            Action::Execute if session.last => Action::Complete,
            Action::Execute => Action::Next,
            other => other,
        };
        match action {
            Action::Cancel => {
                sessions.remove(id);
                drop(sessions);
                self.remember_ended(id);
                return Outcome::Answer(Ok(command_element(command.node(), id, "canceled")));
            }
            Action::Prev => {
                if session.submitted.pop().is_none() {
                    return Outcome::Answer(Err(bad_action("this is the first stage")));
                }
            }
            Action::Next if session.last => {
                return Outcome::Answer(Err(bad_action("this is the last stage: use 'complete'")));
            }
            Action::Complete if !session.last => {
                return Outcome::Answer(Err(bad_action("more stages follow: use 'next'")));
            }
            Action::Next | Action::Complete | Action::Execute => {
                let Some(form) = request.form else {
                    return Outcome::Answer(Err(bad_payload("the filled-in form is missing")));
                };
                if form.kind == FormType::Cancel {
                    sessions.remove(id);
                    drop(sessions);
                    self.remember_ended(id);
                    return Outcome::Answer(Ok(command_element(command.node(), id, "canceled")));
                }
                if let Err(e) = check_submission(&form) {
                    return Outcome::Answer(Err(e));
                }
                session.submitted.push(form);
            }
        }
        let step = match command.step(&session.submitted, env) {
            Ok(step) => step,
            Err(e) => {
                // The stage stays as it was: the requester may correct it.
                if action != Action::Prev {
                    session.submitted.pop();
                }
                return Outcome::Answer(Err(bad_payload(&e.0)));
            }
        };
        let finished = !matches!(step, Step::Ask { .. });
        if finished {
            sessions.remove(id);
        }
        // `answer_step` reads the session again.
        drop(sessions);
        if finished {
            self.remember_ended(id);
        }
        self.answer_step(command.node(), id, step)
    }

    fn answer_step(&self, node: &str, id: &str, step: Step) -> Outcome {
        match step {
            Step::Ask { form, last } => {
                let prev = self
                    .sessions
                    .borrow()
                    .get(id)
                    .is_some_and(|s| !s.submitted.is_empty());
                if let Some(s) = self.sessions.borrow_mut().get_mut(id) {
                    s.last = last;
                }
                let mut el = command_element(node, id, "executing");
                let default = if last { "complete" } else { "next" };
                let mut actions =
                    Element::new("actions", NS_COMMANDS).with_attr("execute", default);
                if prev {
                    actions.push_child(Element::new("prev", NS_COMMANDS));
                }
                actions.push_child(Element::new(default, NS_COMMANDS));
                el.push_child(actions);
                el.push_child(form.to_element());
                Outcome::Answer(Ok(el))
            }
            Step::Done { notes, form } => Outcome::Answer(Ok(completed(node, id, &notes, form))),
            Step::Work(work) => Outcome::Work {
                work,
                node: node.to_string(),
                session: id.to_string(),
            },
        }
    }

    /// Ends sessions idle for longer than [`SESSION_IDLE_LIFETIME`].
    fn expire(&self, now: Instant) {
        let idle: Vec<String> = self
            .sessions
            .borrow()
            .iter()
            .filter(|(_, s)| now.saturating_duration_since(s.last_active) >= SESSION_IDLE_LIFETIME)
            .map(|(id, _)| id.clone())
            .collect();
        for id in idle {
            self.sessions.borrow_mut().remove(&id);
            self.remember_ended(&id);
        }
    }

    /// Makes room for one more session of `owner`'s account: its oldest
    /// goes at [`MAX_SESSIONS_PER_ACCOUNT`]; at [`MAX_SESSIONS`] the new
    /// one is refused.
    fn make_room(&self, owner: &Jid) -> Result<(), StanzaError> {
        let oldest = {
            let sessions = self.sessions.borrow();
            if sessions.len() >= MAX_SESSIONS {
                return Err(StanzaError::new(Condition::ResourceConstraint)
                    .with_type(ErrorType::Wait)
                    .with_text("too many commands are running; try again later"));
            }
            let mine: Vec<(&String, &Session)> = sessions
                .iter()
                .filter(|(_, s)| s.owner.bare_str() == owner.bare_str())
                .collect();
            if mine.len() < MAX_SESSIONS_PER_ACCOUNT {
                return Ok(());
            }
            mine.into_iter()
                .min_by_key(|(_, s)| s.last_active)
                .map(|(id, _)| id.clone())
        };
        if let Some(id) = oldest {
            self.sessions.borrow_mut().remove(&id);
            self.remember_ended(&id);
        }
        Ok(())
    }

    fn remember_ended(&self, id: &str) {
        let mut ended = self.ended.borrow_mut();
        if ended.len() >= REMEMBERED_ENDED {
            ended.pop_front();
        }
        ended.push_back(id.to_string());
    }

    /// Sessions are bound to their owner: the id need not be secret,
    /// only unique among the open ones.
    fn new_session_id(&self) -> String {
        let n = self.counter.get() + 1;
        self.counter.set(n);
        format!("cmd-{n}")
    }
}

/// The answer once [`Outcome::Work`] is done: its note, or the error.
pub fn finish_work(
    node: &str,
    session: &str,
    work: &Work,
    outcome: Result<Option<Form>, String>,
) -> Element {
    match outcome {
        Ok(form) => completed(node, session, &[work.done_note()], form),
        Err(why) => completed(node, session, &[Note::error(why)], None),
    }
}

fn completed(node: &str, id: &str, notes: &[Note], form: Option<Form>) -> Element {
    let mut el = command_element(node, id, "completed");
    for note in notes {
        el.push_child(
            Element::new("note", NS_COMMANDS)
                .with_attr("type", note.kind.as_str())
                .with_text(note.text.as_str()),
        );
    }
    if let Some(form) = form {
        el.push_child(form.to_element());
    }
    el
}

fn command_element(node: &str, id: &str, status: &str) -> Element {
    Element::new("command", NS_COMMANDS)
        .with_attr("node", node)
        .with_attr("sessionid", id)
        .with_attr("status", status)
        .with_attr("xml:lang", LANG)
}

/// A submitted form must be `submit` (or untyped, read as that); a
/// `form` or `result` is not an answer.
fn check_submission(form: &Form) -> Result<(), StanzaError> {
    match form.kind {
        FormType::Submit | FormType::Cancel => Ok(()),
        other => Err(bad_payload(&format!(
            "a form of type '{}' is not an answer; submit one of type 'submit'",
            other.as_str()
        ))),
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
