//! `[[host]]` TLS keys beyond the certificate and key paths.

use std::ops::Range;

use toml::Spanned;

/// `allow_mismatched_certificate`: whether `perch check` accepts a
/// configured certificate that does not name the host's domain. It says
/// something only about a configured certificate (a self-signed one is
/// made for the domain), so setting it without one is a mistake worth
/// reporting: the administrator probably meant another host.
pub(super) fn allow_mismatched_certificate(
    domain: &str,
    raw: Option<Spanned<bool>>,
    has_certificate: bool,
) -> Result<bool, (Range<usize>, String)> {
    match raw {
        None => Ok(false),
        Some(allow) if *allow.get_ref() && !has_certificate => Err((
            allow.span(),
            format!(
                "host {domain:?}: allow_mismatched_certificate = true needs a certificate and key (a self-signed certificate always names the host); remove it or set certificate and key"
            ),
        )),
        Some(allow) => Ok(allow.into_inner()),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::{parse, problems};

    #[test]
    fn allow_mismatched_certificate() {
        let host = "[[host]]\ndomain = \"example.org\"\n";
        let files = "certificate = \"/c.pem\"\nkey = \"/k.pem\"\n";
        assert!(!parse(host).unwrap().hosts[0].allow_mismatched_certificate);
        let config = parse(&format!(
            "{host}{files}allow_mismatched_certificate = true\n"
        ))
        .unwrap();
        assert!(config.hosts[0].allow_mismatched_certificate);
        assert_eq!(
            problems(&format!("{host}allow_mismatched_certificate = true\n")),
            vec![
                "perch.toml:3: host \"example.org\": allow_mismatched_certificate = true needs a certificate and key (a self-signed certificate always names the host); remove it or set certificate and key"
            ]
        );
        // false says nothing and is accepted anywhere.
        assert!(parse(&format!("{host}allow_mismatched_certificate = false\n")).is_ok());
        assert!(
            problems(&format!("{host}allow_mismatched_certificate = \"yes\"\n"))[0]
                .contains("expected true or false")
        );
    }
}
