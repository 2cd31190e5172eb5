//! Line charts as standalone SVG (training curves), written by hand: a few dozen
//! lines beat a plotting dependency.

use alloc::format;
use alloc::string::String;

/// One line of a chart.
pub struct Series<'a> {
    /// Legend label.
    pub label: &'a str,
    /// Y values at x = 1, 2, ... (NaN values are skipped).
    pub values: &'a [f64],
    /// CSS colour.
    pub color: &'a str,
}

const W: f64 = 420.0;
const H: f64 = 280.0;
const PAD: f64 = 48.0;

/// One panel (`<g>`) with axes, ticks, lines and a legend, placed at `x_offset`.
pub fn panel(title: &str, x_label: &str, series: &[Series<'_>], x_offset: f64) -> String {
    let n = series
        .iter()
        .map(|s| s.values.len())
        .max()
        .unwrap_or(0)
        .max(2);
    let finite = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .filter(|v| v.is_finite());
    let (mut lo, mut hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        hi = lo + 1.0;
    }
    let x = |i: usize| PAD + (W - 1.5 * PAD) * i as f64 / (n - 1) as f64;
    let y = |v: f64| H - PAD - (H - 1.8 * PAD) * (v - lo) / (hi - lo);
    let mut out = format!("<g transform=\"translate({x_offset},0)\">\n");
    out += &format!(
        "<text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">{title}</text>\n",
        W / 2.0
    );
    out += &format!(
        "<line x1=\"{PAD}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n<line x1=\"{PAD}\" y1=\"{}\" x2=\"{PAD}\" y2=\"{}\" stroke=\"black\"/>\n",
        H - PAD, W - PAD / 2.0, H - PAD, PAD * 0.8, H - PAD
    );
    for k in 0..=4 {
        let v = lo + (hi - lo) * k as f64 / 4.0;
        out += &format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"10\">{v:.3}</text>\n",
            PAD - 4.0,
            y(v) + 3.0
        );
    }
    out += &format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\">{x_label} (1..{n})</text>\n",
        W / 2.0,
        H - PAD / 3.0
    );
    for (k, s) in series.iter().enumerate() {
        let pts: String = s
            .values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, &v)| format!("{:.1},{:.1} ", x(i), y(v)))
            .collect();
        out += &format!(
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{pts}\"/>\n",
            s.color
        );
        out += &format!(
            "<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"{}\">{}</text>\n",
            W - 2.6 * PAD,
            PAD + 14.0 * k as f64,
            s.color,
            s.label
        );
    }
    out + "</g>\n"
}

/// A full SVG document holding the given panels side by side.
pub fn document(panels: &[String]) -> String {
    let width = W * panels.len() as f64;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{H}\" viewBox=\"0 0 {width} {H}\" font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    for p in panels {
        out += p;
    }
    out + "</svg>\n"
}
