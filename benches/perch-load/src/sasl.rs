//! SASL for the client side: PLAIN (RFC 4616) and SCRAM-SHA-1/-256
//! (RFC 5802, RFC 7677) without channel binding, plus the key derivation the
//! sink uses to answer SCRAM itself.
//!
//! PBKDF2 dominates a SCRAM login on the client too, so salted passwords are
//! cached per (mechanism, salt, iterations, password): a second login of the
//! same account costs the tool a few HMACs, and the login scenario can run a
//! warm-up pass so the measured pass times the server, not us.

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Mutex, OnceLock};

use ring::{digest, hmac, pbkdf2};

use crate::base64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    Plain,
    ScramSha1,
    ScramSha256,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
        }
    }

    pub fn parse(name: &str) -> Option<Mechanism> {
        [
            Mechanism::Plain,
            Mechanism::ScramSha1,
            Mechanism::ScramSha256,
        ]
        .into_iter()
        .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    fn algorithms(
        self,
    ) -> (
        pbkdf2::Algorithm,
        hmac::Algorithm,
        &'static digest::Algorithm,
    ) {
        match self {
            Mechanism::ScramSha1 | Mechanism::Plain => (
                pbkdf2::PBKDF2_HMAC_SHA1,
                hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
                &digest::SHA1_FOR_LEGACY_USE_ONLY,
            ),
            Mechanism::ScramSha256 => (
                pbkdf2::PBKDF2_HMAC_SHA256,
                hmac::HMAC_SHA256,
                &digest::SHA256,
            ),
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslError {
    /// The server's message is not what RFC 5802 describes.
    Malformed(&'static str),
    /// The server's nonce does not extend ours.
    NonceMismatch,
    /// Iteration count outside 1..=1_000_000 (a hostile server could make
    /// us burn minutes of CPU).
    Iterations(u64),
    /// The server could not prove it knows the password.
    BadServerSignature,
}

impl fmt::Display for SaslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaslError::Malformed(what) => write!(f, "SCRAM: malformed server message ({what})"),
            SaslError::NonceMismatch => f.write_str("SCRAM: server nonce does not extend ours"),
            SaslError::Iterations(n) => write!(f, "SCRAM: refusing iteration count {n}"),
            SaslError::BadServerSignature => f.write_str("SCRAM: wrong server signature"),
        }
    }
}

impl std::error::Error for SaslError {}

/// The initial response for PLAIN: `\0user\0password`.
pub fn plain_initial(user: &str, password: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(user.len() + password.len() + 2);
    v.push(0);
    v.extend_from_slice(user.as_bytes());
    v.push(0);
    v.extend_from_slice(password.as_bytes());
    v
}

/// Keys derived from a salted password (RFC 5802 §3).
#[derive(Clone)]
pub struct ScramKeys {
    pub client_key: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

type CacheKey = (Mechanism, Vec<u8>, u32, String);

fn cache() -> &'static Mutex<HashMap<CacheKey, ScramKeys>> {
    static CACHE: OnceLock<Mutex<HashMap<CacheKey, ScramKeys>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Derives (or recalls) the SCRAM keys for a password.
pub fn keys(mech: Mechanism, password: &str, salt: &[u8], iterations: NonZeroU32) -> ScramKeys {
    let key = (mech, salt.to_vec(), iterations.get(), password.to_string());
    if let Some(k) = cache().lock().ok().and_then(|c| c.get(&key).cloned()) {
        return k;
    }
    let (kdf, mac, hash) = mech.algorithms();
    let mut salted = vec![0u8; hash.output_len()];
    pbkdf2::derive(kdf, iterations, salt, password.as_bytes(), &mut salted);
    let salted = hmac::Key::new(mac, &salted);
    let client_key = hmac::sign(&salted, b"Client Key").as_ref().to_vec();
    let server_key = hmac::sign(&salted, b"Server Key").as_ref().to_vec();
    let stored_key = digest::digest(hash, &client_key).as_ref().to_vec();
    let keys = ScramKeys {
        client_key,
        stored_key,
        server_key,
    };
    if let Ok(mut c) = cache().lock() {
        // Bounded: one entry per account and salt; a run touches at most a
        // few tens of thousands of accounts.
        if c.len() < 200_000 {
            c.insert(key, keys.clone());
        }
    }
    keys
}

pub fn hmac(mech: Mechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    let (_, mac, _) = mech.algorithms();
    hmac::sign(&hmac::Key::new(mac, key), data)
        .as_ref()
        .to_vec()
}

/// A SCRAM exchange in progress on the client side.
pub struct ScramClient {
    mech: Mechanism,
    nonce: String,
    first_bare: String,
    /// Expected `v=` value once the final message is sent.
    server_signature: Option<Vec<u8>>,
}

impl ScramClient {
    /// `nonce` must be printable ASCII without commas.
    pub fn new(mech: Mechanism, user: &str, nonce: &str) -> ScramClient {
        let user = user.replace('=', "=3D").replace(',', "=2C");
        ScramClient {
            mech,
            nonce: nonce.to_string(),
            first_bare: format!("n={user},r={nonce}"),
            server_signature: None,
        }
    }

    pub fn first_message(&self) -> Vec<u8> {
        format!("n,,{}", self.first_bare).into_bytes()
    }

    /// Answers the server-first message with the client-final message.
    pub fn final_message(
        &mut self,
        server_first: &[u8],
        password: &str,
    ) -> Result<Vec<u8>, SaslError> {
        let text = std::str::from_utf8(server_first).map_err(|_| SaslError::Malformed("UTF-8"))?;
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for part in text.split(',') {
            match part.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(v),
                Some(("i", v)) => iterations = Some(v),
                _ => {}
            }
        }
        let nonce = nonce.ok_or(SaslError::Malformed("no nonce"))?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(SaslError::NonceMismatch);
        }
        let salt = base64::decode(salt.ok_or(SaslError::Malformed("no salt"))?)
            .map_err(|_| SaslError::Malformed("salt"))?;
        let iterations: u64 = iterations
            .ok_or(SaslError::Malformed("no iteration count"))?
            .parse()
            .map_err(|_| SaslError::Malformed("iteration count"))?;
        let iters = u32::try_from(iterations)
            .ok()
            .filter(|&n| n <= 1_000_000)
            .and_then(NonZeroU32::new)
            .ok_or(SaslError::Iterations(iterations))?;
        let keys = keys(self.mech, password, &salt, iters);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.first_bare);
        let signature = hmac(self.mech, &keys.stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = keys
            .client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        self.server_signature = Some(hmac(self.mech, &keys.server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", base64::encode(&proof)).into_bytes())
    }

    /// Checks the `v=` in the server-final message (carried in `<success>`).
    pub fn verify(&self, server_final: &[u8]) -> Result<(), SaslError> {
        let expected = self
            .server_signature
            .as_ref()
            .ok_or(SaslError::Malformed("success before the final message"))?;
        let text = std::str::from_utf8(server_final).map_err(|_| SaslError::Malformed("UTF-8"))?;
        let v = text
            .split(',')
            .find_map(|p| p.strip_prefix("v="))
            .ok_or(SaslError::Malformed("no verifier"))?;
        let got = base64::decode(v).map_err(|_| SaslError::Malformed("verifier"))?;
        if &got == expected {
            Ok(())
        } else {
            Err(SaslError::BadServerSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5802 §5 and RFC 7677 §3 example exchanges.
    #[test]
    fn rfc_examples() {
        let cases = [
            (
                Mechanism::ScramSha1,
                "fyko+d2lbbFgONRv9qkxdawL",
                "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
                "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
                "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
            ),
            (
                Mechanism::ScramSha256,
                "rOprNGfwEbeRWgbNEkqO",
                "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
            ),
        ];
        for (mech, nonce, server_first, client_final, server_final) in cases {
            let mut c = ScramClient::new(mech, "user", nonce);
            assert_eq!(
                c.first_message(),
                format!("n,,n=user,r={nonce}").into_bytes()
            );
            let fin = c
                .final_message(server_first.as_bytes(), "pencil")
                .expect("final");
            assert_eq!(String::from_utf8(fin).unwrap(), client_final);
            assert_eq!(c.verify(server_final.as_bytes()), Ok(()));
            assert_eq!(c.verify(b"v=AAAA"), Err(SaslError::BadServerSignature));
        }
    }

    #[test]
    fn hostile_server_first_messages_are_refused() {
        let mut c = ScramClient::new(Mechanism::ScramSha1, "u", "abc");
        assert_eq!(
            c.final_message(b"r=xyz1,s=QSXC,i=1", "p"),
            Err(SaslError::NonceMismatch)
        );
        assert_eq!(
            c.final_message(b"r=abcd,s=QSXC,i=99999999", "p"),
            Err(SaslError::Iterations(99_999_999))
        );
        assert!(matches!(
            c.final_message(b"r=abcd,i=1", "p"),
            Err(SaslError::Malformed(_))
        ));
        assert_eq!(plain_initial("u", "p"), b"\0u\0p");
    }
}
