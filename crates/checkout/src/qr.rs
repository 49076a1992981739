//! QR codes as compact inline SVG, rendered on the server: one path, one rectangle per run of
//! dark modules in a row (a few KB for a payment URI).

use std::fmt::Write as _;

use qrcode::{Color, EcLevel, QrCode};

/// Modules of quiet zone around the code (the standard asks for 4).
const QUIET: usize = 4;

/// The SVG markup of a QR code of `data`, or `None` if it does not fit in a QR code.
pub fn svg(data: &str, label: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).ok()?;
    let width = code.width();
    let colors = code.to_colors();
    let size = width + 2 * QUIET;
    let mut path = String::with_capacity(width * width);
    for (y, row) in colors.chunks(width).enumerate() {
        let mut x = 0;
        while x < width {
            if row[x] == Color::Dark {
                let start = x;
                while x < width && row[x] == Color::Dark {
                    x += 1;
                }
                let _ = write!(
                    path,
                    "M{} {}h{}v1h-{}z",
                    start + QUIET,
                    y + QUIET,
                    x - start,
                    x - start
                );
            } else {
                x += 1;
            }
        }
    }
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" class=\"qr\" role=\"img\" aria-label=\"{}\" shape-rendering=\"crispEdges\"><rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/><path fill=\"#000\" d=\"{path}\"/></svg>",
        escape_attr(label)
    ))
}

fn escape_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn renders_a_small_square_svg() {
        let uri = "ethereum:0x55d398326f99059fF775485246999027B3197955@56/transfer?address=0x1111111111111111111111111111111111111111&uint256=12345678901234567890";
        let svg = svg(uri, "QR \"x\"").unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("aria-label=\"QR &quot;x&quot;\""));
        assert!(svg.len() < 16_000, "{} bytes", svg.len());
        // the same data gives the same picture; other data another
        assert_eq!(svg, super::svg(uri, "QR \"x\"").unwrap());
        assert_ne!(svg, super::svg("bitcoin:bc1q", "QR \"x\"").unwrap());
    }
}
