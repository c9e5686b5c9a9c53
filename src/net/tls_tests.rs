use super::*;
use rustls::client::ClientConnection;
use rustls::{
    ClientConfig, ConnectionCommon, HandshakeKind, RootCertStore, SideData,
    SupportedProtocolVersion,
};
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug, Clone)]
struct CertificateFiles {
    certificate: PathBuf,
    key: PathBuf,
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("perch-tls-{}-{name}-{unique}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn self_signed_host(domain: &str, extra: &[&str]) -> HostCert {
    HostCert {
        domain: domain.to_owned(),
        extra_names: extra.iter().map(|name| name.to_string()).collect(),
        files: None,
    }
}

/// Writes an rcgen certificate and key for `names` to `dir`.
fn write_pair(
    dir: &Path,
    stem: &str,
    names: &[&str],
) -> (CertificateFiles, CertificateDer<'static>) {
    let generated =
        rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    let files = CertificateFiles {
        certificate: dir.join(format!("{stem}.pem")),
        key: dir.join(format!("{stem}-key.pem")),
    };
    fs::write(&files.certificate, generated.cert.pem()).unwrap();
    fs::write(&files.key, generated.signing_key.serialize_pem()).unwrap();
    (files, generated.cert.der().clone())
}

fn leaf(setup: &TlsSetup, name: Option<&str>) -> CertificateDer<'static> {
    setup.certificate_for(name).cert[0].clone()
}

fn error(hosts: &[HostCert], data_dir: &Path) -> TlsError {
    match load_or_create(hosts, data_dir) {
        Ok(_) => panic!("setup unexpectedly succeeded"),
        Err(err) => err,
    }
}

#[test]
fn self_signed_is_created_once_and_reused() {
    let dir = TempDir::new("reuse");
    let hosts = [self_signed_host("localhost", &["conference.localhost"])];
    let first = load_or_create(&hosts, &dir.0).unwrap();
    let cert_path = dir.0.join("tls/localhost.crt");
    let key_path = dir.0.join("tls/localhost.key");
    assert!(cert_path.is_file());
    let mode = fs::metadata(&key_path).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    assert!(!dir.0.join("tls/localhost.key.tmp").exists());

    let parsed_leaf = leaf(&first, Some("localhost"));
    let parsed = ParsedCertificate::try_from(&parsed_leaf).unwrap();
    assert!(covers(&parsed, "localhost"));
    assert!(covers(&parsed, "conference.localhost"));
    assert_eq!(leaf(&first, Some("conference.localhost")), parsed_leaf);

    let second = load_or_create(&hosts, &dir.0).unwrap();
    assert_eq!(leaf(&second, None), parsed_leaf);
    let on_disk = CertificateDer::from_pem_file(&cert_path).unwrap();
    assert_eq!(on_disk, parsed_leaf);
}

#[test]
fn self_signed_is_replaced_when_names_change() {
    let dir = TempDir::new("rename");
    let first = load_or_create(
        &[self_signed_host("example.org", &["conference.example.org"])],
        &dir.0,
    )
    .unwrap();
    let second = load_or_create(
        &[self_signed_host("example.org", &["rooms.example.org"])],
        &dir.0,
    )
    .unwrap();
    assert_ne!(leaf(&first, None), leaf(&second, None));
    let parsed_leaf = leaf(&second, None);
    let parsed = ParsedCertificate::try_from(&parsed_leaf).unwrap();
    assert!(covers(&parsed, "rooms.example.org"));
    // Dropping a name does not force a new certificate.
    let third = load_or_create(&[self_signed_host("example.org", &[])], &dir.0).unwrap();
    assert_eq!(leaf(&third, None), parsed_leaf);
}

#[test]
fn half_written_self_signed_pair_is_regenerated() {
    let dir = TempDir::new("half");
    let hosts = [self_signed_host("localhost", &[])];
    load_or_create(&hosts, &dir.0).unwrap();
    fs::remove_file(dir.0.join("tls/localhost.crt")).unwrap();
    load_or_create(&hosts, &dir.0).unwrap();
    assert!(dir.0.join("tls/localhost.crt").is_file());
}

#[test]
fn corrupt_self_signed_files_are_not_overwritten() {
    let dir = TempDir::new("corrupt");
    let hosts = [self_signed_host("localhost", &[])];
    load_or_create(&hosts, &dir.0).unwrap();
    fs::write(dir.0.join("tls/localhost.crt"), "not pem").unwrap();
    let err = error(&hosts, &dir.0);
    assert!(
        matches!(
            err,
            TlsError::NoCertificate {
                holds_key: false,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(dir.0.join("tls/localhost.crt")).unwrap(),
        "not pem"
    );
}

#[test]
fn unsafe_domain_is_not_used_as_file_name() {
    let dir = TempDir::new("unsafe");
    let err = error(&[self_signed_host("../evil", &[])], &dir.0);
    assert_eq!(
        err.to_string(),
        "cannot create a self-signed TLS certificate for ../evil: the domain is not usable as a file name"
    );
}

#[test]
fn no_hosts_is_an_error() {
    let dir = TempDir::new("nohosts");
    assert!(matches!(error(&[], &dir.0), TlsError::NoHosts));
}

#[test]
fn configured_pair_is_loaded() {
    let dir = TempDir::new("configured");
    let (files, der) = write_pair(&dir.0, "example", &["example.org"]);
    let host = HostCert {
        domain: "example.org".into(),
        extra_names: vec!["conference.example.org".into()],
        files: Some((files.certificate, files.key)),
    };
    let setup = load_or_create(&[host], &dir.0).unwrap();
    assert_eq!(leaf(&setup, Some("example.org")), der);
    assert_eq!(leaf(&setup, Some("conference.example.org")), der);
    // Configured hosts never get a generated certificate.
    assert!(!dir.0.join("tls").exists());
}

#[test]
fn from_host_config() {
    let host = HostConfig {
        domain: "example.org".into(),
        certificate: None,
        key: None,
        muc: Some("rooms.example.org".into()),
        pubsub: None,
        upload: None,
        allow_mismatched_certificate: false,
    };
    assert_eq!(
        HostCert::from(&host),
        self_signed_host("example.org", &["rooms.example.org"])
    );
    let host = HostConfig { muc: None, ..host };
    assert_eq!(HostCert::from(&host), self_signed_host("example.org", &[]));
    let host = HostConfig {
        certificate: Some("/c.pem".into()),
        key: Some("/k.pem".into()),
        ..host
    };
    assert_eq!(
        HostCert::from(&host).files,
        Some(("/c.pem".into(), "/k.pem".into()))
    );
}

fn configured_host(files: CertificateFiles) -> HostCert {
    HostCert {
        domain: "example.org".into(),
        extra_names: Vec::new(),
        files: Some((files.certificate, files.key)),
    }
}

#[test]
fn check_files_summarizes_a_pair() {
    let dir = TempDir::new("check");
    let (files, _) = write_pair(&dir.0, "one", &["example.org"]);
    let check = check_files("example.org", &files.certificate, &files.key).unwrap();
    assert_eq!(
        check,
        CertificateCheck {
            chain_len: 1,
            covers_domain: true,
            expires: Some("4096-01-01".into()),
            warnings: Vec::new()
        }
    );
    assert_eq!(
        check.to_string(),
        "key matches, 1 certificate in chain, valid until 4096-01-01"
    );
    let check = check_files("example.com", &files.certificate, &files.key).unwrap();
    assert!(!check.covers_domain);
    assert_eq!(
        check.to_string(),
        "key matches, 1 certificate in chain, valid until 4096-01-01; warning: the certificate does not cover example.com, so clients will reject it"
    );
    let (other, _) = write_pair(&dir.0, "two", &["example.org"]);
    let err = check_files("example.org", &files.certificate, &other.key).unwrap_err();
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
}

#[test]
fn mismatched_key_is_an_error() {
    let dir = TempDir::new("mismatch");
    let (files, _) = write_pair(&dir.0, "one", &["example.org"]);
    let (other, _) = write_pair(&dir.0, "two", &["example.org"]);
    let files = CertificateFiles {
        key: other.key,
        ..files
    };
    let err = error(&[configured_host(files.clone())], &dir.0);
    assert_eq!(
        err.to_string(),
        format!(
            "TLS key file {} does not belong to the certificate in {}",
            files.key.display(),
            files.certificate.display()
        )
    );
}

#[test]
fn missing_files_are_named() {
    let dir = TempDir::new("missing");
    let (files, _) = write_pair(&dir.0, "one", &["example.org"]);
    let missing_cert = CertificateFiles {
        certificate: dir.0.join("nope.pem"),
        key: files.key.clone(),
    };
    assert_eq!(
        error(&[configured_host(missing_cert)], &dir.0).to_string(),
        format!(
            "TLS certificate file {} for example.org does not exist",
            dir.0.join("nope.pem").display()
        )
    );
    let missing_key = CertificateFiles {
        certificate: files.certificate.clone(),
        key: dir.0.join("nope.key"),
    };
    assert_eq!(
        error(&[configured_host(missing_key)], &dir.0).to_string(),
        format!(
            "TLS key file {} for example.org does not exist",
            dir.0.join("nope.key").display()
        )
    );
}

#[test]
fn unreadable_file_is_named() {
    let dir = TempDir::new("unreadable");
    let (files, _) = write_pair(&dir.0, "one", &["example.org"]);
    // A directory cannot be read as a file, even by root.
    let files = CertificateFiles {
        certificate: dir.0.clone(),
        ..files
    };
    let err = error(&[configured_host(files)], &dir.0);
    assert!(
        matches!(
            err,
            TlsError::Unreadable {
                role: FileRole::Certificate,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().starts_with(&format!(
        "cannot read TLS certificate file {} for example.org: ",
        dir.0.display()
    )));
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn swapped_and_empty_files_are_explained() {
    let dir = TempDir::new("swapped");
    let (files, _) = write_pair(&dir.0, "one", &["example.org"]);
    let swapped = CertificateFiles {
        certificate: files.key.clone(),
        key: files.certificate.clone(),
    };
    assert_eq!(
        error(&[configured_host(swapped)], &dir.0).to_string(),
        format!(
            "TLS certificate file {} contains no certificate but a private key; are certificate and key swapped?",
            files.key.display()
        )
    );
    let both_certs = CertificateFiles {
        certificate: files.certificate.clone(),
        key: files.certificate.clone(),
    };
    assert_eq!(
        error(&[configured_host(both_certs)], &dir.0).to_string(),
        format!(
            "TLS key file {} contains no private key but a certificate; are certificate and key swapped?",
            files.certificate.display()
        )
    );
    let empty = dir.0.join("empty.pem");
    fs::write(&empty, "").unwrap();
    let empty_key = CertificateFiles {
        certificate: files.certificate.clone(),
        key: empty.clone(),
    };
    assert_eq!(
        error(&[configured_host(empty_key)], &dir.0).to_string(),
        format!("TLS key file {} contains no private key", empty.display())
    );
    let broken = dir.0.join("broken.pem");
    fs::write(&broken, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
    let broken_cert = CertificateFiles {
        certificate: broken.clone(),
        key: files.key,
    };
    let err = error(&[configured_host(broken_cert)], &dir.0);
    assert!(
        err.to_string().starts_with(&format!(
            "TLS certificate file {} is not valid PEM: ",
            broken.display()
        )),
        "{err}"
    );
}

#[test]
fn sni_selects_the_host_certificate() {
    let dir = TempDir::new("sni");
    let hosts = [
        self_signed_host("a.example", &["conference.a.example"]),
        self_signed_host("b.example", &["conference.b.example"]),
    ];
    let setup = load_or_create(&hosts, &dir.0).unwrap();
    let a = leaf(&setup, Some("a.example"));
    let b = leaf(&setup, Some("b.example"));
    assert_ne!(a, b);
    assert_eq!(leaf(&setup, Some("B.Example")), b);
    assert_eq!(leaf(&setup, Some("b.example.")), b);
    assert_eq!(leaf(&setup, Some("conference.b.example")), b);
    assert_eq!(leaf(&setup, Some("c.example")), a);
    assert_eq!(leaf(&setup, None), a);

    // Through a real handshake: SNI picks b, no SNI falls back to a.
    let config = client_config(&[&a, &b], &[], &[&rustls::version::TLS13]);
    let (client, _) = connect(&setup.starttls_config(), &config, "b.example").unwrap();
    assert_eq!(
        client.peer_certificates().map(|certs| certs[0].clone()),
        Some(b.clone())
    );
    let mut no_sni = (*config).clone();
    no_sni.enable_sni = false;
    let (client, _) = connect(&setup.starttls_config(), &Arc::new(no_sni), "a.example").unwrap();
    assert_eq!(
        client.peer_certificates().map(|certs| certs[0].clone()),
        Some(a)
    );
}

#[test]
fn reload_swaps_certificates() {
    let dir = TempDir::new("reload");
    let (files, first) = write_pair(&dir.0, "one", &["example.org"]);
    let setup = load_or_create(&[configured_host(files.clone())], &dir.0).unwrap();
    let starttls = setup.starttls_config();
    let (renewed, second) = write_pair(&dir.0, "two", &["example.org"]);
    fs::rename(&renewed.certificate, &files.certificate).unwrap();
    fs::rename(&renewed.key, &files.key).unwrap();
    setup
        .reload(&[configured_host(files.clone())], &dir.0)
        .unwrap();
    assert_ne!(first, second);
    assert_eq!(leaf(&setup, None), second);
    // Configs handed out before the reload see the new certificate too.
    let config = client_config(&[&second], &[], &[&rustls::version::TLS13]);
    connect(&starttls, &config, "example.org").unwrap();

    // A failed reload keeps the old certificates.
    fs::remove_file(&files.key).unwrap();
    assert!(setup.reload(&[configured_host(files)], &dir.0).is_err());
    assert_eq!(leaf(&setup, None), second);
}

fn client_config(
    trusted: &[&CertificateDer<'static>],
    alpn: &[&[u8]],
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in trusted {
        roots.add((*cert).clone()).unwrap();
    }
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|proto| proto.to_vec()).collect();
    Arc::new(config)
}

/// Moves everything `from` wants to send into `to`; returns the byte count.
fn transfer<A: SideData, B: SideData>(
    from: &mut ConnectionCommon<A>,
    to: &mut ConnectionCommon<B>,
) -> Result<usize, rustls::Error> {
    let mut buffer = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut buffer).unwrap();
    }
    let mut pending = buffer.as_slice();
    while !pending.is_empty() {
        to.read_tls(&mut pending).unwrap();
        to.process_new_packets()?;
    }
    Ok(buffer.len())
}

/// Runs a full in-memory handshake, including post-handshake tickets.
fn connect(
    server_config: &Arc<ServerConfig>,
    client_config: &Arc<ClientConfig>,
    name: &str,
) -> Result<(ClientConnection, ServerConnection), rustls::Error> {
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    let mut client = ClientConnection::new(client_config.clone(), server_name)?;
    let mut server = ServerConnection::new(server_config.clone())?;
    for _ in 0..10 {
        let moved = transfer(&mut client, &mut server)? + transfer(&mut server, &mut client)?;
        if moved == 0 && !client.is_handshaking() && !server.is_handshaking() {
            return Ok((client, server));
        }
    }
    panic!("handshake did not finish");
}

fn client_exporter(client: &ClientConnection) -> Vec<u8> {
    client
        .export_keying_material(vec![0; 32], EXPORTER_LABEL, None)
        .unwrap()
}

#[test]
fn direct_tls_handshake_negotiates_alpn_and_exporter() {
    let dir = TempDir::new("handshake");
    let setup = load_or_create(&[self_signed_host("localhost", &[])], &dir.0).unwrap();
    let cert = leaf(&setup, None);
    let config = client_config(&[&cert], &[ALPN_XMPP_CLIENT], &[&rustls::version::TLS13]);
    let (client, server) = connect(&setup.direct_config(), &config, "localhost").unwrap();
    assert_eq!(server.alpn_protocol(), Some(ALPN_XMPP_CLIENT));
    assert_eq!(client.alpn_protocol(), Some(ALPN_XMPP_CLIENT));
    assert_eq!(server.server_name(), Some("localhost"));
    let binding = exporter_channel_binding(&server).unwrap();
    assert_eq!(binding.len(), 32);
    assert_eq!(binding, client_exporter(&client));
    assert_ne!(binding, vec![0; 32]);

    // Resumption: the same client config reconnects with its ticket.
    let (client, server) = connect(&setup.direct_config(), &config, "localhost").unwrap();
    assert_eq!(server.handshake_kind(), Some(HandshakeKind::Resumed));
    // A resumed session still derives fresh, matching bindings.
    let resumed = exporter_channel_binding(&server).unwrap();
    assert_eq!(resumed, client_exporter(&client));
    assert_ne!(resumed, binding);
}

#[test]
fn direct_tls_accepts_clients_without_alpn() {
    let dir = TempDir::new("noalpn");
    let setup = load_or_create(&[self_signed_host("localhost", &[])], &dir.0).unwrap();
    let cert = leaf(&setup, None);
    let config = client_config(
        &[&cert],
        &[],
        &[&rustls::version::TLS13, &rustls::version::TLS12],
    );
    let (_, server) = connect(&setup.direct_config(), &config, "localhost").unwrap();
    assert_eq!(server.alpn_protocol(), None);
    // A client insisting on another protocol is refused (RFC 7301).
    let h2 = client_config(&[&cert], &[b"h2"], &[&rustls::version::TLS13]);
    assert!(connect(&setup.direct_config(), &h2, "localhost").is_err());
}

#[test]
fn starttls_ignores_alpn() {
    let dir = TempDir::new("starttls");
    let setup = load_or_create(&[self_signed_host("localhost", &[])], &dir.0).unwrap();
    let cert = leaf(&setup, None);
    let config = client_config(&[&cert], &[ALPN_XMPP_CLIENT], &[&rustls::version::TLS13]);
    let (client, server) = connect(&setup.starttls_config(), &config, "localhost").unwrap();
    assert_eq!(server.alpn_protocol(), None);
    assert_eq!(
        exporter_channel_binding(&server),
        Some(client_exporter(&client))
    );
}

#[test]
fn tls12_works_but_has_no_exporter_binding() {
    let dir = TempDir::new("tls12");
    let setup = load_or_create(&[self_signed_host("localhost", &[])], &dir.0).unwrap();
    let cert = leaf(&setup, None);
    let config = client_config(&[&cert], &[ALPN_XMPP_CLIENT], &[&rustls::version::TLS12]);
    let (_, server) = connect(&setup.direct_config(), &config, "localhost").unwrap();
    assert_eq!(server.protocol_version(), Some(ProtocolVersion::TLSv1_2));
    assert_eq!(server.alpn_protocol(), Some(ALPN_XMPP_CLIENT));
    assert_eq!(exporter_channel_binding(&server), None);
}

#[test]
fn unfinished_handshake_has_no_binding() {
    let dir = TempDir::new("unfinished");
    let setup = load_or_create(&[self_signed_host("localhost", &[])], &dir.0).unwrap();
    let server = ServerConnection::new(setup.starttls_config()).unwrap();
    assert_eq!(exporter_channel_binding(&server), None);
}

fn certificate_valid(
    names: &[&str],
    not_before: (i32, u8, u8),
    not_after: (i32, u8, u8),
) -> CertificateDer<'static> {
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
    params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
    let key = rcgen::KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().der().clone()
}

fn at(year: i64, month: i64, day: i64) -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        (days_from_civil(year, month, day) * 86_400) as u64,
    ))
}

#[test]
fn validity_is_read_from_der() {
    // UTCTime before 2050, GeneralizedTime from 2050 on.
    let cert = certificate_valid(&["example.org"], (2000, 1, 1), (2049, 12, 31));
    assert_eq!(
        validity(&cert),
        Some(Validity {
            not_before: 946_684_800,
            not_after: 2_524_521_600
        })
    );
    let cert = certificate_valid(&["example.org"], (1975, 1, 1), (4096, 1, 1));
    let found = validity(&cert).unwrap();
    assert_eq!(format_date(found.not_before), "1975-01-01");
    assert_eq!(format_date(found.not_after), "4096-01-01");
    assert_eq!(validity(b"garbage"), None);
    assert_eq!(validity(&[]), None);
    assert_eq!(validity(&cert[..cert.len() / 2]), None);
}

#[test]
fn dates_round_trip() {
    for (y, m, d) in [
        (1970, 1, 1),
        (2000, 2, 29),
        (2024, 12, 31),
        (2100, 3, 1),
        (9999, 12, 31),
    ] {
        let secs = u64::try_from(days_from_civil(y, m, d) * 86_400).unwrap();
        assert_eq!(format_date(secs), format!("{y:04}-{m:02}-{d:02}"));
    }
    assert_eq!(days_from_civil(1970, 1, 1), 0);
}

#[test]
fn warnings_for_configured_certificates() {
    let good = certificate_valid(
        &["example.org", "*.example.org"],
        (2020, 1, 1),
        (2030, 1, 1),
    );
    assert!(certificate_warnings("example.org", &good, at(2025, 6, 1)).is_empty());
    assert!(certificate_warnings("chat.example.org", &good, at(2025, 6, 1)).is_empty());
    assert_eq!(
        certificate_warnings("example.com", &good, at(2025, 6, 1)),
        vec!["the certificate does not cover example.com, so clients will reject it"]
    );
    assert_eq!(
        certificate_warnings("example.org", &good, at(2031, 1, 1)),
        vec!["the certificate expired on 2030-01-01, so clients will reject it"]
    );
    assert_eq!(
        certificate_warnings("example.org", &good, at(2029, 12, 25)),
        vec!["the certificate expires on 2030-01-01; is its renewal working?"]
    );
    assert_eq!(
        certificate_warnings("example.org", &good, at(2019, 1, 1)),
        vec!["the certificate is not valid before 2020-01-01; is the system clock right?"]
    );
}

#[test]
fn expired_self_signed_certificate_is_replaced() {
    let dir = TempDir::new("expired");
    let tls_dir = dir.0.join("tls");
    fs::create_dir_all(&tls_dir).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let old = params.self_signed(&key).unwrap();
    fs::write(tls_dir.join("localhost.crt"), old.pem()).unwrap();
    fs::write(tls_dir.join("localhost.key"), key.serialize_pem()).unwrap();
    let setup = load_or_create(&[self_signed_host("localhost", &[])], &dir.0).unwrap();
    assert_ne!(&leaf(&setup, None), old.der());
}
