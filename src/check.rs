//! `perch check`: what a configuration would run, and what is wrong with
//! it, without starting anything or creating any file.

use std::path::Path;

use crate::config::{Config, HostConfig};
use crate::net::tls;

/// What `perch check` prints: `lines` on stdout; `warnings` on stderr
/// without failing (exit 0); `errors` on stderr, failing with exit 2.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub lines: Vec<String>,
    pub warnings: Vec<String>,
    pub errors: Vec<String>,
}

/// Checks `config`: certificates (configured or self-signed), listeners,
/// the data directory's permissions and risky settings.
pub fn check(config: &Config) -> Report {
    let mut report = Report::default();
    for host in &config.hosts {
        let muc = host.muc.as_deref().unwrap_or("disabled");
        let pubsub = host.pubsub.as_deref().unwrap_or("disabled");
        report.lines.push(format!(
            "host {} (chat rooms: {muc}, pubsub: {pubsub})",
            host.domain
        ));
        match host.certificate_files() {
            Some((cert, key)) => configured_certificate(host, cert, key, &mut report),
            None if config.acme.is_some() && crate::acme::storage::is_managed(host) => {
                acme_certificate(host, config, &mut report)
            }
            None => self_signed_certificate(host, &config.data_dir, &mut report),
        }
    }
    for l in &config.listeners {
        report
            .lines
            .push(format!("listen {} on {}", l.kind.describe(), l.address));
    }
    report.lines.push(format!(
        "data: {}",
        config.data_dir.join(crate::config::DB_FILE).display()
    ));
    if !config.admins.is_empty() {
        report
            .lines
            .push(format!("admins: {}", config.admins.join(", ")));
    }
    report.lines.push(format!(
        "in-band registration: {}",
        if config.registration.allow {
            "open"
        } else {
            "off"
        }
    ));
    for service in &config.external_services {
        let port = service.port.map(|p| format!(":{p}")).unwrap_or_default();
        report.lines.push(format!(
            "external service {} {}{port}",
            service.kind, service.host
        ));
    }
    if config.c2s.allow_plaintext_auth && !config.c2s.require_encryption {
        report.warnings.push(
            "c2s: require_encryption = false with allow_plaintext_auth = true lets passwords cross the network unencrypted; keep it to tests on one machine and set require_encryption = true otherwise"
                .to_string(),
        );
    }
    acme_listener(config, &mut report);
    federation(config, &mut report);
    data_dir_permissions(&config.data_dir, &mut report);
    report
}

/// What federation would do, and the settings that defeat it.
fn federation(config: &Config, report: &mut Report) {
    let s2s = &config.s2s;
    if !s2s.enabled {
        report.lines.push("federation: off".to_string());
        return;
    }
    let auth = if s2s.secure_auth {
        "valid certificates only"
    } else {
        "certificates or dialback"
    };
    let encryption = if s2s.require_encryption {
        "encryption required"
    } else {
        "encryption optional"
    };
    report.lines.push(format!(
        "federation: on ({encryption}; peers prove their domain with {auth})"
    ));
    if !s2s.require_encryption {
        report.warnings.push(
            "s2s: require_encryption = false lets messages to other servers cross the network unencrypted; list old servers in insecure_domains instead"
                .to_string(),
        );
    }
    for route in &s2s.routes {
        report.lines.push(format!(
            "s2s route {} → {}{}",
            route.domain,
            route.address,
            if route.direct_tls {
                " (direct TLS)"
            } else {
                ""
            }
        ));
    }
    for component in &config.components {
        report.lines.push(format!(
            "component {} ({})",
            component.domain, component.name
        ));
    }
    if !config.components.is_empty()
        && !config
            .listeners
            .iter()
            .any(|l| l.kind == crate::config::ListenerKind::Component)
    {
        report.warnings.push(
            "component: [[component]] is configured but no [[listener]] kind = \"component\" accepts it"
                .to_string(),
        );
    }
    let dns = crate::check_dns::check(config);
    report.lines.extend(dns.lines);
    report.warnings.extend(dns.warnings);
}

/// Names under `.localhost` never get a public certificate (RFC 6761), so
/// a mismatch there is only a warning.
fn is_localhost(domain: &str) -> bool {
    domain == "localhost" || domain.ends_with(".localhost")
}

fn configured_certificate(host: &HostConfig, cert: &Path, key: &Path, report: &mut Report) {
    let mut check = match tls::check_files(&host.domain, cert, key) {
        Ok(check) => check,
        Err(e) => {
            report.errors.push(e.to_string());
            return;
        }
    };
    let refused =
        !check.covers_domain && !is_localhost(&host.domain) && !host.allow_mismatched_certificate;
    if refused {
        // Said once, as the error, not again among the warnings.
        check.warnings.retain(|w| !w.contains("does not cover"));
        report.errors.push(format!(
            "host {}: the certificate {} does not name {0}, so clients will refuse to connect; configure a certificate for {0} (docs/install.md, step 5: certificate), or set allow_mismatched_certificate = true in this [[host]] if that is intended",
            host.domain,
            cert.display()
        ));
    }
    report
        .lines
        .push(format!("  certificate {}: {check}", cert.display()));
}

/// A host whose certificate ACME obtains: its source, names and state.
fn acme_certificate(host: &HostConfig, config: &Config, report: &mut Report) {
    let directory = config.acme.as_ref().map_or("", |a| a.directory.as_str());
    let names = crate::acme::names_for(host);
    let (cert, key) = crate::acme::storage::certificate_paths(&config.data_dir, &host.domain);
    let state = if !cert.exists() {
        "not issued yet (Perch requests it when it runs; the self-signed certificate is served until then)"
            .to_string()
    } else {
        match tls::check_files(&host.domain, &cert, &key) {
            Ok(check) => {
                for warning in &check.warnings {
                    report
                        .warnings
                        .push(format!("host {}: ACME certificate: {warning}", host.domain));
                }
                check.to_string()
            }
            Err(e) => {
                report.warnings.push(format!(
                    "host {}: the ACME certificate is unusable and will be replaced: {e}",
                    host.domain
                ));
                "unusable".to_string()
            }
        }
    };
    report.lines.push(format!(
        "  certificate: ACME from {directory} for {}, kept in {}: {state}",
        names.join(", "),
        crate::acme::storage::dir(&config.data_dir).display()
    ));
}

/// ACME's HTTP-01 challenge arrives on port 80: an `http` listener must
/// take it (directly, or through a forwarded port or a proxy).
fn acme_listener(config: &Config, report: &mut Report) {
    if config.acme.is_none() {
        return;
    }
    let http: Vec<_> = config
        .listeners
        .iter()
        .filter(|l| l.kind == crate::config::ListenerKind::Http)
        .collect();
    if http.is_empty() {
        report.warnings.push(
            "acme: no [[listener]] kind = \"http\" answers the CA's HTTP-01 challenge; add one on port 80 (or one that port 80 is forwarded to)"
                .to_string(),
        );
    } else if !http.iter().any(|l| l.address.port() == 80) {
        report.lines.push(format!(
            "acme: the CA validates on port 80; it must reach the http listener on {}",
            http.iter()
                .map(|l| l.address.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
}

fn self_signed_certificate(host: &HostConfig, data_dir: &Path, report: &mut Report) {
    let dir = data_dir.join("tls");
    let cert = dir.join(format!("{}.crt", host.domain));
    let key = dir.join(format!("{}.key", host.domain));
    let state = if !cert.exists() {
        "not created yet (the first start creates it)".to_string()
    } else {
        match tls::check_files(&host.domain, &cert, &key) {
            Ok(check) => check.to_string(),
            Err(e) => {
                report.warnings.push(format!(
                    "host {}: the self-signed certificate cannot be checked: {e}",
                    host.domain
                ));
                "unreadable".to_string()
            }
        }
    };
    report.lines.push(format!(
        "  certificate: self-signed, kept in {}: {state}",
        dir.display()
    ));
}

fn data_dir_permissions(data_dir: &Path, report: &mut Report) {
    match crate::file_modes::find_exposed(data_dir) {
        Ok(exposed) => {
            for item in exposed {
                report.warnings.push(format!(
                    "{item}; perch run changes it at its next start, or: chmod {:o} {}",
                    item.wanted(),
                    item.path.display()
                ));
            }
        }
        Err(e) => report.warnings.push(format!(
            "cannot check the permissions in {}: {e}",
            data_dir.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;
    use std::os::unix::fs::PermissionsExt;

    fn config(text: &str) -> Config {
        Config::from_toml_str(text, "test").expect("config")
    }

    fn write_pair(dir: &Path, name: &str, names: &[&str]) -> (String, String) {
        let pair = rcgen::generate_simple_self_signed(
            names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        )
        .expect("certificate");
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, pair.cert.pem()).expect("write");
        std::fs::write(&key, pair.signing_key.serialize_pem()).expect("write");
        (cert.display().to_string(), key.display().to_string())
    }

    #[test]
    fn acme_hosts_show_their_source_names_and_listener() {
        let dir = TempDir::new("check-acme");
        let base = format!(
            "data_dir = {:?}\n[[host]]\ndomain = \"example.org\"\n[acme]\n",
            dir.path().join("data")
        );
        let report = check(&config(&base));
        assert!(
            report.lines.iter().any(|l| l.starts_with(
                "  certificate: ACME from https://acme-v02.api.letsencrypt.org/directory for example.org, conference.example.org, pubsub.example.org, upload.example.org, kept in "
            ) && l.ends_with(": not issued yet (Perch requests it when it runs; the self-signed certificate is served until then)")),
            "{report:?}"
        );
        assert!(
            report
                .lines
                .iter()
                .any(|l| l == "acme: the CA validates on port 80; it must reach the http listener on 127.0.0.1:5280"),
            "{report:?}"
        );
        let no_http = check(&config(&format!(
            "{base}\n[[listener]]\nkind = \"c2s\"\nport = 5222\n"
        )));
        assert!(
            no_http
                .warnings
                .iter()
                .any(|w| w.starts_with("acme: no [[listener]] kind = \"http\"")),
            "{no_http:?}"
        );
    }

    #[test]
    fn plaintext_passwords_are_a_warning() {
        let dir = TempDir::new("check-plain");
        let data = format!("data_dir = {:?}\n", dir.path().join("data"));
        let report = check(&config(&data));
        assert!(
            report.warnings.is_empty() && report.errors.is_empty(),
            "{report:?}"
        );
        let report = check(&config(&format!(
            "{data}[c2s]\nrequire_encryption = false\nallow_plaintext_auth = true\n"
        )));
        assert_eq!(report.errors, Vec::<String>::new());
        assert_eq!(report.warnings.len(), 1, "{report:?}");
        assert!(report.warnings[0].contains("allow_plaintext_auth = true"));
    }

    #[test]
    fn a_certificate_for_another_name_is_an_error_except_for_localhost() {
        let dir = TempDir::new("check-names");
        let (cert, key) = write_pair(dir.path(), "other", &["other.example"]);
        let host = |domain: &str, extra: &str| {
            config(&format!(
                "data_dir = {:?}\n[[host]]\ndomain = {domain:?}\ncertificate = {cert:?}\nkey = {key:?}\n{extra}",
                dir.path().join("data")
            ))
        };
        let report = check(&host("example.org", ""));
        assert_eq!(report.errors.len(), 1, "{report:?}");
        assert!(
            report.errors[0].contains("does not name example.org")
                && report.errors[0].contains("allow_mismatched_certificate = true"),
            "{report:?}"
        );
        // Said once: the certificate's line keeps no warning about it.
        assert!(
            !report.lines.iter().any(|l| l.contains("does not cover")),
            "{report:?}"
        );
        // Allowed on purpose: a warning in the certificate's line only.
        let report = check(&host(
            "example.org",
            "allow_mismatched_certificate = true\n",
        ));
        assert!(report.errors.is_empty(), "{report:?}");
        assert!(
            report
                .lines
                .iter()
                .any(|l| l.contains("does not cover example.org")),
            "{report:?}"
        );
        // localhost never has a public certificate.
        assert!(check(&host("localhost", "")).errors.is_empty());
        // A matching certificate is fine.
        let (cert, key) = write_pair(dir.path(), "good", &["example.org"]);
        let report = check(&config(&format!(
            "data_dir = {:?}\n[[host]]\ndomain = \"example.org\"\ncertificate = {cert:?}\nkey = {key:?}\n",
            dir.path().join("data")
        )));
        assert!(report.errors.is_empty(), "{report:?}");
    }

    #[test]
    fn self_signed_validity_and_data_permissions() {
        let dir = TempDir::new("check-self-signed");
        let data = dir.path().join("data");
        let text = format!("data_dir = {data:?}\n");
        let report = check(&config(&text));
        assert!(
            report
                .lines
                .iter()
                .any(|l| l.ends_with(": not created yet (the first start creates it)")),
            "{report:?}"
        );
        std::fs::create_dir_all(data.join("tls")).expect("mkdir");
        write_pair(&data.join("tls"), "localhost", &["localhost"]);
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let report = check(&config(&text));
        assert!(
            report
                .lines
                .iter()
                .any(|l| l.starts_with("  certificate: self-signed, kept in ")
                    && l.contains(": key matches, 1 certificate in chain, valid until ")),
            "{report:?}"
        );
        assert!(report.errors.is_empty(), "{report:?}");
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains(&format!("directory {} has mode 0755", data.display()))),
            "{report:?}"
        );
    }
}
