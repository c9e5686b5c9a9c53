//! `perch announce` and `perch motd …`: the argument structs and how they
//! run. Part of the `perch` binary (declared in `main.rs`).

use std::path::PathBuf;
use std::process::ExitCode;

use argh::FromArgs;

use perch::admin::{self, Command};
use perch::admin_notices::NoticeCommand;

/// `perch announce` without a running server: nobody is online
/// (sysexits' EX_UNAVAILABLE).
pub const EXIT_NOT_RUNNING: u8 = 69;

#[derive(FromArgs)]
/// Send a message from the server to everyone online now (needs the
/// running server; users who are offline do not get it later: see perch
/// motd for that).
#[argh(
    subcommand,
    name = "announce",
    example = "perch announce \"Perch restarts at 22:00 for an update\"\nperch announce --domain example.org \"The garden party is tomorrow\"",
    error_code(69, "the server is not running, so nobody is online to tell")
)]
pub struct AnnounceCmd {
    /// the message; several words are joined with spaces
    #[argh(positional)]
    text: Vec<String>,
    /// only the users of this host (default: every host)
    #[argh(option)]
    domain: Option<String>,
    /// configuration file (TOML)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

#[derive(FromArgs)]
/// The message of the day: sent to each user once when they log in, until
/// it is cleared (works whether or not the server runs).
#[argh(
    subcommand,
    name = "motd",
    example = "perch motd set \"Welcome! Questions go to admin@example.org\"\nperch motd show\nperch motd clear --domain example.org"
)]
pub struct MotdCmd {
    #[argh(subcommand)]
    action: MotdAction,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum MotdAction {
    Set(MotdSet),
    Show(MotdShow),
    Clear(MotdClear),
}

#[derive(FromArgs)]
/// Set the message of the day.
#[argh(subcommand, name = "set")]
struct MotdSet {
    /// the message; several words are joined with spaces
    #[argh(positional)]
    text: Vec<String>,
    /// only for this host (default: every host)
    #[argh(option)]
    domain: Option<String>,
    /// configuration file (TOML)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

#[derive(FromArgs)]
/// Print the message of the day of each host.
#[argh(subcommand, name = "show")]
struct MotdShow {
    /// only this host (default: every host)
    #[argh(option)]
    domain: Option<String>,
    /// configuration file (TOML)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

#[derive(FromArgs)]
/// Remove the message of the day.
#[argh(subcommand, name = "clear")]
struct MotdClear {
    /// only for this host (default: every host)
    #[argh(option)]
    domain: Option<String>,
    /// configuration file (TOML)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

impl MotdCmd {
    /// The configuration file named and the admin command to run.
    pub fn into_command(self) -> (Option<PathBuf>, Command) {
        let (config, notice) = match self.action {
            MotdAction::Set(a) => (
                a.config,
                NoticeCommand::MotdSet {
                    domain: a.domain,
                    text: a.text.join(" "),
                },
            ),
            MotdAction::Show(a) => (a.config, NoticeCommand::MotdShow { domain: a.domain }),
            MotdAction::Clear(a) => (a.config, NoticeCommand::MotdClear { domain: a.domain }),
        };
        (config, Command::Notice(notice))
    }
}

/// Runs `perch announce`: only through a running server.
pub fn announce(cmd: AnnounceCmd) -> ExitCode {
    let config = match crate::load_config(cmd.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let request = Command::Notice(NoticeCommand::Announce {
        domain: cmd.domain,
        text: cmd.text.join(" "),
    });
    let hosts: Vec<String> = config.hosts.iter().map(|h| h.domain.clone()).collect();
    if let Err(e) = admin::validate(&request, &hosts) {
        return crate::report(Err(e));
    }
    match perch::net::admin::request(&config.data_dir, &request) {
        Ok(Some(lines)) => crate::report(Ok(lines)),
        Ok(None) => {
            eprintln!(
                "perch: the server is not running (no admin socket in {}), so nobody is online to tell; start it with perch run, or use perch motd set for a message users get at their next login",
                config.data_dir.display()
            );
            ExitCode::from(EXIT_NOT_RUNNING)
        }
        Err(e) => crate::report(Err(e)),
    }
}
