//! XMPP addresses: RFC 7622 syntax with the RFC 6122 stringprep profiles
//! (Nodeprep, Nameprep, Resourceprep), which is what deployed servers such as
//! Prosody and ejabberd still compare with.
//!
//! Two flavours of preparation exist because RFC 3454 §7 distinguishes
//! "stored strings" from "queries": addresses that merely pass through (a
//! remote occupant called `room@muc.example/🤖`) must not be rejected just
//! because they use code points newer than Unicode 3.2, while identifiers we
//! create and keep (account names, MUC nicknames) must not contain them,
//! because their normalization is undefined and may change later.
//! [`Jid::parse`] and the non-`_strict` helpers are lenient; the `_strict`
//! helpers reject unassigned code points.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::Ipv6Addr;
use std::str::FromStr;
use std::sync::Arc;

use stringprep::tables;

/// Upper bound for each part, in bytes after preparation (RFC 7622 §3.1).
pub const MAX_PART_LEN: usize = 1023;
/// DNS label limit (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// Why a string is not a valid JID or JID part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JidError {
    EmptyLocal,
    EmptyDomain,
    EmptyResource,
    LocalTooLong,
    DomainTooLong,
    ResourceTooLong,
    ForbiddenLocalChar(char),
    ForbiddenDomainChar(char),
    ForbiddenResourceChar(char),
    UnassignedLocalChar(char),
    UnassignedDomainChar(char),
    UnassignedResourceChar(char),
    LocalBidi,
    DomainBidi,
    ResourceBidi,
    EmptyDomainLabel,
    DomainLabelTooLong,
    DomainLabelHyphen,
    InvalidIpLiteral,
}

struct CharName(char);

impl fmt::Display for CharName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Control and invisible characters would be unreadable in a log or
        // error text, so always add the code point.
        write!(
            f,
            "'{}' (U+{:04X})",
            self.0.escape_debug(),
            u32::from(self.0)
        )
    }
}

impl fmt::Display for JidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use JidError::*;
        match *self {
            EmptyLocal => f.write_str("the localpart (before '@') is empty"),
            EmptyDomain => f.write_str("the domainpart is empty"),
            EmptyResource => f.write_str("the resourcepart (after '/') is empty"),
            LocalTooLong => write!(f, "the localpart is longer than {MAX_PART_LEN} bytes"),
            DomainTooLong => write!(f, "the domainpart is longer than {MAX_PART_LEN} bytes"),
            ResourceTooLong => write!(f, "the resourcepart is longer than {MAX_PART_LEN} bytes"),
            ForbiddenLocalChar(c) => {
                write!(
                    f,
                    "the localpart contains the forbidden character {}",
                    CharName(c)
                )
            }
            ForbiddenDomainChar(c) => {
                write!(
                    f,
                    "the domainpart contains the forbidden character {}",
                    CharName(c)
                )
            }
            ForbiddenResourceChar(c) => write!(
                f,
                "the resourcepart contains the forbidden character {}",
                CharName(c)
            ),
            UnassignedLocalChar(c) => write!(
                f,
                "the localpart contains {}, which is not allowed here (not in Unicode 3.2)",
                CharName(c)
            ),
            UnassignedDomainChar(c) => write!(
                f,
                "the domainpart contains {}, which is not allowed (not in Unicode 3.2)",
                CharName(c)
            ),
            UnassignedResourceChar(c) => write!(
                f,
                "the resourcepart contains {}, which is not allowed here (not in Unicode 3.2)",
                CharName(c)
            ),
            LocalBidi => f.write_str("the localpart mixes right-to-left and left-to-right text"),
            DomainBidi => f.write_str("the domainpart mixes right-to-left and left-to-right text"),
            ResourceBidi => {
                f.write_str("the resourcepart mixes right-to-left and left-to-right text")
            }
            EmptyDomainLabel => f.write_str("the domainpart contains an empty label ('..')"),
            DomainLabelTooLong => write!(
                f,
                "a label of the domainpart is longer than {MAX_LABEL_LEN} bytes"
            ),
            DomainLabelHyphen => {
                f.write_str("a label of the domainpart starts or ends with a hyphen")
            }
            InvalidIpLiteral => f.write_str("the domainpart is not a valid [IPv6] literal"),
        }
    }
}

impl std::error::Error for JidError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Local,
    Domain,
    Resource,
}

impl Part {
    fn empty(self) -> JidError {
        match self {
            Part::Local => JidError::EmptyLocal,
            Part::Domain => JidError::EmptyDomain,
            Part::Resource => JidError::EmptyResource,
        }
    }

    fn too_long(self) -> JidError {
        match self {
            Part::Local => JidError::LocalTooLong,
            Part::Domain => JidError::DomainTooLong,
            Part::Resource => JidError::ResourceTooLong,
        }
    }

    fn forbidden(self, c: char) -> JidError {
        match self {
            Part::Local => JidError::ForbiddenLocalChar(c),
            Part::Domain => JidError::ForbiddenDomainChar(c),
            Part::Resource => JidError::ForbiddenResourceChar(c),
        }
    }

    fn unassigned(self, c: char) -> JidError {
        match self {
            Part::Local => JidError::UnassignedLocalChar(c),
            Part::Domain => JidError::UnassignedDomainChar(c),
            Part::Resource => JidError::UnassignedResourceChar(c),
        }
    }

    fn bidi(self) -> JidError {
        match self {
            Part::Local => JidError::LocalBidi,
            Part::Domain => JidError::DomainBidi,
            Part::Resource => JidError::ResourceBidi,
        }
    }

    /// The full (strict) stringprep profile for this part.
    fn stringprep(self, s: &str) -> Result<Cow<'_, str>, stringprep::Error> {
        match self {
            Part::Local => stringprep::nodeprep(s),
            Part::Domain => stringprep::nameprep(s),
            Part::Resource => stringprep::resourceprep(s),
        }
    }

    /// The profile's prohibition tables, needed for code points the crate's
    /// (always strict) profiles never get to see in lenient mode.
    fn prohibited(self, c: char) -> bool {
        let common = tables::non_ascii_space_character(c)
            || tables::non_ascii_control_character(c)
            || tables::private_use(c)
            || tables::non_character_code_point(c)
            || tables::surrogate_code(c)
            || tables::inappropriate_for_plain_text(c)
            || tables::inappropriate_for_canonical_representation(c)
            || tables::change_display_properties_or_deprecated(c)
            || tables::tagging_character(c);
        match self {
            Part::Local => {
                common
                    || tables::ascii_space_character(c)
                    || tables::ascii_control_character(c)
                    || is_forbidden_local_ascii(c)
            }
            Part::Domain => common,
            Part::Resource => common || tables::ascii_control_character(c),
        }
    }
}

/// RFC 7622 §3.3.1 / RFC 6122 Appendix A.5 additions to Nodeprep.
fn is_forbidden_local_ascii(c: char) -> bool {
    matches!(c, '"' | '&' | '\'' | '/' | ':' | '<' | '>' | '@')
}

fn ascii_forbidden_in(part: Part, b: u8) -> bool {
    match part {
        Part::Local => b <= b' ' || b == 0x7f || is_forbidden_local_ascii(char::from(b)),
        Part::Resource => b < b' ' || b == 0x7f,
        // Domain characters are checked label by label afterwards.
        Part::Domain => false,
    }
}

/// Hand-written equivalent of the stringprep profiles restricted to ASCII:
/// no ASCII character is mapped to nothing or changed by NFKC, the only
/// mapping is case folding (Nodeprep/Nameprep), and ASCII has no
/// right-to-left characters, so only the prohibition tables remain.
fn prep_ascii(part: Part, s: &str) -> Result<Cow<'_, str>, JidError> {
    if let Some(b) = s.bytes().find(|&b| ascii_forbidden_in(part, b)) {
        return Err(part.forbidden(char::from(b)));
    }
    let folds = part != Part::Resource;
    if folds && s.bytes().any(|b| b.is_ascii_uppercase()) {
        Ok(Cow::Owned(s.to_ascii_lowercase()))
    } else {
        Ok(Cow::Borrowed(s))
    }
}

/// Runs the stringprep profile through the `stringprep` crate.
///
/// In lenient mode, code points unassigned in Unicode 3.2 are passed through
/// untouched, exactly as RFC 3454 §7 prescribes for queries: the string is
/// cut at those code points, each run is prepared on its own (an unassigned
/// code point is a normalization barrier under Unicode 3.2 rules), and the
/// bidi rule is then checked on the whole result.
fn prep_unicode(part: Part, s: &str, strict: bool) -> Result<Cow<'_, str>, JidError> {
    if strict || !s.chars().any(tables::unassigned_code_point) {
        return part.stringprep(s).map_err(|_| diagnose(part, s, strict));
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while !rest.is_empty() {
        let run_len = rest
            .find(tables::unassigned_code_point)
            .unwrap_or(rest.len());
        let (run, tail) = rest.split_at(run_len);
        if !run.is_empty() {
            prep_run(part, run, &mut out)?;
        }
        let mut chars = tail.chars();
        if let Some(c) = chars.next() {
            if part.prohibited(c) {
                return Err(part.forbidden(c));
            }
            out.push(c);
        }
        rest = chars.as_str();
    }
    if violates_bidi(&out) {
        return Err(part.bidi());
    }
    Ok(Cow::Owned(out))
}

/// An isolated run may fail the bidi rule although the whole string passes
/// (e.g. "א1" + U+1F916 + "ב"). Retrying with a Hebrew letter on both sides
/// satisfies the first/last-character requirement without changing the
/// run's normalization: U+05D0 is a starter that composes with nothing.
fn prep_run(part: Part, run: &str, out: &mut String) -> Result<(), JidError> {
    const GUARD: char = '\u{05D0}';
    if let Ok(p) = part.stringprep(run) {
        out.push_str(&p);
        return Ok(());
    }
    let guarded = format!("{GUARD}{run}{GUARD}");
    let prepared = part
        .stringprep(&guarded)
        .map_err(|_| diagnose(part, run, false))?;
    let inner = prepared
        .strip_prefix(GUARD)
        .and_then(|p| p.strip_suffix(GUARD))
        .ok_or(part.bidi())?;
    out.push_str(inner);
    Ok(())
}

/// The stringprep crate does not say which character failed, so find it by
/// preparing characters one at a time; only runs on the error path.
fn diagnose(part: Part, s: &str, strict: bool) -> JidError {
    let mut buf = [0u8; 4];
    for c in s.chars() {
        if tables::unassigned_code_point(c) {
            if part.prohibited(c) {
                return part.forbidden(c);
            }
            if strict {
                return part.unassigned(c);
            }
            continue;
        }
        if part.stringprep(c.encode_utf8(&mut buf)).is_err() {
            return part.forbidden(c);
        }
    }
    part.bidi()
}

/// RFC 3454 §6.
fn violates_bidi(s: &str) -> bool {
    if !s.contains(tables::bidi_r_or_al) {
        return false;
    }
    let first_ok = s.chars().next().is_some_and(tables::bidi_r_or_al);
    let last_ok = s.chars().next_back().is_some_and(tables::bidi_r_or_al);
    s.contains(tables::bidi_l) || !first_ok || !last_ok
}

fn prep_part(part: Part, s: &str, strict: bool) -> Result<Cow<'_, str>, JidError> {
    if s.is_empty() {
        return Err(part.empty());
    }
    let out = if s.is_ascii() {
        prep_ascii(part, s)?
    } else {
        prep_unicode(part, s, strict)?
    };
    check_len(part, out)
}

fn check_len(part: Part, out: Cow<'_, str>) -> Result<Cow<'_, str>, JidError> {
    // Mapping to nothing can empty a non-empty input (e.g. U+200B alone).
    if out.is_empty() {
        Err(part.empty())
    } else if out.len() > MAX_PART_LEN {
        Err(part.too_long())
    } else {
        Ok(out)
    }
}

/// Nodeprep for a localpart (case-folded). Lenient about code points
/// unassigned in Unicode 3.2; use this for addresses received from others.
pub fn prep_local(s: &str) -> Result<Cow<'_, str>, JidError> {
    prep_part(Part::Local, s, false)
}

/// Nodeprep for a localpart that will be stored, e.g. a new account name:
/// additionally rejects code points unassigned in Unicode 3.2.
pub fn prep_local_strict(s: &str) -> Result<Cow<'_, str>, JidError> {
    prep_part(Part::Local, s, true)
}

/// Resourceprep for a resourcepart (case is kept). Lenient about code points
/// unassigned in Unicode 3.2.
pub fn prep_resource(s: &str) -> Result<Cow<'_, str>, JidError> {
    prep_part(Part::Resource, s, false)
}

/// Strict Resourceprep, for resources and MUC nicknames we hand out or
/// store: rejects prohibited characters, bidi violations and code points
/// unassigned in Unicode 3.2 (so the nickname "🤖", U+1F916, is refused,
/// as Prosody does).
pub fn prep_resource_strict(s: &str) -> Result<Cow<'_, str>, JidError> {
    prep_part(Part::Resource, s, true)
}

/// Prepares a domainpart: strips one trailing dot, canonicalizes bracketed
/// IPv6 literals, applies Nameprep (which lowercases) and checks the labels.
///
/// ASCII labels must be letters, digits, '-' and '_' (the underscore is not
/// in the hostname rules, but internal and component hostnames use it and
/// other servers accept it) and must not start or end with '-'. A-labels
/// (`xn--…`) are kept as they are, as Prosody does, so they do not compare
/// equal to the corresponding U-label.
pub fn prep_domain(s: &str) -> Result<Cow<'_, str>, JidError> {
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() {
        return Err(JidError::EmptyDomain);
    }
    if let Some(inner) = s.strip_prefix('[') {
        return prep_ipv6_literal(s, inner);
    }
    if is_prepared_ascii_domain(s) {
        return Ok(Cow::Borrowed(s));
    }
    let out = if s.is_ascii() {
        prep_ascii(Part::Domain, s)?
    } else {
        prep_domain_unicode(s)?
    };
    check_domain_labels(out)
}

/// The common case in one pass over the bytes: a domain already in its
/// prepared form (lowercase ASCII labels of letters, digits, '-' and '_',
/// none empty, too long or with a hyphen at either end). Anything else
/// takes the general path, which also finds the error to report.
fn is_prepared_ascii_domain(s: &str) -> bool {
    if s.len() > MAX_PART_LEN {
        return false;
    }
    let mut label_len = 0;
    let mut prev = b'.';
    for &b in s.as_bytes() {
        match b {
            b'.' => {
                if label_len == 0 || prev == b'-' {
                    return false;
                }
                label_len = 0;
            }
            b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' => {
                if b == b'-' && label_len == 0 {
                    return false;
                }
                label_len += 1;
                if label_len > MAX_LABEL_LEN {
                    return false;
                }
            }
            _ => return false,
        }
        prev = b;
    }
    label_len > 0 && prev != b'-'
}

fn prep_domain_unicode(s: &str) -> Result<Cow<'_, str>, JidError> {
    // IDNA (RFC 3490 §3.1) treats these as dots; Nameprep alone would keep
    // U+3002, leaving a domain that can never be resolved.
    let is_dot = |c: char| matches!(c, '\u{3002}' | '\u{FF0E}' | '\u{FF61}');
    // Code points unassigned in Unicode 3.2 are refused as they come in:
    // Nameprep's own check runs after NFKC, which (with today's tables)
    // may turn one into an assigned capital that is then never case-folded
    // (U+03F9 became U+03A3, and U+03C3 on a second pass: found by the
    // `jid` fuzz target).
    if let Some(c) = s.chars().find(|&c| tables::unassigned_code_point(c)) {
        return Err(JidError::UnassignedDomainChar(c));
    }
    if s.contains(is_dot) {
        let mapped: String = s.chars().map(|c| if is_dot(c) { '.' } else { c }).collect();
        let prepared = prep_unicode(Part::Domain, &mapped, true)?.into_owned();
        Ok(Cow::Owned(prepared))
    } else {
        prep_unicode(Part::Domain, s, true)
    }
}

fn prep_ipv6_literal<'a>(whole: &'a str, inner: &str) -> Result<Cow<'a, str>, JidError> {
    let addr = inner
        .strip_suffix(']')
        .and_then(|a| Ipv6Addr::from_str(a).ok())
        .ok_or(JidError::InvalidIpLiteral)?;
    // RFC 5952 text form, so that "[::1]" and "[0:0::1]" compare equal.
    let canonical = format!("[{addr}]");
    if canonical == whole {
        Ok(Cow::Borrowed(whole))
    } else {
        Ok(Cow::Owned(canonical))
    }
}

fn check_domain_labels(out: Cow<'_, str>) -> Result<Cow<'_, str>, JidError> {
    let out = check_len(Part::Domain, out)?;
    for label in out.split('.') {
        if label.is_empty() {
            return Err(JidError::EmptyDomainLabel);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(JidError::DomainLabelTooLong);
        }
        if let Some(c) = label
            .chars()
            .find(|&c| c.is_ascii() && !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            return Err(JidError::ForbiddenDomainChar(c));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(JidError::DomainLabelHyphen);
        }
    }
    Ok(out)
}

/// A validated, normalized XMPP address.
///
/// Stored as one shared string plus offsets; the offsets are determined by
/// the string (neither localpart nor domainpart may contain '@' or '/'), so
/// comparisons are plain string comparisons of the normalized form. The
/// string is reference-counted and a bare JID made from a full one
/// ([`Jid::to_bare`]) shares it, ending earlier: routing clones and strips
/// JIDs for every stanza, and neither allocates.
#[derive(Clone)]
pub struct Jid {
    /// The full JID this one was cut from; `as_str` is `shared[..end]`.
    shared: Arc<str>,
    /// Byte offset of the '@'; 0 when there is no localpart (a localpart is
    /// never empty, so 0 is free to mean "none").
    local_end: u16,
    /// Byte offset where the domainpart ends ('/' or end of string).
    domain_end: u16,
    /// Byte offset where this JID ends: `domain_end` for a bare JID cut
    /// from a full one, else the length of `shared`.
    end: u16,
}

impl Jid {
    /// Parses and normalizes `local@domain/resource` (RFC 7622 §3.1: the
    /// resourcepart starts at the first '/', the localpart ends at the first
    /// '@' before it).
    pub fn parse(s: &str) -> Result<Jid, JidError> {
        let (address, resource) = match s.split_once('/') {
            Some((a, r)) => (a, Some(r)),
            None => (s, None),
        };
        let (local, domain) = match address.split_once('@') {
            Some((l, d)) => (Some(l), d),
            None => (None, address),
        };
        if let Some(l) = local
            && l.is_empty()
        {
            return Err(JidError::EmptyLocal);
        }
        // A second '@' would otherwise be reported as a generic domain error.
        if domain.contains('@') {
            return Err(JidError::ForbiddenDomainChar('@'));
        }
        Jid::new(local, domain, resource)
    }

    /// Builds a JID from separate parts, preparing each of them.
    pub fn new(local: Option<&str>, domain: &str, resource: Option<&str>) -> Result<Jid, JidError> {
        let local = local.map(prep_local).transpose()?;
        let domain = prep_domain(domain)?;
        let resource = resource.map(prep_resource).transpose()?;
        Ok(Jid::assemble(
            local.as_deref(),
            &domain,
            resource.as_deref(),
        ))
    }

    /// Joins already prepared parts. Lengths are bounded by MAX_PART_LEN,
    /// so the offsets fit in u16.
    fn assemble(local: Option<&str>, domain: &str, resource: Option<&str>) -> Jid {
        // Short addresses (nearly all) are joined on the stack, so the
        // shared string is the only allocation.
        let mut stack = [0u8; 256];
        let mut heap = Vec::new();
        let len =
            local.map_or(0, |l| l.len() + 1) + domain.len() + resource.map_or(0, |r| r.len() + 1);
        let buf: &mut [u8] = match stack.get_mut(..len) {
            Some(b) => b,
            None => {
                heap.resize(len, 0);
                &mut heap
            }
        };
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            if let Some(dst) = buf.get_mut(at..at + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
            at += bytes.len();
        };
        let mut local_end = 0;
        if let Some(l) = local {
            put(l.as_bytes());
            local_end = l.len();
            put(b"@");
        }
        put(domain.as_bytes());
        let domain_end = local_end + usize::from(local.is_some()) + domain.len();
        if let Some(r) = resource {
            put(b"/");
            put(r.as_bytes());
        }
        // Whole UTF-8 strings and ASCII separators were copied in.
        let full = std::str::from_utf8(buf).unwrap_or_default();
        Jid {
            shared: Arc::from(full),
            local_end: u16::try_from(local_end).unwrap_or(u16::MAX),
            domain_end: u16::try_from(domain_end).unwrap_or(u16::MAX),
            end: u16::try_from(full.len()).unwrap_or(u16::MAX),
        }
    }

    fn domain_start(&self) -> usize {
        if self.local_end == 0 {
            0
        } else {
            usize::from(self.local_end) + 1
        }
    }

    pub fn local(&self) -> Option<&str> {
        if self.local_end == 0 {
            None
        } else {
            self.shared.get(..usize::from(self.local_end))
        }
    }

    pub fn domain(&self) -> &str {
        self.shared
            .get(self.domain_start()..usize::from(self.domain_end))
            .unwrap_or_default()
    }

    pub fn resource(&self) -> Option<&str> {
        if self.is_bare() {
            None
        } else {
            self.as_str().get(usize::from(self.domain_end) + 1..)
        }
    }

    /// `local@domain` or `domain`, borrowed from the full form.
    pub fn bare_str(&self) -> &str {
        self.shared
            .get(..usize::from(self.domain_end))
            .unwrap_or_default()
    }

    /// The full string form.
    pub fn as_str(&self) -> &str {
        self.shared.get(..usize::from(self.end)).unwrap_or_default()
    }

    /// The bare JID, sharing this one's string.
    pub fn to_bare(&self) -> Jid {
        Jid {
            shared: self.shared.clone(),
            local_end: self.local_end,
            domain_end: self.domain_end,
            end: self.domain_end,
        }
    }

    /// The domain alone, e.g. to address the server hosting this JID.
    pub fn to_domain(&self) -> Jid {
        Jid::assemble(None, self.domain(), None)
    }

    pub fn is_bare(&self) -> bool {
        self.domain_end == self.end
    }

    pub fn is_full(&self) -> bool {
        !self.is_bare()
    }

    /// This JID's bare form with the given resource (replacing any).
    pub fn with_resource(&self, res: &str) -> Result<Jid, JidError> {
        let res = prep_resource(res)?;
        Ok(Jid::assemble(self.local(), self.domain(), Some(&res)))
    }
}

// Comparisons are those of the normalized string form, whatever is shared.
impl PartialEq for Jid {
    fn eq(&self, other: &Jid) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Jid {}

impl Hash for Jid {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialOrd for Jid {
    fn partial_cmp(&self, other: &Jid) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Jid {
    fn cmp(&self, other: &Jid) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl fmt::Debug for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Jid").field(&self.as_str()).finish()
    }
}

impl fmt::Display for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Jid {
    type Err = JidError;

    fn from_str(s: &str) -> Result<Jid, JidError> {
        Jid::parse(s)
    }
}

impl AsRef<str> for Jid {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

#[cfg(test)]
#[path = "jid_tests.rs"]
mod tests;
