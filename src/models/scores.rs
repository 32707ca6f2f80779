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
    fn brier_and_skill() {
        let y = [true, false];
        assert_eq!(brier(&[1.0, 0.0], &y), 0.0);
        assert_eq!(brier(&[0.5, 0.5], &y), 0.25);
        assert_eq!(brier_skill(0.125, 0.25), 0.5);
    }
}
