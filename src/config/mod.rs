//! Perch's configuration: one optional TOML file on top of built-in defaults.
//!
//! `toml` parses the text (a syntax error stops there); then each section's
//! module reads its keys with a small reader of our own ([`toml_reader`]),
//! checks their values and fills its part of the typed [`Config`], with the
//! defaults for whatever the file leaves out. The reader notes unknown keys,
//! missing required keys and wrong types; the sections note values out of
//! range or in conflict. All problems are collected, each prefixed with
//! `file:line:`, so `perch check` can list them all at once.
//!
//! One module per section (or per top-level key), each holding its struct,
//! its defaults, its reading and its checks; this module puts them together
//! and holds what they share. Each section asks for its keys in the order
//! `perch.example.toml` documents them, because that is the order an unknown
//! key's message offers them in.

use std::fmt;
use std::io;
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};

use log::LevelFilter;
use toml::Spanned;
use toml::de::DeTable;

mod acme;
mod addresses;
mod admins;
mod archive;
mod c2s;
mod component;
mod contact;
mod data_dir;
mod external_services;
mod host;
mod host_tls;
mod host_upload;
mod http;
mod im;
mod limits;
mod listener;
mod log_level;
mod muc;
mod pubsub;
mod push;
mod registration;
mod s2s;
mod storage;
mod toml_reader;
mod upload;

use toml_reader::TableReader;

pub use acme::{AcmeConfig, LETS_ENCRYPT};
pub use archive::{ArchiveConfig, DefaultPolicy};
pub use c2s::C2sConfig;
pub use component::ComponentConfig;
pub use contact::ContactAddresses;
pub use data_dir::{DB_FILE, DEFAULT_DATA_DIR, Surroundings};
pub use external_services::{
    DEFAULT_TURN_TTL_SECS, ExternalService, ServiceCredentials, Transport,
};
pub use host::{
    CREDENTIALS_PREFIX, DEFAULT_DOMAIN, HostConfig, default_muc, default_pubsub, default_upload,
    expand_credentials_path,
};
pub use http::{BoshConfig, HttpConfig, IpRange};
pub use im::{BlockedStanzas, ImConfig};
pub use limits::{Limits, MIN_STANZA_BYTES};
pub use listener::{ListenerConfig, ListenerKind};
pub use muc::{MucConfig, RoomCreation};
pub use pubsub::{CreateNodes, PubsubConfig};
pub use push::PushConfig;
pub use registration::RegistrationConfig;
pub use s2s::{S2sConfig, StaticRoute};
pub use storage::StorageConfig;
pub use upload::{UploadConfig, is_media_token};

/// The complete, validated server configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub log_level: LevelFilter,
    pub data_dir: PathBuf,
    /// Bare JIDs (`user@domain`), as written: normalization is the JID code's job.
    pub admins: Vec<String>,
    /// Never empty; the first host is the fallback for TLS clients without SNI.
    pub hosts: Vec<HostConfig>,
    /// Never empty.
    pub listeners: Vec<ListenerConfig>,
    pub c2s: C2sConfig,
    pub limits: Limits,
    pub storage: StorageConfig,
    pub im: ImConfig,
    pub registration: RegistrationConfig,
    /// XEP-0157 addresses published in every host's disco#info.
    pub contact: ContactAddresses,
    /// XEP-0215 services offered to the users of every host.
    pub external_services: Vec<ExternalService>,
    pub muc: MucConfig,
    pub archive: ArchiveConfig,
    /// Publish-subscribe (XEP-0060), PEP (XEP-0163) and the
    /// entity-capabilities cache (XEP-0115).
    pub pubsub: PubsubConfig,
    /// The HTTP listeners: public URL, trusted proxies, WebSocket, BOSH.
    pub http: HttpConfig,
    /// HTTP File Upload (XEP-0363): sizes, quotas and how long files stay.
    pub upload: UploadConfig,
    /// Federation: server-to-server streams.
    pub s2s: S2sConfig,
    /// External components (XEP-0114).
    pub components: Vec<ComponentConfig>,
    /// Push notifications (XEP-0357).
    pub push: PushConfig,
    /// Built-in ACME certificates; `None`: off (no `[acme]` table).
    pub acme: Option<AcmeConfig>,
}

impl Default for Config {
    /// The built-in defaults, with the data directory chosen from the
    /// environment ([`Surroundings`]).
    fn default() -> Self {
        Config::defaults_with_state_dir(Surroundings::from_env().data_dir())
    }
}

impl Config {
    /// The built-in defaults, with `state_dir` (normally the choice of
    /// [`Surroundings::data_dir`]) as data directory when given.
    pub fn defaults_with_state_dir(state_dir: Option<PathBuf>) -> Config {
        Config {
            log_level: log_level::DEFAULT_LOG_LEVEL,
            data_dir: state_dir
                .filter(|dir| !dir.as_os_str().is_empty())
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            admins: Vec::new(),
            hosts: host::defaults(),
            listeners: listener::defaults(),
            c2s: C2sConfig::default(),
            limits: Limits::default(),
            storage: StorageConfig::default(),
            im: ImConfig::default(),
            registration: RegistrationConfig::default(),
            contact: ContactAddresses::default(),
            external_services: Vec::new(),
            muc: MucConfig::default(),
            archive: ArchiveConfig::default(),
            pubsub: PubsubConfig::default(),
            http: HttpConfig::default(),
            upload: UploadConfig::default(),
            s2s: S2sConfig::default(),
            components: Vec::new(),
            push: PushConfig::default(),
            acme: None,
        }
    }

    /// Reads and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses and validates config text; `origin` names it in error messages.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        Config::parse(text, origin, Surroundings::from_env().data_dir())
    }

    /// Like [`Config::from_toml_str`], with the `$STATE_DIRECTORY` lookup
    /// injected so tests do not depend on the environment.
    fn parse(text: &str, origin: &str, state_dir: Option<PathBuf>) -> Result<Config, ConfigError> {
        let document = DeTable::parse(text)
            .map_err(|err| ConfigError::Syntax(describe_syntax_error(&err, text, origin)))?;
        let defaults = Config::defaults_with_state_dir(state_dir);
        // systemd's `$CREDENTIALS_DIRECTORY`, for certificate and key paths.
        let credentials_dir = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
        let (config, mut problems) = toml_reader::read_document(document, |top| {
            Config::read(top, defaults, credentials_dir.as_deref())
        });
        if problems.is_empty() {
            return Ok(config);
        }
        // A table's unknown keys are found after its values are checked, and
        // cross-host checks after per-host ones; file order reads better.
        // The sort is stable, so problems at one place keep the order found.
        problems.sort_by_key(|problem| problem.span.start);
        Err(ConfigError::Invalid(
            problems
                .into_iter()
                .map(|problem| {
                    let location = location(origin, text, Some(problem.span));
                    format!("{location}{}", problem.message)
                })
                .collect(),
        ))
    }

    /// Reads the whole document, section by section. The keys are asked for
    /// in the order the example file documents them, which is the order an
    /// unknown key's message lists them in.
    fn read(
        top: &mut TableReader<'_, '_>,
        defaults: Config,
        credentials_dir: Option<&Path>,
    ) -> Config {
        // Read before the literal, in the same order, because [pubsub] is
        // checked against it.
        let log_level = log_level::read(top).unwrap_or(defaults.log_level);
        let data_dir = data_dir::read(top).unwrap_or(defaults.data_dir);
        let admins = admins::read(top).unwrap_or(defaults.admins);
        let hosts = host::read(top, credentials_dir).unwrap_or(defaults.hosts);
        let listeners = listener::read(top).unwrap_or(defaults.listeners);
        let c2s = top.table("c2s", C2sConfig::read).unwrap_or(defaults.c2s);
        let limits = top.table("limits", Limits::read).unwrap_or(defaults.limits);
        let hosts_for_components = hosts.clone();
        Config {
            log_level,
            data_dir,
            admins,
            hosts,
            listeners,
            c2s,
            limits,
            storage: top
                .table("storage", StorageConfig::read)
                .unwrap_or(defaults.storage),
            im: top.table("im", ImConfig::read).unwrap_or(defaults.im),
            registration: top
                .table("registration", RegistrationConfig::read)
                .unwrap_or(defaults.registration),
            contact: top
                .table("contact", ContactAddresses::read)
                .unwrap_or(defaults.contact),
            external_services: top
                .tables("external_service", ExternalService::read)
                .map(|list| {
                    list.into_inner()
                        .into_iter()
                        .map(Spanned::into_inner)
                        .collect()
                })
                .unwrap_or(defaults.external_services),
            muc: top.table("muc", MucConfig::read).unwrap_or(defaults.muc),
            archive: top
                .table("archive", ArchiveConfig::read)
                .unwrap_or(defaults.archive),
            pubsub: top
                .table("pubsub", |table| PubsubConfig::read(table, &limits))
                .unwrap_or_else(|| PubsubConfig::defaults_within(&limits)),
            http: top.table("http", HttpConfig::read).unwrap_or(defaults.http),
            upload: top
                .table("upload", UploadConfig::read)
                .unwrap_or(defaults.upload),
            s2s: top.table("s2s", S2sConfig::read).unwrap_or(defaults.s2s),
            components: components(top, &hosts_for_components),
            push: top.table("push", PushConfig::read).unwrap_or(defaults.push),
            acme: top.table("acme", AcmeConfig::read).flatten(),
        }
    }

    /// The host whose domain is `domain` (compared case-insensitively).
    pub fn host(&self, domain: &str) -> Option<&HostConfig> {
        self.hosts
            .iter()
            .find(|host| host.domain.eq_ignore_ascii_case(domain))
    }
}

/// The `[[component]]` tables, each with a domain no host or hosted
/// service already answers for, and a parent host that exists.
fn components(top: &mut TableReader<'_, '_>, hosts: &[HostConfig]) -> Vec<ComponentConfig> {
    let Some(list) = top.tables("component", ComponentConfig::read) else {
        return Vec::new();
    };
    let mut kept: Vec<ComponentConfig> = Vec::new();
    for entry in list.into_inner() {
        let span = entry.span();
        let mut component = entry.into_inner();
        let domain = component.domain.clone();
        let taken = hosts.iter().any(|h| {
            h.domain == domain
                || [&h.muc, &h.pubsub, &h.upload]
                    .iter()
                    .any(|service| service.as_deref() == Some(domain.as_str()))
        }) || kept.iter().any(|c| c.domain == domain);
        if taken {
            top.problem(
                span,
                format_args!("component.domain: {domain} is already served by this configuration"),
            );
            continue;
        }
        match &component.parent {
            Some(parent) if !hosts.iter().any(|h| &h.domain == parent) => {
                top.problem(
                    span,
                    format_args!("component.host: {parent} is not one of the [[host]] domains"),
                );
                continue;
            }
            Some(_) => {}
            None => {
                let parent = hosts
                    .iter()
                    .find(|h| domain.ends_with(&format!(".{}", h.domain)))
                    .or(hosts.first())
                    .map(|h| h.domain.clone());
                component.parent = parent;
            }
        }
        kept.push(component);
    }
    kept
}

// The value checks the sections share. Integers are read as i64 so that a
// value out of range gets our own message, naming the range.
impl TableReader<'_, '_> {
    /// Reads the integer `key` and checks it is within `range`; absent or
    /// with a problem (reported), it is `default`.
    fn optional_integer<T: TryFrom<i64>>(
        &mut self,
        key: &'static str,
        range: RangeInclusive<i64>,
        default: T,
    ) -> T {
        match self.integer(key) {
            Some(value) => self.in_range(key, value, range).unwrap_or(default),
            None => default,
        }
    }

    /// `value`, read from `key`, as a `T` if it is within `range`; reported
    /// otherwise.
    fn in_range<T: TryFrom<i64>>(
        &mut self,
        key: &str,
        value: Spanned<i64>,
        range: RangeInclusive<i64>,
    ) -> Option<T> {
        let span = value.span();
        let value = value.into_inner();
        let converted = range
            .contains(&value)
            .then(|| T::try_from(value).ok())
            .flatten();
        if converted.is_none() {
            let key = self.key_path(key);
            self.problem(
                span,
                format_args!(
                    "{key}: must be between {} and {}; found {value}",
                    range.start(),
                    range.end()
                ),
            );
        }
        converted
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read.
    Io { path: PathBuf, source: io::Error },
    /// The text is not valid TOML; only the first such error is known.
    /// Already formatted as `origin:line: message`.
    Syntax(String),
    /// The TOML is well-formed but some keys or values are unacceptable
    /// (unknown or missing keys, wrong types, bad values): one
    /// `origin:line: message` entry per problem.
    Invalid(Vec<String>),
}

impl ConfigError {
    /// One line per problem, for `perch check`.
    pub fn problems(&self) -> Vec<String> {
        match self {
            ConfigError::Invalid(problems) => problems.clone(),
            other => vec![other.to_string()],
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Io { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            ConfigError::Syntax(message) => f.write_str(message),
            ConfigError::Invalid(problems) => f.write_str(&problems.join("\n")),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Io { source, .. } => Some(source),
            ConfigError::Syntax(_) | ConfigError::Invalid(_) => None,
        }
    }
}

// ---------------------------------------------------------------------------
// Locations and syntax errors as one-line messages.

/// `origin:line: ` for a byte span, or `origin: ` when there is none.
fn location(origin: &str, text: &str, span: Option<Range<usize>>) -> String {
    match span {
        Some(span) => {
            let before = text.as_bytes().get(..span.start).unwrap_or(text.as_bytes());
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            format!("{origin}:{line}: ")
        }
        None => format!("{origin}: "),
    }
}

fn describe_syntax_error(err: &toml::de::Error, text: &str, origin: &str) -> String {
    let location = location(origin, text, err.span());
    let message = err.message();
    if message == "duplicate key" {
        let key = err
            .span()
            .and_then(|span| text.get(span))
            .unwrap_or_default();
        return format!("{location}duplicate key '{key}'");
    }
    format!("{location}{message}")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv6Addr, SocketAddr};

    const EXAMPLE: &str = include_str!("../../perch.example.toml");

    pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "perch.toml", None)
    }

    fn defaults() -> Config {
        Config::defaults_with_state_dir(None)
    }

    /// The single error line for text expected to be rejected.
    pub(super) fn error(text: &str) -> String {
        match parse(text) {
            Ok(config) => panic!("accepted {text:?} as {config:?}"),
            Err(err) => err.to_string(),
        }
    }

    pub(super) fn problems(text: &str) -> Vec<String> {
        match parse(text) {
            Err(ConfigError::Invalid(problems)) => problems,
            other => panic!("expected semantic problems for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(parse("").ok(), Some(defaults()));
        assert_eq!(parse("# nothing\n\n").ok(), Some(defaults()));
    }

    #[test]
    fn defaults_are_as_documented() {
        let config = defaults();
        assert_eq!(config.log_level, LevelFilter::Info);
        assert_eq!(config.data_dir, PathBuf::from("./perch-data"));
        assert!(config.admins.is_empty());
        assert_eq!(
            config.hosts,
            vec![HostConfig {
                domain: "localhost".into(),
                certificate: None,
                key: None,
                muc: Some("conference.localhost".into()),
                pubsub: Some("pubsub.localhost".into()),
                upload: Some("upload.localhost".into()),
                allow_mismatched_certificate: false,
            }]
        );
        assert_eq!(
            config.listeners,
            vec![
                ListenerConfig {
                    kind: ListenerKind::C2s,
                    address: "127.0.0.1:5222".parse().unwrap()
                },
                ListenerConfig {
                    kind: ListenerKind::C2sTls,
                    address: "127.0.0.1:5223".parse().unwrap()
                },
                ListenerConfig {
                    kind: ListenerKind::Http,
                    address: "127.0.0.1:5280".parse().unwrap()
                },
            ]
        );
        assert!(config.c2s.require_encryption);
        assert!(!config.c2s.allow_plaintext_auth);
        assert_eq!(config.c2s.auth_timeout_secs, 30);
        assert_eq!(config.c2s.keepalive_secs, 240);
        assert_eq!(config.storage.cache_kib, 64);
        assert_eq!(config.im, ImConfig::default());
        assert_eq!(config.im.roster_max_items, 1_000);
        assert_eq!(config.im.offline_max_messages, 500);
        assert_eq!(config.im.blocked_stanzas, BlockedStanzas::Bounce);
    }

    #[test]
    fn example_file_equals_the_defaults() {
        assert_eq!(parse(EXAMPLE).unwrap(), defaults());
    }

    /// Uncommenting every `# key = value` line (and every `# [[table]]`
    /// header of an example table) of the example must still parse: the
    /// commented-out alternatives are meant to be usable as written.
    #[test]
    fn example_file_commented_values_are_valid() {
        let uncommented: String = EXAMPLE
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest) if rest.contains(" = ") && !rest.starts_with(' ') => rest,
                Some(rest) if rest.starts_with("[[") && rest.ends_with("]]") => rest,
                _ => line,
            })
            .map(|line| format!("{line}\n"))
            .collect();
        let config = parse(&uncommented).unwrap();
        assert_eq!(config.admins, vec!["admin@localhost".to_owned()]);
        assert_eq!(config.external_services.len(), 2);
        assert!(!config.contact.is_empty());
    }

    /// Every key each table accepts appears in the example, so the example
    /// cannot silently fall behind the code. The accepted keys are read back
    /// from the reader's unknown-key message.
    #[test]
    fn example_file_documents_every_key() {
        let tables = [
            ("", ""),
            ("[[host]]\ndomain = \"a\"\n", "[[host]]"),
            ("[[listener]]\nkind = \"c2s\"\n", "[[listener]]"),
            ("[c2s]\n", "[c2s]"),
            ("[limits]\n", "[limits]"),
            ("[storage]\n", "[storage]"),
            ("[im]\n", "[im]"),
            ("[registration]\n", "[registration]"),
            ("[contact]\n", "[contact]"),
            (
                "[[external_service]]\ntype = \"stun\"\nhost = \"a\"\n",
                "# [[external_service]]",
            ),
            ("[muc]\n", "[muc]"),
            ("[archive]\n", "[archive]"),
            ("[pubsub]\n", "[pubsub]"),
            ("[upload]\n", "[upload]"),
            ("[s2s]\n", "[s2s]"),
            (
                "[[s2s.route]]\ndomain = \"a\"\naddress = \"127.0.0.1\"\n",
                "# [[s2s.route]]",
            ),
            (
                "[[component]]\ndomain = \"a.b\"\nsecret = \"0123456789ab\"\n",
                "# [[component]]",
            ),
            ("[push]\n", "[push]"),
            ("[acme]\n", "[acme]"),
        ];
        for (header, shown) in tables {
            let message = error(&format!("{header}no_such_key = 1\n"));
            let keys = message
                .split("(expected one of: ")
                .nth(1)
                .and_then(|rest| rest.strip_suffix(')'))
                .unwrap_or_else(|| panic!("no key list in {message:?}"));
            if !shown.is_empty() {
                assert!(
                    EXAMPLE.contains(&format!("\n{shown}\n")),
                    "{shown} missing from example"
                );
            }
            for key in keys.split(", ") {
                let documented = EXAMPLE.lines().any(|line| {
                    let line = line.trim_start_matches("# ");
                    line.starts_with(&format!("{key} = "))
                        || line.starts_with(&format!("[{key}]"))
                        || line.starts_with(&format!("[[{key}]]"))
                        || line.ends_with(&format!(".{key}]]"))
                });
                assert!(
                    documented,
                    "key {key} of {shown:?} is not in perch.example.toml"
                );
            }
        }
    }

    #[test]
    fn partial_files_keep_other_defaults() {
        let config = parse("log_level = \"debug\"\n[limits]\nmax_connections = 50\n").unwrap();
        assert_eq!(config.log_level, LevelFilter::Debug);
        assert_eq!(config.limits.max_connections, 50);
        assert_eq!(
            config.limits.max_connections_per_ip,
            Limits::default().max_connections_per_ip
        );
        assert_eq!(config.hosts, defaults().hosts);
        assert_eq!(config.listeners, defaults().listeners);
        assert_eq!(config.c2s, C2sConfig::default());

        let config = parse("[c2s]\nauth_timeout_secs = 5\n[storage]\ncache_kib = 3000\n").unwrap();
        assert_eq!(config.c2s.auth_timeout_secs, 5);
        assert!(config.c2s.require_encryption);
        assert_eq!(
            config.c2s.keepalive_secs,
            C2sConfig::default().keepalive_secs
        );
        assert_eq!(config.storage.cache_kib, 3000);
    }

    #[test]
    fn full_file() {
        let text = r#"
log_level = "TRACE"
data_dir = "/var/lib/perch"
admins = ["root@example.org", "root@example.org", "ops@example.net"]

[[host]]
domain = "Example.org"
certificate = "/etc/le/fullchain.pem"
key = "/etc/le/privkey.pem"
muc = "rooms.example.org"

[[host]]
domain = "example.net"

[[listener]]
kind = "c2s"
address = "::"

[[listener]]
kind = "c2s-tls"
address = "0.0.0.0"
port = 443

[[listener]]
kind = "s2s"

[c2s]
require_encryption = false
allow_plaintext_auth = true
keepalive_secs = 60

[limits]
max_stanza_bytes = 10000
login_attempts_per_minute = 1

[storage]
cache_kib = 16384
"#;
        let config = parse(text).unwrap();
        assert_eq!(config.log_level, LevelFilter::Trace);
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/perch"));
        assert_eq!(config.admins, vec!["root@example.org", "ops@example.net"]);
        assert_eq!(
            config.hosts,
            vec![
                HostConfig {
                    domain: "example.org".into(),
                    certificate: Some("/etc/le/fullchain.pem".into()),
                    key: Some("/etc/le/privkey.pem".into()),
                    muc: Some("rooms.example.org".into()),
                    pubsub: Some("pubsub.example.org".into()),
                    upload: Some("upload.example.org".into()),
                    allow_mismatched_certificate: false,
                },
                HostConfig {
                    domain: "example.net".into(),
                    certificate: None,
                    key: None,
                    muc: Some("conference.example.net".into()),
                    pubsub: Some("pubsub.example.net".into()),
                    upload: Some("upload.example.net".into()),
                    allow_mismatched_certificate: false,
                },
            ]
        );
        assert_eq!(
            config.listeners,
            vec![
                ListenerConfig {
                    kind: ListenerKind::C2s,
                    address: SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 5222)
                },
                ListenerConfig {
                    kind: ListenerKind::C2sTls,
                    address: "0.0.0.0:443".parse().unwrap()
                },
                ListenerConfig {
                    kind: ListenerKind::S2s,
                    address: "127.0.0.1:5269".parse().unwrap()
                },
            ]
        );
        assert!(!config.c2s.require_encryption);
        assert!(config.c2s.allow_plaintext_auth);
        assert_eq!(config.c2s.keepalive_secs, 60);
        assert_eq!(config.limits.max_stanza_bytes, MIN_STANZA_BYTES);
        assert_eq!(config.limits.login_attempts_per_minute, 1);
        assert_eq!(config.storage.cache_kib, 16384);
        assert_eq!(
            config.hosts[0].certificate_files(),
            Some((
                Path::new("/etc/le/fullchain.pem"),
                Path::new("/etc/le/privkey.pem")
            ))
        );
        assert_eq!(config.hosts[1].certificate_files(), None);
        assert_eq!(
            config.host("EXAMPLE.NET").map(|h| h.domain.as_str()),
            Some("example.net")
        );
        assert!(config.host("example.com").is_none());
    }

    #[test]
    fn unknown_keys_name_the_table_and_the_alternatives() {
        assert_eq!(
            error("[[listener]]\nkind = \"c2s\"\nprot = 5222\n"),
            "perch.toml:3: unknown key 'prot' in [[listener]] (expected one of: kind, address, port)"
        );
        assert_eq!(
            error("log_level = \"info\"\nloglevel = \"debug\"\n"),
            "perch.toml:2: unknown key 'loglevel' at top level (expected one of: log_level, data_dir, admins, host, listener, c2s, limits, storage, im, registration, contact, external_service, muc, archive, pubsub, http, upload, s2s, component, push, acme)"
        );
        assert_eq!(
            error("\n[storage]\ncache = 3\n"),
            "perch.toml:3: unknown key 'cache' in [storage] (expected one of: cache_kib)"
        );
        assert_eq!(
            error("[c2s.tls]\nx = 1\n"),
            "perch.toml:1: unknown key 'tls' in [c2s] (expected one of: require_encryption, allow_plaintext_auth, auth_timeout_secs, keepalive_secs, stanza_timeout_secs, stanza_min_bytes_per_sec, write_timeout_secs, resume_timeout_secs, max_resume_timeout_secs, resume_queue_max, ack_request_stanzas, ack_request_secs, ping_idle_secs, ping_timeout_secs, csi_max_held, fast_token_days)"
        );
        // A misspelt table is an unknown key of the top level.
        assert!(error("[limit]\n").starts_with("perch.toml:1: unknown key 'limit' at top level"));
        // Dotted keys are attributed to their table, not to the header above them.
        assert!(
            error("limits.max_stanzas = 1\n")
                .starts_with("perch.toml:1: unknown key 'max_stanzas' in [limits]")
        );
    }

    #[test]
    fn type_errors_name_the_key() {
        assert_eq!(
            error("[[listener]]\nkind = \"c2s\"\nport = \"5222\"\n"),
            "perch.toml:3: listener.port: expected an integer, found string \"5222\""
        );
        assert_eq!(
            error("[c2s]\nrequire_encryption = \"yes\"\n"),
            "perch.toml:2: c2s.require_encryption: expected true or false, found string \"yes\""
        );
        assert_eq!(
            error("admins = \"a@b\"\n"),
            "perch.toml:1: admins: expected an array, found string \"a@b\""
        );
        assert_eq!(
            error("limits = 5\n"),
            "perch.toml:1: limits: expected a table, found integer `5`"
        );
        assert_eq!(
            error("data_dir = 5\n"),
            "perch.toml:1: data_dir: expected a string, found integer `5`"
        );
        assert_eq!(
            error("[limits]\nmax_connections = 1.5\n"),
            "perch.toml:2: limits.max_connections: expected an integer, found floating point `1.5`"
        );
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let message = error("log_level = \"info\"\nport = \n");
        assert!(message.starts_with("perch.toml:2: "), "{message}");
        assert_eq!(
            error("[[listener]]\nkind = \"c2s\"\nkind = \"c2s-tls\"\n"),
            "perch.toml:3: duplicate key 'kind'"
        );
        assert!(matches!(parse("x = "), Err(ConfigError::Syntax(_))));
    }

    #[test]
    fn missing_required_keys() {
        assert_eq!(
            error("[[host]]\nmuc = \"rooms.example.org\"\n"),
            "perch.toml:1: missing required key 'domain' in [[host]]"
        );
        assert_eq!(
            error("[[listener]]\nport = 5222\n"),
            "perch.toml:1: missing required key 'kind' in [[listener]]"
        );
    }

    #[test]
    fn hosts_and_listeners_must_not_be_empty() {
        assert_eq!(
            problems("host = []\nlistener = []\n"),
            vec![
                "perch.toml:1: host: at least one [[host]] is required",
                "perch.toml:2: listener: at least one [[listener]] is required",
            ]
        );
    }

    #[test]
    fn out_of_range_numbers() {
        let text = r#"
[c2s]
auth_timeout_secs = 0
keepalive_secs = 5
[limits]
max_stanza_bytes = 9999
max_connections_per_ip = 0
max_connections = 0
login_attempts_per_minute = -5
[storage]
cache_kib = 8
"#;
        assert_eq!(
            problems(text),
            vec![
                "perch.toml:3: c2s.auth_timeout_secs: must be between 1 and 3600; found 0",
                "perch.toml:4: c2s.keepalive_secs: must be between 10 and 3600; found 5",
                "perch.toml:6: limits.max_stanza_bytes: must be between 10000 and 67108864; found 9999",
                "perch.toml:7: limits.max_connections_per_ip: must be between 1 and 1000000; found 0",
                "perch.toml:8: limits.max_connections: must be between 1 and 1000000; found 0",
                "perch.toml:9: limits.login_attempts_per_minute: must be between 1 and 10000; found -5",
                "perch.toml:11: storage.cache_kib: must be between 16 and 1048576; found 8",
            ]
        );
    }

    #[test]
    fn all_problems_are_reported_together() {
        let text = "log_level = \"loud\"\ndata_dir = \"\"\n[[listener]]\nkind = \"x\"\n[limits]\nmax_connections = 0\n";
        let err = parse(text).unwrap_err();
        assert_eq!(err.problems().len(), 4);
        assert_eq!(err.to_string().lines().count(), 4);
    }

    #[test]
    fn shape_and_value_problems_are_reported_together_in_file_order() {
        let text = "log_level = \"loud\"\n[[listener]]\nkind = \"c2s\"\nport = \"x\"\n[limits]\nmax_connections = 0\nbogus = 1\n[[host]]\nmuc = \"\"\n";
        assert_eq!(
            problems(text),
            vec![
                "perch.toml:1: log_level: expected one of error, warn, info, debug, trace; found \"loud\"",
                "perch.toml:4: listener.port: expected an integer, found string \"x\"",
                "perch.toml:6: limits.max_connections: must be between 1 and 1000000; found 0",
                "perch.toml:7: unknown key 'bogus' in [limits] (expected one of: max_stanza_bytes, max_connections_per_ip, max_connections, login_attempts_per_minute, login_delay_cap_secs, login_account_delay_cap_secs, max_vcard_bytes, max_private_xml_bytes)",
                "perch.toml:8: missing required key 'domain' in [[host]]",
            ]
        );
    }

    /// A table left out for a missing key does not make its array look
    /// empty or its neighbours look wrong.
    #[test]
    fn a_broken_table_does_not_cause_follow_up_problems() {
        let text =
            "[[host]]\ndomain = \"a.org\"\n[[host]]\ndomain = 5\n[[listener]]\nport = 5222\n";
        assert_eq!(
            problems(text),
            vec![
                "perch.toml:4: host.domain: expected a string, found integer `5`",
                "perch.toml:5: missing required key 'kind' in [[listener]]",
            ]
        );
    }

    #[test]
    fn load_reads_files_and_reports_io_errors() {
        let dir = std::env::temp_dir().join(format!("perch-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("perch.toml");
        std::fs::write(&path, "[limits]\nmax_connections = 0\n").unwrap();
        let err = Config::load(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}:2: limits.max_connections: must be between 1 and 1000000; found 0",
                path.display()
            )
        );

        std::fs::write(&path, "log_level = \"warn\"\n").unwrap();
        assert_eq!(Config::load(&path).unwrap().log_level, LevelFilter::Warn);

        let missing = dir.join("missing.toml");
        let err = Config::load(&missing).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
        );
        assert!(
            err.to_string()
                .starts_with(&format!("cannot read {}: ", missing.display()))
        );
        assert!(std::error::Error::source(&err).is_some());
        assert_eq!(err.problems().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
