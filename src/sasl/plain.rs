//! PLAIN (RFC 4616): `[authzid] NUL authcid NUL passwd`.

use super::{CredentialLookup, Fail, SaslFailure, ScramHash, Step, check_authzid, scram};

pub(super) struct Plain {
    asked: bool,
}

const MALFORMED: Fail = (SaslFailure::MalformedRequest, "malformed PLAIN message");

/// [`CredentialLookup::check_plain`] unless an implementation brings its
/// own: one PBKDF2 run against the account's strongest keys, or against
/// made-up keys of the usual iteration count when there is no account. The
/// same lookups and the same key derivation either way, so the answer
/// takes as long for an unknown user as for a wrong password (before,
/// `perch-load login-timing` had them answered in 0.1 and 1.5 ms).
pub(super) fn check_evenly<C: CredentialLookup + ?Sized>(
    creds: &C,
    username: &str,
    password: &str,
) -> bool {
    let sha256 = creds.scram_keys(username, ScramHash::Sha256);
    let sha1 = creds.scram_keys(username, ScramHash::Sha1);
    let stand_in = scram::fake_keys(ScramHash::Sha256, username, creds.default_iterations());
    match (sha256.or(sha1), stand_in) {
        (Some(keys), _) => keys.verify_password(password),
        (None, Ok(made_up)) => {
            // Its stored key is all zeros: no password matches it.
            let _ = made_up.verify_password(password);
            false
        }
        (None, Err(_)) => false,
    }
}

/// The prepared authcid of a PLAIN message, if it is well formed.
pub(super) fn authcid(input: &[u8]) -> Option<String> {
    let mut fields = input.split(|&b| b == 0);
    let (Some(_authzid), Some(authcid), Some(_password), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return None;
    };
    let authcid = std::str::from_utf8(authcid).ok()?;
    crate::jid::prep_local(authcid).ok().map(|u| u.into_owned())
}

impl Plain {
    pub(super) fn new() -> Plain {
        Plain { asked: false }
    }

    pub(super) fn step(
        &mut self,
        input: &[u8],
        creds: &dyn CredentialLookup,
    ) -> Result<Step, Fail> {
        if input.is_empty() && !self.asked {
            self.asked = true;
            return Ok(Step::Challenge(Vec::new()));
        }
        let mut fields = input.split(|&b| b == 0);
        let (Some(authzid), Some(authcid), Some(password), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(MALFORMED);
        };
        let utf8 = |b| std::str::from_utf8(b).map_err(|_| MALFORMED);
        let (authzid, authcid, password) = (utf8(authzid)?, utf8(authcid)?, utf8(password)?);
        if authcid.is_empty() || password.is_empty() {
            return Err(MALFORMED);
        }
        let Ok(username) = crate::jid::prep_local(authcid) else {
            return Err((
                SaslFailure::NotAuthorized,
                "username is not a valid localpart",
            ));
        };
        check_authzid(authzid, Some(&username), creds)?;
        if creds.check_plain(&username, password) {
            Ok(Step::Success {
                username: username.into_owned(),
                additional_data: Vec::new(),
            })
        } else {
            Err((SaslFailure::NotAuthorized, "wrong password or unknown user"))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::sasl::{Credentials, DEFAULT_ITERATIONS, ScramKeys};

    /// One account, "juliet", and the provided `check_plain`.
    struct OneAccount(Credentials);

    impl CredentialLookup for OneAccount {
        fn scram_keys(&self, username: &str, hash: ScramHash) -> Option<ScramKeys> {
            (username == "juliet")
                .then(|| self.0.keys(hash).cloned())
                .flatten()
        }
    }

    fn juliet() -> OneAccount {
        OneAccount(Credentials::derive("pencil", DEFAULT_ITERATIONS).expect("derives"))
    }

    #[test]
    fn the_provided_check_accepts_only_the_right_password() {
        let db = juliet();
        assert!(db.check_plain("juliet", "pencil"));
        assert!(!db.check_plain("juliet", "Pencil"));
        assert!(!db.check_plain("romeo", "pencil"));
        assert!(!db.check_plain("romeo", ""));
        let sha1_only = OneAccount(
            Credentials::from_keys(vec![
                db.0.keys(ScramHash::Sha1).cloned().expect("SHA-1 keys"),
            ])
            .expect("one key set"),
        );
        assert!(sha1_only.check_plain("juliet", "pencil"));
        assert!(!sha1_only.check_plain("juliet", "pen"));
    }

    /// Median seconds of `f` over interleaved runs.
    fn medians(runs: usize, fs: [&dyn Fn() -> bool; 2]) -> [f64; 2] {
        let mut times = [Vec::new(), Vec::new()];
        for _ in 0..runs {
            for (f, t) in fs.iter().zip(times.iter_mut()) {
                let t0 = Instant::now();
                std::hint::black_box(f());
                t.push(t0.elapsed().as_secs_f64());
            }
        }
        times.map(|mut t| {
            t.sort_by(f64::total_cmp);
            t[t.len() / 2]
        })
    }

    #[test]
    fn an_unknown_user_costs_a_key_derivation_like_a_known_one() {
        let db = juliet();
        let unknown = || db.check_plain("romeo", "guess");
        let wrong = || db.check_plain("juliet", "guess");
        // Before, the unknown user was answered without any key
        // derivation (1 µs against 0.9 ms in a test build). The bound is
        // loose so that a busy machine does not fail it.
        let [unknown, wrong] = medians(15, [&unknown, &wrong]);
        assert!(
            unknown > 0.5 * wrong && unknown < 2.0 * wrong,
            "unknown user {unknown:.6} s, wrong password {wrong:.6} s"
        );
    }
}
