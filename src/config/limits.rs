//! `[limits]`: the resources one client, one address or everyone together
//! may make the server hold.

use super::toml_reader::TableReader;

/// RFC 6120 §13.12 forbids servers to reject stanzas smaller than this.
pub const MIN_STANZA_BYTES: usize = 10_000;

/// Resource limits, chosen to keep a small machine responsive under abuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// At least [`MIN_STANZA_BYTES`].
    pub max_stanza_bytes: usize,
    pub max_connections_per_ip: u32,
    pub max_connections: usize,
    /// Failed logins from one address (or against one account) before
    /// further attempts wait; the count fades with a half-life of 10
    /// minutes. At least 1. (The name is historical.)
    pub login_attempts_per_minute: u32,
    /// The longest wait between two login attempts from one address
    /// (1..=3600 s).
    pub login_delay_cap_secs: u32,
    /// The longest wait between two login attempts on one account, and so
    /// the longest its owner waits to log in while others guess (1..=300 s).
    pub login_account_delay_cap_secs: u32,
    /// Largest vCard (XEP-0054) an account may store, serialized.
    pub max_vcard_bytes: usize,
    /// Private XML (XEP-0049) one account may store, all namespaces together.
    pub max_private_xml_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_stanza_bytes: 262_144,
            max_connections_per_ip: 32,
            max_connections: 10_000,
            login_attempts_per_minute: 10,
            login_delay_cap_secs: 60,
            login_account_delay_cap_secs: 15,
            max_vcard_bytes: 131_072,
            max_private_xml_bytes: 262_144,
        }
    }
}

impl Limits {
    /// Reads and checks the `[limits]` table; absent keys keep their defaults.
    pub(super) fn read(table: &mut TableReader<'_, '_>) -> Limits {
        let defaults = Limits::default();
        Limits {
            max_stanza_bytes: table.optional_integer(
                "max_stanza_bytes",
                10_000..=64 * 1024 * 1024,
                defaults.max_stanza_bytes,
            ),
            max_connections_per_ip: table.optional_integer(
                "max_connections_per_ip",
                1..=1_000_000,
                defaults.max_connections_per_ip,
            ),
            max_connections: table.optional_integer(
                "max_connections",
                1..=1_000_000,
                defaults.max_connections,
            ),
            login_attempts_per_minute: table.optional_integer(
                "login_attempts_per_minute",
                1..=10_000,
                defaults.login_attempts_per_minute,
            ),
            login_delay_cap_secs: table.optional_integer(
                "login_delay_cap_secs",
                1..=3_600,
                defaults.login_delay_cap_secs,
            ),
            login_account_delay_cap_secs: table.optional_integer(
                "login_account_delay_cap_secs",
                1..=300,
                defaults.login_account_delay_cap_secs,
            ),
            max_vcard_bytes: table.optional_integer(
                "max_vcard_bytes",
                1_024..=16 * 1024 * 1024,
                defaults.max_vcard_bytes,
            ),
            max_private_xml_bytes: table.optional_integer(
                "max_private_xml_bytes",
                1_024..=64 * 1024 * 1024,
                defaults.max_private_xml_bytes,
            ),
        }
    }
}
