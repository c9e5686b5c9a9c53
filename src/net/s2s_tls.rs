//! TLS for server-to-server federation (RFC 6120 §5 and §13.7, RFC 6125,
//! XEP-0178, XEP-0368): the trust roots, the TLS configurations for
//! outgoing and incoming federation links, and the check of a peer's
//! certificate after the handshake.
//!
//! Many federating servers have certificates we cannot verify (self-signed,
//! a private CA, a name we do not expect). Such links must still be
//! encrypted and then authenticated with Server Dialback (XEP-0220), so
//! neither side fails the handshake over an untrusted certificate: the
//! handshake only proves that the peer holds the key of the certificate
//! it sent (signatures are verified as usual). Whether that certificate
//! authenticates the peer's domain, which is what allows SASL EXTERNAL
//! (XEP-0178), is decided afterwards by [`PeerCertificate::is_valid_for`].
//!
//! Both directions present our own certificate, the one `TlsSetup` serves
//! to clients for that local domain: as server certificate to peers that
//! dial us (chosen by SNI) and as client certificate when we dial out, so
//! that the peer can authenticate us with SASL EXTERNAL too. Certificate
//! reloads (SIGHUP) reach both, since every handshake asks `TlsSetup`.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, Resumption};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{
    ClientHello, ParsedCertificate, ResolvesServerCert, ServerSessionMemoryCache,
};
use rustls::sign::CertifiedKey;
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, DistinguishedName, RootCertStore,
    ServerConfig, ServerConnection, SignatureScheme,
};

use super::tls::{TlsError, TlsSetup, der_expect, der_next};

/// The ALPN protocol name of XEP-0368 direct TLS server-to-server links.
pub const ALPN_XMPP_SERVER: &[u8] = b"xmpp-server";

/// The environment variable OpenSSL and rustls-native-certs read for a CA
/// bundle in a non-standard place.
const ENV_CERT_FILE: &str = "SSL_CERT_FILE";

/// The CA bundle files that Linux distributions keep up to date from their
/// CA package, most common first (the list openssl-probe 0.2 uses). The
/// first one that exists is read.
const SYSTEM_BUNDLES: &[&str] = &[
    // Debian, Ubuntu, Raspberry Pi OS, OpenWrt, Gentoo, Arch
    "/etc/ssl/certs/ca-certificates.crt",
    // Fedora, RHEL, CentOS
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/pki/tls/certs/ca-bundle.crt",
    // openSUSE
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    // Alpine
    "/etc/ssl/cert.pem",
    // Entware on routers
    "/opt/etc/ssl/certs/ca-certificates.crt",
];

/// Federation links are few and long-lived; a small resumption cache per
/// configuration is plenty (rustls' default is 256 sessions).
const SESSION_CACHE_ENTRIES: usize = 32;

/// Outgoing configurations are cached per local domain; more entries than
/// this means a caller passes names that are not local hosts, so the
/// cache is emptied rather than allowed to grow.
const MAX_CLIENT_CONFIGS: usize = 64;

// ---------------------------------------------------------------------------
// Trust roots.

/// What [`load_roots`] found; problems are reported here, never fatal.
#[derive(Debug, Default)]
pub struct RootsReport {
    /// The system CA bundle, if one was found.
    pub system: Option<RootsSource>,
    /// The `[s2s] ca_file`, if configured.
    pub extra: Option<RootsSource>,
    pub errors: Vec<RootsError>,
}

/// One PEM file of CA certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootsSource {
    pub path: PathBuf,
    /// Certificates that became trust anchors.
    pub loaded: usize,
    /// Certificates that could not be used as trust anchors.
    pub skipped: usize,
}

#[derive(Debug)]
pub enum RootsError {
    /// No CA bundle at any of the usual places, nor `$SSL_CERT_FILE`.
    NoSystemBundle,
    Unreadable {
        path: PathBuf,
        source: io::Error,
    },
    /// The file is not PEM from some point on; certificates before it count.
    BadPem {
        path: PathBuf,
        detail: String,
    },
    /// A certificate (1-based index in the file) unusable as trust anchor.
    BadCertificate {
        path: PathBuf,
        index: usize,
        detail: String,
    },
}

impl RootsReport {
    /// Trust anchors loaded from all sources.
    pub fn total(&self) -> usize {
        [&self.system, &self.extra]
            .into_iter()
            .flatten()
            .map(|source| source.loaded)
            .sum()
    }
}

impl fmt::Display for RootsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} trusted CA certificates", self.total())?;
        let sources: Vec<String> = [&self.system, &self.extra]
            .into_iter()
            .flatten()
            .map(|source| {
                let mut text = format!("{} from {}", source.loaded, source.path.display());
                if source.skipped > 0 {
                    text.push_str(&format!(", {} skipped", source.skipped));
                }
                text
            })
            .collect();
        if !sources.is_empty() {
            write!(f, " ({})", sources.join("; "))?;
        }
        if self.total() == 0 {
            f.write_str("; no peer certificate can be verified, so federation uses dialback")?;
        }
        for error in &self.errors {
            write!(f, "; {error}")?;
        }
        Ok(())
    }
}

impl fmt::Display for RootsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootsError::NoSystemBundle => write!(
                f,
                "no system CA bundle found (install ca-certificates, or set {ENV_CERT_FILE})"
            ),
            RootsError::Unreadable { path, source } => {
                write!(f, "cannot read CA file {}: {source}", path.display())
            }
            RootsError::BadPem { path, detail } => {
                write!(f, "CA file {} is not valid PEM: {detail}", path.display())
            }
            RootsError::BadCertificate {
                path,
                index,
                detail,
            } => write!(
                f,
                "certificate {index} in CA file {} is not usable: {detail}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for RootsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RootsError::Unreadable { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The CAs that can authenticate federation peers: the system's CA bundle
/// plus `extra_ca_file` (the `[s2s] ca_file`, for private networks and
/// tests). Read once at start-up; an empty store is valid (every peer then
/// uses dialback).
///
/// The bundle is the one file each distribution regenerates from its CA
/// package (Debian's `update-ca-certificates` also adds the admin's CAs
/// from /usr/local/share/ca-certificates), so CA updates arrive with
/// system updates and nothing is embedded in the binary (webpki-roots
/// would add 66 KB of text and data to the aarch64-musl build and go stale
/// between releases). rustls-native-certs 0.8 does the same on Linux for
/// 11 KB, plus a scan of /etc/ssl/certs, which on Debian re-reads each
/// certificate of the bundle from a file of its own.
pub fn load_roots(extra_ca_file: Option<&Path>) -> (Arc<RootCertStore>, RootsReport) {
    let system = match std::env::var_os(ENV_CERT_FILE) {
        Some(path) => Some(PathBuf::from(path)),
        None => SYSTEM_BUNDLES
            .iter()
            .map(Path::new)
            .find(|path| path.is_file())
            .map(Path::to_path_buf),
    };
    load_roots_from(system.as_deref(), extra_ca_file)
}

/// [`load_roots`] with the system bundle given, for tests.
fn load_roots_from(
    system_bundle: Option<&Path>,
    extra_ca_file: Option<&Path>,
) -> (Arc<RootCertStore>, RootsReport) {
    let mut store = RootCertStore::empty();
    let mut report = RootsReport::default();
    match system_bundle {
        Some(path) => report.system = Some(add_pem_file(&mut store, path, &mut report.errors)),
        None => report.errors.push(RootsError::NoSystemBundle),
    }
    if let Some(path) = extra_ca_file {
        report.extra = Some(add_pem_file(&mut store, path, &mut report.errors));
    }
    (Arc::new(store), report)
}

fn add_pem_file(
    store: &mut RootCertStore,
    path: &Path,
    errors: &mut Vec<RootsError>,
) -> RootsSource {
    let mut source = RootsSource {
        path: path.to_owned(),
        loaded: 0,
        skipped: 0,
    };
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) => {
            errors.push(RootsError::Unreadable {
                path: path.to_owned(),
                source: err,
            });
            return source;
        }
    };
    for (index, item) in CertificateDer::pem_slice_iter(&bytes).enumerate() {
        let cert = match item {
            Ok(cert) => cert,
            Err(err) => {
                // The reader cannot resynchronise after a broken section.
                errors.push(RootsError::BadPem {
                    path: path.to_owned(),
                    detail: err.to_string(),
                });
                break;
            }
        };
        match store.add(cert) {
            Ok(()) => source.loaded += 1,
            Err(err) => {
                source.skipped += 1;
                errors.push(RootsError::BadCertificate {
                    path: path.to_owned(),
                    index: index + 1,
                    detail: err.to_string(),
                });
            }
        }
    }
    source
}

// ---------------------------------------------------------------------------
// Handshake configurations.

/// The configuration for dialling a peer: TLS 1.2 or 1.3, our certificate
/// from `our_certificate` (see [`HostCertificates::for_domain`]) when the
/// peer asks for one, ALPN `xmpp-server` for direct TLS (XEP-0368). Any
/// peer certificate is accepted (see the module doc); connect with the
/// peer's domain as server name, which rustls sends as SNI.
///
/// Every local domain needs its own configuration, not only for the
/// certificate: a resumed session keeps the identity it was established
/// with, so sessions must not be shared between local domains.
/// [`S2sTls::client_config`] builds and caches them.
pub fn client_config(
    our_certificate: Option<Arc<dyn ResolvesClientCert>>,
    direct_tls: bool,
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(SignaturesOnly::new(&provider));
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match our_certificate {
        Some(resolver) => builder.with_client_cert_resolver(resolver),
        None => builder.with_no_client_auth(),
    };
    if direct_tls {
        config.alpn_protocols = vec![ALPN_XMPP_SERVER.to_vec()];
    }
    config.resumption = Resumption::in_memory_sessions(SESSION_CACHE_ENTRIES);
    Ok(Arc::new(config))
}

/// The configuration for peers dialling us: our certificate chosen by SNI
/// (see [`HostCertificates`]), a client certificate requested but not
/// required and never refused, ALPN `xmpp-server` for direct TLS. A peer
/// offering only other protocols fails the handshake on a direct-TLS
/// listener; one offering none is served.
pub fn server_config(
    host_certificates: Arc<dyn ResolvesServerCert>,
    direct_tls: bool,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(SignaturesOnly::new(&provider));
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(host_certificates);
    if direct_tls {
        config.alpn_protocols = vec![ALPN_XMPP_SERVER.to_vec()];
    }
    config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES);
    // Peers reconnect rarely; one ticket per handshake is enough.
    config.send_tls13_tickets = 1;
    Ok(Arc::new(config))
}

/// Accepts any certificate chain during the handshake but checks every
/// handshake signature against it with ring's algorithms, so the peer
/// must hold the certificate's key. Used both as server verifier (when we
/// dial) and as client verifier (when we are dialled).
#[derive(Debug)]
struct SignaturesOnly {
    algorithms: WebPkiSupportedAlgorithms,
}

impl SignaturesOnly {
    fn new(provider: &CryptoProvider) -> SignaturesOnly {
        SignaturesOnly {
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for SignaturesOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // Checked after the handshake by PeerCertificate::is_valid_for.
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ClientCertVerifier for SignaturesOnly {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        // A peer without a certificate can still use dialback.
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // An empty list means "any CA" (RFC 5246 §7.4.4; TLS 1.3 omits the
        // extension), which is what we accept. Naming the system's ~150
        // roots would add some 15 KB to every handshake for no gain:
        // servers present their one certificate regardless.
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Checked after the handshake by PeerCertificate::is_valid_for.
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

// ---------------------------------------------------------------------------
// Our certificates.

/// The local domains' certificates from [`TlsSetup`], for federation
/// handshakes. Every handshake asks `TlsSetup`, so a certificate reload
/// applies to new federation links at once.
#[derive(Debug, Clone)]
pub struct HostCertificates {
    tls: TlsSetup,
}

impl HostCertificates {
    pub fn new(tls: &TlsSetup) -> HostCertificates {
        HostCertificates { tls: tls.clone() }
    }

    /// The client certificate resolver for links from `local_domain`.
    pub fn for_domain(&self, local_domain: &str) -> Arc<dyn ResolvesClientCert> {
        Arc::new(ClientCertificate {
            tls: self.tls.clone(),
            domain: local_domain.to_owned(),
        })
    }
}

impl ResolvesServerCert for HostCertificates {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // Peers send our domain as SNI; without it (or for a name we do
        // not serve) TlsSetup answers with the first host's certificate.
        Some(self.tls.certificate_for(client_hello.server_name()))
    }
}

/// Presents one local domain's certificate as client certificate.
#[derive(Debug)]
struct ClientCertificate {
    tls: TlsSetup,
    domain: String,
}

impl ResolvesClientCert for ClientCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        // The hints are ignored: we have one certificate per domain, and a
        // peer that cannot verify it falls back to dialback anyway.
        let certified = self.tls.certificate_for(Some(&self.domain));
        // Sending a certificate we cannot sign for would fail the
        // handshake; sending none lets the peer fall back to dialback.
        certified.key.choose_scheme(sigschemes).map(|_| certified)
    }

    fn has_certs(&self) -> bool {
        true
    }
}

// ---------------------------------------------------------------------------
// All of it together.

/// Federation TLS for the whole server: the roots, both server
/// configurations and the outgoing configurations per local domain.
#[derive(Debug)]
pub struct S2sTls {
    roots: Arc<RootCertStore>,
    hosts: HostCertificates,
    starttls: Arc<ServerConfig>,
    direct_tls: Arc<ServerConfig>,
    /// (normalised local domain, direct TLS) → configuration, built on
    /// first use.
    clients: Mutex<HashMap<(String, bool), Arc<ClientConfig>>>,
}

impl S2sTls {
    pub fn new(tls: &TlsSetup, roots: Arc<RootCertStore>) -> Result<S2sTls, TlsError> {
        let hosts = HostCertificates::new(tls);
        let resolver: Arc<dyn ResolvesServerCert> = Arc::new(hosts.clone());
        Ok(S2sTls {
            roots,
            starttls: server_config(resolver.clone(), false)?,
            direct_tls: server_config(resolver, true)?,
            hosts,
            clients: Mutex::new(HashMap::new()),
        })
    }

    /// The trust anchors for [`PeerCertificate::is_valid_for`].
    pub fn roots(&self) -> &RootCertStore {
        &self.roots
    }

    /// For the handshake after `<starttls/>` on an `s2s` listener.
    pub fn starttls_config(&self) -> Arc<ServerConfig> {
        self.starttls.clone()
    }

    /// For `s2s-tls` listeners (XEP-0368).
    pub fn direct_config(&self) -> Arc<ServerConfig> {
        self.direct_tls.clone()
    }

    /// The configuration for links from `local_domain` (a configured host),
    /// built on first use.
    pub fn client_config(
        &self,
        local_domain: &str,
        direct_tls: bool,
    ) -> Result<Arc<ClientConfig>, TlsError> {
        let key = (
            normalize_domain(local_domain).to_ascii_lowercase(),
            direct_tls,
        );
        let mut clients = match self.clients.lock() {
            Ok(clients) => clients,
            // Entries are inserted whole; a panic elsewhere cannot leave
            // one half-built.
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(config) = clients.get(&key) {
            return Ok(config.clone());
        }
        let config = client_config(Some(self.hosts.for_domain(&key.0)), direct_tls)?;
        if clients.len() >= MAX_CLIENT_CONFIGS {
            clients.clear();
        }
        clients.insert(key, config.clone());
        Ok(config)
    }
}

// ---------------------------------------------------------------------------
// Checking the peer's certificate after the handshake.

/// Which side of the handshake the peer was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    /// We dialled the peer: its certificate is a server certificate.
    Server,
    /// The peer dialled us: its certificate is a client certificate.
    Client,
}

/// The certificate chain a federation peer presented, leaf first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    chain: Vec<CertificateDer<'static>>,
    role: PeerRole,
}

/// Why a peer certificate does not authenticate a domain.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerCertError {
    /// No trust roots are loaded, so nothing can be verified.
    NoRoots,
    /// The leaf certificate cannot be parsed.
    Malformed(String),
    /// The chain does not verify to a trusted root (unknown issuer,
    /// expired, wrong key usage, ...).
    Untrusted(rustls::Error),
    /// The chain is trusted, but names neither the domain (DNS-ID,
    /// SRV-ID `_xmpp-server`) nor it as XmppAddr.
    NameMismatch { domain: String },
}

impl fmt::Display for PeerCertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerCertError::NoRoots => f.write_str("no trusted CA certificates are loaded"),
            PeerCertError::Malformed(detail) => write!(f, "unparsable certificate: {detail}"),
            PeerCertError::Untrusted(err) => write!(f, "untrusted certificate: {err}"),
            PeerCertError::NameMismatch { domain } => {
                write!(f, "the certificate is not valid for {domain}")
            }
        }
    }
}

impl std::error::Error for PeerCertError {}

impl PeerCertificate {
    /// A chain as presented, leaf first; `None` when empty.
    pub fn new(chain: Vec<CertificateDer<'static>>, role: PeerRole) -> Option<PeerCertificate> {
        (!chain.is_empty()).then_some(PeerCertificate { chain, role })
    }

    /// The certificate of the peer we dialled, if it sent one.
    pub fn of_server(conn: &ClientConnection) -> Option<PeerCertificate> {
        PeerCertificate::new(conn.peer_certificates()?.to_vec(), PeerRole::Server)
    }

    /// The client certificate of the peer that dialled us, if it sent one.
    pub fn of_client(conn: &ServerConnection) -> Option<PeerCertificate> {
        PeerCertificate::new(conn.peer_certificates()?.to_vec(), PeerRole::Client)
    }

    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    pub fn role(&self) -> PeerRole {
        self.role
    }

    /// Whether the certificate authenticates `domain` (XEP-0178: then SASL
    /// EXTERNAL may be offered or used; otherwise dialback).
    pub fn is_valid_for(&self, domain: &str, roots: &RootCertStore, now: UnixTime) -> bool {
        self.check(domain, roots, now).is_ok()
    }

    /// [`is_valid_for`](Self::is_valid_for) with the reason, for logs.
    ///
    /// The chain must verify to one of `roots` at `now`, as a server
    /// certificate (extended key usage serverAuth, or none). A client
    /// certificate may instead carry clientAuth: servers commonly present
    /// their serverAuth-only certificate as client certificate, and
    /// Prosody and ejabberd accept either, so we do too.
    ///
    /// Then the leaf must name `domain` (RFC 6120 §13.7.1.2, RFC 6125 §6):
    /// as DNS-ID (a dNSName, `*` only as the whole left-most label, which
    /// matches exactly one label), as SRV-ID `_xmpp-server.<domain>`, or as
    /// XmppAddr equal to `domain`. The subject's common name is never
    /// used: RFC 6125 allows it only for certificates without these names,
    /// which current CAs no longer issue. Names compare ASCII
    /// case-insensitively with one trailing dot ignored; `domain` is
    /// expected in the form it has on the wire (IDNA conversion of
    /// internationalised domains is not done here).
    pub fn check(
        &self,
        domain: &str,
        roots: &RootCertStore,
        now: UnixTime,
    ) -> Result<(), PeerCertError> {
        let (leaf, intermediates) = self
            .chain
            .split_first()
            .ok_or_else(|| PeerCertError::Malformed("no certificate".to_owned()))?;
        let parsed = ParsedCertificate::try_from(leaf)
            .map_err(|err| PeerCertError::Malformed(err.to_string()))?;
        if roots.is_empty() {
            return Err(PeerCertError::NoRoots);
        }
        verify_chain(leaf, intermediates, roots, now, self.role)
            .map_err(PeerCertError::Untrusted)?;
        if names_domain(leaf, &parsed, domain) {
            Ok(())
        } else {
            Err(PeerCertError::NameMismatch {
                domain: domain.to_owned(),
            })
        }
    }
}

/// Path building and signature, validity and key-usage checks are
/// webpki's. Its stock `KeyUsage` accepts one purpose; ours accepts
/// clientAuth besides serverAuth for client certificates, in one pass.
fn verify_chain(
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    roots: &RootCertStore,
    now: UnixTime,
    role: PeerRole,
) -> Result<(), rustls::Error> {
    let provider = rustls::crypto::ring::default_provider();
    let end_entity = webpki::EndEntityCert::try_from(leaf).map_err(webpki_error)?;
    end_entity
        .verify_for_usage(
            provider.signature_verification_algorithms.all,
            &roots.roots,
            intermediates,
            now,
            PeerUsage(role),
            None,
            None,
        )
        .map(|_| ())
        .map_err(webpki_error)
}

fn webpki_error(err: webpki::Error) -> rustls::Error {
    rustls::Error::General(err.to_string())
}

/// 1.3.6.1.5.5.7.3.1 and .2, id-kp-serverAuth and id-kp-clientAuth.
const EKU_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
const EKU_CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];

/// RFC 5280 §4.2.1.12: a certificate without the extension is good for
/// any purpose; with it, it must list one we accept.
struct PeerUsage(PeerRole);

impl webpki::ExtendedKeyUsageValidator for PeerUsage {
    fn validate(&self, purposes: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let mut any = false;
        for purpose in purposes {
            let purpose = purpose?;
            any = true;
            if purpose == webpki::KeyPurposeId::new(EKU_SERVER_AUTH)
                || (self.0 == PeerRole::Client
                    && purpose == webpki::KeyPurposeId::new(EKU_CLIENT_AUTH))
            {
                return Ok(());
            }
        }
        if !any {
            return Ok(());
        }
        Err(webpki::Error::RequiredEkuNotFoundContext(
            webpki::RequiredEkuNotFoundContext {
                required: webpki::KeyUsage::server_auth(),
                present: Vec::new(),
            },
        ))
    }
}

/// RFC 6125 name matching of the leaf against `domain`.
fn names_domain(leaf: &CertificateDer<'_>, parsed: &ParsedCertificate<'_>, domain: &str) -> bool {
    let domain = normalize_domain(domain);
    if domain.is_empty() {
        return false;
    }
    // DNS-ID, wildcards included, is webpki's. It needs a syntactically
    // valid DNS name; an IP literal is not a DNS-ID.
    let dns_id = matches!(
        ServerName::try_from(domain),
        Ok(name @ ServerName::DnsName(_)) if rustls::client::verify_server_name(parsed, &name).is_ok()
    );
    dns_id
        || other_names(leaf).iter().any(|name| match name {
            // The service label compares case-insensitively too.
            OtherName::Srv(srv) => {
                srv.get(..SRV_PREFIX.len())
                    .is_some_and(|service| service.eq_ignore_ascii_case(SRV_PREFIX))
                    && srv
                        .get(SRV_PREFIX.len()..)
                        .is_some_and(|name| normalize_domain(name).eq_ignore_ascii_case(domain))
            }
            OtherName::XmppAddr(jid) => normalize_domain(jid).eq_ignore_ascii_case(domain),
        })
}

/// The SRV-ID service label of server-to-server XMPP (RFC 6120 §13.7.1.2.1).
const SRV_PREFIX: &str = "_xmpp-server.";

/// A trailing dot names the same host. (Names also compare
/// case-insensitively; callers do that.)
fn normalize_domain(name: &str) -> &str {
    name.strip_suffix('.').unwrap_or(name)
}

// ---------------------------------------------------------------------------
// otherName entries of subjectAltName.
//
// webpki reads dNSName and the other standard name types but skips
// otherName, so the two XMPP identities are read here with the small
// bounds-checked DER reader of tls.rs. A certificate crate would do it
// too, at a price (aarch64-musl release, text and data, measured
// 2026-12-06): x509-parser 0.18 adds 84 KB (nom, asn1-rs, der-parser,
// oid-registry), x509-cert 0.2 adds 57 KB (der, spki, const-oid), each
// duplicating the certificate parsing webpki already does, for what is
// some 60 lines here. Only certificates that webpki has verified reach
// this code in practice, and malformed input yields no names, never a
// panic.

/// An XMPP identity from an otherName SAN.
#[derive(Debug, Clone, PartialEq, Eq)]
enum OtherName<'a> {
    /// id-on-dnsSRV (RFC 4985), e.g. `_xmpp-server.example.org`.
    Srv(&'a str),
    /// id-on-xmppAddr (RFC 6120 §13.7.1.4), a JID; for servers a domain.
    XmppAddr(&'a str),
}

const DER_BOOLEAN: u8 = 0x01;
const DER_OCTET_STRING: u8 = 0x04;
const DER_OID: u8 = 0x06;
const DER_UTF8_STRING: u8 = 0x0c;
const DER_IA5_STRING: u8 = 0x16;
const DER_SEQUENCE: u8 = 0x30;
/// `[0]` constructed: otherName in GeneralName, and its explicit value.
const DER_CONTEXT_0: u8 = 0xa0;
/// `[3]` constructed: the extensions of a TBSCertificate.
const DER_CONTEXT_3: u8 = 0xa3;

/// 2.5.29.17, id-ce-subjectAltName.
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
/// 1.3.6.1.5.5.7.8.5, id-on-xmppAddr.
const OID_XMPP_ADDR: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x05];
/// 1.3.6.1.5.5.7.8.7, id-on-dnsSRV.
const OID_DNS_SRV: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x07];

/// The SRV-ID and XmppAddr names of a certificate; empty when there are
/// none or the DER is malformed.
fn other_names(cert: &[u8]) -> Vec<OtherName<'_>> {
    let mut names = Vec::new();
    let Some(mut general_names) = subject_alt_name(cert) else {
        return names;
    };
    while let Some((tag, contents, rest)) = der_next(general_names) {
        general_names = rest;
        if tag != DER_CONTEXT_0 {
            continue;
        }
        // OtherName ::= SEQUENCE { type-id OID, value [0] EXPLICIT ANY }
        let Some((type_id, after_id)) = der_expect(contents, DER_OID) else {
            continue;
        };
        let Some((explicit, _)) = der_expect(after_id, DER_CONTEXT_0) else {
            continue;
        };
        let Some((value_tag, value, _)) = der_next(explicit) else {
            continue;
        };
        let Ok(text) = std::str::from_utf8(value) else {
            continue;
        };
        match (type_id, value_tag) {
            (OID_XMPP_ADDR, DER_UTF8_STRING) => names.push(OtherName::XmppAddr(text)),
            // RFC 4985 makes SRVName an IA5String; some tools (rcgen among
            // them) write a UTF8String. The content is the same either way.
            (OID_DNS_SRV, DER_IA5_STRING | DER_UTF8_STRING) if text.is_ascii() => {
                names.push(OtherName::Srv(text))
            }
            _ => {}
        }
    }
    names
}

/// The contents of the GeneralNames SEQUENCE of the subjectAltName
/// extension: Certificate → TBSCertificate → [3] Extensions → Extension
/// { extnID, critical?, extnValue OCTET STRING { GeneralNames } }.
fn subject_alt_name(cert: &[u8]) -> Option<&[u8]> {
    let (certificate, _) = der_expect(cert, DER_SEQUENCE)?;
    let (tbs, _) = der_expect(certificate, DER_SEQUENCE)?;
    // Only the extensions are tagged [3]; everything before them is skipped.
    let mut fields = tbs;
    let extensions = loop {
        let (tag, contents, rest) = der_next(fields)?;
        if tag == DER_CONTEXT_3 {
            break contents;
        }
        fields = rest;
    };
    let (mut extensions, _) = der_expect(extensions, DER_SEQUENCE)?;
    while let Some((extension, rest)) = der_expect(extensions, DER_SEQUENCE) {
        extensions = rest;
        let (oid, mut fields) = der_expect(extension, DER_OID)?;
        if oid != OID_SUBJECT_ALT_NAME {
            continue;
        }
        if let Some((DER_BOOLEAN, _, rest)) = der_next(fields) {
            fields = rest;
        }
        let (value, _) = der_expect(fields, DER_OCTET_STRING)?;
        let (general_names, _) = der_expect(value, DER_SEQUENCE)?;
        return Some(general_names);
    }
    None
}

#[cfg(test)]
#[path = "s2s_tls_tests.rs"]
mod tests;
