//! A merged file dealt to the workers by driver (`MergedFile`) gives exactly what the
//! sequential reader (`CsvFile`) gives: each driver's records in the same order, on one worker
//! only, the same dead letters (line, reason, field, raw text) and the same row counts, for
//! any number of workers and processes; and drivers are spread evenly over the workers.
//! Checked on random files of real rows of the 2023 race, spoiled, quoted, blank, CRLF.

mod common;

use common::real_rows;
use pitwall::ingest::{RecordSource, SourceStats};
use pitwall::source::fastf1::{CsvFile, MergedFile};
use pitwall_dataflows::{DriverId, Ingest, Telemetry};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// One line of a generated file.
#[derive(Clone, Debug)]
enum Line {
    Good(usize),
    /// A field replaced (column, value): most make a dead letter.
    Spoiled(usize, usize, &'static str),
    /// Every field quoted: the same record.
    Quoted(usize),
    /// A quoted field with a newline in it: a dead letter on the line it starts on.
    QuotedNewline(usize, usize),
    WrongWidth(usize, bool),
    Blank(&'static str),
}

/// Values that spoil a field (some are driver codes too).
const SPOILS: [&str; 13] = [
    "", "abc", "-5", "1.5", "99999", "NaN", "inf", "V E R", "1e2", "+7", ".5", "007", "\"\"",
];

fn line() -> impl Strategy<Value = Line> {
    let value = prop::sample::select(SPOILS.to_vec());
    prop_oneof![
        12 => (0..3000usize).prop_map(Line::Good),
        3 => (0..3000usize, 0..11usize, value).prop_map(|(i, c, v)| Line::Spoiled(i, c, v)),
        1 => (0..3000usize).prop_map(Line::Quoted),
        1 => (0..3000usize, 0..11usize).prop_map(|(i, c)| Line::QuotedNewline(i, c)),
        1 => (0..3000usize, any::<bool>()).prop_map(|(i, more)| Line::WrongWidth(i, more)),
        1 => prop::sample::select(vec!["", "  ", "\t", "\"\""]).prop_map(Line::Blank),
    ]
}

fn render(l: &Line) -> String {
    let rows = &real_rows().1;
    let fields = |i: usize| rows[i].split(',').map(str::to_string).collect::<Vec<_>>();
    match l {
        Line::Good(i) => rows[*i].clone(),
        Line::Spoiled(i, c, v) => {
            let mut f = fields(*i);
            f[*c] = v.to_string();
            f.join(",")
        }
        Line::Quoted(i) => fields(*i)
            .iter()
            .map(|f| format!("\"{f}\""))
            .collect::<Vec<_>>()
            .join(","),
        Line::QuotedNewline(i, c) => {
            let mut f = fields(*i);
            f[*c] = format!("\"{}\n{}\"", f[*c], f[*c]);
            f.join(",")
        }
        Line::WrongWidth(i, more) => {
            let mut f = fields(*i);
            if *more {
                f.push("7".into());
            } else {
                f.pop();
            }
            f.join(",")
        }
        Line::Blank(b) => b.to_string(),
    }
}

/// A dead letter as a comparable tuple.
type Dead = (u64, String, Option<String>, String, Vec<u8>);

fn dead(item: &Ingest) -> Option<Dead> {
    match item {
        Ingest::Dead(d) => Some((
            d.position,
            d.reason.clone(),
            d.field.clone(),
            d.detail.clone(),
            d.raw.clone(),
        )),
        _ => None,
    }
}

struct Dealt {
    /// Per global worker, what it was given.
    workers: Vec<Vec<Ingest>>,
    /// Per process: rows and rows left out, as its summary would say.
    counts: Vec<(u64, u64)>,
    /// Per process, the worker each of these drivers was placed on.
    placed: Vec<Vec<Option<usize>>>,
}

/// Every driver code a generated file can have: the real rows' and the spoils that are codes.
fn all_drivers() -> Vec<DriverId> {
    let mut d: Vec<DriverId> = real_rows()
        .1
        .iter()
        .map(|r| DriverId::new(r.split(',').nth(2).expect("a Driver")).expect("a code"))
        .chain(SPOILS.iter().filter_map(|v| DriverId::new(v).ok()))
        .collect();
    d.sort();
    d.dedup();
    d
}

/// Deals `path` to `processes` × `per` workers, every process with its own reader.
fn deal(path: &Path, filter: Option<&HashSet<DriverId>>, processes: usize, per: usize) -> Dealt {
    let peers = processes * per;
    let mut sources = Vec::new();
    let mut stats = Vec::new();
    let mut files = Vec::new();
    for p in 0..processes {
        let s = Arc::new(SourceStats::default());
        let file = Arc::new(
            MergedFile::new(path, filter.map(|f| Arc::new(f.clone())), s.clone()).expect("opens"),
        );
        for w in p * per..(p + 1) * per {
            sources.push(file.open(w, peers, p * per..(p + 1) * per).expect("opens"));
        }
        stats.push(s);
        files.push(file);
    }
    let mut workers: Vec<Vec<Ingest>> = (0..peers).map(|_| Vec::new()).collect();
    let mut open: Vec<bool> = vec![true; peers];
    while open.iter().any(|&o| o) {
        for (w, src) in sources.iter_mut().enumerate() {
            if open[w] {
                open[w] = src.fill(&mut workers[w], 97);
            }
        }
    }
    let counts = stats
        .iter()
        .map(|s| {
            (
                s.rows.load(Ordering::Relaxed),
                s.filtered.load(Ordering::Relaxed),
            )
        })
        .collect();
    let placed = files
        .iter()
        .map(|f| {
            all_drivers()
                .into_iter()
                .map(|d| f.placement().worker_of(d))
                .collect()
        })
        .collect();
    Dealt {
        workers,
        counts,
        placed,
    }
}

fn by_driver<'a>(items: impl Iterator<Item = &'a Ingest>) -> BTreeMap<DriverId, Vec<Telemetry>> {
    let mut out: BTreeMap<DriverId, Vec<Telemetry>> = BTreeMap::new();
    for item in items {
        if let Ingest::Record(s) = item {
            out.entry(s.driver).or_default().push(*s);
        }
    }
    out
}

fn check(
    text: &[u8],
    gzip: bool,
    filter: Option<HashSet<DriverId>>,
    processes: usize,
    per: usize,
) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir
        .path()
        .join(if gzip { "race.csv.gz" } else { "race.csv" });
    let bytes = if gzip {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text).expect("gzip");
        gz.finish().expect("gzip")
    } else {
        text.to_vec()
    };
    std::fs::write(&path, bytes).expect("written");

    let stats = Arc::new(SourceStats::default());
    let mut file = CsvFile::open(&path, None, filter.clone().map(Arc::new), stats.clone())
        .expect("the real header");
    let mut sequential = Vec::new();
    while file.fill(&mut sequential, 4096) {}
    let want_counts = (
        stats.rows.load(Ordering::Relaxed),
        stats.filtered.load(Ordering::Relaxed),
    );

    let dealt = deal(&path, filter.as_ref(), processes, per);
    for counts in &dealt.counts {
        prop_assert_eq!(
            *counts,
            want_counts,
            "rows, left out: every process counts all"
        );
    }
    // Each driver's records, in order, all on one worker.
    let want = by_driver(sequential.iter());
    let mut got = BTreeMap::new();
    for (w, items) in dealt.workers.iter().enumerate() {
        let mine = by_driver(items.iter());
        for (driver, records) in mine {
            prop_assert!(
                got.insert(driver, records).is_none(),
                "{} was given to two workers (the second: {})",
                driver,
                w
            );
        }
    }
    prop_assert_eq!(&got, &want);
    // Every process placed every driver alike, each record's driver where it was analysed,
    // and the placement is balanced: the k-th driver met on worker k mod n.
    for placed in &dealt.placed {
        prop_assert_eq!(placed, &dealt.placed[0]);
    }
    let drivers = all_drivers();
    for (w, items) in dealt.workers.iter().enumerate() {
        for driver in by_driver(items.iter()).keys() {
            let i = drivers.binary_search(driver).expect("a known driver");
            prop_assert_eq!(dealt.placed[0][i], Some(w));
        }
    }
    let mut per_worker = vec![0usize; dealt.workers.len()];
    for w in dealt.placed[0].iter().flatten() {
        per_worker[*w] += 1;
    }
    let (most, least) = (
        per_worker.iter().max().copied().unwrap_or(0),
        per_worker.iter().min().copied().unwrap_or(0),
    );
    prop_assert!(most - least <= 1, "{:?}", per_worker);
    // The same dead letters, each once.
    let mut want_dead: Vec<Dead> = sequential.iter().filter_map(dead).collect();
    let mut got_dead: Vec<Dead> = dealt.workers.iter().flatten().filter_map(dead).collect();
    want_dead.sort();
    got_dead.sort();
    prop_assert_eq!(got_dead, want_dead);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_dealt_file_gives_what_the_sequential_reader_gives(
        lines in prop::collection::vec(line(), 0..400),
        crlf in any::<bool>(),
        last_newline in any::<bool>(),
        gzip in any::<bool>(),
        keep in prop::option::of(prop::collection::hash_set(
            prop::sample::select(vec!["VER", "HAM", "LEC", "SAI", "ALO", "PER", "OCO"]), 1..4)),
        processes in 1usize..=2,
        per in 1usize..=3,
    ) {
        let newline = if crlf { "\r\n" } else { "\n" };
        let mut text = real_rows().0.clone();
        for l in &lines {
            text.push_str(newline);
            text.push_str(&render(l));
        }
        if last_newline {
            text.push_str(newline);
        }
        let filter = keep.map(|k| k.iter().map(|d| DriverId::new(d).expect("a code")).collect());
        check(text.as_bytes(), gzip, filter, processes, per)?;
    }
}

#[test]
fn the_real_race_splits_ten_and_ten_with_the_same_records() {
    let path = common::race();
    let stats = Arc::new(SourceStats::default());
    let mut file = CsvFile::open(&path, None, None, stats).expect("the real race");
    let mut sequential = Vec::new();
    while file.fill(&mut sequential, 4096) {}
    let dealt = deal(&path, None, 1, 2);
    let per_worker: Vec<usize> = dealt
        .workers
        .iter()
        .map(|items| by_driver(items.iter()).len())
        .collect();
    assert_eq!(per_worker, [10, 10]);
    assert_eq!(dealt.counts, [(513_360, 0)]);
    let mut got = BTreeMap::new();
    for items in &dealt.workers {
        got.extend(by_driver(items.iter()));
    }
    assert_eq!(got, by_driver(sequential.iter()));
}

#[test]
fn a_truncated_gzip_ends_with_the_same_dead_letter() {
    let mut text = String::from("Date,Driver,RPM,Speed,nGear,Throttle,Brake,DRS\n");
    for i in 0..20_000 {
        text.push_str(&format!(
            "2023-05-28T13:01:{:02}.{:03},{},{},{},5,80,0,1\n",
            i / 1000 % 60,
            i % 1000,
            ["HAM", "VER", "LEC"][i % 3],
            9000 + i % 997,
            150 + i % 89
        ));
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).expect("gzip");
    let bytes = gz.finish().expect("gzip");
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("cut.csv.gz");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("written");

    let mut file = CsvFile::open(&path, None, None, Arc::default()).expect("a header");
    let mut sequential = Vec::new();
    while file.fill(&mut sequential, 4096) {}
    let dealt = deal(&path, None, 1, 2);
    let got: Vec<Dead> = dealt.workers.iter().flatten().filter_map(dead).collect();
    let want: Vec<Dead> = sequential.iter().filter_map(dead).collect();
    assert_eq!(want.len(), 1, "{want:?}");
    assert_eq!(want[0].1, "input truncated or unreadable");
    assert_eq!(got, want);
    let mut all = BTreeMap::new();
    for items in &dealt.workers {
        all.extend(by_driver(items.iter()));
    }
    assert_eq!(all, by_driver(sequential.iter()));
}
