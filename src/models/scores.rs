//! Scores of a probabilistic prediction against what happened: AUC, Brier score and skill.

/// Area under the ROC curve: the chance that a random positive scores above a random negative
/// (ties count half). `None` without both classes.
pub fn auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let mut pairs: Vec<(f64, bool)> = scores.iter().copied().zip(labels.iter().copied()).collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let positives = pairs.iter().filter(|p| p.1).count() as f64;
    let negatives = pairs.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    // Mann-Whitney U from mid-ranks.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i;
        while j < pairs.len() && pairs[j].0 == pairs[i].0 {
            j += 1;
        }
        let mid_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += mid_rank * pairs[i..j].iter().filter(|p| p.1).count() as f64;
        i = j;
    }
    Some((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives))
}

/// Mean squared error of probabilities.
pub fn brier(probabilities: &[f64], labels: &[bool]) -> f64 {
    let n = probabilities.len().max(1) as f64;
    probabilities
        .iter()
        .zip(labels)
        .map(|(p, &y)| (p - y as u8 as f64).powi(2))
        .sum::<f64>()
        / n
}

/// 1 - Brier / Brier of a reference (> 0: better than the reference).
pub fn brier_skill(brier: f64, reference: f64) -> f64 {
    if reference == 0.0 {
        0.0
    } else {
        1.0 - brier / reference
    }
}

/// One bin of a reliability table: predictions with probability in [lo, hi).
#[derive(Clone, Debug, PartialEq)]
pub struct Bin {
    pub lo: f64,
    pub hi: f64,
    pub n: usize,
    pub mean_probability: f64,
    pub observed: f64,
}

/// Reliability table in `bins` equal-width bins of probability (empty bins left out).
pub fn reliability(probabilities: &[f64], labels: &[bool], bins: usize) -> Vec<Bin> {
    let bins = bins.max(1);
    let mut sum = vec![(0usize, 0.0f64, 0usize); bins];
    for (&p, &y) in probabilities.iter().zip(labels) {
        let i = ((p.clamp(0.0, 1.0) * bins as f64) as usize).min(bins - 1);
        sum[i].0 += 1;
        sum[i].1 += p;
        sum[i].2 += y as usize;
    }
    sum.iter()
        .enumerate()
        .filter(|(_, s)| s.0 > 0)
        .map(|(i, &(n, p, y))| Bin {
            lo: i as f64 / bins as f64,
            hi: (i + 1) as f64 / bins as f64,
            n,
            mean_probability: p / n as f64,
            observed: y as f64 / n as f64,
        })
        .collect()
}

/// Expected calibration error: the bins' |mean probability - observed rate|, weighted by
/// their share of the predictions.
pub fn ece(table: &[Bin]) -> f64 {
    let n: usize = table.iter().map(|b| b.n).sum();
    if n == 0 {
        return 0.0;
    }
    table
        .iter()
        .map(|b| b.n as f64 * (b.mean_probability - b.observed).abs())
        .sum::<f64>()
        / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_perfect_random_and_inverted_scores() {
        let y = [false, false, true, true];
        assert_eq!(auc(&[0.1, 0.2, 0.8, 0.9], &y), Some(1.0));
        assert_eq!(auc(&[0.9, 0.8, 0.2, 0.1], &y), Some(0.0));
        assert_eq!(auc(&[0.5; 4], &y), Some(0.5));
        assert_eq!(auc(&[0.1, 0.4, 0.35, 0.8], &y), Some(0.75));
        assert_eq!(auc(&[0.1], &[true]), None);
    }

    #[test]
    fn a_calibrated_forecast_has_no_calibration_error() {
        let p = [0.05, 0.05, 0.95, 0.95, 0.5, 0.5];
        let y = [false, false, true, true, true, false];
        let t = reliability(&p, &y, 10);
        assert_eq!(t.len(), 3);
        assert_eq!((t[0].n, t[0].observed), (2, 0.0));
        assert!((ece(&t) - (0.05 * 4.0 / 6.0)).abs() < 1e-12);
        let over = [0.9; 4];
        let y = [true, false, false, false];
        assert!((ece(&reliability(&over, &y, 10)) - 0.65).abs() < 1e-12);
    }

    #[test]
    fn brier_and_skill() {
        let y = [true, false];
        assert_eq!(brier(&[1.0, 0.0], &y), 0.0);
        assert_eq!(brier(&[0.5, 0.5], &y), 0.25);
        assert_eq!(brier_skill(0.125, 0.25), 0.5);
    }
}
