//! `perch export DIR`: every account and its data, from one read
//! transaction (a consistent snapshot), as XEP-0227 files:
//!
//! ```text
//! DIR/server-data.xml           <server-data/> including one file per host
//! DIR/capulet.lit.xml           <host jid='capulet.lit'/> including its users
//! DIR/capulet.lit/juliet.xml    <user name='juliet'/> with every family's data
//! ```
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

use super::files::{self, MAIN_FILE};
use super::{FAMILIES, NS_PIE, NS_XINCLUDE, PortableError};

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
    let mut main = Element::new("server-data", NS_PIE);
    let mut users = 0;
    for (host, jids) in &hosts {
        let host_stem = files::file_stem(host);
        files::create_subdirectory(&dir.join(&host_stem))?;
        let mut host_element = Element::new("host", NS_PIE).with_attr("jid", host.as_str());
        for jid in jids {
            let name = jid.local().unwrap_or_default();
            let mut user = Element::new("user", NS_PIE).with_attr("name", name);
            for family in FAMILIES {
                family.export_user(&txn, jid, &mut user)?;
            }
            let relative = format!("{host_stem}/{}.xml", files::file_stem(name));
            files::write_document(&dir.join(&relative), &pretty(user))?;
            host_element.push_child(include(&relative));
            users += 1;
        }
        let host_file = format!("{host_stem}.xml");
        files::write_document(&dir.join(&host_file), &pretty(host_element))?;
        main.push_child(include(&host_file));
    }
    files::write_document(&dir.join(MAIN_FILE), &pretty(main))?;
    Ok(ExportSummary {
        hosts: hosts.len(),
        users,
    })
}

fn include(relative: &str) -> Element {
    Element::new("include", NS_XINCLUDE).with_attr("href", files::href(relative))
}

/// One child per line, so the files read and diff well.
fn pretty(mut element: Element) -> Element {
    let children = std::mem::take(&mut element.children);
    for child in children {
        element.push_text("\n  ");
        element.children.push(child);
    }
    if !element.children.is_empty() {
        element.push_text("\n");
    }
    element
}
