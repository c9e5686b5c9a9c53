//! The app server of `push`: an XMPP account's client (its full JID is
//! what the offline accounts registered) that answers every notification
//! (XEP-0357 §7: a pubsub publish) with a result and tells the sender
//! waiting for it. The notifications it reads are counted here.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::conn::{ClientError, Conn};
use crate::ctx::now_ns;
use crate::histogram::Histogram;
use crate::xml::{self, Frame};

const NS_PUBSUB: &str = "http://jabber.org/protocol/pubsub";
const NS_PUSH: &str = "urn:xmpp:push:0";
const NS_DATA: &str = "jabber:x:data";

/// What one phase's senders and the app server share.
pub struct Board {
    /// Per offline account: when its message in flight left (0: none).
    pub sent_ns: Vec<AtomicU64>,
    /// Per sender: where the app server says a notification arrived.
    pub wake: Vec<smol::channel::Sender<usize>>,
    /// Message sent to notification received.
    pub latency: Mutex<Histogram>,
    pub notifications: AtomicU64,
    /// The sum of the notifications' `message-count`.
    pub counted_messages: AtomicU64,
    /// Notifications for no message in flight, or unreadable.
    pub unexpected: AtomicU64,
    /// When the last notification arrived.
    pub last_ns: AtomicU64,
}

impl Board {
    pub fn new(accounts: usize, wake: Vec<smol::channel::Sender<usize>>) -> Board {
        Board {
            sent_ns: (0..accounts).map(|_| AtomicU64::new(0)).collect(),
            wake,
            latency: Mutex::new(Histogram::new()),
            notifications: AtomicU64::new(0),
            counted_messages: AtomicU64::new(0),
            unexpected: AtomicU64::new(0),
            last_ns: AtomicU64::new(0),
        }
    }

    /// The sender that owns offline account `i`.
    pub fn owner(&self, i: usize) -> usize {
        i % self.wake.len().max(1)
    }

    /// A notification for account `i` standing for `count` messages.
    fn notified(&self, i: usize, count: u64) {
        let now = now_ns();
        self.notifications.fetch_add(1, Ordering::Relaxed);
        self.counted_messages.fetch_add(count, Ordering::Relaxed);
        self.last_ns.fetch_max(now, Ordering::Relaxed);
        let sent = self
            .sent_ns
            .get(i)
            .map_or(0, |s| s.swap(0, Ordering::AcqRel));
        if sent == 0 {
            self.unexpected.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Ok(mut h) = self.latency.lock() {
            h.record(now.saturating_sub(sent));
        }
        if let Some(tx) = self.wake.get(self.owner(i)) {
            let _ = tx.try_send(i);
        }
    }
}

/// A notification, read: who it is for (by its node) and what it counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The iq's id and sender, for the answer.
    pub id: String,
    pub from: String,
    pub node: String,
    pub message_count: u64,
}

/// Reads a publish iq; `None` for anything else.
pub fn parse(el: &[u8]) -> Option<Notification> {
    if xml::local_name(el) != b"iq" || xml::start_tag_attr(el, "type") != Some(b"set") {
        return None;
    }
    xml::with_parsed(el, |iq| {
        let publish = child(child(iq, "pubsub", NS_PUBSUB)?, "publish", NS_PUBSUB)?;
        let form = child(
            child(child(publish, "item", NS_PUBSUB)?, "notification", NS_PUSH)?,
            "x",
            NS_DATA,
        )?;
        let count = form
            .children()
            .find(|f| f.attribute("var") == Some("message-count"))
            .and_then(|f| child(f, "value", NS_DATA))
            .and_then(|v| v.text())
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        Some(Notification {
            id: iq.attribute("id")?.to_string(),
            from: iq.attribute("from")?.to_string(),
            node: publish.attribute("node")?.to_string(),
            message_count: count,
        })
    })
    .ok()
    .flatten()
}

fn child<'a, 'i>(
    n: roxmltree::Node<'a, 'i>,
    name: &str,
    ns: &str,
) -> Option<roxmltree::Node<'a, 'i>> {
    n.children()
        .find(|c| c.tag_name().name() == name && c.tag_name().namespace() == Some(ns))
}

/// The node of offline account `i` (and back).
pub fn node(i: usize) -> String {
    format!("n{i}")
}

fn account_of(node: &str) -> Option<usize> {
    node.strip_prefix('n')?.parse().ok()
}

/// Answers notifications until `stop` fires; returns the connection.
pub async fn serve(
    mut conn: Conn,
    board: Arc<Board>,
    stop: smol::channel::Receiver<()>,
) -> Result<Conn, ClientError> {
    let mut answers = Vec::new();
    loop {
        answers.clear();
        while let Some(frame) = conn.next_frame()? {
            match frame {
                Frame::Element(a, b) => {
                    let Some(n) = parse(conn.bytes(a, b)) else {
                        continue;
                    };
                    answers.extend_from_slice(
                        format!(
                            "<iq type='result' to='{}' id='{}'/>",
                            xml::escape(&n.from),
                            xml::escape(&n.id)
                        )
                        .as_bytes(),
                    );
                    match account_of(&n.node) {
                        Some(i) => board.notified(i, n.message_count),
                        None => {
                            board.unexpected.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Frame::End => return Err(ClientError::Closed("app server")),
                Frame::Header(..) => {}
            }
        }
        if !answers.is_empty() {
            conn.send(&answers).await?;
        }
        if !conn.fill_or_stop(&stop).await? {
            return Ok(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_are_read_and_other_stanzas_are_not() {
        let iq = format!(
            "<iq type='set' from='push3@localhost' to='app@localhost/app' id='push-7'>\
             <pubsub xmlns='{NS_PUBSUB}'><publish node='n2'><item><notification xmlns='{NS_PUSH}'>\
             <x xmlns='{NS_DATA}' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field>\
             <field var='message-count'><value>3</value></field></x></notification></item></publish></pubsub></iq>"
        );
        assert_eq!(
            parse(iq.as_bytes()),
            Some(Notification {
                id: "push-7".into(),
                from: "push3@localhost".into(),
                node: "n2".into(),
                message_count: 3,
            })
        );
        assert_eq!(parse(b"<iq type='result' id='x'/>"), None);
        assert_eq!(parse(b"<message><body>hi</body></message>"), None);
        assert_eq!(account_of(&node(41)), Some(41));
        assert_eq!(account_of("x1"), None);
    }

    #[test]
    fn a_notification_wakes_the_owner_once() {
        let (tx0, rx0) = smol::channel::unbounded();
        let (tx1, rx1) = smol::channel::unbounded();
        let board = Board::new(4, vec![tx0, tx1]);
        board.sent_ns[3].store(now_ns().max(1), Ordering::Relaxed);
        board.notified(3, 1);
        assert_eq!(rx1.try_recv(), Ok(3));
        assert!(rx0.try_recv().is_err());
        board.notified(3, 1);
        assert_eq!(board.unexpected.load(Ordering::Relaxed), 1);
        assert_eq!(board.notifications.load(Ordering::Relaxed), 2);
        assert_eq!(board.latency.lock().map(|h| h.count()).unwrap_or(0), 1);
    }
}
