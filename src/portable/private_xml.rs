//! The private XML family (XEP-0049): one `<query xmlns='jabber:iq:private'/>`
//! child of `<user/>` holding every element the user stored (XEP-0227
//! §4.2). Perch keeps them per namespace; on import they are grouped by
//! namespace again, in the order they come. The per-account storage limit
//! does not apply to an import: the operator moves what the old server
//! accepted.

use std::collections::BTreeMap;

use crate::jid::Jid;
use crate::store::private_xml::{NS_PRIVATE, all_in, set_op};
use crate::xml::Element;

use super::{Family, ImportWrite, PortableError, Source};

pub struct PrivateXmlFamily;

impl Family for PrivateXmlFamily {
    fn name(&self) -> &'static str {
        "private XML"
    }

    fn export_user(
        &self,
        source: &Source<'_>,
        user: &Jid,
        element: &mut Element,
    ) -> Result<(), PortableError> {
        let stored = all_in(source.txn, user.as_str())?;
        if stored.is_empty() {
            return Ok(());
        }
        let mut query = Element::new("query", NS_PRIVATE);
        for child in stored.into_iter().flat_map(|(_, elements)| elements) {
            query.push_child(child);
        }
        element.push_child(query);
        Ok(())
    }

    fn claims(&self, child: &Element) -> bool {
        child.is("query", NS_PRIVATE)
    }

    fn import_user(
        &self,
        user: &Jid,
        element: &Element,
        _notices: &mut Vec<String>,
    ) -> Result<Option<ImportWrite>, PortableError> {
        let mut by_namespace: BTreeMap<String, Vec<Element>> = BTreeMap::new();
        for query in element.children().filter(|c| self.claims(c)) {
            for child in query.children() {
                if child.ns.is_empty() || child.ns == NS_PRIVATE {
                    // XEP-0049 §2: such an element cannot be stored.
                    return Err(PortableError::BadUserData(format!(
                        "{user}: private XML <{}/> has no namespace of its own",
                        child.name
                    )));
                }
                by_namespace
                    .entry(child.ns.to_string())
                    .or_default()
                    .push(child.clone());
            }
        }
        if by_namespace.is_empty() {
            return Ok(None);
        }
        let op = set_op(
            user.as_str(),
            by_namespace.into_iter().collect(),
            usize::MAX,
        );
        Ok(Some(Box::new(move |txn| op(txn))))
    }
}
