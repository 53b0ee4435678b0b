//! Summary statistics over seeds: mean, sample standard deviation, standard error, and the
//! `mean ± std (v1, v2, …)` cells of the tables.

use serde::Serialize;

/// Arithmetic mean (`NaN` for an empty slice).
pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample standard deviation `sqrt(Σ (x − x̄)² / (n − 1))`; 0 for fewer than two values.
pub fn std(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

/// Standard error of the mean, `std / sqrt(n)`; 0 for fewer than two values.
pub fn sem(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    std(xs) / (xs.len() as f64).sqrt()
}

/// Element-wise `a − b` (per-seed differences of paired runs).
pub fn diff(a: &[f64], b: &[f64]) -> Vec<f64> {
    assert_eq!(a.len(), b.len(), "paired values need the same seeds");
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

/// One quantity measured once per seed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub mean: f64,
    pub std: f64,
    /// In seed order.
    pub values: Vec<f64>,
}

impl Summary {
    pub fn of(values: &[f64]) -> Self {
        Self {
            mean: mean(values),
            std: std(values),
            values: values.to_vec(),
        }
    }

    /// `0.4894 ± 0.0123`
    pub fn mean_std(&self) -> String {
        format!("{:.4} ± {:.4}", self.mean, self.std)
    }

    /// `+0.1888 ± 0.0123` (signed mean, for differences)
    pub fn signed_mean_std(&self) -> String {
        format!("{:+.4} ± {:.4}", self.mean, self.std)
    }

    /// `0.3006, 0.2156, 0.2244`
    pub fn per_seed(&self) -> String {
        self.values
            .iter()
            .map(|v| format!("{v:.4}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `+0.1888, -0.0100` (signed, for differences)
    pub fn signed_per_seed(&self) -> String {
        self.values
            .iter()
            .map(|v| format!("{v:+.4}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    #[test]
    fn mean_std_sem_by_hand() {
        // 0.2, 0.4, 0.9: mean 1.5/3 = 0.5
        // squared deviations 0.09, 0.01, 0.16 → sum 0.26, /(n−1) = 0.13, std = 0.360555…
        // sem = 0.360555 / sqrt(3) = 0.208166…
        let xs = [0.2, 0.4, 0.9];
        close(mean(&xs), 0.5);
        close(std(&xs), 0.13f64.sqrt());
        close(sem(&xs), 0.13f64.sqrt() / 3f64.sqrt());
        assert!((std(&xs) - 0.360_555_127_546).abs() < 1e-9);
    }

    #[test]
    fn one_value_has_zero_spread_and_none_has_no_mean() {
        close(mean(&[0.7]), 0.7);
        close(std(&[0.7]), 0.0);
        close(sem(&[0.7]), 0.0);
        assert!(mean(&[]).is_nan());
    }

    #[test]
    fn two_values() {
        // 1 and 3: mean 2, deviations ±1, sum of squares 2, /(2−1) = 2 → std √2, sem √2/√2 = 1
        close(std(&[1.0, 3.0]), 2f64.sqrt());
        close(sem(&[1.0, 3.0]), 1.0);
    }

    #[test]
    fn paired_differences() {
        assert_eq!(diff(&[0.5, 0.25], &[0.25, 0.5]), vec![0.25, -0.25]);
    }

    #[test]
    fn cells() {
        let s = Summary::of(&[0.2, 0.4, 0.9]);
        assert_eq!(s.mean_std(), "0.5000 ± 0.3606");
        assert_eq!(s.per_seed(), "0.2000, 0.4000, 0.9000");
        let d = Summary::of(&[0.1, -0.05]);
        assert_eq!(d.signed_mean_std(), "+0.0250 ± 0.1061");
        assert_eq!(d.signed_per_seed(), "+0.1000, -0.0500");
    }
}
