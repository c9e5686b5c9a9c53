//! The descriptor limit: 10 000 connections need 10 000 descriptors on each
//! side, and a shell's soft limit is often 1 024. The tool raises its own
//! soft limit to the hard one (no privilege needed); a server it spawns
//! inherits it.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// The soft and hard limits after the attempt (`None`: unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

impl Limits {
    /// Whether `n` descriptors fit under the soft limit.
    pub fn allows(&self, n: u64) -> bool {
        self.soft.is_none_or(|s| s >= n)
    }

    pub fn describe(&self) -> String {
        let show = |v: Option<u64>| v.map_or("unlimited".to_string(), |n| n.to_string());
        format!("soft {}, hard {}", show(self.soft), show(self.hard))
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the limits in
/// force afterwards (unchanged if the kernel said no).
pub fn raise_nofile() -> Limits {
    let now = getrlimit(Resource::Nofile);
    if now.current != now.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: now.maximum,
                maximum: now.maximum,
            },
        );
    }
    let after = getrlimit(Resource::Nofile);
    Limits {
        soft: after.current,
        hard: after.maximum,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_reaches_the_hard_one() {
        let l = raise_nofile();
        assert_eq!(l.soft, l.hard);
        assert!(l.allows(3));
        assert!(l.describe().contains("soft"));
    }
}
