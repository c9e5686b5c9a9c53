//! The route table: which part of the server answers for a domain.
//!
//! A destination is one of three kinds. A *user host* holds accounts
//! (roster, presence, offline storage: `im`). A *service* is anything
//! hosted under a domain of its own behind the [`Service`] trait: the
//! multi-user chat service today, pubsub, upload and external components
//! later; adding one is adding an entry, not a branch in the router. Every
//! other domain is *remote*, reached (once federation exists) over a
//! server-to-server link: see `router::remote`.

use std::collections::HashMap;
use std::rc::Rc;

use crate::fasthash::FastMap;

use crate::env::Service;

/// Where a domain's stanzas go.
#[derive(Clone)]
pub enum Route {
    /// A domain with accounts on this server.
    UserHost,
    /// A hosted service; `parent` is the user host that lists it.
    Service {
        service: Rc<dyn Service>,
        parent: Box<str>,
    },
}

/// The domains this server answers for. Every domain not in the table is
/// remote.
#[derive(Clone, Default)]
pub struct Routes {
    /// Looked up for every stanza; the keys come from the configuration.
    by_domain: FastMap<Box<str>, Route>,
    /// The services each user host lists, in the order they were added.
    services_of: HashMap<Box<str>, Vec<Box<str>>>,
    /// Where every other domain goes: federation, when it is set up.
    remote: Option<Rc<dyn Service>>,
}

/// A domain cannot be added twice.
#[derive(Debug, PartialEq, Eq)]
pub struct Taken(pub String);

impl std::fmt::Display for Taken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the domain {} is already served", self.0)
    }
}

impl Routes {
    pub fn add_user_host(&mut self, domain: &str) -> Result<(), Taken> {
        self.insert(domain, Route::UserHost)
    }

    /// Adds `service` under `domain`, listed by the user host `parent`.
    pub fn add_service(
        &mut self,
        domain: &str,
        parent: &str,
        service: Rc<dyn Service>,
    ) -> Result<(), Taken> {
        self.insert(
            domain,
            Route::Service {
                service,
                parent: parent.into(),
            },
        )?;
        self.services_of
            .entry(parent.into())
            .or_default()
            .push(domain.into());
        Ok(())
    }

    fn insert(&mut self, domain: &str, route: Route) -> Result<(), Taken> {
        if self.by_domain.contains_key(domain) {
            return Err(Taken(domain.to_string()));
        }
        self.by_domain.insert(domain.into(), route);
        Ok(())
    }

    /// Makes `service` the route of every domain not in the table.
    pub fn set_remote(&mut self, service: Rc<dyn Service>) {
        self.remote = Some(service);
    }

    /// The route of remote domains, if federation is set up.
    pub fn remote(&self) -> Option<&Rc<dyn Service>> {
        self.remote.as_ref()
    }

    /// Every domain the table holds.
    pub fn domains(&self) -> impl Iterator<Item = &str> {
        self.by_domain.keys().map(|d| &**d)
    }

    /// The route for `domain`; `None` means a remote domain.
    pub fn get(&self, domain: &str) -> Option<&Route> {
        self.by_domain.get(domain)
    }

    pub fn is_user_host(&self, domain: &str) -> bool {
        matches!(self.get(domain), Some(Route::UserHost))
    }

    /// Whether `domain` is served here, by a user host or a service.
    pub fn is_local(&self, domain: &str) -> bool {
        self.by_domain.contains_key(domain)
    }

    /// The services listed by the user host `domain`: (domain, name).
    pub fn services_of<'a>(&'a self, domain: &str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.services_of
            .get(domain)
            .into_iter()
            .flatten()
            .filter_map(|d| match self.by_domain.get(d) {
                Some(Route::Service { service, .. }) => Some((&**d, service.name())),
                _ => None,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::Env;
    use crate::jid::Jid;
    use crate::xml::Element;

    struct Echo;

    impl Service for Echo {
        fn name(&self) -> &str {
            "Echo"
        }
        fn handle(&self, _: &Env, _: Element, _: &Jid) {}
    }

    #[test]
    fn each_domain_has_one_route() {
        let mut routes = Routes::default();
        routes.add_user_host("example.org").unwrap();
        routes
            .add_service("echo.example.org", "example.org", Rc::new(Echo))
            .unwrap();
        assert!(routes.is_user_host("example.org"));
        assert!(!routes.is_user_host("echo.example.org"));
        assert!(routes.is_local("echo.example.org"));
        assert!(routes.get("example.net").is_none(), "remote");
        assert_eq!(
            routes.add_user_host("echo.example.org"),
            Err(Taken("echo.example.org".into()))
        );
        assert_eq!(
            routes.services_of("example.org").collect::<Vec<_>>(),
            [("echo.example.org", "Echo")]
        );
        assert_eq!(routes.services_of("example.net").count(), 0);
    }
}
