//! The small documents the listener serves itself: discovery of the
//! connection URLs (XEP-0156 host-meta, XML and JSON) and the status page.

use super::request::RequestHead;
use super::response::Response;

pub const WEBSOCKET_PATH: &str = "/xmpp-websocket";
pub const BOSH_PATH: &str = "/http-bind";

/// The public base URL of this request: `[http] external_url`, or the
/// scheme the client used and the `Host` it asked for (checked to be a
/// plain host and port, so a forged header cannot inject markup).
pub fn request_base(head: &RequestHead, external_url: Option<&str>, secure_scheme: bool) -> String {
    if let Some(url) = external_url {
        return url.to_string();
    }
    let host = head
        .header("host")
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    let scheme = if secure_scheme { "https" } else { "http" };
    format!("{scheme}://{host}")
}

/// `ws://` or `wss://` for an `http://` or `https://` base.
pub fn websocket_url(base: &str) -> String {
    let rest = base
        .strip_prefix("https://")
        .map(|r| format!("wss://{r}"))
        .or_else(|| base.strip_prefix("http://").map(|r| format!("ws://{r}")));
    format!(
        "{}{WEBSOCKET_PATH}",
        rest.unwrap_or_else(|| base.to_string())
    )
}

/// XEP-0156 §3: `/.well-known/host-meta` (XRD) or `host-meta.json` (JRD).
pub fn host_meta(base: &str, json: bool) -> Response {
    let ws = escape(&websocket_url(base), true);
    let bosh = escape(&format!("{base}{BOSH_PATH}"), true);
    let (body, kind) = if json {
        // The values are URLs checked above; only `"` and `\` need care.
        let j = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let body = format!(
            "{{\"links\":[{{\"rel\":\"urn:xmpp:alt-connections:websocket\",\"href\":\"{}\"}},{{\"rel\":\"urn:xmpp:alt-connections:xbosh\",\"href\":\"{}\"}}]}}\n",
            j(&websocket_url(base)),
            j(&format!("{base}{BOSH_PATH}"))
        );
        (body, "application/json")
    } else {
        let body = format!(
            "<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n  <Link rel='urn:xmpp:alt-connections:websocket' href='{ws}'/>\n  <Link rel='urn:xmpp:alt-connections:xbosh' href='{bosh}'/>\n</XRD>\n"
        );
        (body, "application/xrd+xml")
    };
    Response::new(200)
        .with("Content-Type", kind)
        .with("Cache-Control", "max-age=3600")
        .with_body(body.into_bytes())
        .with_cors()
}

fn escape(text: &str, attribute: bool) -> String {
    let mut out = Vec::with_capacity(text.len());
    if attribute {
        crate::xml::escape_attr_into(text, &mut out);
    } else {
        crate::xml::escape_text_into(text, &mut out);
    }
    String::from_utf8(out).unwrap_or_default()
}

/// What the status page shows: nothing private, only what a client could
/// learn from the server anyway.
pub struct Status<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub services: Vec<(&'static str, String)>,
}

/// `/`: the server's name, version and which services are on.
pub fn status_page(status: &Status<'_>) -> Response {
    let esc = |s: &str| escape(s, false);
    let mut rows = String::new();
    for (what, detail) in &status.services {
        rows.push_str(&format!(
            "<tr><th>{}</th><td>{}</td></tr>\n",
            esc(what),
            esc(detail)
        ));
    }
    let body = format!(
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>\
         <meta name='viewport' content='width=device-width, initial-scale=1'>\
         <title>{name}</title><style>body{{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em}}\
         th{{text-align:left;padding-right:1em}}</style></head><body>\n\
         <h1>{name}</h1><p>An XMPP server (Perch {version}). Connect with any XMPP client using an address on {name}.</p>\n\
         <table>\n{rows}</table></body></html>\n",
        name = esc(status.name),
        version = esc(status.version),
    );
    Response::new(200)
        .with("Content-Type", "text/html; charset=utf-8")
        .with(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        )
        .with("X-Content-Type-Options", "nosniff")
        .with_body(body.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::parse_head;

    fn head(host: &str) -> RequestHead {
        let text = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        parse_head(text.as_bytes(), 16384).unwrap().unwrap().0
    }

    #[test]
    fn base_from_host_or_external_url() {
        assert_eq!(
            request_base(&head("localhost:5280"), None, false),
            "http://localhost:5280"
        );
        assert_eq!(request_base(&head("x<y"), None, true), "https://localhost");
        assert_eq!(
            request_base(&head("a"), Some("https://chat.example"), false),
            "https://chat.example"
        );
        assert_eq!(
            websocket_url("https://chat.example"),
            "wss://chat.example/xmpp-websocket"
        );
        assert_eq!(websocket_url("http://l:5280"), "ws://l:5280/xmpp-websocket");
    }

    #[test]
    fn host_meta_names_both_endpoints() {
        let xml = String::from_utf8(host_meta("https://c.example", false).body).unwrap();
        assert!(
            xml.contains("href='wss://c.example/xmpp-websocket'"),
            "{xml}"
        );
        assert!(xml.contains("href='https://c.example/http-bind'"), "{xml}");
        let json = host_meta("https://c.example", true);
        assert_eq!(json.header("access-control-allow-origin"), Some("*"));
        let json = String::from_utf8(json.body).unwrap();
        assert!(
            json.contains("\"href\":\"wss://c.example/xmpp-websocket\""),
            "{json}"
        );
    }

    #[test]
    fn status_page_escapes() {
        let page = status_page(&Status {
            name: "a<b",
            version: "0.1.0",
            services: vec![("WebSocket", "/xmpp-websocket".into())],
        });
        let text = String::from_utf8(page.body).unwrap();
        assert!(text.contains("a&lt;b") && !text.contains("a<b"));
        assert!(text.contains("<th>WebSocket</th>"));
    }
}
