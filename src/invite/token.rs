//! Invitation tokens: 130 bits from the operating system's random
//! generator, written in lower-case base32 (RFC 4648's alphabet, no
//! padding): 26 letters and digits that need no escaping in a URI, in an
//! HTML attribute or in a path, and that survive being read aloud.

/// The characters a token is written with: each stands for 5 bits.
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Characters of a token: 26 x 5 = 130 bits, from 17 random bytes.
pub const TOKEN_CHARS: usize = 26;

/// Why no token could be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RandomFailed;

impl std::fmt::Display for RandomFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the system random generator failed; no invite was made")
    }
}

impl std::error::Error for RandomFailed {}

/// A fresh token. Unlike stanza ids (`crate::ids`), a token is a secret:
/// if the OS generator fails there is no fallback, only the error.
pub fn new_token() -> Result<String, RandomFailed> {
    let mut bytes = [0u8; 17];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| RandomFailed)?;
    Ok(encode(&bytes))
}

/// The first [`TOKEN_CHARS`] base32 characters of `bytes` (17 bytes give
/// 136 bits; the last 6 are dropped).
fn encode(bytes: &[u8; 17]) -> String {
    let mut out = String::with_capacity(TOKEN_CHARS);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 && out.len() < TOKEN_CHARS {
            bits -= 5;
            let index = ((acc >> bits) & 31) as usize;
            out.push(char::from(ALPHABET[index]));
        }
        acc &= (1 << bits) - 1;
    }
    out
}

/// Whether `text` could be a token this server made: the right length
/// and alphabet. Anything else is refused before the database is asked.
pub fn is_well_formed(text: &str) -> bool {
    text.len() == TOKEN_CHARS && text.bytes().all(|b| ALPHABET.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_distinct_and_url_safe() {
        let a = new_token().expect("random");
        let b = new_token().expect("random");
        assert_ne!(a, b);
        for t in [&a, &b] {
            assert_eq!(t.len(), TOKEN_CHARS);
            assert!(is_well_formed(t), "{t}");
            assert!(
                t.bytes()
                    .all(|c| c.is_ascii_lowercase() || (b'2'..=b'7').contains(&c))
            );
        }
    }

    #[test]
    fn encoding_uses_every_bit_in_order() {
        assert_eq!(encode(&[0; 17]), "a".repeat(TOKEN_CHARS));
        assert_eq!(encode(&[0xff; 17]), "7".repeat(TOKEN_CHARS));
        // 0x08 0x88 = 00001 00010 00100 0…: b, c, e, then a.
        let mut bytes = [0u8; 17];
        bytes[0] = 0x08;
        bytes[1] = 0x88;
        assert!(encode(&bytes).starts_with("bcea"), "{}", encode(&bytes));
    }

    #[test]
    fn malformed_tokens() {
        assert!(!is_well_formed(""));
        assert!(!is_well_formed(&"a".repeat(TOKEN_CHARS + 1)));
        assert!(!is_well_formed(&"A".repeat(TOKEN_CHARS)));
        assert!(!is_well_formed(&"1".repeat(TOKEN_CHARS)));
        assert!(!is_well_formed(&format!(
            "{}%",
            "a".repeat(TOKEN_CHARS - 1)
        )));
    }
}
