use super::*;
use crate::config::Config;
use crate::store::Store;
use crate::testing::TempDir;
use futures_lite::AsyncReadExt;

const OWNER: &str = "romeo@localhost";
const ID: &str = "00112233445566778899aabbccddeeff";

#[test]
fn ranges() {
    use ByteRange::*;
    let part = |start, length| Part { start, length };
    let cases: &[(Option<&str>, ByteRange)] = &[
        (None, Whole),
        (Some("bytes=0-9"), part(0, 10)),
        (Some("bytes=0-0"), part(0, 1)),
        (Some("bytes=10-"), part(10, 90)),
        (Some("bytes=99-"), part(99, 1)),
        (Some("bytes=90-200"), part(90, 10)),
        (Some("bytes=-10"), part(90, 10)),
        (Some("bytes=-1000"), part(0, 100)),
        (Some("Bytes = 5 - 6 "), part(5, 2)),
        (Some("bytes=100-"), Unsatisfiable),
        (Some("bytes=100-200"), Unsatisfiable),
        (Some("bytes=-0"), Unsatisfiable),
        (Some("bytes=0-1,5-6"), Whole),
        (Some("bytes=5-4"), Whole),
        (Some("bytes=a-b"), Whole),
        (Some("bytes=-"), Whole),
        (Some("bytes=+1-2"), Whole),
        (Some("bytes=1"), Whole),
        (Some("items=0-1"), Whole),
        (Some("bytes=99999999999999999999-"), Whole),
        (Some(""), Whole),
    ];
    for (header, expected) in cases {
        assert_eq!(byte_range(*header, 100), *expected, "{header:?}");
    }
    assert_eq!(byte_range(Some("bytes=-5"), 0), Unsatisfiable);
    assert_eq!(byte_range(Some("bytes=0-"), 0), Unsatisfiable);
}

#[test]
fn dispositions() {
    let name = "très \"cool\".jpg";
    let expected_name = "filename=\"tr_s _cool_.jpg\"; filename*=UTF-8''tr%C3%A8s%20%22cool%22.jpg";
    assert_eq!(
        disposition("image/jpeg", name),
        format!("inline; {expected_name}")
    );
    for inline in [
        "image/png",
        "audio/ogg",
        "video/mp4",
        "text/plain; charset=utf-8",
        "IMAGE/GIF",
    ] {
        assert!(disposition(inline, "a").starts_with("inline; "), "{inline}");
    }
    for attachment in [
        "image/svg+xml",
        "text/html",
        "application/xhtml+xml",
        "application/pdf",
        "application/octet-stream",
        "text/javascript",
        "application/x-executable",
    ] {
        assert!(
            disposition(attachment, "a").starts_with("attachment; "),
            "{attachment}"
        );
    }
}

#[test]
fn paths() {
    let good = target(&[ID, "tr%C3%A8s%20cool.jpg"]);
    assert_eq!(good, Some((ID.to_string(), "très cool.jpg".to_string())));
    for bad in [
        vec![ID],
        vec![ID, "a", "b"],
        vec!["..", "a"],
        vec![&ID[..31], "a"],
        vec![ID, ".."],
        vec![ID, "."],
        vec![ID, "%2e%2e"],
        vec![ID, "%2E"],
        vec![ID, "a%2Fb"],
        vec![ID, "a%5Cb"],
        vec![ID, "a%00"],
        vec![ID, "a%0Ab"],
        vec![ID, "%zz"],
        vec![ID, ""],
    ] {
        assert_eq!(target(&bad), None, "{bad:?}");
    }
}

/// A server on a fresh database with one account, and a slot for it.
struct World {
    _dir: TempDir,
    server: Rc<Server>,
}

impl World {
    fn new(tag: &str) -> World {
        let dir = TempDir::new(tag);
        let mut config = Config::defaults_with_state_dir(Some(dir.path().to_path_buf()));
        config.upload.expire_days = 1;
        let store = Store::open(&dir.path().join("perch.redb"), 1 << 20).expect("open");
        crate::store::create_accounts_for_test(&store, &[OWNER]);
        let server = Server::new(config, store);
        World { _dir: dir, server }
    }

    fn upload(&self) -> &Rc<Upload> {
        self.server.upload().expect("upload is offered by default")
    }

    /// A slot handed out `age` seconds ago, and its signature.
    fn slot(&self, name: &str, size: u64, content_type: Option<&str>, expires: u64) -> String {
        let record = FileRecord {
            owner: OWNER.into(),
            name: name.into(),
            size,
            content_type: content_type.map(str::to_string),
            created: unix_secs(SystemTime::now()),
            stored: None,
        };
        let limits = super::super::service::limits(&self.server.config().upload);
        self.server
            .store()
            .write_now(upload::insert_slot_op(ID, record, limits))
            .expect("slot");
        PutGrant {
            id: ID,
            name,
            size,
            content_type,
            expires,
        }
        .sign(self.upload().key())
    }

    fn call(&self, head: &RequestHead, segments: &[&str], body: &[u8]) -> Reply {
        let mut body = futures_lite::io::Cursor::new(body.to_vec());
        smol::block_on(handle(&self.server, head, segments, &mut body))
    }

    fn status(&self, head: &RequestHead, segments: &[&str], body: &[u8]) -> u16 {
        self.call(head, segments, body).response().status
    }
}

fn head(method: Method, query: Option<String>, headers: &[(&str, &str)]) -> RequestHead {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<u64>().ok());
    let chunked = headers.iter().any(|(n, _)| n == "transfer-encoding");
    RequestHead {
        method,
        path: String::new(),
        query,
        minor_version: 1,
        headers,
        body: match (length, chunked) {
            (_, true) => BodyLength::Chunked,
            (Some(0) | None, false) => BodyLength::None,
            (Some(n), false) => BodyLength::Exactly(n),
        },
        keep_alive: true,
    }
}

fn later() -> u64 {
    unix_secs(SystemTime::now()) + 300
}

fn put_query(expires: u64, sig: &str) -> Option<String> {
    Some(format!("expires={expires}&sig={sig}"))
}

#[test]
fn put_then_get() {
    let world = World::new("upload-http");
    let expires = later();
    let sig = world.slot("hello world.txt", 11, Some("text/plain"), expires);
    let segments = [ID, "hello%20world.txt"];
    let put = head(
        Method::Put,
        put_query(expires, &sig),
        &[
            ("content-length", "11"),
            ("content-type", "text/plain; charset=utf-8"),
        ],
    );
    // Not there before the upload.
    assert_eq!(
        world.status(&head(Method::Get, None, &[]), &segments, b""),
        404
    );
    let reply = world.call(&put, &segments, b"hello world");
    assert_eq!(reply.response().status, 201);
    assert_eq!(
        reply.response().header("Access-Control-Allow-Origin"),
        Some("*")
    );
    // Once only.
    assert_eq!(world.status(&put, &segments, b"hello world"), 409);

    let Reply::File {
        response,
        mut file,
        length,
    } = world.call(&head(Method::Get, None, &[]), &segments, b"")
    else {
        panic!("a file reply");
    };
    assert_eq!((response.status, length), (200, 11));
    assert_eq!(response.streamed_length, Some(11));
    for (name, value) in [
        ("Content-Type", "text/plain"),
        (
            "Content-Disposition",
            "inline; filename=\"hello world.txt\"; filename*=UTF-8''hello%20world.txt",
        ),
        ("X-Content-Type-Options", "nosniff"),
        (
            "Content-Security-Policy",
            "default-src 'none'; frame-ancestors 'none'; sandbox",
        ),
        ("Accept-Ranges", "bytes"),
        ("Access-Control-Allow-Origin", "*"),
    ] {
        assert_eq!(response.header(name), Some(value), "{name}");
    }
    let cache = response.header("Cache-Control").expect("cache-control");
    assert!(cache.starts_with("public, max-age=") && cache.ends_with(", immutable"));
    let mut text = String::new();
    smol::block_on(file.read_to_string(&mut text)).expect("read");
    assert_eq!(text, "hello world");

    let Reply::File {
        response,
        mut file,
        length,
    } = world.call(
        &head(Method::Get, None, &[("range", "bytes=6-")]),
        &segments,
        b"",
    )
    else {
        panic!("a file reply");
    };
    assert_eq!((response.status, length), (206, 5));
    assert_eq!(response.header("Content-Range"), Some("bytes 6-10/11"));
    let mut part = vec![0u8; 5];
    smol::block_on(file.read_exact(&mut part)).expect("read");
    assert_eq!(part, b"world");

    let reply = world.call(&head(Method::Head, None, &[]), &segments, b"");
    assert!(matches!(reply, Reply::Full(_)));
    assert_eq!(reply.response().status, 200);
    assert_eq!(reply.response().streamed_length, Some(11));

    let reply = world.call(
        &head(Method::Get, None, &[("range", "bytes=11-")]),
        &segments,
        b"",
    );
    assert_eq!(reply.response().status, 416);
    assert_eq!(reply.response().header("Content-Range"), Some("bytes */11"));
    // Several ranges: the whole file.
    let reply = world.call(
        &head(Method::Get, None, &[("range", "bytes=0-1,3-4")]),
        &segments,
        b"",
    );
    assert_eq!(reply.response().status, 200);
    // Another name, another shape: not found.
    assert_eq!(
        world.status(&head(Method::Get, None, &[]), &[ID, "other.txt"], b""),
        404
    );
    assert_eq!(world.status(&head(Method::Get, None, &[]), &[ID], b""), 404);
    assert_eq!(
        world.status(&head(Method::Options, None, &[]), &segments, b""),
        204
    );
    assert_eq!(
        world.status(&head(Method::Post, None, &[]), &segments, b""),
        405
    );
}

#[test]
fn the_bearer_token_signs_too() {
    let world = World::new("upload-http-bearer");
    let expires = later();
    let sig = world.slot("a.bin", 3, None, expires);
    let auth = format!("Bearer {sig}");
    let put = head(
        Method::Put,
        Some(format!("expires={expires}")),
        &[("content-length", "3"), ("authorization", &auth)],
    );
    assert_eq!(world.status(&put, &[ID, "a.bin"], b"abc"), 201);
    let reply = world.call(&head(Method::Get, None, &[]), &[ID, "a.bin"], b"");
    assert_eq!(reply.response().header("Content-Type"), Some(DEFAULT_TYPE));
    assert!(
        reply
            .response()
            .header("Content-Disposition")
            .is_some_and(|d| d.starts_with("attachment; "))
    );
}

#[test]
fn puts_that_are_refused() {
    let world = World::new("upload-http-refused");
    let expires = later();
    let sig = world.slot("a.png", 4, Some("image/png"), expires);
    let segments = [ID, "a.png"];
    let put = |query: Option<String>, headers: &[(&str, &str)]| {
        world.status(&head(Method::Put, query, headers), &segments, b"abcd")
    };
    let ok_headers: &[(&str, &str)] = &[("content-length", "4"), ("content-type", "image/png")];
    assert_eq!(put(None, ok_headers), 403);
    assert_eq!(put(put_query(expires, "00"), ok_headers), 403);
    assert_eq!(put(put_query(expires + 1, &sig), ok_headers), 403);
    assert_eq!(
        put(
            put_query(expires, &sig),
            &[("transfer-encoding", "chunked")]
        ),
        411
    );
    assert_eq!(put(put_query(expires, &sig), &[]), 411);
    assert_eq!(
        put(put_query(expires, &sig), &[("content-length", "0")]),
        400
    );
    assert_eq!(
        put(put_query(expires, &sig), &[("content-length", "3")]),
        400
    );
    assert_eq!(
        put(put_query(expires, &sig), &[("content-length", "5")]),
        413
    );
    assert_eq!(
        put(
            put_query(expires, &sig),
            &[("content-length", "4"), ("content-type", "text/html")]
        ),
        415
    );
    assert_eq!(
        world.status(
            &head(Method::Put, put_query(expires, &sig), ok_headers),
            &[ID, "b.png"],
            b"abcd"
        ),
        404
    );
    // A body cut short: refused, and nothing is stored.
    let status = world.status(
        &head(Method::Put, put_query(expires, &sig), ok_headers),
        &segments,
        b"ab",
    );
    assert_eq!(status, 400);
    let record = world.server.store().uploads().get(ID).expect("get");
    assert_eq!(record.and_then(|r| r.stored), None);
    assert!(!files::part_path(world.upload().dir(), ID).exists());
    assert!(!files::file_path(world.upload().dir(), ID).exists());
    // And then the right one.
    assert_eq!(put(put_query(expires, &sig), ok_headers), 201);
}

#[test]
fn an_expired_url_is_refused() {
    let world = World::new("upload-http-expired");
    let expires = unix_secs(SystemTime::now()) - 1;
    let sig = world.slot("a.txt", 1, None, expires);
    let reply = world.call(
        &head(
            Method::Put,
            put_query(expires, &sig),
            &[("content-length", "1")],
        ),
        &[ID, "a.txt"],
        b"a",
    );
    assert_eq!(reply.response().status, 403);
    assert!(String::from_utf8_lossy(&reply.response().body).contains("expired"));
}
