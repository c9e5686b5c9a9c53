//! The `upload` key of `[[host]]`: the domain of the host's HTTP File
//! Upload service (XEP-0363), checked like `pubsub`: a valid domain name,
//! not the host's own, and used by no other host or service. A clash is
//! reported at the key that was written (a default is never the one to
//! change), suggesting the name that key usually has.

use std::ops::Range;

use toml::Spanned;

use super::addresses::check_domain;
use super::host::{CheckedHost, default_muc, default_pubsub, default_upload};
use super::toml_reader::TableReader;

/// The host's other service domains, with the spans of their keys (or of
/// the table, for a default).
pub(super) struct OwnServices<'a> {
    pub muc: Option<(&'a str, Range<usize>)>,
    pub pubsub: Option<(&'a str, Range<usize>)>,
}

/// The key name and the default name of another service of `domain`.
fn service_default(kind: &str, domain: &str) -> String {
    match kind {
        "muc" => default_muc(domain),
        _ => default_pubsub(domain),
    }
}

/// The host's `upload` key, checked on its own and against the host's own
/// services (other hosts: [`clashes`]), with the span its problems point
/// at. `None`: disabled (`""`) or refused (reported).
pub(super) fn read(
    table: &mut TableReader<'_, '_>,
    domain: &str,
    upload: Option<Spanned<String>>,
    own: &OwnServices<'_>,
) -> (Option<String>, Range<usize>) {
    let (name, span) = match upload {
        None => {
            // Built, not written: it may be too long for a domain name when
            // the host's own name is close to the limit.
            let name = default_upload(domain);
            match check_domain(&name) {
                Ok(name) => (name, table.span()),
                Err(why) => {
                    table.problem(
                        table.span(),
                        format_args!(
                            "host {domain:?}: the default upload domain {name:?} {why}; set upload to a shorter name, or to \"\" to disable file upload"
                        ),
                    );
                    return (None, table.span());
                }
            }
        }
        Some(value) if value.get_ref().is_empty() => return (None, value.span()),
        Some(value) => {
            let span = value.span();
            match check_domain(value.get_ref()) {
                Ok(name) => (name, span),
                Err(why) => {
                    table.problem(
                        span.clone(),
                        format_args!(
                            "host {domain:?}: upload {:?} {why} (use \"\" to disable file upload)",
                            value.get_ref()
                        ),
                    );
                    return (None, span);
                }
            }
        }
    };
    if name == domain {
        table.problem(
            span.clone(),
            format_args!(
                "host {domain:?}: upload domain must differ from the host's own domain; try {:?}",
                default_upload(domain)
            ),
        );
        return (None, span);
    }
    for (kind, service) in [("muc", &own.muc), ("pubsub", &own.pubsub)] {
        let Some((other, other_span)) = service else {
            continue;
        };
        if *other != name {
            continue;
        }
        if name == default_upload(domain) {
            // The other key was set to the upload default.
            table.problem(
                other_span.clone(),
                format_args!(
                    "host {domain:?}: {kind} domain {name:?} is also its upload domain; use a separate name such as {:?}",
                    service_default(kind, domain)
                ),
            );
        } else {
            table.problem(
                span.clone(),
                format_args!(
                    "host {domain:?}: upload domain {name:?} is also its {kind} domain; use a separate name such as {:?}",
                    default_upload(domain)
                ),
            );
        }
        return (None, span);
    }
    (Some(name), span)
}

/// Reports `host`'s upload domain when it is a user host, another host's
/// muc or pubsub domain, or an earlier host's upload domain (at most one
/// of these). `index` is the host's place in `hosts`; duplicated hosts are
/// reported as such and not again here.
pub(super) fn clashes(top: &mut TableReader<'_, '_>, hosts: &[CheckedHost], index: usize) {
    let Some(host) = hosts.get(index) else { return };
    let Some(upload) = &host.host.upload else {
        return;
    };
    let domain = &host.host.domain;
    let is_default = upload == &default_upload(domain);
    if let Some(owner) = hosts.iter().find(|other| &other.host.domain == upload) {
        top.problem(
            host.upload_span.clone(),
            format_args!(
                "host {domain:?}: upload domain {upload:?} is also a user host; use a separate name such as {:?}",
                default_upload(&owner.host.domain)
            ),
        );
        return;
    }
    let others = || hosts.iter().filter(|other| &other.host.domain != domain);
    let service_of_other = others().find_map(|other| {
        if other.host.muc.as_ref() == Some(upload) {
            Some((other, "muc", &other.muc_span))
        } else if other.host.pubsub.as_ref() == Some(upload) {
            Some((other, "pubsub", &other.pubsub_span))
        } else {
            None
        }
    });
    if let Some((other, kind, other_span)) = service_of_other {
        if is_default {
            top.problem(
                other_span.clone(),
                format_args!(
                    "host {:?}: {kind} domain {upload:?} is already the upload domain of host {domain:?}; use a separate name such as {:?}",
                    other.host.domain,
                    service_default(kind, &other.host.domain)
                ),
            );
        } else {
            top.problem(
                host.upload_span.clone(),
                format_args!(
                    "host {domain:?}: upload domain {upload:?} is already the {kind} domain of host {:?}; use a separate name such as {:?}",
                    other.host.domain,
                    default_upload(domain)
                ),
            );
        }
        return;
    }
    let earlier = hosts
        .get(..index)
        .unwrap_or_default()
        .iter()
        .filter(|other| &other.host.domain != domain)
        .find(|other| other.host.upload.as_ref() == Some(upload));
    if let Some(other) = earlier {
        // Reported at the one whose usual name it is not: that is the one
        // written in the file.
        let (at, user) = if is_default {
            (other, host)
        } else {
            (host, other)
        };
        top.problem(
            at.upload_span.clone(),
            format_args!(
                "host {:?}: upload domain {upload:?} is already used by host {:?}; use a separate name such as {:?}",
                at.host.domain,
                user.host.domain,
                default_upload(&at.host.domain)
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{parse, problems};

    #[test]
    fn upload_domain_defaults_and_can_be_disabled() {
        let config = parse("[[host]]\ndomain = \"Example.org\"\n").unwrap();
        assert_eq!(
            config.hosts[0].upload.as_deref(),
            Some("upload.example.org")
        );
        let config = parse("[[host]]\ndomain = \"example.org\"\nupload = \"\"\n").unwrap();
        assert_eq!(config.hosts[0].upload, None);
        assert_eq!(
            config.hosts[0].pubsub.as_deref(),
            Some("pubsub.example.org")
        );
        let config =
            parse("[[host]]\ndomain = \"example.org\"\nupload = \"Files.Example.org\"\n").unwrap();
        assert_eq!(config.hosts[0].upload.as_deref(), Some("files.example.org"));
        // Disabling the other services leaves upload alone.
        let config =
            parse("[[host]]\ndomain = \"example.org\"\nmuc = \"\"\npubsub = \"\"\n").unwrap();
        assert_eq!(
            config.hosts[0].upload.as_deref(),
            Some("upload.example.org")
        );
    }

    #[test]
    fn bad_upload_names() {
        let text = r#"
[[host]]
domain = "a.org"
upload = "upload/a.org"
[[host]]
domain = "b.org"
upload = "B.org"
[[host]]
domain = "c.org"
upload = "upload.c.org:443"
[[host]]
domain = "d.org"
upload = 5
"#;
        assert_eq!(
            problems(text),
            vec![
                "perch.toml:4: host \"a.org\": upload \"upload/a.org\" is not a valid domain name (it contains '/') (use \"\" to disable file upload)",
                "perch.toml:7: host \"b.org\": upload domain must differ from the host's own domain; try \"upload.b.org\"",
                "perch.toml:10: host \"c.org\": upload \"upload.c.org:443\" is not a valid domain name (ports belong in [[listener]], not in domains) (use \"\" to disable file upload)",
                "perch.toml:13: host.upload: expected a string, found integer `5`",
            ]
        );
    }

    #[test]
    fn default_upload_too_long_for_a_domain() {
        // Long enough for "upload." but not for "pubsub." to overflow:
        // both are 7 bytes, so disable pubsub to see upload's own message.
        let domain = format!("{}org", "abcdefghi.".repeat(25));
        let text = format!("[[host]]\ndomain = \"{domain}\"\npubsub = \"\"\n");
        assert_eq!(
            problems(&text),
            vec![format!(
                "perch.toml:1: host {domain:?}: the default upload domain \"upload.{domain}\" is not a valid domain name (longer than 253 bytes); set upload to a shorter name, or to \"\" to disable file upload"
            )]
        );
        let text = format!("[[host]]\ndomain = \"{domain}\"\npubsub = \"\"\nupload = \"\"\n");
        assert_eq!(parse(&text).unwrap().hosts[0].upload, None);
    }

    #[test]
    fn upload_differs_from_the_hosts_other_services() {
        let text = r#"
[[host]]
domain = "a.org"
muc = "files.a.org"
upload = "files.a.org"
[[host]]
domain = "b.org"
upload = "pubsub.b.org"
[[host]]
domain = "c.org"
muc = "upload.c.org"
[[host]]
domain = "d.org"
pubsub = "upload.d.org"
"#;
        assert_eq!(
            problems(text),
            vec![
                "perch.toml:5: host \"a.org\": upload domain \"files.a.org\" is also its muc domain; use a separate name such as \"upload.a.org\"",
                "perch.toml:8: host \"b.org\": upload domain \"pubsub.b.org\" is also its pubsub domain; use a separate name such as \"upload.b.org\"",
                "perch.toml:11: host \"c.org\": muc domain \"upload.c.org\" is also its upload domain; use a separate name such as \"conference.c.org\"",
                "perch.toml:14: host \"d.org\": pubsub domain \"upload.d.org\" is also its upload domain; use a separate name such as \"pubsub.d.org\"",
            ]
        );
    }

    #[test]
    fn upload_clashes_with_user_hosts() {
        let text = r#"
[[host]]
domain = "example.org"
[[host]]
domain = "files.example.org"
upload = "example.org"
[[host]]
domain = "upload.example.org"
upload = ""
"#;
        assert_eq!(
            problems(text),
            vec![
                "perch.toml:2: host \"example.org\": upload domain \"upload.example.org\" is also a user host; use a separate name such as \"upload.upload.example.org\"",
                "perch.toml:6: host \"files.example.org\": upload domain \"example.org\" is also a user host; use a separate name such as \"upload.example.org\"",
            ]
        );
    }

    #[test]
    fn upload_clashes_with_other_hosts_services() {
        let text = r#"
[[host]]
domain = "a.org"
[[host]]
domain = "b.org"
upload = "conference.a.org"
[[host]]
domain = "c.org"
pubsub = "upload.a.org"
[[host]]
domain = "d.org"
upload = "files.example.org"
[[host]]
domain = "e.org"
upload = "files.example.org"
[[host]]
domain = "f.org"
upload = "upload.g.org"
[[host]]
domain = "g.org"
"#;
        assert_eq!(
            problems(text),
            vec![
                "perch.toml:6: host \"b.org\": upload domain \"conference.a.org\" is already the muc domain of host \"a.org\"; use a separate name such as \"upload.b.org\"",
                "perch.toml:9: host \"c.org\": pubsub domain \"upload.a.org\" is already the upload domain of host \"a.org\"; use a separate name such as \"pubsub.c.org\"",
                "perch.toml:15: host \"e.org\": upload domain \"files.example.org\" is already used by host \"d.org\"; use a separate name such as \"upload.e.org\"",
                "perch.toml:18: host \"f.org\": upload domain \"upload.g.org\" is already used by host \"g.org\"; use a separate name such as \"upload.f.org\"",
            ]
        );
        // Distinct names on every side are fine.
        let text = "[[host]]\ndomain = \"a.org\"\n[[host]]\ndomain = \"b.org\"\nupload = \"files.b.org\"\n";
        let config = parse(text).unwrap();
        assert_eq!(config.hosts[1].upload.as_deref(), Some("files.b.org"));
    }

    #[test]
    fn duplicate_hosts_are_not_reported_again_for_upload() {
        let text =
            "[[host]]\ndomain = \"a.org\"\nmuc = \"\"\n[[host]]\ndomain = \"A.org\"\nmuc = \"\"\n";
        assert_eq!(
            problems(text),
            vec!["perch.toml:5: host: \"a.org\" is configured more than once"]
        );
    }
}
