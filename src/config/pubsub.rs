//! `[pubsub]`: publish-subscribe (XEP-0060), both the nodes accounts keep
//! on their own JIDs (PEP, XEP-0163: avatars, bookmarks, OMEMO keys) and
//! the service on each host's `pubsub` domain, plus the entity-capabilities
//! cache (XEP-0115) that decides which PEP notifications a client gets.

use std::ops::RangeInclusive;

use toml::Spanned;

use super::limits::Limits;
use super::toml_reader::TableReader;

/// Who may create nodes on a host's pubsub service. Accounts always create
/// their own PEP nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateNodes {
    /// Server administrators (`admins`) only.
    Admins,
    /// Accounts on one of this server's hosts.
    Local,
    /// Anyone who can reach the service, remote users included.
    Anyone,
}

impl CreateNodes {
    /// Every choice with its name in the file.
    pub const ALL: [(&'static str, CreateNodes); 3] = [
        ("admins", CreateNodes::Admins),
        ("local", CreateNodes::Local),
        ("anyone", CreateNodes::Anyone),
    ];

    /// The choice's name in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            CreateNodes::Admins => "admins",
            CreateNodes::Local => "local",
            CreateNodes::Anyone => "anyone",
        }
    }
}

/// Publish-subscribe limits and policy, the same for every host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PubsubConfig {
    /// Most items a node keeps; what a client's `pubsub#max_items = max`
    /// means (1..=10_000).
    pub max_items: u32,
    /// Most PEP nodes one account may have (1..=10_000).
    pub max_nodes_per_account: u32,
    /// Most nodes on one pubsub service (`pubsub.<domain>`)
    /// (1..=1_000_000).
    pub max_nodes: u32,
    /// Largest item payload in bytes (1_024..=16 MiB, and at most
    /// `[limits] max_stanza_bytes`, since an item arrives in one stanza).
    pub max_item_bytes: usize,
    /// Publish requests one account may make per minute: a burst of that
    /// many, refilling evenly (1..=100_000).
    pub publish_per_minute: u32,
    /// Who may create nodes on the pubsub service.
    pub create_nodes: CreateNodes,
    /// Whether items on the pubsub service carry their publisher's JID.
    pub expose_publisher: bool,
    /// Entity-capabilities sets remembered (XEP-0115) (16..=100_000).
    pub caps_cache: u32,
    /// Most subscriptions one node holds (1..=1_000_000).
    pub max_subscriptions_per_node: u32,
}

impl Default for PubsubConfig {
    fn default() -> Self {
        PubsubConfig {
            max_items: 256,
            max_nodes_per_account: 100,
            max_nodes: 1_000,
            max_item_bytes: 262_144,
            publish_per_minute: 300,
            create_nodes: CreateNodes::Local,
            expose_publisher: true,
            caps_cache: 1_000,
            max_subscriptions_per_node: 10_000,
        }
    }
}

/// The largest `max_item_bytes` accepted whatever `[limits]` says: 16 MiB.
const MAX_ITEM_BYTES: i64 = 16 * 1024 * 1024;

impl PubsubConfig {
    /// The defaults under `limits`: an item payload larger than a stanza
    /// could never arrive, so the default shrinks to fit.
    pub(super) fn defaults_within(limits: &Limits) -> PubsubConfig {
        let defaults = PubsubConfig::default();
        PubsubConfig {
            max_item_bytes: defaults.max_item_bytes.min(limits.max_stanza_bytes),
            ..defaults
        }
    }

    /// Reads and checks the `[pubsub]` table, `limits` being the `[limits]`
    /// already read; absent keys keep their defaults.
    pub(super) fn read(table: &mut TableReader<'_, '_>, limits: &Limits) -> PubsubConfig {
        let defaults = PubsubConfig::defaults_within(limits);
        let max_items = bounded(table, "max_items", 1..=10_000, defaults.max_items);
        let max_nodes_per_account = bounded(
            table,
            "max_nodes_per_account",
            1..=10_000,
            defaults.max_nodes_per_account,
        );
        let max_nodes = bounded(table, "max_nodes", 1..=1_000_000, defaults.max_nodes);
        let max_item_bytes = read_max_item_bytes(table, limits, defaults.max_item_bytes);
        let publish_per_minute = bounded(
            table,
            "publish_per_minute",
            1..=100_000,
            defaults.publish_per_minute,
        );
        let create_nodes = read_create_nodes(table, defaults.create_nodes);
        let expose_publisher = table
            .boolean("expose_publisher")
            .map_or(defaults.expose_publisher, Spanned::into_inner);
        let caps_cache = bounded(table, "caps_cache", 16..=100_000, defaults.caps_cache);
        let max_subscriptions_per_node = bounded(
            table,
            "max_subscriptions_per_node",
            1..=1_000_000,
            defaults.max_subscriptions_per_node,
        );
        PubsubConfig {
            max_items,
            max_nodes_per_account,
            max_nodes,
            max_item_bytes,
            publish_per_minute,
            create_nodes,
            expose_publisher,
            caps_cache,
            max_subscriptions_per_node,
        }
    }
}

/// Reads the integer `key`, which must be within `range`; absent or
/// refused (and reported), it is `default`.
pub(super) fn bounded<T>(
    table: &mut TableReader<'_, '_>,
    key: &'static str,
    range: RangeInclusive<i64>,
    default: T,
) -> T
where
    T: TryFrom<i64> + Copy + std::fmt::Display,
{
    match table.integer(key) {
        Some(value) => bounded_value(table, key, value, range, default),
        None => default,
    }
}

/// `value`, read from `key`, if it is within `range`; `default` otherwise,
/// reported naming the range and the default. (The shared `in_range` does
/// not name the default, which tells the reader what leaving the key out
/// would give.)
pub(super) fn bounded_value<T>(
    table: &mut TableReader<'_, '_>,
    key: &'static str,
    value: Spanned<i64>,
    range: RangeInclusive<i64>,
    default: T,
) -> T
where
    T: TryFrom<i64> + Copy + std::fmt::Display,
{
    let span = value.span();
    let value = value.into_inner();
    let converted = range
        .contains(&value)
        .then(|| T::try_from(value).ok())
        .flatten();
    converted.unwrap_or_else(|| {
        let key = table.key_path(key);
        table.problem(
            span,
            format_args!(
                "{key}: must be between {} and {} (default {default}); found {value}",
                range.start(),
                range.end()
            ),
        );
        default
    })
}

/// `max_item_bytes`: within its own range, and no larger than a stanza may
/// be, since a larger item could never be published.
fn read_max_item_bytes(table: &mut TableReader<'_, '_>, limits: &Limits, default: usize) -> usize {
    let Some(value) = table.integer("max_item_bytes") else {
        return default;
    };
    let stanza_bytes = limits.max_stanza_bytes;
    let fits = usize::try_from(*value.get_ref()).is_ok_and(|bytes| bytes <= stanza_bytes);
    if (1_024..=MAX_ITEM_BYTES).contains(value.get_ref()) && !fits {
        let key = table.key_path("max_item_bytes");
        table.problem(
            value.span(),
            format_args!(
                "{key}: must not be above limits.max_stanza_bytes ({stanza_bytes}), as an item arrives in one stanza; found {}; lower {key} or raise limits.max_stanza_bytes",
                value.get_ref()
            ),
        );
        return default;
    }
    bounded_value(
        table,
        "max_item_bytes",
        value,
        1_024..=MAX_ITEM_BYTES,
        default,
    )
}

fn read_create_nodes(table: &mut TableReader<'_, '_>, default: CreateNodes) -> CreateNodes {
    let Some(value) = table.string("create_nodes") else {
        return default;
    };
    let found = CreateNodes::ALL
        .iter()
        .find(|(name, _)| *name == value.get_ref().as_str());
    match found {
        Some(&(_, choice)) => choice,
        None => {
            let names: Vec<&str> = CreateNodes::ALL.iter().map(|&(name, _)| name).collect();
            let key = table.key_path("create_nodes");
            table.problem(
                value.span(),
                format_args!(
                    "{key}: expected one of {} (default {:?}); found {:?}",
                    names.join(", "),
                    default.as_str(),
                    value.get_ref()
                ),
            );
            default
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{error, parse, problems};
    use super::*;

    fn pubsub(text: &str) -> PubsubConfig {
        match parse(text) {
            Ok(config) => config.pubsub,
            Err(err) => panic!("refused {text:?}: {err}"),
        }
    }

    #[test]
    fn defaults() {
        let config = pubsub("");
        assert_eq!(config, PubsubConfig::default());
        assert_eq!(pubsub("[pubsub]\n"), config);
        assert_eq!(config.max_items, 256);
        assert_eq!(config.max_nodes_per_account, 100);
        assert_eq!(config.max_nodes, 1_000);
        assert_eq!(config.max_item_bytes, 262_144);
        assert_eq!(config.publish_per_minute, 300);
        assert_eq!(config.create_nodes, CreateNodes::Local);
        assert!(config.expose_publisher);
        assert_eq!(config.caps_cache, 1_000);
        assert_eq!(config.max_subscriptions_per_node, 10_000);
    }

    #[test]
    fn every_key_set() {
        let config = pubsub(
            "[limits]\nmax_stanza_bytes = 1048576\n[pubsub]\nmax_items = 10000\n\
             max_nodes_per_account = 1\nmax_nodes = 1000000\nmax_item_bytes = 1048576\n\
             publish_per_minute = 100000\ncreate_nodes = \"admins\"\nexpose_publisher = false\n\
             caps_cache = 16\nmax_subscriptions_per_node = 1\n",
        );
        assert_eq!(
            config,
            PubsubConfig {
                max_items: 10_000,
                max_nodes_per_account: 1,
                max_nodes: 1_000_000,
                max_item_bytes: 1 << 20,
                publish_per_minute: 100_000,
                create_nodes: CreateNodes::Admins,
                expose_publisher: false,
                caps_cache: 16,
                max_subscriptions_per_node: 1,
            }
        );
        let config = pubsub(
            "[limits]\nmax_stanza_bytes = 67108864\n[pubsub]\nmax_items = 1\n\
             max_nodes_per_account = 10000\nmax_nodes = 1\nmax_item_bytes = 16777216\n\
             publish_per_minute = 1\ncaps_cache = 100000\nmax_subscriptions_per_node = 1000000\n",
        );
        assert_eq!(
            config,
            PubsubConfig {
                max_items: 1,
                max_nodes_per_account: 10_000,
                max_nodes: 1,
                max_item_bytes: 16 << 20,
                publish_per_minute: 1,
                caps_cache: 100_000,
                max_subscriptions_per_node: 1_000_000,
                ..PubsubConfig::default()
            }
        );
        assert_eq!(
            pubsub("[pubsub]\nmax_item_bytes = 1024\n").max_item_bytes,
            1024
        );
        for (name, choice) in CreateNodes::ALL {
            assert_eq!(choice.as_str(), name);
            let text = format!("[pubsub]\ncreate_nodes = \"{name}\"\n");
            assert_eq!(pubsub(&text).create_nodes, choice);
        }
    }

    #[test]
    fn out_of_range_values_name_the_key_the_range_and_the_default() {
        let cases = [
            (
                "max_items = 0",
                "pubsub.max_items: must be between 1 and 10000 (default 256); found 0",
            ),
            (
                "max_items = 10001",
                "pubsub.max_items: must be between 1 and 10000 (default 256); found 10001",
            ),
            (
                "max_nodes_per_account = 0",
                "pubsub.max_nodes_per_account: must be between 1 and 10000 (default 100); found 0",
            ),
            (
                "max_nodes_per_account = 10001",
                "pubsub.max_nodes_per_account: must be between 1 and 10000 (default 100); found 10001",
            ),
            (
                "max_nodes = 0",
                "pubsub.max_nodes: must be between 1 and 1000000 (default 1000); found 0",
            ),
            (
                "max_nodes = 1000001",
                "pubsub.max_nodes: must be between 1 and 1000000 (default 1000); found 1000001",
            ),
            (
                "max_item_bytes = 1023",
                "pubsub.max_item_bytes: must be between 1024 and 16777216 (default 262144); found 1023",
            ),
            (
                "max_item_bytes = -1",
                "pubsub.max_item_bytes: must be between 1024 and 16777216 (default 262144); found -1",
            ),
            (
                "max_item_bytes = 16777217",
                "pubsub.max_item_bytes: must be between 1024 and 16777216 (default 262144); found 16777217",
            ),
            (
                "publish_per_minute = 0",
                "pubsub.publish_per_minute: must be between 1 and 100000 (default 300); found 0",
            ),
            (
                "publish_per_minute = 100001",
                "pubsub.publish_per_minute: must be between 1 and 100000 (default 300); found 100001",
            ),
            (
                "caps_cache = 15",
                "pubsub.caps_cache: must be between 16 and 100000 (default 1000); found 15",
            ),
            (
                "caps_cache = 100001",
                "pubsub.caps_cache: must be between 16 and 100000 (default 1000); found 100001",
            ),
            (
                "max_subscriptions_per_node = 0",
                "pubsub.max_subscriptions_per_node: must be between 1 and 1000000 (default 10000); found 0",
            ),
            (
                "max_subscriptions_per_node = 1000001",
                "pubsub.max_subscriptions_per_node: must be between 1 and 1000000 (default 10000); found 1000001",
            ),
            (
                "max_items = -9223372036854775808",
                "pubsub.max_items: must be between 1 and 10000 (default 256); found -9223372036854775808",
            ),
            (
                "create_nodes = \"everyone\"",
                "pubsub.create_nodes: expected one of admins, local, anyone (default \"local\"); found \"everyone\"",
            ),
            (
                "create_nodes = \"Local\"",
                "pubsub.create_nodes: expected one of admins, local, anyone (default \"local\"); found \"Local\"",
            ),
        ];
        for (line, message) in cases {
            // With [limits] allowing the largest items, only the key's own
            // range applies.
            let text = format!("[limits]\nmax_stanza_bytes = 67108864\n[pubsub]\n{line}\n");
            assert_eq!(error(&text), format!("perch.toml:4: {message}"), "{line}");
        }
    }

    #[test]
    fn wrong_types_name_the_key() {
        assert_eq!(
            problems(
                "[pubsub]\nmax_items = \"256\"\nexpose_publisher = \"yes\"\ncreate_nodes = true\n"
            ),
            vec![
                "perch.toml:2: pubsub.max_items: expected an integer, found string \"256\"",
                "perch.toml:3: pubsub.expose_publisher: expected true or false, found string \"yes\"",
                "perch.toml:4: pubsub.create_nodes: expected a string, found boolean `true`",
            ]
        );
        assert_eq!(
            error("pubsub = true\n"),
            "perch.toml:1: pubsub: expected a table, found boolean `true`"
        );
    }

    #[test]
    fn every_problem_is_reported_in_file_order() {
        let text =
            "[pubsub]\nmax_items = 0\nmax_nodes = 0\ncreate_nodes = \"all\"\ncaps_cache = 1\n";
        let lines: Vec<String> = problems(text)
            .iter()
            .map(|problem| problem.split(' ').take(2).collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(
            lines,
            vec![
                "perch.toml:2: pubsub.max_items:",
                "perch.toml:3: pubsub.max_nodes:",
                "perch.toml:4: pubsub.create_nodes:",
                "perch.toml:5: pubsub.caps_cache:",
            ]
        );
    }

    #[test]
    fn item_bytes_fit_in_a_stanza() {
        assert_eq!(
            error("[limits]\nmax_stanza_bytes = 100000\n[pubsub]\nmax_item_bytes = 100001\n"),
            "perch.toml:4: pubsub.max_item_bytes: must not be above limits.max_stanza_bytes (100000), as an item arrives in one stanza; found 100001; lower pubsub.max_item_bytes or raise limits.max_stanza_bytes"
        );
        // The default limits.max_stanza_bytes (262144) counts too.
        assert_eq!(
            error("[pubsub]\nmax_item_bytes = 1048576\n"),
            "perch.toml:2: pubsub.max_item_bytes: must not be above limits.max_stanza_bytes (262144), as an item arrives in one stanza; found 1048576; lower pubsub.max_item_bytes or raise limits.max_stanza_bytes"
        );
        assert_eq!(
            pubsub("[limits]\nmax_stanza_bytes = 100000\n[pubsub]\nmax_item_bytes = 100000\n")
                .max_item_bytes,
            100_000
        );
        // Unwritten, the default shrinks to what a stanza can carry, with
        // or without a [pubsub] section.
        assert_eq!(
            pubsub("[limits]\nmax_stanza_bytes = 10000\n").max_item_bytes,
            10_000
        );
        assert_eq!(
            pubsub("[limits]\nmax_stanza_bytes = 10000\n[pubsub]\nmax_items = 5\n").max_item_bytes,
            10_000
        );
        assert_eq!(
            error("[limits]\nmax_stanza_bytes = 10000\n[pubsub]\nmax_item_bytes = 1000\n"),
            "perch.toml:4: pubsub.max_item_bytes: must be between 1024 and 16777216 (default 10000); found 1000"
        );
        // A [limits] refused for its own reason falls back to its default.
        assert_eq!(
            problems("[limits]\nmax_stanza_bytes = 5\n[pubsub]\nmax_item_bytes = 200000\n"),
            vec![
                "perch.toml:2: limits.max_stanza_bytes: must be between 10000 and 67108864; found 5"
            ]
        );
    }

    #[test]
    fn unknown_keys_list_the_pubsub_keys() {
        assert_eq!(
            error("[pubsub]\nmax_item = 5\n"),
            "perch.toml:2: unknown key 'max_item' in [pubsub] (expected one of: max_items, max_nodes_per_account, max_nodes, max_item_bytes, publish_per_minute, create_nodes, expose_publisher, caps_cache, max_subscriptions_per_node)"
        );
        assert!(
            error("pubsub.max_payload = 5\n")
                .starts_with("perch.toml:1: unknown key 'max_payload' in [pubsub]")
        );
    }
}
