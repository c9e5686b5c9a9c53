//! `[registration]`: whether anyone may create an account from their
//! client (XEP-0077 in-band registration), and how often.

use toml::Spanned;

use super::toml_reader::TableReader;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrationConfig {
    /// Offer in-band registration to clients that are not logged in. Off by
    /// default: an open server attracts spam accounts. Changing passwords
    /// and deleting one's own account work either way.
    pub allow: bool,
    /// After an account was registered from an IP address, further
    /// registrations from that address wait this long (0..=86400 s).
    pub min_interval_secs: u32,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        RegistrationConfig {
            allow: false,
            min_interval_secs: 300,
        }
    }
}

impl RegistrationConfig {
    /// Reads and checks the `[registration]` table; absent keys keep their
    /// defaults.
    pub(super) fn read(table: &mut TableReader<'_, '_>) -> RegistrationConfig {
        let defaults = RegistrationConfig::default();
        RegistrationConfig {
            allow: table
                .boolean("allow")
                .map_or(defaults.allow, Spanned::into_inner),
            min_interval_secs: table.optional_integer(
                "min_interval_secs",
                0..=86_400,
                defaults.min_interval_secs,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{parse, problems};
    use super::*;

    #[test]
    fn off_by_default_and_configurable() {
        assert_eq!(
            parse("").expect("defaults").registration,
            RegistrationConfig::default()
        );
        assert!(!RegistrationConfig::default().allow);
        let config = parse("[registration]\nallow = true\nmin_interval_secs = 0\n").expect("valid");
        assert!(config.registration.allow);
        assert_eq!(config.registration.min_interval_secs, 0);
        let found = problems("[registration]\nmin_interval_secs = -1\n");
        assert!(
            found[0].contains("registration.min_interval_secs"),
            "{found:?}"
        );
    }
}
