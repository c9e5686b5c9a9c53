//! The HTTP side of BOSH: requests to `/http-bind` handed to their session.

use crate::http::proxy::Client;
use crate::http::request::RequestHead;
use crate::http::Response;
use crate::net::http_server::HttpConnection;

/// Answers one request to the BOSH endpoint; whether the connection may
/// carry another.
pub(crate) async fn answer(conn: &mut HttpConnection, head: &RequestHead, client: Client) -> bool {
    let _ = client;
    let response = Response::text(503, "BOSH is not available yet").with_cors();
    conn.respond(&response, false).await;
    let _ = head;
    false
}
