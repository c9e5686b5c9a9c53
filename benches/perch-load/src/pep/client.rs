//! One client during `pep`'s phases: it publishes what its job says
//! (paced or all at once, at most `window` unanswered), counts the
//! notifications it receives, each publication once (further copies are
//! duplicates), and their latency from the publisher's clock, stamped in
//! the item; answers the servers' disco#info queries
//! with its capabilities, and approves presence subscription requests.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::conn::{ClientError, Conn};
use crate::ctx::now_ns;
use crate::histogram::Histogram;
use crate::xml::{self, Frame};

use super::caps::{self, Info, NS_TUNE};

pub const NS_PUBSUB: &str = "http://jabber.org/protocol/pubsub";

/// The prefix of the nodes published to for the memory reading: no client
/// asks for their notifications.
pub const QUIET_NODE_PREFIX: &str = "urn:perch-load:pep:quiet:";

/// A publication found in a notification: `P <phase> <index> <sent-ns>`
/// in the tune's title.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub phase: u32,
    /// The publication's index in its phase.
    pub index: u64,
    pub sent_ns: u64,
}

/// The payload of a publication.
pub fn payload(phase: u32, index: u64, sent_ns: u64) -> String {
    format!("<tune xmlns='{NS_TUNE}'><title>P {phase} {index} {sent_ns}</title></tune>")
}

/// The mark in a `<message>` that is not an error bounce.
pub fn mark(el: &[u8]) -> Option<Mark> {
    if xml::local_name(el) != b"message" || xml::start_tag_attr(el, "type") == Some(b"error") {
        return None;
    }
    let at = xml::find_seq(b"<title>P ", el, 0)?;
    let rest = el.get(at + 9..)?;
    let end = rest.iter().position(|&b| b == b'<')?;
    let mut parts = rest[..end].split(|&b| b == b' ');
    let mut num = || -> Option<u64> { std::str::from_utf8(parts.next()?).ok()?.parse().ok() };
    Some(Mark {
        phase: u32::try_from(num()?).ok()?,
        index: num()?,
        sent_ns: num()?,
    })
}

/// Which node publication `j` of a client goes to.
#[derive(Debug, Clone)]
pub enum Nodes {
    /// Every publication to this node; publication `index` is made by
    /// client `index % accounts`, so the phase's publications go round
    /// the accounts.
    One(String),
    /// Each client publishes once to each of `count` nodes
    /// `QUIET_NODE_PREFIX<j>`.
    Quiet(usize),
}

/// What the clients do in one phase.
#[derive(Debug, Clone)]
pub struct Job {
    pub phase: u32,
    pub nodes: Nodes,
    pub accounts: usize,
    /// Publications of the phase in all (`Nodes::One`).
    pub total: u64,
    /// Pacing: publication `index` is due at `start_ns + index × gap_ns`;
    /// `None`: all at once (within the window).
    pub pace: Option<(u64, u64)>,
    pub window: usize,
    /// Stanza each client sends first (the initial presence with caps).
    pub first: Option<String>,
    /// Times a refused publication is made again before it counts as an
    /// error (set-up phases: ejabberd refuses some of many publications
    /// that create nodes at the same moment).
    pub retries: u32,
}

impl Job {
    /// Publications client `k` makes.
    pub fn count_for(&self, k: usize) -> u64 {
        match self.nodes {
            Nodes::One(_) => {
                let (k, n) = (k as u64, self.accounts as u64);
                if k >= self.total {
                    0
                } else {
                    (self.total - k).div_ceil(n)
                }
            }
            Nodes::Quiet(count) => count as u64,
        }
    }

    /// The phase-wide index of client `k`'s publication `j`.
    fn index(&self, k: usize, j: u64) -> u64 {
        match self.nodes {
            Nodes::One(_) => k as u64 + j * self.accounts as u64,
            Nodes::Quiet(count) => k as u64 * count as u64 + j,
        }
    }

    fn due(&self, index: u64) -> u64 {
        self.pace.map_or(0, |(start, gap)| {
            start.saturating_add(index.saturating_mul(gap))
        })
    }

    fn publish(&self, j: u64, index: u64, now: u64, out: &mut Vec<u8>) {
        let node = match &self.nodes {
            Nodes::One(node) => xml::escape(node),
            Nodes::Quiet(_) => format!("{QUIET_NODE_PREFIX}{j}"),
        };
        out.extend_from_slice(
            format!(
                "<iq type='set' id='p{}-{j}'><pubsub xmlns='{NS_PUBSUB}'><publish node='{node}'>\
                 <item id='i{}-{index}'>{}</item></publish></pubsub></iq>",
                self.phase,
                self.phase,
                payload(self.phase, index, now)
            )
            .as_bytes(),
        );
    }
}

/// What the clients of a phase count together.
pub struct Shared {
    /// No more publications (the phase's time is up).
    pub stop: AtomicBool,
    pub sent: AtomicU64,
    pub published: AtomicU64,
    pub errors: AtomicU64,
    /// Refused publications made again (`Job::retries`).
    pub retried: AtomicU64,
    /// Notifications of this phase, each (publication, receiver) once.
    pub notifications: AtomicU64,
    /// Further copies of a notification a receiver already had.
    pub duplicates: AtomicU64,
    /// Notifications of another phase (late ones of an earlier phase).
    pub stray: AtomicU64,
    pub disco_answered: AtomicU64,
    pub iqs_answered: AtomicU64,
    pub subscriptions_approved: AtomicU64,
    /// `now_ns` of the last notification and of the last publish result.
    pub last_notification_ns: AtomicU64,
    pub last_result_ns: AtomicU64,
    pub latency: Mutex<Histogram>,
    /// Notifications of each publication (`Nodes::One`).
    pub per_publication: Vec<AtomicU16>,
    /// Notifications each client received, and publications it made that
    /// the server accepted.
    pub received: Vec<AtomicU64>,
    pub accepted: Vec<AtomicU64>,
    pub error_samples: Mutex<Vec<String>>,
}

impl Shared {
    pub fn new(job: &Job) -> Shared {
        let per = match job.nodes {
            Nodes::One(_) => job.total as usize,
            Nodes::Quiet(_) => 0,
        };
        Shared {
            stop: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            published: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            notifications: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            stray: AtomicU64::new(0),
            disco_answered: AtomicU64::new(0),
            iqs_answered: AtomicU64::new(0),
            subscriptions_approved: AtomicU64::new(0),
            last_notification_ns: AtomicU64::new(0),
            last_result_ns: AtomicU64::new(0),
            latency: Mutex::new(Histogram::new()),
            per_publication: (0..per).map(|_| AtomicU16::new(0)).collect(),
            received: (0..job.accounts).map(|_| AtomicU64::new(0)).collect(),
            accepted: (0..job.accounts).map(|_| AtomicU64::new(0)).collect(),
            error_samples: Mutex::new(Vec::new()),
        }
    }

    pub fn load(a: &AtomicU64) -> u64 {
        a.load(Ordering::Relaxed)
    }

    fn sample(&self, what: String) {
        if let Ok(mut v) = self.error_samples.lock()
            && v.len() < 5
        {
            v.push(what);
        }
    }
}

/// What an error stanza says: its `<error/>` (servers echo the payload
/// before it), or its start.
fn error_of(el: &[u8]) -> String {
    let at = xml::find_seq(b"<error", el, 0).unwrap_or(0);
    String::from_utf8_lossy(&el[at..])
        .chars()
        .take(300)
        .collect()
}

/// The id of a publication's iq in `phase` (`p<phase>-<j>`): is it one?
fn is_publish_answer(id: &[u8], prefix: &[u8]) -> bool {
    id.starts_with(prefix)
}

/// A presence subscription request is approved at once; any presence
/// error is noted.
pub fn answer_presence(el: &[u8], out: &mut Vec<u8>) -> Option<&'static str> {
    let ty = xml::start_tag_attr(el, "type")?;
    match ty {
        b"subscribe" => {
            let from = xml::start_tag_attr(el, "from")?;
            out.extend_from_slice(b"<presence type='subscribed' to='");
            out.extend_from_slice(from);
            out.extend_from_slice(b"'/>");
            Some("subscribe")
        }
        b"subscribed" => Some("subscribed"),
        b"error" => Some("error"),
        b"unsubscribed" => Some("unsubscribed"),
        _ => None,
    }
}

/// Runs client `k` (its account's index) through `job` until `done`
/// closes; gives the connection back unless its stream broke.
pub async fn client(
    mut conn: Conn,
    k: usize,
    job: Arc<Job>,
    info: Arc<Info>,
    shared: Arc<Shared>,
    done: smol::channel::Receiver<()>,
) -> (Option<Conn>, Result<(), ClientError>) {
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    if let Some(first) = &job.first {
        out.extend_from_slice(first.as_bytes());
    }
    let mine = job.count_for(k);
    let prefix = format!("p{}-", job.phase).into_bytes();
    let mut next = 0u64;
    let mut outstanding = 0usize;
    // Refused publications to make again, and the attempts of each.
    let mut again: Vec<u64> = Vec::new();
    let mut attempts: std::collections::HashMap<u64, u32> = std::collections::HashMap::new();
    let mut local = Histogram::new();
    // The publications this client was notified of in this phase.
    let mut seen: HashSet<u64> = HashSet::new();
    let result: Result<(), ClientError> = async {
        loop {
            let now = now_ns();
            let (mut got, mut answered_ok) = (0u64, 0u64);
            while let Some(frame) = conn.next_frame()? {
                let (a, b) = match frame {
                    Frame::Element(a, b) => (a, b),
                    Frame::End => return Err(ClientError::Closed("pep")),
                    Frame::Header(..) => continue,
                };
                let el = conn.bytes(a, b);
                match xml::local_name(el) {
                    b"message" => {
                        if let Some(m) = mark(el) {
                            if m.phase != job.phase {
                                shared.stray.fetch_add(1, Ordering::Relaxed);
                            } else if seen.insert(m.index) {
                                local.record(now.saturating_sub(m.sent_ns));
                                got += 1;
                                if let Some(c) = shared.per_publication.get(m.index as usize) {
                                    c.fetch_add(1, Ordering::Relaxed);
                                }
                            } else {
                                shared.duplicates.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    b"iq" => {
                        let ty = xml::start_tag_attr(el, "type").unwrap_or_default();
                        let id = xml::start_tag_attr(el, "id").unwrap_or_default();
                        if (ty == b"result" || ty == b"error") && is_publish_answer(id, &prefix) {
                            outstanding = outstanding.saturating_sub(1);
                            let j = std::str::from_utf8(&id[prefix.len()..])
                                .ok()
                                .and_then(|j| j.parse::<u64>().ok());
                            let tried = j.map_or(u32::MAX, |j| *attempts.entry(j).or_insert(0));
                            if ty == b"result" {
                                answered_ok += 1;
                            } else if let Some(j) = j.filter(|_| tried < job.retries) {
                                attempts.insert(j, tried + 1);
                                again.push(j);
                                shared.retried.fetch_add(1, Ordering::Relaxed);
                            } else {
                                shared.errors.fetch_add(1, Ordering::Relaxed);
                                shared.sample(error_of(el));
                            }
                        } else if let Some(answer) = caps::answer_iq(&info, el) {
                            if caps::is_disco_info_get(el) {
                                shared.disco_answered.fetch_add(1, Ordering::Relaxed);
                            } else {
                                shared.iqs_answered.fetch_add(1, Ordering::Relaxed);
                            }
                            out.extend_from_slice(answer.as_bytes());
                        }
                    }
                    b"presence" => match answer_presence(el, &mut out) {
                        Some("subscribe") => {
                            shared
                                .subscriptions_approved
                                .fetch_add(1, Ordering::Relaxed);
                        }
                        Some("error") => shared.sample(error_of(el)),
                        _ => {}
                    },
                    _ => {}
                }
            }
            if got > 0 {
                shared.notifications.fetch_add(got, Ordering::Relaxed);
                shared
                    .last_notification_ns
                    .fetch_max(now, Ordering::Relaxed);
                if let Some(r) = shared.received.get(k) {
                    r.fetch_add(got, Ordering::Relaxed);
                }
            }
            if answered_ok > 0 {
                shared.published.fetch_add(answered_ok, Ordering::Relaxed);
                shared.last_result_ns.fetch_max(now, Ordering::Relaxed);
                if let Some(a) = shared.accepted.get(k) {
                    a.fetch_add(answered_ok, Ordering::Relaxed);
                }
            }
            while outstanding < job.window
                && let Some(j) = again.pop()
            {
                job.publish(j, job.index(k, j), now_ns(), &mut out);
                outstanding += 1;
            }
            let mut wake = None;
            if next < mine && !shared.stop.load(Ordering::Relaxed) {
                let now = now_ns();
                while next < mine && outstanding < job.window {
                    let index = job.index(k, next);
                    let due = job.due(index);
                    if due > now {
                        wake = Some(due);
                        break;
                    }
                    job.publish(next, index, now_ns(), &mut out);
                    next += 1;
                    outstanding += 1;
                    shared.sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            if !out.is_empty() {
                conn.send(&out).await?;
                out.clear();
            }
            let go_on = match wake {
                None => conn.fill_or_stop(&done).await?,
                Some(at) => {
                    let timer = async {
                        smol::Timer::after(Duration::from_nanos(at.saturating_sub(now_ns()))).await;
                        Ok(true)
                    };
                    futures_lite::future::or(conn.fill_or_stop(&done), timer).await?
                }
            };
            if !go_on {
                return Ok(());
            }
        }
    }
    .await;
    if let Ok(mut h) = shared.latency.lock() {
        h.merge(&local);
    }
    match result {
        Ok(()) => (Some(conn), Ok(())),
        Err(e) => (None, Err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_round_trip_and_bounces_do_not_count() {
        let el = format!(
            "<message from='a@localhost' to='b@localhost/pep' type='headline' id='x'>\
             <event xmlns='http://jabber.org/protocol/pubsub#event'><items node='{NS_TUNE}'>\
             <item id='i1'>{}</item></items></event></message>",
            payload(3, 77, 123_456)
        );
        assert_eq!(
            mark(el.as_bytes()),
            Some(Mark {
                phase: 3,
                index: 77,
                sent_ns: 123_456
            })
        );
        let bounce = el.replace("type='headline'", "type='error'");
        assert_eq!(mark(bounce.as_bytes()), None);
        assert_eq!(mark(b"<message><body>P 1 2 3</body></message>"), None);
    }

    #[test]
    fn publications_go_round_the_accounts() {
        let job = Job {
            phase: 1,
            nodes: Nodes::One(NS_TUNE.into()),
            accounts: 4,
            total: 10,
            pace: Some((1000, 10)),
            window: 2,
            first: None,
            retries: 0,
        };
        let counts: Vec<u64> = (0..4).map(|k| job.count_for(k)).collect();
        assert_eq!(counts, vec![3, 3, 2, 2]);
        assert_eq!(job.index(1, 2), 9);
        assert_eq!(job.due(9), 1090);
        let few = Job {
            total: 2,
            ..job.clone()
        };
        assert_eq!((few.count_for(1), few.count_for(2)), (1, 0));
        let quiet = Job {
            nodes: Nodes::Quiet(10),
            pace: None,
            ..job
        };
        assert_eq!(quiet.count_for(3), 10);
        assert_eq!(quiet.index(3, 4), 34);
        assert_eq!(quiet.due(34), 0);
        let mut out = Vec::new();
        quiet.publish(4, 34, 5, &mut out);
        let s = String::from_utf8(out).expect("utf-8");
        assert!(s.contains("node='urn:perch-load:pep:quiet:4'"), "{s}");
        assert!(s.contains("id='p1-4'") && s.contains("P 1 34 5"), "{s}");
    }

    #[test]
    fn subscription_requests_are_approved() {
        let mut out = Vec::new();
        assert_eq!(
            answer_presence(b"<presence type='subscribe' from='a@b'/>", &mut out),
            Some("subscribe")
        );
        assert_eq!(out, b"<presence type='subscribed' to='a@b'/>");
        assert_eq!(answer_presence(b"<presence from='a@b/c'/>", &mut out), None);
    }
}
