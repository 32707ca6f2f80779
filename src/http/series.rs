//! One metric of one driver as a time series, from the store's points or its window
//! aggregates, downsampled without losing peaks.

use super::response::Response;
use super::store::{window_value, Point, Store, METRICS, WINDOW_METRICS};
use pitwall_dataflows::DriverId;

/// Series of one metric of one driver, downsampled to at most `max` points.
pub fn series(
    store: &Store,
    driver: DriverId,
    metric: &str,
    from: i64,
    to: i64,
    max: usize,
) -> Result<Vec<(i64, f32)>, Response> {
    let points: Vec<(i64, f32)> = if METRICS.contains(&metric) {
        store
            .points(driver, from, to)
            .iter()
            .filter_map(|p: &Point| p.value(metric).map(|v| (p.ts_ms, v)))
            .filter(|(_, v)| v.is_finite())
            .collect()
    } else if WINDOW_METRICS.contains(&metric) {
        store
            .windows(driver, from, to)
            .iter()
            .filter_map(|w| window_value(w, metric).map(|v| (w.end_ms, v)))
            .filter(|(_, v)| v.is_finite())
            .collect()
    } else {
        return Err(Response::error(
            404,
            format!(
                "unknown metric {metric:?}; known: {}",
                METRICS
                    .iter()
                    .chain(&WINDOW_METRICS)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    };
    Ok(downsample(&points, max))
}

/// Keeps at most `max` points by taking the minimum and the maximum of equal-width buckets,
/// in time order, so that peaks survive (never by truncation).
pub fn downsample(points: &[(i64, f32)], max: usize) -> Vec<(i64, f32)> {
    if points.len() <= max {
        return points.to_vec();
    }
    if max < 2 {
        return points
            .iter()
            .copied()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .into_iter()
            .collect();
    }
    let buckets = max / 2;
    let mut out = Vec::with_capacity(max);
    for b in 0..buckets {
        let lo = b * points.len() / buckets;
        let hi = (b + 1) * points.len() / buckets;
        let chunk = &points[lo..hi];
        let (Some(min), Some(maxp)) = (
            chunk.iter().min_by(|a, b| a.1.total_cmp(&b.1)),
            chunk.iter().max_by(|a, b| a.1.total_cmp(&b.1)),
        ) else {
            continue;
        };
        if min.0 <= maxp.0 {
            out.push(*min);
            if maxp != min {
                out.push(*maxp);
            }
        } else {
            out.push(*maxp);
            out.push(*min);
        }
    }
    out
}
