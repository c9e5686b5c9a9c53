//! The accounts family: who exists, and how they log in.
//!
//! Export writes, for each SCRAM hash the account has, the element of
//! XEP-0227 §2.3 (version 1.1):
//!
//! ```xml
//! <scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-256'>
//!   <iter-count>4096</iter-count>
//!   <salt>base64</salt>
//!   <server-key>base64</server-key>
//!   <stored-key>base64</stored-key>
//! </scram-credentials>
//! ```
//!
//! Perch keeps SCRAM-SHA-1 and SCRAM-SHA-256 keys for accounts it created,
//! so both elements are written. Perch never has a plaintext password, so
//! the `password` attribute (discouraged by the XEP) is never written.
//!
//! Import accepts a `password` attribute (Perch derives both hashes from it
//! with fresh salts) or, without one, the `<scram-credentials/>` elements
//! for SCRAM-SHA-1 and SCRAM-SHA-256 (kept exactly, so passwords keep
//! working); others (e.g. SCRAM-SHA-512) are not usable by Perch and are
//! reported. An account that arrives with SCRAM-SHA-1 keys only (Prosody
//! keeps only those) can log in with SCRAM-SHA-1 and PLAIN, not with
//! SCRAM-SHA-256, until its password is set again (`perch user passwd`).
//! Fields that ejabberd 23.01's export encodes in base64 twice are read
//! correctly.

use crate::jid::Jid;
use crate::sasl::base64;
use crate::sasl::{Credentials, DEFAULT_ITERATIONS, ScramHash, ScramKeys};
use crate::store::accounts::{create_in, credentials_in};
use crate::xml::Element;

use super::{Family, ImportWrite, PortableError, Source};

pub const NS_SCRAM: &str = "urn:xmpp:pie:0#scram";

pub struct AccountsFamily;

fn mechanism(hash: ScramHash) -> &'static str {
    match hash {
        ScramHash::Sha1 => "SCRAM-SHA-1",
        ScramHash::Sha256 => "SCRAM-SHA-256",
    }
}

fn hash_of(mechanism: &str) -> Option<ScramHash> {
    match mechanism {
        "SCRAM-SHA-1" => Some(ScramHash::Sha1),
        "SCRAM-SHA-256" => Some(ScramHash::Sha256),
        _ => None,
    }
}

/// The `<scram-credentials/>` element for one set of keys.
pub fn scram_element(keys: &ScramKeys) -> Element {
    let child = |name: &'static str, text: String| Element::new(name, NS_SCRAM).with_text(text);
    Element::new("scram-credentials", NS_SCRAM)
        .with_attr("mechanism", mechanism(keys.hash))
        .with_child(child("iter-count", keys.iterations.to_string()))
        .with_child(child("salt", base64::encode(&keys.salt)))
        .with_child(child("server-key", base64::encode(&keys.server_key)))
        .with_child(child("stored-key", base64::encode(&keys.stored_key)))
}

/// Reads one `<scram-credentials/>`; `Ok(None)` for a mechanism Perch does
/// not support.
pub fn parse_scram(element: &Element) -> Result<Option<ScramKeys>, String> {
    let name = element.attr("mechanism").unwrap_or_default();
    let Some(hash) = hash_of(name) else {
        return Ok(None);
    };
    let one = |child: &str| -> Result<String, String> {
        let mut found = element.children().filter(|c| c.is(child, NS_SCRAM));
        match (found.next(), found.next()) {
            (Some(c), None) => Ok(c.text().trim().to_string()),
            (None, _) => Err(format!("{name}: <{child}/> is missing")),
            (Some(_), Some(_)) => Err(format!("{name}: <{child}/> appears twice")),
        }
    };
    let decode = |child: &str| -> Result<Vec<u8>, String> {
        base64::decode(one(child)?).map_err(|e| format!("{name}: <{child}/>: {e}"))
    };
    let count = one("iter-count")?;
    // "a positive integer without leading zeros"
    let iterations = count
        .parse::<u32>()
        .ok()
        .filter(|n| *n > 0 && !count.starts_with('0') && !count.starts_with('+'))
        .ok_or_else(|| format!("{name}: iter-count {count:?} is not a positive integer"))?;
    let mut salt = decode("salt")?;
    let mut stored_key = decode("stored-key")?;
    let mut server_key = decode("server-key")?;
    if let (Some(stored), Some(server), Some(inner_salt)) = (
        decode_again(&stored_key, hash),
        decode_again(&server_key, hash),
        base64::decode(&salt).ok(),
    ) {
        // ejabberd's export_piefxis (seen in 23.01) base64-encodes these
        // fields twice for accounts it created itself. A key of the right
        // length is never valid base64 of a key of the right length (the
        // lengths differ), so this cannot misread a correct file.
        stored_key = stored;
        server_key = server;
        salt = inner_salt;
    }
    let keys = ScramKeys {
        hash,
        salt,
        iterations,
        stored_key,
        server_key,
    };
    if !keys.is_well_formed() {
        return Err(format!(
            "{name}: unusable keys (keys must be {} bytes, the salt 1 to 255 bytes, at most {} iterations)",
            hash.output_len(),
            crate::sasl::MAX_ITERATIONS
        ));
    }
    Ok(Some(keys))
}

/// `field` decoded once more, when it is base64 text of a key of `hash`'s
/// size rather than the key itself.
fn decode_again(field: &[u8], hash: ScramHash) -> Option<Vec<u8>> {
    if field.len() == hash.output_len() {
        return None;
    }
    base64::decode(field)
        .ok()
        .filter(|inner| inner.len() == hash.output_len())
}

impl Family for AccountsFamily {
    fn name(&self) -> &'static str {
        "accounts"
    }

    fn required(&self) -> bool {
        true
    }

    fn export_user(
        &self,
        source: &Source<'_>,
        user: &Jid,
        element: &mut Element,
    ) -> Result<(), PortableError> {
        if let Some(credentials) = credentials_in(source.txn, user.as_str())? {
            for keys in credentials.all_keys() {
                element.push_child(scram_element(keys));
            }
        }
        Ok(())
    }

    fn claims(&self, child: &Element) -> bool {
        child.is("scram-credentials", NS_SCRAM)
    }

    fn import_user(
        &self,
        user: &Jid,
        element: &Element,
        _notices: &mut Vec<String>,
    ) -> Result<Option<ImportWrite>, PortableError> {
        let bad = |why: String| PortableError::BadUserData(format!("{user}: {why}"));
        let credentials = match element.attr("password") {
            Some(password) => Credentials::derive(password, DEFAULT_ITERATIONS)
                .map_err(|e| bad(format!("unusable password: {e}")))?,
            None => {
                let mut keys = Vec::new();
                let mut unsupported = Vec::new();
                for child in element.children().filter(|c| self.claims(c)) {
                    match parse_scram(child).map_err(&bad)? {
                        Some(k) => keys.push(k),
                        None => unsupported
                            .push(child.attr("mechanism").unwrap_or("(none)").to_string()),
                    }
                }
                if keys.is_empty() {
                    return Err(bad(if unsupported.is_empty() {
                        "no password and no SCRAM credentials".to_string()
                    } else {
                        format!(
                            "only credentials Perch cannot use ({})",
                            unsupported.join(", ")
                        )
                    }));
                }
                Credentials::from_keys(keys).map_err(|e| bad(e.to_string()))?
            }
        };
        let jid = user.as_str().to_string();
        Ok(Some(Box::new(move |txn| {
            create_in(txn, &jid, &credentials)
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(jid: &str) -> Jid {
        Jid::parse(jid).expect("jid")
    }

    #[test]
    fn scram_element_round_trip() {
        let c = Credentials::derive("pencil", DEFAULT_ITERATIONS).expect("derive");
        for keys in c.all_keys() {
            let el = scram_element(keys);
            assert_eq!(parse_scram(&el).expect("parse").as_ref(), Some(keys));
        }
    }

    #[test]
    fn xep_example_parses() {
        // The example of XEP-0227 §2.3 (its salt is not a multiple of 3
        // bytes long, its keys are 20 bytes: SCRAM-SHA-1).
        let el = Element::parse(
            "<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'>\
             <iter-count>100000</iter-count>\
             <salt>TmFDbE5hQ2xOYUNsTmFDbE5hQ2xOYUNsTmFDbE5hQ2xOYUNsTmFDbE5hQ2wK</salt>\
             <server-key>0pXWGK0GZJ6TR73AIUN3ITYtA1g=</server-key>\
             <stored-key>Q6qT/SbybblGCZz8e8eSfCJOQic=</stored-key>\
             </scram-credentials>",
        )
        .expect("xml");
        let keys = parse_scram(&el).expect("valid").expect("supported");
        assert_eq!(keys.hash, ScramHash::Sha1);
        assert_eq!(keys.iterations, 100_000);
        assert_eq!(keys.stored_key.len(), 20);
    }

    #[test]
    fn ejabberd_double_base64_is_read() {
        // What ejabberd 23.01's export_piefxis wrote for an account it
        // created with the password "tybalt-pw": every field is base64 of
        // the base64 text of the value.
        let el = Element::parse(
            "<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'>\
             <iter-count>4096</iter-count>\
             <salt>eTUvcGwydXBtUlFaRlZxT0R6TTdxdz09</salt>\
             <server-key>VkF3Z0ZDZDV6cURZV1JyODRNc3BsV0pYM0tVPQ==</server-key>\
             <stored-key>QVBPQTluR08zbTRzNEF5TU1Va1ZWT2dsQkF3PQ==</stored-key>\
             </scram-credentials>",
        )
        .expect("xml");
        let keys = parse_scram(&el).expect("valid").expect("supported");
        assert_eq!(keys.salt.len(), 16);
        assert!(keys.verify_password("tybalt-pw"));
        assert!(!keys.verify_password("tybalt"));
    }

    #[test]
    fn bad_scram_elements() {
        let make = |mech: &str, count: &str, key: &str| {
            Element::parse(&format!(
                "<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='{mech}'>\
                 <iter-count>{count}</iter-count><salt>c2FsdA==</salt>\
                 <server-key>{key}</server-key><stored-key>{key}</stored-key>\
                 </scram-credentials>"
            ))
            .expect("xml")
        };
        let key20 = base64::encode(&[7u8; 20]);
        assert!(parse_scram(&make("SCRAM-SHA-1", "4096", &key20)).is_ok());
        assert!(parse_scram(&make("SCRAM-SHA-1", "04096", &key20)).is_err());
        assert!(parse_scram(&make("SCRAM-SHA-1", "0", &key20)).is_err());
        assert!(parse_scram(&make("SCRAM-SHA-1", "-1", &key20)).is_err());
        assert!(parse_scram(&make("SCRAM-SHA-1", "many", &key20)).is_err());
        // A SHA-1-sized key for SHA-256.
        assert!(parse_scram(&make("SCRAM-SHA-256", "4096", &key20)).is_err());
        assert!(parse_scram(&make("SCRAM-SHA-1", "4096", "!!")).is_err());
        assert_eq!(
            parse_scram(&make("SCRAM-SHA-512", "4096", &key20)).expect("not an error"),
            None
        );
        let missing = Element::parse(
            "<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'/>",
        )
        .expect("xml");
        assert!(parse_scram(&missing).is_err());
    }

    #[test]
    fn import_needs_usable_credentials() {
        let family = AccountsFamily;
        let u = user("juliet@capulet.lit");
        let empty = Element::parse("<user xmlns='urn:xmpp:pie:0' name='juliet'/>").expect("xml");
        assert!(family.import_user(&u, &empty, &mut Vec::new()).is_err());
        let with_password =
            Element::parse("<user xmlns='urn:xmpp:pie:0' name='juliet' password='balcony'/>")
                .expect("xml");
        assert!(matches!(
            family.import_user(&u, &with_password, &mut Vec::new()),
            Ok(Some(_))
        ));
        let only_512 = Element::parse(
            "<user xmlns='urn:xmpp:pie:0' name='juliet'>\
             <scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-512'/></user>",
        )
        .expect("xml");
        match family.import_user(&u, &only_512, &mut Vec::new()) {
            Err(e) => assert!(e.to_string().contains("SCRAM-SHA-512"), "{e}"),
            Ok(_) => panic!("accepted an account without usable credentials"),
        }
    }
}
