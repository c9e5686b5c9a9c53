//! Publish-subscribe nodes (XEP-0060) on disk, for every account's PEP
//! service (XEP-0163, addressed by the account's bare JID) and for the
//! pubsub service (addressed by its domain): per node a record (its
//! configuration, affiliations and subscriptions) and its items. Layouts
//! are documented in `schema.rs`, beside the tables.
//!
//! A node's items are one key range (service, node, id), so every write
//! of a node touches that range only, and a node whose name is a prefix of
//! another's ("a", "ab") never sees the other's items: the 0x00 after the
//! node name ends the prefix. Items are keyed by id so that re-publishing
//! an id replaces it in place; their order is their stamps', which a node
//! of at most a few hundred items sorts in memory.
//!
//! Files from before pubsub existed lack these tables: reads find nothing
//! there, and the first write creates them.

use std::ops::Range;

use redb::{ReadableTable, TableHandle};

use super::keys::{self, Def, SEPARATOR};
use super::schema::{PUBSUB_ITEMS, PUBSUB_NODES};
use super::{Store, StoreError, WriteOp};

/// The longest node name or item id, in bytes (names and ids are
/// non-empty too).
pub const MAX_NAME_BYTES: usize = 1024;

/// A JID's standing on a node (XEP-0060 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Affiliation {
    Owner,
    Publisher,
    PublishOnly,
    Member,
    None,
    Outcast,
}

impl Affiliation {
    /// The byte that stands for it in a stored record.
    fn code(self) -> u8 {
        match self {
            Affiliation::Owner => 1,
            Affiliation::Publisher => 2,
            Affiliation::PublishOnly => 3,
            Affiliation::Member => 4,
            Affiliation::None => 5,
            Affiliation::Outcast => 6,
        }
    }

    fn from_code(code: u8) -> Option<Affiliation> {
        Some(match code {
            1 => Affiliation::Owner,
            2 => Affiliation::Publisher,
            3 => Affiliation::PublishOnly,
            4 => Affiliation::Member,
            5 => Affiliation::None,
            6 => Affiliation::Outcast,
            _ => return None,
        })
    }
}

/// A subscription to a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// The full or bare JID as subscribed.
    pub jid: String,
    /// The subscription id (XEP-0060 §6.1.6).
    pub subid: String,
}

/// What the store keeps of a node besides its items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRecord {
    /// The node configuration, encoded by the pubsub service; opaque here.
    pub config: Vec<u8>,
    /// Bare JIDs and their affiliations.
    pub affiliations: Vec<(String, Affiliation)>,
    pub subscriptions: Vec<Subscription>,
}

/// The version byte that starts an encoded [`NodeRecord`].
const RECORD_VERSION: u8 = 1;

impl NodeRecord {
    /// The stored value (layout in `schema.rs`).
    pub fn encode(&self) -> Vec<u8> {
        let strings: usize = self.affiliations.iter().map(|(j, _)| j.len() + 2).sum();
        let subs: usize = self
            .subscriptions
            .iter()
            .map(|s| s.jid.len() + s.subid.len() + 2)
            .sum();
        let mut out = Vec::with_capacity(8 + self.config.len() + strings + subs);
        out.push(RECORD_VERSION);
        put_bytes(&mut out, &self.config);
        put_len(&mut out, self.affiliations.len());
        for (jid, affiliation) in &self.affiliations {
            put_bytes(&mut out, jid.as_bytes());
            out.push(affiliation.code());
        }
        put_len(&mut out, self.subscriptions.len());
        for sub in &self.subscriptions {
            put_bytes(&mut out, sub.jid.as_bytes());
            put_bytes(&mut out, sub.subid.as_bytes());
        }
        out
    }

    /// The record stored as `bytes`; anything but a whole record of a
    /// known version is `Corrupt`.
    pub fn decode(bytes: &[u8]) -> Result<NodeRecord, StoreError> {
        let mut r = Reader::new(PUBSUB_NODES, "a node record", bytes);
        let version = r.byte("version")?;
        if version != RECORD_VERSION {
            return Err(r.fail(&format!(
                "version {version} (this Perch reads {RECORD_VERSION})"
            )));
        }
        let config = r.bytes("configuration")?.to_vec();
        // Counts are not trusted for allocation: each entry takes at least
        // one byte, so a damaged count runs out of input quickly.
        let mut affiliations = Vec::new();
        for _ in 0..r.len("affiliation count")? {
            let jid = r.str("affiliated JID")?.to_string();
            let code = r.byte("affiliation")?;
            let affiliation = Affiliation::from_code(code)
                .ok_or_else(|| r.fail(&format!("affiliation {code} of {jid}")))?;
            affiliations.push((jid, affiliation));
        }
        let mut subscriptions = Vec::new();
        for _ in 0..r.len("subscription count")? {
            let jid = r.str("subscribed JID")?.to_string();
            let subid = r.str("subscription id")?.to_string();
            subscriptions.push(Subscription { jid, subid });
        }
        r.finish()?;
        Ok(NodeRecord {
            config,
            affiliations,
            subscriptions,
        })
    }
}

/// An item of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredItem {
    pub id: String,
    /// When it was published (the caller's clock, increasing): items are
    /// ordered by it.
    pub stamp: u64,
    /// The publisher's JID.
    pub publisher: String,
    /// The item's payload serialized as UTF-8 XML.
    pub payload: String,
}

/// Appends `len` as unsigned LEB128: one byte for the short strings that
/// records are made of, and no length it cannot write.
fn put_len(out: &mut Vec<u8>, len: usize) {
    let mut n = len as u64;
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// Reads a stored value from the front, turning every shortfall into a
/// `Corrupt` naming the table, the value and the field.
struct Reader<'v> {
    table: Def,
    what: &'v str,
    rest: &'v [u8],
}

impl<'v> Reader<'v> {
    fn new(table: Def, what: &'v str, rest: &'v [u8]) -> Self {
        Reader { table, what, rest }
    }

    fn fail(&self, detail: &str) -> StoreError {
        keys::corrupt(self.table, format!("{}: {detail}", self.what))
    }

    fn byte(&mut self, field: &str) -> Result<u8, StoreError> {
        let (&b, rest) = self
            .rest
            .split_first()
            .ok_or_else(|| self.fail(&format!("{field} missing")))?;
        self.rest = rest;
        Ok(b)
    }

    fn len(&mut self, field: &str) -> Result<usize, StoreError> {
        let mut n = 0u64;
        // Ten bytes carry 70 bits, enough for any u64; more is damage.
        for shift in (0..70).step_by(7) {
            let b = self.byte(field)?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                break;
            }
            n |= bits << shift;
            if b & 0x80 == 0 {
                return usize::try_from(n).map_err(|_| self.fail(&format!("{field} too large")));
            }
        }
        Err(self.fail(&format!("{field} too large")))
    }

    fn bytes(&mut self, field: &str) -> Result<&'v [u8], StoreError> {
        let len = self.len(field)?;
        if self.rest.len() < len {
            return Err(self.fail(&format!("{field} cut short")));
        }
        let (bytes, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(bytes)
    }

    fn str(&mut self, field: &str) -> Result<&'v str, StoreError> {
        let bytes = self.bytes(field)?;
        std::str::from_utf8(bytes).map_err(|_| self.fail(&format!("{field} is not UTF-8")))
    }

    fn finish(&self) -> Result<(), StoreError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.fail(&format!("{} bytes after the end", self.rest.len())))
        }
    }
}

/// The stored value of an item (layout in `schema.rs`).
fn item_value(item: &StoredItem) -> Vec<u8> {
    let mut out = Vec::with_capacity(10 + item.publisher.len() + item.payload.len());
    out.extend_from_slice(&item.stamp.to_be_bytes());
    put_bytes(&mut out, item.publisher.as_bytes());
    out.extend_from_slice(item.payload.as_bytes());
    out
}

/// The stamp of a stored item, without reading the rest of it: what
/// ordering and trimming need.
fn item_stamp(value: &[u8], key: &[u8]) -> Result<u64, StoreError> {
    value
        .first_chunk::<8>()
        .map(|b| u64::from_be_bytes(*b))
        .ok_or_else(|| {
            keys::corrupt(
                PUBSUB_ITEMS,
                format!("item {} has no stamp", String::from_utf8_lossy(key)),
            )
        })
}

/// The item `id` stored as `value`.
fn decode_item(id: &str, value: &[u8]) -> Result<StoredItem, StoreError> {
    let what = format!("item {id}");
    let (stamp, rest) = value
        .split_first_chunk::<8>()
        .ok_or_else(|| keys::corrupt(PUBSUB_ITEMS, format!("{what}: stamp missing")))?;
    let mut r = Reader::new(PUBSUB_ITEMS, &what, rest);
    let publisher = r.str("publisher")?.to_string();
    let payload = std::str::from_utf8(r.rest)
        .map_err(|_| r.fail("payload is not UTF-8"))?
        .to_string();
    Ok(StoredItem {
        id: id.to_string(),
        stamp: u64::from_be_bytes(*stamp),
        publisher,
        payload,
    })
}

/// Adds the node and service to a decoding error, which only knows the
/// table.
fn in_node(e: StoreError, service: &str, node: &str) -> StoreError {
    match e {
        StoreError::Corrupt(m) => StoreError::Corrupt(format!("{m} (node {node} of {service})")),
        other => other,
    }
}

/// A half-open range of keys built here (item keys have three parts,
/// which `keys` has no builder for); its bounds are the type every range
/// of the schema passes, so redb's range code is not compiled again.
struct Span {
    start: Vec<u8>,
    end: Vec<u8>,
}

impl Span {
    fn bounds(&self) -> Range<&[u8]> {
        self.start.as_slice()..self.end.as_slice()
    }
}

/// Every item key of the node: service 0x00 node 0x00 followed by an id.
fn items_of(service: &str, node: &str) -> Result<Span, StoreError> {
    let mut start = keys::pair(PUBSUB_ITEMS, service, node)?;
    let mut end = start.clone();
    start.push(SEPARATOR);
    // 0x01 sorts after every key that goes on with the separator.
    end.push(SEPARATOR + 1);
    Ok(Span { start, end })
}

fn item_key(service: &str, node: &str, id: &str) -> Result<Vec<u8>, StoreError> {
    if id.as_bytes().contains(&SEPARATOR) {
        return Err(StoreError::InvalidKey {
            table: PUBSUB_ITEMS.name().to_string(),
            part: id.to_string(),
        });
    }
    let mut key = keys::pair(PUBSUB_ITEMS, service, node)?;
    key.reserve(1 + id.len());
    key.push(SEPARATOR);
    key.extend_from_slice(id.as_bytes());
    Ok(key)
}

/// The item id at the end of a key from [`items_of`]'s range.
fn item_id<'k>(span: &Span, key: &'k [u8]) -> Result<&'k str, StoreError> {
    let id = key.strip_prefix(span.start.as_slice()).ok_or_else(|| {
        keys::corrupt(
            PUBSUB_ITEMS,
            format!("a key out of its node: {}", String::from_utf8_lossy(key)),
        )
    })?;
    std::str::from_utf8(id).map_err(|_| {
        keys::corrupt(
            PUBSUB_ITEMS,
            format!(
                "an item id that is not UTF-8 in {}",
                String::from_utf8_lossy(key)
            ),
        )
    })
}

/// Refuses a node name or an item id that is empty or too long (a NUL is
/// refused by the key builders).
fn check_name(what: &str, name: &str) -> Result<(), StoreError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(StoreError::LimitExceeded(format!(
            "a pubsub {what} of {} bytes (1 to {MAX_NAME_BYTES})",
            name.len()
        )));
    }
    Ok(())
}

type BytesTable<'t> = redb::Table<'t, &'static [u8], &'static [u8]>;
type ReadTable = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

/// `def` in a read transaction; `None` in a file from before it existed.
fn open_read(txn: &redb::ReadTransaction, def: Def) -> Result<Option<ReadTable>, StoreError> {
    match txn.open_table(def) {
        Ok(table) => Ok(Some(table)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The node's items, oldest first (ties, which monotonic stamps do not
/// make, by id).
fn read_items(table: &ReadTable, service: &str, node: &str) -> Result<Vec<StoredItem>, StoreError> {
    let span = items_of(service, node)?;
    let mut out = Vec::new();
    for entry in table.range(span.bounds())? {
        let (key, value) = entry?;
        let id = item_id(&span, key.value()).map_err(|e| in_node(e, service, node))?;
        out.push(decode_item(id, value.value()).map_err(|e| in_node(e, service, node))?);
    }
    out.sort_unstable_by(|a, b| (a.stamp, &a.id).cmp(&(b.stamp, &b.id)));
    Ok(out)
}

/// Read access to the nodes and items of every service.
pub struct Pubsub<'a> {
    store: &'a Store,
}

impl<'a> Pubsub<'a> {
    pub(super) fn new(store: &'a Store) -> Self {
        Pubsub { store }
    }

    /// The node's record, if it exists.
    pub fn node(&self, service: &str, node: &str) -> Result<Option<NodeRecord>, StoreError> {
        let key = keys::pair(PUBSUB_NODES, service, node)?;
        self.store.read(|txn| {
            let Some(table) = open_read(txn, PUBSUB_NODES)? else {
                return Ok(None);
            };
            let value = table.get(key.as_slice())?;
            value
                .map(|v| NodeRecord::decode(v.value()).map_err(|e| in_node(e, service, node)))
                .transpose()
        })
    }

    /// Every node of the service with its record, by name.
    pub fn nodes(&self, service: &str) -> Result<Vec<(String, NodeRecord)>, StoreError> {
        self.store.read(|txn| {
            let Some(table) = open_read(txn, PUBSUB_NODES)? else {
                return Ok(Vec::new());
            };
            read_nodes(&table, service)
        })
    }

    /// The node's items, oldest first; none if the node does not exist.
    pub fn items(&self, service: &str, node: &str) -> Result<Vec<StoredItem>, StoreError> {
        self.store.read(|txn| match open_read(txn, PUBSUB_ITEMS)? {
            Some(table) => read_items(&table, service, node),
            None => Ok(Vec::new()),
        })
    }

    /// The item `id` of the node, if it is stored.
    pub fn item(
        &self,
        service: &str,
        node: &str,
        id: &str,
    ) -> Result<Option<StoredItem>, StoreError> {
        let key = item_key(service, node, id)?;
        self.store.read(|txn| {
            let Some(table) = open_read(txn, PUBSUB_ITEMS)? else {
                return Ok(None);
            };
            let value = table.get(key.as_slice())?;
            value
                .map(|v| decode_item(id, v.value()).map_err(|e| in_node(e, service, node)))
                .transpose()
        })
    }

    /// The node's newest item (what a new subscriber is sent). Only the
    /// stamps are read to find it, then that one item.
    pub fn last_item(&self, service: &str, node: &str) -> Result<Option<StoredItem>, StoreError> {
        let span = items_of(service, node)?;
        self.store.read(|txn| {
            let Some(table) = open_read(txn, PUBSUB_ITEMS)? else {
                return Ok(None);
            };
            let mut newest: Option<(u64, Vec<u8>)> = None;
            for entry in table.range(span.bounds())? {
                let (key, value) = entry?;
                let stamp = item_stamp(value.value(), key.value())?;
                if newest.as_ref().is_none_or(|(best, _)| stamp >= *best) {
                    newest = Some((stamp, key.value().to_vec()));
                }
            }
            let Some((_, key)) = newest else {
                return Ok(None);
            };
            let id = item_id(&span, &key)?;
            let value = table.get(key.as_slice())?.ok_or_else(|| {
                keys::corrupt(PUBSUB_ITEMS, format!("item {id} vanished while read"))
            })?;
            decode_item(id, value.value())
                .map(Some)
                .map_err(|e| in_node(e, service, node))
        })
    }

    /// How many nodes the service has.
    pub fn node_count(&self, service: &str) -> Result<usize, StoreError> {
        let range = keys::owned_by(PUBSUB_NODES, service)?;
        self.store.read(|txn| {
            let Some(table) = open_read(txn, PUBSUB_NODES)? else {
                return Ok(0);
            };
            let mut n = 0;
            for entry in table.range(range.bounds())? {
                entry?;
                n += 1;
            }
            Ok(n)
        })
    }
}

/// Every node of the service with its record, by name.
fn read_nodes(table: &ReadTable, service: &str) -> Result<Vec<(String, NodeRecord)>, StoreError> {
    let range = keys::owned_by(PUBSUB_NODES, service)?;
    let mut out = Vec::new();
    for entry in table.range(range.bounds())? {
        let (key, value) = entry?;
        let node = keys::second_part(PUBSUB_NODES, service, key.value())?;
        let record = NodeRecord::decode(value.value()).map_err(|e| in_node(e, service, node))?;
        out.push((node.to_string(), record));
    }
    Ok(out)
}

/// Stores a new node's record, refusing (`LimitExceeded`) when the service
/// has `max_nodes` nodes already. The caller has checked that it does not
/// exist.
fn insert_new_node(
    nodes: &mut BytesTable<'_>,
    service: &str,
    node: &str,
    key: &[u8],
    record: &NodeRecord,
    max_nodes: usize,
) -> Result<(), StoreError> {
    check_name("node name", node)?;
    let range = keys::owned_by(PUBSUB_NODES, service)?;
    // Counting stops at the limit: a full service costs max_nodes keys.
    let mut count = 0usize;
    for entry in nodes.range(range.bounds())? {
        entry?;
        count += 1;
        if count >= max_nodes {
            break;
        }
    }
    if count >= max_nodes {
        return Err(StoreError::LimitExceeded(format!(
            "{service} may have at most {max_nodes} pubsub nodes"
        )));
    }
    nodes.insert(key, record.encode().as_slice())?;
    Ok(())
}

/// Removes every key of `span`; returns how many.
fn remove_span(table: &mut BytesTable<'_>, span: &Span) -> Result<usize, StoreError> {
    // Gathered first: a table cannot change while a range of it is open.
    let doomed: Vec<Vec<u8>> = table
        .range(span.bounds())?
        .map(|entry| entry.map(|(key, _)| key.value().to_vec()))
        .collect::<Result<_, _>>()?;
    for key in &doomed {
        table.remove(key.as_slice())?;
    }
    Ok(doomed.len())
}

/// Removes the node's oldest items while it holds more than `max_items`;
/// returns how many. Only the stamps are read.
fn trim(
    items: &mut BytesTable<'_>,
    service: &str,
    node: &str,
    max_items: usize,
) -> Result<usize, StoreError> {
    let span = items_of(service, node)?;
    if max_items == 0 {
        return remove_span(items, &span);
    }
    let mut held: Vec<(u64, Vec<u8>)> = Vec::new();
    for entry in items.range(span.bounds())? {
        let (key, value) = entry?;
        let stamp = item_stamp(value.value(), key.value())?;
        held.push((stamp, key.value().to_vec()));
    }
    let Some(excess) = held.len().checked_sub(max_items).filter(|&n| n > 0) else {
        return Ok(0);
    };
    held.sort_unstable();
    for (_, key) in &held[..excess] {
        items.remove(key.as_slice())?;
    }
    Ok(excess)
}

/// The write that creates the node with `record`: `AlreadyExists` if it
/// exists, `LimitExceeded` if the service has `max_nodes` nodes already or
/// the name is empty or longer than [`MAX_NAME_BYTES`].
pub fn create_node_op(service: &str, node: &str, record: NodeRecord, max_nodes: usize) -> WriteOp {
    let service = service.to_string();
    let node = node.to_string();
    Box::new(move |txn| {
        let key = keys::pair(PUBSUB_NODES, &service, &node)?;
        let mut nodes = txn.open_table(PUBSUB_NODES)?;
        if nodes.get(key.as_slice())?.is_some() {
            return Err(StoreError::AlreadyExists(format!(
                "pubsub node {node} of {service}"
            )));
        }
        insert_new_node(&mut nodes, &service, &node, &key, &record, max_nodes)
    })
}

/// The write that replaces the node's record (configuration, affiliations,
/// subscriptions); `NotFound` if the node is gone.
pub fn put_node_op(service: &str, node: &str, record: NodeRecord) -> WriteOp {
    let service = service.to_string();
    let node = node.to_string();
    Box::new(move |txn| {
        let key = keys::pair(PUBSUB_NODES, &service, &node)?;
        let mut nodes = txn.open_table(PUBSUB_NODES)?;
        if nodes.get(key.as_slice())?.is_none() {
            return Err(StoreError::NotFound(format!(
                "pubsub node {node} of {service}"
            )));
        }
        nodes.insert(key.as_slice(), record.encode().as_slice())?;
        Ok(())
    })
}

/// The write that changes the node's record where it is stored, inside
/// the transaction: `change` sees the record as the writes before it left
/// it (two clients subscribing at once both count), and may refuse
/// (`LimitExceeded` and the like) with nothing written. `NotFound` if the
/// node is gone.
pub fn update_node_op(
    service: &str,
    node: &str,
    change: impl Fn(&mut NodeRecord) -> Result<(), StoreError> + Send + 'static,
) -> WriteOp {
    let service = service.to_string();
    let node = node.to_string();
    Box::new(move |txn| {
        let key = keys::pair(PUBSUB_NODES, &service, &node)?;
        let mut nodes = txn.open_table(PUBSUB_NODES)?;
        let current = nodes
            .get(key.as_slice())?
            .map(|v| NodeRecord::decode(v.value()))
            .transpose()?;
        let Some(mut record) = current else {
            return Err(StoreError::NotFound(format!(
                "pubsub node {node} of {service}"
            )));
        };
        change(&mut record)?;
        nodes.insert(key.as_slice(), record.encode().as_slice())?;
        Ok(())
    })
}

/// The write that stores `item` (replacing one with the same id, which
/// its new stamp makes the newest), then removes the oldest items while
/// the node holds more than `max_items` (0: the node keeps no items, and
/// `item` is not stored). A node that does not exist is created first with
/// `create` = `Some((record, max_nodes))` (`LimitExceeded` at `max_nodes`
/// nodes), and is `NotFound` without it. An id or a new node's name that
/// is empty or longer than [`MAX_NAME_BYTES`] is `LimitExceeded`.
pub fn publish_op(
    service: &str,
    node: &str,
    item: StoredItem,
    max_items: usize,
    create: Option<(NodeRecord, usize)>,
) -> WriteOp {
    let service = service.to_string();
    let node = node.to_string();
    Box::new(move |txn| {
        check_name("item id", &item.id)?;
        let node_key = keys::pair(PUBSUB_NODES, &service, &node)?;
        let key = item_key(&service, &node, &item.id)?;
        {
            let mut nodes = txn.open_table(PUBSUB_NODES)?;
            if nodes.get(node_key.as_slice())?.is_none() {
                let Some((record, max_nodes)) = &create else {
                    return Err(StoreError::NotFound(format!(
                        "pubsub node {node} of {service}"
                    )));
                };
                insert_new_node(&mut nodes, &service, &node, &node_key, record, *max_nodes)?;
            }
        }
        let mut items = txn.open_table(PUBSUB_ITEMS)?;
        if max_items > 0 {
            items.insert(key.as_slice(), item_value(&item).as_slice())?;
        }
        trim(&mut items, &service, &node, max_items)?;
        Ok(())
    })
}

/// The write that removes these items of the node (ids it does not hold
/// are ignored).
pub fn retract_op(service: &str, node: &str, ids: Vec<String>) -> WriteOp {
    let service = service.to_string();
    let node = node.to_string();
    Box::new(move |txn| {
        let mut items = txn.open_table(PUBSUB_ITEMS)?;
        for id in &ids {
            items.remove(item_key(&service, &node, id)?.as_slice())?;
        }
        Ok(())
    })
}

/// The write that removes every item of the node and keeps the node.
pub fn purge_op(service: &str, node: &str) -> WriteOp {
    let service = service.to_string();
    let node = node.to_string();
    Box::new(move |txn| {
        let span = items_of(&service, &node)?;
        remove_span(&mut txn.open_table(PUBSUB_ITEMS)?, &span)?;
        Ok(())
    })
}

/// The write that keeps only the node's newest `max_items` items (after
/// its configuration lowered the limit).
pub fn trim_op(service: &str, node: &str, max_items: usize) -> WriteOp {
    let service = service.to_string();
    let node = node.to_string();
    Box::new(move |txn| {
        trim(
            &mut txn.open_table(PUBSUB_ITEMS)?,
            &service,
            &node,
            max_items,
        )?;
        Ok(())
    })
}

/// The write that removes the node with its items; `NotFound` if it does
/// not exist.
pub fn delete_node_op(service: &str, node: &str) -> WriteOp {
    let service = service.to_string();
    let node = node.to_string();
    Box::new(move |txn| {
        let key = keys::pair(PUBSUB_NODES, &service, &node)?;
        if txn
            .open_table(PUBSUB_NODES)?
            .remove(key.as_slice())?
            .is_none()
        {
            return Err(StoreError::NotFound(format!(
                "pubsub node {node} of {service}"
            )));
        }
        let span = items_of(&service, &node)?;
        remove_span(&mut txn.open_table(PUBSUB_ITEMS)?, &span)?;
        Ok(())
    })
}

/// Removes every node and item of `service` inside `txn` (account
/// deletion removes the account's PEP service).
pub(crate) fn remove_service(
    txn: &redb::WriteTransaction,
    service: &str,
) -> Result<(), StoreError> {
    // The service's keys in both tables start with service 0x00, so one
    // range each holds exactly its nodes and all their items.
    let range = keys::owned_by(PUBSUB_NODES, service)?;
    super::remove_range(&mut txn.open_table(PUBSUB_NODES)?, &range)?;
    let range = keys::owned_by(PUBSUB_ITEMS, service)?;
    super::remove_range(&mut txn.open_table(PUBSUB_ITEMS)?, &range)?;
    Ok(())
}

/// Every node of the service by name, with its record and its items
/// (oldest first), read inside a read transaction (the portable export's
/// snapshot).
pub fn all_in(
    txn: &redb::ReadTransaction,
    service: &str,
) -> Result<Vec<(String, NodeRecord, Vec<StoredItem>)>, StoreError> {
    let Some(nodes) = open_read(txn, PUBSUB_NODES)? else {
        return Ok(Vec::new());
    };
    let items = open_read(txn, PUBSUB_ITEMS)?;
    let mut out = Vec::new();
    for (node, record) in read_nodes(&nodes, service)? {
        let node_items = match &items {
            Some(table) => read_items(table, service, &node)?,
            None => Vec::new(),
        };
        out.push((node, record, node_items));
    }
    Ok(out)
}

/// The write that stores a node with its items as they are, stamps
/// included (the portable import), replacing a node of that name and all
/// its items. No limit applies: the import brings back what was stored.
/// A name or an id that is empty or longer than [`MAX_NAME_BYTES`] is
/// `LimitExceeded`; of two items with one id, the later is kept.
pub fn import_node_op(
    service: &str,
    node: &str,
    record: NodeRecord,
    items: Vec<StoredItem>,
) -> WriteOp {
    let service = service.to_string();
    let node = node.to_string();
    Box::new(move |txn| {
        check_name("node name", &node)?;
        let node_key = keys::pair(PUBSUB_NODES, &service, &node)?;
        let mut item_rows = Vec::with_capacity(items.len());
        for item in &items {
            check_name("item id", &item.id)?;
            item_rows.push((item_key(&service, &node, &item.id)?, item_value(item)));
        }
        txn.open_table(PUBSUB_NODES)?
            .insert(node_key.as_slice(), record.encode().as_slice())?;
        let mut table = txn.open_table(PUBSUB_ITEMS)?;
        remove_span(&mut table, &items_of(&service, &node)?)?;
        for (key, value) in &item_rows {
            table.insert(key.as_slice(), value.as_slice())?;
        }
        Ok(())
    })
}

#[cfg(test)]
#[path = "pubsub_tests.rs"]
mod tests;

/// `op` on the PEP service of `account`, skipped if the account no longer
/// exists when it commits: a publication queued behind the account's
/// deletion must not bring its nodes back.
pub fn for_account(account: &str, op: WriteOp) -> WriteOp {
    let account = account.to_string();
    Box::new(move |txn| {
        if !super::account_exists::has_account(txn, &account)? {
            return Ok(());
        }
        op(txn)
    })
}
