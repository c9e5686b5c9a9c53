//! A small `log` backend writing one line per record to stderr. Under
//! systemd (JOURNAL_STREAM set) each line carries a `<N>` syslog priority
//! prefix so journald records the level and adds its own timestamps.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

struct StderrLogger {
    journald: bool,
}

static INSTALLED: AtomicBool = AtomicBool::new(false);

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata())
            || !shown(record.target(), record.level(), log::max_level())
        {
            return;
        }
        let line = if self.journald {
            let priority = match record.level() {
                log::Level::Error => 3,
                log::Level::Warn => 4,
                log::Level::Info => 6,
                log::Level::Debug | log::Level::Trace => 7,
            };
            format!("<{priority}>{}\n", record.args())
        } else {
            let now = crate::datetime::format_utc(std::time::SystemTime::now(), true);
            format!("{now} {:<5} {}\n", record.level(), record.args())
        };
        // One write per line keeps lines whole even with the blocking pool
        // logging concurrently.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// Whether a record that passed the level filter is written.
///
/// Dependencies log at debug/trace with their own targets; those stay out
/// unless tracing is asked for. rustls warns about what a peer sent (an IP
/// address as server name, a warning alert, a refused renegotiation): one
/// line per handshake that anyone who can connect repeats at will, so
/// those are debug lines here, not a way to fill the operator's disk.
fn shown(target: &str, level: log::Level, max: log::LevelFilter) -> bool {
    if target.starts_with("perch") {
        return true;
    }
    if target.starts_with("rustls") && level == log::Level::Warn {
        return max >= log::LevelFilter::Debug;
    }
    level <= log::Level::Info || max >= log::LevelFilter::Trace
}

/// Installs the logger once; later calls only change the level.
pub fn init(level: log::LevelFilter) {
    if !INSTALLED.swap(true, Ordering::SeqCst) {
        let logger = StderrLogger {
            journald: std::env::var_os("JOURNAL_STREAM").is_some(),
        };
        let _ = log::set_boxed_logger(Box::new(logger));
    }
    log::set_max_level(level);
}

#[cfg(test)]
mod tests {
    use super::shown;
    use log::{Level, LevelFilter};

    #[test]
    fn peer_triggered_tls_warnings_are_debug_lines() {
        // Found by the testssl.sh scan (tests/tls_scan.sh): every handshake
        // with an IP address as server name was a warning line.
        let sni = "rustls::msgs::handshake";
        assert!(!shown(sni, Level::Warn, LevelFilter::Info));
        assert!(!shown(sni, Level::Warn, LevelFilter::Warn));
        assert!(shown(sni, Level::Warn, LevelFilter::Debug));
        // Its errors (keys exhausted) stay.
        assert!(shown(
            "rustls::common_state",
            Level::Error,
            LevelFilter::Info
        ));
        // Perch's own lines and other dependencies' as before.
        assert!(shown(
            "perch::net::connection",
            Level::Warn,
            LevelFilter::Info
        ));
        assert!(shown("redb", Level::Warn, LevelFilter::Info));
        assert!(!shown("redb", Level::Debug, LevelFilter::Debug));
        assert!(shown("redb", Level::Debug, LevelFilter::Trace));
    }
}
