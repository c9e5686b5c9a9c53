//! `log_level`: how much the server logs.

use log::LevelFilter;

use super::toml_reader::TableReader;

const LOG_LEVELS: [(&str, LevelFilter); 5] = [
    ("error", LevelFilter::Error),
    ("warn", LevelFilter::Warn),
    ("info", LevelFilter::Info),
    ("debug", LevelFilter::Debug),
    ("trace", LevelFilter::Trace),
];

/// The default when the file does not say.
pub(super) const DEFAULT_LOG_LEVEL: LevelFilter = LevelFilter::Info;

/// Reads and checks the top-level `log_level` key (any case); `None` when
/// it is absent or has a problem (reported).
pub(super) fn read(top: &mut TableReader<'_, '_>) -> Option<LevelFilter> {
    let raw = top.string("log_level")?;
    let found = LOG_LEVELS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(raw.get_ref()))
        .map(|&(_, level)| level);
    if found.is_none() {
        let names: Vec<&str> = LOG_LEVELS.iter().map(|&(name, _)| name).collect();
        top.problem(
            raw.span(),
            format_args!(
                "log_level: expected one of {}; found {:?}",
                names.join(", "),
                raw.get_ref()
            ),
        );
    }
    found
}

#[cfg(test)]
mod tests {
    use super::super::tests::problems;

    #[test]
    fn bad_log_level() {
        assert_eq!(
            problems("\n\n\n\n\n\nlog_level = \"loud\"\n"),
            vec![
                "perch.toml:7: log_level: expected one of error, warn, info, debug, trace; found \"loud\""
            ]
        );
    }
}
