//! `[c2s]`: how client connections are secured and how long they may idle
//! or dawdle.

use toml::Spanned;

use super::toml_reader::TableReader;

/// Client-to-server stream policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct C2sConfig {
    /// Refuse SASL on a plaintext listener until STARTTLS has succeeded.
    pub require_encryption: bool,
    /// Offer SASL PLAIN on unencrypted streams; only sensible in tests.
    pub allow_plaintext_auth: bool,
    /// Connections that have not authenticated within this many seconds
    /// are closed (1..=3600).
    pub auth_timeout_secs: u32,
    /// Send a whitespace keepalive after this many idle seconds, so NAT
    /// routers keep the connection open and dead peers surface on the
    /// write (10..=3600).
    pub keepalive_secs: u32,
    /// Once its first byte has arrived, a stanza must be complete within
    /// this many seconds (1..=3600), so a client cannot hold a half stanza
    /// (and its buffer) open forever.
    pub stanza_timeout_secs: u32,
    /// A stanza in progress must arrive at this many bytes per second on
    /// average, counted from 10 s after its first byte (or a third of
    /// `stanza_timeout_secs`, if shorter); 0 turns it off (..=1000000).
    pub stanza_min_bytes_per_sec: u32,
    /// A write to the client that makes no progress for this many seconds
    /// ends the connection (1..=3600): the client is gone, or does not
    /// read what it is sent.
    pub write_timeout_secs: u32,
}

impl Default for C2sConfig {
    fn default() -> Self {
        C2sConfig {
            require_encryption: true,
            allow_plaintext_auth: false,
            auth_timeout_secs: 30,
            keepalive_secs: 240,
            stanza_timeout_secs: 30,
            stanza_min_bytes_per_sec: 100,
            write_timeout_secs: 60,
        }
    }
}

impl C2sConfig {
    /// Reads and checks the `[c2s]` table; absent keys keep their defaults.
    pub(super) fn read(table: &mut TableReader<'_, '_>) -> C2sConfig {
        let defaults = C2sConfig::default();
        let require_encryption = table
            .boolean("require_encryption")
            .map_or(defaults.require_encryption, Spanned::into_inner);
        let allow_plaintext_auth = match table.boolean("allow_plaintext_auth") {
            Some(allow) => {
                if *allow.get_ref() && require_encryption {
                    table.problem(
                        allow.span(),
                        "c2s.allow_plaintext_auth = true has no effect while c2s.require_encryption = true; set require_encryption = false too",
                    );
                }
                allow.into_inner()
            }
            None => defaults.allow_plaintext_auth,
        };
        C2sConfig {
            require_encryption,
            allow_plaintext_auth,
            auth_timeout_secs: table.optional_integer(
                "auth_timeout_secs",
                1..=3_600,
                defaults.auth_timeout_secs,
            ),
            keepalive_secs: table.optional_integer(
                "keepalive_secs",
                10..=3_600,
                defaults.keepalive_secs,
            ),
            stanza_timeout_secs: table.optional_integer(
                "stanza_timeout_secs",
                1..=3_600,
                defaults.stanza_timeout_secs,
            ),
            stanza_min_bytes_per_sec: table.optional_integer(
                "stanza_min_bytes_per_sec",
                0..=1_000_000,
                defaults.stanza_min_bytes_per_sec,
            ),
            write_timeout_secs: table.optional_integer(
                "write_timeout_secs",
                1..=3_600,
                defaults.write_timeout_secs,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::problems;

    #[test]
    fn plaintext_auth_needs_encryption_off() {
        assert_eq!(
            problems("[c2s]\nallow_plaintext_auth = true\n"),
            vec![
                "perch.toml:2: c2s.allow_plaintext_auth = true has no effect while c2s.require_encryption = true; set require_encryption = false too"
            ]
        );
    }
}
