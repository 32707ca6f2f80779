//! The query store: publishing samples (what the dataflow's thread pays for each record with
//! the HTTP API on) and reading a full 60,000-point buffer as the views ask for it.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use pitwall::config::PitwallConfig;
use pitwall::http::sample::Metric;
use pitwall::http::store::{Store, StoreHook};
use pitwall::ingest::EpochClock;
use pitwall_dataflows::analysis::Derived;
use pitwall_dataflows::config::WindowConfig;
use pitwall_dataflows::dataflow::AnalysisHook;
use pitwall_dataflows::{DriverId, Telemetry};
use std::sync::Arc;

/// A sample of `driver` at `i × 250 ms`, its values moving like a lap's.
fn sample(driver: DriverId, i: i64) -> Telemetry {
    let phase = (i % 300) as f32;
    Telemetry {
        speed: 80.0 + phase * 0.9,
        rpm: 9_000.0 + phase * 11.5,
        throttle: (phase / 3.0).round(),
        lap: Some((i / 300) as u16 + 1),
        gear: (phase / 40.0) as u8 + 1,
        drs: if phase > 250.0 { 12 } else { 0 },
        brake: phase < 20.0,
        ..Telemetry::at(driver, 1_779_627_600_000 + i * 250)
    }
}

fn store(c: &mut Criterion) {
    let derived = Derived {
        spin: None,
        brake_temp_c: 450.0,
    };
    let drivers: Vec<DriverId> = (1..=20)
        .map(|n| DriverId::new(&format!("SIM{n:02}")).unwrap())
        .collect();

    let mut g = c.benchmark_group("store");
    let per_batch = 1_000i64;
    g.throughput(Throughput::Elements(
        per_batch as u64 * drivers.len() as u64,
    ));
    let publish_store = Arc::new(Store::new(
        &PitwallConfig::default().http,
        &WindowConfig::default(),
    ));
    let mut hook = StoreHook::new(publish_store, EpochClock::default());
    let mut next = 0i64;
    g.bench_function("publish_20_drivers", |b| {
        b.iter(|| {
            for i in next..next + per_batch {
                for d in &drivers {
                    hook.sample(&sample(*d, i), &derived);
                }
            }
            next += per_batch;
            hook.flush();
        })
    });

    // One driver's full buffer, wrapped once.
    let full = Arc::new(Store::new(
        &PitwallConfig::default().http,
        &WindowConfig::default(),
    ));
    let mut hook = StoreHook::new(full.clone(), EpochClock::default());
    for i in 0..70_000 {
        hook.sample(&sample(drivers[0], i), &derived);
    }
    hook.flush();
    g.throughput(Throughput::Elements(1));
    g.bench_function("series_1000_of_60000", |b| {
        b.iter(|| black_box(full.point_series(drivers[0], Metric::Speed, i64::MIN, i64::MAX, 1000)))
    });
    g.bench_function("series_all_60000", |b| {
        b.iter(|| {
            black_box(full.point_series(drivers[0], Metric::Speed, i64::MIN, i64::MAX, 100_000))
        })
    });
    let last = 1_779_627_600_000 + 69_999 * 250;
    g.bench_function("trace_120s", |b| {
        b.iter(|| black_box(full.points(drivers[0], last - 120_000, last)))
    });
    g.finish();
}

criterion_group!(benches, store);
criterion_main!(benches);
