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
                let root = doc.root_element();
                // XML Names §3, as for stanzas (roxmltree accepts it): the
                // declaration would be repeated around every stanza.
                if root.namespaces().any(|ns| ns.name() == Some("xmlns")) {
                    return Err(not_well_formed("the 'xmlns' prefix is declared"));
                }
                stream_header::from_node(root)
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
#[path = "framer_tests.rs"]
mod tests;
