//! The landing page's requests (`/invite/TOKEN` on the HTTP listener):
//! GET shows the invitation (`http::invite_page`), POST takes the
//! registration form. The token in the path is the capability, so the
//! form needs no CSRF token of its own: a page elsewhere that posts to it
//! must know the token already. Wrong tokens (in a GET or a POST) count
//! against the address like on a stream (`invite::throttle`), and the
//! body is at most
//! [`MAX_FORM_BYTES`].

use std::net::IpAddr;

use futures_lite::{AsyncRead, AsyncReadExt};

use crate::http::invite_page::{self, FormState, InviteView};
use crate::http::request::{BodyLength, Method, RequestHead, decode_segment};
use crate::http::{Response, pages};
use crate::server::Server;
use crate::stanza::Condition;
use crate::store::invites::Invite;

use super::form::{self, MAX_FORM_BYTES};
use super::{qr, register, uri};

/// The path prefix of landing pages.
pub const PATH_PREFIX: &str = "/invite/";

/// Answers a request for `PATH_PREFIX…`; `body` is the request body
/// (read here for a POST, at most [`MAX_FORM_BYTES`]).
pub async fn handle(
    server: &Server,
    head: &RequestHead,
    https: bool,
    ip: IpAddr,
    body: &mut (impl AsyncRead + Unpin),
) -> Response {
    let raw = head.path.strip_prefix(PATH_PREFIX).unwrap_or_default();
    let token = decode_segment(raw.trim_end_matches('/')).unwrap_or_default();
    let base = pages::request_base(head, server.config().http.external_url.as_deref(), https);
    let page_url = format!("{base}{PATH_PREFIX}{token}");
    match head.method {
        Method::Get | Method::Head => {
            // Looked up like a token presented on a stream: wrong ones
            // count against the address, so the page is no faster oracle.
            let env = server.env();
            match register::check_token(&env, server.registrations(), &token, None, ip) {
                Ok(invite) => page(&invite, &page_url, &FormState::default(), 200),
                Err(e) if e.condition == Condition::ResourceConstraint => {
                    invite_page::error_page(429, e.text.as_deref().unwrap_or("try again later"))
                }
                Err(_) => invite_page::invalid_page(),
            }
        }
        Method::Post => post(server, head, &token, &page_url, ip, body).await,
        _ => {
            invite_page::error_page(405, "only GET and POST here").with("Allow", "GET, HEAD, POST")
        }
    }
}

fn page(invite: &Invite, page_url: &str, form: &FormState<'_>, status: u16) -> Response {
    let xmpp_uri = uri::invite_uri(invite);
    let title = "QR code of this invitation";
    let svg = qr::svg(page_url, 240, title).unwrap_or_default();
    let view = InviteView {
        domain: &invite.domain,
        inviter: invite.creator.as_deref(),
        username: invite.username.as_deref(),
        xmpp_uri: &xmpp_uri,
        qr_svg: &svg,
        page_url,
    };
    invite_page::invite_page(&view, form, status)
}

async fn post(
    server: &Server,
    head: &RequestHead,
    token: &str,
    page_url: &str,
    ip: IpAddr,
    body: &mut (impl AsyncRead + Unpin),
) -> Response {
    let length = match head.body {
        BodyLength::Exactly(n) if n <= MAX_FORM_BYTES as u64 => n as usize,
        BodyLength::Exactly(_) => {
            return invite_page::error_page(413, "the form is larger than 4 KiB");
        }
        BodyLength::Chunked => {
            return invite_page::error_page(411, "send the form with a Content-Length");
        }
        BodyLength::None => 0,
    };
    let mut bytes = vec![0u8; length];
    if body.read_exact(&mut bytes).await.is_err() {
        return invite_page::error_page(400, "the form did not arrive whole");
    }
    let fields = match form::parse(&bytes) {
        Ok(f) => f,
        Err(e) => return invite_page::error_page(400, &e.to_string()),
    };
    let env = server.env();
    let invite = match register::check_token(&env, server.registrations(), token, None, ip) {
        Ok(invite) => invite,
        Err(e) if e.condition == Condition::ResourceConstraint => {
            return invite_page::error_page(429, e.text.as_deref().unwrap_or("try again later"));
        }
        Err(_) => return invite_page::invalid_page(),
    };
    let username = fields.value("username").unwrap_or_default();
    let password = fields.value("password").unwrap_or_default();
    let again = |error: &str, status: u16| {
        let state = FormState {
            username,
            error: Some(error),
        };
        page(&invite, page_url, &state, status)
    };
    if password != fields.value("password2").unwrap_or_default() {
        return again("The two passwords differ; type the same one twice.", 400);
    }
    let outcome = register::register_account(
        &env,
        &invite,
        Some(username),
        Some(password.to_string()),
        ip,
        &invite.domain,
    )
    .await;
    match outcome {
        Ok(account) => invite_page::registered_page(account.as_str(), invite.creator.as_deref()),
        Err(e) => {
            let status = match e.condition {
                Condition::Conflict => 409,
                Condition::NotAuthorized | Condition::ItemNotFound => {
                    return invite_page::invalid_page();
                }
                Condition::InternalServerError => 500,
                _ => 400,
            };
            let text = e
                .text
                .clone()
                .unwrap_or_else(|| e.condition.name().to_string());
            again(&text, status)
        }
    }
}
