//! One metric of one driver as a time series, from the store's points or its window
//! aggregates, downsampled without losing peaks.

use super::columns::Metric;
use super::response::Response;
use super::store::{Store, METRICS, WINDOW_METRICS};
use pitwall_dataflows::DriverId;

/// Series of one metric of one driver, downsampled to at most `max` points: a point metric
/// from the store's pyramid (each bucket's minimum and maximum, buckets aligned to the
/// samples so they stay put as the series grows: [`super::columns::PointColumns::series`]),
/// a window aggregate (at most 7,200 a driver) by [`downsample`].
pub fn series(
    store: &Store,
    driver: DriverId,
    metric: &str,
    from: i64,
    to: i64,
    max: usize,
) -> Result<Vec<(i64, f32)>, Response> {
    if let Some(m) = Metric::parse(metric) {
        return Ok(store.point_series(driver, m, from, to, max));
    }
    if WINDOW_METRICS.contains(&metric) {
        let mut points = store.window_series(driver, metric, from, to);
        points.retain(|(_, v)| v.is_finite());
        return Ok(downsample(&points, max));
    }
    Err(Response::error(
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
    ))
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
