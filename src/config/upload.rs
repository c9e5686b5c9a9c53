//! `[upload]`: HTTP File Upload (XEP-0363), the service on each host's
//! `upload` domain that hands out upload slots, and the limits on what it
//! stores: one file, one account per day, all files together, and how long
//! files and unused slots are kept.

use std::ops::RangeInclusive;

use super::pubsub::bounded;
use super::toml_reader::TableReader;

/// One mebibyte, for the defaults.
const MIB: u64 = 1024 * 1024;

/// The largest byte count any key accepts: 2^53, what an HTTP
/// `Content-Length` may say to Perch's listener.
const MAX_BYTES: i64 = 1 << 53;

/// File upload limits, the same for every host's upload service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadConfig {
    /// Largest file, in bytes; advertised in disco#info (XEP-0363 §3) so
    /// clients can refuse before asking (1..=2^53).
    pub max_file_bytes: u64,
    /// Bytes one account may upload within any 24 hours, counting every
    /// slot it was given in that time (1..=2^53, at least
    /// `max_file_bytes`).
    pub daily_quota_bytes: u64,
    /// Bytes all stored files may take together, counting slots handed out
    /// and not yet used or expired (1..=2^53, at least `max_file_bytes`).
    pub max_total_bytes: u64,
    /// Days a file is kept after its upload; 0 keeps files until an
    /// administrator purges them (0..=36500).
    pub expire_days: u32,
    /// Seconds an upload (PUT) URL stays valid after it was handed out
    /// (10..=86400).
    pub slot_lifetime_secs: u32,
    /// The media types a slot may be asked for (`image/png`, or a whole
    /// type as `image/*`), lower case; empty: any. A slot asked for
    /// without a type counts as `application/octet-stream`.
    pub allowed_types: Vec<String>,
}

impl Default for UploadConfig {
    fn default() -> Self {
        UploadConfig {
            max_file_bytes: 100 * MIB,
            daily_quota_bytes: 1024 * MIB,
            max_total_bytes: 10 * 1024 * MIB,
            expire_days: 30,
            slot_lifetime_secs: 300,
            allowed_types: Vec::new(),
        }
    }
}

impl UploadConfig {
    /// Reads and checks the `[upload]` table; absent keys keep their
    /// defaults.
    pub(super) fn read(table: &mut TableReader<'_, '_>) -> UploadConfig {
        let defaults = UploadConfig::default();
        let max_file_bytes = bounded(
            table,
            "max_file_bytes",
            1..=MAX_BYTES,
            defaults.max_file_bytes,
        );
        let daily_quota_bytes = at_least_max_file(
            table,
            "daily_quota_bytes",
            max_file_bytes,
            defaults.daily_quota_bytes,
        );
        let max_total_bytes = at_least_max_file(
            table,
            "max_total_bytes",
            max_file_bytes,
            defaults.max_total_bytes,
        );
        let expire_days = bounded(table, "expire_days", 0..=36_500, defaults.expire_days);
        let slot_lifetime_secs = bounded(
            table,
            "slot_lifetime_secs",
            10..=86_400,
            defaults.slot_lifetime_secs,
        );
        let allowed_types = read_allowed_types(table);
        UploadConfig {
            max_file_bytes,
            daily_quota_bytes,
            max_total_bytes,
            expire_days,
            slot_lifetime_secs,
            allowed_types,
        }
    }

    /// Whether a slot may be given for a file of media type `essence`
    /// (`type/subtype`, lower case, without parameters).
    pub fn allows(&self, essence: &str) -> bool {
        if self.allowed_types.is_empty() {
            return true;
        }
        let major = essence.split('/').next().unwrap_or_default();
        self.allowed_types.iter().any(|allowed| {
            allowed == essence || allowed.strip_suffix("/*").is_some_and(|m| m == major)
        })
    }

    /// How long a stored file is kept, in seconds; `None`: until purged.
    pub fn expire_secs(&self) -> Option<u64> {
        (self.expire_days > 0).then(|| u64::from(self.expire_days) * 86_400)
    }
}

/// A byte limit that must leave room for one file of `max_file_bytes`
/// (else the advertised maximum could never be uploaded); the default
/// stands when absent or refused (and reported). A default below
/// `max_file_bytes` (a raised maximum) is raised with it.
fn at_least_max_file(
    table: &mut TableReader<'_, '_>,
    key: &'static str,
    max_file_bytes: u64,
    default: u64,
) -> u64 {
    let default = default.max(max_file_bytes);
    let Some(value) = table.integer(key) else {
        return default;
    };
    let found = *value.get_ref();
    let in_range: RangeInclusive<i64> = 1..=MAX_BYTES;
    if in_range.contains(&found) && u64::try_from(found).is_ok_and(|n| n < max_file_bytes) {
        let path = table.key_path(key);
        let max = table.key_path("max_file_bytes");
        table.problem(
            value.span(),
            format_args!(
                "{path}: must be at least {max} ({max_file_bytes}), or no file of the largest size could be uploaded; found {found}; raise {path} or lower {max}"
            ),
        );
        return default;
    }
    super::pubsub::bounded_value(table, key, value, in_range, default)
}

/// `allowed_types`: each `type/subtype` or `type/*` (RFC 9110 tokens),
/// kept in lower case; a malformed one is reported and left out.
fn read_allowed_types(table: &mut TableReader<'_, '_>) -> Vec<String> {
    let Some(values) = table.strings("allowed_types") else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for value in values {
        let text = value.get_ref().to_ascii_lowercase();
        if is_media_pattern(&text) {
            if !out.contains(&text) {
                out.push(text);
            }
        } else {
            let key = table.key_path("allowed_types");
            table.problem(
                value.span(),
                format_args!(
                    "{key}: {:?} is not a media type such as \"image/png\" or a whole type such as \"image/*\"",
                    value.get_ref()
                ),
            );
        }
    }
    out
}

/// `type/subtype` or `type/*`, both RFC 9110 tokens (`*` is one, but not
/// as the type), no parameters.
fn is_media_pattern(text: &str) -> bool {
    let Some((major, minor)) = text.split_once('/') else {
        return false;
    };
    major != "*" && is_media_token(major) && (minor == "*" || is_media_token(minor))
}

/// An RFC 9110 token (`tchar`s, at least one).
pub fn is_media_token(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{error, parse, problems};
    use super::*;

    fn upload(text: &str) -> UploadConfig {
        match parse(text) {
            Ok(config) => config.upload,
            Err(err) => panic!("refused {text:?}: {err}"),
        }
    }

    #[test]
    fn defaults() {
        let config = upload("");
        assert_eq!(config, UploadConfig::default());
        assert_eq!(upload("[upload]\n"), config);
        assert_eq!(config.max_file_bytes, 104_857_600);
        assert_eq!(config.daily_quota_bytes, 1_073_741_824);
        assert_eq!(config.max_total_bytes, 10_737_418_240);
        assert_eq!(config.expire_days, 30);
        assert_eq!(config.slot_lifetime_secs, 300);
        assert!(config.allowed_types.is_empty());
        assert_eq!(config.expire_secs(), Some(30 * 86_400));
        assert!(config.allows("application/x-executable"));
    }

    #[test]
    fn every_key_set() {
        let config = upload(
            "[upload]\nmax_file_bytes = 10000000\ndaily_quota_bytes = 10000000\n\
             max_total_bytes = 9007199254740992\nexpire_days = 0\nslot_lifetime_secs = 10\n\
             allowed_types = [\"text/plain\", \"IMAGE/*\", \"image/*\"]\n",
        );
        assert_eq!(
            config,
            UploadConfig {
                max_file_bytes: 10_000_000,
                daily_quota_bytes: 10_000_000,
                max_total_bytes: 1 << 53,
                expire_days: 0,
                slot_lifetime_secs: 10,
                allowed_types: vec!["text/plain".into(), "image/*".into()],
            }
        );
        assert_eq!(config.expire_secs(), None);
        assert!(config.allows("text/plain"));
        assert!(config.allows("image/png"));
        assert!(!config.allows("imagex/png"));
        assert!(!config.allows("text/html"));
        assert!(!config.allows("application/octet-stream"));
        let config = upload("[upload]\nexpire_days = 36500\nslot_lifetime_secs = 86400\n");
        assert_eq!(config.expire_days, 36_500);
        assert_eq!(config.slot_lifetime_secs, 86_400);
    }

    /// Raising the largest file above the default quota raises the
    /// defaults of the quota and the total with it.
    #[test]
    fn defaults_make_room_for_the_largest_file() {
        let config = upload("[upload]\nmax_file_bytes = 20000000000\n");
        assert_eq!(config.daily_quota_bytes, 20_000_000_000);
        assert_eq!(config.max_total_bytes, 20_000_000_000);
    }

    #[test]
    fn out_of_range_values_name_the_key_the_range_and_the_default() {
        let cases = [
            (
                "max_file_bytes = 0",
                "upload.max_file_bytes: must be between 1 and 9007199254740992 (default 104857600); found 0",
            ),
            (
                "max_file_bytes = 9007199254740993",
                "upload.max_file_bytes: must be between 1 and 9007199254740992 (default 104857600); found 9007199254740993",
            ),
            (
                "daily_quota_bytes = -1",
                "upload.daily_quota_bytes: must be between 1 and 9007199254740992 (default 1073741824); found -1",
            ),
            (
                "max_total_bytes = 0",
                "upload.max_total_bytes: must be between 1 and 9007199254740992 (default 10737418240); found 0",
            ),
            (
                "expire_days = -1",
                "upload.expire_days: must be between 0 and 36500 (default 30); found -1",
            ),
            (
                "expire_days = 36501",
                "upload.expire_days: must be between 0 and 36500 (default 30); found 36501",
            ),
            (
                "slot_lifetime_secs = 9",
                "upload.slot_lifetime_secs: must be between 10 and 86400 (default 300); found 9",
            ),
            (
                "slot_lifetime_secs = 86401",
                "upload.slot_lifetime_secs: must be between 10 and 86400 (default 300); found 86401",
            ),
            (
                "daily_quota_bytes = 1000",
                "upload.daily_quota_bytes: must be at least upload.max_file_bytes (104857600), or no file of the largest size could be uploaded; found 1000; raise upload.daily_quota_bytes or lower upload.max_file_bytes",
            ),
            (
                "max_total_bytes = 104857599",
                "upload.max_total_bytes: must be at least upload.max_file_bytes (104857600), or no file of the largest size could be uploaded; found 104857599; raise upload.max_total_bytes or lower upload.max_file_bytes",
            ),
            (
                "allowed_types = [\"image\"]",
                "upload.allowed_types: \"image\" is not a media type such as \"image/png\" or a whole type such as \"image/*\"",
            ),
            (
                "allowed_types = [\"*/*\"]",
                "upload.allowed_types: \"*/*\" is not a media type such as \"image/png\" or a whole type such as \"image/*\"",
            ),
            (
                "allowed_types = [\"text/plain; charset=utf-8\"]",
                "upload.allowed_types: \"text/plain; charset=utf-8\" is not a media type such as \"image/png\" or a whole type such as \"image/*\"",
            ),
        ];
        for (line, message) in cases {
            let text = format!("[upload]\n{line}\n");
            assert_eq!(error(&text), format!("perch.toml:2: {message}"), "{line}");
        }
    }

    #[test]
    fn wrong_types_name_the_key() {
        assert_eq!(
            problems("[upload]\nmax_file_bytes = \"10M\"\nallowed_types = \"image/*\"\n"),
            vec![
                "perch.toml:2: upload.max_file_bytes: expected an integer, found string \"10M\"",
                "perch.toml:3: upload.allowed_types: expected an array, found string \"image/*\"",
            ]
        );
        assert!(
            error("[upload]\nmax_size = 1\n").starts_with(
                "perch.toml:2: unknown key 'max_size' in [upload] (expected one of: max_file_bytes, daily_quota_bytes, max_total_bytes, expire_days, slot_lifetime_secs, allowed_types)"
            )
        );
    }

    #[test]
    fn media_patterns() {
        for good in [
            "image/png",
            "image/*",
            "application/vnd.oasis+xml",
            "x-a/b.c",
        ] {
            assert!(is_media_pattern(good), "{good}");
        }
        for bad in [
            "",
            "image",
            "/png",
            "image/",
            "*/*",
            "image/png/x",
            "a b/c",
            "a/b;c=d",
        ] {
            assert!(!is_media_pattern(bad), "{bad}");
        }
    }
}
