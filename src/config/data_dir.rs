//! `data_dir`: where the database and the generated certificates live, and
//! the choice when the configuration names none.
//!
//! Every command finds the database through this choice, so it must not
//! depend on where a command happens to be started: `perch user add` run
//! from another directory has to reach the same database as `perch run`.
//! The order:
//!
//! 1. `$STATE_DIRECTORY` (systemd's `StateDirectory=`; the first entry);
//! 2. `./perch-data`, but only when it already holds a database: the
//!    default of earlier versions, kept so that an existing setup does not
//!    come up empty after an upgrade (`perch run` warns about a relative
//!    data directory);
//! 3. `$XDG_DATA_HOME/perch` when that variable is an absolute path (the
//!    XDG base directory specification says to ignore a relative one);
//! 4. `$HOME/.local/share/perch` (the XDG default);
//! 5. `./perch-data` when there is no home directory at all.

use std::path::{Path, PathBuf};

use super::toml_reader::TableReader;

/// The data directory of earlier versions, and the last resort when there
/// is no home directory (see [`Surroundings`] for the whole order).
pub const DEFAULT_DATA_DIR: &str = "./perch-data";
/// The database's file name in the data directory.
pub const DB_FILE: &str = "perch.redb";

/// What the choice depends on, read from the environment once so that the
/// rules are testable without changing the process's environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Surroundings {
    pub state_directory: Option<PathBuf>,
    pub xdg_data_home: Option<PathBuf>,
    pub home: Option<PathBuf>,
    /// Whether `./perch-data/perch.redb` exists in the current directory.
    pub legacy_database: bool,
}

impl Surroundings {
    pub fn from_env() -> Surroundings {
        let var = |name: &str| std::env::var_os(name).map(PathBuf::from);
        Surroundings {
            state_directory: std::env::var_os("STATE_DIRECTORY").and_then(|value| {
                // A colon-separated list when a unit has several
                // `StateDirectory=` entries; the first is ours.
                std::env::split_paths(&value).find(|dir| !dir.as_os_str().is_empty())
            }),
            xdg_data_home: var("XDG_DATA_HOME"),
            home: var("HOME"),
            legacy_database: Path::new(DEFAULT_DATA_DIR).join(DB_FILE).exists(),
        }
    }

    /// The default data directory in these surroundings; `None` leaves the
    /// last resort, `./perch-data`, to the caller.
    pub fn data_dir(&self) -> Option<PathBuf> {
        let usable = |p: &Option<PathBuf>| p.clone().filter(|p| !p.as_os_str().is_empty());
        if let Some(dir) = usable(&self.state_directory) {
            return Some(dir);
        }
        if self.legacy_database {
            return Some(PathBuf::from(DEFAULT_DATA_DIR));
        }
        if let Some(dir) = usable(&self.xdg_data_home).filter(|p| p.is_absolute()) {
            return Some(dir.join("perch"));
        }
        usable(&self.home)
            .filter(|p| p.is_absolute())
            .map(|home| home.join(".local/share/perch"))
    }
}

/// Reads and checks the top-level `data_dir` key; `None` when it is absent
/// or has a problem (reported).
pub(super) fn read(top: &mut TableReader<'_, '_>) -> Option<PathBuf> {
    let raw = top.string("data_dir")?;
    let span = raw.span();
    let dir = raw.into_inner();
    if dir.is_empty() {
        top.problem(span, "data_dir: must not be empty");
        None
    } else if dir.starts_with('~') {
        // Nothing between the file and us expands `~`: such a path would
        // silently create a directory literally named "~".
        top.problem(
            span,
            format_args!("data_dir: '~' is not expanded; use an absolute path instead of {dir:?}"),
        );
        None
    } else {
        Some(PathBuf::from(dir))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::super::tests::problems;
    use super::*;

    #[test]
    fn order_of_the_defaults() {
        let all = Surroundings {
            state_directory: Some("/var/lib/perch".into()),
            xdg_data_home: Some("/home/a/.data".into()),
            home: Some("/home/a".into()),
            legacy_database: true,
        };
        assert_eq!(all.data_dir(), Some("/var/lib/perch".into()));
        let no_state = Surroundings {
            state_directory: Some(PathBuf::new()),
            ..all.clone()
        };
        assert_eq!(no_state.data_dir(), Some("./perch-data".into()));
        let fresh = Surroundings {
            legacy_database: false,
            ..no_state
        };
        assert_eq!(fresh.data_dir(), Some("/home/a/.data/perch".into()));
        // A relative $XDG_DATA_HOME is ignored, as the specification says.
        let relative = Surroundings {
            xdg_data_home: Some("data".into()),
            ..fresh.clone()
        };
        assert_eq!(
            relative.data_dir(),
            Some("/home/a/.local/share/perch".into())
        );
        let homeless = Surroundings {
            xdg_data_home: None,
            home: Some(PathBuf::new()),
            ..fresh
        };
        assert_eq!(homeless.data_dir(), None);
        assert_eq!(Surroundings::default().data_dir(), None);
    }

    #[test]
    fn state_directory_becomes_the_data_dir() {
        let config = Config::defaults_with_state_dir(Some(PathBuf::from("/var/lib/perch")));
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/perch"));
        let empty = Config::defaults_with_state_dir(Some(PathBuf::new()));
        assert_eq!(empty.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        // An explicit data_dir wins over systemd's.
        let config = Config::parse(
            "data_dir = \"/srv/perch\"",
            "t",
            Some("/var/lib/perch".into()),
        )
        .unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/srv/perch"));
        let config = Config::parse("", "t", Some("/var/lib/perch".into())).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/perch"));
    }

    #[test]
    fn bad_data_dir() {
        assert_eq!(
            problems("data_dir = \"\"\n"),
            vec!["perch.toml:1: data_dir: must not be empty"]
        );
        assert_eq!(
            problems("data_dir = \"~/perch\"\n"),
            vec![
                "perch.toml:1: data_dir: '~' is not expanded; use an absolute path instead of \"~/perch\""
            ]
        );
    }
}
