//! `forbidden_sequences`: GUARD's hard matcher — a trie of forbidden token n-grams.
//!
//! GUARD (methods.md §12, [recon from OpenReview reviews + a third-party
//! re-implementation]) removes a candidate token `t` when the generated suffix followed by
//! `t` completes a forbidden trie entry: `P_hard(t) = ∞`. Entries are the token n-grams of
//! the forbidden answers, of lengths `min_n..=max_n` (the re-implementation: all n-grams up
//! to 5 words; here token n-grams [recon]). With match ratio `β` a partial match suffices:
//!
//! ```text
//! block t  ⇔  ∃ entry e, k with ⌈β·|e|⌉ ≤ k ≤ |e|  and  (y_{L−k+2..L}, t) = e_{1..k}
//! ```
//!
//! (`y` the generated ids, `L` their number). `β = 1` [secondary]: only completing a whole
//! entry blocks. Each trie node stores `need` = the least `⌈β·|e|⌉` over the entries through
//! it, so a token is blocked when the node it leads to lies at depth ≥ its `need`.
//!
//! As a stand-alone processor (`{type: forbidden_sequences, sequences: [...]}`) it forbids
//! the given texts on every prompt; the `guard` composite builds one trie per flagged
//! prompt from the retrieved answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use foil_core::{LogitProcessor, PromptProcessor, Tokenizer, register_part};
use serde::{Deserialize, Serialize};

/// A trie of token sequences. Node 0 is the root.
#[derive(Debug, Clone, Default)]
pub struct Trie {
    children: Vec<BTreeMap<u32, usize>>,
    /// Least `⌈β·|e|⌉` over the entries through the node (`usize::MAX` for the root).
    need: Vec<usize>,
    /// Longest entry.
    longest: usize,
}

impl Trie {
    /// A trie of `entries` with match ratio `beta ∈ (0, 1]`. Empty entries are ignored.
    pub fn new(entries: &[Vec<u32>], beta: f32) -> anyhow::Result<Self> {
        anyhow::ensure!(
            beta > 0.0 && beta <= 1.0,
            "forbidden_sequences: beta must lie in (0, 1], got {beta}"
        );
        let mut t = Trie {
            children: vec![BTreeMap::new()],
            need: vec![usize::MAX],
            longest: 0,
        };
        for e in entries.iter().filter(|e| !e.is_empty()) {
            let need = ((beta as f64) * e.len() as f64 - 1e-9).ceil().max(1.0) as usize;
            t.longest = t.longest.max(e.len());
            let mut node = 0;
            for &id in e {
                node = match t.children[node].get(&id) {
                    Some(&c) => c,
                    None => {
                        t.children.push(BTreeMap::new());
                        t.need.push(usize::MAX);
                        let c = t.children.len() - 1;
                        t.children[node].insert(id, c);
                        c
                    }
                };
                t.need[node] = t.need[node].min(need);
            }
        }
        Ok(t)
    }

    /// The trie of every n-gram of lengths `min_n..=max_n` of each sequence.
    pub fn of_ngrams(
        sequences: &[Vec<u32>],
        min_n: usize,
        max_n: usize,
        beta: f32,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            1 <= min_n && min_n <= max_n,
            "forbidden_sequences: need 1 <= min_n <= max_n, got {min_n}..{max_n}"
        );
        let mut entries = Vec::new();
        for s in sequences {
            for n in min_n..=max_n.min(s.len()) {
                entries.extend(s.windows(n).map(<[u32]>::to_vec));
            }
        }
        Self::new(&entries, beta)
    }

    /// Whether the trie holds no entry.
    pub fn is_empty(&self) -> bool {
        self.longest == 0
    }

    /// The ids that must not follow `generated`, sorted, without repeats.
    pub fn blocked(&self, generated: &[u32]) -> Vec<u32> {
        let mut out = Vec::new();
        if self.is_empty() {
            return out;
        }
        // try every suffix of length 0..longest-1 as the start of an entry
        let from = generated.len().saturating_sub(self.longest - 1);
        for start in from..=generated.len() {
            let mut node = 0;
            let mut ok = true;
            for id in &generated[start..] {
                match self.children[node].get(id) {
                    Some(&c) => node = c,
                    None => {
                        ok = false;
                        break;
                    }
                }
            }
            if !ok {
                continue;
            }
            let depth = generated.len() - start + 1;
            for (&id, &child) in &self.children[node] {
                if depth >= self.need[child] {
                    out.push(id);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// The per-prompt hard block: removes every id [`Trie::blocked`] names.
#[derive(Debug)]
pub struct HardBlock(pub Arc<Trie>);

impl PromptProcessor for HardBlock {
    fn process(&self, generated: &[u32], logits: &mut [f32]) {
        for id in self.0.blocked(generated) {
            if let Some(z) = logits.get_mut(id as usize) {
                *z = f32::NEG_INFINITY;
            }
        }
    }
}

/// Recipe part: `{type: forbidden_sequences, sequences: ["kelo"], min_n: 2, max_n: 5}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ForbiddenSequences {
    /// Forbidden texts; each is tokenised (`Tokenizer::encode`) and its n-grams enter the trie.
    pub sequences: Vec<String>,
    /// Shortest n-gram.
    pub min_n: usize,
    /// Longest n-gram (the re-implementation: 5).
    pub max_n: usize,
    /// Match ratio β ∈ (0, 1] (1 = the whole entry must be completed).
    pub beta: f32,
}

impl Default for ForbiddenSequences {
    fn default() -> Self {
        Self {
            sequences: Vec::new(),
            min_n: 2,
            max_n: 5,
            beta: 1.0,
        }
    }
}

register_part!(
    LogitProcessor,
    "forbidden_sequences",
    ForbiddenSequences,
    "GUARD's hard matcher: a trie of the token n-grams of forbidden texts; a token completing one gets −∞"
);

impl ForbiddenSequences {
    /// The trie of `texts` under these options.
    pub fn trie(&self, texts: &[&str], tokenizer: &dyn Tokenizer) -> anyhow::Result<Trie> {
        let seqs = texts
            .iter()
            .map(|t| tokenizer.encode(t))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Trie::of_ngrams(&seqs, self.min_n, self.max_n, self.beta)
    }
}

#[typetag::serde(name = "forbidden_sequences")]
impl LogitProcessor for ForbiddenSequences {
    fn begin(
        &self,
        _prompt: &str,
        tokenizer: &dyn Tokenizer,
    ) -> anyhow::Result<Option<Arc<dyn PromptProcessor>>> {
        let texts: Vec<&str> = self.sequences.iter().map(String::as_str).collect();
        let trie = self.trie(&texts, tokenizer)?;
        Ok((!trie.is_empty()).then(|| Arc::new(HardBlock(Arc::new(trie))) as _))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_example_beta_one() {
        // answer ids [5, 6, 7], n-grams of length 2..=3: [5,6], [6,7], [5,6,7]
        let t = Trie::of_ngrams(&[vec![5, 6, 7]], 2, 3, 1.0).unwrap();
        // nothing generated: no entry of length 1, nothing blocked
        assert_eq!(t.blocked(&[]), Vec::<u32>::new());
        // after [.., 5]: 6 completes [5,6] → blocked
        assert_eq!(t.blocked(&[1, 5]), vec![6]);
        // after [.., 6]: 7 completes [6,7]
        assert_eq!(t.blocked(&[2, 6]), vec![7]);
        // after [5, 6]: 7 completes [6,7] and [5,6,7]; still one id
        assert_eq!(t.blocked(&[5, 6]), vec![7]);
        // after [7]: no entry starts with 7
        assert!(t.blocked(&[7]).is_empty());
    }

    #[test]
    fn partial_match_ratio() {
        // one entry [1,2,3,4], β = 0.5: ⌈0.5·4⌉ = 2 → blocked once 2 of its ids would match
        let t = Trie::new(&[vec![1, 2, 3, 4]], 0.5).unwrap();
        assert!(t.blocked(&[]).is_empty()); // depth 1 < 2
        assert_eq!(t.blocked(&[1]), vec![2]); // depth 2 ≥ 2
        assert_eq!(t.blocked(&[1, 2]), vec![3]);
        // β = 1: only completing all four
        let t = Trie::new(&[vec![1, 2, 3, 4]], 1.0).unwrap();
        assert!(t.blocked(&[1]).is_empty());
        assert!(t.blocked(&[1, 2]).is_empty());
        assert_eq!(t.blocked(&[9, 1, 2, 3]), vec![4]);
        assert!(Trie::new(&[vec![1]], 0.0).is_err());
        assert!(Trie::of_ngrams(&[vec![1]], 3, 2, 1.0).is_err());
    }

    #[test]
    fn hard_block_sets_minus_infinity() {
        let t = Trie::of_ngrams(&[vec![1, 2]], 2, 2, 1.0).unwrap();
        let mut z = vec![0.5, 0.1, 0.9, 0.3];
        HardBlock(Arc::new(t)).process(&[1], &mut z);
        assert_eq!(z, vec![0.5, 0.1, f32::NEG_INFINITY, 0.3]);
    }
}
