//! `--plot FILE.svg`: latency by percentile, the way HdrHistogram's
//! plotter draws it: the percentile axis is logarithmic in 1/(1-p), so
//! 90%, 99%, 99.9%, 99.99% are evenly spaced and the tail is as wide as the
//! body; latency in milliseconds on a linear axis. A small SVG writer of
//! our own (no plotting crate): axes, grid, one polyline per series, a
//! legend.
//!
//! Self-contained (std and hdrhistogram only): tools/vs-etcd includes this
//! file by path.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

const W: f64 = 800.0;
const H: f64 = 480.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 40.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;
const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// One line of the plot: its name and its histogram (microseconds).
pub struct Series<'a> {
    pub name: String,
    pub hist: &'a Histogram<u64>,
}

/// Where a quantile sits on the x axis: decades of 1/(1-q).
fn decades(q: f64, max: f64) -> f64 {
    if q >= 1.0 {
        max
    } else {
        (1.0 / (1.0 - q)).log10().min(max)
    }
}

/// A "nice" axis top at or above `v` (1, 2 or 5 times a power of ten).
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The SVG document: `title` above, `subtitle` (the run's shape) under it.
/// Empty series are drawn as legend entries only.
pub fn svg(title: &str, subtitle: &str, series: &[Series<'_>]) -> String {
    // The axis reaches the decade the largest sample count can resolve
    // (p99.99 needs 10,000 samples), at least 99% and at most 99.9999%.
    let most = series.iter().map(|s| s.hist.len()).max().unwrap_or(0);
    let x_max = ((most.max(1) as f64).log10().ceil()).clamp(2.0, 6.0);
    let y_top_ms = nice_ceiling(
        series
            .iter()
            .map(|s| s.hist.max() as f64 / 1e3)
            .fold(0.0, f64::max),
    );
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let x = |d: f64| LEFT + d / x_max * pw;
    let y = |ms: f64| TOP + ph - (ms / y_top_ms) * ph;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="20" text-anchor="middle" font-size="14">{}</text><text x="{}" y="38" text-anchor="middle" font-size="11">{}</text>"#,
        W / 2.0,
        escape(title),
        W / 2.0,
        escape(subtitle)
    );
    // Vertical grid: one line per decade of the percentile axis.
    for d in 0..=x_max as u32 {
        let label = match d {
            0 => "0%".to_string(),
            _ => {
                let p = 100.0 - 100.0 / 10f64.powi(d as i32);
                format!("{p:.*}%", (d as usize).saturating_sub(2))
            }
        };
        let xd = x(f64::from(d));
        let _ = writeln!(
            s,
            r##"<line x1="{xd:.1}" y1="{TOP}" x2="{xd:.1}" y2="{:.1}" stroke="#ddd"/><text x="{xd:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            TOP + ph,
            TOP + ph + 18.0
        );
    }
    // Horizontal grid: five steps of latency.
    for k in 0..=5 {
        let ms = y_top_ms * f64::from(k) / 5.0;
        let yk = y(ms);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{yk:.1}" x2="{:.1}" y2="{yk:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + pw,
            LEFT - 6.0,
            yk + 4.0,
            trim(ms)
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">percentile</text>"#,
        LEFT + pw / 2.0,
        H - 14.0
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{:.1}" text-anchor="middle" transform="rotate(-90 16 {:.1})">latency (ms)</text>"#,
        TOP + ph / 2.0,
        TOP + ph / 2.0
    );
    for (i, se) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut pts = String::new();
        if !se.hist.is_empty() {
            for v in se.hist.iter_quantiles(5) {
                let d = decades(v.quantile_iterated_to(), x_max);
                let ms = v.value_iterated_to() as f64 / 1e3;
                let _ = write!(pts, "{:.1},{:.1} ", x(d), y(ms));
            }
        }
        if !pts.is_empty() {
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
                pts.trim_end()
            );
        }
        let ly = TOP + 16.0 + 18.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            LEFT + 12.0,
            LEFT + 36.0,
            LEFT + 42.0,
            ly + 4.0,
            escape(&se.name)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// A tick label without needless digits: "0", "2.5", "0.04".
fn trim(v: f64) -> String {
    let t = format!("{v:.3}");
    let t = t.trim_end_matches('0').trim_end_matches('.');
    t.to_string()
}
