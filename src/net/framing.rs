//! Translation between the TCP c2s byte stream and transports that carry one
//! top-level element at a time: WebSocket (RFC 7395: one element per text
//! frame, `<open/>` and `<close/>` in [`NS_FRAMING`]) and BOSH (XEP-0206:
//! elements inside `<body/>`).
//!
//! Why a translator rather than a second state machine: the c2s machine
//! (`stream::c2s`) and the outbound queue are transport-neutral and write the
//! bytes of a `<stream:stream>` document; the XML framer reads one. Keeping
//! them that way means one implementation of stream negotiation, SASL,
//! stream management and every stanza rule, whichever socket a client uses.
//! WebSocket and BOSH translate at the edge instead, in both directions:
//!
//! - [`OutputSplitter`] cuts what the server writes into pieces (the stream
//!   header becomes `<open/>`, `</stream:stream>` becomes `<close/>`, each
//!   top-level element becomes one self-contained frame, whitespace
//!   keepalives are reported as such);
//! - [`InputTranslator`] turns each frame a client sends back into stream
//!   bytes for the framer.
//!
//! Neither parses XML fully. The output is Perch's own well-formed XML and
//! the input is checked by the framer afterwards, so a small scanner that
//! knows tags, quoted attribute values, comments, processing instructions,
//! CDATA sections and nesting depth is enough to find element boundaries,
//! in one pass and without allocating per element. The structural bytes it
//! looks at are ASCII, which never occurs inside a multi-byte UTF-8
//! character, so scanning raw bytes is sound even when a chunk ends in the
//! middle of a character.

use std::fmt;

use crate::xml::{NS_CLIENT, NS_STREAM, NS_XML, STREAM_CLOSE, escape_attr_into};

/// Namespace of the RFC 7395 `<open/>` and `<close/>` elements.
pub const NS_FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";
/// Namespace of the `stream:` prefix (`stream:features`, `stream:error`).
pub const NS_STREAMS: &str = NS_STREAM;

/// The RFC 7395 close element, the frame that ends a WebSocket stream.
const CLOSE_FRAME: &[u8] = b"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>";
/// Inserted into a top-level `stream:` element: over TCP the prefix is
/// declared once on the stream header, which a framed transport lacks.
const DECLARE_STREAM: &[u8] = b" xmlns:stream='http://etherx.jabber.org/streams'";
/// Inserted into an unprefixed top-level element that inherits the stream's
/// default namespace (stanzas as the outbox holds them).
const DECLARE_CLIENT: &[u8] = b" xmlns='jabber:client'";

// ---------------------------------------------------------------------------
// The scanner shared by both directions.

/// Where the scanner is. Every markup state remembers just enough to
/// resume in the next chunk without looking back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    /// Character data (between elements when the depth is 0).
    #[default]
    Text,
    /// Inside `<name …` or `</name …`: `quote` is the open quote (0 for
    /// none), `slash` whether the last byte outside quotes was `/`.
    Tag { end: bool, quote: u8, slash: bool },
    /// Inside `<!--`: how many `-` just went by (at most 2).
    Comment { dashes: u8 },
    /// Inside `<![CDATA[`: how many `]` just went by (at most 2).
    Cdata { brackets: u8 },
    /// Inside `<?`: whether the last byte was `?`.
    Pi { question: bool },
    /// Inside `<!DOCTYPE` or another `<!` declaration: quotes and the
    /// brackets of an internal subset, whose `>` do not end it.
    Decl { quote: u8, brackets: u8 },
}

/// Markup outside any element, which the callers drop or refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Markup {
    Pi,
    Comment,
    Cdata,
    Decl,
}

/// What the scanner found at depth 0, ending at the scan position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Found {
    /// A run of character data between elements (up to a `<` or the end
    /// of the bytes so far); `blank` if it is only whitespace.
    Text {
        blank: bool,
    },
    Markup(Markup),
    /// The start tag of a top-level element; `empty` if it is `<…/>`.
    TopStart {
        empty: bool,
    },
    /// The end tag that closes the top-level element.
    ElementEnd,
    /// An end tag with no element open: `</stream:stream>`.
    StrayEnd,
}

/// The element-boundary scanner. It owns no bytes: the caller passes the
/// same (growing) buffer each time and moves `pos` when it compacts.
#[derive(Clone, Debug, Default)]
struct Scanner {
    state: State,
    /// Open elements, the stream element not counted.
    depth: usize,
    /// Bytes before this are scanned.
    pos: usize,
}

const fn tag(end: bool) -> State {
    State::Tag {
        end,
        quote: 0,
        slash: false,
    }
}

/// How each kind of markup starts, and the state it enters; a longer
/// opener before any shorter one it starts with.
const OPENERS: [(&[u8], State); 6] = [
    (b"<!--", State::Comment { dashes: 0 }),
    (b"<![CDATA[", State::Cdata { brackets: 0 }),
    (b"<?", State::Pi { question: false }),
    (b"</", tag(true)),
    (
        b"<!",
        State::Decl {
            quote: 0,
            brackets: 0,
        },
    ),
    (b"<", tag(false)),
];

/// The state that `rest` (starting with `<`) opens and the length of its
/// opener, or None if `rest` is too short to tell yet (`<!-` might become a
/// comment).
fn classify(rest: &[u8]) -> Option<(State, usize)> {
    if OPENERS
        .iter()
        .any(|(opener, _)| opener.len() > rest.len() && opener.starts_with(rest))
    {
        return None;
    }
    OPENERS
        .iter()
        .find(|(opener, _)| rest.starts_with(opener))
        .map(|&(opener, state)| (state, opener.len()))
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

impl Scanner {
    /// Scans on from `pos` to the next thing found at depth 0, or returns
    /// None with everything up to the end of `buf` scanned (except a `<`
    /// whose kind the bytes so far cannot tell).
    fn next(&mut self, buf: &[u8]) -> Option<Found> {
        loop {
            let rest = buf.get(self.pos..)?;
            if self.state == State::Text {
                let lt = rest.iter().position(|&b| b == b'<');
                if self.depth == 0 {
                    let run = lt.unwrap_or(rest.len());
                    if run > 0 {
                        let blank = rest.get(..run).is_some_and(|r| r.iter().all(|&b| is_ws(b)));
                        self.pos += run;
                        return Some(Found::Text { blank });
                    }
                }
                let Some(lt) = lt else {
                    self.pos = buf.len();
                    return None;
                };
                self.pos += lt;
                let (state, len) = classify(rest.get(lt..)?)?;
                self.state = state;
                self.pos += len;
                continue;
            }
            let Some(len) = self.close_markup(rest) else {
                self.pos = buf.len();
                return None;
            };
            self.pos += len;
            let closed = std::mem::replace(&mut self.state, State::Text);
            if let Some(found) = self.closed(closed) {
                return Some(found);
            }
        }
    }

    /// Updates the depth for markup that just ended and says what it was
    /// if that matters at depth 0.
    fn closed(&mut self, markup: State) -> Option<Found> {
        let top = self.depth == 0;
        match markup {
            State::Tag { end: true, .. } if top => Some(Found::StrayEnd),
            State::Tag { end: true, .. } => {
                self.depth -= 1;
                (self.depth == 0).then_some(Found::ElementEnd)
            }
            State::Tag { slash: true, .. } => top.then_some(Found::TopStart { empty: true }),
            State::Tag { .. } => {
                self.depth = self.depth.saturating_add(1);
                top.then_some(Found::TopStart { empty: false })
            }
            State::Comment { .. } => top.then_some(Found::Markup(Markup::Comment)),
            State::Cdata { .. } => top.then_some(Found::Markup(Markup::Cdata)),
            State::Pi { .. } => top.then_some(Found::Markup(Markup::Pi)),
            State::Decl { .. } => top.then_some(Found::Markup(Markup::Decl)),
            State::Text => None,
        }
    }

    /// The length of `rest` up to and including the `>` that ends the
    /// current markup, or None (state updated) if it does not end in `rest`.
    fn close_markup(&mut self, rest: &[u8]) -> Option<usize> {
        if let State::Tag { quote, slash, .. } = &mut self.state {
            // The hot path (every tag of every stanza): jump between the
            // few bytes that matter instead of stepping through each.
            return scan_tag(rest, quote, slash);
        }
        for (i, &b) in rest.iter().enumerate() {
            let done = match &mut self.state {
                State::Text | State::Tag { .. } => return None,
                State::Comment { dashes: run } => step_run(b, b'-', run),
                State::Cdata { brackets: run } => step_run(b, b']', run),
                State::Pi { question } => {
                    let ended = b == b'>' && *question;
                    *question = b == b'?';
                    ended
                }
                State::Decl { quote, brackets } => step_decl(b, quote, brackets),
            };
            if done {
                return Some(i + 1);
            }
        }
        None
    }
}

/// One byte of a comment (`mark` is `-`) or CDATA section (`]`); true at
/// its final `>`, which must follow two marks.
fn step_run(b: u8, mark: u8, run: &mut u8) -> bool {
    let ended = b == b'>' && *run >= 2;
    *run = if b == mark { (*run + 1).min(2) } else { 0 };
    ended
}

/// One byte of a `<!…>` declaration; true at its final `>`.
fn step_decl(b: u8, quote: &mut u8, brackets: &mut u8) -> bool {
    if *quote != 0 {
        if b == *quote {
            *quote = 0;
        }
        return false;
    }
    match b {
        b'\'' | b'"' => *quote = b,
        b'[' => *brackets = brackets.saturating_add(1),
        b']' => *brackets = brackets.saturating_sub(1),
        b'>' => return *brackets == 0,
        _ => {}
    }
    false
}

/// Scans a tag for its closing `>` (outside quotes); see [`State::Tag`].
fn scan_tag(rest: &[u8], quote: &mut u8, slash: &mut bool) -> Option<usize> {
    let mut i = 0;
    loop {
        let tail = rest.get(i..)?;
        if *quote != 0 {
            let q = *quote;
            let n = tail.iter().position(|&b| b == q)?;
            *quote = 0;
            *slash = false;
            i += n + 1;
            continue;
        }
        let Some(n) = tail.iter().position(|&b| matches!(b, b'>' | b'\'' | b'"')) else {
            if let Some(&last) = tail.last() {
                *slash = last == b'/';
            }
            return None;
        };
        if let Some(before) = n.checked_sub(1).and_then(|k| tail.get(k)) {
            *slash = *before == b'/';
        }
        match tail.get(n) {
            Some(b'>') => return Some(i + n + 1),
            Some(&q) => *quote = q,
            None => return None,
        }
        i += n + 1;
    }
}

// ---------------------------------------------------------------------------
// Tags and attributes, for the few tags that are looked into.

/// The qualified name of the element whose tag `tag` starts (`tag` begins
/// with `<`). It stops at every byte that matters to the scanner, so that
/// inserting right after it never moves a quote.
fn element_name(tag: &[u8]) -> &[u8] {
    let after = tag.get(1..).unwrap_or_default();
    let len = after
        .iter()
        .position(|&b| is_ws(b) || matches!(b, b'>' | b'/' | b'\'' | b'"' | b'=' | b'<'))
        .unwrap_or(after.len());
    after.get(..len).unwrap_or_default()
}

/// The attributes of a start tag, as (name, raw value) pairs; stops at the
/// end of the tag or at anything that is not a well-formed attribute.
struct Attrs<'a> {
    rest: &'a [u8],
}

impl<'a> Attrs<'a> {
    fn of(tag: &'a [u8]) -> Self {
        let skip = 1 + element_name(tag).len();
        Attrs {
            rest: tag.get(skip..).unwrap_or_default(),
        }
    }
}

fn trim_ws(s: &[u8]) -> &[u8] {
    let n = s.iter().position(|&b| !is_ws(b)).unwrap_or(s.len());
    s.get(n..).unwrap_or_default()
}

impl<'a> Iterator for Attrs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let s = trim_ws(self.rest);
        let name_len = s
            .iter()
            .position(|&b| is_ws(b) || matches!(b, b'=' | b'/' | b'>' | b'\'' | b'"'))
            .unwrap_or(s.len());
        let (name, s) = s.split_at_checked(name_len)?;
        if name.is_empty() {
            return None;
        }
        let s = trim_ws(trim_ws(s).strip_prefix(b"=")?);
        let (&quote, s) = s.split_first()?;
        if quote != b'\'' && quote != b'"' {
            return None;
        }
        let end = s.iter().position(|&b| b == quote)?;
        let (value, s) = s.split_at_checked(end)?;
        self.rest = s.get(1..)?;
        Some((name, value))
    }
}

/// An attribute value with its references resolved. Unknown or malformed
/// references are kept as written (this reads Perch's own output).
fn unescape(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.iter().position(|&b| b == b'&') {
        let (plain, from_amp) = rest.split_at_checked(amp).unwrap_or((rest, &[]));
        out.extend_from_slice(plain);
        let semi = from_amp.iter().take(12).position(|&b| b == b';');
        let decoded = semi.and_then(|s| from_amp.get(1..s)).and_then(entity);
        match (decoded, semi) {
            (Some(c), Some(s)) => {
                let mut utf8 = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                rest = from_amp.get(s + 1..).unwrap_or_default();
            }
            _ => {
                out.push(b'&');
                rest = from_amp.get(1..).unwrap_or_default();
            }
        }
    }
    out.extend_from_slice(rest);
    String::from_utf8_lossy(&out).into_owned()
}

/// The character an entity or character reference (between `&` and `;`)
/// stands for.
fn entity(name: &[u8]) -> Option<char> {
    let code = match name {
        b"amp" => return Some('&'),
        b"lt" => return Some('<'),
        b"gt" => return Some('>'),
        b"apos" => return Some('\''),
        b"quot" => return Some('"'),
        [b'#', b'x', hex @ ..] => u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16),
        [b'#', dec @ ..] => std::str::from_utf8(dec).ok()?.parse(),
        _ => return None,
    };
    char::from_u32(code.ok()?)
}

// ---------------------------------------------------------------------------
// Output: what the server writes, cut into frames.

/// The stream header's attributes, unescaped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenAttrs {
    pub id: Option<String>,
    pub from: Option<String>,
    pub version: Option<String>,
    pub lang: Option<String>,
}

/// One piece of the server's output; its frame payload is written beside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutPiece {
    /// The stream header; the payload is the RFC 7395 `<open/>`.
    Open(OpenAttrs),
    /// One top-level element, made self-contained.
    Element,
    /// `</stream:stream>`; the payload is the RFC 7395 `<close/>`.
    Close,
    /// A run of whitespace between elements; the payload is empty (RFC
    /// 7395 §3.8: no whitespace frames, a WebSocket keeps alive with pings).
    Keepalive,
}

/// Cuts the c2s output byte stream into [`OutPiece`]s, incrementally: bytes
/// come in arbitrary chunks and each byte is scanned once.
#[derive(Debug, Default)]
pub struct OutputSplitter {
    buf: Vec<u8>,
    /// Where the piece being scanned starts; bytes before it are consumed.
    start: usize,
    scan: Scanner,
    /// For the top-level element being scanned: where (from `start`) its
    /// start tag needs a namespace declaration, and which.
    insert: Option<(usize, &'static [u8])>,
}

impl OutputSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Buffers output bytes. Consumed bytes are dropped first, once per
    /// push, so the buffer holds only what is not yet a piece.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start.min(self.buf.len()));
            self.scan.pos = self.scan.pos.saturating_sub(self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// True when everything pushed has been returned as pieces.
    pub fn is_idle(&self) -> bool {
        self.start >= self.buf.len()
    }

    /// Frees the buffer if it is idle: an idle connection holds no heap.
    pub fn release(&mut self) {
        if self.is_idle() {
            self.buf = Vec::new();
            self.start = 0;
            self.scan.pos = 0;
        }
    }

    /// The next complete piece, its frame payload written to `payload`
    /// (cleared first), or None until more bytes are pushed. Markup between
    /// elements (the XML declaration; anything else cannot come from Perch)
    /// and stray non-whitespace text are dropped.
    pub fn next_piece(&mut self, payload: &mut Vec<u8>) -> Option<OutPiece> {
        payload.clear();
        loop {
            let Some(found) = self.scan.next(&self.buf) else {
                if self.is_idle() {
                    // Nothing partial: reuse the buffer from its start.
                    self.buf.clear();
                    self.start = 0;
                    self.scan.pos = 0;
                }
                return None;
            };
            let piece = self.buf.get(self.start..self.scan.pos).unwrap_or_default();
            let out = match found {
                Found::Text { blank: true } => Some(OutPiece::Keepalive),
                Found::Text { blank: false } | Found::Markup(_) => None,
                Found::StrayEnd => {
                    payload.extend_from_slice(CLOSE_FRAME);
                    Some(OutPiece::Close)
                }
                Found::TopStart { empty: false } if element_name(piece) == b"stream:stream" => {
                    // The stream element is not an element of the stream.
                    self.scan.depth = 0;
                    Some(OutPiece::Open(write_open(piece, payload)))
                }
                Found::TopStart { empty: false } => {
                    self.insert = insertion(piece);
                    continue;
                }
                Found::TopStart { empty: true } => {
                    write_element(piece, insertion(piece), payload);
                    Some(OutPiece::Element)
                }
                Found::ElementEnd => {
                    write_element(piece, self.insert.take(), payload);
                    Some(OutPiece::Element)
                }
            };
            self.start = self.scan.pos;
            if out.is_some() {
                return out;
            }
        }
    }
}

/// The namespace declaration a top-level start tag needs to stand alone
/// (RFC 7395 §3.3.3), with where it goes: right after the name.
fn insertion(tag: &[u8]) -> Option<(usize, &'static [u8])> {
    let name = element_name(tag);
    let at = 1 + name.len();
    let (attr, what): (&[u8], _) = if name.starts_with(b"stream:") {
        (b"xmlns:stream", DECLARE_STREAM)
    } else if !name.is_empty() && !name.contains(&b':') {
        (b"xmlns", DECLARE_CLIENT)
    } else {
        return None;
    };
    let declared = Attrs::of(tag).any(|(n, _)| n == attr);
    (!declared).then_some((at, what))
}

fn write_element(piece: &[u8], insert: Option<(usize, &[u8])>, payload: &mut Vec<u8>) {
    let split = insert.and_then(|(at, what)| Some((piece.split_at_checked(at)?, what)));
    match split {
        Some(((head, tail), what)) => {
            payload.reserve(piece.len() + what.len());
            payload.extend_from_slice(head);
            payload.extend_from_slice(what);
            payload.extend_from_slice(tail);
        }
        None => payload.extend_from_slice(piece),
    }
}

/// Reads the stream header `tag` and writes the `<open/>` that stands for
/// it.
fn write_open(tag: &[u8], payload: &mut Vec<u8>) -> OpenAttrs {
    let mut attrs = OpenAttrs::default();
    for (name, value) in Attrs::of(tag) {
        let slot = match name {
            b"id" => &mut attrs.id,
            b"from" => &mut attrs.from,
            b"version" => &mut attrs.version,
            b"xml:lang" => &mut attrs.lang,
            _ => continue,
        };
        *slot = Some(unescape(value));
    }
    payload.extend_from_slice(b"<open xmlns='");
    payload.extend_from_slice(NS_FRAMING.as_bytes());
    payload.push(b'\'');
    write_attrs(
        payload,
        [
            ("id", &attrs.id),
            ("from", &attrs.from),
            ("version", &attrs.version),
            ("xml:lang", &attrs.lang),
        ],
    );
    payload.extend_from_slice(b"/>");
    attrs
}

/// Appends ` name='value'` (escaped) for each value present.
fn write_attrs<const N: usize>(out: &mut Vec<u8>, attrs: [(&str, &Option<String>); N]) {
    for (name, value) in attrs {
        if let Some(value) = value {
            out.push(b' ');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"='");
            escape_attr_into(value, out);
            out.push(b'\'');
        }
    }
}

// ---------------------------------------------------------------------------
// Input: what a client sends, one frame at a time.

/// What a client frame was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// `<open/>`: a stream header was appended.
    Open,
    /// `<close/>`: `</stream:stream>` was appended.
    Close,
    /// One element, appended as it came.
    Element,
    /// Only whitespace: nothing appended.
    Empty,
}

/// Why a client frame was refused (RFC 7395 §3.3.3: one whole element).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FramingError {
    /// The frame ends inside an element, a tag, a comment or a CDATA
    /// section.
    Incomplete,
    /// Two elements, or none (only an XML declaration).
    NotOneElement,
    /// Character data (or CDATA) outside the element.
    TextOutside,
    /// A DTD or other `<!…>` declaration outside the element.
    Doctype,
    /// A comment or processing instruction outside the element (RFC 6120
    /// §11.1 forbids them); names which.
    Restricted(&'static str),
    /// An end tag with no element open.
    UnexpectedEndTag,
    /// An `<open/>` that does not parse; the parser's reason.
    BadOpen(String),
    /// A `<close/>` that does not parse; the parser's reason.
    BadClose(String),
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FramingError::Incomplete => f.write_str("the frame ends inside an element"),
            FramingError::NotOneElement => f.write_str("a frame must hold exactly one element"),
            FramingError::TextOutside => f.write_str("text outside the element of a frame"),
            FramingError::Doctype => f.write_str("a document type declaration in a frame"),
            FramingError::Restricted(what) => write!(f, "{what} outside the element of a frame"),
            FramingError::UnexpectedEndTag => f.write_str("an end tag with no element open"),
            FramingError::BadOpen(why) => write!(f, "malformed <open/>: {why}"),
            FramingError::BadClose(why) => write!(f, "malformed <close/>: {why}"),
        }
    }
}

impl std::error::Error for FramingError {}

/// Turns client frames into the byte stream the c2s framer reads.
#[derive(Clone, Copy, Debug, Default)]
pub struct InputTranslator;

impl InputTranslator {
    /// Appends to `into` what the frame `text` stands for on a TCP stream:
    /// a stream header for `<open/>`, `</stream:stream>` for `<close/>`,
    /// the element itself otherwise. Nothing is appended on error.
    pub fn frame(text: &[u8], into: &mut Vec<u8>) -> Result<FrameKind, FramingError> {
        let Some(element) = the_element(text)? else {
            return Ok(FrameKind::Empty);
        };
        let name = element_name(element);
        let local = name.rsplit(|&b| b == b':').next().unwrap_or_default();
        let control = match local {
            b"open" => open_to_header(element, into)?,
            b"close" => close_to_end(element, into)?,
            _ => None,
        };
        if let Some(kind) = control {
            return Ok(kind);
        }
        into.extend_from_slice(element);
        Ok(FrameKind::Element)
    }
}

/// The one element of a frame (None if there is only whitespace), checked
/// with the scanner: no element parse, the framer does that.
fn the_element(text: &[u8]) -> Result<Option<&[u8]>, FramingError> {
    let mut scan = Scanner::default();
    // The element, once complete, and where it starts while it is open.
    let mut element: Option<(usize, usize)> = None;
    let mut open_at = None;
    // The XML declaration may come first (after whitespace, leniently).
    let mut declaration_allowed = true;
    loop {
        let from = scan.pos;
        let Some(found) = scan.next(text) else { break };
        match found {
            Found::Text { blank: true } => continue,
            Found::Text { blank: false } | Found::Markup(Markup::Cdata) => {
                return Err(FramingError::TextOutside);
            }
            Found::Markup(Markup::Pi)
                if declaration_allowed && is_xml_declaration(text.get(from..scan.pos)) => {}
            Found::Markup(Markup::Pi) => {
                return Err(FramingError::Restricted("a processing instruction"));
            }
            Found::Markup(Markup::Comment) => return Err(FramingError::Restricted("a comment")),
            Found::Markup(Markup::Decl) => return Err(FramingError::Doctype),
            Found::StrayEnd => return Err(FramingError::UnexpectedEndTag),
            Found::TopStart { .. } if element.is_some() => return Err(FramingError::NotOneElement),
            Found::TopStart { empty: true } => element = Some((from, scan.pos)),
            Found::TopStart { empty: false } => open_at = Some(from),
            Found::ElementEnd => element = open_at.map(|s| (s, scan.pos)),
        }
        declaration_allowed = false;
    }
    if scan.state != State::Text || scan.depth > 0 || scan.pos < text.len() {
        let in_decl = matches!(scan.state, State::Decl { .. }) && scan.depth == 0;
        return Err(if in_decl {
            FramingError::Doctype
        } else {
            FramingError::Incomplete
        });
    }
    match element {
        Some((s, e)) => Ok(text.get(s..e)),
        // An XML declaration and nothing else.
        None if !declaration_allowed => Err(FramingError::NotOneElement),
        None => Ok(None),
    }
}

fn is_xml_declaration(pi: Option<&[u8]>) -> bool {
    pi.and_then(|pi| pi.strip_prefix(b"<?xml"))
        .and_then(|rest| rest.first())
        .is_some_and(|&b| is_ws(b) || b == b'?')
}

fn parse_control(element: &[u8]) -> Result<roxmltree::Document<'_>, String> {
    let text = std::str::from_utf8(element).map_err(|e| e.to_string())?;
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        ..roxmltree::ParsingOptions::default()
    };
    roxmltree::Document::parse_with_options(text, options).map_err(|e| e.to_string())
}

/// `<open/>` becomes a stream header with its `to`, `from`, `version` and
/// `xml:lang`. Any namespace makes a header, so that a wrong one reaches
/// the c2s machine, which answers `invalid-namespace` as RFC 7395 wants.
fn open_to_header(element: &[u8], into: &mut Vec<u8>) -> Result<Option<FrameKind>, FramingError> {
    let doc = parse_control(element).map_err(FramingError::BadOpen)?;
    let open = doc.root_element();
    let ns = open.tag_name().namespace().unwrap_or("");
    let (default_ns, stream_ns) = match ns {
        NS_FRAMING => (NS_CLIENT, NS_STREAM),
        // The header would be accepted as a client stream: bind the stream
        // prefix wrongly too, so the framer refuses it (invalid-namespace).
        NS_CLIENT => (NS_CLIENT, NS_CLIENT),
        other => (other, NS_STREAM),
    };
    let get = |name: &str| open.attribute(name).map(str::to_owned);
    into.extend_from_slice(b"<stream:stream xmlns='");
    escape_attr_into(default_ns, into);
    into.extend_from_slice(b"' xmlns:stream='");
    into.extend_from_slice(stream_ns.as_bytes());
    into.push(b'\'');
    write_attrs(
        into,
        [
            ("to", &get("to")),
            ("from", &get("from")),
            ("version", &get("version")),
            (
                "xml:lang",
                &open.attribute((NS_XML, "lang")).map(str::to_owned),
            ),
        ],
    );
    into.push(b'>');
    Ok(Some(FrameKind::Open))
}

/// `<close/>` in the framing namespace becomes `</stream:stream>`; a
/// `close` in another namespace is an ordinary element (None).
fn close_to_end(element: &[u8], into: &mut Vec<u8>) -> Result<Option<FrameKind>, FramingError> {
    let doc = parse_control(element).map_err(FramingError::BadClose)?;
    if doc.root_element().tag_name().namespace() != Some(NS_FRAMING) {
        return Ok(None);
    }
    into.extend_from_slice(STREAM_CLOSE);
    Ok(Some(FrameKind::Close))
}

#[cfg(test)]
#[path = "framing_tests.rs"]
mod tests;
