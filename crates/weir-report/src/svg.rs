//! The report's charts as inline SVG: stacked bars per hour, colours given as attributes (an
//! email client may drop a `<style>`), readable on a light and a dark background alike.

use std::fmt::Write;

use crate::html::escape;

/// One stacked series: its name (legend), colour, and one value per bar.
pub struct Series<'a> {
    pub name: &'a str,
    pub class: &'a str,
    pub color: &'a str,
    pub values: Vec<u64>,
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 40.0;
const AXIS: &str = "#8a8f98";

/// A stacked bar chart with one bar per label (hours), a y axis from 0 to a round maximum,
/// and a legend under it. `id` names the chart for readers and tests.
pub fn stacked_bars(id: &str, title: &str, labels: &[String], series: &[Series<'_>]) -> String {
    let n = labels.len().max(1);
    let totals: Vec<u64> =
        (0..n).map(|i| series.iter().map(|s| s.values.get(i).copied().unwrap_or(0)).sum()).collect();
    let max = nice_max(totals.iter().copied().max().unwrap_or(0));
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = plot_w / n as f64;
    let bar_w = (slot * 0.72).max(1.0);
    let mut svg = String::new();
    let bars = totals.iter().filter(|t| **t > 0).count();
    let _ = write!(
        svg,
        r#"<svg id="{id}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" aria-label="{t}" data-bars="{bars}" style="max-width:{WIDTH}px;height:auto;display:block"><title>{t}</title>"#,
        t = escape(title)
    );
    // Grid lines and y labels at 0, max/2, max.
    for step in 0..=2u64 {
        let v = max * step / 2;
        let y = TOP + plot_h - plot_h * step as f64 / 2.0;
        let _ = write!(
            svg,
            r#"<line x1="{LEFT}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" stroke="{AXIS}" stroke-opacity="0.35" stroke-width="1"/><text x="{lx}" y="{ty:.1}" font-size="11" text-anchor="end" fill="{AXIS}" font-family="sans-serif">{v}</text>"#,
            x2 = WIDTH - RIGHT,
            lx = LEFT - 6.0,
            ty = y + 4.0
        );
    }
    for (i, label) in labels.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar_w) / 2.0;
        let mut y = TOP + plot_h;
        for s in series {
            let v = s.values.get(i).copied().unwrap_or(0);
            if v == 0 || max == 0 {
                continue;
            }
            let h = plot_h * v as f64 / max as f64;
            y -= h;
            let _ = write!(
                svg,
                r#"<rect class="bar {cls}" x="{x:.1}" y="{y:.1}" width="{bar_w:.1}" height="{h:.1}" fill="{color}"><title>{label}: {v} {name}</title></rect>"#,
                cls = s.class,
                color = s.color,
                label = escape(label),
                name = escape(s.name)
            );
        }
        // Every third label, so they do not overlap.
        if i % 3 == 0 {
            let _ = write!(
                svg,
                r#"<text x="{cx:.1}" y="{ly:.1}" font-size="11" text-anchor="middle" fill="{AXIS}" font-family="sans-serif">{l}</text>"#,
                cx = x + bar_w / 2.0,
                ly = TOP + plot_h + 14.0,
                l = escape(label)
            );
        }
    }
    // Legend.
    let mut lx = LEFT;
    let ly = HEIGHT - 10.0;
    for s in series {
        let _ = write!(
            svg,
            r#"<rect x="{lx:.1}" y="{ry:.1}" width="10" height="10" fill="{c}"/><text x="{tx:.1}" y="{ly:.1}" font-size="12" fill="{AXIS}" font-family="sans-serif">{name}</text>"#,
            ry = ly - 9.0,
            c = s.color,
            tx = lx + 14.0,
            name = escape(s.name)
        );
        lx += 24.0 + 7.0 * s.name.len() as f64;
    }
    svg.push_str("</svg>");
    svg
}

/// The axis maximum: the smallest of 1, 2, 5 × 10^k at or above `v` (at least 1).
fn nice_max(v: u64) -> u64 {
    let mut base = 1u64;
    loop {
        for m in [1, 2, 5] {
            if let Some(candidate) = base.checked_mul(m) {
                if candidate >= v {
                    return candidate;
                }
            }
        }
        match base.checked_mul(10) {
            Some(b) => base = b,
            None => return u64::MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_maxima_are_round() {
        assert_eq!([0, 1, 3, 7, 10, 11, 99, 101].map(nice_max), [1, 1, 5, 10, 10, 20, 100, 200]);
    }

    #[test]
    fn bars_stack_and_labels_are_escaped() {
        let labels: Vec<String> = vec!["<0>".into(), "1".into()];
        let svg = stacked_bars(
            "c",
            "t & t",
            &labels,
            &[
                Series { name: "ok", class: "s-ok", color: "#0a0", values: vec![2, 0] },
                Series { name: "bad", class: "s-bad", color: "#a00", values: vec![1, 0] },
            ],
        );
        assert_eq!(svg.matches("<rect class=\"bar").count(), 2, "{svg}");
        assert!(svg.contains("data-bars=\"1\"") && svg.contains("&lt;0&gt;") && svg.contains("t &amp; t"));
        assert!(!svg.contains("<0>"));
    }
}
