//! Federation: the route table's entry for every remote domain. A stanza
//! for a remote domain goes to the outgoing link from its sender's local
//! domain to that domain (one link per pair), which is created on first
//! use and holds what it is given while it connects, up to `[s2s]
//! max_pending_stanzas`; once authenticated, stanzas go into the link's
//! outbound queue like a session's. A link that cannot be set up returns
//! what it held with the RFC 6120 §8.3.3 error its failure calls for.
//!
//! The links' sockets are in `net::s2s_out` and `net::s2s_in`; their
//! rules are the sans-I/O streams `stream::s2s_out` and `stream::s2s_in`.

pub mod admin;
pub mod link;

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use smol::channel::Receiver;

use crate::config::S2sConfig;
use crate::dns::Resolver;
use crate::env::{Env, Service};
use crate::jid::Jid;
use crate::net::s2s_tls::S2sTls;
use crate::stanza::{Condition, StanzaError};
use crate::stream::dialback::DialbackSecret;
use crate::xml::Element;

pub use link::{IncomingLink, LinkCommand, OutLink};

/// Links a remote server may hold open at once to us, besides `max_links`
/// overall, so one peer cannot take every slot.
pub const MAX_INCOMING_PER_DOMAIN: usize = 16;

pub struct Federation {
    pub config: S2sConfig,
    secret: DialbackSecret,
    /// Every domain this server answers for: stanzas from anything else
    /// are never sent out (no relaying).
    local_domains: Vec<String>,
    tls: RefCell<Option<Arc<S2sTls>>>,
    resolver: RefCell<Option<Rc<Resolver>>>,
    /// Outgoing links by (local domain, remote domain).
    outgoing: RefCell<HashMap<(String, String), Rc<OutLink>>>,
    /// Incoming links, for the limits and `perch s2s list`.
    incoming: RefCell<Vec<Rc<IncomingLink>>>,
    /// Whether our own certificate is valid for a local domain (then SASL
    /// EXTERNAL is worth offering to peers), by domain.
    own_cert_valid: RefCell<HashMap<String, bool>>,
    /// Runs a task on the server's executor; set when the server runs.
    spawner: RefCell<Option<Spawner>>,
    /// Starts an outgoing link's task (`net::s2s_out`, which depends on
    /// this module; injected so that this one does not depend on it).
    link_starter: RefCell<Option<LinkStarter>>,
}

/// Runs a task on the server's executor.
pub type Spawner = Rc<dyn Fn(Pin<Box<dyn Future<Output = ()>>>)>;

/// Starts the task of a new outgoing link.
pub type LinkStarter = Rc<dyn Fn(Rc<OutLink>, Receiver<LinkCommand>)>;

impl Federation {
    pub fn new(
        config: &S2sConfig,
        secret: DialbackSecret,
        local_domains: Vec<String>,
    ) -> Federation {
        Federation {
            config: config.clone(),
            secret,
            local_domains,
            tls: RefCell::new(None),
            resolver: RefCell::new(None),
            outgoing: RefCell::new(HashMap::new()),
            incoming: RefCell::new(Vec::new()),
            own_cert_valid: RefCell::new(HashMap::new()),
            spawner: RefCell::new(None),
            link_starter: RefCell::new(None),
        }
    }

    /// What the links need from the running server: set once it runs.
    pub fn start(
        &self,
        spawner: Spawner,
        link_starter: LinkStarter,
        tls: Option<Arc<S2sTls>>,
        own_cert_valid: HashMap<String, bool>,
    ) {
        *self.spawner.borrow_mut() = Some(spawner);
        *self.link_starter.borrow_mut() = Some(link_starter);
        *self.tls.borrow_mut() = tls;
        *self.own_cert_valid.borrow_mut() = own_cert_valid;
    }

    pub fn tls(&self) -> Option<Arc<S2sTls>> {
        self.tls.borrow().clone()
    }

    pub fn resolver(&self) -> Rc<Resolver> {
        self.resolver
            .borrow_mut()
            .get_or_insert_with(|| {
                Rc::new(match self.config.dns_server {
                    Some(server) => Resolver::with_servers(vec![server]),
                    None => Resolver::system(),
                })
            })
            .clone()
    }

    pub fn dialback_key(&self, receiving: &str, originating: &str, stream_id: &str) -> String {
        self.secret.key(receiving, originating, stream_id)
    }

    pub fn is_local(&self, domain: &str) -> bool {
        self.local_domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain))
    }

    /// Whether our certificate for `local` would pass a peer's check
    /// (found at start-up).
    pub fn own_certificate_valid(&self, local: &str) -> bool {
        self.own_cert_valid
            .borrow()
            .get(local)
            .copied()
            .unwrap_or(false)
    }

    pub fn link_count(&self) -> usize {
        self.outgoing.borrow().len() + self.incoming.borrow().len()
    }

    pub fn outgoing_links(&self) -> Vec<Rc<OutLink>> {
        self.outgoing.borrow().values().cloned().collect()
    }

    pub fn incoming_links(&self) -> Vec<Rc<IncomingLink>> {
        self.incoming.borrow().clone()
    }

    /// Registers an incoming connection; `None` when the limits are
    /// reached.
    pub fn admit_incoming(&self, peer_address: std::net::SocketAddr) -> Option<Rc<IncomingLink>> {
        if self.link_count() >= self.config.max_links as usize {
            return None;
        }
        let link = Rc::new(IncomingLink::new(peer_address));
        self.incoming.borrow_mut().push(link.clone());
        Some(link)
    }

    /// Whether another incoming link from `domain` is allowed.
    pub fn may_accept_from(&self, domain: &str) -> bool {
        self.incoming
            .borrow()
            .iter()
            .filter(|l| l.domain().as_deref() == Some(domain))
            .count()
            < MAX_INCOMING_PER_DOMAIN
    }

    pub fn incoming_ended(&self, link: &Rc<IncomingLink>) {
        self.incoming.borrow_mut().retain(|l| !Rc::ptr_eq(l, link));
    }

    /// The outgoing link ended: forget it (if it is still the one known).
    pub fn outgoing_ended(&self, link: &Rc<OutLink>) {
        let key = (link.local.clone(), link.remote.clone());
        let mut outgoing = self.outgoing.borrow_mut();
        if outgoing.get(&key).is_some_and(|l| Rc::ptr_eq(l, link)) {
            outgoing.remove(&key);
        }
    }

    /// The link from `local` to `remote`, created (and its connection
    /// started) if there is none.
    pub fn link(&self, local: &str, remote: &str) -> Result<Rc<OutLink>, NoLink> {
        let key = (local.to_ascii_lowercase(), remote.to_ascii_lowercase());
        if let Some(link) = self.outgoing.borrow().get(&key) {
            return Ok(link.clone());
        }
        if self.link_count() >= self.config.max_links as usize {
            return Err(NoLink::Limit);
        }
        let starter = self
            .link_starter
            .borrow()
            .clone()
            .ok_or(NoLink::NotRunning)?;
        let (link, commands) = OutLink::new(&key.0, &key.1);
        let link = Rc::new(link);
        self.outgoing.borrow_mut().insert(key, link.clone());
        starter(link.clone(), commands);
        Ok(link)
    }

    /// Asks the authoritative server of `originating` whether `key` is its
    /// dialback key for (receiving, originating, stream_id), over our link
    /// from `receiving` to it. `None`: it could not be asked in time.
    pub async fn verify(
        &self,
        receiving: &str,
        originating: &str,
        stream_id: &str,
        key: &str,
    ) -> Option<bool> {
        let link = self.link(receiving, originating).ok()?;
        let (reply, answer) = smol::channel::bounded(1);
        link.command(LinkCommand::Verify {
            stream_id: stream_id.to_string(),
            key: key.to_string(),
            reply,
        });
        let wait = Duration::from_secs(u64::from(self.config.connect_timeout_secs) * 2);
        futures_lite::future::or(async { answer.recv().await.ok().flatten() }, async {
            smol::Timer::after(wait).await;
            None
        })
        .await
    }

    /// Spawns `work` on the server's executor (a dialback verification
    /// an incoming link waits for without blocking its reads).
    pub fn spawn(&self, work: impl Future<Output = ()> + 'static) {
        let spawner = self.spawner.borrow().clone();
        if let Some(spawn) = spawner {
            spawn(Box::pin(work));
        }
    }
}

impl Service for Federation {
    fn name(&self) -> &str {
        "Federation"
    }

    fn handle(&self, env: &Env, stanza: Element, to: &Jid) {
        let remote = to.domain();
        let refuse = |condition: Condition, text: String| {
            if !is_probe(&stanza) {
                env.bounce(&stanza, StanzaError::new(condition).with_text(text));
            }
        };
        if !self.config.enabled {
            return refuse(
                Condition::RemoteServerNotFound,
                format!("{remote} is not reachable from this server (federation is off)"),
            );
        }
        if self.config.is_refused(remote) {
            return refuse(
                Condition::NotAllowed,
                format!("this server does not federate with {remote}"),
            );
        }
        let Some(local) = stanza
            .attr("from")
            .and_then(|f| Jid::parse(f).ok())
            .map(|f| f.domain().to_string())
            .filter(|d| self.is_local(d))
        else {
            // Only our own entities' stanzas leave: no relaying.
            return;
        };
        let link = match self.link(&local, remote) {
            Ok(link) => link,
            Err(NoLink::Limit) => {
                return refuse(
                    Condition::ResourceConstraint,
                    "this server has too many federation links open ([s2s] max_links)".to_string(),
                );
            }
            Err(NoLink::NotRunning) => {
                return refuse(
                    Condition::RemoteServerNotFound,
                    format!("{remote} is not reachable from this server"),
                );
            }
        };
        if link.is_ready() {
            link.count_out();
            env.hold.send(&link.outbox, &stanza);
            return;
        }
        if !link.hold(stanza.clone(), self.config.max_pending_stanzas as usize) {
            refuse(
                Condition::ResourceConstraint,
                format!("too many stanzas wait for the link to {remote}"),
            );
        }
    }
}

/// Why no outgoing link can be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoLink {
    /// `[s2s] max_links` are open.
    Limit,
    /// The server is not running (a test of the rules alone, or stopping).
    NotRunning,
}

fn is_probe(stanza: &Element) -> bool {
    &*stanza.name == "presence" && stanza.attr("type") == Some("probe")
}

/// Returns `held` stanzas with `error`, a probe or an error excepted (the
/// server's own question; an error about an error).
pub fn bounce_all(env: &Env, held: Vec<Element>, condition: Condition, text: &str) {
    for stanza in held {
        if is_probe(&stanza) {
            continue;
        }
        env.bounce(
            &stanza,
            StanzaError::new(condition).with_text(text.to_string()),
        );
    }
}
