//! BOSH (XEP-0124, XEP-0206): an XMPP stream carried by HTTP requests.

pub mod body;
pub mod glue;
pub mod link;
pub mod session;
