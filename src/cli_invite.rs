//! `perch invite …`: create an invitation and show it as an `xmpp:` URI, a
//! landing-page URL and a QR code; list and revoke invitations. Part of
//! the `perch` binary (declared in `main.rs`), not of the library; the
//! work is `perch::invite::admin`'s, through the running server's admin
//! socket or on the database file.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use argh::FromArgs;

use perch::admin::Command;
use perch::invite::admin::{
    CreateRequest, DEFAULT_EXPIRY_SECS, InviteCommand, URI_PREFIX, URL_PREFIX,
};

#[derive(FromArgs)]
/// Invite someone to an account on this server: prints an xmpp: link, the
/// landing page's address and a QR code to scan with a phone.
#[argh(
    subcommand,
    name = "invite",
    example = "perch invite\nperch invite --for grandma@example.org\nperch invite --admin --for mum@example.org\nperch invite --inviter alice@example.org --group Family --uses 5 --expires 14d\nperch invite list\nperch invite revoke 3kq7x2m4a5b6c7d8e2f3g4h5i6",
    note = "The person scans the code: the landing page offers apps to install, a button that\nopens the invitation in the app, and a form for apps without invitation support.\nRegistration stays closed to everyone else ([registration] allow = false).\nA contact invite (--inviter) makes the newcomer and the inviter contacts of each\nother. An --admin invite makes the account it registers a server administrator\n(as if named in admins = [...]; `perch user admin` lists and revokes). The QR code is shown when\nstdout is a terminal (or with --qr); piped output is the lines above it only."
)]
pub struct InviteCmd {
    #[argh(subcommand)]
    action: Option<InviteAction>,
    /// the address the new account must take (user@domain); it is kept
    /// free for it until the invite is used or expires
    #[argh(option, long = "for")]
    for_jid: Option<String>,
    /// an account (user@domain) the newcomer becomes a contact of, both
    /// subscribed to each other's presence
    #[argh(option)]
    inviter: Option<String>,
    /// the inviter's roster group the newcomer is put in (needs --inviter)
    #[argh(option)]
    group: Option<String>,
    /// how long the invite can be used: a number and d, h or m (7d unless
    /// given; at most 366d)
    #[argh(option)]
    expires: Option<String>,
    /// how many accounts it can create (1 unless given; at most 1000)
    #[argh(option)]
    uses: Option<u32>,
    /// the account it registers becomes a server administrator (single use)
    #[argh(switch)]
    admin: bool,
    /// the host the account is created on (needed when there are several)
    #[argh(option)]
    domain: Option<String>,
    /// print the QR code even when stdout is not a terminal
    #[argh(switch)]
    qr: bool,
    /// never print the QR code
    #[argh(switch)]
    no_qr: bool,
    /// configuration file (TOML)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum InviteAction {
    List(InviteList),
    Revoke(InviteRevoke),
}

#[derive(FromArgs)]
/// One line per open invitation, oldest first: its token, kind, host,
/// fixed address or inviter, uses left and expiry.
#[argh(subcommand, name = "list")]
struct InviteList {
    /// configuration file (TOML)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

#[derive(FromArgs)]
/// Withdraw an invitation: its link and landing page stop working at once.
#[argh(subcommand, name = "revoke")]
struct InviteRevoke {
    /// the invitation's token (from perch invite list)
    #[argh(positional)]
    token: String,
    /// configuration file (TOML)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

/// Runs `perch invite …`.
pub fn run(cmd: InviteCmd) -> ExitCode {
    let (config_file, command) = match cmd.action {
        Some(InviteAction::List(a)) => (a.config, InviteCommand::List),
        Some(InviteAction::Revoke(a)) => (a.config, InviteCommand::Revoke { token: a.token }),
        None => {
            let expires_secs = match cmd.expires.as_deref().map(perch::invite::uri::parse_expiry) {
                None => DEFAULT_EXPIRY_SECS,
                Some(Ok(secs)) => secs,
                Some(Err(why)) => {
                    eprintln!("perch: {why}");
                    return ExitCode::from(crate::EXIT_CONFIG);
                }
            };
            let request = CreateRequest {
                domain: cmd.domain,
                for_jid: cmd.for_jid,
                inviter: cmd.inviter,
                group: cmd.group,
                expires_secs,
                uses: cmd.uses.unwrap_or(1),
                admin: cmd.admin,
            };
            (cmd.config, InviteCommand::Create(request))
        }
    };
    let creating = matches!(command, InviteCommand::Create(_));
    let config = match crate::load_config(config_file.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Err(code) = crate::require_data(&config, config_file.as_deref()) {
        return code;
    }
    let result = crate::run_admin(&config, &Command::Invite(command));
    let lines = match result {
        Ok(lines) if creating => lines,
        other => return crate::report(other),
    };
    let stdout = std::io::stdout();
    let terminal = stdout.is_terminal();
    for line in &lines {
        println!("{line}");
    }
    let show_qr = !cmd.no_qr && (cmd.qr || terminal);
    if show_qr {
        let of = |prefix: &str| lines.iter().find_map(|l| l.strip_prefix(prefix));
        // The page works for someone without an app yet; the bare URI
        // only once one is installed.
        if let Some(text) = of(URL_PREFIX).or_else(|| of(URI_PREFIX)) {
            match perch::invite::qr::terminal(text, false) {
                Some(code) => print_qr(&code, terminal),
                None => eprintln!("perch: the link is too long for a QR code"),
            }
        }
    }
    ExitCode::SUCCESS
}

/// Prints the code dark on light: on a terminal with explicit colours
/// (black on white, whatever the terminal's own), else as it is.
fn print_qr(code: &str, terminal: bool) {
    println!();
    for line in code.lines() {
        if terminal {
            println!("\x1b[30;107m{line}\x1b[0m");
        } else {
            println!("{line}");
        }
    }
}
