//! `counter_narratives`: a synthetic parallel hate-speech → counter-narrative task in three
//! toy languages, with gold or "silver" (machine-translation-like, noisy) training targets.
//!
//! Stand-in for CONAN-EUS (Bengoetxea et al. 2024, "Basque and Spanish Counter Narrative
//! Generation: Data Creation and Evaluation", arXiv 2403.09159 [id recalled];
//! `../shared/docs/methods.md` §7): a parallel EN/ES/EU dataset of hate speech (HS) and
//! counter narratives (CN) made by machine translation (silver) plus professional
//! post-editing (gold). Nothing of the real data is used here [recon]: the three languages,
//! the templates and the noise model are this file's.
//!
//! ```text
//! meaning   (g, v, o): group g ∈ 0..8, verb v ∈ 0..8, object o ∈ 0..8   (512 meanings)
//! CN        answers (g, v, o) with (g, anti(v), o, fact(g)),  anti(v) = v XOR 1,
//!           fact(g) = (g + 3) mod 8 — a deterministic response about the same entities
//! L1 (base)          HS: "G V O"            CN: "NEG G anti(V) O FACT"
//! L2 (relabelled)    the same order, every word (incl. NEG) replaced by another word
//! L3 (reordered,     HS: "O Gk V"           CN: "Gk O anti(V)ez FACTa"
//!     suffixing)     (verb-final, ergative-like subject suffix `k`, negation as verb
//!                    suffix `ez`, suffix `a` on the fact word; own stems)
//! prompt    "<HS>>"      solution (SFT target)  "<CN>"       answer  gold "<CN>"
//! silver    each word of a training CN of a non-L1 language, independently:
//!           dropped with prob silver_noise/2, replaced by a random word of the same
//!           language's lexicon with prob silver_noise/2 (L1 is the source language and
//!           stays gold, as English does in CONAN-EUS)
//! ```
//!
//! Training problems are drawn from the meanings not held out for test, once per training
//! language (`train` each, so a multilingual set is `train × |languages|` rows, as
//! concatenating languages is); the `test` problems are held-out meanings rendered in
//! `test_language`, always with gold answers. So mono vs multilingual vs zero-shot
//! (`languages: [l1]`, `test_language: l2`) is a change of options. Words are fixed
//! strings (the lexicons do not depend on the seed); which meanings are train/test and the
//! silver noise come from `rng::rng(seed, [0xC0_A7])`. Difficulty = the language's index
//! (1, 2, 3). Characters: lowercase letters, space and `>` (char-tokenizer friendly).

use std::sync::Arc;

use anyhow::ensure;
use foil_core::{Problem, Task, TaskData, register_part, rng};
use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::char_tokenizer::CharTokenizer;

/// One of the three toy languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    /// The base language (source of the translations; never silver).
    L1,
    /// L1 with a relabelled vocabulary, same word order.
    L2,
    /// Different word order (verb-final) and suffixing morphology.
    L3,
}

/// Gold (post-edited) or silver (machine-translated, noisy) training targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    #[default]
    Gold,
    Silver,
}

/// Number of groups, verbs and objects (each).
const N: usize = 8;

// Lexicons: [groups; verbs; objects; facts] and the negation word. L1/L2 share the
// alphabet but no word; L3 has its own stems (and its suffixes).
const L1_G: [&str; N] = [
    "bako", "dire", "fuli", "gamo", "hepi", "jiru", "kola", "mune",
];
const L1_V: [&str; N] = ["tas", "ter", "pol", "pum", "sik", "sam", "nor", "nuk"];
const L1_O: [&str; N] = [
    "rubo", "ladi", "sefo", "tiga", "vomu", "wena", "yoki", "zupa",
];
const L1_F: [&str; N] = [
    "help", "work", "vote", "teach", "build", "heal", "share", "care",
];
const L1_NEG: &str = "no";

const L2_G: [&str; N] = [
    "pire", "somu", "lake", "viro", "nesa", "tobu", "gumi", "reko",
];
const L2_V: [&str; N] = ["dup", "dov", "kel", "kif", "rab", "rom", "les", "lut"];
const L2_O: [&str; N] = [
    "mefa", "kuno", "zari", "bepo", "hiwa", "dolu", "fesi", "jaru",
];
const L2_F: [&str; N] = [
    "wulp", "mirk", "dote", "feach", "zuild", "beal", "thare", "kare",
];
const L2_NEG: &str = "ve";

const L3_G: [&str; N] = [
    "aitz", "bide", "etxe", "gora", "herri", "itsa", "lur", "mendi",
];
const L3_V: [&str; N] = [
    "dago", "doa", "jan", "edan", "ikus", "entzun", "egin", "esan",
];
const L3_O: [&str; N] = [
    "ura", "sua", "haize", "zeru", "ibai", "oihan", "harri", "elur",
];
const L3_F: [&str; N] = [
    "lagun", "langil", "hautes", "irakas", "eraik", "sendat", "partek", "zaint",
];

/// Recipe part: `task: {type: counter_narratives, languages: [l1, l2], test_language: l2,
/// target: silver, silver_noise: 0.3, train: 150, test: 100}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CounterNarratives {
    /// Training languages (their rows are concatenated).
    pub languages: Vec<Language>,
    /// Language of the held-out test problems (gold answers).
    pub test_language: Language,
    /// Training targets of the non-L1 languages: gold or silver.
    pub target: Target,
    /// Per-word corruption rate of silver targets (half drops, half substitutions).
    pub silver_noise: f64,
    /// Training rows per training language (distinct meanings, none in the test set).
    pub train: usize,
    /// Held-out meanings (test problems).
    pub test: usize,
}

impl Default for CounterNarratives {
    fn default() -> Self {
        Self {
            languages: vec![Language::L1],
            test_language: Language::L1,
            target: Target::Gold,
            silver_noise: 0.3,
            train: 200,
            test: 100,
        }
    }
}

register_part!(
    Task,
    "counter_narratives",
    CounterNarratives,
    "synthetic parallel hate speech → counter narrative in 3 toy languages (L2 relabelled, L3 reordered + suffixing); gold or silver (noisy MT-like) targets; CONAN-EUS stand-in"
);

struct Lexicon {
    g: [&'static str; N],
    v: [&'static str; N],
    o: [&'static str; N],
    f: [&'static str; N],
}

fn lexicon(l: Language) -> Lexicon {
    match l {
        Language::L1 => Lexicon {
            g: L1_G,
            v: L1_V,
            o: L1_O,
            f: L1_F,
        },
        Language::L2 => Lexicon {
            g: L2_G,
            v: L2_V,
            o: L2_O,
            f: L2_F,
        },
        Language::L3 => Lexicon {
            g: L3_G,
            v: L3_V,
            o: L3_O,
            f: L3_F,
        },
    }
}

/// The counter narrative's meaning: `(g, anti(v), o, fact(g))`.
fn respond(g: usize, v: usize, o: usize) -> (usize, usize, usize, usize) {
    (g, v ^ 1, o, (g + 3) % N)
}

/// (hate speech, gold counter narrative) of meaning (g, v, o) in language `l`.
pub fn render(l: Language, g: usize, v: usize, o: usize) -> (String, String) {
    let x = lexicon(l);
    let (cg, cv, co, cf) = respond(g, v, o);
    match l {
        Language::L1 | Language::L2 => {
            let neg = if l == Language::L1 { L1_NEG } else { L2_NEG };
            (
                format!("{} {} {}", x.g[g], x.v[v], x.o[o]),
                format!("{neg} {} {} {} {}", x.g[cg], x.v[cv], x.o[co], x.f[cf]),
            )
        }
        Language::L3 => (
            format!("{} {}k {}", x.o[o], x.g[g], x.v[v]),
            format!("{}k {} {}ez {}a", x.g[cg], x.o[co], x.v[cv], x.f[cf]),
        ),
    }
}

/// All words a language's counter narratives use (the pool silver substitutions draw from).
fn cn_words(l: Language) -> Vec<String> {
    let mut words = Vec::new();
    for g in 0..N {
        for v in 0..N {
            for o in 0..N {
                for w in render(l, g, v, o).1.split(' ') {
                    if !words.iter().any(|x: &String| x == w) {
                        words.push(w.to_string());
                    }
                }
            }
        }
    }
    words
}

/// A silver version of `gold`: each word dropped with prob `rate/2`, else replaced by a
/// random word of `pool` with prob `rate/2` (of the whole), else kept.
fn silver(gold: &str, pool: &[String], rate: f64, r: &mut impl Rng) -> String {
    let mut out: Vec<&str> = Vec::new();
    for w in gold.split(' ') {
        let u: f64 = r.random();
        if u < rate / 2.0 {
            continue;
        } else if u < rate {
            out.push(&pool[r.random_range(0..pool.len())]);
        } else {
            out.push(w);
        }
    }
    out.join(" ")
}

fn lang_index(l: Language) -> u32 {
    match l {
        Language::L1 => 1,
        Language::L2 => 2,
        Language::L3 => 3,
    }
}

#[typetag::serde(name = "counter_narratives")]
impl Task for CounterNarratives {
    fn build(&self, seed: u64) -> anyhow::Result<TaskData> {
        ensure!(
            !self.languages.is_empty(),
            "counter_narratives: `languages` must name at least one training language"
        );
        ensure!(
            (0.0..=1.0).contains(&self.silver_noise),
            "counter_narratives: silver_noise must be in [0, 1], got {}",
            self.silver_noise
        );
        let total = N * N * N;
        ensure!(
            self.train + self.test <= total,
            "counter_narratives: train + test = {} exceeds the {total} distinct meanings",
            self.train + self.test
        );
        let tokenizer = CharTokenizer::new("abcdefghijklmnopqrstuvwxyz >")?;
        let mut r = rng::rng(seed, &[0xC0_A7]);
        let mut meanings: Vec<(usize, usize, usize)> = (0..N)
            .flat_map(|g| (0..N).flat_map(move |v| (0..N).map(move |o| (g, v, o))))
            .collect();
        meanings.shuffle(&mut r);
        let (test_m, rest) = meanings.split_at(self.test);
        let mut train = Vec::new();
        for &l in &self.languages {
            // each training language gets its own draw of `train` meanings from the rest
            let mut pool: Vec<_> = rest.to_vec();
            pool.shuffle(&mut r);
            let words = cn_words(l);
            for (i, &(g, v, o)) in pool.iter().take(self.train).enumerate() {
                let (hs, cn) = render(l, g, v, o);
                let target = if self.target == Target::Silver && l != Language::L1 {
                    silver(&cn, &words, self.silver_noise, &mut r)
                } else {
                    cn.clone()
                };
                train.push(Problem {
                    id: format!("train-l{}-{i:05}", lang_index(l)),
                    prompt: format!("{hs}>"),
                    solution: target,
                    answer: cn,
                    difficulty: lang_index(l),
                });
            }
        }
        train.shuffle(&mut r);
        let test = test_m
            .iter()
            .enumerate()
            .map(|(i, &(g, v, o))| {
                let (hs, cn) = render(self.test_language, g, v, o);
                Problem {
                    id: format!("test-l{}-{i:05}", lang_index(self.test_language)),
                    prompt: format!("{hs}>"),
                    solution: cn.clone(),
                    answer: cn,
                    difficulty: lang_index(self.test_language),
                }
            })
            .collect();
        Ok(TaskData {
            train,
            test,
            tokenizer: Arc::new(tokenizer),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn renders_by_hand() {
        // (g, v, o) = (0, 2, 5): anti(2) = 2 XOR 1 = 3, fact(0) = 3
        // L1: HS "bako pol wena", CN "no bako pum wena teach"
        assert_eq!(
            render(Language::L1, 0, 2, 5),
            ("bako pol wena".into(), "no bako pum wena teach".into())
        );
        // L2: same order, L2 words: G0 pire, V2 kel, V3 kif, O5 dolu, F3 feach, NEG ve
        assert_eq!(
            render(Language::L2, 0, 2, 5),
            ("pire kel dolu".into(), "ve pire kif dolu feach".into())
        );
        // L3: HS "O Gk V" = "oihan aitzk jan"; CN "Gk O anti(V)ez FACTa"
        //     = "aitzk oihan edanez irakasa"
        assert_eq!(
            render(Language::L3, 0, 2, 5),
            (
                "oihan aitzk jan".into(),
                "aitzk oihan edanez irakasa".into()
            )
        );
        // (7, 7, 0): anti(7) = 6, fact(7) = 10 mod 8 = 2
        assert_eq!(render(Language::L1, 7, 7, 0).1, "no mune nor rubo vote");
    }

    #[test]
    fn languages_are_unambiguous() {
        // every HS of a language maps to one meaning: 512 distinct HS and CN per language,
        // and no word is shared between L1 and L2
        for l in [Language::L1, Language::L2, Language::L3] {
            let mut hs = HashSet::new();
            let mut cn = HashSet::new();
            for g in 0..N {
                for v in 0..N {
                    for o in 0..N {
                        let (x, y) = render(l, g, v, o);
                        hs.insert(x);
                        cn.insert(y);
                    }
                }
            }
            assert_eq!((hs.len(), cn.len()), (512, 512), "{l:?}");
        }
        let w1: HashSet<_> = cn_words(Language::L1).into_iter().collect();
        let w2: HashSet<_> = cn_words(Language::L2).into_iter().collect();
        assert!(w1.is_disjoint(&w2));
        // 1 NEG + 8 G + 8 V + 8 O + 8 F = 33 words
        assert_eq!(w1.len(), 33);
    }

    #[test]
    fn silver_noise_rate() {
        // rate 0.4: each word dropped w.p. 0.2, replaced w.p. 0.2 (sometimes by itself).
        // Over 2000 five-word CNs: expected kept length 5 × 0.8 = 4.0 words
        let pool = cn_words(Language::L2);
        let mut r = rng::rng(0, &[1]);
        let gold = "ve pire kif dolu feach";
        let (mut words, mut same) = (0usize, 0usize);
        for _ in 0..2000 {
            let s = silver(gold, &pool, 0.4, &mut r);
            words += s.split(' ').filter(|w| !w.is_empty()).count();
            same += usize::from(s == gold);
        }
        let mean = words as f64 / 2000.0;
        // sd of the mean ≈ sqrt(5 × 0.8 × 0.2 / 2000) ≈ 0.02
        assert!((mean - 4.0).abs() < 0.1, "{mean}");
        // P(all five kept as is) ≈ (0.6 + 0.2/33)^5 ≈ 0.08
        assert!((100..250).contains(&same), "{same}");
        assert_eq!(silver(gold, &pool, 0.0, &mut r), gold);
    }

    #[test]
    fn splits_targets_and_options() {
        let t = CounterNarratives {
            languages: vec![Language::L1, Language::L3],
            test_language: Language::L3,
            target: Target::Silver,
            silver_noise: 0.5,
            train: 100,
            test: 50,
        };
        let a = t.build(4).unwrap();
        assert_eq!(a.train, t.build(4).unwrap().train);
        assert_ne!(a.train, t.build(5).unwrap().train);
        assert_eq!((a.train.len(), a.test.len()), (200, 50));
        let test_hs: HashSet<_> = a.test.iter().map(|p| p.prompt.clone()).collect();
        let (mut l1_gold, mut l3_noisy) = (0, 0);
        for p in &a.train {
            a.tokenizer.encode(&p.prompt).unwrap();
            a.tokenizer.encode(&p.solution).unwrap();
            assert!(!test_hs.contains(&p.prompt));
            match p.difficulty {
                1 => l1_gold += usize::from(p.solution == p.answer),
                3 => l3_noisy += usize::from(p.solution != p.answer),
                d => panic!("language {d}"),
            }
        }
        // L1 stays gold; at rate 0.5 a 4-word L3 CN survives intact w.p. ≈ 0.5^4 ≈ 0.06
        assert_eq!(l1_gold, 100);
        assert!(l3_noisy > 80, "{l3_noisy}");
        for p in &a.test {
            assert_eq!(p.difficulty, 3);
            assert_eq!(p.solution, p.answer);
            assert!(p.prompt.ends_with('>'));
        }
        let gold = CounterNarratives {
            target: Target::Gold,
            ..t.clone()
        };
        assert!(
            gold.build(4)
                .unwrap()
                .train
                .iter()
                .all(|p| p.solution == p.answer)
        );
        for bad in [
            CounterNarratives {
                languages: vec![],
                ..t.clone()
            },
            CounterNarratives {
                silver_noise: 1.5,
                ..t.clone()
            },
            CounterNarratives {
                train: 500,
                test: 50,
                ..t.clone()
            },
        ] {
            assert!(bad.build(0).is_err());
        }
        let v: Box<dyn Task> = serde_json::from_str(
            r#"{"type":"counter_narratives","languages":["l2"],"target":"silver"}"#,
        )
        .unwrap();
        assert!(v.build(0).is_ok());
        assert!(
            serde_json::from_str::<Box<dyn Task>>(r#"{"type":"counter_narratives","lang":1}"#)
                .is_err()
        );
    }
}
