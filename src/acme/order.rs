//! One certificate's issuance (RFC 8555 §7), as a state machine without
//! I/O: account → order → authorizations → HTTP-01 challenges → finalize
//! with a CSR → poll → download the chain. [`Issuance::start`] gives the
//! first request; each response goes to [`Issuance::on_response`], which
//! gives the next [`Step`]. The caller sends requests (after their
//! `wait`), publishes challenge answers before sending the request that
//! carries them, and stops at `Issued` or `Failed`.
//!
//! Nonces: every response's `Replay-Nonce` is kept for the next POST; when
//! none is left, one is fetched from `newNonce` first. A `badNonce` error
//! re-sends the same request with a fresh nonce, a few times (§6.5).

use std::rc::Rc;
use std::time::Duration;

use serde_json::{Value, json};

use super::AcmeError;
use super::jws::{AccountKey, Signer, base64url};
use super::messages::{self, Directory, Order, Status};
use super::wire::{Method, Response};

/// Re-sends after `badNonce` before giving up.
const MAX_BAD_NONCE_RETRIES: u32 = 5;

const ACCEPT_JSON: &str = "application/json";
const ACCEPT_PEM: &str = "application/pem-certificate-chain";

/// How one issuance talks to its CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub directory: String,
    /// `mailto:` contact for the account, if any.
    pub email: Option<String>,
    /// Wait between polls when the CA gives no `Retry-After`.
    pub poll_interval: Duration,
    /// Polls of one authorization or of the order before giving up.
    pub max_polls: u32,
}

/// One HTTP exchange to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub url: String,
    /// A signed JWS for POSTs.
    pub body: Option<Vec<u8>>,
    pub accept: &'static str,
    /// Wait this long before sending (polling, `Retry-After`).
    pub wait: Duration,
    /// Serve `(token, key authorization)` at
    /// `/.well-known/acme-challenge/TOKEN` before sending.
    pub publish: Option<(String, String)>,
}

/// A certificate and its new private key, both PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub chain_pem: String,
    pub key_pem: String,
}

#[derive(Debug)]
pub enum Step {
    Send(Request),
    Issued(Issued),
    Failed(AcmeError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Directory,
    Account,
    NewOrder,
    Authorization,
    Challenge,
    PollAuthorization,
    Finalize,
    PollOrder,
    Certificate,
    Over,
}

impl Phase {
    fn describe(self) -> &'static str {
        match self {
            Phase::Directory => "reading the directory",
            Phase::Account => "registering the account",
            Phase::NewOrder => "creating the order",
            Phase::Authorization | Phase::PollAuthorization => "reading an authorization",
            Phase::Challenge => "starting the HTTP-01 challenge",
            Phase::Finalize => "finalizing the order",
            Phase::PollOrder => "waiting for the certificate",
            Phase::Certificate => "downloading the certificate",
            Phase::Over => "after the end",
        }
    }
}

/// A POST waiting for a nonce, kept to be re-sent after `badNonce`.
#[derive(Debug, Clone)]
struct Post {
    url: String,
    /// `None`: POST-as-GET.
    payload: Option<Value>,
    jwk: bool,
    accept: &'static str,
    wait: Duration,
    publish: Option<(String, String)>,
}

pub struct Issuance {
    key: Rc<AccountKey>,
    names: Vec<String>,
    settings: Settings,
    phase: Phase,
    directory: Option<Directory>,
    nonce: Option<String>,
    fetching_nonce: bool,
    pending: Option<Post>,
    bad_nonces: u32,
    account_url: Option<String>,
    order_url: Option<String>,
    finalize_url: Option<String>,
    authorizations: Vec<String>,
    next_authorization: usize,
    identifier: String,
    polls: u32,
    certificate_key: Option<rcgen::KeyPair>,
}

impl Issuance {
    /// An issuance of one certificate naming all of `names` (the first is
    /// the subject).
    pub fn new(key: Rc<AccountKey>, names: Vec<String>, settings: Settings) -> Issuance {
        Issuance {
            key,
            names,
            settings,
            phase: Phase::Directory,
            directory: None,
            nonce: None,
            fetching_nonce: false,
            pending: None,
            bad_nonces: 0,
            account_url: None,
            order_url: None,
            finalize_url: None,
            authorizations: Vec::new(),
            next_authorization: 0,
            identifier: String::new(),
            polls: 0,
            certificate_key: None,
        }
    }

    pub fn start(&mut self) -> Step {
        self.phase = Phase::Directory;
        Step::Send(Request {
            method: Method::Get,
            url: self.settings.directory.clone(),
            body: None,
            accept: ACCEPT_JSON,
            wait: Duration::ZERO,
            publish: None,
        })
    }

    pub fn on_response(&mut self, mut response: Response) -> Step {
        if let Some(nonce) = response.replay_nonce.take() {
            self.nonce = Some(nonce);
        }
        if self.fetching_nonce {
            self.fetching_nonce = false;
            if self.nonce.is_none() {
                return self.fail(AcmeError::Protocol(format!(
                    "newNonce answered {} without a Replay-Nonce",
                    response.status
                )));
            }
            return self.send_pending();
        }
        if response.status >= 400 {
            return self.on_error(&response);
        }
        self.bad_nonces = 0;
        let step = match self.phase {
            Phase::Directory => self.on_directory(&response),
            Phase::Account => self.on_account(&response),
            Phase::NewOrder => self.on_new_order(&response),
            Phase::Authorization => self.on_authorization(&response),
            Phase::Challenge => self.on_challenge(&response),
            Phase::PollAuthorization => self.on_poll_authorization(&response),
            Phase::Finalize | Phase::PollOrder => self.on_order(&response),
            Phase::Certificate => self.on_certificate(&response),
            Phase::Over => Err(AcmeError::Protocol("a response after the end".to_owned())),
        };
        step.unwrap_or_else(|err| self.fail(err))
    }

    fn fail(&mut self, err: AcmeError) -> Step {
        self.phase = Phase::Over;
        Step::Failed(err)
    }

    fn on_error(&mut self, response: &Response) -> Step {
        let problem = messages::parse_problem(&response.body);
        if problem.is("badNonce")
            && self.pending.is_some()
            && self.bad_nonces < MAX_BAD_NONCE_RETRIES
        {
            self.bad_nonces += 1;
            return self.send_pending();
        }
        let step = self.phase.describe();
        if response.status == 429 || problem.is("rateLimited") {
            return self.fail(AcmeError::RateLimited {
                problem,
                retry_after: response.retry_after,
            });
        }
        self.fail(AcmeError::Refused {
            step,
            status: response.status,
            problem,
        })
    }

    /// Queues a POST and sends it, or first fetches a nonce for it.
    fn post(&mut self, post: Post) -> Step {
        self.pending = Some(post);
        self.send_pending()
    }

    fn post_as_get(&mut self, url: String, accept: &'static str, wait: Duration) -> Step {
        self.post(Post {
            url,
            payload: None,
            jwk: false,
            accept,
            wait,
            publish: None,
        })
    }

    fn send_pending(&mut self) -> Step {
        let Some(post) = self.pending.clone() else {
            return self.fail(AcmeError::Protocol("nothing to send".to_owned()));
        };
        let Some(nonce) = self.nonce.take() else {
            let Some(directory) = &self.directory else {
                return self.fail(AcmeError::Protocol("no directory".to_owned()));
            };
            self.fetching_nonce = true;
            return Step::Send(Request {
                method: Method::Head,
                url: directory.new_nonce.clone(),
                body: None,
                accept: "*/*",
                wait: post.wait,
                publish: None,
            });
        };
        let signer = match (&self.account_url, post.jwk) {
            (Some(kid), false) => Signer::Kid(kid),
            _ => Signer::Jwk,
        };
        match self
            .key
            .sign(&post.url, &nonce, signer, post.payload.as_ref())
        {
            Ok(body) => Step::Send(Request {
                method: Method::Post,
                url: post.url,
                body: Some(body),
                accept: post.accept,
                wait: post.wait,
                publish: post.publish,
            }),
            Err(err) => self.fail(err),
        }
    }

    fn poll_wait(
        &mut self,
        response: &Response,
        what: &'static str,
    ) -> Result<Duration, AcmeError> {
        self.polls += 1;
        if self.polls > self.settings.max_polls {
            return Err(AcmeError::TooManyPolls { what });
        }
        Ok(response.retry_after.unwrap_or(self.settings.poll_interval))
    }

    fn on_directory(&mut self, response: &Response) -> Result<Step, AcmeError> {
        self.directory = Some(messages::parse_directory(&response.body)?);
        let new_account = self
            .directory
            .as_ref()
            .map(|d| d.new_account.clone())
            .unwrap_or_default();
        let mut payload = json!({ "termsOfServiceAgreed": true });
        if let Some(email) = &self.settings.email {
            payload["contact"] = json!([format!("mailto:{email}")]);
        }
        self.phase = Phase::Account;
        Ok(self.post(Post {
            url: new_account,
            payload: Some(payload),
            jwk: true,
            accept: ACCEPT_JSON,
            wait: Duration::ZERO,
            publish: None,
        }))
    }

    fn on_account(&mut self, response: &Response) -> Result<Step, AcmeError> {
        let location = required_location(response, "newAccount")?;
        self.account_url = Some(location);
        let identifiers: Vec<Value> = self
            .names
            .iter()
            .map(|name| json!({ "type": "dns", "value": name }))
            .collect();
        let new_order = self
            .directory
            .as_ref()
            .map(|d| d.new_order.clone())
            .unwrap_or_default();
        self.phase = Phase::NewOrder;
        Ok(self.post(Post {
            url: new_order,
            payload: Some(json!({ "identifiers": identifiers })),
            jwk: false,
            accept: ACCEPT_JSON,
            wait: Duration::ZERO,
            publish: None,
        }))
    }

    fn on_new_order(&mut self, response: &Response) -> Result<Step, AcmeError> {
        self.order_url = Some(required_location(response, "newOrder")?);
        let order = messages::parse_order(&response.body)?;
        if order.authorizations.len() > self.names.len() {
            return Err(AcmeError::Protocol(format!(
                "the order has {} authorizations for {} names",
                order.authorizations.len(),
                self.names.len()
            )));
        }
        self.authorizations = order.authorizations.clone();
        self.next_authorization = 0;
        self.after_order(order, response)
    }

    /// Where an order's status leads (after creation, finalizing or a poll).
    fn after_order(&mut self, order: Order, response: &Response) -> Result<Step, AcmeError> {
        self.finalize_url = Some(order.finalize.clone());
        match order.status {
            Status::Pending if self.certificate_key.is_none() => Ok(self.next_authorization()),
            Status::Ready if self.certificate_key.is_none() => self.finalize(),
            Status::Pending | Status::Ready | Status::Processing => {
                let wait = self.poll_wait(response, "the order")?;
                let url = self.order_url.clone().unwrap_or_default();
                self.phase = Phase::PollOrder;
                Ok(self.post_as_get(url, ACCEPT_JSON, wait))
            }
            Status::Valid => {
                let url = order.certificate.ok_or_else(|| {
                    AcmeError::Protocol("a valid order without a certificate URL".to_owned())
                })?;
                self.phase = Phase::Certificate;
                Ok(self.post_as_get(url, ACCEPT_PEM, Duration::ZERO))
            }
            Status::Invalid | Status::Ended => Err(AcmeError::OrderFailed {
                problem: order.error,
            }),
        }
    }

    fn next_authorization(&mut self) -> Step {
        match self.authorizations.get(self.next_authorization).cloned() {
            Some(url) => {
                self.phase = Phase::Authorization;
                self.polls = 0;
                self.post_as_get(url, ACCEPT_JSON, Duration::ZERO)
            }
            None => self.finalize().unwrap_or_else(|err| self.fail(err)),
        }
    }

    fn on_authorization(&mut self, response: &Response) -> Result<Step, AcmeError> {
        let authz = messages::parse_authorization(&response.body)?;
        self.identifier = authz.identifier.clone();
        if !self
            .names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(&authz.identifier))
        {
            return Err(AcmeError::Protocol(format!(
                "an authorization for {}, which was not asked for",
                authz.identifier
            )));
        }
        match authz.status {
            Status::Valid => {
                self.next_authorization += 1;
                Ok(self.next_authorization())
            }
            Status::Pending => {
                let challenge = authz.http01.ok_or_else(|| AcmeError::NoHttpChallenge {
                    name: authz.identifier.clone(),
                })?;
                if challenge.status == Status::Processing {
                    return self.poll_authorization(response);
                }
                let key_authorization = self.key.key_authorization(&challenge.token);
                self.phase = Phase::Challenge;
                Ok(self.post(Post {
                    url: challenge.url,
                    payload: Some(json!({})),
                    jwk: false,
                    accept: ACCEPT_JSON,
                    wait: Duration::ZERO,
                    publish: Some((challenge.token, key_authorization)),
                }))
            }
            _ => Err(AcmeError::Validation {
                name: authz.identifier,
                problem: authz.http01.and_then(|c| c.error),
            }),
        }
    }

    fn on_challenge(&mut self, response: &Response) -> Result<Step, AcmeError> {
        let challenge = messages::parse_challenge(&response.body)?;
        if challenge.status == Status::Invalid {
            return Err(AcmeError::Validation {
                name: self.identifier.clone(),
                problem: challenge.error,
            });
        }
        self.poll_authorization(response)
    }

    fn poll_authorization(&mut self, response: &Response) -> Result<Step, AcmeError> {
        let wait = self.poll_wait(response, "an authorization")?;
        let url = self
            .authorizations
            .get(self.next_authorization)
            .cloned()
            .unwrap_or_default();
        self.phase = Phase::PollAuthorization;
        Ok(self.post_as_get(url, ACCEPT_JSON, wait))
    }

    fn on_poll_authorization(&mut self, response: &Response) -> Result<Step, AcmeError> {
        let authz = messages::parse_authorization(&response.body)?;
        match authz.status {
            Status::Valid => {
                self.next_authorization += 1;
                Ok(self.next_authorization())
            }
            Status::Pending | Status::Processing => self.poll_authorization(response),
            _ => Err(AcmeError::Validation {
                name: authz.identifier,
                problem: authz.http01.and_then(|c| c.error),
            }),
        }
    }

    fn finalize(&mut self) -> Result<Step, AcmeError> {
        let csr_error = |err: rcgen::Error| AcmeError::Csr(err.to_string());
        let key =
            rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(csr_error)?;
        let mut params = rcgen::CertificateParams::new(self.names.clone()).map_err(csr_error)?;
        let mut subject = rcgen::DistinguishedName::new();
        subject.push(
            rcgen::DnType::CommonName,
            self.names.first().cloned().unwrap_or_default(),
        );
        params.distinguished_name = subject;
        let csr = params.serialize_request(&key).map_err(csr_error)?;
        self.certificate_key = Some(key);
        let url = self
            .finalize_url
            .clone()
            .ok_or_else(|| AcmeError::Protocol("no finalize URL".to_owned()))?;
        self.phase = Phase::Finalize;
        self.polls = 0;
        Ok(self.post(Post {
            url,
            payload: Some(json!({ "csr": base64url(csr.der()) })),
            jwk: false,
            accept: ACCEPT_JSON,
            wait: Duration::ZERO,
            publish: None,
        }))
    }

    fn on_order(&mut self, response: &Response) -> Result<Step, AcmeError> {
        let order = messages::parse_order(&response.body)?;
        self.after_order(order, response)
    }

    fn on_certificate(&mut self, response: &Response) -> Result<Step, AcmeError> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let text = std::str::from_utf8(&response.body)
            .map_err(|_| AcmeError::Protocol("the certificate chain is not text".to_owned()))?;
        let count = CertificateDer::pem_slice_iter(text.as_bytes())
            .map(|c| c.map(|_| ()))
            .collect::<Result<Vec<()>, _>>()
            .map_err(|err| AcmeError::Protocol(format!("the certificate chain is not PEM: {err}")))?
            .len();
        if count == 0 {
            return Err(AcmeError::Protocol(
                "the certificate chain is empty".to_owned(),
            ));
        }
        let key = self
            .certificate_key
            .take()
            .ok_or_else(|| AcmeError::Protocol("a certificate before finalizing".to_owned()))?;
        self.phase = Phase::Over;
        Ok(Step::Issued(Issued {
            chain_pem: text.to_owned(),
            key_pem: key.serialize_pem(),
        }))
    }
}

fn required_location(response: &Response, what: &str) -> Result<String, AcmeError> {
    response
        .location
        .clone()
        .filter(|l| super::wire::Url::parse(l).is_some())
        .ok_or_else(|| AcmeError::Protocol(format!("{what} answered without a usable Location")))
}

#[cfg(test)]
#[path = "order_tests.rs"]
mod tests;
