//! The cells and rows every report table is made of, shared by the run
//! table, the comparison and the scenarios' own parts (`mam`, `pep`).

use std::fmt::Write as _;

use serde_json::Value;

/// A number as the tables show it (three significant digits or so).
pub(crate) fn fmt_cell(v: f64) -> String {
    fmt_num(v)
}

pub(crate) fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else if v.abs() >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// Columns padded to their widest cell, a rule under the header.
pub(crate) fn render<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (n, row) in rows.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
        if n == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            let _ = writeln!(out, "{}", rule.join("  "));
        }
    }
    out
}

/// A row of the comparison: which records, which number(s).
pub(crate) struct Row {
    pub(crate) title: String,
    pub(crate) scenario: &'static str,
    pub(crate) filter: Vec<(&'static str, Value)>,
    /// One path, or two shown as "a / b" (p50 / p99).
    pub(crate) paths: Vec<&'static str>,
}

pub(crate) fn row(
    title: impl Into<String>,
    scenario: &'static str,
    filter: Vec<(&'static str, Value)>,
    paths: &[&'static str],
) -> Row {
    Row {
        title: title.into(),
        scenario,
        filter,
        paths: paths.to_vec(),
    }
}
