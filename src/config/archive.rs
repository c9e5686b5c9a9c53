//! `[archive]`: the message archive (XEP-0313) of accounts and rooms: who
//! archives what by default, how long it is kept, how much, and how much
//! one query returns.

use std::time::Duration;

use toml::Spanned;

use super::toml_reader::TableReader;

/// What an account archives before its owner sets preferences
/// (XEP-0313 `<prefs default='…'>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultPolicy {
    /// Every conversation.
    Always,
    /// Only conversations with contacts in the roster.
    Roster,
    /// None (unless the owner lists the contact under `always`).
    Never,
}

impl DefaultPolicy {
    /// Every policy with its name in the file (and in XEP-0313).
    pub const ALL: [(&'static str, DefaultPolicy); 3] = [
        ("always", DefaultPolicy::Always),
        ("roster", DefaultPolicy::Roster),
        ("never", DefaultPolicy::Never),
    ];

    /// The policy's name in the file and in XEP-0313.
    pub fn as_str(self) -> &'static str {
        match self {
            DefaultPolicy::Always => "always",
            DefaultPolicy::Roster => "roster",
            DefaultPolicy::Never => "never",
        }
    }
}

/// The message archive of accounts and rooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveConfig {
    /// How long an account's archived messages are kept; `None`: forever
    /// (`expires`: `"never"`, or one day to 100 years).
    pub expires: Option<Duration>,
    /// How long a room's archived messages are kept; `None`: forever
    /// (`room_expires`, written like `expires`).
    pub room_expires: Option<Duration>,
    /// What an account archives until its owner says otherwise
    /// (`default`).
    pub default_policy: DefaultPolicy,
    /// Whether a new stored room archives its messages
    /// (`muc#roomconfig_enablearchiving`); owners may change it.
    pub rooms_by_default: bool,
    /// Bytes of archive one account may keep; the oldest messages go first
    /// (`max_mib_per_account`, 1..=1000000 MiB).
    pub max_bytes_per_account: u64,
    /// Bytes of archive one room may keep; the oldest messages go first
    /// (`max_mib_per_room`, 1..=1000000 MiB).
    pub max_bytes_per_room: u64,
    /// Messages a query returns when it does not say (RSM `max`)
    /// (1..=`page_max`).
    pub page_default: usize,
    /// The most messages one query returns, whatever it asks for
    /// (1..=1000).
    pub page_max: usize,
    /// How often expired messages are removed (`cleanup_interval_secs`,
    /// 10..=86400).
    pub cleanup_interval: Duration,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        const DAY: u64 = 24 * 60 * 60;
        ArchiveConfig {
            expires: Some(Duration::from_secs(365 * DAY)),
            room_expires: Some(Duration::from_secs(365 * DAY)),
            default_policy: DefaultPolicy::Always,
            rooms_by_default: true,
            max_bytes_per_account: 100 << 20,
            max_bytes_per_room: 100 << 20,
            page_default: 50,
            page_max: 250,
            cleanup_interval: Duration::from_secs(600),
        }
    }
}

impl ArchiveConfig {
    /// Reads and checks the `[archive]` table; absent keys keep their
    /// defaults.
    pub(super) fn read(table: &mut TableReader<'_, '_>) -> ArchiveConfig {
        let defaults = ArchiveConfig::default();
        let expires = read_expiry(table, "expires", defaults.expires);
        let room_expires = read_expiry(table, "room_expires", defaults.room_expires);
        let default_policy = match table.string("default") {
            None => defaults.default_policy,
            Some(value) => {
                let found = DefaultPolicy::ALL
                    .iter()
                    .find(|(name, _)| *name == value.get_ref().as_str());
                match found {
                    Some(&(_, policy)) => policy,
                    None => {
                        let names: Vec<&str> = DefaultPolicy::ALL.iter().map(|&(n, _)| n).collect();
                        table.problem(
                            value.span(),
                            format_args!(
                                "archive.default: expected one of {}; found {:?}",
                                names.join(", "),
                                value.get_ref()
                            ),
                        );
                        defaults.default_policy
                    }
                }
            }
        };
        let rooms_by_default = table
            .boolean("rooms_by_default")
            .map_or(defaults.rooms_by_default, Spanned::into_inner);
        let max_mib_per_account: u64 = table.optional_integer(
            "max_mib_per_account",
            1..=MAX_MIB,
            defaults.max_bytes_per_account >> 20,
        );
        let max_mib_per_room: u64 = table.optional_integer(
            "max_mib_per_room",
            1..=MAX_MIB,
            defaults.max_bytes_per_room >> 20,
        );
        // Read in the documented order, but checked against page_max, which
        // comes after it.
        let page_default = table.integer("page_default");
        let page_max: usize = table.optional_integer("page_max", 1..=MAX_PAGE, defaults.page_max);
        let page_default = match page_default {
            Some(value) => read_page_default(table, value, page_max),
            None => None,
        }
        .unwrap_or(defaults.page_default.min(page_max));
        let cleanup_interval_secs: u64 = table.optional_integer(
            "cleanup_interval_secs",
            10..=86_400,
            defaults.cleanup_interval.as_secs(),
        );
        ArchiveConfig {
            expires,
            room_expires,
            default_policy,
            rooms_by_default,
            max_bytes_per_account: max_mib_per_account << 20,
            max_bytes_per_room: max_mib_per_room << 20,
            page_default,
            page_max,
            cleanup_interval: Duration::from_secs(cleanup_interval_secs),
        }
    }
}

/// The most MiB `max_mib_per_account` and `max_mib_per_room` accept: about
/// a TiB, beyond any disk Perch is meant for, yet far from overflowing when
/// turned into bytes.
const MAX_MIB: i64 = 1_000_000;

/// The most `page_max` accepts: a page is built in memory and sent as one
/// burst of stanzas, so one query must not be able to ask for the archive.
const MAX_PAGE: i64 = 1_000;

/// `page_default`, which must be between 1 and `page_max`; `None` (and
/// reported) otherwise.
fn read_page_default(
    table: &mut TableReader<'_, '_>,
    value: Spanned<i64>,
    page_max: usize,
) -> Option<usize> {
    let max = i64::try_from(page_max).unwrap_or(MAX_PAGE);
    if *value.get_ref() > max {
        // Say why: with page_max left out, its value is not in the file.
        table.problem(
            value.span(),
            format_args!(
                "archive.page_default: must not be above archive.page_max ({page_max}); found {}",
                value.get_ref()
            ),
        );
        return None;
    }
    table.in_range("page_default", value, 1..=max)
}

const DAY_SECS: u64 = 24 * 60 * 60;

/// The units an expiry is written in, with their length in seconds. A
/// year is 365 days. There is no `m`: minutes or months, readers would
/// guess differently.
const UNITS: [(&str, u64); 6] = [
    ("s", 1),
    ("min", 60),
    ("h", 60 * 60),
    ("d", DAY_SECS),
    ("w", 7 * DAY_SECS),
    ("y", 365 * DAY_SECS),
];

/// Expiries shorter than a day are refused: they delete messages before
/// their owner has had a chance to look them up, so they are almost
/// certainly a slip (`"30min"` for `"30d"`, seconds for days).
const MIN_EXPIRY_SECS: u64 = DAY_SECS;

/// Beyond 100 years, "never" says what is meant.
const MAX_EXPIRY_SECS: u64 = 100 * 365 * DAY_SECS;

/// Why an expiry was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExpiryError {
    /// Not `never`, nor digits followed by one of [`UNITS`].
    NotADuration,
    /// Digits followed by `m`.
    AmbiguousM,
    TooShort,
    TooLong,
}

impl ExpiryError {
    /// What follows `key: "value"` in the problem's message.
    fn explanation(self) -> &'static str {
        match self {
            ExpiryError::NotADuration => {
                "is not a duration; write a whole number and a unit (s, min, h, d, w, or y for 365 days), e.g. \"30d\", \"12w\", \"1y\", or \"never\""
            }
            ExpiryError::AmbiguousM => {
                "is ambiguous (minutes or months?); write \"min\" for minutes, or days or weeks instead of months, e.g. \"30d\", \"26w\""
            }
            ExpiryError::TooShort => {
                "is shorter than 1 day, which would delete messages before their owner could look them up; write at least \"1d\", or \"never\""
            }
            ExpiryError::TooLong => {
                "is longer than 100 years; write \"never\" to keep messages forever"
            }
        }
    }
}

/// Parses an expiry: `never` (`None`), or a whole number directly followed
/// by a unit of [`UNITS`], between one day and 100 years.
fn parse_expiry(text: &str) -> Result<Option<Duration>, ExpiryError> {
    if text == "never" {
        return Ok(None);
    }
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    if number.is_empty() {
        return Err(ExpiryError::NotADuration);
    }
    if unit == "m" {
        return Err(ExpiryError::AmbiguousM);
    }
    let &(_, unit_secs) = UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .ok_or(ExpiryError::NotADuration)?;
    // Only digits are left, so a failure is an overflow: too long.
    let secs = number
        .parse::<u64>()
        .ok()
        .and_then(|count| count.checked_mul(unit_secs))
        .ok_or(ExpiryError::TooLong)?;
    if secs < MIN_EXPIRY_SECS {
        return Err(ExpiryError::TooShort);
    }
    if secs > MAX_EXPIRY_SECS {
        return Err(ExpiryError::TooLong);
    }
    Ok(Some(Duration::from_secs(secs)))
}

/// Reads the expiry `key`; absent or refused (and reported), it is
/// `default`.
fn read_expiry(
    table: &mut TableReader<'_, '_>,
    key: &'static str,
    default: Option<Duration>,
) -> Option<Duration> {
    let Some(value) = table.string(key) else {
        return default;
    };
    match parse_expiry(value.get_ref()) {
        Ok(expiry) => expiry,
        Err(err) => {
            let key = table.key_path(key);
            table.problem(
                value.span(),
                format_args!("{key}: {:?} {}", value.get_ref(), err.explanation()),
            );
            default
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{error, parse, problems};
    use super::*;

    const DAY: Duration = Duration::from_secs(DAY_SECS);

    fn archive(text: &str) -> ArchiveConfig {
        match parse(text) {
            Ok(config) => config.archive,
            Err(err) => panic!("refused {text:?}: {err}"),
        }
    }

    #[test]
    fn defaults() {
        let config = archive("");
        assert_eq!(config, ArchiveConfig::default());
        assert_eq!(archive("[archive]\n"), config);
        assert_eq!(config.expires, Some(DAY * 365));
        assert_eq!(config.room_expires, Some(DAY * 365));
        assert_eq!(config.default_policy, DefaultPolicy::Always);
        assert!(config.rooms_by_default);
        assert_eq!(config.max_bytes_per_account, 100 * 1024 * 1024);
        assert_eq!(config.max_bytes_per_room, 100 * 1024 * 1024);
        assert_eq!((config.page_default, config.page_max), (50, 250));
        assert_eq!(config.cleanup_interval, Duration::from_secs(600));
    }

    #[test]
    fn every_key_set() {
        let config = archive(
            "[archive]\nexpires = \"never\"\nroom_expires = \"12w\"\ndefault = \"roster\"\n\
             rooms_by_default = false\nmax_mib_per_account = 1\nmax_mib_per_room = 1000000\n\
             page_default = 10\npage_max = 1000\ncleanup_interval_secs = 86400\n",
        );
        assert_eq!(
            config,
            ArchiveConfig {
                expires: None,
                room_expires: Some(DAY * 84),
                default_policy: DefaultPolicy::Roster,
                rooms_by_default: false,
                max_bytes_per_account: 1 << 20,
                max_bytes_per_room: 1_000_000 << 20,
                page_default: 10,
                page_max: 1000,
                cleanup_interval: Duration::from_secs(86_400),
            }
        );
        assert_eq!(
            archive("[archive]\ndefault = \"never\"\ncleanup_interval_secs = 10\n"),
            ArchiveConfig {
                default_policy: DefaultPolicy::Never,
                cleanup_interval: Duration::from_secs(10),
                ..ArchiveConfig::default()
            }
        );
        for (name, policy) in DefaultPolicy::ALL {
            assert_eq!(policy.as_str(), name);
            let text = format!("[archive]\ndefault = \"{name}\"\n");
            assert_eq!(archive(&text).default_policy, policy);
        }
    }

    #[test]
    fn expiry_units() {
        let cases = [
            ("86400s", DAY),
            ("1440min", DAY),
            ("36h", DAY * 3 / 2),
            ("1d", DAY),
            ("30d", DAY * 30),
            ("12w", DAY * 84),
            ("1y", DAY * 365),
            ("100y", DAY * 36_500),
            ("36500d", DAY * 36_500),
            ("007d", DAY * 7),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_expiry(text), Ok(Some(expected)), "{text}");
            let config = archive(&format!("[archive]\nroom_expires = \"{text}\"\n"));
            assert_eq!(config.room_expires, Some(expected), "{text}");
        }
        assert_eq!(parse_expiry("never"), Ok(None));
    }

    #[test]
    fn expiries_that_are_not_durations() {
        for text in [
            "", "1 year", "30 d", " 30d", "30d ", "d", "30", "1.5y", "-1d", "+1d", "30D", "1Y",
            "Never", "forever", "0x10d", "1y6w", "30days", "1mo", "1ms", "١d",
        ] {
            assert_eq!(
                parse_expiry(text),
                Err(ExpiryError::NotADuration),
                "{text:?}"
            );
        }
        for text in ["6m", "90m", "0m"] {
            assert_eq!(parse_expiry(text), Err(ExpiryError::AmbiguousM), "{text:?}");
        }
        for text in ["0d", "0y", "86399s", "1439min", "23h"] {
            assert_eq!(parse_expiry(text), Err(ExpiryError::TooShort), "{text:?}");
        }
        for text in [
            "101y",
            "36501d",
            "5215w",
            "99999999999999999999999d",
            "18446744073709551615y",
        ] {
            assert_eq!(parse_expiry(text), Err(ExpiryError::TooLong), "{text:?}");
        }
    }

    #[test]
    fn refused_expiries_are_one_line_naming_the_key() {
        assert_eq!(
            error("[archive]\nexpires = \"1 year\"\n"),
            "perch.toml:2: archive.expires: \"1 year\" is not a duration; write a whole number and a unit (s, min, h, d, w, or y for 365 days), e.g. \"30d\", \"12w\", \"1y\", or \"never\""
        );
        assert_eq!(
            error("[archive]\nroom_expires = \"6m\"\n"),
            "perch.toml:2: archive.room_expires: \"6m\" is ambiguous (minutes or months?); write \"min\" for minutes, or days or weeks instead of months, e.g. \"30d\", \"26w\""
        );
        assert_eq!(
            error("[archive]\nexpires = \"12h\"\n"),
            "perch.toml:2: archive.expires: \"12h\" is shorter than 1 day, which would delete messages before their owner could look them up; write at least \"1d\", or \"never\""
        );
        assert_eq!(
            error("[archive]\nroom_expires = \"200y\"\n"),
            "perch.toml:2: archive.room_expires: \"200y\" is longer than 100 years; write \"never\" to keep messages forever"
        );
        assert_eq!(
            error("[archive]\nexpires = 30\n"),
            "perch.toml:2: archive.expires: expected a string, found integer `30`"
        );
    }

    #[test]
    fn wrong_values_are_reported_in_file_order() {
        let text = "[archive]\nexpires = \"30\"\nroom_expires = true\ndefault = \"roster only\"\n\
                    rooms_by_default = \"yes\"\nmax_mib_per_account = 0\nmax_mib_per_room = 1000001\n\
                    page_default = 0\npage_max = 1001\ncleanup_interval_secs = 9\n";
        let found = problems(text);
        assert_eq!(
            found,
            vec![
                "perch.toml:2: archive.expires: \"30\" is not a duration; write a whole number and a unit (s, min, h, d, w, or y for 365 days), e.g. \"30d\", \"12w\", \"1y\", or \"never\"",
                "perch.toml:3: archive.room_expires: expected a string, found boolean `true`",
                "perch.toml:4: archive.default: expected one of always, roster, never; found \"roster only\"",
                "perch.toml:5: archive.rooms_by_default: expected true or false, found string \"yes\"",
                "perch.toml:6: archive.max_mib_per_account: must be between 1 and 1000000; found 0",
                "perch.toml:7: archive.max_mib_per_room: must be between 1 and 1000000; found 1000001",
                "perch.toml:8: archive.page_default: must be between 1 and 250; found 0",
                "perch.toml:9: archive.page_max: must be between 1 and 1000; found 1001",
                "perch.toml:10: archive.cleanup_interval_secs: must be between 10 and 86400; found 9",
            ]
        );
        assert_eq!(
            problems(
                "[archive]\ncleanup_interval_secs = 86401\npage_max = 0\nmax_mib_per_account = -5\n"
            ),
            vec![
                "perch.toml:2: archive.cleanup_interval_secs: must be between 10 and 86400; found 86401",
                "perch.toml:3: archive.page_max: must be between 1 and 1000; found 0",
                "perch.toml:4: archive.max_mib_per_account: must be between 1 and 1000000; found -5",
            ]
        );
        assert_eq!(
            error("[archive]\npage_max = 1.5\n"),
            "perch.toml:2: archive.page_max: expected an integer, found floating point `1.5`"
        );
    }

    #[test]
    fn page_default_is_checked_against_page_max() {
        assert_eq!(
            error("[archive]\npage_default = 300\n"),
            "perch.toml:2: archive.page_default: must not be above archive.page_max (250); found 300"
        );
        assert_eq!(
            error("[archive]\npage_default = 20\npage_max = 10\n"),
            "perch.toml:2: archive.page_default: must not be above archive.page_max (10); found 20"
        );
        // Equal is fine; a smaller page_max lowers the unwritten default.
        let config = archive("[archive]\npage_default = 10\npage_max = 10\n");
        assert_eq!((config.page_default, config.page_max), (10, 10));
        let config = archive("[archive]\npage_max = 20\n");
        assert_eq!((config.page_default, config.page_max), (20, 20));
        let config = archive("[archive]\npage_default = 1000\npage_max = 1000\n");
        assert_eq!((config.page_default, config.page_max), (1000, 1000));
    }

    #[test]
    fn unknown_keys_list_the_archive_keys() {
        assert_eq!(
            error("[archive]\nexpire = \"30d\"\n"),
            "perch.toml:2: unknown key 'expire' in [archive] (expected one of: expires, room_expires, default, rooms_by_default, max_mib_per_account, max_mib_per_room, page_default, page_max, cleanup_interval_secs)"
        );
        assert!(
            error("archive.max_bytes_per_account = 5\n")
                .starts_with("perch.toml:1: unknown key 'max_bytes_per_account' in [archive]")
        );
        assert_eq!(
            error("archive = \"on\"\n"),
            "perch.toml:1: archive: expected a table, found string \"on\""
        );
    }
}
