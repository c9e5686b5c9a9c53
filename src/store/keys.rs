//! How keys and values of Perch's tables are laid out as bytes. Every table
//! maps bytes to bytes (see `schema.rs` for why); these functions are the
//! only place that knows the layouts, and the decoders check everything, so
//! a damaged record becomes a [`StoreError::Corrupt`] naming its table, not
//! a panic.
//!
//! Keys:
//! - one part (a bare JID, a room, a secret's name): the UTF-8 bytes;
//! - two parts (owner and contact, room and user, account and namespace):
//!   `first` 0x00 `second`. JIDs and XML names cannot contain NUL (XML
//!   forbids the character), so bytewise order is the order of the pairs,
//!   and all keys of one owner form the range [`first` 0x00, `first` 0x01);
//! - owner and sequence number: `owner` 0x00, then the number as 8 bytes big
//!   endian, so that key order is number order;
//! - owner, second part and number (an index by the second part, e.g. an
//!   archive's messages with one peer): `owner` 0x00 `second` 0x00 number,
//!   so that one owner's keys of one second part form a range in number
//!   order.
//!
//! Values: u64 as 8 bytes big endian, a pair of u64 as 16, a string as its
//! UTF-8 bytes, nothing as no bytes.

use std::ops::Range;

use redb::{TableDefinition, TableHandle};

use super::StoreError;

/// The one table type of the schema.
pub(crate) type Def = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// Ends the first part of a two-part key.
pub(crate) const SEPARATOR: u8 = 0x00;
/// The byte after [`SEPARATOR`]: `owner` followed by it sorts after every
/// key that starts with `owner` and the separator.
const AFTER_SEPARATOR: u8 = 0x01;

/// The value of a table that only records presence.
pub(crate) const EMPTY: &[u8] = &[];

/// The key of a record that belongs to one name.
pub(crate) fn single(part: &str) -> &[u8] {
    part.as_bytes()
}

/// The key of a record that belongs to `first` and `second`; refuses a
/// part with a NUL in it, which would make the key ambiguous.
pub(crate) fn pair(table: Def, first: &str, second: &str) -> Result<Vec<u8>, StoreError> {
    check_part(table, first)?;
    check_part(table, second)?;
    let mut key = Vec::with_capacity(first.len() + 1 + second.len());
    key.extend_from_slice(first.as_bytes());
    key.push(SEPARATOR);
    key.extend_from_slice(second.as_bytes());
    Ok(key)
}

/// The key of `owner`'s record number `seq`.
pub(crate) fn numbered(table: Def, owner: &str, seq: u64) -> Result<Vec<u8>, StoreError> {
    check_part(table, owner)?;
    let mut key = Vec::with_capacity(owner.len() + 1 + 8);
    key.extend_from_slice(owner.as_bytes());
    key.push(SEPARATOR);
    key.extend_from_slice(&seq.to_be_bytes());
    Ok(key)
}

fn check_part(table: Def, part: &str) -> Result<(), StoreError> {
    if part.as_bytes().contains(&SEPARATOR) {
        return Err(StoreError::InvalidKey {
            table: table.name().to_string(),
            part: part.to_string(),
        });
    }
    Ok(())
}

/// A half-open range of keys, owned so that it can outlive its parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyRange {
    start: Vec<u8>,
    end: Vec<u8>,
}

impl KeyRange {
    /// The bounds to pass to a table's `range` (always this one type, so
    /// redb's range code is compiled once).
    pub(crate) fn bounds(&self) -> Range<&[u8]> {
        self.start.as_slice()..self.end.as_slice()
    }
}

/// Every key whose first part is `owner` (two-part and numbered keys).
pub(crate) fn owned_by(table: Def, owner: &str) -> Result<KeyRange, StoreError> {
    check_part(table, owner)?;
    let mut start = Vec::with_capacity(owner.len() + 1);
    start.extend_from_slice(owner.as_bytes());
    let mut end = start.clone();
    start.push(SEPARATOR);
    end.push(AFTER_SEPARATOR);
    Ok(KeyRange { start, end })
}

/// `owner`'s numbered keys from `first` up to and including `last`.
pub(crate) fn numbered_between(
    table: Def,
    owner: &str,
    first: u64,
    last: u64,
) -> Result<KeyRange, StoreError> {
    let start = numbered(table, owner, first)?;
    let end = match last.checked_add(1) {
        Some(next) => numbered(table, owner, next)?,
        None => owned_by(table, owner)?.end,
    };
    Ok(KeyRange { start, end })
}

/// The second part of a two-part key of `owner` (read from the range
/// [`owned_by`] gave).
pub(crate) fn second_part<'k>(
    table: Def,
    owner: &str,
    key: &'k [u8],
) -> Result<&'k str, StoreError> {
    let second = key
        .strip_prefix(owner.as_bytes())
        .and_then(|rest| rest.strip_prefix(&[SEPARATOR]))
        .ok_or_else(|| corrupt(table, format!("a key that does not belong to {owner}")))?;
    std::str::from_utf8(second)
        .map_err(|_| corrupt(table, format!("a key of {owner} that is not UTF-8")))
}

/// The sequence number of a numbered key of `owner`.
pub(crate) fn number(table: Def, owner: &str, key: &[u8]) -> Result<u64, StoreError> {
    key.strip_prefix(owner.as_bytes())
        .and_then(|rest| rest.strip_prefix(&[SEPARATOR]))
        .and_then(|rest| <[u8; 8]>::try_from(rest).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| corrupt(table, format!("a numbered key of {owner} is malformed")))
}

/// The key of `owner`'s record number `seq` filed under `second`.
pub(crate) fn pair_numbered(
    table: Def,
    owner: &str,
    second: &str,
    seq: u64,
) -> Result<Vec<u8>, StoreError> {
    let mut key = pair(table, owner, second)?;
    key.reserve(9);
    key.push(SEPARATOR);
    key.extend_from_slice(&seq.to_be_bytes());
    Ok(key)
}

/// `owner`'s keys filed under `second` numbered from `first` up to and
/// including `last`.
pub(crate) fn pair_numbered_between(
    table: Def,
    owner: &str,
    second: &str,
    first: u64,
    last: u64,
) -> Result<KeyRange, StoreError> {
    let start = pair_numbered(table, owner, second, first)?;
    let end = match last.checked_add(1) {
        Some(next) => pair_numbered(table, owner, second, next)?,
        None => {
            let mut end = pair(table, owner, second)?;
            end.push(AFTER_SEPARATOR);
            end
        }
    };
    Ok(KeyRange { start, end })
}

/// The number of a key of `owner` filed under `second` (read from the
/// range [`pair_numbered_between`] gave).
pub(crate) fn pair_number(
    table: Def,
    owner: &str,
    second: &str,
    key: &[u8],
) -> Result<u64, StoreError> {
    key.strip_prefix(owner.as_bytes())
        .and_then(|rest| rest.strip_prefix(&[SEPARATOR]))
        .and_then(|rest| rest.strip_prefix(second.as_bytes()))
        .and_then(|rest| rest.strip_prefix(&[SEPARATOR]))
        .and_then(|rest| <[u8; 8]>::try_from(rest).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| {
            corrupt(
                table,
                format!("a key of {owner} under {second} is malformed"),
            )
        })
}

pub(crate) fn u64_value(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

pub(crate) fn read_u64(table: Def, value: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(value)
        .map(u64::from_be_bytes)
        .map_err(|_| corrupt(table, format!("a {}-byte number", value.len())))
}

pub(crate) fn u64_pair_value(first: u64, second: u64) -> [u8; 16] {
    let mut out = [0; 16];
    let (a, b) = out.split_at_mut(8);
    a.copy_from_slice(&first.to_be_bytes());
    b.copy_from_slice(&second.to_be_bytes());
    out
}

pub(crate) fn read_u64_pair(table: Def, value: &[u8]) -> Result<(u64, u64), StoreError> {
    let pair = value
        .split_first_chunk::<8>()
        .and_then(|(a, rest)| Some((a, <&[u8; 8]>::try_from(rest).ok()?)));
    match pair {
        Some((a, b)) => Ok((u64::from_be_bytes(*a), u64::from_be_bytes(*b))),
        None => Err(corrupt(
            table,
            format!("a {}-byte pair of numbers", value.len()),
        )),
    }
}

pub(crate) fn read_str(table: Def, value: &[u8]) -> Result<&str, StoreError> {
    std::str::from_utf8(value).map_err(|_| corrupt(table, "text that is not UTF-8".to_string()))
}

pub(crate) fn corrupt(table: Def, detail: String) -> StoreError {
    StoreError::Corrupt(format!("table {}: {detail}", table.name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Def = TableDefinition::new("test");

    #[test]
    fn single_keys_are_the_string() {
        assert_eq!(single("a@b"), b"a@b");
    }

    #[test]
    fn pairs_sort_like_tuples() {
        let ordered = [
            ("a@b", ""),
            ("a@b", "x@y"),
            ("a@b", "z"),
            ("a@b.c", "a"),
            ("a@bc", ""),
            ("b", "a"),
        ];
        let keys: Vec<Vec<u8>> = ordered
            .iter()
            .map(|(a, b)| pair(T, a, b).expect("key"))
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        assert_eq!(keys[1], b"a@b\0x@y");
    }

    #[test]
    fn a_nul_in_a_part_is_refused() {
        for (a, b) in [("a\0b", "c"), ("a", "b\0"), ("\0", "")] {
            assert!(matches!(
                pair(T, a, b),
                Err(StoreError::InvalidKey { ref table, .. }) if table == "test"
            ));
        }
        assert!(numbered(T, "a\0", 1).is_err());
        assert!(owned_by(T, "a\0").is_err());
    }

    #[test]
    fn an_owners_range_holds_exactly_its_keys() {
        let range = owned_by(T, "a@b").expect("range");
        let inside = |k: &[u8]| range.bounds().contains(&k);
        assert!(inside(&pair(T, "a@b", "").expect("key")));
        assert!(inside(&pair(T, "a@b", "\u{10FFFF}").expect("key")));
        assert!(inside(&numbered(T, "a@b", u64::MAX).expect("key")));
        assert!(!inside(&pair(T, "a@bc", "").expect("key")));
        assert!(!inside(&pair(T, "a@", "b").expect("key")));
        assert!(!inside(b"a@b"));
    }

    #[test]
    fn numbered_keys_sort_by_number() {
        let keys: Vec<Vec<u8>> = [0u64, 1, 255, 256, 65_536, u64::MAX]
            .iter()
            .map(|&n| numbered(T, "a@b", n).expect("key"))
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(number(T, "a@b", &keys[3]).expect("number"), 256);
        assert!(number(T, "a@b", b"a@b\0short").is_err());
        assert!(number(T, "a@c", &keys[3]).is_err());

        let some = numbered_between(T, "a@b", 1, 256).expect("range");
        let inside = |n: u64| {
            some.bounds()
                .contains(&numbered(T, "a@b", n).expect("key").as_slice())
        };
        assert!(!inside(0) && inside(1) && inside(255) && inside(256) && !inside(257));
        let all = numbered_between(T, "a@b", 0, u64::MAX).expect("range");
        assert!(keys.iter().all(|k| all.bounds().contains(&k.as_slice())));
        assert_eq!(all.end, owned_by(T, "a@b").expect("range").end);
    }

    #[test]
    fn pair_numbered_keys_group_by_second_part() {
        let keys: Vec<Vec<u8>> = [("a", 0u64), ("a", 7), ("a", u64::MAX), ("ab", 0), ("b", 1)]
            .iter()
            .map(|&(second, n)| pair_numbered(T, "o@h", second, n).expect("key"))
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        assert_eq!(pair_number(T, "o@h", "a", &keys[1]).expect("number"), 7);
        assert!(pair_number(T, "o@h", "ab", &keys[1]).is_err());
        assert!(pair_number(T, "o@h", "a", b"o@h\0a\0short").is_err());
        assert!(pair_numbered(T, "o@h", "a\0", 1).is_err());

        let inside = |range: &KeyRange, k: &Vec<u8>| range.bounds().contains(&k.as_slice());
        let all_a = pair_numbered_between(T, "o@h", "a", 0, u64::MAX).expect("range");
        assert!(keys[..3].iter().all(|k| inside(&all_a, k)));
        assert!(!inside(&all_a, &keys[3]) && !inside(&all_a, &keys[4]));
        let some = pair_numbered_between(T, "o@h", "a", 1, 7).expect("range");
        assert!(!inside(&some, &keys[0]) && inside(&some, &keys[1]) && !inside(&some, &keys[2]));
        assert!(
            keys.iter()
                .all(|k| inside(&owned_by(T, "o@h").expect("range"), k))
        );
    }

    #[test]
    fn second_parts_are_checked() {
        let key = pair(T, "a@b", "c@d").expect("key");
        assert_eq!(second_part(T, "a@b", &key).expect("part"), "c@d");
        assert!(second_part(T, "a@", &key).is_err());
        assert!(second_part(T, "a@b", b"a@b\0\xff").is_err());
    }

    #[test]
    fn values_round_trip_and_bad_ones_are_corrupt() {
        assert_eq!(read_u64(T, &u64_value(300)).expect("u64"), 300);
        assert_eq!(u64_value(1), [0, 0, 0, 0, 0, 0, 0, 1]);
        assert!(matches!(read_u64(T, &[1, 2]), Err(StoreError::Corrupt(m)) if m.contains("test")));
        assert_eq!(
            read_u64_pair(T, &u64_pair_value(7, u64::MAX)).expect("pair"),
            (7, u64::MAX)
        );
        assert!(read_u64_pair(T, &[0; 15]).is_err());
        assert!(read_u64_pair(T, &[0; 17]).is_err());
        assert_eq!(read_str(T, "ünï".as_bytes()).expect("str"), "ünï");
        assert!(read_str(T, b"\xc3").is_err());
    }
}
