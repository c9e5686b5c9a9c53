//! Just enough XML for a load generator: a framer that cuts a server's
//! stream into the header and top-level elements without building a tree
//! (the hot path only needs the bytes of each stanza), escaping for what we
//! send, and a roxmltree view for the few stanzas negotiation inspects.

use std::fmt;

pub const NS_STREAM: &str = "http://etherx.jabber.org/streams";
pub const NS_CLIENT: &str = "jabber:client";

/// One unit of an XMPP stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// The `<stream:stream ...>` open tag (byte range in the buffer).
    Header(usize, usize),
    /// A complete top-level element (byte range in the buffer).
    Element(usize, usize),
    /// `</stream:stream>`.
    End,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError(pub String);

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed stream: {}", self.0)
    }
}

impl std::error::Error for FrameError {}

/// Largest top-level element accepted before the stream is considered
/// broken; keeps a misbehaving server from growing our buffer forever.
pub const MAX_ELEMENT: usize = 1 << 20;

/// Incremental splitter over a growing byte buffer owned by the caller.
/// It remembers how far it scanned, so bytes are looked at once.
#[derive(Debug, Default)]
pub struct Framer {
    /// Next byte to scan.
    pos: usize,
    /// Start of the element being assembled (valid while `depth > 0`).
    start: usize,
    /// Open elements below the stream root.
    depth: u32,
    in_stream: bool,
}

impl Framer {
    pub fn new() -> Framer {
        Framer::default()
    }

    /// Forget everything: for a stream restart (after SASL, after TLS).
    pub fn reset(&mut self) {
        *self = Framer::default();
    }

    /// Bytes at the front of `buf` that no future frame needs; the caller
    /// may drain them and must then call `consumed(n)`.
    pub fn reclaimable(&self) -> usize {
        if self.depth > 0 { self.start } else { self.pos }
    }

    /// The caller removed `n` bytes from the front of the buffer.
    pub fn consumed(&mut self, n: usize) {
        self.pos -= n;
        self.start = self.start.saturating_sub(n);
    }

    /// The next complete frame in `buf`, or `None` until more bytes come.
    pub fn next(&mut self, buf: &[u8]) -> Result<Option<Frame>, FrameError> {
        loop {
            let Some(lt) = find_byte(b'<', buf, self.pos) else {
                // Text between stanzas (whitespace keepalives) or inside one.
                self.pos = buf.len();
                return self.check_size(buf);
            };
            let Some(&next) = buf.get(lt + 1) else {
                self.pos = lt;
                return Ok(None);
            };
            match next {
                b'?' => {
                    let Some(end) = find_seq(b"?>", buf, lt + 2) else {
                        self.pos = lt;
                        return Ok(None);
                    };
                    self.pos = end + 2;
                }
                b'!' => {
                    let (open, close): (&[u8], &[u8]) = if buf[lt..].starts_with(b"<![CDATA[") {
                        (b"<![CDATA[", b"]]>")
                    } else {
                        (b"<!--", b"-->")
                    };
                    if buf.len() < lt + open.len() {
                        self.pos = lt;
                        return Ok(None);
                    }
                    let Some(end) = find_seq(close, buf, lt + open.len()) else {
                        self.pos = lt;
                        return Ok(None);
                    };
                    self.pos = end + close.len();
                }
                b'/' => {
                    let Some(gt) = find_byte(b'>', buf, lt) else {
                        self.pos = lt;
                        return Ok(None);
                    };
                    self.pos = gt + 1;
                    if self.depth == 0 {
                        if self.in_stream {
                            self.in_stream = false;
                            return Ok(Some(Frame::End));
                        }
                        return Err(FrameError("close tag without an open one".into()));
                    }
                    self.depth -= 1;
                    if self.depth == 0 {
                        return Ok(Some(Frame::Element(self.start, gt + 1)));
                    }
                }
                _ => {
                    let Some(gt) = tag_end(buf, lt + 1) else {
                        self.pos = lt;
                        return self.check_size(buf);
                    };
                    self.pos = gt + 1;
                    let empty = buf.get(gt.wrapping_sub(1)) == Some(&b'/');
                    if !self.in_stream {
                        if buf[lt..].starts_with(b"<stream:stream") {
                            self.in_stream = true;
                            return Ok(Some(Frame::Header(lt, gt + 1)));
                        }
                        return Err(FrameError("expected <stream:stream>".into()));
                    }
                    if self.depth == 0 {
                        self.start = lt;
                        if empty {
                            return Ok(Some(Frame::Element(lt, gt + 1)));
                        }
                    }
                    if !empty {
                        self.depth += 1;
                    }
                }
            }
        }
    }

    fn check_size(&self, buf: &[u8]) -> Result<Option<Frame>, FrameError> {
        if self.depth > 0 && buf.len() - self.start > MAX_ELEMENT {
            return Err(FrameError(format!(
                "an element exceeds {MAX_ELEMENT} bytes"
            )));
        }
        Ok(None)
    }
}

/// Index of the `>` that ends the tag starting before `from`, skipping
/// quoted attribute values (which may contain `>`).
fn tag_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut quote = 0u8;
    for (i, &b) in buf.iter().enumerate().skip(from) {
        if quote != 0 {
            if b == quote {
                quote = 0;
            }
        } else if b == b'"' || b == b'\'' {
            quote = b;
        } else if b == b'>' {
            return Some(i);
        }
    }
    None
}

pub fn find_byte(needle: u8, hay: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .iter()
        .position(|&b| b == needle)
        .map(|i| i + from)
}

pub fn find_seq(needle: &[u8], hay: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// Escapes text or an attribute value (either quote style).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// The stream header a client opens with.
pub fn stream_header(domain: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAM}' \
         to='{}' version='1.0'>",
        escape(domain)
    )
}

/// Parses one top-level element (cut out by the framer) with the stream's
/// namespace declarations in scope, and hands the root to `f`.
pub fn with_parsed<T>(
    element: &[u8],
    f: impl FnOnce(roxmltree::Node<'_, '_>) -> T,
) -> Result<T, FrameError> {
    let text = std::str::from_utf8(element).map_err(|_| FrameError("not UTF-8".into()))?;
    let wrapped = format!("<w xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAM}'>{text}</w>");
    let doc = roxmltree::Document::parse(&wrapped).map_err(|e| FrameError(e.to_string()))?;
    let root = doc
        .root_element()
        .first_element_child()
        .ok_or_else(|| FrameError("empty element".into()))?;
    Ok(f(root))
}

/// The value of attribute `name` in the start tag at the front of
/// `element`, without parsing the whole stanza (hot path).
pub fn start_tag_attr<'a>(element: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let end = tag_end(element, 1)?;
    let tag = &element[..end];
    let mut i = 0;
    while let Some(at) = find_seq(name.as_bytes(), tag, i) {
        i = at + name.len();
        let before = tag.get(at.wrapping_sub(1)).copied().unwrap_or(b'<');
        if !before.is_ascii_whitespace() {
            continue;
        }
        let rest = &tag[i..];
        let eq = rest.iter().position(|&b| !b.is_ascii_whitespace())?;
        if rest.get(eq) != Some(&b'=') {
            continue;
        }
        let after = &rest[eq + 1..];
        let q = after.iter().position(|&b| !b.is_ascii_whitespace())?;
        let quote = *after.get(q)?;
        if quote != b'\'' && quote != b'"' {
            return None;
        }
        let value = &after[q + 1..];
        let close = value.iter().position(|&b| b == quote)?;
        return Some(&value[..close]);
    }
    None
}

/// The local name of the element at the front of `element`
/// (`message`, `presence`, `iq`, `stream:features` → `features`).
pub fn local_name(element: &[u8]) -> &[u8] {
    let name_end = element
        .iter()
        .skip(1)
        .position(|&b| b.is_ascii_whitespace() || b == b'>' || b == b'/')
        .map_or(element.len(), |i| i + 1);
    let name = element.get(1..name_end).unwrap_or_default();
    match name.iter().position(|&b| b == b':') {
        Some(colon) => &name[colon + 1..],
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[u8], chunk: usize) -> Vec<String> {
        let mut framer = Framer::new();
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(f) = framer.next(&buf).expect("well-formed") {
                out.push(match f {
                    Frame::Header(a, b) => format!("H:{}", String::from_utf8_lossy(&buf[a..b])),
                    Frame::Element(a, b) => String::from_utf8_lossy(&buf[a..b]).into_owned(),
                    Frame::End => "END".into(),
                });
            }
            let n = framer.reclaimable();
            buf.drain(..n);
            framer.consumed(n);
        }
        out
    }

    const STREAM: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' id='x'> \
        <stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>\n\
        <message to='a@b/c' x='1>2'><body>B 1 2 3</body></message><presence/> \
        <!-- c --><iq id='a'><![CDATA[<x>]]></iq></stream:stream>";

    #[test]
    fn frames_split_at_every_byte_equal_the_whole() {
        let whole = frames(STREAM, STREAM.len());
        assert_eq!(whole.len(), 6, "{whole:?}");
        assert!(whole[0].starts_with("H:<stream:stream"));
        assert_eq!(
            whole[2],
            "<message to='a@b/c' x='1>2'><body>B 1 2 3</body></message>"
        );
        assert_eq!(whole[3], "<presence/>");
        assert_eq!(whole[5], "END");
        for chunk in 1..40 {
            assert_eq!(frames(STREAM, chunk), whole, "chunk size {chunk}");
        }
    }

    #[test]
    fn rejects_a_stray_close_tag_and_a_missing_header() {
        assert!(Framer::new().next(b"<message/>").is_err());
        let mut f = Framer::new();
        let buf = b"<stream:stream></x></y>";
        assert!(matches!(f.next(buf), Ok(Some(Frame::Header(..)))));
        assert!(matches!(f.next(buf), Ok(Some(Frame::End))));
        assert!(f.next(buf).is_err());
    }

    #[test]
    fn attributes_and_names_without_a_parser() {
        let el = b"<message xml:lang='en' to=\"r@c/n\" from='a'><body/></message>";
        assert_eq!(start_tag_attr(el, "to"), Some(&b"r@c/n"[..]));
        assert_eq!(start_tag_attr(el, "from"), Some(&b"a"[..]));
        assert_eq!(start_tag_attr(el, "lang"), None);
        assert_eq!(start_tag_attr(el, "id"), None);
        assert_eq!(local_name(el), b"message");
        assert_eq!(local_name(b"<stream:features>"), b"features");
        assert_eq!(local_name(b"<presence/>"), b"presence");
    }

    #[test]
    fn parsed_view_sees_stream_prefixes() {
        let name = with_parsed(b"<stream:features><a xmlns='x'/></stream:features>", |n| {
            (
                n.tag_name().namespace().map(str::to_string),
                n.tag_name().name().to_string(),
            )
        })
        .expect("parses");
        assert_eq!(name, (Some(NS_STREAM.to_string()), "features".to_string()));
        assert_eq!(escape("<a&'\">"), "&lt;a&amp;&apos;&quot;&gt;");
    }
}
