//! Re-reading the configuration while running (SIGHUP, `systemctl reload`).
//!
//! The log level, the limits and the TLS certificates (e.g. after a Let's
//! Encrypt renewal) change live, without dropping a connection. Everything
//! else (hosts, listeners, data directory, …) is reported as needing a
//! restart and keeps its running value. A configuration that fails to load
//! changes nothing.

use std::path::Path;
use std::rc::Rc;

use crate::config::Config;
use crate::net::tls::{HostCert, TlsSetup};
use crate::sd_notify::{self, Notifier};
use crate::server::Server;

/// What a reload did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Settings now in force with new values.
    pub applied: Vec<&'static str>,
    /// Settings whose new values wait for a restart.
    pub need_restart: Vec<&'static str>,
    /// Why the certificates could not be reloaded (the old ones stay).
    pub certificate_error: Option<String>,
}

/// Applies configuration changes to a running server. Made by
/// [`crate::run::Prepared::reloader`].
pub struct Reloader {
    pub(crate) server: Rc<Server>,
    pub(crate) tls: Option<Rc<TlsSetup>>,
    pub(crate) notifier: Option<Rc<Notifier>>,
}

impl Reloader {
    /// Reads the configuration again from `path` (the built-in defaults
    /// without one) and applies it; a file that does not load is logged and
    /// changes nothing.
    pub fn reload_from(&self, path: Option<&Path>) -> Option<Outcome> {
        log::info!("reloading the configuration");
        if let Some(n) = &self.notifier {
            n.reloading();
        }
        // A few small files: read on the loop, which a reload pauses for
        // a moment at most.
        let loaded = match path {
            Some(p) => Config::load(p),
            None => Ok(Config::default()),
        };
        let outcome = match loaded {
            Ok(config) => Some(self.apply(&config)),
            Err(e) => {
                log::error!("configuration not reloaded, the running one stays: {e}");
                None
            }
        };
        if let Some(n) = &self.notifier {
            n.ready(&sd_notify::status_line(&self.server));
        }
        outcome
    }

    /// Applies the live-changeable parts of `new` and logs what changed.
    pub fn apply(&self, new: &Config) -> Outcome {
        let running = &self.server.config();
        let mut outcome = Outcome {
            need_restart: restart_needed(running, new),
            ..Outcome::default()
        };
        if log::max_level() != new.log_level {
            crate::logger::init(new.log_level);
            outcome.applied.push("log_level");
        }
        if self.server.limits() != new.limits {
            self.server.set_limits(new.limits);
            outcome.applied.push("limits");
        }
        // Always set: `running` is the configuration the server started
        // with, which an earlier reload may have overridden.
        self.server.admins().set_configured(&new.admins);
        if running.admins != new.admins {
            outcome.applied.push("admins");
        }
        if let Some(tls) = &self.tls {
            match tls.reload(&certificate_hosts(running, new), &running.data_dir) {
                Ok(()) => outcome.applied.push("certificates"),
                Err(e) => outcome.certificate_error = Some(e.to_string()),
            }
        }
        if let Some(e) = &outcome.certificate_error {
            log::error!("certificates not reloaded, the old ones stay in use: {e}");
        }
        log::info!("reloaded: {}", list_or_nothing(&outcome.applied));
        if !outcome.need_restart.is_empty() {
            log::warn!(
                "changes to {} take effect after a restart",
                outcome.need_restart.join(", ")
            );
        }
        outcome
    }
}

fn list_or_nothing(items: &[&str]) -> String {
    if items.is_empty() {
        "nothing changed".to_string()
    } else {
        items.join(", ")
    }
}

/// The settings that differ between `running` and `new` but cannot change
/// while serving, by their config file names.
pub fn restart_needed(running: &Config, new: &Config) -> Vec<&'static str> {
    let hosts = |c: &Config| -> Vec<(String, Option<String>)> {
        c.hosts
            .iter()
            .map(|h| (h.domain.clone(), h.muc.clone()))
            .collect()
    };
    let mut out = Vec::new();
    if running.data_dir != new.data_dir {
        out.push("data_dir");
    }
    if hosts(running) != hosts(new) {
        out.push("host");
    }
    if running.listeners != new.listeners {
        out.push("listener");
    }
    if running.c2s != new.c2s {
        out.push("c2s");
    }
    if running.storage != new.storage {
        out.push("storage");
    }
    // Federation's policy and the components are read when the server
    // starts (links and route table entries are built from them).
    if running.s2s != new.s2s {
        out.push("s2s");
    }
    if running.components != new.components {
        out.push("component");
    }
    // The renewal task is started with the server.
    if running.acme != new.acme {
        out.push("acme");
    }
    out
}

/// The running hosts (which cannot change live) with the certificate files
/// `new` names for them, so a renewed or moved certificate is picked up.
pub fn certificate_hosts(running: &Config, new: &Config) -> Vec<HostCert> {
    running
        .hosts
        .iter()
        .map(|h| {
            let files = new.host(&h.domain).unwrap_or(h);
            // A certificate from ACME also answers for the service names.
            let acme = crate::acme::served(running, files);
            HostCert {
                domain: h.domain.clone(),
                extra_names: acme.as_ref().map_or_else(
                    || h.muc.iter().cloned().collect(),
                    |(_, names)| names.clone(),
                ),
                files: files
                    .certificate
                    .clone()
                    .zip(files.key.clone())
                    .or(acme.map(|(files, _)| files)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::from_toml_str(text, "test").expect("valid")
    }

    #[test]
    fn live_changes_need_no_restart() {
        let running = config("[[host]]\ndomain = \"a.example\"\n");
        let new = config(
            "log_level = \"debug\"\n[limits]\nmax_connections = 5\n\
             [[host]]\ndomain = \"a.example\"\ncertificate = \"/c.pem\"\nkey = \"/k.pem\"\n",
        );
        assert!(restart_needed(&running, &new).is_empty());
        let hosts = certificate_hosts(&running, &new);
        assert_eq!(hosts.len(), 1);
        assert_eq!(
            hosts[0].files,
            Some(("/c.pem".into(), "/k.pem".into())),
            "new certificate paths are used for a running host"
        );
        assert_eq!(
            hosts[0].extra_names,
            vec!["conference.a.example".to_string()]
        );
    }

    #[test]
    fn structural_changes_need_a_restart() {
        let running = config("[[host]]\ndomain = \"a.example\"\n");
        let new = config(
            "admins = [\"x@a.example\"]\n[c2s]\nkeepalive_secs = 60\n\
             [[host]]\ndomain = \"b.example\"\n\
             [[listener]]\nkind = \"c2s\"\nport = 5999\n",
        );
        assert_eq!(
            restart_needed(&running, &new),
            vec!["host", "listener", "c2s"]
        );
        // A host that disappeared keeps its running certificate files.
        let hosts = certificate_hosts(&running, &new);
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].domain, "a.example");
        assert_eq!(hosts[0].files, None);
    }

    #[test]
    fn federation_and_components_need_a_restart() {
        let running = config("[[host]]\ndomain = \"a.example\"\n");
        let new = config(
            "[[host]]\ndomain = \"a.example\"\n[s2s]\nsecure_auth = true\n\
             [[component]]\ndomain = \"irc.a.example\"\nsecret = \"0123456789abcdef\"\n",
        );
        assert_eq!(restart_needed(&running, &new), vec!["s2s", "component"]);
    }
}
