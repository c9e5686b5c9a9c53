//! Who may learn about an account's presence, and so about what follows
//! from it (last activity, XEP-0012 §3). RFC 6121 ties this to a presence
//! subscription; until rosters exist the rule is the strictest one that is
//! still useful: the account itself only. The roster code extends this
//! one function (subscription `from` or `both`), and every caller follows.

use crate::jid::Jid;
use crate::server::Server;

/// Whether `requester` may see the presence of `account` (a bare JID).
pub fn may_see_presence(_server: &Server, requester: &Jid, account: &Jid) -> bool {
    requester.bare_str() == account.bare_str()
}
