//! Charts as inline SVG rendered on the server (no chart library, no script): bar charts (one
//! bar per label, never wider than [`MAX_BAR`], its value written over it when there are few (up to 8),
//! an optional dashed limit line — the budget —, bars over the limit marked) and line charts of
//! a series over time (one sample is a labelled point, not a block).

/// The widest a bar is drawn (SVG units): one day of usage is a bar, not a block across the chart.
pub const MAX_BAR: f64 = 48.0;
/// Up to this many bars or points, each carries its value as a label.
const LABELLED: usize = 8;

/// A chart's SVG. Labels are escaped; sizes are in the SVG's own units and scale with the page.
pub fn bars(title: &str, points: &[(String, f64)], limit: Option<f64>, unit: impl Fn(f64) -> String) -> String {
    const W: f64 = 640.0;
    const H: f64 = 220.0;
    const LEFT: f64 = 90.0;
    const BOTTOM: f64 = 40.0;
    // Room above the tallest bar for its value.
    const TOP: f64 = 30.0;
    let max = points.iter().map(|(_, v)| *v).chain(limit).fold(0.0_f64, f64::max);
    let scale = if max > 0.0 { (H - BOTTOM - TOP) / max } else { 0.0 };
    let n = points.len().max(1) as f64;
    let slot = (W - LEFT - 10.0) / n;
    let bar = (slot * 0.7).clamp(1.0, MAX_BAR);
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">",
        escape(title)
    );
    let base = H - BOTTOM;
    svg.push_str(&format!("<line class=\"axis\" x1=\"{LEFT}\" y1=\"{base}\" x2=\"{W}\" y2=\"{base}\"/>"));
    svg.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
        LEFT - 6.0,
        TOP + 4.0,
        escape(&unit(max))
    ));
    svg.push_str(&format!("<text x=\"{}\" y=\"{base}\" text-anchor=\"end\">{}</text>", LEFT - 6.0, escape(&unit(0.0))));
    // Every label when they fit (a phone draws them larger), else about five of them.
    let every = if points.len() <= 5 { 1 } else { points.len().div_ceil(5) };
    for (i, (label, v)) in points.iter().enumerate() {
        let h = v * scale;
        let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
        let over = limit.is_some_and(|l| l > 0.0 && *v > l);
        svg.push_str(&format!(
            "<rect class=\"{}\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\"><title>{}: {}</title></rect>",
            if over { "bar over" } else { "bar" },
            base - h,
            escape(label),
            escape(&unit(*v))
        ));
        if points.len() <= LABELLED {
            svg.push_str(&format!(
                "<text class=\"value\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                x + bar / 2.0,
                base - h - 6.0,
                escape(&unit(*v))
            ));
        }
        if i % every == 0 {
            // As much of the label's end as fits its share of the axis (a phone's text is ~11 units a letter).
            let fit = ((slot * every as f64) / 11.0).floor().max(4.0) as usize;
            let chars: Vec<char> = label.chars().collect();
            let short: String = if chars.len() <= fit {
                label.clone()
            } else {
                std::iter::once('…').chain(chars[chars.len() - (fit - 1)..].iter().copied()).collect()
            };
            svg.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                x + bar / 2.0,
                base + 16.0,
                escape(&short)
            ));
        }
    }
    if let Some(l) = limit.filter(|l| *l > 0.0) {
        let y = base - l * scale;
        svg.push_str(&format!("<line class=\"limit\" x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{W}\" y2=\"{y:.1}\"/>"));
        svg.push_str(&format!(
            "<text x=\"{W}\" y=\"{:.1}\" text-anchor=\"end\">budget {}</text>",
            // Under the line when it is near the top, so the label is not cut off.
            if y < TOP + 20.0 { y + 18.0 } else { y - 6.0 },
            escape(&unit(l))
        ));
    }
    if points.is_empty() {
        svg.push_str(&format!("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">no usage yet</text>", W / 2.0, H / 2.0));
    }
    svg.push_str("</svg>");
    svg
}

/// A line chart of `points` (label — a time —, value) in order, on an axis from 0 to a little
/// above the largest value: no point draws `empty`, one point is a dot with its value, more are
/// a line with a dot per point and the last value written beside the last dot.
pub fn line(title: &str, points: &[(String, f64)], unit: impl Fn(f64) -> String, empty: &str) -> String {
    const W: f64 = 640.0;
    const H: f64 = 200.0;
    const LEFT: f64 = 90.0;
    const RIGHT: f64 = 80.0;
    const BOTTOM: f64 = 36.0;
    const TOP: f64 = 14.0;
    let latest = points.last().map(|(_, v)| format!(", latest {}", unit(*v))).unwrap_or_default();
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}{}\" xmlns=\"http://www.w3.org/2000/svg\">",
        escape(title),
        escape(&latest)
    );
    let base = H - BOTTOM;
    svg.push_str(&format!("<line class=\"axis\" x1=\"{LEFT}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\"/>", W - RIGHT));
    if points.is_empty() {
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text></svg>",
            W / 2.0,
            H / 2.0,
            escape(empty)
        ));
        return svg;
    }
    // A little above the largest value; all zero: an axis of 0 to 1, the line on the floor.
    let top = match points.iter().map(|(_, v)| *v).fold(0.0_f64, f64::max) {
        max if max > 0.0 => max * 1.25,
        _ => 1.0,
    };
    let scale = (base - TOP) / top;
    svg.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
        LEFT - 6.0,
        TOP + 4.0,
        escape(&unit(top))
    ));
    svg.push_str(&format!("<text x=\"{}\" y=\"{base}\" text-anchor=\"end\">{}</text>", LEFT - 6.0, escape(&unit(0.0))));
    let width = W - LEFT - RIGHT;
    let xy: Vec<(f64, f64)> = points
        .iter()
        .enumerate()
        .map(|(i, (_, v))| {
            let x = if points.len() == 1 {
                LEFT + width / 2.0
            } else {
                LEFT + width * i as f64 / (points.len() - 1) as f64
            };
            (x, base - v * scale)
        })
        .collect();
    if xy.len() > 1 {
        let path: Vec<String> = xy.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        svg.push_str(&format!("<polyline class=\"series\" points=\"{}\"/>", path.join(" ")));
    }
    for (i, ((label, v), (x, y))) in points.iter().zip(&xy).enumerate() {
        let last = i + 1 == points.len();
        let r = if last || points.len() <= LABELLED { 4.0 } else { 2.0 };
        svg.push_str(&format!(
            "<circle class=\"dot\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{r}\"><title>{}: {}</title></circle>",
            escape(label),
            escape(&unit(*v))
        ));
        if last {
            svg.push_str(&format!(
                "<text class=\"value\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{}\">{}</text>",
                if points.len() == 1 { *x } else { x + 8.0 },
                if points.len() == 1 { y - 10.0 } else { y + 4.0 },
                if points.len() == 1 { "middle" } else { "start" },
                escape(&unit(*v))
            ));
        }
    }
    // The first and the last time under the axis (one point: its time under it).
    let (first, last) = (&points[0].0, &points[points.len() - 1].0);
    if points.len() == 1 {
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            xy[0].0,
            base + 16.0,
            escape(first)
        ));
    } else {
        svg.push_str(&format!(
            "<text x=\"{LEFT}\" y=\"{:.1}\" text-anchor=\"start\">{}</text>",
            base + 16.0,
            escape(first)
        ));
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            base + 16.0,
            escape(last)
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// Text safe inside SVG/HTML text and attributes.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_escape_labels_mark_the_budget_and_those_over_it() {
        let points = vec![("<b>".to_owned(), 1.0), ("2026-12-02".to_owned(), 3.0)];
        let svg = bars("Cost", &points, Some(2.0), |v| format!("${v:.2}"));
        assert!(svg.contains("&lt;b&gt;"), "{svg}");
        assert!(!svg.contains("<b>"), "{svg}");
        assert!(svg.contains("class=\"limit\""), "{svg}");
        assert_eq!(svg.matches("bar over").count(), 1, "{svg}");
        assert!(svg.contains("budget $2.00"), "{svg}");
        let empty = bars("Cost", &[], None, |v| format!("{v}"));
        assert!(empty.contains("no usage yet"));
    }

    fn widths(svg: &str) -> Vec<f64> {
        svg.split("width=\"").skip(1).filter_map(|w| w.split('"').next()?.parse().ok()).collect()
    }

    #[test]
    fn one_bar_is_a_bar_with_its_value_not_a_block() {
        let one = bars("Cost", &[("2026-12-03".to_owned(), 2.5)], None, |v| format!("${v:.2}"));
        assert!(widths(&one).iter().all(|w| *w <= MAX_BAR), "{one}");
        assert!(one.contains("class=\"value\"") && one.contains("$2.50</text>"), "the value is written: {one}");
        let many: Vec<(String, f64)> = (0..30).map(|i| (format!("d{i}"), f64::from(i))).collect();
        let svg = bars("Cost", &many, None, |v| format!("{v}"));
        assert_eq!(svg.matches("class=\"bar\"").count(), 30);
        assert!(!svg.contains("class=\"value\""), "30 bars: values only on hover");
    }

    #[test]
    fn a_line_of_no_one_or_many_samples() {
        let none = line("Shard 0", &[], |v| format!("{v:.0} ms"), "No heartbeat measured yet.");
        assert!(none.contains("No heartbeat measured yet.") && !none.contains("<circle"), "{none}");
        let one = line("Shard 0", &[("12:00:00".to_owned(), 42.0)], |v| format!("{v:.0} ms"), "none");
        assert_eq!(one.matches("<circle").count(), 1, "{one}");
        assert!(!one.contains("<polyline") && !one.contains("<rect"), "one sample is a point: {one}");
        assert!(one.contains(">42 ms</text>") && one.contains("12:00:00"), "{one}");
        assert!(one.contains("aria-label=\"Shard 0, latest 42 ms\""), "{one}");
        let many: Vec<(String, f64)> = (0..60).map(|i| (format!("12:{i:02}"), 40.0 + f64::from(i % 7))).collect();
        let svg = line("Shard 0", &many, |v| format!("{v:.0} ms"), "none");
        assert_eq!(svg.matches("<circle").count(), 60);
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(svg.contains("12:00") && svg.contains("12:59"), "the first and last time: {svg}");
        assert_eq!(svg.matches("class=\"value\"").count(), 1, "only the latest value is written");
        let zero = line("Shard 0", &[("a".to_owned(), 0.0), ("b".to_owned(), 0.0)], |v| format!("{v:.0} ms"), "none");
        assert!(zero.contains(">1 ms</text>") && !zero.contains("NaN"), "all zero: an axis to 1: {zero}");
    }
}
