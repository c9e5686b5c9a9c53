use super::*;
use crate::net::tls::{HostCert, load_or_create};
use crate::testing::TempDir;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::time::Duration;

// ---------------------------------------------------------------------------
// Test PKI.

/// A test certificate authority.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    certificate: rcgen::Certificate,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let certificate = params.self_signed(&key).unwrap();
        Ca {
            issuer: Issuer::new(params, key),
            certificate,
        }
    }

    /// An intermediate CA signed by this one.
    fn intermediate(&self, name: &str) -> Ca {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        Ca {
            issuer: Issuer::new(params, key),
            certificate,
        }
    }

    fn der(&self) -> CertificateDer<'static> {
        self.certificate.der().clone()
    }

    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.der()).unwrap();
        roots
    }
}

/// A leaf certificate and its key.
struct Leaf {
    certificate: rcgen::Certificate,
    key: KeyPair,
}

impl Leaf {
    fn der(&self) -> CertificateDer<'static> {
        self.certificate.der().clone()
    }

    fn as_peer(&self, role: PeerRole) -> PeerCertificate {
        PeerCertificate::new(vec![self.der()], role).unwrap()
    }
}

/// Leaf parameters: the given names, serverAuth, CN "leaf".
fn leaf_params(names: Vec<SanType>) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, "leaf");
    params.subject_alt_names = names;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params
}

fn signed(params: CertificateParams, ca: &Ca) -> Leaf {
    let key = KeyPair::generate().unwrap();
    Leaf {
        certificate: params.signed_by(&key, &ca.issuer).unwrap(),
        key,
    }
}

fn self_signed(params: CertificateParams) -> Leaf {
    let key = KeyPair::generate().unwrap();
    Leaf {
        certificate: params.self_signed(&key).unwrap(),
        key,
    }
}

fn dns(name: &str) -> SanType {
    SanType::DnsName(name.try_into().unwrap())
}

const XMPP_ADDR_OID: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 8, 5];
const DNS_SRV_OID: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 8, 7];

/// rcgen writes otherName values as UTF8String, which is right for
/// XmppAddr.
fn xmpp_addr(jid: &str) -> SanType {
    SanType::OtherName((XMPP_ADDR_OID.to_vec(), jid.into()))
}

/// One DER element (lengths up to 64 KiB).
fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match u16::try_from(contents.len()).unwrap() {
        len @ 0..0x80 => out.push(len as u8),
        len @ 0x80..0x100 => out.extend([0x81, len as u8]),
        len => out.extend([0x82, (len >> 8) as u8, len as u8]),
    }
    out.extend_from_slice(contents);
    out
}

/// A subjectAltName holding one SRV-ID as RFC 4985 IA5String, which
/// rcgen's `SanType::OtherName` cannot write (it writes UTF8String), so
/// the extension is built by hand and added as a custom extension.
fn ia5_srv_id_extension(srv: &str) -> CustomExtension {
    let other_name = [
        tlv(DER_OID, OID_DNS_SRV),
        tlv(DER_CONTEXT_0, &tlv(DER_IA5_STRING, srv.as_bytes())),
    ]
    .concat();
    let general_names = tlv(DER_SEQUENCE, &tlv(DER_CONTEXT_0, &other_name));
    CustomExtension::from_oid_content(&[2, 5, 29, 17], general_names)
}

fn now() -> UnixTime {
    UnixTime::now()
}

fn at_year_2000() -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(946_684_800 + 86_400 * 30))
}

/// `check`'s verdict for `domain`, roots from `ca`, as server certificate.
fn check(leaf: &Leaf, ca: &Ca, domain: &str) -> Result<(), PeerCertError> {
    leaf.as_peer(PeerRole::Server)
        .check(domain, &ca.roots(), now())
}

// ---------------------------------------------------------------------------
// Name matching.

#[test]
fn dns_id_matches_the_exact_domain() {
    let ca = Ca::new("Test CA");
    let leaf = signed(leaf_params(vec![dns("a.test")]), &ca);
    let peer = leaf.as_peer(PeerRole::Server);
    let roots = ca.roots();
    for domain in ["a.test", "A.Test", "a.test."] {
        assert!(peer.is_valid_for(domain, &roots, now()), "{domain}");
    }
    for domain in ["b.test", "x.a.test", "test", "", "."] {
        assert!(!peer.is_valid_for(domain, &roots, now()), "{domain}");
    }
    assert_eq!(
        check(&leaf, &ca, "b.test"),
        Err(PeerCertError::NameMismatch {
            domain: "b.test".to_owned()
        })
    );
}

#[test]
fn wildcard_matches_exactly_one_left_most_label() {
    let ca = Ca::new("Test CA");
    let leaf = signed(leaf_params(vec![dns("*.b.test")]), &ca);
    let peer = leaf.as_peer(PeerRole::Server);
    let roots = ca.roots();
    assert!(peer.is_valid_for("x.b.test", &roots, now()));
    assert!(peer.is_valid_for("X.B.TEST", &roots, now()));
    assert!(!peer.is_valid_for("b.test", &roots, now()));
    assert!(!peer.is_valid_for("y.x.b.test", &roots, now()));
    assert!(!peer.is_valid_for("x.c.test", &roots, now()));
}

#[test]
fn xmpp_addr_alone_identifies_the_domain() {
    let ca = Ca::new("Test CA");
    let leaf = signed(leaf_params(vec![xmpp_addr("a.test")]), &ca);
    assert_eq!(
        other_names(&leaf.der()),
        vec![OtherName::XmppAddr("a.test")]
    );
    assert_eq!(check(&leaf, &ca, "a.test"), Ok(()));
    assert_eq!(check(&leaf, &ca, "A.TEST."), Ok(()));
    assert!(check(&leaf, &ca, "b.test").is_err());
    // An XmppAddr is no DNS-ID: it does not extend to subdomains.
    assert!(check(&leaf, &ca, "x.a.test").is_err());
}

#[test]
fn srv_id_alone_identifies_the_domain() {
    let ca = Ca::new("Test CA");
    let mut params = leaf_params(Vec::new());
    params
        .custom_extensions
        .push(ia5_srv_id_extension("_xmpp-server.a.test"));
    let leaf = signed(params, &ca);
    assert_eq!(
        other_names(&leaf.der()),
        vec![OtherName::Srv("_xmpp-server.a.test")]
    );
    assert_eq!(check(&leaf, &ca, "a.test"), Ok(()));
    assert_eq!(check(&leaf, &ca, "A.test"), Ok(()));
    assert!(check(&leaf, &ca, "b.test").is_err());
    assert!(check(&leaf, &ca, "_xmpp-server.a.test").is_err());
}

#[test]
fn srv_id_written_as_utf8_string_is_accepted() {
    let ca = Ca::new("Test CA");
    let srv = SanType::OtherName((DNS_SRV_OID.to_vec(), "_XMPP-Server.a.test".into()));
    let leaf = signed(leaf_params(vec![srv]), &ca);
    assert_eq!(check(&leaf, &ca, "a.test"), Ok(()));
}

#[test]
fn srv_id_of_another_service_does_not_count() {
    let ca = Ca::new("Test CA");
    let client_srv = SanType::OtherName((DNS_SRV_OID.to_vec(), "_xmpp-client.a.test".into()));
    let leaf = signed(leaf_params(vec![client_srv]), &ca);
    assert!(check(&leaf, &ca, "a.test").is_err());
}

#[test]
fn several_names_of_several_kinds() {
    let ca = Ca::new("Test CA");
    let names = vec![
        dns("a.test"),
        xmpp_addr("c.test"),
        SanType::OtherName((DNS_SRV_OID.to_vec(), "_xmpp-server.d.test".into())),
        dns("*.e.test"),
    ];
    let leaf = signed(leaf_params(names), &ca);
    for domain in ["a.test", "c.test", "d.test", "x.e.test"] {
        assert_eq!(check(&leaf, &ca, domain), Ok(()), "{domain}");
    }
    assert!(check(&leaf, &ca, "e.test").is_err());
}

#[test]
fn common_name_is_never_used() {
    let ca = Ca::new("Test CA");
    let mut params = leaf_params(Vec::new());
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, "a.test");
    let leaf = signed(params, &ca);
    assert!(matches!(
        check(&leaf, &ca, "a.test"),
        Err(PeerCertError::NameMismatch { .. })
    ));
}

#[test]
fn ip_literal_domain_is_not_a_dns_id() {
    let ca = Ca::new("Test CA");
    let mut params = leaf_params(vec![dns("a.test")]);
    params
        .subject_alt_names
        .push(SanType::IpAddress("192.0.2.1".parse().unwrap()));
    let leaf = signed(params, &ca);
    assert!(check(&leaf, &ca, "192.0.2.1").is_err());
}

// ---------------------------------------------------------------------------
// Chain verification.

#[test]
fn expired_certificate_is_not_valid() {
    let ca = Ca::new("Test CA");
    let mut params = leaf_params(vec![dns("a.test")]);
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    let leaf = signed(params, &ca);
    let peer = leaf.as_peer(PeerRole::Server);
    assert!(matches!(
        peer.check("a.test", &ca.roots(), now()),
        Err(PeerCertError::Untrusted(_))
    ));
    // The same certificate while it was valid.
    assert!(peer.is_valid_for("a.test", &ca.roots(), at_year_2000()));
}

#[test]
fn certificate_from_another_ca_is_not_valid() {
    let ca = Ca::new("Test CA");
    let other = Ca::new("Other CA");
    let leaf = signed(leaf_params(vec![dns("a.test")]), &other);
    assert!(matches!(
        check(&leaf, &ca, "a.test"),
        Err(PeerCertError::Untrusted(_))
    ));
    assert_eq!(check(&leaf, &other, "a.test"), Ok(()));
}

#[test]
fn self_signed_certificate_is_not_valid() {
    let ca = Ca::new("Test CA");
    let leaf = self_signed(leaf_params(vec![dns("a.test")]));
    assert!(matches!(
        check(&leaf, &ca, "a.test"),
        Err(PeerCertError::Untrusted(_))
    ));
}

#[test]
fn without_roots_nothing_is_valid() {
    let ca = Ca::new("Test CA");
    let leaf = signed(leaf_params(vec![dns("a.test")]), &ca);
    let peer = leaf.as_peer(PeerRole::Server);
    assert_eq!(
        peer.check("a.test", &RootCertStore::empty(), now()),
        Err(PeerCertError::NoRoots)
    );
}

#[test]
fn intermediates_sent_by_the_peer_are_used() {
    let ca = Ca::new("Test CA");
    let intermediate = ca.intermediate("Test Intermediate");
    let leaf = signed(leaf_params(vec![dns("a.test")]), &intermediate);
    let roots = ca.roots();
    let full = PeerCertificate::new(vec![leaf.der(), intermediate.der()], PeerRole::Server);
    assert!(full.unwrap().is_valid_for("a.test", &roots, now()));
    let bare = leaf.as_peer(PeerRole::Server);
    assert!(!bare.is_valid_for("a.test", &roots, now()));
}

#[test]
fn key_usage_depends_on_the_role() {
    let ca = Ca::new("Test CA");
    let roots = ca.roots();
    let with_usage = |usages: Vec<ExtendedKeyUsagePurpose>| {
        let mut params = leaf_params(vec![dns("a.test")]);
        params.extended_key_usages = usages;
        signed(params, &ca)
    };
    let valid = |leaf: &Leaf, role| leaf.as_peer(role).is_valid_for("a.test", &roots, now());

    // serverAuth-only certificates are what servers usually present as
    // client certificates: accepted both ways.
    let server_auth = with_usage(vec![ExtendedKeyUsagePurpose::ServerAuth]);
    assert!(valid(&server_auth, PeerRole::Server));
    assert!(valid(&server_auth, PeerRole::Client));

    let client_auth = with_usage(vec![ExtendedKeyUsagePurpose::ClientAuth]);
    assert!(!valid(&client_auth, PeerRole::Server));
    assert!(valid(&client_auth, PeerRole::Client));

    let both = with_usage(vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ]);
    assert!(valid(&both, PeerRole::Server));
    assert!(valid(&both, PeerRole::Client));

    let none = with_usage(Vec::new());
    assert!(valid(&none, PeerRole::Server));
    assert!(valid(&none, PeerRole::Client));

    let code_signing = with_usage(vec![ExtendedKeyUsagePurpose::CodeSigning]);
    assert!(!valid(&code_signing, PeerRole::Server));
    assert!(!valid(&code_signing, PeerRole::Client));
}

#[test]
fn empty_or_garbage_chains() {
    assert!(PeerCertificate::new(Vec::new(), PeerRole::Server).is_none());
    let ca = Ca::new("Test CA");
    let garbage = PeerCertificate::new(
        vec![CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])],
        PeerRole::Client,
    )
    .unwrap();
    assert!(matches!(
        garbage.check("a.test", &ca.roots(), now()),
        Err(PeerCertError::Malformed(_))
    ));
}

#[test]
fn damaged_der_yields_no_names_and_no_panic() {
    let ca = Ca::new("Test CA");
    let names = vec![
        dns("a.test"),
        xmpp_addr("a.test"),
        SanType::OtherName((DNS_SRV_OID.to_vec(), "_xmpp-server.a.test".into())),
    ];
    let der = signed(leaf_params(names), &ca).der();
    assert_eq!(other_names(&der).len(), 2);
    for len in 0..der.len() {
        let _ = other_names(&der[..len]);
    }
    let mut damaged = der.to_vec();
    for i in 0..damaged.len() {
        let original = damaged[i];
        for value in [0x00, 0x7f, 0x80, 0x84, 0xff] {
            damaged[i] = value;
            let _ = other_names(&damaged);
        }
        damaged[i] = original;
    }
    assert!(other_names(&[]).is_empty());
}

// ---------------------------------------------------------------------------
// Trust roots.

fn write_file(dir: &TempDir, name: &str, contents: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    fs::write(&path, contents).unwrap();
    path
}

#[test]
fn roots_come_from_the_bundle_and_the_extra_file() {
    let dir = TempDir::new("s2s-roots");
    let (a, b, c) = (Ca::new("A"), Ca::new("B"), Ca::new("C"));
    let bundle = write_file(
        &dir,
        "bundle.pem",
        format!("{}{}", a.certificate.pem(), b.certificate.pem()).as_bytes(),
    );
    let extra = write_file(&dir, "extra.pem", c.certificate.pem().as_bytes());
    let (roots, report) = load_roots_from(Some(&bundle), Some(&extra));
    assert_eq!(roots.len(), 3);
    assert_eq!(report.total(), 3);
    assert!(report.errors.is_empty(), "{report}");
    assert_eq!(
        report.system,
        Some(RootsSource {
            path: bundle.clone(),
            loaded: 2,
            skipped: 0
        })
    );
    assert_eq!(report.extra.as_ref().map(|s| s.loaded), Some(1));
    let text = report.to_string();
    assert!(text.starts_with("3 trusted CA certificates"), "{text}");

    // A peer certified by the extra CA verifies against the result.
    let leaf = signed(leaf_params(vec![dns("a.test")]), &c);
    assert!(
        leaf.as_peer(PeerRole::Server)
            .is_valid_for("a.test", &roots, now())
    );
}

#[test]
fn root_problems_are_reported_not_fatal() {
    let dir = TempDir::new("s2s-roots-bad");
    let ca = Ca::new("A");
    let missing = dir.path().join("missing.pem");
    // A PEM block that is no certificate, then a good one, then junk.
    let bad_block = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let broken = write_file(
        &dir,
        "broken.pem",
        format!(
            "{bad_block}{}-----BEGIN CERTIFICATE-----\n!!!!\n",
            ca.certificate.pem()
        )
        .as_bytes(),
    );

    let (roots, report) = load_roots_from(None, Some(&missing));
    assert!(roots.is_empty());
    assert!(matches!(report.errors[0], RootsError::NoSystemBundle));
    assert!(matches!(report.errors[1], RootsError::Unreadable { .. }));
    assert!(report.to_string().contains("federation uses dialback"));

    let (roots, report) = load_roots_from(Some(&broken), None);
    assert_eq!(roots.len(), 1);
    let source = report.system.as_ref().unwrap();
    assert_eq!((source.loaded, source.skipped), (1, 1));
    assert!(
        matches!(
            report.errors[0],
            RootsError::BadCertificate { index: 1, .. }
        ),
        "{report}"
    );
    assert!(
        matches!(report.errors[1], RootsError::BadPem { .. }),
        "{report}"
    );
    assert_eq!(report.errors.len(), 2);
}

#[test]
fn load_roots_reads_the_extra_file() {
    // The system part depends on the machine; only the extra file is
    // predictable.
    let dir = TempDir::new("s2s-roots-system");
    let ca = Ca::new("A");
    let extra = write_file(&dir, "extra.pem", ca.certificate.pem().as_bytes());
    let (roots, report) = load_roots(Some(&extra));
    assert_eq!(report.extra.as_ref().map(|s| s.loaded), Some(1));
    assert!(!roots.is_empty());
    assert_eq!(roots.len(), report.total());
}

// ---------------------------------------------------------------------------
// Handshakes over loopback.

/// A host's `TlsSetup`: CA-signed when `signed_by` is given, else the
/// self-signed certificate TlsSetup creates.
fn host_setup(dir: &TempDir, domain: &str, signed_by: Option<&Ca>) -> TlsSetup {
    let files = signed_by.map(|ca| {
        let leaf = signed(leaf_params(vec![dns(domain)]), ca);
        let certificate = write_file(
            dir,
            &format!("{domain}.crt"),
            leaf.certificate.pem().as_bytes(),
        );
        let key = write_file(
            dir,
            &format!("{domain}.key"),
            leaf.key.serialize_pem().as_bytes(),
        );
        (certificate, key)
    });
    let host = HostCert {
        domain: domain.to_owned(),
        extra_names: Vec::new(),
        files,
    };
    load_or_create(&[host], dir.path()).unwrap()
}

/// What each side saw of the other.
struct Outcome {
    /// The server certificate, as seen by the dialling side.
    server: Option<PeerCertificate>,
    /// The client certificate, as seen by the dialled side.
    client: Option<PeerCertificate>,
    client_alpn: Option<Vec<u8>>,
    server_alpn: Option<Vec<u8>>,
    version: Option<rustls::ProtocolVersion>,
}

/// One handshake over 127.0.0.1 with futures-rustls, the dialling side
/// naming `server_name`.
fn handshake(
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
    server_name: &str,
) -> io::Result<Outcome> {
    let server_name = ServerName::try_from(server_name.to_owned()).unwrap();
    smol::block_on(async move {
        let listener = smol::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let accept = async {
            let (tcp, _) = listener.accept().await?;
            let stream = futures_rustls::TlsAcceptor::from(server)
                .accept(tcp)
                .await?;
            let conn = stream.get_ref().1;
            io::Result::Ok((
                PeerCertificate::of_client(conn),
                conn.alpn_protocol().map(<[u8]>::to_vec),
            ))
        };
        let connect = async {
            let tcp = smol::net::TcpStream::connect(addr).await?;
            let stream = futures_rustls::TlsConnector::from(client)
                .connect(server_name, tcp)
                .await?;
            let conn = stream.get_ref().1;
            io::Result::Ok((
                PeerCertificate::of_server(conn),
                conn.alpn_protocol().map(<[u8]>::to_vec),
                conn.protocol_version(),
            ))
        };
        let (accepted, connected) = futures_lite::future::zip(accept, connect).await;
        let ((client, server_alpn), (server, client_alpn, version)) = (accepted?, connected?);
        Ok(Outcome {
            server,
            client,
            client_alpn,
            server_alpn,
            version,
        })
    })
}

/// b.test dials a.test.
fn federate(signed_by: Option<&Ca>, direct_tls: bool) -> (Outcome, TlsSetup, TlsSetup) {
    let dir = TempDir::new("s2s-handshake");
    let a = host_setup(&dir, "a.test", signed_by);
    let b = host_setup(&dir, "b.test", signed_by);
    let roots = Arc::new(RootCertStore::empty());
    let receiving = S2sTls::new(&a, roots.clone()).unwrap();
    let initiating = S2sTls::new(&b, roots).unwrap();
    let server = if direct_tls {
        receiving.direct_config()
    } else {
        receiving.starttls_config()
    };
    let client = initiating.client_config("b.test", direct_tls).unwrap();
    let outcome = handshake(client, server, "a.test").unwrap();
    (outcome, a, b)
}

#[test]
fn self_signed_peers_complete_the_handshake_but_are_not_valid() {
    let ca = Ca::new("Test CA");
    let roots = ca.roots();
    let (outcome, a, b) = federate(None, false);
    let server = outcome.server.expect("a.test sent a certificate");
    let client = outcome.client.expect("b.test sent a client certificate");
    assert_eq!(
        server.chain(),
        a.certificate_for(Some("a.test")).cert.as_slice()
    );
    assert_eq!(
        client.chain(),
        b.certificate_for(Some("b.test")).cert.as_slice()
    );
    assert_eq!(server.role(), PeerRole::Server);
    assert_eq!(client.role(), PeerRole::Client);
    assert!(!server.is_valid_for("a.test", &roots, now()));
    assert!(!client.is_valid_for("b.test", &roots, now()));
    assert!(matches!(
        client.check("b.test", &roots, now()),
        Err(PeerCertError::Untrusted(_))
    ));
    assert_eq!(outcome.client_alpn, None);
    assert_eq!(outcome.server_alpn, None);
    assert_eq!(outcome.version, Some(rustls::ProtocolVersion::TLSv1_3));
}

/// Presents one certificate but signs with the key of another, as a peer
/// replaying someone else's certificate would.
#[derive(Debug)]
struct StolenCertificate(Arc<CertifiedKey>);

impl StolenCertificate {
    fn new(victim: &TlsSetup, thief: &TlsSetup) -> Arc<StolenCertificate> {
        let victim = victim.certificate_for(None);
        let thief = thief.certificate_for(None);
        Arc::new(StolenCertificate(Arc::new(CertifiedKey::new(
            victim.cert.clone(),
            thief.key.clone(),
        ))))
    }
}

impl ResolvesClientCert for StolenCertificate {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl ResolvesServerCert for StolenCertificate {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

#[test]
fn handshake_signatures_are_verified() {
    let ca = Ca::new("Test CA");
    let dir = TempDir::new("s2s-stolen");
    let victim = host_setup(&dir, "victim.test", Some(&ca));
    let a = host_setup(&dir, "a.test", Some(&ca));
    let b = host_setup(&dir, "b.test", Some(&ca));
    let tls12_only = |resolver: Arc<dyn ResolvesServerCert>| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(SignaturesOnly::new(&provider));
        Arc::new(
            ServerConfig::builder_with_provider(provider)
                .with_protocol_versions(&[&rustls::version::TLS12])
                .unwrap()
                .with_client_cert_verifier(verifier)
                .with_cert_resolver(resolver),
        )
    };

    // A dialling peer with a stolen client certificate.
    let thief = client_config(Some(StolenCertificate::new(&victim, &b)), false).unwrap();
    let honest_server = S2sTls::new(&a, Arc::new(RootCertStore::empty())).unwrap();
    assert!(handshake(thief.clone(), honest_server.starttls_config(), "a.test").is_err());
    let resolver: Arc<dyn ResolvesServerCert> = Arc::new(HostCertificates::new(&a));
    assert!(handshake(thief, tls12_only(resolver), "a.test").is_err());

    // A dialled peer with a stolen server certificate.
    let honest_client = client_config(None, false).unwrap();
    let stolen = StolenCertificate::new(&victim, &a);
    let thief_server = server_config(stolen.clone(), false).unwrap();
    assert!(handshake(honest_client.clone(), thief_server, "victim.test").is_err());
    assert!(handshake(honest_client, tls12_only(stolen), "victim.test").is_err());
}

#[test]
fn ca_signed_peers_are_valid_both_ways() {
    let ca = Ca::new("Test CA");
    let roots = ca.roots();
    let (outcome, _, _) = federate(Some(&ca), false);
    let server = outcome.server.unwrap();
    let client = outcome.client.unwrap();
    assert!(server.is_valid_for("a.test", &roots, now()));
    assert!(client.is_valid_for("b.test", &roots, now()));
    // Each certificate names its own domain only.
    assert!(!server.is_valid_for("b.test", &roots, now()));
    assert!(!client.is_valid_for("a.test", &roots, now()));
}

#[test]
fn direct_tls_negotiates_xmpp_server() {
    let ca = Ca::new("Test CA");
    let (outcome, _, _) = federate(Some(&ca), true);
    assert_eq!(outcome.client_alpn.as_deref(), Some(ALPN_XMPP_SERVER));
    assert_eq!(outcome.server_alpn.as_deref(), Some(ALPN_XMPP_SERVER));
    assert!(
        outcome
            .client
            .unwrap()
            .is_valid_for("b.test", &ca.roots(), now())
    );
}

#[test]
fn peer_without_client_certificate_is_served() {
    let dir = TempDir::new("s2s-no-client-cert");
    let a = host_setup(&dir, "a.test", None);
    let receiving = S2sTls::new(&a, Arc::new(RootCertStore::empty())).unwrap();
    let client = client_config(None, false).unwrap();
    let outcome = handshake(client, receiving.starttls_config(), "a.test").unwrap();
    assert!(outcome.server.is_some());
    assert!(outcome.client.is_none());
}

#[test]
fn tls12_handshake_checks_client_signatures_too() {
    let ca = Ca::new("Test CA");
    let dir = TempDir::new("s2s-tls12");
    let a = host_setup(&dir, "a.test", Some(&ca));
    let b = host_setup(&dir, "b.test", Some(&ca));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(SignaturesOnly::new(&provider));
    let server = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(HostCertificates::new(&a)));
    let initiating = S2sTls::new(&b, Arc::new(RootCertStore::empty())).unwrap();
    let client = initiating.client_config("b.test", false).unwrap();
    let outcome = handshake(client, Arc::new(server), "a.test").unwrap();
    assert_eq!(outcome.version, Some(rustls::ProtocolVersion::TLSv1_2));
    assert!(
        outcome
            .client
            .unwrap()
            .is_valid_for("b.test", &ca.roots(), now())
    );
    assert!(
        outcome
            .server
            .unwrap()
            .is_valid_for("a.test", &ca.roots(), now())
    );
}

#[test]
fn client_configs_are_cached_per_local_domain() {
    let dir = TempDir::new("s2s-cache");
    let a = host_setup(&dir, "a.test", None);
    let s2s = S2sTls::new(&a, Arc::new(RootCertStore::empty())).unwrap();
    let first = s2s.client_config("a.test", false).unwrap();
    assert!(Arc::ptr_eq(
        &first,
        &s2s.client_config("A.TEST.", false).unwrap()
    ));
    let direct = s2s.client_config("a.test", true).unwrap();
    assert!(!Arc::ptr_eq(&first, &direct));
    assert_eq!(direct.alpn_protocols, vec![ALPN_XMPP_SERVER.to_vec()]);
    assert!(first.alpn_protocols.is_empty());
    let other = s2s.client_config("muc.a.test", false).unwrap();
    assert!(!Arc::ptr_eq(&first, &other));
}
