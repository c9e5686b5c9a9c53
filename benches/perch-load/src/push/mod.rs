//! `push`: push notifications (XEP-0357) for accounts with no session,
//! through an app server that is a client of this tool.
//!
//! 1. Starts the Perch binary `--perch` on a generated configuration with
//!    `[push] coalesce_secs = 0` (a notification per message) and the
//!    accounts: `--accounts` offline ones (`<prefix>1…`), `--senders`
//!    senders and the app server's.
//! 2. Each offline account logs in once, enables push to the app server's
//!    full JID (`<prefix>-app@DOMAIN/app`) with a node of its own and a
//!    secret in the publish options, and logs out. The app server logs in
//!    and answers every notification with a result.
//! 3. `push_latency`: one sender, one message at a time, `--latency-msgs`
//!    messages, each to the next offline account once the previous one's
//!    notification arrived. `push`: `--senders` senders, each with its
//!    share of the offline accounts and one message in flight, send
//!    `--messages` messages between them. Each message is stored offline
//!    and notified; the sender moves on when the app server has its
//!    notification (so a registration never has more than one
//!    notification awaiting an answer, under Perch's cap of four, and
//!    none is held back).
//!
//! Per phase: notifications per second at the app server, message sent to
//! notification received (median, p95), the server's CPU per
//! notification (storing the message, the notification, the answer), and
//! whether the notifications (and the messages they count) are as many
//! as the messages sent. Exit status 1 unless they are.

pub mod app;
pub mod report;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_lite::future;
use smol::Executor;

use crate::conn::{ClientError, Conn, Login, Target, TlsMode};
use crate::ctx::{now_ns, settle};
use crate::procfs::{Meter, Probe};
use crate::rng::Rng;
use crate::sasl::Mechanism;
use crate::scenario::{body, is_error_message};
use crate::spawned::{PerchProcess, Settings, Source};
use crate::xml::{self, Frame};

pub use report::{PushPhase, PushReport};

use app::Board;

#[derive(Debug, Clone)]
pub struct PushOptions {
    pub perch: PathBuf,
    pub domain: String,
    pub user_prefix: String,
    pub password: String,
    pub accounts: usize,
    pub senders: usize,
    pub messages: usize,
    pub latency_msgs: usize,
    pub threads: usize,
    pub settle_seconds: f64,
    pub step_timeout: Duration,
    pub keep: bool,
    pub print: bool,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            perch: PathBuf::from("target/release/perch"),
            domain: "localhost".into(),
            user_prefix: "push".into(),
            password: "push-password".into(),
            accounts: 200,
            senders: 20,
            messages: 5000,
            latency_msgs: 200,
            threads: 2,
            settle_seconds: 5.0,
            step_timeout: Duration::from_secs(30),
            keep: false,
            print: true,
        }
    }
}

pub const PUSH_HELP: &str = "\
push options (defaults in brackets):
  --perch PATH           the Perch binary to start [target/release/perch]
  --accounts N           offline accounts, each registered for push [200]
  --senders N            senders, one message in flight each (at most
                         --accounts) [20]
  --messages N           messages of the push phase [5000]
  --latency-msgs N       messages of the push_latency phase (one sender,
                         one at a time; 0 skips it) [200]
  --threads N            OS threads driving the clients [2]
  --settle-seconds S     max wait for the server to go quiet [5]
  --user-prefix P        accounts P1…, P-sender1…, P-app [push]
  --password PW          [push-password]
  --step-timeout S       longest wait for one notification [30]
  --keep                 keep the work directory
  --quiet                no progress lines";

impl PushOptions {
    pub fn from_args(args: &[String]) -> Result<PushOptions, String> {
        let a = crate::args::Args::parse(
            args,
            &[
                "perch",
                "domain",
                "user-prefix",
                "password",
                "accounts",
                "senders",
                "messages",
                "latency-msgs",
                "threads",
                "settle-seconds",
                "step-timeout",
            ],
            &["keep", "quiet"],
        )?;
        let d = PushOptions::default();
        let accounts = a.bounded("accounts", d.accounts, 1..=100_000)?;
        let senders = a.bounded("senders", d.senders, 1..=10_000)?;
        if senders > accounts {
            return Err(format!(
                "--senders {senders} is more than --accounts {accounts}: each sender needs \
                 offline accounts of its own"
            ));
        }
        Ok(PushOptions {
            perch: a.value("perch").map_or(d.perch, PathBuf::from),
            domain: a.value("domain").unwrap_or("localhost").to_string(),
            user_prefix: a.value("user-prefix").unwrap_or("push").to_string(),
            password: a.value("password").unwrap_or("push-password").to_string(),
            accounts,
            senders,
            messages: a.bounded("messages", d.messages, 1..=10_000_000)?,
            latency_msgs: a.bounded("latency-msgs", d.latency_msgs, 0..=1_000_000)?,
            threads: a.bounded("threads", d.threads, 1..=16)?,
            settle_seconds: a.seconds("settle-seconds", d.settle_seconds)?,
            step_timeout: Duration::from_secs_f64(a.seconds("step-timeout", 30.0)?.max(0.1)),
            keep: a.flag("keep"),
            print: !a.flag("quiet"),
        })
    }

    fn say(&self, msg: &str) {
        if self.print {
            eprintln!("[perch-load] push: {msg}");
        }
    }

    fn offline(&self, i: usize) -> String {
        format!("{}{}", self.user_prefix, i + 1)
    }

    fn sender(&self, s: usize) -> String {
        format!("{}-sender{}", self.user_prefix, s + 1)
    }

    fn app(&self) -> String {
        format!("{}-app", self.user_prefix)
    }
}

/// Runs the measurement; `Err` when it cannot start (server, accounts,
/// registrations).
pub fn run(opts: &PushOptions) -> Result<PushReport, String> {
    crate::executor::run_on(opts.threads, |ex| measure(opts, ex))
}

async fn measure(opts: &PushOptions, ex: Arc<Executor<'static>>) -> Result<PushReport, String> {
    let settings = Settings {
        domain: opts.domain.clone(),
        max_connections: u32::try_from(opts.accounts + opts.senders + 1000).unwrap_or(u32::MAX),
        free_login_failures: Some(10_000),
        offline_max_messages: u32::try_from(opts.messages + opts.latency_msgs + 1000)
            .unwrap_or(u32::MAX),
        log_level: "warn",
        extra: "[push]\ncoalesce_secs = 0\n".into(),
        ..Settings::default()
    };
    let mut rng = Rng::new(crate::rng::seed_from_clock());
    let mut perch = PerchProcess::prepare(
        &opts.perch,
        Source::Generated(settings),
        "push",
        opts.keep,
        &mut rng,
    )?;
    perch.start().await?;
    let mut names: Vec<String> = (0..opts.accounts).map(|i| opts.offline(i)).collect();
    names.extend((0..opts.senders).map(|s| opts.sender(s)));
    names.push(opts.app());
    let t = Instant::now();
    perch.add_accounts(&names, &opts.password, 8).await?;
    opts.say(&format!(
        "perch pid {} on {}, {} accounts created in {:.1} s",
        perch.pid().unwrap_or(0),
        perch.c2s,
        names.len(),
        t.elapsed().as_secs_f64()
    ));
    let target = Target {
        addr: perch.c2s,
        domain: opts.domain.clone(),
        tls: TlsMode::None,
        tls_config: None,
        step_timeout: opts.step_timeout,
        ws: None,
    };
    let probe = Probe::new(perch.pid(), false);
    let app_jid = format!("{}@{}/app", opts.app(), opts.domain);

    opts.say(&format!(
        "{} accounts enable push to {app_jid}",
        opts.accounts
    ));
    register_all(opts, &ex, &target, &app_jid).await?;
    let mut app = Conn::login(&target, &login(opts, &opts.app(), "app"))
        .await
        .map_err(|e| format!("the app server {app_jid}: {e}"))?;
    app.shrink();
    let mut senders = Vec::with_capacity(opts.senders);
    for s in 0..opts.senders {
        let c = Conn::login(&target, &login(opts, &opts.sender(s), "sender"))
            .await
            .map_err(|e| format!("{}: {e}", opts.sender(s)))?;
        senders.push(c);
    }

    let mut report = PushReport {
        accounts: opts.accounts,
        ..PushReport::default()
    };
    if opts.latency_msgs > 0 {
        let one = senders.split_off(1);
        let (phase, back, app_back) = phase(
            opts,
            &ex,
            &probe,
            "push_latency",
            senders,
            app,
            opts.latency_msgs,
        )
        .await?;
        report.phases.push(phase);
        senders = back;
        senders.extend(one);
        app = app_back;
    }
    let (phase, back, app_back) =
        phase(opts, &ex, &probe, "push", senders, app, opts.messages).await?;
    report.phases.push(phase);
    for c in back {
        c.close().await;
    }
    app_back.close().await;
    drop(perch);
    Ok(report)
}

fn login<'a>(opts: &'a PushOptions, user: &'a str, resource: &'a str) -> Login<'a> {
    Login {
        user,
        password: &opts.password,
        mechanism: Mechanism::Plain,
        resource,
        presence: false,
        sm: false,
    }
}

/// Every offline account logs in, enables push (node and secret of its
/// own) and logs out, ten at a time.
async fn register_all(
    opts: &PushOptions,
    ex: &Arc<Executor<'static>>,
    target: &Target,
    app_jid: &str,
) -> Result<(), String> {
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..10.min(opts.accounts))
        .map(|_| {
            let (next, opts, target) = (next.clone(), opts.clone(), target.clone());
            let app_jid = app_jid.to_string();
            ex.spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= opts.accounts {
                        return Ok::<(), String>(());
                    }
                    register(&opts, &target, &app_jid, i)
                        .await
                        .map_err(|e| format!("{}: enabling push: {e}", opts.offline(i)))?;
                }
            })
        })
        .collect();
    for w in workers {
        w.await?;
    }
    Ok(())
}

async fn register(
    opts: &PushOptions,
    target: &Target,
    app_jid: &str,
    i: usize,
) -> Result<(), ClientError> {
    let user = opts.offline(i);
    let mut conn = Conn::login(target, &login(opts, &user, "phone")).await?;
    conn.send(
        format!(
            "<iq type='set' id='push-enable'><enable xmlns='urn:xmpp:push:0' jid='{}' node='{}'>\
             <x xmlns='jabber:x:data' type='submit'>\
             <field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>\
             <field var='secret'><value>secret-{i}</value></field></x></enable></iq>",
            xml::escape(app_jid),
            app::node(i)
        )
        .as_bytes(),
    )
    .await?;
    let answer = crate::conn::timeout(
        target.step_timeout,
        "push enable",
        conn.await_iq("push-enable"),
    )
    .await?;
    if xml::start_tag_attr(&answer, "type") != Some(b"result") {
        return Err(ClientError::Refused(
            "push enable",
            String::from_utf8_lossy(&answer).chars().take(300).collect(),
        ));
    }
    conn.close().await;
    Ok(())
}

/// One phase: `senders` share the offline accounts and `messages`
/// messages; returns what it measured and the connections.
async fn phase(
    opts: &PushOptions,
    ex: &Arc<Executor<'static>>,
    probe: &Probe,
    name: &str,
    senders: Vec<Conn>,
    app: Conn,
    messages: usize,
) -> Result<(PushPhase, Vec<Conn>, Conn), String> {
    settle(probe, opts.settle_seconds).await;
    let n = senders.len();
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..n).map(|_| smol::channel::unbounded()).unzip();
    let board = Arc::new(Board::new(opts.accounts, txs));
    let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
    let app_task = ex.spawn(app::serve(app, board.clone(), stop_rx));
    opts.say(&format!(
        "{name}: {n} senders, {messages} messages to {} offline accounts",
        opts.accounts
    ));
    let pids = probe.pids();
    let sched0 = probe.sched_ns(&pids);
    let meter = Meter::start(probe);
    let t0 = now_ns();
    let tasks: Vec<_> = senders
        .into_iter()
        .zip(rxs)
        .enumerate()
        .map(|(s, (conn, rx))| {
            let share = messages / n + usize::from(s < messages % n);
            let own: Vec<usize> = (s..opts.accounts).step_by(n).collect();
            let to: Vec<String> = own
                .iter()
                .map(|&i| format!("{}@{}", opts.offline(i), opts.domain))
                .collect();
            let (board, step) = (board.clone(), opts.step_timeout);
            ex.spawn(send_share(conn, s, own, to, share, board, rx, step))
        })
        .collect();
    let mut back = Vec::with_capacity(n);
    let mut outcome = SenderOutcome::default();
    for t in tasks {
        let (conn, o) = t.await;
        outcome.sent += o.sent;
        outcome.bounced += o.bounced;
        outcome.errors.extend(o.errors);
        back.extend(conn);
    }
    // The last notifications' answers: the server has them before the
    // meter stops (they are part of what a notification costs).
    smol::Timer::after(Duration::from_millis(50)).await;
    let m = crate::reconnect::precise(meter.stop(), probe, &pids, sched0);
    let _ = stop_tx.send(()).await;
    let app = app_task
        .await
        .map_err(|e| format!("{name}: the app server: {e}"))?;
    let last = board.last_ns.load(Ordering::Relaxed);
    let phase = PushPhase {
        name: name.to_string(),
        senders: n,
        messages,
        sent: outcome.sent,
        bounced: outcome.bounced,
        notifications: board.notifications.load(Ordering::Relaxed),
        counted_messages: board.counted_messages.load(Ordering::Relaxed),
        unexpected: board.unexpected.load(Ordering::Relaxed),
        notify_s: (last > t0).then(|| (last - t0) as f64 / 1e9),
        latency: board.latency.lock().map(|h| h.clone()).unwrap_or_default(),
        errors: outcome.errors,
        meter: m,
    };
    Ok((phase, back, app))
}

#[derive(Default)]
struct SenderOutcome {
    sent: u64,
    bounced: u64,
    errors: Vec<String>,
}

/// One sender: `share` messages over its accounts `own` (addresses `to`),
/// each sent once the previous one's notification arrived (`wake`).
#[allow(clippy::too_many_arguments)]
async fn send_share(
    mut conn: Conn,
    s: usize,
    own: Vec<usize>,
    to: Vec<String>,
    share: usize,
    board: Arc<Board>,
    wake: smol::channel::Receiver<usize>,
    step: Duration,
) -> (Option<Conn>, SenderOutcome) {
    let mut out = SenderOutcome::default();
    let tag = u32::try_from(s).unwrap_or(u32::MAX);
    for k in 0..share {
        let at = k % own.len().max(1);
        let (i, jid) = (own[at], &to[at]);
        let sent_ns = now_ns().max(1);
        board.sent_ns[i].store(sent_ns, Ordering::Release);
        let stanza = format!(
            "<message type='chat' to='{}' id='p{k}'>{}</message>",
            xml::escape(jid),
            body(tag, k as u64, sent_ns)
        );
        if let Err(e) = conn.send(stanza.as_bytes()).await {
            out.errors.push(format!("sender {}: {e}", s + 1));
            return (None, out);
        }
        out.sent += 1;
        match await_notification(&mut conn, &wake, i, step).await {
            Ok(true) => {}
            Ok(false) => {
                // Bounced: no notification will come for it.
                out.bounced += 1;
                board.sent_ns[i].store(0, Ordering::Release);
            }
            Err(e) => {
                out.errors
                    .push(format!("sender {}, account {}: {e}", s + 1, i + 1));
                return (None, out);
            }
        }
    }
    (Some(conn), out)
}

/// Waits for the app server to have account `i`'s notification: true,
/// or false if the server bounced the message.
async fn await_notification(
    conn: &mut Conn,
    wake: &smol::channel::Receiver<usize>,
    i: usize,
    step: Duration,
) -> Result<bool, ClientError> {
    let deadline = Instant::now() + step;
    loop {
        while let Some(frame) = conn.next_frame()? {
            match frame {
                Frame::Element(a, b) if is_error_message(conn.bytes(a, b)) => return Ok(false),
                Frame::End => return Err(ClientError::Closed("sending")),
                _ => {}
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ClientError::Timeout("the notification"));
        }
        let woke = future::or(async { Woke::Signal(wake.recv().await.ok()) }, async {
            future::or(async { Woke::Read(conn.fill().await.err()) }, async {
                smol::Timer::after(left).await;
                Woke::Read(None)
            })
            .await
        })
        .await;
        match woke {
            Woke::Signal(Some(j)) if j == i => return Ok(true),
            // A late notification of an earlier message (it was counted).
            Woke::Signal(Some(_)) | Woke::Read(None) => {}
            Woke::Signal(None) => return Err(ClientError::Closed("the app server's signal")),
            Woke::Read(Some(e)) => return Err(e),
        }
    }
}

/// What ended a sender's wait.
enum Woke {
    /// The app server's word (`None`: it is gone).
    Signal(Option<usize>),
    /// Input, or the time bound (`None`), or the error reading.
    Read(Option<ClientError>),
}
