//! `perch export DIR`: every account and its data, from one read
//! transaction (a consistent snapshot), as XEP-0227 documents: one complete
//! `<server-data/>` document per account, named `user@host.xml`:
//!
//! ```xml
//! <server-data xmlns='urn:xmpp:pie:0'>
//!   <host jid='capulet.lit'>
//!     <user name='juliet'> … every family's data … </user>
//!   </host>
//! </server-data>
//! ```
//!
//! This is the layout of Prosody's `mod_storage_xep0227`, so
//! `prosody-migrator` reads the directory as it is, and each file is a whole
//! export that `ejabberdctl import_piefxis FILE` takes; Perch's own import
//! reads it and the XInclude layout of XEP-0227 §6.1 alike. (That layout
//! also works for one user per file, but needs includes, which Prosody
//! does not follow.)
//!
//! Each account's message archive is in its file (`<archive
//! xmlns='urn:xmpp:pie:0#mam'/>`, see `archive.rs`), with the ids its
//! messages have here; rooms' archives are not exported: XEP-0227 has no
//! format for rooms.
//!
//! Its PEP nodes are in it too (two `<pubsub/>` children, see `pep.rs`),
//! without the times their items were published: XEP-0227 has no place
//! for them, and the import keeps the items' order instead.
//!
//! The directory and files are readable by their owner only: they hold
//! SCRAM keys, which allow offline guessing of passwords.

use std::collections::BTreeMap;
use std::path::Path;

use redb::ReadableDatabase;

use crate::jid::Jid;
use crate::store::Store;
use crate::store::accounts::list_in;
use crate::xml::Element;

use super::files;
use super::{FAMILIES, NS_PIE, PortableError, Source};

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    pub hosts: usize,
    pub users: usize,
}

/// Exports everything in `store` into `dir`, which must be new or empty.
pub fn export(store: &Store, dir: &Path) -> Result<ExportSummary, PortableError> {
    files::prepare_directory(dir)?;
    let txn = store.db().begin_read()?;
    let mut hosts: BTreeMap<String, Vec<Jid>> = BTreeMap::new();
    for raw in list_in(&txn)? {
        let jid = Jid::parse(&raw).map_err(|e| {
            PortableError::BadUserData(format!("stored account {raw:?} is not a JID: {e}"))
        })?;
        hosts.entry(jid.domain().to_string()).or_default().push(jid);
    }
    let source = Source { txn: &txn, store };
    let mut users = 0;
    for (host, jids) in &hosts {
        for jid in jids {
            let name = jid.local().unwrap_or_default();
            let mut user = Element::new("user", NS_PIE).with_attr("name", name);
            for family in FAMILIES {
                family.export_user(&source, jid, &mut user)?;
            }
            let document = Element::new("server-data", NS_PIE).with_child(
                Element::new("host", NS_PIE)
                    .with_attr("jid", host.as_str())
                    .with_child(user),
            );
            let file = format!("{}@{}.xml", files::file_stem(name), files::file_stem(host));
            files::write_document(&dir.join(file), &pretty(document, 0))?;
            users += 1;
        }
    }
    Ok(ExportSummary {
        hosts: hosts.len(),
        users,
    })
}

/// One child per line, indented by `depth` levels, so the files read and
/// diff well.
fn pretty(mut element: Element, depth: usize) -> Element {
    let inner = format!("\n{}", "  ".repeat(depth + 1));
    let children = std::mem::take(&mut element.children);
    for child in children {
        let child = match child {
            crate::xml::Node::Element(e) if depth < 2 => {
                crate::xml::Node::Element(pretty(e, depth + 1))
            }
            other => other,
        };
        element.push_text(inner.as_str());
        element.children.push(child);
    }
    if !element.children.is_empty() {
        element.push_text(format!("\n{}", "  ".repeat(depth)));
    }
    element
}
