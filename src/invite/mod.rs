//! Invitations: a server a family can join in one scan.
//!
//! An administrator (`perch invite`, later an ad-hoc command) creates an
//! invite: a secret token with a kind, an expiry and a number of uses,
//! stored in redb (`store::invites`). The token travels as an `xmpp:` URI
//! (XEP-0401/XEP-0445/XEP-0379) and as the URL of a landing page
//! (`http::invite_page`), both shown as QR codes. Its holder may
//! register an account although in-band registration is closed to
//! everyone else (XEP-0445, `register`), and becomes a contact of the
//! inviter, subscribed both ways (`contacts`); a user who has an account
//! already presents the token in a subscription request (XEP-0379) and
//! is approved at once.
//!
//! - `token`: making tokens and telling a well-formed one;
//! - `uri`: the `xmpp:` URIs, and the expiry syntax (`7d`, `12h`);
//! - `form`: `application/x-www-form-urlencoded` bodies (the page's form);
//! - `qr`: QR codes as terminal half blocks and as SVG;
//! - `admin`: the admin commands (create, list, revoke) and their wire form;
//! - `stream`: what a c2s stream remembers of a presented token;
//! - `register`: XEP-0445 before login, and the landing page's registration;
//! - `landing`: the landing page's GET and POST;
//! - `contacts`: the mutual subscription, and XEP-0379 subscription requests;
//! - `throttle`: how fast wrong tokens may be tried from one address.

pub mod admin;
pub mod contacts;
pub mod form;
pub mod landing;
pub mod qr;
pub mod register;
pub mod stream;
pub mod throttle;
pub mod token;
pub mod uri;

/// The namespace of `<preauth token='…'/>` (XEP-0379, XEP-0445).
pub const NS_PARS: &str = "urn:xmpp:pars:0";
/// The stream feature of pre-authenticated registration (XEP-0445).
pub const NS_IBR_TOKEN: &str = "urn:xmpp:ibr-token:0";
/// The older feature name some clients (and Prosody) use for the same.
pub const NS_INVITE_FEATURE: &str = "urn:xmpp:invite";
/// The stream features offered where registration with a token is.
pub const TOKEN_FEATURES: [&str; 2] = [NS_IBR_TOKEN, NS_INVITE_FEATURE];

/// Unix seconds of `time` (0 before the epoch).
pub fn unix_secs(time: std::time::SystemTime) -> u64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
