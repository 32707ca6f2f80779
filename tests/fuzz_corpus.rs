//! Replays the fuzz targets' inputs through the same checks the fuzzers run
//! (`pitwall::fuzzing`), in the ordinary test run: every input the fuzzers ever failed on
//! (`fuzz/regressions/<target>/`, committed) and the seed corpus (`fuzz/corpus/<target>/`,
//! written from the real race by `fuzz/seed_corpus.py`, which CI runs first).

mod common;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 6] = [
    ("fastf1_csv", pitwall::fuzzing::fastf1_csv),
    ("telemetry_json", pitwall::fuzzing::telemetry_json),
    ("times", pitwall::fuzzing::times),
    ("http_query", pitwall::fuzzing::http_query),
    ("simple_json", pitwall::fuzzing::simple_json),
    ("config", pitwall::fuzzing::config),
];

fn replay(folder: &str) -> usize {
    let mut count = 0;
    for (name, target) in TARGETS {
        let dir = common::root().join("fuzz").join(folder).join(name);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for path in paths {
            // A fuzzer running beside the tests may replace corpus files as it shrinks them.
            let Ok(data) = std::fs::read(&path) else {
                continue;
            };
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name}: {} fails", path.display());
            count += 1;
        }
    }
    count
}

#[test]
fn every_input_a_fuzzer_failed_on_passes_now() {
    let count = replay("regressions");
    assert!(count >= 1, "no regression inputs under fuzz/regressions");
}

#[test]
fn the_seed_corpus_passes() {
    let count = replay("corpus");
    if std::env::var_os("CI").is_some() {
        assert!(
            count >= 100,
            "{count} inputs: run fuzz/seed_corpus.py first"
        );
    }
    eprintln!("{count} corpus inputs replayed");
}
