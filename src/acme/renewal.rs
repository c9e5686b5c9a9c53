//! The renewal task: at start and then whenever a certificate falls due,
//! runs an [`Issuance`] per host over the HTTPS [`Client`], publishes its
//! challenges to the HTTP listener, stores the result and tells the TLS
//! layer to serve it (new connections get it; established ones keep
//! theirs). A failure is logged in one line and retried after a back-off
//! (1 h, doubling to 1 day, or the CA's `Retry-After` if longer); other
//! hosts go on meanwhile.

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::RootCertStore;

use super::AcmeError;
use super::https::Client;
use super::jws::AccountKey;
use super::order::{Issuance, Issued, Settings, Step};
use super::{schedule, storage};
use crate::config::{AcmeConfig, Config};
use crate::http::acme_challenge::Challenges;

/// Certificates are looked at again at least this often, so that files an
/// administrator removed or replaced are noticed.
const MAX_RECHECK: Duration = Duration::from_secs(12 * 60 * 60);
/// ... and at most this often, so no state of the files makes a busy loop.
const MIN_RECHECK: Duration = Duration::from_secs(2);
/// Wait between polls when the CA gives no `Retry-After`.
const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Polls of one authorization or order: with `POLL_INTERVAL`, minutes.
const MAX_POLLS: u32 = 90;

/// One host's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub domain: String,
    pub names: Vec<String>,
}

/// Everything the task needs; made by [`Renewal::from_config`].
pub struct Renewal {
    acme: AcmeConfig,
    data_dir: PathBuf,
    targets: Vec<Target>,
    challenges: Challenges,
    roots: Arc<RootCertStore>,
    /// Called after a certificate was stored: reloads the TLS certificates.
    on_installed: Box<dyn Fn()>,
}

/// The hosts ACME gets certificates for, with their names.
pub fn targets(config: &Config) -> Vec<Target> {
    config
        .hosts
        .iter()
        .filter(|host| storage::is_managed(host))
        .map(|host| Target {
            domain: host.domain.clone(),
            names: storage::names_for(host),
        })
        .collect()
}

impl Renewal {
    /// `None` when `[acme]` is off or no host needs a certificate.
    pub fn from_config(
        config: &Config,
        challenges: Challenges,
        roots: Arc<RootCertStore>,
        on_installed: Box<dyn Fn()>,
    ) -> Option<Renewal> {
        let acme = config.acme.clone()?;
        let targets = targets(config);
        if targets.is_empty() {
            log::warn!(
                "acme: no host needs a certificate (each has its own, or is localhost); [acme] does nothing"
            );
            return None;
        }
        Some(Renewal {
            acme,
            data_dir: config.data_dir.clone(),
            targets,
            challenges,
            roots,
            on_installed,
        })
    }

    pub async fn run(self) {
        let data_dir = self.data_dir.clone();
        let key = match smol::unblock(move || storage::load_or_create_account_key(&data_dir)).await
        {
            Ok(key) => Rc::new(key),
            Err(err) => {
                log::error!("acme: {err}; no certificates will be requested until a restart");
                return;
            }
        };
        let client = match Client::new(self.roots.clone()) {
            Ok(client) => client,
            Err(err) => {
                log::error!("acme: {err}");
                return;
            }
        };
        // Failures the CA saw (their back-off respects its rate limits),
        // and attempts in a row that did not reach it at all.
        let mut failures = vec![0u32; self.targets.len()];
        let mut unreachable = vec![0u32; self.targets.len()];
        let mut retry_at = vec![0u64; self.targets.len()];
        loop {
            let mut wake = unix_now() + MAX_RECHECK.as_secs();
            for (index, target) in self.targets.iter().enumerate() {
                let now = unix_now();
                if retry_at[index] > now {
                    wake = wake.min(retry_at[index]);
                    continue;
                }
                let reason = match self.due(target, now) {
                    Ok(at) => {
                        wake = wake.min(at);
                        continue;
                    }
                    Err(reason) => reason,
                };
                log::info!(
                    "acme: requesting a certificate for {} from {} ({reason})",
                    target.names.join(", "),
                    self.acme.directory
                );
                match self.renew(&client, &key, target).await {
                    Ok(()) => {
                        failures[index] = 0;
                        unreachable[index] = 0;
                        // Looked at again on the next round.
                        wake = wake.min(unix_now());
                    }
                    Err(err) => {
                        let wait = if err.is_unreachable() {
                            unreachable[index] = unreachable[index].saturating_add(1);
                            schedule::unreachable_backoff(unreachable[index])
                        } else {
                            unreachable[index] = 0;
                            failures[index] = failures[index].saturating_add(1);
                            schedule::backoff(failures[index], err.retry_after())
                        };
                        retry_at[index] = unix_now() + wait.as_secs();
                        wake = wake.min(retry_at[index]);
                        log::warn!(
                            "acme: no certificate for {}: {err}; next attempt in {}",
                            target.domain,
                            schedule::describe(wait)
                        );
                    }
                }
            }
            let sleep = Duration::from_secs(wake.saturating_sub(unix_now())).max(MIN_RECHECK);
            smol::Timer::after(sleep).await;
        }
    }

    /// `Ok(when)`: the stored certificate is good until that Unix time;
    /// `Err(why)`: a new one is needed now.
    fn due(&self, target: &Target, now: u64) -> Result<u64, String> {
        match storage::installed(&self.data_dir, &target.domain, &target.names) {
            Ok(None) => Err("none yet".to_owned()),
            Err(why) => Err(why),
            Ok(Some(installed)) if !installed.missing.is_empty() => Err(format!(
                "the stored one does not name {}",
                installed.missing.join(", ")
            )),
            Ok(Some(installed)) => {
                let at = schedule::renew_at(
                    installed.not_before,
                    installed.not_after,
                    self.acme.renew_days,
                );
                if at > now {
                    Ok(at)
                } else {
                    Err(format!(
                        "the stored one expires on {}",
                        crate::net::tls::format_date(installed.not_after)
                    ))
                }
            }
        }
    }

    async fn renew(
        &self,
        client: &Client,
        key: &Rc<AccountKey>,
        target: &Target,
    ) -> Result<(), AcmeError> {
        let settings = Settings {
            directory: self.acme.directory.clone(),
            email: self.acme.email.clone(),
            poll_interval: POLL_INTERVAL,
            max_polls: MAX_POLLS,
        };
        let issuance = Issuance::new(key.clone(), target.names.clone(), settings);
        let issued = issue(client, issuance, &self.challenges).await?;
        let (data_dir, domain) = (self.data_dir.clone(), target.domain.clone());
        smol::unblock(move || storage::save_certificate(&data_dir, &domain, &issued)).await?;
        // A CA that hands out a certificate already due would be asked
        // again at once: count that as a failure, with its back-off.
        if let Err(why) = self.due(target, unix_now()) {
            return Err(AcmeError::Protocol(format!(
                "the new certificate is unusable: {why}"
            )));
        }
        log::info!(
            "acme: stored a new certificate for {} in {}",
            target.names.join(", "),
            storage::dir(&self.data_dir).display()
        );
        (self.on_installed)();
        Ok(())
    }
}

/// Drives one issuance to its end; its challenges are published while it
/// runs and withdrawn after, whatever the outcome.
pub async fn issue(
    client: &Client,
    mut issuance: Issuance,
    challenges: &Challenges,
) -> Result<Issued, AcmeError> {
    let mut published = Vec::new();
    let mut step = issuance.start();
    let outcome = loop {
        match step {
            Step::Send(request) => {
                if !request.wait.is_zero() {
                    smol::Timer::after(request.wait).await;
                }
                if let Some((token, key_authorization)) = &request.publish {
                    if !challenges.publish(token, key_authorization) {
                        break Err(AcmeError::Protocol(
                            "too many challenges at once".to_owned(),
                        ));
                    }
                    published.push(token.clone());
                }
                match client.exchange(&request).await {
                    Ok(response) => step = issuance.on_response(response),
                    Err(err) => break Err(err),
                }
            }
            Step::Issued(issued) => break Ok(issued),
            Step::Failed(err) => break Err(err),
        }
    };
    for token in published {
        challenges.withdraw(&token);
    }
    outcome
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
