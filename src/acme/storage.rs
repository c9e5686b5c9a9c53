//! What ACME keeps in the data directory, in `DATA_DIR/acme/`:
//! `account.key` (the account's P-256 key, PKCS#8 PEM, mode 0600) and, per
//! host, `DOMAIN.crt` (the chain, leaf first) and `DOMAIN.key` (mode
//! 0600). Files are written whole: a temporary file, fsync, rename, then
//! an fsync of the directory, so a crash leaves the old file or the new.
//! A crash between the two renames of a renewal can leave a key that does
//! not match the certificate; such a pair counts as absent (the
//! self-signed certificate is served) and is replaced at once.
//!
//! Plain files rather than redb: the TLS layer and `perch check` read
//! certificates as files already, and an administrator can copy them.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::ParsedCertificate;

use super::AcmeError;
use super::jws::AccountKey;
use super::order::Issued;
use crate::config::{Config, HostConfig};

pub const DIR: &str = "acme";
const ACCOUNT_KEY: &str = "account.key";

pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join(DIR)
}

/// Where a host's ACME certificate and key are kept.
pub fn certificate_paths(data_dir: &Path, domain: &str) -> (PathBuf, PathBuf) {
    let dir = dir(data_dir);
    (
        dir.join(format!("{domain}.crt")),
        dir.join(format!("{domain}.key")),
    )
}

/// Whether ACME gets a certificate for `host`: it has none configured, and
/// its domain can have a public one (not `localhost`, RFC 6761).
pub fn is_managed(host: &HostConfig) -> bool {
    host.certificate_files().is_none() && is_public_name(&host.domain)
}

fn is_public_name(name: &str) -> bool {
    name != "localhost"
        && !name.ends_with(".localhost")
        && name.contains('.')
        && name.parse::<std::net::IpAddr>().is_err()
}

/// The names one host's certificate covers: the host, then its chat,
/// publish-subscribe and upload domains (each once, public names only).
pub fn names_for(host: &HostConfig) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let services = [&host.muc, &host.pubsub, &host.upload];
    let candidates = std::iter::once(Some(&host.domain)).chain(services.iter().map(|s| s.as_ref()));
    for name in candidates.flatten() {
        let name = name.to_ascii_lowercase();
        if is_public_name(&name) && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// The ACME certificate and key files of `domain`, when `[acme]` is on,
/// the host has no configured certificate, and a usable pair (the key
/// matches) is stored: what the TLS layer serves instead of the
/// self-signed certificate.
pub fn installed_files(config: &Config, domain: &str) -> Option<(PathBuf, PathBuf)> {
    config.acme.as_ref()?;
    let host = config.host(domain)?;
    if !is_managed(host) {
        return None;
    }
    let (certificate, key) = certificate_paths(&config.data_dir, domain);
    crate::net::tls::check_files(domain, &certificate, &key).ok()?;
    Some((certificate, key))
}

/// What the TLS layer serves for `host` from ACME: the stored pair, and
/// the names besides the domain it answers for (SNI), which are the
/// certificate's service names.
pub fn served(config: &Config, host: &HostConfig) -> Option<((PathBuf, PathBuf), Vec<String>)> {
    let files = installed_files(config, &host.domain)?;
    let names = names_for(host)
        .into_iter()
        .filter(|n| *n != host.domain)
        .collect();
    Some((files, names))
}

/// A stored certificate as the renewal sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub not_before: u64,
    pub not_after: u64,
    /// Names the certificate should cover but does not (the configuration
    /// gained a service since it was issued).
    pub missing: Vec<String>,
}

/// The stored certificate of `domain`: `Ok(None)` when there is none yet,
/// `Err(why)` when it is unusable (so a new one is needed).
pub fn installed(
    data_dir: &Path,
    domain: &str,
    names: &[String],
) -> Result<Option<Installed>, String> {
    let (certificate, key) = certificate_paths(data_dir, domain);
    if !certificate.exists() {
        return Ok(None);
    }
    crate::net::tls::check_files(domain, &certificate, &key).map_err(|err| err.to_string())?;
    let bytes =
        fs::read(&certificate).map_err(|err| format!("{}: {err}", certificate.display()))?;
    let leaf = CertificateDer::pem_slice_iter(&bytes)
        .next()
        .and_then(Result::ok)
        .ok_or_else(|| format!("{} holds no certificate", certificate.display()))?;
    let (not_before, not_after) = crate::net::tls::validity_period(&leaf)
        .ok_or_else(|| format!("the validity of {} cannot be read", certificate.display()))?;
    let parsed = ParsedCertificate::try_from(&leaf)
        .map_err(|err| format!("{} cannot be parsed: {err}", certificate.display()))?;
    let missing = names
        .iter()
        .filter(|name| {
            ServerName::try_from(name.as_str())
                .map(|server_name| {
                    rustls::client::verify_server_name(&parsed, &server_name).is_err()
                })
                .unwrap_or(true)
        })
        .cloned()
        .collect();
    Ok(Some(Installed {
        not_before,
        not_after,
        missing,
    }))
}

/// Reads the account key, or creates and stores one. Blocking (file I/O).
pub fn load_or_create_account_key(data_dir: &Path) -> Result<AccountKey, AcmeError> {
    let path = dir(data_dir).join(ACCOUNT_KEY);
    match fs::read(&path) {
        Ok(bytes) => {
            let der = match PrivateKeyDer::from_pem_slice(&bytes) {
                Ok(PrivateKeyDer::Pkcs8(der)) => der,
                _ => {
                    return Err(AcmeError::Key(format!(
                        "{} is not a PKCS#8 PEM key; move it away to have a new account created",
                        path.display()
                    )));
                }
            };
            AccountKey::from_pkcs8(der.secret_pkcs8_der())
                .map_err(|err| AcmeError::Key(format!("{}: {err}", path.display())))
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .map_err(|err| AcmeError::Key(err.to_string()))?;
            let key = AccountKey::from_pkcs8(&pair.serialize_der())?;
            make_dir(data_dir)?;
            write_atomically(&path, pair.serialize_pem().as_bytes(), 0o600)?;
            sync_dir(&dir(data_dir))?;
            log::info!("acme: created the account key {}", path.display());
            Ok(key)
        }
        Err(source) => Err(AcmeError::Io { path, source }),
    }
}

/// Stores a new certificate and key for `domain`. Blocking (file I/O).
pub fn save_certificate(data_dir: &Path, domain: &str, issued: &Issued) -> Result<(), AcmeError> {
    make_dir(data_dir)?;
    let (certificate, key) = certificate_paths(data_dir, domain);
    write_atomically(&key, issued.key_pem.as_bytes(), 0o600)?;
    write_atomically(&certificate, issued.chain_pem.as_bytes(), 0o644)?;
    sync_dir(&dir(data_dir))
}

fn make_dir(data_dir: &Path) -> Result<(), AcmeError> {
    let dir = dir(data_dir);
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|source| AcmeError::Io { path: dir, source })
}

fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), AcmeError> {
    crate::file_modes::write_atomically(path, contents, mode).map_err(|source| AcmeError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Makes the renames in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), AcmeError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| AcmeError::Io {
            path: dir.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;
    use std::os::unix::fs::PermissionsExt;

    fn host(domain: &str) -> HostConfig {
        HostConfig {
            domain: domain.to_owned(),
            certificate: None,
            key: None,
            muc: Some(format!("conference.{domain}")),
            pubsub: Some(format!("pubsub.{domain}")),
            upload: None,
            allow_mismatched_certificate: false,
        }
    }

    fn issue(names: &[&str]) -> Issued {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        let cert = params.self_signed(&key).expect("cert");
        Issued {
            chain_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    #[test]
    fn which_hosts_and_names() {
        assert_eq!(
            names_for(&host("Example.org")),
            vec![
                "example.org",
                "conference.example.org",
                "pubsub.example.org"
            ]
        );
        assert!(is_managed(&host("example.org")));
        assert!(!is_managed(&host("localhost")));
        assert!(!is_managed(&host("chat.localhost")));
        assert!(!is_managed(&host("127.0.0.1")));
        let mut configured = host("example.org");
        configured.certificate = Some("/c".into());
        configured.key = Some("/k".into());
        assert!(!is_managed(&configured));
        assert_eq!(names_for(&host("localhost")), Vec::<String>::new());
    }

    #[test]
    fn account_key_is_created_once_and_private() {
        let dir = TempDir::new("acme-account");
        let first = load_or_create_account_key(dir.path()).expect("created");
        let path = dir.path().join("acme/account.key");
        let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = load_or_create_account_key(dir.path()).expect("read back");
        assert_eq!(first.thumbprint(), again.thumbprint());
        fs::write(&path, "garbage").expect("write");
        let err = load_or_create_account_key(dir.path()).unwrap_err();
        assert!(err.to_string().contains("move it away"), "{err}");
    }

    #[test]
    fn certificates_are_stored_checked_and_replaced() {
        let dir = TempDir::new("acme-store");
        let names: Vec<String> = vec!["example.org".into(), "conference.example.org".into()];
        assert_eq!(installed(dir.path(), "example.org", &names), Ok(None));
        save_certificate(dir.path(), "example.org", &issue(&["example.org"])).expect("saved");
        let (crt, key) = certificate_paths(dir.path(), "example.org");
        assert_eq!(
            fs::metadata(&key).expect("key").permissions().mode() & 0o777,
            0o600
        );
        let found = installed(dir.path(), "example.org", &names)
            .expect("usable")
            .expect("there");
        assert_eq!(found.missing, vec!["conference.example.org".to_string()]);
        assert!(found.not_after > found.not_before);
        save_certificate(
            dir.path(),
            "example.org",
            &issue(&["example.org", "conference.example.org"]),
        )
        .expect("replaced");
        let found = installed(dir.path(), "example.org", &names)
            .expect("usable")
            .expect("there");
        assert!(found.missing.is_empty());
        // A key from another pair (a crash between the renames) is unusable.
        let other = issue(&["example.org"]);
        fs::write(&key, other.key_pem).expect("write");
        assert!(installed(dir.path(), "example.org", &names).is_err());
        assert!(crt.exists());
        assert!(!dir.path().join("acme/example.org.crt.tmp").exists());
    }

    #[test]
    fn installed_files_only_with_acme_on() {
        let dir = TempDir::new("acme-installed");
        let text = format!(
            "data_dir = {:?}\n[[host]]\ndomain = \"example.org\"\n",
            dir.path()
        );
        let off = Config::from_toml_str(&text, "t").expect("config");
        let on = Config::from_toml_str(&format!("{text}[acme]\n"), "t").expect("config");
        assert_eq!(
            installed_files(&on, "example.org"),
            None,
            "nothing stored yet"
        );
        save_certificate(dir.path(), "example.org", &issue(&["example.org"])).expect("saved");
        assert_eq!(installed_files(&off, "example.org"), None);
        assert_eq!(
            installed_files(&on, "example.org"),
            Some(certificate_paths(dir.path(), "example.org"))
        );
        assert_eq!(installed_files(&on, "other.org"), None);
    }
}
