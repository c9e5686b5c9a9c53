//! TLS for client connections: certificates per virtual host, chosen by SNI.
//!
//! Hosts with a configured certificate (e.g. Let's Encrypt) use it; the others
//! get a self-signed certificate that is created once under
//! `<data_dir>/tls/` and reused, so clients that pin it keep working across
//! restarts.
//!
//! Two `ServerConfig`s share one certificate resolver, session cache and
//! ticketer: one for STARTTLS (no ALPN) and one for direct TLS (XEP-0368,
//! ALPN `xmpp-client`). [`TlsSetup::reload`] swaps the certificates inside
//! the shared resolver, so a SIGHUP handler can renew certificates without
//! rebuilding listeners or losing resumable sessions.

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::{
    ClientHello, ParsedCertificate, ResolvesServerCert, ServerSessionMemoryCache,
};
use rustls::sign::CertifiedKey;
use rustls::{ProtocolVersion, ServerConfig, ServerConnection};

use crate::config::HostConfig;

/// The ALPN protocol name of XEP-0368 direct TLS client connections.
pub const ALPN_XMPP_CLIENT: &[u8] = b"xmpp-client";

/// RFC 9266 `tls-exporter` channel binding label.
const EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";

/// Stateful TLS 1.2 sessions kept for clients that cannot use tickets. TLS 1.3
/// resumption uses stateless tickets, so this stays small (a few hundred
/// bytes per entry) without hurting typical clients.
const SESSION_CACHE_ENTRIES: usize = 128;

/// XMPP clients hold one long-lived connection, so one ticket per handshake is
/// enough to resume it; rustls' default of two only costs bytes.
const TLS13_TICKETS_PER_HANDSHAKE: usize = 1;

/// Configured certificates expiring sooner than this are worth a warning:
/// automatic renewal (certbot renews 30 days ahead) has evidently failed.
const EXPIRY_WARNING_SECS: u64 = 14 * 24 * 60 * 60;

/// What the TLS layer needs to know about one virtual host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCert {
    pub domain: String,
    /// More names the host's certificate should serve, such as its MUC
    /// domain; a self-signed certificate includes them.
    pub extra_names: Vec<String>,
    /// PEM certificate chain and private key files; `None`: use (or create)
    /// a self-signed certificate.
    pub files: Option<(PathBuf, PathBuf)>,
}

impl From<&HostConfig> for HostCert {
    fn from(host: &HostConfig) -> Self {
        HostCert {
            domain: host.domain.clone(),
            extra_names: host.muc.iter().cloned().collect(),
            files: host
                .certificate_files()
                .map(|(certificate, key)| (certificate.to_owned(), key.to_owned())),
        }
    }
}

/// The server-side TLS configuration for all listeners.
#[derive(Debug, Clone)]
pub struct TlsSetup {
    provider: Arc<CryptoProvider>,
    resolver: Arc<SniResolver>,
    starttls: Arc<ServerConfig>,
    direct_tls: Arc<ServerConfig>,
    https: Arc<ServerConfig>,
}

/// Same as [`TlsSetup::load_or_create`].
pub fn load_or_create(hosts: &[HostCert], data_dir: &Path) -> Result<TlsSetup, TlsError> {
    TlsSetup::load_or_create(hosts, data_dir)
}

impl TlsSetup {
    /// Loads the configured certificates and creates or reuses self-signed ones
    /// for the other hosts. The first host's certificate is served to clients
    /// that send no SNI, or one matching no host.
    pub fn load_or_create(hosts: &[HostCert], data_dir: &Path) -> Result<TlsSetup, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let table = CertTable::load(hosts, data_dir, &provider, UnixTime::now())?;
        let resolver = Arc::new(SniResolver {
            table: RwLock::new(Arc::new(table)),
        });
        let session_storage = ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES);
        let ticketer = rustls::crypto::ring::Ticketer::new()?;

        let build = |alpn_protocols: Vec<Vec<u8>>| -> Result<Arc<ServerConfig>, TlsError> {
            let mut config = ServerConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
                .with_no_client_auth()
                .with_cert_resolver(resolver.clone());
            // rustls completes handshakes without ALPN when the client offers
            // none, which is what older direct-TLS clients do.
            config.alpn_protocols = alpn_protocols;
            config.session_storage = session_storage.clone();
            config.ticketer = ticketer.clone();
            config.send_tls13_tickets = TLS13_TICKETS_PER_HANDSHAKE;
            Ok(Arc::new(config))
        };
        let starttls = build(Vec::new())?;
        let direct_tls = build(vec![ALPN_XMPP_CLIENT.to_vec()])?;
        let https = build(vec![b"http/1.1".to_vec()])?;
        Ok(TlsSetup {
            provider,
            resolver,
            starttls,
            direct_tls,
            https,
        })
    }

    /// For the TLS handshake after `<starttls/>` on a `c2s` listener.
    pub fn starttls_config(&self) -> Arc<ServerConfig> {
        self.starttls.clone()
    }

    /// For `c2s-tls` listeners (XEP-0368).
    pub fn direct_config(&self) -> Arc<ServerConfig> {
        self.direct_tls.clone()
    }

    /// For `https` listeners (HTTP/1.1 only: no h2 in ALPN).
    pub fn https_config(&self) -> Arc<ServerConfig> {
        self.https.clone()
    }

    pub fn starttls_acceptor(&self) -> futures_rustls::TlsAcceptor {
        futures_rustls::TlsAcceptor::from(self.starttls.clone())
    }

    pub fn direct_tls_acceptor(&self) -> futures_rustls::TlsAcceptor {
        futures_rustls::TlsAcceptor::from(self.direct_tls.clone())
    }

    /// Reloads every certificate (e.g. on SIGHUP after a renewal). New
    /// handshakes on both configs use the new certificates; established
    /// connections and resumable sessions are unaffected. On error the old
    /// certificates stay in use.
    pub fn reload(&self, hosts: &[HostCert], data_dir: &Path) -> Result<(), TlsError> {
        let table = CertTable::load(hosts, data_dir, &self.provider, UnixTime::now())?;
        self.resolver.replace(table);
        Ok(())
    }

    /// The certificate a client sending `server_name` as SNI would get.
    pub fn certificate_for(&self, server_name: Option<&str>) -> Arc<CertifiedKey> {
        self.resolver.select(server_name)
    }
}

/// Loads a configured certificate and key the way start-up does, for
/// `perch check`: `Err` for what would stop the server, warnings for what
/// would only make clients complain.
pub fn check_files(
    domain: &str,
    certificate: &Path,
    key: &Path,
) -> Result<CertificateCheck, TlsError> {
    let provider = rustls::crypto::ring::default_provider();
    let certified = load_pair(domain, certificate, key, &provider)?;
    let leaf = certified.cert.first();
    Ok(CertificateCheck {
        chain_len: certified.cert.len(),
        covers_domain: leaf
            .and_then(|leaf| ParsedCertificate::try_from(leaf).ok())
            .is_some_and(|parsed| covers(&parsed, domain)),
        expires: leaf
            .and_then(|leaf| validity(leaf))
            .map(|validity| format_date(validity.not_after)),
        warnings: leaf
            .map(|leaf| certificate_warnings(domain, leaf, UnixTime::now()))
            .unwrap_or_default(),
    })
}

/// The result of [`check_files`]; displays as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateCheck {
    /// Certificates in the file, leaf first.
    pub chain_len: usize,
    /// Whether the leaf names the host's domain (also among `warnings`
    /// when not): `perch check` makes that an error for a real domain.
    pub covers_domain: bool,
    /// The leaf's expiry date as `YYYY-MM-DD`, when readable.
    pub expires: Option<String>,
    pub warnings: Vec<String>,
}

impl fmt::Display for CertificateCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.chain_len == 1 { "" } else { "s" };
        write!(
            f,
            "key matches, {} certificate{plural} in chain",
            self.chain_len
        )?;
        if let Some(expires) = &self.expires {
            write!(f, ", valid until {expires}")?;
        }
        for warning in &self.warnings {
            write!(f, "; warning: {warning}")?;
        }
        Ok(())
    }
}

/// The RFC 9266 `tls-exporter` channel binding of a TLS 1.3 connection, for
/// SCRAM-*-PLUS. RFC 9266 allows it on TLS 1.2 only with the extended master
/// secret, which rustls does not report per connection, so TLS 1.2 gets
/// `None` (as does an unfinished handshake) and SASL offers no -PLUS there.
pub fn exporter_channel_binding(conn: &ServerConnection) -> Option<Vec<u8>> {
    if conn.protocol_version() != Some(ProtocolVersion::TLSv1_3) {
        return None;
    }
    conn.export_keying_material(vec![0; 32], EXPORTER_LABEL, None)
        .ok()
}

// ---------------------------------------------------------------------------
// Certificate selection.

#[derive(Debug)]
struct SniResolver {
    /// Swapped whole on reload; handshakes clone the `Arc` and never hold
    /// the lock while using the table.
    table: RwLock<Arc<CertTable>>,
}

#[derive(Debug)]
struct CertTable {
    by_name: HashMap<String, Arc<CertifiedKey>>,
    fallback: Arc<CertifiedKey>,
}

impl SniResolver {
    fn current(&self) -> Arc<CertTable> {
        // A panic elsewhere while holding the lock cannot leave the table
        // half-written (it is replaced whole), so poisoning is ignored.
        match self.table.read() {
            Ok(table) => table.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, table: CertTable) {
        let mut guard = match self.table.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::new(table);
    }

    fn select(&self, server_name: Option<&str>) -> Arc<CertifiedKey> {
        let table = self.current();
        server_name
            .and_then(|name| table.by_name.get(&normalize_name(name)))
            .unwrap_or(&table.fallback)
            .clone()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.select(client_hello.server_name()))
    }
}

/// DNS names compare case-insensitively, and a trailing dot names the same host.
fn normalize_name(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

impl CertTable {
    fn load(
        hosts: &[HostCert],
        data_dir: &Path,
        provider: &CryptoProvider,
        now: UnixTime,
    ) -> Result<CertTable, TlsError> {
        let mut by_name = HashMap::new();
        let mut fallback = None;
        for host in hosts {
            let certified = Arc::new(match &host.files {
                Some((certificate, key)) => load_configured(host, certificate, key, provider, now)?,
                None => self_signed(host, data_dir, provider, now)?,
            });
            for name in std::iter::once(&host.domain).chain(&host.extra_names) {
                // The first host to claim a name keeps it, matching the
                // "first host wins" rule for the fallback.
                by_name
                    .entry(normalize_name(name))
                    .or_insert_with(|| certified.clone());
            }
            fallback.get_or_insert(certified);
        }
        Ok(CertTable {
            by_name,
            fallback: fallback.ok_or(TlsError::NoHosts)?,
        })
    }
}

// ---------------------------------------------------------------------------
// Loading certificates.

fn load_configured(
    host: &HostCert,
    certificate: &Path,
    key: &Path,
    provider: &CryptoProvider,
    now: UnixTime,
) -> Result<CertifiedKey, TlsError> {
    let certified = load_pair(&host.domain, certificate, key, provider)?;
    if let Some(leaf) = certified.cert.first() {
        for warning in certificate_warnings(&host.domain, leaf, now) {
            log::warn!("{}: {warning}", certificate.display());
        }
    }
    Ok(certified)
}

fn load_pair(
    domain: &str,
    certificate: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = read_certificates(domain, certificate)?;
    let key_der = read_private_key(domain, key)?;
    let signing_key = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|err| TlsError::UnsupportedKey {
            path: key.to_owned(),
            detail: err.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        // Some key types cannot report their public key; nothing to compare.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::KeyMismatch {
            certificate: certificate.to_owned(),
            key: key.to_owned(),
        }),
        Err(err) => Err(TlsError::BadCertificate {
            path: certificate.to_owned(),
            detail: err.to_string(),
        }),
    }
}

fn read_file(domain: &str, role: FileRole, path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => TlsError::Missing {
            domain: domain.to_owned(),
            role,
            path: path.to_owned(),
        },
        _ => TlsError::Unreadable {
            domain: domain.to_owned(),
            role,
            path: path.to_owned(),
            source,
        },
    })
}

fn read_certificates(domain: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_file(domain, FileRole::Certificate, path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(|err| TlsError::BadPem {
            role: FileRole::Certificate,
            path: path.to_owned(),
            detail: err.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
            holds_key: PrivateKeyDer::from_pem_slice(&bytes).is_ok(),
        });
    }
    Ok(chain)
}

fn read_private_key(domain: &str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read_file(domain, FileRole::Key, path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|err| match err {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey {
            path: path.to_owned(),
            holds_certificate: CertificateDer::pem_slice_iter(&bytes).next().is_some(),
        },
        other => TlsError::BadPem {
            role: FileRole::Key,
            path: path.to_owned(),
            detail: other.to_string(),
        },
    })
}

/// Problems with a configured certificate that do not stop Perch from
/// serving it but will make clients reject it.
fn certificate_warnings(domain: &str, leaf: &CertificateDer<'_>, now: UnixTime) -> Vec<String> {
    let mut warnings = Vec::new();
    match ParsedCertificate::try_from(leaf) {
        Ok(parsed) => {
            if !covers(&parsed, domain) {
                warnings.push(format!(
                    "the certificate does not cover {domain}, so clients will reject it"
                ));
            }
        }
        Err(err) => warnings.push(format!("cannot check the certificate's names: {err}")),
    }
    match validity(leaf) {
        Some(validity) => {
            let now = now.as_secs();
            if now > validity.not_after {
                warnings.push(format!(
                    "the certificate expired on {}, so clients will reject it",
                    format_date(validity.not_after)
                ));
            } else if validity.not_after - now < EXPIRY_WARNING_SECS {
                warnings.push(format!(
                    "the certificate expires on {}; is its renewal working?",
                    format_date(validity.not_after)
                ));
            }
            if now < validity.not_before {
                warnings.push(format!(
                    "the certificate is not valid before {}; is the system clock right?",
                    format_date(validity.not_before)
                ));
            }
        }
        None => warnings.push("cannot read the certificate's validity period".to_owned()),
    }
    warnings
}

fn covers(parsed: &ParsedCertificate<'_>, name: &str) -> bool {
    match ServerName::try_from(name) {
        Ok(server_name) => rustls::client::verify_server_name(parsed, &server_name).is_ok(),
        Err(_) => false,
    }
}

// ---------------------------------------------------------------------------
// Self-signed certificates.

fn self_signed(
    host: &HostCert,
    data_dir: &Path,
    provider: &CryptoProvider,
    now: UnixTime,
) -> Result<CertifiedKey, TlsError> {
    let domain = host.domain.as_str();
    // The domain becomes a file name: refuse anything that could escape the
    // directory, even though the config already rejects such names.
    if domain.is_empty() || domain.starts_with('.') || domain.contains(['/', '\\', '\0']) {
        return Err(TlsError::Generate {
            domain: domain.to_owned(),
            detail: "the domain is not usable as a file name".to_owned(),
        });
    }
    let dir = data_dir.join("tls");
    let cert_path = dir.join(format!("{domain}.crt"));
    let key_path = dir.join(format!("{domain}.key"));
    let mut names: Vec<String> = Vec::new();
    for name in std::iter::once(&host.domain).chain(&host.extra_names) {
        let name = normalize_name(name);
        if !names.contains(&name) {
            names.push(name);
        }
    }

    match load_pair(domain, &cert_path, &key_path, provider) {
        Ok(certified) => match stale_reason(&certified, &names, now) {
            None => return Ok(certified),
            Some(reason) => log::info!(
                "replacing the self-signed TLS certificate {} for {domain}: {reason}",
                cert_path.display()
            ),
        },
        // First start, or a half-written pair from an interrupted one.
        Err(TlsError::Missing { .. }) => {}
        // Anything else may be a file the admin put there: do not overwrite it.
        Err(err) => return Err(err),
    }

    let (certificate, key) = generate(domain, &names)?;
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|source| TlsError::Write {
            path: dir.clone(),
            source,
        })?;
    // Key first: a crash in between leaves no certificate, which is
    // recognized as "missing" and regenerated on the next start.
    write_atomically(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_atomically(&cert_path, certificate.pem().as_bytes(), 0o644)?;
    log::info!(
        "created a self-signed TLS certificate for {} in {}; clients will warn about it until you configure a real certificate",
        names.join(", "),
        cert_path.display()
    );

    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing_key = provider.key_provider.load_private_key(key_der)?;
    Ok(CertifiedKey::new(
        vec![certificate.der().clone()],
        signing_key,
    ))
}

/// Why a stored self-signed certificate must be replaced, if it must.
fn stale_reason(certified: &CertifiedKey, names: &[String], now: UnixTime) -> Option<String> {
    let leaf = certified.cert.first()?;
    let parsed = match ParsedCertificate::try_from(leaf) {
        Ok(parsed) => parsed,
        Err(err) => return Some(format!("it cannot be parsed ({err})")),
    };
    let missing: Vec<&str> = names
        .iter()
        .filter(|name| !covers(&parsed, name))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Some(format!("it does not cover {}", missing.join(", ")));
    }
    match validity(leaf) {
        Some(validity) if now.as_secs() > validity.not_after => {
            Some(format!("it expired on {}", format_date(validity.not_after)))
        }
        Some(_) => None,
        None => Some("its validity period cannot be read".to_owned()),
    }
}

fn generate(
    domain: &str,
    names: &[String],
) -> Result<(rcgen::Certificate, rcgen::KeyPair), TlsError> {
    let failed = |err: rcgen::Error| TlsError::Generate {
        domain: domain.to_owned(),
        detail: err.to_string(),
    };
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(failed)?;
    let mut subject = rcgen::DistinguishedName::new();
    subject.push(rcgen::DnType::CommonName, domain);
    params.distinguished_name = subject;
    // P-256: fast to sign on a Raspberry Pi and supported by every client.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(failed)?;
    let certificate = params.self_signed(&key).map_err(failed)?;
    Ok((certificate, key))
}

/// Writes via a temporary file and rename, so a crash never leaves a
/// truncated key behind, and so the key is never readable by others even
/// for a moment.
fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    crate::file_modes::write_atomically(path, contents, mode).map_err(|source| TlsError::Write {
        path: path.to_owned(),
        source,
    })
}

// ---------------------------------------------------------------------------
// Certificate validity. webpki checks validity only while verifying a chain
// against trust anchors, which a server does not have for its own
// certificate, so the two dates are read from the DER directly.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Validity {
    not_before: u64,
    not_after: u64,
}

const DER_SEQUENCE: u8 = 0x30;
const DER_INTEGER: u8 = 0x02;
const DER_VERSION: u8 = 0xa0;
const DER_UTC_TIME: u8 = 0x17;
const DER_GENERALIZED_TIME: u8 = 0x18;

/// A certificate's validity period as Unix seconds, `(not_before,
/// not_after)`: when ACME renews it.
pub fn validity_period(cert: &[u8]) -> Option<(u64, u64)> {
    validity(cert).map(|v| (v.not_before, v.not_after))
}

/// Certificate → TBSCertificate → [version] serial signature issuer validity.
fn validity(cert: &[u8]) -> Option<Validity> {
    let (certificate, _) = der_expect(cert, DER_SEQUENCE)?;
    let (tbs, _) = der_expect(certificate, DER_SEQUENCE)?;
    let mut rest = tbs;
    if let Some((DER_VERSION, _, after)) = der_next(rest) {
        rest = after;
    }
    let (_serial, rest) = der_expect(rest, DER_INTEGER)?;
    let (_signature, rest) = der_expect(rest, DER_SEQUENCE)?;
    let (_issuer, rest) = der_expect(rest, DER_SEQUENCE)?;
    let (validity, _) = der_expect(rest, DER_SEQUENCE)?;
    let (not_before, rest) = der_time(validity)?;
    let (not_after, _) = der_time(rest)?;
    Some(Validity {
        not_before,
        not_after,
    })
}

/// Splits one DER element off `input`: (tag, contents, remainder).
pub(crate) fn der_next(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        // Certificates never need more than 4 length bytes.
        if count == 0 || count > 4 {
            return None;
        }
        let (bytes, after) = rest.split_at_checked(count)?;
        rest = after;
        bytes
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b))
    };
    let (contents, rest) = rest.split_at_checked(len)?;
    Some((tag, contents, rest))
}

pub(crate) fn der_expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    match der_next(input)? {
        (found, contents, rest) if found == tag => Some((contents, rest)),
        _ => None,
    }
}

/// Reads a UTCTime or GeneralizedTime as Unix seconds.
fn der_time(input: &[u8]) -> Option<(u64, &[u8])> {
    let (tag, contents, rest) = der_next(input)?;
    let text = std::str::from_utf8(contents).ok()?;
    let digits = text.strip_suffix('Z')?;
    let (year, digits) = match tag {
        DER_UTC_TIME => {
            let yy: i64 = digits.get(..2)?.parse().ok()?;
            // RFC 5280 §4.1.2.5.1: two-digit years 50..99 are 19xx.
            (
                if yy >= 50 { 1900 + yy } else { 2000 + yy },
                digits.get(2..)?,
            )
        }
        DER_GENERALIZED_TIME => (digits.get(..4)?.parse().ok()?, digits.get(4..)?),
        _ => return None,
    };
    if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |range: std::ops::Range<usize>| -> Option<i64> { digits.get(range)?.parse().ok() };
    let (month, day) = (field(0..2)?, field(2..4)?);
    let (hour, minute, second) = (field(4..6)?, field(6..8)?, field(8..10)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second;
    Some((u64::try_from(secs).ok()?, rest))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm, valid far beyond any certificate's range).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_index = (month + 9) % 12; // March = 0
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// `YYYY-MM-DD` for Unix seconds; the inverse of [`days_from_civil`].
pub(crate) fn format_date(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

// ---------------------------------------------------------------------------
// Errors.

/// Which of a host's two TLS files an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRole {
    Certificate,
    Key,
}

impl fmt::Display for FileRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileRole::Certificate => "certificate",
            FileRole::Key => "key",
        })
    }
}

#[derive(Debug)]
pub enum TlsError {
    /// There is no host, hence no certificate to serve.
    NoHosts,
    Missing {
        domain: String,
        role: FileRole,
        path: PathBuf,
    },
    Unreadable {
        domain: String,
        role: FileRole,
        path: PathBuf,
        source: io::Error,
    },
    BadPem {
        role: FileRole,
        path: PathBuf,
        detail: String,
    },
    /// `holds_key`: the file has a private key instead (swapped paths?).
    NoCertificate {
        path: PathBuf,
        holds_key: bool,
    },
    /// `holds_certificate`: the file has a certificate instead (swapped paths?).
    NoPrivateKey {
        path: PathBuf,
        holds_certificate: bool,
    },
    UnsupportedKey {
        path: PathBuf,
        detail: String,
    },
    BadCertificate {
        path: PathBuf,
        detail: String,
    },
    KeyMismatch {
        certificate: PathBuf,
        key: PathBuf,
    },
    Generate {
        domain: String,
        detail: String,
    },
    Write {
        path: PathBuf,
        source: io::Error,
    },
    Rustls(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::NoHosts => {
                f.write_str("no hosts are configured, so there is no TLS certificate to serve")
            }
            TlsError::Missing { domain, role, path } => {
                write!(
                    f,
                    "TLS {role} file {} for {domain} does not exist",
                    path.display()
                )
            }
            TlsError::Unreadable {
                domain,
                role,
                path,
                source,
            } => write!(
                f,
                "cannot read TLS {role} file {} for {domain}: {source}",
                path.display()
            ),
            TlsError::BadPem { role, path, detail } => {
                write!(
                    f,
                    "TLS {role} file {} is not valid PEM: {detail}",
                    path.display()
                )
            }
            TlsError::NoCertificate { path, holds_key } => {
                write!(
                    f,
                    "TLS certificate file {} contains no certificate",
                    path.display()
                )?;
                if *holds_key {
                    f.write_str(" but a private key; are certificate and key swapped?")?;
                }
                Ok(())
            }
            TlsError::NoPrivateKey {
                path,
                holds_certificate,
            } => {
                write!(f, "TLS key file {} contains no private key", path.display())?;
                if *holds_certificate {
                    f.write_str(" but a certificate; are certificate and key swapped?")?;
                }
                Ok(())
            }
            TlsError::UnsupportedKey { path, detail } => {
                write!(
                    f,
                    "TLS key file {} holds an unusable private key: {detail}",
                    path.display()
                )
            }
            TlsError::BadCertificate { path, detail } => {
                write!(
                    f,
                    "TLS certificate file {} holds an unusable certificate: {detail}",
                    path.display()
                )
            }
            TlsError::KeyMismatch { certificate, key } => write!(
                f,
                "TLS key file {} does not belong to the certificate in {}",
                key.display(),
                certificate.display()
            ),
            TlsError::Generate { domain, detail } => {
                write!(
                    f,
                    "cannot create a self-signed TLS certificate for {domain}: {detail}"
                )
            }
            TlsError::Write { path, source } => {
                write!(f, "cannot write {}: {source}", path.display())
            }
            TlsError::Rustls(err) => write!(f, "TLS setup failed: {err}"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Unreadable { source, .. } | TlsError::Write { source, .. } => Some(source),
            TlsError::Rustls(err) => Some(err),
            _ => None,
        }
    }
}

impl From<rustls::Error> for TlsError {
    fn from(err: rustls::Error) -> Self {
        TlsError::Rustls(err)
    }
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
