//! `[[external_service]]`: services outside XMPP that clients learn about
//! through XEP-0215 external service discovery, typically STUN and TURN
//! servers for calls, with credentials the server hands out.

use toml::Spanned;

use super::addresses::{check_domain, parse_ip};
use super::toml_reader::TableReader;

/// How long TURN credentials derived from a shared secret stay valid
/// when the service does not say.
pub const DEFAULT_TURN_TTL_SECS: u32 = 86_400;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalService {
    /// The XEP-0215 service type: `stun`, `turn`, `turns`, `ftp`, …
    pub kind: String,
    /// Host name (lower-cased) or IP address.
    pub host: String,
    pub port: Option<u16>,
    pub transport: Option<Transport>,
    /// A human-readable label.
    pub name: Option<String>,
    pub credentials: ServiceCredentials,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceCredentials {
    /// Open to anyone.
    None,
    /// The same username and password for every user.
    Static { username: String, password: String },
    /// Short-lived credentials computed from a secret shared with the
    /// service (the "TURN REST API" scheme coturn and others implement).
    SharedSecret { secret: String, ttl_secs: u32 },
}

impl ExternalService {
    /// Reads and checks one `[[external_service]]` table; `None` when it
    /// has a problem (reported).
    pub(super) fn read(table: &mut TableReader<'_, '_>) -> Option<ExternalService> {
        let kind = table.required_string("type");
        let host = table.required_string("host");
        let port = table.integer("port");
        let transport = table.string("transport");
        let name = table.string("name");
        let username = table.string("username");
        let password = table.string("password");
        let secret = table.string("secret");
        let ttl_secs = table.integer("ttl_secs");
        // Without its type or host the table is left out, and what it does
        // have is not worth checking.
        let (kind, host) = (kind?, host?);

        let kind_span = kind.span();
        let kind = kind.into_inner();
        let kind_ok = !kind.is_empty()
            && kind.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '+')
            });
        if !kind_ok {
            table.problem(
                kind_span,
                format_args!(
                    "external_service.type: expected a service type such as \"stun\" or \"turn\" (lower-case); found {kind:?}"
                ),
            );
        }
        let host = match parse_ip(host.get_ref()) {
            Some(ip) => Some(ip.to_string()),
            None => match check_domain(host.get_ref()) {
                Ok(domain) => Some(domain),
                Err(why) => {
                    table.problem(
                        host.span(),
                        format_args!("external_service.host: {:?} {why}", host.get_ref()),
                    );
                    None
                }
            },
        };
        let port: Option<Option<u16>> = match port {
            Some(port) => table.in_range("port", port, 1..=65_535).map(Some),
            None => Some(None),
        };
        let transport: Option<Option<Transport>> = match transport {
            None => Some(None),
            Some(t) => match t.get_ref().as_str() {
                "udp" => Some(Some(Transport::Udp)),
                "tcp" => Some(Some(Transport::Tcp)),
                other => {
                    table.problem(
                        t.span(),
                        format_args!("external_service.transport: expected \"udp\" or \"tcp\"; found {other:?}"),
                    );
                    None
                }
            },
        };
        let name = name.map(Spanned::into_inner).filter(|n| !n.is_empty());
        let credentials = service_credentials(table, username, password, secret, ttl_secs);
        Some(ExternalService {
            kind: kind_ok.then_some(kind)?,
            host: host?,
            port: port?,
            transport: transport?,
            name,
            credentials: credentials?,
        })
    }
}

/// The credentials a service's keys describe: none, a fixed username and
/// password, or a secret to compute them from.
fn service_credentials(
    table: &mut TableReader<'_, '_>,
    username: Option<Spanned<String>>,
    password: Option<Spanned<String>>,
    secret: Option<Spanned<String>>,
    ttl_secs: Option<Spanned<i64>>,
) -> Option<ServiceCredentials> {
    match (username, password, secret) {
        (None, None, None) => {
            if let Some(ttl) = ttl_secs {
                table.problem(
                    ttl.span(),
                    "external_service.ttl_secs: only meaningful together with secret",
                );
                return None;
            }
            Some(ServiceCredentials::None)
        }
        (Some(username), Some(password), None) => {
            if let Some(ttl) = ttl_secs {
                table.problem(
                    ttl.span(),
                    "external_service.ttl_secs: only meaningful together with secret (static username/password never expire)",
                );
                return None;
            }
            Some(ServiceCredentials::Static {
                username: username.into_inner(),
                password: password.into_inner(),
            })
        }
        (None, None, Some(secret)) => {
            if secret.get_ref().is_empty() {
                table.problem(secret.span(), "external_service.secret: must not be empty");
                return None;
            }
            let ttl_secs = ttl_secs
                .and_then(|ttl| table.in_range("ttl_secs", ttl, 60..=30 * 86_400))
                .unwrap_or(DEFAULT_TURN_TTL_SECS);
            Some(ServiceCredentials::SharedSecret {
                secret: secret.into_inner(),
                ttl_secs,
            })
        }
        (_, _, Some(secret)) => {
            table.problem(
                secret.span(),
                "external_service: give either secret (credentials computed per user) or username and password (the same for everyone), not both",
            );
            None
        }
        _ => {
            let span = table.span();
            table.problem(
                span,
                "external_service: username and password go together; set both or neither",
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{parse, problems};
    use super::*;

    #[test]
    fn services_parse() {
        let config = parse(
            r#"
[[external_service]]
type = "stun"
host = "Turn.Example.org"
port = 3478
transport = "udp"

[[external_service]]
type = "turn"
host = "192.0.2.1"
port = 3478
transport = "udp"
secret = "s3cret"
name = "Relay"

[[external_service]]
type = "ftp"
host = "ftp.example.org"
username = "john"
password = "pw"
"#,
        )
        .expect("valid");
        let services = &config.external_services;
        assert_eq!(services.len(), 3);
        assert_eq!(services[0].host, "turn.example.org");
        assert_eq!(services[0].port, Some(3478));
        assert_eq!(services[0].transport, Some(Transport::Udp));
        assert_eq!(services[0].credentials, ServiceCredentials::None);
        assert_eq!(
            services[1].credentials,
            ServiceCredentials::SharedSecret {
                secret: "s3cret".into(),
                ttl_secs: DEFAULT_TURN_TTL_SECS
            }
        );
        assert_eq!(services[1].name.as_deref(), Some("Relay"));
        assert_eq!(
            services[2].credentials,
            ServiceCredentials::Static {
                username: "john".into(),
                password: "pw".into()
            }
        );
        assert_eq!(services[2].port, None);
        assert!(parse("").expect("defaults").external_services.is_empty());
    }

    #[test]
    fn bad_services_are_reported() {
        let found = problems(
            r#"
[[external_service]]
type = "TURN"
host = "a b"
port = 0
transport = "sctp"

[[external_service]]
type = "turn"
host = "turn.example.org"
secret = "x"
username = "u"
password = "p"

[[external_service]]
type = "turn"
host = "turn.example.org"
username = "u"

[[external_service]]
type = "stun"
host = "stun.example.org"
ttl_secs = 60
"#,
        );
        let all = found.join("\n");
        assert!(all.contains("external_service.type"), "{all}");
        assert!(all.contains("external_service.host"), "{all}");
        assert!(all.contains("external_service.port"), "{all}");
        assert!(all.contains("external_service.transport"), "{all}");
        assert!(all.contains("not both"), "{all}");
        assert!(all.contains("set both or neither"), "{all}");
        assert!(
            all.contains("only meaningful together with secret"),
            "{all}"
        );
    }
}
