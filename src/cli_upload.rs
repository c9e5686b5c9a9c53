//! `perch upload …`: the argument structs and their translation into admin
//! commands. Part of the `perch` binary (declared in `main.rs`, which stays
//! short this way), not of the library.

use std::path::PathBuf;

use argh::FromArgs;

use perch::admin::Command;

#[derive(FromArgs)]
/// Files uploaded with HTTP File Upload (XEP-0363): list and remove them
/// (works while the server runs).
#[argh(
    subcommand,
    name = "upload",
    example = "perch upload list\nperch upload list --owner alice@example.org\nperch upload purge --older-than 30\nperch upload purge --owner alice@example.org --older-than 0",
    note = "The server removes files [upload] expire_days after their upload, and\nslots never used, by itself every hour; `perch upload purge` removes\nfiles at once."
)]
pub struct UploadCmd {
    #[argh(subcommand)]
    action: UploadAction,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum UploadAction {
    List(UploadList),
    Purge(UploadPurge),
}

#[derive(FromArgs)]
/// One line per file, oldest first: its id, owner, size in bytes, media
/// type, age and name (and whether it was not uploaded yet); then the
/// totals.
#[argh(subcommand, name = "list")]
struct UploadList {
    /// only the files of this account (user@domain)
    #[argh(option)]
    owner: Option<String>,
    /// configuration file (TOML)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

#[derive(FromArgs)]
/// Remove uploaded files (and unused upload slots): those handed out at
/// least DAYS days ago, of one account only with --owner. Give at least
/// one of the two; --older-than 0 removes every file.
#[argh(subcommand, name = "purge")]
struct UploadPurge {
    /// only files handed out at least this many days ago
    #[argh(option)]
    older_than: Option<u32>,
    /// only the files of this account (user@domain)
    #[argh(option)]
    owner: Option<String>,
    /// configuration file (TOML)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

impl UploadCmd {
    /// The configuration file named and the admin command to run.
    pub fn into_command(self) -> (Option<PathBuf>, Command) {
        match self.action {
            UploadAction::List(a) => (a.config, Command::UploadList { owner: a.owner }),
            UploadAction::Purge(a) => (
                a.config,
                Command::UploadPurge {
                    older_than_days: a.older_than,
                    owner: a.owner,
                },
            ),
        }
    }
}
