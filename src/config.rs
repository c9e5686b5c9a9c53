//! Perch's configuration: one optional TOML file on top of built-in defaults.
//!
//! Parsing happens in two steps. `toml` parses the text (a syntax error stops
//! there) and a small reader of our own ([`toml_reader`]) fills `Raw*` structs
//! that keep source spans, noting unknown keys, missing required keys and
//! wrong types. Validation then turns the raw structs into the typed
//! [`Config`]. Problems of both steps are collected, each prefixed with
//! `file:line:`, so `perch check` can list them all at once.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};

use log::LevelFilter;
use toml::Spanned;
use toml::de::DeTable;

mod contact;
mod data_dir;
mod external_services;
mod host_tls;
mod registration;
mod toml_reader;

use toml_reader::TableReader;

pub use contact::ContactAddresses;
pub use data_dir::Surroundings;
pub use external_services::{
    DEFAULT_TURN_TTL_SECS, ExternalService, ServiceCredentials, Transport,
};
pub use registration::RegistrationConfig;

/// The data directory of earlier versions, and the last resort when there
/// is no home directory (see [`Surroundings`] for the whole order).
pub const DEFAULT_DATA_DIR: &str = "./perch-data";
/// The virtual host served when the config names none.
pub const DEFAULT_DOMAIN: &str = "localhost";
/// RFC 6120 §13.12 forbids servers to reject stanzas smaller than this.
pub const MIN_STANZA_BYTES: usize = 10_000;

const LOG_LEVELS: [(&str, LevelFilter); 5] = [
    ("error", LevelFilter::Error),
    ("warn", LevelFilter::Warn),
    ("info", LevelFilter::Info),
    ("debug", LevelFilter::Debug),
    ("trace", LevelFilter::Trace),
];

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
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListenerKind {
    /// Client connections that start in plaintext and upgrade with STARTTLS.
    C2s,
    /// Client connections that start with a TLS handshake (XEP-0368).
    C2sTls,
    /// Server-to-server federation; accepted in the config but not served yet.
    S2s,
}

impl ListenerKind {
    const ALL: [ListenerKind; 3] = [ListenerKind::C2s, ListenerKind::C2sTls, ListenerKind::S2s];

    /// The spelling used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            ListenerKind::C2s => "c2s",
            ListenerKind::C2sTls => "c2s-tls",
            ListenerKind::S2s => "s2s",
        }
    }

    /// For start-up and `perch check` output.
    pub fn describe(self) -> &'static str {
        match self {
            ListenerKind::C2s => "c2s (clients, STARTTLS)",
            ListenerKind::C2sTls => "c2s-tls (clients, direct TLS)",
            ListenerKind::S2s => "s2s (federation)",
        }
    }

    /// The IANA port for this kind, used when a listener gives none.
    pub fn default_port(self) -> u16 {
        match self {
            ListenerKind::C2s => 5222,
            ListenerKind::C2sTls => 5223,
            ListenerKind::S2s => 5269,
        }
    }
}

impl fmt::Display for ListenerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerConfig {
    pub kind: ListenerKind,
    /// Port 0 asks the OS for an ephemeral port (tests).
    pub address: SocketAddr,
}

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
}

/// Resource limits, chosen to keep a small machine responsive under abuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// At least [`MIN_STANZA_BYTES`].
    pub max_stanza_bytes: usize,
    pub max_connections_per_ip: u32,
    pub max_connections: usize,
    /// Failed logins from one address (or against one account) before
    /// further attempts wait; the count fades with a half-life of 10
    /// minutes. At least 1. (The name is historical.)
    pub login_attempts_per_minute: u32,
    /// The longest wait between two login attempts from one address
    /// (1..=3600 s).
    pub login_delay_cap_secs: u32,
    /// The longest wait between two login attempts on one account, and so
    /// the longest its owner waits to log in while others guess (1..=300 s).
    pub login_account_delay_cap_secs: u32,
    /// Largest vCard (XEP-0054) an account may store, serialized.
    pub max_vcard_bytes: usize,
    /// Private XML (XEP-0049) one account may store, all namespaces together.
    pub max_private_xml_bytes: usize,
}

/// Who may create chat rooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomCreation {
    /// Any user who can reach the service.
    Anyone,
    /// Users with an account on one of this server's hosts.
    Local,
    /// Server administrators (`admins`) only.
    Admins,
}

impl RoomCreation {
    const ALL: [(&'static str, RoomCreation); 3] = [
        ("anyone", RoomCreation::Anyone),
        ("local", RoomCreation::Local),
        ("admins", RoomCreation::Admins),
    ];
}

/// The multi-user chat service, the same for every host's MUC domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MucConfig {
    pub room_creation: RoomCreation,
    /// Rooms that may exist at once (stored and temporary together).
    pub max_rooms: usize,
    /// Temporary rooms one user may own at once, so one account cannot
    /// use up the service by creating rooms.
    pub max_rooms_per_user: usize,
    /// Occupants per room; room owners may set a lower limit.
    pub max_occupants: u32,
    /// History messages a new room keeps and sends to joining occupants.
    pub default_history: u32,
    /// The most history messages an owner may configure.
    pub max_history: u32,
    /// Affiliations (owners, admins, members, bans) per room.
    pub max_affiliations: usize,
    /// Messages an occupant may send in a burst...
    pub message_burst: u32,
    /// ...and per minute after the burst.
    pub messages_per_minute: u32,
    /// Whether users without an affiliation may register with a room
    /// (and so become members with a reserved nickname).
    pub unaffiliated_registration: bool,
}

impl Default for MucConfig {
    fn default() -> Self {
        MucConfig {
            room_creation: RoomCreation::Anyone,
            max_rooms: 10_000,
            max_rooms_per_user: 100,
            max_occupants: 1_000,
            default_history: 20,
            max_history: 100,
            max_affiliations: 10_000,
            message_burst: 20,
            messages_per_minute: 120,
            unaffiliated_registration: false,
        }
    }
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageConfig {
    /// redb's own page cache in KiB (16..=1 048 576, so bytes fit a 32-bit
    /// usize). The kernel's page cache holds the file too, so this only
    /// saves system calls. Small on purpose: pages cached while a wave of
    /// clients logs in are long-lived blocks among the clients' short-lived
    /// ones, and with musl's allocator each such page kept up to 123 KiB
    /// of freed memory from going back to the kernel after they left (a
    /// 1 MiB cache: 15.4 MiB resident after 10 000 TLS clients came and
    /// left; 64 KiB: 6.0 MiB, for two more reads per login).
    pub cache_kib: usize,
}

impl StorageConfig {
    /// The cache size in bytes, as `store::Store::open` takes it.
    pub fn cache_bytes(&self) -> usize {
        self.cache_kib.saturating_mul(1 << 10)
    }
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
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_stanza_bytes: 262_144,
            max_connections_per_ip: 32,
            max_connections: 10_000,
            login_attempts_per_minute: 10,
            login_delay_cap_secs: 60,
            login_account_delay_cap_secs: 15,
            max_vcard_bytes: 131_072,
            max_private_xml_bytes: 262_144,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig { cache_kib: 64 }
    }
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
        let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
        Config {
            log_level: LevelFilter::Info,
            data_dir: state_dir
                .filter(|dir| !dir.as_os_str().is_empty())
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            admins: Vec::new(),
            hosts: vec![HostConfig {
                domain: DEFAULT_DOMAIN.to_owned(),
                certificate: None,
                key: None,
                muc: Some(default_muc(DEFAULT_DOMAIN)),
                allow_mismatched_certificate: false,
            }],
            listeners: [ListenerKind::C2s, ListenerKind::C2sTls]
                .into_iter()
                .map(|kind| ListenerConfig {
                    kind,
                    address: SocketAddr::new(localhost, kind.default_port()),
                })
                .collect(),
            c2s: C2sConfig::default(),
            limits: Limits::default(),
            storage: StorageConfig::default(),
            im: ImConfig::default(),
            registration: RegistrationConfig::default(),
            contact: ContactAddresses::default(),
            external_services: Vec::new(),
            muc: MucConfig::default(),
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
        let (raw, shape_problems) = toml_reader::read_document(document, RawConfig::read);
        let mut checker = Checker {
            text,
            origin,
            problems: Vec::new(),
            credentials_dir: std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from),
        };
        for problem in shape_problems {
            checker.problem(problem.span, problem.message);
        }
        let config = checker.config(raw, Config::defaults_with_state_dir(state_dir));
        if checker.problems.is_empty() {
            Ok(config)
        } else {
            // Cross-host checks run after per-host ones; file order reads better.
            checker.problems.sort_by_key(|&(offset, _)| offset);
            Err(ConfigError::Invalid(
                checker
                    .problems
                    .into_iter()
                    .map(|(_, message)| message)
                    .collect(),
            ))
        }
    }

    /// The host whose domain is `domain` (compared case-insensitively).
    pub fn host(&self, domain: &str) -> Option<&HostConfig> {
        self.hosts
            .iter()
            .find(|host| host.domain.eq_ignore_ascii_case(domain))
    }
}

/// The MUC domain a host gets when its `muc` key is absent.
pub fn default_muc(domain: &str) -> String {
    format!("conference.{domain}")
}

/// The prefix that names systemd's credentials directory in a certificate
/// or key path (`LoadCredential=` in the unit copies root-only files there,
/// readable by the service).
pub const CREDENTIALS_PREFIX: &str = "$CREDENTIALS_DIRECTORY/";

/// Replaces a leading [`CREDENTIALS_PREFIX`] with `credentials_dir`. Without
/// that directory (outside the service) the path stays as written, so that
/// reading it fails with the path shown.
pub fn expand_credentials_path(path: &str, credentials_dir: Option<&Path>) -> PathBuf {
    match (path.strip_prefix(CREDENTIALS_PREFIX), credentials_dir) {
        (Some(name), Some(dir)) => dir.join(name),
        _ => PathBuf::from(path),
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
// The file as written. Every key is optional here so that absence can fall
// back to the default; integers are kept as i64 so range errors get our own
// message. Each `read` asks for the keys in the order the file documents
// them, which is the order an unknown key's message lists them in.

struct RawConfig {
    log_level: Option<Spanned<String>>,
    data_dir: Option<Spanned<String>>,
    admins: Option<Vec<Spanned<String>>>,
    host: Option<Spanned<Vec<Spanned<RawHost>>>>,
    listener: Option<Spanned<Vec<Spanned<RawListener>>>>,
    c2s: Option<RawC2s>,
    limits: Option<RawLimits>,
    storage: Option<RawStorage>,
    im: Option<RawIm>,
    registration: Option<registration::RawRegistration>,
    contact: Option<contact::RawContact>,
    external_service: Option<Spanned<Vec<Spanned<external_services::RawExternalService>>>>,
    muc: Option<RawMuc>,
}

impl RawConfig {
    fn read(table: &mut TableReader<'_, '_>) -> RawConfig {
        RawConfig {
            log_level: table.string("log_level"),
            data_dir: table.string("data_dir"),
            admins: table.strings("admins"),
            host: table.tables("host", RawHost::read),
            listener: table.tables("listener", RawListener::read),
            c2s: table.table("c2s", RawC2s::read),
            limits: table.table("limits", RawLimits::read),
            storage: table.table("storage", RawStorage::read),
            im: table.table("im", RawIm::read),
            registration: table.table("registration", registration::RawRegistration::read),
            contact: table.table("contact", contact::RawContact::read),
            external_service: table.tables(
                "external_service",
                external_services::RawExternalService::read,
            ),
            muc: table.table("muc", RawMuc::read),
        }
    }
}

struct RawHost {
    domain: Spanned<String>,
    certificate: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
    allow_mismatched_certificate: Option<Spanned<bool>>,
    muc: Option<Spanned<String>>,
}

impl RawHost {
    fn read(table: &mut TableReader<'_, '_>) -> Option<RawHost> {
        let domain = table.required_string("domain");
        let certificate = table.string("certificate");
        let key = table.string("key");
        let allow_mismatched_certificate = table.boolean("allow_mismatched_certificate");
        let muc = table.string("muc");
        Some(RawHost {
            domain: domain?,
            certificate,
            key,
            allow_mismatched_certificate,
            muc,
        })
    }
}

struct RawListener {
    kind: Spanned<String>,
    address: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
}

impl RawListener {
    fn read(table: &mut TableReader<'_, '_>) -> Option<RawListener> {
        let kind = table.required_string("kind");
        let address = table.string("address");
        let port = table.integer("port");
        Some(RawListener {
            kind: kind?,
            address,
            port,
        })
    }
}

struct RawC2s {
    require_encryption: Option<bool>,
    allow_plaintext_auth: Option<Spanned<bool>>,
    auth_timeout_secs: Option<Spanned<i64>>,
    keepalive_secs: Option<Spanned<i64>>,
    stanza_timeout_secs: Option<Spanned<i64>>,
    stanza_min_bytes_per_sec: Option<Spanned<i64>>,
}

impl RawC2s {
    fn read(table: &mut TableReader<'_, '_>) -> RawC2s {
        RawC2s {
            require_encryption: table.boolean("require_encryption").map(Spanned::into_inner),
            allow_plaintext_auth: table.boolean("allow_plaintext_auth"),
            auth_timeout_secs: table.integer("auth_timeout_secs"),
            keepalive_secs: table.integer("keepalive_secs"),
            stanza_timeout_secs: table.integer("stanza_timeout_secs"),
            stanza_min_bytes_per_sec: table.integer("stanza_min_bytes_per_sec"),
        }
    }
}

struct RawLimits {
    max_stanza_bytes: Option<Spanned<i64>>,
    max_connections_per_ip: Option<Spanned<i64>>,
    max_connections: Option<Spanned<i64>>,
    login_attempts_per_minute: Option<Spanned<i64>>,
    login_delay_cap_secs: Option<Spanned<i64>>,
    login_account_delay_cap_secs: Option<Spanned<i64>>,
    max_vcard_bytes: Option<Spanned<i64>>,
    max_private_xml_bytes: Option<Spanned<i64>>,
}

impl RawLimits {
    fn read(table: &mut TableReader<'_, '_>) -> RawLimits {
        RawLimits {
            max_stanza_bytes: table.integer("max_stanza_bytes"),
            max_connections_per_ip: table.integer("max_connections_per_ip"),
            max_connections: table.integer("max_connections"),
            login_attempts_per_minute: table.integer("login_attempts_per_minute"),
            login_delay_cap_secs: table.integer("login_delay_cap_secs"),
            login_account_delay_cap_secs: table.integer("login_account_delay_cap_secs"),
            max_vcard_bytes: table.integer("max_vcard_bytes"),
            max_private_xml_bytes: table.integer("max_private_xml_bytes"),
        }
    }
}

struct RawStorage {
    cache_kib: Option<Spanned<i64>>,
}

impl RawStorage {
    fn read(table: &mut TableReader<'_, '_>) -> RawStorage {
        RawStorage {
            cache_kib: table.integer("cache_kib"),
        }
    }
}

struct RawMuc {
    room_creation: Option<Spanned<String>>,
    max_rooms: Option<Spanned<i64>>,
    max_rooms_per_user: Option<Spanned<i64>>,
    max_occupants: Option<Spanned<i64>>,
    default_history: Option<Spanned<i64>>,
    max_history: Option<Spanned<i64>>,
    max_affiliations: Option<Spanned<i64>>,
    message_burst: Option<Spanned<i64>>,
    messages_per_minute: Option<Spanned<i64>>,
    unaffiliated_registration: Option<bool>,
}

impl RawMuc {
    fn read(table: &mut TableReader<'_, '_>) -> RawMuc {
        RawMuc {
            room_creation: table.string("room_creation"),
            max_rooms: table.integer("max_rooms"),
            max_rooms_per_user: table.integer("max_rooms_per_user"),
            max_occupants: table.integer("max_occupants"),
            default_history: table.integer("default_history"),
            max_history: table.integer("max_history"),
            max_affiliations: table.integer("max_affiliations"),
            message_burst: table.integer("message_burst"),
            messages_per_minute: table.integer("messages_per_minute"),
            unaffiliated_registration: table
                .boolean("unaffiliated_registration")
                .map(Spanned::into_inner),
        }
    }
}

struct RawIm {
    roster_max_items: Option<Spanned<i64>>,
    blocklist_max_items: Option<Spanned<i64>>,
    offline_max_messages: Option<Spanned<i64>>,
    offline_max_bytes: Option<Spanned<i64>>,
    blocked_stanzas: Option<Spanned<String>>,
}

impl RawIm {
    fn read(table: &mut TableReader<'_, '_>) -> RawIm {
        RawIm {
            roster_max_items: table.integer("roster_max_items"),
            blocklist_max_items: table.integer("blocklist_max_items"),
            offline_max_messages: table.integer("offline_max_messages"),
            offline_max_bytes: table.integer("offline_max_bytes"),
            blocked_stanzas: table.string("blocked_stanzas"),
        }
    }
}

// ---------------------------------------------------------------------------
// Validation.

struct Checker<'a> {
    text: &'a str,
    origin: &'a str,
    /// Byte offset and message, so problems can be listed in file order.
    problems: Vec<(usize, String)>,
    /// systemd's `$CREDENTIALS_DIRECTORY`, for certificate and key paths.
    credentials_dir: Option<PathBuf>,
}

/// A validated host plus the spans needed for cross-host checks.
struct CheckedHost {
    host: HostConfig,
    domain_span: Range<usize>,
    muc_span: Range<usize>,
}

impl Checker<'_> {
    fn problem(&mut self, span: Range<usize>, message: impl fmt::Display) {
        let location = location(self.origin, self.text, Some(span.clone()));
        self.problems
            .push((span.start, format!("{location}{message}")));
    }

    fn config(&mut self, raw: RawConfig, defaults: Config) -> Config {
        let log_level = match raw.log_level {
            Some(level) => self.log_level(level).unwrap_or(defaults.log_level),
            None => defaults.log_level,
        };
        let data_dir = match raw.data_dir {
            Some(dir) => self.data_dir(dir).unwrap_or(defaults.data_dir),
            None => defaults.data_dir,
        };
        let admins = match raw.admins {
            Some(admins) => self.admins(admins),
            None => defaults.admins,
        };
        let hosts = match raw.host {
            Some(hosts) => self.hosts(hosts),
            None => defaults.hosts,
        };
        let listeners = match raw.listener {
            Some(listeners) => self.listeners(listeners),
            None => defaults.listeners,
        };
        let c2s = match raw.c2s {
            Some(c2s) => self.c2s(c2s, defaults.c2s),
            None => defaults.c2s,
        };
        let limits = match raw.limits {
            Some(limits) => self.limits(limits, defaults.limits),
            None => defaults.limits,
        };
        let storage = match raw.storage {
            Some(storage) => self.storage(storage, defaults.storage),
            None => defaults.storage,
        };
        let im = match raw.im {
            Some(im) => self.im(im, defaults.im),
            None => defaults.im,
        };
        let registration = match raw.registration {
            Some(registration) => self.registration(registration, defaults.registration),
            None => defaults.registration,
        };
        let contact = match raw.contact {
            Some(contact) => self.contact(contact),
            None => defaults.contact,
        };
        let external_services = match raw.external_service {
            Some(services) => self.external_services(services),
            None => defaults.external_services,
        };
        let muc = match raw.muc {
            Some(muc) => self.muc(muc, defaults.muc),
            None => defaults.muc,
        };
        Config {
            log_level,
            data_dir,
            admins,
            hosts,
            listeners,
            c2s,
            limits,
            storage,
            im,
            registration,
            contact,
            external_services,
            muc,
        }
    }

    fn log_level(&mut self, raw: Spanned<String>) -> Option<LevelFilter> {
        let found = LOG_LEVELS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(raw.get_ref()))
            .map(|&(_, level)| level);
        if found.is_none() {
            let names: Vec<&str> = LOG_LEVELS.iter().map(|&(name, _)| name).collect();
            self.problem(
                raw.span(),
                format_args!(
                    "log_level: expected one of {}; found {:?}",
                    names.join(", "),
                    raw.get_ref()
                ),
            );
        }
        found
    }

    fn data_dir(&mut self, raw: Spanned<String>) -> Option<PathBuf> {
        let span = raw.span();
        let dir = raw.into_inner();
        if dir.is_empty() {
            self.problem(span, "data_dir: must not be empty");
            None
        } else if dir.starts_with('~') {
            // Nothing between the file and us expands `~`: such a path would
            // silently create a directory literally named "~".
            self.problem(
                span,
                format_args!(
                    "data_dir: '~' is not expanded; use an absolute path instead of {dir:?}"
                ),
            );
            None
        } else {
            Some(PathBuf::from(dir))
        }
    }

    fn admins(&mut self, raw: Vec<Spanned<String>>) -> Vec<String> {
        let mut admins: Vec<String> = Vec::new();
        for admin in raw {
            let span = admin.span();
            let jid = admin.into_inner();
            match check_bare_jid(&jid) {
                Err(why) => self.problem(span, format_args!("admins: {jid:?} {why}")),
                // A repeated entry is harmless, so it is dropped rather than reported.
                Ok(()) if admins.contains(&jid) => {}
                Ok(()) => admins.push(jid),
            }
        }
        admins
    }

    fn hosts(&mut self, raw: Spanned<Vec<Spanned<RawHost>>>) -> Vec<HostConfig> {
        let list_span = raw.span();
        let raw = raw.into_inner();
        if raw.is_empty() {
            self.problem(list_span, "host: at least one [[host]] is required");
        }
        let checked: Vec<CheckedHost> =
            raw.into_iter().filter_map(|host| self.host(host)).collect();

        for (i, host) in checked.iter().enumerate() {
            let earlier = checked.get(..i).unwrap_or_default();
            if earlier
                .iter()
                .any(|other| other.host.domain == host.host.domain)
            {
                self.problem(
                    host.domain_span.clone(),
                    format_args!("host: {:?} is configured more than once", host.host.domain),
                );
            }
            let Some(muc) = &host.host.muc else { continue };
            if let Some(owner) = checked.iter().find(|other| &other.host.domain == muc) {
                self.problem(
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
                self.problem(
                    host.muc_span.clone(),
                    format_args!(
                        "host {:?}: muc domain {muc:?} is already used by host {:?}",
                        host.host.domain, other.host.domain
                    ),
                );
            }
        }
        checked.into_iter().map(|checked| checked.host).collect()
    }

    fn host(&mut self, raw: Spanned<RawHost>) -> Option<CheckedHost> {
        let table_span = raw.span();
        let raw = raw.into_inner();
        let domain_span = raw.domain.span();
        let domain = match check_domain(raw.domain.get_ref()) {
            Ok(domain) => domain,
            Err(why) => {
                self.problem(
                    domain_span,
                    format_args!("host.domain: {:?} {why}", raw.domain.get_ref()),
                );
                return None;
            }
        };

        let (certificate, key) = match (raw.certificate, raw.key) {
            (None, None) => (None, None),
            (Some(certificate), None) => {
                self.problem(
                    certificate.span(),
                    format_args!(
                        "host {domain:?}: certificate is set but key is not (set both or neither)"
                    ),
                );
                (None, None)
            }
            (None, Some(key)) => {
                self.problem(
                    key.span(),
                    format_args!(
                        "host {domain:?}: key is set but certificate is not (set both or neither)"
                    ),
                );
                (None, None)
            }
            (Some(certificate), Some(key)) => {
                let certificate = self.file_path(&domain, "certificate", certificate);
                let key = self.file_path(&domain, "key", key);
                // Keep the pair whole so consumers may rely on both-or-neither.
                match (certificate, key) {
                    (Some(certificate), Some(key)) => (Some(certificate), Some(key)),
                    _ => (None, None),
                }
            }
        };

        let allow_mismatched_certificate = host_tls::allow_mismatched_certificate(
            &domain,
            raw.allow_mismatched_certificate,
            certificate.is_some(),
        )
        .unwrap_or_else(|(span, message)| {
            self.problem(span, message);
            false
        });

        let (muc, muc_span) = match raw.muc {
            None => (Some(default_muc(&domain)), table_span),
            Some(muc) if muc.get_ref().is_empty() => (None, muc.span()),
            Some(muc) => match check_domain(muc.get_ref()) {
                Ok(name) if name == domain => {
                    self.problem(
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
                    self.problem(
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

        Some(CheckedHost {
            host: HostConfig {
                domain,
                certificate,
                key,
                muc,
                allow_mismatched_certificate,
            },
            domain_span,
            muc_span,
        })
    }

    fn file_path(&mut self, domain: &str, key: &str, raw: Spanned<String>) -> Option<PathBuf> {
        if raw.get_ref().is_empty() {
            self.problem(
                raw.span(),
                format_args!("host {domain:?}: {key} must not be empty"),
            );
            None
        } else {
            Some(expand_credentials_path(
                raw.get_ref(),
                self.credentials_dir.as_deref(),
            ))
        }
    }

    fn listeners(&mut self, raw: Spanned<Vec<Spanned<RawListener>>>) -> Vec<ListenerConfig> {
        let list_span = raw.span();
        let raw = raw.into_inner();
        if raw.is_empty() {
            self.problem(list_span, "listener: at least one [[listener]] is required");
        }
        let mut listeners: Vec<ListenerConfig> = Vec::new();
        for listener in raw {
            let span = listener.span();
            let Some(listener) = self.listener(listener.into_inner()) else {
                continue;
            };
            match listeners.iter().find(|other| binds_overlap(other.address, listener.address)) {
                Some(other) if other.address == listener.address => self.problem(
                    span,
                    format_args!("listener: {} is configured more than once", listener.address),
                ),
                Some(other) => self.problem(
                    span,
                    format_args!(
                        "listener: {} overlaps with {} (the same port on all addresses), so one of them cannot start",
                        listener.address, other.address
                    ),
                ),
                None => listeners.push(listener),
            }
        }
        listeners
    }

    fn listener(&mut self, raw: RawListener) -> Option<ListenerConfig> {
        let kind = ListenerKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == raw.kind.get_ref().as_str());
        if kind.is_none() {
            let names: Vec<&str> = ListenerKind::ALL.iter().map(|kind| kind.as_str()).collect();
            self.problem(
                raw.kind.span(),
                format_args!(
                    "listener.kind: expected one of {}; found {:?}",
                    names.join(", "),
                    raw.kind.get_ref()
                ),
            );
        }
        let ip = match raw.address {
            None => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            Some(address) => {
                let ip = parse_ip(address.get_ref());
                if ip.is_none() {
                    self.problem(
                        address.span(),
                        format_args!(
                            "listener.address: expected an IPv4 or IPv6 address such as 127.0.0.1, ::1, 0.0.0.0 or ::; found {:?}",
                            address.get_ref()
                        ),
                    );
                }
                ip
            }
        };
        let port: Option<u16> = match (raw.port, kind) {
            (Some(port), _) => self.integer("listener.port", port, 0..=65_535),
            (None, Some(kind)) => Some(kind.default_port()),
            (None, None) => None,
        };
        Some(ListenerConfig {
            kind: kind?,
            address: SocketAddr::new(ip?, port?),
        })
    }

    fn c2s(&mut self, raw: RawC2s, defaults: C2sConfig) -> C2sConfig {
        let require_encryption = raw
            .require_encryption
            .unwrap_or(defaults.require_encryption);
        let allow_plaintext_auth = match raw.allow_plaintext_auth {
            Some(allow) => {
                if *allow.get_ref() && require_encryption {
                    self.problem(
                        allow.span(),
                        "c2s.allow_plaintext_auth = true has no effect while c2s.require_encryption = true; set require_encryption = false too",
                    );
                }
                *allow.get_ref()
            }
            None => defaults.allow_plaintext_auth,
        };
        C2sConfig {
            require_encryption,
            allow_plaintext_auth,
            auth_timeout_secs: self.optional_integer(
                "c2s.auth_timeout_secs",
                raw.auth_timeout_secs,
                1..=3_600,
                defaults.auth_timeout_secs,
            ),
            keepalive_secs: self.optional_integer(
                "c2s.keepalive_secs",
                raw.keepalive_secs,
                10..=3_600,
                defaults.keepalive_secs,
            ),
            stanza_timeout_secs: self.optional_integer(
                "c2s.stanza_timeout_secs",
                raw.stanza_timeout_secs,
                1..=3_600,
                defaults.stanza_timeout_secs,
            ),
            stanza_min_bytes_per_sec: self.optional_integer(
                "c2s.stanza_min_bytes_per_sec",
                raw.stanza_min_bytes_per_sec,
                0..=1_000_000,
                defaults.stanza_min_bytes_per_sec,
            ),
        }
    }

    fn limits(&mut self, raw: RawLimits, defaults: Limits) -> Limits {
        Limits {
            max_stanza_bytes: self.optional_integer(
                "limits.max_stanza_bytes",
                raw.max_stanza_bytes,
                10_000..=64 * 1024 * 1024,
                defaults.max_stanza_bytes,
            ),
            max_connections_per_ip: self.optional_integer(
                "limits.max_connections_per_ip",
                raw.max_connections_per_ip,
                1..=1_000_000,
                defaults.max_connections_per_ip,
            ),
            max_connections: self.optional_integer(
                "limits.max_connections",
                raw.max_connections,
                1..=1_000_000,
                defaults.max_connections,
            ),
            login_attempts_per_minute: self.optional_integer(
                "limits.login_attempts_per_minute",
                raw.login_attempts_per_minute,
                1..=10_000,
                defaults.login_attempts_per_minute,
            ),
            login_delay_cap_secs: self.optional_integer(
                "limits.login_delay_cap_secs",
                raw.login_delay_cap_secs,
                1..=3_600,
                defaults.login_delay_cap_secs,
            ),
            login_account_delay_cap_secs: self.optional_integer(
                "limits.login_account_delay_cap_secs",
                raw.login_account_delay_cap_secs,
                1..=300,
                defaults.login_account_delay_cap_secs,
            ),
            max_vcard_bytes: self.optional_integer(
                "limits.max_vcard_bytes",
                raw.max_vcard_bytes,
                1_024..=16 * 1024 * 1024,
                defaults.max_vcard_bytes,
            ),
            max_private_xml_bytes: self.optional_integer(
                "limits.max_private_xml_bytes",
                raw.max_private_xml_bytes,
                1_024..=64 * 1024 * 1024,
                defaults.max_private_xml_bytes,
            ),
        }
    }

    fn storage(&mut self, raw: RawStorage, defaults: StorageConfig) -> StorageConfig {
        StorageConfig {
            cache_kib: self.optional_integer(
                "storage.cache_kib",
                raw.cache_kib,
                16..=1_048_576,
                defaults.cache_kib,
            ),
        }
    }

    fn muc(&mut self, raw: RawMuc, defaults: MucConfig) -> MucConfig {
        let room_creation = match raw.room_creation {
            None => defaults.room_creation,
            Some(value) => {
                let found = RoomCreation::ALL
                    .iter()
                    .find(|(name, _)| *name == value.get_ref().as_str());
                match found {
                    Some(&(_, rc)) => rc,
                    None => {
                        let names: Vec<&str> = RoomCreation::ALL.iter().map(|&(n, _)| n).collect();
                        self.problem(
                            value.span(),
                            format_args!(
                                "muc.room_creation: expected one of {}; found {:?}",
                                names.join(", "),
                                value.get_ref()
                            ),
                        );
                        defaults.room_creation
                    }
                }
            }
        };
        let max_history: u32 = self.optional_integer(
            "muc.max_history",
            raw.max_history,
            0..=1_000,
            defaults.max_history,
        );
        let default_history = match raw.default_history {
            Some(value) => self
                .integer("muc.default_history", value, 0..=i64::from(max_history))
                .unwrap_or(defaults.default_history.min(max_history)),
            None => defaults.default_history.min(max_history),
        };
        MucConfig {
            room_creation,
            max_rooms: self.optional_integer(
                "muc.max_rooms",
                raw.max_rooms,
                1..=1_000_000,
                defaults.max_rooms,
            ),
            max_rooms_per_user: self.optional_integer(
                "muc.max_rooms_per_user",
                raw.max_rooms_per_user,
                1..=1_000_000,
                defaults.max_rooms_per_user,
            ),
            max_occupants: self.optional_integer(
                "muc.max_occupants",
                raw.max_occupants,
                1..=100_000,
                defaults.max_occupants,
            ),
            default_history,
            max_history,
            max_affiliations: self.optional_integer(
                "muc.max_affiliations",
                raw.max_affiliations,
                1..=1_000_000,
                defaults.max_affiliations,
            ),
            message_burst: self.optional_integer(
                "muc.message_burst",
                raw.message_burst,
                1..=10_000,
                defaults.message_burst,
            ),
            messages_per_minute: self.optional_integer(
                "muc.messages_per_minute",
                raw.messages_per_minute,
                1..=600_000,
                defaults.messages_per_minute,
            ),
            unaffiliated_registration: raw
                .unaffiliated_registration
                .unwrap_or(defaults.unaffiliated_registration),
        }
    }

    fn im(&mut self, raw: RawIm, defaults: ImConfig) -> ImConfig {
        let blocked_stanzas = match raw.blocked_stanzas {
            None => defaults.blocked_stanzas,
            Some(value) => match BlockedStanzas::ALL
                .iter()
                .find(|(name, _)| *name == value.get_ref().as_str())
            {
                Some(&(_, choice)) => choice,
                None => {
                    self.problem(
                        value.span(),
                        format_args!(
                            "im.blocked_stanzas: expected \"bounce\" or \"drop\"; found {:?}",
                            value.get_ref()
                        ),
                    );
                    defaults.blocked_stanzas
                }
            },
        };
        ImConfig {
            roster_max_items: self.optional_integer(
                "im.roster_max_items",
                raw.roster_max_items,
                1..=100_000,
                defaults.roster_max_items,
            ),
            blocklist_max_items: self.optional_integer(
                "im.blocklist_max_items",
                raw.blocklist_max_items,
                1..=100_000,
                defaults.blocklist_max_items,
            ),
            offline_max_messages: self.optional_integer(
                "im.offline_max_messages",
                raw.offline_max_messages,
                0..=100_000,
                defaults.offline_max_messages,
            ),
            offline_max_bytes: self.optional_integer(
                "im.offline_max_bytes",
                raw.offline_max_bytes,
                0..=1 << 30,
                defaults.offline_max_bytes,
            ),
            blocked_stanzas,
        }
    }

    fn optional_integer<T: TryFrom<i64>>(
        &mut self,
        key: &str,
        raw: Option<Spanned<i64>>,
        range: RangeInclusive<i64>,
        default: T,
    ) -> T {
        match raw {
            Some(value) => self.integer(key, value, range).unwrap_or(default),
            None => default,
        }
    }

    fn integer<T: TryFrom<i64>>(
        &mut self,
        key: &str,
        raw: Spanned<i64>,
        range: RangeInclusive<i64>,
    ) -> Option<T> {
        let value = *raw.get_ref();
        let converted = range
            .contains(&value)
            .then(|| T::try_from(value).ok())
            .flatten();
        if converted.is_none() {
            self.problem(
                raw.span(),
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

/// Whether binding both addresses would fail with "address in use" on Linux:
/// the wildcard addresses claim the port on every address of their family,
/// and `::` (dual-stack by default) on IPv4 too.
fn binds_overlap(a: SocketAddr, b: SocketAddr) -> bool {
    // Port 0: every bind gets its own ephemeral port.
    if a.port() == 0 || a.port() != b.port() {
        return false;
    }
    let covers = |wide: IpAddr, narrow: IpAddr| {
        wide == narrow || (wide.is_unspecified() && (wide.is_ipv6() || narrow.is_ipv4()))
    };
    covers(a.ip(), b.ip()) || covers(b.ip(), a.ip())
}

/// Accepts IP literals, including bracketed IPv6 as people copy it from URLs.
fn parse_ip(text: &str) -> Option<IpAddr> {
    let unbracketed = text
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(text);
    unbracketed.parse().ok()
}

/// Checks a domain name's shape and lower-cases it. Full IDNA/nameprep
/// normalization belongs to the JID code; this catches the typos that would
/// otherwise surface as confusing runtime failures.
fn check_domain(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(
            "is not a valid domain name (it contains whitespace or control characters)".to_owned(),
        );
    }
    if let Some(bad) = name
        .chars()
        .find(|c| matches!(c, '@' | '/' | '\\' | '"' | '\'' | '<' | '>' | '&'))
    {
        return Err(format!("is not a valid domain name (it contains {bad:?})"));
    }
    if name.contains(':') {
        return Err(
            "is not a valid domain name (ports belong in [[listener]], not in domains)".to_owned(),
        );
    }
    if name.len() > 253 {
        return Err("is not a valid domain name (longer than 253 bytes)".to_owned());
    }
    if name.split('.').any(str::is_empty) {
        return Err(
            "is not a valid domain name (empty label: check for leading, trailing or doubled dots)"
                .to_owned(),
        );
    }
    if name.split('.').any(|label| label.len() > 63) {
        return Err("is not a valid domain name (a label is longer than 63 bytes)".to_owned());
    }
    Ok(name.to_lowercase())
}

fn check_bare_jid(jid: &str) -> Result<(), String> {
    if jid.contains('/') {
        return Err("must be a bare JID without a resource (user@domain)".to_owned());
    }
    let Some((local, domain)) = jid.split_once('@') else {
        return Err("is not a bare JID (expected user@domain)".to_owned());
    };
    if local.is_empty() {
        return Err("is not a bare JID (the part before '@' is empty)".to_owned());
    }
    if domain.contains('@') {
        return Err("is not a bare JID (it contains more than one '@')".to_owned());
    }
    if jid.chars().any(char::is_whitespace) {
        return Err("is not a bare JID (it contains whitespace)".to_owned());
    }
    if domain.is_empty() {
        return Err("is not a bare JID (the part after '@' is empty)".to_owned());
    }
    check_domain(domain)
        .map(drop)
        .map_err(|why| format!("is not a bare JID: its domain {why}"))
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
    use std::net::Ipv6Addr;

    const EXAMPLE: &str = include_str!("../perch.example.toml");

    pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "perch.toml", None)
    }

    fn defaults() -> Config {
        Config::defaults_with_state_dir(None)
    }

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

    /// The single error line for text expected to be rejected.
    fn error(text: &str) -> String {
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

    #[test]
    fn state_directory_becomes_the_data_dir() {
        let config = Config::defaults_with_state_dir(Some(PathBuf::from("/var/lib/perch")));
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/perch"));
        let empty = Config::defaults_with_state_dir(Some(PathBuf::new()));
        assert_eq!(empty.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        // An explicit data_dir wins over systemd's.
        let config = Config::parse(
            "data_dir = \"/srv/perch\"",
            "t",
            Some("/var/lib/perch".into()),
        )
        .unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/srv/perch"));
        let config = Config::parse("", "t", Some("/var/lib/perch".into())).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/perch"));
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
                    allow_mismatched_certificate: false,
                },
                HostConfig {
                    domain: "example.net".into(),
                    certificate: None,
                    key: None,
                    muc: Some("conference.example.net".into()),
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
    fn empty_muc_disables_muc() {
        let config = parse("[[host]]\ndomain = \"example.org\"\nmuc = \"\"\n").unwrap();
        assert_eq!(config.hosts[0].muc, None);
    }

    #[test]
    fn ipv6_listeners() {
        let text = "[[listener]]\nkind = \"c2s\"\naddress = \"::1\"\n[[listener]]\nkind = \"c2s-tls\"\naddress = \"[fe80::1]\"\nport = 5223\n";
        let config = parse(text).unwrap();
        assert_eq!(
            config.listeners[0].address,
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 5222)
        );
        assert_eq!(
            config.listeners[1].address,
            "[fe80::1]:5223".parse().unwrap()
        );
    }

    #[test]
    fn port_zero_is_ephemeral_and_may_repeat() {
        let text =
            "[[listener]]\nkind = \"c2s\"\nport = 0\n[[listener]]\nkind = \"c2s-tls\"\nport = 0\n";
        let config = parse(text).unwrap();
        assert_eq!(config.listeners.len(), 2);
        assert!(config.listeners.iter().all(|l| l.address.port() == 0));
    }

    #[test]
    fn unknown_keys_name_the_table_and_the_alternatives() {
        assert_eq!(
            error("[[listener]]\nkind = \"c2s\"\nprot = 5222\n"),
            "perch.toml:3: unknown key 'prot' in [[listener]] (expected one of: kind, address, port)"
        );
        assert_eq!(
            error("log_level = \"info\"\nloglevel = \"debug\"\n"),
            "perch.toml:2: unknown key 'loglevel' at top level (expected one of: log_level, data_dir, admins, host, listener, c2s, limits, storage, im, registration, contact, external_service, muc)"
        );
        assert_eq!(
            error("\n[storage]\ncache = 3\n"),
            "perch.toml:3: unknown key 'cache' in [storage] (expected one of: cache_kib)"
        );
        assert_eq!(
            error("[c2s.tls]\nx = 1\n"),
            "perch.toml:1: unknown key 'tls' in [c2s] (expected one of: require_encryption, allow_plaintext_auth, auth_timeout_secs, keepalive_secs, stanza_timeout_secs, stanza_min_bytes_per_sec)"
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
    fn bad_log_level() {
        assert_eq!(
            problems("\n\n\n\n\n\nlog_level = \"loud\"\n"),
            vec![
                "perch.toml:7: log_level: expected one of error, warn, info, debug, trace; found \"loud\""
            ]
        );
    }

    #[test]
    fn bad_data_dir() {
        assert_eq!(
            problems("data_dir = \"\"\n"),
            vec!["perch.toml:1: data_dir: must not be empty"]
        );
        assert_eq!(
            problems("data_dir = \"~/perch\"\n"),
            vec![
                "perch.toml:1: data_dir: '~' is not expanded; use an absolute path instead of \"~/perch\""
            ]
        );
    }

    #[test]
    fn bad_admins() {
        let found = problems(
            "admins = [\"alice\", \"bob@example.org/phone\", \"@example.org\", \"a@b@c\", \"x@\", \"a b@c\"]\n",
        );
        assert_eq!(
            found,
            vec![
                "perch.toml:1: admins: \"alice\" is not a bare JID (expected user@domain)",
                "perch.toml:1: admins: \"bob@example.org/phone\" must be a bare JID without a resource (user@domain)",
                "perch.toml:1: admins: \"@example.org\" is not a bare JID (the part before '@' is empty)",
                "perch.toml:1: admins: \"a@b@c\" is not a bare JID (it contains more than one '@')",
                "perch.toml:1: admins: \"x@\" is not a bare JID (the part after '@' is empty)",
                "perch.toml:1: admins: \"a b@c\" is not a bare JID (it contains whitespace)",
            ]
        );
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
    fn bad_listeners() {
        let text = r#"
[[listener]]
kind = "xmpp"
[[listener]]
kind = "c2s"
address = "localhost"
[[listener]]
kind = "c2s"
port = 70000
[[listener]]
kind = "c2s-tls"
address = "0.0.0.0"
port = 5223
[[listener]]
kind = "c2s"
address = "0.0.0.0"
port = 5223
"#;
        assert_eq!(
            problems(text),
            vec![
                "perch.toml:3: listener.kind: expected one of c2s, c2s-tls, s2s; found \"xmpp\"",
                "perch.toml:6: listener.address: expected an IPv4 or IPv6 address such as 127.0.0.1, ::1, 0.0.0.0 or ::; found \"localhost\"",
                "perch.toml:9: listener.port: must be between 0 and 65535; found 70000",
                "perch.toml:14: listener: 0.0.0.0:5223 is configured more than once",
            ]
        );
    }

    #[test]
    fn overlapping_listeners() {
        let listeners = |addresses: &[&str]| -> String {
            addresses
                .iter()
                .map(|address| format!("[[listener]]\nkind = \"c2s\"\naddress = \"{address}\"\n"))
                .collect()
        };
        // Distinct specific addresses, or wildcards of different families
        // beside specific ones of the other family, can share a port.
        assert!(parse(&listeners(&["127.0.0.1", "::1", "192.0.2.1"])).is_ok());
        assert!(parse(&listeners(&["0.0.0.0", "::1"])).is_ok());
        assert_eq!(
            problems(&listeners(&["0.0.0.0", "127.0.0.1"])),
            vec![
                "perch.toml:4: listener: 127.0.0.1:5222 overlaps with 0.0.0.0:5222 (the same port on all addresses), so one of them cannot start"
            ]
        );
        assert_eq!(
            problems(&listeners(&["127.0.0.1", "::"])),
            vec![
                "perch.toml:4: listener: [::]:5222 overlaps with 127.0.0.1:5222 (the same port on all addresses), so one of them cannot start"
            ]
        );
        assert_eq!(problems(&listeners(&["::", "::1"])).len(), 1);
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
    fn plaintext_auth_needs_encryption_off() {
        assert_eq!(
            problems("[c2s]\nallow_plaintext_auth = true\n"),
            vec![
                "perch.toml:2: c2s.allow_plaintext_auth = true has no effect while c2s.require_encryption = true; set require_encryption = false too"
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

    #[test]
    fn listener_kind_spelling_round_trips() {
        for kind in ListenerKind::ALL {
            let config = parse(&format!("[[listener]]\nkind = \"{kind}\"\n")).unwrap();
            assert_eq!(config.listeners[0].kind, kind);
            assert_eq!(config.listeners[0].address.port(), kind.default_port());
        }
    }
}
