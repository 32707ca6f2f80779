//! Per-record cost of the analysis: each window and detector alone, and the whole per-driver
//! analysis, on a synthetic lap-like signal.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use pitwall_dataflows::analysis::DriverAnalysis;
use pitwall_dataflows::brake::BrakeThermal;
use pitwall_dataflows::config::{GearConfig, WheelSpinConfig};
use pitwall_dataflows::episode::{Episode, Worse};
use pitwall_dataflows::gear::GearAnomalies;
use pitwall_dataflows::wheel_spin::WheelSpin;
use pitwall_dataflows::window::{Rolling, Tumbling};
use pitwall_dataflows::{alert, DetectorConfig, DriverId, Telemetry};

fn samples(n: usize) -> Vec<Telemetry> {
    let driver = DriverId::new("VER").unwrap();
    (0..n)
        .map(|i| {
            let phase = (i % 320) as f32 / 320.0;
            let speed = 80.0 + 200.0 * (phase * std::f32::consts::TAU).sin().abs();
            let gear = (1 + (speed / 40.0) as u8).min(8);
            Telemetry {
                speed,
                rpm: 9000.0 + (i % 7) as f32 * 400.0,
                throttle: if i % 40 < 30 { 100.0 } else { 0.0 },
                lap: Some((i / 320) as u16 + 1),
                gear,
                drs: if i % 320 < 40 { 12 } else { 1 },
                brake: i % 40 >= 32,
                ..Telemetry::at(driver, 1_685_278_862_000 + i as i64 * 240)
            }
        })
        .collect()
}

fn per_record(c: &mut Criterion) {
    let data = samples(100_000);
    let mut g = c.benchmark_group("per_record");
    g.throughput(Throughput::Elements(data.len() as u64));
    let driver = data[0].driver;
    g.bench_function("rolling_window_1000", |b| {
        b.iter(|| {
            let mut w = Rolling::new(driver, 1000);
            for s in &data {
                w.observe(black_box(s));
            }
            w.stats()
        })
    });
    g.bench_function("tumbling_window_1s", |b| {
        b.iter(|| {
            let mut w = Tumbling::new(driver, 1000);
            data.iter().filter_map(|s| w.observe(black_box(s))).count()
        })
    });
    g.bench_function("wheel_spin_calibrated", |b| {
        b.iter(|| {
            let mut d = WheelSpin::new(&WheelSpinConfig::default());
            data.iter().filter_map(|s| d.observe(black_box(s))).count()
        })
    });
    g.bench_function("gear_anomalies", |b| {
        b.iter(|| {
            let mut d = GearAnomalies::new(&GearConfig::default());
            data.iter()
                .filter(|s| d.observe(black_box(s)).lugging.is_some())
                .count()
        })
    });
    g.bench_function("brake_thermal", |b| {
        b.iter(|| {
            let mut d = BrakeThermal::default();
            data.iter().map(|s| d.observe(black_box(s))).sum::<f64>()
        })
    });
    g.bench_function("episode", |b| {
        b.iter(|| {
            let mut e = Episode::new(
                driver,
                alert::AlertType::HighSpeed,
                alert::Severity::High,
                250.0,
                Worse::Higher,
                2,
            );
            data.iter()
                .filter_map(|s| e.observe(s, (s.speed > 250.0).then_some(s.speed as f64)))
                .count()
        })
    });
    g.bench_function("driver_analysis_all_detectors", |b| {
        b.iter(|| {
            let mut a = DriverAnalysis::new(driver, &DetectorConfig::default());
            let mut n = 0u64;
            for s in &data {
                a.observe(black_box(s), |_| n += 1);
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, per_record);
criterion_main!(benches);
