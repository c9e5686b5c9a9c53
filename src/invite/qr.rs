//! QR codes of invitations, drawn from the `qrcode` crate's modules: as
//! Unicode half blocks for a terminal (two rows of modules per line of
//! text) and as SVG for the landing page (one rect per run of dark
//! modules in a row, so a phone renders it quickly).

use std::fmt::Write;

use qrcode::{Color, EcLevel, QrCode};

/// Light modules around the code (the standard asks for 4).
const QUIET_ZONE: usize = 4;

/// The modules of `text`, row by row (true: dark), with the quiet zone;
/// `None` if the text is too long for any QR code.
fn modules(text: &str) -> Option<(usize, Vec<bool>)> {
    // Medium error correction: a phone held at an angle still reads it,
    // and a URL with a token stays a small code.
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).ok()?;
    let width = code.width();
    let colors = code.to_colors();
    let full = width + 2 * QUIET_ZONE;
    let mut out = vec![false; full * full];
    for (i, color) in colors.iter().enumerate() {
        let (y, x) = (i / width + QUIET_ZONE, i % width + QUIET_ZONE);
        if let Some(cell) = out.get_mut(y * full + x) {
            *cell = *color == Color::Dark;
        }
    }
    Some((full, out))
}

/// The code as lines of half blocks, dark modules drawn in the
/// terminal's foreground colour on its background, so it reads on a
/// light terminal; on a dark one `inverted` swaps them (a QR reader
/// needs dark modules on a light ground).
pub fn terminal(text: &str, inverted: bool) -> Option<String> {
    let (width, cells) = modules(text)?;
    let dark = |x: usize, y: usize| cells.get(y * width + x).copied().unwrap_or(false) != inverted;
    let mut out = String::with_capacity(width * width * 2);
    for y in (0..width).step_by(2) {
        for x in 0..width {
            out.push(match (dark(x, y), y + 1 < width && dark(x, y + 1)) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        out.push('\n');
    }
    Some(out)
}

/// The code as an inline SVG element, `size` CSS pixels wide, with a
/// title for screen readers (escaped here).
pub fn svg(text: &str, size: u32, title: &str) -> Option<String> {
    let (width, cells) = modules(text)?;
    let mut path = String::new();
    for y in 0..width {
        let mut x = 0;
        while x < width {
            if cells.get(y * width + x).copied().unwrap_or(false) {
                let start = x;
                while x < width && cells.get(y * width + x).copied().unwrap_or(false) {
                    x += 1;
                }
                let _ = write!(path, "M{start} {y}h{}v1H{start}z", x - start);
            } else {
                x += 1;
            }
        }
    }
    let mut escaped = Vec::new();
    crate::xml::escape_text_into(title, &mut escaped);
    let title = String::from_utf8(escaped).unwrap_or_default();
    Some(format!(
        "<svg xmlns='http://www.w3.org/2000/svg' class='qr' role='img' width='{size}' height='{size}' viewBox='0 0 {width} {width}' shape-rendering='crispEdges'><title>{title}</title><rect width='{width}' height='{width}' fill='#fff'/><path fill='#000' d='{path}'/></svg>"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_code_is_square_with_quiet_zone() {
        let text = terminal(
            "xmpp:example.org?register;preauth=abcdefghijklmnopqrstuvwxyz",
            false,
        )
        .expect("fits");
        let lines: Vec<&str> = text.lines().collect();
        let width = lines[0].chars().count();
        // Version 3 or so: 29 modules plus 8 of quiet zone.
        assert!(width >= 21 + 2 * QUIET_ZONE, "{width}");
        assert_eq!(lines.len(), width.div_ceil(2));
        assert!(lines.iter().all(|l| l.chars().count() == width));
        // The first line is quiet zone (light), the middle has modules.
        assert!(lines[0].chars().all(|c| c == ' '));
        assert!(lines[lines.len() / 2].contains('█') || lines[lines.len() / 2].contains('▀'));
        let inverted = terminal("xmpp:example.org?register;preauth=abc", true).expect("fits");
        assert!(
            inverted
                .lines()
                .next()
                .expect("line")
                .chars()
                .all(|c| c == '█')
        );
    }

    #[test]
    fn svg_is_escaped_and_sized() {
        let svg = svg("https://example.org/invite/abc", 240, "<Join & chat>").expect("fits");
        assert!(svg.starts_with("<svg xmlns='http://www.w3.org/2000/svg'"));
        assert!(svg.contains("width='240'"));
        assert!(svg.contains("<title>&lt;Join &amp; chat&gt;</title>"));
        assert!(svg.contains("<path fill='#000' d='M"));
    }

    #[test]
    fn too_long_for_a_code() {
        assert_eq!(terminal(&"x".repeat(5000), false), None);
    }
}
