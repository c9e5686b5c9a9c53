//! The PEP family: an account's personal eventing service (XEP-0163, the
//! pubsub nodes at its bare JID), as XEP-0227's "Personal Eventing
//! Protocol" section lays it out: two `<pubsub/>` children of `<user/>`,
//! one in the `#owner` namespace with each node's configuration,
//! affiliations and subscriptions, one in the plain pubsub namespace with
//! each node's items:
//!
//! ```xml
//! <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
//!   <configure node='urn:xmpp:bookmarks:1'>
//!     <x xmlns='jabber:x:data' type='submit'>
//!       <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#node_config</value></field>
//!       <field var='pubsub#access_model' type='list-single'><value>whitelist</value></field>
//!       …
//!     </x>
//!   </configure>
//!   <affiliations node='urn:xmpp:bookmarks:1'>
//!     <affiliation jid='juliet@capulet.lit' affiliation='owner'/>
//!   </affiliations>
//!   <subscriptions node='urn:xmpp:bookmarks:1'>
//!     <subscription jid='nurse@capulet.lit' subscription='subscribed' subid='…'/>
//!   </subscriptions>
//! </pubsub>
//! <pubsub xmlns='http://jabber.org/protocol/pubsub'>
//!   <items node='urn:xmpp:bookmarks:1'>
//!     <item id='hall@rooms.capulet.lit' publisher='juliet@capulet.lit'><conference …/></item>
//!   </items>
//! </pubsub>
//! ```
//!
//! Export writes every node of the account, by name, from the export's
//! snapshot: its whole configuration as a `pubsub#node_config` form of
//! type `submit` (every option Perch has, with its value and field type
//! and without the labels and options of the form an owner is shown, so
//! that any server reads it), its affiliations and subscriptions when it
//! has any, and an `<items/>` (empty or not, the XEP asks for one per
//! node) with the items oldest first, each with its id, publisher and
//! payload.
//!
//! XEP-0227 has no place for when an item was published, so stamps are
//! not exported. Import keeps the items' order and gives them increasing
//! stamps ending at the time of the import, one microsecond apart (the
//! newest item is the last of its `<items/>`); anything published later
//! is newer still.
//!
//! Import reads the configuration over PEP's defaults, so a form that
//! names only some options (the XEP's example names only the access
//! model) leaves the others as a node created here has them. Options
//! Perch does not know are passed over with a notice, as the XEP asks; a
//! value Perch refuses for an option it knows (an unknown access model,
//! say) refuses the account's PEP data, since guessing could open a node
//! its owner had closed. A form that does not name `pubsub#max_items` on
//! a node holding more items than the default keeps gets `max`: the old
//! server kept them all, and the next publication would otherwise trim
//! them to the default's one. The account owns each of its nodes, as when it
//! creates one here. An item without `publisher` is the account's (on PEP
//! the account publishes). A subscription without `subid` gets a new one;
//! one that is neither `subscribed` nor `none` (awaiting approval, which
//! Perch does not offer) is passed over with a notice.
//!
//! Limits: node names and item ids as the store takes them (1 to
//! [`MAX_NAME_BYTES`] bytes, no NUL), at most `[pubsub]
//! max_nodes_per_account` nodes and `[pubsub] max_items` items per node.
//! The import runs without the server's configuration (`perch import`
//! passes the hosts only), so these two are `[pubsub]`'s defaults. A
//! configured `max_items` above the server's limit is kept as it is: the
//! service treats it as the limit, as it does after the limit is lowered.
//! Anything malformed, or beyond a limit, refuses the account's PEP data
//! with an error naming the account and the node; the account and its
//! other data are imported. Payloads are not held to `[pubsub]
//! max_item_bytes`: like the other families' data, they are bounded by the
//! import's limits on files.
//!
//! Only PEP is carried: the nodes of the pubsub service at
//! `pubsub.<domain>` have no place in XEP-0227.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use crate::archive::ids::micros;
use crate::config::PubsubConfig;
use crate::forms::{Form, NS_DATA};
use crate::ids::Ids;
use crate::jid::Jid;
use crate::pubsub::config::{MaxItems, NodeConfig};
use crate::pubsub::node::{affiliation_name, parse_affiliation};
use crate::pubsub::{NS_PUBSUB, NS_PUBSUB_OWNER};
use crate::store::StoreError;
use crate::store::pubsub::{
    Affiliation, MAX_NAME_BYTES, NodeRecord, StoredItem, Subscription, all_in, import_node_op,
};
use crate::xml::{Element, Node};

use super::{Family, ImportWrite, PortableError, Source};

/// The `pubsub#max_items` option.
const MAX_ITEMS_VAR: &str = "pubsub#max_items";

pub struct PepFamily;

/// What an import holds an account's PEP service to.
#[derive(Clone, Copy, Debug)]
struct Limits {
    /// `[pubsub] max_nodes_per_account`.
    nodes: usize,
    /// `[pubsub] max_items`.
    items: usize,
}

impl Limits {
    /// `[pubsub]`'s defaults: the import has no configuration at hand.
    fn defaults() -> Limits {
        let defaults = PubsubConfig::default();
        Limits {
            nodes: usize::try_from(defaults.max_nodes_per_account).unwrap_or(usize::MAX),
            items: usize::try_from(defaults.max_items).unwrap_or(usize::MAX),
        }
    }
}

/// One node read from a file, ready for the store.
#[derive(Debug)]
struct PepNode {
    name: String,
    record: NodeRecord,
    items: Vec<StoredItem>,
}

/// A node while its parts are gathered from the two `<pubsub/>`s.
struct Draft {
    config: NodeConfig,
    /// Whether the form named `pubsub#max_items`.
    max_items_named: bool,
    affiliations: Option<Vec<(String, Affiliation)>>,
    subscriptions: Option<Vec<Subscription>>,
    /// Id, publisher and payload of each item, in file order.
    items: Option<Vec<(String, String, String)>>,
}

/// Appends `children` to `parent` one per line, indented by `depth`
/// levels, so that the files read and diff well (export.rs indents only
/// down to `<user/>`'s children). Whitespace between these elements means
/// nothing to the import.
fn block(mut parent: Element, children: Vec<Element>, depth: usize) -> Element {
    if children.is_empty() {
        return parent;
    }
    let indent = format!("\n{}", "  ".repeat(depth));
    for child in children {
        parent.push_text(indent.as_str());
        parent.push_child(child);
    }
    parent.push_text(format!("\n{}", "  ".repeat(depth.saturating_sub(1))));
    parent
}

/// The node's configuration as a submitted `pubsub#node_config` form: the
/// fields of the owner's form with their values and types only. Built from
/// [`NodeConfig::to_form`] so that it names every option the service has.
/// No limit applies to `max_items`: a count is written as stored.
fn config_form(config: &NodeConfig) -> Element {
    let full = config.to_form(u32::MAX);
    let mut fields = Vec::new();
    for field in full.children().filter(|c| c.is("field", NS_DATA)) {
        let mut out = Element::new("field", NS_DATA);
        for attr in ["var", "type"] {
            if let Some(value) = field.attr(attr) {
                out.set_attr(attr, value);
            }
        }
        for value in field.children().filter(|c| c.is("value", NS_DATA)) {
            out.push_child(value.clone());
        }
        fields.push(out);
    }
    block(
        Element::new("x", NS_DATA).with_attr("type", "submit"),
        fields,
        6,
    )
}

/// The configuration options this server knows: the fields of its own
/// form, whatever it holds.
fn known_options() -> BTreeSet<String> {
    NodeConfig::pep_default()
        .to_form(1)
        .children()
        .filter_map(|field| field.attr("var"))
        .filter(|var| *var != "FORM_TYPE")
        .map(str::to_string)
        .collect()
}

impl Family for PepFamily {
    fn name(&self) -> &'static str {
        "PEP"
    }

    fn export_user(
        &self,
        source: &Source<'_>,
        user: &Jid,
        element: &mut Element,
    ) -> Result<(), PortableError> {
        let nodes = all_in(source.txn, user.as_str())?;
        if nodes.is_empty() {
            return Ok(());
        }
        let mut owner = Vec::new();
        let mut data = Vec::new();
        for (name, record, items) in nodes {
            let config = NodeConfig::decode(&record.config).map_err(|why| {
                StoreError::Corrupt(format!("PEP node {name:?} of {user}: {why}"))
            })?;
            let node = name.as_str();
            owner.push(block(
                Element::new("configure", NS_PUBSUB_OWNER).with_attr("node", node),
                vec![config_form(&config)],
                5,
            ));
            if !record.affiliations.is_empty() {
                let list = record
                    .affiliations
                    .iter()
                    .map(|(jid, affiliation)| {
                        Element::new("affiliation", NS_PUBSUB_OWNER)
                            .with_attr("jid", jid.as_str())
                            .with_attr("affiliation", affiliation_name(*affiliation))
                    })
                    .collect();
                owner.push(block(
                    Element::new("affiliations", NS_PUBSUB_OWNER).with_attr("node", node),
                    list,
                    5,
                ));
            }
            if !record.subscriptions.is_empty() {
                let list = record
                    .subscriptions
                    .iter()
                    .map(|s| {
                        Element::new("subscription", NS_PUBSUB_OWNER)
                            .with_attr("jid", s.jid.as_str())
                            .with_attr("subscription", "subscribed")
                            .with_attr("subid", s.subid.as_str())
                    })
                    .collect();
                owner.push(block(
                    Element::new("subscriptions", NS_PUBSUB_OWNER).with_attr("node", node),
                    list,
                    5,
                ));
            }
            let mut list = Vec::with_capacity(items.len());
            for item in items {
                let mut el = Element::new("item", NS_PUBSUB).with_attr("id", item.id.as_str());
                if !item.publisher.is_empty() {
                    el.set_attr("publisher", item.publisher.as_str());
                }
                if !item.payload.is_empty() {
                    let payload = Element::parse(&item.payload).map_err(|e| {
                        StoreError::Corrupt(format!(
                            "item {:?} of PEP node {name:?} of {user}: the payload is not XML: {e}",
                            item.id
                        ))
                    })?;
                    el.push_child(payload);
                }
                list.push(el);
            }
            data.push(block(
                Element::new("items", NS_PUBSUB).with_attr("node", node),
                list,
                5,
            ));
        }
        element.push_child(block(Element::new("pubsub", NS_PUBSUB_OWNER), owner, 4));
        element.push_child(block(Element::new("pubsub", NS_PUBSUB), data, 4));
        Ok(())
    }

    fn claims(&self, child: &Element) -> bool {
        child.is("pubsub", NS_PUBSUB_OWNER) || child.is("pubsub", NS_PUBSUB)
    }

    fn import_user(
        &self,
        user: &Jid,
        element: &Element,
        notices: &mut Vec<String>,
    ) -> Result<Option<ImportWrite>, PortableError> {
        let now = micros(SystemTime::now());
        let nodes = read_nodes(user, element, Limits::defaults(), now, notices)?;
        if nodes.is_empty() {
            return Ok(None);
        }
        let ops: Vec<_> = nodes
            .into_iter()
            .map(|n| import_node_op(user.as_str(), &n.name, n.record, n.items))
            .collect();
        Ok(Some(Box::new(move |txn| {
            for op in ops {
                op(txn)?;
            }
            Ok(())
        })))
    }
}

/// The error for `why` about `node` of `user`'s PEP service.
fn bad(user: &Jid, node: &str, why: impl std::fmt::Display) -> PortableError {
    PortableError::BadUserData(format!("{user}: PEP node {node:?}: {why}"))
}

/// Refuses a node name or item id the store would not take, with the
/// reason.
fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "{what} of {} bytes (1 to {MAX_NAME_BYTES})",
            name.len()
        ));
    }
    if name.contains('\0') {
        return Err(format!("{what} with a NUL"));
    }
    Ok(())
}

/// The `node` attribute of `child` of a `<pubsub/>`, checked.
fn node_attr<'e>(user: &Jid, child: &'e Element) -> Result<&'e str, PortableError> {
    let node = child.attr("node").ok_or_else(|| {
        PortableError::BadUserData(format!("{user}: PEP: a <{}/> without node", child.name))
    })?;
    check_name("a node name", node).map_err(|why| bad(user, node, why))?;
    Ok(node)
}

/// How an element is named in a notice.
fn describe(child: &Element) -> String {
    format!("<{} xmlns='{}'/>", child.name, child.ns)
}

/// Every node in `element`, a `<user/>`: pure, nothing is written. `now`
/// (µs since 1970) is the stamp of each node's newest item. Remarks go to
/// `notices` only when the whole is usable.
fn read_nodes(
    user: &Jid,
    element: &Element,
    limits: Limits,
    now: u64,
    notices: &mut Vec<String>,
) -> Result<Vec<PepNode>, PortableError> {
    let owner_parts: Vec<&Element> = element
        .children()
        .filter(|c| c.is("pubsub", NS_PUBSUB_OWNER))
        .flat_map(Element::children)
        .collect();
    let item_parts: Vec<&Element> = element
        .children()
        .filter(|c| c.is("pubsub", NS_PUBSUB))
        .flat_map(Element::children)
        .collect();
    if owner_parts.is_empty() && item_parts.is_empty() {
        return Ok(Vec::new());
    }
    let known = known_options();
    let mut ignored_options = BTreeSet::new();
    let mut ignored_elements = BTreeSet::new();
    let mut unsubscribed = 0usize;
    let ids = Ids::default();

    // Configurations first: they say which nodes there are, and the other
    // parts may come in any order.
    let mut drafts: BTreeMap<String, Draft> = BTreeMap::new();
    for child in &owner_parts {
        if !child.is("configure", NS_PUBSUB_OWNER) {
            continue;
        }
        let node = node_attr(user, child)?;
        if drafts.contains_key(node) {
            return Err(bad(user, node, "configured twice"));
        }
        if drafts.len() >= limits.nodes {
            return Err(PortableError::BadUserData(format!(
                "{user}: PEP: more than {} nodes (the default of [pubsub] max_nodes_per_account)",
                limits.nodes
            )));
        }
        let (config, max_items_named) =
            read_config(child, &known, &mut ignored_options).map_err(|why| bad(user, node, why))?;
        drafts.insert(
            node.to_string(),
            Draft {
                config,
                max_items_named,
                affiliations: None,
                subscriptions: None,
                items: None,
            },
        );
    }
    for child in &owner_parts {
        let is_affiliations = child.is("affiliations", NS_PUBSUB_OWNER);
        let is_subscriptions = child.is("subscriptions", NS_PUBSUB_OWNER);
        if !is_affiliations && !is_subscriptions {
            if !child.is("configure", NS_PUBSUB_OWNER) {
                ignored_elements.insert(describe(child));
            }
            continue;
        }
        let node = node_attr(user, child)?;
        let draft = drafts
            .get_mut(node)
            .ok_or_else(|| bad(user, node, format!("<{}/> but no <configure/>", child.name)))?;
        if is_affiliations {
            if draft.affiliations.is_some() {
                return Err(bad(user, node, "two <affiliations/>"));
            }
            draft.affiliations = Some(read_affiliations(child).map_err(|w| bad(user, node, w))?);
        } else {
            if draft.subscriptions.is_some() {
                return Err(bad(user, node, "two <subscriptions/>"));
            }
            let (subs, passed_over) =
                read_subscriptions(child, &ids).map_err(|w| bad(user, node, w))?;
            unsubscribed += passed_over;
            draft.subscriptions = Some(subs);
        }
    }
    for child in &item_parts {
        if !child.is("items", NS_PUBSUB) {
            ignored_elements.insert(describe(child));
            continue;
        }
        let node = node_attr(user, child)?;
        let draft = drafts
            .get_mut(node)
            .ok_or_else(|| bad(user, node, "items but no <configure/>"))?;
        if draft.items.is_some() {
            return Err(bad(user, node, "two <items/>"));
        }
        draft.items = Some(read_items(child, limits.items).map_err(|w| bad(user, node, w))?);
    }

    let limit = u32::try_from(limits.items).unwrap_or(u32::MAX);
    let mut nodes = Vec::with_capacity(drafts.len());
    for (name, draft) in drafts {
        let Draft {
            mut config,
            max_items_named,
            affiliations,
            subscriptions,
            items,
        } = draft;
        let items = items.unwrap_or_default();
        if !max_items_named && items.len() > config.max_items(limit) {
            config.max_items = MaxItems::Max;
        }
        let mut affiliations = affiliations.unwrap_or_default();
        if !affiliations.iter().any(|(jid, _)| jid == user.as_str()) {
            // As a node created here: the account is its owner.
            affiliations.insert(0, (user.as_str().to_string(), Affiliation::Owner));
        }
        let count = u64::try_from(items.len()).unwrap_or(u64::MAX);
        let first = now.saturating_sub(count.saturating_sub(1));
        let items = (first..)
            .zip(items)
            .map(|(stamp, (id, publisher, payload))| StoredItem {
                id,
                stamp,
                publisher: if publisher.is_empty() {
                    user.as_str().to_string()
                } else {
                    publisher
                },
                payload,
            })
            .collect();
        nodes.push(PepNode {
            name,
            record: NodeRecord {
                config: config.encode(),
                affiliations,
                subscriptions: subscriptions.unwrap_or_default(),
            },
            items,
        });
    }

    if !ignored_options.is_empty() {
        let list: Vec<&str> = ignored_options.iter().map(String::as_str).collect();
        notices.push(format!(
            "{user}: PEP node configuration options not known here, ignored: {}",
            list.join(", ")
        ));
    }
    if !ignored_elements.is_empty() {
        let list: Vec<&str> = ignored_elements.iter().map(String::as_str).collect();
        notices.push(format!("{user}: PEP: not imported: {}", list.join(", ")));
    }
    if unsubscribed > 0 {
        notices.push(format!(
            "{user}: PEP: {unsubscribed} subscription{} awaiting approval or unconfigured not imported",
            if unsubscribed == 1 { "" } else { "s" }
        ));
    }
    Ok(nodes)
}

/// The configuration in a `<configure/>` over PEP's defaults, and whether
/// it named `pubsub#max_items`. Options not in `known` are left out and
/// added to `ignored`.
fn read_config(
    configure: &Element,
    known: &BTreeSet<String>,
    ignored: &mut BTreeSet<String>,
) -> Result<(NodeConfig, bool), String> {
    let mut config = NodeConfig::pep_default();
    let Some(x) = configure.get_child("x", NS_DATA) else {
        // XEP-0060 §8.1.3: no form is the default configuration.
        return Ok((config, false));
    };
    let mut form = Form::parse(x).map_err(|e| format!("configuration form: {e}"))?;
    form.fields.retain(|field| match field.var.as_deref() {
        // Fields without var are left to `apply`, which refuses them
        // unless they are only text.
        None | Some("FORM_TYPE") => true,
        Some(var) if known.contains(var) => true,
        Some(var) => {
            ignored.insert(var.to_string());
            false
        }
    });
    let max_items_named = form.field(MAX_ITEMS_VAR).is_some();
    // No limit on max_items: what the old server allowed is kept, and the
    // service holds it to its own limit.
    config
        .apply(&form, u32::MAX)
        .map_err(|e| format!("configuration: {e}"))?;
    Ok((config, max_items_named))
}

/// The affiliations in an `<affiliations/>`, by bare JID, in file order.
fn read_affiliations(list: &Element) -> Result<Vec<(String, Affiliation)>, String> {
    let mut out: Vec<(String, Affiliation)> = Vec::new();
    for child in list.children() {
        if !child.is("affiliation", NS_PUBSUB_OWNER) {
            return Err(format!("<{}/> among the affiliations", child.name));
        }
        let jid = child.attr("jid").ok_or("an <affiliation/> without jid")?;
        let parsed = Jid::parse(jid).map_err(|e| format!("affiliation of {jid:?}: {e}"))?;
        let bare = parsed.bare_str();
        let value = child
            .attr("affiliation")
            .ok_or_else(|| format!("the affiliation of {jid} has no value"))?;
        let affiliation =
            parse_affiliation(value).ok_or_else(|| format!("affiliation {value:?} of {jid}"))?;
        if out.iter().any(|(j, _)| j == bare) {
            return Err(format!("{bare} is affiliated twice"));
        }
        out.push((bare.to_string(), affiliation));
    }
    Ok(out)
}

/// The subscriptions in a `<subscriptions/>`, in file order, and how many
/// were passed over for being neither `subscribed` nor `none`.
fn read_subscriptions(list: &Element, ids: &Ids) -> Result<(Vec<Subscription>, usize), String> {
    let mut out: Vec<Subscription> = Vec::new();
    let mut passed_over = 0;
    for child in list.children() {
        if !child.is("subscription", NS_PUBSUB_OWNER) {
            return Err(format!("<{}/> among the subscriptions", child.name));
        }
        let jid = child.attr("jid").ok_or("a <subscription/> without jid")?;
        let parsed = Jid::parse(jid).map_err(|e| format!("subscription of {jid:?}: {e}"))?;
        match child.attr("subscription") {
            None | Some("subscribed") => {}
            Some("none") => continue,
            Some(_) => {
                passed_over += 1;
                continue;
            }
        }
        if out.iter().any(|s| s.jid == parsed.as_str()) {
            return Err(format!("{parsed} is subscribed twice"));
        }
        let subid = match child.attr("subid") {
            Some(subid) => subid.to_string(),
            None => ids.new_id(),
        };
        out.push(Subscription {
            jid: parsed.as_str().to_string(),
            subid,
        });
    }
    Ok((out, passed_over))
}

/// Id, publisher (empty when not given) and payload of each item of an
/// `<items/>`, in file order: at most `max` of them.
fn read_items(list: &Element, max: usize) -> Result<Vec<(String, String, String)>, String> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    let mut seen = BTreeSet::new();
    for item in list.children() {
        if !item.is("item", NS_PUBSUB) {
            return Err(format!("<{}/> among the items", item.name));
        }
        if out.len() >= max {
            return Err(format!(
                "more than {max} items (the default of [pubsub] max_items)"
            ));
        }
        let id = item.attr("id").ok_or("an <item/> without id")?;
        check_name("an item id", id)?;
        if !seen.insert(id) {
            return Err(format!("item {id:?} appears twice"));
        }
        let publisher = match item.attr("publisher") {
            Some(p) => Jid::parse(p)
                .map_err(|e| format!("item {id:?}: publisher {p:?}: {e}"))?
                .as_str()
                .to_string(),
            // The account's, filled in once all is read.
            None => String::new(),
        };
        if item
            .children
            .iter()
            .any(|n| matches!(n, Node::Text(t) if !t.trim().is_empty()))
        {
            return Err(format!("item {id:?}: text beside the payload"));
        }
        let mut payloads = item.children();
        let payload = match (payloads.next(), payloads.next()) {
            (None, _) => String::new(),
            // Serialized as a publication's payload is.
            (Some(p), None) => String::from_utf8_lossy(&p.to_bytes("")).into_owned(),
            (Some(_), Some(_)) => return Err(format!("item {id:?}: more than one payload")),
        };
        out.push((id.to_string(), publisher, payload));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::portable::{NS_PIE, export, import};
    use crate::pubsub::config::{
        AccessModel, ItemReply, NotificationType, PublishModel, SendLastPublished,
    };
    use crate::sasl::Credentials;
    use crate::store::Store;
    use crate::store::pubsub::{create_node_op, publish_op};
    use crate::testing::TempDir;

    const JULIET: &str = "juliet@capulet.lit";

    fn open(dir: &TempDir, name: &str) -> Store {
        Store::open(&dir.path().join(name), 1 << 20).expect("open")
    }

    fn add_accounts(store: &Store, jids: &[&str]) {
        for jid in jids {
            let c = Credentials::derive("pw", 4096).expect("derive");
            smol::block_on(store.accounts().create(jid, &c)).expect("create");
        }
    }

    /// A payload as the service stores a published one.
    fn payload(xml: &str) -> String {
        let element = Element::parse(xml).expect("xml");
        String::from_utf8_lossy(&element.to_bytes("")).into_owned()
    }

    fn read(fragment: &str, limits: Limits) -> Result<Vec<PepNode>, String> {
        let user = Jid::parse(JULIET).expect("jid");
        let element =
            Element::parse(&format!("<user xmlns='{NS_PIE}'>{fragment}</user>")).expect("test xml");
        let mut notices = Vec::new();
        read_nodes(&user, &element, limits, 1_000_000, &mut notices).map_err(|e| e.to_string())
    }

    fn owner(inner: &str) -> String {
        format!("<pubsub xmlns='{NS_PUBSUB_OWNER}'>{inner}</pubsub>")
    }

    fn data(inner: &str) -> String {
        format!("<pubsub xmlns='{NS_PUBSUB}'>{inner}</pubsub>")
    }

    fn sorted_files(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("list")
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        names.sort();
        names
    }

    /// Export, import into a fresh database, export again: the same
    /// bytes; and the nodes are the same in the store, but for the stamps
    /// of their items, which are new and in the same order.
    #[test]
    fn round_trip_keeps_every_node() {
        let dir = TempDir::new("portable-pep-rt");
        let source = open(&dir, "a.redb");
        add_accounts(&source, &[JULIET, "romeo@montague.lit"]);

        let mut diary = NodeConfig::pep_default();
        diary.access_model = AccessModel::Open;
        diary.max_items = MaxItems::Max;
        diary.title = "Juliet's <diary> & notes".into();
        diary.node_type = "http://www.w3.org/2005/Atom".into();
        diary.publish_model = PublishModel::Subscribers;

        let mut bookmarks = NodeConfig::pep_default();
        bookmarks.access_model = AccessModel::Whitelist;
        bookmarks.max_items = MaxItems::Count(5);
        bookmarks.send_last_published_item = SendLastPublished::Never;
        bookmarks.notify_retract = false;

        let mut notes = NodeConfig::pep_default();
        notes.access_model = AccessModel::Roster;
        notes.roster_groups_allowed = vec!["Capulets".into(), "Friends & co".into()];
        notes.description = "For the Nurse".into();
        notes.itemreply = ItemReply::Publisher;
        notes.notification_type = NotificationType::Normal;
        notes.deliver_payloads = false;

        let juliet_owns = vec![(JULIET.to_string(), Affiliation::Owner)];
        let nodes = [
            (
                "urn:xmpp:microblog:0",
                NodeRecord {
                    config: diary.encode(),
                    affiliations: juliet_owns.clone(),
                    subscriptions: Vec::new(),
                },
                vec![
                    (
                        "first",
                        payload(
                            "<entry xmlns='http://www.w3.org/2005/Atom'>\
                             <title type='text'>Hi &amp; bye</title></entry>",
                        ),
                    ),
                    // A notification without payload.
                    ("second", String::new()),
                ],
            ),
            (
                "urn:xmpp:bookmarks:1",
                NodeRecord {
                    config: bookmarks.encode(),
                    affiliations: juliet_owns.clone(),
                    subscriptions: Vec::new(),
                },
                ["hall", "orchard", "tomb"]
                    .iter()
                    .map(|room| {
                        (
                            *room,
                            payload(&format!(
                                "<conference xmlns='urn:xmpp:bookmarks:1' name='The {room}' \
                                 autojoin='true'><nick>Juliet</nick></conference>"
                            )),
                        )
                    })
                    .collect(),
            ),
            (
                "storage:notes & 'drafts'",
                NodeRecord {
                    config: notes.encode(),
                    affiliations: vec![
                        (JULIET.to_string(), Affiliation::Owner),
                        ("nurse@capulet.lit".to_string(), Affiliation::Member),
                    ],
                    subscriptions: vec![Subscription {
                        jid: "romeo@montague.lit/orchard".into(),
                        subid: "sub-1".into(),
                    }],
                },
                vec![(
                    "current",
                    payload(
                        "<note xmlns='urn:example:notes' xml:lang='en'>Meet at \
                         <place xmlns='urn:example:places'>the cell</place></note>",
                    ),
                )],
            ),
        ];
        let mut stamp = 1_700_000_000_000_000u64;
        for (name, record, items) in &nodes {
            source
                .write_now(create_node_op(JULIET, name, record.clone(), 100))
                .expect("create");
            for (id, payload) in items {
                stamp += 1_000;
                let item = StoredItem {
                    id: id.to_string(),
                    stamp,
                    publisher: JULIET.to_string(),
                    payload: payload.clone(),
                };
                source
                    .write_now(publish_op(JULIET, name, item, 10, None))
                    .expect("publish");
            }
        }

        let out = dir.path().join("export");
        export(&source, &out).expect("export");
        let file = std::fs::read_to_string(out.join("juliet@capulet.lit.xml")).expect("read");
        for part in [
            "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>",
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'>",
            "<configure node='urn:xmpp:bookmarks:1'>",
            "<x xmlns='jabber:x:data' type='submit'>",
            "<value>http://jabber.org/protocol/pubsub#node_config</value>",
            "<field var='pubsub#access_model' type='list-single'><value>whitelist</value></field>",
            "<field var='pubsub#max_items' type='text-single'><value>max</value></field>",
            "affiliation='member'",
            "subscription='subscribed' subid='sub-1'",
            "<item id='tomb' publisher='juliet@capulet.lit'><conference",
        ] {
            let doubled = part.replace('\'', "\"");
            assert!(
                file.contains(part) || file.contains(&doubled),
                "{part} in {file}"
            );
        }
        assert!(!file.contains("label="), "a submitted form: {file}");
        let romeo = std::fs::read_to_string(out.join("romeo@montague.lit.xml")).expect("read");
        assert!(!romeo.contains("pubsub"), "no nodes, no element: {romeo}");

        let target = open(&dir, "b.redb");
        let hosts = ["capulet.lit".to_string(), "montague.lit".to_string()];
        let before = micros(SystemTime::now());
        let report = import(&target, &out, &hosts).expect("import");
        assert_eq!(report.imported.len(), 2, "{:?}", report.lines());
        assert!(
            report.notices.is_empty() && report.not_imported.is_empty(),
            "{:?}",
            report.lines()
        );

        let out2 = dir.path().join("export2");
        export(&target, &out2).expect("export again");
        let names = sorted_files(&out);
        assert_eq!(names, sorted_files(&out2));
        for f in &names {
            assert_eq!(
                std::fs::read(out.join(f)).expect("a"),
                std::fs::read(out2.join(f)).expect("b"),
                "{f}"
            );
        }

        // The store holds the same nodes: records exactly, items but for
        // their stamps, which are new, increasing, and no later than now.
        let (a, b) = (source.pubsub(), target.pubsub());
        assert_eq!(
            a.nodes(JULIET).expect("nodes"),
            b.nodes(JULIET).expect("nodes")
        );
        assert_eq!(b.node_count(JULIET).expect("count"), 3);
        let after = micros(SystemTime::now());
        for (name, _, items) in &nodes {
            let (old, new) = (
                a.items(JULIET, name).expect("items"),
                b.items(JULIET, name).expect("items"),
            );
            assert_eq!(new.len(), items.len(), "{name}");
            let strip = |v: &[StoredItem]| -> Vec<(String, String, String)> {
                v.iter()
                    .map(|i| (i.id.clone(), i.publisher.clone(), i.payload.clone()))
                    .collect()
            };
            assert_eq!(strip(&old), strip(&new), "{name}");
            assert!(
                new.windows(2).all(|w| w[0].stamp < w[1].stamp),
                "{name}: {new:?}"
            );
            assert!(
                new.iter()
                    .all(|i| (before - 1_000..=after).contains(&i.stamp)),
                "{name}: {new:?}"
            );
        }
        let last = b
            .last_item(JULIET, "urn:xmpp:bookmarks:1")
            .expect("last")
            .expect("an item");
        assert_eq!(last.id, "tomb");
        assert!(b.nodes("romeo@montague.lit").expect("nodes").is_empty());
    }

    /// The export of XEP-0227's "Personal Eventing Protocol" example, as
    /// it stands there (forms of type `form` naming one option each, no
    /// publishers, no owner affiliation), given a password so that the
    /// account imports; and a form naming options Perch does not have.
    #[test]
    fn the_xep_example_imports() {
        let dir = TempDir::new("portable-pep-xep");
        let input = dir.path().join("in");
        std::fs::create_dir_all(&input).expect("mkdir");
        let xep = "<?xml version='1.0' encoding='UTF-8'?>
<server-data xmlns='urn:xmpp:pie:0'>
  <host jid='capulet.com'>
    <user name='romeo' password='rose'>
      <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
        <configure node='urn:xmpp:bookmarks:1'>
          <x xmlns='jabber:x:data' type='form'>
            <field var='FORM_TYPE' type='hidden'>
              <value>http://jabber.org/protocol/pubsub#node_config</value>
            </field>
            <field var='pubsub#access_model'>
              <value>whitelist</value>
            </field>
          </x>
        </configure>
        <affiliations node='urn:xmpp:bookmarks:1'>
          <affiliation jid='mercutio@example.net' affiliation='member'/>
        </affiliations>
        <subscriptions node='urn:xmpp:bookmarks:1'>
          <subscription jid='mercutio@example.net' subscription='subscribed' subid='123-abc'/>
        </subscriptions>
        <configure node='http://jabber.org/protocol/nick'>
          <x xmlns='jabber:x:data' type='form'>
            <field var='FORM_TYPE' type='hidden'>
              <value>http://jabber.org/protocol/pubsub#node_config</value>
            </field>
            <field var='pubsub#access_model'>
              <value>open</value>
            </field>
          </x>
        </configure>
      </pubsub>
      <pubsub xmlns='http://jabber.org/protocol/pubsub'>
        <items node='urn:xmpp:bookmarks:1'>
          <item id='theplay@conference.shakespeare.lit'>
            <conference xmlns='urn:xmpp:bookmarks:1'
                      name='The Play&apos;s the Thing'
                      autojoin='true'>
              <nick>Romeo</nick>
            </conference>
          </item>
          <item id='orchard@conference.shakespeare.lit'>
            <conference xmlns='urn:xmpp:bookmarks:1'
                      name='The Orchard'
                      autojoin='1'>
              <nick>Romeo</nick>
            </conference>
          </item>
        </items>
        <items node='http://jabber.org/protocol/nick'>
          <item id='current'>
            <nick xmlns='http://jabber.org/protocol/nick'>Romy</nick>
          </item>
        </items>
      </pubsub>
    </user>
  </host>
</server-data>
";
        std::fs::write(input.join("romeo@capulet.com.xml"), xep).expect("write");
        // Another server's whole form: every option, some unknown here.
        std::fs::write(
            input.join("mercutio@capulet.com.xml"),
            "<server-data xmlns='urn:xmpp:pie:0'><host jid='capulet.com'>\
             <user name='mercutio' password='queen-mab'>\
             <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>\
             <configure node='urn:xmpp:avatar:metadata'>\
             <x xmlns='jabber:x:data' type='submit'>\
             <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#node_config</value></field>\
             <field var='pubsub#title'><value>Avatar</value></field>\
             <field var='pubsub#max_items'><value>1</value></field>\
             <field var='pubsub#persist_items'><value>true</value></field>\
             <field var='pubsub#access_model'><value>presence</value></field>\
             <field var='pubsub#notify_sub'><value>0</value></field>\
             <field var='pubsub#purge_offline'><value>false</value></field>\
             </x></configure></pubsub></user></host></server-data>",
        )
        .expect("write");
        let target = open(&dir, "t.redb");
        let hosts = ["capulet.com".to_string()];
        let report = import(&target, &input, &hosts).expect("import");
        assert_eq!(
            report.imported,
            ["mercutio@capulet.com", "romeo@capulet.com"],
            "{:?}",
            report.lines()
        );
        assert!(report.not_imported.is_empty(), "{:?}", report.lines());
        assert_eq!(
            report.notices,
            [
                "mercutio@capulet.com: PEP node configuration options not known here, \
              ignored: pubsub#notify_sub, pubsub#purge_offline"
            ],
        );

        let romeo = "romeo@capulet.com";
        let pubsub = target.pubsub();
        let nodes = pubsub.nodes(romeo).expect("nodes");
        let names: Vec<&str> = nodes.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["http://jabber.org/protocol/nick", "urn:xmpp:bookmarks:1"]
        );
        let config = |i: usize| NodeConfig::decode(&nodes[i].1.config).expect("config");
        let nick = config(0);
        assert_eq!(nick.access_model, AccessModel::Open);
        assert_eq!(nick.max_items, MaxItems::Count(1));
        let bookmarks = config(1);
        assert_eq!(bookmarks.access_model, AccessModel::Whitelist);
        // Two bookmarks and no max_items in the form: all are kept, now
        // and at the next publication.
        assert_eq!(bookmarks.max_items, MaxItems::Max);
        assert_eq!(
            nodes[1].1.affiliations,
            [
                (romeo.to_string(), Affiliation::Owner),
                ("mercutio@example.net".to_string(), Affiliation::Member)
            ]
        );
        assert_eq!(
            nodes[1].1.subscriptions,
            [Subscription {
                jid: "mercutio@example.net".into(),
                subid: "123-abc".into()
            }]
        );
        let items = pubsub.items(romeo, "urn:xmpp:bookmarks:1").expect("items");
        let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "theplay@conference.shakespeare.lit",
                "orchard@conference.shakespeare.lit"
            ]
        );
        assert!(items.iter().all(|i| i.publisher == romeo));
        let first = Element::parse(&items[0].payload).expect("payload");
        assert!(first.is("conference", "urn:xmpp:bookmarks:1"));
        assert_eq!(first.attr("name"), Some("The Play's the Thing"));
        let nick_item = pubsub
            .item(romeo, "http://jabber.org/protocol/nick", "current")
            .expect("item")
            .expect("stored");
        assert_eq!(
            nick_item.payload,
            "<nick xmlns='http://jabber.org/protocol/nick'>Romy</nick>"
        );
        let avatar = pubsub
            .node("mercutio@capulet.com", "urn:xmpp:avatar:metadata")
            .expect("node")
            .expect("stored");
        let avatar = NodeConfig::decode(&avatar.config).expect("config");
        assert_eq!(avatar.title, "Avatar");
        assert_eq!(avatar.access_model, AccessModel::Presence);

        // What this server exports of it imports to the same again.
        let out = dir.path().join("out");
        export(&target, &out).expect("export");
        let again = open(&dir, "again.redb");
        let report = import(&again, &out, &hosts).expect("import");
        assert!(report.notices.is_empty(), "{:?}", report.lines());
        let out2 = dir.path().join("out2");
        export(&again, &out2).expect("export");
        for f in sorted_files(&out) {
            assert_eq!(
                std::fs::read(out.join(&f)).expect("a"),
                std::fs::read(out2.join(&f)).expect("b"),
                "{f}"
            );
        }
    }

    #[test]
    fn malformed_input_is_refused_naming_the_node() {
        let limits = Limits { nodes: 2, items: 2 };
        let configure = |node: &str| format!("<configure node='{node}'/>");
        let long = "n".repeat(MAX_NAME_BYTES + 1);
        let cases: Vec<(String, &str)> = vec![
            (
                data("<items node='n'/>"),
                "juliet@capulet.lit: PEP node \"n\": items but no <configure/>",
            ),
            (owner("<configure/>"), "a <configure/> without node"),
            (owner(&configure("")), "a node name of 0 bytes"),
            (owner(&configure(&long)), "a node name of 1025 bytes"),
            (
                owner(&format!("{}{}", configure("n"), configure("n"))),
                "PEP node \"n\": configured twice",
            ),
            (
                owner(&format!(
                    "{}{}{}",
                    configure("a"),
                    configure("b"),
                    configure("c")
                )),
                "more than 2 nodes",
            ),
            (
                owner(
                    "<configure node='n'><x xmlns='jabber:x:data' type='submit'>\
                     <field var='pubsub#access_model'><value>everyone</value></field>\
                     </x></configure>",
                ),
                "PEP node \"n\": configuration: pubsub#access_model must be one of",
            ),
            (
                owner(
                    "<configure node='n'><x xmlns='jabber:x:data' type='submit'>\
                     <field var='FORM_TYPE'><value>urn:example</value></field>\
                     </x></configure>",
                ),
                "PEP node \"n\": configuration: FORM_TYPE must be",
            ),
            (
                owner("<configure node='n'><x xmlns='jabber:x:data' type='bogus'/></configure>"),
                "PEP node \"n\": configuration form: unknown form type",
            ),
            (
                owner(&format!(
                    "{}<affiliations node='n'><affiliation jid='a@b' affiliation='king'/>\
                     </affiliations>",
                    configure("n")
                )),
                "PEP node \"n\": affiliation \"king\" of a@b",
            ),
            (
                owner(&format!(
                    "{}<affiliations node='n'><affiliation jid='@' affiliation='member'/>\
                     </affiliations>",
                    configure("n")
                )),
                "PEP node \"n\": affiliation of \"@\"",
            ),
            (
                owner(&format!(
                    "{}<affiliations node='n'><affiliation jid='a@b/x' affiliation='member'/>\
                     <affiliation jid='a@b' affiliation='outcast'/></affiliations>",
                    configure("n")
                )),
                "a@b is affiliated twice",
            ),
            (
                owner("<affiliations node='n'/>"),
                "PEP node \"n\": <affiliations/> but no <configure/>",
            ),
            (
                owner(&format!(
                    "{}<subscriptions node='n'><subscription jid='a@b' subid='1'/>\
                     <subscription jid='a@b' subid='2'/></subscriptions>",
                    configure("n")
                )),
                "PEP node \"n\": a@b is subscribed twice",
            ),
            (
                format!(
                    "{}{}",
                    owner(&configure("n")),
                    data("<items node='n'><item>x</item></items>")
                ),
                "PEP node \"n\": an <item/> without id",
            ),
            (
                format!(
                    "{}{}",
                    owner(&configure("n")),
                    data(&format!("<items node='n'><item id='{long}'/></items>"))
                ),
                "PEP node \"n\": an item id of 1025 bytes",
            ),
            (
                format!(
                    "{}{}",
                    owner(&configure("n")),
                    data("<items node='n'><item id=''/></items>")
                ),
                "an item id of 0 bytes",
            ),
            (
                format!(
                    "{}{}",
                    owner(&configure("n")),
                    data("<items node='n'><item id='a'/><item id='a'/></items>")
                ),
                "PEP node \"n\": item \"a\" appears twice",
            ),
            (
                format!(
                    "{}{}",
                    owner(&configure("n")),
                    data(
                        "<items node='n'><item id='a'><x xmlns='y'/><z xmlns='y'/></item></items>"
                    )
                ),
                "item \"a\": more than one payload",
            ),
            (
                format!(
                    "{}{}",
                    owner(&configure("n")),
                    data("<items node='n'><item id='a'>loose <x xmlns='y'/></item></items>")
                ),
                "item \"a\": text beside the payload",
            ),
            (
                format!(
                    "{}{}",
                    owner(&configure("n")),
                    data("<items node='n'><item id='a' publisher='@'/></items>")
                ),
                "item \"a\": publisher \"@\"",
            ),
            (
                format!(
                    "{}{}",
                    owner(&configure("n")),
                    data("<items node='n'><retract id='a'/></items>")
                ),
                "PEP node \"n\": <retract/> among the items",
            ),
            (
                format!(
                    "{}{}",
                    owner(&configure("n")),
                    data("<items node='n'><item id='a'/><item id='b'/><item id='c'/></items>")
                ),
                "PEP node \"n\": more than 2 items",
            ),
            (
                format!(
                    "{}{}",
                    owner(&configure("n")),
                    data("<items node='n'/><items node='n'/>")
                ),
                "PEP node \"n\": two <items/>",
            ),
        ];
        for (fragment, expected) in cases {
            match read(&fragment, limits) {
                Ok(nodes) => panic!("{fragment} was accepted: {nodes:?}"),
                Err(e) => {
                    assert!(e.starts_with("juliet@capulet.lit: PEP"), "{e}");
                    assert!(e.contains(expected), "{fragment}: {e}");
                }
            }
        }
        // At the limits, all is well.
        let ok = format!(
            "{}{}",
            owner(&format!("{}{}", configure("a"), configure("b"))),
            data("<items node='a'><item id='1'/><item id='2'/></items>")
        );
        let nodes = read(&ok, limits).expect("within limits");
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0].items.len(), 2);
        // Stamps end at the import's time, in file order.
        let stamps: Vec<u64> = nodes[0].items.iter().map(|i| i.stamp).collect();
        assert_eq!(stamps, [999_999, 1_000_000]);
        assert!(nodes[0].items.iter().all(|i| i.publisher == JULIET));
    }

    #[test]
    fn pending_subscriptions_and_unknown_elements_are_told() {
        let user = Jid::parse(JULIET).expect("jid");
        let element = Element::parse(&format!(
            "<user xmlns='{NS_PIE}'>{}{}</user>",
            owner(
                "<configure node='n'/><default/>\
                 <subscriptions node='n'>\
                 <subscription jid='a@b' subscription='pending' subid='1'/>\
                 <subscription jid='c@d' subscription='none'/>\
                 <subscription jid='e@f/g'/></subscriptions>"
            ),
            data("<publish node='n'/>")
        ))
        .expect("xml");
        let mut notices = Vec::new();
        let nodes =
            read_nodes(&user, &element, Limits::defaults(), 5, &mut notices).expect("usable");
        assert_eq!(nodes.len(), 1);
        let subs = &nodes[0].record.subscriptions;
        assert_eq!(subs.len(), 1);
        assert_eq!(subs[0].jid, "e@f/g");
        assert!(!subs[0].subid.is_empty(), "a new subid");
        assert_eq!(
            nodes[0].record.affiliations,
            [(JULIET.to_string(), Affiliation::Owner)]
        );
        assert_eq!(
            NodeConfig::decode(&nodes[0].record.config).expect("config"),
            NodeConfig::pep_default()
        );
        assert_eq!(notices.len(), 2, "{notices:?}");
        assert!(
            notices[0].contains("<default xmlns='http://jabber.org/protocol/pubsub#owner'/>")
                && notices[0].contains("<publish xmlns='http://jabber.org/protocol/pubsub'/>"),
            "{notices:?}"
        );
        assert!(
            notices[1].contains("1 subscription awaiting approval"),
            "{notices:?}"
        );
    }

    /// A user whose PEP data is refused is imported with the rest of its
    /// data, and the report says why its nodes are not.
    #[test]
    fn refused_pep_data_leaves_the_account() {
        let dir = TempDir::new("portable-pep-refused");
        let input = dir.path().join("in");
        std::fs::create_dir_all(&input).expect("mkdir");
        std::fs::write(
            input.join("juliet.xml"),
            format!(
                "<server-data xmlns='urn:xmpp:pie:0'><host jid='capulet.lit'>\
                 <user name='juliet' password='balcony'>\
                 <vCard xmlns='vcard-temp'><FN>Juliet</FN></vCard>{}{}</user></host></server-data>",
                owner("<configure node='good'/><configure node='bad'/>"),
                data("<items node='bad'><item id='x'><a xmlns='b'/><c xmlns='d'/></item></items>")
            ),
        )
        .expect("write");
        let target = open(&dir, "t.redb");
        let report = import(&target, &input, &["capulet.lit".to_string()]).expect("import");
        assert_eq!(report.imported, [JULIET], "{:?}", report.lines());
        assert_eq!(
            report.notices,
            [
                "juliet@capulet.lit: PEP not imported: juliet@capulet.lit: PEP node \"bad\": \
              item \"x\": more than one payload"
            ]
        );
        assert!(target.vcards().get(JULIET).expect("vcard").is_some());
        assert_eq!(target.pubsub().node_count(JULIET).expect("count"), 0);
    }

    #[test]
    fn the_exported_form_reads_back_to_the_same_configuration() {
        let mut config = NodeConfig::pep_default();
        config.max_items = MaxItems::Count(100_000);
        config.roster_groups_allowed = vec!["a".into(), "b".into()];
        config.title = "t".into();
        let form = config_form(&config);
        assert_eq!(form.attr("type"), Some("submit"));
        assert!(
            form.children()
                .all(|f| f.attr("label").is_none() && f.get_child("option", NS_DATA).is_none()),
            "{form:?}"
        );
        let configure = Element::new("configure", NS_PUBSUB_OWNER).with_child(form);
        let mut ignored = BTreeSet::new();
        let (back, named) = read_config(&configure, &known_options(), &mut ignored).expect("read");
        assert!(named && ignored.is_empty());
        // A count above any limit is kept as it is.
        assert_eq!(back, config);
    }
}
