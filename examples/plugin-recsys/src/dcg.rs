//! DCG@K of a ranking against the true relevance (Saito et al. 2020 report DCG@{1,3,5};
//! `../shared/docs/methods.md` §19).
//!
//! ```text
//! DCG@K(u) = Σ_{r=1..min(K, |C|)} γ_{u, π_r} / log2(r + 1)
//! ```
//!
//! `π` ranks the candidate items `C` by predicted score (highest first, ties broken by the
//! lower item index), the gain is the true relevance γ (graded, in [0, 1]); the reported
//! value is the mean over users. "All items": `C` = every item; "rare items": `C` = the
//! items with at most `rare_clicks` training clicks (the paper's rare items have ≤ 500
//! clicks in Yahoo! R3 [code]; our threshold is a knob [recon]). Evaluation is against γ
//! on every pair, i.e. an MAR test set (which the synthetic log allows) [recon].

/// DCG@K of one user: `scores` and `gains` over all items, ranked among `candidates`.
pub fn dcg_at_k(scores: &[f32], gains: &[f64], candidates: &[usize], k: usize) -> f64 {
    let mut order = candidates.to_vec();
    // highest score first; equal scores keep the lower index first (stable sort)
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
        .iter()
        .take(k)
        .enumerate()
        .map(|(r, &i)| gains[i] / ((r + 2) as f64).log2())
        .sum()
}

/// Mean DCG@K over users for each `k`: `scores`, `gains` row-major `[users, items]`.
pub fn mean_dcg(
    scores: &[f32],
    gains: &[f64],
    items: usize,
    candidates: &[usize],
    ks: &[usize],
) -> Vec<f64> {
    let users = scores.len() / items.max(1);
    let mut sums = vec![0.0; ks.len()];
    for u in 0..users {
        let (s, g) = (
            &scores[u * items..(u + 1) * items],
            &gains[u * items..(u + 1) * items],
        );
        for (sum, &k) in sums.iter_mut().zip(ks) {
            *sum += dcg_at_k(s, g, candidates, k);
        }
    }
    sums.iter().map(|s| s / users.max(1) as f64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    #[test]
    fn dcg_by_hand() {
        // scores rank items 2, 0, 3, 1; gains γ = [0.5, 0.9, 1.0, 0.2]
        let scores = [0.7, 0.1, 0.9, 0.3];
        let gains = [0.5, 0.9, 1.0, 0.2];
        let all = [0, 1, 2, 3];
        // @1: 1.0 / log2 2 = 1.0
        close(dcg_at_k(&scores, &gains, &all, 1), 1.0);
        // @3: 1.0 + 0.5 / log2 3 + 0.2 / log2 4 = 1.0 + 0.315465 + 0.1 = 1.415465
        close(
            dcg_at_k(&scores, &gains, &all, 3),
            1.0 + 0.5 / 3f64.log2() + 0.1,
        );
        // @5 with 4 candidates: @4 = @3 + 0.9 / log2 5 = 1.415465 + 0.387600
        close(
            dcg_at_k(&scores, &gains, &all, 5),
            1.0 + 0.5 / 3f64.log2() + 0.1 + 0.9 / 5f64.log2(),
        );
        // among candidates {1, 3} only: 3 first (0.3 > 0.1): 0.2 + 0.9 / log2 3
        close(
            dcg_at_k(&scores, &gains, &[1, 3], 3),
            0.2 + 0.9 / 3f64.log2(),
        );
    }

    #[test]
    fn ties_keep_the_lower_index_and_users_are_averaged() {
        // equal scores: item 0 before item 1 → @1 = γ_0
        close(dcg_at_k(&[0.5, 0.5], &[0.25, 1.0], &[0, 1], 1), 0.25);
        // two users, two items, @1: user 0 picks item 1 (γ 0.8), user 1 picks item 0 (γ 0.4)
        let m = mean_dcg(
            &[0.1, 0.9, 0.6, 0.2],
            &[0.3, 0.8, 0.4, 0.7],
            2,
            &[0, 1],
            &[1],
        );
        close(m[0], (0.8 + 0.4) / 2.0);
    }
}
