//! RFC 4648 §4 base64 (standard alphabet, with padding).
//!
//! Decoding is strict, as RFC 6120 §6.4.2 requires for SASL data: no
//! whitespace, padding only at the end, and the unused bits of the last
//! quantum must be zero, so every byte string has exactly one accepted
//! encoding.

use std::fmt;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Marks bytes outside the alphabet; the high bit lets a whole quantum be
/// checked with one OR.
const INVALID: u8 = 0xFF;

const DECODE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base64Error {
    /// The length is not a multiple of four.
    InvalidLength,
    /// A byte outside the alphabet (including whitespace), or '=' before
    /// the final quantum.
    InvalidByte { index: usize, byte: u8 },
    /// Padding in the wrong place, too much of it, or non-zero unused bits.
    InvalidPadding,
}

impl fmt::Display for Base64Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Base64Error::InvalidLength => f.write_str("base64 length is not a multiple of 4"),
            Base64Error::InvalidByte { index, byte } => {
                write!(f, "invalid base64 byte 0x{byte:02x} at offset {index}")
            }
            Base64Error::InvalidPadding => f.write_str("invalid base64 padding"),
        }
    }
}

impl std::error::Error for Base64Error {}

pub fn encoded_len(input_len: usize) -> usize {
    input_len.div_ceil(3) * 4
}

fn sextet(n: u32, shift: u32) -> u8 {
    ALPHABET[((n >> shift) & 63) as usize]
}

/// Appends the encoding of `input` to `out` (ASCII bytes). Bytes rather
/// than chars: a login encodes a few of these, and pushing chars one by
/// one into a `String` cost several hundred instructions per quantum.
pub fn encode_into(input: &[u8], out: &mut Vec<u8>) {
    out.reserve(encoded_len(input.len()));
    let (triples, rest) = input.as_chunks::<3>();
    for &[a, b, c] in triples {
        let n = u32::from(a) << 16 | u32::from(b) << 8 | u32::from(c);
        out.extend_from_slice(&[sextet(n, 18), sextet(n, 12), sextet(n, 6), sextet(n, 0)]);
    }
    match *rest {
        [a] => {
            let n = u32::from(a) << 16;
            out.extend_from_slice(&[sextet(n, 18), sextet(n, 12), b'=', b'=']);
        }
        [a, b] => {
            let n = u32::from(a) << 16 | u32::from(b) << 8;
            out.extend_from_slice(&[sextet(n, 18), sextet(n, 12), sextet(n, 6), b'=']);
        }
        _ => {}
    }
}

/// Appends the encoding of `input` to `out`.
pub fn encode_to(input: &[u8], out: &mut String) {
    let mut bytes = std::mem::take(out).into_bytes();
    encode_into(input, &mut bytes);
    // Only ASCII was appended to valid UTF-8: this cannot fail.
    *out = String::from_utf8(bytes).unwrap_or_default();
}

pub fn encode(input: &[u8]) -> String {
    let mut out = Vec::new();
    encode_into(input, &mut out);
    // Base64 is ASCII: this cannot fail.
    String::from_utf8(out).unwrap_or_default()
}

fn invalid_byte_in(quantum: &[u8], start: usize) -> Base64Error {
    quantum
        .iter()
        .position(|&b| DECODE[usize::from(b)] == INVALID)
        .map_or(Base64Error::InvalidPadding, |i| Base64Error::InvalidByte {
            index: start + i,
            byte: quantum.get(i).copied().unwrap_or_default(),
        })
}

/// Decodes strictly; accepts `&str`, `String`, `&[u8]`, ….
pub fn decode(input: impl AsRef<[u8]>) -> Result<Vec<u8>, Base64Error> {
    let input = input.as_ref();
    if input.len() % 4 != 0 {
        return Err(Base64Error::InvalidLength);
    }
    let (quanta, _) = input.as_chunks::<4>();
    let mut out = Vec::with_capacity(quanta.len() * 3);
    let last = quanta.len().saturating_sub(1);
    for (i, q) in quanta.iter().enumerate() {
        let [a, b, c, d] = q.map(|x| DECODE[usize::from(x)]);
        if (a | b | c | d) & 0x80 == 0 {
            let n = u32::from(a) << 18 | u32::from(b) << 12 | u32::from(c) << 6 | u32::from(d);
            out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
            continue;
        }
        // Only the final quantum may carry padding.
        if i != last || (a | b) & 0x80 != 0 {
            return Err(invalid_byte_in(q, i * 4));
        }
        let [_, _, third, fourth] = *q;
        match (third, fourth) {
            (b'=', b'=') => {
                if b & 0x0F != 0 {
                    return Err(Base64Error::InvalidPadding);
                }
                out.push(a << 2 | b >> 4);
            }
            (_, b'=') if c & 0x80 == 0 => {
                if c & 0x03 != 0 {
                    return Err(Base64Error::InvalidPadding);
                }
                out.extend_from_slice(&[a << 2 | b >> 4, b << 4 | c >> 2]);
            }
            (b'=', _) => return Err(Base64Error::InvalidPadding),
            _ => return Err(invalid_byte_in(q, i * 4)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC4648: [(&str, &str); 7] = [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ];

    #[test]
    fn rfc4648_vectors() {
        for (plain, enc) in RFC4648 {
            assert_eq!(encode(plain.as_bytes()), enc);
            assert_eq!(decode(enc).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn round_trip_all_lengths_and_bytes() {
        let data: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for len in 0..data.len() {
            let enc = encode(&data[..len]);
            assert_eq!(enc.len(), encoded_len(len));
            assert_eq!(decode(&enc).unwrap(), &data[..len]);
        }
        assert_eq!(encode(&[0xfb, 0xff, 0xbf]), "+/+/");
    }

    #[test]
    fn rejects_malformed() {
        use Base64Error::*;
        assert_eq!(decode("Zg="), Err(InvalidLength));
        assert_eq!(decode("Zg"), Err(InvalidLength));
        assert_eq!(decode("Zm9v\n"), Err(InvalidLength));
        assert_eq!(
            decode("Zm 9"),
            Err(InvalidByte {
                index: 2,
                byte: b' '
            })
        );
        assert_eq!(
            decode("Zm9\n"),
            Err(InvalidByte {
                index: 3,
                byte: b'\n'
            })
        );
        assert_eq!(
            decode("Zm9vZm9-"),
            Err(InvalidByte {
                index: 7,
                byte: b'-'
            })
        );
        assert_eq!(
            decode("Zm9_Zm9v"),
            Err(InvalidByte {
                index: 3,
                byte: b'_'
            })
        );
        assert_eq!(
            decode("Zg==Zg=="),
            Err(InvalidByte {
                index: 2,
                byte: b'='
            })
        );
        assert_eq!(
            decode("Zm=vZm9v"),
            Err(InvalidByte {
                index: 2,
                byte: b'='
            })
        );
        assert_eq!(
            decode("===="),
            Err(InvalidByte {
                index: 0,
                byte: b'='
            })
        );
        assert_eq!(
            decode("Z==="),
            Err(InvalidByte {
                index: 1,
                byte: b'='
            })
        );
        assert_eq!(decode("Zg=v"), Err(InvalidPadding));
        // Non-zero unused bits: "Zh==" and "Zm9=" are not canonical.
        assert_eq!(decode("Zh=="), Err(InvalidPadding));
        assert_eq!(decode("Zm9="), Err(InvalidPadding));
        assert_eq!(
            decode("Z\u{e9}v"),
            Err(InvalidByte {
                index: 1,
                byte: 0xc3
            })
        );
    }

    #[test]
    fn every_four_byte_string_decodes_canonically_or_errors() {
        // Exhaustive over a reduced alphabet covering all classes of byte.
        let sample = b"AQgw+/=9 \x00\xff";
        for &a in sample {
            for &b in sample {
                for &c in sample {
                    for &d in sample {
                        let q = [a, b, c, d];
                        if let Ok(bytes) = decode(q) {
                            assert_eq!(encode(&bytes).as_bytes(), q);
                        }
                    }
                }
            }
        }
    }
}
