//! The vCard family: the user's `<vCard xmlns='vcard-temp'/>` (XEP-0054),
//! a child of `<user/>` (XEP-0227 §4.3), kept as it is. On import the
//! XEP-0153 avatar hash is computed from its photo, as when a client
//! publishes it.

use crate::im::vcard::{NS_VCARD, photo_hash};
use crate::jid::Jid;
use crate::store::vcards::{get_in, set_op};
use crate::xml::Element;

use super::{Family, ImportWrite, PortableError, Source};

pub struct VCardFamily;

impl Family for VCardFamily {
    fn name(&self) -> &'static str {
        "vCard"
    }

    fn export_user(
        &self,
        source: &Source<'_>,
        user: &Jid,
        element: &mut Element,
    ) -> Result<(), PortableError> {
        if let Some(vcard) = get_in(source.txn, user.as_str())? {
            element.push_child(vcard);
        }
        Ok(())
    }

    fn claims(&self, child: &Element) -> bool {
        child.is("vCard", NS_VCARD)
    }

    fn import_user(
        &self,
        user: &Jid,
        element: &Element,
        _notices: &mut Vec<String>,
    ) -> Result<Option<ImportWrite>, PortableError> {
        let mut vcards = element.children().filter(|c| self.claims(c));
        let (Some(vcard), None) = (vcards.next(), vcards.next()) else {
            return match element.children().filter(|c| self.claims(c)).count() {
                0 => Ok(None),
                _ => Err(PortableError::BadUserData(format!(
                    "{user}: more than one vCard"
                ))),
            };
        };
        let hash = photo_hash(vcard).map_err(|_| {
            PortableError::BadUserData(format!("{user}: the vCard's PHOTO is not base64"))
        })?;
        let op = set_op(user.as_str(), Some(vcard), hash);
        Ok(Some(Box::new(move |txn| op(txn))))
    }
}
