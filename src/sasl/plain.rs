//! PLAIN (RFC 4616): `[authzid] NUL authcid NUL passwd`.

use super::{CredentialLookup, Fail, SaslFailure, Step, check_authzid};

pub(super) struct Plain {
    asked: bool,
}

const MALFORMED: Fail = (SaslFailure::MalformedRequest, "malformed PLAIN message");

/// The prepared authcid of a PLAIN message, if it is well formed.
pub(super) fn authcid(input: &[u8]) -> Option<String> {
    let mut fields = input.split(|&b| b == 0);
    let (Some(_authzid), Some(authcid), Some(_password), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return None;
    };
    let authcid = std::str::from_utf8(authcid).ok()?;
    crate::jid::prep_local(authcid).ok().map(|u| u.into_owned())
}

impl Plain {
    pub(super) fn new() -> Plain {
        Plain { asked: false }
    }

    pub(super) fn step(
        &mut self,
        input: &[u8],
        creds: &dyn CredentialLookup,
    ) -> Result<Step, Fail> {
        if input.is_empty() && !self.asked {
            self.asked = true;
            return Ok(Step::Challenge(Vec::new()));
        }
        let mut fields = input.split(|&b| b == 0);
        let (Some(authzid), Some(authcid), Some(password), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(MALFORMED);
        };
        let utf8 = |b| std::str::from_utf8(b).map_err(|_| MALFORMED);
        let (authzid, authcid, password) = (utf8(authzid)?, utf8(authcid)?, utf8(password)?);
        if authcid.is_empty() || password.is_empty() {
            return Err(MALFORMED);
        }
        let Ok(username) = crate::jid::prep_local(authcid) else {
            return Err((
                SaslFailure::NotAuthorized,
                "username is not a valid localpart",
            ));
        };
        check_authzid(authzid, Some(&username), creds)?;
        if creds.check_plain(&username, password) {
            Ok(Step::Success {
                username: username.into_owned(),
                additional_data: Vec::new(),
            })
        } else {
            Err((SaslFailure::NotAuthorized, "wrong password or unknown user"))
        }
    }
}
