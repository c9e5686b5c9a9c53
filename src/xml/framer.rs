//! Incremental framing of an XMPP stream into header, elements and close.
//!
//! The framer runs a small byte-level state machine over the input that
//! understands just enough XML (tags, quoted attribute values, character and
//! entity references, CDATA sections) to find where each top-level element
//! ends, to refuse restricted XML early and to enforce the size and depth
//! limits while bytes are still arriving. Every byte is scanned once: the scan
//! position survives across pushes, so a large stanza trickling in a byte at a
//! time costs linear, not quadratic, time. Full well-formedness and namespace
//! resolution are left to `roxmltree`, which parses each complete element.
//!
//! The structural bytes the state machine looks at are all ASCII, and in
//! UTF-8 no byte of a multi-byte character is ever ASCII, so scanning raw
//! bytes is sound even when a character is split across pushes. Encoding
//! errors are found by an incremental UTF-8 check that tolerates an
//! incomplete character at the end of the buffer.

use super::element::{self, Element};
use super::plain;
use super::serialize::escape_attr_into;
use super::stream_header;
use super::{NS_STREAM, XmlError};

/// Cap on the bytes of the XML declaration and of the stream header (each),
/// independent of the stanza limit: real headers are a few hundred bytes.
const HEADER_LIMIT: usize = 8 * 1024;
/// Buffers larger than this are freed rather than kept when they empty, so an
/// idle connection holds (nearly) no heap after one big stanza.
const IDLE_CAPACITY: usize = 4 * 1024;
/// Longest entity reference accepted, `&` included. Enough for any character
/// reference with a few leading zeros; longer ones only come from attackers.
const MAX_ENTITY_LEN: usize = 32;
/// Closes the synthetic root `<w …>` each element is wrapped in for parsing.
const WRAPPER_CLOSE: &[u8] = b"</w>";

/// Resource limits for one stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest top-level element, in bytes as received.
    pub max_stanza_bytes: usize,
    /// Deepest nesting within a top-level element; the top-level element
    /// itself is level 1 and the stream element is not counted.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_stanza_bytes: 256 * 1024,
            max_depth: 32,
        }
    }
}

/// The attributes of a received stream header.
///
/// Only the stream namespace is checked by the framer. `version` and
/// `default_ns` are reported as received so the caller can answer with the
/// right stream error (`unsupported-version`, `invalid-namespace`), and the
/// header is the same whichever side of the stream it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamHeader {
    pub to: Option<String>,
    pub from: Option<String>,
    pub id: Option<String>,
    pub version: Option<String>,
    /// `xml:lang`.
    pub lang: Option<String>,
    /// The default namespace declared on the header, e.g. `jabber:client`;
    /// `""` if none was declared.
    pub default_ns: String,
    /// The prefix the header bound to the stream namespace (normally
    /// `stream`; `""` if the stream namespace was the default namespace).
    /// Any prefix is accepted; a caller that insists on `stream` can answer
    /// with [`XmlError::BadNamespacePrefix`].
    pub stream_prefix: String,
}

/// What the framer found in the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameEvent {
    StreamOpen(StreamHeader),
    /// A complete top-level element (stanza or negotiation element).
    Element(Element),
    StreamClose,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the (optional XML declaration and the) stream header.
    Header,
    /// Inside the stream element.
    Body,
    /// The stream was closed; everything after is ignored.
    Closed,
}

/// Lexical state of the scanner; it always refers to the byte at `pos`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lex {
    /// Character data, or whitespace between top-level elements.
    Text,
    /// After `<`.
    Lt,
    /// After `<!`.
    Bang,
    /// After `<![` plus this many bytes of `CDATA[`.
    CdataOpen(usize),
    /// Inside a CDATA section, after this many consecutive `]` (at most 2).
    Cdata(u8),
    /// Inside `<?…`; whether the previous byte was `?`.
    Pi(bool),
    /// Inside a start tag outside quotes; whether the previous byte was `/`.
    StartTag(bool),
    /// Inside an attribute value delimited by this quote.
    AttrValue(u8),
    /// Inside an end tag.
    EndTag,
    /// Inside an entity reference in text that starts at this offset.
    TextEntity(usize),
    /// Inside an entity reference in an attribute value (start offset, quote).
    AttrEntity(usize, u8),
}

/// A complete token found by the scanner; each spans `start..end`.
enum Token {
    Decl(usize),
    Header { end: usize, self_closing: bool },
    Element(usize),
    Close(usize),
}

/// Splits an XMPP stream into [`FrameEvent`]s. Feed it with
/// [`Framer::push`], then call [`Framer::next_event`] until it returns
/// `Ok(None)`. Errors are final: once one is returned every later call
/// returns it again, until [`Framer::reset`].
#[derive(Debug)]
pub struct Framer {
    limits: Limits,
    buf: Vec<u8>,
    /// First byte not yet consumed; also where the token in progress starts,
    /// because whitespace between tokens is consumed as it is scanned.
    start: usize,
    /// Next byte to scan.
    pos: usize,
    /// Bytes before this are known to be valid UTF-8.
    utf8_ok: usize,
    phase: Phase,
    lex: Lex,
    /// Open elements inside the current top-level element.
    depth: usize,
    /// Where the tag being scanned starts (its `<`).
    tag_start: usize,
    /// Open elements inside the current top-level element that bear the
    /// stream header's name (legal, if odd, below the top level): an end
    /// tag of that name with none open closes the stream inside a stanza.
    nested_streams: usize,
    seen_decl: bool,
    /// `<w xmlns='…' xmlns:p='…'>`: the synthetic root that re-declares the
    /// stream header's namespaces around each element.
    wrapper_open: Vec<u8>,
    /// The default namespace the stream header declares (`""` if none),
    /// for the fast path of [`plain::parse`].
    default_ns: String,
    /// The header's qualified name, which the closing tag must repeat.
    stream_qname: Vec<u8>,
    /// Reused buffer for the document handed to roxmltree.
    scratch: Vec<u8>,
    /// A self-closing header still owes its caller a `StreamClose`.
    close_pending: bool,
    error: Option<XmlError>,
}

impl Framer {
    pub fn new(limits: Limits) -> Framer {
        Framer {
            limits,
            buf: Vec::new(),
            start: 0,
            pos: 0,
            utf8_ok: 0,
            phase: Phase::Header,
            lex: Lex::Text,
            depth: 0,
            tag_start: 0,
            nested_streams: 0,
            seen_decl: false,
            wrapper_open: Vec::new(),
            default_ns: String::new(),
            stream_qname: Vec::new(),
            scratch: Vec::new(),
            close_pending: false,
            error: None,
        }
    }

    /// Appends received bytes. Nothing is parsed until
    /// [`Framer::next_event`]; bytes after the stream close or an error are
    /// dropped.
    pub fn push(&mut self, data: &[u8]) {
        if self.phase == Phase::Closed || self.error.is_some() {
            return;
        }
        // Dropping the consumed prefix only once it is at least as large as
        // what remains keeps the copying amortized O(1) per byte.
        if self.start > 0 && self.start >= self.buf.len().saturating_sub(self.start) {
            self.discard_consumed();
        }
        self.buf.extend_from_slice(data);
    }

    /// The next event, or `Ok(None)` when more bytes are needed (or the
    /// stream is closed).
    pub fn next_event(&mut self) -> Result<Option<FrameEvent>, XmlError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let result = self.advance();
        if let Err(e) = &result {
            self.error = Some(e.clone());
            self.release();
        }
        result
    }

    /// Starts over expecting a new stream header, as after STARTTLS or SASL
    /// success. Buffered bytes are discarded: whatever the peer sent before
    /// the restart must not be read as part of the new stream (that would
    /// let plaintext injected before STARTTLS into the encrypted stream).
    pub fn reset(&mut self) {
        *self = Framer::new(self.limits);
    }

    /// Bytes received but not yet consumed, for memory accounting.
    pub fn buffered(&self) -> usize {
        self.buf.len().saturating_sub(self.start)
    }

    fn advance(&mut self) -> Result<Option<FrameEvent>, XmlError> {
        if self.close_pending {
            self.close_pending = false;
            self.phase = Phase::Closed;
            self.release();
            return Ok(Some(FrameEvent::StreamClose));
        }
        loop {
            if self.phase == Phase::Closed {
                return Ok(None);
            }
            let token = match self.scan() {
                Ok(token) => token,
                // Report whichever error comes first in the input, so the
                // outcome does not depend on how the bytes were split into
                // pushes (the UTF-8 check otherwise runs only between them).
                Err(e) => return Err(self.check_utf8(self.pos).err().unwrap_or(e)),
            };
            match token {
                None => {
                    self.check_utf8(self.buf.len())?;
                    self.compact();
                    return Ok(None);
                }
                // A token that is wrong and also holds invalid UTF-8 is
                // reported as invalid UTF-8, as it is when its bytes come
                // in several pushes (found by the `xml_framer` fuzz target).
                Some(Token::Decl(end)) => {
                    self.xml_decl(end).map_err(|e| self.utf8_first(end, e))?;
                    self.consume(end);
                }
                Some(Token::Header { end, self_closing }) => {
                    let header = self
                        .stream_header(end, self_closing)
                        .map_err(|e| self.utf8_first(end, e))?;
                    self.consume(end);
                    self.phase = Phase::Body;
                    self.close_pending = self_closing;
                    return Ok(Some(FrameEvent::StreamOpen(header)));
                }
                Some(Token::Element(end)) => {
                    let el = self.element(end).map_err(|e| self.utf8_first(end, e))?;
                    self.consume(end);
                    return Ok(Some(FrameEvent::Element(el)));
                }
                Some(Token::Close(end)) => {
                    self.check_close(end).map_err(|e| self.utf8_first(end, e))?;
                    self.phase = Phase::Closed;
                    self.release();
                    return Ok(Some(FrameEvent::StreamClose));
                }
            }
        }
    }

    /// Scans from `pos` until a token completes or the input runs out.
    fn scan(&mut self) -> Result<Option<Token>, XmlError> {
        let limit = match self.phase {
            Phase::Header => HEADER_LIMIT,
            _ => self.limits.max_stanza_bytes,
        };
        while let Some(&b) = self.buf.get(self.pos) {
            let at = self.pos;
            self.pos += 1;
            if self.pos.saturating_sub(self.start) > limit {
                return Err(if self.phase == Phase::Header {
                    XmlError::PolicyViolation(format!("stream header longer than {limit} bytes"))
                } else {
                    XmlError::PolicyViolation(format!("stanza larger than {limit} bytes"))
                });
            }
            match self.lex {
                Lex::Text if self.depth == 0 => match b {
                    b'<' => {
                        self.tag_start = at;
                        self.lex = Lex::Lt;
                    }
                    b' ' | b'\t' | b'\r' | b'\n' => self.start = self.pos,
                    _ => {
                        return Err(not_well_formed(if self.phase == Phase::Header {
                            "character data before the stream header"
                        } else {
                            "character data outside of a stanza"
                        }));
                    }
                },
                Lex::Text => match b {
                    b'<' => {
                        self.tag_start = at;
                        self.lex = Lex::Lt;
                    }
                    b'&' => self.lex = Lex::TextEntity(at),
                    _ => {}
                },
                Lex::Lt => match b {
                    b'/' if self.phase == Phase::Header => {
                        return Err(not_well_formed("end tag before the stream header"));
                    }
                    b'/' => self.lex = Lex::EndTag,
                    b'?' if self.phase == Phase::Header => self.lex = Lex::Pi(false),
                    b'?' => return Err(restricted("processing instruction")),
                    b'!' => self.lex = Lex::Bang,
                    _ if is_name_start(b) => {
                        if self.phase == Phase::Body && self.depth >= self.limits.max_depth {
                            return Err(XmlError::PolicyViolation(format!(
                                "elements nested deeper than {} levels",
                                self.limits.max_depth
                            )));
                        }
                        self.lex = Lex::StartTag(false);
                    }
                    _ => return Err(not_well_formed("invalid element name")),
                },
                Lex::Bang => match b {
                    b'-' => return Err(restricted("comment")),
                    b'[' if self.depth > 0 => self.lex = Lex::CdataOpen(0),
                    b'[' => return Err(not_well_formed("CDATA section outside of a stanza")),
                    b'A'..=b'Z' => return Err(restricted("document type declaration")),
                    _ => return Err(not_well_formed("invalid markup")),
                },
                Lex::CdataOpen(n) => {
                    const REST: &[u8] = b"CDATA[";
                    if REST.get(n) != Some(&b) {
                        return Err(not_well_formed("invalid markup"));
                    }
                    self.lex = if n + 1 == REST.len() {
                        Lex::Cdata(0)
                    } else {
                        Lex::CdataOpen(n + 1)
                    };
                }
                Lex::Cdata(brackets) => {
                    self.lex = match b {
                        b']' => Lex::Cdata(if brackets < 2 { brackets + 1 } else { 2 }),
                        b'>' if brackets == 2 => Lex::Text,
                        _ => Lex::Cdata(0),
                    }
                }
                Lex::Pi(question) => {
                    if question && b == b'>' {
                        self.lex = Lex::Text;
                        return Ok(Some(Token::Decl(self.pos)));
                    }
                    self.lex = Lex::Pi(b == b'?');
                }
                Lex::StartTag(slash) => match b {
                    b'\'' | b'"' => self.lex = Lex::AttrValue(b),
                    b'/' => self.lex = Lex::StartTag(true),
                    b'<' => return Err(not_well_formed("'<' inside a tag")),
                    b'>' => {
                        self.lex = Lex::Text;
                        if self.phase == Phase::Header {
                            return Ok(Some(Token::Header {
                                end: self.pos,
                                self_closing: slash,
                            }));
                        }
                        if !slash {
                            if self.names_stream(self.tag_start + 1) {
                                // A second header instead of a stanza
                                // would otherwise wait, unfinished, for
                                // the stanza time limit.
                                if self.depth == 0 {
                                    return Err(XmlError::BadFormat(
                                        "a stream header inside the stream".into(),
                                    ));
                                }
                                self.nested_streams += 1;
                            }
                            self.depth += 1;
                        } else if self.depth == 0 {
                            return Ok(Some(Token::Element(self.pos)));
                        }
                    }
                    _ => self.lex = Lex::StartTag(false),
                },
                Lex::AttrValue(quote) => match b {
                    _ if b == quote => self.lex = Lex::StartTag(false),
                    b'<' => return Err(not_well_formed("'<' in an attribute value")),
                    b'&' => self.lex = Lex::AttrEntity(at, quote),
                    _ => {}
                },
                Lex::EndTag => match b {
                    b'>' => {
                        self.lex = Lex::Text;
                        if self.depth == 0 {
                            return Ok(Some(Token::Close(self.pos)));
                        }
                        if self.names_stream(self.tag_start + 2) {
                            if self.nested_streams == 0 {
                                return Err(not_well_formed(
                                    "the stream's end tag inside a stanza",
                                ));
                            }
                            self.nested_streams -= 1;
                        }
                        self.depth -= 1;
                        if self.depth == 0 {
                            self.nested_streams = 0;
                            return Ok(Some(Token::Element(self.pos)));
                        }
                    }
                    b'<' | b'\'' | b'"' => return Err(not_well_formed("invalid end tag")),
                    _ => {}
                },
                Lex::TextEntity(from) | Lex::AttrEntity(from, _) => {
                    if b == b';' {
                        check_entity(self.buf.get(from + 1..at).unwrap_or_default())?;
                        self.lex = match self.lex {
                            Lex::AttrEntity(_, quote) => Lex::AttrValue(quote),
                            _ => Lex::Text,
                        };
                    } else if !is_entity_byte(b) || at.saturating_sub(from) >= MAX_ENTITY_LEN {
                        return Err(not_well_formed("malformed entity reference"));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Whether the tag name starting at `at` is the stream header's
    /// (compared as written: the prefix, not its namespace).
    fn names_stream(&self, at: usize) -> bool {
        let qname = self.stream_qname.as_slice();
        !qname.is_empty()
            && self.buf.get(at..at + qname.len()) == Some(qname)
            && self
                .buf
                .get(at + qname.len())
                .is_some_and(|&b| b == b'>' || b == b'/' || is_xml_space(b as char))
    }

    /// Bytes of the token that ends at `end`.
    fn token(&self, end: usize) -> &[u8] {
        self.buf.get(self.start..end).unwrap_or_default()
    }

    fn xml_decl(&mut self, end: usize) -> Result<(), XmlError> {
        let text = std::str::from_utf8(self.token(end)).map_err(|_| invalid_utf8())?;
        let body = text
            .strip_prefix("<?xml")
            .and_then(|t| t.strip_suffix("?>"))
            .filter(|t| t.starts_with(is_xml_space));
        match body {
            Some(body) if !self.seen_decl => {
                check_xml_decl(body)?;
                self.seen_decl = true;
                Ok(())
            }
            _ => Err(restricted("processing instruction")),
        }
    }

    fn stream_header(&mut self, end: usize, self_closing: bool) -> Result<StreamHeader, XmlError> {
        // The opening tag alone is not a document; made self-closing, it is.
        let raw = self.buf.get(self.start..end).unwrap_or_default();
        let open = if self_closing {
            raw
        } else {
            raw.strip_suffix(b">").unwrap_or(raw)
        };
        self.scratch.clear();
        self.scratch.extend_from_slice(open);
        if !self_closing {
            self.scratch.extend_from_slice(b"/>");
        }
        let text = std::str::from_utf8(&self.scratch).map_err(|_| invalid_utf8())?;
        let doc;
        let root = match stream_header::parse(text) {
            Some(plain) => plain,
            None => {
                doc = roxmltree::Document::parse_with_options(text, parse_options())?;
                stream_header::from_node(doc.root_element())
            }
        };
        if root.namespace != Some(NS_STREAM) || root.local != "stream" {
            return Err(XmlError::InvalidNamespace(format!(
                "expected a stream header, got {{{}}}{}",
                root.namespace.unwrap_or(""),
                root.local
            )));
        }

        let qname_len = open
            .iter()
            .skip(1)
            .position(|&c| is_xml_space(c as char) || c == b'/' || c == b'>')
            .unwrap_or(open.len().saturating_sub(1));
        let qname = open.get(1..1 + qname_len).unwrap_or_default();
        self.stream_qname.clear();
        self.stream_qname.extend_from_slice(qname);
        let stream_prefix = match qname.iter().position(|&c| c == b':') {
            Some(i) => String::from_utf8_lossy(qname.get(..i).unwrap_or_default()).into_owned(),
            None => String::new(),
        };

        self.wrapper_open.clear();
        self.wrapper_open.extend_from_slice(b"<w");
        self.default_ns.clear();
        for &(prefix, uri) in &root.namespaces {
            match prefix {
                Some(prefix) => {
                    self.wrapper_open.extend_from_slice(b" xmlns:");
                    self.wrapper_open.extend_from_slice(prefix.as_bytes());
                }
                None => {
                    self.wrapper_open.extend_from_slice(b" xmlns");
                    self.default_ns.push_str(uri);
                }
            }
            self.wrapper_open.extend_from_slice(b"='");
            escape_attr_into(uri, &mut self.wrapper_open);
            self.wrapper_open.push(b'\'');
        }
        self.wrapper_open.push(b'>');

        let owned = |value: Option<&str>| value.map(str::to_owned);
        let header = StreamHeader {
            to: owned(root.to),
            from: owned(root.from),
            id: owned(root.id),
            version: owned(root.version),
            lang: owned(root.lang),
            default_ns: root.default_namespace().unwrap_or("").to_owned(),
            stream_prefix,
        };
        self.shrink_scratch();
        Ok(header)
    }

    fn element(&mut self, end: usize) -> Result<Element, XmlError> {
        let bytes = self.buf.get(self.start..end).unwrap_or_default();
        if let Ok(text) = std::str::from_utf8(bytes)
            && let Some(el) = plain::parse(text, &self.default_ns, self.limits.max_depth)
        {
            return Ok(el);
        }
        // roxmltree needs the wrapper and the element as one contiguous
        // string, hence one copy into a reused buffer; it is small next to
        // what parsing and building the owned tree cost anyway.
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.wrapper_open);
        self.scratch
            .extend_from_slice(self.buf.get(self.start..end).unwrap_or_default());
        self.scratch.extend_from_slice(WRAPPER_CLOSE);
        let result = {
            let text = std::str::from_utf8(&self.scratch).map_err(|_| invalid_utf8())?;
            let doc = roxmltree::Document::parse_with_options(text, parse_options())?;
            match doc.root_element().first_element_child() {
                Some(node) => element::from_node(node, self.limits.max_depth),
                None => Err(not_well_formed("empty element")),
            }
        };
        self.shrink_scratch();
        result
    }

    fn check_close(&self, end: usize) -> Result<(), XmlError> {
        let tag = self.token(end);
        let name = tag
            .strip_prefix(b"</")
            .and_then(|t| t.strip_suffix(b">"))
            .unwrap_or_default();
        let name = trim_xml_space_end(name);
        if name == self.stream_qname.as_slice() {
            Ok(())
        } else {
            Err(not_well_formed(&format!(
                "unexpected end tag </{}>",
                String::from_utf8_lossy(name)
            )))
        }
    }

    /// Validates the not yet checked bytes before `end`; an incomplete
    /// character at the end is left for the next push.
    fn check_utf8(&mut self, end: usize) -> Result<(), XmlError> {
        let rest = self.buf.get(self.utf8_ok..end).unwrap_or_default();
        match std::str::from_utf8(rest) {
            Ok(_) => self.utf8_ok = self.utf8_ok.max(end),
            Err(e) if e.error_len().is_none() => self.utf8_ok += e.valid_up_to(),
            Err(_) => return Err(invalid_utf8()),
        }
        Ok(())
    }

    /// `error`, unless the input up to `end` holds invalid UTF-8, which
    /// comes first.
    fn utf8_first(&self, end: usize, error: XmlError) -> XmlError {
        match std::str::from_utf8(self.buf.get(self.utf8_ok..end).unwrap_or_default()) {
            Err(e) if e.error_len().is_some() => invalid_utf8(),
            _ => error,
        }
    }

    fn consume(&mut self, end: usize) {
        self.start = end;
        self.utf8_ok = self.utf8_ok.max(end);
    }

    /// Drops consumed bytes from the front of the buffer.
    fn discard_consumed(&mut self) {
        let n = self.start.min(self.buf.len());
        self.buf.drain(..n);
        self.start -= n;
        self.pos = self.pos.saturating_sub(n);
        self.utf8_ok = self.utf8_ok.saturating_sub(n);
        self.tag_start = self.tag_start.saturating_sub(n);
        self.lex = match self.lex {
            Lex::TextEntity(from) => Lex::TextEntity(from.saturating_sub(n)),
            Lex::AttrEntity(from, q) => Lex::AttrEntity(from.saturating_sub(n), q),
            other => other,
        };
    }

    /// Called when waiting for input, when the buffer may hold little but
    /// the tail of a burst: gives back what the wait does not need.
    fn compact(&mut self) {
        if self.start < self.buf.len() {
            if self.start >= self.buf.len() - self.start {
                self.discard_consumed();
            }
            let cap = self.buf.capacity();
            if cap > IDLE_CAPACITY && cap / 4 > self.buf.len() {
                self.buf.shrink_to(self.buf.len().max(IDLE_CAPACITY));
            }
            return;
        }
        if self.buf.capacity() > IDLE_CAPACITY {
            self.buf = Vec::new();
        } else {
            self.buf.clear();
        }
        self.start = 0;
        self.pos = 0;
        self.utf8_ok = 0;
    }

    /// Frees the buffers when nothing is buffered, for a connection that
    /// has gone quiet: an idle client then holds no parse buffers at all.
    pub fn release_idle(&mut self) {
        if self.start >= self.buf.len() {
            self.release();
        }
        self.scratch = Vec::new();
    }

    fn shrink_scratch(&mut self) {
        if self.scratch.capacity() > IDLE_CAPACITY {
            self.scratch = Vec::new();
        }
    }

    /// Frees all buffers once no more input will be read.
    fn release(&mut self) {
        self.buf = Vec::new();
        self.scratch = Vec::new();
        self.start = 0;
        self.pos = 0;
        self.utf8_ok = 0;
    }
}

fn parse_options<'a>() -> roxmltree::ParsingOptions<'a> {
    roxmltree::ParsingOptions {
        allow_dtd: false,
        ..roxmltree::ParsingOptions::default()
    }
}

fn not_well_formed(what: &str) -> XmlError {
    XmlError::NotWellFormed(what.to_owned())
}

fn restricted(what: &str) -> XmlError {
    XmlError::RestrictedXml(what.to_owned())
}

fn invalid_utf8() -> XmlError {
    not_well_formed("invalid UTF-8")
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn trim_xml_space_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., last] = s {
        if !is_xml_space(*last as char) {
            break;
        }
        s = rest;
    }
    s
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':' || b >= 0x80
}

/// Bytes that may appear between `&` and `;`: name characters and `#`.
fn is_entity_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'#' | b'_' | b'-' | b'.' | b':') || b >= 0x80
}

/// Checks the body of an entity reference (between `&` and `;`).
fn check_entity(name: &[u8]) -> Result<(), XmlError> {
    match name {
        b"lt" | b"gt" | b"amp" | b"quot" | b"apos" => Ok(()),
        [b'#', b'x', hex @ ..] => check_char_ref(hex, 16),
        [b'#', dec @ ..] => check_char_ref(dec, 10),
        // A bad name is an encoding error before it is a forbidden entity,
        // as the incremental UTF-8 check would have found had the bytes
        // arrived in smaller pieces.
        [first, ..] if is_name_start(*first) => match std::str::from_utf8(name) {
            Ok(name) => Err(XmlError::RestrictedXml(format!(
                "entity reference &{name};"
            ))),
            Err(_) => Err(invalid_utf8()),
        },
        _ => Err(not_well_formed("malformed entity reference")),
    }
}

fn check_char_ref(digits: &[u8], radix: u32) -> Result<(), XmlError> {
    let bad = || not_well_formed("invalid character reference");
    if digits.is_empty() {
        return Err(bad());
    }
    let mut value: u32 = 0;
    for &d in digits {
        let digit = (d as char).to_digit(radix).ok_or_else(bad)?;
        value = value
            .checked_mul(radix)
            .and_then(|v| v.checked_add(digit))
            .ok_or_else(bad)?;
    }
    // XML 1.0 `Char`: char::from_u32 rules out surrogates and values past
    // U+10FFFF; the rest are the C0 controls and U+FFFE/U+FFFF.
    match char::from_u32(value) {
        Some('\t' | '\n' | '\r') => Ok(()),
        Some(c) if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => Err(bad()),
        Some(_) => Ok(()),
        None => Err(bad()),
    }
}

/// Checks the pseudo-attributes of `<?xml …?>`.
fn check_xml_decl(body: &str) -> Result<(), XmlError> {
    let bad = || not_well_formed("malformed XML declaration");
    let mut rest = body;
    let mut seen_version = false;
    loop {
        rest = rest.trim_start_matches(is_xml_space);
        if rest.is_empty() {
            break;
        }
        let (name, after) = rest.split_once('=').ok_or_else(bad)?;
        let after = after.trim_start_matches(is_xml_space);
        let quote = after.chars().next().filter(|&q| q == '\'' || q == '"');
        let quote = quote.ok_or_else(bad)?;
        let (value, after) = after
            .get(1..)
            .and_then(|a| a.split_once(quote))
            .ok_or_else(bad)?;
        match name.trim_end_matches(is_xml_space) {
            "version" if !seen_version => {
                let minor = value.strip_prefix("1.").ok_or_else(bad)?;
                if minor.is_empty() || !minor.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                seen_version = true;
            }
            "encoding" if seen_version => {
                if !value.eq_ignore_ascii_case("UTF-8") {
                    return Err(XmlError::UnsupportedEncoding(format!("encoding '{value}'")));
                }
            }
            "standalone" if seen_version && matches!(value, "yes" | "no") => {}
            _ => return Err(bad()),
        }
        rest = after;
    }
    if seen_version { Ok(()) } else { Err(bad()) }
}

#[cfg(test)]
mod tests_support {
    use super::*;

    /// Feeds `chunks` one push at a time, draining events after each; stops
    /// at the first error.
    pub(super) fn run(limits: Limits, chunks: &[&[u8]]) -> (Vec<FrameEvent>, Option<XmlError>) {
        let mut f = Framer::new(limits);
        let mut events = Vec::new();
        for chunk in chunks {
            f.push(chunk);
            loop {
                match f.next_event() {
                    Ok(Some(ev)) => events.push(ev),
                    Ok(None) => break,
                    Err(e) => return (events, Some(e)),
                }
            }
        }
        (events, None)
    }

    pub(super) const SESSION: &str = "<?xml version='1.0'?>\
        <stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
        to='example.com' version='1.0' xml:lang='en'>\n\
        <iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>h\u{e9}llo \u{2603} \u{1F600}</resource></bind></iq> \
        <message to='r\u{e9}mi@example.com/\u{1F600}' type=\"chat\" id='m&amp;1'>\
        <body>h\u{e9}llo \u{2603} \u{1F600} &lt;3 &#x1F600;&#233;<![CDATA[<raw> & ]] ]>]]></body>\
        <x:y xmlns:x='urn:x' x:a='1'/><stream:error/></message>\r\n\t \
        <presence/>\n\n<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>\
        <iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>\n\
        </stream:stream>trailing garbage & <";
}

#[cfg(test)]
mod tests {

    /// A second stream header in the stream, and the stream's end tag
    /// inside a stanza, are refused when they arrive (they used to leave an
    /// element open until the stanza time limit), however the bytes are
    /// split; the stream's name below the top level is still fine.
    #[test]
    fn a_header_or_close_inside_the_stream_is_refused_at_once() {
        let open = "<stream:stream xmlns='jabber:client' \
            xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";
        let header = format!("<?xml version='1.0'?>{open}");
        let outcome = |input: &str, piece: usize| {
            let pieces: Vec<&[u8]> = input.as_bytes().chunks(piece).collect();
            let (events, error) = run(Limits::default(), &pieces);
            (events.len(), error)
        };
        for piece in [1, 7, 4096] {
            let again = format!("{header}<presence/>{open}");
            let (events, error) = outcome(&again, piece);
            assert_eq!(events, 2);
            assert!(matches!(error, Some(XmlError::BadFormat(_))), "{error:?}");
            let cut = format!("{header}<message><body>hi</stream:stream  >");
            let (events, error) = outcome(&cut, piece);
            assert_eq!(events, 1);
            assert!(
                matches!(&error, Some(XmlError::NotWellFormed(t)) if t.contains("end tag")),
                "{error:?}"
            );
            let nested = format!(
                "{header}<message><stream:stream><stream:error/></stream:stream>\
                 <stream:streams/></message></stream:stream>"
            );
            let (events, error) = outcome(&nested, piece);
            assert_eq!((events, error), (3, None));
        }
    }

    /// Found by the `xml_framer` fuzz target: a wrong end tag holding an
    /// invalid byte was "unexpected end tag" when it came at once and
    /// "invalid UTF-8" when it came in pieces.
    #[test]
    fn the_error_does_not_depend_on_how_the_bytes_arrive() {
        let mut input = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'><presence/></".to_vec();
        input.extend_from_slice(b"\x8cresence>");
        let outcome = |pieces: &[&[u8]]| {
            let mut framer = Framer::new(Limits::default());
            for piece in pieces {
                framer.push(piece);
                loop {
                    match framer.next_event() {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(e) => return Some(format!("{e:?}")),
                    }
                }
            }
            None
        };
        let whole = outcome(&[&input]);
        let pieces: Vec<&[u8]> = input.chunks(8).collect();
        assert_eq!(whole, outcome(&pieces));
        assert!(whole.is_some_and(|e| e.contains("UTF-8")));
    }

    use super::tests_support::*;
    use super::*;
    use crate::xml::{NS_CLIENT, NS_SERVER};

    const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";

    fn events(input: &str) -> Vec<FrameEvent> {
        match run(Limits::default(), &[input.as_bytes()]) {
            (events, None) => events,
            (_, Some(e)) => panic!("unexpected error {e} for {input}"),
        }
    }

    fn error(input: &[u8]) -> XmlError {
        error_with(Limits::default(), input)
    }

    fn error_with(limits: Limits, input: &[u8]) -> XmlError {
        match run(limits, &[input]) {
            (_, Some(e)) => e,
            (events, None) => panic!(
                "no error for {}: {events:?}",
                String::from_utf8_lossy(input)
            ),
        }
    }

    fn header_of(input: &str) -> StreamHeader {
        match events(input).into_iter().next() {
            Some(FrameEvent::StreamOpen(h)) => h,
            other => panic!("no header in {input}: {other:?}"),
        }
    }

    fn elements(input: &str) -> Vec<Element> {
        events(input)
            .into_iter()
            .filter_map(|e| match e {
                FrameEvent::Element(el) => Some(el),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn header_variants() {
        let h = header_of(HEADER);
        assert_eq!(
            h,
            StreamHeader {
                to: Some("example.com".into()),
                from: None,
                id: None,
                version: Some("1.0".into()),
                lang: None,
                default_ns: NS_CLIENT.into(),
                stream_prefix: "stream".into(),
            }
        );

        let h = header_of(
            "<?xml version=\"1.0\" encoding=\"utf-8\" ?>\n<stream:stream xmlns=\"jabber:server\" \
             xmlns:stream=\"http://etherx.jabber.org/streams\" from=\"a.example\" \
             id=\"x&amp;y\" xml:lang=\"en\" version=\"1.0\" >",
        );
        assert_eq!(h.from.as_deref(), Some("a.example"));
        assert_eq!(h.id.as_deref(), Some("x&y"));
        assert_eq!(h.lang.as_deref(), Some("en"));
        assert_eq!(h.default_ns, NS_SERVER);
        assert_eq!(h.to, None);

        // No declaration, no version, another prefix for the stream namespace.
        let h = header_of(
            "<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:client'>",
        );
        assert_eq!(h.version, None);
        assert_eq!(h.stream_prefix, "s");
        let ev = events(
            "<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:client'>\
             <s:features/><presence/></s:stream>",
        );
        assert_eq!(ev.len(), 4);
        assert_eq!(
            ev.get(1),
            Some(&FrameEvent::Element(Element::new("features", NS_STREAM)))
        );
        assert_eq!(
            ev.get(2),
            Some(&FrameEvent::Element(Element::new("presence", NS_CLIENT)))
        );
        assert_eq!(ev.get(3), Some(&FrameEvent::StreamClose));

        // Leading whitespace and a version we don't speak are data, not errors.
        let h = header_of(
            "\r\n  <stream:stream xmlns:stream='http://etherx.jabber.org/streams' version='2.5'>",
        );
        assert_eq!(h.version.as_deref(), Some("2.5"));
        assert_eq!(h.default_ns, "");

        // Self-closing header: open immediately followed by close.
        let ev = events("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>");
        assert_eq!(ev.len(), 2);
        assert_eq!(ev.get(1), Some(&FrameEvent::StreamClose));
    }

    #[test]
    fn header_errors() {
        let cases: &[(&str, &str)] = &[
            (
                "<stream:stream xmlns:stream='urn:wrong'>",
                "invalid-namespace",
            ),
            ("<stream xmlns='jabber:client'>", "invalid-namespace"),
            ("<message xmlns='jabber:client'/>", "invalid-namespace"),
            (
                "<stream:foo xmlns:stream='http://etherx.jabber.org/streams'>",
                "invalid-namespace",
            ),
            ("<stream:stream xmlns='jabber:client'>", "not-well-formed"),
            ("hello", "not-well-formed"),
            ("</stream:stream>", "not-well-formed"),
            (
                "<?xml version='1.0' encoding='ISO-8859-1'?><stream:stream>",
                "unsupported-encoding",
            ),
            (
                "<?xml version='1.0'?><?xml version='1.0'?>",
                "restricted-xml",
            ),
            ("<?xml-stylesheet href='x'?>", "restricted-xml"),
            ("<?xml encoding='UTF-8'?>", "not-well-formed"),
            ("<?xml version='1.0' foo='bar'?>", "not-well-formed"),
            ("<!DOCTYPE stream>", "restricted-xml"),
            ("<!-- hi -->", "restricted-xml"),
            ("<![CDATA[x]]>", "not-well-formed"),
            (
                "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='&ent;'>",
                "restricted-xml",
            ),
            (
                "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to=x>",
                "not-well-formed",
            ),
        ];
        for (input, condition) in cases {
            let e = error(input.as_bytes());
            assert_eq!(e.stream_condition(), *condition, "{input}: {e}");
        }
        let long = format!(
            "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='{}'",
            "a".repeat(HEADER_LIMIT)
        );
        assert_eq!(
            error(long.as_bytes()).stream_condition(),
            "policy-violation"
        );
    }

    #[test]
    fn session_transcript() {
        let ev = events(SESSION);
        assert_eq!(ev.len(), 7, "{ev:#?}");
        let Some(FrameEvent::StreamOpen(h)) = ev.first() else {
            panic!("no header: {ev:?}");
        };
        assert_eq!(h.lang.as_deref(), Some("en"));
        let Some(FrameEvent::Element(iq)) = ev.get(1) else {
            panic!("{ev:?}");
        };
        assert!(iq.is("iq", NS_CLIENT));
        let resource = iq
            .get_child("bind", "urn:ietf:params:xml:ns:xmpp-bind")
            .and_then(|b| b.get_child("resource", "urn:ietf:params:xml:ns:xmpp-bind"))
            .map(|r| r.text());
        assert_eq!(resource.as_deref(), Some("h\u{e9}llo \u{2603} \u{1F600}"));
        let Some(FrameEvent::Element(msg)) = ev.get(2) else {
            panic!("{ev:?}");
        };
        assert_eq!(msg.attr("to"), Some("r\u{e9}mi@example.com/\u{1F600}"));
        assert_eq!(msg.attr("id"), Some("m&1"));
        assert_eq!(
            msg.get_child("body", NS_CLIENT)
                .map(|b| b.text())
                .as_deref(),
            Some("h\u{e9}llo \u{2603} \u{1F600} <3 \u{1F600}\u{e9}<raw> & ]] ]>")
        );
        let y = msg.get_child("y", "urn:x");
        assert_eq!(y.and_then(|y| y.attr("{urn:x}a")), Some("1"));
        assert!(msg.get_child("error", NS_STREAM).is_some());
        assert_eq!(
            ev.get(3),
            Some(&FrameEvent::Element(Element::new("presence", NS_CLIENT)))
        );
        let Some(FrameEvent::Element(features)) = ev.get(4) else {
            panic!("{ev:?}");
        };
        assert!(features.is("features", NS_STREAM));
        assert!(
            features
                .get_child("starttls", "urn:ietf:params:xml:ns:xmpp-tls")
                .is_some()
        );
        assert_eq!(ev.get(6), Some(&FrameEvent::StreamClose));
    }

    #[test]
    fn every_split_gives_the_same_events() {
        let whole = events(SESSION);
        let bytes = SESSION.as_bytes();
        for i in 0..=bytes.len() {
            let (a, b) = bytes.split_at(i);
            let (ev, err) = run(Limits::default(), &[a, b]);
            assert_eq!(err, None, "split at {i}");
            assert_eq!(ev, whole, "split at {i}");
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        let (ev, err) = run(Limits::default(), &singles);
        assert_eq!(err, None);
        assert_eq!(ev, whole);
        for size in [2, 3, 7, 64] {
            let chunks: Vec<&[u8]> = bytes.chunks(size).collect();
            assert_eq!(run(Limits::default(), &chunks), (whole.clone(), None));
        }
    }

    #[test]
    fn keepalives_produce_no_events() {
        let input = format!("{HEADER} \n\t\r <presence/>   \n \n<presence/>\n \n");
        let ev = events(&input);
        assert_eq!(ev.len(), 3);
        let mut f = Framer::new(Limits::default());
        f.push(HEADER.as_bytes());
        assert!(matches!(
            f.next_event(),
            Ok(Some(FrameEvent::StreamOpen(_)))
        ));
        for _ in 0..100 {
            f.push(b" ");
            assert_eq!(f.next_event(), Ok(None));
            assert_eq!(f.buffered(), 0);
        }
    }

    #[test]
    fn namespaces() {
        let els = elements(&format!(
            "{HEADER}<iq type='get'><query xmlns='jabber:iq:roster'><item/></query></iq>\
             <message><foo:x xmlns:foo='urn:x'><foo:y/><z/></foo:x></message>\
             <stream:features/><r xmlns='urn:other'><s/></r>"
        ));
        assert_eq!(els.len(), 4);
        let iq = els.first();
        assert!(iq.is_some_and(|e| e.is("iq", NS_CLIENT)));
        let query = iq.and_then(|iq| iq.get_child("query", "jabber:iq:roster"));
        assert!(
            query
                .and_then(|q| q.get_child("item", "jabber:iq:roster"))
                .is_some()
        );
        let x = els.get(1).and_then(|m| m.get_child("x", "urn:x"));
        assert!(x.and_then(|x| x.get_child("y", "urn:x")).is_some());
        assert!(x.and_then(|x| x.get_child("z", NS_CLIENT)).is_some());
        assert!(els.get(2).is_some_and(|e| e.is("features", NS_STREAM)));
        let r = els.get(3);
        assert!(r.and_then(|r| r.get_child("s", "urn:other")).is_some());

        let server = elements(
            "<stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' \
             xmlns:stream='http://etherx.jabber.org/streams'><db:result to='a' from='b'>key</db:result>\
             <message/>",
        );
        assert!(
            server
                .first()
                .is_some_and(|e| e.is("result", "jabber:server:dialback") && e.text() == "key")
        );
        assert!(server.get(1).is_some_and(|e| e.is("message", NS_SERVER)));
    }

    #[test]
    fn hostile_inputs() {
        let cases: &[(&str, &str)] = &[
            ("<message><!-- c --></message>", "restricted-xml"),
            ("<!-- c -->", "restricted-xml"),
            ("<?pi?>", "restricted-xml"),
            ("<?xml version='1.0'?>", "restricted-xml"),
            ("<message><?pi x?></message>", "restricted-xml"),
            ("<!DOCTYPE x [<!ENTITY a 'b'>]>", "restricted-xml"),
            ("<message><!ENTITY a 'b'></message>", "restricted-xml"),
            ("<message>&xxe;</message>", "restricted-xml"),
            ("<message a='&xxe;'/>", "restricted-xml"),
            ("<message>&#0;</message>", "not-well-formed"),
            ("<message>&#x0;</message>", "not-well-formed"),
            ("<message>&#1;</message>", "not-well-formed"),
            ("<message>&#xD800;</message>", "not-well-formed"),
            ("<message>&#xFFFE;</message>", "not-well-formed"),
            ("<message>&#x110000;</message>", "not-well-formed"),
            ("<message>&#99999999999999;</message>", "not-well-formed"),
            ("<message>&#;</message>", "not-well-formed"),
            ("<message>&#xZZ;</message>", "not-well-formed"),
            ("<message>&;</message>", "not-well-formed"),
            ("<message>& amp;</message>", "not-well-formed"),
            ("<message>&amp</message>", "not-well-formed"),
            ("<message>\u{1}</message>", "not-well-formed"),
            ("<message></iq>", "not-well-formed"),
            ("<message><body></message></body>", "not-well-formed"),
            ("<message a=b/>", "not-well-formed"),
            ("<message a='1' a='2'/>", "not-well-formed"),
            ("<message a='<'/>", "not-well-formed"),
            ("<message <a/>", "not-well-formed"),
            ("<message></>", "not-well-formed"),
            ("<message><foo:x/></message>", "not-well-formed"),
            ("<foo:message/>", "not-well-formed"),
            ("hello", "not-well-formed"),
            ("<presence/>x<presence/>", "not-well-formed"),
            ("&amp;", "not-well-formed"),
            ("<![CDATA[x]]>", "not-well-formed"),
            ("<message><![CDAT[x]]></message>", "not-well-formed"),
            ("<message><!x></message>", "not-well-formed"),
            ("< message/>", "not-well-formed"),
            ("<1message/>", "not-well-formed"),
            ("</stream>", "not-well-formed"),
            ("</stream:stream x='1'>", "not-well-formed"),
        ];
        for (stanza, condition) in cases {
            let input = format!("{HEADER}{stanza}");
            let e = error(input.as_bytes());
            assert_eq!(e.stream_condition(), *condition, "{stanza}: {e}");
        }
    }

    #[test]
    fn invalid_utf8() {
        for bad in [
            &b"<message>\xff</message>"[..],
            b"<message>\xc3\x28</message>",
            b"<message a='\xed\xa0\x80'/>",
            b"\xff",
            b"<message>\xe2\x82",
        ] {
            let mut input = HEADER.as_bytes().to_vec();
            input.extend_from_slice(bad);
            // Unterminated input must be refused as soon as the bad byte is
            // seen; complete input when the element is parsed.
            input.extend_from_slice(b"x");
            let e = error(&input);
            assert_eq!(e.stream_condition(), "not-well-formed", "{bad:?}: {e}");
        }
        assert_eq!(
            error(b"\xef\xbb\xbf<stream:stream>").stream_condition(),
            "not-well-formed"
        );
        // A character split across pushes is not an error.
        let mut f = Framer::new(Limits::default());
        f.push(HEADER.as_bytes());
        assert!(matches!(
            f.next_event(),
            Ok(Some(FrameEvent::StreamOpen(_)))
        ));
        f.push(b"<message>\xe2\x98");
        assert_eq!(f.next_event(), Ok(None));
        f.push(b"\x83</message>");
        let Ok(Some(FrameEvent::Element(m))) = f.next_event() else {
            panic!("no element");
        };
        assert_eq!(m.text(), "\u{2603}");
    }

    #[test]
    fn errors_are_sticky_and_reset_clears_them() {
        let mut f = Framer::new(Limits::default());
        f.push(HEADER.as_bytes());
        f.push(b"<!-- x -->");
        assert!(matches!(
            f.next_event(),
            Ok(Some(FrameEvent::StreamOpen(_)))
        ));
        let e = f.next_event();
        assert!(matches!(e, Err(XmlError::RestrictedXml(_))));
        f.push(b"<presence/>");
        assert_eq!(f.next_event(), e);
        assert_eq!(f.buffered(), 0);
        f.reset();
        f.push(HEADER.as_bytes());
        assert!(matches!(
            f.next_event(),
            Ok(Some(FrameEvent::StreamOpen(_)))
        ));
    }

    #[test]
    fn deep_nesting() {
        let limits = Limits::default();
        let deep = format!("{HEADER}{}", "<a>".repeat(10_000));
        assert_eq!(
            error(deep.as_bytes()).stream_condition(),
            "policy-violation"
        );
        let ok_depth = limits.max_depth;
        let ok = format!(
            "{HEADER}{}{}",
            "<a>".repeat(ok_depth),
            "</a>".repeat(ok_depth)
        );
        assert_eq!(elements(&ok).len(), 1);
        let too_deep = format!(
            "{HEADER}{}<b/>{}",
            "<a>".repeat(ok_depth),
            "</a>".repeat(ok_depth)
        );
        assert_eq!(
            error(too_deep.as_bytes()).stream_condition(),
            "policy-violation"
        );
    }

    #[test]
    fn oversized_stanza_fails_early() {
        let limits = Limits {
            max_stanza_bytes: 1000,
            max_depth: 32,
        };
        let exact = format!("<message>{}</message>", "x".repeat(1000 - 19));
        assert_eq!(exact.len(), 1000);
        let (ev, err) = run(limits, &[HEADER.as_bytes(), exact.as_bytes()]);
        assert_eq!((ev.len(), err), (2, None));

        let mut f = Framer::new(limits);
        f.push(HEADER.as_bytes());
        assert!(matches!(
            f.next_event(),
            Ok(Some(FrameEvent::StreamOpen(_)))
        ));
        f.push(b"<message><body>");
        let mut failed = false;
        // Never terminated: the error must come from the size alone.
        for _ in 0..2000 {
            f.push(b"y");
            match f.next_event() {
                Ok(None) => {}
                Err(e) => {
                    assert_eq!(e.stream_condition(), "policy-violation");
                    failed = true;
                    break;
                }
                Ok(Some(ev)) => panic!("unexpected {ev:?}"),
            }
            assert!(f.buffered() <= 1000);
        }
        assert!(failed);

        // Unterminated tags, comments-in-waiting and entity references are
        // bounded too.
        for prefix in [
            "<message a='",
            "<message",
            "</stream:stream",
            "<message><![CDATA[",
        ] {
            let input = format!("{HEADER}{prefix}{}", "z".repeat(1100));
            assert_eq!(
                error_with(limits, input.as_bytes()).stream_condition(),
                "policy-violation",
                "{prefix}"
            );
        }
        let pi = format!("<?xml {}", "z".repeat(HEADER_LIMIT));
        assert_eq!(error(pi.as_bytes()).stream_condition(), "policy-violation");
    }

    #[test]
    fn large_stanza_byte_by_byte_is_linear() {
        let piece = "abc\u{e9}&amp;<b x='1'/>";
        let n = 200 * 1024 / piece.len() + 1;
        let body = piece.repeat(n);
        let stanza = format!("<message><body>{body}</body></message>");
        assert!(stanza.len() > 200 * 1024);
        let mut f = Framer::new(Limits::default());
        f.push(HEADER.as_bytes());
        assert!(matches!(
            f.next_event(),
            Ok(Some(FrameEvent::StreamOpen(_)))
        ));
        let mut got = None;
        for b in stanza.as_bytes().chunks(1) {
            f.push(b);
            match f.next_event() {
                Ok(None) => {}
                Ok(Some(FrameEvent::Element(e))) => got = Some(e),
                other => panic!("{other:?}"),
            }
        }
        let body_el = got.as_ref().and_then(|m| m.get_child("body", NS_CLIENT));
        assert_eq!(body_el.map(|b| b.children().count()), Some(n));
        // Idle again: the big buffers were given back.
        assert_eq!(f.next_event(), Ok(None));
        assert_eq!(f.buffered(), 0);
        assert!(f.buf.capacity() <= IDLE_CAPACITY);
        assert!(f.scratch.capacity() <= IDLE_CAPACITY);
    }

    #[test]
    fn release_idle_frees_buffers_and_keeps_parsing() {
        let mut f = Framer::new(Limits::default());
        f.push(HEADER.as_bytes());
        f.push(b"<presence/><message><body>hi</body></mess");
        assert!(matches!(
            f.next_event(),
            Ok(Some(FrameEvent::StreamOpen(_)))
        ));
        assert!(matches!(f.next_event(), Ok(Some(FrameEvent::Element(_)))));
        assert_eq!(f.next_event(), Ok(None));
        // Half an element is buffered: it must survive.
        f.release_idle();
        assert!(f.buffered() > 0);
        f.push(b"age>");
        assert!(matches!(f.next_event(), Ok(Some(FrameEvent::Element(_)))));
        assert_eq!(f.next_event(), Ok(None));
        f.release_idle();
        assert_eq!(f.buf.capacity(), 0);
        assert_eq!(f.scratch.capacity(), 0);
        f.push(b"<iq type='get' id='1'/>");
        assert!(matches!(f.next_event(), Ok(Some(FrameEvent::Element(_)))));
    }

    #[test]
    fn close_and_trailing_content() {
        let mut f = Framer::new(Limits::default());
        f.push(HEADER.as_bytes());
        f.push(b"<presence/></stream:stream  ><presence/>");
        assert!(matches!(
            f.next_event(),
            Ok(Some(FrameEvent::StreamOpen(_)))
        ));
        assert!(matches!(f.next_event(), Ok(Some(FrameEvent::Element(_)))));
        assert_eq!(f.next_event(), Ok(Some(FrameEvent::StreamClose)));
        assert_eq!(f.next_event(), Ok(None));
        f.push(b"\xff<!-- ignored -->");
        assert_eq!(f.next_event(), Ok(None));
        assert_eq!(f.buffered(), 0);
        assert_eq!(f.buf.capacity(), 0);
    }

    #[test]
    fn reset_restarts_the_stream() {
        let mut f = Framer::new(Limits::default());
        f.push(HEADER.as_bytes());
        f.push(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><injected/>");
        assert!(matches!(
            f.next_event(),
            Ok(Some(FrameEvent::StreamOpen(_)))
        ));
        assert!(matches!(f.next_event(), Ok(Some(FrameEvent::Element(_)))));
        f.reset();
        assert_eq!(f.buffered(), 0);
        assert_eq!(f.next_event(), Ok(None));
        f.push(HEADER.as_bytes());
        f.push(b"<presence/>");
        assert!(matches!(
            f.next_event(),
            Ok(Some(FrameEvent::StreamOpen(_)))
        ));
        assert_eq!(
            f.next_event(),
            Ok(Some(FrameEvent::Element(Element::new(
                "presence", NS_CLIENT
            ))))
        );
    }

    #[test]
    fn written_header_is_read_back() {
        let h = StreamHeader {
            to: Some("a'b".into()),
            from: Some("example.com".into()),
            id: Some("<id>".into()),
            version: Some("1.0".into()),
            lang: Some("en".into()),
            default_ns: NS_CLIENT.into(),
            stream_prefix: "stream".into(),
        };
        let mut out = Vec::new();
        h.write_to(&mut out);
        let features = Element::new("features", NS_STREAM).with_child(Element::new(
            "mechanisms",
            "urn:ietf:params:xml:ns:xmpp-sasl",
        ));
        features.write_to(&mut out, NS_CLIENT);
        Element::new("message", NS_CLIENT)
            .with_attr("to", "x")
            .write_to(&mut out, NS_CLIENT);
        out.extend_from_slice(crate::xml::STREAM_CLOSE);
        let (ev, err) = run(Limits::default(), &[&out]);
        assert_eq!(err, None);
        assert_eq!(
            ev,
            vec![
                FrameEvent::StreamOpen(h),
                FrameEvent::Element(features),
                FrameEvent::Element(Element::new("message", NS_CLIENT).with_attr("to", "x")),
                FrameEvent::StreamClose,
            ]
        );
    }
}

#[cfg(test)]
mod mutation_tests {
    use super::tests_support::*;
    use super::*;

    /// Every single-byte corruption of a realistic session must neither
    /// panic nor depend on how the bytes were split.
    #[test]
    fn corrupted_sessions() {
        let original = SESSION.as_bytes();
        let mut mismatches = 0;
        for i in 0..original.len() {
            for replacement in [
                b'<', b'>', b'&', b'\'', b'/', b';', 0xff, b'!', b'?', b'x', 0, b']',
            ] {
                let mut input = original.to_vec();
                if let Some(b) = input.get_mut(i) {
                    *b = replacement;
                }
                let (ev_whole, err_whole) = run(Limits::default(), &[&input]);
                let chunks: Vec<&[u8]> = input.chunks(5).collect();
                let (ev_split, err_split) = run(Limits::default(), &chunks);
                let cw = err_whole.as_ref().map(|e| e.stream_condition());
                let cs = err_split.as_ref().map(|e| e.stream_condition());
                if ev_whole != ev_split || cw != cs {
                    mismatches += 1;
                    eprintln!("byte {i} = {replacement}: {err_whole:?} vs {err_split:?}");
                }
            }
        }
        assert_eq!(mismatches, 0);
    }
}

#[cfg(test)]
mod random_tests {
    use super::tests_support::*;
    use super::*;

    /// Random streams assembled from XML-ish fragments: no panics, and the
    /// outcome must not depend on how the input is split.
    #[test]
    fn random_fragment_streams() {
        let iterations: u64 = std::env::var("PERCH_XML_FUZZ")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000);
        const FRAGMENTS: &[&[u8]] = &[
            b"<a>",
            b"</a>",
            b"<b/>",
            b"<a x='1'>",
            b"<a x=\"&amp;\">",
            b"</b>",
            b"text",
            b" ",
            b"\n",
            b"&lt;",
            b"&#65;",
            b"&#0;",
            b"&foo;",
            b"&",
            b";",
            b"<![CDATA[",
            b"]]>",
            b"]",
            b"<!--",
            b"-->",
            b"<?",
            b"?>",
            b"<!DOCTYPE",
            b"'",
            b"\"",
            b"=",
            b"<",
            b">",
            b"/",
            b"<p:a xmlns:p='urn:p'>",
            b"</p:a>",
            b"<q:a>",
            b"\xc3\xa9",
            b"\xe2\x98",
            b"\x83",
            b"\xff",
            b"</stream:stream>",
            b"<stream:features>",
            b"</stream:features>",
            b"<message>",
            b"</message>",
            b"<?xml version='1.0'?>",
        ];
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..iterations {
            let mut input = Vec::new();
            if next() % 8 != 0 {
                input.extend_from_slice(SESSION.as_bytes().get(..180).unwrap_or_default());
            }
            for _ in 0..next() % 40 {
                let idx = (next() % FRAGMENTS.len() as u64) as usize;
                input.extend_from_slice(FRAGMENTS.get(idx).copied().unwrap_or_default());
            }
            let limits = Limits {
                max_stanza_bytes: 64 + (next() % 256) as usize,
                max_depth: 1 + (next() % 4) as usize,
            };
            let (ev_whole, err_whole) = run(limits, &[&input]);
            let size = 1 + (next() % 7) as usize;
            let chunks: Vec<&[u8]> = input.chunks(size).collect();
            let (ev_split, err_split) = run(limits, &chunks);
            assert_eq!(ev_whole, ev_split, "{}", String::from_utf8_lossy(&input));
            assert_eq!(
                err_whole.map(|e| e.stream_condition()),
                err_split.map(|e| e.stream_condition()),
                "{}",
                String::from_utf8_lossy(&input)
            );
        }
    }
}
