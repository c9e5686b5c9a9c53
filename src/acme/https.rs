//! The edge of the ACME client: one HTTPS exchange per request, over
//! async-net and futures-rustls, trusting the system's roots plus the
//! `[acme] ca_file`. Each request opens a connection, sends
//! `Connection: close` and reads the answer to the end, within a time
//! limit and a size limit; [`super::wire`] parses it.

use std::sync::Arc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use rustls::RootCertStore;
use rustls::pki_types::ServerName;

use super::AcmeError;
use super::order::Request;
use super::wire::{self, Method, Response, Url};

/// Longest one exchange (connect, TLS, request, response) may take.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Client {
    connector: futures_rustls::TlsConnector,
}

impl Client {
    pub fn new(roots: Arc<RootCertStore>) -> Result<Client, AcmeError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| AcmeError::Key(format!("TLS client setup: {err}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Client {
            connector: futures_rustls::TlsConnector::from(Arc::new(config)),
        })
    }

    pub async fn exchange(&self, request: &Request) -> Result<Response, AcmeError> {
        let url = Url::parse(&request.url).ok_or_else(|| AcmeError::Malformed {
            what: "URL",
            detail: format!("{:?} is not an https URL", request.url),
        })?;
        let work = self.exchange_with(&url, request);
        let timeout = async {
            smol::Timer::after(EXCHANGE_TIMEOUT).await;
            Err(AcmeError::Timeout {
                url: request.url.clone(),
            })
        };
        futures_lite::future::or(work, timeout).await
    }

    async fn exchange_with(&self, url: &Url, request: &Request) -> Result<Response, AcmeError> {
        let failed = |detail: String| AcmeError::Connect {
            url: request.url.clone(),
            detail,
        };
        let name = ServerName::try_from(url.host.clone()).map_err(|err| failed(err.to_string()))?;
        // A name is resolved off the event loop (async-net's resolver runs
        // getaddrinfo on the blocking pool); an IP address is not looked up.
        let tcp = async_net::TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|err| failed(err.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let mut tls = self
            .connector
            .connect(name, tcp)
            .await
            .map_err(|err| failed(format!("TLS: {err}")))?;
        let bytes =
            wire::request_bytes(request.method, url, request.body.as_deref(), request.accept);
        tls.write_all(&bytes)
            .await
            .map_err(|err| failed(err.to_string()))?;
        tls.flush().await.map_err(|err| failed(err.to_string()))?;
        let mut received = Vec::new();
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            match tls.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => {
                    received.extend_from_slice(chunk.get(..n).unwrap_or_default());
                    if received.len() > wire::MAX_RESPONSE_BYTES {
                        return Err(AcmeError::Malformed {
                            what: "HTTP response",
                            detail: format!("longer than {} bytes", wire::MAX_RESPONSE_BYTES),
                        });
                    }
                }
                // A server that closes without close_notify: what arrived
                // is judged by its framing below.
                Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(err) => return Err(failed(err.to_string())),
            }
        }
        wire::parse_response(&received, request.method == Method::Head)?
            .ok_or_else(|| failed("the connection closed in the middle of the response".to_owned()))
    }
}
