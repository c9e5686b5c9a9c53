//! TLS for the test client: the test servers' certificates are
//! self-signed, so by default any certificate is accepted (handshake
//! signatures are still checked); a test about which certificate the
//! server presents trusts exactly the ones it names instead.

use std::net::TcpStream;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
    StreamOwned, SupportedProtocolVersion,
};

pub const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
pub const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];

pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

#[derive(Debug)]
pub struct AcceptSelfSigned(pub Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptSelfSigned {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client handshake to `localhost` over `tcp` with `config`.
fn handshake(tcp: TcpStream, config: ClientConfig) -> TlsStream {
    let name = ServerName::try_from("localhost").expect("a valid server name");
    let conn = ClientConnection::new(Arc::new(config), name).expect("a TLS client connection");
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .expect("the TLS handshake completes");
    }
    tls
}

/// A handshake that accepts the server's self-signed certificate, with
/// the given protocol versions and ALPN protocols.
pub fn tls_handshake(
    tcp: TcpStream,
    versions: &[&'static SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> TlsStream {
    let provider = provider();
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .expect("the ring provider supports these TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptSelfSigned(provider)))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    handshake(tcp, config)
}

/// A handshake that verifies the server's certificate against `trusted`
/// (DER) only, as a client with those roots would.
pub fn tls_handshake_trusting(tcp: TcpStream, trusted: &[&[u8]]) -> TlsStream {
    let mut roots = RootCertStore::empty();
    for der in trusted {
        roots
            .add(CertificateDer::from(der.to_vec()))
            .expect("a usable root certificate");
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    handshake(tcp, config)
}

/// The leaf certificate (DER) the server presented.
pub fn peer_leaf(tls: &TlsStream) -> Vec<u8> {
    tls.conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .expect("the server presented a certificate")
}
