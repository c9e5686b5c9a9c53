//! Certificates without certbot: a built-in ACME client (RFC 8555) that
//! obtains and renews one certificate per host, naming the host and its
//! service domains, with the HTTP-01 challenge answered on the `http`
//! listener.
//!
//! - [`order`]: one issuance as a state machine without I/O;
//! - [`jws`]: the account key, request signatures and key authorizations;
//! - [`messages`], [`wire`]: the CA's JSON documents and HTTP responses;
//! - [`schedule`]: when to renew, and how long to back off after a failure;
//! - [`storage`]: the account key and the certificates in `DATA_DIR/acme/`;
//! - [`https`], [`renewal`]: the edge: the HTTPS client and the task that
//!   runs issuances and hands new certificates to the TLS layer.
//!
//! The HTTP listener answers the challenges from
//! [`crate::http::acme_challenge::Challenges`], which the renewal task fills.

pub mod https;
pub mod jws;
pub mod messages;
pub mod order;
pub mod renewal;
pub mod schedule;
pub mod storage;
pub mod wire;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use messages::Problem;
pub use storage::{installed_files, names_for, served};

/// Why an issuance (or part of it) failed; one line each, saying what to
/// do where there is something to do.
#[derive(Debug)]
pub enum AcmeError {
    /// Generating, reading or using a key.
    Key(String),
    /// A document or response that does not parse.
    Malformed {
        what: &'static str,
        detail: String,
    },
    /// The CA could not be reached.
    Connect {
        url: String,
        detail: String,
    },
    Timeout {
        url: String,
    },
    /// The CA answered an error status.
    Refused {
        step: &'static str,
        status: u16,
        problem: Problem,
    },
    RateLimited {
        problem: Problem,
        retry_after: Option<Duration>,
    },
    /// The CA broke the protocol (a missing header, an unexpected state).
    Protocol(String),
    /// The CA offered no HTTP-01 challenge for a name.
    NoHttpChallenge {
        name: String,
    },
    /// The CA could not validate a name.
    Validation {
        name: String,
        problem: Option<Problem>,
    },
    OrderFailed {
        problem: Option<Problem>,
    },
    TooManyPolls {
        what: &'static str,
    },
    Csr(String),
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl AcmeError {
    /// Whether the CA was not reached at all (no connection, no answer):
    /// such a failure is retried within minutes, not hours.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, AcmeError::Connect { .. } | AcmeError::Timeout { .. })
    }

    /// The wait the CA asked for, if it asked.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            AcmeError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl fmt::Display for AcmeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcmeError::Key(detail) => write!(f, "ACME key: {detail}"),
            AcmeError::Malformed { what, detail } => {
                write!(f, "the CA sent an unreadable {what}: {detail}")
            }
            AcmeError::Connect { url, detail } => write!(
                f,
                "cannot reach the ACME server at {url}: {detail} (check [acme] directory, the network, and ca_file for a test CA)"
            ),
            AcmeError::Timeout { url } => {
                write!(f, "the ACME server at {url} did not answer in time")
            }
            AcmeError::Refused {
                step,
                status,
                problem,
            } => write!(f, "the CA refused {step} (HTTP {status}): {problem}"),
            AcmeError::RateLimited { problem, .. } => {
                write!(f, "the CA's rate limit was reached: {problem}")
            }
            AcmeError::Protocol(detail) => write!(f, "the CA broke the ACME protocol: {detail}"),
            AcmeError::NoHttpChallenge { name } => write!(
                f,
                "the CA offers no HTTP-01 challenge for {name}; Perch answers only that one"
            ),
            AcmeError::Validation { name, problem } => {
                write!(
                    f,
                    "the CA could not validate {name} over HTTP (http://{name}/.well-known/acme-challenge/ must reach Perch's http listener on port 80)"
                )?;
                if let Some(problem) = problem {
                    write!(f, ": {problem}")?;
                }
                Ok(())
            }
            AcmeError::OrderFailed { problem } => {
                f.write_str("the CA marked the order invalid")?;
                if let Some(problem) = problem {
                    write!(f, ": {problem}")?;
                }
                Ok(())
            }
            AcmeError::TooManyPolls { what } => {
                write!(f, "the CA did not finish {what} in time")
            }
            AcmeError::Csr(detail) => write!(f, "cannot make the certificate request: {detail}"),
            AcmeError::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for AcmeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AcmeError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
