//! A BOSH (XEP-0124, XEP-0206) test client over [`super::http`]: each
//! request a POST of one `<body/>` on a connection of its own, so that a
//! test can hold one request while it sends another; responses parsed as
//! standalone documents, their payload queued as elements.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use perch::sasl::base64;
use perch::xml::Element;

use super::http::{HttpConn, HttpResponse};
use super::ns::*;
use super::timeout;

pub const NS_HTTPBIND: &str = "http://jabber.org/protocol/httpbind";
pub const NS_XBOSH: &str = "urn:xmpp:xbosh";
pub const BOSH_PATH: &str = "/http-bind";
/// The first rid of every session (any number up to 2^53 will do).
pub const FIRST_RID: u64 = 4_000_000;

/// A BOSH `POST` on a new connection, without waiting for the response.
pub fn send_bosh(addr: SocketAddr, body: &str) -> HttpConn {
    let mut conn = HttpConn::connect(addr);
    conn.send_request(
        "POST",
        BOSH_PATH,
        &["Content-Type: text/xml; charset=utf-8", "Connection: close"],
        body.as_bytes(),
    );
    conn
}

/// A BOSH `POST` on a new connection and its response.
pub fn post_bosh(addr: SocketAddr, body: &str) -> HttpResponse {
    send_bosh(addr, body).response_to("POST")
}

/// The response's `<body/>`, checked to be one in the httpbind namespace
/// sent with a 200.
pub fn parse_body(response: &HttpResponse) -> Element {
    assert_eq!(response.status, 200, "{response}");
    let body = Element::parse(&response.text())
        .unwrap_or_else(|e| panic!("the response is not XML ({e}): {response}"));
    assert!(
        body.is("body", NS_HTTPBIND),
        "the response is not a BOSH <body/>: {response}"
    );
    body
}

/// Asserts that `body` ends the session with `condition` (XEP-0124 §17.2).
pub fn assert_terminate(body: &Element, condition: &str) {
    assert_eq!(body.attr("type"), Some("terminate"), "{body}");
    assert_eq!(body.attr("condition"), Some(condition), "{body}");
}

/// A request sent and not answered yet.
pub struct PendingRequest {
    pub conn: HttpConn,
    pub rid: u64,
    /// How long the server may hold it: the session's `wait`.
    pub wait: Duration,
}

impl PendingRequest {
    pub fn response(self) -> HttpResponse {
        self.try_response().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The response, which may take the request's wait and then the
    /// test timeout.
    pub fn try_response(mut self) -> Result<HttpResponse, String> {
        self.conn.try_response_within("POST", self.wait + timeout())
    }
}

pub struct BoshClient {
    pub addr: SocketAddr,
    pub sid: String,
    /// The rid of the next request.
    pub rid: u64,
    /// Payload elements received and not yet handed out.
    pub pending: VecDeque<Element>,
    /// The full JID bound in the session.
    pub jid: String,
    /// The session's `wait`: how long a request may be held.
    pub wait: Duration,
}

impl BoshClient {
    /// Creates a session (XEP-0124 §7.1) asking for `wait` seconds;
    /// returns the client and the creation response's `<body/>`.
    pub fn create(addr: SocketAddr, wait: u32) -> (BoshClient, Element) {
        let request = format!(
            "<body xmlns='{NS_HTTPBIND}' xmlns:xmpp='{NS_XBOSH}' rid='{FIRST_RID}' \
             to='localhost' xml:lang='en' wait='{wait}' hold='1' ver='1.11' \
             content='text/xml; charset=utf-8' xmpp:version='1.0'/>"
        );
        let response = post_bosh(addr, &request);
        let body = parse_body(&response);
        let sid = body
            .attr("sid")
            .unwrap_or_else(|| panic!("the creation response has no sid: {body}"))
            .to_string();
        let granted = body
            .attr("wait")
            .and_then(|w| w.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("the creation response has no wait: {body}"));
        let mut client = BoshClient {
            addr,
            sid,
            rid: FIRST_RID + 1,
            pending: VecDeque::new(),
            jid: String::new(),
            wait: Duration::from_secs(granted),
        };
        client.queue_payload(&body);
        (client, body)
    }

    fn queue_payload(&mut self, body: &Element) {
        self.pending.extend(body.children().cloned());
    }

    /// The `<body/>` of the next request, with `attrs` and `payload`.
    pub fn body_xml(&self, rid: u64, attrs: &str, payload: &str) -> String {
        format!(
            "<body xmlns='{NS_HTTPBIND}' xmlns:xmpp='{NS_XBOSH}' rid='{rid}' sid='{}'{attrs}>{payload}</body>",
            self.sid
        )
    }

    /// Sends the next request (the next rid) without waiting for it.
    pub fn start(&mut self, attrs: &str, payload: &str) -> PendingRequest {
        let rid = self.rid;
        self.rid += 1;
        let conn = send_bosh(self.addr, &self.body_xml(rid, attrs, payload));
        PendingRequest {
            conn,
            rid,
            wait: self.wait,
        }
    }

    /// The response `<body/>` of a request; its payload is queued.
    pub fn finish(&mut self, request: PendingRequest) -> Element {
        let body = parse_body(&request.response());
        assert!(
            body.attr("type").is_none(),
            "the session ended unexpectedly: {body}"
        );
        self.queue_payload(&body);
        body
    }

    /// A request with `payload` and its response.
    pub fn exchange(&mut self, payload: &str) -> Element {
        let request = self.start("", payload);
        self.finish(request)
    }

    /// The next payload element, polling (an empty request, held until
    /// there is output or its wait ends) while none is queued.
    pub fn element(&mut self) -> Element {
        for _ in 0..10 {
            if let Some(el) = self.pending.pop_front() {
                return el;
            }
            self.exchange("");
        }
        panic!("no payload in ten responses");
    }

    /// The first element satisfying `wanted`, skipping others.
    pub fn element_matching(&mut self, what: &str, wanted: impl Fn(&Element) -> bool) -> Element {
        for _ in 0..50 {
            let el = self.element();
            if wanted(&el) {
                return el;
            }
        }
        panic!("no {what} in fifty elements");
    }

    /// SASL PLAIN, the restart (XEP-0206 §5) and resource binding, the
    /// creation response's features given. Returns the features after
    /// the restart.
    pub fn login(&mut self, (user, password): (&str, &str), resource: &str) -> Element {
        let features = self.element();
        assert!(features.is("features", NS_STREAM), "{features}");
        assert!(
            super::mechanisms(&features).iter().any(|m| m == "PLAIN"),
            "PLAIN is not offered: {features}"
        );
        let payload = base64::encode(format!("\0{user}\0{password}").as_bytes());
        self.exchange(&format!(
            "<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{payload}</auth>"
        ));
        let success = self.element();
        assert!(success.is("success", NS_SASL), "{success}");
        let restart = self.start(" to='localhost' xml:lang='en' xmpp:restart='true'", "");
        self.finish(restart);
        let features = self.element();
        assert!(features.is("features", NS_STREAM), "{features}");
        assert!(features.get_child("bind", NS_BIND).is_some(), "{features}");
        self.exchange(&format!(
            "<iq type='set' id='bind-1'><bind xmlns='{NS_BIND}'><resource>{resource}</resource></bind></iq>"
        ));
        let iq = self.element();
        assert!(
            iq.is("iq", NS_CLIENT) && iq.attr("type") == Some("result"),
            "bind failed: {iq}"
        );
        self.jid = iq
            .get_child("bind", NS_BIND)
            .and_then(|b| b.get_child("jid", NS_BIND))
            .map(|j| j.text().trim().to_string())
            .unwrap_or_else(|| panic!("bind result without <jid/>: {iq}"));
        features
    }
}
