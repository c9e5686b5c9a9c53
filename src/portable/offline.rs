//! The offline messages family: `<offline-messages/>` (XEP-0227 §4.5),
//! the stored `<message xmlns='jabber:client'/>`s, oldest first, each with
//! the XEP-0203 `<delay/>` saying when it arrived. Perch stores messages
//! with that stamp already, so they are written as stored. On import a
//! message without a stamp gets one for the time of the import, so the
//! user's client does not show it as new; the per-account offline limits
//! do not apply (the operator moves what the old server accepted).

use std::time::SystemTime;

use crate::im::delay::{self, NS_DELAY};
use crate::jid::Jid;
use crate::store::StoreError;
use crate::store::offline::{all_in, append_op};
use crate::xml::{Element, NS_CLIENT};

use super::{Family, ImportWrite, NS_PIE, NS_PIE_OLD, PortableError, Source};

pub struct OfflineFamily;

impl Family for OfflineFamily {
    fn name(&self) -> &'static str {
        "offline messages"
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
        let mut wrapper = Element::new("offline-messages", NS_PIE);
        for bytes in stored {
            let message = std::str::from_utf8(&bytes)
                .ok()
                .and_then(|xml| Element::parse(xml).ok())
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("an offline message of {user} is not XML"))
                })?;
            wrapper.push_child(message);
        }
        element.push_child(wrapper);
        Ok(())
    }

    fn claims(&self, child: &Element) -> bool {
        child.is("offline-messages", NS_PIE) || child.is("offline-messages", NS_PIE_OLD)
    }

    fn import_user(
        &self,
        user: &Jid,
        element: &Element,
        _notices: &mut Vec<String>,
    ) -> Result<Option<ImportWrite>, PortableError> {
        let now = SystemTime::now();
        let mut messages = Vec::new();
        for wrapper in element.children().filter(|c| self.claims(c)) {
            for message in wrapper.children() {
                if !message.is("message", NS_CLIENT) {
                    return Err(PortableError::BadUserData(format!(
                        "{user}: <{}/> among the offline messages",
                        message.name
                    )));
                }
                let mut message = message.clone();
                if message.get_child("delay", NS_DELAY).is_none() {
                    message.push_child(delay::element(user.domain(), now, Some("Offline Storage")));
                }
                messages.push(message.to_bytes(""));
            }
        }
        if messages.is_empty() {
            return Ok(None);
        }
        let ops: Vec<_> = (1u64..)
            .zip(messages)
            .map(|(seq, xml)| append_op(user.as_str(), seq, xml))
            .collect();
        Ok(Some(Box::new(move |txn| {
            for op in &ops {
                op(txn)?;
            }
            Ok(())
        })))
    }
}
