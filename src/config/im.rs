//! `[im]`: instant messaging, what each account may keep and how blocks
//! behave.

use super::toml_reader::TableReader;

/// Instant messaging: what each account may keep and how blocks behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImConfig {
    /// Roster items per account (1..=100000); also bounds the pending
    /// subscription requests an account keeps.
    pub roster_max_items: usize,
    /// JIDs on one blocklist (1..=100000).
    pub blocklist_max_items: usize,
    /// Offline messages kept per account (0..=100000; 0 turns offline
    /// storage off).
    pub offline_max_messages: usize,
    /// Bytes of offline messages kept per account (0..=1 GiB).
    pub offline_max_bytes: usize,
    /// What a blocked contact's message or iq gets.
    pub blocked_stanzas: BlockedStanzas,
}

/// XEP-0191 §3.4: a stanza from a blocked JID is never delivered; messages
/// and iq requests are answered with `service-unavailable` or dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockedStanzas {
    Bounce,
    Drop,
}

impl BlockedStanzas {
    const ALL: [(&'static str, BlockedStanzas); 2] = [
        ("bounce", BlockedStanzas::Bounce),
        ("drop", BlockedStanzas::Drop),
    ];
}

impl Default for ImConfig {
    fn default() -> Self {
        ImConfig {
            roster_max_items: 1_000,
            blocklist_max_items: 1_000,
            offline_max_messages: 500,
            offline_max_bytes: 4 << 20,
            blocked_stanzas: BlockedStanzas::Bounce,
        }
    }
}

impl ImConfig {
    /// Reads and checks the `[im]` table; absent keys keep their defaults.
    pub(super) fn read(table: &mut TableReader<'_, '_>) -> ImConfig {
        let defaults = ImConfig::default();
        ImConfig {
            roster_max_items: table.optional_integer(
                "roster_max_items",
                1..=100_000,
                defaults.roster_max_items,
            ),
            blocklist_max_items: table.optional_integer(
                "blocklist_max_items",
                1..=100_000,
                defaults.blocklist_max_items,
            ),
            offline_max_messages: table.optional_integer(
                "offline_max_messages",
                0..=100_000,
                defaults.offline_max_messages,
            ),
            offline_max_bytes: table.optional_integer(
                "offline_max_bytes",
                0..=1 << 30,
                defaults.offline_max_bytes,
            ),
            blocked_stanzas: match table.string("blocked_stanzas") {
                None => defaults.blocked_stanzas,
                Some(value) => match BlockedStanzas::ALL
                    .iter()
                    .find(|(name, _)| *name == value.get_ref().as_str())
                {
                    Some(&(_, choice)) => choice,
                    None => {
                        table.problem(
                            value.span(),
                            format_args!(
                                "im.blocked_stanzas: expected \"bounce\" or \"drop\"; found {:?}",
                                value.get_ref()
                            ),
                        );
                        defaults.blocked_stanzas
                    }
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{parse, problems};
    use super::*;

    #[test]
    fn im_settings() {
        let config = parse(
            "[im]\nroster_max_items = 5\noffline_max_messages = 0\nblocked_stanzas = \"drop\"\n",
        )
        .unwrap();
        assert_eq!(config.im.roster_max_items, 5);
        assert_eq!(config.im.offline_max_messages, 0);
        assert_eq!(config.im.blocked_stanzas, BlockedStanzas::Drop);
        assert_eq!(
            config.im.blocklist_max_items,
            ImConfig::default().blocklist_max_items
        );
        let p = problems("[im]\nroster_max_items = 0\nblocked_stanzas = \"reject\"\n");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("im.roster_max_items"), "{p:?}");
        assert!(p[1].contains("im.blocked_stanzas"), "{p:?}");
    }
}
