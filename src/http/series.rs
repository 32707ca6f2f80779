//! One metric of one driver as a time series, from the store's points or its window
//! aggregates, downsampled without losing peaks.

use super::response::Response;
use super::sample::Metric;
use super::store::{Store, WINDOW_METRICS};
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
            metric_names().collect::<Vec<_>>().join(", ")
        ),
    ))
}

/// Every metric a series can be asked for: the point metrics, then the window aggregates.
pub fn metric_names() -> impl Iterator<Item = &'static str> {
    Metric::ALL.iter().map(|m| m.as_str()).chain(WINDOW_METRICS)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsampling_keeps_each_buckets_extremes_in_time_order() {
        let points: Vec<(i64, f32)> = (0..1000).map(|i| (i, ((i * 37) % 101) as f32)).collect();
        let out = downsample(&points, 10);
        assert!(out.len() <= 10);
        assert!(out.windows(2).all(|w| w[0].0 < w[1].0));
        for b in 0..5 {
            let chunk = &points[b * 200..(b + 1) * 200];
            let max = chunk.iter().map(|p| p.1).fold(f32::MIN, f32::max);
            let min = chunk.iter().map(|p| p.1).fold(f32::MAX, f32::min);
            assert!(out
                .iter()
                .any(|p| p.1 == max && (b as i64 * 200..(b as i64 + 1) * 200).contains(&p.0)));
            assert!(out
                .iter()
                .any(|p| p.1 == min && (b as i64 * 200..(b as i64 + 1) * 200).contains(&p.0)));
        }
        assert_eq!(
            downsample(&points[..5], 10),
            points[..5].to_vec(),
            "fewer points than asked: all"
        );
    }
}
