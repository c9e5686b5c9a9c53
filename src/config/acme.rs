//! `[acme]`: certificates from Let's Encrypt (or another ACME CA) without
//! certbot. The table's presence turns it on; `enabled = false` keeps the
//! table but turns it off.

use std::path::PathBuf;

use toml::Spanned;

use super::toml_reader::TableReader;

/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// Built-in ACME (RFC 8555): a certificate for every host without a
/// configured one, naming the host and its service domains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeConfig {
    /// Contact address given to the CA (optional: Let's Encrypt no longer
    /// sends expiry mail, but a CA may write about the account).
    pub email: Option<String>,
    /// The CA's directory URL (`https://`).
    pub directory: String,
    /// More trusted roots (PEM) for reaching the CA, e.g. a test CA's.
    pub ca_file: Option<PathBuf>,
    /// Renew this many days (1..=60) before expiry; certificates shorter
    /// than three times that renew two thirds into their lifetime.
    pub renew_days: u32,
}

impl Default for AcmeConfig {
    fn default() -> Self {
        AcmeConfig {
            email: None,
            directory: LETS_ENCRYPT.to_owned(),
            ca_file: None,
            renew_days: 30,
        }
    }
}

impl AcmeConfig {
    /// Reads `[acme]`; `None` when it says `enabled = false`.
    pub(super) fn read(table: &mut TableReader<'_, '_>) -> Option<AcmeConfig> {
        let defaults = AcmeConfig::default();
        let enabled = table.boolean("enabled").is_none_or(Spanned::into_inner);
        let email = table
            .string("email")
            .and_then(|email| check_email(table, email));
        let directory = table
            .string("directory")
            .and_then(|url| check_directory(table, url))
            .unwrap_or(defaults.directory);
        let ca_file = table.string("ca_file").and_then(|path| {
            if path.get_ref().is_empty() {
                table.problem(
                    path.span(),
                    "acme.ca_file: expected the path of a PEM file; found \"\"",
                );
                return None;
            }
            Some(PathBuf::from(path.into_inner()))
        });
        let renew_days = table.optional_integer("renew_days", 1..=60, defaults.renew_days);
        enabled.then_some(AcmeConfig {
            email,
            directory,
            ca_file,
            renew_days,
        })
    }
}

fn check_email(table: &mut TableReader<'_, '_>, email: Spanned<String>) -> Option<String> {
    let text = email.get_ref();
    let ok = text.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
    }) && text.len() <= 254
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c));
    if !ok {
        table.problem(
            email.span(),
            format_args!(
                "acme.email: expected an address such as \"admin@example.org\"; found {text:?}"
            ),
        );
        return None;
    }
    Some(email.into_inner())
}

fn check_directory(table: &mut TableReader<'_, '_>, url: Spanned<String>) -> Option<String> {
    let text = url.get_ref();
    let ok = text.strip_prefix("https://").is_some_and(|rest| {
        let host = rest.split('/').next().unwrap_or_default();
        !host.is_empty()
            && !host.contains('@')
            && !rest
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '#')
    });
    if !ok {
        table.problem(
            url.span(),
            format_args!(
                "acme.directory: expected the CA's https directory URL such as \"{LETS_ENCRYPT}\"; found {text:?}"
            ),
        );
        return None;
    }
    Some(url.into_inner())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{parse, problems};
    use super::*;

    #[test]
    fn the_table_turns_it_on_with_lets_encrypt() {
        assert_eq!(parse("").expect("empty").acme, None);
        assert_eq!(
            parse("[acme]\n").expect("on").acme,
            Some(AcmeConfig::default())
        );
        assert_eq!(
            parse("[acme]\nenabled = false\nemail = \"a@b.org\"\n")
                .expect("off")
                .acme,
            None
        );
        let config = parse(
            "[acme]\nemail = \"admin@example.org\"\ndirectory = \"https://127.0.0.1:14000/dir\"\n\
             ca_file = \"/etc/test-ca.pem\"\nrenew_days = 10\n",
        )
        .expect("valid")
        .acme
        .expect("on");
        assert_eq!(config.email.as_deref(), Some("admin@example.org"));
        assert_eq!(config.directory, "https://127.0.0.1:14000/dir");
        assert_eq!(config.ca_file, Some(PathBuf::from("/etc/test-ca.pem")));
        assert_eq!(config.renew_days, 10);
    }

    #[test]
    fn bad_values_are_named() {
        let p = problems(
            "[acme]\nemail = \"not an address\"\ndirectory = \"http://ca.example/dir\"\n\
             ca_file = \"\"\nrenew_days = 90\nenabled = \"yes\"\n",
        );
        assert_eq!(p.len(), 5, "{p:?}");
        assert!(p[0].contains("acme.email: expected an address"), "{p:?}");
        assert!(
            p[1].contains("acme.directory: expected the CA's https directory URL"),
            "{p:?}"
        );
        assert!(p[2].contains("acme.ca_file"), "{p:?}");
        assert!(
            p[3].contains("acme.renew_days: must be between 1 and 60"),
            "{p:?}"
        );
        assert!(p[4].contains("acme.enabled"), "{p:?}");
        assert!(problems("[acme]\ncontact = \"x\"\n")[0].contains("contact"));
    }
}
