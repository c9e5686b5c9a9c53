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
    /// How long a stream-managed session whose connection was lost waits
    /// for the client to resume it (XEP-0198), unless the client asks for
    /// less; 0 turns resumption off (0..=86400).
    pub resume_timeout_secs: u32,
    /// The longest wait a client may ask for with `<enable max/>`
    /// (0..=86400; at least `resume_timeout_secs`).
    pub max_resume_timeout_secs: u32,
    /// Stanzas a session waiting for resumption may collect (arrived since
    /// its connection was lost); one more ends it, and its messages go to
    /// offline storage. A connected client may leave four times as many
    /// unacknowledged after being asked (10..=100000).
    pub resume_queue_max: u32,
    /// The server asks a stream-managed client for an ack after this many
    /// stanzas (0: only by time; ..=10000).
    pub ack_request_stanzas: u32,
    /// ... or this many seconds after the oldest unacknowledged stanza was
    /// sent (1..=3600).
    pub ack_request_secs: u32,
    /// A connection silent for this many seconds is pinged (an `<r/>`
    /// with stream management, an XEP-0199 ping without); 0 turns pings
    /// off (0, or 10..=86400).
    pub ping_idle_secs: u32,
    /// A pinged connection that stays silent this many seconds more is
    /// taken as lost (its session waits for resumption, if it can)
    /// (5..=3600).
    pub ping_timeout_secs: u32,
    /// Stanzas held back for a client that said it is inactive (XEP-0352)
    /// before they are all sent anyway (1..=10000).
    pub csi_max_held: u32,
    /// Days a FAST token (XEP-0484: a client's password-free login, one
    /// round trip) stays valid; clients get a new one in its second half.
    /// 0 turns FAST off (0..=365).
    pub fast_token_days: u32,
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
            resume_timeout_secs: 300,
            max_resume_timeout_secs: 900,
            resume_queue_max: 500,
            ack_request_stanzas: 20,
            ack_request_secs: 30,
            ping_idle_secs: 300,
            ping_timeout_secs: 60,
            csi_max_held: 100,
            fast_token_days: 14,
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
        let auth_timeout_secs =
            table.optional_integer("auth_timeout_secs", 1..=3_600, defaults.auth_timeout_secs);
        let keepalive_secs =
            table.optional_integer("keepalive_secs", 10..=3_600, defaults.keepalive_secs);
        let stanza_timeout_secs = table.optional_integer(
            "stanza_timeout_secs",
            1..=3_600,
            defaults.stanza_timeout_secs,
        );
        let stanza_min_bytes_per_sec = table.optional_integer(
            "stanza_min_bytes_per_sec",
            0..=1_000_000,
            defaults.stanza_min_bytes_per_sec,
        );
        let write_timeout_secs =
            table.optional_integer("write_timeout_secs", 1..=3_600, defaults.write_timeout_secs);
        let resume_timeout_secs = table.optional_integer(
            "resume_timeout_secs",
            0..=86_400,
            defaults.resume_timeout_secs,
        );
        let max_resume_timeout_secs = table.optional_integer(
            "max_resume_timeout_secs",
            0..=86_400,
            defaults.max_resume_timeout_secs.max(resume_timeout_secs),
        );
        let max_resume_timeout_secs = if max_resume_timeout_secs < resume_timeout_secs {
            let span = table.span();
            table.problem(span, format!(
                "c2s.max_resume_timeout_secs ({max_resume_timeout_secs}) is below c2s.resume_timeout_secs ({resume_timeout_secs}); raise it or lower resume_timeout_secs"
            ));
            resume_timeout_secs
        } else {
            max_resume_timeout_secs
        };
        let resume_queue_max =
            table.optional_integer("resume_queue_max", 10..=100_000, defaults.resume_queue_max);
        let ack_request_stanzas = table.optional_integer(
            "ack_request_stanzas",
            0..=10_000,
            defaults.ack_request_stanzas,
        );
        let ack_request_secs =
            table.optional_integer("ack_request_secs", 1..=3_600, defaults.ack_request_secs);
        let ping_idle_secs =
            table.optional_integer("ping_idle_secs", 0..=86_400, defaults.ping_idle_secs);
        if (1..10).contains(&ping_idle_secs) {
            let span = table.span();
            table.problem(span, format!(
                "c2s.ping_idle_secs: must be 0 (off) or between 10 and 86400; found {ping_idle_secs}"
            ));
        }
        C2sConfig {
            require_encryption,
            allow_plaintext_auth,
            auth_timeout_secs,
            keepalive_secs,
            stanza_timeout_secs,
            stanza_min_bytes_per_sec,
            write_timeout_secs,
            resume_timeout_secs,
            max_resume_timeout_secs,
            resume_queue_max,
            ack_request_stanzas,
            ack_request_secs,
            ping_idle_secs,
            ping_timeout_secs: table.optional_integer(
                "ping_timeout_secs",
                5..=3_600,
                defaults.ping_timeout_secs,
            ),
            csi_max_held: table.optional_integer("csi_max_held", 1..=10_000, defaults.csi_max_held),
            fast_token_days: table.optional_integer(
                "fast_token_days",
                0..=365,
                defaults.fast_token_days,
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

    #[test]
    fn resumption_limits_are_checked_together() {
        assert_eq!(
            problems("[c2s]\nresume_timeout_secs = 600\nmax_resume_timeout_secs = 60\n"),
            vec![
                "perch.toml:1: c2s.max_resume_timeout_secs (60) is below c2s.resume_timeout_secs (600); raise it or lower resume_timeout_secs"
            ]
        );
        assert_eq!(
            problems("[c2s]\nping_idle_secs = 5\n"),
            vec![
                "perch.toml:1: c2s.ping_idle_secs: must be 0 (off) or between 10 and 86400; found 5"
            ]
        );
        let off =
            super::super::tests::parse("[c2s]\nping_idle_secs = 0\nresume_timeout_secs = 0\n")
                .expect("0 turns both off");
        assert_eq!(
            (off.c2s.ping_idle_secs, off.c2s.resume_timeout_secs),
            (0, 0)
        );
    }

    #[test]
    fn fast_token_lifetime_is_bounded_and_zero_turns_fast_off() {
        let problems = problems("[c2s]\nfast_token_days = 400\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("c2s.fast_token_days") && problems[0].contains("400"),
            "{problems:?}"
        );
        let off = super::super::tests::parse("[c2s]\nfast_token_days = 0\n").expect("0 is off");
        assert_eq!(off.c2s.fast_token_days, 0);
        let default = super::super::tests::parse("").expect("defaults");
        assert_eq!(default.c2s.fast_token_days, 14);
    }
}
