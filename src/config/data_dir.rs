//! The data directory when the configuration names none.
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

use super::DEFAULT_DATA_DIR;

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
            legacy_database: Path::new(DEFAULT_DATA_DIR)
                .join(crate::run::DB_FILE)
                .exists(),
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

#[cfg(test)]
mod tests {
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
}
