//! Stored SCRAM credentials (RFC 5802 §3) and the primitives shared by the
//! server mechanisms and the client.

use std::num::NonZeroU32;

use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac, pbkdf2};

use super::SaslError;

/// Iteration count for new credentials (RFC 7677 §4 minimum).
pub const DEFAULT_ITERATIONS: u32 = 4096;
/// [`Credentials::derive`] refuses anything weaker.
pub const MIN_ITERATIONS: u32 = 4096;
/// Bounds the work a stored record or a malicious server can demand.
pub const MAX_ITERATIONS: u32 = 10_000_000;
/// Length of the random salts created by [`Credentials::derive`].
pub const SALT_LEN: usize = 16;

/// Version 2 counts its key records; version 1 (written before imports
/// could bring a single hash) always had SHA-1 and SHA-256.
const FORMAT_VERSION: u8 = 2;
const FORMAT_VERSION_BOTH_HASHES: u8 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScramHash {
    Sha1,
    Sha256,
}

impl ScramHash {
    /// The hash name as used in mechanism names.
    pub fn name(self) -> &'static str {
        match self {
            ScramHash::Sha1 => "SHA-1",
            ScramHash::Sha256 => "SHA-256",
        }
    }

    /// Output length of the hash, which is also the length of the keys.
    pub fn output_len(self) -> usize {
        match self {
            ScramHash::Sha1 => 20,
            ScramHash::Sha256 => 32,
        }
    }

    /// Identifier in the binary credential format.
    fn id(self) -> u8 {
        match self {
            ScramHash::Sha1 => 1,
            ScramHash::Sha256 => 2,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            ScramHash::Sha1 => pbkdf2::PBKDF2_HMAC_SHA1,
            ScramHash::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            ScramHash::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            ScramHash::Sha256 => hmac::HMAC_SHA256,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            ScramHash::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            ScramHash::Sha256 => &digest::SHA256,
        }
    }
}

pub(super) fn hmac(hash: ScramHash, key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hash.hmac(), key);
    hmac::sign(&key, data).as_ref().to_vec()
}

pub(super) fn h(hash: ScramHash, data: &[u8]) -> Vec<u8> {
    digest::digest(hash.digest(), data).as_ref().to_vec()
}

/// Hi() of RFC 5802 §2.2; `password` must already be SASLprep'd.
pub(super) fn salted_password(
    hash: ScramHash,
    password: &str,
    salt: &[u8],
    iterations: NonZeroU32,
) -> Vec<u8> {
    let mut out = vec![0; hash.output_len()];
    pbkdf2::derive(
        hash.pbkdf2(),
        iterations,
        salt,
        password.as_bytes(),
        &mut out,
    );
    out
}

pub(super) fn client_key(hash: ScramHash, salted: &[u8]) -> Vec<u8> {
    hmac(hash, salted, b"Client Key")
}

pub(super) fn server_key(hash: ScramHash, salted: &[u8]) -> Vec<u8> {
    hmac(hash, salted, b"Server Key")
}

/// Compares without an early exit, so the time taken does not reveal how
/// long a matching prefix was. ring's own helper is deprecated.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

pub(super) fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// SASLprep for a password (RFC 4013), rejecting empty results, which
/// neither PLAIN (RFC 4616 §2) nor a sensible account allows.
pub(super) fn prep_password(password: &str) -> Result<std::borrow::Cow<'_, str>, SaslError> {
    let prepared = stringprep::saslprep(password).map_err(|_| SaslError::PasswordNotSaslprep)?;
    if prepared.is_empty() {
        return Err(SaslError::EmptyPassword);
    }
    Ok(prepared)
}

pub(super) fn iterations(n: u32) -> Result<NonZeroU32, SaslError> {
    match NonZeroU32::new(n) {
        Some(nz) if n <= MAX_ITERATIONS => Ok(nz),
        _ => Err(SaslError::IterationsOutOfRange(n)),
    }
}

pub(super) fn random_bytes(len: usize) -> Result<Vec<u8>, SaslError> {
    let mut buf = vec![0; len];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| SaslError::RandomFailure)?;
    Ok(buf)
}

/// What the server keeps for one hash: enough to verify a SCRAM proof, not
/// enough to impersonate the user to another server with the same salt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScramKeys {
    pub hash: ScramHash,
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl ScramKeys {
    /// Derives keys with a given salt, e.g. for test vectors or when
    /// importing; iterations may be anything in 1..=MAX_ITERATIONS here.
    pub fn derive(
        hash: ScramHash,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Result<ScramKeys, SaslError> {
        let password = prep_password(password)?;
        let rounds = self::iterations(iterations)?;
        if salt.is_empty() || salt.len() > usize::from(u8::MAX) {
            return Err(SaslError::InvalidSalt);
        }
        let salted = salted_password(hash, &password, salt, rounds);
        let client = client_key(hash, &salted);
        Ok(ScramKeys {
            hash,
            salt: salt.to_vec(),
            iterations,
            stored_key: h(hash, &client),
            server_key: server_key(hash, &salted),
        })
    }

    /// Whether the keys are usable at all (hash-sized keys, sane salt and
    /// iteration count); a record failing this is treated as absent.
    pub fn is_well_formed(&self) -> bool {
        let len = self.hash.output_len();
        self.stored_key.len() == len
            && self.server_key.len() == len
            && !self.salt.is_empty()
            && self.salt.len() <= usize::from(u8::MAX)
            && iterations(self.iterations).is_ok()
    }

    /// Recomputes StoredKey from a plaintext password (for PLAIN) and
    /// compares in constant time.
    pub fn verify_password(&self, password: &str) -> bool {
        let Ok(password) = prep_password(password) else {
            return false;
        };
        let Ok(rounds) = iterations(self.iterations) else {
            return false;
        };
        let salted = salted_password(self.hash, &password, &self.salt, rounds);
        let stored = h(self.hash, &client_key(self.hash, &salted));
        ct_eq(&stored, &self.stored_key)
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.push(self.hash.id());
        out.extend_from_slice(&self.iterations.to_be_bytes());
        // derive() and from_bytes() keep salts ≤ 255 bytes.
        out.push(u8::try_from(self.salt.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(self.salt.get(..usize::from(u8::MAX)).unwrap_or(&self.salt));
        out.extend_from_slice(&self.stored_key);
        out.extend_from_slice(&self.server_key);
    }

    fn read(r: &mut Reader<'_>, hash: ScramHash) -> Result<ScramKeys, SaslError> {
        if r.byte()? != hash.id() {
            return Err(SaslError::CorruptCredentials("unexpected hash identifier"));
        }
        let iterations = u32::from_be_bytes(r.array()?);
        if self::iterations(iterations).is_err() {
            return Err(SaslError::CorruptCredentials(
                "iteration count out of range",
            ));
        }
        let salt_len = usize::from(r.byte()?);
        if salt_len == 0 {
            return Err(SaslError::CorruptCredentials("empty salt"));
        }
        let salt = r.take(salt_len)?.to_vec();
        let stored_key = r.take(hash.output_len())?.to_vec();
        let server_key = r.take(hash.output_len())?.to_vec();
        Ok(ScramKeys {
            hash,
            salt,
            iterations,
            stored_key,
            server_key,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SaslError> {
        let (head, tail) = self
            .0
            .split_at_checked(n)
            .ok_or(SaslError::CorruptCredentials("truncated"))?;
        self.0 = tail;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, SaslError> {
        let [b] = self.array()?;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], SaslError> {
        let bytes = self.take(N)?;
        <[u8; N]>::try_from(bytes).map_err(|_| SaslError::CorruptCredentials("truncated"))
    }
}

/// Everything stored per account: SCRAM keys per hash, each with its own
/// salt so that the records cannot be correlated. Accounts made by Perch
/// have both; an account imported from a server that kept only one hash
/// (e.g. SCRAM-SHA-1) has that one, and logs in with that mechanism only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    sha1: Option<ScramKeys>,
    sha256: Option<ScramKeys>,
}

impl Credentials {
    /// SASLprep's the password and derives keys with fresh random salts.
    pub fn derive(password: &str, iterations: u32) -> Result<Credentials, SaslError> {
        if iterations < MIN_ITERATIONS {
            return Err(SaslError::IterationsOutOfRange(iterations));
        }
        let sha1_salt = random_bytes(SALT_LEN)?;
        let sha256_salt = random_bytes(SALT_LEN)?;
        Ok(Credentials {
            sha1: Some(ScramKeys::derive(
                ScramHash::Sha1,
                password,
                &sha1_salt,
                iterations,
            )?),
            sha256: Some(ScramKeys::derive(
                ScramHash::Sha256,
                password,
                &sha256_salt,
                iterations,
            )?),
        })
    }

    /// Credentials from keys made elsewhere (an import): at least one set,
    /// at most one per hash, each well-formed.
    pub fn from_keys(keys: Vec<ScramKeys>) -> Result<Credentials, SaslError> {
        let mut credentials = Credentials {
            sha1: None,
            sha256: None,
        };
        for k in keys {
            if !k.is_well_formed() {
                return Err(SaslError::CorruptCredentials("malformed SCRAM keys"));
            }
            let slot = match k.hash {
                ScramHash::Sha1 => &mut credentials.sha1,
                ScramHash::Sha256 => &mut credentials.sha256,
            };
            if slot.replace(k).is_some() {
                return Err(SaslError::CorruptCredentials("two key sets for one hash"));
            }
        }
        if credentials.sha1.is_none() && credentials.sha256.is_none() {
            return Err(SaslError::CorruptCredentials("no keys"));
        }
        Ok(credentials)
    }

    /// The keys for `hash`, if this account has them.
    pub fn keys(&self, hash: ScramHash) -> Option<&ScramKeys> {
        match hash {
            ScramHash::Sha1 => self.sha1.as_ref(),
            ScramHash::Sha256 => self.sha256.as_ref(),
        }
    }

    /// Every key set, SHA-1 first.
    pub fn all_keys(&self) -> impl Iterator<Item = &ScramKeys> {
        self.sha1.iter().chain(self.sha256.iter())
    }

    /// For PLAIN: one PBKDF2 run against the strongest record.
    pub fn verify_password(&self, password: &str) -> bool {
        self.sha256
            .as_ref()
            .or(self.sha1.as_ref())
            .is_some_and(|k| k.verify_password(password))
    }

    /// Layout: `[2]`, the number of records (u8, 1 or 2), then one record
    /// per hash the account has, SHA-1 before SHA-256: hash id (u8),
    /// iterations (u32 BE), salt length (u8), salt, StoredKey, ServerKey
    /// (both hash-sized). Salts longer than 255 bytes cannot be produced by
    /// [`ScramKeys::derive`], `from_keys` or `from_bytes` and are cut short.
    /// Version 1 was `[1]` and always both records.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + 2 * (6 + SALT_LEN) + 2 * (20 + 32));
        out.push(FORMAT_VERSION);
        out.push(u8::from(self.sha1.is_some()) + u8::from(self.sha256.is_some()));
        for keys in self.all_keys() {
            keys.write(&mut out);
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Credentials, SaslError> {
        let mut r = Reader(bytes);
        let records = match r.byte()? {
            FORMAT_VERSION => r.byte()?,
            FORMAT_VERSION_BOTH_HASHES => 2,
            other => return Err(SaslError::UnsupportedCredentialsVersion(other)),
        };
        let mut credentials = Credentials {
            sha1: None,
            sha256: None,
        };
        match records {
            1 if r.0.first() == Some(&ScramHash::Sha1.id()) => {
                credentials.sha1 = Some(ScramKeys::read(&mut r, ScramHash::Sha1)?);
            }
            1 => credentials.sha256 = Some(ScramKeys::read(&mut r, ScramHash::Sha256)?),
            2 => {
                credentials.sha1 = Some(ScramKeys::read(&mut r, ScramHash::Sha1)?);
                credentials.sha256 = Some(ScramKeys::read(&mut r, ScramHash::Sha256)?);
            }
            _ => return Err(SaslError::CorruptCredentials("bad record count")),
        }
        if !r.0.is_empty() {
            return Err(SaslError::CorruptCredentials("trailing bytes"));
        }
        Ok(credentials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derive_and_verify() {
        let c = Credentials::derive("pencil", DEFAULT_ITERATIONS).unwrap();
        assert!(c.verify_password("pencil"));
        assert!(!c.verify_password("Pencil"));
        assert!(!c.verify_password(""));
        let sha1 = c.keys(ScramHash::Sha1).unwrap();
        let sha256 = c.keys(ScramHash::Sha256).unwrap();
        assert!(sha1.verify_password("pencil"));
        assert_eq!(sha1.salt.len(), SALT_LEN);
        assert_ne!(sha1.salt, sha256.salt);
        assert_eq!(sha1.stored_key.len(), 20);
        assert_eq!(sha256.server_key.len(), 32);
        assert!(sha1.is_well_formed() && sha256.is_well_formed());
        let again = Credentials::derive("pencil", DEFAULT_ITERATIONS).unwrap();
        assert_ne!(c, again, "salts must be random");
    }

    #[test]
    fn saslprep_applies() {
        // U+00A0 maps to a space and U+00AD to nothing (RFC 4013 §3).
        let c = Credentials::derive("I\u{AD}X a", MIN_ITERATIONS).unwrap();
        assert!(c.verify_password("IX\u{A0}a"));
        assert!(c.verify_password("IX a"));
        assert_eq!(
            Credentials::derive("a\u{7}", DEFAULT_ITERATIONS),
            Err(SaslError::PasswordNotSaslprep)
        );
        assert_eq!(
            Credentials::derive("", DEFAULT_ITERATIONS),
            Err(SaslError::EmptyPassword)
        );
        assert_eq!(
            Credentials::derive("\u{AD}", DEFAULT_ITERATIONS),
            Err(SaslError::EmptyPassword)
        );
        assert_eq!(
            Credentials::derive("pw", 4095),
            Err(SaslError::IterationsOutOfRange(4095))
        );
        assert_eq!(
            ScramKeys::derive(ScramHash::Sha1, "pw", b"", 1),
            Err(SaslError::InvalidSalt)
        );
        assert_eq!(
            ScramKeys::derive(ScramHash::Sha1, "pw", b"s", 0),
            Err(SaslError::IterationsOutOfRange(0))
        );
    }

    #[test]
    fn rfc5802_salted_password_keys() {
        let salt = super::super::base64::decode("QSXCR+Q6sek8bf92").unwrap();
        let k = ScramKeys::derive(ScramHash::Sha1, "pencil", &salt, 4096).unwrap();
        let salted = salted_password(ScramHash::Sha1, "pencil", &salt, iterations(4096).unwrap());
        assert_eq!(
            super::super::base64::encode(&salted),
            "HZbuOlKbWl+eR8AfIposuKbhX30="
        );
        assert_eq!(
            k.stored_key,
            h(ScramHash::Sha1, &client_key(ScramHash::Sha1, &salted))
        );
    }

    #[test]
    fn bytes_round_trip() {
        let c = Credentials::derive("correct horse", DEFAULT_ITERATIONS).unwrap();
        let bytes = c.to_bytes();
        assert_eq!(bytes[..2], [2, 2]);
        assert_eq!(bytes.len(), 2 + 2 * (6 + SALT_LEN) + 2 * (20 + 32));
        assert_eq!(Credentials::from_bytes(&bytes).unwrap(), c);
        // Version 1: no count, both records.
        let mut v1 = vec![1];
        v1.extend_from_slice(&bytes[2..]);
        assert_eq!(Credentials::from_bytes(&v1).unwrap(), c);
    }

    #[test]
    fn bytes_corrupt() {
        let c = Credentials::derive("x", DEFAULT_ITERATIONS).unwrap();
        let bytes = c.to_bytes();
        assert!(matches!(
            Credentials::from_bytes(&[]),
            Err(SaslError::CorruptCredentials(_))
        ));
        let mut v3 = bytes.clone();
        v3[0] = 3;
        assert_eq!(
            Credentials::from_bytes(&v3),
            Err(SaslError::UnsupportedCredentialsVersion(3))
        );
        for len in 0..bytes.len() {
            assert!(
                Credentials::from_bytes(&bytes[..len]).is_err(),
                "prefix {len}"
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(Credentials::from_bytes(&long).is_err());
        for count in [0, 1, 3] {
            let mut wrong_count = bytes.clone();
            wrong_count[1] = count;
            assert!(Credentials::from_bytes(&wrong_count).is_err(), "{count}");
        }
        let mut swapped = bytes.clone();
        swapped[2] = 2;
        assert!(Credentials::from_bytes(&swapped).is_err());
        let mut zero_iter = bytes.clone();
        zero_iter[3..7].copy_from_slice(&[0; 4]);
        assert!(Credentials::from_bytes(&zero_iter).is_err());
        let mut huge_iter = bytes.clone();
        huge_iter[3..7].copy_from_slice(&[0xff; 4]);
        assert!(Credentials::from_bytes(&huge_iter).is_err());
        let mut no_salt = bytes.clone();
        no_salt[7] = 0;
        assert!(Credentials::from_bytes(&no_salt).is_err());
        // Every single-byte corruption either fails or yields a well-formed record.
        for i in 0..bytes.len() {
            for x in [0x00, 0x01, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= x;
                if let Ok(c) = Credentials::from_bytes(&b) {
                    assert!(c.all_keys().all(ScramKeys::is_well_formed));
                }
            }
        }
    }

    #[test]
    fn one_hash_only() {
        let full = Credentials::derive("pencil", DEFAULT_ITERATIONS).unwrap();
        let sha1 = full.keys(ScramHash::Sha1).unwrap().clone();
        let sha256 = full.keys(ScramHash::Sha256).unwrap().clone();
        let only1 = Credentials::from_keys(vec![sha1.clone()]).unwrap();
        assert!(only1.keys(ScramHash::Sha256).is_none());
        assert!(only1.verify_password("pencil") && !only1.verify_password("x"));
        let only256 = Credentials::from_keys(vec![sha256.clone()]).unwrap();
        assert!(only256.keys(ScramHash::Sha1).is_none());
        for c in [&only1, &only256, &full] {
            let bytes = c.to_bytes();
            assert_eq!(&Credentials::from_bytes(&bytes).unwrap(), c);
            for len in 0..bytes.len() {
                assert!(Credentials::from_bytes(&bytes[..len]).is_err());
            }
        }
        assert_eq!(
            Credentials::from_keys(vec![sha1, sha256.clone()]).unwrap(),
            full
        );
        assert!(Credentials::from_keys(vec![]).is_err());
        assert!(Credentials::from_keys(vec![sha256.clone(), sha256.clone()]).is_err());
        let mut short = sha256;
        short.stored_key.pop();
        assert!(Credentials::from_keys(vec![short]).is_err());
    }

    #[test]
    fn constant_time_eq() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }
}
