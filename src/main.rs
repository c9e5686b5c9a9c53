//! The `perch` command: run the server, check a configuration, manage
//! accounts, chat rooms and message archives.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;

use argh::FromArgs;

use perch::admin::{self, AdminError, Command, Intent};
use perch::admin_notices::NoticeCommand;
use perch::config::Config;
use perch::store::{Store, StoreError};

mod cli_announce;
mod cli_invite;
mod cli_s2s;
mod cli_upload;

/// Exit codes, documented in `perch --help`.
const EXIT_FAILURE: u8 = 1;
const EXIT_CONFIG: u8 = 2;
const EXIT_IN_USE: u8 = 3;
/// The database stopped taking writes (a full or failing disk); systemd's
/// `Restart=on-failure` starts Perch again, which repairs the file.
const EXIT_STORAGE: u8 = 4;

/// The configuration file of an installed Perch (the .deb puts it there).
const SYSTEM_CONFIG: &str = "/etc/perch/perch.toml";

#[derive(FromArgs)]
/// Perch, a small XMPP server with group chats.
///
/// Runs with no configuration at all: domain "localhost", data in
/// $XDG_DATA_HOME/perch or ~/.local/share/perch ($STATE_DIRECTORY under
/// systemd; ./perch-data if it already holds a database), clients on
/// 127.0.0.1:5222 (STARTTLS) and 5223 (direct TLS), web clients and file
/// upload on http://127.0.0.1:5280, with a self-signed certificate
/// created on first start. Start the server before adding
/// accounts: other commands never create a database.
#[argh(
    example = "perch run\nperch run --config /etc/perch/perch.toml\nperch user add alice@example.org\nperch room list\nperch archive stats\nperch upload list\nperch backup /var/backups/perch.redb\nperch check --config /etc/perch/perch.toml",
    note = "perch --version prints the version.\nThe configuration file is looked up in this order: --config FILE, $PERCH_CONFIG,\n$CONFIGURATION_DIRECTORY/perch.toml (systemd), /etc/perch/perch.toml; otherwise\nbuilt-in defaults apply. See perch.example.toml for every key.",
    error_code(1, "an error while running (a port in use, an unreadable file, ...)"),
    error_code(2, "the configuration or an argument is invalid"),
    error_code(3, "the database is in use by another process"),
    error_code(
        4,
        "the database stopped taking writes (a full or failing disk): run stopped; a restart repairs the file"
    )
)]
struct Cli {
    #[argh(subcommand)]
    command: Sub,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Sub {
    Run(RunCmd),
    Check(CheckCmd),
    User(UserCmd),
    Room(RoomCmd),
    Archive(ArchiveCmd),
    Upload(cli_upload::UploadCmd),
    Invite(cli_invite::InviteCmd),
    S2s(cli_s2s::S2sCmd),
    Announce(cli_announce::AnnounceCmd),
    Motd(cli_announce::MotdCmd),
    Backup(BackupCmd),
    Export(ExportCmd),
    Import(ImportCmd),
}

#[derive(FromArgs)]
/// Run the server in the foreground (logs go to stderr; Ctrl-C or SIGTERM
/// stops it).
#[argh(subcommand, name = "run")]
struct RunCmd {
    /// configuration file (TOML)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

#[derive(FromArgs)]
/// Validate the configuration and certificates and print what would run.
#[argh(
    subcommand,
    name = "check",
    example = "perch check -c /etc/perch/perch.toml\nperch check --compliance",
    note = "--compliance prints which XMPP Compliance Suites (XEP-0479) levels\nthe configured server meets, naming what is missing; it exits 0\nunless the configuration is invalid."
)]
struct CheckCmd {
    /// configuration file (TOML)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
    /// also print the XEP-0479 compliance report
    #[argh(switch)]
    compliance: bool,
}

#[derive(FromArgs)]
/// Write a consistent copy of the database to FILE (works while the server
/// runs). To restore, stop Perch and put the copy in place of perch.redb.
#[argh(
    subcommand,
    name = "backup",
    example = "perch backup /var/backups/perch-$(date +%F).redb"
)]
struct BackupCmd {
    /// the file to write (replaced if it exists)
    #[argh(positional)]
    file: PathBuf,
    /// configuration file (TOML)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

#[derive(FromArgs)]
/// Export all accounts in the XEP-0227 portable format (the one Prosody and
/// ejabberd use), one file per account, into a new or empty directory.
/// Works while the server runs. Each account's message archive is included;
/// chat rooms and their archives are not (XEP-0227 has no format for
/// rooms). The files hold password hashes: keep them private.
#[argh(subcommand, name = "export", example = "perch export ./perch-export")]
struct ExportCmd {
    /// the directory to write
    #[argh(positional)]
    dir: PathBuf,
    /// configuration file (TOML)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

#[derive(FromArgs)]
/// Import accounts from XEP-0227 files (a directory or one file), e.g. from
/// Prosody or ejabberd. Stop the server first. Existing accounts are left
/// unchanged. Archived messages get new ids (they derive from this
/// server's secret) and then follow the [archive] retention settings.
#[argh(subcommand, name = "import", example = "perch import ./prosody-export")]
struct ImportCmd {
    /// a directory of XEP-0227 files, or one <server-data/> file
    #[argh(positional)]
    path: PathBuf,
    /// configuration file (TOML)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

#[derive(FromArgs)]
/// Manage user accounts (works while the server runs).
#[argh(subcommand, name = "user")]
struct UserCmd {
    #[argh(subcommand)]
    action: UserAction,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum UserAction {
    Add(UserAdd),
    Del(UserDel),
    Passwd(UserPasswd),
    List(UserList),
    Disable(UserDisable),
    Enable(UserEnable),
    Admin(UserAdmin),
}

#[derive(FromArgs)]
/// Make an account a server administrator (XEP-0133 commands, rooms,
/// invitations), or with --revoke no longer one; without an address, list
/// the administrators. Those in the configuration's admins = [...] stay
/// until removed there.
#[argh(
    subcommand,
    name = "admin",
    example = "perch user admin mum@example.org",
    example = "perch user admin"
)]
struct UserAdmin {
    /// the account address, user@domain
    #[argh(positional)]
    jid: Option<String>,
    /// take administration away instead of granting it
    #[argh(switch)]
    revoke: bool,
    /// configuration file (TOML)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

#[derive(FromArgs)]
/// Disable an account: its sessions end and it cannot log in until
/// re-enabled; nothing is deleted.
#[argh(subcommand, name = "disable")]
struct UserDisable {
    /// the account address, user@domain
    #[argh(positional)]
    jid: String,
    /// configuration file (TOML)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

#[derive(FromArgs)]
/// Let a disabled account log in again.
#[argh(subcommand, name = "enable")]
struct UserEnable {
    /// the account address, user@domain
    #[argh(positional)]
    jid: String,
    /// configuration file (TOML)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

#[derive(FromArgs)]
/// Create an account; asks for the password twice (no echo), at least 8
/// characters.
#[argh(subcommand, name = "add", example = "perch user add alice@example.org")]
struct UserAdd {
    /// the account address, user@domain
    #[argh(positional)]
    jid: String,
    /// read the password from the first line of standard input instead
    #[argh(switch)]
    password_stdin: bool,
    /// accept a password shorter than 8 characters
    #[argh(switch)]
    weak: bool,
    /// give out the address of a deleted account again; its former
    /// contacts may take the new owner for the old one
    #[argh(switch)]
    reuse_deleted: bool,
    /// configuration file (TOML)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

#[derive(FromArgs)]
/// Delete an account (its sessions are disconnected).
#[argh(subcommand, name = "del")]
struct UserDel {
    /// the account address, user@domain
    #[argh(positional)]
    jid: String,
    /// configuration file (TOML)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

#[derive(FromArgs)]
/// Set a new password for an account (at least 8 characters).
#[argh(subcommand, name = "passwd")]
struct UserPasswd {
    /// the account address, user@domain
    #[argh(positional)]
    jid: String,
    /// read the password from the first line of standard input instead
    #[argh(switch)]
    password_stdin: bool,
    /// accept a password shorter than 8 characters
    #[argh(switch)]
    weak: bool,
    /// configuration file (TOML)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

#[derive(FromArgs)]
/// List accounts, optionally of one domain only.
#[argh(subcommand, name = "list")]
struct UserList {
    /// only accounts of this domain
    #[argh(positional)]
    domain: Option<String>,
    /// configuration file (TOML)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

#[derive(FromArgs)]
/// Manage chat rooms (works while the server runs).
#[argh(subcommand, name = "room")]
struct RoomCmd {
    #[argh(subcommand)]
    action: RoomAction,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum RoomAction {
    List(RoomList),
    Destroy(RoomDestroy),
}

#[derive(FromArgs)]
/// List chat rooms: the stored ones, and while the server runs also the
/// temporary ones with their occupant counts.
#[argh(subcommand, name = "list")]
struct RoomList {
    /// configuration file (TOML)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

#[derive(FromArgs)]
/// Destroy a chat room; its occupants are told, with the reason if given.
#[argh(
    subcommand,
    name = "destroy",
    example = "perch room destroy garden@conference.example.org --reason \"Moved to orchard\""
)]
struct RoomDestroy {
    /// the room address, room@conference.domain
    #[argh(positional)]
    jid: String,
    /// why the room is destroyed, shown to its occupants
    #[argh(option)]
    reason: Option<String>,
    /// configuration file (TOML)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

#[derive(FromArgs)]
/// Message archives of accounts and chat rooms: sizes and expiry (works
/// while the server runs).
#[argh(
    subcommand,
    name = "archive",
    example = "perch archive stats\nperch archive expire --dry-run",
    note = "The archives (XEP-0313) keep what the retention settings of the\nconfiguration allow: [archive] expires and max_mib_per_account for\naccounts, room_expires and max_mib_per_room for rooms. The server removes\nthe rest by itself every cleanup_interval_secs; `perch archive expire`\ndoes it at once, and with --dry-run shows what that would remove."
)]
struct ArchiveCmd {
    #[argh(subcommand)]
    action: ArchiveAction,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum ArchiveAction {
    Stats(ArchiveStats),
    Expire(ArchiveExpire),
}

#[derive(FromArgs)]
/// One line per archive, accounts then rooms: its address, messages, size
/// and the times (UTC) of its oldest and newest message; then the totals
/// and the size of the database file.
#[argh(subcommand, name = "stats")]
struct ArchiveStats {
    /// configuration file (TOML)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

#[derive(FromArgs)]
/// Remove the archived messages older than [archive] expires (accounts) or
/// room_expires (rooms), then the oldest of each archive still over
/// max_mib_per_account or max_mib_per_room; prints per archive how many,
/// and the total.
#[argh(
    subcommand,
    name = "expire",
    example = "perch archive expire --dry-run\nperch archive expire -c /etc/perch/perch.toml"
)]
struct ArchiveExpire {
    /// only count what would be removed; nothing is changed
    #[argh(switch)]
    dry_run: bool,
    /// configuration file (TOML)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    // The database, keys, backups and exports hold secrets: everything
    // created from here on is owner-only.
    perch::file_modes::restrict_umask();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if matches!(args.as_slice(), [a] if a == "--version" || a == "-V" || a == "version") {
        println!("perch {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let cli = match parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match cli.command {
        Sub::Run(cmd) => run(cmd.config.as_deref()),
        Sub::Check(cmd) => check(cmd.config.as_deref(), cmd.compliance),
        Sub::User(cmd) => user(cmd.action),
        Sub::Room(cmd) => room(cmd.action),
        Sub::Archive(cmd) => archive(cmd.action),
        Sub::Upload(cmd) => {
            let (config_file, cmd) = cmd.into_command();
            admin_command(config_file.as_deref(), &cmd)
        }
        Sub::Invite(cmd) => cli_invite::run(cmd),
        Sub::S2s(cmd) => {
            let (config_file, cmd) = cmd.into_command();
            admin_command(config_file.as_deref(), &cmd)
        }
        Sub::Announce(cmd) => cli_announce::announce(cmd),
        Sub::Motd(cmd) => {
            let (config_file, cmd) = cmd.into_command();
            admin_command(config_file.as_deref(), &cmd)
        }
        Sub::Backup(cmd) => backup(cmd),
        Sub::Export(cmd) => export(cmd),
        Sub::Import(cmd) => import(cmd),
    }
}

fn store_exit_code(e: &StoreError) -> ExitCode {
    match e {
        StoreError::Locked(_) => ExitCode::from(EXIT_IN_USE),
        _ => ExitCode::from(EXIT_FAILURE),
    }
}

fn backup(cmd: BackupCmd) -> ExitCode {
    let config = match load_config(cmd.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Err(code) = require_data(&config, cmd.config.as_deref()) {
        return code;
    }
    match perch::backup::write(&config, &cmd.file) {
        Ok(summary) => {
            println!("{}: {summary}", cmd.file.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("perch: backup to {}: {e}", cmd.file.display());
            match &e {
                perch::backup::BackupError::Store(s) => store_exit_code(s),
                _ => ExitCode::from(EXIT_FAILURE),
            }
        }
    }
}

fn export(cmd: ExportCmd) -> ExitCode {
    let config = match load_config(cmd.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Err(code) = require_data(&config, cmd.config.as_deref()) {
        return code;
    }
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("perch: export to {}: {e}", cmd.dir.display());
        ExitCode::from(EXIT_FAILURE)
    };
    // A running server holds the database: export from a snapshot of it,
    // taken next to the target directory and removed afterwards.
    let snapshot = snapshot_path(&cmd.dir);
    let running = perch::net::admin::socket_path(&config.data_dir).exists();
    let store = if running {
        if let Err(e) = perch::backup::write(&config, &snapshot) {
            return fail(&e);
        }
        Store::open(&snapshot, 1 << 20)
    } else {
        perch::backup::open_existing(&config)
    };
    let result = match store {
        Ok(store) => perch::portable::export(&store, &cmd.dir).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if running {
        let _ = std::fs::remove_file(&snapshot);
    }
    match result {
        Ok(summary) => {
            println!(
                "exported {} users of {} hosts to {}",
                summary.users,
                summary.hosts,
                cmd.dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

/// `parent/.NAME.snapshot-PID.redb` for the export directory `dir/NAME`.
fn snapshot_path(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".to_string());
    dir.with_file_name(format!(".{name}.snapshot-{}.redb", std::process::id()))
}

fn import(cmd: ImportCmd) -> ExitCode {
    let config = match load_config(cmd.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Err(code) = require_data(&config, cmd.config.as_deref()) {
        return code;
    }
    let path = config.data_dir.join(perch::config::DB_FILE);
    let store = match Store::open(&path, config.storage.cache_bytes()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("perch: {e}");
            if matches!(e, StoreError::Locked(_)) {
                eprintln!("perch: stop the server before importing (systemctl stop perch)");
            }
            return store_exit_code(&e);
        }
    };
    let hosts: Vec<String> = config.hosts.iter().map(|h| h.domain.clone()).collect();
    match perch::portable::import(&store, &cmd.path, &hosts) {
        Ok(report) => {
            for line in report.lines() {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "perch: import from {}: {e} (nothing was imported)",
                cmd.path.display()
            );
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Like `argh::from_env`, but a usage error exits with `EXIT_CONFIG` as
/// documented, not argh's 1.
fn parse_args() -> Result<Cli, ExitCode> {
    let args: Vec<String> = std::env::args().collect();
    let name = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("perch")
        .to_string();
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    Cli::from_args(&[&name], &rest).map_err(|exit| match exit.status {
        Ok(()) => {
            println!("{}", exit.output);
            ExitCode::SUCCESS
        }
        Err(()) => {
            eprintln!("{}\nRun {name} --help for more information.", exit.output);
            ExitCode::from(EXIT_CONFIG)
        }
    })
}

fn config_path(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("PERCH_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("CONFIGURATION_DIRECTORY")
        .map(|d| PathBuf::from(d).join("perch.toml"))
        .filter(|p| p.exists())
    {
        return Some(p);
    }
    // Where the package installs it, so that `perch user …` in a shell
    // finds the same configuration (and database) as the service.
    Some(PathBuf::from(SYSTEM_CONFIG)).filter(|p| p.exists())
}

fn load_config(explicit: Option<&Path>) -> Result<Config, ExitCode> {
    match config_path(explicit) {
        Some(path) => Config::load(&path).map_err(|e| {
            report_config_error(&e);
            ExitCode::from(EXIT_CONFIG)
        }),
        None => Ok(Config::default()),
    }
}

fn report_config_error(e: &perch::config::ConfigError) {
    for problem in e.problems() {
        eprintln!("perch: {problem}");
    }
}

fn run(config_file: Option<&Path>) -> ExitCode {
    let config = match load_config(config_file) {
        Ok(c) => c,
        Err(code) => return code,
    };
    perch::logger::init(config.log_level);
    match config_path(config_file) {
        Some(p) => log::info!("configuration: {}", p.display()),
        None => log::info!("no configuration file: using built-in defaults"),
    }
    let config_file = config_path(config_file);
    // Handlers go in before anything is bound, so a SIGTERM during start-up
    // is a clean shutdown, not the default action.
    let signals = perch::signals::Signals::new();
    let ex = Rc::new(smol::LocalExecutor::new());
    // The server runs as a task of its own: `run` polls the future it is
    // given at every wake-up of the thread, and the server's (which waits
    // for signals) would try a read of the signal socket each time.
    let server = ex.spawn({
        let ex = ex.clone();
        async move {
            let mut prepared = perch::run::prepare(config, &ex).await?;
            if let Some(notifier) = perch::sd_notify::Notifier::from_env() {
                prepared = prepared.with_notifier(notifier);
            }
            let reloader = prepared.reloader();
            let control = until_stopped(signals, reloader, config_file);
            Ok::<_, perch::run::RunError>(perch::run::serve(prepared, ex.clone(), control).await)
        }
    });
    let result = smol::block_on(ex.run(server));
    match result {
        Ok(perch::run::Stopped::Requested) => ExitCode::SUCCESS,
        Ok(perch::run::Stopped::StorageFailed) => ExitCode::from(EXIT_STORAGE),
        Err(e) => {
            log::error!("{e}");
            match e {
                perch::run::RunError::Store(StoreError::Locked(_)) => ExitCode::from(EXIT_IN_USE),
                perch::run::RunError::Unsupported(_) | perch::run::RunError::Tls(_) => {
                    ExitCode::from(EXIT_CONFIG)
                }
                _ => ExitCode::from(EXIT_FAILURE),
            }
        }
    }
}

/// Serves signals until SIGTERM or SIGINT: SIGHUP re-reads the
/// configuration file and the certificates.
async fn until_stopped(
    signals: std::io::Result<perch::signals::Signals>,
    reloader: perch::reload::Reloader,
    config_file: Option<PathBuf>,
) {
    use perch::signals::Request;
    let mut signals = match signals {
        Ok(s) => s,
        Err(e) => {
            log::warn!("cannot watch for signals ({e}); stop with SIGKILL");
            return futures_lite::future::pending::<()>().await;
        }
    };
    loop {
        match signals.next().await {
            Request::Stop => return,
            Request::Reload => {
                reloader.reload_from(config_file.as_deref());
            }
        }
    }
}

fn check(config_file: Option<&Path>, compliance: bool) -> ExitCode {
    let path = config_path(config_file);
    let config = match &path {
        Some(p) => match Config::load(p) {
            Ok(c) => c,
            Err(e) => {
                report_config_error(&e);
                return ExitCode::from(EXIT_CONFIG);
            }
        },
        None => Config::default(),
    };
    if path.is_none() {
        println!("no configuration file: built-in defaults");
    }
    let report = perch::check::check(&config);
    for line in &report.lines {
        println!("{line}");
    }
    for warning in &report.warnings {
        eprintln!("perch: warning: {warning}");
    }
    if report.errors.is_empty() {
        if let Some(p) = &path {
            println!("configuration {}: valid", p.display());
        }
        if compliance {
            println!();
            let rows = perch::compliance::evaluate(&config);
            for line in perch::compliance::render(&rows) {
                println!("{line}");
            }
        }
        ExitCode::SUCCESS
    } else {
        for e in &report.errors {
            eprintln!("perch: {e}");
        }
        ExitCode::from(EXIT_CONFIG)
    }
}

fn room(action: RoomAction) -> ExitCode {
    let (config_file, cmd) = match action {
        RoomAction::List(a) => (a.config, Command::RoomList),
        RoomAction::Destroy(a) => (
            a.config,
            Command::RoomDestroy {
                jid: a.jid,
                reason: a.reason,
            },
        ),
    };
    admin_command(config_file.as_deref(), &cmd)
}

fn archive(action: ArchiveAction) -> ExitCode {
    let (config_file, cmd) = match action {
        ArchiveAction::Stats(a) => (a.config, Command::ArchiveStats),
        ArchiveAction::Expire(a) => (a.config, Command::ArchiveExpire { dry_run: a.dry_run }),
    };
    admin_command(config_file.as_deref(), &cmd)
}

/// Runs an admin command that needs no more than the configuration:
/// through the running server, else on the database file.
fn admin_command(config_file: Option<&Path>, cmd: &Command) -> ExitCode {
    let config = match load_config(config_file) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Err(code) = require_data(&config, config_file) {
        return code;
    }
    report(run_admin(&config, cmd))
}

/// How `perch user add` and `perch user passwd` get their password.
struct PasswordPrompt {
    /// The account `jid` must be in before the prompt.
    intent: Intent,
    jid: String,
    from_stdin: bool,
    weak: bool,
}

fn user(action: UserAction) -> ExitCode {
    let (config_file, cmd, prompt) = match action {
        UserAction::Add(a) => {
            let prompt = PasswordPrompt {
                intent: Intent::Add {
                    reuse_deleted: a.reuse_deleted,
                },
                jid: a.jid.clone(),
                from_stdin: a.password_stdin,
                weak: a.weak,
            };
            let cmd = Command::UserAdd {
                jid: a.jid,
                password: String::new(),
                reuse_deleted: a.reuse_deleted,
            };
            (a.config, cmd, Some(prompt))
        }
        UserAction::Passwd(a) => {
            let prompt = PasswordPrompt {
                intent: Intent::Change,
                jid: a.jid.clone(),
                from_stdin: a.password_stdin,
                weak: a.weak,
            };
            let cmd = Command::UserPasswd {
                jid: a.jid,
                password: String::new(),
            };
            (a.config, cmd, Some(prompt))
        }
        UserAction::Del(a) => (a.config, Command::UserDel { jid: a.jid }, None),
        UserAction::List(a) => (a.config, Command::UserList { domain: a.domain }, None),
        UserAction::Disable(a) => {
            let cmd = Command::Notice(NoticeCommand::UserDisable { jid: a.jid });
            (a.config, cmd, None)
        }
        UserAction::Enable(a) => {
            let cmd = Command::Notice(NoticeCommand::UserEnable { jid: a.jid });
            (a.config, cmd, None)
        }
        UserAction::Admin(a) => {
            let cmd = match (a.jid, a.revoke) {
                (Some(jid), revoke) => NoticeCommand::UserAdmin {
                    jid,
                    admin: !revoke,
                },
                (None, false) => NoticeCommand::AdminList,
                (None, true) => {
                    eprintln!("perch: --revoke needs the account: perch user admin JID --revoke");
                    return ExitCode::from(EXIT_FAILURE);
                }
            };
            (a.config, Command::Notice(cmd), None)
        }
    };
    let config = match load_config(config_file.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let hosts: Vec<String> = config.hosts.iter().map(|h| h.domain.clone()).collect();
    // Everything that can be checked is checked before the password is
    // asked for: the address, where the data is, whether the account
    // exists (or must not).
    let first = match &prompt {
        Some(p) => Command::UserCheck {
            jid: p.jid.clone(),
            intent: p.intent,
        },
        None => cmd.clone(),
    };
    if let Err(e) = admin::validate(&first, &hosts) {
        return report(Err(e));
    }
    if let Err(code) = require_data(&config, config_file.as_deref()) {
        return code;
    }
    let Some(prompt) = prompt else {
        return report(run_admin(&config, &cmd));
    };
    match run_admin(&config, &first) {
        // Only a deleted account's address has something to say here.
        Ok(notes) => {
            for note in notes {
                eprintln!(
                    "perch: warning: {note}; its former contacts may still trust this address and take the new owner for the old one"
                );
            }
        }
        Err(e) => return report(Err(e)),
    }
    let password = match read_password(prompt.from_stdin, true) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let usable = admin::check_password(&password)
        .and_then(|()| admin::check_password_length(&password, prompt.weak));
    if let Err(e) = usable {
        return report(Err(e));
    }
    let cmd = match cmd {
        Command::UserAdd {
            jid, reuse_deleted, ..
        } => Command::UserAdd {
            jid,
            password,
            reuse_deleted,
        },
        Command::UserPasswd { jid, .. } => Command::UserPasswd { jid, password },
        other => other,
    };
    report(run_admin(&config, &cmd))
}

/// Stops a command other than `perch run` when there is neither a server
/// answering on the admin socket nor a database where the configuration
/// points: with the built-in defaults in the wrong directory, going on
/// would make a new, empty database that the server never sees.
fn require_data(config: &Config, explicit: Option<&Path>) -> Result<(), ExitCode> {
    // The socket's file is enough here: a server that left it behind when
    // it crashed also left its database, and a probe connection would cost
    // the server a request that never comes.
    let socket = perch::net::admin::socket_path(&config.data_dir);
    let db = config.data_dir.join(perch::config::DB_FILE);
    if socket.exists() || db.exists() {
        return Ok(());
    }
    let db = std::path::absolute(&db).unwrap_or(db);
    let configuration = match config_path(explicit) {
        Some(p) => format!("configuration {}", p.display()),
        None => "no configuration file".to_string(),
    };
    eprintln!(
        "perch: no database at {} and no server running on it ({configuration}); start the server first (perch run), or name its configuration with --config FILE or $PERCH_CONFIG",
        db.display()
    );
    Err(ExitCode::from(EXIT_FAILURE))
}

/// Prints the result of an admin command and picks the exit code.
fn report(result: Result<Vec<String>, AdminError>) -> ExitCode {
    match result {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("perch: {e}");
            match e {
                AdminError::BadJid(..)
                | AdminError::BadRoom(..)
                | AdminError::UnknownHost(_)
                | AdminError::BadPassword(_)
                | AdminError::BadRequest(_) => ExitCode::from(EXIT_CONFIG),
                AdminError::RemoteInvalid(_) => ExitCode::from(EXIT_CONFIG),
                AdminError::Store(StoreError::Locked(_)) => ExitCode::from(EXIT_IN_USE),
                _ => ExitCode::from(EXIT_FAILURE),
            }
        }
    }
}

/// Through the running server's admin socket if there is one, else
/// directly on the database file.
fn run_admin(config: &Config, cmd: &Command) -> Result<Vec<String>, AdminError> {
    let hosts: Vec<String> = config.hosts.iter().map(|h| h.domain.clone()).collect();
    // The same checks the server makes, done here first so that an invalid
    // request fails alike with or without a running server.
    admin::validate(cmd, &hosts)?;
    if let Some(lines) = perch::net::admin::request(&config.data_dir, cmd)? {
        return Ok(lines);
    }
    let path = config.data_dir.join(perch::config::DB_FILE);
    // `require_data` has looked already; this closes the gap to a server
    // that stopped (and took nothing with it) in between.
    if !path.exists() {
        return Err(AdminError::Store(StoreError::NotFound(format!(
            "database {}",
            path.display()
        ))));
    }
    let cache = config.storage.cache_bytes();
    let store = Store::open(&path, cache)?;
    // The same code as on a running server, without listeners: deleting an
    // account ends its contacts' subscriptions here too.
    let server = perch::server::Server::new(config.clone(), store);
    smol::block_on(admin::execute(&server, cmd))
}

fn read_password(from_stdin: bool, confirm: bool) -> Result<String, ExitCode> {
    let fail = |msg: String| {
        eprintln!("perch: {msg}");
        ExitCode::from(EXIT_FAILURE)
    };
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| fail(format!("reading the password from stdin: {e}")))?;
        return Ok(line.trim_end_matches(['\n', '\r']).to_string());
    }
    let first = perch::terminal::prompt_hidden("Password: ")
        .map_err(|e| fail(format!("{e} (use --password-stdin when not on a terminal)")))?;
    if confirm {
        let second =
            perch::terminal::prompt_hidden("Repeat password: ").map_err(|e| fail(e.to_string()))?;
        if first != second {
            return Err(fail("the passwords differ".to_string()));
        }
    }
    Ok(first)
}
