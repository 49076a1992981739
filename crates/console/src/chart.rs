//! Bar charts as inline SVG, drawn on the server with integer arithmetic (no floats near
//! money): bar heights are `value × height / max`, exact to the pixel.

use maud::{Markup, html};

/// Plot area, in SVG units (the chart scales to its container).
const WIDTH: u128 = 600;
const HEIGHT: u128 = 140;
const LEFT: u128 = 4;
const BOTTOM: u128 = 16;

/// One bar per value, labelled by `labels` (shown every few bars), with a `<title>` per bar
/// (`tips`) for pointers and an accessible name for screen readers; the numbers themselves
/// are also in the table the page shows next to it.
pub fn bars(values: &[u128], labels: &[String], tips: &[String], name: &str) -> Markup {
    let n = values.len().max(1) as u128;
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    let slot = (WIDTH - LEFT) / n;
    let gap = (slot / 5).max(1);
    let every = (values.len() / 8).max(1);
    html! {
        svg.chart viewBox={ "0 0 " (WIDTH) " " (HEIGHT + BOTTOM) } role="img" aria-label=(name)
            xmlns="http://www.w3.org/2000/svg" {
            line.axis x1=(LEFT) y1=(HEIGHT) x2=(WIDTH) y2=(HEIGHT) {}
            @for (i, v) in values.iter().enumerate() {
                @let h = if *v == 0 { 0 } else { height(*v, max).max(1) };
                @let x = LEFT + i as u128 * slot + gap / 2;
                rect.bar x=(x) y=(HEIGHT - h) width=((slot - gap).max(1)) height=(h) {
                    title { (tips.get(i).map_or("", String::as_str)) }
                }
                @if i % every == 0 {
                    text x=(x) y=(HEIGHT + BOTTOM - 3) { (labels.get(i).map_or("", String::as_str)) }
                }
            }
        }
    }
}

/// `v × HEIGHT / max` without overflow: amounts near `u128::MAX` are scaled down first
/// (a pixel is far coarser than what that loses).
fn height(v: u128, max: u128) -> u128 {
    let limit = u128::MAX / HEIGHT;
    let (v, max) = if max > limit {
        let s = max / limit + 1;
        (v / s, (max / s).max(1))
    } else {
        (v, max)
    };
    v * HEIGHT / max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_heights_are_exact_integers() {
        let huge = u128::MAX / 3;
        let svg = bars(
            &[0, huge, huge / 2],
            &["a".into(), "b".into(), "c".into()],
            &["0".into(), "x".into(), "y".into()],
            "orders",
        )
        .into_string();
        assert!(svg.contains("height=\"140\""), "{svg}");
        assert!(
            svg.contains("height=\"69\"") || svg.contains("height=\"70\""),
            "{svg}"
        );
        assert!(svg.contains("height=\"0\""));
        assert!(svg.contains("aria-label=\"orders\""));
    }
}
