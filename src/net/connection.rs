//! One task per client connection: bytes in through the framer to the c2s
//! state machine, its actions carried out, the outbox flushed to the socket.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncWriteExt, future};
use smol::Timer;

use crate::admission::Ticket;
use crate::durable;
use crate::im;
use crate::jid::Jid;
use crate::outbox::Release;
use crate::sasl::ChannelBinding;
use crate::server::{ConnectionGuard, Server};
use crate::session::{Batch, Carrier, Outbox, Session};
use crate::store::CredentialReader;
use crate::stream::{Action, C2sStream, Env, Policy, StreamCondition, StreamError, StreamOut};
use crate::xml::{Element, FrameEvent, Framer, Limits};

use super::tls::TlsSetup;
use super::transport::{TcpStream, Transport};

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);
/// After our `</stream:stream>`, how long to wait for the peer's.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Quiet time after which a connection frees its parse and write buffers;
/// the next burst allocates them again, which costs far less than keeping
/// them for every idle client.
const IDLE_RELEASE: Duration = Duration::from_secs(1);
/// Bytes read per poll; lives on the stack only for the read itself, so an
/// idle connection holds no read buffer.
const READ_CHUNK: usize = 4096;

/// How many of a client's messages may wait for their writes (offline
/// storage) while the connection reads on: enough for a burst to share
/// one fsync, few enough that a client cannot pile up work; at the bound
/// the connection stops reading until the oldest is on disk.
const MAX_IN_FLIGHT: usize = 64;
/// Written buffers larger than this are freed rather than kept for reuse.
const KEEP_WRITTEN: usize = 16 << 10;
/// A login the throttle refuses is answered after this pause: short enough
/// that holding the connection costs nothing worth having, long enough
/// that a client retrying at once cannot make the server answer thousands
/// of refusals a second (measured before it: about 5 300/s from one
/// address, a third of a core).
const REFUSAL_PAUSE: Duration = Duration::from_secs(1);
/// The minimum rate of a stanza in progress is checked from this long
/// after its first byte (or a third of the stanza timeout, if shorter), so
/// a short pause of a slow link is not punished.
const STANZA_RATE_GRACE: Duration = Duration::from_secs(10);

pub struct ConnectionParams {
    pub server: Rc<Server>,
    pub tls: Option<Rc<TlsSetup>>,
    pub peer: SocketAddr,
    pub direct_tls: bool,
    pub guard: ConnectionGuard,
}

struct StreamEnv<'a> {
    server: &'a Server,
}

impl Env for StreamEnv<'_> {
    fn is_local_host(&self, domain: &str) -> bool {
        self.server.is_local_host(domain)
    }

    fn new_stream_id(&self) -> String {
        self.server.new_id()
    }
}

/// Where the c2s state machine's output goes: stream-level bytes to the
/// transport; stanzas to the session's outbound queue once the stream has
/// a session (so they are counted and ordered with everything else the
/// client is sent), to the transport before that.
struct ConnectionOut<'a> {
    transport: &'a mut Vec<u8>,
    queue: Option<&'a Outbox>,
}

impl StreamOut for ConnectionOut<'_> {
    fn transport(&mut self) -> &mut Vec<u8> {
        self.transport
    }

    fn stanza_with(&mut self, write: &mut dyn FnMut(&mut Vec<u8>)) {
        match self.queue {
            Some(queue) => queue.push_with(write),
            None => write(self.transport),
        }
    }
}

/// What became of a SASL step.
enum SaslOutcome {
    /// It ran; the session and its result go back to the stream.
    Checked(crate::sasl::SaslSession, crate::sasl::Step),
    /// The login throttle refused it before anything was checked.
    Refused { retry_after: Duration },
}

enum Wake {
    /// The session was taken over by a resumed stream, or the server
    /// stops and suspends it.
    Carrier,
    Input,
    Eof,
    Output,
    Timer,
    Error(std::io::Error),
}

struct Connection {
    server: Rc<Server>,
    tls: Option<Rc<TlsSetup>>,
    peer: SocketAddr,
    framer: Framer,
    stream: C2sStream,
    outbox: Rc<Outbox>,
    /// The batch written last, emptied, for the outbox's next burst.
    written: Batch,
    /// The client's messages whose output is held for their writes.
    in_flight: VecDeque<Rc<durable::Gate>>,
    /// Stream-level bytes for the peer (negotiation, keepalives, stream
    /// errors, the close): the transport's, not the outbox's.
    stream_out: Vec<u8>,
    session: Option<Rc<Session>>,
    /// The connection's entry in the admission table.
    ticket: Rc<Ticket>,
    /// When the stream must be authenticated and bound, or be closed.
    auth_deadline: Option<Instant>,
    /// When the first byte of the element being received arrived; `None`
    /// between elements.
    stanza_started: Option<Instant>,
    /// `c2s.stanza_timeout_secs` and `c2s.stanza_min_bytes_per_sec`
    /// (seconds as `u32`: every idle connection holds these).
    stanza_timeout_secs: u32,
    stanza_min_rate: u32,
    /// `c2s.write_timeout_secs`: a write that makes no progress for this
    /// long means the peer is gone (or does not read).
    write_timeout_secs: u32,
    /// `c2s.keepalive_secs`: idle time after which a whitespace keepalive
    /// is sent, so NAT routers keep the mapping and dead peers are noticed
    /// on the next write.
    keepalive_secs: u32,
    last_write: Instant,
    /// Last input or output; `None` once the buffers were freed for a quiet
    /// spell (until the next activity).
    last_activity: Option<Instant>,
    /// One timer for the connection's whole life, armed for the earliest
    /// deadline. Registering a timer with the reactor costs a wake-up of its
    /// poller (a system call), so it is not re-created at every wait: it
    /// stays armed while the deadline only moves later, fires early, and
    /// the timer handler re-checks what is due.
    timer: Timer,
    /// When `timer` fires; `None` once it fired (or was never armed).
    timer_armed: Option<Instant>,
    /// The last read filled the whole chunk, so more input may be waiting:
    /// read again at once rather than wait for readability.
    input_pending: bool,
    closing: bool,
    /// The session's link to this connection (see [`Carrier`]).
    carrier: Option<Rc<Carrier>>,
    /// The connection died (no `</stream:stream>`, no stream error): a
    /// resumable session waits for its client to come back.
    lost: bool,
    /// Last input from the client, for pinging a silent connection.
    last_input: Instant,
    /// When the server pinged the silent client (XEP-0199, or `<r/>`).
    ping_sent: Option<Instant>,
    /// When to ask for an ack of what was sent (stream management).
    ack_due: Option<Instant>,
    /// What waits in `stream_out` is only `<a/>` answers (see `run`).
    acks_only: bool,
    /// The client left too much unacknowledged: the stream ends with this
    /// after the write in progress.
    unacked_overflow: Option<StreamError>,
}

pub async fn serve(tcp: TcpStream, params: ConnectionParams) {
    let ConnectionParams {
        server,
        tls,
        peer,
        direct_tls,
        guard,
    } = params;
    let _ = tcp.get_ref().set_nodelay(true);
    let mut transport = Transport::Plain(tcp);
    let mut channel_binding = None;
    if direct_tls {
        let Some(setup) = tls.as_ref() else {
            return;
        };
        match Box::pin(handshake(setup.direct_config(), transport)).await {
            Some((t, cb)) => {
                transport = t;
                channel_binding = cb;
                // A handshake is talking, not silence.
                guard.ticket().input_at(Instant::now());
            }
            None => {
                log::debug!("{peer}: TLS handshake failed");
                return;
            }
        }
    }
    let start = StreamStart {
        server,
        tls,
        peer,
        secure: direct_tls,
        channel_binding,
        guard,
    };
    run_stream(transport, start).await;
}

/// A client stream on an established transport.
pub struct StreamStart {
    pub server: Rc<Server>,
    /// For STARTTLS; `None` where it cannot be offered.
    pub tls: Option<Rc<TlsSetup>>,
    pub peer: SocketAddr,
    /// The transport is encrypted (or as good as: see the HTTP listener).
    pub secure: bool,
    pub channel_binding: Option<ChannelBinding>,
    pub guard: ConnectionGuard,
}

/// Runs the c2s stream on `transport` until it ends, then ends or
/// hibernates its session.
pub async fn run_stream(mut transport: Transport, start: StreamStart) {
    let StreamStart {
        server,
        tls,
        peer,
        secure,
        channel_binding,
        guard,
    } = start;
    let c2s = &server.config().c2s;
    let policy = Policy {
        starttls_available: tls.is_some() && !secure,
        require_encryption: c2s.require_encryption,
        allow_plaintext_auth: c2s.allow_plaintext_auth,
        max_auth_failures: 5,
        registration: server.config().registration.allow,
    };
    let limits = Limits {
        max_stanza_bytes: server.limits().max_stanza_bytes,
        ..Limits::default()
    };
    let auth_timeout = Duration::from_secs(u64::from(c2s.auth_timeout_secs));
    let stanza_timeout_secs = c2s.stanza_timeout_secs;
    let stanza_min_rate = c2s.stanza_min_bytes_per_sec;
    let keepalive_secs = c2s.keepalive_secs;
    let write_timeout_secs = c2s.write_timeout_secs;
    let ticket = guard.ticket().clone();
    let mut conn = Connection {
        stream: C2sStream::new(policy, secure, channel_binding).with_fast(c2s.fast_token_days > 0),
        server,
        tls,
        peer,
        framer: Framer::new(limits),
        outbox: ticket.outbox.clone(),
        written: Batch::default(),
        in_flight: VecDeque::new(),
        stream_out: Vec::new(),
        session: None,
        ticket,
        auth_deadline: Some(Instant::now() + auth_timeout),
        stanza_started: None,
        stanza_timeout_secs,
        keepalive_secs,
        stanza_min_rate,
        write_timeout_secs,
        last_write: Instant::now(),
        last_activity: Some(Instant::now()),
        timer: Timer::never(),
        timer_armed: None,
        input_pending: false,
        closing: false,
        carrier: None,
        lost: false,
        last_input: Instant::now(),
        ping_sent: None,
        ack_due: None,
        unacked_overflow: None,
        acks_only: false,
    };
    log::debug!("{peer}: connected{}", if secure { " (TLS)" } else { "" });
    conn.run(&mut transport).await;
    let hibernating = conn.finish().await;
    drop(conn);
    drop(transport);
    // The connection is gone: it no longer counts against any limit.
    drop(guard);
    if let Some(hibernating) = hibernating {
        hibernating.wait().await;
    }
}

pub(crate) async fn handshake(
    config: Arc<rustls::ServerConfig>,
    transport: Transport,
) -> Option<(Transport, Option<ChannelBinding>)> {
    let Transport::Plain(tcp) = transport else {
        return None;
    };
    let accept = futures_rustls::TlsAcceptor::from(config).accept(tcp);
    let tls = future::or(async { accept.await.ok() }, async {
        Timer::after(HANDSHAKE_TIMEOUT).await;
        None
    })
    .await?;
    let cb = super::tls::exporter_channel_binding(tls.get_ref().1).map(|data| ChannelBinding {
        kind: "tls-exporter",
        data,
    });
    Some((Transport::Tls(Box::new(tls)), cb))
}

impl Connection {
    async fn run(&mut self, transport: &mut Transport) {
        let mut actions = Vec::new();
        loop {
            if !self.still_carrying(&mut actions) {
                return;
            }
            // Work through every complete element already buffered. A
            // stream that is ending (or whose session was taken over) reads
            // no further: what is not handled is not counted either.
            while !self.closing && !self.outbox.is_closing() && !self.taken_over() {
                match self.framer.next_event() {
                    Ok(Some(event)) => {
                        // The next element's clock starts with its first
                        // byte, which may already be buffered.
                        self.stanza_started = (self.framer.buffered() > 0).then(Instant::now);
                        self.on_event(event, &mut actions);
                    }
                    Ok(None) => {
                        if self.framer.buffered() == 0 {
                            self.stanza_started = None;
                        }
                        break;
                    }
                    Err(e) => {
                        log::debug!("{}: {e}", self.peer);
                        self.fail(StreamError::from(&e), &mut actions);
                    }
                }
                if !self.perform(transport, &mut actions).await {
                    return;
                }
            }
            if self.taken_over() {
                // Let go of the session (at the top) before touching its
                // queue again.
                continue;
            }
            if let Some(error) = self.outbox.take_close() {
                self.fail(error, &mut actions);
                if !self.perform(transport, &mut actions).await {
                    return;
                }
            }
            if std::mem::take(&mut self.acks_only) && !self.closing && !self.outbox.has_released() {
                // Only `<a/>` answers to write: let the other tasks run
                // first, so that stanzas they route to this client (a chat
                // partner's reply) go in the same write. One round of the
                // executor, no timer: still "as soon as possible".
                futures_lite::future::yield_now().await;
            }
            if !self.flush(transport).await {
                // A clean close or a stream error whose last write failed
                // ended the session on purpose: only a stream that just
                // died may be resumed.
                self.lost = !self.closing;
                return;
            }
            if let Some(error) = self.unacked_overflow.take() {
                self.fail(error, &mut actions);
                if !self.perform(transport, &mut actions).await {
                    return;
                }
                continue;
            }
            if self.closing {
                self.linger(transport).await;
                return;
            }
            match self.wait(transport).await {
                Wake::Input => {
                    let now = Instant::now();
                    self.last_input = now;
                    self.ping_sent = None;
                    self.last_activity = Some(now);
                    self.ticket.input_at(now);
                    if self.stanza_started.is_none() {
                        self.stanza_started = Some(now);
                    }
                }
                Wake::Output => self.last_activity = Some(Instant::now()),
                Wake::Eof => {
                    log::debug!("{}: connection closed by peer", self.peer);
                    self.lost = true;
                    return;
                }
                Wake::Error(e) => {
                    if let Some(violation) = framing_violation(&e) {
                        // A WebSocket client broke RFC 7395: it is told why.
                        log::debug!("{}: {violation}", self.peer);
                        let error = StreamError::with_text(
                            StreamCondition::PolicyViolation,
                            violation.to_string(),
                        );
                        self.fail(error, &mut actions);
                        if !self.perform(transport, &mut actions).await {
                            return;
                        }
                        continue;
                    }
                    log::debug!("{}: read error: {e}", self.peer);
                    self.lost = true;
                    return;
                }
                Wake::Carrier => {}
                Wake::Timer => {
                    if self.release_if_quiet() {
                        transport.release_idle();
                    }
                    if self.ping_expired() {
                        log::debug!("{}: no answer to the server's ping", self.peer);
                        self.lost = true;
                        return;
                    }
                    self.on_timer(&mut actions);
                    if !self.perform(transport, &mut actions).await {
                        return;
                    }
                }
            }
        }
    }

    /// Where the stream state machine writes: see [`ConnectionOut`].
    fn out(&mut self) -> (&mut C2sStream, ConnectionOut<'_>) {
        let queue = self.session.is_some().then_some(&*self.outbox);
        (
            &mut self.stream,
            ConnectionOut {
                transport: &mut self.stream_out,
                queue,
            },
        )
    }

    fn on_event(&mut self, event: FrameEvent, actions: &mut Vec<Action>) {
        let server = self.server.clone();
        let env = StreamEnv { server: &server };
        let (stream, mut out) = self.out();
        match event {
            FrameEvent::StreamOpen(header) => stream.on_header(&header, &env, &mut out, actions),
            FrameEvent::Element(el) => stream.on_element(el, &env, &mut out, actions),
            FrameEvent::StreamClose => stream.on_stream_close(&mut out, actions),
        }
        self.sync_handled();
    }

    fn fail(&mut self, error: StreamError, actions: &mut Vec<Action>) {
        let server = self.server.clone();
        let env = StreamEnv { server: &server };
        let (stream, mut out) = self.out();
        stream.fail(error, &env, &mut out, actions);
    }

    /// Frees the buffers of a connection that has been quiet for
    /// `IDLE_RELEASE`.
    fn release_if_quiet(&mut self) -> bool {
        let quiet = self
            .last_activity
            .is_some_and(|t| t.elapsed() >= IDLE_RELEASE);
        if quiet {
            self.last_activity = None;
            self.framer.release_idle();
            self.outbox.release_spare();
            self.written = Batch::default();
            self.stream_out = Vec::new();
        }
        quiet
    }

    /// When the element in progress breaks its time limit: the absolute
    /// one, or the minimum rate (after a grace period; more bytes buy more
    /// time).
    fn stanza_deadline(&self) -> Option<Instant> {
        let started = self.stanza_started?;
        let timeout = Duration::from_secs(u64::from(self.stanza_timeout_secs));
        let mut deadline = started + timeout;
        if self.stanza_min_rate > 0 {
            let bytes = self.framer.buffered() as f64;
            let earned = Duration::from_secs_f64(bytes / f64::from(self.stanza_min_rate));
            let grace = (timeout / 3).min(STANZA_RATE_GRACE);
            deadline = deadline.min(started + grace.max(earned));
        }
        Some(deadline)
    }

    fn keepalive(&self) -> Duration {
        Duration::from_secs(u64::from(self.keepalive_secs))
    }

    /// When the stream must be authenticated: its own deadline, or sooner
    /// while its address is at its connection limit.
    fn effective_auth_deadline(&self) -> Option<Instant> {
        let own = self.auth_deadline?;
        Some(match self.ticket.pressure_deadline() {
            Some(pressure) => own.min(pressure),
            None => own,
        })
    }

    fn on_timer(&mut self, actions: &mut Vec<Action>) {
        let now = Instant::now();
        if self.stanza_deadline().is_some_and(|d| now >= d) {
            let whole = self.stanza_started.is_some_and(|started| {
                now >= started + Duration::from_secs(u64::from(self.stanza_timeout_secs))
            });
            self.stanza_started = None;
            log::debug!("{}: a stanza arrived too slowly", self.peer);
            let text = slow_stanza_text(whole, self.stanza_timeout_secs, self.stanza_min_rate);
            self.fail(
                StreamError::with_text(StreamCondition::PolicyViolation, text),
                actions,
            );
        } else if self.effective_auth_deadline().is_some_and(|d| now >= d) {
            let own = self.auth_deadline.is_some_and(|own| now >= own);
            // Fires once: the stream is closing from here on.
            self.auth_deadline = None;
            log::debug!("{}: not authenticated in time", self.peer);
            let text = if own {
                format!(
                    "not logged in within {} s ([c2s] auth_timeout_secs)",
                    self.server.config().c2s.auth_timeout_secs
                )
            } else {
                format!(
                    "silent for {} s before logging in while this address is at its \
                     connection limit ([limits] max_connections_per_ip)",
                    crate::admission::PRESSURE_TIMEOUT.as_secs()
                )
            };
            self.fail(
                StreamError::with_text(StreamCondition::ConnectionTimeout, text),
                actions,
            );
        } else if self.ping_due(now) {
            self.ping(now);
            self.last_activity = Some(now);
        } else if self.ack_due.is_some_and(|due| now >= due) {
            self.request_ack_now();
            self.last_activity = Some(now);
        } else if now.duration_since(self.last_write) >= self.keepalive() {
            self.stream_out.push(b' ');
            // The write buffer this allocates is freed again once quiet.
            self.last_activity = Some(now);
        }
    }

    /// Carries out the state machine's actions. Returns false when the
    /// connection is finished.
    async fn perform(&mut self, transport: &mut Transport, actions: &mut Vec<Action>) -> bool {
        // Two buffers passed back and forth, so a stanza's actions cost no
        // allocation once they have grown.
        let mut pending: Vec<Action> = std::mem::take(actions);
        while !pending.is_empty() {
            for action in pending.drain(..) {
                match action {
                    Action::StartTls => {
                        if !self.flush(transport).await {
                            return false;
                        }
                        let Some(setup) = self.tls.clone() else {
                            return false;
                        };
                        let plain = std::mem::replace(transport, Transport::Upgrading);
                        match Box::pin(handshake(setup.starttls_config(), plain)).await {
                            Some((tls, cb)) => {
                                self.ticket.input_at(Instant::now());
                                *transport = tls;
                                self.framer.reset();
                                self.stream.tls_established(cb);
                            }
                            None => {
                                log::debug!("{}: STARTTLS handshake failed", self.peer);
                                return false;
                            }
                        }
                    }
                    Action::Restart => self.framer.reset(),
                    Action::Sasl(job) => {
                        // Boxed, like the other rare steps below: their state
                        // would otherwise be part of every connection's task
                        // for its whole life, idle or not.
                        // Held by the throttle, the connection waits for the
                        // server: not silent, and not to be hurried.
                        self.ticket.set_busy(true, Instant::now());
                        let outcome = Box::pin(self.sasl_step(job)).await;
                        self.ticket.set_busy(false, Instant::now());
                        let server = self.server.clone();
                        let env = StreamEnv { server: &server };
                        let (stream, mut out) = self.out();
                        match outcome {
                            SaslOutcome::Checked(session, step) => {
                                stream.sasl_result(session, step, &env, &mut out, actions)
                            }
                            SaslOutcome::Refused { retry_after } => {
                                // Rounded up: "try again in 0 s" would be
                                // too early.
                                let secs = retry_after.as_secs() + 1;
                                stream.sasl_refused(secs, &env, &mut out, actions)
                            }
                        }
                    }
                    Action::Register { iq, domain } => {
                        let env = self.server.env();
                        let throttle = self.server.registrations();
                        let ip = self.peer.ip();
                        // Registration with an invitation's token
                        // (XEP-0445) or open registration (XEP-0077).
                        let (reply, created) = if crate::invite::register::concerns(&iq) {
                            Box::pin(crate::invite::register::before_login(
                                &env, throttle, &iq, &domain, ip,
                            ))
                            .await
                        } else {
                            Box::pin(im::register::before_login(&env, throttle, &iq, &domain, ip))
                                .await
                        };
                        let (stream, mut out) = self.out();
                        stream.register_result(reply.as_ref(), created, &mut out);
                    }
                    Action::Bind {
                        account,
                        resource,
                        iq_id,
                    } => {
                        let result = self.bind_session(&account, resource.as_deref());
                        // The bind result is the first stanza of the
                        // session's queue: nothing sent to the new session
                        // can overtake it.
                        let (stream, mut out) = self.out();
                        stream.bind_result(result, &iq_id, &mut out);
                    }
                    Action::Route { stanza, to } => {
                        if let Some(session) = self.session.clone() {
                            self.route(&session, stanza, to).await;
                        }
                    }
                    Action::Close => self.closing = true,
                    Action::SmEnable { resume, max } => self.sm_enable(resume, max),
                    Action::SmResume { previd, h } => self.sm_resume(&previd, h, actions),
                    Action::SmAck(h) => self.sm_ack(h, actions),
                    Action::SmRequest => {
                        // An ack promises the stanzas are handled: the
                        // messages in flight must be stored first.
                        self.settle_in_flight(0).await;
                        self.sm_answer_request();
                    }
                    Action::Csi { active } => self.csi(active),
                    Action::Sasl2(step) => Box::pin(self.sasl2(*step, actions)).await,
                }
            }
            std::mem::swap(&mut pending, actions);
        }
        if pending.capacity() > actions.capacity() {
            *actions = pending;
        }
        true
    }

    /// Hands a client's stanza to the router. Messages are pipelined: the
    /// next stanza is read while their writes commit, up to
    /// [`MAX_IN_FLIGHT`] of them; anything else first waits until the
    /// messages before it are settled (its handler may read the disk).
    async fn route(&mut self, session: &Rc<Session>, stanza: Element, to: Option<Jid>) {
        let limit = if stanza.name == "message" {
            MAX_IN_FLIGHT - 1
        } else {
            0
        };
        // A stream that is ending (a write it caused failed, a newer
        // session took its place, the server stops) handles nothing more
        // of what it already sent: "nothing after it was done".
        if self.outbox.is_closing() {
            return;
        }
        self.settle_in_flight(limit).await;
        if self.outbox.is_closing() {
            return;
        }
        if let durable::Routed::InFlight(gate) =
            durable::route_from_client(&self.server, session, stanza, to).await
            && gate.state() == Release::Held
        {
            self.in_flight.push_back(gate);
        }
    }

    /// Waits until at most `limit` of the client's messages are in flight.
    async fn settle_in_flight(&mut self, limit: usize) {
        while let Some(oldest) = self.in_flight.front() {
            if oldest.state() == Release::Held {
                if self.in_flight.len() <= limit {
                    return;
                }
                oldest.settled().await;
            }
            self.in_flight.pop_front();
        }
        self.in_flight = VecDeque::new();
    }

    /// Writes everything queued: the outbox's stanzas, then the stream's
    /// own bytes. Returns false if the peer is gone.
    ///
    /// This is the TCP c2s framing: the stanzas are written as they are
    /// queued, back to back, inside the `jabber:client` stream. The written
    /// batch is kept and swapped with the outbox's next time, so the outbox
    /// always has room: stanzas queued while a write is in progress (every
    /// MUC delivery under load) do not allocate.
    async fn flush(&mut self, transport: &mut Transport) -> bool {
        let mut batch = std::mem::take(&mut self.written);
        let mut stream_out = std::mem::take(&mut self.stream_out);
        let ok = loop {
            // Taken over by a resumed stream: the queue is the new one's.
            if self.carrier.as_ref().is_none_or(|c| !c.is_taken()) {
                self.outbox.drain(&mut batch);
                self.before_write(&mut batch);
            }
            if batch.is_empty() && stream_out.is_empty() {
                break true;
            }
            // The stream's own bytes go first (a new stream header must
            // precede the bind result a pipelining client asked for in the
            // same write), except when closing: then every queued stanza
            // goes out before the stream error and `</stream:stream>`.
            let closing = self.closing;
            let stall = Duration::from_secs(u64::from(self.write_timeout_secs));
            // Stream-level bytes (an `<a/>` answering the client's `<r/>`)
            // and a small batch go in one write: with TCP_NODELAY two
            // writes are two segments.
            let merge = !closing
                && !stream_out.is_empty()
                && !batch.is_empty()
                && batch.bytes().len() <= KEEP_WRITTEN;
            if merge {
                stream_out.extend_from_slice(batch.bytes());
            }
            let result = async {
                if !closing && !stream_out.is_empty() {
                    write_progressing(transport, &stream_out, stall).await?;
                }
                if !batch.is_empty() && !merge {
                    write_progressing(transport, batch.bytes(), stall).await?;
                }
                if closing && !stream_out.is_empty() {
                    write_progressing(transport, &stream_out, stall).await?;
                }
                within(stall, transport.flush()).await
            }
            .await;
            if let Err(e) = result {
                log::debug!("{}: write failed: {e}", self.peer);
                break false;
            }
            self.last_write = Instant::now();
            let closed = self.closing && !stream_out.is_empty();
            batch.clear();
            stream_out.clear();
            if closed {
                // `</stream:stream>` is out: nothing may follow it.
                break true;
            }
            if batch.capacity() > KEEP_WRITTEN {
                // A big burst should not pin its memory.
                batch = Batch::default();
            }
            if stream_out.capacity() > KEEP_WRITTEN {
                stream_out = Vec::new();
            }
        };
        self.written = batch;
        self.stream_out = stream_out;
        ok
    }

    /// After sending `</stream:stream>`: give the peer a moment to answer
    /// with its own, then close (TLS close_notify included).
    async fn linger(&mut self, transport: &mut Transport) {
        let wait_for_peer = async {
            let mut buf = [0u8; 256];
            loop {
                match future::poll_fn(|cx| transport.poll_read_when_ready(cx, &mut buf)).await {
                    Ok(0) => return true,
                    // Broken input (a WebSocket frame refused): our side
                    // still closes properly.
                    Err(_) => return false,
                    Ok(_) => {}
                }
            }
        };
        let peer_closed = future::or(wait_for_peer, async {
            Timer::after(CLOSE_GRACE).await;
            false
        })
        .await;
        if peer_closed && !transport.is_tls() {
            // Nothing left to say: closing the socket (on drop) sends our
            // FIN; a shutdown first would be one more system call, and
            // fails anyway once the peer is fully gone.
            return;
        }
        let _ = future::or(transport.close(), async {
            Timer::after(CLOSE_GRACE).await;
            Ok(())
        })
        .await;
    }

    async fn wait(&mut self, transport: &mut Transport) -> Wake {
        let mut deadline = match self.effective_auth_deadline() {
            Some(d) => d,
            None => self.last_write + self.keepalive(),
        };
        if let Some(stanza) = self.stanza_deadline() {
            deadline = deadline.min(stanza);
        }
        if let Some(active) = self.last_activity {
            deadline = deadline.min(active + IDLE_RELEASE);
        }
        if let Some(ping) = self.ping_deadline() {
            deadline = deadline.min(ping);
        }
        if let Some(ack) = self.ack_due {
            deadline = deadline.min(ack);
        }
        if self.timer_armed.is_none_or(|armed| armed > deadline) {
            self.timer.set_at(deadline);
            self.timer_armed = Some(deadline);
        }
        let timer = &mut self.timer;
        let timer_armed = &mut self.timer_armed;
        let outbox = self.outbox.clone();
        let framer = &mut self.framer;
        let input_pending = &mut self.input_pending;
        let ticket = &self.ticket;
        let authenticating = self.auth_deadline.is_some();
        let carrier = self.carrier.clone();
        future::poll_fn(|cx| {
            if carrier
                .as_ref()
                .is_some_and(|c| c.poll_signal(cx).is_ready())
            {
                return Poll::Ready(Wake::Carrier);
            }
            if outbox.poll_ready(cx).is_ready() {
                return Poll::Ready(Wake::Output);
            }
            // The address came under pressure since the timer was armed:
            // go round again so it is armed for the earlier deadline.
            if authenticating
                && ticket
                    .pressure_deadline()
                    .is_some_and(|p| timer_armed.is_none_or(|armed| p < armed))
            {
                return Poll::Ready(Wake::Timer);
            }
            let mut chunk = [0u8; READ_CHUNK];
            let read = if *input_pending {
                Pin::new(&mut *transport).poll_read(cx, &mut chunk)
            } else {
                transport.poll_read_when_ready(cx, &mut chunk)
            };
            match read {
                Poll::Ready(Ok(0)) => return Poll::Ready(Wake::Eof),
                Poll::Ready(Ok(n)) => {
                    *input_pending = n == READ_CHUNK;
                    framer.push(chunk.get(..n).unwrap_or_default());
                    return Poll::Ready(Wake::Input);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Wake::Error(e)),
                Poll::Pending => {}
            }
            match Pin::new(&mut *timer).poll(cx) {
                Poll::Ready(_) => {
                    *timer_armed = None;
                    Poll::Ready(Wake::Timer)
                }
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    /// The connection is over: its session ends, or waits for the client
    /// to resume it (returned), or stays as it is (taken over by a resumed
    /// stream; kept for the restart of a stopping server).
    async fn finish(&mut self) -> Option<super::hibernation::Hibernating> {
        let session = self.session.take()?;
        let carrier = self.carrier.take()?;
        if !session.is_carried_by(&carrier) {
            return None;
        }
        log::debug!("{}: {} disconnected", self.peer, session.jid);
        if session.is_resumable() && (carrier.is_suspended() || self.server.is_stopping()) {
            return None;
        }
        if self.lost && session.is_resumable() && self.server.start_waiting() {
            return Some(super::hibernation::Hibernating::start(
                self.server.clone(),
                session,
            ));
        }
        super::hibernation::end_session(&self.server, session).await;
        None
    }
}

/// What a client whose stanza arrived too slowly is told: the limit it
/// broke, the stanza's time limit (`whole`) or its minimum rate.
fn slow_stanza_text(whole: bool, timeout_secs: u32, min_rate: u32) -> String {
    if whole {
        format!("a stanza must arrive whole within {timeout_secs} s ([c2s] stanza_timeout_secs)")
    } else {
        format!(
            "a stanza must arrive at {min_rate} bytes/s at least ([c2s] stanza_min_bytes_per_sec)"
        )
    }
}

/// The WebSocket framing rule a client broke, if that is what `error` is.
fn framing_violation(error: &std::io::Error) -> Option<&super::websocket::FramingViolation> {
    error.get_ref()?.downcast_ref()
}

// `CredentialReader` must be movable to the blocking pool with the session.
const _: fn() = || {
    fn assert_send<T: Send>() {}
    assert_send::<CredentialReader>();
};

#[path = "connection_login.rs"]
mod login;
#[path = "connection_write.rs"]
pub(super) mod write;
use write::{within, write_progressing};
#[path = "connection_sasl2.rs"]
mod sasl2;
#[path = "connection_sm.rs"]
mod sm;

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
