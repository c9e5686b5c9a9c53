//! `guess`: how fast an attacker can have passwords checked, against a
//! server's failed-login throttle. Three modes run one after the other,
//! each for `--seconds`, each at its own victim account and from its own
//! loopback source addresses, so that one mode's failure counts do not
//! slow the next:
//!
//! - `interleaved`: one address, one client: a wrong PLAIN guess at the
//!   victim, then a correct login to the attacker's own account
//!   (`--user-prefix` + `--first-user`, `--password`; it must exist), each
//!   on a fresh connection, again and again (a throttle that forgets an
//!   address's failures after a good login lets this through at full speed);
//! - `parallel`: `--parallel` (32) clients from one address;
//! - `addresses`: `--sources` (50) addresses, one client each, all at one
//!   victim (what a per-address throttle cannot see).
//!
//! A client that is told to try later tries again at once: that is the
//! attack. Every answer is classified: `not-authorized` means the password
//! was checked; any other `<failure>` (`temporary-auth-failure`) means it
//! was refused unchecked. The victims need not exist: a server answers an
//! unknown user exactly like a wrong password.
//!
//! The clients are tasks on the tool's executor like every other scenario's,
//! not blocking sockets on threads: `Conn` already does the stream set-up,
//! framing and step timeouts, and an attempt the server holds for seconds
//! then costs a timer, not a thread. Only the connect differs (bound to a
//! source address first: `source::connect_from`).

use crate::options::GuessMode as Mode;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_lite::future;
use serde_json::json;

use crate::base64;
use crate::conn::{ClientError, Conn, NS_SASL, Target, mechanisms};
use crate::ctx::{Ctx, latency_json, merge, meter_json, now_ns, round};
use crate::histogram::Histogram;
use crate::procfs::Meter;
use crate::sasl;
use crate::source::connect_from;
use crate::xml;

/// Pause after a connection error before the client tries again, so a
/// server that is gone (or full) does not make the tool spin.
const ERROR_PAUSE: Duration = Duration::from_millis(20);

/// How a server answered one `<auth/>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `<failure><not-authorized/>`: the password was checked, and wrong.
    Checked,
    /// Any other `<failure>` (`temporary-auth-failure`, `aborted`, …): not
    /// checked.
    Refused,
    /// `<success/>`.
    Success,
}

/// Classifies a SASL answer; `None` for anything that is not one.
pub fn classify(el: &[u8]) -> Option<Answer> {
    match xml::local_name(el) {
        b"success" => Some(Answer::Success),
        b"failure" => {
            let checked = xml::with_parsed(el, |n| {
                n.children()
                    .any(|c| c.is_element() && c.tag_name().name() == "not-authorized")
            })
            .ok()?;
            Some(if checked {
                Answer::Checked
            } else {
                Answer::Refused
            })
        }
        _ => None,
    }
}

/// What one attempt came to.
enum Outcome {
    /// The answer, and nanoseconds from sending `<auth/>` to it.
    Answered(Answer, u64),
    /// The mode's time (plus the step timeout) ran out while the server
    /// still held the attempt.
    Unanswered,
    /// Where it failed (`connect`, `stream set-up`, `auth answer`), and why.
    Error(&'static str, ClientError),
    /// The server does not offer PLAIN (what it offers).
    NoPlain(Vec<String>),
}

/// One PLAIN authentication on a fresh connection from `source`; waits for
/// the answer until `answer_by`. The connection is then dropped with a
/// reset, as a guesser would.
async fn attempt(
    target: &Target,
    source: IpAddr,
    user: &str,
    password: &str,
    answer_by: Instant,
) -> Outcome {
    let tcp = match connect_from(source, target.addr, target.step_timeout).await {
        Ok(tcp) => tcp,
        Err(e) => return Outcome::Error("connect", e),
    };
    let (mut conn, features) = match Conn::open_on(target, tcp).await {
        Ok(pair) => pair,
        // A server at its per-address connection limit closes here.
        Err(e) => return Outcome::Error("stream set-up", e),
    };
    let offered = mechanisms(&features);
    if !offered.iter().any(|m| m == "PLAIN") {
        return Outcome::NoPlain(offered);
    }
    let token = base64::encode(&sasl::plain_initial(user, password));
    let auth = format!("<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{token}</auth>");
    if let Err(e) = conn.send(auth.as_bytes()).await {
        return Outcome::Error("auth", e);
    }
    let t0 = now_ns();
    // Not the step timeout: holding an attempt for seconds is what a
    // throttle does, and the time it holds is what this measures.
    let answer = future::or(async { Some(conn.next_element().await) }, async {
        smol::Timer::at(answer_by).await;
        None
    })
    .await;
    let outcome = match answer {
        None => Outcome::Unanswered,
        Some(Err(e)) => Outcome::Error("auth answer", e),
        Some(Ok(el)) => match classify(&el) {
            Some(a) => Outcome::Answered(a, now_ns().saturating_sub(t0)),
            None => Outcome::Error(
                "auth answer",
                ClientError::Refused(
                    "sasl",
                    String::from_utf8_lossy(&el).chars().take(200).collect(),
                ),
            ),
        },
    };
    // Best effort, and short: the reset on drop ends the connection anyway.
    let _ = future::or(
        async {
            let _ = conn.send(b"</stream:stream>").await;
        },
        async {
            smol::Timer::after(Duration::from_millis(100)).await;
        },
    )
    .await;
    outcome
}

/// One mode's counts, kept per client and merged at the end.
#[derive(Default)]
struct Tally {
    checked: u64,
    refused: u64,
    errors: u64,
    unanswered: u64,
    /// Guesses the server accepted (the victim's password was guessed).
    accepted: u64,
    /// Interleaved mode: the attacker's own logins.
    logins_ok: u64,
    logins_refused: u64,
    checked_ns: Histogram,
    refused_ns: Histogram,
    error_samples: Vec<String>,
}

impl Tally {
    fn guess(&mut self, answer: Answer, ns: u64) {
        match answer {
            Answer::Checked => {
                self.checked += 1;
                self.checked_ns.record(ns);
            }
            Answer::Refused => {
                self.refused += 1;
                self.refused_ns.record(ns);
            }
            Answer::Success => {
                // Checked too, and right: count it with the checked ones.
                self.accepted += 1;
                self.checked += 1;
                self.checked_ns.record(ns);
            }
        }
    }

    fn error(&mut self, stage: &str, e: &ClientError) {
        self.errors += 1;
        if self.error_samples.len() < 3 {
            // Errors of the connect step already start with "connect".
            let text = e.to_string();
            self.error_samples.push(if text.starts_with(stage) {
                text
            } else {
                format!("{stage}: {text}")
            });
        }
    }

    fn merge(&mut self, o: &Tally) {
        self.checked += o.checked;
        self.refused += o.refused;
        self.errors += o.errors;
        self.unanswered += o.unanswered;
        self.accepted += o.accepted;
        self.logins_ok += o.logins_ok;
        self.logins_refused += o.logins_refused;
        self.checked_ns.merge(&o.checked_ns);
        self.refused_ns.merge(&o.refused_ns);
        for s in &o.error_samples {
            if self.error_samples.len() < 3 {
                self.error_samples.push(s.clone());
            }
        }
    }
}

/// What every client of a mode shares.
struct Shared {
    target: Target,
    victim: String,
    /// Interleaved mode: the attacker's own account and password.
    own: Option<(String, String)>,
    deadline: Instant,
    answer_by: Instant,
    tally: Mutex<Tally>,
    stop: AtomicBool,
    fatal: Mutex<Option<String>>,
}

impl Shared {
    fn fail(&self, msg: String) {
        if let Ok(mut f) = self.fatal.lock() {
            f.get_or_insert(msg);
        }
        self.stop.store(true, Ordering::Relaxed);
    }

    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed) && Instant::now() < self.deadline
    }

    fn no_plain(&self, offered: &[String]) {
        self.fail(format!(
            "the server does not offer SASL PLAIN on this connection (offered: {}); \
             guess needs plaintext c2s with PLAIN allowed (Perch: [c2s] \
             require_encryption = false, allow_plaintext_auth = true)",
            if offered.is_empty() {
                "nothing".to_string()
            } else {
                offered.join(" ")
            }
        ));
    }
}

/// One client: guesses from `source` until the mode's time is up; in the
/// interleaved mode each guess is followed by the attacker's own login.
async fn client(shared: Arc<Shared>, source: IpAddr, id: usize) {
    let mut t = Tally::default();
    let mut k = 0u64;
    while shared.running() {
        k += 1;
        let guess = format!("wrong-{id}-{k}");
        match attempt(
            &shared.target,
            source,
            &shared.victim,
            &guess,
            shared.answer_by,
        )
        .await
        {
            Outcome::Answered(a, ns) => t.guess(a, ns),
            Outcome::Unanswered => t.unanswered += 1,
            Outcome::Error(stage, e) => {
                t.error(stage, &e);
                smol::Timer::after(ERROR_PAUSE).await;
            }
            Outcome::NoPlain(offered) => {
                shared.no_plain(&offered);
                break;
            }
        }
        let Some((user, password)) = &shared.own else {
            continue;
        };
        if !shared.running() {
            break;
        }
        match attempt(&shared.target, source, user, password, shared.answer_by).await {
            Outcome::Answered(Answer::Success, _) => t.logins_ok += 1,
            Outcome::Answered(Answer::Refused, _) => t.logins_refused += 1,
            Outcome::Answered(Answer::Checked, _) => {
                shared.fail(format!(
                    "the attacker's own account '{user}' was refused as not-authorized: \
                     create it first (perch user add {user}@DOMAIN --password-stdin) \
                     and pass its password with --password"
                ));
                break;
            }
            Outcome::Unanswered => {}
            Outcome::Error(stage, e) => {
                t.error(stage, &e);
                smol::Timer::after(ERROR_PAUSE).await;
            }
            Outcome::NoPlain(offered) => {
                shared.no_plain(&offered);
                break;
            }
        }
    }
    if let Ok(mut all) = shared.tally.lock() {
        all.merge(&t);
    }
}

/// The source address of each client of `mode`.
fn sources(mode: Mode, parallel: usize, addresses: usize) -> Vec<IpAddr> {
    let at = |host: u8| IpAddr::V4(Ipv4Addr::new(127, 0, mode.subnet(), host));
    match mode {
        Mode::Interleaved => vec![at(1)],
        Mode::Parallel => vec![at(1); parallel.max(1)],
        // options::parse keeps --sources within 1..=254.
        Mode::Addresses => (1..=addresses.clamp(1, 254)).map(|h| at(h as u8)).collect(),
    }
}

fn describe(sources: &[IpAddr]) -> String {
    match (sources.first(), sources.last()) {
        (Some(a), Some(b)) if a != b => format!("{a}-{b}"),
        (Some(a), _) => a.to_string(),
        _ => String::new(),
    }
}

async fn run_mode(ctx: &Ctx, mode: Mode) -> Result<(), String> {
    let o = &ctx.opts;
    let addrs = sources(mode, o.parallel, o.sources);
    let victim = format!("{}victim-{}", o.user_prefix, mode.name());
    ctx.settle().await;
    ctx.log(&format!(
        "guess {}: {} client(s) from {} at {victim} for {} s",
        mode.name(),
        addrs.len(),
        describe(&addrs),
        o.seconds
    ));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(o.seconds);
    let shared = Arc::new(Shared {
        target: ctx.target.clone(),
        victim: victim.clone(),
        own: (mode == Mode::Interleaved).then(|| (o.user(0), o.password.clone())),
        deadline,
        answer_by: deadline + o.step_timeout(),
        tally: Mutex::new(Tally::default()),
        stop: AtomicBool::new(false),
        fatal: Mutex::new(None),
    });
    let meter = Meter::start(&ctx.probe);
    let tasks: Vec<_> = addrs
        .iter()
        .enumerate()
        .map(|(id, &source)| ctx.ex.spawn(client(shared.clone(), source, id)))
        .collect();
    for t in tasks {
        t.await;
    }
    let m = meter.stop();
    if let Some(msg) = shared.fatal.lock().ok().and_then(|mut f| f.take()) {
        return Err(format!("guess {}: {msg}", mode.name()));
    }
    let t = shared
        .tally
        .lock()
        .map(|mut t| std::mem::take(&mut *t))
        .unwrap_or_default();
    let mut fields = json!({
        "mode": mode.name(), "victim": victim, "sources": describe(&addrs),
        "clients": addrs.len(), "seconds": o.seconds,
        "checked": t.checked, "refused": t.refused, "errors": t.errors,
        "unanswered": t.unanswered, "accepted": t.accepted,
        "checked_per_minute": if o.seconds > 0.0 {
            round(t.checked as f64 * 60.0 / o.seconds, 1)
        } else {
            0.0
        },
        "checked_answer_ms": latency_json(&t.checked_ns),
        "refused_answer_ms": latency_json(&t.refused_ns),
        "error_samples": t.error_samples,
    });
    if mode == Mode::Interleaved {
        fields["attacker"] = json!(o.user(0));
        fields["logins_ok"] = json!(t.logins_ok);
        fields["logins_refused"] = json!(t.logins_refused);
    }
    ctx.emit("guess", merge(&[fields, meter_json(&m)]));
    if t.checked + t.refused + t.logins_ok + t.logins_refused == 0 {
        return Err(format!(
            "guess {}: the server answered no attempt ({} connection errors{})",
            mode.name(),
            t.errors,
            t.error_samples
                .first()
                .map(|e| format!(", first: {e}"))
                .unwrap_or_default()
        ));
    }
    Ok(())
}

pub async fn run(ctx: &Ctx) -> Result<(), String> {
    for &mode in &ctx.opts.guess_modes {
        run_mode(ctx, mode).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_told_apart() {
        let f = |inner: &str| format!("<failure xmlns='{NS_SASL}'>{inner}</failure>");
        assert_eq!(
            classify(f("<not-authorized/>").as_bytes()),
            Some(Answer::Checked)
        );
        assert_eq!(
            classify(f("<not-authorized/><text xml:lang='en'>Wrong</text>").as_bytes()),
            Some(Answer::Checked)
        );
        assert_eq!(
            classify(
                f("<temporary-auth-failure/><text>Too many failed logins; try again in 8 s.</text>")
                    .as_bytes()
            ),
            Some(Answer::Refused)
        );
        // The word in a text is not the condition.
        assert_eq!(
            classify(f("<aborted/><text>not-authorized</text>").as_bytes()),
            Some(Answer::Refused)
        );
        assert_eq!(
            classify(format!("<success xmlns='{NS_SASL}'/>").as_bytes()),
            Some(Answer::Success)
        );
        assert_eq!(classify(b"<stream:features/>"), None);
        assert_eq!(classify(b"<failure><not-authorized/>"), None);
    }

    #[test]
    fn modes_never_share_a_source_address() {
        let a = sources(Mode::Interleaved, 32, 50);
        let b = sources(Mode::Parallel, 32, 50);
        let c = sources(Mode::Addresses, 32, 50);
        assert_eq!((a.len(), b.len(), c.len()), (1, 32, 50));
        assert!(b.iter().all(|ip| *ip == b[0]));
        assert!(!a.contains(&b[0]) && !c.contains(&b[0]) && !c.contains(&a[0]));
        assert_eq!(describe(&c), "127.0.3.1-127.0.3.50");
        assert_eq!(describe(&b), "127.0.2.1");
        assert_eq!(sources(Mode::Addresses, 1, 999).len(), 254);
    }
}
