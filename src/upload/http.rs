//! The HTTP side of file upload: what the listener calls for a request
//! under `/upload/`. PUT stores a file into its slot; GET and HEAD serve a
//! stored one (with single byte ranges); OPTIONS answers CORS preflights.
//! Every response allows any origin (`Response::with_cors`): the URL's
//! secret is the credential, never a cookie.
//!
//! Path: exactly `{id}/{name}` after `/upload/`; the id must have the
//! shape of one before anything is looked up, and the decoded name must
//! be the slot's. Anything else is 404, so nothing tells an unknown id
//! from a wrong name.

use std::rc::Rc;
use std::time::SystemTime;

use futures_lite::{AsyncRead, AsyncSeekExt};

use crate::http::request::decode_segment;
use crate::http::{BodyLength, Method, RequestHead, Response};
use crate::server::Server;
use crate::store::StoreError;
use crate::store::upload::{self, FileRecord};

use super::slot::{self, DEFAULT_TYPE};
use super::token::{self, PutGrant};
use super::{Upload, files, unix_secs};

/// What the listener sends: `Full` as it is (no body for `HEAD`), or
/// `File`: `response`'s head, then `length` bytes of `file`, which is
/// already positioned at the first of them.
pub enum Reply {
    Full(Response),
    File {
        response: Response,
        file: files::DiskFile,
        length: u64,
    },
}

impl Reply {
    /// The response (head) of either kind.
    pub fn response(&self) -> &Response {
        match self {
            Reply::Full(response) | Reply::File { response, .. } => response,
        }
    }
}

/// The longest `max-age` a download is cached for: a year (RFC 9111's
/// advice for "never expires").
const MAX_AGE_CAP: u64 = 31_536_000;

/// Handles one request under `/upload/`: `segments` are the raw (still
/// percent-encoded) path segments after it, `body` yields exactly the
/// request's body (the listener bounds it by `Content-Length` and applies
/// its timeouts; a read error means the client went away or was too
/// slow).
pub async fn handle(
    server: &Rc<Server>,
    head: &RequestHead,
    segments: &[&str],
    body: &mut (dyn AsyncRead + Unpin),
) -> Reply {
    let reply = match (server.upload(), head.method) {
        (_, Method::Options) => Reply::Full(Response::new(204)),
        (None, _) => Reply::Full(not_found()),
        (Some(upload), Method::Put) => Reply::Full(put(server, upload, head, segments, body).await),
        (Some(_), Method::Get | Method::Head) => download(server, head, segments).await,
        (Some(_), _) => Reply::Full(
            Response::text(405, "use GET, HEAD or PUT").with("Allow", "GET, HEAD, PUT, OPTIONS"),
        ),
    };
    match reply {
        Reply::Full(response) => Reply::Full(response.with_cors()),
        Reply::File {
            response,
            file,
            length,
        } => Reply::File {
            response: response.with_cors(),
            file,
            length,
        },
    }
}

fn not_found() -> Response {
    Response::text(404, "no such file")
}

/// The id and the decoded file name of `{id}/{name}`, if the path has
/// that shape (see the module's notes).
fn target(segments: &[&str]) -> Option<(String, String)> {
    let [id, name] = segments else { return None };
    if !token::is_id(id) {
        return None;
    }
    let name = decode_segment(name).filter(|n| slot::is_file_name(n))?;
    Some((id.to_string(), name))
}

/// The slot the path names, if it exists under that name.
fn lookup(server: &Server, segments: &[&str]) -> Result<Option<(String, FileRecord)>, Response> {
    let Some((id, name)) = target(segments) else {
        return Ok(None);
    };
    match server.store().uploads().get(&id) {
        Ok(Some(record)) if record.name == name => Ok(Some((id, record))),
        Ok(_) => Ok(None),
        Err(e) => {
            log::error!("upload: reading file {id}: {e}");
            Err(Response::text(500, "the file cannot be read"))
        }
    }
}

/// PUT: the checks in order (signature, expiry, first upload only, length,
/// type), then the body into the file, then the record marked stored; 201
/// once that is on disk.
async fn put(
    server: &Server,
    upload: &Rc<Upload>,
    head: &RequestHead,
    segments: &[&str],
    body: &mut (dyn AsyncRead + Unpin),
) -> Response {
    let (id, record) = match lookup(server, segments) {
        Ok(Some(found)) => found,
        Ok(None) => return not_found(),
        Err(response) => return response,
    };
    let query = token::parse_query(head.query.as_deref());
    let Some(expires) = query.expires else {
        return Response::text(403, "the upload URL lacks its expiry and signature");
    };
    let grant = PutGrant {
        id: &id,
        name: &record.name,
        size: record.size,
        content_type: record.content_type.as_deref(),
        expires,
    };
    let signed = [query.sig, token::bearer(head.header("authorization"))]
        .into_iter()
        .flatten()
        .any(|sig| grant.verify(upload.key(), sig));
    if !signed {
        return Response::text(403, "the upload URL's signature is not valid");
    }
    if unix_secs(SystemTime::now()) > expires {
        return Response::text(403, "this upload URL expired: ask for a new one");
    }
    if record.stored.is_some() {
        return Response::text(409, "this file was uploaded already");
    }
    let Some(_active) = upload.begin_put(&id) else {
        return Response::text(409, "this file is being uploaded");
    };
    if let Some(refused) = check_body(head, &record) {
        return refused;
    }
    if let Err(e) = files::receive(upload.dir(), &id, record.size, body).await {
        return match e {
            files::ReceiveError::Body(e) => {
                log::debug!("upload: the upload of {id} was cut short: {e}");
                Response::text(400, "the upload was cut short")
            }
            files::ReceiveError::Disk(e) => {
                log::error!("upload: storing file {id}: {e}");
                Response::text(500, "the file could not be stored")
            }
        };
    }
    let stored_at = unix_secs(SystemTime::now());
    match server
        .store()
        .write(upload::mark_stored_op(&id, stored_at))
        .await
    {
        Ok(()) => {
            log::debug!(
                "upload: {} stored {} bytes as {id}",
                record.owner,
                record.size
            );
            Response::new(201)
        }
        Err(e) => {
            // Its record is gone (purged, expired, the account deleted) or
            // could not be written: the file must not stay.
            files::remove(upload.dir(), vec![id.clone()]).await;
            match e {
                StoreError::NotFound(_) => not_found(),
                e => {
                    log::error!("upload: marking {id} stored: {e}");
                    Response::text(500, "the file could not be stored")
                }
            }
        }
    }
}

/// The body's length and type against the slot's: 411 without a length
/// (chunked, or no `Content-Length`), 413 larger, 400 otherwise
/// different; 415 for another type (none sent is taken as the slot's).
fn check_body(head: &RequestHead, record: &FileRecord) -> Option<Response> {
    match head.body {
        BodyLength::Chunked => {
            return Some(Response::text(411, "send the file with a Content-Length"));
        }
        BodyLength::None if head.header("content-length").is_none() => {
            return Some(Response::text(411, "send the file with a Content-Length"));
        }
        BodyLength::Exactly(n) if n > record.size => {
            return Some(Response::text(
                413,
                format!("this slot is for {} bytes", record.size),
            ));
        }
        BodyLength::Exactly(n) if n == record.size => {}
        _ => {
            return Some(Response::text(
                400,
                format!("this slot is for {} bytes", record.size),
            ));
        }
    }
    let expected = record.content_type.as_deref()?;
    let sent = head.header("content-type")?;
    let same = slot::essence_of(sent).eq_ignore_ascii_case(slot::essence_of(expected));
    (!same).then(|| {
        Response::text(
            415,
            format!(
                "this slot is for a file of type {}",
                slot::essence_of(expected)
            ),
        )
    })
}

/// GET and HEAD of a stored, unexpired file.
async fn download(server: &Server, head: &RequestHead, segments: &[&str]) -> Reply {
    let (id, record) = match lookup(server, segments) {
        Ok(Some(found)) => found,
        Ok(None) => return Reply::Full(not_found()),
        Err(response) => return Reply::Full(response),
    };
    let now = unix_secs(SystemTime::now());
    let Some(stored) = record.stored else {
        return Reply::Full(not_found());
    };
    let expire = server.config().upload.expire_secs();
    let remaining = match expire {
        Some(secs) => match stored.saturating_add(secs).checked_sub(now) {
            Some(left) if left > 0 => left.min(MAX_AGE_CAP),
            _ => return Reply::Full(not_found()),
        },
        None => MAX_AGE_CAP,
    };
    let Some(upload) = server.upload() else {
        return Reply::Full(not_found());
    };
    let mut file = match files::open(files::file_path(upload.dir(), &id)).await {
        Ok(file) => file,
        Err(e) => {
            log::warn!("upload: file {id} has a record but cannot be opened: {e}");
            return Reply::Full(not_found());
        }
    };
    let size = record.size;
    let content_type = record.content_type.as_deref().unwrap_or(DEFAULT_TYPE);
    let mut response = Response::new(200)
        .with("Content-Type", content_type)
        .with(
            "Content-Disposition",
            disposition(content_type, &record.name),
        )
        .with(
            "Cache-Control",
            format!("public, max-age={remaining}, immutable"),
        )
        .with("ETag", format!("\"{id}\""))
        .with("X-Content-Type-Options", "nosniff")
        .with(
            "Content-Security-Policy",
            "default-src 'none'; frame-ancestors 'none'; sandbox",
        )
        .with("Accept-Ranges", "bytes");
    let (start, length) = match byte_range(head.header("range"), size) {
        ByteRange::Whole => (0, size),
        ByteRange::Part { start, length } => {
            response.status = 206;
            let last = start + length - 1;
            response = response.with("Content-Range", format!("bytes {start}-{last}/{size}"));
            (start, length)
        }
        ByteRange::Unsatisfiable => {
            return Reply::Full(
                Response::text(416, "the range is outside the file")
                    .with("Content-Range", format!("bytes */{size}")),
            );
        }
    };
    response.streamed_length = Some(length);
    if head.method == Method::Head {
        return Reply::Full(response);
    }
    if start > 0
        && let Err(e) = file.seek(std::io::SeekFrom::Start(start)).await
    {
        log::error!("upload: reading file {id}: {e}");
        return Reply::Full(Response::text(500, "the file cannot be read"));
    }
    Reply::File {
        response,
        file,
        length,
    }
}

/// What a `Range` header asks of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// No range, several ranges, or one that cannot be read: the whole
    /// file (RFC 9110 §14.2 lets a server ignore `Range`).
    Whole,
    /// One satisfiable range: 206.
    Part { start: u64, length: u64 },
    /// One range wholly past the end: 416.
    Unsatisfiable,
}

/// Reads a single `bytes=a-b`, `bytes=a-` or `bytes=-n` of a file of
/// `size` bytes.
pub fn byte_range(header: Option<&str>, size: u64) -> ByteRange {
    let Some(header) = header else {
        return ByteRange::Whole;
    };
    let Some((unit, spec)) = header.split_once('=') else {
        return ByteRange::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return ByteRange::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return ByteRange::Whole;
    };
    let number = |s: &str| {
        (!s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // The last n bytes.
        return match number(last) {
            None => ByteRange::Whole,
            Some(0) => ByteRange::Unsatisfiable,
            Some(_) if size == 0 => ByteRange::Unsatisfiable,
            Some(n) => {
                let start = size.saturating_sub(n);
                ByteRange::Part {
                    start,
                    length: size - start,
                }
            }
        };
    }
    let Some(start) = number(first) else {
        return ByteRange::Whole;
    };
    let end = if last.is_empty() {
        None
    } else {
        match number(last) {
            Some(end) if end >= start => Some(end),
            _ => return ByteRange::Whole,
        }
    };
    if start >= size {
        return ByteRange::Unsatisfiable;
    }
    let end = end.map_or(size - 1, |e| e.min(size - 1));
    ByteRange::Part {
        start,
        length: end - start + 1,
    }
}

/// `Content-Disposition` (RFC 6266) for a file of `content_type` named
/// `name`: `inline` only for types a browser shows passively (images but
/// SVG, which may hold scripts; audio; video; plain text), `attachment`
/// for anything it might run or render as a page.
pub fn disposition(content_type: &str, name: &str) -> String {
    let essence = slot::essence_of(content_type).to_ascii_lowercase();
    let major = essence.split('/').next().unwrap_or_default();
    let passive = matches!(major, "image" | "audio" | "video") || essence == "text/plain";
    let kind = if passive && essence != "image/svg+xml" {
        "inline"
    } else {
        "attachment"
    };
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for &b in name.as_bytes() {
        // RFC 8187 attr-char.
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
