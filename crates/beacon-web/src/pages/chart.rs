//! Bar charts as inline SVG rendered on the server (no chart library, no script): one bar per
//! label, an optional dashed limit line (the budget), bars over the limit marked.

/// A chart's SVG. Labels are escaped; sizes are in the SVG's own units and scale with the page.
pub fn bars(title: &str, points: &[(String, f64)], limit: Option<f64>, unit: impl Fn(f64) -> String) -> String {
    const W: f64 = 640.0;
    const H: f64 = 220.0;
    const LEFT: f64 = 70.0;
    const BOTTOM: f64 = 40.0;
    const TOP: f64 = 14.0;
    let max = points.iter().map(|(_, v)| *v).chain(limit).fold(0.0_f64, f64::max);
    let scale = if max > 0.0 { (H - BOTTOM - TOP) / max } else { 0.0 };
    let n = points.len().max(1) as f64;
    let slot = (W - LEFT - 10.0) / n;
    let bar = (slot * 0.7).max(1.0);
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
    // Every label when they fit, else about eight of them.
    let every = (points.len() / 8).max(1);
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
        if i % every == 0 {
            let short: String = label.chars().rev().take(10).collect::<Vec<_>>().into_iter().rev().collect();
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
            y - 4.0,
            escape(&unit(l))
        ));
    }
    if points.is_empty() {
        svg.push_str(&format!("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">no usage yet</text>", W / 2.0, H / 2.0));
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
}
