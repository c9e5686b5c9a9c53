//! `perch s2s …`: the argument structs and their translation into admin
//! commands. Part of the `perch` binary (declared in `main.rs`).

use std::path::PathBuf;

use argh::FromArgs;

use perch::admin::Command;

#[derive(FromArgs)]
/// Federation with other servers and external components: what is
/// connected (works while the server runs).
#[argh(subcommand, name = "s2s", example = "perch s2s list")]
pub struct S2sCmd {
    #[argh(subcommand)]
    action: S2sAction,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum S2sAction {
    List(S2sList),
}

#[derive(FromArgs)]
/// One line per federation link: direction, local and remote domain, how
/// the peer was authenticated (certificate or dialback), its address, age
/// and stanzas; one per configured component; then the totals.
#[argh(subcommand, name = "list")]
struct S2sList {
    /// configuration file (TOML)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

impl S2sCmd {
    /// The configuration file named and the admin command to run.
    pub fn into_command(self) -> (Option<PathBuf>, Command) {
        match self.action {
            S2sAction::List(a) => (a.config, Command::S2sList),
        }
    }
}
