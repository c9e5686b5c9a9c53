//! `[push]`: push notifications (XEP-0357) to the app servers of the
//! users' phones: what a notification may tell, how often one is sent, and
//! how many app servers an account may register.

use toml::Spanned;

use super::toml_reader::TableReader;

/// Push notifications (XEP-0357). The defaults are those of Prosody's
/// mod_cloud_notify: a notification says that something arrived, not who
/// sent it nor what it says, because it crosses the app vendor's servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushConfig {
    /// Put the sender's address in notifications (`last-message-sender`).
    pub include_sender: bool,
    /// Put the message text in notifications (`last-message-body`); never
    /// for encrypted messages.
    pub include_body: bool,
    /// Seconds (0..=3600) after a notification during which further
    /// messages for the same registration are only counted; the next
    /// notification carries their number. 0: one notification a message.
    pub coalesce_secs: u64,
    /// App servers (JID and node) one account may register (1..=100). A
    /// registration beyond it replaces the account's oldest.
    pub max_registrations_per_account: usize,
    /// Seconds (1..=3600) an app server has to answer a notification; one
    /// that does not has failed, as after an error, and its registration
    /// is disabled.
    pub answer_timeout_secs: u64,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            include_sender: false,
            include_body: false,
            coalesce_secs: 0,
            max_registrations_per_account: 5,
            answer_timeout_secs: 60,
        }
    }
}

impl PushConfig {
    /// Reads and checks the `[push]` table; absent keys keep their defaults.
    pub(super) fn read(table: &mut TableReader<'_, '_>) -> PushConfig {
        let defaults = PushConfig::default();
        PushConfig {
            include_sender: table
                .boolean("include_sender")
                .map_or(defaults.include_sender, Spanned::into_inner),
            include_body: table
                .boolean("include_body")
                .map_or(defaults.include_body, Spanned::into_inner),
            coalesce_secs: table.optional_integer(
                "coalesce_secs",
                0..=3600,
                defaults.coalesce_secs,
            ),
            max_registrations_per_account: table.optional_integer(
                "max_registrations_per_account",
                1..=100,
                defaults.max_registrations_per_account,
            ),
            answer_timeout_secs: table.optional_integer(
                "answer_timeout_secs",
                1..=3600,
                defaults.answer_timeout_secs,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{parse, problems};
    use super::*;

    #[test]
    fn push_settings() {
        let config = parse("[push]\ninclude_body = true\ncoalesce_secs = 30\n").expect("valid");
        assert!(config.push.include_body);
        assert!(!config.push.include_sender);
        assert_eq!(config.push.coalesce_secs, 30);
        assert_eq!(config.push.max_registrations_per_account, 5);
        assert_eq!(config.push.answer_timeout_secs, 60);
        let quick = parse("[push]\nanswer_timeout_secs = 1\n").expect("valid");
        assert_eq!(quick.push.answer_timeout_secs, 1);
        assert_eq!(parse("").expect("empty").push, PushConfig::default());
    }

    #[test]
    fn out_of_range_values_are_named() {
        let p = problems(
            "[push]\ncoalesce_secs = -1\nmax_registrations_per_account = 0\ninclude_body = \"yes\"\n",
        );
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("push.coalesce_secs"), "{p:?}");
        assert!(p[1].contains("push.max_registrations_per_account"), "{p:?}");
        assert!(p[2].contains("push.include_body"), "{p:?}");
        for bad in ["0", "3601", "\"60\""] {
            let p = problems(&format!("[push]\nanswer_timeout_secs = {bad}\n"));
            assert_eq!(p.len(), 1, "{bad}: {p:?}");
            assert!(p[0].contains("push.answer_timeout_secs"), "{p:?}");
        }
    }
}
