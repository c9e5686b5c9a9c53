//! HTTP File Upload (XEP-0363): a service on each host's upload domain
//! (`upload.<domain>`) gives accounts of this server a pair of URLs, one
//! to upload a file to (PUT) and one to share (GET); the HTTP listeners
//! serve both under `/upload/`.
//!
//! - `slot`: the request and the answers, sans-I/O;
//! - `token`: file ids, signed PUT URLs;
//! - `service`: the route table entry (disco, slots, quotas);
//! - `http`: the PUT, GET, HEAD and OPTIONS handlers the listener calls;
//! - `files`: the files on disk, written and removed off the event loop;
//! - `expiry`: the hourly sweep of expired files and abandoned slots;
//! - `admin`: `perch upload list` and `perch upload purge`.
//!
//! Records are in the store (`store::upload`); files are in
//! `{data_dir}/upload/{id}`, never under the client's file name.

pub mod admin;
pub mod expiry;
pub mod files;
pub mod http;
pub mod service;
pub mod slot;
pub mod token;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use ring::hmac;

use crate::config::Config;
use crate::store::Store;

/// The namespace of XEP-0363.
pub const NS_UPLOAD: &str = "urn:xmpp:http:upload:0";

/// The folder of the uploaded files, beside the database.
pub const DIR_NAME: &str = "upload";

/// The public base URL the upload URLs of `host` (a user host) start
/// with, as configured (a listener's port 0 is not known yet: see
/// [`Upload::base_for`]), without a trailing `/`; `None`: no HTTP listener
/// can serve them, and the service is not offered.
pub fn base_url(config: &Config, host: &str) -> Option<String> {
    config.http.base_url(&config.listeners, host)
}

/// Where the uploaded files are.
pub fn dir(config: &Config) -> PathBuf {
    config.data_dir.join(DIR_NAME)
}

/// The upload service's state, shared by the route table entry and the
/// HTTP handlers: the key that signs PUT URLs and the uploads under way.
pub struct Upload {
    key: hmac::Key,
    dir: PathBuf,
    /// Ids whose PUT is being received: a second PUT of one of them is a
    /// conflict, and the sweep leaves their files alone.
    active: RefCell<HashSet<String>>,
    /// The base URL of each user host, from the listeners as bound.
    bases: RefCell<HashMap<String, String>>,
}

impl Upload {
    /// The state for `config`, or `None` when no host offers the service
    /// (none has an upload domain, or no HTTP listener serves the URLs).
    pub fn new(config: &Config, store: &Store) -> Option<Rc<Upload>> {
        let offered = config
            .hosts
            .iter()
            .any(|h| h.upload.is_some() && base_url(config, &h.domain).is_some());
        if !offered {
            return None;
        }
        let secret = store.secret("upload-hmac").unwrap_or_else(|e| {
            // PUT URLs handed out before a restart then fail; clients ask
            // for a new slot. The service still runs.
            log::error!("cannot keep the upload signing secret: {e}");
            let fresh: [u8; 32] = crate::ids::Ids::default().random_bytes();
            fresh.to_vec()
        });
        Some(Rc::new(Upload::with_key(&secret, dir(config))))
    }

    /// The state with the signing key `secret` and files in `dir` (tests).
    pub fn with_key(secret: &[u8], dir: PathBuf) -> Upload {
        Upload {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            dir,
            active: RefCell::new(HashSet::new()),
            bases: RefCell::new(HashMap::new()),
        }
    }

    /// Learns the listeners as bound: the URLs handed out name their
    /// real ports (port 0 in the file is a test's ephemeral port).
    pub fn set_listeners(&self, config: &Config, bound: &[crate::config::ListenerConfig]) {
        let mut bases = self.bases.borrow_mut();
        bases.clear();
        for host in &config.hosts {
            if let Some(base) = config.http.base_url(bound, &host.domain) {
                bases.insert(host.domain.clone(), base);
            }
        }
    }

    /// The base URL of the upload URLs of `host`: as bound, or as
    /// configured before the listeners were bound.
    pub fn base_for(&self, config: &Config, host: &str) -> Option<String> {
        match self.bases.borrow().get(host) {
            Some(base) => Some(base.clone()),
            None => base_url(config, host),
        }
    }

    pub fn key(&self) -> &hmac::Key {
        &self.key
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether a PUT of `id` is being received.
    pub fn is_active(&self, id: &str) -> bool {
        self.active.borrow().contains(id)
    }

    /// Marks a PUT of `id` as under way until the guard is dropped; `None`
    /// if one is already.
    pub fn begin_put(self: &Rc<Self>, id: &str) -> Option<ActivePut> {
        if !self.active.borrow_mut().insert(id.to_string()) {
            return None;
        }
        Some(ActivePut {
            upload: self.clone(),
            id: id.to_string(),
        })
    }
}

/// An upload under way (see [`Upload::begin_put`]).
pub struct ActivePut {
    upload: Rc<Upload>,
    id: String,
}

impl Drop for ActivePut {
    fn drop(&mut self) {
        self.upload.active.borrow_mut().remove(&self.id);
    }
}

/// Unix seconds of `t` (0 before the epoch).
pub fn unix_secs(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_put_at_a_time() {
        let upload = Rc::new(Upload::with_key(b"k", PathBuf::from("/nonexistent")));
        let first = upload.begin_put("a").expect("first");
        assert!(upload.is_active("a"));
        assert!(upload.begin_put("a").is_none());
        let other = upload.begin_put("b").expect("another file");
        drop(first);
        assert!(!upload.is_active("a"));
        assert!(upload.begin_put("a").is_some());
        drop(other);
        assert!(!upload.is_active("b"));
    }
}
