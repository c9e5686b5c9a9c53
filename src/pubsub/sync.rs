//! Keeping older protocols in step with PEP, so old and new clients of one
//! account see the same data:
//! - bookmarks (XEP-0411): XEP-0402's `urn:xmpp:bookmarks:1` node, the
//!   XEP-0048 `storage:bookmarks` PEP node and the same in private XML
//!   storage (XEP-0049); a change to one is written to the other two;
//! - avatars (XEP-0398): a XEP-0084 avatar published in PEP becomes the
//!   vCard's photo (and the XEP-0153 hash in presence), and a photo stored
//!   in the vCard is published as a XEP-0084 avatar.
//!
//! A [`Follow`] is taken from the request before it is handled and run
//! after it succeeded; what it reads from the store is from before the
//! request, so the request's own change is applied to it in memory.

use crate::env::Env;
use crate::im;
use crate::jid::Jid;
use crate::store::pubsub::{self as stored, StoredItem};
use crate::store::{WriteOp, private_xml, vcards};
use crate::xml::Element;

use super::avatar::{self, NS_AVATAR_DATA, NS_AVATAR_METADATA};
use super::bookmarks::{self, Bookmark, NS_BOOKMARKS, NS_LEGACY};
use super::config::{AccessModel, MaxItems, NodeConfig, SendLastPublished};
use super::node::{self, Node};
use super::policy::{kept_items, max_nodes};
use super::request::Request;
use super::{ServiceRef, notify};

/// What to bring in step after a request of the account's own.
pub enum Follow {
    Nothing,
    /// A XEP-0402 bookmark was published (id, payload) or retracted.
    Bookmark {
        set: Option<(String, Element)>,
        removed: Vec<String>,
    },
    /// The legacy bookmarks were replaced (PEP or private XML).
    LegacyBookmarks {
        storage: Element,
        from_private: bool,
    },
    /// An avatar's metadata was published.
    AvatarMetadata(Element),
    /// A vCard was stored.
    VCard(Element),
}

impl Follow {
    /// What a PEP request of the account's own calls for.
    pub fn of(request: &Request) -> Follow {
        match request {
            Request::Publish {
                node,
                id: Some(id),
                payload: Some(payload),
                ..
            } if node == NS_BOOKMARKS => Follow::Bookmark {
                set: Some((id.clone(), payload.clone())),
                removed: Vec::new(),
            },
            Request::Retract { node, ids, .. } if node == NS_BOOKMARKS => Follow::Bookmark {
                set: None,
                removed: ids.clone(),
            },
            Request::Publish {
                node,
                payload: Some(storage),
                ..
            } if node == NS_LEGACY && storage.is("storage", NS_LEGACY) => Follow::LegacyBookmarks {
                storage: storage.clone(),
                from_private: false,
            },
            Request::Publish {
                node,
                payload: Some(metadata),
                ..
            } if node == NS_AVATAR_METADATA => Follow::AvatarMetadata(metadata.clone()),
            _ => Follow::Nothing,
        }
    }

    /// What an iq of the account's own to its bare JID calls for, outside
    /// PEP: a set of legacy bookmarks in private XML, or of a vCard.
    pub fn of_account_iq(env: &Env, iq: &Element, account: &Jid) -> Option<Follow> {
        if iq.attr("type") != Some("set") {
            return None;
        }
        let from = iq.attr("from").and_then(|f| Jid::parse(f).ok())?;
        if from.bare_str() != account.bare_str() {
            return None;
        }
        let payload = iq.first_child()?;
        if payload.is("query", private_xml::NS_PRIVATE) {
            let storage = payload.get_child("storage", NS_LEGACY)?;
            // A set the private storage refuses changes nothing anywhere.
            im::private::check_set(payload, env.config.limits.max_private_xml_bytes).ok()?;
            return Some(Follow::LegacyBookmarks {
                storage: storage.clone(),
                from_private: true,
            });
        }
        if payload.is("vCard", im::vcard::NS_VCARD) {
            return Some(Follow::VCard(payload.clone()));
        }
        None
    }

    /// Runs once the request succeeded; for the private XML and vCard iqs,
    /// once they were answered (a refused one changed nothing: what is
    /// stored is compared first).
    pub fn run(self, env: &Env, account: &Jid) {
        match self {
            Follow::Nothing => {}
            Follow::Bookmark { set, removed } => bookmark_changed(env, account, set, &removed),
            Follow::LegacyBookmarks {
                storage,
                from_private,
            } => legacy_changed(env, account, &storage, from_private),
            Follow::AvatarMetadata(metadata) => avatar_published(env, account, &metadata),
            Follow::VCard(vcard) => vcard_stored(env, account, &vcard),
        }
    }
}

/// A write that copies what the client changed into another protocol's
/// store: refused (a limit of that store), it is logged and skipped, so
/// the client's own change, already answered, stands.
fn mirrored(op: WriteOp) -> WriteOp {
    Box::new(move |txn| match op(txn) {
        Err(e) if e.is_refusal() => {
            log::info!("a copy for an older protocol was not stored: {e}");
            Ok(())
        }
        other => other,
    })
}

/// A legacy client reads its bookmarks from private XML (XEP-0049) where
/// none were ever stored, but XEP-0402 items exist (a new client made
/// them, or they were imported): it is answered from those, so its next
/// write does not start from an empty list. Returns whether it answered.
pub fn legacy_get(env: &Env, iq: &Element, account: &Jid) -> bool {
    let Some(query) = iq.first_child() else {
        return false;
    };
    let own = iq
        .attr("from")
        .and_then(|f| Jid::parse(f).ok())
        .is_some_and(|f| f.bare_str() == account.bare_str());
    let legacy_read = iq.attr("type") == Some("get")
        && query.is("query", private_xml::NS_PRIVATE)
        && query.get_child("storage", NS_LEGACY).is_some();
    if !(own && legacy_read) {
        return false;
    }
    let stored = env.store.private_xml().get(account.as_str(), NS_LEGACY);
    if !matches!(stored, Ok(ref list) if list.is_empty()) {
        return false;
    }
    let current: Vec<Bookmark> = current_bookmarks(env, account)
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    if current.is_empty() {
        return false;
    }
    let storage = bookmarks::to_legacy(&current, &[]);
    let query = Element::new("query", private_xml::NS_PRIVATE).with_child(storage);
    env.reply_to_sender(crate::stanza::iq_result(iq).with_child(query));
    true
}

/// XEP-0402 §3 (and XEP-0411): the node's required configuration.
fn bookmarks_config() -> NodeConfig {
    let mut config = NodeConfig::pep_default();
    config.access_model = AccessModel::Whitelist;
    config.max_items = MaxItems::Max;
    config.send_last_published_item = SendLastPublished::Never;
    config
}

/// The legacy PEP node's configuration (XEP-0048 §3.3, XEP-0223).
fn legacy_config() -> NodeConfig {
    let mut config = NodeConfig::pep_default();
    config.access_model = AccessModel::Whitelist;
    config
}

fn read_items(env: &Env, account: &Jid, node: &str) -> Vec<StoredItem> {
    env.store
        .pubsub()
        .items(account.as_str(), node)
        .unwrap_or_else(|e| {
            log::error!("reading {node} of {account}: {e}");
            Vec::new()
        })
}

/// The account's XEP-0402 bookmarks as stored.
fn current_bookmarks(env: &Env, account: &Jid) -> Vec<(String, Bookmark)> {
    read_items(env, account, NS_BOOKMARKS)
        .iter()
        .filter_map(|item| {
            let payload = Element::parse(&item.payload).ok()?;
            // The item keeps the id the client gave it (a room JID in any
            // case); the bookmark has it normalized.
            Some((item.id.clone(), bookmarks::from_item(&item.id, &payload)?))
        })
        .collect()
}

/// The non-conference children of the stored legacy bookmarks, kept.
fn legacy_extras(env: &Env, account: &Jid) -> Vec<Element> {
    env.store
        .private_xml()
        .get(account.as_str(), NS_LEGACY)
        .ok()
        .and_then(|stored| stored.into_iter().find(|e| e.is("storage", NS_LEGACY)))
        .map(|storage| bookmarks::legacy_extras(&storage))
        .unwrap_or_default()
}

fn bookmark_changed(env: &Env, account: &Jid, set: Option<(String, Element)>, removed: &[String]) {
    let mut list = current_bookmarks(env, account);
    list.retain(|(id, _)| !removed.contains(id));
    if let Some((id, payload)) = set {
        let Some(new) = bookmarks::from_item(&id, &payload) else {
            return;
        };
        list.retain(|(old, b)| *old != id && b.room != new.room);
        list.push((id, new));
    }
    let list: Vec<Bookmark> = list.into_iter().map(|(_, b)| b).collect();
    let storage = bookmarks::to_legacy(&list, &legacy_extras(env, account));
    write_legacy(env, account, storage, true);
}

/// Writes the legacy bookmarks to private XML and the legacy PEP node
/// (`both`), or only to the one the client did not write itself.
fn write_legacy(env: &Env, account: &Jid, storage: Element, both: bool) {
    write_private(env, account, storage.clone());
    if both {
        publish_owned(env, account, NS_LEGACY, "current", storage, legacy_config());
    }
}

fn write_private(env: &Env, account: &Jid, storage: Element) {
    env.persist(mirrored(private_xml::set_op(
        account.as_str(),
        vec![(NS_LEGACY.to_string(), vec![storage])],
        env.config.limits.max_private_xml_bytes,
    )));
}

/// Brings the XEP-0402 items in step with `wanted`: what is gone is
/// retracted (by the id it was stored under), what is new or changed is
/// published.
fn to_new_bookmarks(env: &Env, account: &Jid, wanted: &[Bookmark], current: &[(String, Bookmark)]) {
    for (id, b) in current {
        if !wanted.iter().any(|w| w.room == b.room) {
            retract_owned(env, account, NS_BOOKMARKS, id);
        }
    }
    for w in wanted {
        if !current.iter().any(|(_, b)| b == w) {
            // Stored under another spelling of the room: replaced.
            for (id, _) in current
                .iter()
                .filter(|(id, b)| b.room == w.room && *id != w.room)
            {
                retract_owned(env, account, NS_BOOKMARKS, id);
            }
            let payload = bookmarks::to_item_payload(w);
            publish_owned(
                env,
                account,
                NS_BOOKMARKS,
                &w.room,
                payload,
                bookmarks_config(),
            );
        }
    }
}

fn legacy_changed(env: &Env, account: &Jid, storage: &Element, from_private: bool) {
    let wanted = bookmarks::from_legacy(storage);
    let current = current_bookmarks(env, account);
    let room_limit = kept_items(env, &bookmarks_config());
    if wanted.len() > room_limit {
        // The XEP-0402 node would keep only the newest of them, and the
        // next change there would write the shortened list back.
        log::warn!(
            "{account}: {} legacy bookmarks, more than a node keeps ({room_limit}): not converted",
            wanted.len()
        );
    } else {
        to_new_bookmarks(env, account, &wanted, &current);
    }
    if from_private {
        publish_owned(
            env,
            account,
            NS_LEGACY,
            "current",
            storage.clone(),
            legacy_config(),
        );
    } else {
        write_private(env, account, storage.clone());
    }
}

/// Publishes on the account's behalf, creating the node with `config` if
/// needed, and notifies as a publication by the account would.
fn publish_owned(
    env: &Env,
    account: &Jid,
    name: &str,
    id: &str,
    payload: Element,
    config: NodeConfig,
) {
    let svc = ServiceRef::pep(account);
    let (mut node, create) = match node::load(env, &svc, name) {
        Ok(Some(node)) => (node, None),
        Ok(None) => {
            let node = Node::new(name.to_string(), config, account);
            let record = node.to_record();
            (node, Some((record, max_nodes(env, &svc))))
        }
        Err(_) => return,
    };
    if (name == NS_BOOKMARKS || name == NS_LEGACY)
        && node.config.access_model != AccessModel::Whitelist
    {
        // XEP-0411 §7: bookmarks (room passwords among them) copied into a
        // node that contacts can read would leak: the node is made private.
        node.config.access_model = AccessModel::Whitelist;
        let private = node.config.encode();
        svc.persist(
            env,
            mirrored(stored::update_node_op(svc.jid, name, move |record| {
                record.config = private.clone();
                Ok(())
            })),
        );
    }
    let item = StoredItem {
        id: id.to_string(),
        stamp: env.archive.ids.next_stamp(env.now()),
        publisher: account.as_str().to_string(),
        payload: String::from_utf8_lossy(&payload.to_bytes("")).into_owned(),
    };
    svc.persist(
        env,
        mirrored(stored::publish_op(
            svc.jid,
            name,
            item.clone(),
            kept_items(env, &node.config),
            create,
        )),
    );
    notify::broadcast(
        env,
        &svc,
        &node,
        notify::published_event(env, &svc, &node, &item, Some(payload)),
    );
}

fn retract_owned(env: &Env, account: &Jid, name: &str, id: &str) {
    let svc = ServiceRef::pep(account);
    let Ok(Some(node)) = node::load(env, &svc, name) else {
        return;
    };
    let ids = vec![id.to_string()];
    svc.persist(
        env,
        mirrored(stored::retract_op(svc.jid, name, ids.clone())),
    );
    if node.config.notify_retract {
        notify::broadcast(env, &svc, &node, notify::retract_event(name, &ids));
    }
}

/// XEP-0398 §4: the avatar published in PEP becomes the vCard photo.
fn avatar_published(env: &Env, account: &Jid, metadata: &Element) {
    let avatar = match avatar::metadata_info(metadata) {
        Err(_) => return,
        Ok(None) => None,
        Ok(Some(info)) => {
            let data = env
                .store
                .pubsub()
                .item(account.as_str(), NS_AVATAR_DATA, &info.id)
                .ok()
                .flatten()
                .and_then(|item| Element::parse(&item.payload).ok());
            // The image may live elsewhere (XEP-0084 §4.2.1 `url`): the
            // vCard is left alone then.
            let Some(data) = data else {
                return;
            };
            match avatar::from_data(&data, &info) {
                Ok(a) => Some(a),
                Err(e) => {
                    log::debug!("{account}: avatar not copied to the vCard: {e}");
                    return;
                }
            }
        }
    };
    let old = env.store.vcards().get(account.as_str()).ok().flatten();
    let old_hash = env
        .store
        .vcards()
        .photo_hash(account.as_str())
        .ok()
        .flatten();
    let new_hash = avatar.as_ref().map(|a| a.id.clone());
    if old_hash == new_hash {
        return;
    }
    let vcard = avatar::with_photo(old.as_ref(), avatar.as_ref());
    // The vCard's own rules apply (its size limit, an empty one is none).
    let update = match im::vcard::check_update(&vcard, env.config.limits.max_vcard_bytes) {
        Ok(update) => update,
        Err(e) => {
            log::debug!("{account}: avatar not copied to the vCard: {e}");
            return;
        }
    };
    env.persist(vcards::set_op(
        account.as_str(),
        update.vcard.as_ref(),
        update.photo_hash,
    ));
    let account = account.clone();
    env.after_durable(Box::new(move |env| {
        im::vcard::rebroadcast_presence(env, &account)
    }));
}

/// XEP-0398 §3: a photo stored in the vCard is published as the avatar
/// (or the avatar is disabled when the photo was removed).
fn vcard_stored(env: &Env, account: &Jid, vcard: &Element) {
    if im::vcard::check_update(vcard, env.config.limits.max_vcard_bytes).is_err() {
        // Refused: nothing was stored.
        return;
    }
    let avatar = avatar::from_vcard(vcard);
    let published = read_items(env, account, NS_AVATAR_METADATA)
        .pop()
        .map(|item| item.id);
    match avatar {
        Some(a) => {
            if published.as_deref() == Some(a.id.as_str()) {
                return;
            }
            let config = avatar_config();
            publish_owned(
                env,
                account,
                NS_AVATAR_DATA,
                &a.id,
                avatar::data_payload(&a),
                config.clone(),
            );
            publish_owned(
                env,
                account,
                NS_AVATAR_METADATA,
                &a.id,
                avatar::metadata_payload(&a),
                config,
            );
        }
        None => {
            if published.is_none() {
                return;
            }
            let empty = Element::new("metadata", NS_AVATAR_METADATA);
            publish_owned(
                env,
                account,
                NS_AVATAR_METADATA,
                "current",
                empty,
                avatar_config(),
            );
        }
    }
}

/// Avatars are for contacts (XEP-0084 §6): the presence access model.
fn avatar_config() -> NodeConfig {
    NodeConfig::pep_default()
}
