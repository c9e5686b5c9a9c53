//! An in-process server without sockets for unit tests of the delivery
//! rules: accounts, bound sessions whose outboxes a test reads, and the
//! offline store.

use std::rc::Rc;

use crate::config::Config;
use crate::jid::Jid;
use crate::server::Server;
use crate::session::{Batch, Outbox, Session};
use crate::store::Store;
use crate::xml::{Element, NS_CLIENT};

use super::TempDir;

pub struct World {
    pub server: Rc<Server>,
    ex: &'static smol::LocalExecutor<'static>,
    _dir: TempDir,
}

impl World {
    /// A server for `localhost` (MUC on `conference.localhost`) with
    /// `accounts` (password "pw") and `extra` appended to its configuration.
    pub fn new(accounts: &[&str], extra: &str) -> World {
        let dir = TempDir::new("world");
        let ex: &'static smol::LocalExecutor<'static> =
            Box::leak(Box::new(smol::LocalExecutor::new()));
        let mut store = Store::open(&dir.path().join("db.redb"), 1 << 20).expect("open");
        store.start_committer(ex);
        let config = Config::from_toml_str(
            &format!("[[host]]\ndomain = \"localhost\"\nmuc = \"conference.localhost\"\n{extra}"),
            "test",
        )
        .expect("config");
        let world = World {
            server: Server::new(config, store),
            ex,
            _dir: dir,
        };
        for user in accounts {
            let creds = crate::sasl::Credentials::derive("pw", 4096).expect("derive");
            let accounts = world.server.store().accounts();
            world
                .block_on(accounts.create(user, &creds))
                .expect("create");
        }
        world
    }

    pub fn block_on<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        smol::block_on(self.ex.run(f))
    }

    /// A bound session; available with `priority` when given.
    pub fn session(&self, full: &str, priority: Option<i8>) -> Rc<Session> {
        let jid = Jid::parse(full).expect("jid");
        let session = self
            .server
            .bind(&jid.to_bare(), jid.resource(), Outbox::new())
            .expect("bind");
        if let Some(p) = priority {
            session.priority.set(p);
            *session.presence.borrow_mut() = Some(Element::new("presence", NS_CLIENT));
        }
        session
    }

    /// The messages in `account`'s offline storage, once every write is on
    /// disk.
    pub fn offline(&self, account: &str) -> Vec<String> {
        self.block_on(self.server.store().flush());
        crate::store::offline::read_after(self.server.store(), account, 0)
            .expect("read")
            .into_iter()
            .map(|(_, xml)| String::from_utf8(xml).expect("utf-8"))
            .collect()
    }
}

/// What `session` received since the last call.
pub fn received(session: &Session) -> String {
    let mut batch = Batch::default();
    session.outbox.drain(&mut batch);
    String::from_utf8(batch.bytes().to_vec()).expect("utf-8")
}
