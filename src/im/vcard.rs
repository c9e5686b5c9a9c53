//! vCard-temp (XEP-0054) on the account's bare JID, and the avatar hash
//! the server puts in the user's presence (XEP-0153).
//!
//! Anyone may read a vCard (it is public by design); only its owner may
//! replace it. The server, which holds the vCard, is the authority on its
//! photo: it stamps `<x xmlns='vcard-temp:x:update'><photo>hash</photo></x>`
//! on the user's available presence (an empty `<photo/>` when there is no
//! photo), replacing whatever the client said, so all of a user's clients
//! and contacts agree on the avatar.

use std::fmt;

use crate::env::Env;
use crate::jid::Jid;
use crate::session::Session;
use crate::stanza::{Condition, StanzaError};
use crate::store::vcards;
use crate::xml::Element;

use super::reply;

pub const NS_VCARD: &str = "vcard-temp";
pub const NS_VCARD_UPDATE: &str = "vcard-temp:x:update";

/// An iq with a `vcard-temp` payload addressed to `account`'s bare JID.
pub fn account_query(env: &Env, iq: Element, account: &Jid) {
    let Some(requester) = reply::requester(&iq) else {
        return;
    };
    let owner = requester.bare_str() == account.bare_str();
    match iq.attr("type") {
        Some("get") => {
            let outcome = get(env, account);
            reply::answer(env, &iq, outcome.map(Some));
        }
        Some("set") => set(env, iq, account, owner),
        _ => {}
    }
}

fn get(env: &Env, account: &Jid) -> Result<Element, StanzaError> {
    match env.store.vcards().get(account.as_str()) {
        Ok(Some(vcard)) => Ok(vcard),
        // XEP-0054 §3.1 and §3.3: an account without a vCard (never
        // stored, or stored empty) answers with an empty one, to its owner
        // and to others alike; clients read that as "no vCard, no
        // avatar". (An address without an account gets
        // `service-unavailable` before this, as RFC 6121 §8.5.1 says.)
        Ok(None) => Ok(Element::new("vCard", NS_VCARD)),
        Err(e) => {
            log::error!("reading the vCard of {account}: {e}");
            Err(StanzaError::new(Condition::InternalServerError))
        }
    }
}

fn set(env: &Env, iq: Element, account: &Jid, owner: bool) {
    if !owner {
        // §3.2: another user's vCard is not ours to change.
        return reply::answer(env, &iq, Err(StanzaError::new(Condition::Forbidden)));
    }
    let update = match iq.first_child() {
        Some(vcard) => check_update(vcard, env.config.limits.max_vcard_bytes),
        None => Err(StanzaError::new(Condition::BadRequest)),
    };
    let update = match update {
        Ok(u) => u,
        Err(e) => return reply::answer(env, &iq, Err(e)),
    };
    let old_hash = match env.store.vcards().photo_hash(account.as_str()) {
        Ok(hash) => hash,
        Err(e) => {
            log::error!("reading the avatar hash of {account}: {e}");
            return reply::answer(
                env,
                &iq,
                Err(StanzaError::new(Condition::InternalServerError)),
            );
        }
    };
    let changed = old_hash != update.photo_hash;
    env.persist(vcards::set_op(
        account.as_str(),
        update.vcard.as_ref(),
        update.photo_hash,
    ));
    reply::answer(env, &iq, Ok(None));
    if changed {
        // The hash is stamped from what is stored: re-send once it is.
        let account = account.clone();
        env.after_durable(Box::new(move |env| rebroadcast_presence(env, &account)));
    }
}

/// Contacts learn of a new avatar from the next presence; send it now
/// rather than when the user next changes status.
pub fn rebroadcast_presence(env: &Env, account: &Jid) {
    for session in env.sessions_of(account) {
        let presence = session.presence.borrow().clone();
        if let Some(presence) = presence {
            super::presence::broadcast_own(env, &session, presence);
        }
    }
}

/// A vCard ready to store: `None` removes the stored one (an empty
/// `<vCard/>` is how clients clear theirs).
#[derive(Debug, PartialEq, Eq)]
pub struct VCardUpdate {
    pub vcard: Option<Element>,
    pub photo_hash: Option<String>,
}

/// Validates a vCard the owner wants to store.
pub fn check_update(vcard: &Element, max_bytes: usize) -> Result<VCardUpdate, StanzaError> {
    if !vcard.is("vCard", NS_VCARD) {
        return Err(StanzaError::new(Condition::BadRequest)
            .with_text("expected <vCard xmlns='vcard-temp'/>"));
    }
    if vcard.children().next().is_none() && vcard.text().trim().is_empty() {
        return Ok(VCardUpdate {
            vcard: None,
            photo_hash: None,
        });
    }
    let size = vcard.to_bytes("").len();
    if size > max_bytes {
        return Err(StanzaError::new(Condition::NotAcceptable).with_text(format!(
            "the vCard takes {size} bytes; this server stores at most {max_bytes} (make the photo smaller)"
        )));
    }
    let photo_hash = photo_hash(vcard)
        .map_err(|e| StanzaError::new(Condition::BadRequest).with_text(e.to_string()))?;
    Ok(VCardUpdate {
        vcard: Some(vcard.clone()),
        photo_hash,
    })
}

#[derive(Debug, PartialEq, Eq)]
pub struct InvalidPhoto;

impl fmt::Display for InvalidPhoto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the PHOTO's BINVAL is not valid base64")
    }
}

/// XEP-0153: the lower-case hex SHA-1 of the image bytes in
/// `PHOTO/BINVAL` (whitespace in the base64 ignored); `None` without a
/// photo or with an empty one.
pub fn photo_hash(vcard: &Element) -> Result<Option<String>, InvalidPhoto> {
    let Some(binval) = vcard
        .get_child("PHOTO", NS_VCARD)
        .and_then(|p| p.get_child("BINVAL", NS_VCARD))
    else {
        return Ok(None);
    };
    let base64: String = binval
        .text()
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if base64.is_empty() {
        return Ok(None);
    }
    let image = crate::sasl::base64::decode(&base64).map_err(|_| InvalidPhoto)?;
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &image);
    Ok(Some(crate::ids::hex(digest.as_ref())))
}

/// Puts the account's avatar hash on an available presence the user sends
/// (broadcast or directed), replacing the client's own update element.
pub fn stamp_avatar(env: &Env, origin: &Session, presence: &mut Element) {
    if presence.attr("type").is_some() {
        return;
    }
    let hash = match env.store.vcards().photo_hash(origin.jid.bare_str()) {
        Ok(hash) => hash,
        Err(e) => {
            // Leave the client's own claim rather than assert "no photo".
            log::warn!("reading the avatar hash of {}: {e}", origin.jid);
            return;
        }
    };
    set_update_element(presence, hash.as_deref());
}

/// Replaces every `vcard-temp:x:update` child with one carrying `hash`.
pub fn set_update_element(presence: &mut Element, hash: Option<&str>) {
    while presence.remove_child("x", NS_VCARD_UPDATE).is_some() {}
    let mut photo = Element::new("photo", NS_VCARD_UPDATE);
    if let Some(hash) = hash {
        photo.push_text(hash);
    }
    presence.push_child(Element::new("x", NS_VCARD_UPDATE).with_child(photo));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(s: &str) -> Element {
        Element::parse(s).expect("parse")
    }

    #[test]
    fn photo_hash_of_binval_ignores_whitespace() {
        // sha1("hello avatar"), computed independently.
        let vcard = el("<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE>\
                        <BINVAL>aGVsbG8g\n  YXZhdGFy</BINVAL></PHOTO></vCard>");
        assert_eq!(
            photo_hash(&vcard),
            Ok(Some("8e274696f2bd20516c2f743207065763a6dfe75e".to_string()))
        );
        assert_eq!(
            photo_hash(&el("<vCard xmlns='vcard-temp'><FN>x</FN></vCard>")),
            Ok(None)
        );
        assert_eq!(
            photo_hash(&el(
                "<vCard xmlns='vcard-temp'><PHOTO><BINVAL/></PHOTO></vCard>"
            )),
            Ok(None)
        );
        assert_eq!(
            photo_hash(&el(
                "<vCard xmlns='vcard-temp'><PHOTO><BINVAL>!!</BINVAL></PHOTO></vCard>"
            )),
            Err(InvalidPhoto)
        );
    }

    #[test]
    fn updates_are_checked() {
        let small = el("<vCard xmlns='vcard-temp'><FN>Romeo</FN></vCard>");
        let ok = check_update(&small, 1024).expect("fits");
        assert_eq!(ok.vcard, Some(small.clone()));
        assert_eq!(ok.photo_hash, None);
        let too_big = check_update(&small, 10).map_err(|e| e.condition);
        assert_eq!(too_big, Err(Condition::NotAcceptable));
        let clear = check_update(&el("<vCard xmlns='vcard-temp'/>"), 10).expect("clear");
        assert_eq!(clear.vcard, None);
        let wrong = check_update(&el("<vcard xmlns='vcard-temp'/>"), 1024).map_err(|e| e.condition);
        assert_eq!(wrong, Err(Condition::BadRequest));
        let bad_photo = check_update(
            &el("<vCard xmlns='vcard-temp'><PHOTO><BINVAL>*</BINVAL></PHOTO></vCard>"),
            1024,
        )
        .map_err(|e| e.condition);
        assert_eq!(bad_photo, Err(Condition::BadRequest));
    }

    #[test]
    fn update_element_replaces_the_clients() {
        let mut p = el("<presence xmlns='jabber:client'><show>away</show>\
                        <x xmlns='vcard-temp:x:update'><photo>0000</photo></x>\
                        <x xmlns='vcard-temp:x:update'/></presence>");
        set_update_element(&mut p, Some("abcd"));
        assert_eq!(
            p.to_string(),
            "<presence xmlns='jabber:client'><show>away</show>\
             <x xmlns='vcard-temp:x:update'><photo>abcd</photo></x></presence>"
        );
        set_update_element(&mut p, None);
        assert_eq!(
            p.to_string(),
            "<presence xmlns='jabber:client'><show>away</show>\
             <x xmlns='vcard-temp:x:update'><photo/></x></presence>"
        );
    }
}
