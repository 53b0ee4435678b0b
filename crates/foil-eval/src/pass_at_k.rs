//! Unbiased pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code",
//! the Codex paper, §2.1 and Fig. 3).
//!
//! With n samples of which c are correct, the probability that at least one of k samples
//! drawn without replacement is correct is
//!
//! ```text
//! pass@k = 1 − C(n−c, k) / C(n, k)
//!        = 1 − Π_{i=n−c+1}^{n} (1 − k/i)        (product form, no large binomials)
//! ```
//!
//! and it is exactly 1 when n − c < k (every k-subset contains a correct sample).

/// Unbiased pass@k for one problem with `n` samples, `c` correct.
///
/// Returns `None` when `k > n` (not estimable from `n` samples) or `c > n` (invalid).
/// `k = 0` gives 0 (an empty draw contains nothing correct).
pub fn pass_at_k(n: usize, c: usize, k: usize) -> Option<f64> {
    if k > n || c > n {
        return None;
    }
    if n - c < k {
        return Some(1.0);
    }
    let kf = k as f64;
    let miss: f64 = (n - c + 1..=n).map(|i| 1.0 - kf / i as f64).product();
    Some(1.0 - miss)
}

/// Mean of [`pass_at_k`] over problems given as `(n, c)` pairs.
///
/// `None` when `groups` is empty or any problem's pass@k is `None` (`k > n` or `c > n`).
pub fn mean_pass_at_k(groups: &[(usize, usize)], k: usize) -> Option<f64> {
    if groups.is_empty() {
        return None;
    }
    let mut sum = 0.0;
    for &(n, c) in groups {
        sum += pass_at_k(n, c, k)?;
    }
    Some(sum / groups.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: Option<f64>, want: f64) {
        let got = got.expect("Some");
        assert!((got - want).abs() < 1e-9, "got {got}, want {want}");
    }

    #[test]
    fn pass_at_1_is_fraction_correct() {
        // n=8, c=1, k=1: 1 − C(7,1)/C(8,1) = 1 − 7/8 = 0.125.
        close(pass_at_k(8, 1, 1), 0.125);
        // n=10, c=3, k=1: 1 − 7/10 = 0.3.
        close(pass_at_k(10, 3, 1), 0.3);
    }

    #[test]
    fn pass_at_k_by_hand() {
        // n=8, c=2, k=4: 1 − C(6,4)/C(8,4) = 1 − 15/70 = 55/70 = 0.785714…
        // product form: 1 − (1 − 4/7)(1 − 4/8) = 1 − (3/7)(1/2) = 1 − 3/14 = 11/14.
        close(pass_at_k(8, 2, 4), 11.0 / 14.0);
        // n=5, c=2, k=2: 1 − C(3,2)/C(5,2) = 1 − 3/10 = 0.7.
        close(pass_at_k(5, 2, 2), 0.7);
    }

    #[test]
    fn edge_cases() {
        // n=8, c=1, k=8: n − c = 7 < 8, every 8-subset holds the correct one → 1.
        close(pass_at_k(8, 1, 8), 1.0);
        // n=5, c=0: C(5,k)/C(5,k) = 1 → 0 for every k.
        for k in 0..=5 {
            close(pass_at_k(5, 0, k), 0.0);
        }
        // n=4, c=4, k=1: n − c = 0 < 1 → 1.
        close(pass_at_k(4, 4, 1), 1.0);
        // k=0: nothing drawn → 0.
        close(pass_at_k(4, 2, 0), 0.0);
        // k > n and c > n are not estimable.
        assert_eq!(pass_at_k(4, 1, 5), None);
        assert_eq!(pass_at_k(4, 5, 1), None);
    }

    #[test]
    fn large_n_is_stable() {
        // n=1000, c=1, k=1: 1 − 999/1000 = 0.001 (binomials C(1000, k) would overflow for
        // large k; the product form does not).
        close(pass_at_k(1000, 1, 1), 0.001);
        // n=1000, c=1, k=500: 1 − (1 − 500/1000) = 0.5.
        close(pass_at_k(1000, 1, 500), 0.5);
    }

    #[test]
    fn mean_over_problems() {
        // k=1: problems (8,1) → 0.125, (8,2) → 0.25, (5,0) → 0: mean = 0.375/3 = 0.125.
        close(mean_pass_at_k(&[(8, 1), (8, 2), (5, 0)], 1), 0.125);
        // k=4: (8,2) → 11/14, (8,8) → 1: mean = (11/14 + 1)/2 = 25/28.
        close(mean_pass_at_k(&[(8, 2), (8, 8)], 4), 25.0 / 28.0);
        assert_eq!(mean_pass_at_k(&[], 1), None);
        // One problem with only 2 samples cannot give pass@4.
        assert_eq!(mean_pass_at_k(&[(8, 2), (2, 1)], 4), None);
    }
}
