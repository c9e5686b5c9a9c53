//! `GET /.well-known/acme-challenge/TOKEN` (RFC 8555 §8.3): the key
//! authorizations the ACME client has published for the challenges it is
//! answering right now. Only the renewal task fills the map, a few entries
//! at a time; a request for anything else is a 404.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::Response;

pub const PATH_PREFIX: &str = "/.well-known/acme-challenge/";

/// At most this many challenges are published at once (an order names a
/// host and its three services; more would be a bug, not a need).
pub const MAX_PUBLISHED: usize = 256;

/// Token → key authorization, shared by the renewal task (which writes)
/// and the HTTP listener (which reads).
#[derive(Debug, Clone, Default)]
pub struct Challenges {
    published: Rc<RefCell<HashMap<String, String>>>,
}

impl Challenges {
    /// Serves `key_authorization` for `token` until [`Challenges::withdraw`].
    /// Returns false (and publishes nothing) when the map is full.
    pub fn publish(&self, token: &str, key_authorization: &str) -> bool {
        let mut published = self.published.borrow_mut();
        if published.len() >= MAX_PUBLISHED && !published.contains_key(token) {
            return false;
        }
        published.insert(token.to_owned(), key_authorization.to_owned());
        true
    }

    pub fn withdraw(&self, token: &str) {
        self.published.borrow_mut().remove(token);
    }

    pub fn len(&self) -> usize {
        self.published.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The answer to a request for `path` (which starts with
    /// [`PATH_PREFIX`]).
    pub fn respond(&self, path: &str) -> Response {
        let token = path.strip_prefix(PATH_PREFIX).unwrap_or_default();
        match self.published.borrow().get(token) {
            Some(key_authorization) => Response::new(200)
                .with("Content-Type", "application/octet-stream")
                .with_body(key_authorization.as_bytes().to_vec()),
            None => Response::text(404, "no such ACME challenge"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_tokens_are_answered_until_withdrawn() {
        let challenges = Challenges::default();
        let path = format!("{PATH_PREFIX}tok-1");
        assert_eq!(challenges.respond(&path).status, 404);
        assert!(challenges.publish("tok-1", "tok-1.thumb"));
        let answer = challenges.respond(&path);
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, b"tok-1.thumb");
        assert_eq!(
            challenges.respond(&format!("{PATH_PREFIX}tok-2")).status,
            404
        );
        assert_eq!(challenges.respond(PATH_PREFIX).status, 404);
        // Clones share the map: the renewal task and the listener.
        let listener = challenges.clone();
        challenges.withdraw("tok-1");
        assert_eq!(listener.respond(&path).status, 404);
        assert!(listener.is_empty());
    }

    #[test]
    fn the_map_is_bounded() {
        let challenges = Challenges::default();
        for i in 0..MAX_PUBLISHED {
            assert!(challenges.publish(&format!("t{i}"), "k"));
        }
        assert!(!challenges.publish("one-more", "k"));
        assert!(challenges.publish("t0", "again"), "replacing is fine");
        assert_eq!(challenges.len(), MAX_PUBLISHED);
    }
}
