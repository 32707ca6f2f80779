//! A bench run's rows as a console table, a CSV and an SVG bar chart.

use super::{BenchError, Row};
use std::io::Write;
use std::path::{Path, PathBuf};

pub fn print_table(rows: &[Row]) {
    println!(
        "{:<12} {:>7} {:>10} {:>8} {:>12} {:>12} {:>6} {:>8} {:>8} {:>8} {:>8}",
        "scenario",
        "workers",
        "records",
        "seconds",
        "records/s",
        "per worker",
        "eff.",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "RSS MB"
    );
    for r in rows {
        println!(
            "{:<12} {:>7} {:>10} {:>8.3} {:>12.0} {:>12.0} {:>6.2} {:>8.2} {:>8.2} {:>8.2} {:>8.1}",
            r.scenario,
            r.workers,
            r.records,
            r.seconds,
            r.records_per_second,
            r.records_per_second_per_worker,
            r.efficiency,
            r.latency_p50_ms,
            r.latency_p95_ms,
            r.latency_p99_ms,
            r.peak_rss_mb
        );
    }
}

/// Writes `<dir>/<name>.csv` and `<dir>/<name>.svg`; returns their paths.
pub fn write_results(
    dir: &Path,
    name: &str,
    rows: &[Row],
) -> Result<(PathBuf, PathBuf), BenchError> {
    write_csv_and_chart(dir, name, rows, "records/s", &bars_of(rows))
}

/// One bar of a chart: its label under it, its height, the text above it.
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub note: String,
    /// An SVG colour: scenarios side by side (pitwall and a peer) tell themselves apart by it.
    pub color: &'static str,
}

/// pitwall's bars (the peers' have their own colour).
pub const PITWALL_COLOR: &str = "#3b7dd8";

/// Writes any scenario's rows as `<dir>/<name>.csv` (one line per row, the fields as columns)
/// and `bars` as `<dir>/<name>.svg`; returns their paths.
pub fn write_csv_and_chart<T: serde::Serialize>(
    dir: &Path,
    name: &str,
    rows: &[T],
    unit: &str,
    bars: &[Bar],
) -> Result<(PathBuf, PathBuf), BenchError> {
    std::fs::create_dir_all(dir).map_err(BenchError::file(dir))?;
    let csv_path = dir.join(format!("{name}.csv"));
    let csv_error = |source| BenchError::Csv {
        path: csv_path.clone(),
        source,
    };
    let mut w = csv::Writer::from_path(&csv_path).map_err(csv_error)?;
    for r in rows {
        w.serialize(r).map_err(csv_error)?;
    }
    w.flush().map_err(BenchError::file(&csv_path))?;
    let svg_path = dir.join(format!("{name}.svg"));
    std::fs::File::create(&svg_path)
        .and_then(|mut f| f.write_all(chart(name, unit, bars).as_bytes()))
        .map_err(BenchError::file(&svg_path))?;
    Ok((csv_path, svg_path))
}

/// Text for an SVG (XML) text node or attribute: `&`, `<`, `>` and quotes escaped.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Bars of records/s per scenario, with the efficiency written above each.
fn bars_of(rows: &[Row]) -> Vec<Bar> {
    rows.iter()
        .map(|r| Bar {
            label: r.scenario.clone(),
            value: r.records_per_second,
            note: format!(
                "{:.0}k/s{}",
                r.records_per_second / 1000.0,
                if r.efficiency.is_finite() {
                    format!(", eff {:.2}", r.efficiency)
                } else {
                    String::new()
                }
            ),
            color: PITWALL_COLOR,
        })
        .collect()
}

#[cfg(test)]
fn svg(title: &str, rows: &[Row]) -> String {
    chart(title, "records/s", &bars_of(rows))
}

/// A bar chart: `unit` up the axis, each bar's note above it and its label below.
fn chart(title: &str, unit: &str, bars: &[Bar]) -> String {
    let title = xml_escape(title);
    let unit = xml_escape(unit);
    let (w, h, left, bottom, top) = (640.0, 360.0, 70.0, 60.0, 40.0);
    let max = bars
        .iter()
        .map(|b| b.value)
        .filter(|v| v.is_finite())
        .fold(1.0, f64::max);
    let slot = (w - left - 20.0) / bars.len().max(1) as f64;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<text x="{}" y="22" text-anchor="middle" font-size="15">pitwall bench: {title}</text>
<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="black"/>
<line x1="{left}" y1="{top}" x2="{left}" y2="{}" stroke="black"/>
<text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">{unit}</text>
"#,
        w / 2.0,
        h - bottom,
        w - 10.0,
        h - bottom,
        h - bottom,
        (h - bottom + top) / 2.0,
        (h - bottom + top) / 2.0
    );
    for i in 0..=4 {
        let v = max * i as f64 / 4.0;
        let y = h - bottom - (h - bottom - top) * i as f64 / 4.0;
        // Thousands as `k` (records/s); smaller scales (requests/s) as they are.
        let tick = if max >= 10_000.0 {
            format!("{:.0}k", v / 1000.0)
        } else {
            format!("{v:.0}")
        };
        s += &format!(
            r#"<text x="{}" y="{}" text-anchor="end">{tick}</text>"#,
            left - 6.0,
            y + 4.0,
        );
        s += "\n";
    }
    for (i, b) in bars.iter().enumerate() {
        let value = if b.value.is_finite() { b.value } else { 0.0 };
        let bh = (h - bottom - top) * value / max;
        let x = left + slot * i as f64 + slot * 0.2;
        let y = h - bottom - bh;
        s += &format!(
            r##"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{bh:.1}" fill="{}"/>
<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>
<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>
"##,
            slot * 0.6,
            xml_escape(b.color),
            x + slot * 0.3,
            y - 6.0,
            xml_escape(&b.note),
            x + slot * 0.3,
            h - bottom + 18.0,
            xml_escape(&b.label)
        );
    }
    s + "</svg>\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_in_the_svg() {
        let row = Row {
            scenario: "-w 1 <a&b>".into(),
            ..Default::default()
        };
        let svg = svg("a&b \"<c>\"", &[row]);
        assert!(
            svg.contains("pitwall bench: a&amp;b &quot;&lt;c&gt;&quot;"),
            "{svg}"
        );
        assert!(svg.contains(">-w 1 &lt;a&amp;b&gt;<"), "{svg}");
        // Every `&` starts an entity, and no text holds a raw `<`.
        for (i, _) in svg.match_indices('&') {
            let rest = &svg[i..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                    .iter()
                    .any(|e| rest.starts_with(e)),
                "raw & at {i}: {svg}"
            );
        }
        for text in svg.split("</text>") {
            let inner = text.rsplit_once('>').map_or("", |(_, t)| t);
            assert!(!inner.contains('<'), "{inner}");
        }
    }
}
