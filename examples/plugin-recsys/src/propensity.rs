//! Item propensity estimated from training clicks, and its clipping (Saito et al. 2020;
//! `../shared/docs/methods.md` §19).
//!
//! ```text
//! θ̂_i = (n_i⁺ / max_j n_j⁺)^η          n_i⁺: training clicks of item i, η = 0.5   [code]
//! s_i = clip(θ̂_i, M, 1) = min(max(θ̂_i, M), 1)                                    [code]
//! ```
//!
//! θ̂ is relative popularity, not the true exposure θ: the estimator only needs the
//! propensities up to the shape the power η gives them. `M = 0` is plain IPS; a larger `M`
//! caps the weight `1/s ≤ 1/M` of rarely clicked items (less variance, some bias).

/// `θ̂_i = (n_i / max_j n_j)^power`; all zeros when no item has a click.
pub fn estimate(item_clicks: &[usize], power: f64) -> Vec<f64> {
    let max = item_clicks.iter().copied().max().unwrap_or(0);
    if max == 0 {
        return vec![0.0; item_clicks.len()];
    }
    item_clicks
        .iter()
        .map(|&n| (n as f64 / max as f64).powf(power))
        .collect()
}

/// `clip(θ̂, M, 1)` for each item.
pub fn clip(propensity: &[f64], min: f64) -> Vec<f64> {
    propensity.iter().map(|&p| p.max(min).min(1.0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_click_counts_to_the_power() {
        // clicks 100, 25, 1, 0: max 100 → ratios 1, 0.25, 0.01, 0
        // square roots: 1, 0.5, 0.1, 0
        let p = estimate(&[100, 25, 1, 0], 0.5);
        let want = [1.0, 0.5, 0.1, 0.0];
        for (a, b) in p.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{p:?}");
        }
        // power 1: the ratios themselves
        assert_eq!(estimate(&[4, 2], 1.0), vec![1.0, 0.5]);
        // no clicks at all: no propensity (and no division by zero)
        assert_eq!(estimate(&[0, 0], 0.5), vec![0.0, 0.0]);
    }

    #[test]
    fn clipping_floors_at_m_and_caps_at_one() {
        // M = 0.2: 0.1 → 0.2, 0 → 0.2, 0.5 stays, 1 stays; 1.3 (not a propensity) → 1
        assert_eq!(
            clip(&[1.0, 0.5, 0.1, 0.0, 1.3], 0.2),
            vec![1.0, 0.5, 0.2, 0.2, 1.0]
        );
        // M = 0 leaves propensities in [0, 1] as they are (plain IPS)
        assert_eq!(clip(&[0.1, 0.0], 0.0), vec![0.1, 0.0]);
    }
}
