//! FAST tokens (XEP-0484) and the HT SASL mechanisms that log in with them
//! (draft-schmaus-kitten-sasl-ht), without I/O: the token record of one
//! client of one account, its check, rotation and expiry.
//!
//! A client proves it holds a token with `authcid NUL HMAC(token,
//! "Initiator" || cb-data)`; the server answers `HMAC(token, "Responder" ||
//! cb-data)`. Tokens are stored hashed: a token is longer than SHA-256's
//! 64-byte block, so HMAC keys itself with SHA-256(token) (RFC 2104 §2),
//! and that hash is all the server keeps and all the check needs. (It is
//! still a secret: whoever reads it from the database can compute the
//! HMACs, as with any HT server, until the token expires; but the token
//! itself, which a client could be made to reveal or reuse, is not on disk.)
//!
//! Each (account, user-agent id) has two slots, as the XEP's
//! implementation notes suggest: `current`, and `new` (issued, not yet
//! used). A login with `new` moves it to `current`, so the older token
//! stops working; a login with `current` leaves `new` waiting.

use std::fmt;

use ring::{digest, hmac};

use super::ct_eq;

/// Random bytes of a token; its base64 text (72 characters) is longer than
/// the 64-byte HMAC block, which is what lets the server keep only a hash.
pub const TOKEN_RANDOM_BYTES: usize = 54;
/// Smallest token (in bytes) whose HMAC is keyed by its SHA-256.
const HMAC_BLOCK: usize = 64;

/// The HT mechanisms Perch offers: without channel binding, and bound to
/// the TLS exporter (RFC 9266), the only channel binding its TLS layer
/// computes. (`-UNIQ` needs tls-unique, which TLS 1.3 does not have;
/// `-ENDP` needs tls-server-end-point, which Perch's SCRAM-PLUS does not
/// offer either.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HtMechanism {
    Sha256None,
    Sha256Expr,
}

impl HtMechanism {
    /// Strongest first.
    pub const ALL: [HtMechanism; 2] = [HtMechanism::Sha256Expr, HtMechanism::Sha256None];

    pub fn name(self) -> &'static str {
        match self {
            HtMechanism::Sha256None => "HT-SHA-256-NONE",
            HtMechanism::Sha256Expr => "HT-SHA-256-EXPR",
        }
    }

    pub fn from_name(name: &str) -> Option<HtMechanism> {
        HtMechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether the mechanism needs the connection's channel binding data.
    pub fn binds_channel(self) -> bool {
        self == HtMechanism::Sha256Expr
    }

    /// The mechanisms a stream offers: `-EXPR` only with tls-exporter data.
    pub fn offered(channel_binding: bool) -> impl Iterator<Item = HtMechanism> {
        HtMechanism::ALL
            .into_iter()
            .filter(move |m| channel_binding || !m.binds_channel())
    }

    fn code(self) -> u8 {
        match self {
            HtMechanism::Sha256None => 1,
            HtMechanism::Sha256Expr => 2,
        }
    }

    fn from_code(code: u8) -> Option<HtMechanism> {
        HtMechanism::ALL.into_iter().find(|m| m.code() == code)
    }
}

impl fmt::Display for HtMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the server keeps of a token: SHA-256 of its text (the HMAC key).
pub type TokenKey = [u8; 32];

/// The stored key of the token `token` (its text as sent to the client).
pub fn token_key(token: &str) -> TokenKey {
    let mut key = [0u8; 32];
    key.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    key
}

/// `HMAC(token, label || cb_data)` from the stored key. Only valid for
/// tokens longer than the HMAC block (all tokens Perch issues).
fn ht_hmac(key: &TokenKey, label: &[u8], cb_data: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(label);
    ctx.update(cb_data);
    ctx.sign().as_ref().to_vec()
}

/// A new token: random bytes as base64 text (no padding needed: 54 bytes).
pub fn new_token() -> Option<String> {
    let mut raw = [0u8; TOKEN_RANDOM_BYTES];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw).ok()?;
    let token = super::base64::encode(&raw);
    debug_assert!(token.len() > HMAC_BLOCK);
    Some(token)
}

/// The client's HT message: `authcid NUL initiator-hashed-token`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HtResponse {
    pub authcid: String,
    pub proof: Vec<u8>,
}

/// Splits an HT initial response; `None` if it is not one (no NUL, an empty
/// or non-UTF-8 authcid, a proof that is not one SHA-256 HMAC long).
pub fn parse_response(input: &[u8]) -> Option<HtResponse> {
    let nul = input.iter().position(|&b| b == 0)?;
    let (authcid, rest) = input.split_at(nul);
    let proof = rest.get(1..)?;
    let authcid = std::str::from_utf8(authcid).ok()?;
    if authcid.is_empty() || proof.len() != 32 {
        return None;
    }
    Some(HtResponse {
        authcid: authcid.to_string(),
        proof: proof.to_vec(),
    })
}

/// One stored token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub key: TokenKey,
    pub mechanism: HtMechanism,
    /// Unix seconds after which it no longer logs in.
    pub expires: u64,
    /// The highest `count` a login with it sent (0: none yet).
    pub last_count: u32,
}

/// The tokens of one client (account and user-agent id).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenRecord {
    pub current: Option<Token>,
    /// Issued, not used yet.
    pub new: Option<Token>,
}

/// Which slot a login used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Current,
    New,
}

/// Why a token did not log in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    NoToken,
    Mismatch,
    Expired,
    WrongMechanism,
    /// `count` not above the last one seen for this token (a replay).
    Replayed,
}

impl Refusal {
    /// The SASL condition: `credentials-expired` for a token that was
    /// right but is no longer trusted (XEP-0484 §5: the client then logs
    /// in another way), `not-authorized` for the rest.
    pub fn failure(self) -> super::SaslFailure {
        match self {
            Refusal::Expired => super::SaslFailure::CredentialsExpired,
            _ => super::SaslFailure::NotAuthorized,
        }
    }

    /// For the server log only.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::NoToken => "no FAST token for this client",
            Refusal::Mismatch => "FAST token does not match",
            Refusal::Expired => "FAST token expired",
            Refusal::WrongMechanism => "FAST token issued for another mechanism",
            Refusal::Replayed => "FAST count not above the last one (replay)",
        }
    }
}

/// What a FAST login carries besides the HT message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FastAttempt {
    pub mechanism: HtMechanism,
    pub proof: Vec<u8>,
    /// The connection's channel binding data (empty for `-NONE`).
    pub cb_data: Vec<u8>,
    /// XEP-0484's replay counter, if the client sent one.
    pub count: Option<u32>,
}

/// A successful check: the responder message for `<additional-data/>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub slot: Slot,
    pub responder: Vec<u8>,
}

impl TokenRecord {
    /// Checks `attempt` against the `new` slot first, then `current`; on
    /// success the record is updated as the XEP requires (the used `new`
    /// token replaces `current`; the count is remembered).
    pub fn verify(&mut self, attempt: &FastAttempt, now: u64) -> Result<Verified, Refusal> {
        let mut refusal = Refusal::NoToken;
        for slot in [Slot::New, Slot::Current] {
            let token = match slot {
                Slot::New => &mut self.new,
                Slot::Current => &mut self.current,
            };
            let Some(token) = token.as_mut() else {
                continue;
            };
            let expected = ht_hmac(&token.key, b"Initiator", &attempt.cb_data);
            if !ct_eq(&expected, &attempt.proof) {
                refusal = Refusal::Mismatch;
                continue;
            }
            if token.mechanism != attempt.mechanism {
                return Err(Refusal::WrongMechanism);
            }
            if now >= token.expires {
                return Err(Refusal::Expired);
            }
            if let Some(count) = attempt.count {
                if count <= token.last_count {
                    return Err(Refusal::Replayed);
                }
                token.last_count = count;
            }
            let responder = ht_hmac(&token.key, b"Responder", &attempt.cb_data);
            if slot == Slot::New {
                self.current = self.new.take();
            }
            return Ok(Verified { slot, responder });
        }
        Err(refusal)
    }

    /// Puts a freshly issued token in the `new` slot (replacing an unused
    /// one: the XEP says unused earlier tokens should go).
    pub fn issue(&mut self, key: TokenKey, mechanism: HtMechanism, expires: u64) {
        self.new = Some(Token {
            key,
            mechanism,
            expires,
            last_count: 0,
        });
    }

    /// Whether the token in use should be replaced: less than half its
    /// lifetime is left. (A replacement issued before that the client is
    /// still not using may never have reached it: it is replaced too.)
    pub fn rotation_due(&self, now: u64, lifetime_secs: u64) -> bool {
        self.current
            .as_ref()
            .is_some_and(|t| t.expires.saturating_sub(now) < lifetime_secs / 2)
    }

    /// Drops expired tokens; true if nothing is left.
    pub fn prune(&mut self, now: u64) -> bool {
        for slot in [&mut self.current, &mut self.new] {
            if slot.as_ref().is_some_and(|t| now >= t.expires) {
                *slot = None;
            }
        }
        self.current.is_none() && self.new.is_none()
    }

    /// The latest expiry of the record's tokens (0 if none).
    pub fn expires(&self) -> u64 {
        [&self.current, &self.new]
            .into_iter()
            .flatten()
            .map(|t| t.expires)
            .max()
            .unwrap_or(0)
    }

    /// Layout: a version byte (1), then per slot (current, new) a presence
    /// byte (0 or 1) and, when present, the mechanism byte (1 `-NONE`, 2
    /// `-EXPR`), the 32-byte key, the expiry (Unix seconds, 8 bytes big
    /// endian) and the last count (4 bytes big endian).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 2 * 46);
        out.push(1);
        for slot in [&self.current, &self.new] {
            match slot {
                None => out.push(0),
                Some(t) => {
                    out.push(1);
                    out.push(t.mechanism.code());
                    out.extend_from_slice(&t.key);
                    out.extend_from_slice(&t.expires.to_be_bytes());
                    out.extend_from_slice(&t.last_count.to_be_bytes());
                }
            }
        }
        out
    }

    /// The inverse of [`TokenRecord::encode`]; `None` for anything else.
    pub fn decode(bytes: &[u8]) -> Option<TokenRecord> {
        let (&version, mut rest) = bytes.split_first()?;
        if version != 1 {
            return None;
        }
        let mut slots = [None, None];
        for slot in &mut slots {
            let (&present, after) = rest.split_first()?;
            rest = after;
            match present {
                0 => {}
                1 => {
                    let (&mech, after) = rest.split_first()?;
                    let (key, after) = after.split_first_chunk::<32>()?;
                    let (expires, after) = after.split_first_chunk::<8>()?;
                    let (count, after) = after.split_first_chunk::<4>()?;
                    rest = after;
                    *slot = Some(Token {
                        key: *key,
                        mechanism: HtMechanism::from_code(mech)?,
                        expires: u64::from_be_bytes(*expires),
                        last_count: u32::from_be_bytes(*count),
                    });
                }
                _ => return None,
            }
        }
        if !rest.is_empty() {
            return None;
        }
        let [current, new] = slots;
        Some(TokenRecord { current, new })
    }
}

#[cfg(test)]
#[path = "fast_tests.rs"]
mod tests;
