//! A bench run's rows as a console table, a CSV and an SVG bar chart.

use super::Row;
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
pub fn write_results(dir: &Path, name: &str, rows: &[Row]) -> Result<(PathBuf, PathBuf), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let csv_path = dir.join(format!("{name}.csv"));
    let mut w = csv::Writer::from_path(&csv_path).map_err(|e| e.to_string())?;
    for r in rows {
        w.serialize(r).map_err(|e| e.to_string())?;
    }
    w.flush().map_err(|e| e.to_string())?;
    let svg_path = dir.join(format!("{name}.svg"));
    std::fs::File::create(&svg_path)
        .and_then(|mut f| f.write_all(svg(name, rows).as_bytes()))
        .map_err(|e| e.to_string())?;
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
fn svg(title: &str, rows: &[Row]) -> String {
    let title = xml_escape(title);
    let (w, h, left, bottom, top) = (640.0, 360.0, 70.0, 60.0, 40.0);
    let max = rows
        .iter()
        .map(|r| r.records_per_second)
        .fold(1.0, f64::max);
    let slot = (w - left - 20.0) / rows.len().max(1) as f64;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<text x="{}" y="22" text-anchor="middle" font-size="15">pitwall bench: {title}</text>
<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="black"/>
<line x1="{left}" y1="{top}" x2="{left}" y2="{}" stroke="black"/>
<text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">records/s</text>
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
        s += &format!(
            r#"<text x="{}" y="{}" text-anchor="end">{:.0}k</text>"#,
            left - 6.0,
            y + 4.0,
            v / 1000.0
        );
        s += "\n";
    }
    for (i, r) in rows.iter().enumerate() {
        let bh = (h - bottom - top) * r.records_per_second / max;
        let x = left + slot * i as f64 + slot * 0.2;
        let y = h - bottom - bh;
        s += &format!(
            r##"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{bh:.1}" fill="#3b7dd8"/>
<text x="{:.1}" y="{:.1}" text-anchor="middle">{:.0}k/s{}</text>
<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>
"##,
            slot * 0.6,
            x + slot * 0.3,
            y - 6.0,
            r.records_per_second / 1000.0,
            if r.efficiency.is_finite() {
                format!(", eff {:.2}", r.efficiency)
            } else {
                String::new()
            },
            x + slot * 0.3,
            h - bottom + 18.0,
            xml_escape(&r.scenario)
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
