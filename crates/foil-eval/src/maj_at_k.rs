//! maj@k: majority vote over sampled final answers (self-consistency, Wang et al. 2023,
//! "Self-Consistency Improves Chain of Thought Reasoning in Language Models"; reported as
//! maj@k by Lewkowycz et al. 2022, "Minerva").
//!
//! ```text
//! vote   = the most frequent answer among the first k parsed answers
//!          (ties → the answer that occurred first; unparsed answers do not vote)
//! maj@k  = 1 if vote == reference else 0     (0 when no answer parsed)
//! ```
//!
//! Answers compare as exact strings after trimming whitespace: normalise them first (e.g.
//! with the verifier's answer extraction) so that `"019"` and `"19"` agree.

/// maj@k for one problem: 1.0 if the majority answer among the first `k` equals
/// `reference`, else 0.0.
///
/// `None` when `k == 0` or `k > answers.len()`. `None` entries (answers that did not parse)
/// take no part in the vote; if none of the first `k` parsed, the result is 0.0.
pub fn maj_at_k(answers: &[Option<&str>], reference: &str, k: usize) -> Option<f64> {
    if k == 0 || k > answers.len() {
        return None;
    }
    // (answer, votes) in order of first occurrence: a strict `>` keeps the earliest on ties.
    let mut tally: Vec<(&str, usize)> = Vec::new();
    for a in answers[..k].iter().flatten() {
        let a = a.trim();
        match tally.iter_mut().find(|(b, _)| *b == a) {
            Some((_, n)) => *n += 1,
            None => tally.push((a, 1)),
        }
    }
    let mut best: Option<(&str, usize)> = None;
    for &(a, n) in &tally {
        if best.is_none_or(|(_, m)| n > m) {
            best = Some((a, n));
        }
    }
    let hit = best.is_some_and(|(a, _)| a == reference.trim());
    Some(if hit { 1.0 } else { 0.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_wins() {
        // First 5: 19 ×3, 7 ×2 → vote 19 = reference → 1.
        let a = [
            Some("19"),
            Some("7"),
            Some("19"),
            Some("7"),
            Some("19"),
            Some("7"),
        ];
        assert_eq!(maj_at_k(&a, "19", 5), Some(1.0));
        assert_eq!(maj_at_k(&a, "7", 5), Some(0.0));
        // First 4: 19 ×2, 7 ×2 tie → 19 occurred first → vote 19.
        assert_eq!(maj_at_k(&a, "19", 4), Some(1.0));
        assert_eq!(maj_at_k(&a, "7", 4), Some(0.0));
    }

    #[test]
    fn tie_goes_to_first_occurrence() {
        // First 4: 7, 19, 19, 7 → 2 votes each; 7 came first → vote 7.
        let a = [Some("7"), Some("19"), Some("19"), Some("7")];
        assert_eq!(maj_at_k(&a, "7", 4), Some(1.0));
        assert_eq!(maj_at_k(&a, "19", 4), Some(0.0));
        // k=3: 7 ×1, 19 ×2 → vote 19.
        assert_eq!(maj_at_k(&a, "19", 3), Some(1.0));
    }

    #[test]
    fn unparsed_answers_do_not_vote() {
        // First 4: None, None, 19, None → only 19 voted → vote 19.
        let a = [None, None, Some("19"), None, Some("3"), Some("3")];
        assert_eq!(maj_at_k(&a, "19", 4), Some(1.0));
        // First 6: 19 ×1, 3 ×2 → vote 3.
        assert_eq!(maj_at_k(&a, "19", 6), Some(0.0));
        // No parsed answer among the first 2 → 0.
        assert_eq!(maj_at_k(&a, "19", 2), Some(0.0));
        // Whitespace is trimmed on both sides.
        assert_eq!(maj_at_k(&[Some(" 19\n")], "19 ", 1), Some(1.0));
    }

    #[test]
    fn k_out_of_range_is_none() {
        let a = [Some("1"), Some("2")];
        assert_eq!(maj_at_k(&a, "1", 3), None);
        assert_eq!(maj_at_k(&a, "1", 0), None);
        assert_eq!(maj_at_k(&[], "1", 1), None);
    }
}
