//! External components (XEP-0114) as route table entries: each configured
//! `[[component]]` domain is a [`Service`] whose stanzas go into the
//! outbound queue of the component's connection while one is
//! authenticated, and are answered with `service-unavailable` while none is.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Instant;

use crate::config::ComponentConfig;
use crate::env::{Env, Service};
use crate::jid::Jid;
use crate::outbox::Outbox;
use crate::stanza::{Condition, StanzaError};
use crate::xml::Element;

/// One configured component and its connection, if any.
pub struct ComponentRoute {
    pub domain: String,
    secret: String,
    name: String,
    /// The authenticated connection's queue.
    outbox: RefCell<Option<Rc<Outbox>>>,
    /// When the current connection authenticated.
    since: Cell<Option<Instant>>,
    /// Stanzas routed to the component since the server started.
    pub delivered: Cell<u64>,
}

impl ComponentRoute {
    pub fn new(config: &ComponentConfig) -> ComponentRoute {
        ComponentRoute {
            domain: config.domain.clone(),
            secret: config.secret.clone(),
            name: config.name.clone(),
            outbox: RefCell::new(None),
            since: Cell::new(None),
            delivered: Cell::new(0),
        }
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Makes `outbox` the component's queue; false if another connection
    /// already serves the domain (XEP-0114 §3: `conflict`).
    pub fn attach(&self, outbox: &Rc<Outbox>) -> bool {
        let mut current = self.outbox.borrow_mut();
        if current.is_some() {
            return false;
        }
        *current = Some(outbox.clone());
        self.since.set(Some(Instant::now()));
        true
    }

    /// The connection with `outbox` ended.
    pub fn detach(&self, outbox: &Rc<Outbox>) {
        let mut current = self.outbox.borrow_mut();
        if current.as_ref().is_some_and(|o| Rc::ptr_eq(o, outbox)) {
            *current = None;
            self.since.set(None);
        }
    }

    pub fn connected_since(&self) -> Option<Instant> {
        self.since.get()
    }
}

impl Service for ComponentRoute {
    fn name(&self) -> &str {
        &self.name
    }

    fn handle(&self, env: &Env, stanza: Element, _to: &Jid) {
        let outbox = self.outbox.borrow().clone();
        match outbox {
            Some(outbox) => {
                self.delivered.set(self.delivered.get() + 1);
                env.hold.send(&outbox, &stanza);
            }
            None => env.bounce(
                &stanza,
                StanzaError::new(Condition::ServiceUnavailable)
                    .with_text(format!("{} is not connected", self.domain)),
            ),
        }
    }
}

/// The configured components, by domain.
#[derive(Default)]
pub struct Components {
    list: Vec<Rc<ComponentRoute>>,
}

impl Components {
    pub fn new(configs: &[ComponentConfig]) -> Components {
        Components {
            list: configs
                .iter()
                .map(|c| Rc::new(ComponentRoute::new(c)))
                .collect(),
        }
    }

    pub fn get(&self, domain: &str) -> Option<&Rc<ComponentRoute>> {
        self.list
            .iter()
            .find(|c| c.domain.eq_ignore_ascii_case(domain))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Rc<ComponentRoute>> {
        self.list.iter()
    }
}
