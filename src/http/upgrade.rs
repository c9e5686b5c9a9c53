//! The WebSocket opening handshake (RFC 6455 §4.2) for XMPP (RFC 7395):
//! which requests may become an XMPP stream, and the `101` that says so.

use super::request::{Method, RequestHead};
use super::response::Response;

/// The subprotocol RFC 7395 registers.
pub const SUBPROTOCOL: &str = "xmpp";
/// RFC 6455 §1.3: appended to the client's key before hashing.
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for `key`: base64 of SHA-1 of key and GUID.
pub fn accept_key(key: &str) -> String {
    let mut input = String::with_capacity(key.len() + ACCEPT_GUID.len());
    input.push_str(key.trim());
    input.push_str(ACCEPT_GUID);
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, input.as_bytes());
    crate::sasl::base64::encode(digest.as_ref())
}

/// The `101 Switching Protocols` for an acceptable upgrade request, or the
/// error response that refuses it. `origins` is the allow-list (empty:
/// any origin).
pub fn check(head: &RequestHead, origins: &[String]) -> Result<Response, Response> {
    if head.method != Method::Get {
        return Err(Response::text(405, "a WebSocket starts with GET").with("Allow", "GET"));
    }
    if !head.header_has_token("upgrade", "websocket")
        || !head.header_has_token("connection", "upgrade")
    {
        return Err(Response::text(
            426,
            "this is the XMPP WebSocket endpoint (RFC 7395): connect with a WebSocket client",
        )
        .with("Upgrade", "websocket")
        .with("Connection", "Upgrade"));
    }
    if head.header("sec-websocket-version") != Some("13") {
        return Err(
            Response::text(426, "WebSocket version 13 only").with("Sec-WebSocket-Version", "13")
        );
    }
    let key = head
        .header("sec-websocket-key")
        .filter(|k| crate::sasl::base64::decode(k.trim()).is_ok_and(|raw| raw.len() == 16))
        .ok_or_else(|| Response::text(400, "missing or malformed Sec-WebSocket-Key"))?;
    if !origins.is_empty() {
        let allowed = head
            .header("origin")
            .is_some_and(|origin| origins.iter().any(|o| o.eq_ignore_ascii_case(origin)));
        if !allowed {
            return Err(Response::text(
                403,
                "this page's origin may not open an XMPP WebSocket here ([http] websocket_origins)",
            ));
        }
    }
    let offers_xmpp = head
        .headers_named("sec-websocket-protocol")
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == SUBPROTOCOL);
    if !offers_xmpp {
        return Err(Response::text(
            400,
            "the WebSocket subprotocol must be \"xmpp\" (RFC 7395 §3.1)",
        ));
    }
    Ok(Response::new(101)
        .with("Upgrade", "websocket")
        .with("Connection", "Upgrade")
        .with("Sec-WebSocket-Accept", accept_key(key))
        .with("Sec-WebSocket-Protocol", SUBPROTOCOL))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::parse_head;

    fn head(extra: &str) -> RequestHead {
        let text = format!("GET /xmpp-websocket HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n");
        parse_head(text.as_bytes(), 16384).unwrap().unwrap().0
    }

    const GOOD: &str = "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: xmpp\r\nOrigin: https://web.example\r\n";

    #[test]
    fn rfc6455_example_key() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn accepts_an_xmpp_upgrade() {
        let ok = check(&head(GOOD), &[]).unwrap();
        assert_eq!(ok.status, 101);
        assert_eq!(ok.header("sec-websocket-protocol"), Some("xmpp"));
        assert_eq!(
            ok.header("sec-websocket-accept"),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(check(&head(""), &[]).unwrap_err().status, 426);
        let no_proto = GOOD.replace("Sec-WebSocket-Protocol: xmpp\r\n", "");
        assert_eq!(check(&head(&no_proto), &[]).unwrap_err().status, 400);
        let bad_key = GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "short");
        assert_eq!(check(&head(&bad_key), &[]).unwrap_err().status, 400);
        let old = GOOD.replace("Version: 13", "Version: 8");
        assert_eq!(check(&head(&old), &[]).unwrap_err().status, 426);
        let origins = vec!["https://chat.example".to_string()];
        assert_eq!(check(&head(GOOD), &origins).unwrap_err().status, 403);
        let allowed = vec!["https://web.example".to_string()];
        assert_eq!(check(&head(GOOD), &allowed).unwrap().status, 101);
    }
}
