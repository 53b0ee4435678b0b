//! Held-out quality of a reward model: pairwise accuracy and ROC AUC.
//!
//! ```text
//! pairwise accuracy = (1/|P|) Σ_{(i,j)∈P} [r_i > r_j] + ½·[r_i = r_j]   (i preferred over j)
//! AUC               = (1/(|Pos|·|Neg|)) Σ_{p∈Pos, q∈Neg} [r_p > r_q] + ½·[r_p = r_q]
//! ```
//!
//! The AUC is the Mann–Whitney form (the probability that a random positive outscores a
//! random negative); pairwise accuracy is the same statistic over the pairs that share a
//! prompt, the usual reward-model benchmark number (Ouyang et al. 2022). Both are 0.5 for
//! a scorer that knows nothing.

/// `1` if `a > b`, `½` on ties, else `0`.
fn win(a: f32, b: f32) -> f64 {
    if a > b {
        1.0
    } else if a == b {
        0.5
    } else {
        0.0
    }
}

/// Fraction of `(preferred, other)` index pairs ordered correctly by `scores`; `None`
/// without pairs.
pub fn pairwise_accuracy(scores: &[f32], pairs: &[(usize, usize)]) -> Option<f64> {
    if pairs.is_empty() {
        return None;
    }
    let wins: f64 = pairs.iter().map(|&(i, j)| win(scores[i], scores[j])).sum();
    Some(wins / pairs.len() as f64)
}

/// ROC AUC of `scores` for binary `labels`; `None` when one class is missing.
pub fn auc(scores: &[f32], labels: &[bool]) -> Option<f64> {
    let pos: Vec<f32> = scores
        .iter()
        .zip(labels)
        .filter(|(_, l)| **l)
        .map(|(s, _)| *s)
        .collect();
    let neg: Vec<f32> = scores
        .iter()
        .zip(labels)
        .filter(|(_, l)| !**l)
        .map(|(s, _)| *s)
        .collect();
    if pos.is_empty() || neg.is_empty() {
        return None;
    }
    let wins: f64 = pos
        .iter()
        .map(|&p| neg.iter().map(|&q| win(p, q)).sum::<f64>())
        .sum();
    Some(wins / (pos.len() * neg.len()) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_accuracy_counts_ties_as_half() {
        // scores: [3, 1, 2, 2]; pairs (0,1): 3>1 win, (3,2): 2=2 tie ½, (1,0): 1<3 loss
        // → (1 + 0.5 + 0) / 3 = 0.5
        let s = [3.0, 1.0, 2.0, 2.0];
        assert_eq!(pairwise_accuracy(&s, &[(0, 1), (3, 2), (1, 0)]), Some(0.5));
        assert_eq!(pairwise_accuracy(&s, &[]), None);
    }

    #[test]
    fn auc_is_the_mann_whitney_statistic() {
        // positives {0.9, 0.4}, negatives {0.5, 0.1}: 0.9>0.5, 0.9>0.1, 0.4<0.5, 0.4>0.1
        // → 3 of 4 = 0.75
        let s = [0.9, 0.5, 0.4, 0.1];
        let l = [true, false, true, false];
        assert_eq!(auc(&s, &l), Some(0.75));
        assert_eq!(auc(&s, &[true; 4]), None);
    }
}
