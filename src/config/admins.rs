//! `admins`: the accounts that administer the server (and, depending on
//! `[muc]`, may be the only ones to create rooms).

use super::addresses::check_domain;
use super::toml_reader::TableReader;

/// Reads and checks the top-level `admins` key: bare JIDs as written,
/// repeats dropped; `None` when it is absent.
pub(super) fn read(top: &mut TableReader<'_, '_>) -> Option<Vec<String>> {
    let raw = top.strings("admins")?;
    let mut admins: Vec<String> = Vec::new();
    for admin in raw {
        let span = admin.span();
        let jid = admin.into_inner();
        match check_bare_jid(&jid) {
            Err(why) => top.problem(span, format_args!("admins: {jid:?} {why}")),
            // A repeated entry is harmless, so it is dropped rather than reported.
            Ok(()) if admins.contains(&jid) => {}
            Ok(()) => admins.push(jid),
        }
    }
    Some(admins)
}

fn check_bare_jid(jid: &str) -> Result<(), String> {
    if jid.contains('/') {
        return Err("must be a bare JID without a resource (user@domain)".to_owned());
    }
    let Some((local, domain)) = jid.split_once('@') else {
        return Err("is not a bare JID (expected user@domain)".to_owned());
    };
    if local.is_empty() {
        return Err("is not a bare JID (the part before '@' is empty)".to_owned());
    }
    if domain.contains('@') {
        return Err("is not a bare JID (it contains more than one '@')".to_owned());
    }
    if jid.chars().any(char::is_whitespace) {
        return Err("is not a bare JID (it contains whitespace)".to_owned());
    }
    if domain.is_empty() {
        return Err("is not a bare JID (the part after '@' is empty)".to_owned());
    }
    check_domain(domain)
        .map(drop)
        .map_err(|why| format!("is not a bare JID: its domain {why}"))
}

#[cfg(test)]
mod tests {
    use super::super::tests::problems;

    #[test]
    fn bad_admins() {
        let found = problems(
            "admins = [\"alice\", \"bob@example.org/phone\", \"@example.org\", \"a@b@c\", \"x@\", \"a b@c\"]\n",
        );
        assert_eq!(
            found,
            vec![
                "perch.toml:1: admins: \"alice\" is not a bare JID (expected user@domain)",
                "perch.toml:1: admins: \"bob@example.org/phone\" must be a bare JID without a resource (user@domain)",
                "perch.toml:1: admins: \"@example.org\" is not a bare JID (the part before '@' is empty)",
                "perch.toml:1: admins: \"a@b@c\" is not a bare JID (it contains more than one '@')",
                "perch.toml:1: admins: \"x@\" is not a bare JID (the part after '@' is empty)",
                "perch.toml:1: admins: \"a b@c\" is not a bare JID (it contains whitespace)",
            ]
        );
    }
}
