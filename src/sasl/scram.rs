//! Server side of SCRAM (RFC 5802, RFC 7677) with channel binding.

use std::sync::OnceLock;

use ring::rand::{SecureRandom, SystemRandom};

use super::credentials::{ct_eq, h, hmac, random_bytes, xor};
use super::{
    ChannelBinding, CredentialLookup, DEFAULT_ITERATIONS, Fail, SALT_LEN, SaslFailure, ScramHash,
    ScramKeys, Step, base64, check_authzid,
};

/// Random part of the server nonce, before base64 (32 characters after).
const SERVER_NONCE_LEN: usize = 24;

const MALFORMED: Fail = (SaslFailure::MalformedRequest, "malformed SCRAM message");

static FAKE_SALT_SECRET: OnceLock<[u8; 32]> = OnceLock::new();

/// Sets the secret from which fake salts for unknown users are derived.
///
/// Without it a random secret is drawn once per process, so a fake salt
/// changes at every restart while a real one does not, which a patient
/// attacker could notice. Servers that care should persist a random secret
/// and pass it here before the first authentication. Returns `false` if a
/// secret was already in place (it is then left unchanged).
pub fn init_fake_salt_secret(secret: &[u8]) -> bool {
    let mut key = [0u8; 32];
    key.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, secret).as_ref());
    FAKE_SALT_SECRET.set(key).is_ok()
}

fn fake_salt_secret() -> Option<&'static [u8; 32]> {
    if let Some(secret) = FAKE_SALT_SECRET.get() {
        return Some(secret);
    }
    let mut fresh = [0u8; 32];
    SystemRandom::new().fill(&mut fresh).ok()?;
    Some(FAKE_SALT_SECRET.get_or_init(|| fresh))
}

/// Keys that look like a real record (deterministic salt, usual iteration
/// count) for a user that does not exist; they never verify because the
/// session remembers the user is unknown.
pub(super) fn fake_keys(
    hash: ScramHash,
    username: &str,
    iterations: u32,
) -> Result<ScramKeys, Fail> {
    let secret = fake_salt_secret().ok_or((
        SaslFailure::TemporaryAuthFailure,
        "random number generator failed",
    ))?;
    let mut input = Vec::with_capacity(32 + username.len());
    input.extend_from_slice(b"perch fake SCRAM salt\0");
    input.extend_from_slice(hash.name().as_bytes());
    input.push(0);
    input.extend_from_slice(username.as_bytes());
    let mut salt = hmac(ScramHash::Sha256, secret, &input);
    salt.truncate(SALT_LEN);
    let iterations = if super::credentials::iterations(iterations).is_ok() {
        iterations
    } else {
        DEFAULT_ITERATIONS
    };
    Ok(ScramKeys {
        hash,
        salt,
        iterations,
        stored_key: vec![0; hash.output_len()],
        server_key: vec![0; hash.output_len()],
    })
}

/// Decodes a `saslname` (RFC 5802 §7): ',' and '=' arrive as "=2C"/"=3D".
pub(super) fn decode_saslname(s: &str) -> Option<String> {
    if s.is_empty() || s.contains(['\0', ',']) {
        return None;
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        if let Some(t) = tail.strip_prefix("=2C") {
            out.push(',');
            rest = t;
        } else if let Some(t) = tail.strip_prefix("=3D") {
            out.push('=');
            rest = t;
        } else {
            return None;
        }
    }
    out.push_str(rest);
    Some(out)
}

pub(super) fn encode_saslname(s: &str) -> String {
    s.replace('=', "=3D").replace(',', "=2C")
}

/// `printable` of RFC 5802 §7: %x21-2B / %x2D-7E.
pub(super) fn is_valid_nonce(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| matches!(b, 0x21..=0x2B | 0x2D..=0x7E))
}

/// Unknown `attr-val` extensions are allowed and ignored, but they must at
/// least look like one.
fn is_extension(field: &str) -> bool {
    matches!(field.as_bytes(), [a, b'=', ..] if a.is_ascii_alphabetic())
}

fn is_cb_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

fn field<'a>(fields: &mut std::str::Split<'a, char>, name: &str) -> Result<&'a str, Fail> {
    fields
        .next()
        .and_then(|f| f.strip_prefix(name))
        .ok_or(MALFORMED)
}

struct Pending {
    username: String,
    known: bool,
    unknown_reason: &'static str,
    keys: ScramKeys,
    /// gs2-header followed by the channel binding data; `c=` must carry
    /// exactly this.
    expected_cbind: Vec<u8>,
    nonce: String,
    /// client-first-message-bare "," server-first-message ","
    auth_prefix: String,
}

enum State {
    AwaitFirst { asked: bool },
    AwaitFinal(Pending),
    Finished,
}

pub(super) struct ScramServer {
    hash: ScramHash,
    plus: bool,
    cb: Option<ChannelBinding>,
    plus_offered: bool,
    fixed_nonce: Option<String>,
    /// XEP-0474's `h` for the server-first message, if the stream adds it.
    ssdp: Option<String>,
    state: State,
}

impl ScramServer {
    pub(super) fn new(
        hash: ScramHash,
        plus: bool,
        cb: Option<ChannelBinding>,
        plus_offered: bool,
    ) -> ScramServer {
        ScramServer {
            hash,
            plus,
            cb,
            plus_offered,
            fixed_nonce: None,
            ssdp: None,
            state: State::AwaitFirst { asked: false },
        }
    }

    /// The username whose proof the next step checks, once it is due.
    pub(super) fn username_at_stake(&self) -> Option<&str> {
        match &self.state {
            State::AwaitFinal(pending) => Some(&pending.username),
            _ => None,
        }
    }

    pub(super) fn set_ssdp(&mut self, hash: String) {
        self.ssdp = Some(hash);
    }

    pub(super) fn set_nonce(&mut self, nonce: &str) {
        self.fixed_nonce = Some(nonce.to_owned());
    }

    pub(super) fn step(
        &mut self,
        input: &[u8],
        creds: &dyn CredentialLookup,
    ) -> Result<Step, Fail> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::AwaitFirst { asked: false } if input.is_empty() => {
                self.state = State::AwaitFirst { asked: true };
                Ok(Step::Challenge(Vec::new()))
            }
            State::AwaitFirst { .. } => {
                let (pending, challenge) = self.client_first(input, creds)?;
                self.state = State::AwaitFinal(pending);
                Ok(Step::Challenge(challenge))
            }
            State::AwaitFinal(pending) => self.client_final(&pending, input),
            State::Finished => Err((SaslFailure::MalformedRequest, "exchange already finished")),
        }
    }

    /// Checks the gs2 channel binding flag against what we offered and
    /// returns the binding data the client must echo.
    fn channel_binding(&self, flag: &str) -> Result<&[u8], Fail> {
        const NEEDS_CB: Fail = (
            SaslFailure::MalformedRequest,
            "-PLUS mechanism chosen without channel binding",
        );
        match flag {
            "n" if self.plus => Err(NEEDS_CB),
            "n" => Ok(&[]),
            "y" if self.plus => Err(NEEDS_CB),
            // The client would have used -PLUS had it seen it: someone
            // stripped it from our feature list (RFC 5802 §6).
            "y" if self.plus_offered => Err((
                SaslFailure::NotAuthorized,
                "client did not see -PLUS mechanisms (downgrade?)",
            )),
            "y" => Ok(&[]),
            _ => {
                let name = flag
                    .strip_prefix("p=")
                    .filter(|n| is_cb_name(n))
                    .ok_or(MALFORMED)?;
                if !self.plus {
                    return Err((
                        SaslFailure::MalformedRequest,
                        "channel binding requested with a non-PLUS mechanism",
                    ));
                }
                match &self.cb {
                    Some(cb) if cb.kind == name => Ok(&cb.data),
                    _ => Err((
                        SaslFailure::MalformedRequest,
                        "unsupported channel binding type",
                    )),
                }
            }
        }
    }

    fn client_first(
        &mut self,
        input: &[u8],
        creds: &dyn CredentialLookup,
    ) -> Result<(Pending, Vec<u8>), Fail> {
        let msg = std::str::from_utf8(input).map_err(|_| MALFORMED)?;
        let (flag, rest) = msg.split_once(',').ok_or(MALFORMED)?;
        let (authzid, bare) = rest.split_once(',').ok_or(MALFORMED)?;
        let gs2_header = msg.get(..msg.len() - bare.len()).ok_or(MALFORMED)?;
        let mut expected_cbind = gs2_header.as_bytes().to_vec();
        expected_cbind.extend_from_slice(self.channel_binding(flag)?);
        let authzid = match authzid {
            "" => String::new(),
            a => a
                .strip_prefix("a=")
                .and_then(decode_saslname)
                .ok_or(MALFORMED)?,
        };

        let mut fields = bare.split(',');
        if bare.starts_with("m=") {
            return Err((
                SaslFailure::MalformedRequest,
                "unsupported mandatory SCRAM extension",
            ));
        }
        let raw_username = decode_saslname(field(&mut fields, "n=")?).ok_or(MALFORMED)?;
        let client_nonce = field(&mut fields, "r=")?;
        if !is_valid_nonce(client_nonce) || !fields.all(is_extension) {
            return Err(MALFORMED);
        }

        let prepared = crate::jid::prep_local(&raw_username).ok();
        check_authzid(&authzid, prepared.as_deref(), creds)?;
        let stored = prepared
            .as_deref()
            .and_then(|u| creds.scram_keys(u, self.hash));
        let username = match prepared {
            Some(p) => p.into_owned(),
            None => raw_username.clone(),
        };
        // Made for known users too (and thrown away): an unknown user's
        // challenge must not come back later than a known one's
        // (perch-load login-timing told them apart by 2 µs).
        let stand_in = fake_keys(self.hash, &username, creds.default_iterations())?;
        let (known, unknown_reason, keys) = match stored {
            Some(k) if k.hash == self.hash && k.is_well_formed() => (true, "", k),
            Some(_) => (false, "stored SCRAM keys are unusable", stand_in),
            None => (false, "unknown user", stand_in),
        };

        let server_nonce = match self.fixed_nonce.take() {
            Some(n) => n,
            None => base64::encode(&random_bytes(SERVER_NONCE_LEN).map_err(|_| {
                (
                    SaslFailure::TemporaryAuthFailure,
                    "random number generator failed",
                )
            })?),
        };
        let nonce = format!("{client_nonce}{server_nonce}");
        let mut server_first = format!(
            "r={nonce},s={},i={}",
            base64::encode(&keys.salt),
            keys.iterations
        );
        if let Some(h) = &self.ssdp {
            server_first.push_str(",h=");
            server_first.push_str(h);
        }
        let pending = Pending {
            username,
            known,
            unknown_reason,
            keys,
            expected_cbind,
            nonce,
            auth_prefix: format!("{bare},{server_first},"),
        };
        Ok((pending, server_first.into_bytes()))
    }

    fn client_final(&self, p: &Pending, input: &[u8]) -> Result<Step, Fail> {
        let msg = std::str::from_utf8(input).map_err(|_| MALFORMED)?;
        // The proof is always the last attribute and cannot contain ','.
        let (without_proof, proof) = msg.rsplit_once(",p=").ok_or(MALFORMED)?;
        let proof = base64::decode(proof).map_err(|_| MALFORMED)?;
        let mut fields = without_proof.split(',');
        let cbind = base64::decode(field(&mut fields, "c=")?).map_err(|_| MALFORMED)?;
        let nonce = field(&mut fields, "r=")?;
        if !fields.all(is_extension) || proof.len() != self.hash.output_len() {
            return Err(MALFORMED);
        }
        if cbind != p.expected_cbind {
            return Err((
                SaslFailure::NotAuthorized,
                "channel binding data does not match",
            ));
        }
        if nonce != p.nonce {
            return Err((SaslFailure::NotAuthorized, "nonce does not match"));
        }

        let auth_message = format!("{}{without_proof}", p.auth_prefix);
        let client_signature = hmac(self.hash, &p.keys.stored_key, auth_message.as_bytes());
        let client_key = xor(&proof, &client_signature);
        let proof_ok = ct_eq(&h(self.hash, &client_key), &p.keys.stored_key);
        if !p.known {
            return Err((SaslFailure::NotAuthorized, p.unknown_reason));
        }
        if !proof_ok {
            return Err((SaslFailure::NotAuthorized, "wrong password"));
        }
        let server_signature = hmac(self.hash, &p.keys.server_key, auth_message.as_bytes());
        let server_final = format!("v={}", base64::encode(&server_signature));
        Ok(Step::Success {
            username: p.username.clone(),
            additional_data: server_final.into_bytes(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::sasl::{Credentials, Mechanism, SaslSession};

    /// One account, "juliet"; counts the stand-in keys made (each asks
    /// for the iteration count of unknown users).
    struct Counting {
        juliet: Credentials,
        stand_ins: Cell<u32>,
    }

    impl CredentialLookup for Counting {
        fn scram_keys(&self, username: &str, hash: ScramHash) -> Option<ScramKeys> {
            (username == "juliet")
                .then(|| self.juliet.keys(hash).cloned())
                .flatten()
        }

        fn default_iterations(&self) -> u32 {
            self.stand_ins.set(self.stand_ins.get() + 1);
            DEFAULT_ITERATIONS
        }
    }

    #[test]
    fn known_and_unknown_users_cost_the_same_work_before_the_challenge() {
        let db = Counting {
            juliet: Credentials::derive("pencil", DEFAULT_ITERATIONS).expect("derives"),
            stand_ins: Cell::new(0),
        };
        for (user, made) in [("juliet", 1), ("romeo", 2)] {
            let mut session = SaslSession::start(Mechanism::ScramSha256, None, false);
            let first = format!("n,,n={user},r=abcdef");
            assert!(matches!(
                session.step(first.as_bytes(), &db),
                Step::Challenge(_)
            ));
            // Made for the known user too (then thrown away): before, only
            // unknown users paid for it, and answered later by about 2 µs.
            assert_eq!(db.stand_ins.get(), made, "{user}");
        }
    }
}
