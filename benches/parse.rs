//! Per-record cost of parsing: a FastF1 CSV row (the real race's first 100,000 rows) and a
//! telemetry JSON message.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use pitwall::format::messages::{parse_telemetry, TelemetryMessage};
use pitwall::ingest::RecordSource;
use pitwall::source::fastf1::CsvFile;
use std::io::{BufRead, Write};
use std::path::Path;

fn parse(c: &mut Criterion) {
    let race = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/monaco-2023/monaco_2023_race.csv.gz");
    let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&race).expect("the real race in ../shared/data"),
    ));
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("race.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
    let rows = 100_000;
    for line in reader.lines().take(rows + 1) {
        writeln!(out, "{}", line.unwrap()).unwrap();
    }
    drop(out);

    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(rows as u64));
    g.bench_function("fastf1_csv_row", |b| {
        b.iter(|| {
            let mut f = CsvFile::open(&csv, None, None, Default::default()).unwrap();
            let mut buf = Vec::with_capacity(4096);
            let mut n = 0;
            while f.fill(&mut buf, 4096) {
                n += buf.len();
                buf.clear();
            }
            n + buf.len()
        })
    });
    let mut items = Vec::new();
    let mut f = CsvFile::open(&csv, None, None, Default::default()).unwrap();
    while f.fill(&mut items, 4096) {}
    let messages: Vec<Vec<u8>> = items
        .iter()
        .filter_map(|i| match i {
            pitwall_dataflows::Ingest::Record(s) => {
                Some(serde_json::to_vec(&TelemetryMessage::new(s, 0)).unwrap())
            }
            _ => None,
        })
        .collect();
    g.throughput(Throughput::Elements(messages.len() as u64));
    g.bench_function("telemetry_json_message", |b| {
        b.iter(|| {
            messages
                .iter()
                .filter(|m| parse_telemetry(black_box(m)).is_ok())
                .count()
        })
    });
    g.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
