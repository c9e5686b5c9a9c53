//! `[[host]]`: the domains the server serves, each with its certificate and
//! the domains of its chat, publish-subscribe and file upload services.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::addresses::check_domain;
use super::host_tls;
use super::host_upload;
use super::toml_reader::TableReader;

/// The virtual host served when the config names none.
pub const DEFAULT_DOMAIN: &str = "localhost";

/// The prefix that names systemd's credentials directory in a certificate
/// or key path (`LoadCredential=` in the unit copies root-only files there,
/// readable by the service).
pub const CREDENTIALS_PREFIX: &str = "$CREDENTIALS_DIRECTORY/";

/// One virtual host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// Lower-cased domain name.
    pub domain: String,
    /// PEM certificate chain, e.g. Let's Encrypt's `fullchain.pem`. Set
    /// together with `key` or not at all (validated); without both, a
    /// self-signed certificate kept in the data directory is used.
    pub certificate: Option<PathBuf>,
    /// PEM private key for `certificate`, e.g. `privkey.pem`.
    pub key: Option<PathBuf>,
    /// Lower-cased MUC service domain; `None` when MUC is disabled for this host.
    pub muc: Option<String>,
    /// Lower-cased publish-subscribe service (XEP-0060) domain; `None` when
    /// the service is disabled for this host. Accounts' own nodes (PEP)
    /// live on their JIDs and do not depend on it.
    pub pubsub: Option<String>,
    /// Lower-cased HTTP File Upload (XEP-0363) service domain; `None` when
    /// the service is disabled for this host.
    pub upload: Option<String>,
    /// `perch check` accepts a configured certificate that does not name
    /// `domain` (otherwise an error for any domain but localhost).
    pub allow_mismatched_certificate: bool,
}

impl HostConfig {
    /// The configured certificate and key, when both are set.
    pub fn certificate_files(&self) -> Option<(&Path, &Path)> {
        Some((self.certificate.as_deref()?, self.key.as_deref()?))
    }
}

/// The MUC domain a host gets when its `muc` key is absent.
pub fn default_muc(domain: &str) -> String {
    format!("conference.{domain}")
}

/// The publish-subscribe domain a host gets when its `pubsub` key is absent.
pub fn default_pubsub(domain: &str) -> String {
    format!("pubsub.{domain}")
}

/// The file upload domain a host gets when its `upload` key is absent.
pub fn default_upload(domain: &str) -> String {
    format!("upload.{domain}")
}

/// Replaces a leading [`CREDENTIALS_PREFIX`] with `credentials_dir`. Without
/// that directory (outside the service) the path stays as written, so that
/// reading it fails with the path shown.
pub fn expand_credentials_path(path: &str, credentials_dir: Option<&Path>) -> PathBuf {
    match (path.strip_prefix(CREDENTIALS_PREFIX), credentials_dir) {
        (Some(name), Some(dir)) => dir.join(name),
        _ => PathBuf::from(path),
    }
}

/// The hosts when the file has no `[[host]]`: localhost with its MUC and
/// publish-subscribe services.
pub(super) fn defaults() -> Vec<HostConfig> {
    vec![HostConfig {
        domain: DEFAULT_DOMAIN.to_owned(),
        certificate: None,
        key: None,
        muc: Some(default_muc(DEFAULT_DOMAIN)),
        pubsub: Some(default_pubsub(DEFAULT_DOMAIN)),
        upload: Some(default_upload(DEFAULT_DOMAIN)),
        allow_mismatched_certificate: false,
    }]
}

/// A checked host plus the spans needed for cross-host checks.
pub(super) struct CheckedHost {
    pub(super) host: HostConfig,
    domain_span: Range<usize>,
    pub(super) muc_span: Range<usize>,
    /// The `pubsub` value, or the table's header when it is the default.
    pub(super) pubsub_span: Range<usize>,
    /// The `upload` value, or the table's header when it is the default.
    pub(super) upload_span: Range<usize>,
}

/// Reads and checks the `[[host]]` tables, each on its own and then
/// against each other; `None` when the file has no `[[host]]`, or none that
/// could be read (reported), so that the defaults stand. `credentials_dir`
/// is systemd's `$CREDENTIALS_DIRECTORY`, for certificate and key paths.
pub(super) fn read(
    top: &mut TableReader<'_, '_>,
    credentials_dir: Option<&Path>,
) -> Option<Vec<HostConfig>> {
    let list = top.tables("host", |table| read_host(table, credentials_dir))?;
    let list_span = list.span();
    let checked: Vec<CheckedHost> = list
        .into_inner()
        .into_iter()
        .map(Spanned::into_inner)
        .collect();
    if checked.is_empty() {
        top.problem(list_span, "host: at least one [[host]] is required");
    }

    for (i, host) in checked.iter().enumerate() {
        let earlier = checked.get(..i).unwrap_or_default();
        if earlier
            .iter()
            .any(|other| other.host.domain == host.host.domain)
        {
            top.problem(
                host.domain_span.clone(),
                format_args!("host: {:?} is configured more than once", host.host.domain),
            );
        }
        let Some(muc) = &host.host.muc else { continue };
        if let Some(owner) = checked.iter().find(|other| &other.host.domain == muc) {
            top.problem(
                host.muc_span.clone(),
                format_args!(
                    "host {:?}: muc domain {muc:?} is also a user host; use a separate name such as {:?}",
                    host.host.domain,
                    default_muc(&owner.host.domain)
                ),
            );
        } else if let Some(other) = earlier
            .iter()
            .find(|other| other.host.muc.as_ref() == Some(muc))
        {
            top.problem(
                host.muc_span.clone(),
                format_args!(
                    "host {:?}: muc domain {muc:?} is already used by host {:?}",
                    host.host.domain, other.host.domain
                ),
            );
        }
    }
    for index in 0..checked.len() {
        pubsub_clashes(top, &checked, index);
    }
    for index in 0..checked.len() {
        host_upload::clashes(top, &checked, index);
    }
    Some(checked.into_iter().map(|checked| checked.host).collect())
}

/// One `[[host]]` on its own; `None` when its domain is missing or unusable
/// (reported).
fn read_host(
    table: &mut TableReader<'_, '_>,
    credentials_dir: Option<&Path>,
) -> Option<CheckedHost> {
    let domain = table.required_string("domain");
    let certificate = table.string("certificate");
    let key = table.string("key");
    let allow_mismatched_certificate = table.boolean("allow_mismatched_certificate");
    let muc = table.string("muc");
    let pubsub = table.string("pubsub");
    let upload = table.string("upload");
    let domain = domain?;

    let domain_span = domain.span();
    let domain = match check_domain(domain.get_ref()) {
        Ok(checked) => checked,
        Err(why) => {
            table.problem(
                domain_span,
                format_args!("host.domain: {:?} {why}", domain.get_ref()),
            );
            return None;
        }
    };

    let (certificate, key) = match (certificate, key) {
        (None, None) => (None, None),
        (Some(certificate), None) => {
            table.problem(
                certificate.span(),
                format_args!(
                    "host {domain:?}: certificate is set but key is not (set both or neither)"
                ),
            );
            (None, None)
        }
        (None, Some(key)) => {
            table.problem(
                key.span(),
                format_args!(
                    "host {domain:?}: key is set but certificate is not (set both or neither)"
                ),
            );
            (None, None)
        }
        (Some(certificate), Some(key)) => {
            let certificate =
                file_path(table, &domain, "certificate", certificate, credentials_dir);
            let key = file_path(table, &domain, "key", key, credentials_dir);
            // Keep the pair whole so consumers may rely on both-or-neither.
            match (certificate, key) {
                (Some(certificate), Some(key)) => (Some(certificate), Some(key)),
                _ => (None, None),
            }
        }
    };

    let allow_mismatched_certificate = host_tls::allow_mismatched_certificate(
        &domain,
        allow_mismatched_certificate,
        certificate.is_some(),
    )
    .unwrap_or_else(|(span, message)| {
        table.problem(span, message);
        false
    });

    let (muc, muc_span) = match muc {
        None => (Some(default_muc(&domain)), table.span()),
        Some(muc) if muc.get_ref().is_empty() => (None, muc.span()),
        Some(muc) => match check_domain(muc.get_ref()) {
            Ok(name) if name == domain => {
                table.problem(
                    muc.span(),
                    format_args!(
                        "host {domain:?}: muc domain must differ from the host's own domain; try {:?}",
                        default_muc(&domain)
                    ),
                );
                (None, muc.span())
            }
            Ok(name) => (Some(name), muc.span()),
            Err(why) => {
                table.problem(
                    muc.span(),
                    format_args!(
                        "host {domain:?}: muc {:?} {why} (use \"\" to disable MUC)",
                        muc.get_ref()
                    ),
                );
                (None, muc.span())
            }
        },
    };

    let (pubsub, pubsub_span) = read_pubsub(table, &domain, pubsub);
    let pubsub = match (pubsub, &muc) {
        (Some(pubsub), Some(muc)) if &pubsub == muc => {
            own_muc_clash(table, &domain, &pubsub, &muc_span, &pubsub_span);
            None
        }
        (pubsub, _) => pubsub,
    };
    let own = host_upload::OwnServices {
        muc: muc.as_deref().map(|name| (name, muc_span.clone())),
        pubsub: pubsub.as_deref().map(|name| (name, pubsub_span.clone())),
    };
    let (upload, upload_span) = host_upload::read(table, &domain, upload, &own);

    Some(CheckedHost {
        host: HostConfig {
            domain,
            certificate,
            key,
            muc,
            pubsub,
            upload,
            allow_mismatched_certificate,
        },
        domain_span,
        muc_span,
        pubsub_span,
        upload_span,
    })
}

/// The host's `pubsub` key, checked on its own (cross-host clashes are
/// [`pubsub_clashes`]' job), with the span its problems point at.
fn read_pubsub(
    table: &mut TableReader<'_, '_>,
    domain: &str,
    pubsub: Option<Spanned<String>>,
) -> (Option<String>, Range<usize>) {
    let Some(pubsub) = pubsub else {
        // The default is built, not written, so it may still be too long
        // for a domain name when the host's own name is close to the limit.
        let name = default_pubsub(domain);
        return match check_domain(&name) {
            Ok(name) => (Some(name), table.span()),
            Err(why) => {
                table.problem(
                    table.span(),
                    format_args!(
                        "host {domain:?}: the default pubsub domain {name:?} {why}; set pubsub to a shorter name, or to \"\" to disable publish-subscribe"
                    ),
                );
                (None, table.span())
            }
        };
    };
    let span = pubsub.span();
    if pubsub.get_ref().is_empty() {
        return (None, span);
    }
    match check_domain(pubsub.get_ref()) {
        Ok(name) if name == domain => {
            table.problem(
                span.clone(),
                format_args!(
                    "host {domain:?}: pubsub domain must differ from the host's own domain; try {:?}",
                    default_pubsub(domain)
                ),
            );
            (None, span)
        }
        Ok(name) => (Some(name), span),
        Err(why) => {
            table.problem(
                span.clone(),
                format_args!(
                    "host {domain:?}: pubsub {:?} {why} (use \"\" to disable publish-subscribe)",
                    pubsub.get_ref()
                ),
            );
            (None, span)
        }
    }
}

/// Reports a host whose pubsub and muc domains are the same name, at the
/// key whose usual name is not that one, so the suggestion differs from it.
fn own_muc_clash(
    table: &mut TableReader<'_, '_>,
    domain: &str,
    name: &str,
    muc_span: &Range<usize>,
    pubsub_span: &Range<usize>,
) {
    if name == default_pubsub(domain) {
        // `muc` was set to the pubsub default (which is never the muc default).
        table.problem(
            muc_span.clone(),
            format_args!(
                "host {domain:?}: muc domain {name:?} is also its pubsub domain; use a separate name such as {:?}",
                default_muc(domain)
            ),
        );
    } else {
        table.problem(
            pubsub_span.clone(),
            format_args!(
                "host {domain:?}: pubsub domain {name:?} is also its muc domain; use a separate name such as {:?}",
                default_pubsub(domain)
            ),
        );
    }
}

/// Reports `host`'s pubsub domain when it is a user host, another host's
/// muc domain or an earlier host's pubsub domain (at most one of these).
/// `index` is `host`'s place in `hosts`; duplicated hosts are reported as
/// such and not again here.
fn pubsub_clashes(top: &mut TableReader<'_, '_>, hosts: &[CheckedHost], index: usize) {
    let Some(host) = hosts.get(index) else { return };
    let Some(pubsub) = &host.host.pubsub else {
        return;
    };
    let domain = &host.host.domain;
    if let Some(owner) = hosts.iter().find(|other| &other.host.domain == pubsub) {
        top.problem(
            host.pubsub_span.clone(),
            format_args!(
                "host {domain:?}: pubsub domain {pubsub:?} is also a user host; use a separate name such as {:?}",
                default_pubsub(&owner.host.domain)
            ),
        );
    } else if let Some(other) = hosts
        .iter()
        .filter(|other| &other.host.domain != domain)
        .find(|other| other.host.muc.as_ref() == Some(pubsub))
    {
        if pubsub == &default_pubsub(domain) {
            // The other host's `muc` took this host's default: that `muc` is
            // the one to change (`conference.` names never clash with it).
            top.problem(
                other.muc_span.clone(),
                format_args!(
                    "host {:?}: muc domain {pubsub:?} is already the pubsub domain of host {domain:?}; use a separate name such as {:?}",
                    other.host.domain,
                    default_muc(&other.host.domain)
                ),
            );
        } else {
            top.problem(
                host.pubsub_span.clone(),
                format_args!(
                    "host {domain:?}: pubsub domain {pubsub:?} is already the muc domain of host {:?}; use a separate name such as {:?}",
                    other.host.domain,
                    default_pubsub(domain)
                ),
            );
        }
    } else if let Some(other) = hosts
        .get(..index)
        .unwrap_or_default()
        .iter()
        .filter(|other| &other.host.domain != domain)
        .find(|other| other.host.pubsub.as_ref() == Some(pubsub))
    {
        // Reported at the one whose usual name it is not: that is the one
        // written in the file.
        let (at, user) = if pubsub == &default_pubsub(domain) {
            (other, host)
        } else {
            (host, other)
        };
        top.problem(
            at.pubsub_span.clone(),
            format_args!(
                "host {:?}: pubsub domain {pubsub:?} is already used by host {:?}; use a separate name such as {:?}",
                at.host.domain,
                user.host.domain,
                default_pubsub(&at.host.domain)
            ),
        );
    }
}

fn file_path(
    table: &mut TableReader<'_, '_>,
    domain: &str,
    key: &str,
    raw: Spanned<String>,
    credentials_dir: Option<&Path>,
) -> Option<PathBuf> {
    if raw.get_ref().is_empty() {
        table.problem(
            raw.span(),
            format_args!("host {domain:?}: {key} must not be empty"),
        );
        None
    } else {
        Some(expand_credentials_path(raw.get_ref(), credentials_dir))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{parse, problems};
    use super::*;

    #[test]
    fn credentials_directory_prefix() {
        let dir = Path::new("/run/credentials/perch.service");
        assert_eq!(
            expand_credentials_path("$CREDENTIALS_DIRECTORY/example.org.key", Some(dir)),
            dir.join("example.org.key")
        );
        assert_eq!(
            expand_credentials_path("$CREDENTIALS_DIRECTORY/example.org.key", None),
            PathBuf::from("$CREDENTIALS_DIRECTORY/example.org.key")
        );
        assert_eq!(
            expand_credentials_path("/etc/perch/key.pem", Some(dir)),
            PathBuf::from("/etc/perch/key.pem")
        );
    }

    #[test]
    fn empty_muc_disables_muc() {
        let config = parse("[[host]]\ndomain = \"example.org\"\nmuc = \"\"\n").unwrap();
        assert_eq!(config.hosts[0].muc, None);
    }

    #[test]
    fn bad_domains() {
        let text = r#"
[[host]]
domain = ""
[[host]]
domain = "example.org:5222"
[[host]]
domain = "example..org"
[[host]]
domain = "exa mple.org"
[[host]]
domain = "user@example.org"
[[host]]
domain = ".example.org"
"#;
        assert_eq!(
            problems(text),
            vec![
                "perch.toml:3: host.domain: \"\" must not be empty",
                "perch.toml:5: host.domain: \"example.org:5222\" is not a valid domain name (ports belong in [[listener]], not in domains)",
                "perch.toml:7: host.domain: \"example..org\" is not a valid domain name (empty label: check for leading, trailing or doubled dots)",
                "perch.toml:9: host.domain: \"exa mple.org\" is not a valid domain name (it contains whitespace or control characters)",
                "perch.toml:11: host.domain: \"user@example.org\" is not a valid domain name (it contains '@')",
                "perch.toml:13: host.domain: \".example.org\" is not a valid domain name (empty label: check for leading, trailing or doubled dots)",
            ]
        );
        let long_label = format!("[[host]]\ndomain = \"{}.org\"\n", "a".repeat(64));
        assert_eq!(
            problems(&long_label),
            vec![
                "perch.toml:2: host.domain: \"".to_owned()
                    + &"a".repeat(64)
                    + ".org\" is not a valid domain name (a label is longer than 63 bytes)"
            ]
        );
        let long_name = format!("[[host]]\ndomain = \"{}org\"\n", "abcdefghi.".repeat(26));
        assert!(problems(&long_name)[0].ends_with("(longer than 253 bytes)"));
    }

    #[test]
    fn duplicate_hosts_and_muc_clashes() {
        let text = r#"
[[host]]
domain = "example.org"
[[host]]
domain = "EXAMPLE.org"
muc = ""
[[host]]
domain = "chat.example.org"
muc = "example.org"
[[host]]
domain = "example.net"
muc = "conference.example.org"
[[host]]
domain = "example.com"
muc = "Example.com"
"#;
        assert_eq!(
            problems(text),
            vec![
                "perch.toml:5: host: \"example.org\" is configured more than once",
                "perch.toml:9: host \"chat.example.org\": muc domain \"example.org\" is also a user host; use a separate name such as \"conference.example.org\"",
                "perch.toml:12: host \"example.net\": muc domain \"conference.example.org\" is already used by host \"example.org\"",
                "perch.toml:15: host \"example.com\": muc domain must differ from the host's own domain; try \"conference.example.com\"",
            ]
        );
    }

    #[test]
    fn default_muc_clashing_with_a_host_points_at_the_host_table() {
        let text = "[[host]]\ndomain = \"example.org\"\n[[host]]\ndomain = \"conference.example.org\"\nmuc = \"\"\n";
        assert_eq!(
            problems(text),
            vec![
                "perch.toml:1: host \"example.org\": muc domain \"conference.example.org\" is also a user host; use a separate name such as \"conference.conference.example.org\""
            ]
        );
    }

    #[test]
    fn bad_muc_name() {
        assert_eq!(
            problems("[[host]]\ndomain = \"a.org\"\nmuc = \"rooms/a.org\"\n"),
            vec![
                "perch.toml:3: host \"a.org\": muc \"rooms/a.org\" is not a valid domain name (it contains '/') (use \"\" to disable MUC)"
            ]
        );
    }

    #[test]
    fn pubsub_domain_defaults_and_can_be_disabled() {
        let config = parse("[[host]]\ndomain = \"Example.org\"\n").unwrap();
        assert_eq!(
            config.hosts[0].pubsub.as_deref(),
            Some("pubsub.example.org")
        );
        assert_eq!(default_pubsub("example.org"), "pubsub.example.org");
        let config = parse("[[host]]\ndomain = \"example.org\"\npubsub = \"\"\n").unwrap();
        assert_eq!(config.hosts[0].pubsub, None);
        assert_eq!(
            config.hosts[0].muc.as_deref(),
            Some("conference.example.org")
        );
        let config =
            parse("[[host]]\ndomain = \"example.org\"\npubsub = \"PS.Example.org\"\n").unwrap();
        assert_eq!(config.hosts[0].pubsub.as_deref(), Some("ps.example.org"));
        // Disabling MUC leaves pubsub alone, and the other way round.
        let config = parse("[[host]]\ndomain = \"example.org\"\nmuc = \"\"\n").unwrap();
        assert_eq!(
            config.hosts[0].pubsub.as_deref(),
            Some("pubsub.example.org")
        );
    }

    #[test]
    fn bad_pubsub_names() {
        let text = r#"
[[host]]
domain = "a.org"
pubsub = "pubsub/a.org"
[[host]]
domain = "b.org"
pubsub = "B.org"
[[host]]
domain = "c.org"
pubsub = "pubsub.c.org:5222"
[[host]]
domain = "d.org"
pubsub = 5
"#;
        assert_eq!(
            problems(text),
            vec![
                "perch.toml:4: host \"a.org\": pubsub \"pubsub/a.org\" is not a valid domain name (it contains '/') (use \"\" to disable publish-subscribe)",
                "perch.toml:7: host \"b.org\": pubsub domain must differ from the host's own domain; try \"pubsub.b.org\"",
                "perch.toml:10: host \"c.org\": pubsub \"pubsub.c.org:5222\" is not a valid domain name (ports belong in [[listener]], not in domains) (use \"\" to disable publish-subscribe)",
                "perch.toml:13: host.pubsub: expected a string, found integer `5`",
            ]
        );
    }

    #[test]
    fn default_pubsub_too_long_for_a_domain() {
        let domain = format!("{}org", "abcdefghi.".repeat(25));
        assert!(check_domain(&domain).is_ok() && domain.len() > 246);
        // upload (reported alike, see host_upload) is disabled.
        let text = format!("[[host]]\ndomain = \"{domain}\"\nupload = \"\"\n");
        assert_eq!(
            problems(&text),
            vec![format!(
                "perch.toml:1: host {domain:?}: the default pubsub domain \"pubsub.{domain}\" is not a valid domain name (longer than 253 bytes); set pubsub to a shorter name, or to \"\" to disable publish-subscribe"
            )]
        );
        let text = format!("[[host]]\ndomain = \"{domain}\"\npubsub = \"\"\nupload = \"\"\n");
        assert_eq!(parse(&text).unwrap().hosts[0].pubsub, None);
    }

    #[test]
    fn pubsub_and_muc_of_one_host_differ() {
        let text = r#"
[[host]]
domain = "a.org"
muc = "rooms.a.org"
pubsub = "rooms.a.org"
[[host]]
domain = "b.org"
pubsub = "conference.b.org"
[[host]]
domain = "c.org"
muc = "pubsub.c.org"
"#;
        assert_eq!(
            problems(text),
            vec![
                "perch.toml:5: host \"a.org\": pubsub domain \"rooms.a.org\" is also its muc domain; use a separate name such as \"pubsub.a.org\"",
                "perch.toml:8: host \"b.org\": pubsub domain \"conference.b.org\" is also its muc domain; use a separate name such as \"pubsub.b.org\"",
                "perch.toml:11: host \"c.org\": muc domain \"pubsub.c.org\" is also its pubsub domain; use a separate name such as \"conference.c.org\"",
            ]
        );
    }

    #[test]
    fn pubsub_clashes_with_user_hosts() {
        let text = r#"
[[host]]
domain = "example.org"
[[host]]
domain = "news.example.org"
pubsub = "example.org"
[[host]]
domain = "pubsub.example.org"
pubsub = ""
"#;
        assert_eq!(
            problems(text),
            vec![
                "perch.toml:2: host \"example.org\": pubsub domain \"pubsub.example.org\" is also a user host; use a separate name such as \"pubsub.pubsub.example.org\"",
                "perch.toml:6: host \"news.example.org\": pubsub domain \"example.org\" is also a user host; use a separate name such as \"pubsub.example.org\"",
            ]
        );
    }

    #[test]
    fn pubsub_clashes_with_other_hosts_services() {
        let text = r#"
[[host]]
domain = "a.org"
[[host]]
domain = "b.org"
pubsub = "conference.a.org"
[[host]]
domain = "c.org"
muc = "pubsub.a.org"
[[host]]
domain = "d.org"
pubsub = "feeds.example.org"
[[host]]
domain = "e.org"
pubsub = "feeds.example.org"
[[host]]
domain = "f.org"
pubsub = "pubsub.g.org"
[[host]]
domain = "g.org"
"#;
        assert_eq!(
            problems(text),
            vec![
                "perch.toml:6: host \"b.org\": pubsub domain \"conference.a.org\" is already the muc domain of host \"a.org\"; use a separate name such as \"pubsub.b.org\"",
                "perch.toml:9: host \"c.org\": muc domain \"pubsub.a.org\" is already the pubsub domain of host \"a.org\"; use a separate name such as \"conference.c.org\"",
                "perch.toml:15: host \"e.org\": pubsub domain \"feeds.example.org\" is already used by host \"d.org\"; use a separate name such as \"pubsub.e.org\"",
                "perch.toml:18: host \"f.org\": pubsub domain \"pubsub.g.org\" is already used by host \"g.org\"; use a separate name such as \"pubsub.f.org\"",
            ]
        );
        // Distinct names on every side are fine.
        let text = "[[host]]\ndomain = \"a.org\"\n[[host]]\ndomain = \"b.org\"\npubsub = \"feeds.b.org\"\nmuc = \"rooms.b.org\"\n";
        let config = parse(text).unwrap();
        assert_eq!(config.hosts[1].pubsub.as_deref(), Some("feeds.b.org"));
    }

    #[test]
    fn duplicate_hosts_are_not_reported_again_for_pubsub() {
        let text =
            "[[host]]\ndomain = \"a.org\"\nmuc = \"\"\n[[host]]\ndomain = \"A.org\"\nmuc = \"\"\n";
        assert_eq!(
            problems(text),
            vec!["perch.toml:5: host: \"a.org\" is configured more than once"]
        );
    }

    #[test]
    fn certificate_and_key_go_together() {
        let text = r#"
[[host]]
domain = "a.org"
certificate = "/etc/a.pem"
[[host]]
domain = "b.org"
key = "/etc/b.key"
[[host]]
domain = "c.org"
certificate = ""
key = "/etc/c.key"
"#;
        assert_eq!(
            problems(text),
            vec![
                "perch.toml:4: host \"a.org\": certificate is set but key is not (set both or neither)",
                "perch.toml:7: host \"b.org\": key is set but certificate is not (set both or neither)",
                "perch.toml:10: host \"c.org\": certificate must not be empty",
            ]
        );
    }
}
