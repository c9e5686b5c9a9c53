//! The shared state of federation links: what the router, the link's task
//! and `perch s2s list` see of one outgoing link (its queue, the stanzas
//! held while it connects, its commands) and of one incoming link.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Instant, SystemTime};

use smol::channel::{Receiver, Sender};

use crate::outbox::Outbox;
use crate::stream::s2s_in::AuthMethod;
use crate::xml::Element;

/// What others ask of an outgoing link's task.
pub enum LinkCommand {
    /// Send `<db:verify/>` for an incoming stream's dialback key and
    /// answer on `reply` (`None`: no answer).
    Verify {
        stream_id: String,
        key: String,
        reply: Sender<Option<bool>>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Connecting,
    Ready,
    Closed,
}

pub struct OutLink {
    pub local: String,
    pub remote: String,
    /// Stanzas for the remote domain once the link is authenticated.
    pub outbox: Rc<Outbox>,
    state: Cell<State>,
    /// Stanzas given while the link connects, in order.
    held: RefCell<Vec<Element>>,
    commands: Sender<LinkCommand>,
    pub started: Instant,
    pub started_at: SystemTime,
    stanzas_out: Cell<u64>,
    method: Cell<Option<AuthMethod>>,
    /// The address connected to, once connected.
    address: Cell<Option<SocketAddr>>,
}

impl OutLink {
    pub fn new(local: &str, remote: &str) -> (OutLink, Receiver<LinkCommand>) {
        let (commands, receiver) = smol::channel::unbounded();
        let link = OutLink {
            local: local.to_string(),
            remote: remote.to_string(),
            outbox: Outbox::new(),
            state: Cell::new(State::Connecting),
            held: RefCell::new(Vec::new()),
            commands,
            started: Instant::now(),
            started_at: SystemTime::now(),
            stanzas_out: Cell::new(0),
            method: Cell::new(None),
            address: Cell::new(None),
        };
        (link, receiver)
    }

    pub fn is_ready(&self) -> bool {
        self.state.get() == State::Ready
    }

    pub fn is_closed(&self) -> bool {
        self.state.get() == State::Closed
    }

    pub fn count_out(&self) {
        self.stanzas_out.set(self.stanzas_out.get() + 1);
    }

    pub fn stanzas_out(&self) -> u64 {
        self.stanzas_out.get()
    }

    pub fn method(&self) -> Option<AuthMethod> {
        self.method.get()
    }

    pub fn address(&self) -> Option<SocketAddr> {
        self.address.get()
    }

    pub fn connected_to(&self, address: SocketAddr) {
        self.address.set(Some(address));
    }

    /// Holds `stanza` until the link is ready; false when `max` are held.
    pub fn hold(&self, stanza: Element, max: usize) -> bool {
        let mut held = self.held.borrow_mut();
        if held.len() >= max {
            return false;
        }
        held.push(stanza);
        true
    }

    /// The link is authenticated: what it held goes into its queue, first.
    pub fn ready(&self, method: AuthMethod) {
        self.method.set(Some(method));
        self.state.set(State::Ready);
        let held = std::mem::take(&mut *self.held.borrow_mut());
        for stanza in &held {
            self.count_out();
            self.outbox.send(stanza);
        }
    }

    /// The link is over: what it still holds, to be returned with errors.
    pub fn close(&self) -> Vec<Element> {
        self.state.set(State::Closed);
        std::mem::take(&mut *self.held.borrow_mut())
    }

    pub fn command(&self, command: LinkCommand) {
        let _ = self.commands.try_send(command);
    }
}

/// An incoming link: who connected and what it proved.
pub struct IncomingLink {
    pub address: SocketAddr,
    pub started: Instant,
    pub started_at: SystemTime,
    /// The first (peer, local) pair the peer authenticated.
    domains: RefCell<Option<(String, String)>>,
    method: Cell<Option<AuthMethod>>,
    stanzas_in: Cell<u64>,
}

impl IncomingLink {
    pub fn new(address: SocketAddr) -> IncomingLink {
        IncomingLink {
            address,
            started: Instant::now(),
            started_at: SystemTime::now(),
            domains: RefCell::new(None),
            method: Cell::new(None),
            stanzas_in: Cell::new(0),
        }
    }

    /// The first domain the peer authenticated as.
    pub fn domain(&self) -> Option<String> {
        self.domains.borrow().as_ref().map(|(peer, _)| peer.clone())
    }

    /// The first (peer, local) pair the peer authenticated.
    pub fn domains(&self) -> Option<(String, String)> {
        self.domains.borrow().clone()
    }

    pub fn authenticated(&self, peer: &str, local: &str, method: AuthMethod) {
        let mut known = self.domains.borrow_mut();
        if known.is_none() {
            *known = Some((peer.to_string(), local.to_string()));
            self.method.set(Some(method));
        }
    }

    pub fn method(&self) -> Option<AuthMethod> {
        self.method.get()
    }

    pub fn count_in(&self) {
        self.stanzas_in.set(self.stanzas_in.get() + 1);
    }

    pub fn stanzas_in(&self) -> u64 {
        self.stanzas_in.get()
    }
}
