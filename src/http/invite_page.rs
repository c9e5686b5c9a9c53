//! The invitation landing page (`/invite/TOKEN`, XEP-0379 §3.2): what a
//! relative sees after scanning the QR code. Plain HTML and CSS, no
//! JavaScript, readable on a phone: who invites, a button that opens the
//! `xmpp:` link in an installed client, where to get a client, the QR code
//! for another device, and a registration form for clients that cannot
//! use invitations. Every string that came from outside (addresses,
//! groups, what the visitor typed) is escaped here; the token is one of
//! 26 letters and digits (`invite::token`).
//!
//! Rendering only: `invite::landing` answers the requests.

use super::response::Response;

/// A client to suggest, with where to get it.
struct ClientLink {
    name: &'static str,
    platform: &'static str,
    stores: &'static [(&'static str, &'static str)],
}

/// The clients that understand invitations (XEP-0401) best first.
const CLIENTS: &[ClientLink] = &[
    ClientLink {
        name: "Conversations",
        platform: "Android",
        stores: &[
            (
                "F-Droid",
                "https://f-droid.org/packages/eu.siacs.conversations/",
            ),
            (
                "Google Play",
                "https://play.google.com/store/apps/details?id=eu.siacs.conversations",
            ),
        ],
    },
    ClientLink {
        name: "Monal",
        platform: "iPhone, iPad, Mac",
        stores: &[("App Store", "https://apps.apple.com/app/id317711500")],
    },
    ClientLink {
        name: "Siskin IM",
        platform: "iPhone, iPad",
        stores: &[("App Store", "https://apps.apple.com/app/id1153516838")],
    },
    ClientLink {
        name: "Dino",
        platform: "Linux",
        stores: &[("dino.im", "https://dino.im/#download")],
    },
    ClientLink {
        name: "Gajim",
        platform: "Windows, Linux",
        stores: &[("gajim.org", "https://gajim.org/download/")],
    },
];

/// What the page shows of one invite.
pub struct InviteView<'a> {
    /// The host the account will be on.
    pub domain: &'a str,
    /// Who invites (a contact invite), as a bare JID.
    pub inviter: Option<&'a str>,
    /// The username the invite fixes, if any.
    pub username: Option<&'a str>,
    pub xmpp_uri: &'a str,
    /// The QR code of this page's URL, as an `<svg>` element.
    pub qr_svg: &'a str,
    /// The page's own address, shown under the QR code.
    pub page_url: &'a str,
}

/// What the form shows after a failed attempt.
#[derive(Default)]
pub struct FormState<'a> {
    pub username: &'a str,
    pub error: Option<&'a str>,
}

fn esc(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len());
    crate::xml::escape_attr_into(text, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

const STYLE: &str = "\
*{box-sizing:border-box}\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;background:#f3f5f8;color:#1d2330;line-height:1.45}\
main{max-width:34rem;margin:0 auto;padding:1rem}\
section{background:#fff;border-radius:12px;padding:1.1rem 1.2rem;margin:0 0 1rem;box-shadow:0 1px 3px rgba(0,0,0,.08)}\
h1{font-size:1.45rem;margin:.2rem 0 .6rem}h2{font-size:1.1rem;margin:0 0 .6rem}\
p{margin:.4rem 0}.muted{color:#5b6472;font-size:.92rem}\
a.button,button{display:block;width:100%;text-align:center;padding:.8rem 1rem;border-radius:10px;border:0;background:#2563eb;color:#fff;font-size:1.05rem;font-weight:600;text-decoration:none;cursor:pointer}\
ul.clients{list-style:none;padding:0;margin:0}ul.clients li{padding:.45rem 0;border-top:1px solid #e6e9ef}ul.clients li:first-child{border-top:0}\
ul.clients a{margin-right:.8rem}.platform{color:#5b6472;font-size:.88rem}\
.qr{display:block;margin:.4rem auto;max-width:100%;height:auto}\
.url{word-break:break-all;text-align:center}\
label{display:block;margin:.6rem 0 .2rem;font-weight:600}\
input{width:100%;padding:.65rem;border:1px solid #c5cbd6;border-radius:8px;font-size:1rem}\
input[readonly]{background:#eef1f5}\
.error{background:#fdecec;color:#8a1c1c;border-radius:8px;padding:.6rem .8rem}\
.ok{background:#e8f6ec;color:#155d2b;border-radius:8px;padding:.6rem .8rem}\
code{word-break:break-all}";

fn document(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>\
         <meta name='viewport' content='width=device-width, initial-scale=1'>\
         <meta name='referrer' content='no-referrer'>\
         <title>{title}</title><style>{STYLE}</style></head>\n<body><main>\n{body}</main></body></html>\n",
        title = esc(title)
    )
}

/// The headers every invite page carries: no scripts, no framing, no
/// caching, and no token leaking to the app stores through `Referer`.
fn html(status: u16, body: String) -> Response {
    Response::new(status)
        .with("Content-Type", "text/html; charset=utf-8")
        .with(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        )
        .with("X-Content-Type-Options", "nosniff")
        .with("Cache-Control", "no-store")
        .with("Referrer-Policy", "no-referrer")
        .with_body(body.into_bytes())
}

/// The page of a valid invite, with the form in `form`'s state.
pub fn invite_page(view: &InviteView<'_>, form: &FormState<'_>, status: u16) -> Response {
    let domain = esc(view.domain);
    let heading = match view.inviter {
        Some(inviter) => format!("{} has invited you to chat", esc(inviter)),
        None => format!("You are invited to {domain}"),
    };
    let lead = match view.inviter {
        Some(_) => format!("Join {domain} and you will be each other's contacts straight away."),
        None => format!("This invitation creates your own account on {domain}."),
    };
    let mut clients = String::new();
    for c in CLIENTS {
        clients.push_str(&format!(
            "<li><strong>{}</strong> <span class='platform'>{}</span><br>",
            c.name, c.platform
        ));
        for (store, url) in c.stores {
            clients.push_str(&format!(
                "<a href='{}' rel='noreferrer noopener'>{}</a>",
                esc(url),
                store
            ));
        }
        clients.push_str("</li>\n");
    }
    let username_input = match view.username {
        Some(fixed) => format!(
            "<input id='username' name='username' value='{}' readonly autocomplete='username'>",
            esc(fixed)
        ),
        None => format!(
            "<input id='username' name='username' value='{}' required maxlength='64' autocomplete='username' autocapitalize='none' spellcheck='false'>",
            esc(form.username)
        ),
    };
    let error = form
        .error
        .map(|e| format!("<p class='error' role='alert'>{}</p>", esc(e)))
        .unwrap_or_default();
    let body = format!(
        "<section><h1>{heading}</h1><p>{lead}</p>\
         <p><a class='button' href='{uri}'>Open in your chat app</a></p>\
         <p class='muted'>Nothing happens? Install an app first (below), then come back to this page and press the button again.</p></section>\n\
         <section><h2>1. Get a chat app</h2><ul class='clients'>\n{clients}</ul></section>\n\
         <section><h2>2. Or scan this on another device</h2>{qr}<p class='url muted'>{page_url}</p></section>\n\
         <section><h2>3. Or create the account here</h2>\
         <p class='muted'>For apps that cannot open invitations: choose a username and password here, then log in with them in any XMPP app.</p>{error}\
         <form method='post' action=''>\
         <label for='username'>Username</label>{username_input}\
         <p class='muted'>Your address will be <strong>username@{domain}</strong>.</p>\
         <label for='password'>Password</label><input id='password' name='password' type='password' required autocomplete='new-password'>\
         <label for='password2'>Password again</label><input id='password2' name='password2' type='password' required autocomplete='new-password'>\
         <p><button type='submit'>Create account</button></p></form></section>\n\
         <p class='muted'>XMPP is open instant messaging: many apps, many servers, all talking to each other. If you do not know who sent this, you can ignore it.</p>\n",
        uri = esc(view.xmpp_uri),
        qr = view.qr_svg,
        page_url = esc(view.page_url),
    );
    html(
        status,
        document(&format!("Invitation to {}", view.domain), &body),
    )
}

/// After the form created `account`.
pub fn registered_page(account: &str, inviter: Option<&str>) -> Response {
    let contact = inviter
        .map(|i| format!("<p>{} is already in your contacts.</p>", esc(i)))
        .unwrap_or_default();
    let body = format!(
        "<section><h1>Your account is ready</h1>\
         <p class='ok'>Your address is <strong><code>{account}</code></strong>.</p>{contact}\
         <p>Open any XMPP app (see below), choose to log in with an existing account, and enter this address and the password you chose.</p></section>\n\
         <section><h2>Apps</h2><ul class='clients'>{clients}</ul></section>\n",
        account = esc(account),
        clients = CLIENTS
            .iter()
            .map(|c| format!(
                "<li><strong>{}</strong> <span class='platform'>{}</span><br>{}</li>",
                c.name,
                c.platform,
                c.stores
                    .iter()
                    .map(|(s, u)| format!("<a href='{}' rel='noreferrer noopener'>{s}</a>", esc(u)))
                    .collect::<Vec<_>>()
                    .join(" ")
            ))
            .collect::<String>(),
    );
    html(201, document("Account created", &body))
}

/// An unknown, expired, used-up or revoked token: one page for all, so it
/// tells a guesser nothing.
pub fn invalid_page() -> Response {
    let body = "<section><h1>This invitation is invalid or expired</h1>\
        <p>It may have been used already, or withdrawn. Ask the person who sent it for a new one.</p></section>\n";
    html(404, document("Invalid invitation", body))
}

/// A request the page cannot take (wrong method, a body too large…).
pub fn error_page(status: u16, message: &str) -> Response {
    let body = format!(
        "<section><h1>Something went wrong</h1><p class='error'>{}</p></section>\n",
        esc(message)
    );
    html(status, document("Invitation", &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(inviter: Option<&'a str>, username: Option<&'a str>) -> InviteView<'a> {
        InviteView {
            domain: "example.org",
            inviter,
            username,
            xmpp_uri: "xmpp:romeo@example.org?roster;preauth=abc;ibr=y",
            qr_svg: "<svg class='qr'></svg>",
            page_url: "https://example.org/invite/abc",
        }
    }

    fn text(r: &Response) -> String {
        String::from_utf8(r.body.clone()).expect("UTF-8")
    }

    #[test]
    fn page_has_everything_and_escapes() {
        let r = invite_page(
            &view(Some("<b>romeo</b>@example.org"), None),
            &FormState {
                username: "'><script>",
                error: Some("a <bad> thing"),
            },
            200,
        );
        let page = text(&r);
        assert!(page.contains("&lt;b&gt;romeo&lt;/b&gt;@example.org has invited you"));
        assert!(
            page.contains("value='&apos;&gt;&lt;script&gt;'")
                || page.contains("value='&#39;&gt;&lt;script&gt;'"),
            "{page}"
        );
        assert!(page.contains("a &lt;bad&gt; thing"));
        assert!(!page.contains("<script"));
        assert!(page.contains("href='xmpp:romeo@example.org?roster;preauth=abc;ibr=y'"));
        for name in [
            "Conversations",
            "Monal",
            "Siskin IM",
            "Dino",
            "Gajim",
            "F-Droid",
            "Google Play",
        ] {
            assert!(page.contains(name), "{name}");
        }
        assert!(page.contains("<svg class='qr'>"));
        assert!(page.contains("name='viewport'"));
        assert_eq!(r.header("Cache-Control"), Some("no-store"));
        assert_eq!(r.header("Referrer-Policy"), Some("no-referrer"));
        assert!(
            r.header("Content-Security-Policy")
                .is_some_and(|c| c.contains("default-src 'none'"))
        );
    }

    #[test]
    fn fixed_username_is_read_only() {
        let page = text(&invite_page(
            &view(None, Some("juliet")),
            &FormState::default(),
            200,
        ));
        assert!(page.contains("You are invited to example.org"));
        assert!(page.contains("value='juliet' readonly"));
    }

    #[test]
    fn other_pages() {
        let r = registered_page("juliet@example.org", Some("romeo@example.org"));
        assert_eq!(r.status, 201);
        assert!(text(&r).contains("juliet@example.org"));
        let r = invalid_page();
        assert_eq!(r.status, 404);
        assert!(text(&r).contains("invalid or expired"));
        assert!(text(&error_page(413, "too <big>")).contains("too &lt;big&gt;"));
    }
}
