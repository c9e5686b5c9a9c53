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
        if !self.enabled(record.metadata()) {
            return;
        }
        // Dependencies log at debug/trace with their own targets; keep
        // them out unless tracing is asked for.
        let ours = record.target().starts_with("perch");
        if !ours && record.level() > log::Level::Info && log::max_level() < log::LevelFilter::Trace
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
