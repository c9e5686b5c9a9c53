//! XEP-0215 external service discovery: the `[[external_service]]`
//! configuration, with credentials, for the server's own users.
//!
//! TURN servers that share a secret with us get credentials in the
//! "TURN REST API" form that coturn and others check without asking us:
//! username `<expiry Unix time>:<bare JID>`, password
//! `base64(HMAC-SHA1(secret, username))`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::{ExternalService, ServiceCredentials};
use crate::jid::Jid;
use crate::stanza::{Condition, StanzaError};
use crate::xml::Element;

pub const NS_EXTDISCO: &str = "urn:xmpp:extdisco:2";

/// `<services [type='…']/>`: every configured service, or those of one
/// type, with credentials.
pub fn services(
    configured: &[ExternalService],
    requester: &Jid,
    request: &Element,
    now: SystemTime,
) -> Element {
    let kind = request.attr("type");
    let mut out = Element::new("services", NS_EXTDISCO);
    if let Some(kind) = kind {
        out.set_attr("type", kind);
    }
    for service in configured
        .iter()
        .filter(|s| kind.is_none_or(|k| s.kind == k))
    {
        out.push_child(service_element(service, requester, now));
    }
    out
}

/// `<credentials><service host='…' type='…' [port='…']/></credentials>`:
/// the matching services with credentials (XEP-0215 §3.3).
pub fn credentials(
    configured: &[ExternalService],
    requester: &Jid,
    request: &Element,
    now: SystemTime,
) -> Result<Element, StanzaError> {
    let wanted = request
        .get_child("service", NS_EXTDISCO)
        .ok_or_else(|| bad_request("a credentials request names one <service/>"))?;
    let (Some(host), Some(kind)) = (wanted.attr("host"), wanted.attr("type")) else {
        return Err(bad_request("the <service/> needs both 'host' and 'type'"));
    };
    let port = match wanted.attr("port") {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|_| bad_request("'port' is not a port number"))?,
        ),
    };
    let host = host.to_ascii_lowercase();
    let mut out = Element::new("credentials", NS_EXTDISCO);
    for service in configured
        .iter()
        .filter(|s| s.host == host && s.kind == kind && port.is_none_or(|p| s.port == Some(p)))
    {
        out.push_child(service_element(service, requester, now));
    }
    if out.children().next().is_none() {
        return Err(StanzaError::new(Condition::ItemNotFound)
            .with_text(format!("no {kind} service on {host} is known here")));
    }
    Ok(out)
}

fn bad_request(text: &str) -> StanzaError {
    StanzaError::new(Condition::BadRequest).with_text(text)
}

fn service_element(service: &ExternalService, requester: &Jid, now: SystemTime) -> Element {
    let mut el = Element::new("service", NS_EXTDISCO)
        .with_attr("type", service.kind.as_str())
        .with_attr("host", service.host.as_str());
    if let Some(port) = service.port {
        el.set_attr("port", port.to_string());
    }
    if let Some(transport) = service.transport {
        el.set_attr("transport", transport.as_str());
    }
    if let Some(name) = &service.name {
        el.set_attr("name", name.as_str());
    }
    match &service.credentials {
        ServiceCredentials::None => {}
        ServiceCredentials::Static { username, password } => {
            el.set_attr("restricted", "1");
            el.set_attr("username", username.as_str());
            el.set_attr("password", password.as_str());
        }
        ServiceCredentials::SharedSecret { secret, ttl_secs } => {
            let expires = now + Duration::from_secs(u64::from(*ttl_secs));
            let (username, password) = turn_rest_credentials(secret, requester, expires);
            el.set_attr("restricted", "1");
            el.set_attr("username", username);
            el.set_attr("password", password);
            el.set_attr("expires", crate::datetime::format_utc(expires, false));
        }
    }
    el
}

/// Username and password for a TURN server sharing `secret`, valid until
/// `expires`.
pub fn turn_rest_credentials(secret: &str, user: &Jid, expires: SystemTime) -> (String, String) {
    let expiry = expires
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let username = format!("{expiry}:{}", user.bare_str());
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    let tag = ring::hmac::sign(&key, username.as_bytes());
    (username, crate::sasl::base64::encode(tag.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Transport;

    fn jid(s: &str) -> Jid {
        Jid::parse(s).expect("jid")
    }

    fn el(s: &str) -> Element {
        Element::parse(s).expect("parse")
    }

    fn configured() -> Vec<ExternalService> {
        let base = ExternalService {
            kind: "stun".into(),
            host: "default.example".into(),
            port: Some(9876),
            transport: Some(Transport::Udp),
            name: None,
            credentials: ServiceCredentials::None,
        };
        vec![
            base.clone(),
            ExternalService {
                kind: "turn".into(),
                credentials: ServiceCredentials::SharedSecret {
                    secret: "foo".into(),
                    ttl_secs: 86_400,
                },
                ..base.clone()
            },
            ExternalService {
                kind: "ftp".into(),
                port: Some(21),
                transport: Some(Transport::Tcp),
                credentials: ServiceCredentials::Static {
                    username: "john".into(),
                    password: "password".into(),
                },
                ..base
            },
        ]
    }

    #[test]
    fn turn_rest_vector() {
        // Computed independently: base64(HMAC-SHA1("foo", username)).
        let (user, pass) = turn_rest_credentials(
            "foo",
            &jid("romeo@localhost/orchard"),
            UNIX_EPOCH + Duration::from_secs(1_700_086_400),
        );
        assert_eq!(user, "1700086400:romeo@localhost");
        assert_eq!(pass, "srhC2qoVzVB3IQZF3fBAuDTauRs=");
    }

    #[test]
    fn services_with_type_filter_and_credentials() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let romeo = jid("romeo@localhost/orchard");
        let all = services(
            &configured(),
            &romeo,
            &el("<services xmlns='urn:xmpp:extdisco:2'/>"),
            now,
        );
        let list: Vec<&Element> = all.children().collect();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].attr("restricted"), None);
        assert_eq!(list[1].attr("username"), Some("1700086400:romeo@localhost"));
        assert_eq!(
            list[1].attr("password"),
            Some("srhC2qoVzVB3IQZF3fBAuDTauRs=")
        );
        assert_eq!(list[1].attr("expires"), Some("2023-11-15T22:13:20Z"));
        assert_eq!(list[2].attr("username"), Some("john"));
        assert_eq!(list[2].attr("restricted"), Some("1"));
        let ftp = services(
            &configured(),
            &romeo,
            &el("<services xmlns='urn:xmpp:extdisco:2' type='ftp'/>"),
            now,
        );
        assert_eq!(ftp.attr("type"), Some("ftp"));
        assert_eq!(ftp.children().count(), 1);
    }

    #[test]
    fn credentials_need_host_and_type() {
        let now = SystemTime::now();
        let romeo = jid("romeo@localhost");
        let ok = credentials(
            &configured(),
            &romeo,
            &el("<credentials xmlns='urn:xmpp:extdisco:2'><service host='Default.Example' type='turn'/></credentials>"),
            now,
        )
        .expect("found");
        assert_eq!(ok.children().count(), 1);
        let no_type = credentials(
            &configured(),
            &romeo,
            &el(
                "<credentials xmlns='urn:xmpp:extdisco:2'><service host='default.example'/></credentials>",
            ),
            now,
        );
        assert_eq!(no_type.map_err(|e| e.condition), Err(Condition::BadRequest));
        let unknown = credentials(
            &configured(),
            &romeo,
            &el(
                "<credentials xmlns='urn:xmpp:extdisco:2'><service host='default.example' type='turn' port='1'/></credentials>",
            ),
            now,
        );
        assert_eq!(
            unknown.map_err(|e| e.condition),
            Err(Condition::ItemNotFound)
        );
        let empty = credentials(
            &configured(),
            &romeo,
            &el("<credentials xmlns='urn:xmpp:extdisco:2'/>"),
            now,
        );
        assert_eq!(empty.map_err(|e| e.condition), Err(Condition::BadRequest));
    }
}
