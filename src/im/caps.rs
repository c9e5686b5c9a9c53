//! XEP-0115 entity capabilities, as the server uses them to filter PEP
//! notifications (XEP-0163 §4.3): which `NODE+notify` features a client
//! advertises.
//!
//! A client's presence carries `<c hash='…' node='…' ver='…'/>`. The server
//! asks one client with that `ver` for the disco#info of `node#ver`, checks
//! that the answer hashes to `ver` (§5.4), and then trusts the answer for
//! every client announcing the same `ver`. This module is the pure part:
//! reading the claim, building the §5.1 verification string and its hash,
//! the compact feature set and the bounded cache of verified sets. Sending
//! the disco#info request and remembering which session announced what is
//! the caller's business.

use std::cell::{Cell, RefCell};
use std::cmp::Ordering;
use std::fmt;
use std::rc::Rc;

use ring::digest;

use super::NS_DISCO_INFO;
use crate::fasthash::FastMap;
use crate::forms::{FieldType, Form, FormError, NS_DATA};
use crate::sasl::base64;
use crate::xml::Element;

/// The namespace of the `<c/>` element in presence.
pub const NS_CAPS: &str = "http://jabber.org/protocol/caps";

/// Longest `node` or `ver` accepted in a claim, in bytes. Real ones are a
/// URL and a 28–88 character hash; the limit keeps a client from making
/// the server store and echo (in `node#ver`) kilobytes per presence.
pub const MAX_CLAIM_LEN: usize = 1024;

/// Most entries a disco#info answer may have to be hashed: identities,
/// features, extended forms, and their fields and values together. Real
/// clients send a few dozen; beyond this the answer is refused rather than
/// sorted and hashed, so one hostile answer costs bounded work and memory.
pub const MAX_INFO_ENTRIES: usize = 1000;

/// The suffix of a feature by which a client asks for PEP notifications
/// of a node (XEP-0163 §4.3.1).
const NOTIFY_SUFFIX: &str = "+notify";

/// A hash function named in the `hash` attribute, by its IANA "Hash
/// Function Textual Names" name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CapsHash {
    /// `sha-1`, the one XEP-0115 makes mandatory and nearly every client
    /// uses.
    Sha1,
    /// `sha-256`.
    Sha256,
    /// `sha-512`.
    Sha512,
}

impl CapsHash {
    /// The function named `name`; `None` for any other. IANA names are
    /// lower case, but upper case costs nothing to accept.
    pub fn from_name(name: &str) -> Option<CapsHash> {
        [CapsHash::Sha1, CapsHash::Sha256, CapsHash::Sha512]
            .into_iter()
            .find(|h| h.name().eq_ignore_ascii_case(name))
    }

    /// The IANA name, as written in the `hash` attribute.
    pub fn name(self) -> &'static str {
        match self {
            CapsHash::Sha1 => "sha-1",
            CapsHash::Sha256 => "sha-256",
            CapsHash::Sha512 => "sha-512",
        }
    }

    fn algorithm(self) -> &'static digest::Algorithm {
        match self {
            // SHA-1 is what XEP-0115 uses; preimage resistance, which it
            // still has, is what matters here (§9.2), not collisions.
            CapsHash::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            CapsHash::Sha256 => &digest::SHA256,
            CapsHash::Sha512 => &digest::SHA512,
        }
    }

    /// The base64 (RFC 4648 §4, padded) of the digest of `s`: a `ver`.
    pub fn digest_base64(self, s: &str) -> String {
        base64::encode(digest::digest(self.algorithm(), s.as_bytes()).as_ref())
    }
}

/// The capabilities a presence claims: which disco#info to ask for and
/// the hash its answer must have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapsClaim {
    /// The software's URI (`node`).
    pub node: String,
    /// The claimed hash of the software's disco#info (`ver`).
    pub ver: String,
    /// The function `ver` was computed with.
    pub hash: CapsHash,
}

impl CapsClaim {
    /// The disco node to query for this claim, `node#ver` (§6.2).
    pub fn disco_node(&self) -> String {
        let mut s = String::with_capacity(self.node.len() + 1 + self.ver.len());
        s.push_str(&self.node);
        s.push('#');
        s.push_str(&self.ver);
        s
    }
}

/// The claim in a presence stanza: its first `<c/>` child in [`NS_CAPS`].
///
/// `None` when there is none, for legacy caps without `hash` (§5.4 step 1:
/// ignore the `ver`), for a hash function not supported here (step 2: such
/// a `ver` cannot be verified, so it must not be cached globally), and for
/// a missing, empty or oversized (over [`MAX_CLAIM_LEN`]) `node` or `ver`.
pub fn claim_of(presence: &Element) -> Option<CapsClaim> {
    let c = presence.get_child("c", NS_CAPS)?;
    let hash = CapsHash::from_name(c.attr("hash")?)?;
    let node = c.attr("node")?;
    let ver = c.attr("ver")?;
    let fits = |s: &str| !s.is_empty() && s.len() <= MAX_CLAIM_LEN;
    if !fits(node) || !fits(ver) {
        return None;
    }
    Some(CapsClaim {
        node: node.to_string(),
        ver: ver.to_string(),
        hash,
    })
}

/// Why a disco#info answer cannot be hashed: §5.4 says to consider it
/// ill-formed, or it is not one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvalidInfo {
    /// Not a `<query xmlns='http://jabber.org/protocol/disco#info'/>`.
    NotDiscoInfo,
    /// More than [`MAX_INFO_ENTRIES`] entries.
    TooLarge,
    /// An identity without `category` or `type`, which XEP-0030 requires
    /// and §5.1 step 2 cannot do without.
    BadIdentity,
    /// A feature without `var`.
    BadFeature,
    /// Two identities with the same category/type/lang/name (§5.4 3.3).
    DuplicateIdentity(String),
    /// Two features with the same `var` (§5.4 3.4).
    DuplicateFeature(String),
    /// Two extended forms with the same FORM_TYPE (§5.4 3.5).
    DuplicateFormType(String),
    /// A FORM_TYPE field with differing values (§5.4 3.5).
    ConflictingFormType,
    /// An extended form that is not a valid XEP-0004 form.
    BadForm(FormError),
}

impl fmt::Display for InvalidInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidInfo::NotDiscoInfo => f.write_str("not a disco#info query"),
            InvalidInfo::TooLarge => write!(f, "more than {MAX_INFO_ENTRIES} entries"),
            InvalidInfo::BadIdentity => f.write_str("identity without category or type"),
            InvalidInfo::BadFeature => f.write_str("feature without var"),
            InvalidInfo::DuplicateIdentity(id) => write!(f, "identity {id:?} appears twice"),
            InvalidInfo::DuplicateFeature(var) => write!(f, "feature {var:?} appears twice"),
            InvalidInfo::DuplicateFormType(t) => write!(f, "two forms with FORM_TYPE {t:?}"),
            InvalidInfo::ConflictingFormType => f.write_str("FORM_TYPE with differing values"),
            InvalidInfo::BadForm(e) => write!(f, "extended form: {e}"),
        }
    }
}

impl std::error::Error for InvalidInfo {}

/// One identity; the field order is the §5.1 sort order, so the derived
/// `Ord` (byte-wise on `str`, which is "i;octet") sorts as it requires.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Identity<'a> {
    category: &'a str,
    kind: &'a str,
    lang: &'a str,
    name: &'a str,
}

impl Identity<'_> {
    fn push_to(&self, s: &mut String) {
        for (i, part) in [self.category, self.kind, self.lang, self.name]
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                s.push('/');
            }
            s.push_str(part);
        }
    }
}

/// An XEP-0128 extended information form that takes part in the hash.
struct ExtForm {
    form_type: String,
    /// (var, values) of each field but FORM_TYPE.
    fields: Vec<(String, Vec<String>)>,
}

/// What of a disco#info answer goes into the verification string.
struct Info<'a> {
    identities: Vec<Identity<'a>>,
    features: Vec<&'a str>,
    forms: Vec<ExtForm>,
}

/// Reads `query`, refusing what §5.4 calls ill-formed, and sorts it all
/// as §5.1 requires.
fn read_info(query: &Element) -> Result<Info<'_>, InvalidInfo> {
    if !query.is("query", NS_DISCO_INFO) {
        return Err(InvalidInfo::NotDiscoInfo);
    }
    let mut info = Info {
        identities: Vec::new(),
        features: Vec::new(),
        forms: Vec::new(),
    };
    let mut entries = 0usize;
    let mut count = |n: usize| {
        entries = entries.saturating_add(n);
        if entries > MAX_INFO_ENTRIES {
            Err(InvalidInfo::TooLarge)
        } else {
            Ok(())
        }
    };
    for child in query.children() {
        if child.is("identity", NS_DISCO_INFO) {
            count(1)?;
            let (Some(category), Some(kind)) = (child.attr("category"), child.attr("type")) else {
                return Err(InvalidInfo::BadIdentity);
            };
            info.identities.push(Identity {
                category,
                kind,
                lang: child.attr("xml:lang").unwrap_or(""),
                name: child.attr("name").unwrap_or(""),
            });
        } else if child.is("feature", NS_DISCO_INFO) {
            count(1)?;
            info.features
                .push(child.attr("var").ok_or(InvalidInfo::BadFeature)?);
        } else if child.is("x", NS_DATA) {
            // Counted before parsing, so that a huge form is refused
            // before anything of it is copied.
            count(1 + form_size(child))?;
            if let Some(form) = ext_form(child)? {
                info.forms.push(form);
            }
        }
    }

    info.identities.sort_unstable();
    if let Some(id) = first_duplicate(&info.identities, |a, b| a == b) {
        let mut s = String::new();
        id.push_to(&mut s);
        return Err(InvalidInfo::DuplicateIdentity(s));
    }
    info.features.sort_unstable();
    if let Some(var) = first_duplicate(&info.features, |a, b| a == b) {
        return Err(InvalidInfo::DuplicateFeature((*var).to_string()));
    }
    info.forms
        .sort_unstable_by(|a, b| a.form_type.cmp(&b.form_type));
    if let Some(form) = first_duplicate(&info.forms, |a, b| a.form_type == b.form_type) {
        return Err(InvalidInfo::DuplicateFormType(form.form_type.clone()));
    }
    Ok(info)
}

/// The first of two equal neighbours in `sorted`.
fn first_duplicate<T>(sorted: &[T], same: impl Fn(&T, &T) -> bool) -> Option<&T> {
    sorted.windows(2).find_map(|w| match w {
        [a, b] if same(a, b) => Some(a),
        _ => None,
    })
}

/// Fields and their values in a form element, without parsing it.
fn form_size(x: &Element) -> usize {
    x.children()
        .map(|field| 1 + field.children().count())
        .fold(0, usize::saturating_add)
}

/// The extended form in `x`, or `None` when §5.4 3.6 says to ignore it
/// (no FORM_TYPE field, or one that is not hidden).
fn ext_form(x: &Element) -> Result<Option<ExtForm>, InvalidInfo> {
    let form = Form::parse(x).map_err(InvalidInfo::BadForm)?;
    let Some(type_field) = form.field("FORM_TYPE") else {
        return Ok(None);
    };
    if type_field.kind != Some(FieldType::Hidden) {
        return Ok(None);
    }
    let Some(form_type) = type_field.value() else {
        // No value is no FORM_TYPE at all: nothing to sort the form by.
        return Ok(None);
    };
    if type_field.values.iter().any(|v| v != form_type) {
        return Err(InvalidInfo::ConflictingFormType);
    }
    let form_type = form_type.to_string();
    let mut fields: Vec<(String, Vec<String>)> = form
        .fields
        .into_iter()
        // A field without var (XEP-0004 allows that only for `fixed`
        // ones) carries no data and cannot be sorted by var: no generator
        // can have hashed it.
        .filter_map(|f| f.var.map(|var| (var, f.values)))
        .filter(|(var, _)| var != "FORM_TYPE")
        .collect();
    // Form::parse refuses duplicate vars, so this order is total.
    fields.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (_, values) in &mut fields {
        values.sort_unstable();
    }
    Ok(Some(ExtForm { form_type, fields }))
}

/// The XEP-0115 §5.1 verification string of a disco#info `<query/>`
/// (before hashing), or why §5.4 says to reject it.
///
/// Identities are sorted by category, then type, then xml:lang, as §5.1
/// says (not by the joined `category/type/lang/name` string, which orders
/// differently when one category or type is a prefix of another), then by
/// name so that the result does not depend on the answer's order. Forms
/// without a hidden FORM_TYPE are left out (§5.4 3.6).
pub fn verification_string(query: &Element) -> Result<String, InvalidInfo> {
    let info = read_info(query)?;
    let mut s = String::new();
    for id in &info.identities {
        id.push_to(&mut s);
        s.push('<');
    }
    for var in &info.features {
        s.push_str(var);
        s.push('<');
    }
    for form in &info.forms {
        s.push_str(&form.form_type);
        s.push('<');
        for (var, values) in &form.fields {
            s.push_str(var);
            s.push('<');
            for value in values {
                s.push_str(value);
                s.push('<');
            }
        }
    }
    Ok(s)
}

/// The `ver` that `query` hashes to with `hash`: base64 of the digest of
/// its [`verification_string`].
pub fn ver_of(query: &Element, hash: CapsHash) -> Result<String, InvalidInfo> {
    Ok(hash.digest_base64(&verification_string(query)?))
}

/// Whether the disco#info answer `query` verifies `claim`: it is
/// well-formed and hashes to the claimed `ver`. The answer's `node`
/// attribute is not compared: only the hash tells whether the answer
/// describes `ver`.
pub fn verifies(query: &Element, claim: &CapsClaim) -> bool {
    ver_of(query, claim.hash).is_ok_and(|ver| ver == claim.ver)
}

/// The features one client software advertises, shared by every client
/// with the same `ver`.
///
/// Kept sorted in one string with end offsets: two allocations however
/// many features there are, and lookups by binary search.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// The features, sorted and without duplicates, concatenated.
    text: Box<str>,
    /// Where each feature ends in `text`.
    ends: Box<[u32]>,
}

impl Features {
    /// The features (`<feature var/>`) of a disco#info `<query/>`. Meant
    /// for an answer that [`verifies`] a claim; of any other, at most the
    /// first [`MAX_INFO_ENTRIES`] features are taken.
    pub fn from_info(query: &Element) -> Features {
        Features::from_vars(
            query
                .children()
                .filter(|c| c.is("feature", NS_DISCO_INFO))
                .filter_map(|c| c.attr("var"))
                .take(MAX_INFO_ENTRIES),
        )
    }

    /// A set of the given features, in any order, duplicates ignored.
    pub fn from_vars<'a>(vars: impl IntoIterator<Item = &'a str>) -> Features {
        let mut vars: Vec<&str> = vars.into_iter().collect();
        vars.sort_unstable();
        vars.dedup();
        let mut text = String::with_capacity(vars.iter().map(|v| v.len()).sum());
        let mut ends = Vec::with_capacity(vars.len());
        for var in vars {
            // Offsets are u32 to halve the table; a set past 4 GiB cannot
            // come out of a stanza, so stopping there loses nothing real.
            let Ok(end) = u32::try_from(text.len() + var.len()) else {
                break;
            };
            text.push_str(var);
            ends.push(end);
        }
        Features {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }

    /// The number of features.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no features.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The features, sorted by bytes.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.feature(i))
    }

    /// Whether `var` is one of the features.
    pub fn has(&self, var: &str) -> bool {
        self.search(|f| f.cmp(var))
    }

    /// Whether the client wants PEP notifications of `node`: it has the
    /// feature `node+notify` (XEP-0163 §4.3.1). Compares against the two
    /// parts in turn instead of building the string, as this is asked for
    /// every recipient of every PEP publication.
    pub fn wants_notify(&self, node: &str) -> bool {
        self.search(|f| f.bytes().cmp(node.bytes().chain(NOTIFY_SUFFIX.bytes())))
    }

    /// Feature `i`; empty if out of range, which the callers never ask.
    fn feature(&self, i: usize) -> &str {
        let start = match i.checked_sub(1) {
            None => 0,
            Some(prev) => self.ends.get(prev).copied().unwrap_or(0),
        };
        let end = self.ends.get(i).copied().unwrap_or(start);
        self.text.get(start as usize..end as usize).unwrap_or("")
    }

    /// Binary search: `cmp` orders a feature against the one sought.
    fn search(&self, cmp: impl Fn(&str) -> Ordering) -> bool {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match cmp(self.feature(mid)) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return true,
            }
        }
        false
    }
}

#[derive(Debug)]
struct CacheEntry {
    features: Rc<Features>,
    /// The cache's clock when the entry was last inserted or read.
    used: Cell<u64>,
}

/// Verified feature sets by `ver`, at most `capacity` of them.
///
/// When full, an insert evicts the least recently used entry (inserted or
/// read longest ago). Popular clients' `ver`s are read on every presence
/// with caps and so stay, while a client cycling through generated
/// capabilities mostly evicts its own earlier entries; evicting the oldest
/// instead would drop a popular entry as soon as enough new ones arrive.
/// Either way memory is bounded, and an evicted `ver` costs one more
/// disco#info query.
///
/// Reads only stamp the entry; the eviction scan happens on inserts, which
/// are rare (each follows a disco#info round trip and a hash) and cost
/// O(capacity), cheaper than maintaining a recency list on every read.
/// The map's hash is keyed at random and only verified `ver`s, which are
/// digests the inserting client cannot choose, are stored.
#[derive(Debug)]
pub struct CapsCache {
    capacity: usize,
    entries: RefCell<FastMap<Box<str>, CacheEntry>>,
    /// Increases on every read and insert; a u64 does not wrap.
    clock: Cell<u64>,
}

impl CapsCache {
    /// An empty cache holding at most `capacity` entries; 0 caches nothing.
    pub fn new(capacity: usize) -> Self {
        CapsCache {
            capacity,
            entries: RefCell::new(FastMap::default()),
            clock: Cell::new(0),
        }
    }

    fn tick(&self) -> u64 {
        let now = self.clock.get().wrapping_add(1);
        self.clock.set(now);
        now
    }

    /// The features verified for `ver`, if still cached.
    pub fn get(&self, ver: &str) -> Option<Rc<Features>> {
        let entries = self.entries.borrow();
        let entry = entries.get(ver)?;
        entry.used.set(self.tick());
        Some(Rc::clone(&entry.features))
    }

    /// Caches the features verified for `ver`, replacing any earlier
    /// ones, and evicts the least recently used entry if full.
    pub fn insert(&self, ver: String, features: Rc<Features>) {
        if self.capacity == 0 {
            return;
        }
        let now = self.tick();
        let mut entries = self.entries.borrow_mut();
        if let Some(entry) = entries.get_mut(ver.as_str()) {
            entry.features = features;
            entry.used.set(now);
            return;
        }
        if entries.len() >= self.capacity
            && let Some(oldest) = entries.values().map(|e| e.used.get()).min()
        {
            // Stamps are unique (the clock ticks on every use), so this
            // removes exactly one entry, without copying its key.
            entries.retain(|_, e| e.used.get() != oldest);
        }
        entries.insert(
            ver.into_boxed_str(),
            CacheEntry {
                features,
                used: Cell::new(now),
            },
        );
    }

    /// The number of cached entries.
    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.borrow().is_empty()
    }

    /// The most entries the cache holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
#[path = "caps_tests.rs"]
mod tests;
