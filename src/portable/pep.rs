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
#[path = "pep_tests.rs"]
mod tests;
