//! One BOSH session's rules (XEP-0124, XEP-0206), without I/O: which
//! requests are held and when each is answered, the request ID window,
//! repeated requests, acknowledgements, pauses, termination and
//! inactivity.
//!
//! The HTTP glue owns the connections and the c2s stream. It calls
//! [`BoshSession::receive`] for each request (the sid matched), feeds what
//! [`BoshSession::take_input`] releases into the stream, hands the
//! stream's output elements to [`BoshSession::push_output`], and after
//! every such call sends what [`BoshSession::due`] returns, each response
//! to the HTTP request of its rid. A timer at
//! [`BoshSession::next_deadline`] calls `due` again and checks
//! [`BoshSession::expired`]. Time is always passed in.
//!
//! Decisions where the XEP leaves room, each at its rule below:
//! - The rid window is counted from the highest rid received *with every
//!   lower one* (not merely the highest), so out-of-order requests waiting
//!   for a gap are at most `requests` (§14.3).
//! - A request above a gap is held but answered only empty, when its wait
//!   runs out: output goes in rid order (§14.2).
//! - A pause response is kept for repeats like any other (§14.3 excludes
//!   it, which would end a session whose pause response was lost).
//! - An abandoned request is answered empty into the kept responses, so a
//!   client that resends it gets that (empty) response.
//! - A rid sent again while held: the earlier HTTP request gets a
//!   recoverable `type='error'` (§14.3); more than [`MAX_REPEATS`] repeats
//!   of one rid end the session (`policy-violation`, as §14.3 allows).
//! - When a request ends the session with an error, every other held
//!   request gets `type='terminate'` with `other-request` (§17.2).
//! - A client's terminate request itself gets `type='terminate'`, earlier
//!   held requests their ordinary responses (§13 puts the terminate on the
//!   oldest connection; answering the request that asked is what clients
//!   wait for, and rid order is kept).
//! - More output waiting than `max_pending_bytes` (a client that stopped
//!   polling) ends the session; held requests get `policy-violation`.
//! - The optional `report`/`time` response attributes (§9.2) are not sent.
//! - Legacy clients (no `ver`) get terminal binding conditions too, not
//!   HTTP error codes (§17.1 deprecates those).

use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::body::{self, Condition, Creation, RequestBody, ResponseAttrs, ResponseKind, VERSION};

/// A request, known by its rid.
pub type RequestId = u64;

/// How many times one rid may be sent again before the session ends with
/// `policy-violation` (§14.3 allows a limit: repeats would otherwise
/// sidestep the polling rules).
pub const MAX_REPEATS: u32 = 4;

/// The server's limits for every session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The longest a request is held, in seconds (the client may ask less).
    pub max_wait: u32,
    /// The most requests held at once (the client may ask fewer).
    pub max_hold: u32,
    /// How long a client may have no request held, in seconds (§10).
    pub inactivity: u32,
    /// The shortest polling interval, in seconds (§11, §12).
    pub polling: u32,
    /// The longest pause a client may ask for, in seconds (§10).
    pub max_pause: u32,
    /// Bytes of payload per response; the rest goes in the next one (one
    /// element always goes, whatever its size).
    pub max_response_bytes: usize,
    /// Output bytes that may wait for a request; past them the client is
    /// not keeping up and the session ends with `policy-violation`.
    pub max_pending_bytes: usize,
}

impl Default for Settings {
    /// A minute's wait and inactivity (so a long-poll meets the next
    /// request within round-trip time), one request held (what clients that
    /// reuse connections ask for, §7.1), 64 KiB per response, 1 MiB waiting.
    fn default() -> Self {
        Settings {
            max_wait: 60,
            max_hold: 1,
            inactivity: 60,
            polling: 2,
            max_pause: 120,
            max_response_bytes: 64 * 1024,
            max_pending_bytes: 1024 * 1024,
        }
    }
}

/// What to do with a request just received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// Held: its response comes from [`BoshSession::due`].
    Held,
    /// A repeat of an answered request: send these bytes at once (§14.3).
    Repeat(Rc<[u8]>),
    /// A repeat of a request still held: answer the earlier HTTP request of
    /// this rid with [`body::write_recoverable_error`] and hold this one in
    /// its place (§14.3).
    Superseded,
    /// The session is over: answer with [`body::write_terminate`] and this
    /// condition; `due` answers any other held request (`other-request`).
    Terminate(Condition),
}

/// Input for the c2s stream, in rid order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Self-contained elements (see [`body::parse`]).
    Payload(Vec<u8>),
    /// Restart the stream (XEP-0206 §5).
    Restart,
    /// The client ended the session: close the stream gracefully (§13).
    Terminate,
}

/// A request waiting for its response.
#[derive(Clone, Debug)]
struct Held {
    since: Instant,
    repeats: u32,
}

/// A response kept for a repeated request (§14.3).
#[derive(Clone, Debug)]
struct Kept {
    bytes: Rc<[u8]>,
    repeats: u32,
}

/// A request received before a lower rid: its input waits (§14.2).
#[derive(Clone, Debug)]
struct Early {
    payload: Vec<u8>,
    restart: bool,
    terminate: bool,
    pause: Option<u32>,
}

/// The last new request, for the polling rules (§11, §12).
#[derive(Clone, Copy, Debug)]
struct LastRequest {
    rid: RequestId,
    at: Instant,
    empty: bool,
    /// Whether its response (once sent) carried no payload.
    answered_empty: Option<bool>,
}

/// Where the session is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Open,
    /// The stream ended; the next response terminates (with the condition).
    Closing(Option<Condition>),
    /// The client's terminate request (this rid) was released (§13).
    ClientTerminate(RequestId),
    /// A request broke the rules: held requests get `type='terminate'`
    /// with this condition.
    Failed(Condition),
    /// Every final response was given.
    Over,
}

/// One BOSH session.
#[derive(Debug)]
pub struct BoshSession {
    sid: String,
    wait: Duration,
    hold: u64,
    /// `hold + 1` (§7.2 recommends one more than hold).
    requests: u64,
    polling: Duration,
    inactivity: Duration,
    max_pause: u32,
    max_response_bytes: usize,
    max_pending_bytes: usize,
    /// The client asked for acknowledgements (§9).
    acks: bool,
    content_type: Option<String>,
    /// The creation response's attributes, until it is written.
    creation: Option<Creation>,
    creation_rid: RequestId,
    opened: bool,
    /// The highest rid received with every lower one.
    contiguous: RequestId,
    early: BTreeMap<RequestId, Early>,
    held: BTreeMap<RequestId, Held>,
    kept: BTreeMap<RequestId, Kept>,
    input: VecDeque<Input>,
    pending: VecDeque<Vec<u8>>,
    pending_bytes: usize,
    /// A released pause request: answer everything held up to it.
    pause: Option<RequestId>,
    /// The inactivity period now: normal, or a pause's (§10).
    idle_limit: Duration,
    last_response: Instant,
    last_request: LastRequest,
    phase: Phase,
}

impl BoshSession {
    /// A session from its creation request (XEP-0124 §7.1), which it holds
    /// like any request: it is answered (§7.2) once [`opened`] gave the
    /// stream's attributes and the stream's features were pushed, so call
    /// `opened` and `push_output` before the first `due`.
    ///
    /// [`opened`]: BoshSession::opened
    pub fn create(
        sid: String,
        body: &RequestBody,
        settings: &Settings,
        now: Instant,
    ) -> Result<BoshSession, Condition> {
        if body.sid.is_some() || body.terminate || body.restart || body.pause.is_some() {
            return Err(Condition::BadRequest);
        }
        // XEP-0206 §4: the stream needs its domain.
        if body.to.as_deref().is_none_or(str::is_empty) {
            return Err(Condition::ImproperAddressing);
        }
        let creation = creation_attrs(&sid, body, settings);
        let mut session = BoshSession {
            sid,
            wait: secs(creation.wait),
            hold: u64::from(creation.hold),
            requests: u64::from(creation.requests),
            polling: secs(settings.polling),
            inactivity: secs(settings.inactivity),
            max_pause: settings.max_pause,
            max_response_bytes: settings.max_response_bytes,
            max_pending_bytes: settings.max_pending_bytes,
            // §9: ack='1' on the creation request turns acknowledgements on.
            acks: body.ack == Some(1),
            content_type: body.content.clone().filter(|c| is_header_safe(c)),
            creation: Some(creation),
            creation_rid: body.rid,
            opened: false,
            contiguous: body.rid,
            early: BTreeMap::new(),
            held: BTreeMap::new(),
            kept: BTreeMap::new(),
            input: VecDeque::new(),
            pending: VecDeque::new(),
            pending_bytes: 0,
            pause: None,
            idle_limit: secs(settings.inactivity),
            last_response: now,
            last_request: LastRequest {
                rid: body.rid,
                at: now,
                empty: body.is_empty(),
                answered_empty: None,
            },
            phase: Phase::Open,
        };
        session.held.insert(body.rid, Held::new(now));
        if !body.payload.is_empty() {
            session
                .input
                .push_back(Input::Payload(body.payload.clone()));
        }
        Ok(session)
    }

    /// The session ID.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// The Content-Type for every response: the client's `content`
    /// attribute (§7.1) if it is fit for a header, else the default.
    pub fn content_type(&self) -> &str {
        self.content_type
            .as_deref()
            .unwrap_or("text/xml; charset=utf-8")
    }

    /// Output bytes waiting for a request.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// The stream opened: its id (XEP-0206 `authid`), domain (`from`) and
    /// whether it is secure go on the creation response (§7.2). Later
    /// calls (stream restarts) change nothing.
    pub fn opened(&mut self, stream_id: &str, from: &str, secure: bool) {
        if let Some(c) = self.creation.as_mut() {
            c.authid = Some(stream_id.to_owned());
            c.from = Some(from.to_owned());
            c.secure = Some(secure);
        }
        self.opened = true;
    }

    /// A request for this session arrived (the caller matched its sid).
    pub fn receive(&mut self, body: RequestBody, now: Instant) -> Received {
        if !self.accepting() {
            // §10: a request after the end is answered as if the session
            // did not exist.
            return Received::Terminate(Condition::ItemNotFound);
        }
        let rid = body.rid;
        if rid <= self.contiguous || self.early.contains_key(&rid) {
            return self.repeat(rid);
        }
        // §14.2: beyond the window of `requests` rids above the last one
        // (counted from the highest with every lower rid received).
        if rid > self.contiguous.saturating_add(self.requests) {
            return self.fail(Condition::ItemNotFound);
        }
        if let Some(condition) = self.breaks_rules(&body, now) {
            return self.fail(condition);
        }
        // §10: the next request ends a pause.
        self.idle_limit = self.inactivity;
        if self.acks {
            // §9.2: no ack means every earlier response arrived.
            self.drop_kept_to(body.ack.unwrap_or(rid - 1));
        }
        self.held.insert(rid, Held::new(now));
        self.last_request = LastRequest {
            rid,
            at: now,
            empty: body.is_empty(),
            answered_empty: None,
        };
        let early = Early {
            payload: body.payload,
            restart: body.restart,
            terminate: body.terminate,
            pause: body.pause,
        };
        self.early.insert(rid, early);
        self.release();
        Received::Held
    }

    /// A rid received before (§14.3): the kept response, or a note that it
    /// replaces the earlier HTTP request of a held one.
    fn repeat(&mut self, rid: RequestId) -> Received {
        let (repeats, answer) = if let Some(h) = self.held.get_mut(&rid) {
            h.repeats += 1;
            (h.repeats, Received::Superseded)
        } else if let Some(k) = self.kept.get_mut(&rid) {
            k.repeats += 1;
            (k.repeats, Received::Repeat(k.bytes.clone()))
        } else {
            // The response is gone: the same condition as a rid too high.
            return self.fail(Condition::ItemNotFound);
        };
        if repeats > MAX_REPEATS {
            return self.fail(Condition::PolicyViolation);
        }
        answer
    }

    /// Whether a new request breaks the pause or overactivity rules.
    fn breaks_rules(&self, body: &RequestBody, now: Instant) -> Option<Condition> {
        // §10: no longer than maxpause.
        if body.pause.is_some_and(|p| p > self.max_pause) {
            return Some(Condition::PolicyViolation);
        }
        // §11: no more simultaneous requests than `requests`, one more to
        // pause or terminate.
        let held = self.held.len() as u64 + 1;
        let allowed = self.requests + u64::from(body.pause.is_some() || body.terminate);
        if held > allowed {
            return Some(Condition::PolicyViolation);
        }
        if !body.is_empty() {
            return None;
        }
        let prev = self.last_request;
        let soon = now.saturating_duration_since(prev.at) < self.polling;
        let too_frequent = if self.hold == 0 {
            // §12: two empty polls within `polling`, the first answered
            // with nothing.
            soon && prev.empty && prev.answered_empty == Some(true)
        } else {
            // §11: an empty request completing `requests` unanswered ones,
            // within `polling` of the one before.
            soon && held == self.requests
        };
        too_frequent.then_some(Condition::PolicyViolation)
    }

    /// Moves the requests now in rid order from `early` to the input
    /// (§14.2: payloads are forwarded in rid order).
    fn release(&mut self) {
        while let Some(rid) = self.contiguous.checked_add(1)
            && let Some(e) = self.early.remove(&rid)
        {
            self.contiguous = rid;
            if e.restart {
                // XEP-0206 §5: a payload in a restart request is ignored.
                self.input.push_back(Input::Restart);
            } else if !e.payload.is_empty() {
                self.input.push_back(Input::Payload(e.payload));
            }
            if let Some(pause) = e.pause {
                // §10: answer everything held, inactivity is the pause.
                self.pause = Some(rid);
                self.idle_limit = secs(pause);
            }
            if e.terminate {
                // §13: the payload goes to the server, then the end.
                self.input.push_back(Input::Terminate);
                if self.phase == Phase::Open {
                    self.phase = Phase::ClientTerminate(rid);
                }
                self.early.clear();
                return;
            }
        }
    }

    /// Forgets kept responses up to `ack` (§9.2).
    fn drop_kept_to(&mut self, ack: RequestId) {
        while self
            .kept
            .first_key_value()
            .is_some_and(|(&rid, _)| rid <= ack)
        {
            self.kept.pop_first();
        }
    }

    /// The session ends with `condition` for the request at hand; held
    /// requests get `other-request` (§17.2).
    fn fail(&mut self, condition: Condition) -> Received {
        self.end(Condition::OtherRequest);
        Received::Terminate(condition)
    }

    /// Ends the session: held requests get `type='terminate'` with
    /// `held_condition` from `due`, nothing more goes in or out.
    fn end(&mut self, held_condition: Condition) {
        self.phase = Phase::Failed(held_condition);
        self.input.clear();
        self.early.clear();
        self.pending.clear();
        self.pending_bytes = 0;
    }

    fn accepting(&self) -> bool {
        matches!(self.phase, Phase::Open | Phase::Closing(_))
    }

    /// Output of the stream for the client: one complete, self-contained
    /// element. Past `max_pending_bytes` waiting, the client is not
    /// fetching and the session ends (`policy-violation`).
    pub fn push_output(&mut self, element: &[u8]) {
        if !self.accepting() || element.is_empty() {
            return;
        }
        self.pending_bytes += element.len();
        self.pending.push_back(element.to_vec());
        if self.pending_bytes > self.max_pending_bytes {
            self.end(Condition::PolicyViolation);
        }
    }

    /// The stream ended (the server closed it, or a stream error came
    /// through, pushed before as output): the next response carries the
    /// pending output and `type='terminate'` with `condition` (XEP-0206
    /// §6: `remote-stream-error` with the `<stream:error/>`).
    pub fn close(&mut self, condition: Option<Condition>) {
        if self.phase == Phase::Open {
            self.phase = Phase::Closing(condition);
        }
    }

    /// Input for the stream, in rid order. A request's payload is released
    /// when every lower rid has arrived.
    pub fn take_input(&mut self) -> Option<Input> {
        self.input.pop_front()
    }
}

/// Responses to send: each to the HTTP request of its rid.
pub type Responses = Vec<(RequestId, Rc<[u8]>)>;

impl BoshSession {
    /// The responses due now, in rid order: to held requests because
    /// output waits, because more than `hold` are held, because their wait
    /// ran out, or because of a pause, a terminate or the stream's end.
    /// Call it after every `receive`, `push_output`, `close` and
    /// `abandon`, and at [`next_deadline`](BoshSession::next_deadline).
    pub fn due(&mut self, now: Instant) -> Responses {
        let mut out = Vec::new();
        match self.phase {
            Phase::Open => self.answer_open(now, &mut out),
            Phase::Closing(condition) => {
                // The lowest held request takes the pending output (so a
                // `<stream:error/>` goes with `remote-stream-error`).
                if !self.held.is_empty() {
                    self.answer_all(
                        now,
                        |_| (ResponseKind::Terminate(condition), true),
                        &mut out,
                    );
                }
            }
            Phase::ClientTerminate(last) => {
                // §13: earlier requests as usual, the terminate request
                // with `type='terminate'`, any later one `other-request`.
                self.answer_all(
                    now,
                    |rid| match rid.cmp(&last) {
                        std::cmp::Ordering::Less => (ResponseKind::Normal, true),
                        std::cmp::Ordering::Equal => (ResponseKind::Terminate(None), false),
                        std::cmp::Ordering::Greater => (
                            ResponseKind::Terminate(Some(Condition::OtherRequest)),
                            false,
                        ),
                    },
                    &mut out,
                );
            }
            Phase::Failed(condition) => {
                self.answer_all(
                    now,
                    |_| (ResponseKind::Terminate(Some(condition)), false),
                    &mut out,
                );
            }
            Phase::Over => {}
        }
        out
    }

    /// Answers every held request, in rid order, as `how` says (its kind
    /// and whether it takes all pending output); the session is then over.
    fn answer_all(
        &mut self,
        now: Instant,
        how: impl Fn(RequestId) -> (ResponseKind, bool),
        out: &mut Responses,
    ) {
        let rids: Vec<RequestId> = self.held.keys().copied().collect();
        for rid in rids {
            let (kind, output) = how(rid);
            self.answer(rid, now, kind, output.then_some(usize::MAX), out);
        }
        self.phase = Phase::Over;
        self.pending.clear();
        self.pending_bytes = 0;
    }

    /// The rules of an open session: each held request in rid order is
    /// answered if output waits, if more than `hold` are held (§7.1),
    /// if its wait ran out, or if a pause covers it (§10). None is answered
    /// after a lower one that stays held (§14.2).
    fn answer_open(&mut self, now: Instant, out: &mut Responses) {
        let rids: Vec<RequestId> = self.held.keys().copied().collect();
        let mut blocked = false;
        for rid in rids {
            let waited = self
                .held
                .get(&rid)
                .is_some_and(|h| now.saturating_duration_since(h.since) >= self.wait);
            if rid > self.contiguous {
                // Above a gap: its turn has not come, so only an empty
                // response when its wait runs out.
                if waited {
                    self.answer(rid, now, ResponseKind::Normal, None, out);
                }
                continue;
            }
            let budget = Some(self.max_response_bytes);
            if blocked || (self.creation.is_some() && !self.opened && !waited) {
                // The creation response waits for the stream's attributes.
                blocked = true;
            } else if let Some(pause) = self.pause.filter(|&p| rid <= p) {
                // §10: the pause response carries no payload.
                let output = if rid == pause { None } else { budget };
                self.answer(rid, now, ResponseKind::Normal, output, out);
            } else if !self.pending.is_empty() || self.held.len() as u64 > self.hold || waited {
                self.answer(rid, now, ResponseKind::Normal, budget, out);
            } else {
                blocked = true;
            }
        }
        if self
            .pause
            .is_some_and(|p| !self.held.keys().any(|&r| r <= p))
        {
            self.pause = None;
        }
    }

    /// Writes the response to `rid` with up to `budget` bytes of pending
    /// output (at least one element if any), keeps it for a repeat unless
    /// it ends the session (§14.3), and adds it to `out`.
    fn answer(
        &mut self,
        rid: RequestId,
        now: Instant,
        kind: ResponseKind,
        budget: Option<usize>,
        out: &mut Responses,
    ) {
        self.held.remove(&rid);
        let payload = budget.map_or_else(Vec::new, |b| self.take_pending(b));
        let attrs = ResponseAttrs {
            kind,
            ack: self.ack_for(rid),
            creation: if rid == self.creation_rid {
                self.creation.take()
            } else {
                None
            },
        };
        let slices: Vec<&[u8]> = payload.iter().map(Vec::as_slice).collect();
        let mut bytes = Vec::new();
        body::write_response(&mut bytes, &attrs, &slices);
        let bytes: Rc<[u8]> = bytes.into();
        if kind == ResponseKind::Normal {
            self.keep(rid, bytes.clone());
        }
        if self.last_request.rid == rid {
            self.last_request.answered_empty = Some(payload.is_empty());
        }
        self.last_response = now;
        out.push((rid, bytes));
    }

    /// Pending elements up to `budget` bytes, and at least one.
    fn take_pending(&mut self, budget: usize) -> Vec<Vec<u8>> {
        let mut taken = Vec::new();
        let mut bytes = 0usize;
        while let Some(el) = self.pending.pop_front() {
            if !taken.is_empty() && bytes.saturating_add(el.len()) > budget {
                self.pending.push_front(el);
                break;
            }
            bytes += el.len();
            taken.push(el);
        }
        self.pending_bytes -= bytes;
        taken
    }

    /// The `ack` attribute for the response to `rid` (§9.1): the creation
    /// request's rid on the creation response; later the highest rid
    /// received with every lower one, unless that is `rid` itself.
    fn ack_for(&self, rid: RequestId) -> Option<u64> {
        if !self.acks {
            None
        } else if rid == self.creation_rid {
            Some(rid)
        } else {
            (self.contiguous != rid).then_some(self.contiguous)
        }
    }

    /// Keeps a response for a repeat of its rid: the last `requests` of
    /// them (§14.3).
    fn keep(&mut self, rid: RequestId, bytes: Rc<[u8]>) {
        self.kept.insert(rid, Kept { bytes, repeats: 0 });
        while self.kept.len() as u64 > self.requests {
            self.kept.pop_first();
        }
    }

    /// The HTTP connection of a held request died. It is answered empty,
    /// a response nobody reads but kept, so a resend of it gets that; its
    /// share of output goes to the next request.
    pub fn abandon(&mut self, rid: RequestId, now: Instant) {
        if !self.held.contains_key(&rid) {
            return;
        }
        if self.phase == Phase::Open {
            self.answer(rid, now, ResponseKind::Normal, None, &mut Vec::new());
        } else {
            self.held.remove(&rid);
        }
    }

    /// When to call `due` and `expired` again: the earliest end of a held
    /// request's wait, or with none held the end of the inactivity period.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.phase == Phase::Over {
            return None;
        }
        match self.held.values().map(|h| h.since).min() {
            Some(since) => since.checked_add(self.wait),
            None => self.last_response.checked_add(self.idle_limit),
        }
    }

    /// The client has had no request held for the inactivity period (or
    /// the pause it asked for, §10): it is gone, the session is over and
    /// the glue ends the stream as if the connection dropped.
    pub fn expired(&self, now: Instant) -> bool {
        self.accepting()
            && self.held.is_empty()
            && now.saturating_duration_since(self.last_response) >= self.idle_limit
    }

    /// The session takes no more requests: the client terminated it, it
    /// broke a rule, or its final responses were given. Send what `due`
    /// returns first, then drop the session.
    pub fn is_terminated(&self) -> bool {
        !self.accepting()
    }
}

impl Held {
    fn new(since: Instant) -> Held {
        Held { since, repeats: 0 }
    }
}

/// The creation response's session attributes (§7.2): wait and hold no
/// more than the client asked, requests one more than hold (as
/// recommended), ver the lower of the client's and ours.
fn creation_attrs(sid: &str, body: &RequestBody, settings: &Settings) -> Creation {
    let hold = body.hold.unwrap_or(1).min(settings.max_hold);
    Creation {
        sid: sid.to_owned(),
        wait: body
            .wait
            .unwrap_or(settings.max_wait)
            .min(settings.max_wait),
        requests: hold.saturating_add(1),
        hold,
        inactivity: settings.inactivity,
        polling: settings.polling,
        maxpause: settings.max_pause,
        ver: body.ver.map_or(VERSION, |v| v.min(VERSION)),
        ..Creation::default()
    }
}

fn secs(n: u32) -> Duration {
    Duration::from_secs(u64::from(n))
}

/// Whether a client's `content` value can go into a header as it is:
/// printable ASCII, not too long.
fn is_header_safe(value: &str) -> bool {
    !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| (b' '..=b'~').contains(&b))
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
