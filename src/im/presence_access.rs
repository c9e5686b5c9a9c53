//! Who may learn about an account's presence, and so about what follows
//! from it (last activity, XEP-0012 §4). RFC 6121 ties this to a presence
//! subscription: the account itself and the contacts subscribed to it
//! (subscription `from` or `both` on the account's roster), unless the
//! account blocked them (XEP-0191: no presence either way). One function,
//! so that every feature that depends on it follows the same rule.

use crate::env::Env;
use crate::jid::Jid;

use super::blocking::Blocklist;
use super::roster::Roster;

/// Whether `requester` may see the presence of `account` (a bare JID).
pub fn may_see_presence(env: &Env, requester: &Jid, account: &Jid) -> bool {
    if requester.bare_str() == account.bare_str() {
        return true;
    }
    match env.account(account) {
        Ok(state) => is_subscriber(&state.roster.borrow(), &state.blocklist.borrow(), requester),
        Err(e) => {
            log::error!("roster of {account}: {e}");
            false
        }
    }
}

/// Whether `requester` receives the presence of the roster's owner.
pub fn is_subscriber(roster: &Roster, blocklist: &Blocklist, requester: &Jid) -> bool {
    let bare = requester.to_bare();
    roster
        .item(&bare)
        .is_some_and(|item| item.subscription.has_from())
        && !blocklist.blocks(requester)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::im::roster::Subscription;
    use crate::im::subscription::SubState;

    fn jid(s: &str) -> Jid {
        Jid::parse(s).expect("jid")
    }

    fn roster_with(contact: &str, subscription: Subscription) -> Roster {
        let mut roster = Roster::default();
        let state = SubState {
            subscription,
            ..SubState::default()
        };
        roster.apply_state(&jid(contact), state, None);
        roster
    }

    #[test]
    fn only_subscribers_from_or_both() {
        let none = Blocklist::default();
        let from = roster_with("nurse@example.com", Subscription::From);
        assert!(is_subscriber(
            &from,
            &none,
            &jid("nurse@example.com/chamber")
        ));
        assert!(is_subscriber(&from, &none, &jid("nurse@example.com")));
        assert!(!is_subscriber(&from, &none, &jid("tybalt@example.com")));
        let both = roster_with("nurse@example.com", Subscription::Both);
        assert!(is_subscriber(&both, &none, &jid("nurse@example.com")));
        let to = roster_with("nurse@example.com", Subscription::To);
        assert!(!is_subscriber(&to, &none, &jid("nurse@example.com")));
        let blocked = Blocklist::from_stored(vec!["nurse@example.com".into()]);
        assert!(!is_subscriber(
            &both,
            &blocked,
            &jid("nurse@example.com/chamber")
        ));
    }
}
