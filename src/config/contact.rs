//! `[contact]`: the addresses people can reach the server's operators at,
//! published as XEP-0157 contact addresses in the server's disco#info.

use super::toml_reader::TableReader;

/// XEP-0157 contact addresses (URIs such as `mailto:…`, `xmpp:…`,
/// `https://…`), one list per kind. Empty lists by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactAddresses {
    pub abuse: Vec<String>,
    pub admin: Vec<String>,
    pub feedback: Vec<String>,
    pub sales: Vec<String>,
    pub security: Vec<String>,
    pub status: Vec<String>,
    pub support: Vec<String>,
    /// XEP-0455: where a machine-readable JSON file tells the server's
    /// status (an outage, planned maintenance), reachable when the server
    /// is not. `http:` or `https:` URLs.
    pub outage_status: Vec<String>,
}

impl ContactAddresses {
    /// Each kind with its addresses, named as XEP-0157's form fields
    /// (`abuse` is published as `abuse-addresses`).
    pub fn by_kind(&self) -> [(&'static str, &[String]); 7] {
        [
            ("abuse", &self.abuse),
            ("admin", &self.admin),
            ("feedback", &self.feedback),
            ("sales", &self.sales),
            ("security", &self.security),
            ("status", &self.status),
            ("support", &self.support),
        ]
    }

    pub fn is_empty(&self) -> bool {
        self.by_kind().iter().all(|(_, list)| list.is_empty())
    }
}

impl ContactAddresses {
    /// Reads and checks the `[contact]` table: lists of URIs, duplicates
    /// dropped.
    pub(super) fn read(table: &mut TableReader<'_, '_>) -> ContactAddresses {
        ContactAddresses {
            abuse: uris(table, "abuse"),
            admin: uris(table, "admin"),
            feedback: uris(table, "feedback"),
            sales: uris(table, "sales"),
            security: uris(table, "security"),
            status: uris(table, "status"),
            support: uris(table, "support"),
            outage_status: web_urls(table, "outage_status"),
        }
    }
}

/// The list `key` with every element that is not a URI reported and left
/// out, and repeats dropped.
fn uris(table: &mut TableReader<'_, '_>, key: &'static str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for uri in table.strings(key).unwrap_or_default() {
        let span = uri.span();
        let uri = uri.into_inner();
        if !is_uri(&uri) {
            let hint = if uri.contains('@') && !uri.contains(':') {
                format!(" (write mailto:{uri} or xmpp:{uri})")
            } else {
                String::new()
            };
            let key = table.key_path(key);
            table.problem(span, format_args!("{key}: {uri:?} is not a URI{hint}"));
        } else if !out.contains(&uri) {
            out.push(uri);
        }
    }
    out
}

/// Like [`uris`], but only `http:` and `https:` URLs (XEP-0455: clients
/// fetch the file without logging in).
fn web_urls(table: &mut TableReader<'_, '_>, key: &'static str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for url in table.strings(key).unwrap_or_default() {
        let span = url.span();
        let url = url.into_inner();
        let web = url.starts_with("https://") || url.starts_with("http://");
        if !is_uri(&url) || !web {
            let key = table.key_path(key);
            table.problem(
                span,
                format_args!("{key}: {url:?} is not an http: or https: URL"),
            );
        } else if !out.contains(&url) {
            out.push(url);
        }
    }
    out
}

/// An absolute URI as RFC 3986 §3.1 starts one (`scheme:` then something),
/// with no whitespace or control characters.
fn is_uri(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{parse, problems};
    use super::*;

    #[test]
    fn uris_are_checked_and_deduplicated() {
        let config = parse(
            "[contact]\nabuse = [\"mailto:abuse@example.org\", \"xmpp:abuse@example.org\", \"mailto:abuse@example.org\"]\nstatus = [\"https://status.example.org/\"]\n",
        )
        .expect("valid");
        assert_eq!(
            config.contact.abuse,
            vec!["mailto:abuse@example.org", "xmpp:abuse@example.org"]
        );
        assert_eq!(config.contact.status, vec!["https://status.example.org/"]);
        assert!(config.contact.admin.is_empty());
        assert!(!config.contact.is_empty());
        assert!(parse("").expect("defaults").contact.is_empty());

        let found = problems("[contact]\nadmin = [\"admin@example.org\", \"x y:z\", \"1a:b\"]\n");
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(
            found[0].contains("write mailto:admin@example.org"),
            "{found:?}"
        );
        assert!(
            found[0].starts_with("perch.toml:2: contact.admin:"),
            "{found:?}"
        );
    }

    #[test]
    fn outage_status_takes_web_urls_only() {
        let config =
            parse("[contact]\noutage_status = [\"https://status.example.org/perch.json\"]\n")
                .expect("valid");
        assert_eq!(
            config.contact.outage_status,
            vec!["https://status.example.org/perch.json"]
        );
        // Not a XEP-0157 address kind: the serverinfo form stays empty.
        assert!(config.contact.is_empty());
        let found = problems("[contact]\noutage_status = [\"mailto:ops@example.org\"]\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("not an http: or https: URL"), "{found:?}");
    }

    #[test]
    fn uri_shape() {
        assert!(is_uri("mailto:a@b"));
        assert!(is_uri("gopher://status.localhost"));
        assert!(is_uri("xmpp:support@localhost"));
        assert!(!is_uri("mailto:"));
        assert!(!is_uri(":x"));
        assert!(!is_uri("a@b"));
        assert!(!is_uri("http://a b"));
    }
}
